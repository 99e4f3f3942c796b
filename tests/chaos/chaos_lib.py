"""tests/chaos/chaos_lib.py: load generator and process tools for the chaos scenarios (issue 6).

Used by tests/chaos/scenarios.py (and through it by tests/integration/test_chaos.py, the short
form under ctest, and tests/chaos/run, the long form behind `deploy/dev chaos`). Python 3 stdlib
only; traffic goes to 127.0.0.1 only and every loop is bounded in time.

- Load: N keep-alive HTTP/1.1 connections driven by one selectors loop in a forked child process
  (so the GIL of the measuring process never slows the load, nor the load the measurements). Each
  finished request is recorded as (t_end, code, latency_s, kind, cache_hit), where code is the HTTP
  status or a negative connection error (see ERR_NAMES); times are time.monotonic(), which is
  CLOCK_MONOTONIC and so comparable across processes.
- Processes: children of the master from /proc/<pid>/task/<pid>/children (cheap enough to poll
  every millisecond), titles from /proc/<pid>/cmdline, and whether a process sits in epoll_wait
  (its event loop is up) from /proc/<pid>/syscall.
"""

import errno
import multiprocessing
import os
import random
import selectors
import signal
import socket
import threading
import time

ERR_REFUSED = -1  # connect failed (refused or reset during connect)
ERR_RESET = -2  # connection reset or closed before the whole response arrived
ERR_TIMEOUT = -3  # no complete response within the request timeout
ERR_BADRESP = -4  # unparseable response
ERR_NAMES = {ERR_REFUSED: "refused", ERR_RESET: "reset", ERR_TIMEOUT: "timeout",
             ERR_BADRESP: "bad response"}

EPOLL_SYSCALLS = ("232", "281", "441")  # epoll_wait, epoll_pwait, epoll_pwait2 (x86_64)


# ---- processes -------------------------------------------------------------------------------

def children(master_pid):
    """{pid: title} of the master's live children (zombies excluded)."""
    out = {}
    try:
        with open("/proc/%d/task/%d/children" % (master_pid, master_pid)) as f:
            pids = [int(p) for p in f.read().split()]
    except OSError:
        return out
    for pid in pids:
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                title = f.read().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        if title:
            out[pid] = title
    return out


def pids_of(master_pid, role):
    return sorted(p for p, t in children(master_pid).items()
                  if t.startswith("analyticsd: " + role))


def in_event_loop(pid):
    """True when the process is blocked in epoll_wait (its event loop runs)."""
    try:
        with open("/proc/%d/syscall" % pid) as f:
            return f.read().split(" ", 1)[0] in EPOLL_SYSCALLS
    except OSError:
        return False


def start_time_ticks(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


# ---- load generator --------------------------------------------------------------------------

class _Conn:
    __slots__ = ("sock", "buf", "out", "sent_at", "kind", "reused", "retry_at", "deadline")

    def __init__(self):
        self.sock = None
        self.buf = b""
        self.out = b""
        self.sent_at = 0.0
        self.kind = ""
        self.reused = False
        self.retry_at = 0.0
        self.deadline = 0.0


def _parse_response(buf):
    """(status, total_length, close, body_start) once the head is complete, else None; raises
    ValueError on a malformed head. Bodies must carry Content-Length (the service always does)."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if len(buf) > 65536:
            raise ValueError("head too long")
        return None
    head = buf[:end].split(b"\r\n")
    parts = head[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ValueError("bad status line")
    status = int(parts[1])
    length = None
    close = False
    for line in head[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"connection" and value.strip().lower() == b"close":
            close = True
        elif name == b"transfer-encoding":
            raise ValueError("chunked responses are not expected")
    if length is None:
        length = 0
    return status, end + 4 + length, close, end + 4


def _load_loop(port, nconn, duration, pathgen_name, seed, timeout, out, start_at, halt):
    rng = random.Random(seed)
    pathgen = PATHGENS[pathgen_name]
    sel = selectors.DefaultSelector()
    conns = [_Conn() for _ in range(nconn)]
    records = []
    while time.monotonic() < start_at:
        time.sleep(0.001)
    end = time.monotonic() + duration

    def record(c, code, now, hit=False):
        records.append((now, code, now - c.sent_at if c.sent_at else 0.0, c.kind, hit))

    def close(c):
        if c.sock is not None:
            try:
                sel.unregister(c.sock)
            except (KeyError, ValueError):
                pass
            c.sock.close()
            c.sock = None
        c.buf = b""
        c.reused = False

    def send_next(c, now):
        c.kind, path = pathgen(rng)
        c.out = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path).encode()
        c.buf = b""
        c.sent_at = now
        c.deadline = now + timeout
        if c.sock is None:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            rc = s.connect_ex(("127.0.0.1", port))
            if rc not in (0, errno.EINPROGRESS):
                s.close()
                record(c, ERR_REFUSED, now)
                c.retry_at = now + 0.01
                return
            c.sock = s
            sel.register(s, selectors.EVENT_WRITE, c)
        else:
            c.reused = True
            sel.modify(c.sock, selectors.EVENT_WRITE, c)

    def fail(c, code, now):
        if code == ERR_RESET and not c.reused and c.out:
            code = ERR_REFUSED  # never got the request out on a fresh connection
        record(c, code, now)
        close(c)
        c.retry_at = now + (0.01 if code == ERR_REFUSED else 0.0)

    now = time.monotonic()
    for c in conns:
        send_next(c, now)
    while True:
        now = time.monotonic()
        if now >= end or halt.is_set():
            break
        for c in conns:
            if c.sock is None and c.retry_at <= now:
                send_next(c, now)
            elif c.sock is not None and now > c.deadline:
                fail(c, ERR_TIMEOUT, now)
        for key, ev in sel.select(0.005):
            c = key.data
            now = time.monotonic()
            if ev & selectors.EVENT_WRITE:
                try:
                    n = c.sock.send(c.out)
                except BlockingIOError:
                    continue
                except OSError as e:
                    fail(c, ERR_REFUSED if e.errno == errno.ECONNREFUSED else ERR_RESET, now)
                    continue
                c.out = c.out[n:]
                if not c.out:
                    sel.modify(c.sock, selectors.EVENT_READ, c)
                continue
            try:
                data = c.sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                fail(c, ERR_RESET, now)
                continue
            if not data:
                fail(c, ERR_RESET, now)
                continue
            c.buf += data
            try:
                parsed = _parse_response(c.buf)
            except ValueError:
                fail(c, ERR_BADRESP, now)
                continue
            if parsed is None or len(c.buf) < parsed[1]:
                continue
            status, total, must_close, body_at = parsed
            hit = b'"cache_hit":true' in c.buf[body_at:total]
            record(c, status, now, hit)
            c.sent_at = 0.0
            if must_close or len(c.buf) > total:
                close(c)
            send_next(c, now)
    for c in conns:
        close(c)
    out.send(records)
    out.close()


class Load:
    """Runs the load in a forked child process; results() returns the request records."""

    def __init__(self, port, nconn, duration, pathgen="reports", seed=1, timeout=5.0):
        ctx = multiprocessing.get_context("fork")
        self.recv, send = ctx.Pipe(duplex=False)
        self.t0 = time.monotonic() + 0.05
        self.duration = duration
        self.halt = ctx.Event()
        self.proc = ctx.Process(
            target=_load_loop,
            args=(port, nconn, duration, pathgen, seed, timeout, send, self.t0, self.halt),
            daemon=True)
        self.proc.start()
        send.close()
        self.records = None

    def stop(self):
        """Ends the load early (the records so far are kept)."""
        self.halt.set()

    def results(self):
        if self.records is None:
            if not self.recv.poll(self.duration + 60):
                self.proc.kill()
                raise AssertionError("load generator did not report")
            self.records = self.recv.recv()
            self.proc.join(10)
        return self.records


def summarize(records, t_from=None, t_to=None):
    rs = [r for r in records if (t_from is None or r[0] >= t_from) and (t_to is None or r[0] < t_to)]
    ok = sum(1 for r in rs if 200 <= r[1] < 300)
    non2xx = sum(1 for r in rs if r[1] >= 300)
    errs = {name: sum(1 for r in rs if r[1] == code) for code, name in ERR_NAMES.items()}
    lat = sorted(r[2] for r in rs if r[1] > 0)

    def pct(p):
        return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else 0.0

    return {"requests": len(rs), "ok": ok, "non2xx": non2xx, "conn_errors": sum(errs.values()),
            "errors": errs, "success": ok / len(rs) if rs else 0.0,
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": lat[-1] * 1000 if lat else 0.0,
            "hits": sum(1 for r in rs if r[4]),
            "statuses": sorted({r[1] for r in rs if r[1] > 0 and not 200 <= r[1] < 300})}


# ---- request mixes ---------------------------------------------------------------------------

def _today():
    return time.gmtime(time.time())


def _date(offset_days):
    return time.strftime("%Y-%m-%d", time.gmtime(time.time() + offset_days * 86400))


CACHED_PATHS = [
    "/api/v1/reports/status-counts/run?date_from=%s&date_to=%s" % (_date(-95), _date(0)),
    "/api/v1/reports/status-counts/run?window=week&breakdown=period&date_from=%s&date_to=%s"
    % (_date(-95), _date(0)),
    "/api/v1/reports/volume-by-period/run?breakdown=source&limit=100&date_from=%s&date_to=%s"
    % (_date(-60), _date(0)),
    "/api/v1/reports/volume-by-period/run?window=week&date_from=%s&date_to=%s" % (_date(-95), _date(0)),
    "/api/v1/reports/top-entities/run?limit=10&date_from=%s&date_to=%s" % (_date(-95), _date(0)),
    "/api/v1/reports/top-entities/run?limit=5",
]
SLUGS = ("status-counts", "volume-by-period", "top-entities")


def _uncached(rng):
    """A run whose normalised parameters are almost never repeated: a miss and a snapshot query."""
    start = rng.randint(-100, 0)
    span = rng.randint(0, 60)
    return ("/api/v1/reports/%s/run?window=%s&date_from=%s&date_to=%s&limit=%d&offset=%d"
            % (rng.choice(SLUGS), rng.choice(("day", "week")), _date(start), _date(start + span),
               rng.randint(1, 100), rng.randint(0, 30)))


def _reports(rng):
    if rng.random() < 0.5:
        return "cached", rng.choice(CACHED_PATHS)
    return "uncached", _uncached(rng)


PATHGENS = {"reports": _reports}


# ---- periodic work in threads ----------------------------------------------------------------

class Poller(threading.Thread):
    """Calls fn() every `every` seconds until stopped; keeps (t, value) samples."""

    def __init__(self, fn, every):
        super().__init__(daemon=True)
        self.fn = fn
        self.every = every
        self.samples = []
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            t = time.monotonic()
            try:
                v = self.fn()
            except Exception as e:  # a failed probe is a sample too
                v = repr(e)
            self.samples.append((t, v))
            self.halt.wait(max(0.0, self.every - (time.monotonic() - t)))

    def stop(self):
        self.halt.set()
        self.join(30)


def kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
        return True
    except ProcessLookupError:
        return False
