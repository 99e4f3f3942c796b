"""tests/integration/test_outages.py: report reads while Redis or PostgreSQL is down (API.md §7).

The shared servers must never be stopped, so Redis and PostgreSQL outages use private servers
from privatestack.py. Also the concurrency proof of the in-memory catalogue and the cache: with
one HTTP worker and a snapshot query stuck behind a table lock, a cached run on the same worker
still answers at once, and a client that gives up on the stuck request does no harm.
"""

import datetime
import json
import subprocess
import threading
import time
import urllib.parse

import adtest
import privatestack

SHARED_DB = None


def rng(days):
    t = datetime.datetime.now(datetime.timezone.utc).date()
    return {"date_from": str(t - datetime.timedelta(days=days)), "date_to": str(t)}


def timed_get(svc, path):
    start = time.time()
    status, hdrs, body = svc.request("GET", path)
    return status, json.loads(body), time.time() - start


def run_path(slug, **params):
    return "/api/v1/reports/%s/run?%s" % (slug, urllib.parse.urlencode(params))


def health(svc):
    return svc.get_json("/api/v1/health")


def redis_trusted(svc):
    """The shared trust flag of DATA.md §7.6, as GET /metrics reports it (any worker)."""
    status, _, body = svc.request("GET", "/metrics")
    return status == 200 and b"\nanalyticsd_redis_trusted 1\n" in body


def test_redis_outage_and_recovery():
    redis = privatestack.PrivateRedis()
    svc = adtest.Service(SHARED_DB, REDIS_URL=redis.url(0)).start()
    try:
        assert adtest.wait_until(lambda: health(svc)[0] == 200, 10), svc.logs()
        path = run_path("status-counts", **rng(31))
        assert timed_get(svc, path)[1]["data"]["cache_hit"] is False
        assert timed_get(svc, path)[1]["data"]["cache_hit"] is True
        version = int(redis.cli("GET", "report:version:status-counts"))

        redis.stop()
        status, body, took = timed_get(svc, path)
        assert status == 200 and body["data"]["cache_hit"] is False, body
        assert body["data"]["source_system"] == "postgres" and body["meta"]["cache_hit"] is False
        assert took < 1.5, took
        for _ in range(10):  # known down: no waiting on Redis at all
            status, body, took = timed_get(svc, path)
            assert status == 200 and body["data"]["cache_hit"] is False and took < 0.3, took
        status, body = health(svc)
        assert status == 503 and body["data"]["status"] == "degraded", body
        assert body["data"]["dependencies"] == {"postgres": "ok", "redis": "unavailable"}

        redis.start()  # the old entry and version survived (SHUTDOWN SAVE)
        assert redis.cli("GET", "report:version:status-counts") == str(version)
        restarted = time.time()
        assert adtest.wait_until(lambda: health(svc)[0] == 200, 5), svc.logs()
        assert time.time() - restarted < 3.0
        assert adtest.wait_until(
            lambda: int(redis.cli("GET", "report:version:status-counts")) == version + 1, 3)
        # The supervisor bumps every report, then trusts Redis again. Until it trusts it, reads
        # bypass the cache: they miss and write nothing. So wait for the trust flag; a miss then
        # proves the bump, and the next read must hit.
        assert adtest.wait_until(lambda: redis_trusted(svc), 3), svc.logs()
        first = timed_get(svc, path)[1]["data"]
        assert first["cache_hit"] is False, first  # the recovery bump invalidated the old entry
        assert timed_get(svc, path)[1]["data"]["cache_hit"] is True
    finally:
        svc.stop()
        redis.destroy()


def test_postgres_outage_and_recovery():
    pg = privatestack.PrivatePostgres()
    svc = None
    try:
        db = privatestack.PrivateDatabase(pg)
        svc = adtest.Service(db).start()
        adtest.redis_cli(svc.redis_url, "FLUSHDB")
        assert adtest.wait_until(lambda: health(svc)[0] == 200, 10), svc.logs()
        # The cached read below must not need PostgreSQL in any worker: each has its catalogue.
        svc.wait_catalogues()
        cached = run_path("top-entities", limit=5, **rng(32))
        uncached = run_path("volume-by-period", **rng(33))
        assert timed_get(svc, cached)[1]["data"]["cache_hit"] is False
        # Warm every worker's view: the entry is in Redis, shared by all workers.
        assert timed_get(svc, cached)[1]["data"]["cache_hit"] is True

        pg.stop()
        assert adtest.wait_until(lambda: health(svc)[0] == 503, 5)
        status, body = health(svc)
        assert body["data"]["status"] == "degraded"
        assert body["data"]["dependencies"] == {"postgres": "unavailable", "redis": "ok"}
        for _ in range(4):  # each worker answers the same
            status, body, took = timed_get(svc, "/api/v1/reports")
            assert (status, body) == (500, {"error": {"code": "internal_error",
                                                      "message": "failed to list reports"}}), body
            assert took < 1.5
            status, body, took = timed_get(svc, "/api/v1/reports/top-entities")
            assert (status, body) == (500, {"error": {"code": "internal_error",
                                                      "message": "internal error"}}), body
            status, body, took = timed_get(svc, run_path("top-entities", date_to="2026-02-31"))
            assert status == 400 and body["error"]["message"] == "date_to must use YYYY-MM-DD format"
            status, body, took = timed_get(svc, cached)
            assert status == 200 and body["data"]["cache_hit"] is True and took < 0.5, \
                (body, svc.logs()[-4000:])
            status, body, took = timed_get(svc, uncached)
            assert (status, body) == (500, {"error": {"code": "internal_error",
                                                      "message": "internal error"}}), body
            assert took < 1.5, took
            status, body, took = timed_get(svc, run_path("no-such-report"))
            assert status == 404 and body["error"]["message"] == "report was not found"

        pg.start()
        assert adtest.wait_until(lambda: health(svc)[0] == 200, 10), svc.logs()
        for _ in range(4):
            assert timed_get(svc, "/api/v1/reports")[0] == 200
            assert timed_get(svc, "/api/v1/reports/top-entities")[0] == 200
            status, body, _ = timed_get(svc, uncached)
            assert status == 200 and body["data"]["rows"], body
    finally:
        if svc is not None:
            svc.stop()
        pg.destroy()


def test_snapshot_query_failure_message():
    svc = adtest.Service(SHARED_DB).start()
    try:
        adtest.redis_cli(svc.redis_url, "FLUSHDB")
        SHARED_DB.sql("ALTER TABLE metric_snapshots RENAME TO metric_snapshots_away")
        try:
            for slug, msg in (("volume-by-period", "failed to run volume report"),
                              ("status-counts", "failed to run status report"),
                              ("top-entities", "failed to run top entities report"),
                              ("amount-by-source", "failed to run amount report")):
                status, body, _ = timed_get(svc, run_path(slug, **rng(34)))
                assert (status, body) == (500, {"error": {"code": "internal_error",
                                                          "message": msg}}), body
        finally:
            SHARED_DB.sql("ALTER TABLE metric_snapshots_away RENAME TO metric_snapshots")
        assert timed_get(svc, run_path("top-entities", **rng(34)))[0] == 200
    finally:
        svc.stop()


def lock_holder_pid(db):
    rows = db.sql("SELECT l.pid FROM pg_locks l WHERE l.relation = 'metric_snapshots'::regclass"
                  " AND l.mode = 'AccessExclusiveLock' AND l.granted")
    return rows[0][0] if rows else None


def stuck_http_queries(db):
    rows = db.sql("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE"
                  " 'pg-analytics-service:http:%' AND wait_event_type = 'Lock'")
    return int(rows[0][0])


def test_cached_read_not_blocked_by_stuck_query():
    svc = adtest.Service(SHARED_DB, HTTP_WORKERS=1).start()
    locker = None
    try:
        adtest.redis_cli(svc.redis_url, "FLUSHDB")
        assert adtest.wait_until(lambda: health(svc)[0] == 200, 10), svc.logs()
        cached = run_path("status-counts", **rng(35))
        timed_get(svc, cached)
        assert timed_get(svc, cached)[1]["data"]["cache_hit"] is True

        locker = subprocess.Popen(
            ["psql", SHARED_DB.conninfo, "-X", "-q", "-c",
             "BEGIN; LOCK TABLE metric_snapshots IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60);"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        holder = adtest.wait_until(lambda: lock_holder_pid(SHARED_DB), 10)
        assert holder, "lock not taken"

        stuck = {}

        def stuck_run():
            stuck["result"] = timed_get(svc, run_path("volume-by-period", **rng(36)))

        t = threading.Thread(target=stuck_run)
        t.start()
        # A client that gives up while its query is stuck: the worker must cancel cleanly.
        try:
            svc.request("GET", run_path("top-entities", **rng(37)), timeout=0.3)
            raise AssertionError("request should be stuck")
        except OSError:
            pass
        assert adtest.wait_until(lambda: stuck_http_queries(SHARED_DB) >= 1, 5)
        assert t.is_alive()
        best = min(timed_get(svc, cached)[2] for _ in range(5))
        status, body, took = timed_get(svc, cached)
        assert status == 200 and body["data"]["cache_hit"] is True
        assert took < 0.05 and best < 0.05, (took, best)
        assert timed_get(svc, "/api/v1/reports/no-such/run")[0] == 404

        SHARED_DB.sql("SELECT pg_terminate_backend(%s)" % holder)
        t.join(10)
        status, body, _ = stuck["result"]
        assert status == 200 and body["data"]["cache_hit"] is False and body["data"]["rows"], body
        assert timed_get(svc, run_path("top-entities", **rng(37)))[0] == 200
    finally:
        if locker is not None:
            locker.wait(10)
        svc.stop()


def main():
    global SHARED_DB
    adtest.require_env()
    SHARED_DB = adtest.ScratchDatabase()
    try:
        adtest.run([test_redis_outage_and_recovery, test_postgres_outage_and_recovery,
                    test_snapshot_query_failure_message, test_cached_read_not_blocked_by_stuck_query])
    finally:
        SHARED_DB.drop()


if __name__ == "__main__":
    main()
