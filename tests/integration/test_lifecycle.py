"""tests/integration/test_lifecycle.py: the pre-forked process model with real processes.

Master + HTTP workers + recompute workers + supervisor against a scratch PostgreSQL database and
the test Redis: process titles, crash replacement under traffic, back-off, graceful stop, reload,
master death, configuration errors, the sharing out of connections between HTTP workers and the
sd_notify protocol (CONFIG.md §5, issue 3).
"""

import http.client
import os
import signal
import socket
import subprocess
import threading
import time

import adtest

DB = None


class Hammer(threading.Thread):
    """Keeps requesting /api/v1/health on fresh connections; counts outcomes."""

    def __init__(self, svc):
        super().__init__(daemon=True)
        self.svc = svc
        self.ok = 0
        self.failures = []
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            try:
                status, _, _ = self.svc.request("GET", "/api/v1/health", timeout=5)
                if status in (200, 503):
                    self.ok += 1
                else:
                    self.failures.append("status %d" % status)
            except Exception as e:  # refused, reset, timeout: all count as failures
                self.failures.append(repr(e))

    def stop(self):
        self.halt.set()
        self.join(10)


def test_process_titles_show_roles():
    svc = adtest.Service(DB, HTTP_WORKERS=2, RECOMPUTE_WORKERS=2).start()
    try:
        titles = sorted(svc.children().values())
        assert titles == ["analyticsd: http worker 1", "analyticsd: http worker 2",
                          "analyticsd: recompute worker 1", "analyticsd: recompute worker 2",
                          "analyticsd: supervisor"], titles
        with open("/proc/%d/cmdline" % svc.proc.pid, "rb") as f:
            assert f.read().split(b"\0")[0] == b"analyticsd: master"
    finally:
        assert svc.stop() == 0, svc.logs()


def test_killed_http_worker_is_replaced_under_traffic():
    svc = adtest.Service(DB, HTTP_WORKERS=2).start()
    hammer = Hammer(svc)
    hammer.start()
    try:
        time.sleep(0.3)
        victim = svc.pids("http worker")[0]
        os.kill(victim, signal.SIGKILL)
        killed_at = time.time()
        replaced = adtest.wait_until(
            lambda: len(svc.pids("http worker")) == 2 and victim not in svc.pids("http worker"), 1.0)
        assert replaced, "worker not replaced within 1 s: %s" % svc.children()
        assert time.time() - killed_at <= 1.0
        time.sleep(0.5)
    finally:
        hammer.stop()
    # Only a request the killed worker had already accepted may fail.
    assert hammer.ok > 20, hammer.ok
    assert len(hammer.failures) <= 1, hammer.failures
    assert svc.proc.poll() is None
    assert svc.stop() == 0, svc.logs()


def test_repeated_crashes_back_off_and_master_survives():
    svc = adtest.Service(DB, HTTP_WORKERS=1).start()
    try:
        # A serving worker is replaced at once; a slot dying more than 5 times in 10 s backs off.
        for _ in range(7):
            pids = adtest.wait_until(lambda: svc.pids("http worker"), 5)
            assert pids, "no http worker came back: %s" % svc.logs()
            os.kill(pids[0], signal.SIGKILL)
            time.sleep(0.05)
        assert adtest.wait_until(lambda: "respawning in" in svc.logs(), 3), svc.logs()
        assert svc.proc.poll() is None, "master died"
        assert adtest.wait_until(lambda: svc.pids("http worker"), 10), "never respawned"
        svc.wait_ready()
    finally:
        svc.stop()


def test_sigterm_lets_in_flight_request_finish_and_exits_zero():
    svc = adtest.Service(DB, HTTP_WORKERS=1).start()
    # Half a request in flight: the worker must wait for it while draining.
    s = socket.create_connection(("127.0.0.1", svc.port))
    s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")
    time.sleep(0.2)
    svc.signal(signal.SIGTERM)
    time.sleep(0.5)
    assert svc.proc.poll() is None, "exited before the in-flight request finished"
    s.sendall(b"\r\n")
    s.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    assert data.startswith(b"HTTP/1.1 200") or data.startswith(b"HTTP/1.1 503"), data
    assert svc.proc.wait(10) == 0, svc.logs()
    # New connections are refused once stopped.
    try:
        socket.create_connection(("127.0.0.1", svc.port), timeout=1).close()
        raise AssertionError("still accepting after stop")
    except ConnectionRefusedError:
        pass


def test_sighup_replaces_http_workers_without_refusing():
    envfile = "/tmp/analyticsd-reload-%d.env" % os.getpid()
    with open(envfile, "w") as f:
        f.write("APP_VERSION=before\n")
    svc = adtest.Service(DB, HTTP_WORKERS=2).start(["--config", envfile])
    hammer = Hammer(svc)
    try:
        assert svc.get_json("/api/v1/health")[1]["data"]["version"] == "before"
        old = set(svc.pids("http worker"))
        with open(envfile, "w") as f:
            f.write("APP_VERSION=after\n")
        hammer.start()
        time.sleep(0.2)
        svc.signal(signal.SIGHUP)
        assert adtest.wait_until(lambda: not (set(svc.pids("http worker")) & old)
                                 and len(svc.pids("http worker")) == 2, 10), svc.logs()
        time.sleep(0.3)
        hammer.stop()
        assert hammer.failures == [], hammer.failures[:5]
        assert hammer.ok > 20
        assert svc.get_json("/api/v1/health")[1]["data"]["version"] == "after"
        # An invalid configuration keeps the current generation serving.
        current = set(svc.pids("http worker"))
        with open(envfile, "w") as f:
            f.write("HTTP_WORKERS=zero\n")
        svc.signal(signal.SIGHUP)
        assert adtest.wait_until(lambda: "reload rejected: configuration error: HTTP_WORKERS "
                                 "must be an integer" in svc.logs(), 5), svc.logs()
        assert set(svc.pids("http worker")) == current
        assert svc.get_json("/api/v1/health")[1]["data"]["version"] == "after"
    finally:
        hammer.stop()
        os.unlink(envfile)
        assert svc.stop() == 0, svc.logs()


def test_children_exit_when_master_is_killed():
    svc = adtest.Service(DB, HTTP_WORKERS=2, RECOMPUTE_WORKERS=1).start()
    kids = list(svc.children())
    assert len(kids) == 4
    svc.proc.kill()
    svc.proc.wait()
    alive = lambda: [p for p in kids if os.path.exists("/proc/%d" % p)
                     and open("/proc/%d/stat" % p).read().rsplit(")", 1)[1].split()[0] != "Z"]
    assert adtest.wait_until(lambda: not alive(), 2.0), "children still alive: %s" % alive()


def test_configuration_error_exits_one_with_message():
    env = dict(os.environ, DATABASE_URL=DB.conninfo, REDIS_URL="redis://127.0.0.1:6379/0",
               HTTP_WORKERS="0", APP_PORT="99999")
    r = subprocess.run([adtest.BIN, "serve"], env=env, capture_output=True, text=True, timeout=10)
    assert r.returncode == 1, r
    assert "configuration error: APP_PORT must be an integer between 1 and 65535" in r.stderr
    assert "configuration error: HTTP_WORKERS" in r.stderr


def test_port_in_use_exits_one():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        svc = adtest.Service(DB, APP_PORT=s.getsockname()[1])
        svc.start(wait=False)
        assert svc.proc.wait(10) == 1, svc.logs()
        assert "cannot listen" in svc.logs()


def test_write_timeout_closes_a_stuck_request():
    """HTTP_WRITE_TIMEOUT (CONFIG.md §5.2): a request whose answer is not complete in time gets
    its connection closed without a response; the worker keeps serving others."""
    svc = adtest.Service(DB, HTTP_WORKERS=1, HTTP_WRITE_TIMEOUT="1s").start()
    locker = subprocess.Popen(
        ["psql", DB.conninfo, "-X", "-q", "-c",
         "BEGIN; LOCK TABLE metric_snapshots IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(30);"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert adtest.wait_until(lambda: adtest.psql(DB.conninfo, "SELECT count(*) FROM pg_locks "
                                 "WHERE relation = 'metric_snapshots'::regclass AND granted "
                                 "AND mode = 'AccessExclusiveLock'")[0][0] == "1", 10)
        start = time.time()
        try:
            status, _, _ = svc.request("GET", "/api/v1/reports/top-entities/run?limit=7",
                                       timeout=10)
            raise AssertionError("got a response (%d) from a stuck request" % status)
        except (ConnectionError, http.client.HTTPException):
            pass
        took = time.time() - start
        assert 0.9 <= took <= 3.0, took
        assert svc.request("GET", "/api/v1/health")[0] in (200, 503)
        assert len(svc.pids("http worker")) == 1
    finally:
        locker.kill()
        locker.wait()
        assert svc.stop() == 0, svc.logs()


def established_per_worker(svc):
    """Established client connections on svc's port held by each HTTP worker (from /proc)."""
    port = "%04X" % svc.port
    established = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if cols[1].rsplit(":", 1)[1] == port and cols[3] == "01":
                    established.add(cols[9])
    counts = {}
    for pid in svc.pids("http worker"):
        inodes = set()
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        counts[pid] = len(inodes & established)
    return counts


def test_a_burst_of_connections_is_shared_out():
    """64 connections opened at once (a client filling its keep-alive pool) end up spread over
    the HTTP workers, so their requests use every core (server/http_worker.c, on_accept); the
    first worker to wake used to drain the whole burst."""
    svc = adtest.Service(DB, HTTP_WORKERS=2).start()
    try:
        # Both workers must be in their loops first: a worker shares out only with workers that
        # are ready, and start() returns when one answers (an ASan worker still starting once
        # left the whole first burst to the other: 0 and 64).
        svc.wait_catalogues()
        request = b"GET /api/v1/health HTTP/1.1\r\nHost: t\r\n\r\n"
        for burst in range(4):
            conns = [socket.create_connection(("127.0.0.1", svc.port), timeout=10)
                     for _ in range(64)]
            try:
                for c in conns:
                    c.sendall(request)
                for c in conns:  # every connection has been accepted and answered
                    assert c.recv(65536).startswith(b"HTTP/1.1 "), "no answer"
                counts = established_per_worker(svc)
                assert sum(counts.values()) == 64, counts
                assert all(24 <= n <= 40 for n in counts.values()), (burst, counts)
            finally:
                for c in conns:
                    c.close()
            assert adtest.wait_until(lambda: sum(established_per_worker(svc).values()) == 0, 10)
    finally:
        assert svc.stop() == 0, svc.logs()


def test_notify_protocol():
    path = "/tmp/analyticsd-notify-%d.sock" % os.getpid()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    svc = adtest.Service(DB, HTTP_WORKERS=2, NOTIFY_SOCKET=path)
    try:
        svc.start(wait=False)

        def until(prefix):
            seen = []
            while True:
                msg = sock.recv(4096).decode()
                seen.append(msg)
                if any(line.startswith(prefix) for line in msg.split("\n")):
                    return msg, seen

        _, seen = until("READY=1")
        # READY only once a worker serves: a request succeeds right away.
        assert svc.request("GET", "/api/v1/health")[0] in (200, 503)
        # STATUS follows every change of the ready counts; the workers of each kind get ready in
        # any order (a slow recompute worker may follow the HTTP workers), so wait for the line
        # with all of them.
        # (until() fails by its socket timeout if that line never comes.)
        until("STATUS=2/2 http, 1/1 recompute, 0/0 ingest")
        svc.signal(signal.SIGHUP)
        msg, seen = until("RELOADING=1")
        assert "MONOTONIC_USEC=" in msg
        until("READY=1")
        svc.signal(signal.SIGTERM)
        until("STOPPING=1")
        assert svc.proc.wait(10) == 0
    finally:
        sock.close()
        os.unlink(path)
        svc.stop()


if __name__ == "__main__":
    DB = adtest.ScratchDatabase(seed=True)
    try:
        adtest.run([test_process_titles_show_roles, test_killed_http_worker_is_replaced_under_traffic,
                    test_repeated_crashes_back_off_and_master_survives,
                    test_sigterm_lets_in_flight_request_finish_and_exits_zero,
                    test_sighup_replaces_http_workers_without_refusing,
                    test_children_exit_when_master_is_killed, test_configuration_error_exits_one_with_message,
                    test_port_in_use_exits_one, test_write_timeout_closes_a_stuck_request,
                    test_a_burst_of_connections_is_shared_out, test_notify_protocol])
    finally:
        DB.drop()
