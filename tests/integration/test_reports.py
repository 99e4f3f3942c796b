"""tests/integration/test_reports.py: the public report API against the real service.

GET /api/v1/reports, /reports/{slug} and /reports/{slug}/run (API.md §2, §4.2–§4.4, §5.1, §5.2)
over a freshly seeded scratch database: every validation message and the check order, routing
outcomes on report paths, the list facts of §4.2, the ReportDefinition bytes of §5.1, the
full-range facts of DATA.md §8.1/§8.3 for both windows, the week lower bound (F11), unmatchable
text (§2.3), HEAD, and catalogue changes reaching the in-memory catalogue within 5 s.
"""

import datetime
import json
import time
import urllib.parse

import adtest

DB = None
SVC = None
MAX_DAYS = 366

VOLUME_DEF = (b'{"data":{"slug":"volume-by-period","name":"Volume by Period","description":"Event volume'
              b' grouped by day or week with optional source breakdown.","cache_ttl_seconds":120,'
              b'"default_window":"day","allowed_windows":["day","week"],"supported_filters":'
              b'{"breakdown":"period|source","source":"source slug","window":"day|week"},'
              b'"last_rebuilt_at":"%s"}}\n')  # the newest completed (seed) run of the report


def today():
    return datetime.datetime.now(datetime.timezone.utc).date()


def full_range():
    return {"date_from": str(today() - datetime.timedelta(days=95)), "date_to": str(today())}


def get(path):
    status, hdrs, body = SVC.request("GET", path)
    assert hdrs.get("content-type") == "application/json", hdrs
    assert body.endswith(b"\n"), body
    return status, json.loads(body)


def run(slug, raw_query=None, **params):
    q = raw_query if raw_query is not None else urllib.parse.urlencode(params)
    return get("/api/v1/reports/%s/run?%s" % (slug, q))


def expect_error(status_body, status, message):
    st, body = status_body
    assert st == status, (st, body)
    assert body == {"error": {"code": {400: "invalid_request", 404: "not_found", 405:
                                       "method_not_allowed", 500: "internal_error"}[status],
                              "message": message}}, body


def ok_rows(status_body):
    st, body = status_body
    assert st == 200, (st, body)
    return body["data"]["rows"]


# ---- validation and check order -----------------------------------------------------------

def test_date_messages_and_order():
    bad_to = "date_to must use YYYY-MM-DD format"
    expect_error(run("volume-by-period", date_to="2026-13-01"), 400, bad_to)
    expect_error(run("volume-by-period", date_to="x", date_from="y"), 400, bad_to)
    expect_error(run("volume-by-period", raw_query="date_to=%202026-01-01"), 400, bad_to)
    expect_error(run("volume-by-period", date_from="2026-02-30"), 400,
                 "date_from must use YYYY-MM-DD format")
    expect_error(run("volume-by-period", date_from="2026-02-02", date_to="2026-02-01"), 400,
                 "date_from must be on or before date_to")
    # Dates come before the report lookup; the window comes after it.
    expect_error(run("no-such-report", date_to="bad"), 400, bad_to)
    expect_error(run("no-such-report", window="month"), 404, "report was not found")
    expect_error(run("volume-by-period", window="month"), 400, "window must be either day or week")


def test_span_limit():
    t = today()
    span_max = {"date_from": str(t - datetime.timedelta(days=MAX_DAYS - 1)), "date_to": str(t)}
    span_over = {"date_from": str(t - datetime.timedelta(days=MAX_DAYS)), "date_to": str(t)}
    assert run("status-counts", **span_max)[0] == 200
    msg = "date range exceeds %d days" % MAX_DAYS
    expect_error(run("status-counts", **span_over), 400, msg)
    # Window before span, span before breakdown.
    expect_error(run("status-counts", window="year", **span_over), 400,
                 "window must be either day or week")
    expect_error(run("status-counts", breakdown="bad", **span_over), 400, msg)


def test_breakdown_limit_offset_rules():
    bmsg = "breakdown must be one of source, status, period"
    lmsg = "limit must be between 1 and 100"
    omsg = "offset must be non-negative"
    expect_error(run("volume-by-period", breakdown="Source"), 400, bmsg)
    expect_error(run("volume-by-period", breakdown="entity", limit="0"), 400, bmsg)
    expect_error(run("volume-by-period", limit="0", offset="-1"), 400, lmsg)
    expect_error(run("volume-by-period", limit="101"), 400, lmsg)
    expect_error(run("volume-by-period", limit="-1"), 400, lmsg)
    expect_error(run("volume-by-period", offset="-1"), 400, omsg)
    fr = full_range()
    q = "date_from=%s&date_to=%s" % (fr["date_from"], fr["date_to"])
    assert len(ok_rows(run("top-entities", raw_query=q + "&limit=%2B5"))) == 5
    assert len(ok_rows(run("top-entities", raw_query=q + "&limit=+5"))) == 50  # " 5": default
    assert len(ok_rows(run("top-entities", raw_query=q + "&limit=007"))) == 7
    assert len(ok_rows(run("top-entities", raw_query=q + "&limit=abc"))) == 50
    assert len(ok_rows(run("top-entities", raw_query=q + "&limit=99999999999999999999"))) == 50
    assert len(ok_rows(run("top-entities", raw_query=q + "&limit=100"))) == 100
    assert ok_rows(run("top-entities", raw_query=q + "&limit=1&offset=abc"))[0]["entity_id"] == \
        "entity-10"
    assert ok_rows(run("top-entities", raw_query=q + "&limit=1&offset=%2B1"))[0]["entity_id"] == \
        "entity-11"
    # Trimmed breakdown and window; Limit is not limit.
    rows = ok_rows(run("volume-by-period", raw_query=q + "&breakdown=%20source%20&Limit=1"))
    assert len(rows) == 50 and set(rows[0]) == {"bucket_date", "event_count", "source"}
    st, body = run("volume-by-period", raw_query=q + "&window=%20WEEK%20")
    assert st == 200 and body["data"]["window"] == "week"


def test_routing_on_report_paths():
    expect_error(get("/api/v1/reports/volume%2Dby%2Dperiod"), 404, "report was not found")
    expect_error(get("/api/v1/reports/volume%2Dby%2Dperiod/run"), 404, "report was not found")
    expect_error(get("/api/v1/reports/nope"), 404, "report was not found")
    for path in ("/api/v1/reports/", "/api/v1/reports//run", "/api/v1/reports/x/run/",
                 "/api/v1/reports/x/y"):
        expect_error(get(path), 404, "route was not found")
    for path in ("/api/v1/reports", "/api/v1/reports/volume-by-period",
                 "/api/v1/reports/volume-by-period/run"):
        for method in ("POST", "DELETE", "OPTIONS"):
            status, hdrs, body = SVC.request(method, path)
            assert status == 405 and hdrs["allow"] == "GET, HEAD", (method, path, status, hdrs)
            assert body == b'{"error":{"code":"method_not_allowed","message":"method not allowed"}}\n'


def test_head_returns_headers_without_body():
    for path in ("/api/v1/reports", "/api/v1/reports/top-entities",
                 "/api/v1/reports/top-entities/run", "/api/v1/reports/nope/run"):
        gstatus, ghdrs, gbody = SVC.request("GET", path)
        status, hdrs, body = SVC.request("HEAD", path)
        assert status == gstatus and body == b"", (path, status, body)
        assert hdrs["content-type"] == "application/json"
        assert int(hdrs["content-length"]) > 0


# ---- list and get ------------------------------------------------------------------------

def slugs(resp):
    st, body = resp
    assert st == 200, body
    return [d["slug"] for d in body["data"]]


def test_list_facts():
    st, body = get("/api/v1/reports")
    assert slugs((st, body)) == ["amount-by-source", "status-counts", "top-entities",
                                 "volume-by-period"]
    assert body["meta"] == {"pagination": {"limit": 20, "offset": 0, "total": 4}}
    assert slugs(get("/api/v1/reports?sort=slug&order=desc"))[0] == "volume-by-period"
    assert slugs(get("/api/v1/reports?sort=slug&order=%20DeSc%20")) == \
        ["volume-by-period", "top-entities", "status-counts", "amount-by-source"]
    assert slugs(get("/api/v1/reports?sort=cache_ttl_seconds")) == \
        ["top-entities", "status-counts", "amount-by-source", "volume-by-period"]
    assert slugs(get("/api/v1/reports?sort=cache_ttl_seconds&order=desc")) == \
        ["volume-by-period", "amount-by-source", "status-counts", "top-entities"]
    assert slugs(get("/api/v1/reports?sort=Name&order=desc")) == \
        ["volume-by-period", "top-entities", "status-counts", "amount-by-source"]
    assert len(slugs(get("/api/v1/reports?sort=updated_at"))) == 4
    assert slugs(get("/api/v1/reports?search=status")) == ["status-counts"]
    assert slugs(get("/api/v1/reports?search=ENTIT")) == ["top-entities"]
    assert slugs(get("/api/v1/reports?search=%20by%20p")) == ["volume-by-period"]
    for s in ("%25", "_", "%5C", "%FF", "%00", "status%25"):
        st, body = get("/api/v1/reports?search=" + s)
        assert body == {"data": [], "meta": {"pagination": {"limit": 20, "offset": 0, "total": 0}}}, s
    for q, lim, off in (("limit=500", 100, 0), ("limit=0", 20, 0), ("offset=-3", 20, 0),
                        ("limit=2&offset=1", 2, 1), ("limit=%2B2", 2, 0), ("limit=+2", 20, 0)):
        st, body = get("/api/v1/reports?" + q)
        assert body["meta"]["pagination"] == {"limit": lim, "offset": off, "total": 4}, (q, body)
        assert len(body["data"]) == max(0, min(lim, 4 - off))
    st, body = get("/api/v1/reports?offset=10")
    assert body == {"data": [], "meta": {"pagination": {"limit": 20, "offset": 10, "total": 4}}}


def api_time(sql):
    """A timestamp selected by sql as the API writes it (fraction trimmed, Z), or None."""
    v = DB.sql("SELECT to_char((%s) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US')" % sql)[0][0]
    return (v.rstrip("0").rstrip(".") + "Z") if v else None


def test_get_report_bytes():
    status, hdrs, body = SVC.request("GET", "/api/v1/reports/volume-by-period")
    newest = api_time("SELECT max(finished_at) FROM recompute_runs WHERE status = 'completed'"
                      " AND report_slug = 'volume-by-period'")
    assert newest is not None
    assert status == 200 and body == VOLUME_DEF % newest.encode(), body
    # Without a completed run the member is left out.
    status, _, body = SVC.request("GET", "/api/v1/reports/top-entities")
    assert b'"last_rebuilt_at":"' in body
    DB.sql("UPDATE recompute_runs SET status = 'failed' WHERE report_slug = 'top-entities'"
           " AND status = 'completed'")
    try:
        status, _, body = SVC.request("GET", "/api/v1/reports/top-entities")
        assert status == 200 and b"last_rebuilt_at" not in body, body
        assert list(json.loads(body)["data"])[-1] == "supported_filters"
    finally:
        DB.sql("UPDATE recompute_runs SET status = 'completed' WHERE report_slug = 'top-entities'"
               " AND status = 'failed'")
    assert hdrs["content-type"] == "application/json"


def test_private_report_and_catalogue_changes():
    DB.sql("UPDATE report_definitions SET name = 'Renamed <Volume>' WHERE slug = 'volume-by-period'")
    try:
        t0 = time.time()
        seen = adtest.wait_until(
            lambda: get("/api/v1/reports/volume-by-period")[1]["data"]["name"] == "Renamed <Volume>",
            5)
        assert seen, "name change not visible within 5 s"
        status, _, body = SVC.request("GET", "/api/v1/reports/volume-by-period")
        assert b'"name":"Renamed \\u003cVolume\\u003e"' in body
        DB.sql("UPDATE report_definitions SET is_public = false WHERE slug = 'top-entities'")
        time.sleep(4.8)  # every worker's catalogue must have it within 5 s
        for _ in range(10):
            expect_error(run("top-entities"), 404, "report was not found")
        expect_error(get("/api/v1/reports/top-entities"), 404, "report was not found")
        assert slugs(get("/api/v1/reports?sort=slug")) == ["amount-by-source", "status-counts",
                                                          "volume-by-period"]
    finally:
        DB.sql("UPDATE report_definitions SET is_public = true WHERE slug = 'top-entities'")
        DB.sql("UPDATE report_definitions SET name = 'Volume by Period'"
               " WHERE slug = 'volume-by-period'")
    time.sleep(4.8)
    assert all(run("top-entities")[0] == 200 for _ in range(10))


def test_public_report_without_runner_is_404_after_checks():
    DB.sql("INSERT INTO report_definitions (slug, name, description, cache_ttl_seconds,"
           " default_window) VALUES ('custom-report', 'Custom', 'x', 30, 'day')")
    try:
        assert adtest.wait_until(lambda: get("/api/v1/reports/custom-report")[0] == 200, 5)
        time.sleep(4.8)  # in every worker's catalogue within 5 s
        for _ in range(10):
            expect_error(run("custom-report"), 404, "report was not found")
        # Validation still comes first for a public report.
        expect_error(run("custom-report", window="month"), 400, "window must be either day or week")
        expect_error(run("custom-report", limit="0"), 400, "limit must be between 1 and 100")
        st, body = get("/api/v1/reports/custom-report")
        assert body["data"]["allowed_windows"] == [] and body["data"]["supported_filters"] == {}
    finally:
        DB.sql("DELETE FROM report_definitions WHERE slug = 'custom-report'")


# ---- results ------------------------------------------------------------------------------

STATUS_TOTALS = [{"event_count": 21391, "status": "success"},
                 {"event_count": 2139, "status": "pending"},
                 {"event_count": 1470, "status": "failed"}]


def all_rows(slug, **params):
    rows, offset = [], 0
    while True:
        page = ok_rows(run(slug, limit=100, offset=offset, **params))
        rows += page
        if len(page) < 100:
            return rows
        offset += 100


def test_full_range_facts_day_and_week():
    fr = full_range()
    for window in ("day", "week"):
        st, body = run("status-counts", window=window, **fr)
        assert st == 200 and body["data"]["rows"] == STATUS_TOTALS, body
        d = body["data"]
        assert list(d) == ["report_slug", "window", "date_from", "date_to", "generated_at", "rows",
                           "cache_hit", "row_count", "execution_ms", "source_system"]
        assert d["window"] == window and d["date_from"] == fr["date_from"]
        assert d["row_count"] == 3 and isinstance(d["execution_ms"], int)
        assert list(body["meta"]) == ["cache_hit", "freshness"], body["meta"]
        assert body["meta"]["cache_hit"] == d["cache_hit"]
        assert ok_rows(run("status-counts", window=window, breakdown="status", **fr)) == STATUS_TOTALS
        assert ok_rows(run("status-counts", window=window, breakdown="source", **fr)) == STATUS_TOTALS
        assert ok_rows(run("status-counts", window=window, status="failed", **fr)) == STATUS_TOTALS[2:]
        assert ok_rows(run("status-counts", window=window, status="FAILED", **fr)) == []

        vol = ok_rows(run("volume-by-period", window=window, limit=100, **fr))
        assert sum(r["event_count"] for r in vol) == 25000
        assert len(vol) <= (91 if window == "day" else 14)
        assert all(set(r) == {"bucket_date", "event_count"} for r in vol)
        assert [r["bucket_date"] for r in vol] == sorted(r["bucket_date"] for r in vol)
        for b in ("period", "status"):
            assert ok_rows(run("volume-by-period", window=window, limit=100, breakdown=b, **fr)) == vol

        by_source = all_rows("volume-by-period", window=window, breakdown="source", **fr)
        sums = {}
        for r in by_source:
            sums[r["source"]] = sums.get(r["source"], 0) + r["event_count"]
        assert sums == {"adyen": 8334, "paypal": 8333, "stripe": 8333}, sums
        keys = [(r["bucket_date"], r["source"]) for r in by_source]
        assert keys == sorted(keys)
        adyen = all_rows("volume-by-period", window=window, source="adyen", **fr)
        assert sum(r["event_count"] for r in adyen) == 8334
        adyen_src = all_rows("volume-by-period", window=window, breakdown="source",
                             source="adyen", **fr)
        assert {r["source"] for r in adyen_src} == {"adyen"}

        by_period = all_rows("status-counts", window=window, breakdown="period", **fr)
        st_sums = {}
        for r in by_period:
            assert set(r) == {"bucket_date", "event_count", "status"}
            st_sums[r["status"]] = st_sums.get(r["status"], 0) + r["event_count"]
        assert st_sums == {"success": 21391, "pending": 2139, "failed": 1470}

        top = ok_rows(run("top-entities", window=window, limit=3, **fr))
        assert top == [{"entity_id": "entity-10", "event_count": 105},
                       {"entity_id": "entity-11", "event_count": 105},
                       {"entity_id": "entity-12", "event_count": 105}]
        assert ok_rows(run("top-entities", window=window, offset=38, limit=4, source="x",
                           status="y", **fr)) == [
            {"entity_id": "entity-8", "event_count": 105},
            {"entity_id": "entity-9", "event_count": 105},
            {"entity_id": "entity-1", "event_count": 104},
            {"entity_id": "entity-100", "event_count": 104}]
        tail = ok_rows(run("top-entities", window=window, offset=200, limit=100, **fr))
        assert len(tail) == 40 and tail[-1] == {"entity_id": "entity-99", "event_count": 104}
        assert ok_rows(run("top-entities", window=window, offset=240, **fr)) == []


AMOUNT_BY_SOURCE = {"adyen": 409062579, "paypal": 409045800, "stripe": 409054121}


def test_amount_by_source_full_range_day_and_week():
    """The fourth report (API.md §4.4, DATA.md §8.3): amount_cents per source and period."""
    fr = full_range()
    for window in ("day", "week"):
        amount = ok_rows(run("amount-by-source", window=window, limit=100, **fr))
        assert sum(r["amount_cents"] for r in amount) == 1227162500
        assert all(set(r) == {"amount_cents", "bucket_date"} for r in amount)
        assert [r["bucket_date"] for r in amount] == sorted(r["bucket_date"] for r in amount)
        vol = ok_rows(run("volume-by-period", window=window, limit=100, **fr))
        assert [r["bucket_date"] for r in amount] == [r["bucket_date"] for r in vol]
        for b in ("period", "status"):
            assert ok_rows(run("amount-by-source", window=window, limit=100, breakdown=b,
                               **fr)) == amount
        by_source = all_rows("amount-by-source", window=window, breakdown="source", **fr)
        sums = {}
        for r in by_source:
            assert set(r) == {"amount_cents", "bucket_date", "source"}
            sums[r["source"]] = sums.get(r["source"], 0) + r["amount_cents"]
        assert sums == AMOUNT_BY_SOURCE, sums
        keys = [(r["bucket_date"], r["source"]) for r in by_source]
        assert keys == sorted(keys)
        paypal = all_rows("amount-by-source", window=window, source=" paypal ", **fr)
        assert sum(r["amount_cents"] for r in paypal) == AMOUNT_BY_SOURCE["paypal"]
        assert ok_rows(run("amount-by-source", window=window, source="PAYPAL", **fr)) == []
        # status is not this report's filter: it is ignored.
        assert ok_rows(run("amount-by-source", window=window, limit=100, status="failed",
                           **fr)) == amount
    # Rows list their members in byte order (API.md §1.4), like every other report.
    status, _, body = SVC.request("GET", "/api/v1/reports/amount-by-source/run?breakdown=source"
                                  "&limit=1&date_from=%s&date_to=%s" % (fr["date_from"],
                                                                       fr["date_to"]))
    assert status == 200 and b'"rows":[{"amount_cents":' in body and b',"source":"' in body, body
    expect_error(run("amount-by-source", breakdown="entity"), 400,
                 "breakdown must be one of source, status, period")


def test_week_includes_week_of_date_from():
    # A Wednesday inside the seeded data: its week's bucket (the Monday) must be included.
    wed = today() - datetime.timedelta(days=30)
    wed -= datetime.timedelta(days=(wed.weekday() - 2) % 7)
    monday = wed - datetime.timedelta(days=2)
    st, body = run("volume-by-period", window="week", date_from=str(wed), date_to=str(today()))
    rows = body["data"]["rows"]
    assert body["data"]["date_from"] == str(wed), body
    assert rows[0]["bucket_date"] == str(monday), rows
    from_monday = ok_rows(run("volume-by-period", window="week", date_from=str(monday),
                              date_to=str(today())))
    assert rows == from_monday
    # Day windows are not widened.
    day_rows = ok_rows(run("volume-by-period", window="day", date_from=str(wed),
                           date_to=str(today())))
    assert day_rows[0]["bucket_date"] == str(wed)
    # A range that ends before the first Monday still gets that week.
    one_day = ok_rows(run("volume-by-period", window="week", date_from=str(wed), date_to=str(wed)))
    assert [r["bucket_date"] for r in one_day] == [str(monday)]


def test_unmatchable_text_answers_no_rows():
    fr = full_range()
    q = "date_from=%s&date_to=%s" % (fr["date_from"], fr["date_to"])
    for slug, extra in (("volume-by-period", "&source=%FF"), ("volume-by-period", "&source=a%00b"),
                        ("status-counts", "&status=%C3%28"), ("status-counts", "&status=%00")):
        st, body = run(slug, raw_query=q + extra)
        assert st == 200 and body["data"]["rows"] == [] and body["data"]["row_count"] == 0, body
    # A report that ignores the filter is unaffected by it.
    assert len(ok_rows(run("top-entities", raw_query=q + "&source=%FF&status=%00"))) == 50
    assert ok_rows(run("volume-by-period", raw_query=q + "&status=%FF&limit=100"))


def main():
    global DB, SVC
    adtest.require_env()
    DB = adtest.ScratchDatabase()
    SVC = adtest.Service(DB).start()
    adtest.redis_cli(SVC.redis_url, "FLUSHDB")
    try:
        adtest.run([test_date_messages_and_order, test_span_limit, test_breakdown_limit_offset_rules,
                    test_routing_on_report_paths, test_head_returns_headers_without_body,
                    test_list_facts, test_get_report_bytes, test_full_range_facts_day_and_week,
                    test_week_includes_week_of_date_from, test_unmatchable_text_answers_no_rows,
                    test_public_report_without_runner_is_404_after_checks,
                    test_private_report_and_catalogue_changes])
    finally:
        SVC.stop()
        DB.drop()


if __name__ == "__main__":
    main()
