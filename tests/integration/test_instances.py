"""tests/integration/test_instances.py: several `analyticsd serve` instances on one PostgreSQL
database and one Redis database act as one service (DATA.md §6.8, §6.9, §6.10, §7.2, §7.5;
API.md §4.5–§4.7, §6).

Two instances A and B (own ports, own process trees) share a scratch database and Redis db 14.
Proves, with real processes and nothing mocked:

- a run triggered on either instance is executed exactly once, by one of them: `completed`,
  `attempts` 1, one `recompute.completed` audit entry, no `recompute.failed` (20 scopes
  triggered half on A and half on B, both dispatching them);
- the cache invalidation of a recompute completed through A is seen by the very next read on B;
- a run left `pending` by an instance killed with SIGKILL (master and every child, no graceful
  path) is completed by the other one, started afterwards;
- a run left `running` by a killed instance is an orphan for the other instance's supervisor,
  which returns it to `pending` and completes it (attempt 2), whether it was already running
  (periodic scan) or is started after the kill (startup scan);
- a run handed back to `pending` by an instance's graceful stop is completed by the other one
  (attempt 1: the interrupted start is not counted).

No service log may contain a sanitizer report (the ASan/UBSan tree runs the same file).

- the report scheduler runs in one instance at a time and fails over: after the leader is
  killed outright, the other takes the leadership and schedules the next refresh, each
  scheduled run created and completed exactly once.
"""

import json
import os
import signal
import socket
import threading
import time

import adtest
import recpipe

DB = None
REDIS_DB = 14  # adtest.REDIS_DBS["test_instances"]
AUTH = {"X-Management-Key": "test-key", "Content-Type": "application/json"}
WAIT = 30  # generous: the ASan build on a loaded two-core machine


def instance(**env):
    base = dict(HTTP_WORKERS=2, RECOMPUTE_WORKERS=2)
    base.update(env)
    return adtest.Service(DB, redis_db=REDIS_DB, **base)


def reset():
    recpipe.reset(DB, adtest.redis_db_url(REDIS_DB))


def redis(*args):
    return adtest.redis_cli(adtest.redis_db_url(REDIS_DB), *args)


def trigger(svc, slug, window, date_from, date_to):
    """POST /api/v1/recomputations on svc; returns the run id of the 202."""
    body = json.dumps({"report_slug": slug, "window": window, "date_from": date_from,
                       "date_to": date_to, "requested_by": "instances-test"})
    status, _, data = svc.request("POST", "/api/v1/recomputations", body=body, headers=AUTH)
    assert status == 202, (status, data)
    run = json.loads(data)["data"]
    assert run["status"] == "pending" and run["attempts"] == 0, run
    return run["id"]


def api_run(svc, run_id):
    status, body = svc.get_json("/api/v1/recomputations/" + run_id, headers=AUTH)
    assert status == 200, (status, body)
    return body["data"]


def read(svc, path):
    status, body = svc.get_json(path)
    assert status == 200, (status, body)
    return body["data"]


def completed_exactly_once(run_id, attempts=1):
    """The run is completed after `attempts` worker starts, with one completion and no failure."""
    row = recpipe.run_row(DB, run_id)
    assert row["status"] == "completed" and row["attempts"] == attempts, (run_id, row)
    assert not row["finished_at_null"] and row["error_message"] == "<null>", (run_id, row)
    assert len(recpipe.audit(DB, run_id, "recompute.triggered")) == 1, run_id
    done = recpipe.audit(DB, run_id, "recompute.completed")
    assert len(done) == 1 and done[0][0] == "recompute-worker", (run_id, done)
    assert done[0][1]["rows_inserted"] == row["summary"]["rows_inserted"], (run_id, done, row)
    assert recpipe.audit(DB, run_id, "recompute.failed") == [], run_id
    return row


def kill_instance(svc, timeout=WAIT):
    """Kills an instance completely and abruptly, as a power cut would: no process of it gets to
    run any shutdown code. The master is stopped first (so it cannot respawn a child), then every
    child is stopped and killed (SIGKILL, so PR_SET_PDEATHSIG's SIGTERM never runs a graceful
    stop), then the master. Waits until every process is gone, their PostgreSQL sessions have
    ended (so their advisory locks are free) and the port refuses connections. Returns the pids."""
    master = svc.proc.pid
    os.kill(master, signal.SIGSTOP)
    children = sorted(svc.children())
    for pid in children:
        os.kill(pid, signal.SIGSTOP)
    for pid in children:
        os.kill(pid, signal.SIGKILL)
    os.kill(master, signal.SIGKILL)
    svc.proc.wait(timeout)
    pids = [master] + children
    assert adtest.wait_until(lambda: not any(adtest.alive(p) for p in children), timeout, step=0.05), \
        [p for p in children if adtest.alive(p)]

    def sessions():
        names = [r[0] for r in DB.sql("SELECT application_name FROM pg_stat_activity WHERE"
                                      " datname = current_database()")]
        return [n for n in names if n.rsplit(":", 1)[-1] in {str(p) for p in pids}]
    assert adtest.wait_until(lambda: not sessions(), timeout, step=0.1), sessions()
    try:
        socket.create_connection(("127.0.0.1", svc.port), timeout=2).close()
        raise AssertionError("port %d still accepts after the kill" % svc.port)
    except ConnectionRefusedError:
        pass
    no_sanitizer_report(svc)
    return pids


def no_sanitizer_report(svc):
    """A child that trips ASan/UBSan is respawned by the master, so only its log tells."""
    logs = svc.logs()
    for mark in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
        assert mark not in logs, "%s in the log:\n%s" % (mark, logs)


def stop_clean(svc):
    if svc is None or svc.proc is None:
        return
    if svc.proc.poll() is None:
        rc = svc.stop()
        assert rc == 0, "exit status %s\n%s" % (rc, svc.logs())
    no_sanitizer_report(svc)


def owner_instance(run_id, a, b):
    """'A' or 'B': the instance whose recompute worker's session is busy with run_id's rebuild
    (the worker waits in the rebuild behind the hook lock)."""
    busy = [pid for pid, state in recpipe.recompute_backend_pids(DB).items() if state == "active"]
    owners = ["A" for p in busy if a is not None and p in a.pids("recompute worker")] + \
             ["B" for p in busy if b is not None and p in b.pids("recompute worker")]
    return owners[0] if len(owners) == 1 else None


# ---- a. exactly once -------------------------------------------------------------------------

def test_runs_triggered_on_both_instances_complete_exactly_once():
    reset()
    # Every report/window pair is held (DATA.md §8.5) while the 20 runs are triggered, so each
    # instance's two workers block inside a rebuild and the other runs pile up `pending`; both
    # supervisors' refills then queue the same ids in both rings, and both instances' workers
    # race for them once the hooks go.
    hooks = [recpipe.HookLock(DB, slug, window) for slug in recpipe.REPORTS
             for window in ("day", "week")]
    a, b = instance().start(), instance().start()
    try:
        dates = DB.sql("SELECT to_char(d - 60 - i, 'YYYY-MM-DD'), to_char(d - 20 + i, 'YYYY-MM-DD')"
                       " FROM (SELECT (now() AT TIME ZONE 'UTC')::date d) s, generate_series(0, 19) i"
                       " ORDER BY i")
        scopes = [(recpipe.REPORTS[i % 3], ("day", "week")[i // 3 % 2], f, t)
                  for i, (f, t) in enumerate(dates)]
        assert len(set(scopes)) == 20
        runs = [None] * 20

        def trigger_all(svc, first):
            for i in range(first, 20, 2):
                runs[i] = trigger(svc, *scopes[i])
        threads = [threading.Thread(target=trigger_all, args=(svc, n)) for n, svc in ((0, a), (1, b))]
        for th in threads:
            th.start()
        for th in threads:
            th.join(WAIT)
        assert all(runs) and len(set(runs)) == 20, runs

        def busy():
            return [pid for pid, state in recpipe.recompute_backend_pids(DB).items()
                    if state == "active"]
        # Both instances execute runs: each one's two workers are inside a rebuild.
        assert adtest.wait_until(lambda: sorted(busy()) == sorted(a.pids("recompute worker") +
                                                                  b.pids("recompute worker")),
                                 WAIT, step=0.1), (busy(), a.children(), b.children())
        time.sleep(2)  # both supervisors refill their rings meanwhile (every second)
        states = [recpipe.run_row(DB, r)["status"] for r in runs]
        assert states.count("running") == 4 and states.count("pending") == 16, states
        for hook in hooks:
            hook.release()
        ids = ",".join("'%s'" % r for r in runs)

        def unfinished():
            return DB.sql("SELECT id, status FROM recompute_runs WHERE id IN (%s) AND status <>"
                          " 'completed'" % ids)
        assert adtest.wait_until(lambda: not unfinished(), WAIT, step=0.2), unfinished()
        # Both instances see the final state through the API.
        for run_id in runs:
            assert api_run(a, run_id)["status"] == "completed"
            assert api_run(b, run_id)["status"] == "completed"
        # More than a dispatch refill period later still exactly once: an id both instances had
        # queued never led to a second claim or execution.
        time.sleep(2.5)
        rows = DB.sql("SELECT r.id, r.status, r.attempts, r.summary->>'rows_inserted',"
                      " count(*) FILTER (WHERE e.action = 'recompute.triggered'),"
                      " count(*) FILTER (WHERE e.action = 'recompute.completed'),"
                      " count(*) FILTER (WHERE e.action = 'recompute.failed'),"
                      " max(e.metadata->>'rows_inserted') FILTER (WHERE e.action ="
                      " 'recompute.completed') FROM recompute_runs r LEFT JOIN audit_entries e"
                      " ON e.resource_type = 'recompute_run' AND e.resource_id = r.id::text"
                      " WHERE r.id IN (%s) GROUP BY r.id" % ids)
        assert len(rows) == 20, rows
        for run_id, status, attempts, inserted, trig, done, failed, audited in rows:
            assert (status, attempts, trig, done, failed) == ("completed", "1", "1", "1", "0"), \
                (run_id, status, attempts, trig, done, failed)
            assert inserted == audited, (run_id, inserted, audited)
        logs = a.logs() + b.logs()
        for run_id in runs:
            assert logs.count("run %s claimed:" % run_id) == 1, run_id
            assert logs.count("run %s completed:" % run_id) == 1, run_id
        done = DB.sql("SELECT count(*) FROM audit_entries WHERE action = 'recompute.completed'")
        assert done == [["20"]], done
        assert set(recpipe.totals(DB).values()) == {25000}, recpipe.totals(DB)
        locks = redis("--scan", "--pattern", "recompute:lock:*")
        assert locks == "", "scope locks left: %s" % locks
        assert a.proc.poll() is None and b.proc.poll() is None
    finally:
        for hook in hooks:
            hook.release()
        stop_clean(a)
        stop_clean(b)


# ---- b. cache invalidation across instances ----------------------------------------------------

def test_recompute_on_a_invalidates_reads_on_b():
    reset()
    a, b = instance().start(), instance().start()
    f, t = recpipe.day(DB, -12), recpipe.day(DB, -8)
    path = "/api/v1/reports/status-counts/run?date_from=%s&date_to=%s" % (f, t)
    week = path + "&window=week"
    other = "/api/v1/reports/top-entities/run?date_from=%s&date_to=%s&limit=5" % (f, t)
    added = 7
    try:
        first = read(b, path)
        assert first["cache_hit"] is False, first
        second = read(b, path)
        assert second["cache_hit"] is True and second["rows"] == first["rows"], second
        old = {r["status"]: r["event_count"] for r in first["rows"]}
        read(b, week)
        assert read(b, week)["cache_hit"] is True
        read(b, other)
        assert read(b, other)["cache_hit"] is True
        # New events in the range; the cache still answers the old counts.
        DB.sql("INSERT INTO analytics_events (source_id, external_ref, entity_id, status,"
               " processing_ms, amount_cents, occurred_at) SELECT (SELECT min(id) FROM"
               " event_sources), 'instances-test-' || g, 'entity-1', 'failed', 1, 1,"
               " '%s'::date + time '12:00' AT TIME ZONE 'UTC' FROM generate_series(1, %d) g"
               % (recpipe.day(DB, -10), added))
        stale = read(b, path)
        assert stale["cache_hit"] is True and stale["rows"] == first["rows"], stale
        run_id = trigger(a, "status-counts", "day", f, t)
        assert adtest.wait_until(lambda: api_run(a, run_id)["status"] == "completed", WAIT,
                                 step=0.05), api_run(a, run_id)
        # The very next read on B is a miss and shows the new events.
        fresh = read(b, path)
        assert fresh["cache_hit"] is False, fresh
        new = {r["status"]: r["event_count"] for r in fresh["rows"]}
        expected = dict(old, failed=old.get("failed", 0) + added)
        assert new == expected, (old, new)
        assert read(b, path)["cache_hit"] is True
        # Every cached result of the report stops being served (any window, any range); other
        # reports keep theirs.
        assert read(b, week)["cache_hit"] is False
        assert read(b, other)["cache_hit"] is True
        completed_exactly_once(run_id)
    finally:
        DB.sql("DELETE FROM analytics_events WHERE external_ref LIKE 'instances-test-%'")
        try:
            # Put the snapshots back as seeded for the tests after this one.
            restore = trigger(a, "status-counts", "day", f, t)
            recpipe.wait_status(DB, restore, "completed", WAIT)
        finally:
            stop_clean(a)
            stop_clean(b)


# ---- c. runs left behind by a killed instance --------------------------------------------------

def test_pending_run_of_killed_instance_is_completed_by_the_other():
    reset()
    a, b = instance(RECOMPUTE_WORKERS=1).start(), None
    try:
        # A's only recompute worker cannot take anything: the run A accepts stays pending.
        workers = a.pids("recompute worker")
        assert len(workers) == 1, a.children()
        os.kill(workers[0], signal.SIGSTOP)
        f, t = recpipe.day(DB, -33), recpipe.day(DB, -31)
        run_id = trigger(a, "volume-by-period", "day", f, t)
        key = recpipe.lock_key("volume-by-period", "day", f, t)
        time.sleep(2)  # A's supervisor refills the ring at least once meanwhile
        assert recpipe.run_row(DB, run_id)["status"] == "pending", recpipe.run_row(DB, run_id)
        kill_instance(a)
        row = recpipe.run_row(DB, run_id)
        assert row["status"] == "pending" and row["attempts"] == 0, row
        assert redis("GET", key) == run_id, "the scope lock of a pending run must be kept"
        b = instance().start()
        assert adtest.wait_until(lambda: api_run(b, run_id)["status"] == "completed", WAIT,
                                 step=0.1), api_run(b, run_id)
        completed_exactly_once(run_id, attempts=1)
        assert adtest.wait_until(lambda: redis("EXISTS", key) == "0", 5), "scope lock not released"
    finally:
        if a.proc.poll() is None:
            kill_instance(a)
        stop_clean(b)


def test_running_run_of_killed_instance_is_an_orphan_the_other_completes():
    reset()
    hook = recpipe.HookLock(DB, "top-entities", "day")
    a, b = instance(RECOMPUTE_WORKERS=1).start(), None
    try:
        f, t = recpipe.day(DB, -22), recpipe.day(DB, -21)
        run_id = trigger(a, "top-entities", "day", f, t)
        recpipe.wait_status(DB, run_id, "running", WAIT, attempts=1)
        assert adtest.wait_until(lambda: owner_instance(run_id, a, b) == "A", WAIT, step=0.1), \
            recpipe.recompute_backend_pids(DB)
        # B starts while A owns the run: its startup orphan scan must leave it alone.
        b = instance().start()
        time.sleep(1.5)
        row = recpipe.run_row(DB, run_id)
        assert row["status"] == "running" and row["attempts"] == 1, row
        kill_instance(a)
        # B's supervisor (periodic scan, every 10 s) finds the orphan and B's worker claims it
        # again; it then waits behind the hook lock, so the claim is observable.
        recpipe.wait_status(DB, run_id, "running", WAIT, attempts=2)
        assert adtest.wait_until(lambda: owner_instance(run_id, None, b) == "B", WAIT, step=0.1), \
            recpipe.recompute_backend_pids(DB)
        hook.release()
        assert adtest.wait_until(lambda: api_run(b, run_id)["status"] == "completed", WAIT,
                                 step=0.1), api_run(b, run_id)
        completed_exactly_once(run_id, attempts=2)
        key = recpipe.lock_key("top-entities", "day", f, t)
        assert adtest.wait_until(lambda: redis("EXISTS", key) == "0", 5), "scope lock not released"
    finally:
        hook.release()
        if a.proc.poll() is None:
            kill_instance(a)
        stop_clean(b)


def test_running_run_of_killed_instance_is_recovered_by_a_later_instance():
    """The same orphan, found by the startup scan of an instance started after the kill."""
    reset()
    hook = recpipe.HookLock(DB, "volume-by-period", "week")
    a, b = instance(RECOMPUTE_WORKERS=1).start(), None
    try:
        f, t = recpipe.day(DB, -45), recpipe.day(DB, -30)
        run_id = trigger(a, "volume-by-period", "week", f, t)
        recpipe.wait_status(DB, run_id, "running", WAIT, attempts=1)
        assert adtest.wait_until(lambda: owner_instance(run_id, a, b) == "A", WAIT, step=0.1), \
            recpipe.recompute_backend_pids(DB)
        kill_instance(a)
        row = recpipe.run_row(DB, run_id)
        assert row["status"] == "running" and row["attempts"] == 1, row
        hook.release()
        b = instance().start()
        assert adtest.wait_until(lambda: api_run(b, run_id)["status"] == "completed", WAIT,
                                 step=0.1), api_run(b, run_id)
        completed_exactly_once(run_id, attempts=2)
        assert "run %s was orphaned after attempt 1" % run_id in b.logs(), b.logs()
    finally:
        hook.release()
        if a.proc.poll() is None:
            kill_instance(a)
        stop_clean(b)


def test_run_returned_by_graceful_stop_of_a_is_completed_by_b():
    reset()
    hook = recpipe.HookLock(DB, "status-counts", "week")
    a = instance(RECOMPUTE_WORKERS=1, HTTP_SHUTDOWN_TIMEOUT="5s").start()
    b = None
    try:
        f, t = recpipe.day(DB, -50), recpipe.day(DB, -40)
        run_id = trigger(a, "status-counts", "week", f, t)
        recpipe.wait_status(DB, run_id, "running", WAIT, attempts=1)
        assert adtest.wait_until(lambda: owner_instance(run_id, a, b) == "A", WAIT, step=0.1), \
            recpipe.recompute_backend_pids(DB)
        b = instance().start()
        # A's stop cannot finish the held job within its grace: the run goes back to pending
        # with the attempt not counted (DATA.md §6.7), and B takes it over.
        assert a.stop() == 0, a.logs()
        no_sanitizer_report(a)
        recpipe.wait_status(DB, run_id, "running", WAIT, attempts=1)
        assert adtest.wait_until(lambda: owner_instance(run_id, None, b) == "B", WAIT, step=0.1), \
            recpipe.recompute_backend_pids(DB)
        hook.release()
        assert adtest.wait_until(lambda: api_run(b, run_id)["status"] == "completed", WAIT,
                                 step=0.1), api_run(b, run_id)
        completed_exactly_once(run_id, attempts=1)
    finally:
        hook.release()
        stop_clean(a)
        stop_clean(b)


# ---- d. scheduler failover ---------------------------------------------------------------

def late_event(tag, date):
    DB.sql("INSERT INTO analytics_events (source_id, external_ref, entity_id, status,"
           " processing_ms, amount_cents, occurred_at) SELECT id, 'late-%s', 'entity-late',"
           " 'success', 10, 5, '%s'::date + time '12:00' AT TIME ZONE 'UTC'"
           " FROM event_sources WHERE slug = 'stripe'" % (tag, date))


def make_due(slug, window):
    DB.sql("SELECT count(*) FROM refresh_due()")
    DB.sql("UPDATE refresh_schedule SET last_pass_at = now() - interval '1 day'"
           " WHERE report_slug = '%s' AND window_name = '%s'" % (slug, window))


def scheduler_runs():
    return DB.sql("SELECT id, date_from::text, status FROM recompute_runs"
                  " WHERE requested_by = 'scheduler' ORDER BY date_from")


LEADS = "leadership: this instance now runs"


def test_scheduler_fails_over_from_a_to_b():
    """One scheduler in the deployment (worker/scheduler.h): while A leads, A's scheduler alone
    refreshes a late event; after A is killed outright, B takes the leadership and B's scheduler
    refreshes the next one; each scheduled run is created and completed exactly once."""
    reset()
    DB.sql("DELETE FROM event_change_days")  # no instance runs: nothing collects meanwhile
    DB.sql("DELETE FROM refresh_dirty_days")
    a = instance().start()
    b = None
    try:
        assert adtest.wait_until(lambda: LEADS in a.logs(), WAIT), a.logs()
        b = instance().start()
        d1, d2 = recpipe.day(DB, -15), recpipe.day(DB, -18)
        late_event("failover-1", d1)
        make_due("status-counts", "day")
        assert adtest.wait_until(lambda: [r[1:] for r in scheduler_runs()] ==
                                 [[d1, "completed"]], WAIT), (scheduler_runs(), a.logs()[-2000:])
        assert "scheduler: run " in a.logs() and "scheduler: run " not in b.logs()
        assert LEADS not in b.logs()

        kill_instance(a)
        assert adtest.wait_until(lambda: LEADS in b.logs(), WAIT), b.logs()
        late_event("failover-2", d2)
        make_due("status-counts", "day")
        want = [[d2, "completed"], [d1, "completed"]]
        assert adtest.wait_until(lambda: [r[1:] for r in scheduler_runs()] == want, WAIT), \
            (scheduler_runs(), b.logs()[-2000:])
        assert "scheduler: run " in b.logs()
        for run_id, _, _ in scheduler_runs():
            completed_exactly_once(run_id)
            triggered = recpipe.audit(DB, run_id, "recompute.triggered")
            assert triggered[0][0] == "scheduler", triggered
            assert triggered[0][1]["requested_via"] == "scheduler", triggered
    finally:
        stop_clean(b)
        stop_clean(a)  # killed already, unless an assertion stopped the test first
        DB.sql("DELETE FROM event_change_days")
        DB.sql("DELETE FROM refresh_dirty_days")


if __name__ == "__main__":
    DB = adtest.ScratchDatabase()
    try:
        adtest.run([test_runs_triggered_on_both_instances_complete_exactly_once,
                    test_recompute_on_a_invalidates_reads_on_b,
                    test_pending_run_of_killed_instance_is_completed_by_the_other,
                    test_running_run_of_killed_instance_is_an_orphan_the_other_completes,
                    test_running_run_of_killed_instance_is_recovered_by_a_later_instance,
                    test_run_returned_by_graceful_stop_of_a_is_completed_by_b,
                    test_scheduler_fails_over_from_a_to_b])
    finally:
        DB.drop()
