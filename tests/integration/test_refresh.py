"""tests/integration/test_refresh.py: snapshots that keep themselves fresh (API.md §8; schema
0006_refresh.sql, worker/scheduler.h).

Real processes only: a scratch database (migrated and seeded by the binary), Redis, and
`analyticsd serve`. Events are written with SQL, as the systems that own them do. Covers: the
statement triggers note exactly the changed days (insert, update of both days, delete, empty
statements); a failed scheduled run gives its days back; late events written while the service
was down are refreshed by `scheduler` runs of exactly the changed day ranges once it starts, and
only for the (report, window) whose interval has passed; a late event while it runs shows in the
next read (cache invalidated) and nothing runs when nothing changed; a scheduled run and a manual
trigger of the same scope never both run and a scope with an active run stays dirty; retention
deletes expired snapshots with one audit entry, bumps the report version, and reads of expired
ranges say meta.retained_from.

Intervals are minutes long, so the tests make a pair due by moving its refresh_schedule
row back in time, exactly what the passing of its interval would do.
"""

import datetime
import json
import subprocess

import adtest

KEY = {"X-Management-Key": "test-key", "Content-Type": "application/json"}
DB = None


def today():
    return datetime.datetime.now(datetime.timezone.utc).date()


def day(n):
    """The date n days before today (UTC), as text."""
    return (today() - datetime.timedelta(days=n)).isoformat()


def rows(sql):
    return [tuple(r) for r in DB.sql(sql)]


def insert_events(tag, days):
    """One INSERT statement: for each (date text, count) pair, count events at noon UTC."""
    values = ",".join("('%s', %d)" % d for d in days)
    DB.sql("INSERT INTO analytics_events (source_id, external_ref, entity_id, status,"
           " processing_ms, amount_cents, occurred_at)"
           " SELECT (SELECT id FROM event_sources WHERE slug = 'stripe'),"
           " 'late-%s-' || v.d || '-' || g, 'entity-late', 'success', 10, 5,"
           " (v.d::date + time '12:00') AT TIME ZONE 'UTC'"
           " FROM (VALUES %s) v(d, n), generate_series(1, v.n) g" % (tag, values))


def make_due(slug, window):
    """The pair's interval has passed: its next scheduler pass plans it."""
    DB.sql("SELECT count(*) FROM refresh_due()")  # gives every pair its schedule row
    DB.sql("UPDATE refresh_schedule SET last_pass_at = now() - interval '1 day'"
           " WHERE report_slug = '%s' AND window_name = '%s'" % (slug, window))


def passed_since_made_due(slug, window):
    return rows("SELECT last_pass_at > now() - interval '1 hour' FROM refresh_schedule"
                " WHERE report_slug = '%s' AND window_name = '%s'" % (slug, window)) == [("t",)]


def scheduler_runs(slug=None, window=None):
    """(report_slug, window, date_from, date_to, status) of scheduler runs, oldest first."""
    where = "requested_by = 'scheduler'"
    if slug:
        where += " AND report_slug = '%s' AND window_name = '%s'" % (slug, window)
    return rows("SELECT report_slug, window_name, date_from::text, date_to::text, status"
                " FROM recompute_runs WHERE " + where + " ORDER BY requested_at, date_from")


def dirty(slug, window):
    return [r[0] for r in rows("SELECT day::text FROM refresh_dirty_days WHERE report_slug = '%s'"
                               " AND window_name = '%s' ORDER BY day" % (slug, window))]


def event_count(lo, hi):
    return int(rows("SELECT count(*) FROM analytics_events WHERE occurred_at >= '%s'::date"
                    "::timestamp AT TIME ZONE 'UTC' AND occurred_at < ('%s'::date + 1)::timestamp"
                    " AT TIME ZONE 'UTC'" % (lo, hi))[0][0])


def volume(svc, lo, hi):
    status, body = svc.get_json("/api/v1/reports/volume-by-period/run?window=day&limit=100"
                                "&date_from=%s&date_to=%s" % (lo, hi))
    assert status == 200, body
    return sum(r["event_count"] for r in body["data"]["rows"]), body["meta"]


def all_done():
    return rows("SELECT count(*) FROM recompute_runs WHERE status IN ('pending', 'running')") \
        == [("0",)]


def service():
    svc = adtest.Service(DB)
    adtest.redis_cli(svc.redis_url, "FLUSHDB")
    return svc.start()


class Held:
    """A psql session of the test's own that ran `sql` inside an open transaction (a lock it
    holds) until release(): the way to make a service statement wait, deterministically."""

    def __init__(self, sql):
        self.p = subprocess.Popen(["psql", DB.conninfo, "-X", "-q", "-At"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        self.p.stdin.write("BEGIN; %s; SELECT 'held';\n" % sql)
        self.p.stdin.flush()
        while self.p.stdout.readline().strip() != "held":
            pass

    def release(self):
        if self.p.stdin.closed:
            return
        self.p.stdin.write("ROLLBACK;\n")
        self.p.stdin.close()
        self.p.wait(10)


def stop_clean(svc):
    rc = svc.stop()
    assert rc == 0, "exit status %s\n%s" % (rc, svc.logs()[-3000:])


def test_changes_are_noted_per_statement():
    DB.sql("DELETE FROM event_change_days")
    insert_events("noted", [(day(40), 3), (day(41), 2)])
    assert rows("SELECT day::text FROM event_change_days ORDER BY day") == \
        [(day(41),), (day(40),)]
    DB.sql("DELETE FROM event_change_days")
    DB.sql("UPDATE analytics_events SET occurred_at = occurred_at - interval '3 days'"
           " WHERE external_ref = 'late-noted-%s-1'" % day(40))
    assert rows("SELECT day::text FROM event_change_days ORDER BY day") == \
        [(day(43),), (day(40),)]
    DB.sql("DELETE FROM event_change_days")
    DB.sql("DELETE FROM analytics_events WHERE external_ref LIKE 'late-noted-%'")
    assert rows("SELECT day::text FROM event_change_days ORDER BY day") == \
        [(day(43),), (day(41),), (day(40),)]
    DB.sql("DELETE FROM event_change_days")
    DB.sql("UPDATE analytics_events SET status = 'failed' WHERE external_ref = 'no-such-event'")
    DB.sql("DELETE FROM analytics_events WHERE external_ref = 'no-such-event'")
    assert rows("SELECT count(*) FROM event_change_days") == [("0",)]


def test_failed_scheduled_run_gives_its_days_back():
    DB.sql("DELETE FROM refresh_dirty_days")
    DB.sql("INSERT INTO recompute_runs (id, report_slug, window_name, date_from, date_to,"
           " requested_by, status, requested_at, started_at, attempts) VALUES"
           " ('00000000-0000-4000-8000-0000000000f1', 'status-counts', 'day', '%s', '%s',"
           "  'scheduler', 'running', now(), now(), 1),"
           " ('00000000-0000-4000-8000-0000000000f2', 'status-counts', 'week', '%s', '%s',"
           "  'operator', 'running', now(), now(), 1)" % (day(31), day(30), day(31), day(30)))
    DB.sql("UPDATE recompute_runs SET status = 'failed', finished_at = now(),"
           " error_message = 'snapshot rebuild failed' WHERE id IN"
           " ('00000000-0000-4000-8000-0000000000f1', '00000000-0000-4000-8000-0000000000f2')")
    assert dirty("status-counts", "day") == [day(31), day(30)]
    assert dirty("status-counts", "week") == []  # a manual run is the operator's to retry
    DB.sql("DELETE FROM recompute_runs WHERE id IN ('00000000-0000-4000-8000-0000000000f1',"
           " '00000000-0000-4000-8000-0000000000f2')")
    DB.sql("DELETE FROM refresh_dirty_days")


def test_changes_while_down_are_refreshed_after_start():
    DB.sql("DELETE FROM event_change_days")
    insert_events("down", [(day(10), 4), (day(11), 2), (day(20), 1)])
    make_due("volume-by-period", "day")
    before = rows("SELECT count(*) FROM recompute_runs")[0][0]
    svc = service()
    try:
        want = [("volume-by-period", "day", day(20), day(20), "completed"),
                ("volume-by-period", "day", day(11), day(10), "completed")]
        assert adtest.wait_until(lambda: sorted(scheduler_runs()) == sorted(want), 30), \
            (scheduler_runs(), svc.logs()[-3000:])
        # Only the due pair ran; every other pair keeps the three days for its own interval.
        assert rows("SELECT count(*) FROM recompute_runs")[0][0] == str(int(before) + 2)
        assert dirty("volume-by-period", "day") == []
        for slug, window in (("status-counts", "day"), ("status-counts", "week"),
                             ("top-entities", "day"), ("top-entities", "week"),
                             ("volume-by-period", "week")):
            assert dirty(slug, window) == [day(20), day(11), day(10)], (slug, window)
        # Audited like a trigger, by `scheduler`, without a request id.
        entries = rows("SELECT a.actor, a.metadata::text FROM audit_entries a JOIN recompute_runs r"
                       " ON a.resource_id = r.id::text WHERE r.requested_by = 'scheduler'"
                       " AND a.action = 'recompute.triggered' ORDER BY r.date_from")
        assert [(a, json.loads(m)) for a, m in entries] == [
            ("scheduler", {"date_from": day(20), "date_to": day(20),
                           "report_slug": "volume-by-period", "requested_via": "scheduler",
                           "window": "day"}),
            ("scheduler", {"date_from": day(11), "date_to": day(10),
                           "report_slug": "volume-by-period", "requested_via": "scheduler",
                           "window": "day"})], entries
        assert "scheduler: run " in svc.logs()
        total, _ = volume(svc, day(20), day(10))
        assert total == event_count(day(20), day(10))
    finally:
        stop_clean(svc)


def test_late_event_shows_in_the_next_read_and_nothing_runs_without_changes():
    svc = service()
    try:
        lo, hi = day(30), day(0)
        total, _ = volume(svc, lo, hi)
        again, meta = volume(svc, lo, hi)
        assert again == total and meta["cache_hit"] is True, meta
        runs_before = len(scheduler_runs())
        insert_events("live", [(day(5), 3)])
        make_due("volume-by-period", "day")
        want = ("volume-by-period", "day", day(5), day(5), "completed")
        assert adtest.wait_until(lambda: want in scheduler_runs(), 30), \
            (scheduler_runs(), svc.logs()[-3000:])
        assert len(scheduler_runs()) == runs_before + 1
        after, meta = volume(svc, lo, hi)
        assert (after, meta["cache_hit"]) == (total + 3, False), (total, after, meta)
        # Nothing changed since: a due pass creates no run.
        make_due("volume-by-period", "day")
        assert adtest.wait_until(lambda: passed_since_made_due("volume-by-period", "day"), 30)
        assert len(scheduler_runs()) == runs_before + 1, scheduler_runs()
    finally:
        stop_clean(svc)


def test_scheduled_and_manual_runs_of_one_scope_never_both_run():
    svc = service()
    # The test's own session holds the rebuild lock of (volume-by-period, day): the first run to
    # reach the only recompute worker stays running until the lock is released.
    holder = Held("SELECT pg_advisory_xact_lock(hashtextextended("
                  "'recompute:volume-by-period:day', 0))")
    try:
        x, y = day(60), day(62)
        insert_events("conflict-x", [(x, 1)])
        make_due("volume-by-period", "day")
        running = ("volume-by-period", "day", x, x, "running")
        assert adtest.wait_until(lambda: running in scheduler_runs(), 30), \
            (scheduler_runs(), svc.logs()[-3000:])
        body = json.dumps({"report_slug": "volume-by-period", "window": "day", "date_from": x,
                           "date_to": x})
        status, _, raw = svc.request("POST", "/api/v1/recomputations", body, KEY)
        assert status == 409, raw
        assert json.loads(raw)["error"]["message"] == \
            "a recompute run for this scope is already in progress"
        # A manual run of scope y waits behind it; a change on y now cannot get a second run.
        body = json.dumps({"report_slug": "volume-by-period", "window": "day", "date_from": y,
                           "date_to": y})
        status, _, raw = svc.request("POST", "/api/v1/recomputations", body, KEY)
        assert status == 202, raw
        insert_events("conflict-y", [(y, 1)])
        make_due("volume-by-period", "day")
        assert adtest.wait_until(lambda: passed_since_made_due("volume-by-period", "day"), 30)
        assert [r for r in scheduler_runs() if r[2] == y] == []
        assert dirty("volume-by-period", "day") == [y]
        holder.release()
        assert adtest.wait_until(all_done, 30), svc.logs()[-3000:]
        # The next due pass refreshes y once more (its change may postdate the manual run).
        make_due("volume-by-period", "day")
        done = ("volume-by-period", "day", y, y, "completed")
        assert adtest.wait_until(lambda: done in scheduler_runs(), 30), scheduler_runs()
        assert dirty("volume-by-period", "day") == []
    finally:
        holder.release()
        stop_clean(svc)


def test_retention_deletes_expired_snapshots_and_reads_say_so():
    DB.sql("DELETE FROM event_change_days")
    # top-entities keeps 180 days of day buckets and 365 of week buckets (DATA.md §4.2).
    DB.sql("INSERT INTO metric_snapshots (report_slug, window_name, bucket_start, dimension_key,"
           " dimension_value, metric_name, metric_value) VALUES"
           " ('top-entities', 'day', '%s', 'entity_id', 'entity-old', 'event_count', 5),"
           " ('top-entities', 'day', '%s', 'entity_id', 'entity-old', 'event_count', 6),"
           " ('top-entities', 'day', '%s', 'entity_id', 'entity-old', 'event_count', 7)"
           % (day(200), day(181), day(180)))
    adtest.redis_cli(adtest.redis_db_url(adtest.default_redis_db()), "FLUSHDB")
    svc = adtest.Service(DB)
    adtest.redis_cli(svc.redis_url, "SET", "report:version:top-entities", "41")
    svc.start()  # the recovery bump of a starting service makes it 42
    try:
        gone = lambda: rows("SELECT bucket_start::date::text FROM metric_snapshots WHERE"
                            " dimension_value = 'entity-old' ORDER BY 1") == [(day(180),)]
        assert adtest.wait_until(gone, 30), svc.logs()[-3000:]
        entries = rows("SELECT actor, resource_type, metadata::text FROM audit_entries"
                       " WHERE action = 'snapshot.retention'")
        assert [(a, t, json.loads(m)) for a, t, m in entries] == [
            ("scheduler", "metric_snapshots",
             {"rows_deleted": 2, "windows": [{"keep_from": day(180), "report_slug": "top-entities",
                                              "rows_deleted": 2, "window": "day"}]})], entries
        assert "retention deleted 2 snapshot row(s) of top-entities day before %s" % day(180) \
            in svc.logs()
        assert adtest.wait_until(lambda: adtest.redis_cli(
            svc.redis_url, "GET", "report:version:top-entities") == "43", 10)
        # A range reaching before the retained days says so, on a miss and on a hit.
        path = ("/api/v1/reports/top-entities/run?window=day&date_from=%s&date_to=%s"
                % (day(200), day(150)))
        for hit in (False, True):
            status, body = svc.get_json(path)
            assert status == 200, body
            assert body["meta"] == {"cache_hit": hit, "freshness": {},
                                    "retained_from": day(180)}, body["meta"]
            assert body["data"]["rows"] == [{"entity_id": "entity-old", "event_count": 7}]
        status, body = svc.get_json("/api/v1/reports/top-entities/run?window=day&date_from=%s"
                                    "&date_to=%s" % (day(180), day(150)))
        assert list(body["meta"]) == ["cache_hit", "freshness"], body["meta"]
        # Weeks: the first Monday on or after today - 365 days.
        keep = today() - datetime.timedelta(days=365)
        keep += datetime.timedelta(days=(7 - keep.weekday()) % 7)
        status, body = svc.get_json("/api/v1/reports/top-entities/run?window=week&date_from=%s"
                                    "&date_to=%s" % (day(366), day(10)))
        assert status == 200 and body["meta"]["retained_from"] == keep.isoformat(), body["meta"]
        # Late events before a window's retention are not refreshed for it.
        DB.sql("DELETE FROM refresh_dirty_days")
        insert_events("ancient", [(day(300), 1)])
        DB.sql("SELECT refresh_collect()")  # or the scheduler's pass did it first
        assert dirty("top-entities", "day") == [] and dirty("volume-by-period", "day") == \
            [day(300)]
        DB.sql("DELETE FROM refresh_dirty_days")
    finally:
        stop_clean(svc)


def test_stop_cancels_a_blocked_scheduler_statement():
    """A graceful stop does not wait for a supervisor statement (pgsession_set_interrupt_fd):
    the scheduler's collection is held behind a table lock, SIGTERM cancels it, exit status 0."""
    svc = service()
    holder = Held("LOCK TABLE event_change_days IN ACCESS EXCLUSIVE MODE")
    try:
        blocked = lambda: rows("SELECT count(*) FROM pg_stat_activity WHERE application_name"
                               " LIKE '%:supervisor:%' AND wait_event_type = 'Lock'") == [("1",)]
        assert adtest.wait_until(blocked, 30), svc.logs()[-3000:]
        rc = svc.stop()  # the master kills what is left after HTTP_SHUTDOWN_TIMEOUT: status 1
        assert rc == 0, (rc, svc.logs()[-3000:])
        assert "scheduler: collecting changes: cancelling (shutting down)" in svc.logs()
    finally:
        holder.release()
        if svc.proc.poll() is None:
            svc.stop()


if __name__ == "__main__":
    DB = adtest.ScratchDatabase()
    try:
        adtest.run([test_changes_are_noted_per_statement,
                    test_failed_scheduled_run_gives_its_days_back,
                    test_changes_while_down_are_refreshed_after_start,
                    test_late_event_shows_in_the_next_read_and_nothing_runs_without_changes,
                    test_scheduled_and_manual_runs_of_one_scope_never_both_run,
                    test_retention_deletes_expired_snapshots_and_reads_say_so,
                    test_stop_cancels_a_blocked_scheduler_statement])
    finally:
        DB.drop()
