"""tests/integration/test_sms_upkeep.py: the deployment-wide SMS upkeep (SMS.md §3.3, §5).

Real processes only: a scratch PostgreSQL database, a private nats-server (privatestack), and one
or two `analyticsd serve` over them. Covers: one leader among two instances (the PostgreSQL
advisory lock, logs), the rollup run by the leader only and equal to the hourly rows (late
receipts included), takeover when the leader stops or its supervisor is killed; retention with
the clock of the data (events 89, 91 and 400 days old; partitions, daily rows, dedupe records and
rejections past their retention); and an event whose month has no partition, which is redelivered
until the partition exists and then counted once.
"""

import datetime
import json
import os
import signal

import adtest
import privatestack

KEY = {"X-Management-Key": "test-key", "Content-Type": "application/json"}
O1, O2 = "0f000000-0000-4000-8000-000000000011", "0f000000-0000-4000-8000-000000000012"
A1 = "0a000000-0000-4000-8000-000000000011"
LEADER_LOCK = "classid = 1634626676 AND objid = 1 AND objsubid = 2"
TABLES = ("metrics_hourly", "metrics_daily", "operator_performance", "account_usage_daily",
          "processed_events", "rejected_events", "latency_histogram", "latency_histogram_daily",
          "traffic_seconds", "rollup_days")

NATS = None
DB = None


def ts(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def charge(eid, at, op=O1, cost="0.010000"):
    return {"subject": "billing.events", "event_id": eid, "event_type": "billing.message.charged",
            "occurred_at": ts(at), "message_id": "m-" + eid, "account_id": A1, "operator_id": op,
            "segments": 1, "cost": cost}


def receipt(eid, msg_eid, at, status, latency_ms, op=O1):
    return {"subject": "sms.dlr.inbound", "event_id": eid, "event_type": "sms.dlr.received",
            "occurred_at": ts(at + datetime.timedelta(milliseconds=latency_ms)),
            "message_id": "m-" + msg_eid, "account_id": A1, "operator_id": op, "status": status,
            "submitted_at": ts(at)}


def post(svc, events):
    status, _, raw = svc.request("POST", "/api/v1/events", json.dumps({"events": events}).encode(),
                                 KEY)
    return status, json.loads(raw) if raw else None


def reset():
    DB.sql("TRUNCATE " + ", ".join("anlyt." + t for t in TABLES))
    DB.sql("UPDATE anlyt.ingest_state SET ingested_through = NULL")


def rows(sql):
    return [tuple(r) for r in DB.sql(sql)]


def daily_mismatches():
    """Days whose metrics_daily rows differ from the sums of their hours (every scope)."""
    return rows("""
        WITH h AS (
            SELECT date_trunc('day', hour_bucket) AS day, scope, scope_id,
                   sum(total_messages) AS t, sum(delivered_messages) AS d,
                   sum(failed_messages) AS f, sum(total_cost) AS c, sum(latency_sum_ms) AS ls,
                   sum(latency_sample_count) AS lc, max(peak_tps) AS p
            FROM anlyt.metrics_hourly GROUP BY 1, 2, 3)
        SELECT coalesce(h.day, m.day_bucket), coalesce(h.scope, m.scope)
        FROM h FULL JOIN anlyt.metrics_daily m
          ON m.day_bucket = h.day AND m.scope = h.scope AND m.scope_id = h.scope_id
        WHERE (h.t, h.d, h.f, h.c, h.ls, h.lc, h.p, greatest(h.t - h.d - h.f, 0))
              IS DISTINCT FROM (m.total_messages, m.delivered_messages, m.failed_messages,
                                m.total_cost, m.latency_sum_ms, m.latency_sample_count,
                                m.peak_tps, m.pending_messages)""")


def rolled_up():
    return rows("SELECT count(*) FROM anlyt.rollup_days") == [("0",)] and not daily_mismatches()


def leaders():
    return rows("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND "
                "database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND " + LEADER_LOCK)


LEADS = "leadership: this instance now runs"


def service(**env):
    base = dict(NATS_URL=NATS.url(), NATS_CREATE_STREAMS="true", SMS_ROLLUP_INTERVAL="1s")
    base.update(env)
    return adtest.Service(DB, **base).start()


# ---- leadership and the rollup ------------------------------------------------------------------

def test_one_leader_rolls_up_and_another_takes_over():
    reset()
    a, b = service(), service()
    try:
        assert adtest.wait_until(lambda: (LEADS in a.logs()) + (LEADS in b.logs()) == 1, 10), \
            a.logs()[-2000:] + b.logs()[-2000:]
        assert leaders() == [("1",)]
        leader, other = (a, b) if LEADS in a.logs() else (b, a)

        yesterday = (now() - datetime.timedelta(days=1)).replace(hour=10, minute=0, second=0,
                                                                  microsecond=0)
        today = now().replace(minute=0, second=0, microsecond=0) - datetime.timedelta(hours=1)
        if today.date() != now().date():
            # Just after midnight the hour before is yesterday's last: move the other set a day
            # further back, so the events still fall on two days, both in the past.
            yesterday -= datetime.timedelta(days=1)
        events = []
        for i in range(30):
            at = (yesterday if i % 2 else today) + datetime.timedelta(minutes=i)
            events.append(charge("c%d" % i, at, op=O1 if i % 3 else O2))
            if i % 5:
                events.append(receipt("r%d" % i, "c%d" % i, at,
                                      "DELIVERED" if i % 4 else "FAILED", 100 * i,
                                      op=O1 if i % 3 else O2))
        status, body = post(other, events)  # through the instance that does not lead
        assert status == 200 and body["data"]["accepted"] == len(events), body
        assert adtest.wait_until(rolled_up, 10), (daily_mismatches(), leader.logs()[-2000:])
        assert rows("SELECT count(DISTINCT day_bucket) FROM anlyt.metrics_daily") == [("2",)]
        assert "sms rollup: " in leader.logs()
        assert "sms rollup" not in other.logs() and "sms maintenance" not in other.logs()
        # The daily sketch of a rolled-up day equals the sum of its hours' sketches.
        assert rows("SELECT count(*) FROM (SELECT scope, scope_id, bucket, sum(n) FROM "
                    "anlyt.latency_histogram GROUP BY 1, 2, 3 EXCEPT SELECT scope, scope_id, "
                    "bucket, sum(n) FROM anlyt.latency_histogram_daily GROUP BY 1, 2, 3) x") == \
            [("0",)]
        assert rows("SELECT count(*) FROM anlyt.operator_performance "
                    "WHERE delivered_messages > 0 AND latency_p95_ms IS NULL") == [("0",)]

        # The leader stops: the other instance takes over and rolls up a late receipt for
        # yesterday (a day already rolled up).
        assert leader.stop() == 0
        assert adtest.wait_until(lambda: LEADS in other.logs(), 10), other.logs()[-2000:]
        late = receipt("late", "c5", yesterday + datetime.timedelta(minutes=5), "DELIVERED", 5000)
        assert post(other, [late])[1]["data"]["accepted"] == 1
        assert adtest.wait_until(rolled_up, 10), daily_mismatches()
        assert "sms rollup: 1 day(s) recomputed" in other.logs()

        # A leader whose supervisor dies loses the lock with its session; a supervisor (the
        # restarted one) leads again.
        sup = other.pids("supervisor")
        assert len(sup) == 1
        os.kill(sup[0], signal.SIGKILL)
        assert adtest.wait_until(lambda: other.pids("supervisor") not in ([], sup), 10)
        assert adtest.wait_until(lambda: other.logs().count(LEADS) == 2, 15), other.logs()[-3000:]
        assert leaders() == [("1",)]
    finally:
        a.stop()
        b.stop()


# ---- retention with the clock of the data -------------------------------------------------------

def test_retention_keeps_drops_and_rejects_by_age():
    reset()
    DB.sql("SELECT anlyt.ensure_partitions(now() - interval '200 days', "
           "now() - interval '200 days')")
    old_month = (now() - datetime.timedelta(days=200)).strftime("%Y_%m")
    DB.sql("INSERT INTO anlyt.metrics_hourly (hour_bucket, scope, scope_id, total_messages) "
           "VALUES (date_trunc('hour', now() - interval '200 days'), 'PLATFORM', 'platform', 7)")
    for table, cols in (("metrics_daily", "scope, scope_id, total_messages"),
                        ("account_usage_daily", "account_id, messages_sent"),
                        ("latency_histogram_daily", "scope, scope_id, bucket, n")):
        values = {"metrics_daily": "'PLATFORM', 'platform', 3",
                  "account_usage_daily": "'%s', 3" % A1,
                  "latency_histogram_daily": "'PLATFORM', 'platform', 10, 3"}[table]
        DB.sql("INSERT INTO anlyt.%s (day_bucket, %s) VALUES "
               "(date_trunc('day', now() - interval '400 days'), %s), "
               "(date_trunc('day', now() - interval '300 days'), %s)" % (table, cols, values,
                                                                       values))
    DB.sql("INSERT INTO anlyt.rejected_events (transport, reason, payload, received_at) VALUES "
           "('http', 'invalid_json', '', now() - interval '31 days'), "
           "('http', 'invalid_json', '', now() - interval '29 days')")
    DB.sql("INSERT INTO anlyt.processed_events (event_id, event_type, processed_at) VALUES "
           "('old', 't', now() - interval '49 hours'), ('new', 't', now() - interval '47 hours')")

    svc = service()
    try:
        t = now()
        status, body = post(svc, [charge("d89", t - datetime.timedelta(days=89)),
                                  charge("d91", t - datetime.timedelta(days=91)),
                                  charge("d400", t - datetime.timedelta(days=400))])
        assert status == 200, body
        assert [(r["outcome"], r.get("reason"), r.get("field")) for r in body["data"]["results"]] \
            == [("accepted", None, None), ("rejected", "too_old", "occurred_at"),
                ("rejected", "too_old", "occurred_at")]
        assert rows("SELECT event_id FROM anlyt.rejected_events WHERE reason = 'too_old' "
                    "ORDER BY event_id") == [("d400",), ("d91",)]

        # The leader's first maintenance pass ran at startup.
        gone = lambda: rows("SELECT to_regclass('anlyt.metrics_hourly_p%s') IS NULL" % old_month)
        assert adtest.wait_until(lambda: gone() == [("t",)], 10), svc.logs()[-2000:]
        assert rows("SELECT count(*) FROM pg_class WHERE relname LIKE '%%_p%s'" % old_month) == \
            [("0",)]
        assert "sms partitions: dropped " in svc.logs()
        for table in ("metrics_daily", "account_usage_daily", "latency_histogram_daily"):
            assert rows("SELECT date_trunc('day', now() - interval '300 days') = min(day_bucket), "
                        "count(*) FILTER (WHERE day_bucket < now() - interval '200 days') "
                        "FROM anlyt." + table) == [("t", "1")], table
        assert rows("SELECT count(*) FROM anlyt.rejected_events WHERE reason = 'invalid_json'") \
            == [("1",)]
        assert rows("SELECT string_agg(event_id, ',' ORDER BY event_id) FROM "
                    "anlyt.processed_events WHERE event_type = 't'") == [("new",)]

        # The 89-day-old event is kept, in hourly rows, and read from them.
        assert rows("SELECT sum(total_messages) FROM anlyt.metrics_hourly "
                    "WHERE scope = 'PLATFORM'") == [("1",)]
        day89 = (t - datetime.timedelta(days=89)).date().isoformat()
        status, answer = svc.get_json("/api/v1/sms/summary?date_from=%s&date_to=%s" % (day89,
                                                                                       day89))
        assert status == 200 and answer["data"]["total_messages"] == 1, answer
        # A day before the hourly retention is read from metrics_daily.
        day300 = (t - datetime.timedelta(days=300)).date().isoformat()
        status, answer = svc.get_json("/api/v1/sms/summary?date_from=%s&date_to=%s" % (day300,
                                                                                       day300))
        assert status == 200 and answer["data"]["total_messages"] == 3, answer
    finally:
        svc.stop()


# ---- no partition: redelivered until one exists -------------------------------------------------

def test_event_without_a_partition_waits_for_it():
    reset()
    svc = service()
    try:
        assert adtest.wait_until(lambda: "sms maintenance: pass done" in svc.logs(), 10)
        at = now() - datetime.timedelta(days=60)
        month = at.strftime("%Y_%m")
        for table in ("metrics_hourly", "operator_performance", "latency_histogram"):
            DB.sql("DROP TABLE anlyt.%s_p%s" % (table, month))
        event = charge("nopart", at)
        status, body = post(svc, [event])
        assert (status, body["error"]["message"]) == (503, "event store is unavailable"), body
        del event["subject"]
        with NATS.client() as nc:
            nc.js_publish_many("billing.events", [json.dumps(event).encode()], msg_ids=None)
        assert adtest.wait_until(lambda: "will be redelivered" in svc.logs(), 10), \
            svc.logs()[-2000:]
        assert rows("SELECT count(*) FROM anlyt.processed_events") == [("0",)]
        DB.sql("SELECT anlyt.ensure_partitions(now() - interval '60 days', "
               "now() - interval '60 days')")
        counted = lambda: rows("SELECT sum(total_messages) FROM anlyt.metrics_hourly "
                               "WHERE scope = 'PLATFORM'") == [("1",)]
        assert adtest.wait_until(counted, 15), svc.logs()[-2000:]
        status, body = post(svc, [dict(event, subject="billing.events")])
        assert body["data"]["results"][0]["outcome"] == "duplicate", body
        assert counted()
    finally:
        svc.stop()


if __name__ == "__main__":
    NATS = privatestack.PrivateNats()
    DB = adtest.ScratchDatabase(seed=False)
    try:
        tests = [test_one_leader_rolls_up_and_another_takes_over,
                 test_retention_keeps_drops_and_rejects_by_age,
                 test_event_without_a_partition_waits_for_it]
        only = os.environ.get("SMS_TEST_ONLY")
        adtest.run([t for t in tests if not only or t.__name__ == only])
    finally:
        DB.drop()
        NATS.destroy()
