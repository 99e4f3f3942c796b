"""tests/support/natsclient.py: a small synchronous NATS and JetStream client, Python stdlib only.

Used by the tests and benchmarks that publish to NATS (billing.events, sms.dlr.inbound) and check
what the service consumed, against the server of `deploy/dev` (NATS_URL, TEST_NATS_URL) or a
PrivateNats of privatestack.py. It speaks the NATS client protocol over one TCP connection: core
publish, request/reply through one wildcard inbox subscription, JetStream publish with acks
(one at a time or pipelined), and the JetStream JSON API ($JS.API.*). No TLS, no reconnects, not
thread-safe: one Nats object per thread.

    nc = Nats("nats://127.0.0.1:4226")
    nc.add_stream("BILLING", ["billing.events"])
    nc.js_publish("billing.events", b'{"id":1}', msg_id="evt-1")
    nc.js_publish_many("billing.events", (b"x%d" % i for i in range(100000)))
    nc.consumer_pending("BILLING", "analytics-service")
"""

import collections
import json
import secrets
import socket
import time
import urllib.parse

CRLF = b"\r\n"
HEADER_LINE = b"NATS/1.0"
NOT_FOUND_ERR_CODES = (10059, 10014)  # stream not found, consumer not found

# One message delivered to this client. status is the code of a status-only reply ("503", "404",
# "408", ...) or None; headers holds the header block without its first line.
Msg = collections.namedtuple("Msg", "subject reply headers data status")


class NatsError(Exception):
    """A protocol error: -ERR from the server, a malformed frame, a closed connection."""


class NoResponders(NatsError):
    """A request found no subscriber (status 503); for JetStream: no stream captures the subject."""


class JetStreamError(NatsError):
    """A JetStream API or publish answered {"error": {...}}."""

    def __init__(self, error, subject=""):
        self.error = error
        self.code = error.get("code")
        self.err_code = error.get("err_code")
        self.description = error.get("description", "")
        super().__init__("%s: %s (code %s, err_code %s)" % (subject, self.description, self.code,
                                                            self.err_code))

    def not_found(self):
        return self.code == 404 or self.err_code in NOT_FOUND_ERR_CODES


# ---- frames ------------------------------------------------------------------------------------


def encode_headers(headers):
    """The NATS/1.0 header block of a dict (ends with the blank line)."""
    lines = [HEADER_LINE]
    for k, v in headers.items():
        lines.append(("%s: %s" % (k, v)).encode())
    return CRLF.join(lines) + CRLF + CRLF


def decode_headers(block):
    """(status or None, {name: value}) of a header block; a repeated name keeps its last value."""
    lines = bytes(block).decode("utf-8", "replace").split("\r\n")
    first = lines[0].split(None, 2)
    if not first or first[0] != "NATS/1.0":
        raise NatsError("bad header block: %r" % lines[0])
    status = first[1] if len(first) > 1 else None
    headers = {}
    if status is not None and len(first) > 2:
        headers["Description"] = first[2]
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip()] = value.strip()
    return status, headers


def pub_frame(subject, reply, payload, headers=None):
    """PUB (or HPUB when headers is a non-empty dict) of payload, with an optional reply subject."""
    subject = subject.encode() if isinstance(subject, str) else subject
    reply = reply.encode() if isinstance(reply, str) else (reply or b"")
    sp_reply = b" " + reply if reply else b""
    if not headers:
        return b"PUB %b%b %d\r\n%b\r\n" % (subject, sp_reply, len(payload), payload)
    block = encode_headers(headers)
    return b"HPUB %b%b %d %d\r\n%b%b\r\n" % (subject, sp_reply, len(block),
                                             len(block) + len(payload), block, payload)


def parse_url(url):
    """(host, port, user, password) of nats://[user[:password]@]host[:port]."""
    u = urllib.parse.urlsplit(url if "://" in url else "nats://" + url)
    if u.scheme != "nats":
        raise ValueError("not a nats:// URL: %r" % url)
    return u.hostname or "127.0.0.1", u.port or 4222, u.username, u.password


# ---- client ------------------------------------------------------------------------------------


class Nats:
    """One connection to a NATS server. timeout is the default of every wait, in seconds."""

    def __init__(self, url, timeout=5):
        self.url = url
        self.timeout = timeout
        self.info = {}
        self._buf = b""  # received bytes; _pos is where the next unparsed frame starts
        self._pos = 0
        self._pongs = 0
        self._inbox = "_INBOX.%s." % secrets.token_hex(11)
        self._inbox_b = self._inbox.encode()
        self._next_reply = 0
        self._waiting = set()  # reply numbers of the requests in progress (inbox, sid 1)
        self._replies = {}  # reply number -> Msg
        self._next_sid = 1  # sid 1 is the inbox; one-shot subscriptions take 2, 3, ...
        self._sub_waiting = set()  # sids of the one-shot subscriptions in progress
        self._sub_replies = {}  # sid -> Msg
        self._on_batch_ack = None  # set by js_publish_many while it runs, for replies from
        self._batch_first = 0  # this reply number on
        host, port, user, password = parse_url(url)
        self._sock = socket.create_connection((host, port), timeout)
        try:
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._handshake(user, password)
        except BaseException:
            self._sock.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    # -- connection ------------------------------------------------------------------------------

    def _handshake(self, user, password):
        deadline = time.monotonic() + self.timeout
        while not self.info:
            self._read_frame(deadline)
        if self.info.get("tls_required"):
            raise NatsError("the server requires TLS, which this client does not speak")
        opts = {"verbose": False, "pedantic": False, "headers": True, "no_responders": True,
                "protocol": 1, "lang": "python-tests", "version": "1"}
        if user and password is not None:
            opts.update(user=urllib.parse.unquote(user), **{"pass": urllib.parse.unquote(password)})
        elif user:
            opts["auth_token"] = urllib.parse.unquote(user)
        self._send(b"CONNECT " + json.dumps(opts).encode() + CRLF)
        self.flush()  # a PONG proves the CONNECT was accepted (a refusal is a -ERR)
        self._send(b"SUB %b* 1\r\n" % self._inbox_b)

    def flush(self, timeout=None):
        """PING and wait for the PONG: everything sent before has been processed by the server."""
        want = self._pongs + 1
        self._send(b"PING\r\n")
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while self._pongs < want:
            self._read_frame(deadline)

    def _send(self, data):
        if self._sock is None:
            raise NatsError("connection closed")
        self._sock.settimeout(self.timeout)  # _fill leaves the remainder of its own deadline
        self._sock.sendall(data)

    def _fill(self, deadline):
        """Reads more bytes into the buffer; TimeoutError at the deadline."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no answer from %s in time" % self.url)
        if self._sock is None:
            raise NatsError("connection closed")
        self._sock.settimeout(remaining)
        try:
            chunk = self._sock.recv(1 << 20)
        except socket.timeout:
            raise TimeoutError("no answer from %s in time" % self.url) from None
        if not chunk:
            raise NatsError("connection closed by the server")
        self._buf = self._buf[self._pos:] + chunk if self._pos < len(self._buf) else chunk
        self._pos = 0

    # -- parsing ---------------------------------------------------------------------------------

    def _read_frame(self, deadline):
        """Handles the next complete frame, reading from the socket as needed."""
        while not self._parse_one():
            self._fill(deadline)

    def _read_buffered(self):
        """Handles every complete frame already received, without blocking."""
        while self._parse_one():
            pass

    def _parse_one(self):
        """Handles one complete frame of the buffer; False when the buffer holds none."""
        buf, pos = self._buf, self._pos
        end = buf.find(CRLF, pos)
        if end < 0:
            return False
        op = buf[pos:pos + 4]
        if op == b"MSG " or op == b"HMSG":
            return self._parse_msg(buf, pos, end)
        line = buf[pos:end]
        self._pos = end + 2
        if line == b"PING":
            self._send(b"PONG\r\n")
        elif line == b"PONG":
            self._pongs += 1
        elif line.startswith(b"INFO "):
            self.info = json.loads(line[5:])
        elif line.startswith(b"-ERR"):
            raise NatsError("server error: %s" % line[4:].strip().decode("utf-8", "replace"))
        elif line != b"+OK":
            raise NatsError("unexpected frame: %r" % line[:200])
        return True

    def _parse_msg(self, buf, pos, end):
        """MSG subject sid [reply] size / HMSG subject sid [reply] hdr_size total_size."""
        args = buf[pos:end].split()
        with_headers = args[0] == b"HMSG"
        nsizes = 2 if with_headers else 1
        if len(args) not in (3 + nsizes, 4 + nsizes):
            raise NatsError("malformed frame: %r" % buf[pos:end][:200])
        total = int(args[-1])
        start = end + 2
        stop = start + total
        if len(buf) < stop + 2:
            return False  # the payload has not arrived yet
        if buf[stop:stop + 2] != CRLF:
            raise NatsError("payload of %r not followed by CRLF" % buf[pos:end][:200])
        self._pos = stop + 2
        reply = args[3] if len(args) == 4 + nsizes else None
        hdr_len = int(args[-2]) if with_headers else 0
        header_block = buf[start:start + hdr_len] if hdr_len else None
        if args[2] == b"1":
            self._deliver_inbox(args[1], reply, header_block, buf[start + hdr_len:stop])
        else:
            self._deliver_sub(int(args[2]), args[1], reply, header_block, buf[start + hdr_len:stop])
        return True

    def _deliver_inbox(self, subject, reply, header_block, data):
        """A reply on the inbox: its number (the last token of the subject) finds the request."""
        try:
            n = int(subject[len(self._inbox_b):])
        except ValueError:
            return
        if self._on_batch_ack is not None and n >= self._batch_first:
            self._on_batch_ack(n, header_block, data)
        elif n in self._waiting:  # otherwise a reply that came after its request timed out
            self._replies[n] = _msg(subject, reply, header_block, data)

    def _deliver_sub(self, sid, subject, reply, header_block, data):
        if sid in self._sub_waiting and sid not in self._sub_replies:
            self._sub_replies[sid] = _msg(subject, reply, header_block, data)

    # -- core NATS -------------------------------------------------------------------------------

    def publish(self, subject, payload=b"", headers=None):
        """Core publish (PUB, or HPUB with headers); no acknowledgement."""
        self._send(pub_frame(subject, None, payload, headers))

    def request(self, subject, payload=b"", headers=None, timeout=None):
        """Sends a request and returns (headers dict, data bytes) of the reply. A status reply
        other than 503 has "Status" (and "Description") in its headers."""
        msg = self.request_msg(subject, payload, headers, timeout)
        headers = dict(msg.headers)
        if msg.status is not None:
            headers["Status"] = msg.status
        return headers, msg.data

    def request_msg(self, subject, payload=b"", headers=None, timeout=None, own_sub=None):
        """Sends a request and returns the reply Msg (with its own reply subject, e.g. a
        JetStream ack subject). NoResponders on a 503 status, TimeoutError after timeout.

        Replies are matched by the subject they arrive on, a token of the shared inbox, except
        with own_sub: then the reply subject gets a one-shot subscription of its own and the first
        message on it is the answer, whatever its subject. JetStream pull requests
        ($JS.API.CONSUMER.MSG.NEXT.*, batch 1) need that, as the message comes under its stream
        subject; own_sub=None turns it on for them."""
        if own_sub is None:
            own_sub = subject.startswith("$JS.API.CONSUMER.MSG.NEXT.")
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        if own_sub:
            msg = self._request_own_sub(subject, payload, headers, deadline)
        else:
            msg = self._request_inbox(subject, payload, headers, deadline)
        if msg is None:
            raise TimeoutError("no reply to %s within %ss" % (subject, timeout))
        if msg.status == "503":
            raise NoResponders("no responders for %s" % subject)
        return msg

    def _request_inbox(self, subject, payload, headers, deadline):
        self._next_reply += 1
        n, reply = self._next_reply, self._inbox + str(self._next_reply)
        self._waiting.add(n)
        try:
            self._send(pub_frame(subject, reply, payload, headers))
            return self._wait_for(self._replies, n, deadline)
        finally:
            self._waiting.discard(n)

    def _request_own_sub(self, subject, payload, headers, deadline):
        self._next_sid += 1
        sid = self._next_sid
        reply = "%ss%d" % (self._inbox, sid)  # not a number: the inbox (sid 1) ignores it
        self._sub_waiting.add(sid)
        try:
            self._send(b"SUB %b %d\r\nUNSUB %d 1\r\n" % (reply.encode(), sid, sid) +
                       pub_frame(subject, reply, payload, headers))
            msg = self._wait_for(self._sub_replies, sid, deadline)
            if msg is None:
                self._send(b"UNSUB %d\r\n" % sid)
            return msg
        finally:
            self._sub_waiting.discard(sid)

    def _wait_for(self, replies, key, deadline):
        """Reads until replies has key; pops and returns it, or None at the deadline."""
        while key not in replies:
            try:
                self._read_frame(deadline)
            except TimeoutError:
                return None
        return replies.pop(key)

    # -- JetStream -------------------------------------------------------------------------------

    def js_publish(self, subject, payload, msg_id=None, headers=None, timeout=None):
        """JetStream publish; returns the ack {"stream", "seq"[, "duplicate": true]}. msg_id sets
        Nats-Msg-Id (deduplication). JetStreamError on an error ack, NoResponders when no stream
        captures the subject."""
        headers = dict(headers or {})
        if msg_id is not None:
            headers["Nats-Msg-Id"] = str(msg_id)
        _, data = self.request(subject, payload, headers or None, timeout)
        ack = json.loads(data)
        if "error" in ack:
            raise JetStreamError(ack["error"], subject)
        return ack

    def js_publish_many(self, subject, payloads, msg_ids=None, window=256, timeout=None):
        """Pipelined JetStream publish of an iterable of payloads (msg_ids: a parallel iterable,
        or None), with at most `window` unacknowledged messages. Returns the number acked
        (duplicates included). After the first error ack nothing more is sent; once the
        outstanding acks are in, JetStreamError (or NoResponders) is raised. TimeoutError when
        no ack arrives for `timeout` seconds."""
        if window < 1:
            raise ValueError("window must be at least 1")
        batch = _AckBatch()
        items = zip(payloads, msg_ids) if msg_ids is not None else ((p, None) for p in payloads)
        timeout = self.timeout if timeout is None else timeout
        subject_b = subject.encode()
        first = self._batch_first = self._next_reply + 1
        self._on_batch_ack = batch.on_ack
        try:
            exhausted = False
            while True:
                if not exhausted and batch.error is None:
                    frames = []
                    while batch.sent - batch.answered < window:
                        item = next(items, None)
                        if item is None:
                            exhausted = True
                            break
                        frames.append(self._batch_frame(subject_b, item[0], item[1]))
                        batch.sent += 1
                    if frames:
                        self._send(b"".join(frames))
                if batch.answered == batch.sent and (exhausted or batch.error is not None):
                    break
                self._await_acks(batch, time.monotonic() + timeout, subject)
        finally:
            self._on_batch_ack = None
        if batch.error is not None:
            raise batch.error_exception(subject, first)
        return batch.answered  # no error: every answer is a (possibly duplicate) ack

    def _batch_frame(self, subject_b, payload, msg_id):
        self._next_reply += 1
        reply = b"%b%d" % (self._inbox_b, self._next_reply)
        if msg_id is None:
            return b"PUB %b %b %d\r\n%b\r\n" % (subject_b, reply, len(payload), payload)
        return pub_frame(subject_b, reply, payload, {"Nats-Msg-Id": msg_id})

    def _await_acks(self, batch, deadline, subject):
        """Blocks until at least one more ack arrived, then takes every ack already received."""
        before = batch.answered
        while batch.answered == before:
            try:
                self._read_frame(deadline)
            except TimeoutError:
                raise TimeoutError("%d of %d publishes to %s not acknowledged in time" %
                                   (batch.sent - batch.answered, batch.sent, subject)) from None
        self._read_buffered()

    def js_api(self, api, body=None, timeout=None, check=True):
        """Request to $JS.API.<api> (e.g. "STREAM.INFO.BILLING") with a JSON body; returns the
        JSON answer. With check, an {"error": ...} answer raises JetStreamError."""
        payload = json.dumps(body).encode() if body is not None else b""
        subject = "$JS.API." + api
        _, data = self.request(subject, payload, timeout=timeout)
        answer = json.loads(data) if data else {}
        if check and "error" in answer:
            raise JetStreamError(answer["error"], subject)
        return answer

    def _info_or_none(self, api):
        try:
            return self.js_api(api)
        except JetStreamError as e:
            if e.not_found():
                return None
            raise

    def stream_info(self, name):
        """STREAM.INFO of a stream; None when it does not exist."""
        return self._info_or_none("STREAM.INFO." + name)

    def consumer_info(self, stream, durable):
        """CONSUMER.INFO of a consumer; None when it (or its stream) does not exist."""
        return self._info_or_none("CONSUMER.INFO.%s.%s" % (stream, durable))

    def consumer_pending(self, stream, durable):
        """Messages not yet delivered plus delivered but unacknowledged; None without consumer."""
        info = self.consumer_info(stream, durable)
        if info is None:
            return None
        return info.get("num_pending", 0) + info.get("num_ack_pending", 0)

    def add_stream(self, name, subjects, max_age_s=None):
        """Creates a file-backed limits stream (no-op when it exists with the same config);
        returns its info. JetStreamError when it exists with another config."""
        config = {"name": name, "subjects": list(subjects), "storage": "file",
                  "retention": "limits", "discard": "old", "num_replicas": 1}
        if max_age_s is not None:
            config["max_age"] = int(max_age_s * 1e9)
        return self.js_api("STREAM.CREATE." + name, config)

    def next_msg(self, stream, durable, timeout=1):
        """Fetches one message of a durable pull consumer; None when none arrives within timeout,
        NoResponders when the consumer does not exist. Acknowledge it with ack(msg)."""
        body = {"batch": 1, "expires": int(timeout * 1e9)}
        msg = self.request_msg("$JS.API.CONSUMER.MSG.NEXT.%s.%s" % (stream, durable),
                               json.dumps(body).encode(), timeout=timeout + self.timeout,
                               own_sub=True)
        if msg.status in ("404", "408"):
            return None  # no messages / request expired
        if msg.status is not None:
            raise NatsError("pull from %s.%s: status %s %s" % (stream, durable, msg.status,
                                                               msg.headers.get("Description", "")))
        return msg

    def ack(self, msg):
        """Acknowledges a JetStream message (empty publish to its reply subject)."""
        self.publish(msg.reply, b"")


def _msg(subject, reply, header_block, data):
    status, headers = decode_headers(header_block) if header_block else (None, {})
    return Msg(subject.decode(), reply.decode() if reply else None, headers, data, status)


class _AckBatch:
    """Counts of one js_publish_many call and its first error."""

    def __init__(self):
        self.sent = 0
        self.answered = 0  # acks received, error acks included
        self.failed = 0
        self.error = None  # (reply number, status or None, data) of the first error

    def on_ack(self, n, header_block, data):
        self.answered += 1
        if header_block is None and data.startswith(b'{"stream"') and b'"error"' not in data:
            return  # the common case, without a JSON parse
        status = decode_headers(header_block)[0] if header_block else None
        if status is None and "error" not in json.loads(data):
            return
        self.failed += 1
        if self.error is None:
            self.error = (n, status, bytes(data))

    def error_exception(self, subject, first):
        n, status, data = self.error
        where = "message %d of %d to %s" % (n - first + 1, self.sent, subject)
        if status == "503":
            return NoResponders("no stream captures %s (%s)" % (subject, where))
        if status is not None:
            return NatsError("status %s for %s" % (status, where))
        e = JetStreamError(json.loads(data)["error"], where)
        e.args = ("%s (%d of %d failed)" % (e.args[0], self.failed, self.sent),)
        return e
