#!/usr/bin/env python3
"""bench/sms/sms.py: the Python 3 (stdlib only) side of bench/run's SMS read benchmark (benchmark
7), one subcommand each. Runs as short-lived children of bench/run.

  pgbench-sql NAME SMS_READ_C    the pgbench script of route NAME (summary, operators,
                                 operator_metrics): the statement of common/sms_read.c, taken
                                 from the C source itself, with $1..$n written :p1..:pn (pgbench
                                 -M extended sends them back as $1..$n, text parameters of
                                 unspecified type, like the service's PQsendQueryParams)
  answer NAME FILE               checks a route's 200 answer and prints what it holds
                                 ("total_messages 123 ..."); exit 1 when it is not the expected
                                 shape
  latency URL N WARMUP OUT       WARMUP untimed then N timed sequential GETs over one keep-alive
                                 connection (TCP_NODELAY); each must answer 200; appends the N
                                 latencies (ms, one a line) to OUT
  pgbench-log-latency SKIP OUT LOG...
                                 per-transaction latencies of pgbench -l logs, the first SKIP
                                 transactions of each client left out, appended to OUT (ms)
  pgbench-log-tps WARMUP_S DURATION_S LOG...
                                 steady-state tps of a pgbench -l run of DURATION_S + WARMUP_S
                                 seconds: transactions completed from WARMUP_S after the first
                                 transaction started until DURATION_S later, divided by
                                 DURATION_S; prints "tps transactions"
  percentiles FILE               "p50 p95 max count" of the samples in FILE (ms), the lower
                                 percentile (the smallest sample with at least ceil(q*n) samples
                                 at or below it)

Every loop is bounded (request timeouts, a fixed number of requests).
"""

import http.client
import json
import math
import re
import socket
import sys
import time

ROUTES = {
    "summary": "SMS_READ_SUMMARY_SQL",
    "operators": "SMS_READ_OPERATORS_SQL",
    "operator_metrics": "SMS_READ_OPERATOR_METRICS_SQL",
}


def die(msg):
    print("sms.py: %s" % msg, file=sys.stderr)
    sys.exit(1)


# ---- the statements ---------------------------------------------------------------------------


def c_statement(path, name):
    """The value of `const char NAME[] = "…" "…";` in a C file (adjacent literals joined)."""
    text = open(path, encoding="utf-8").read()
    m = re.search(r"\b%s\s*\[\s*\]\s*=\s*((?:\s*\"(?:[^\"\\]|\\.)*\")+)\s*;" % re.escape(name), text)
    if not m:
        die("%s not found in %s" % (name, path))
    parts = re.findall(r"\"((?:[^\"\\]|\\.)*)\"", m.group(1))
    sql = "".join(parts)
    if "\\" in sql:
        die("%s: escapes in the C literal are not supported" % name)
    return sql


def pgbench_sql(name, path):
    if name not in ROUTES:
        die("route must be one of %s" % ", ".join(ROUTES))
    sql = c_statement(path, ROUTES[name])
    n = len(set(re.findall(r"\$(\d+)", sql)))
    script = re.sub(r"\$(\d+)", r":p\1", sql)
    print("-- Written by bench/sms/sms.py from %s (%s): the statement of the %s route." % (
        path, ROUTES[name], name))
    print("-- bench/run sets p1..p%d with pgbench -D, as the handler binds them." % n)
    print(script + ";")


# ---- answers ------------------------------------------------------------------------------------


def answer(name, path):
    """Prints a one-line description of a route's answer; exits 1 if its shape is wrong."""
    try:
        doc = json.load(open(path, encoding="utf-8"))
        data, meta = doc["data"], doc["meta"]
        if name == "summary":
            print("total_messages %d delivered %d p95_latency_ms %s active_accounts %d "
                  "active_operators %d" % (data["total_messages"], data["delivered_messages"],
                                           data["p95_latency_ms"], data["active_accounts"],
                                           data["active_operators"]))
        elif name == "operators":
            print("items %d total %d first %s with %d messages" % (
                len(data), meta["total"], data[0]["operator_id"], data[0]["total_messages"]))
        elif name == "operator_metrics":
            print("buckets %d total_messages %d p95_latency_ms %s" % (
                len(data["series"]), data["totals"]["total_messages"],
                data["totals"]["p95_latency_ms"]))
        else:
            die("unknown route %s" % name)
    except (ValueError, KeyError, IndexError, TypeError) as e:
        die("%s: unexpected answer in %s (%s)" % (name, path, e))


# ---- latency ------------------------------------------------------------------------------------


def latency(url, n, warmup, out):
    m = re.fullmatch(r"http://([^/:]+):(\d+)(/.*)", url)
    if not m:
        die("bad url %s" % url)
    host, port, path = m.group(1), int(m.group(2)), m.group(3)
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.connect()
    # No Nagle: a request must not wait for a delayed ACK (40 ms on Linux).
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    samples = []
    for i in range(int(warmup) + int(n)):
        t0 = time.perf_counter()
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        t1 = time.perf_counter()
        if resp.status != 200:
            die("%s answered %d" % (path, resp.status))
        if i >= int(warmup):
            samples.append((t1 - t0) * 1000.0)
    conn.close()
    with open(out, "a") as f:
        for s in samples:
            f.write("%.3f\n" % s)


def pgbench_log_rows(logs):
    """(client, transaction_no, latency_us, end_epoch_s) of every line of pgbench -l logs."""
    rows = []
    for path in logs:
        for line in open(path):
            f = line.split()
            if len(f) < 6:
                continue
            if f[2] == "skipped" or f[2] == "failed":
                continue
            rows.append((int(f[0]), int(f[1]), int(f[2]), int(f[4]) + int(f[5]) / 1e6))
    if not rows:
        die("no transactions in %s" % " ".join(logs))
    return rows


def pgbench_log_latency(skip, out, *logs):
    rows = pgbench_log_rows(logs)
    first = {}  # each client's first transaction number (pgbench 15 counts from 1)
    for client, tno, _, _ in rows:
        first[client] = min(tno, first.get(client, tno))
    with open(out, "a") as f:
        for client, tno, lat_us, _ in rows:
            if tno >= first[client] + int(skip):
                f.write("%.3f\n" % (lat_us / 1000.0))


def pgbench_log_tps(warmup_s, duration_s, *logs):
    rows = pgbench_log_rows(logs)
    start = min(end - lat / 1e6 for _, _, lat, end in rows)
    lo, hi = start + float(warmup_s), start + float(warmup_s) + float(duration_s)
    done = sum(1 for _, _, _, end in rows if lo <= end < hi)
    print("%.3f %d" % (done / float(duration_s), done))


def lower_percentile(sorted_vals, q):
    k = max(1, math.ceil(q * len(sorted_vals)))
    return sorted_vals[k - 1]


def percentiles(path):
    vals = sorted(float(x) for x in open(path) if x.strip())
    if not vals:
        die("no samples in %s" % path)
    print("%.3f %.3f %.3f %d" % (lower_percentile(vals, 0.5), lower_percentile(vals, 0.95),
                                 vals[-1], len(vals)))


COMMANDS = {
    "pgbench-sql": pgbench_sql,
    "answer": answer,
    "latency": latency,
    "pgbench-log-latency": pgbench_log_latency,
    "pgbench-log-tps": pgbench_log_tps,
    "percentiles": percentiles,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        die("usage: sms.py {%s} …" % "|".join(COMMANDS))
    COMMANDS[sys.argv[1]](*sys.argv[2:])
