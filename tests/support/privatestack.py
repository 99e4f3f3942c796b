"""tests/support/privatestack.py: private PostgreSQL, Redis and NATS servers for outage tests.

The shared servers of the test environment must never be stopped, so a test that needs to take
PostgreSQL, Redis or NATS down starts its own on a free port with these classes and stops only
that one. PostgreSQL runs as the `postgres` OS user (initdb into a temporary directory, pg_ctl on
a free port, role `app` created as a superuser); Redis runs as a child process with RDB
persistence in a temporary directory, so a stop with SHUTDOWN SAVE and a restart keep the data
(what a real Redis restart looks like to the service). NATS runs as a child nats-server with
JetStream and its file store in a temporary directory: streams, messages and consumers survive a
stop (or a kill) and a start on the same port. Most tests that need NATS use a PrivateNats rather
than the shared server of deploy/dev (TEST_NATS_URL).
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time

import adtest
import natsclient

PG_BIN = "/usr/lib/postgresql/15/bin"


def _as_postgres(args, **kw):
    return subprocess.run(["runuser", "-u", "postgres", "--"] + args, capture_output=True,
                          text=True, **kw)


class PrivatePostgres:
    """A throw-away PostgreSQL cluster on 127.0.0.1:<free port>."""

    def __init__(self):
        self.port = adtest.free_port()
        self.dir = tempfile.mkdtemp(prefix="privpg-")
        shutil.chown(self.dir, "postgres", "postgres")
        self.data = os.path.join(self.dir, "data")
        r = _as_postgres([PG_BIN + "/initdb", "-D", self.data, "-A", "trust", "-E", "UTF8",
                          "--locale=C.UTF-8", "-U", "postgres"])
        if r.returncode != 0:
            raise AssertionError("initdb failed: %s %s" % (r.stdout, r.stderr))
        self.start()
        self.admin = "host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable" % self.port
        adtest.psql(self.admin, "CREATE ROLE app SUPERUSER LOGIN PASSWORD 'app'")
        self.conninfo_base = ("host=127.0.0.1 port=%d user=app password=app sslmode=disable"
                              % self.port)

    def start(self):
        r = _as_postgres([PG_BIN + "/pg_ctl", "-D", self.data, "-l",
                          os.path.join(self.dir, "log"), "-w", "-t", "30", "-o",
                          "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off" %
                          (self.port, self.dir), "start"])
        if r.returncode != 0:
            raise AssertionError("pg_ctl start failed: %s %s" % (r.stdout, r.stderr))

    def stop(self):
        r = _as_postgres([PG_BIN + "/pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop"])
        if r.returncode != 0:
            raise AssertionError("pg_ctl stop failed: %s %s" % (r.stdout, r.stderr))

    def destroy(self):
        _as_postgres([PG_BIN + "/pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop"])
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateDatabase:
    """A migrated and seeded database on a PrivatePostgres (same interface as ScratchDatabase)."""

    def __init__(self, pg, name="reports"):
        adtest.psql(pg.admin, "CREATE DATABASE %s ENCODING 'UTF8' TEMPLATE template0" % name)
        self.conninfo = pg.conninfo_base + " dbname=" + name
        env = dict(os.environ, DATABASE_URL=self.conninfo)
        for cmd in (["migrate"], ["seed"]):
            r = subprocess.run([adtest.BIN] + cmd, env=env, capture_output=True, text=True)
            if r.returncode != 0:
                raise AssertionError("%s failed: %s %s" % (cmd, r.stdout, r.stderr))

    def sql(self, q):
        return adtest.psql(self.conninfo, q)


class PrivateRedis:
    """A redis-server child process on 127.0.0.1:<free port>."""

    def __init__(self):
        self.port = adtest.free_port()
        self.dir = tempfile.mkdtemp(prefix="privredis-")
        self.proc = None
        self.start()

    def url(self, db=0):
        return "redis://127.0.0.1:%d/%d" % (self.port, db)

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
             "--dbfilename", "dump.rdb", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.cli("PING") == "PONG":
                return
            time.sleep(0.05)
        raise AssertionError("private redis did not start")

    def cli(self, *args, db=0):
        return adtest.redis_cli(self.url(db), *args)

    def stop(self):
        """SHUTDOWN SAVE (the data survives a later start), then wait for the process."""
        self.cli("SHUTDOWN", "SAVE")
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def destroy(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateNats:
    """A nats-server child process with JetStream on 127.0.0.1:<free port>; the port and the store
    directory stay the same across stop() and start()."""

    def __init__(self):
        self.port = adtest.free_port()
        self.dir = tempfile.mkdtemp(prefix="privnats-")
        self.store = os.path.join(self.dir, "js")
        self.log = os.path.join(self.dir, "nats.log")
        self.proc = None
        self.start()

    def url(self):
        return "nats://127.0.0.1:%d" % self.port

    def client(self, timeout=5):
        """A new natsclient.Nats connected to this server (close it when done)."""
        return natsclient.Nats(self.url(), timeout=timeout)

    def start(self, timeout=15):
        """Starts the server and waits until a client connects and $JS.API.INFO answers."""
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["nats-server", "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", self.store],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("nats-server exited with %s:\n%s" % (self.proc.returncode,
                                                                          self.logs()[-4000:]))
            if self._jetstream_answers():
                return
            time.sleep(0.05)
        raise AssertionError("private nats did not start:\n%s" % self.logs()[-4000:])

    def _jetstream_answers(self):
        try:
            with natsclient.Nats(self.url(), timeout=1) as nc:
                nc.js_api("INFO")
            return True
        except (OSError, natsclient.NatsError):
            return False

    def logs(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def stop(self, timeout=10):
        """SIGTERM (a clean JetStream shutdown: the data survives a later start), then wait."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("nats-server did not stop within %ss" % timeout)

    def kill(self):
        """SIGKILL, as in a crash; JetStream recovers its store at the next start."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def destroy(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
