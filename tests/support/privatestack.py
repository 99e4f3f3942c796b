"""tests/support/privatestack.py: private PostgreSQL and Redis servers for outage tests.

The shared servers of the test environment must never be stopped, so a test that needs to take
PostgreSQL or Redis down starts its own on a free port with these classes and stops only that one.
PostgreSQL runs as the `postgres` OS user (initdb into a temporary directory, pg_ctl on a free
port, role `app` created as a superuser); Redis runs as a child process with RDB persistence in a
temporary directory, so a stop with SHUTDOWN SAVE and a restart keep the data (what a real Redis
restart looks like to the service).
"""

import os
import shutil
import subprocess
import tempfile
import time

import adtest

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
