#!/usr/bin/env python3
"""bench/lib/benchlib.py: the Python 3 (stdlib only) helpers of bench/run, one subcommand each.

Runs in the shell of whoever started bench/run, as short-lived child processes:

  freeport                          a free TCP port on 127.0.0.1
  wrk-parse FILE                    "rps p50_ms p99_ms non2xx errors" from `wrk --latency` output
  pgbench-parse FILE                "tps failed" from pgbench output
  rss MASTER_PID                    "role<TAB>pid<TAB>VmRSS_KiB" for the master and each child
  rebuild-sql MODE FROM TO [PAIRS]  a psql script rebuilding the pairs (MODE raw|ours), timed
  recompute-service ...             trigger runs over HTTP, wait for them, print the wall time
  dispatch-probe ...                trigger one run, poll until completed, print ms
  report RESULTS FACTS              the final table (medians, ratios, PASS/MISS) of benchmarks 1-8

Results are appended by bench/run to a TSV file, one measurement per line: "key<TAB>value".
Every loop here is bounded in time.
"""

import http.client
import json
import os
import re
import socket
import statistics
import sys
import time

# ---- small helpers ------------------------------------------------------------------------------


def die(msg):
    print("benchlib: %s" % msg, file=sys.stderr)
    sys.exit(1)


def to_ms(text):
    """wrk latency '1.23ms' / '850.00us' / '1.02s' / '2.00m' -> milliseconds."""
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError("bad latency %r" % text)
    v = float(m.group(1))
    return v * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[m.group(2)]


# ---- wrk / pgbench output --------------------------------------------------------------------


def wrk_parse(path):
    text = open(path, encoding="utf-8", errors="replace").read()
    rps = re.search(r"Requests/sec:\s*([0-9.]+)", text)
    if not rps:
        die("no Requests/sec in %s" % path)
    pct = dict(re.findall(r"^\s*(50|99)%\s+([0-9.]+(?:us|ms|s|m))\s*$", text, re.M))
    if "50" not in pct or "99" not in pct:
        die("no latency distribution in %s (run wrk with --latency)" % path)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    nerr = sum(int(x) for x in errs.groups()) if errs else 0
    print("%s %.3f %.3f %d %d" % (rps.group(1), to_ms(pct["50"]), to_ms(pct["99"]),
                                  int(non2xx.group(1)) if non2xx else 0, nerr))


def pgbench_parse(path):
    text = open(path, encoding="utf-8", errors="replace").read()
    tps = re.search(r"tps = ([0-9.]+) \((?:without initial connection time|excluding connections establishing)\)", text)
    if not tps:
        tps = re.search(r"tps = ([0-9.]+)", text)
    if not tps:
        die("no tps in %s" % path)
    failed = re.search(r"number of failed transactions: (\d+)", text)
    print("%s %d" % (tps.group(1), int(failed.group(1)) if failed else 0))


# ---- RSS ----------------------------------------------------------------------------------------


def proc_title(pid):
    try:
        raw = open("/proc/%d/cmdline" % pid, "rb").read()
    except OSError:
        return None
    return raw.split(b"\0")[0].decode("utf-8", "replace").strip()


def proc_rss_kib(pid):
    try:
        for line in open("/proc/%d/status" % pid):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def proc_ppid(pid):
    try:
        stat = open("/proc/%d/stat" % pid).read()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2:].split()[1])


def rss(master_pid):
    """Master and direct children, by process title (analyticsd: http worker N, …)."""
    master_pid = int(master_pid)
    rows = [(proc_title(master_pid) or "master", master_pid)]
    for name in os.listdir("/proc"):
        if name.isdigit() and proc_ppid(int(name)) == master_pid:
            rows.append((proc_title(int(name)) or "?", int(name)))
    for title, pid in sorted(rows, key=lambda r: r[0]):
        kib = proc_rss_kib(pid)
        if kib is not None:
            role = title[len("analyticsd: "):] if title.startswith("analyticsd: ") else title
            print("%s\t%d\t%d" % (role, pid, kib))


# ---- rebuild SQL (psql) -------------------------------------------------------------------------

# The dimension of each report (DATA.md §6.2): select expression, extra FROM, group expression.
REPORTS = {
    "volume-by-period": ("'source', s.slug", " JOIN event_sources s ON s.id = e.source_id", "s.slug"),
    "status-counts": ("'status', e.status", "", "e.status"),
    "top-entities": ("'entity_id', e.entity_id", "", "e.entity_id"),
}
ALL_PAIRS = ["%s:%s" % (r, w) for r in REPORTS for w in ("day", "week")]


def rebuild_block(mode, slug, win, dfrom, dto):
    """One rebuild transaction of (slug, win) over dfrom..dto.

    mode 'ours': the three statements of common/rebuild.c (advisory lock, DELETE, INSERT … SELECT
    … GROUP BY wrapped in a counting CTE) — the stand-in for the service until
    POST /api/v1/recomputations works; KEEP IN SYNC with common/rebuild.c.
    mode 'raw': the bare DELETE + INSERT … SELECT … GROUP BY, the reference of benchmark 3.
    """
    sel, join, grp = REPORTS[slug]
    lo = "(date_trunc('%s', '%s'::date::timestamp) AT TIME ZONE 'UTC')" % (win, dfrom)
    step = "interval '1 day'" if win == "day" else "interval '7 days'"
    hi = "((date_trunc('%s', '%s'::date::timestamp) + %s) AT TIME ZONE 'UTC')" % (win, dto, step)
    bucket = "date_trunc('%s', e.occurred_at, 'UTC')" % win
    insert = ("INSERT INTO metric_snapshots (report_slug, window_name, bucket_start, dimension_key,"
              " dimension_value, metric_name, metric_value, computed_at, run_id)"
              " SELECT '%s', '%s', %s, %s, 'event_count', count(*), now(), NULL::uuid"
              " FROM analytics_events e%s WHERE e.occurred_at >= %s AND e.occurred_at < %s"
              " GROUP BY %s, %s" % (slug, win, bucket, sel, join, lo, hi, bucket, grp))
    delete = ("DELETE FROM metric_snapshots WHERE report_slug = '%s' AND window_name = '%s'"
              " AND bucket_start >= %s AND bucket_start < %s" % (slug, win, lo, hi))
    out = ["BEGIN;"]
    if mode == "ours":
        out.append("SELECT pg_advisory_xact_lock(hashtextextended('recompute:%s:%s', 0)) \\g /dev/null"
                   % (slug, win))
        out.append(delete + ";")
        out.append("WITH ins AS (%s RETURNING bucket_start) SELECT count(*), count(DISTINCT bucket_start)"
                   " FROM ins \\g /dev/null" % insert)
    else:
        out.append(delete + ";")
        out.append(insert + ";")
    out.append("COMMIT;")
    return "\n".join(out)


def rebuild_sql(mode, dfrom, dto, pairs="all", warm=""):
    """The psql script of the rebuilds, printing the server-side milliseconds they took. With
    warm = "warm" the same rebuilds run once untimed first, in the same session: a fresh
    backend's first statements pay for catalog and plan caches, which the service's long-lived
    connections do not (the one-day dispatch comparison needs this; the 1M-event rebuilds do
    not notice)."""
    if mode not in ("raw", "ours"):
        die("rebuild-sql mode must be raw or ours")
    plist = ALL_PAIRS if pairs == "all" else pairs.split(",")
    for p in plist:
        slug, win = p.split(":")
        if slug not in REPORTS or win not in ("day", "week"):
            die("bad pair %r" % p)
    blocks = [rebuild_block(mode, p.split(":")[0], p.split(":")[1], dfrom, dto) for p in plist]
    print("\\set ON_ERROR_STOP 1\n\\set QUIET 1\nSET TimeZone = 'UTC';")
    if warm == "warm":
        print("\n".join(blocks))
    print("SELECT clock_timestamp() AS bench_t0 \\gset")
    for b in blocks:
        print(b)
    print("\\pset tuples_only on\n\\pset format unaligned")
    print("SELECT round(extract(epoch FROM clock_timestamp() - :'bench_t0'::timestamptz) * 1000, 3);")


# ---- HTTP (recompute through the service) -------------------------------------------------------


class Api:
    def __init__(self, port, key):
        self.port, self.key = int(port), key
        self.conn = None

    def call(self, method, path, body=None):
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                self.conn.connect()
                # No Nagle: a poll must not wait for a delayed ACK (40 ms on Linux).
                self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                hdrs = {"X-Management-Key": self.key}
                data = None
                if body is not None:
                    data = json.dumps(body).encode()
                    hdrs["Content-Type"] = "application/json"
                self.conn.request(method, path, body=data, headers=hdrs)
                resp = self.conn.getresponse()
                raw = resp.read()
                try:
                    doc = json.loads(raw)
                except ValueError:
                    doc = None
                return resp.status, doc
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        return None, None

    def trigger(self, slug, win, dfrom, dto):
        st, doc = self.call("POST", "/api/v1/recomputations",
                            {"report_slug": slug, "window": win, "date_from": dfrom, "date_to": dto,
                             "requested_by": "bench"})
        if st != 202 or not doc or "data" not in doc:
            die("trigger %s/%s answered %s %s" % (slug, win, st, doc))
        return doc["data"]["id"]

    def status(self, run_id):
        st, doc = self.call("GET", "/api/v1/recomputations/" + run_id)
        if st != 200 or not doc:
            die("run %s answered %s" % (run_id, st))
        return doc["data"]


def iso_ms(text):
    """'2026-03-14T01:17:49.123456Z' -> epoch milliseconds (float)."""
    import datetime
    base, _, frac = text.rstrip("Z").partition(".")
    t = datetime.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return t.timestamp() * 1000.0 + (float("0." + frac) * 1000.0 if frac else 0.0)


def wait_runs(api, ids, poll_s, timeout_s):
    deadline = time.monotonic() + timeout_s
    left, done = set(ids), {}
    while left:
        if time.monotonic() > deadline:
            die("runs did not finish within %d s: %s" % (timeout_s, sorted(left)))
        for rid in sorted(left):
            run = api.status(rid)
            if run["status"] in ("completed", "failed"):
                if run["status"] == "failed":
                    die("run %s failed: %s" % (rid, run.get("error_message")))
                done[rid] = (time.monotonic(), run)
                left.discard(rid)
        if left:
            time.sleep(poll_s)
    return done


def recompute_service(port, key, dfrom, dto, pairs="all", timeout_s="600"):
    """Triggers every pair at once, waits; prints total wall ms (first POST → last completed)."""
    api = Api(port, key)
    plist = ALL_PAIRS if pairs == "all" else pairs.split(",")
    t0 = time.monotonic()
    ids = [api.trigger(*p.split(":"), dfrom, dto) for p in plist]
    done = wait_runs(api, ids, 0.005, int(timeout_s))
    t1 = max(t for t, _ in done.values())
    print("%.3f" % ((t1 - t0) * 1000.0))


def dispatch_probe(port, key, slug, win, day, timeout_s="60"):
    """One one-day run: prints 'total_ms service_rebuild_ms' (client trigger → seen completed;
    finished_at − started_at as stored by the service)."""
    api = Api(port, key)
    api.call("GET", "/api/v1/recomputations?limit=1")  # warm the keep-alive connection
    t0 = time.monotonic()
    rid = api.trigger(slug, win, day, day)
    done = wait_runs(api, [rid], 0.001, int(timeout_s))
    t1, run = done[rid]
    svc = iso_ms(run["finished_at"]) - iso_ms(run["started_at"])
    print("%.3f %.3f" % ((t1 - t0) * 1000.0, svc))


# ---- the final table ----------------------------------------------------------------------------


def load_results(path):
    res = {}
    if os.path.exists(path):
        for line in open(path):
            parts = line.rstrip("\n").split("\t")
            if len(parts) == 2:
                try:
                    res.setdefault(parts[0], []).append(float(parts[1]))
                except ValueError:
                    pass
    return res


def load_facts(path):
    facts = {}
    if os.path.exists(path):
        for line in open(path):
            k, _, v = line.rstrip("\n").partition("\t")
            facts[k] = v
    return facts


def med(res, key):
    vals = res.get(key)
    return statistics.median(vals) if vals else None


def fmt(v, unit=""):
    if v is None:
        return "n/a"
    if abs(v) >= 1000:
        return "%.0f%s" % (v, unit)
    if abs(v) >= 100:
        return "%.1f%s" % (v, unit)
    return "%.2f%s" % (v, unit)


def verdict(value, target, higher_is_better=True):
    if value is None or target is None:
        return "n/a"
    ok = value >= target if higher_is_better else value <= target
    return "PASS" if ok else "MISS"


def report(results_path, facts_path):
    res, facts = load_results(results_path), load_facts(facts_path)
    rows = []  # (benchmark, case, ours, reference, ratio, target, verdict)

    def add(*r):
        rows.append(tuple("" if x is None else x for x in r))

    rounds = facts.get("rounds", "?")
    tag = facts.get("read_note", "")
    # 1. cached reads
    for c in facts.get("conns", "").split():
        o, h = "cached.c%s.ours" % c, "cached.c%s.h2o" % c
        ors, hrs = med(res, o + ".rps"), med(res, h + ".rps")
        if ors is None and hrs is None:
            continue  # not run (--only)
        op50, hp50 = med(res, o + ".p50"), med(res, h + ".p50")
        op99, hp99 = med(res, o + ".p99"), med(res, h + ".p99")
        ratio = ors / hrs if ors and hrs else None
        add("1 cached reads%s" % tag, "c=%s req/s" % c, fmt(ors), fmt(hrs), fmt(ratio), ">= 0.70",
            verdict(ratio, 0.7))
        add("", "c=%s p50 ms" % c, fmt(op50), fmt(hp50), fmt(op50 / hp50 if op50 and hp50 else None), "", "")
        pr = op99 / hp99 if op99 and hp99 else None
        add("", "c=%s p99 ms" % c, fmt(op99), fmt(hp99), fmt(pr), "<= 2.00", verdict(pr, 2.0, False))
        rg = med(res, "cached.c%s.redis_get.rps" % c)
        if rg:  # informative: the Redis round trip alone, which every cached read includes
            add("", "c=%s vs Redis GET alone (redis-benchmark)" % c, fmt(ors), fmt(rg),
                fmt(ors / rg if ors else None), "", "")
        ocpu, hcpu = med(res, o + ".cpu_us"), med(res, h + ".cpu_us")
        if ocpu and hcpu:  # informative: steadier than req/s when neighbours load the machine
            add("", "c=%s machine CPU us/req (ratio h2o/ours)" % c, fmt(ocpu), fmt(hcpu),
                fmt(hcpu / ocpu), "", "")
        bad = sum(res.get(o + ".bad", [0]))
        if bad:
            add("", "c=%s non-2xx/errors" % c, "%d" % bad, "", "", "0", "MISS")
    # 2. uncached reads
    for c in facts.get("uncached_conns", "").split():
        o, p = med(res, "uncached.c%s.ours.rps" % c), med(res, "uncached.c%s.pgbench.tps" % c)
        if o is None and p is None:
            continue  # not run (--only)
        ratio = o / p if o and p else None
        add("2 uncached reads%s" % tag, "c=%s req/s vs tps" % c, fmt(o), fmt(p), fmt(ratio), ">= 0.80",
            verdict(ratio, 0.8))
        o99 = med(res, "uncached.c%s.ours.p99" % c)
        if o99 is not None:
            add("", "c=%s p99 ms (ours)" % c, fmt(o99), "", "", "", "")
        bad = sum(res.get("uncached.c%s.ours.bad" % c, [0]))
        if bad:
            add("", "c=%s non-2xx/errors" % c, "%d" % bad, "", "", "0", "MISS")
    # 3. recompute
    for n in facts.get("sizes", "").split():
        o, r = med(res, "recompute.%s.ours.ms" % n), med(res, "recompute.%s.raw.ms" % n)
        ev = float(n) * 6
        oe = ev / (o / 1000.0) if o else None
        re_ = ev / (r / 1000.0) if r else None
        ratio = oe / re_ if oe and re_ else None
        via = facts.get("recompute_via.%s" % n, "")
        add("3 recompute %s ev%s" % (human(n), " (" + via + ")" if via else ""), "events/s (6 rebuilds)",
            fmt(oe), fmt(re_), fmt(ratio), ">= 0.80", verdict(ratio, 0.8))
        add("", "wall ms for 6 rebuilds", fmt(o), fmt(r), "", "", "")
    tot, raw1 = med(res, "dispatch.total.ms"), med(res, "dispatch.raw.ms")
    svc = med(res, "dispatch.svc.ms")
    ovh = tot - raw1 if tot is not None and raw1 is not None else None
    if facts.get("sizes", "").strip():  # benchmark 3 ran
        add("3 dispatch overhead", "trigger->completed minus rebuild, 1 day", fmt(ovh, " ms"),
            "", "", "< 20 ms", verdict(ovh, 20.0, False) if ovh is not None else "n/a")
    if tot is not None:
        add("", "trigger->completed / raw rebuild / svc rebuild ms", fmt(tot), fmt(raw1),
            "svc " + fmt(svc), "", "")
    # 4. memory
    for phase in ("idle", "load"):
        keys = sorted(k for k in res if k.startswith("rss.%s." % phase))
        for k in keys:
            role = k[len("rss.%s." % phase):]
            mib = max(res[k]) / 1024.0
            tgt, v = ("< 16 MiB", verdict(mib, 16.0, False)) if role.startswith("http worker") else ("", "")
            add("4 memory RSS (%s)" % phase if k == keys[0] else "", role, fmt(mib, " MiB"), "", "", tgt, v)
    # 5. scaling
    w1, w2 = med(res, "scaling.w1.rps"), med(res, "scaling.w2.rps")
    if w1 or w2:
        add("5 scaling (cached, c=%s)%s" % (facts.get("scaling_conns", "?"), tag),
            "req/s HTTP_WORKERS=2 vs 1", fmt(w2), fmt(w1), fmt(w2 / w1 if w1 and w2 else None),
            "> 1 (info)", "")
    # 6. SMS ingestion
    if facts.get("ingest_events"):
        n = float(facts["ingest_events"])
        o, a, b = med(res, "ingest.ours.ms"), med(res, "ingest.sql.ms"), med(res, "ingest.nats.ms")
        oe, ae, be = [n / (ms / 1000.0) if ms else None for ms in (o, a, b)]
        lo = min(x for x in (ae, be) if x) if ae or be else None
        label = "6 SMS ingest %s ev (NATS -> worker -> PG)" % human(n)
        add(label, "events/s vs PostgreSQL alone (psql replay)", fmt(oe), fmt(ae),
            fmt(oe / ae if oe and ae else None), "", "")
        add("", "events/s vs NATS alone (cnats fetch + ack)", fmt(oe), fmt(be),
            fmt(oe / be if oe and be else None), "", "")
        ratio = oe / lo if oe and lo else None
        add("", "events/s vs min(PostgreSQL, NATS)", fmt(oe), fmt(lo), fmt(ratio), ">= 0.80",
            verdict(ratio, 0.8))
        add("", "events/s (absolute)", fmt(oe), "", "", ">= 50000", verdict(oe, 50000.0))
        add("", "wall s: ours / psql / nats", fmt(o / 1000.0 if o else None),
            fmt(a / 1000.0 if a else None), "nats " + fmt(b / 1000.0 if b else None), "", "")
        # Informative: where the CPU went, per 1,000 events (ours against the matching reference).
        for case, okey, rkey in (("CPU ms/1k ev: PostgreSQL backend (ours vs psql)",
                                  "ingest.ours.cpu.pg", "ingest.sql.cpu.pg"),
                                 ("CPU ms/1k ev: ingest worker vs cnats drain client",
                                  "ingest.ours.cpu.worker", "ingest.nats.cpu.client"),
                                 ("CPU ms/1k ev: nats-server (ours vs drain)",
                                  "ingest.ours.cpu.nats", "ingest.nats.cpu.nats")):
            ov, rv = med(res, okey), med(res, rkey)
            if ov is None and rv is None:
                continue
            ov = ov * 1000.0 / n if ov is not None else None
            rv = rv * 1000.0 / n if rv is not None else None
            add("", case, fmt(ov), fmt(rv), fmt(ov / rv if ov and rv else None), "", "")
        c = med(res, "ingest.consuming.ms")
        if c is not None:
            add("", "service start -> 'consuming' ms (not timed)", fmt(c), "", "", "", "")
        for key, case in (("idle", "ingest worker RSS idle (1 s after drain)"),
                          ("peak", "ingest worker RSS peak (VmRSS every 100 ms)"),
                          ("hwm", "ingest worker VmHWM (kernel peak, info)")):
            vals = res.get("ingest.rss." + key)
            if not vals:
                continue
            mib = max(vals) / 1024.0  # the worst round
            tgt, v = ("< 24 MiB", verdict(mib, 24.0, False)) if key != "hwm" else ("", "")
            add("6 ingest memory" if key == "idle" else "", case, fmt(mib, " MiB"), "", "", tgt, v)
        for who, case in (("ours", "counters after ours (see note)"),
                          ("sql", "counters after psql replay (see note)")):
            text = facts.get("note.ingest.check.%s" % who)
            if text:
                ok = "MISMATCH" not in text
                add("6 ingest exactness" if who == "ours" else "", case, "OK" if ok else "MISMATCH",
                    "", "", "exact", "PASS" if ok else "MISMATCH")

    # 7. SMS reads
    if facts.get("sms_rounds"):
        cc = facts.get("sms_cached_conns", "?")
        for route, label in (("summary", "7 SMS summary, 30 days"),
                             ("operators", "7 SMS operator list, 30 days")):
            for c in facts.get("sms_conns", "").split():
                o = "sms.%s.uncached.c%s.ours" % (route, c)
                p = "sms.%s.uncached.c%s.pgbench" % (route, c)
                ors, ptps = med(res, o + ".steady"), med(res, p + ".tps")
                if ors is None and ptps is None:
                    continue
                ratio = ors / ptps if ors and ptps else None
                add(label, "uncached c=%s req/s vs pgbench tps (same SQL)" % c, fmt(ors), fmt(ptps),
                    fmt(ratio), ">= 0.80", verdict(ratio, 0.8))
                # Informative: wrk's and pgbench's own figures, over the whole run (wrk loses the
                # requests in flight at its end, pgbench its backends' slow first calls).
                wall, pall = med(res, o + ".rps"), med(res, p + ".tps_all")
                if wall is not None and pall is not None:
                    add(label, "uncached c=%s whole run: wrk req/s vs pgbench's tps" % c, fmt(wall),
                        fmt(pall), fmt(wall / pall if pall else None), "", "")
                add(label, "uncached c=%s p50 / p99 ms (ours)" % c, fmt(med(res, o + ".p50")),
                    "", "p99 " + fmt(med(res, o + ".p99")), "", "")
                bad = sum(res.get(o + ".bad", [0])) + sum(res.get(
                    "sms.%s.uncached.c%s.pgbench.failed" % (route, c), [0]))
                if bad:
                    add(label, "uncached c=%s non-2xx/errors/failed" % c, "%d" % bad, "", "", "0", "MISS")
            o, h = "sms.%s.cached.c%s.ours" % (route, cc), "sms.%s.cached.c%s.h2o" % (route, cc)
            ors, hrs = med(res, o + ".rps"), med(res, h + ".rps")
            if ors is None and hrs is None:
                continue
            ratio = ors / hrs if ors and hrs else None
            add(label, "cached c=%s req/s vs h2o static" % cc, fmt(ors), fmt(hrs), fmt(ratio),
                ">= 0.70", verdict(ratio, 0.7))
            op99, hp99 = med(res, o + ".p99"), med(res, h + ".p99")
            add(label, "cached c=%s p99 ms (info)" % cc, fmt(op99), fmt(hp99),
                fmt(op99 / hp99 if op99 and hp99 else None), "", "")
            ocpu, hcpu = med(res, o + ".cpu_us"), med(res, h + ".cpu_us")
            if ocpu and hcpu:
                add(label, "cached c=%s machine CPU us/req (ratio h2o/ours)" % cc, fmt(ocpu),
                    fmt(hcpu), fmt(hcpu / ocpu), "", "")
            bad = sum(res.get(o + ".bad", [0]))
            if bad:
                add(label, "cached c=%s non-2xx/errors" % cc, "%d" % bad, "", "", "0", "MISS")
        p95, rp95 = med(res, "sms.metrics.ours.p95"), med(res, "sms.metrics.pgbench.p95")
        if p95 is not None:
            n = int(med(res, "sms.metrics.ours.n") or 0)
            label = "7 SMS operator metrics, 90 days"
            add(label, "uncached p95 ms, %d sequential (vs pgbench -c 1)" % n, fmt(p95), fmt(rp95),
                fmt(p95 / rp95 if rp95 else None), "< 20 ms", "PASS" if p95 < 20.0 else "MISS")
            p50, rp50 = med(res, "sms.metrics.ours.p50"), med(res, "sms.metrics.pgbench.p50")
            add(label, "uncached median ms (vs pgbench -c 1)", fmt(p50), fmt(rp50),
                fmt(p50 / rp50 if p50 and rp50 else None), "", "")
            add(label, "uncached max ms (vs pgbench -c 1)", fmt(med(res, "sms.metrics.ours.max")),
                fmt(med(res, "sms.metrics.pgbench.max")), "", "", "")

    # 8. change tracking and scheduled refresh
    if facts.get("refresh_events"):
        label = "8 refresh: COPY %s ev" % human(facts["refresh_events"])
        t, u = med(res, "refresh.copy.tracked.ms"), med(res, "refresh.copy.untracked.ms")
        ratio = t / u if t and u else None
        add(label, "wall ms, insert trigger present vs dropped", fmt(t), fmt(u), fmt(ratio),
            "<= 1.10", verdict(ratio, 1.10, False))
        tr, ur = res.get("refresh.copy.tracked.ms", []), res.get("refresh.copy.untracked.ms", [])
        if len(tr) == len(ur) and len(tr) > 1:  # the spread a busy machine gives the verdict
            pr = sorted(a / b for a, b in zip(tr, ur) if b)
            add(label, "per-round ratios, lowest .. highest (info)", "", "",
                "%.2f .. %.2f" % (pr[0], pr[-1]) if pr else "n/a", "", "")
        tc, uc = med(res, "refresh.copy.tracked.cpu"), med(res, "refresh.copy.untracked.cpu")
        if tc is not None and uc is not None:  # informative: barely moves with the machine's load
            add(label, "PostgreSQL backend CPU ms, present vs dropped (info)", fmt(tc), fmt(uc),
                fmt(tc / uc if uc else None), "", "")
        want, days = facts.get("refresh_expected_days"), res.get("refresh.copy.days", [])
        if want and days:  # every tracked load must have noted each day once
            ok = all(int(v) == int(want) for v in days) and not any(
                k.startswith("note.refresh.copy.check.") for k in facts)
            add(label, "days noted in event_change_days (each tracked load)", count_range(days),
                want, "", "exact", "PASS" if ok else "MISS")
    want = facts.get("refresh_expected_buckets")
    if want and res.get("refresh.incr.buckets"):
        label = "8 refresh: 1,000 late ev over 3 days"
        ib, fb = res["refresh.incr.buckets"], res.get("refresh.full.buckets", [])
        ok = all(int(v) == int(want) for v in ib)
        add(label, "buckets rebuilt: scheduler vs full 365-day (6 pairs)", count_range(ib),
            count_range(fb), "", "= %s" % want, "PASS" if ok else "MISS")
        add(label, "runs: scheduler vs full", count_range(res.get("refresh.incr.runs", [])),
            count_range(res.get("refresh.full.runs", [])), "", "", "")
        im, fm = med(res, "refresh.incr.ms"), med(res, "refresh.full.ms")
        add(label, "ms first start -> last finish (DB); ratio full/incr", fmt(im), fmt(fm),
            fmt(fm / im if im and fm else None), "(info)", "")

    last = None  # print each benchmark's label once
    for i, r in enumerate(rows):
        if r[0] and r[0] == last:
            rows[i] = ("",) + r[1:]
        elif r[0]:
            last = r[0]
    head = ("benchmark", "case", "ours", "reference", "ratio", "target", "result")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    line = "  ".join("%-*s" % (w, h) for w, h in zip(widths, head))
    parts = []
    if any(not r[0].startswith(("6 ", "7 ", "8 ")) for r in rows if r[0]):
        parts.append("medians of %s rounds; reference = h2o static / pgbench / raw SQL via psql"
                     % rounds)
    if facts.get("ingest_events"):
        parts.append("benchmark 6: medians of %s round(s); references = psql replay / cnats drain"
                     % facts["ingest_rounds"])
    if facts.get("sms_rounds"):
        parts.append("benchmark 7: medians of %s round(s); references = pgbench running the "
                     "route's statement / h2o static" % facts["sms_rounds"])
    if facts.get("refresh_events"):
        parts.append("benchmark 8: medians of %s rounds; references = the same COPY with the "
                     "insert trigger dropped / the full 365-day rebuild" % rounds)
    print("Results (%s)" % "; ".join(parts))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join("%-*s" % (w, str(c)) for w, c in zip(widths, r)).rstrip())
    for k in sorted(facts):
        if k.startswith("note."):
            print("note: " + facts[k])


def count_range(vals):
    """Counts of the rounds: '18', or 'lo-hi' when they differ."""
    if not vals:
        return "n/a"
    lo, hi = int(min(vals)), int(max(vals))
    return "%d" % lo if lo == hi else "%d-%d" % (lo, hi)


def human(n):
    n = int(float(n))
    if n % 1000000 == 0:
        return "%dM" % (n // 1000000)
    if n % 1000 == 0:
        return "%dk" % (n // 1000)
    return str(n)


def freeport():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])


COMMANDS = {
    "freeport": freeport,
    "wrk-parse": wrk_parse,
    "pgbench-parse": pgbench_parse,
    "rss": rss,
    "rebuild-sql": rebuild_sql,
    "recompute-service": recompute_service,
    "dispatch-probe": dispatch_probe,
    "report": report,
    "human": lambda n: print(human(n)),
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        die("usage: benchlib.py {%s} …" % "|".join(COMMANDS))
    COMMANDS[sys.argv[1]](*sys.argv[2:])
