"""tests/integration/test_sms_ingest.py: SMS ingestion end to end (SMS.md §2-§4, §6.6).

Real processes only: a private nats-server with JetStream (privatestack.PrivateNats), a scratch
PostgreSQL database, and `analyticsd serve` with one ingest worker. Events are published with the
stdlib client (natsclient.py) and sent to POST /api/v1/events; the aggregates are read with psql.

Covers: exact counters for a scripted scenario (charges, final and non-final receipts, a second
final receipt, a late receipt, error codes, several charges in one second), outcomes and
rejection rows over NATS (poison messages included) and HTTP, the HTTP route's contract, and
exactly-once under failure: a crash between commit and ack, an ingest worker SIGKILLed every
300 ms while 20,000 events stream in, NATS restarted and PostgreSQL stopped mid-stream.
"""

import datetime
import json
import math
import os
import signal
import tempfile
import threading
import time

import adtest
import natsclient
import privatestack

KEY = {"X-Management-Key": "test-key"}
O1, O2 = "0f000000-0000-4000-8000-000000000001", "0f000000-0000-4000-8000-000000000002"
A1, A2 = "0a000000-0000-4000-8000-000000000001", "0a000000-0000-4000-8000-000000000002"
STREAMS = (("BILLING", "billing.events"), ("SMS_DLR", "sms.dlr.inbound"))
ANLYT_TABLES = ("metrics_hourly, metrics_daily, operator_performance, account_usage_daily, "
                "processed_events, rejected_events, latency_histogram, traffic_seconds")

NATS = None
DB = None


def ts(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def base_hour():
    """Yesterday 10:00 UTC: in the past, inside the retention, and H and H+1 share a day."""
    d = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)
    return d.replace(hour=10, minute=0, second=0, microsecond=0)


def charge(eid, msg, acct, op, at, cost="0.010000", segments=1):
    return {"event_id": eid, "event_type": "billing.message.charged", "occurred_at": ts(at),
            "message_id": msg, "account_id": acct, "operator_id": op, "segments": segments,
            "cost": cost}


def receipt(eid, msg, acct, op, status, submitted, occurred, error=None):
    e = {"event_id": eid, "event_type": "sms.dlr.received", "occurred_at": ts(occurred),
         "message_id": msg, "account_id": acct, "operator_id": op, "status": status,
         "submitted_at": ts(submitted)}
    if error is not None:
        e["error_code"] = error
    return e


def sketch_bucket(ms):
    return -1 if ms <= 0 else math.ceil(math.log(ms) / math.log(1.01 / 0.99))


def publish(subject, events, msg_ids=None):
    with NATS.client() as nc:
        payloads = [e if isinstance(e, bytes) else json.dumps(e).encode() for e in events]
        nc.js_publish_many(subject, payloads, msg_ids=msg_ids)


def pending():
    """Messages not yet acked by the consumers of both streams (None before they exist)."""
    with NATS.client() as nc:
        counts = [nc.consumer_pending(stream, "analytics-service") for stream, _ in STREAMS]
    return None if None in counts else sum(counts)


def wait_drained(timeout=60):
    assert adtest.wait_until(lambda: pending() == 0, timeout, 0.1), \
        "consumers still have %s unacked message(s)" % pending()


def reset():
    DB.sql("TRUNCATE " + ", ".join("anlyt." + t.strip() for t in ANLYT_TABLES.split(",")))
    with NATS.client() as nc:
        for stream, _ in STREAMS:
            if nc.stream_info(stream) is not None:
                nc.js_api("STREAM.PURGE." + stream)


def service(**env):
    base = dict(NATS_URL=NATS.url(), NATS_CREATE_STREAMS="true", INGEST_WORKERS="1")
    base.update(env)
    svc = adtest.Service(DB, **base).start()
    assert adtest.wait_until(lambda: pending() is not None, 15, 0.1), svc.logs()
    return svc


def rows(sql):
    return [tuple(r) for r in DB.sql(sql)]


def hourly(hour):
    return {(r[0], r[1]): tuple(r[2:]) for r in rows(
        "SELECT scope, scope_id, total_messages, delivered_messages, failed_messages, "
        "pending_messages, total_cost, latency_sum_ms, latency_sample_count, peak_tps "
        "FROM anlyt.metrics_hourly WHERE hour_bucket = '%s'" % hour.isoformat())}


# ---- exact counters ----------------------------------------------------------------------------

def test_scripted_scenario_counts_exactly():
    reset()
    svc = service()
    try:
        h = base_hour()
        m = datetime.timedelta(minutes=1)
        s = h + 10 * m  # c1..c3 in one second
        charges = [charge("c1", "m1", A1, O1, s, "0.5", 1),
                   charge("c2", "m2", A1, O1, s + datetime.timedelta(milliseconds=300), "0.25", 2),
                   charge("c3", "m3", A2, O2, s + datetime.timedelta(milliseconds=900), "1.000001",
                          3),
                   charge("c4", "m4", A2, O1, h + 20 * m, "2", 1),
                   charge("c5", "m5", A1, O2, h + 65 * m, "0.1", 1)]
        receipts = [
            receipt("r1", "m1", A1, O1, "DELIVERED", s, s + datetime.timedelta(milliseconds=1500)),
            receipt("r2", "m2", A1, O1, "FAILED", s, s + 2 * m, error="E1"),
            receipt("r3", "m3", A2, O2, "EXPIRED", s, s + 3 * m),
            receipt("r4", "m3", A2, O2, "DELIVERED", s, s + 4 * m),  # second final: duplicate
            receipt("r5", "m4", A2, O1, "ENROUTE", h + 20 * m, h + 21 * m, error="X"),
            receipt("r6", "m4", A2, O1, "ACCEPTED", h + 20 * m, h + 21 * m),
            receipt("r7", "m5", A1, O2, "DELIVERED", h + 65 * m, h + 180 * m),  # late, hour H+1
            receipt("r1", "m1", A1, O1, "DELIVERED", s, s + 9 * m),  # same event_id: duplicate
        ]
        publish("billing.events", charges)
        publish("sms.dlr.inbound", receipts)
        wait_drained()

        late = 115 * 60 * 1000
        assert hourly(h) == {
            ("PLATFORM", "platform"): ("4", "1", "2", "1", "3.750001", "1500", "1", "3"),
            ("OPERATOR", O1): ("3", "1", "1", "1", "2.750000", "1500", "1", "2"),
            ("OPERATOR", O2): ("1", "0", "1", "0", "1.000001", "0", "0", "1"),
            ("ACCOUNT", A1): ("2", "1", "1", "0", "0.750000", "1500", "1", "2"),
            ("ACCOUNT", A2): ("2", "0", "1", "1", "3.000001", "0", "0", "1"),
        }, hourly(h)
        h1 = h + 60 * m
        assert hourly(h1) == {
            ("PLATFORM", "platform"): ("1", "1", "0", "0", "0.100000", str(late), "1", "1"),
            ("OPERATOR", O2): ("1", "1", "0", "0", "0.100000", str(late), "1", "1"),
            ("ACCOUNT", A1): ("1", "1", "0", "0", "0.100000", str(late), "1", "1"),
        }, hourly(h1)
        assert rows("SELECT hour_bucket = '%s', operator_id, total_messages, delivered_messages, "
                    "failed_messages, latency_sum_ms, latency_sample_count, peak_tps, error_count "
                    "FROM anlyt.operator_performance ORDER BY 1 DESC, 2" % h.isoformat()) == [
            ("t", O1, "3", "1", "1", "1500", "1", "2", "2"),
            ("t", O2, "1", "0", "1", "0", "0", "1", "0"),
            ("f", O2, "1", "1", "0", str(late), "1", "1", "0"),
        ]
        assert rows("SELECT account_id, messages_sent, messages_delivered, messages_failed, "
                    "total_cost, total_segments FROM anlyt.account_usage_daily "
                    "WHERE day_bucket = '%sT00:00:00Z' ORDER BY 1" % h.date().isoformat()) == [
            (A1, "3", "2", "1", "0.850000", "4"),
            (A2, "2", "0", "1", "3.000001", "4"),
        ]
        assert rows("SELECT hour_bucket = '%s', scope, scope_id, bucket, n "
                    "FROM anlyt.latency_histogram ORDER BY 1 DESC, 2, 3" % h.isoformat()) == [
            ("t", "OPERATOR", O1, str(sketch_bucket(1500)), "1"),
            ("t", "PLATFORM", "platform", str(sketch_bucket(1500)), "1"),
            ("f", "OPERATOR", O2, str(sketch_bucket(late)), "1"),
            ("f", "PLATFORM", "platform", str(sketch_bucket(late)), "1"),
        ]
        # 12 event ids (r4 included) + the final-receipt keys of m1, m2, m3 and m5
        assert rows("SELECT count(*) FROM anlyt.processed_events") == [("16",)]
        assert rows("SELECT count(*) FROM anlyt.rejected_events") == [("0",)]
        assert rows("SELECT ingested_through = '%s' FROM anlyt.ingest_state"
                    % (h + 65 * m).isoformat()) == [("t",)]
    finally:
        svc.stop()


# ---- outcomes over NATS ------------------------------------------------------------------------

def test_poison_and_invalid_messages_are_recorded_and_never_block():
    reset()
    svc = service()
    try:
        now = datetime.datetime.now(datetime.timezone.utc)
        old = now - datetime.timedelta(days=91)
        future = now + datetime.timedelta(minutes=10)
        garbage = bytes((i * 7 + 13) % 251 for i in range(1024 * 1024 - 512))
        billing = [b"not json", b"[1,2]", garbage,
                   {"event_id": "x1", "event_type": "billing.invoice.created"},  # ignored
                   charge("x2", "mx2", A1, O1, old),
                   charge("x3", "mx3", A1, O1, future),
                   dict(charge("x4", "mx4", A1, O1, now), account_id="nope"),
                   {k: v for k, v in charge("hdr", "mx5", A1, O1, now).items() if k != "event_id"},
                   charge("ok-1", "mok1", A1, O1, now)]
        ids = [None] * (len(billing) - 2) + ["header-id-1", None]
        publish("billing.events", billing, msg_ids=ids)
        publish("sms.dlr.inbound", [
            {"event_id": "y1", "event_type": "billing.message.charged"},
            dict(receipt("y2", "m", A1, O1, "delivered", now, now)),
            receipt("ok-2", "mok1", A1, O1, "DELIVERED", now, now)])
        wait_drained()
        got = rows("SELECT transport, subject, coalesce(event_id, '-'), reason, "
                   "coalesce(field, '-'), length(payload) FROM anlyt.rejected_events "
                   "ORDER BY subject, id")
        assert got == [
            ("nats", "billing.events", "-", "invalid_json", "-", "8"),
            ("nats", "billing.events", "-", "not_an_object", "-", "5"),
            ("nats", "billing.events", "-", "invalid_json", "-", "8192"),
            ("nats", "billing.events", "x2", "too_old", "occurred_at", got[3][5]),
            ("nats", "billing.events", "x3", "in_future", "occurred_at", got[4][5]),
            ("nats", "billing.events", "x4", "invalid_field", "account_id", got[5][5]),
            ("nats", "sms.dlr.inbound", "y1", "unknown_event_type", "event_type", got[6][5]),
            ("nats", "sms.dlr.inbound", "y2", "invalid_field", "status", got[7][5]),
        ], got
        assert rows("SELECT event_id FROM anlyt.processed_events ORDER BY 1") == [
            ("dlr-final:mok1",), ("header-id-1",), ("ok-1",), ("ok-2",)]
        assert rows("SELECT total_messages, delivered_messages FROM anlyt.metrics_hourly "
                    "WHERE scope = 'PLATFORM'") == [("2", "1")]
    finally:
        svc.stop()


# ---- retention of the dedupe window -----------------------------------------------------------

def test_supervisor_purges_dedupe_records_past_their_window():
    reset()
    DB.sql("INSERT INTO anlyt.processed_events (event_id, event_type, processed_at) VALUES "
           "('old-1', 't', now() - interval '49 hours'), ('new-1', 't', now() - interval '47 hours')")
    DB.sql("INSERT INTO anlyt.traffic_seconds VALUES (now() - interval '49 hours', 'PLATFORM', "
           "'platform', 3), (now() - interval '1 hour', 'PLATFORM', 'platform', 2)")
    DB.sql("INSERT INTO anlyt.rejected_events (transport, reason, payload, received_at) VALUES "
           "('http', 'invalid_json', '', now() - interval '31 days'), "
           "('http', 'invalid_json', '', now() - interval '29 days')")
    svc = adtest.Service(DB).start()  # the supervisor's first upkeep follows its startup
    try:
        gone = lambda: rows("SELECT (SELECT string_agg(event_id, ',') FROM anlyt.processed_events),"
                            " (SELECT sum(n) FROM anlyt.traffic_seconds),"
                            " (SELECT count(*) FROM anlyt.rejected_events)")
        assert adtest.wait_until(lambda: gone() == [("new-1", "2", "1")], 10), gone()
        assert "sms purge: dedupe records: 1 row(s) deleted" in svc.logs()
    finally:
        svc.stop()


# ---- the HTTP route ----------------------------------------------------------------------------

def post_events(svc, body, headers=KEY):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, hdrs, raw = svc.request("POST", "/api/v1/events", body=data,
                                    headers=dict(headers, **{"Content-Type": "application/json"}))
    return status, hdrs, json.loads(raw) if raw else None


def test_http_route_contract():
    reset()
    svc = adtest.Service(DB).start()  # no NATS at all: the route still works
    try:
        now = datetime.datetime.now(datetime.timezone.utc)
        for method in ("GET", "HEAD", "PUT"):
            status, hdrs, _ = svc.request(method, "/api/v1/events", headers=KEY)
            assert (status, hdrs.get("allow")) == (405, "POST"), (method, status, hdrs)
        status, _, body = post_events(svc, {"events": []}, headers={})
        assert status == 401, body
        msg = "events must be a non-empty array of at most 1000 objects"
        for bad in (b"nope", b"[]", b"{}", {"events": {}}, {"events": []},
                    {"events": [{}] * 1001}, b""):
            status, _, body = post_events(svc, bad)
            assert (status, body["error"]["message"]) == (400, msg), (bad, status, body)

        item = lambda e, subject="billing.events": dict(e, subject=subject)
        batch = [item(charge("h1", "hm1", A1, O1, now)),
                 item(charge("h1", "hm1", A1, O1, now)),
                 item({"event_id": "h2", "event_type": "billing.refund"}),
                 item({"event_type": "billing.message.charged"}),
                 [1],
                 {"event_id": 7, "event_type": "x"},
                 item(charge("h3", "hm3", A1, O1, now), subject="sms.other"),
                 item(receipt("h4", "hm1", A1, O1, "DELIVERED", now, now), "sms.dlr.inbound")]
        status, hdrs, body = post_events(svc, {"events": batch})
        assert status == 200 and hdrs["content-type"].startswith("application/json"), body
        assert body == {"data": {"accepted": 2, "duplicate": 1, "ignored": 1, "rejected": 4,
                                 "results": [
            {"index": 0, "event_id": "h1", "outcome": "accepted"},
            {"index": 1, "event_id": "h1", "outcome": "duplicate"},
            {"index": 2, "event_id": "h2", "outcome": "ignored"},
            {"index": 3, "event_id": None, "outcome": "rejected", "reason": "missing_field",
             "field": "event_id"},
            {"index": 4, "event_id": None, "outcome": "rejected", "reason": "not_an_object"},
            {"index": 5, "event_id": None, "outcome": "rejected", "reason": "missing_field",
             "field": "subject"},
            {"index": 6, "event_id": "h3", "outcome": "rejected", "reason": "invalid_field",
             "field": "subject"},
            {"index": 7, "event_id": "h4", "outcome": "accepted"}]}}, body
        # A retry is all duplicates (rejections are recorded again, as received).
        status, _, body = post_events(svc, {"events": batch})
        assert (body["data"]["accepted"], body["data"]["duplicate"]) == (0, 3), body
        assert rows("SELECT total_messages, delivered_messages FROM anlyt.metrics_hourly "
                    "WHERE scope = 'PLATFORM'") == [("1", "1")]
        assert rows("SELECT transport, count(*) FROM anlyt.rejected_events GROUP BY 1") == [
            ("http", "8")]

        # 1 MiB is the limit of this route only: just under it is accepted, above it is 413.
        pad = "p" * 700
        big = {"events": [dict(item(charge("b%d" % i, "bm%d" % i, A2, O2, now)), pad=pad)
                          for i in range(1000)]}
        raw = json.dumps(big).encode()
        raw = raw[:-1] + b"," + b'"z":"' + b"z" * (1024 * 1024 - len(raw) - 7) + b'"}'
        assert len(raw) == 1024 * 1024
        status, _, body = post_events(svc, raw)
        assert (status, body["data"]["accepted"]) == (200, 1000), (status, body)
        status, _, body = post_events(svc, raw[:-2] + b'z"}')
        assert (status, body["error"]["code"]) == (413, "payload_too_large"), (status, body)
        status = svc.request("POST", "/api/v1/recomputations", body=b"x" * 70000, headers=KEY)[0]
        assert status == 413  # the other routes keep their 64 KiB
    finally:
        svc.stop()


# ---- exactly once under failure ----------------------------------------------------------------

def charges(prefix, n, at):
    ops, accts = (O1, O2), (A1, A2)
    return [charge("%s-%d" % (prefix, i), "%s-m%d" % (prefix, i), accts[i % 2], ops[i % 2],
                   at + datetime.timedelta(milliseconds=i), "0.001") for i in range(n)]


def platform_total():
    r = rows("SELECT coalesce(sum(total_messages), 0) FROM anlyt.metrics_hourly "
             "WHERE scope = 'PLATFORM'")
    return int(r[0][0])


def test_two_instances_and_three_workers_share_the_consumers_exactly():
    """Two services on one database and one NATS (3 ingest workers on the same durable
    consumers) apply batches that touch the same hot rows at once: no deadlock, exact counts."""
    reset()
    a = service(INGEST_WORKERS="2")
    b = service()
    try:
        at = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=10)
        events = charges("s", 10000, at)
        sent = lambda e: datetime.datetime.fromisoformat(e["occurred_at"].replace("Z", "+00:00"))
        dlrs = [receipt("s-d%d" % i, e["message_id"], e["account_id"], e["operator_id"],
                        "DELIVERED" if i % 4 else "FAILED", sent(e),
                        sent(e) + datetime.timedelta(seconds=1))
                for i, e in enumerate(events)]  # each receipt in its message's hour
        for i in range(0, 10000, 2500):
            publish("billing.events", events[i:i + 2500])
            publish("sms.dlr.inbound", dlrs[i:i + 2500])
        wait_drained(90)
        assert rows("SELECT sum(total_messages), sum(delivered_messages), sum(failed_messages), "
                    "sum(pending_messages) FROM anlyt.metrics_hourly WHERE scope = 'PLATFORM'") == [
            ("10000", "7500", "2500", "0")]
        assert rows("SELECT count(*) FROM anlyt.processed_events") == [("30000",)]
        logs = a.logs() + b.logs()
        assert "deadlock" not in logs and "will be redelivered" not in logs, logs[-4000:]
        assert len(a.pids("ingest worker")) == 2 and len(b.pids("ingest worker")) == 1
    finally:
        a.stop()
        b.stop()


def test_crash_between_commit_and_ack_is_redelivered_as_duplicates():
    reset()
    marker = os.path.join(tempfile.mkdtemp(prefix="crash-once-"), "crashed")
    svc = service(ANALYTICSD_TEST_INGEST_CRASH_ONCE=marker)
    try:
        first = svc.pids("ingest worker")
        publish("billing.events", charges("cc", 300, datetime.datetime.now(
            datetime.timezone.utc) - datetime.timedelta(minutes=5)))
        assert adtest.wait_until(lambda: os.path.exists(marker), 15), svc.logs()
        wait_drained(60)
        assert svc.pids("ingest worker") != first, "the ingest worker did not crash"
        assert platform_total() == 300
        assert rows("SELECT count(*) FROM anlyt.processed_events") == [("300",)]
        assert "TEST HOOK: crashing after a commit" in svc.logs()
    finally:
        svc.stop()


def test_ingest_worker_killed_every_300ms_counts_20000_exactly():
    reset()
    svc = service()
    stop = threading.Event()
    kills = []

    def killer():
        while not stop.is_set():
            for pid in svc.pids("ingest worker"):
                try:
                    os.kill(pid, signal.SIGKILL)
                    kills.append(pid)
                except ProcessLookupError:
                    pass
            stop.wait(0.3)

    try:
        at = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=30)
        events = charges("k", 20000, at)
        t = threading.Thread(target=killer)
        t.start()
        for i in range(0, 20000, 1000):
            publish("billing.events", events[i:i + 1000])
            time.sleep(0.1)
        time.sleep(1.0)
        stop.set()
        t.join()
        wait_drained(90)
        assert len(kills) >= 5, kills
        assert platform_total() == 20000
        assert rows("SELECT count(*) FROM anlyt.processed_events") == [("20000",)]
        assert rows("SELECT sum(total_messages), sum(total_cost) FROM anlyt.metrics_hourly "
                    "WHERE scope = 'OPERATOR'") == [("20000", "20.000000")]
        assert svc.proc.poll() is None
    finally:
        stop.set()
        svc.stop()


def test_nats_restart_and_postgres_outage_mid_stream_count_exactly():
    pg = privatestack.PrivatePostgres()
    db = privatestack.PrivateDatabase(pg, name="smsout")
    svc = adtest.Service(db, NATS_URL=NATS.url(), NATS_CREATE_STREAMS="true").start()
    global DB
    saved, DB = DB, db
    try:
        reset()
        assert adtest.wait_until(lambda: pending() is not None, 15, 0.1), svc.logs()
        worker = svc.pids("ingest worker")
        at = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=20)
        events = charges("o", 6000, at)
        publish("billing.events", events[:2000])

        NATS.stop()
        nats_state = lambda: svc.get_json("/api/v1/health")
        assert adtest.wait_until(lambda: nats_state()[1]["data"]["dependencies"]["nats"] ==
                                 "unavailable", 10), nats_state()
        assert nats_state()[0] == 200  # NATS alone never makes health 503
        NATS.start()
        publish("billing.events", events[2000:4000])
        assert adtest.wait_until(lambda: nats_state()[1]["data"]["dependencies"]["nats"] == "ok",
                                 15), svc.logs()

        pg.stop()
        publish("billing.events", events[4000:])
        status, _, body = post_events(svc, {"events": [dict(events[0], subject="billing.events")]})
        assert (status, body) == (503, {"error": {"code": "service_unavailable",
                                                  "message": "event store is unavailable"}})
        time.sleep(2)
        pg.start()
        wait_drained(90)
        status, _, body = post_events(svc, {"events": [dict(events[0], subject="billing.events")]})
        assert (status, body["data"]["duplicate"]) == (200, 1), body
        assert platform_total() == 6000
        assert rows("SELECT count(*) FROM anlyt.processed_events") == [("6000",)]
        assert svc.pids("ingest worker") == worker, \
            "an outage made the ingest worker exit:\n" + svc.logs()[-6000:]
    finally:
        DB = saved
        svc.stop()
        pg.destroy()


def main():
    global NATS, DB
    NATS = privatestack.PrivateNats()
    DB = adtest.ScratchDatabase(seed=False)
    try:
        only = os.environ.get("SMS_TEST_ONLY")  # one test by name, when debugging
        tests = [test_scripted_scenario_counts_exactly,
                 test_poison_and_invalid_messages_are_recorded_and_never_block,
                 test_http_route_contract,
                 test_supervisor_purges_dedupe_records_past_their_window,
                 test_two_instances_and_three_workers_share_the_consumers_exactly,
                 test_crash_between_commit_and_ack_is_redelivered_as_duplicates,
                 test_ingest_worker_killed_every_300ms_counts_20000_exactly,
                 test_nats_restart_and_postgres_outage_mid_stream_count_exactly]
        adtest.run([t for t in tests if not only or t.__name__ == only])
    finally:
        DB.drop()
        NATS.destroy()


if __name__ == "__main__":
    main()
