"""tests/integration/test_metrics.py: GET /metrics (README, "Metrics") against the real service.

The route's contract (methods, 405 with Allow, 404 neighbours, Content-Type), Prometheus's own
`promtool check metrics` on the output (promtool comes with the Debian package `prometheus`, which
deploy/dev installs: a missing promtool fails this test), exact deltas of the counters touched by
known traffic (HTTP requests by route/method/code, duration histogram counts, report cache hits and
misses, a recompute run, SMS events posted over HTTP), and counters that survive an HTTP worker
killed with SIGKILL between two scrapes while the restart counter goes up by exactly one; with
METRICS_BIND, /metrics only on its own address and nothing else there.
"""

import datetime
import http.client
import json
import os
import re
import shutil
import signal
import subprocess

import adtest

DB = None
SVC = None
KEY = {"X-Management-Key": "test-key"}
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
RUN = "/api/v1/reports/{slug}/run"

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """{(name, ((label, value), ...)): float} and {family: type} of an exposition."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
            continue
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, "unparsable sample line %r" % line
        labels = tuple(sorted(LABEL.findall(m.group(2) or "")))
        key = (m.group(1), labels)
        assert key not in samples, "duplicate series %r" % (key,)
        samples[key] = float(m.group(3))
    return samples, types


def scrape():
    status, hdrs, body = SVC.request("GET", "/metrics")
    assert status == 200 and hdrs["content-type"] == CONTENT_TYPE, (status, hdrs)
    return parse(body.decode())[0]


def key(name, **labels):
    return (name, tuple(sorted(labels.items())))


def delta(before, after, name, **labels):
    k = key(name, **labels)
    return after.get(k, 0) - before.get(k, 0)


def today():
    return datetime.datetime.now(datetime.timezone.utc).date()


def test_route_contract():
    status, hdrs, body = SVC.request("GET", "/metrics")
    assert status == 200 and hdrs["content-type"] == CONTENT_TYPE, (status, hdrs)
    assert int(hdrs["content-length"]) == len(body) and body.endswith(b"\n")
    status, hdrs, body = SVC.request("HEAD", "/metrics")
    assert (status, hdrs["content-type"], body) == (200, CONTENT_TYPE, b""), (status, hdrs)
    for method in ("POST", "DELETE", "OPTIONS"):
        status, hdrs, body = SVC.request(method, "/metrics")
        assert (status, hdrs.get("allow")) == (405, "GET, HEAD"), (method, status, hdrs)
        assert json.loads(body)["error"]["code"] == "method_not_allowed"
    for path in ("/metrics/", "/api/v1/metrics", "/Metrics", "/metrics/x"):
        assert SVC.request("GET", path)[0] == 404, path
    # No authentication, also with a wrong management key.
    assert SVC.request("GET", "/metrics", headers={"X-Management-Key": "nope"})[0] == 200


def test_promtool_accepts_the_output():
    promtool = shutil.which("promtool")
    assert promtool, ("promtool not found: install the Debian package `prometheus` (deploy/dev "
                      "installs it)")
    # Some traffic first, so that labelled series and histograms are present.
    SVC.request("GET", "/api/v1/health")
    SVC.request("GET", "/nope")
    status, _, body = SVC.request("GET", "/metrics")
    assert status == 200
    r = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True)
    out = (r.stdout + r.stderr).decode(errors="replace")
    assert r.returncode == 0 and out.strip() == "", out
    samples, types = parse(body.decode())
    for family in ("http_requests_total", "analyticsd_worker_restarts_total",
                   "analyticsd_report_cache_hits_total", "analyticsd_recompute_runs_total",
                   "analyticsd_sms_events_total", "analyticsd_sms_events_rejected_total"):
        assert types[family] == "counter", family
    for family in ("http_request_duration_seconds", "analyticsd_recompute_run_duration_seconds",
                   "analyticsd_sms_ingest_batch_size",
                   "analyticsd_sms_ingest_commit_duration_seconds"):
        assert types[family] == "histogram", family
    for family in ("analyticsd_ring_jobs", "analyticsd_ring_capacity",
                   "analyticsd_recompute_pending_runs", "analyticsd_pg_pool_connections",
                   "analyticsd_pg_pool_queued_requests", "analyticsd_redis_connected_workers",
                   "analyticsd_redis_trusted"):
        assert types[family] == "gauge", family
    assert samples[key("analyticsd_redis_trusted")] == 1
    assert samples[key("analyticsd_ring_capacity")] == 64


def test_exact_deltas_of_known_traffic():
    frm = str(today() - datetime.timedelta(days=13))  # a range no other test reads: 1 miss
    path = "/api/v1/reports/volume-by-period/run?date_from=%s&date_to=%s" % (frm, today())
    before = scrape()
    for _ in range(7):
        status, _, body = SVC.request("GET", path)
        assert status == 200, body
    for _ in range(3):
        assert SVC.request("GET", "/api/v1/nope")[0] == 404
    for _ in range(2):
        assert SVC.request("DELETE", "/api/v1/health")[0] == 405
    after = scrape()

    assert delta(before, after, "http_requests_total", route=RUN, method="GET", code="200") == 7
    assert delta(before, after, "http_requests_total", route="none", method="GET", code="404") == 3
    assert delta(before, after, "http_requests_total", route="/api/v1/health", method="DELETE",
                 code="405") == 2
    # The first scrape was counted once its response started; the second is not counted yet.
    assert delta(before, after, "http_requests_total", route="/metrics", method="GET",
                 code="200") == 1
    changed = {k for k in set(before) | set(after) if k[0] == "http_requests_total"
               and after.get(k, 0) != before.get(k, 0)}
    assert changed == {key("http_requests_total", route=RUN, method="GET", code="200"),
                       key("http_requests_total", route="none", method="GET", code="404"),
                       key("http_requests_total", route="/api/v1/health", method="DELETE",
                           code="405"),
                       key("http_requests_total", route="/metrics", method="GET", code="200")}, \
        changed

    h = "http_request_duration_seconds"
    assert delta(before, after, h + "_count", route=RUN) == 7
    assert delta(before, after, h + "_bucket", route=RUN, le="+Inf") == 7
    assert delta(before, after, h + "_count", route="none") == 3
    assert delta(before, after, h + "_sum", route=RUN) > 0
    buckets = sorted((float(dict(k[1])["le"]), v) for k, v in after.items()
                     if k[0] == h + "_bucket" and dict(k[1])["route"] == RUN)
    counts = [v for _, v in buckets]
    assert counts == sorted(counts) and counts[-1] == after[key(h + "_count", route=RUN)], buckets

    assert delta(before, after, "analyticsd_report_cache_misses_total",
                 report="volume-by-period") == 1
    assert delta(before, after, "analyticsd_report_cache_hits_total",
                 report="volume-by-period") == 6
    for report in ("status-counts", "top-entities", "other"):
        assert delta(before, after, "analyticsd_report_cache_hits_total", report=report) == 0
        assert delta(before, after, "analyticsd_report_cache_misses_total", report=report) == 0


def test_recompute_run_and_sms_events():
    before = scrape()
    body = json.dumps({"report_slug": "status-counts", "window": "day",
                       "date_from": str(today() - datetime.timedelta(days=3)),
                       "date_to": str(today())}).encode()
    status, _, raw = SVC.request("POST", "/api/v1/recomputations", body=body,
                                 headers=dict(KEY, **{"Content-Type": "application/json"}))
    assert status == 202, raw
    run_id = json.loads(raw)["data"]["id"]
    done = adtest.wait_until(
        lambda: SVC.get_json("/api/v1/recomputations/" + run_id, headers=KEY)[1]["data"]["status"]
        in ("completed", "failed"), 30, step=0.1)
    assert done, "run %s did not finish" % run_id

    events = {"events": [{"event_id": "m1", "event_type": "billing.refund",
                          "subject": "billing.events"},
                         {"event_type": "billing.message.charged", "subject": "billing.events"},
                         [1]]}
    status, _, raw = SVC.request("POST", "/api/v1/events", body=json.dumps(events).encode(),
                                 headers=dict(KEY, **{"Content-Type": "application/json"}))
    assert status == 200, raw
    assert json.loads(raw)["data"]["rejected"] == 2, raw

    # The recompute worker counts the run after its final commit, just before the API shows it.
    after = adtest.wait_until(
        lambda: (lambda s: s if delta(before, s, "analyticsd_recompute_runs_total",
                                      status="completed") == 1 else None)(scrape()), 5)
    assert after, "completed runs did not go up by one"
    assert delta(before, after, "analyticsd_recompute_runs_total", status="failed") == 0
    assert delta(before, after, "analyticsd_recompute_run_duration_seconds_count") == 1
    assert after[key("analyticsd_recompute_pending_runs")] >= 0
    sms = "analyticsd_sms_events_total"
    assert delta(before, after, sms, transport="http", outcome="ignored") == 1
    assert delta(before, after, sms, transport="http", outcome="rejected") == 2
    assert delta(before, after, sms, transport="http", outcome="accepted") == 0
    rej = "analyticsd_sms_events_rejected_total"
    assert delta(before, after, rej, transport="http", reason="missing_field") == 1
    assert delta(before, after, rej, transport="http", reason="not_an_object") == 1
    assert delta(before, after, rej, transport="http", reason="invalid_json") == 0
    assert delta(before, after, sms, transport="nats", outcome="rejected") == 0


def test_counters_survive_a_killed_worker():
    for _ in range(30):  # new connections: both workers serve some
        SVC.request("GET", "/api/v1/health")
    before = scrape()
    workers = SVC.pids("http worker")
    assert len(workers) == 2, SVC.children()
    os.kill(workers[0], signal.SIGKILL)
    restarts = key("analyticsd_worker_restarts_total", kind="http", cause="killed")
    assert adtest.wait_until(lambda: len(SVC.pids("http worker")) == 2 and
                             workers[0] not in SVC.pids("http worker"), 10)
    after = adtest.wait_until(
        lambda: (lambda s: s if s.get(restarts, 0) == before.get(restarts, 0) + 1 else None)(
            scrape()), 10)
    assert after, "the restart was not counted"
    _, types = parse(SVC.request("GET", "/metrics")[2].decode())
    counters = {n for n, t in types.items() if t in ("counter", "histogram")}
    for k, v in before.items():
        family = re.sub(r"_(bucket|sum|count)$", "", k[0])
        if k[0] in counters or family in counters:
            assert after.get(k, 0) >= v, (k, v, after.get(k))
    health = key("http_requests_total", route="/api/v1/health", method="GET", code="200")
    assert after[health] == before[health], (before[health], after[health])
    for cause in ("exited", "hung"):
        k = key("analyticsd_worker_restarts_total", kind="http", cause=cause)
        assert after[k] == before[k], k
    # Still exact after the restart: new traffic adds to the retired counts.
    for _ in range(4):
        SVC.request("GET", "/api/v1/health")
    assert scrape()[health] == before[health] + 4


def test_metrics_bind_separate_address():
    port = adtest.free_port()
    svc = adtest.Service(DB, METRICS_BIND="127.0.0.1:%d" % port).start()
    try:
        def on_metrics_port(method, path):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                conn.request(method, path)
                r = conn.getresponse()
                return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
            finally:
                conn.close()

        status, _, body = svc.request("GET", "/metrics")  # moved away from APP_PORT
        assert (status, json.loads(body)["error"]["message"]) == (404, "route was not found")
        status, hdrs, body = on_metrics_port("GET", "/metrics")
        assert status == 200 and hdrs["content-type"] == CONTENT_TYPE, (status, hdrs)
        before = parse(body.decode())[0]
        for _ in range(3):
            assert svc.request("GET", "/api/v1/health")[0] == 200
        status, hdrs, body = on_metrics_port("HEAD", "/metrics")
        assert (status, hdrs["content-type"], body) == (200, CONTENT_TYPE, b"")
        status, hdrs, _ = on_metrics_port("POST", "/metrics")
        assert (status, hdrs.get("allow")) == (405, "GET, HEAD")
        for path in ("/api/v1/health", "/api/v1/reports", "/"):
            status, _, body = on_metrics_port("GET", path)  # nothing of the API here
            assert (status, json.loads(body)["error"]["code"]) == (404, "not_found"), path
        after = parse(on_metrics_port("GET", "/metrics")[2].decode())[0]
        assert delta(before, after, "http_requests_total", route="/api/v1/health", method="GET",
                     code="200") == 3
        assert delta(before, after, "http_requests_total", route="/metrics", method="HEAD",
                     code="200") == 1
        assert delta(before, after, "http_requests_total", route="none", method="GET",
                     code="404") == 3
    finally:
        svc.stop()


def main():
    global DB, SVC
    adtest.require_env()
    DB = adtest.ScratchDatabase()
    SVC = adtest.Service(DB).start()
    try:
        adtest.redis_cli(SVC.redis_url, "FLUSHDB")
        # Redis starts untrusted; caching begins after the first recovery bump (DATA.md §7.6).
        assert adtest.wait_until(lambda: SVC.get_json("/api/v1/health")[0] == 200, 10), SVC.logs()
        adtest.run([test_route_contract, test_promtool_accepts_the_output,
                    test_exact_deltas_of_known_traffic, test_recompute_run_and_sms_events,
                    test_counters_survive_a_killed_worker, test_metrics_bind_separate_address])
    finally:
        SVC.stop()
        DB.drop()


if __name__ == "__main__":
    main()
