"""tests/chaos/scenarios.py: the four chaos scenarios of issue 6, parts 1-4.

Each scenario starts real `analyticsd serve` processes (adtest.Service), drives them with the load
of chaos_lib, breaks something on purpose, and returns (figures, violations): figures is an
ordered list of (name, value, target) rows for the final table, violations the contract
properties that failed (an empty list means the contract held). Latency and percentage targets
are figures, not violations: the caller decides (the ctest short form asserts generous bounds,
tests/chaos/run prints PASS/MISS against the issue's targets).

Used by tests/integration/test_chaos.py (short form) and tests/chaos/run (long form).
"""

import datetime
import json
import os
import random
import signal
import subprocess
import threading
import time

import adtest
import chaos_lib as cl
import privatestack
import recpipe

KEY = "test-key"
REDIS_DB = None  # Redis db number for the services; None = adtest's per-file default
FULL_FROM_DAYS = -95


def _full_range():
    t = datetime.datetime.now(datetime.timezone.utc).date()
    return str(t + datetime.timedelta(days=FULL_FROM_DAYS)), str(t)


def _warm(svc):
    for p in cl.CACHED_PATHS:
        svc.request("GET", p)


def _sleep_until(t):
    d = t - time.monotonic()
    if d > 0:
        time.sleep(d)


def _pct(x):
    return "%.3f %%" % (100.0 * x)


# ---- 1. HTTP worker chaos --------------------------------------------------------------------

class RespawnWatch(threading.Thread):
    """After one SIGKILL: time until a new process with the victim's title exists (fork) and until
    it sits in its event loop (serving)."""

    def __init__(self, master, victim, title, t_kill, limit=40.0):
        super().__init__(daemon=True)
        self.args = (master, victim, title, t_kill, limit)
        self.fork_s = self.serve_s = None

    def run(self):
        master, victim, title, t_kill, limit = self.args
        new = None
        while time.monotonic() - t_kill < limit:
            if new is None:
                for pid, t in cl.children(master).items():
                    if t == title and pid != victim:
                        new = pid
                        self.fork_s = time.monotonic() - t_kill
                        break
            if new is not None and cl.in_event_loop(new):
                self.serve_s = time.monotonic() - t_kill
                return
            time.sleep(0.0005)


def http_chaos(db, duration=60.0, conns=64, workers=4, kill_every=2.0, victims="random", seed=7):
    rng = random.Random(seed)
    svc = adtest.Service(db, REDIS_DB, HTTP_WORKERS=workers, RECOMPUTE_WORKERS=1).start()
    violations = []
    watches = []
    try:
        _warm(svc)
        master = svc.proc.pid
        load = cl.Load(svc.port, conns, duration, seed=seed)
        next_kill = load.t0 + kill_every
        while next_kill < load.t0 + duration - 0.5:
            _sleep_until(next_kill)
            kids = {p: t for p, t in cl.children(master).items() if t.startswith("analyticsd: http worker")}
            if kids:
                if victims == "oldest":
                    victim = min(kids, key=lambda p: cl.start_time_ticks(p) or 0)
                else:
                    victim = rng.choice(sorted(kids))
                t_kill = time.monotonic()
                if cl.kill(victim):
                    w = RespawnWatch(master, victim, kids[victim], t_kill)
                    w.start()
                    watches.append(w)
            next_kill += kill_every
        recs = load.results()
        for w in watches:
            w.join(45)
        master_alive = svc.proc.poll() is None
        if not master_alive:
            violations.append("master died (status %s)" % svc.proc.returncode)
        backoffs = svc.logs().count("respawning in")
        rc = svc.stop()
        if rc != 0:
            violations.append("stop after HTTP chaos exited %s" % rc)
    finally:
        svc.stop()
    s = cl.summarize(recs)
    serve = [w.serve_s for w in watches]
    missing = sum(1 for x in serve if x is None)
    if missing:
        violations.append("%d killed http workers never came back" % missing)
    got = sorted(x for x in serve if x is not None)
    forks = sorted(w.fork_s for w in watches if w.fork_s is not None)
    worst = got[-1] * 1000 if got else float("nan")
    figures = [
        ("1 http chaos: duration / connections / workers", "%gs / %d / %d" % (duration, conns, workers), ""),
        ("1 requests (req/s)", "%d (%.0f)" % (s["requests"], s["requests"] / duration), ""),
        ("1 2xx / non-2xx", "%d / %d" % (s["ok"], s["non2xx"]), ""),
        ("1 connection errors", "%d %s" % (s["conn_errors"], {k: v for k, v in s["errors"].items() if v}), ""),
        ("1 success", _pct(s["success"]), (">= 99.9 %", s["success"] >= 0.999)),
        ("1 latency p50 / p99 / max", "%.1f / %.1f / %.0f ms" % (s["p50_ms"], s["p99_ms"], s["max_ms"]), ""),
        ("1 SIGKILLs (victims %s) / back-off delays" % victims, "%d / %d" % (len(watches), backoffs), ""),
        ("1 respawn kill -> new process: median / max", "%.1f / %.1f ms" % (
            forks[len(forks) // 2] * 1000 if forks else float("nan"), forks[-1] * 1000 if forks else float("nan")), ""),
        ("1 respawn kill -> serving: median", "%.1f ms" % (got[len(got) // 2] * 1000 if got else float("nan")), ""),
        ("1 slowest respawn (kill -> serving)", "%.1f ms" % worst, ("< 100 ms", worst < 100)),
        ("1 master alive", "yes" if master_alive else "NO", ("alive", master_alive)),
    ]
    return figures, violations, {"summary": s, "respawn_max_ms": worst, "backoffs": backoffs}


# ---- 2. recompute chaos ----------------------------------------------------------------------

TRUTH_SQL = """
WITH truth AS (
  SELECT 'volume-by-period'::text AS report_slug, w AS window_name,
         date_trunc(w, e.occurred_at, 'UTC') AS bucket_start, 'source'::text AS dimension_key,
         s.slug AS dimension_value, 'event_count'::text AS metric_name, count(*)::bigint AS metric_value
    FROM analytics_events e JOIN event_sources s ON s.id = e.source_id, unnest(ARRAY['day', 'week']) w
   GROUP BY 2, 3, 5
  UNION ALL
  SELECT 'status-counts', w, date_trunc(w, e.occurred_at, 'UTC'), 'status', e.status, 'event_count', count(*)
    FROM analytics_events e, unnest(ARRAY['day', 'week']) w GROUP BY 2, 3, 5
  UNION ALL
  SELECT 'top-entities', w, date_trunc(w, e.occurred_at, 'UTC'), 'entity_id', e.entity_id, 'event_count', count(*)
    FROM analytics_events e, unnest(ARRAY['day', 'week']) w GROUP BY 2, 3, 5
  UNION ALL
  SELECT 'amount-by-source', w, date_trunc(w, e.occurred_at, 'UTC'), 'source', s.slug, 'amount_cents',
         sum(e.amount_cents)
    FROM analytics_events e JOIN event_sources s ON s.id = e.source_id, unnest(ARRAY['day', 'week']) w
   GROUP BY 2, 3, 5
), snap AS (
  SELECT report_slug, window_name, bucket_start, dimension_key, dimension_value, metric_name, metric_value
    FROM metric_snapshots
), diff AS (
  SELECT 'missing' AS side, * FROM (SELECT * FROM truth EXCEPT ALL SELECT * FROM snap) a
  UNION ALL
  SELECT 'extra', * FROM (SELECT * FROM snap EXCEPT ALL SELECT * FROM truth) b
)
SELECT side, report_slug, window_name, bucket_start::text, dimension_value, metric_value
  FROM diff ORDER BY 2, 3, 4, 5, 1
"""


def snapshot_diff(db):
    """Rows by which metric_snapshots differs from the ground truth over analytics_events."""
    return db.sql(TRUTH_SQL)


def _paged(svc, slug, params):
    rows, offset = [], 0
    while True:
        q = dict(params, limit=100, offset=offset)
        path = "/api/v1/reports/%s/run?%s" % (slug, "&".join("%s=%s" % kv for kv in q.items()))
        status, body = svc.get_json(path)
        if status != 200:
            raise AssertionError("%s -> %s %s" % (path, status, body))
        rows += body["data"]["rows"]
        if len(body["data"]["rows"]) < 100:
            return rows
        offset += 100


def api_truth_mismatches(svc, db):
    """Full-range report results through the API compared with SQL over analytics_events."""
    f, t = _full_range()
    bad = []
    for window in ("day", "week"):
        base = {"window": window, "date_from": f, "date_to": t}
        truth = {}
        for key, sql in (
                ("status", "SELECT status, count(*) FROM analytics_events GROUP BY 1"),
                ("entity", "SELECT entity_id, count(*) FROM analytics_events GROUP BY 1"),
                ("period-status", "SELECT to_char(date_trunc('%s', occurred_at, 'UTC'), 'YYYY-MM-DD')"
                 " || '/' || status, count(*) FROM analytics_events GROUP BY 1" % window),
                ("period-source", "SELECT to_char(date_trunc('%s', e.occurred_at, 'UTC'), 'YYYY-MM-DD')"
                 " || '/' || s.slug, count(*) FROM analytics_events e JOIN event_sources s ON"
                 " s.id = e.source_id GROUP BY 1" % window),
                ("period-amount", "SELECT to_char(date_trunc('%s', e.occurred_at, 'UTC'), 'YYYY-MM-DD')"
                 " || '/' || s.slug, sum(e.amount_cents) FROM analytics_events e JOIN event_sources s"
                 " ON s.id = e.source_id GROUP BY 1" % window)):
            truth[key] = {k: int(v) for k, v in db.sql(sql)}
        got = {
            "status": {r["status"]: r["event_count"] for r in _paged(svc, "status-counts", base)},
            "entity": {r["entity_id"]: r["event_count"] for r in _paged(svc, "top-entities", base)},
            "period-status": {"%s/%s" % (r["bucket_date"], r["status"]): r["event_count"]
                              for r in _paged(svc, "status-counts", dict(base, breakdown="period"))},
            "period-source": {"%s/%s" % (r["bucket_date"], r["source"]): r["event_count"]
                              for r in _paged(svc, "volume-by-period", dict(base, breakdown="source"))},
            "period-amount": {"%s/%s" % (r["bucket_date"], r["source"]): r["amount_cents"]
                              for r in _paged(svc, "amount-by-source", dict(base, breakdown="source"))},
        }
        for key in truth:
            if got[key] != truth[key]:
                diff = sorted(k for k in set(got[key]) | set(truth[key])
                              if got[key].get(k) != truth[key].get(k))
                bad.append("%s %s: %d differences, e.g. %s" % (
                    window, key, len(diff), [(k, got[key].get(k), truth[key].get(k)) for k in diff[:3]]))
    return bad


class PairHolder(threading.Thread):
    """Keeps stalling rebuilds: holds the §6.4 advisory lock of a random report/window pair
    (DATA.md §8.5 hook) (2-4 pairs at a time, 0.5-1.5 s) from one psql session, so that SIGKILLs land on
    workers in the middle of a rebuild rather than between short jobs."""

    def __init__(self, db, seed):
        super().__init__(daemon=True)
        self.rng = random.Random(seed)
        self.halt = threading.Event()
        self.holds = 0
        self.proc = subprocess.Popen(["psql", db.conninfo, "-X", "-q", "-At"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def _do(self, fn, key):
        self.proc.stdin.write("SELECT 'ok' FROM (SELECT %s(hashtextextended('%s', 0))) s;\n" % (fn, key))
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip() == "ok"

    def run(self):
        pairs = ["recompute:%s:%s" % (r, w) for r in cl.SLUGS for w in ("day", "week")]
        while not self.halt.is_set():
            held = self.rng.sample(pairs, self.rng.randint(2, 4))
            for key in held:
                if not self._do("pg_advisory_lock", key):
                    return
            self.holds += 1
            self.halt.wait(self.rng.uniform(0.5, 1.5))
            for key in held:
                self._do("pg_advisory_unlock", key)
            self.halt.wait(0.2)

    def stop(self):
        self.halt.set()
        self.join(10)
        try:
            self.proc.stdin.close()
            self.proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


def _random_scope(rng, today):
    start = today + datetime.timedelta(days=rng.randint(-100, 2))
    end = start + datetime.timedelta(days=rng.choice((0, 1, 2, 3, 5, 6, 7, 9, 13, 14, 20, 27, 35)))
    return {"report_slug": rng.choice(cl.SLUGS), "window": rng.choice(("day", "week")),
            "date_from": str(start), "date_to": str(end), "requested_by": "chaos"}


def recompute_chaos(db, runs=300, workers=4, trigger_secs=30.0, kill_min=0.2, kill_max=0.5,
                    kill_tail=30.0, wait_bound=120.0, max_attempts=3, seed=11):
    rng = random.Random(seed)
    svc = adtest.Service(db, REDIS_DB, HTTP_WORKERS=2, RECOMPUTE_WORKERS=workers,
                         RECOMPUTE_MAX_ATTEMPTS=max_attempts)
    recpipe.reset(db, svc.redis_url)
    svc.start()
    violations = []
    kills = []
    halt = threading.Event()
    master = svc.proc.pid

    def killer():
        krng = random.Random(seed + 1)
        while not halt.wait(krng.uniform(kill_min, kill_max)):
            pids = cl.pids_of(master, "recompute worker")
            if pids:
                victim = krng.choice(pids)
                if cl.kill(victim):
                    kills.append(victim)

    accepted, conflicts, other = [], 0, []
    kt = threading.Thread(target=killer, daemon=True)
    holder = PairHolder(db, seed + 2)
    try:
        holder.start()
        today = datetime.datetime.now(datetime.timezone.utc).date()
        kt.start()
        t0 = time.monotonic()
        while len(accepted) < runs and time.monotonic() - t0 < trigger_secs * 3 + 30:
            _sleep_until(t0 + trigger_secs * len(accepted) / runs)
            body = json.dumps(_random_scope(rng, today))
            status, _, raw = svc.request("POST", "/api/v1/recomputations", body=body,
                                         headers={"X-Management-Key": KEY,
                                                  "Content-Type": "application/json"})
            if status == 202:
                accepted.append(json.loads(raw)["data"]["id"])
            elif status == 409:
                conflicts += 1
            else:
                other.append((status, raw[:200]))
        t_triggered = time.monotonic()
        ids_sql = ",".join("'%s'" % i for i in accepted) or "NULL"

        def open_runs():
            return int(db.sql("SELECT count(*) FROM recompute_runs WHERE id IN (%s) AND status IN"
                              " ('pending', 'running')" % ids_sql)[0][0])

        while open_runs() and time.monotonic() - t_triggered < kill_tail:
            time.sleep(0.2)
        halt.set()
        kt.join(5)
        holder.stop()
        t_calm = time.monotonic()
        adtest.wait_until(lambda: open_runs() == 0, wait_bound, step=0.25)
        drain_s = time.monotonic() - t_calm
        rows = db.sql("SELECT id, status, attempts, coalesce(error_message, '') FROM recompute_runs"
                      " WHERE id IN (%s)" % ids_sql)
        by_status = {}
        for _, st, _, _ in rows:
            by_status[st] = by_status.get(st, 0) + 1
        lost = len(accepted) - sum(by_status.get(s, 0) for s in ("completed", "failed"))
        if lost:
            violations.append("%d accepted runs not final after %gs: %s" % (
                lost, wait_bound, [r for r in rows if r[1] not in ("completed", "failed")][:5]))
        wrong_fail = [r for r in rows if r[1] == "failed" and
                      (r[3] != "recompute worker crashed" or int(r[2]) != max_attempts)]
        if wrong_fail:
            violations.append("%d runs failed for another reason: %s" % (len(wrong_fail), wrong_fail[:5]))
        if other:
            violations.append("unexpected trigger answers: %s" % other[:5])
        audit_bad = db.sql(
            "SELECT r.id, r.status, count(*) FILTER (WHERE a.action = 'recompute.triggered'),"
            " count(*) FILTER (WHERE a.action = 'recompute.completed'),"
            " count(*) FILTER (WHERE a.action = 'recompute.failed') FROM recompute_runs r LEFT JOIN"
            " audit_entries a ON a.resource_id = r.id::text WHERE r.id IN (%s) GROUP BY 1, 2"
            " HAVING count(*) FILTER (WHERE a.action = 'recompute.triggered') <> 1 OR"
            " count(*) FILTER (WHERE a.action = 'recompute.completed') <> (r.status = 'completed')::int"
            " OR count(*) FILTER (WHERE a.action = 'recompute.failed') <> (r.status = 'failed')::int"
            % ids_sql)
        if audit_bad:
            violations.append("%d runs with wrong audit entries: %s" % (len(audit_bad), audit_bad[:5]))
        # A worker killed between its final state change and the lock release leaves the scope
        # lock behind (until RECOMPUTE_LOCK_TTL). That is allowed only because the trigger's
        # stale-lock rule (DATA.md §7.5) ignores a lock whose run is final: prove it.
        locks = adtest.redis_cli(svc.redis_url, "KEYS", "recompute:lock:*").split()
        stale_locks = []
        for key in locks:
            _, _, slug, window, f, t = key.split(":")
            owner = adtest.redis_cli(svc.redis_url, "GET", key)
            st = db.sql("SELECT status FROM recompute_runs WHERE id::text = '%s'" % owner)
            if not st or st[0][0] not in ("completed", "failed"):
                violations.append("scope lock %s held by run %s in state %s" % (key, owner, st))
                continue
            body = json.dumps({"report_slug": slug, "window": window, "requested_by": "chaos",
                               "date_from": "%s-%s-%s" % (f[:4], f[4:6], f[6:]),
                               "date_to": "%s-%s-%s" % (t[:4], t[4:6], t[6:])})
            status, _, raw = svc.request("POST", "/api/v1/recomputations", body=body, headers={
                "X-Management-Key": KEY, "Content-Type": "application/json"})
            if status != 202:
                violations.append("stale scope lock %s blocked a new trigger: %s %s" % (key, status, raw[:200]))
            else:
                stale_locks.append(json.loads(raw)["data"]["id"])
        for rid in stale_locks:
            recpipe.wait_status(db, rid, "completed", 30)
        diff = snapshot_diff(db)
        if diff:
            violations.append("%d snapshot rows differ from the ground truth: %s" % (len(diff), diff[:5]))
        api_bad = api_truth_mismatches(svc, db)
        if api_bad:
            violations.append("report results differ from the ground truth: %s" % api_bad)
        master_alive = svc.proc.poll() is None
        if not master_alive:
            violations.append("master died")
        backoffs = svc.logs().count("respawning in")
        rc = svc.stop()
        if rc != 0:
            violations.append("stop after recompute chaos exited %s" % rc)
    finally:
        halt.set()
        holder.stop()
        svc.stop()
    attempts = db.sql("SELECT coalesce(sum(attempts), 0), coalesce(max(attempts), 0) FROM"
                      " recompute_runs WHERE id IN (%s)" % ids_sql)[0]
    figures = [
        ("2 recompute chaos: runs accepted / 409 retried", "%d / %d" % (len(accepted), conflicts), ""),
        ("2 workers / SIGKILLs / back-off delays / rebuild stalls", "%d / %d / %d / %d" % (
            workers, len(kills), backoffs, holder.holds), ""),
        ("2 completed / failed (crash exhaustion)", "%d / %d" % (by_status.get("completed", 0),
                                                                 by_status.get("failed", 0)), ""),
        ("2 worker starts (sum of attempts, max)", "%s (max %s)" % tuple(attempts), ""),
        ("2 drain after the last kill", "%.1f s" % drain_s, ""),
        ("2 scope locks left behind by a kill (re-trigger got 202)", str(len(locks)), ""),
        ("2 lost runs", str(lost), ("0", lost == 0)),
        ("2 wrong snapshot rows / wrong report results", "%d / %d" % (len(diff), len(api_bad)),
         ("0 / 0", not diff and not api_bad)),
    ]
    return figures, violations, {"accepted": len(accepted), "lost": lost}


# ---- 3. dependency outages under load --------------------------------------------------------

def _first_after(samples, t, pred):
    for ts, v in samples:
        if ts >= t and pred(v):
            return ts - t
    return None


def _stable_after(samples, t, pred):
    """Seconds after t from which every sample satisfies pred (None if the last one does not)."""
    last_bad = None
    for ts, v in samples:
        if ts >= t and not pred(v):
            last_bad = ts
    if samples and samples[-1][0] >= t and not pred(samples[-1][1]):
        return None
    return 0.0 if last_bad is None else last_bad - t


def outages(down=10.0, conns=64, gap=5.0, seed=13):
    violations = []
    pg = privatestack.PrivatePostgres()
    redis = privatestack.PrivateRedis()
    svc = None
    try:
        db = privatestack.PrivateDatabase(pg)
        svc = adtest.Service(db, REDIS_URL=redis.url(0), HTTP_WORKERS=2, RECOMPUTE_WORKERS=1).start()
        assert adtest.wait_until(lambda: svc.get_json("/api/v1/health")[0] == 200, 10), svc.logs()
        _warm(svc)
        master = svc.proc.pid
        kids_before = cl.children(master)
        health = cl.Poller(lambda: svc.request("GET", "/api/v1/health", timeout=5)[0], 0.05)
        total = 2 + down + gap + down + gap
        load = cl.Load(svc.port, conns, total, seed=seed)
        health.start()

        _sleep_until(load.t0 + 2)
        t_r_stop = time.monotonic()
        redis.stop()
        t_r_down = time.monotonic()
        # While Redis is down: new events and a recompute that completes without any version bump.
        time.sleep(min(1.0, down / 4))
        today = str(datetime.datetime.now(datetime.timezone.utc).date())
        db.sql("INSERT INTO analytics_events (source_id, external_ref, entity_id, status,"
               " processing_ms, amount_cents, occurred_at) SELECT (SELECT min(id) FROM event_sources),"
               " 'chaos-' || g, 'entity-chaos', 'failed', 1, 1, now() FROM generate_series(1, 7) g")
        run_ids = []
        for window in ("day", "week"):
            st, _, raw = svc.request("POST", "/api/v1/recomputations", headers={
                "X-Management-Key": KEY, "Content-Type": "application/json"}, body=json.dumps(
                {"report_slug": "status-counts", "window": window, "date_from": today, "date_to": today}))
            if st != 202:
                violations.append("trigger while Redis is down answered %s %s" % (st, raw[:200]))
            else:
                run_ids.append(json.loads(raw)["data"]["id"])
        for rid in run_ids:
            recpipe.wait_status(db, rid, "completed", max(2.0, down - 2))
        _sleep_until(t_r_down + down)
        redis.start()
        t_r_up = time.monotonic()

        _sleep_until(t_r_up + gap - 1)
        # No stale cached result: the pre-outage entry of this report survived in Redis (SHUTDOWN
        # SAVE) and must not be served after the recompute that completed during the outage.
        expect_failed = int(db.sql("SELECT count(*) FROM analytics_events WHERE status = 'failed'")[0][0])
        stale = 0
        for _ in range(6):
            st, body = svc.get_json(cl.CACHED_PATHS[0])
            got = {r["status"]: r["event_count"] for r in body["data"]["rows"]} if st == 200 else {}
            if got.get("failed") != expect_failed:
                stale += 1
        if stale:
            violations.append("%d of 6 reads after the Redis outage served a stale result" % stale)

        _sleep_until(t_r_up + gap)
        t_p_stop = time.monotonic()
        pg.stop()
        t_p_down = time.monotonic()
        _sleep_until(t_p_down + down)
        pg.start()
        t_p_up = time.monotonic()
        recs = load.results()
        # The health check shares each worker's PostgreSQL pool with the reads (1 s limit): under
        # ASan with the pool saturated by the load's last requests a ping can time out after the
        # outage. Judge the return to 200 on the samples up to 5 s after the load ended.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not (health.samples and health.samples[-1][1] == 200):
            time.sleep(0.05)
        health.stop()

        kids_after = cl.children(master)
        master_alive = svc.proc.poll() is None
        crashes = sum(svc.logs().count(s) for s in ("killed by signal", "exited with status"))
        if not master_alive:
            violations.append("master died")
        if crashes or kids_after != kids_before:
            violations.append("children restarted during the outages (%d exits): %s -> %s"
                              % (crashes, kids_before, kids_after))
        rc = svc.stop()
        if rc != 0:
            violations.append("stop after the outages exited %s" % rc)
    finally:
        if svc is not None:
            svc.stop()
        pg.destroy()
        redis.destroy()

    hs = health.samples
    r_during = cl.summarize(recs, t_r_stop, t_r_up)
    if r_during["non2xx"] or r_during["conn_errors"]:
        violations.append("reads failed while Redis was down: %d non-2xx %s, %d connection errors"
                          % (r_during["non2xx"], r_during["statuses"], r_during["conn_errors"]))
    p_during = cl.summarize(recs, t_p_down, t_p_up)
    ok = lambda r: 200 <= r[1] < 300
    after_p = [r for r in recs if r[0] >= t_p_up]
    last_bad = max((r[0] for r in after_p if not ok(r)), default=None)
    read_recovery = 0.0 if last_bad is None else last_bad - t_p_up
    after_r = [r for r in recs if r[0] >= t_r_up and r[4]]
    cache_back = after_r[0][0] - t_r_up if after_r else None
    tail = cl.summarize(recs, t_p_up + 2.0)
    if tail["requests"] and (tail["non2xx"] or tail["conn_errors"]):
        violations.append("reads still failing 2 s after PostgreSQL returned: %s" % tail)
    flips = {
        "redis down": _first_after(hs, t_r_down, lambda v: v == 503),
        "redis up": _stable_after([s for s in hs if s[0] < t_p_stop], t_r_up, lambda v: v == 200),
        "pg down": _first_after(hs, t_p_down, lambda v: v == 503),
        "pg up": _stable_after(hs, t_p_up, lambda v: v == 200),
    }
    for k in ("redis up", "pg up"):
        if flips[k] is None:
            violations.append("health did not return to 200 after %s" % k)
    for k in ("redis down", "pg down"):
        if flips[k] is None:
            violations.append("health never reported 503 during %s" % k)
    worst_flip = max((v for v in flips.values() if v is not None), default=float("nan"))
    fmt = lambda v: "never" if v is None else "%.2f s" % v
    figures = [
        ("3 outages: down time / connections", "%gs each / %d" % (down, conns), ""),
        ("3 reads while Redis down: 2xx / other", "%d / %d" % (r_during["ok"], r_during["requests"] - r_during["ok"]),
         ("all 200", r_during["ok"] == r_during["requests"])),
        ("3 reads while PostgreSQL down: 2xx / 500 / conn errors / p99",
         "%d / %d / %d / %.0f ms" % (p_during["ok"], p_during["non2xx"], p_during["conn_errors"], p_during["p99_ms"]), ""),
        ("3 health flip: redis down / up, pg down / up", " / ".join(fmt(flips[k]) for k in
                                                                   ("redis down", "redis up", "pg down", "pg up")),
         ("<= 1 s", worst_flip <= 1.0)),
        ("3 cache hits again after Redis returned", fmt(cache_back), ("<= 2 s", cache_back is not None and cache_back <= 2.0)),
        ("3 reads all 2xx again after PostgreSQL returned", "%.2f s" % read_recovery, ("<= 2 s", read_recovery <= 2.0)),
        ("3 stale results after recovery / restarts", "%d / %d" % (stale, crashes), ("0 / 0", stale == 0 and crashes == 0)),
    ]
    return figures, violations, {"read_recovery": read_recovery, "flips": flips, "cache_back": cache_back}


# ---- 4. lifecycle under load -----------------------------------------------------------------

def lifecycle(db, conns=64, workers=4, shutdown_timeout=5.0, settle=3.0, seed=17):
    violations = []
    envfile = "/tmp/analyticsd-chaos-%d.env" % os.getpid()
    with open(envfile, "w") as f:
        f.write("APP_VERSION=chaos-before\n")
    svc = adtest.Service(db, REDIS_DB, HTTP_WORKERS=workers,
                         HTTP_SHUTDOWN_TIMEOUT="%gs" % shutdown_timeout)
    svc.start(["--config", envfile])
    try:
        _warm(svc)
        master = svc.proc.pid
        old = set(cl.pids_of(master, "http worker"))
        total = 1.5 + 10 + settle + shutdown_timeout + 2
        load = cl.Load(svc.port, conns, total, seed=seed)
        with open(envfile, "w") as f:
            f.write("APP_VERSION=chaos-after\n")
        _sleep_until(load.t0 + 1.5)
        t_hup = time.monotonic()
        svc.signal(signal.SIGHUP)
        swapped = adtest.wait_until(lambda: not (set(cl.pids_of(master, "http worker")) & old)
                                    and len(cl.pids_of(master, "http worker")) == workers, 10, step=0.01)
        reload_s = time.monotonic() - t_hup
        if not swapped:
            violations.append("SIGHUP: old generation still serving after 10 s")
        time.sleep(settle)
        t_term = time.monotonic()
        svc.signal(signal.SIGTERM)
        try:
            rc = svc.proc.wait(shutdown_timeout + 5)
        except Exception:
            rc = None
        stop_s = time.monotonic() - t_term
        time.sleep(0.5)
        load.stop()
        recs = load.results()
        logs = svc.logs()
    finally:
        svc.stop()
        os.unlink(envfile)
    hup = cl.summarize(recs, t_hup, t_term)
    if hup["conn_errors"] or hup["non2xx"]:
        violations.append("SIGHUP under load: %d connection errors %s, %d non-2xx %s" % (
            hup["conn_errors"], hup["errors"], hup["non2xx"], hup["statuses"]))
    inflight = [r for r in recs if r[0] - r[2] < t_term <= r[0]]
    dropped = [r for r in inflight if r[1] < 0]
    if dropped:
        violations.append("SIGTERM: %d of %d in-flight requests got no response (%s)" % (
            len(dropped), len(inflight), sorted({cl.ERR_NAMES[r[1]] for r in dropped})))
    if rc != 0:
        violations.append("SIGTERM under load: exit status %s after %.2f s" % (rc, stop_s))
    if stop_s > shutdown_timeout + 0.5:
        violations.append("SIGTERM: exit took %.2f s (HTTP_SHUTDOWN_TIMEOUT %gs)" % (stop_s, shutdown_timeout))
    after = cl.summarize(recs, t_term)
    figures = [
        ("4 lifecycle: connections / workers", "%d / %d" % (conns, workers), ""),
        ("4 SIGHUP: requests / refused or reset / non-2xx", "%d / %d / %d" % (
            hup["requests"], hup["conn_errors"], hup["non2xx"]), ("0 / 0", not hup["conn_errors"] and not hup["non2xx"])),
        ("4 SIGHUP: new generation serving after", "%.2f s" % reload_s, ""),
        ("4 SIGTERM: in-flight requests answered", "%d / %d" % (len(inflight) - len(dropped), len(inflight)),
         ("all", not dropped)),
        ("4 SIGTERM: exit status / time (timeout %gs)" % shutdown_timeout, "%s / %.2f s" % (rc, stop_s),
         ("0 within timeout", rc == 0 and stop_s <= shutdown_timeout + 0.5)),
        ("4 after SIGTERM: answered / refused / reset", "%d / %d / %d" % (
            after["ok"] + after["non2xx"], after["errors"]["refused"], after["errors"]["reset"]), ""),
    ]
    drained = logs.count("drained; exiting")
    return figures, violations, {"drained_lines": drained}
