"""tests/integration/test_hostile_http.py: the running service under hostile HTTP (issue 6).

One `analyticsd serve` (2 HTTP workers, HTTP_READ_TIMEOUT=1s) against a seeded scratch database,
hit with raw bytes: oversized headers, oversized and chunked bodies around the 65,536-byte limit
(API.md §1.8), slowloris and idle keep-alive connections (CONFIG.md §5.2), pipelined junk,
invalid UTF-8 and NUL bytes in every route's query and in the auth headers, path and method edge
cases (§1.2), HTTP/1.0 and Expect: 100-continue. The last test checks that no HTTP worker died
and that each worker's RSS stayed bounded.
"""

import json
import os
import random
import threading
import time

import adtest
import hostile
from hostile import Conn, exchange, request_bytes

DB = None
SVC = None
START_PIDS = []
KEY = b"test-key"
READ_TIMEOUT = 1.0
LIMIT = 65536

ROUTES_PUBLIC = [b"/api/v1/health", b"/api/v1/reports", b"/api/v1/reports/volume-by-period",
                 b"/api/v1/reports/volume-by-period/run"]
ROUTES_MGMT = [b"/api/v1/recomputations", b"/api/v1/recomputations/6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab",
               b"/api/v1/audit-entries"]
ERROR_CODES = {400: "invalid_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
               409: "conflict", 413: "payload_too_large", 500: "internal_error", 503: "service_unavailable"}


def family(path):
    if path.startswith(b"/api/v1/reports"):
        return "reports"
    if path.startswith(b"/api/v1/recomputations"):
        return "recomputations"
    if path.startswith(b"/api/v1/audit-entries"):
        return "audit"
    return "health"


def assert_envelope(r, what=""):
    """The response follows API.md §1.3: application/json, one compact JSON object + LF, and an
    error body matching the status."""
    assert r is not None, "no response %s" % what
    assert r.headers.get("content-type") == "application/json", (what, r)
    assert r.body.endswith(b"\n"), (what, r)
    doc = json.loads(r.body)
    assert isinstance(doc, dict), (what, r)
    if r.status >= 400 and not (r.status == 503 and "data" in doc):
        assert list(doc) == ["error"], (what, r)
        assert list(doc["error"]) == ["code", "message"], (what, r)
        assert doc["error"]["code"] == ERROR_CODES[r.status], (what, r)
    else:
        assert "data" in doc, (what, r)
    return doc


def assert_error(r, status, message, what=""):
    doc = assert_envelope(r, what)
    assert r.status == status and doc["error"]["message"] == message, \
        "%s: want %d %r, got %r" % (what, status, message, r)


def assert_alive():
    """The service still answers a normal request quickly."""
    t = time.time()
    r = exchange(SVC.port, request_bytes(b"GET", b"/api/v1/health"), timeout=3)
    assert r is not None and r.status in (200, 503), r
    assert time.time() - t < 2, "health took %.2fs" % (time.time() - t)
    assert SVC.proc.poll() is None, "master died"


def error_or_closed(data, what, timeout=5):
    """Sends data; the answer must be an HTTP error status (4xx/5xx) or a closed connection."""
    c = Conn(SVC.port, timeout)
    try:
        c.send(data)
        try:
            r = c.response(timeout)
        except hostile.Closed:
            return None
        assert r.status >= 400, "%s: got %r" % (what, r)
        return r
    finally:
        c.close()


# ---- headers ----------------------------------------------------------------------------------

def test_oversized_header_line():
    # h2o 2.2.5 takes request heads up to H2O_MAX_REQLEN (8192 + 4096 * 100 = 417,792 bytes), so
    # a 100 KB header may get a normal answer; it must then be the normal JSON answer.
    r = exchange(SVC.port, request_bytes(b"GET", b"/api/v1/health", [b"X-Big: " + b"a" * 100000]))
    print("  100 KB header line ->", r.status if r else "closed")
    if r is not None and r.status < 400:
        assert r.status == 200 or r.status == 503, r
        assert_envelope(r, "100 KB header line")
    # Beyond h2o's limit: an error status or a closed connection.
    for hdrs, what in (([b"X-Big: " + b"a" * 500000], "500 KB header line"),
                       ([b"X-" + b"n" * 500000 + b": v"], "500 KB header name"),
                       ([b"X-H%d: %s" % (i, b"v" * 4000) for i in range(120)], "120 x 4 KB headers")):
        r = error_or_closed(request_bytes(b"GET", b"/api/v1/health", hdrs), what)
        print("  %s ->" % what, r.status if r else "closed")
    assert_alive()


def test_many_headers():
    hdrs = [b"X-H%d: %d" % (i, i) for i in range(5000)]
    r = error_or_closed(request_bytes(b"GET", b"/api/v1/health", hdrs), "5000 headers")
    print("  5000 headers ->", r.status if r else "closed")
    assert_alive()


# ---- bodies -----------------------------------------------------------------------------------

def test_huge_content_length_is_refused_without_reading():
    ten_mb = b"Content-Length: 10485760"
    for method, path, status, message in (
            (b"POST", b"/api/v1/recomputations", 413, "request body too large"),
            (b"GET", b"/api/v1/health", 413, "request body too large"),
            (b"POST", b"/api/v1/health", 405, "method not allowed"),
            (b"POST", b"/nope", 404, "route was not found"),
            (b"PUT", b"/api/v1/reports/x/y/z", 404, "route was not found")):
        c = Conn(SVC.port)
        try:
            t = time.time()
            c.send(request_bytes(method, path, [ten_mb, b"X-Management-Key: test-key"]))
            # Only the headers were sent: the answer must come without waiting for the body
            # (well before HTTP_READ_TIMEOUT would close the connection silently).
            r = c.response(timeout=READ_TIMEOUT * 0.8)
            assert_error(r, status, message, "%s %s with 10 MB Content-Length" % (method, path))
            assert time.time() - t < READ_TIMEOUT * 0.8
            if status == 405:
                assert r.headers.get("allow") == "GET, HEAD", r
        finally:
            c.close()
    assert_alive()


def send_chunked(c, total, chunk=16384):
    """Sends `total` body bytes in chunks; stops quietly if the server closes."""
    left = total
    while left > 0:
        n = min(chunk, left)
        if not c.send(b"%x\r\n" % n + b"x" * n + b"\r\n"):
            return False
        left -= n
    return c.send(b"0\r\n\r\n")


def test_chunked_ten_mb_body():
    c = Conn(SVC.port, timeout=10)
    try:
        c.send(request_bytes(b"POST", b"/api/v1/recomputations",
                             [b"Transfer-Encoding: chunked", b"X-Management-Key: test-key"]))
        sender = threading.Thread(target=send_chunked, args=(c, 10 * 1024 * 1024), daemon=True)
        sender.start()
        try:
            r = c.response(timeout=10)
            assert_error(r, 413, "request body too large", "chunked 10 MB")
        except hostile.Closed:
            print("  chunked 10 MB -> closed without a response")
        sender.join(15)
    finally:
        c.close()
    # Unrouted: 404 whatever the body (precedence), or close.
    c = Conn(SVC.port, timeout=10)
    try:
        c.send(request_bytes(b"POST", b"/api/v1/nope", [b"Transfer-Encoding: chunked"]))
        sender = threading.Thread(target=send_chunked, args=(c, 10 * 1024 * 1024), daemon=True)
        sender.start()
        try:
            assert_error(c.response(timeout=10), 404, "route was not found", "chunked 10 MB unrouted")
        except hostile.Closed:
            print("  chunked 10 MB unrouted -> closed without a response")
        sender.join(15)
    finally:
        c.close()
    assert_alive()


def post_body(body_len, chunked):
    """POSTs a body of body_len bytes (valid key) and returns the response."""
    body = b"{" + b" " * (body_len - 2) + b"}"
    c = Conn(SVC.port, timeout=10)
    try:
        if chunked:
            c.send(request_bytes(b"POST", b"/api/v1/recomputations",
                                 [b"Transfer-Encoding: chunked", b"X-Management-Key: test-key"]))
            half = body_len // 2
            c.send(b"%x\r\n" % half + body[:half] + b"\r\n")
            c.send(b"%x\r\n" % (body_len - half) + body[half:] + b"\r\n0\r\n\r\n")
        else:
            c.send(request_bytes(b"POST", b"/api/v1/recomputations",
                                 [b"Content-Length: %d" % body_len, b"X-Management-Key: test-key"], body))
        return c.response(timeout=10)
    finally:
        c.close()


def test_body_limit_is_exactly_65536():
    for chunked in (False, True):
        what = "chunked" if chunked else "content-length"
        r = post_body(LIMIT, chunked)
        assert_envelope(r, "%s body of exactly %d" % (what, LIMIT))
        assert r.status != 413, "%s body of exactly %d bytes refused: %r" % (what, LIMIT, r)
        # "{ ... }" is an empty object: past the size check it must fail validation.
        assert_error(r, 400, "report_slug is required", "%s body of %d" % (what, LIMIT))
        r = post_body(LIMIT + 1, chunked)
        assert_error(r, 413, "request body too large", "%s body of %d" % (what, LIMIT + 1))
    assert_alive()


def test_expect_continue_with_oversized_length():
    c = Conn(SVC.port)
    try:
        c.send(request_bytes(b"POST", b"/api/v1/recomputations",
                             [b"Content-Length: 10485760", b"Expect: 100-continue",
                              b"X-Management-Key: test-key"]))
        r = c.response(timeout=READ_TIMEOUT * 0.8)
        if r.status == 100:  # an interim answer is tolerated, the final one must still be 413
            print("  NOTE: server sent 100 Continue before refusing the body")
            r = c.response(timeout=READ_TIMEOUT * 0.8)
        assert_error(r, 413, "request body too large", "Expect: 100-continue, 10 MB")
    finally:
        c.close()
    assert_alive()


# ---- timeouts ---------------------------------------------------------------------------------

def test_slowloris_is_cut_off_while_normal_clients_are_served():
    conns = [Conn(SVC.port) for _ in range(40)]
    stop = threading.Event()
    slow_latencies = []

    def normal_client():
        while not stop.is_set():
            t = time.time()
            r = exchange(SVC.port, request_bytes(b"GET", b"/api/v1/health"), timeout=5)
            slow_latencies.append((time.time() - t, r.status if r else None))
            time.sleep(0.05)

    t0 = time.time()
    for c in conns:
        c.send(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")
    client = threading.Thread(target=normal_client, daemon=True)
    client.start()
    closed_at = {}
    try:
        # Trickle one header byte per connection every 0.1 s for up to 4 s.
        while time.time() - t0 < 4 and len(closed_at) < len(conns):
            for i, c in enumerate(conns):
                if i in closed_at:
                    continue
                if not c.send(b"X"):
                    closed_at[i] = time.time() - t0
                    continue
                c.sock.setblocking(False)
                try:
                    if c.sock.recv(4096) == b"":
                        closed_at[i] = time.time() - t0
                except (BlockingIOError, InterruptedError):
                    pass
                except ConnectionResetError:
                    closed_at[i] = time.time() - t0
            time.sleep(0.1)
    finally:
        stop.set()
        client.join(10)
        for c in conns:
            c.close()
    open_ones = [i for i in range(len(conns)) if i not in closed_at]
    assert not open_ones, "%d slowloris connections still open after 4 s (HTTP_READ_TIMEOUT=1s)" % \
        len(open_ones)
    assert max(closed_at.values()) < READ_TIMEOUT + 1.5, sorted(closed_at.values())
    assert min(closed_at.values()) >= READ_TIMEOUT * 0.8, "closed before the read timeout: %s" % \
        sorted(closed_at.values())
    assert len(slow_latencies) >= 10, slow_latencies
    bad = [x for x in slow_latencies if x[1] not in (200, 503) or x[0] > 0.5]
    assert not bad, "normal client slow or failing during slowloris: %s" % bad
    assert_alive()


def test_idle_keepalive_connection_is_closed_after_read_timeout():
    c = Conn(SVC.port)
    try:
        c.send(request_bytes(b"GET", b"/api/v1/health"))
        r = c.response()
        assert r.status in (200, 503), r
        t = time.time()
        assert c.closed_within(READ_TIMEOUT + 1.5), "idle keep-alive connection still open"
        waited = time.time() - t
        assert waited >= READ_TIMEOUT * 0.8, "closed after only %.2fs" % waited
        assert c.buf == b"", "server wrote %r when closing an idle connection" % c.buf
    finally:
        c.close()


def test_body_trickle_is_cut_off_by_read_timeout():
    # The read timeout covers the body too (CONFIG.md §5.2): a request whose body never
    # completes is closed without a response.
    c = Conn(SVC.port)
    try:
        c.send(request_bytes(b"POST", b"/api/v1/recomputations",
                             [b"Content-Length: 100", b"X-Management-Key: test-key"], b"{"))
        t = time.time()
        closed = False
        while time.time() - t < READ_TIMEOUT + 2:
            if not c.send(b" "):
                closed = True
                break
            if c.closed_within(0.2):
                closed = True
                break
        assert closed, "a trickled body kept the connection open for %.1fs" % (time.time() - t)
        assert not c.buf.startswith(b"HTTP/1.1 2"), c.buf
    finally:
        c.close()


# ---- junk -------------------------------------------------------------------------------------

def test_pipelined_garbage_after_valid_request():
    rnd = random.Random(6)
    for junk in (bytes(rnd.randrange(256) for _ in range(2000)), b"\x00" * 64 + b"\r\n\r\n",
                 b"GET\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\xaa" * 200):
        c = Conn(SVC.port)
        try:
            c.send(request_bytes(b"GET", b"/api/v1/health") + junk)
            r = c.response()
            assert r.status in (200, 503), r
            assert_envelope(r, "pipelined valid request")
            try:
                r2 = c.response(timeout=READ_TIMEOUT + 2)
                assert r2.status == 400, "junk answered with %r" % r2
            except hostile.Closed:
                pass
        finally:
            c.close()
    # Junk alone on a fresh connection.
    error_or_closed(bytes(random.Random(7).randrange(256) for _ in range(4096)), "binary junk")
    error_or_closed(b"\r\n" * 10000, "only CRLFs", timeout=READ_TIMEOUT + 2)
    assert_alive()


def test_requests_arriving_while_one_is_handled():
    """A pipelined request, or the end of the stream, that arrives while the connection's current
    request waits for PostgreSQL or Redis is kept: the worker keeps such connections polled and
    stops reading at the first bytes (server/http_worker.c), and h2o answers them afterwards, in
    order."""
    targets = [(b"/api/v1/reports/status-counts/run", "status-counts"),
               (b"/api/v1/reports/volume-by-period/run?window=week", "volume-by-period"),
               (b"/api/v1/reports/top-entities/run?limit=3", "top-entities"),
               (b"/api/v1/reports?limit=2", None)]

    def check(r, target):
        doc = assert_envelope(r, target[0])
        assert r.status == 200, (target[0], r)
        if target[1] is None:
            assert isinstance(doc["data"], list), r
        else:
            assert doc["data"]["report_slug"] == target[1], (target[0], r)

    for i in range(120):
        first, second = targets[i % 4], targets[(i + 1 + i // 4) % 4]
        c = Conn(SVC.port)
        try:
            assert c.send(request_bytes(b"GET", first[0]))
            time.sleep(0.0003 * (i % 5))  # the second request lands during the first's work
            assert c.send(request_bytes(b"GET", second[0]))
            check(c.response(), first)
            check(c.response(), second)
            assert c.send(request_bytes(b"GET", first[0]))  # and the connection goes on
            check(c.response(), first)
        finally:
            c.close()
    for i in range(20):
        c = Conn(SVC.port)
        try:
            assert c.send(request_bytes(b"GET", targets[i % 3][0]))
            c.sock.shutdown(hostile.socket.SHUT_WR)  # end of stream while it is handled
            check(c.response(), targets[i % 3])
            assert c.closed_within(2), "the half-closed connection was not closed"
        finally:
            c.close()
    assert_alive()


NASTY_VALUES = [b"%00", b"%FF", b"%C0%AF", b"%ED%A0%80", b"a%00b", b"%E2%80%A8", b"%F4%90%80%80",
                b"\x80\xff", b"\xc3\xa9", b"%", b"%G0", b"%%%", b"+%2B+", b"\xf0\x9f\x98",
                b"-9223372036854775809", b"99999999999999999999999"]
PARAM_NAMES = [b"date_from", b"date_to", b"window", b"breakdown", b"limit", b"offset", b"source",
               b"status", b"search", b"sort", b"order", b"report_slug", b"requested_by", b"%00",
               b"\xff"]


def check_route_answer(r, path, what):
    """An answer the contract allows for a GET on a routed path: a JSON envelope with one of
    the contract's statuses."""
    assert r is not None, "%s: connection closed without a response" % what
    assert_envelope(r, what)
    allowed = {b"/api/v1/health": (200, 503)}.get(path, (200, 400, 401, 404, 503))
    assert r.status in allowed, "%s: got %r" % (what, r)


def test_invalid_utf8_and_nul_in_query_of_every_route():
    rnd = random.Random(42)
    n = 0
    for path in ROUTES_PUBLIC + ROUTES_MGMT:
        headers = [b"X-Management-Key: test-key"] if path in ROUTES_MGMT else []
        for value in NASTY_VALUES:
            qs = b"&".join(name + b"=" + value for name in PARAM_NAMES)
            r = exchange(SVC.port, request_bytes(b"GET", path + b"?" + qs, headers))
            check_route_answer(r, path, "GET %r?...=%r" % (path, value))
            n += 1
        # A few random byte soups (no space, CR or LF, which would end the request target).
        for _ in range(5):
            soup = bytes(rnd.choice([b for b in range(0x21, 0x100) if b != 0x7f]) for _ in range(300))
            r = exchange(SVC.port, request_bytes(b"GET", path + b"?" + soup, headers))
            if r is not None and r.status == 400 and r.headers.get("content-type") != "application/json":
                raise AssertionError("non-JSON 400 for a byte soup query on %r: %r" % (path, r))
            if r is not None:
                check_route_answer(r, path, "GET %r?<soup>" % path)
            n += 1
    print("  %d nasty queries answered" % n)
    assert_alive()


def test_nasty_management_headers():
    path = b"/api/v1/audit-entries"
    cases = [
        ([b"X-Management-Key: test-key\xff"], 401),
        ([b"X-Management-Key: \xa0test-key"], 401),             # lone 0xA0 byte is not U+00A0
        ([b"X-Management-Key: %00test-key"], 401),
        ([b"X-Management-Key: \xc3\xa9", b"Authorization: Bearer test-key"], 401),
        ([b"Authorization: Bearer \xff\xfe"], 401),
        ([b"Authorization: Basic dGVzdC1rZXk="], 401),
        ([b"Authorization: \xed\xa0\x80"], 401),
        ([b"X-Management-Key: \xe2\x80\x83\xe2\x80\x83", b"Authorization: bEaReR   test-key\xe3\x80\x80"], None),
        ([b"X-Management-Key: \xc2\xa0Bearer test-key\xe2\x80\xa9"], None),
        ([b"X-Management-Key: test-key", b"X-Actor: \xff\x00"], "any"),
        ([b"X-Management-Key: test-key", b"X-Actor: %00\xc0\xaf"], None),
    ]
    for hdrs, want in cases:
        r = exchange(SVC.port, request_bytes(b"GET", path, hdrs))
        what = "GET %r with %r" % (path, hdrs)
        if want == "any":  # a raw NUL in a header value: HTTP forbids it
            assert r is None or r.status in (400, 200, 500), "%s: %r" % (what, r)
            if r is not None and r.status != 400:
                assert_envelope(r, what)
            continue
        assert r is not None, what
        assert_envelope(r, what)
        if want == 401:
            assert_error(r, 401, "management authentication failed", what)
        else:
            assert r.status != 401, "%s: key not recognised: %r" % (what, r)
            check_route_answer(r, path, what)
    # The trigger with a junk X-Actor and a junk body member.
    for actor in (b"\xff\xfe", b"\x7f", b"\x01", b"a" * 8000, b"%00", b"\xe2\x80\xa8"):
        body = b'{"report_slug":"volume-by-period","requested_by":null}'
        r = exchange(SVC.port, request_bytes(b"POST", b"/api/v1/recomputations",
                                             [b"X-Management-Key: test-key", b"X-Actor: " + actor,
                                              b"Content-Length: %d" % len(body)], body))
        if actor in (b"\x7f", b"\x01"):  # control bytes HTTP forbids in a field value
            assert r is None or r.status == 400, \
                "X-Actor %r: %r" % (actor, r)
            if r is not None and r.headers.get("content-type") != "application/json":
                print("  NOTE: X-Actor %r -> h2o's own non-JSON %d %r" % (actor, r.status, r.body))
            continue
        what = "trigger with X-Actor %r" % actor[:20]
        assert_envelope(r, what)
        assert r.status in (202, 400, 409, 503), \
            "%s: %r" % (what, r)
        if r.status == 400:
            assert r.json()["error"]["message"] == "requested_by is invalid", r
    assert_alive()


# ---- paths, methods, versions -----------------------------------------------------------------

def test_path_edge_cases():
    for path in (b"//api/v1/health", b"/api/v1/health/", b"/api/v1//health", b"/api/v1/reports/",
                 b"/api/v1/reports//run", b"/API/v1/health", b"/api/v1/health%00", b"/%2e%2e/api/v1/health",
                 b"/api/v1/reports/x/run/", b"/api/v1/../v1/health", b"/api/v1/health\xff",
                 b"/api/v1/" + b"a" * 4000, b"*"):
        r = exchange(SVC.port, request_bytes(b"GET", path))
        assert_error(r, 404, "route was not found", "GET %r" % path[:60])
    # Routed, with parameters that cannot match anything.
    for path in (b"/api/v1/reports/%00", b"/api/v1/reports/%FF", b"/api/v1/reports/\xff\xfe",
                 b"/api/v1/reports/volume%2Dby%2Dperiod", b"/api/v1/reports/%00/run"):
        r = exchange(SVC.port, request_bytes(b"GET", path))
        assert_error(r, 404, "report was not found", "GET %r" % path)
    for path in (b"/api/v1/recomputations/%00", b"/api/v1/recomputations/\xff",
                 b"/api/v1/recomputations/" + b"f" * 5000):
        r = exchange(SVC.port, request_bytes(b"GET", path, [b"X-Management-Key: test-key"]))
        assert_error(r, 404, "recompute run was not found", "GET %r" % path[:60])
    # A very long path: 404 JSON if the server takes it, else an error status or close.
    r = error_or_closed(request_bytes(b"GET", b"/api/v1/" + b"a" * 200000), "200 KB path")
    if r is not None and r.headers.get("content-type") == "application/json":
        assert_error(r, 404, "route was not found", "200 KB path")
    print("  200 KB path ->", r.status if r else "closed")
    assert_alive()


def test_methods():
    cases = [
        (b"get", b"/api/v1/health", 405, "GET, HEAD"),
        (b"Get", b"/api/v1/reports", 405, "GET, HEAD"),
        (b"post", b"/api/v1/recomputations", 405, "GET, HEAD, POST"),
        (b"OPTIONS", b"/api/v1/recomputations", 405, "GET, HEAD, POST"),
        (b"DELETE", b"/api/v1/audit-entries", 405, "GET, HEAD"),
        (b"PATCH", b"/api/v1/recomputations/6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab", 405, "GET, HEAD"),
        (b"BREW", b"/api/v1/reports/volume-by-period/run", 405, "GET, HEAD"),
        (b"X" * 200, b"/api/v1/health", 405, "GET, HEAD"),
        (b"CONNECT", b"/api/v1/health", 405, "GET, HEAD"),
        (b"TRACE", b"/api/v1/health", 405, "GET, HEAD"),
        (b"get", b"/nope", 404, None),
        (b"BREW", b"//api/v1/health", 404, None),
    ]
    for method, path, status, allow in cases:
        r = exchange(SVC.port, request_bytes(method, path))
        what = "%r %r" % (method[:20], path)
        if status == 405:
            assert_error(r, 405, "method not allowed", what)
            assert r.headers.get("allow") == allow, "%s: Allow %r" % (what, r.headers.get("allow"))
        else:
            assert_error(r, 404, "route was not found", what)
    # HEAD: same status and headers as GET, no body.
    c = Conn(SVC.port)
    try:
        c.send(request_bytes(b"HEAD", b"/nope") + request_bytes(b"GET", b"/api/v1/health"))
        r = c.response(head=True)
        assert r.status == 404 and r.headers.get("content-type") == "application/json", r
        r2 = c.response()
        assert r2.status in (200, 503) and r2.body.startswith(b'{"data":'), \
            "a HEAD response carried a body: %r" % r2
    finally:
        c.close()
    # Method tokens HTTP does not allow: an error status or close, never a crash.
    for method in (b"G\x00T", b"G\xffT", b"(GET)", b""):
        error_or_closed(request_bytes(method, b"/api/v1/health"), "method %r" % method)
    assert_alive()


def test_http_10():
    for path, status in ((b"/api/v1/health", None), (b"/nope", 404)):
        c = Conn(SVC.port)
        try:
            c.send(request_bytes(b"GET", path, version=b"HTTP/1.0", host=False))
            r = c.response()
            assert_envelope(r, "HTTP/1.0 GET %r" % path)
            assert r.status == (status or r.status) and r.status in (200, 503, 404), r
            assert c.closed_within(2), "HTTP/1.0 connection without keep-alive left open"
        finally:
            c.close()
    r = exchange(SVC.port, request_bytes(b"DELETE", b"/api/v1/health", version=b"HTTP/1.0"))
    assert_error(r, 405, "method not allowed", "HTTP/1.0 DELETE")
    # h2o buffers bodies up to the largest route limit (1 MiB, POST /api/v1/events) before the
    # route's own limit answers, so the 70000 bytes are sent.
    r = exchange(SVC.port, request_bytes(b"POST", b"/api/v1/recomputations",
                                         [b"Content-Length: 70000"], body=b"x" * 70000,
                                         version=b"HTTP/1.0"))
    assert_error(r, 413, "request body too large", "HTTP/1.0 POST 70000")
    for version in (b"HTTP/0.9", b"HTTP/1.1x", b"FOO/1.1", b"HTTP/1.", b"\xff"):
        error_or_closed(request_bytes(b"GET", b"/api/v1/health", version=version),
                        "version %r" % version)
    assert_alive()


def test_conflicting_framing():
    # Content-Length and Transfer-Encoding together, duplicate/negative Content-Length: an error
    # status or close, never a crash or a hang.
    for hdrs in ([b"Content-Length: 5", b"Transfer-Encoding: chunked"],
                 [b"Content-Length: 5", b"Content-Length: 70000"],
                 [b"Content-Length: -1"],
                 [b"Content-Length: 99999999999999999999999"],
                 [b"Transfer-Encoding: gzip, chunked"]):
        c = Conn(SVC.port, timeout=READ_TIMEOUT + 3)
        try:
            c.send(request_bytes(b"POST", b"/api/v1/recomputations",
                                 hdrs + [b"X-Management-Key: test-key"], b"0\r\n\r\n"))
            try:
                r = c.response(timeout=READ_TIMEOUT + 3)
                assert r.status >= 400, "framing %r accepted: %r" % (hdrs, r)
                if r.headers.get("content-type") == "application/json":
                    assert_envelope(r, "framing %r" % hdrs)
            except hostile.Closed:
                pass
        finally:
            c.close()
    assert_alive()


# ---- the end ----------------------------------------------------------------------------------

def test_workers_survived_with_bounded_memory():
    now = SVC.pids("http worker")
    assert SVC.proc.poll() is None, "master died"
    died = [p for p in START_PIDS if not hostile.pid_alive(p) or p not in now]
    assert not died, "HTTP worker(s) %s died during the hostile tests (now %s); log:\n%s" % (
        died, now, SVC.logs()[-4000:])
    for pid in now:
        kib = hostile.rss_kib(pid)
        print("  worker %d VmRSS %d KiB" % (pid, kib))
        assert kib < 64 * 1024, "worker %d RSS %d KiB >= 64 MiB" % (pid, kib)


if __name__ == "__main__":
    adtest.require_env()
    DB = adtest.ScratchDatabase()
    try:
        SVC = adtest.Service(DB, HTTP_READ_TIMEOUT="1s", HTTP_WRITE_TIMEOUT="5s", HTTP_WORKERS=2).start()
        START_PIDS = SVC.pids("http worker")
        assert len(START_PIDS) == 2, SVC.children()
        adtest.run([test_oversized_header_line, test_many_headers,
                    test_huge_content_length_is_refused_without_reading, test_chunked_ten_mb_body,
                    test_body_limit_is_exactly_65536, test_expect_continue_with_oversized_length,
                    test_slowloris_is_cut_off_while_normal_clients_are_served,
                    test_idle_keepalive_connection_is_closed_after_read_timeout,
                    test_body_trickle_is_cut_off_by_read_timeout,
                    test_pipelined_garbage_after_valid_request,
                    test_requests_arriving_while_one_is_handled,
                    test_invalid_utf8_and_nul_in_query_of_every_route, test_nasty_management_headers,
                    test_path_edge_cases, test_methods, test_http_10, test_conflicting_framing,
                    test_workers_survived_with_bounded_memory])
    finally:
        if SVC is not None:
            SVC.stop()
        DB.drop()
