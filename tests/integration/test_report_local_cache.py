"""tests/integration/test_report_local_cache.py: the HTTP workers' local copies of cached report
entries (issue 16, DATA.md §7.4 "Local copies", server/redistrack.h).

Against a private redis-server (FLUSHALL, CLIENT KILL and a restart must not disturb the shared
one) and a scratch database:
  - for each write kind (INCR of the version, SET and DEL of the entry, FLUSHDB, FLUSHALL, and
    an expiry), a loop of "make sure the worker serves a local copy, write from another client,
    read at once" never observes the old body;
  - a worker whose invalidation connection is killed (CLIENT KILL) serves no stale copy, and
    a Redis restart drops the copies;
  - the LRU bound holds under ten times its size in distinct keys;
  - with REPORT_LOCAL_CACHE_MB=0 nothing is copied.
Whether a read was local is read from /metrics (analyticsd_report_cache_local_hits_total); no
assertion depends on timing. LCACHE_ITERATIONS (default 2000) sets the loop length.
"""

import datetime
import hashlib
import http.client
import json
import os
import re
import socket
import time
import urllib.parse

import adtest
import privatestack

ITERATIONS = int(os.environ.get("LCACHE_ITERATIONS", "2000"))
SLUG = "top-entities"

DB = None
REDIS = None
SVC = None


class Resp:
    """A minimal RESP2 client on one connection (the writer: another client than the worker's)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            assert chunk, "redis closed the connection"
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind in (b"+", b"-"):
            return rest.decode() if kind == b"+" else RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self.buf += self.sock.recv(65536)
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data
        if kind == b"*":
            return [self._read() for _ in range(int(rest))]
        raise AssertionError("bad reply %r" % line)

    def cmd(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)
        reply = self._read()
        if isinstance(reply, RuntimeError):
            raise reply
        return reply


class Client:
    """One keep-alive HTTP connection to the service."""

    def __init__(self, svc):
        self.conn = http.client.HTTPConnection("127.0.0.1", svc.port, timeout=30)

    def get(self, path):
        self.conn.request("GET", path)
        r = self.conn.getresponse()
        body = r.read()
        assert r.status == 200, (r.status, body)
        return body

    def metric(self, name):
        self.conn.request("GET", "/metrics")
        r = self.conn.getresponse()
        text = r.read().decode()
        total = 0
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                total += float(line.rsplit(" ", 1)[1])
        return total


def today():
    return datetime.datetime.now(datetime.timezone.utc).date()


def path_for(days=30, **extra):
    params = {"date_from": str(today() - datetime.timedelta(days=days)), "date_to": str(today()),
              "limit": 100}
    params.update(extra)
    return "/api/v1/reports/%s/run?%s" % (SLUG, urllib.parse.urlencode(params))


def data(body):
    return json.loads(body)["data"]


LOCAL = "analyticsd_report_cache_local_hits_total"


def establish(c, path, want=None, attempts=None):
    """Reads path until one read was answered from a local copy (the local hit counter moved)
    and returns that body; want(body) filters the bodies that count. None when that did not
    happen within `attempts` reads, or (attempts None) within 60 s: a bound on waiting for the
    invalidation connection to come back, not a timing assertion."""
    deadline = time.time() + 60
    n = 0
    while (n < attempts) if attempts is not None else (time.time() < deadline):
        n += 1
        before = c.metric(LOCAL)
        body = c.get(path)
        if c.metric(LOCAL) > before and (want is None or want(body)):
            return body
    return None


def entry_key(r, days):
    """The Redis key of the entry of path_for(days) under the current version (DATA.md §7.3)."""
    version = r.cmd("GET", "report:version:" + SLUG).decode()
    canon = ('{"breakdown":"","date_from":"%s","date_to":"%s","limit":100,"offset":0,'
             '"source":"","status":"","window":"day"}'
             % (today() - datetime.timedelta(days=days), today()))
    return "report:%s:v%s:%s" % (SLUG, version, hashlib.sha256(canon.encode()).hexdigest())


def with_marker(stored, marker):
    """The stored entry with execution_ms set to marker: still a valid ReportResult."""
    out, n = re.subn(rb'"execution_ms":\d+', b'"execution_ms":%d' % marker, stored)
    assert n == 1, stored
    return out


def race_loop(kind, write, check):
    """ITERATIONS times: a local copy is served; `write` (from another Redis client) is
    acknowledged; the read that follows at once must pass `check(old, new)`."""
    c = Client(SVC)
    r = Resp(REDIS.port)
    days = 10 + len(kind)
    path = path_for(days=days)
    locals_before = c.metric(LOCAL)
    for i in range(ITERATIONS):
        old = establish(c, path)
        assert old is not None, (kind, i, "no local copy was ever served")
        write(r, days, i)
        new = c.get(path)
        assert check(old, new, i), (kind, i, old, new)
    assert c.metric(LOCAL) - locals_before >= ITERATIONS


def is_miss(old, new, i):
    return data(new)["cache_hit"] is False and data(new)["generated_at"] != data(old)["generated_at"]


def test_incr_version():
    race_loop("incr", lambda r, d, i: r.cmd("INCR", "report:version:" + SLUG), is_miss)


def test_set_entry():
    def write(r, d, i):
        key = entry_key(r, d)
        r.cmd("SET", key, with_marker(r.cmd("GET", key), 1000000 + i), "EX", 120)

    race_loop("set", write, lambda old, new, i: data(new)["execution_ms"] == 1000000 + i
              and data(new)["cache_hit"] is True)


def test_del_entry():
    race_loop("del", lambda r, d, i: r.cmd("DEL", entry_key(r, d)), is_miss)


def test_flushdb():
    race_loop("flushdb", lambda r, d, i: r.cmd("FLUSHDB"), is_miss)


def test_flushall():
    race_loop("flushall", lambda r, d, i: r.cmd("FLUSHALL"), is_miss)


def test_expiry():
    """An entry that expires in Redis is not served afterwards, even when nothing touches the
    key (no lazy expiry: the copy's own deadline ends it). The TTL grows when the copy could not
    be established within it (a slow, sanitized build)."""
    c = Client(SVC)
    r = Resp(REDIS.port)
    path = path_for(days=40)
    c.get(path)
    key = entry_key(r, 40)
    stored = r.cmd("GET", key)
    px, established = 100, 0
    rounds = max(20, ITERATIONS // 20)
    for i in range(rounds):
        marker = 2000000 + i
        r.cmd("SET", key, with_marker(stored, marker), "PX", px)
        expires_ms = r.cmd("PEXPIRETIME", key)
        old = establish(c, path, want=lambda b: data(b)["execution_ms"] == marker, attempts=50)
        # Redis's own clock says the key is gone; TIME does not touch the key.
        while True:
            sec, usec = r.cmd("TIME")
            if int(sec) * 1000 + int(usec) // 1000 > expires_ms:
                break
            time.sleep(0.005)
        new = c.get(path)
        assert data(new)["execution_ms"] != marker, (i, new)
        if old is None:
            px = min(px * 2, 5000)
        else:
            established += 1
        r.cmd("SET", key, stored, "EX", 120)
    assert established >= rounds // 2, (established, rounds)


def invalidation_client_id(r):
    for line in r.cmd("CLIENT", "LIST").decode().splitlines():
        if "name=analyticsd-invalidation" in line:
            return int(re.search(r"\bid=(\d+)", line).group(1))
    return None


def test_killed_invalidation_connection():
    """CLIENT KILL of the invalidation connection, then a write: the next read is not the old
    copy, and every copy was dropped (resets). The connection comes back by itself."""
    c = Client(SVC)
    r = Resp(REDIS.port)
    path = path_for(days=50)
    resets_before = c.metric("analyticsd_report_cache_local_resets_total")
    rounds = max(20, ITERATIONS // 10)
    for i in range(rounds):
        assert adtest.wait_until(lambda: invalidation_client_id(r), 10)
        assert establish(c, path) is not None, i
        key = entry_key(r, 50)
        assert r.cmd("CLIENT", "KILL", "ID", invalidation_client_id(r)) == 1
        r.cmd("SET", key, with_marker(r.cmd("GET", key), 3000000 + i), "EX", 120)
        new = c.get(path)
        assert data(new)["execution_ms"] == 3000000 + i, (i, new)
    assert c.metric("analyticsd_report_cache_local_resets_total") - resets_before >= rounds
    assert adtest.wait_until(lambda: invalidation_client_id(r), 10)  # back for the next test


def test_redis_restart_drops_copies():
    c = Client(SVC)
    r = Resp(REDIS.port)
    path = path_for(days=60)
    old = establish(c, path)
    assert old is not None
    key = entry_key(r, 60)
    REDIS.stop()
    REDIS.start()  # SHUTDOWN SAVE: the entry and version survive the restart
    r = Resp(REDIS.port)
    stored = r.cmd("GET", key)
    assert stored is not None
    r.cmd("SET", key, with_marker(stored, 4000000), "EX", 120)
    new = c.get(path)
    assert new != old and (data(new)["execution_ms"] == 4000000
                           or data(new)["generated_at"] != data(old)["generated_at"]), new
    # Caching comes back (recovery bump, DATA.md §7.6), and copies with it.
    assert adtest.wait_until(lambda: c.metric("analyticsd_redis_trusted") == 1, 10)
    assert establish(c, path) is not None


def test_lru_bound():
    """REPORT_LOCAL_CACHE_MB=1 and ten times that in distinct entries: the accounted bytes stay
    within the bound, the LRU evicts, and the newest entry is still served locally."""
    svc = adtest.Service(DB, REDIS_URL=REDIS.url(0), HTTP_WORKERS="1",
                         REPORT_LOCAL_CACHE_MB="1").start()
    try:
        assert adtest.wait_until(lambda: svc.get_json("/api/v1/health")[0] == 200, 10), svc.logs()
        c = Client(svc)
        total, i = 0, 0
        while total < 10 * (1 << 20):
            p = path_for(days=5 + i % 300, offset=i // 300, breakdown="")
            c.get(p)
            total += len(c.get(p))  # a Redis hit: copied
            i += 1
            if i % 200 == 0:
                assert c.metric("analyticsd_report_cache_local_bytes") <= 1 << 20
        last = path_for(days=5 + (i - 1) % 300, offset=(i - 1) // 300, breakdown="")
        assert establish(c, last) is not None
        assert 0 < c.metric("analyticsd_report_cache_local_bytes") <= 1 << 20
        assert c.metric("analyticsd_report_cache_local_evictions_total") > 0
        assert c.metric("analyticsd_report_cache_local_items") > 0
    finally:
        svc.stop()


def invalidation_connections(r):
    return r.cmd("CLIENT", "LIST").decode().count("name=analyticsd-invalidation")


def test_disabled():
    """REPORT_LOCAL_CACHE_MB=0: no invalidation connection (only SVC's stays), no copies."""
    svc = adtest.Service(DB, REDIS_URL=REDIS.url(0), HTTP_WORKERS="1",
                         REPORT_LOCAL_CACHE_MB="0").start()
    try:
        assert adtest.wait_until(lambda: svc.get_json("/api/v1/health")[0] == 200, 10), svc.logs()
        c = Client(svc)
        r = Resp(REDIS.port)
        p = path_for(days=70)
        for _ in range(20):
            assert data(c.get(p))["cache_hit"] in (True, False)
        assert c.metric(LOCAL) == 0
        assert c.metric("analyticsd_report_cache_local_items") == 0
        # SVC's connection only (the LRU test's service is gone once Redis saw it close).
        assert adtest.wait_until(lambda: invalidation_connections(r) == 1, 10), \
            invalidation_connections(r)
    finally:
        svc.stop()


def main():
    global DB, REDIS, SVC
    adtest.require_env()
    DB = adtest.ScratchDatabase()
    REDIS = privatestack.PrivateRedis()
    SVC = adtest.Service(DB, REDIS_URL=REDIS.url(0), HTTP_WORKERS="1").start()
    try:
        assert adtest.wait_until(lambda: SVC.get_json("/api/v1/health")[0] == 200, 10), SVC.logs()
        adtest.run([test_incr_version, test_set_entry, test_del_entry, test_flushdb,
                    test_flushall, test_expiry, test_killed_invalidation_connection,
                    test_redis_restart_drops_copies, test_lru_bound, test_disabled])
    finally:
        SVC.stop()
        REDIS.destroy()
        DB.drop()


if __name__ == "__main__":
    main()
