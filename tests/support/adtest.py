"""tests/support/adtest.py: harness for black-box tests of the real analyticsd processes.

Used by tests/integration/test_*.py (run by ctest through `deploy/dev test`). Each test file gets
its own scratch PostgreSQL database (migrated and seeded through the real binary), its own Redis
database number and its own port, so files can run side by side. Nothing is mocked.

Environment (set by deploy/dev): ANALYTICSD_BIN, TEST_PG_CONNINFO, REDIS_URL (and TEST_NATS_URL;
tests that consume from NATS start their own PrivateNats so that no two share a stream).
"""

import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse

BIN = os.environ.get("ANALYTICSD_BIN", "")
PG_CONNINFO = os.environ.get("TEST_PG_CONNINFO", "")
REDIS_URL = os.environ.get("REDIS_URL", "")


def require_env():
    missing = [n for n, v in (("ANALYTICSD_BIN", BIN), ("TEST_PG_CONNINFO", PG_CONNINFO),
                              ("REDIS_URL", REDIS_URL)) if not v]
    if missing:
        print("missing environment: %s (run the suite through deploy/dev test)" % ", ".join(missing))
        sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql(conninfo, sql, check=True):
    """Runs sql with psql; returns rows as lists of strings (unaligned, tab-separated)."""
    out = subprocess.run(["psql", conninfo, "-X", "-q", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1",
                          "-c", sql], capture_output=True, text=True)
    if check and out.returncode != 0:
        raise AssertionError("psql failed: %s" % out.stderr.strip())
    return [line.split("\t") for line in out.stdout.splitlines() if line != ""]


class ScratchDatabase:
    """A database created for one test file, migrated and seeded with the real binary."""

    def __init__(self, seed=True):
        self.name = "t_%s_%d_%d" % (os.path.basename(sys.argv[0]).split(".")[0].lower(), os.getpid(),
                                    random.randint(0, 1 << 30))
        self.admin = PG_CONNINFO + " dbname=postgres"
        psql(self.admin, 'DROP DATABASE IF EXISTS "%s"' % self.name)
        psql(self.admin, "CREATE DATABASE \"%s\" ENCODING 'UTF8' TEMPLATE template0" % self.name)
        self.conninfo = PG_CONNINFO + " dbname=" + self.name
        env = dict(os.environ, DATABASE_URL=self.conninfo)
        for cmd in (["migrate"], ["seed"]) if seed else (["migrate"],):
            r = subprocess.run([BIN] + cmd, env=env, capture_output=True, text=True)
            if r.returncode != 0:
                raise AssertionError("%s failed: %s %s" % (cmd, r.stdout, r.stderr))

    def sql(self, q):
        return psql(self.conninfo, q)

    def drop(self):
        psql(self.admin, 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % self.name, check=False)


# Each test file gets its own Redis database number, so files can run side by side and a
# FLUSHDB in one never touches another. Add new files here.
REDIS_DBS = {"test_lifecycle": 1, "test_reports": 2, "test_report_cache": 3,
             "test_recompute_api": 4, "test_recompute_pipeline": 5, "test_hostile_http": 6,
             "test_chaos": 7, "test_outages": 8, "test_sms_ingest": 9,
             "test_sms_upkeep": 10, "test_sms_read": 11, "test_probes": 12, "test_refresh": 13,
             "test_instances": 14, "test_metrics": 0, "test_openapi": 15}


def default_redis_db():
    name = os.path.basename(sys.argv[0]).split(".")[0]
    return REDIS_DBS.get(name, 10 + sum(name.encode()) % 6)


def redis_db_url(db):
    u = urllib.parse.urlsplit(REDIS_URL)
    return "%s://%s/%d" % (u.scheme, u.netloc, db)


def redis_cli(url, *args):
    u = urllib.parse.urlsplit(url)
    db = (u.path or "/0").lstrip("/") or "0"
    cmd = ["redis-cli", "-h", u.hostname, "-p", str(u.port or 6379), "-n", db] + list(args)
    return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()


class Service:
    """One `analyticsd serve` process tree on its own port."""

    def __init__(self, db, redis_db=None, **env):
        self.port = free_port()
        self.redis_url = redis_db_url(redis_db if redis_db is not None else default_redis_db())
        self.env = dict(os.environ, DATABASE_URL=db.conninfo, REDIS_URL=self.redis_url,
                        APP_HOST="127.0.0.1", APP_PORT=str(self.port),
                        MANAGEMENT_API_KEY="test-key", HTTP_WORKERS="2", RECOMPUTE_WORKERS="1",
                        APP_AUTO_MIGRATE="false", HTTP_SHUTDOWN_TIMEOUT="5s",
                        NATS_URL="")  # NATS ingestion only where a test asks for it
        self.env.update({k: str(v) for k, v in env.items()})
        self.log = tempfile.NamedTemporaryFile(prefix="analyticsd-", suffix=".log", delete=False)
        self.proc = None

    def start(self, args=(), wait=True):
        self.proc = subprocess.Popen([BIN, "serve"] + list(args), env=self.env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("server exited with %s:\n%s" % (self.proc.returncode, self.logs()))
            try:
                status, _, _ = self.request("GET", "/api/v1/health")
                if status in (200, 503):
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("server not ready after %ss:\n%s" % (timeout, self.logs()))

    def logs(self):
        with open(self.log.name, errors="replace") as f:
            return f.read()

    def wait_catalogues(self, timeout=10):
        """Waits until every HTTP worker has logged its first catalogue load (server/catalogue.c).
        Answering once (wait_ready) says only that one worker is up; a worker whose catalogue
        is not loaded yet looks reports up in PostgreSQL."""
        want = int(self.env["HTTP_WORKERS"])
        pids = lambda: set(re.findall(r" http\[(\d+)\]: catalogue: loaded ", self.logs()))
        assert wait_until(lambda: len(pids()) >= want, timeout), self.logs()

    def request(self, method, path, body=None, headers=None, timeout=10):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def get_json(self, path, headers=None):
        status, hdrs, body = self.request("GET", path, headers=headers)
        return status, json.loads(body) if body else None

    def children(self):
        """{pid: title} of the master's children, from /proc."""
        out = {}
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % pid) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                if ppid != self.proc.pid:
                    continue
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    out[int(pid)] = f.read().split(b"\0")[0].decode()
            except (OSError, IndexError, ValueError):
                continue
        return out

    def pids(self, role):
        return sorted(p for p, t in self.children().items() if t.startswith("analyticsd: " + role))

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=20):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("server did not stop within %ss" % timeout)


def alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(predicate, timeout, step=0.02):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def run(tests):
    """Runs test functions in order; prints a closing 'N passed, M failed' line; exits 1 on failure."""
    require_env()
    passed = failed = 0
    for t in tests:
        start = time.time()
        try:
            t()
            passed += 1
            print("ok   %s (%.1fs)" % (t.__name__, time.time() - start), flush=True)
        except Exception:
            failed += 1
            print("FAIL %s (%.1fs)" % (t.__name__, time.time() - start), flush=True)
            traceback.print_exc()
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)
