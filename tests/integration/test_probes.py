"""tests/integration/test_probes.py: the operability routes and logs of API.md §8.

GET /livez and GET /readyz (200/503, which check failed, PostgreSQL down, Redis down, catalogue
never loaded), X-Request-Id on every response (echoed when well-formed, generated otherwise,
also on 404/405/401/413), LOG_FORMAT=json (every line parses) and ACCESS_LOG (one line per
request with its id, no secrets, no bodies), in both log formats. PostgreSQL and Redis outages
use private servers (privatestack.py): the shared ones are never stopped.
"""

import http.client
import json
import re
import subprocess

import adtest
import privatestack

SHARED_DB = None
HEX32 = re.compile(r"^[0-9a-f]{32}$")


def readyz(svc):
    status, hdrs, body = svc.request("GET", "/readyz")
    return status, json.loads(body)


def raw(svc, method, path, headers=(), body=None):
    """One request with headers sent exactly as given (http.client would refuse some values)."""
    conn = http.client.HTTPConnection("127.0.0.1", svc.port, timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in headers:
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def test_livez_and_readyz():
    svc = adtest.Service(SHARED_DB).start()
    try:
        status, hdrs, body = svc.request("GET", "/livez")
        assert (status, body) == (200, b'{"data":{"status":"alive"}}\n'), (status, body)
        assert hdrs["content-type"] == "application/json"
        assert adtest.wait_until(lambda: readyz(svc)[0] == 200, 10), svc.logs()
        for _ in range(4):  # both workers (connections are shared out between them)
            status, body = readyz(svc)
            assert (status, body) == (200, {"data": {"status": "ready", "checks": {
                "catalogue": "ok", "postgres": "ok"}}}), body
        for path in ("/livez", "/readyz"):
            status, hdrs, body = svc.request("HEAD", path)
            assert (status, body) == (200, b""), (path, status, body)
            assert int(hdrs["content-length"]) > 0 and hdrs["content-type"] == "application/json"
            for method in ("POST", "PUT", "DELETE", "OPTIONS"):
                status, hdrs, body = svc.request(method, path)
                assert status == 405 and hdrs["allow"] == "GET, HEAD", (method, path, status)
                assert json.loads(body) == {"error": {"code": "method_not_allowed",
                                                      "message": "method not allowed"}}
        for path in ("/livez/", "/readyz/", "/api/v1/livez", "/api/v1/readyz", "/Livez"):
            status, hdrs, body = svc.request("GET", path)
            assert status == 404 and json.loads(body)["error"]["code"] == "not_found", path
        # probes need no authentication, whatever the client sends
        status, _, _ = svc.request("GET", "/readyz", headers={"X-Management-Key": "wrong"})
        assert status == 200
        # ACCESS_LOG defaults to off
        assert " access method=" not in svc.logs(), svc.logs()
    finally:
        svc.stop()


def test_readyz_postgres_down_and_back():
    pg = privatestack.PrivatePostgres()
    svc = None
    try:
        db = privatestack.PrivateDatabase(pg)
        svc = adtest.Service(db).start()
        assert adtest.wait_until(lambda: readyz(svc)[0] == 200, 10), svc.logs()
        # Both HTTP workers hold a catalogue before PostgreSQL goes: a probe may reach either.
        svc.wait_catalogues()

        pg.stop()
        assert adtest.wait_until(lambda: readyz(svc)[0] == 503, 10), svc.logs()
        for _ in range(4):
            status, body = readyz(svc)
            # the catalogue keeps its last good copy; PostgreSQL is what fails
            assert (status, body) == (503, {"data": {"status": "not_ready", "checks": {
                "catalogue": "ok", "postgres": "unavailable"}}}), (status, body)
            status, hdrs, body = svc.request("HEAD", "/readyz")
            assert (status, body) == (503, b"")
            status, _, _ = svc.request("GET", "/livez")  # alive all the same
            assert status == 200

        pg.start()
        assert adtest.wait_until(lambda: readyz(svc)[0] == 200, 10), svc.logs()
        for _ in range(4):
            assert readyz(svc) == (200, {"data": {"status": "ready", "checks": {
                "catalogue": "ok", "postgres": "ok"}}})
    finally:
        if svc is not None:
            svc.stop()
        pg.destroy()


def test_readyz_catalogue_never_loaded():
    class Nowhere:  # a PostgreSQL port where nothing listens, from the start
        conninfo = "host=127.0.0.1 port=%d user=app password=app dbname=x sslmode=disable" % (
            adtest.free_port())
    svc = adtest.Service(Nowhere()).start()
    try:
        for _ in range(4):
            status, body = readyz(svc)
            assert (status, body) == (503, {"data": {"status": "not_ready", "checks": {
                "catalogue": "not_loaded", "postgres": "unavailable"}}}), (status, body)
            assert svc.request("GET", "/livez")[0] == 200
    finally:
        svc.stop()


def test_readyz_ready_with_redis_down():
    redis = privatestack.PrivateRedis()
    svc = adtest.Service(SHARED_DB, REDIS_URL=redis.url(0)).start()
    try:
        assert adtest.wait_until(lambda: readyz(svc)[0] == 200, 10), svc.logs()
        redis.stop()
        # health says degraded; readiness does not depend on Redis (reads fall back, §7.1)
        assert adtest.wait_until(lambda: svc.get_json("/api/v1/health")[0] == 503, 10)
        for _ in range(4):
            status, body = readyz(svc)
            assert (status, body) == (200, {"data": {"status": "ready", "checks": {
                "catalogue": "ok", "postgres": "ok"}}}), (status, body)
        assert svc.get_json("/api/v1/health")[1]["data"]["dependencies"]["redis"] == "unavailable"
    finally:
        svc.stop()
        redis.destroy()


def test_request_ids():
    svc = adtest.Service(SHARED_DB).start()
    try:
        def rid(path, value=None, method="GET", headers=(), body=None):
            hs = list(headers) + ([("X-Request-Id", value)] if value is not None else [])
            status, hdrs, _ = raw(svc, method, path, hs, body)
            return status, hdrs.get("x-request-id")

        # well-formed ids come back as sent, on every kind of answer
        for value in ("abc-123", "0f8fad5b-d9cb-469f-a165-70867728950e", "x" * 128,
                      "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"):
            assert rid("/livez", value) == (200, value), value
        assert rid("/api/v1/health", "h-1") == (200, "h-1")
        assert rid("/api/v1/reports", "r-1") == (200, "r-1")
        assert rid("/nope", "e-404") == (404, "e-404")
        assert rid("/livez", "e-405", method="DELETE") == (405, "e-405")
        assert rid("/api/v1/audit-entries", "e-401") == (401, "e-401")
        assert rid("/api/v1/recomputations", "e-413", method="POST",
                   body=b"x" * 70000) == (413, "e-413")  # the route's own limit
        assert rid("/api/v1/recomputations", "e-413h", method="POST",  # h2o's own 413
                   headers=[("Content-Length", "5000000")]) == (413, "e-413h")
        assert rid("/livez", "hd-1", method="HEAD") == (200, "hd-1")

        # the first X-Request-Id counts
        status, hdrs, _ = raw(svc, "GET", "/livez", [("X-Request-Id", "first"),
                                                     ("X-Request-Id", "second")])
        assert hdrs["x-request-id"] == "first"

        # anything else is replaced by a generated id (32 hex digits), fresh each time
        seen = set()
        for value in (None, "", "x" * 129, "a b", "a\tb", "caf\u00e9".encode()):
            for path, method, want in (("/livez", "GET", 200), ("/nope", "GET", 404),
                                       ("/livez", "POST", 405),
                                       ("/api/v1/audit-entries", "GET", 401)):
                status, got = rid(path, value, method=method)
                assert status == want and got is not None and HEX32.match(got), (value, got)
                assert got not in seen
                seen.add(got)
    finally:
        svc.stop()


def access_lines(svc):
    return [json.loads(line) for line in svc.logs().splitlines()
            if line.strip() and json.loads(line)["msg"] == "access"]


def test_json_logs_and_access_log():
    svc = adtest.Service(SHARED_DB, LOG_FORMAT="json", ACCESS_LOG="true").start()
    secrets = ("key-secret-7f3a", "bearer-secret-91c2", "body-secret-d00d", "query-secret-5e5e")
    try:
        assert raw(svc, "GET", "/livez?token=" + secrets[3], [("X-Request-Id", "log-1")])[0] == 200
        assert raw(svc, "POST", "/api/v1/recomputations",
                   [("X-Request-Id", "log-2"), ("X-Management-Key", secrets[0]),
                    ("Authorization", "Bearer " + secrets[1]),
                    ("Content-Type", "application/json")],
                   ('{"requested_by":"%s"}' % secrets[2]).encode())[0] == 401
        assert raw(svc, "HEAD", "/readyz", [("X-Request-Id", "log-3")])[0] == 200
        status, hdrs, _ = raw(svc, "GET", "/nope/\"quoted\"")
        generated = hdrs["x-request-id"]

        # a request whose statement fails: the pool's warning names the request
        adtest.redis_cli(svc.redis_url, "FLUSHDB")
        SHARED_DB.sql("ALTER TABLE metric_snapshots RENAME TO metric_snapshots_away")
        try:
            status, _, _ = raw(svc, "GET", "/api/v1/reports/status-counts/run?window=day",
                               [("X-Request-Id", "log-fail")])
            assert status == 500
        finally:
            SHARED_DB.sql("ALTER TABLE metric_snapshots_away RENAME TO metric_snapshots")

        want = {"log-1": ("GET", "/livez", 200), "log-2": ("POST", "/api/v1/recomputations", 401),
                "log-3": ("HEAD", "/readyz", 200), generated: ("GET", "/nope/\"quoted\"", 404),
                "log-fail": ("GET", "/api/v1/reports/status-counts/run", 500)}
        # access lines are written when h2o lets go of the request, just after the answer
        assert adtest.wait_until(
            lambda: want.keys() <= {a.get("request_id") for a in access_lines(svc)}, 5), svc.logs()
    finally:
        svc.stop()
    logs = svc.logs()
    lines = [line for line in logs.splitlines() if line.strip()]
    assert len(lines) > 10
    roles = set()
    for line in lines:
        obj = json.loads(line)  # every line, from every process
        assert isinstance(obj, dict), line
        assert {"ts", "level", "pid", "role", "msg"} <= obj.keys(), line
        assert obj["level"] in ("error", "warn", "info", "debug")
        roles.add(obj["role"])
    assert {"master", "http"} <= roles, roles
    for s in secrets:
        assert s not in logs, s
    by_id = {a.get("request_id"): a for a in access_lines(svc)}
    for rid, (method, path, status) in want.items():
        a = by_id[rid]
        assert (a["method"], a["path"], a["status"]) == (method, path, status), a
        assert a["worker"] in (1, 2) and a["duration_ms"] >= 0, a
    assert by_id["log-1"]["bytes"] == len(b'{"data":{"status":"alive"}}\n')
    assert by_id["log-3"]["bytes"] == 0  # HEAD: no body
    fail = [json.loads(line) for line in lines
            if json.loads(line).get("request_id") == "log-fail" and json.loads(line)["msg"] != "access"]
    assert any(o["msg"].startswith("postgres statement failed") and o["level"] == "warn"
               for o in fail), fail


def test_text_access_log():
    svc = adtest.Service(SHARED_DB, ACCESS_LOG="1").start()
    try:
        assert raw(svc, "GET", "/livez", [("X-Request-Id", "text-1")])[0] == 200
        assert raw(svc, "GET", "/a%20b", [("X-Request-Id", "text-2")])[0] == 404
        pattern = re.compile(r" info http\[\d+\]: access method=GET path=/livez status=200 "
                             r"bytes=28 duration_ms=\d+\.\d{3} worker=[12] request_id=text-1$")
        assert adtest.wait_until(
            lambda: any(pattern.search(l) for l in svc.logs().splitlines()), 5), svc.logs()
        assert adtest.wait_until(lambda: re.search(
            r"access method=GET path=/a%2520b status=404 .* request_id=text-2\n", svc.logs()), 5)
    finally:
        svc.stop()


def test_log_variables_validated():
    env = dict(adtest.os.environ, DATABASE_URL=SHARED_DB.conninfo,
               REDIS_URL=adtest.redis_db_url(12), LOG_FORMAT="xml", ACCESS_LOG="maybe")
    r = subprocess.run([adtest.BIN, "serve"], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert r.stderr == ("configuration error: LOG_FORMAT must be json or text\n"
                        "configuration error: ACCESS_LOG must be a boolean (true/false, 1/0, t/f)\n"), r.stderr


def main():
    global SHARED_DB
    adtest.require_env()
    SHARED_DB = adtest.ScratchDatabase()
    try:
        adtest.run([test_livez_and_readyz, test_readyz_postgres_down_and_back,
                    test_readyz_catalogue_never_loaded, test_readyz_ready_with_redis_down,
                    test_request_ids, test_json_logs_and_access_log, test_text_access_log,
                    test_log_variables_validated])
    finally:
        SHARED_DB.drop()


if __name__ == "__main__":
    main()
