"""tests/support/hostile.py: raw-socket HTTP/1.x helpers for tests/integration/test_hostile_http.py.

http.client normalises or refuses much of what a hostile client sends (raw bytes, lowercase
methods, pipelining, half-sent bodies), so these helpers write exact bytes and parse responses
by hand. A parsed response is a Response(status, reason, headers{lower-case: first value}, body).
"""

import json
import socket
import time


class Response:
    def __init__(self, status, reason, headers, body, raw_head):
        self.status, self.reason, self.headers, self.body, self.raw_head = (status, reason, headers,
                                                                            body, raw_head)

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "Response(%d %r, %r, %r)" % (self.status, self.reason, self.headers, self.body[:200])


class Closed(Exception):
    """The server closed the connection (or reset it) before a complete response arrived."""


class Conn:
    """One raw TCP connection to the service."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def send(self, data):
        """Sends all of data; returns False if the server already closed or reset."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def _fill(self, deadline):
        self.sock.settimeout(max(0.01, deadline - time.time()))
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise Closed("closed after %d unparsed bytes: %r" % (len(self.buf), self.buf[:200]))
        self.buf += chunk

    def response(self, timeout=5.0, head=False):
        """Reads one complete response (Content-Length, chunked or until close). Raises Closed if
        the connection ends first and socket.timeout if nothing complete arrives in time."""
        deadline = time.time() + timeout
        while b"\r\n\r\n" not in self.buf:
            self._fill(deadline)
        raw_head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = raw_head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        status = int(parts[1])
        reason = parts[2].decode("latin-1") if len(parts) > 2 else ""
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            headers.setdefault(k.strip().lower().decode("latin-1"), v.strip().decode("latin-1"))
        if head or status in (100, 204, 304):
            return Response(status, reason, headers, b"", raw_head)
        if "content-length" in headers:
            n = int(headers["content-length"])
            while len(self.buf) < n:
                self._fill(deadline)
            body, self.buf = self.buf[:n], self.buf[n:]
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                while b"\r\n" not in self.buf:
                    self._fill(deadline)
                size_line, rest = self.buf.split(b"\r\n", 1)
                size = int(size_line.split(b";")[0], 16)
                while len(rest) < size + 2:
                    self._fill(deadline)
                    size_line, rest = self.buf.split(b"\r\n", 1)
                body += rest[:size]
                self.buf = rest[size + 2:]
                if size == 0:
                    break
        else:
            try:
                while True:
                    self._fill(deadline)
            except Closed:
                pass
            body, self.buf = self.buf, b""
        return Response(status, reason, headers, body, raw_head)

    def closed_within(self, seconds):
        """True when the server closes the connection (EOF or reset) within `seconds`, ignoring
        any bytes it sends first; False if it is still open then."""
        deadline = time.time() + seconds
        while time.time() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.time()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except ConnectionResetError:
                return True
            if not chunk:
                return True
            self.buf += chunk
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def exchange(port, data, timeout=5.0, head=False):
    """Sends data on a fresh connection and returns the first Response, or None if the server
    closed the connection without a complete response."""
    c = Conn(port, timeout)
    try:
        c.send(data)
        try:
            return c.response(timeout, head=head)
        except Closed:
            return None
    finally:
        c.close()


def request_bytes(method, target, headers=(), body=b"", version=b"HTTP/1.1", host=True):
    """Builds a request from bytes (method/target may hold anything); adds Host unless told not to."""
    out = method + b" " + target + b" " + version + b"\r\n"
    if host:
        out += b"Host: localhost\r\n"
    for h in headers:
        out += h + b"\r\n"
    return out + b"\r\n" + body


def rss_kib(pid):
    """VmRSS of a process in KiB (from /proc/<pid>/status)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
