"""tests/integration/test_recompute_pipeline.py: the recompute pipeline behind the trigger, with real
processes (DATA.md §6.7–§6.12, §7.2, §7.5, §8.4, §8.5; CONFIG.md §4, §5.3).

Runs are inserted directly in SQL as the trigger would (pending row + recompute.triggered audit)
and reach the workers through the supervisor's dispatch refill. Covers completion with summary and
audit, the §8.4 invariants (unchanged snapshots, neighbouring buckets, counts), the version bump,
scope lock release, serialisation of overlapping rebuilds [F10], crash retry and exhaustion, the
job deadline (through the ANALYTICSD_TEST_JOB_DEADLINE_MS test hook), graceful shutdown,
restart recovery, an unsupported report and a full in-memory queue.
"""

import signal
import time
import uuid

import adtest
import recpipe

DB = None


def service(**env):
    svc = adtest.Service(DB, **env)
    recpipe.reset(DB, svc.redis_url)
    return svc.start()


def stop_clean(svc):
    rc = svc.stop()
    assert rc == 0, "exit status %s\n%s" % (rc, svc.logs())


def expected_counts(slug, window, lo, hi):
    """(bucket_count, rows_inserted) from the events, as §8.4 defines them."""
    dim = {"status-counts": "e.status", "top-entities": "e.entity_id",
           "volume-by-period": "e.source_id::text", "amount-by-source": "e.source_id::text"}[slug]
    rows = DB.sql("SELECT count(DISTINCT b), count(*) FROM (SELECT DISTINCT"
                  " date_trunc('%s', e.occurred_at, 'UTC') AS b, %s FROM analytics_events e"
                  " WHERE e.occurred_at >= '%s'::date::timestamp AT TIME ZONE 'UTC'"
                  " AND e.occurred_at < '%s'::date::timestamp AT TIME ZONE 'UTC') g"
                  % (window, dim, lo, hi))
    return int(rows[0][0]), int(rows[0][1])


def check_completed(run_id, slug, window, lo, hi):
    row = recpipe.run_row(DB, run_id)
    assert row["status"] == "completed", row
    assert row["error_message"] == "<null>" and not row["finished_at_null"], row
    s = row["summary"]
    assert sorted(s) == ["bucket_count", "rows_deleted", "rows_inserted"], s
    assert s["rows_deleted"] == s["rows_inserted"], s
    assert (s["bucket_count"], s["rows_inserted"]) == expected_counts(slug, window, lo, hi), s
    entries = recpipe.audit(DB, run_id, "recompute.completed")
    assert entries == [("recompute-worker", {"bucket_count": s["bucket_count"], "report_slug": slug,
                                             "rows_deleted": s["rows_deleted"],
                                             "rows_inserted": s["rows_inserted"],
                                             "window": window})], entries
    return row


def test_pending_run_completes_with_invariants():
    svc = service(RECOMPUTE_WORKERS=1)
    try:
        before = recpipe.snapshot_fingerprint(DB)
        v0 = adtest.wait_until(lambda: (lambda v: v if all(v.values()) else None)(
            recpipe.versions(svc.redis_url)), 5)
        assert v0, "version keys not created by the startup bump"
        f, t = recpipe.day(DB, -40), recpipe.day(DB, -30)
        run_id = str(uuid.uuid4())
        key = recpipe.lock_key("status-counts", "day", f, t)
        assert adtest.redis_cli(svc.redis_url, "SET", key, run_id, "EX", "600") == "OK"
        started = time.time()
        recpipe.insert_run(DB, "status-counts", "day", f, t, run_id=run_id)
        row = recpipe.wait_status(DB, run_id, "completed", 5)
        assert time.time() - started < 5
        assert row["attempts"] == 1, row
        row = check_completed(run_id, "status-counts", "day", f, recpipe.day(DB, -29))
        assert row["summary"]["bucket_count"] == 11, row
        after = recpipe.snapshot_fingerprint(DB)
        assert before == after, recpipe.fingerprint_diff(before, after)[:5]
        assert set(recpipe.totals(DB).values()) == {25000}, recpipe.totals(DB)
        v1 = recpipe.versions(svc.redis_url)
        assert int(v1["status-counts"]) == int(v0["status-counts"]) + 1, (v0, v1)
        assert {k: v for k, v in v1.items() if k != "status-counts"} == \
            {k: v for k, v in v0.items() if k != "status-counts"}, (v0, v1)
        assert adtest.redis_cli(svc.redis_url, "EXISTS", key) == "0", "scope lock not released"
        # New snapshot rows of the range carry the run id; the neighbour T+1 does not.
        tagged = DB.sql("SELECT count(DISTINCT bucket_start) FROM metric_snapshots WHERE run_id ="
                        " '%s'" % run_id)[0][0]
        assert tagged == "11", tagged
        neighbour = DB.sql("SELECT count(*) FROM metric_snapshots WHERE run_id = '%s' AND"
                           " bucket_start = '%s'::date::timestamp AT TIME ZONE 'UTC'"
                           % (run_id, recpipe.day(DB, -29)))[0][0]
        assert neighbour == "0"
    finally:
        stop_clean(svc)


def test_week_ranges_starting_mid_week():
    svc = service(RECOMPUTE_WORKERS=2)
    try:
        before = recpipe.snapshot_fingerprint(DB)
        monday = DB.sql("SELECT to_char(date_trunc('week', (now() AT TIME ZONE 'UTC')::date - 45),"
                        " 'YYYY-MM-DD')")[0][0]
        f = DB.sql("SELECT to_char('%s'::date + 2, 'YYYY-MM-DD')" % monday)[0][0]  # Wednesday
        t = DB.sql("SELECT to_char('%s'::date + 20, 'YYYY-MM-DD')" % monday)[0][0]  # Sunday
        hi = DB.sql("SELECT to_char('%s'::date + 21, 'YYYY-MM-DD')" % monday)[0][0]
        slugs = ("top-entities", "volume-by-period", "amount-by-source")
        ids = [recpipe.insert_run(DB, slug, "week", f, t) for slug in slugs]
        for run_id, slug in zip(ids, slugs):
            recpipe.wait_status(DB, run_id, "completed", 10)
            row = check_completed(run_id, slug, "week", monday, hi)
            assert row["summary"]["bucket_count"] == 3, row
        after = recpipe.snapshot_fingerprint(DB)
        assert before == after, recpipe.fingerprint_diff(before, after)[:5]
        # Every week bucket equals the number of events in that week.
        bad = DB.sql("SELECT s.b, s.v, e.n FROM (SELECT bucket_start b, sum(metric_value) v FROM"
                     " metric_snapshots WHERE window_name = 'week' AND report_slug ="
                     " 'volume-by-period' GROUP BY 1) s FULL JOIN (SELECT date_trunc('week',"
                     " occurred_at, 'UTC') b, count(*) n FROM analytics_events GROUP BY 1) e"
                     " ON e.b = s.b WHERE s.v IS DISTINCT FROM e.n")
        assert bad == [], bad
    finally:
        stop_clean(svc)


def test_overlapping_runs_serialise():
    svc = service(RECOMPUTE_WORKERS=2)
    hook = recpipe.HookLock(DB, "volume-by-period", "day")
    try:
        before = recpipe.snapshot_fingerprint(DB)
        a = recpipe.insert_run(DB, "volume-by-period", "day", recpipe.day(DB, -60), recpipe.day(DB, -20))
        b = recpipe.insert_run(DB, "volume-by-period", "day", recpipe.day(DB, -50), recpipe.day(DB, -10))
        recpipe.wait_status(DB, a, "running", 5)
        recpipe.wait_status(DB, b, "running", 5)
        hook.release()
        for run_id, f, t in ((a, -60, -19), (b, -50, -9)):
            recpipe.wait_status(DB, run_id, "completed", 10)
            check_completed(run_id, "volume-by-period", "day", recpipe.day(DB, f), recpipe.day(DB, t))
        assert set(recpipe.totals(DB).values()) == {25000}, recpipe.totals(DB)
        after = recpipe.snapshot_fingerprint(DB)
        assert before == after, recpipe.fingerprint_diff(before, after)[:5]
    finally:
        hook.release()
        stop_clean(svc)


def test_killed_worker_run_is_retried():
    svc = service(RECOMPUTE_WORKERS=1)
    hook = recpipe.HookLock(DB)
    try:
        run_id = recpipe.insert_run(DB, "top-entities", "day", recpipe.day(DB, -20), recpipe.day(DB, -10))
        recpipe.wait_status(DB, run_id, "running", 5, attempts=1)
        time.sleep(1.5)
        assert recpipe.run_row(DB, run_id)["status"] == "running"
        recpipe.kill_worker_of_waiting_run(DB)
        # Orphan handling puts it back; the replacement worker claims it again and waits.
        recpipe.wait_status(DB, run_id, "running", 15, attempts=2)
        hook.release()
        recpipe.wait_status(DB, run_id, "completed", 10)
        row = check_completed(run_id, "top-entities", "day", recpipe.day(DB, -20), recpipe.day(DB, -9))
        assert row["attempts"] == 2, row
        assert recpipe.audit(DB, run_id, "recompute.failed") == []
    finally:
        hook.release()
        stop_clean(svc)


def test_worker_dying_every_time_ends_crashed():
    svc = service(RECOMPUTE_WORKERS=1, RECOMPUTE_MAX_ATTEMPTS=2)
    hook = recpipe.HookLock(DB)
    try:
        f, t = recpipe.day(DB, -12), recpipe.day(DB, -11)
        run_id = str(uuid.uuid4())
        key = recpipe.lock_key("top-entities", "day", f, t)
        adtest.redis_cli(svc.redis_url, "SET", key, run_id, "EX", "600")
        recpipe.insert_run(DB, "top-entities", "day", f, t, run_id=run_id)
        killed = []
        for attempt in (1, 2):
            recpipe.wait_status(DB, run_id, "running", 15, attempts=attempt)
            killed.append(recpipe.kill_worker_of_waiting_run(DB, exclude=killed))
        row = recpipe.wait_status(DB, run_id, "failed", 15)
        assert row["error_message"] == "recompute worker crashed", row
        assert row["attempts"] == 2 and not row["finished_at_null"], row
        assert recpipe.audit(DB, run_id, "recompute.failed") == [
            ("recompute-worker", {"error": "recompute worker crashed", "report_slug": "top-entities",
                                  "window": "day"})]
        assert adtest.redis_cli(svc.redis_url, "EXISTS", key) == "0", "scope lock not released"
        time.sleep(1)
        assert recpipe.run_row(DB, run_id)["status"] == "failed"
    finally:
        hook.release()
        stop_clean(svc)


def test_job_deadline_fails_run_timed_out():
    svc = service(RECOMPUTE_WORKERS=1, ANALYTICSD_TEST_JOB_DEADLINE_MS=2000)
    hook = recpipe.HookLock(DB)
    try:
        f, t = recpipe.day(DB, -8), recpipe.day(DB, -7)
        run_id = str(uuid.uuid4())
        key = recpipe.lock_key("top-entities", "day", f, t)
        adtest.redis_cli(svc.redis_url, "SET", key, run_id, "EX", "600")
        v0 = recpipe.versions(svc.redis_url)
        recpipe.insert_run(DB, "top-entities", "day", f, t, run_id=run_id)
        recpipe.wait_status(DB, run_id, "running", 5)
        started = time.time()
        row = recpipe.wait_status(DB, run_id, "failed", 8)
        assert 1.0 < time.time() - started < 5, time.time() - started
        assert row["error_message"] == "recompute timed out" and row["attempts"] == 1, row
        assert row["summary"] == {}, row
        assert recpipe.audit(DB, run_id, "recompute.failed") == [
            ("recompute-worker", {"error": "recompute timed out", "report_slug": "top-entities",
                                  "window": "day"})]
        assert adtest.redis_cli(svc.redis_url, "EXISTS", key) == "0", "scope lock not released"
        assert recpipe.versions(svc.redis_url) == v0, "a failed run must not bump the version"
        assert "recompute timed out" in svc.logs()
        # The worker survived and takes the next job once the hook is gone.
        hook.release()
        nxt = recpipe.insert_run(DB, "top-entities", "day", f, t)
        recpipe.wait_status(DB, nxt, "completed", 5)
    finally:
        hook.release()
        stop_clean(svc)


def test_graceful_shutdown_returns_held_run_to_pending():
    svc = service(RECOMPUTE_WORKERS=1, HTTP_SHUTDOWN_TIMEOUT="3s")
    hook = recpipe.HookLock(DB)
    try:
        f, t = recpipe.day(DB, -6), recpipe.day(DB, -5)
        run_id = str(uuid.uuid4())
        key = recpipe.lock_key("top-entities", "day", f, t)
        adtest.redis_cli(svc.redis_url, "SET", key, run_id, "EX", "600")
        recpipe.insert_run(DB, "top-entities", "day", f, t, run_id=run_id)
        recpipe.wait_status(DB, run_id, "running", 5, attempts=1)
        started = time.time()
        svc.signal(signal.SIGTERM)
        rc = svc.proc.wait(10)
        elapsed = time.time() - started
        assert rc == 0 and elapsed < 3.5, (rc, elapsed, svc.logs())
        row = recpipe.run_row(DB, run_id)
        assert row["status"] == "pending" and row["attempts"] == 0 and row["started_at_null"], row
        assert adtest.redis_cli(svc.redis_url, "GET", key) == run_id, "scope lock must be kept"
        assert recpipe.audit(DB, run_id, "recompute.failed") == []
        # A restarted service picks it up again.
        hook.release()
        svc2 = adtest.Service(DB, RECOMPUTE_WORKERS=1).start()
        try:
            row = recpipe.wait_status(DB, run_id, "completed", 10)
            assert row["attempts"] == 1, row
        finally:
            stop_clean(svc2)
    finally:
        hook.release()
        svc.stop()


def test_quick_job_finishes_during_shutdown():
    svc = service(RECOMPUTE_WORKERS=1, HTTP_SHUTDOWN_TIMEOUT="5s")
    hook = recpipe.HookLock(DB)
    try:
        run_id = recpipe.insert_run(DB, "top-entities", "day", recpipe.day(DB, -4), recpipe.day(DB, -3))
        recpipe.wait_status(DB, run_id, "running", 5, attempts=1)
        svc.signal(signal.SIGTERM)
        time.sleep(0.5)
        hook.release()  # the job can now finish well within the grace
        assert svc.proc.wait(10) == 0, svc.logs()
        row = recpipe.run_row(DB, run_id)
        assert row["status"] == "completed" and row["attempts"] == 1, row
    finally:
        hook.release()
        svc.stop()


def test_restart_recovers_pending_and_running_runs():
    recpipe.reset(DB)
    ids = [recpipe.insert_run(DB, slug, "day", recpipe.day(DB, -30), recpipe.day(DB, -25))
           for slug in recpipe.REPORTS]
    # A run left running by a service that died (no session holds its lock).
    crashed = recpipe.insert_run(DB, "status-counts", "week", recpipe.day(DB, -30), recpipe.day(DB, -2),
                                 status="running", attempts=1)
    svc = adtest.Service(DB, RECOMPUTE_WORKERS=2).start()
    try:
        for run_id in ids:
            assert recpipe.wait_status(DB, run_id, "completed", 10)["attempts"] == 1
        assert recpipe.wait_status(DB, crashed, "completed", 10)["attempts"] == 2
        assert set(recpipe.totals(DB).values()) == {25000}
    finally:
        stop_clean(svc)


def test_unsupported_report_fails():
    svc = service(RECOMPUTE_WORKERS=1)
    try:
        DB.sql("INSERT INTO report_definitions (slug, name, description, cache_ttl_seconds,"
               " default_window) VALUES ('weird-report', 'Weird', 'Not rebuildable', 0, 'day')"
               " ON CONFLICT DO NOTHING")
        f, t = recpipe.day(DB, -3), recpipe.day(DB, -1)
        run_id = str(uuid.uuid4())
        key = recpipe.lock_key("weird-report", "day", f, t)
        adtest.redis_cli(svc.redis_url, "SET", key, run_id, "EX", "600")
        recpipe.insert_run(DB, "weird-report", "day", f, t, run_id=run_id)
        row = recpipe.wait_status(DB, run_id, "failed", 5)
        assert row["error_message"] == "unsupported report slug for recompute", row
        assert row["attempts"] == 1 and row["summary"] == {}, row
        assert recpipe.audit(DB, run_id, "recompute.failed") == [
            ("recompute-worker", {"error": "unsupported report slug for recompute",
                                  "report_slug": "weird-report", "window": "day"})]
        assert adtest.redis_cli(svc.redis_url, "EXISTS", key) == "0"
    finally:
        DB.sql("DELETE FROM recompute_runs WHERE report_slug = 'weird-report'")
        DB.sql("DELETE FROM report_definitions WHERE slug = 'weird-report'")
        stop_clean(svc)


def test_full_queue_drains():
    svc = service(RECOMPUTE_WORKERS=1, RECOMPUTE_QUEUE_SIZE=1)
    hook = recpipe.HookLock(DB)
    try:
        held = recpipe.insert_run(DB, "top-entities", "day", recpipe.day(DB, -15), recpipe.day(DB, -14))
        recpipe.wait_status(DB, held, "running", 5)
        rest = [recpipe.insert_run(DB, slug, w, recpipe.day(DB, -15 - i), recpipe.day(DB, -2))
                for i, (slug, w) in enumerate([("status-counts", "day"), ("volume-by-period", "week"),
                                               ("top-entities", "week"), ("status-counts", "week")])]
        time.sleep(2)
        assert all(recpipe.run_row(DB, r)["status"] == "pending" for r in rest)
        hook.release()
        for run_id in [held] + rest:
            row = recpipe.wait_status(DB, run_id, "completed", 15)
            assert row["attempts"] == 1, row
        assert set(recpipe.totals(DB).values()) == {25000}
    finally:
        hook.release()
        stop_clean(svc)


def test_run_completes_while_redis_is_down():
    recpipe.reset(DB)
    port = adtest.free_port()  # nothing listens there: Redis stays untrusted
    svc = adtest.Service(DB, RECOMPUTE_WORKERS=1, REDIS_URL="redis://127.0.0.1:%d/0" % port).start()
    try:
        f, t = recpipe.day(DB, -20), recpipe.day(DB, -18)
        run_id = recpipe.insert_run(DB, "status-counts", "week", f, t)
        recpipe.wait_status(DB, run_id, "completed", 10)
        monday = DB.sql("SELECT to_char(date_trunc('week', '%s'::date), 'YYYY-MM-DD'),"
                        " to_char(date_trunc('week', '%s'::date) + interval '7 days', 'YYYY-MM-DD')"
                        % (f, t))[0]
        check_completed(run_id, "status-counts", "week", monday[0], monday[1])
        assert "version bump" not in svc.logs(), "no INCR may be tried while Redis is untrusted"
    finally:
        stop_clean(svc)


def test_stale_scope_locks_are_swept():
    """A lock whose run is finished (its worker died before releasing it) is deleted by the
    supervisor's sweep within ~10 s; the lock of a running run is kept (DATA.md §7.5)."""
    svc = service(RECOMPUTE_WORKERS=1)
    hook = recpipe.HookLock(DB)
    try:
        done = DB.sql("SELECT id FROM recompute_runs WHERE status = 'completed' LIMIT 1")[0][0]
        stale = recpipe.lock_key("status-counts", "day", recpipe.day(DB, -3), recpipe.day(DB, -2))
        adtest.redis_cli(svc.redis_url, "SET", stale, done)
        run_id = recpipe.insert_run(DB, "top-entities", "day", recpipe.day(DB, -8), recpipe.day(DB, -7))
        live = recpipe.lock_key("top-entities", "day", recpipe.day(DB, -8), recpipe.day(DB, -7))
        adtest.redis_cli(svc.redis_url, "SET", live, run_id)
        # Two locks naming no run, with TTLs: one set 14 min ago by the TTL (15 min configured),
        # swept; one just set, kept (its trigger may not have committed its run yet).
        old = recpipe.lock_key("status-counts", "day", recpipe.day(DB, -5), recpipe.day(DB, -4))
        adtest.redis_cli(svc.redis_url, "SET", old, str(uuid.uuid4()), "EX", "60")
        young = recpipe.lock_key("status-counts", "day", recpipe.day(DB, -7), recpipe.day(DB, -6))
        ghost = str(uuid.uuid4())
        adtest.redis_cli(svc.redis_url, "SET", young, ghost, "EX", "900")
        recpipe.wait_status(DB, run_id, "running", 5, attempts=1)
        assert adtest.wait_until(lambda: adtest.redis_cli(svc.redis_url, "EXISTS", stale) == "0"
                                 and adtest.redis_cli(svc.redis_url, "EXISTS", old) == "0",
                                 15), svc.logs()
        assert adtest.redis_cli(svc.redis_url, "GET", live) == run_id
        assert "released stale scope lock " + stale in svc.logs()
        hook.release()
        recpipe.wait_status(DB, run_id, "completed", 10)
        assert adtest.wait_until(lambda: adtest.redis_cli(svc.redis_url, "EXISTS", live) == "0", 5)
        assert adtest.redis_cli(svc.redis_url, "GET", young) == ghost
        assert "released stale scope lock " + young not in svc.logs()
    finally:
        hook.release()
        stop_clean(svc)


if __name__ == "__main__":
    DB = adtest.ScratchDatabase()
    try:
        adtest.run([test_pending_run_completes_with_invariants, test_week_ranges_starting_mid_week,
                    test_overlapping_runs_serialise, test_killed_worker_run_is_retried,
                    test_worker_dying_every_time_ends_crashed, test_job_deadline_fails_run_timed_out,
                    test_graceful_shutdown_returns_held_run_to_pending,
                    test_quick_job_finishes_during_shutdown,
                    test_restart_recovers_pending_and_running_runs, test_unsupported_report_fails,
                    test_full_queue_drains, test_run_completes_while_redis_is_down,
                    test_stale_scope_locks_are_swept])
    finally:
        DB.drop()
