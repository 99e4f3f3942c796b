#!/usr/bin/env python3
"""bench/ingest/ingest.py: the Python 3 (stdlib only) side of bench/run's SMS ingestion benchmark
(benchmark 6), one subcommand each. Runs as short-lived children of bench/run.

  gen N SEED DIR NOW_MS        the deterministic event set: DIR/billing.jsonl, DIR/dlr.jsonl (one
                               JSON body a line, in publish order) and DIR/expect.env (counts)
  ping URL                     exit 0 when the server answers $JS.API.INFO (JetStream is up)
  streams URL                  (re)creates the streams BILLING (billing.events) and SMS_DLR
                               (sms.dlr.inbound) empty, configured as the service creates them
  publish URL DIR              publishes both files to JetStream (Nats-Msg-Id = event_id, pipelined)
  drop-consumers URL NAME...   deletes those durable consumers on both streams (absent is fine)
  watch URL LOG OFFSET T S     follows one service run: the "consuming" line of the ingest worker in
                               LOG (from byte OFFSET; it names the worker's pid), then consumer
                               info of both streams every 50 ms until nothing is pending, and the
                               VmRSS of that worker ("analyticsd: ingest worker 1") every 100 ms;
                               prints the figures (see watch())

The NATS client is tests/support/natsclient.py (stdlib, shared with the tests). Every loop is
bounded in time.
"""

import calendar
import os
import random
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "support"))
import natsclient  # noqa: E402

sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from benchlib import proc_ppid, proc_title  # noqa: E402  (one copy of the /proc readers)

STREAMS = (("BILLING", "billing.events", "billing.jsonl"), ("SMS_DLR", "sms.dlr.inbound", "dlr.jsonl"))
CONSUMER = "analytics-service"

N_ACCOUNTS = 2000
N_OPERATORS = 20
SPAN_MS = 48 * 3600 * 1000  # submission times: the 48 hours before generation ...
NEWEST_MS = 60 * 1000  # ... and at least one minute old


def die(msg):
    print("ingest.py: %s" % msg, file=sys.stderr)
    sys.exit(1)


# ---- generator ----------------------------------------------------------------------------------


def uuid4(rng):
    v = rng.getrandbits(128)
    v = (v & ~(0xF << 76)) | (4 << 76)  # version 4
    v = (v & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    h = "%032x" % v
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


def rfc3339(ms):
    t = time.gmtime(ms // 1000)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour,
                                                    t.tm_min, t.tm_sec, ms % 1000)


def gen(n, seed, outdir, now_ms):
    """N events: ceil(N/2) charges (billing.message.charged) and floor(N/2) receipts, one per
    charged message (the first floor(N/2) of a shuffled order): 90 % final (DELIVERED 85 %, FAILED
    10 %, EXPIRED 5 %), 10 % non-final (ACCEPTED, ENROUTE); error codes on every FAILED, half the
    EXPIRED and a tenth of the non-final. 2,000 accounts, 20 operators (skewed), submission times
    uniform over [now - 48 h, now - 1 min], receipts up to a few hours later but never after
    now. Every event_id and message_id is unique, so every event is accepted once. Charges are
    published in submission order, receipts in arrival (occurred_at) order."""
    n, seed, now_ms = int(n), int(seed), int(now_ms)
    rng = random.Random(seed)
    accounts = [uuid4(rng) for _ in range(N_ACCOUNTS)]
    operators = [uuid4(rng) for _ in range(N_OPERATORS)]
    op_weights = [1.0 / (i + 1) for i in range(N_OPERATORS)]  # a few large operators
    price = [rng.randrange(2000, 9000) for _ in range(N_OPERATORS)]  # micro-units per segment
    n_charge, n_receipt = (n + 1) // 2, n // 2
    oldest = now_ms - SPAN_MS
    span = SPAN_MS - NEWEST_MS
    ops = rng.choices(range(N_OPERATORS), weights=op_weights, k=n_charge)
    charges = []  # (at_ms, event_id, message_id, account, operator index, segments, cost_micro)
    for k in range(n_charge):
        seg = 1 if rng.random() < 0.8 else rng.randrange(2, 5)
        charges.append((oldest + rng.randrange(span), uuid4(rng), uuid4(rng),
                        rng.randrange(N_ACCOUNTS), ops[k], seg, seg * price[ops[k]]))
    charges.sort()
    exp = dict(events=n, charges=n_charge, receipts=n_receipt, finals=0, delivered=0, failed=0,
               nonfinal=0, with_error=0, cost_micro=0, segments=0)
    with open(os.path.join(outdir, "billing.jsonl"), "w") as f:
        for at, eid, mid, acct, op, seg, cost in charges:
            exp["cost_micro"] += cost
            exp["segments"] += seg
            f.write('{"event_id":"%s","event_type":"billing.message.charged","occurred_at":"%s",'
                    '"message_id":"%s","account_id":"%s","operator_id":"%s","segments":%d,'
                    '"cost":"%d.%06d"}\n' % (eid, rfc3339(at), mid, accounts[acct], operators[op],
                                             seg, cost // 1000000, cost % 1000000))
    order = list(range(n_charge))
    rng.shuffle(order)
    receipts = []
    for j in range(n_receipt):
        at, _, mid, acct, op, _, _ = charges[order[j]]
        r = rng.random()
        err = None
        if r < 0.9 * 0.85:
            status, delay = "DELIVERED", int(min(rng.lognormvariate(8.0, 1.0), 600000))
            exp["delivered"] += 1
        elif r < 0.9 * 0.95:
            status, delay = "FAILED", rng.randrange(500, 120000)
            err = "E%03d" % rng.randrange(1, 40)
            exp["failed"] += 1
        elif r < 0.9:
            status, delay = "EXPIRED", rng.randrange(600000, 4 * 3600000)
            err = "X%02d" % rng.randrange(1, 10) if rng.random() < 0.5 else None
            exp["failed"] += 1
        else:
            status, delay = rng.choice(("ACCEPTED", "ENROUTE")), rng.randrange(50, 5000)
            err = "W%02d" % rng.randrange(1, 10) if rng.random() < 0.1 else None
            exp["nonfinal"] += 1
        occ = min(at + delay, now_ms - 1000)
        receipts.append((occ, uuid4(rng), at, mid, acct, op, status, err))
    receipts.sort()
    with open(os.path.join(outdir, "dlr.jsonl"), "w") as f:
        for occ, eid, at, mid, acct, op, status, err in receipts:
            if err is not None:
                exp["with_error"] += 1
            f.write('{"event_id":"%s","event_type":"sms.dlr.received","occurred_at":"%s",'
                    '"message_id":"%s","account_id":"%s","operator_id":"%s","status":"%s",'
                    '"submitted_at":"%s"%s}\n'
                    % (eid, rfc3339(occ), mid, accounts[acct], operators[op], status, rfc3339(at),
                       ',"error_code":"%s"' % err if err else ""))
    exp["finals"] = exp["delivered"] + exp["failed"]
    exp["processed"] = n + exp["finals"]  # one dedupe record per event, one more per final receipt
    exp["cost"] = "%d.%06d" % (exp["cost_micro"] // 1000000, exp["cost_micro"] % 1000000)
    with open(os.path.join(outdir, "expect.env"), "w") as f:
        for k in sorted(exp):
            f.write("EXP_%s=%s\n" % (k.upper(), exp[k]))


# ---- NATS ----------------------------------------------------------------------------------------


def ping(url):
    try:
        with natsclient.Nats(url, timeout=1) as nc:
            nc.js_api("INFO")
    except (OSError, natsclient.NatsError):
        sys.exit(1)


def streams(url):
    """Both streams, empty, as the service would create them (file storage, duplicate window
    2 min, maximum age 24 h), so that its consumer binds to them as they are."""
    with natsclient.Nats(url, timeout=30) as nc:
        for name, subject, _ in STREAMS:
            if nc.stream_info(name) is not None:
                nc.js_api("STREAM.DELETE." + name)
            nc.js_api("STREAM.CREATE." + name, {
                "name": name, "subjects": [subject], "storage": "file", "retention": "limits",
                "discard": "old", "num_replicas": 1, "max_age": 24 * 3600 * 10**9,
                "duplicate_window": 120 * 10**9})


def lines(path):
    with open(path, "rb") as f:
        for line in f:
            yield line.rstrip(b"\n")


def event_ids(path):
    with open(path, "rb") as f:
        for line in f:
            yield line[13:49].decode()  # {"event_id":"<36-character uuid>"


def publish(url, outdir):
    total = 0
    t0 = time.monotonic()
    with natsclient.Nats(url, timeout=60) as nc:
        for name, subject, fname in STREAMS:
            path = os.path.join(outdir, fname)
            total += nc.js_publish_many(subject, lines(path), msg_ids=event_ids(path),
                                        window=1024)
        for name, _, fname in STREAMS:
            want = sum(1 for _ in open(os.path.join(outdir, fname), "rb"))
            got = nc.stream_info(name)["state"]["messages"]
            if got != want:
                die("stream %s holds %d messages, %d published" % (name, got, want))
    dt = time.monotonic() - t0
    print("%d %.1f" % (total, dt))


def drop_consumers(url, *names):
    with natsclient.Nats(url, timeout=30) as nc:
        for stream, _, _ in STREAMS:
            for name in names:
                try:
                    nc.js_api("CONSUMER.DELETE.%s.%s" % (stream, name))
                except natsclient.JetStreamError as e:
                    if not e.not_found():
                        raise


# ---- one service run -----------------------------------------------------------------------------

CONSUMING = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z info ingest\[(\d+)\]: consuming ")
WORKER_TITLE = "analyticsd: ingest worker 1"


def log_epoch(stamp):
    base, frac = stamp.split(".")
    t = time.strptime(base, "%Y-%m-%dT%H:%M:%S")
    return calendar.timegm(t) + float("0." + frac)


def find_worker(master):
    """The pid of the child of master titled WORKER_TITLE, or None."""
    for name in os.listdir("/proc"):
        if name.isdigit() and proc_ppid(int(name)) == master and proc_title(int(name)) == WORKER_TITLE:
            return int(name)
    return None


def status_kib(pid, field):
    try:
        for line in open("/proc/%d/status" % pid):
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def pending(nc):
    total = 0
    for stream, _, _ in STREAMS:
        p = nc.consumer_pending(stream, CONSUMER)
        if p is None:
            return None
        total += p
    return total


def watch(url, logpath, offset, t_start, timeout_s):
    """Prints "elapsed_ms rss_peak_kib rss_idle_kib hwm_kib start_to_consuming_ms samples restarts
    worker_pid":
    elapsed = from the timestamp of the ingest worker's "consuming" log line to the first consumer
    info poll (every 50 ms) at which both consumers have nothing pending (undelivered or unacked);
    rss_peak = the largest VmRSS of the ingest worker sampled every 100 ms in between; rss_idle =
    its VmRSS 1 s after the drain; hwm = its VmHWM then (the kernel's peak); start_to_consuming =
from T (epoch seconds: when bench/run started the service) to the "consuming" line."""
    offset, t_start, timeout_s = int(offset), float(t_start), float(timeout_s)
    deadline = time.monotonic() + timeout_s
    t0 = None
    with open(logpath, "rb") as log:
        log.seek(offset)
        buf = b""
        while t0 is None:
            if time.monotonic() > deadline:
                die("no 'consuming' line from the ingest worker within %.0f s; see %s" % (timeout_s, logpath))
            chunk = log.read()
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                m = CONSUMING.match(line.decode("utf-8", "replace"))
                if m:
                    t0, wpid = log_epoch(m.group(1)), int(m.group(2))
                    break
            if t0 is None:
                time.sleep(0.01)
    if proc_title(wpid) != WORKER_TITLE:
        die("pid %d (of the 'consuming' line) is %r, not %r" % (wpid, proc_title(wpid), WORKER_TITLE))
    master = proc_ppid(wpid)
    peak, samples, restarts = 0, 0, 0
    next_rss = 0.0
    t1 = None
    with natsclient.Nats(url, timeout=10) as nc:
        while True:
            now = time.monotonic()
            if now > deadline:
                die("consumers still have %s message(s) pending after %.0f s" % (pending(nc), timeout_s))
            if now >= next_rss:
                kib = status_kib(wpid, "VmRSS")
                if kib is None:  # the worker died: the master restarts it (counted, reported)
                    if status_kib(master, "VmRSS") is None:
                        die("the service (master pid %d) is gone; see %s" % (master, logpath))
                    new = find_worker(master)
                    if new is not None and new != wpid:
                        print("ingest.py: the ingest worker (pid %d) is gone; now pid %d" % (wpid, new),
                              file=sys.stderr)
                        wpid, restarts = new, restarts + 1
                else:
                    peak = max(peak, kib)
                    samples += 1
                next_rss = now + 0.1
            p = pending(nc)
            if p == 0:
                t1 = time.time()
                break
            time.sleep(max(0.0, 0.05 - (time.monotonic() - now)))
    time.sleep(1.0)
    idle = status_kib(wpid, "VmRSS") or 0
    hwm = status_kib(wpid, "VmHWM") or 0
    print("%.1f %d %d %d %.1f %d %d %d" % ((t1 - t0) * 1000.0, peak, idle, hwm, (t0 - t_start) * 1000.0,
                                           samples, restarts, wpid))


COMMANDS = {"ping": ping, "gen": gen, "streams": streams, "publish": publish, "drop-consumers": drop_consumers,
            "watch": watch}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        die("usage: ingest.py {%s} ..." % "|".join(COMMANDS))
    COMMANDS[sys.argv[1]](*sys.argv[2:])
