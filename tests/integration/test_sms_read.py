"""tests/integration/test_sms_read.py: the SMS read API against the real service.

SMS.md §1, §3.2-§3.4 and §6.1-§6.5 with API.md §1-§2 (envelope, error object, 404/405, HEAD,
date ranges, integer parameters, list clamping, timestamps). One scratch database (not seeded,
so the SMS demo data of `analyticsd seed` is absent) is loaded once through POST /api/v1/events
with a scripted data set placed relative to the current time; a reference model in this file
computes every expected answer from the events it sent, and answers are compared exactly: member
order, JSON types, and the literal text of numbers (rates are parsed as their raw text, so
`1.000000` must be written with six decimals).

Data layout (D0 = today, UTC; every scripted hour is at least two days in the past):
  day A = D0-3   eight operators with ties, nulls, half-up rounding cases and a 5-per-second
                 burst; 61 latency samples in one hour (operator O7); the newest submission time
  day B = D0-4   O7 over eight hours (38 samples), O3 with receipts whose charges never came
                 (pending clamped after summing), O2
  P2, P, M, M1   ms-2, ms-1, ms, ms+1 where ms is the first day of the latest month starting on
                 or before D0-6: hours 22-23 of P and 00-01 of M lie in two monthly partitions
                 (operator O8, account AC6); M1 has messages but no delivered one
  D0-2           nothing (empty range); the caching test later adds one event at now-3h

Most tests share one service with SMS_CACHE_TTL=0 (every read fresh); test_cache_ttl_visibility
starts a second one with SMS_CACHE_TTL=2s on the same database.

Run alone (after `eval "$(deploy/dev stack)"` in /work/main):
  ANALYTICSD_BIN=build/analyticsd PYTHONPATH=tests/support PYTHONDONTWRITEBYTECODE=1 \
      SMS_TEST_ONLY=test_operators_sorting python3 tests/integration/test_sms_read.py
or the whole file: (cd build && ctest -R test_sms_read --output-on-failure).
"""

import datetime
import json
import math
import os
import random
import re
import subprocess
import threading
import time
import urllib.parse
from decimal import Decimal
from fractions import Fraction

import adtest

KEY = {"X-Management-Key": "test-key"}
UTC = datetime.timezone.utc
GAMMA = (1 + 0.01) / (1 - 0.01)
MAX_DAYS = 366
CACHE_TTL_S = 2

SUMMARY = "/api/v1/sms/summary"
OPERATORS = "/api/v1/sms/operators"
ACCOUNTS = "/api/v1/sms/accounts"


def METRICS(op_id):
    return "/api/v1/sms/operators/%s/metrics" % op_id


def USAGE(acct_id):
    return "/api/v1/sms/accounts/%s/usage" % acct_id


O = {i: "5e000000-0000-4000-8000-%012d" % i for i in range(1, 10)}
AC = {i: "5a000000-0000-4000-8000-%012d" % i for i in range(1, 10)}
UNKNOWN_UUID = "5e000000-0000-4000-8000-000000000999"

SUMMARY_KEYS = ["total_messages", "delivered_messages", "failed_messages", "pending_messages",
                "delivery_rate", "error_rate", "total_cost", "avg_cost_per_message",
                "avg_latency_ms", "p50_latency_ms", "p95_latency_ms", "p99_latency_ms", "peak_tps",
                "active_accounts", "active_operators"]
OPERATOR_KEYS = ["operator_id", "total_messages", "delivered_messages", "failed_messages",
                 "pending_messages", "delivery_rate", "error_rate", "avg_latency_ms",
                 "p50_latency_ms", "p95_latency_ms", "p99_latency_ms", "peak_tps", "error_count"]
ACCOUNT_KEYS = ["account_id", "messages_sent", "messages_delivered", "messages_failed",
                "delivery_rate", "total_cost", "avg_cost_per_message", "total_segments"]
OPERATOR_SORTS = ["total_messages", "delivery_rate", "error_rate", "avg_latency_ms",
                  "p95_latency_ms", "peak_tps", "operator_id"]
ACCOUNT_SORTS = ["total_cost", "messages_sent", "delivery_rate", "account_id"]
MSG_OP_SORT = ("sort must be one of total_messages, delivery_rate, error_rate, avg_latency_ms, "
               "p95_latency_ms, peak_tps, operator_id")
MSG_ACCT_SORT = "sort must be one of total_cost, messages_sent, delivery_rate, account_id"
MSG_ORDER = "order must be asc or desc"
MSG_OP_WINDOW = "window must be hour or day"
MSG_ACCT_WINDOW = "window must be day or month"
MSG_HOUR_SPAN = "date range exceeds 31 days for window hour"
MSG_BAD_TO = "date_to must use YYYY-MM-DD format"
MSG_BAD_FROM = "date_from must use YYYY-MM-DD format"
MSG_FROM_AFTER_TO = "date_from must be on or before date_to"
MSG_SPAN = "date range exceeds %d days" % MAX_DAYS
ERROR_CODES = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed"}
METHOD_NOT_ALLOWED = b'{"error":{"code":"method_not_allowed","message":"method not allowed"}}\n'
ROUTE_NOT_FOUND = b'{"error":{"code":"not_found","message":"route was not found"}}\n'
TS_RE = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{0,8}[1-9]))?Z$")
DATE_RE = re.compile(r"^\d{4}-\d\d-\d\d$")
FINAL = {"DELIVERED", "FAILED", "REJECTED", "EXPIRED", "UNDELIVERABLE"}

DB = None
SVC = None
MODEL = None
DAYS = None


# ---- values as the API writes them ------------------------------------------------------------

class Num:
    """A JSON number with a fraction, kept as its literal text (json.loads parse_float)."""
    __slots__ = ("text",)

    def __init__(self, text):
        self.text = text

    def __eq__(self, other):
        return isinstance(other, Num) and other.text == self.text

    def __hash__(self):
        return hash(self.text)

    def __repr__(self):
        return "Num(%s)" % self.text


def half_up(fr, places):
    return math.floor(fr * 10 ** places + Fraction(1, 2))


def fixed6(fr):
    q = half_up(Fraction(fr), 6)
    return "%d.%06d" % divmod(q, 10 ** 6)


def rate(n, d):
    return None if d == 0 else Num(fixed6(Fraction(n, d)))


def money(total):
    return fixed6(Fraction(total))


def avg_money(total, n):
    return None if n == 0 else fixed6(Fraction(total) / n)


def avg_ms(total, n):
    return None if n == 0 else half_up(Fraction(total, n), 0)


def api_ts(dt):
    """API.md §1.5: UTC, trailing fraction zeros removed, no dot for a zero fraction."""
    dt = dt.astimezone(UTC)
    frac = ("%06d" % dt.microsecond).rstrip("0")
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + ("." + frac if frac else "") + "Z"


def parse_api_ts(text):
    m = TS_RE.match(text)
    assert m, "not an API timestamp: %r" % text
    y, mo, d, h, mi, s, frac = m.groups()
    base = datetime.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=UTC)
    return base.timestamp() + (float("0." + frac) if frac else 0.0)


# ---- DDSketch (SMS.md §3.4) ---------------------------------------------------------------------

def sketch_bucket(ms):
    return -1 if ms <= 0 else math.ceil(math.log(ms) / math.log(GAMMA))


def sketch_value(bucket):
    return 0 if bucket < 0 else math.floor(2 * GAMMA ** bucket / (GAMMA + 1) + 0.5)


def rank(q, n):
    return math.ceil(Fraction(q, 100) * n)


def sketch_pct(samples, q):
    if not samples:
        return None
    counts = {}
    for x in samples:
        b = sketch_bucket(x)
        counts[b] = counts.get(b, 0) + 1
    need, seen = rank(q, len(samples)), 0
    for b in sorted(counts):
        seen += counts[b]
        if seen >= need:
            return sketch_value(b)
    raise AssertionError("unreachable")


def exact_pct(samples, q):
    return sorted(samples)[rank(q, len(samples)) - 1]


def safe_latency(x):
    """Keeps samples away from float ties: log_gamma(x) near an integer, or a bucket value near
    .5, could round differently in C and Python without either being wrong."""
    if x <= 1:
        return True
    f = math.log(x) / math.log(GAMMA)
    if abs(f - round(f)) < 1e-6:
        return False
    v = 2 * GAMMA ** math.ceil(f) / (GAMMA + 1)
    return abs(v - math.floor(v) - 0.5) > 1e-6


def latencies(seed, n):
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        if rng.random() < 0.12:
            x = rng.choice((0, 0, 1, 2, 3, 9))
        else:
            x = min(int(rng.lognormvariate(7.0, 1.3)), 590000)
        if safe_latency(x):
            out.append(x)
    return out


# ---- events and the reference model ------------------------------------------------------------

def ts(dt):
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ts_plus2(dt):  # the same instant written with a numeric offset
    return dt.astimezone(datetime.timezone(datetime.timedelta(hours=2))).isoformat(
        timespec="milliseconds")


def hour_of(dt):
    return dt.replace(minute=0, second=0, microsecond=0)


class Msg:
    def __init__(self, msg_id, op_id, acct_id, at):
        self.id, self.op, self.acct, self.at = msg_id, op_id, acct_id, at


class Agg:
    def __init__(self):
        self.total = self.delivered = self.failed = self.lat_sum = self.lat_n = self.errors = 0
        self.cost = Decimal(0)
        self.samples = []
        self.seconds = {}

    def peak(self):
        return max(self.seconds.values(), default=0)


class AcctDay:
    def __init__(self):
        self.sent = self.delivered = self.failed = self.segments = 0
        self.cost = Decimal(0)


class Model:
    """Expected answers computed from the accepted events (SMS.md §3.2, §6)."""

    def __init__(self):
        self.hourly = {}   # (scope, scope_id, hour) -> Agg
        self.daily = {}    # (account_id, date) -> AcctDay
        self.event_ids = set()
        self.finalized = set()
        self.through = None

    def _agg(self, scope, sid, hour):
        return self.hourly.setdefault((scope, sid, hour), Agg())

    def _seen(self, at):
        self.through = at if self.through is None else max(self.through, at)

    def apply(self, event, rec):
        """Applies one event; returns its expected outcome."""
        eid = event.get("event_id")
        if rec[0] == "X":
            return rec[1]
        if eid in self.event_ids:
            return "duplicate"
        if rec[0] == "C":
            _, msg, op_id, acct, at, cost, segments = rec
            for scope, sid in (("PLATFORM", "platform"), ("OPERATOR", op_id), ("ACCOUNT", acct)):
                g = self._agg(scope, sid, hour_of(at))
                g.total += 1
                g.cost += cost
                sec = at.replace(microsecond=0)
                g.seconds[sec] = g.seconds.get(sec, 0) + 1
            d = self.daily.setdefault((acct, at.date()), AcctDay())
            d.sent += 1
            d.cost += cost
            d.segments += segments
        else:
            _, msg, op_id, acct, status, submitted, occurred, error = rec
            if status in FINAL and msg in self.finalized:
                return "duplicate"
            hour = hour_of(submitted)
            if error:
                self._agg("OPERATOR", op_id, hour).errors += 1
            if status in FINAL:
                self.finalized.add(msg)
                d = self.daily.setdefault((acct, submitted.date()), AcctDay())
                if status == "DELIVERED":
                    us = (occurred - submitted) // datetime.timedelta(microseconds=1)
                    latency = max(us // 1000, 0)
                    for scope, sid in (("PLATFORM", "platform"), ("OPERATOR", op_id),
                                       ("ACCOUNT", acct)):
                        g = self._agg(scope, sid, hour)
                        g.delivered += 1
                        g.lat_sum += latency
                        g.lat_n += 1
                        if scope != "ACCOUNT":
                            g.samples.append(latency)
                    d.delivered += 1
                else:
                    for scope, sid in (("PLATFORM", "platform"), ("OPERATOR", op_id),
                                       ("ACCOUNT", acct)):
                        self._agg(scope, sid, hour).failed += 1
                    d.failed += 1
            at = submitted
        self.event_ids.add(eid)
        self._seen(rec[4] if rec[0] == "C" else at)
        return "accepted"

    # -- reads --

    def through_text(self):
        return None if self.through is None else api_ts(self.through)

    def groups(self, scope, sid, d0, d1):
        return sorted(((h, g) for (s, i, h), g in self.hourly.items()
                       if s == scope and i == sid and d0 <= h.date() <= d1), key=lambda x: x[0])

    def samples(self, scope, sid, d0, d1, hour=None):
        return [x for h, g in self.groups(scope, sid, d0, d1) if hour in (None, h)
                for x in g.samples]

    @staticmethod
    def measures(aggs):
        t = sum(g.total for g in aggs)
        d = sum(g.delivered for g in aggs)
        f = sum(g.failed for g in aggs)
        samples = [x for g in aggs for x in g.samples]
        return t, d, f, samples

    def op_item(self, aggs):
        t, d, f, samples = self.measures(aggs)
        return {"total_messages": t, "delivered_messages": d, "failed_messages": f,
                "pending_messages": max(t - d - f, 0), "delivery_rate": rate(d, t),
                "error_rate": rate(f, t),
                "avg_latency_ms": avg_ms(sum(g.lat_sum for g in aggs), sum(g.lat_n for g in aggs)),
                "p50_latency_ms": sketch_pct(samples, 50),
                "p95_latency_ms": sketch_pct(samples, 95),
                "p99_latency_ms": sketch_pct(samples, 99),
                "peak_tps": max((g.peak() for g in aggs), default=0),
                "error_count": sum(g.errors for g in aggs)}

    def active(self, scope, d0, d1):
        totals = {}
        for (s, sid, h), g in self.hourly.items():
            if s == scope and d0 <= h.date() <= d1:
                totals[sid] = totals.get(sid, 0) + g.total
        return sorted(sid for sid, t in totals.items() if t > 0)

    def summary(self, d0, d1):
        aggs = [g for _, g in self.groups("PLATFORM", "platform", d0, d1)]
        item = self.op_item(aggs)
        cost = sum((g.cost for g in aggs), Decimal(0))
        t = item["total_messages"]
        out = {k: item[k] for k in SUMMARY_KEYS[:6]}
        out["total_cost"] = money(cost)
        out["avg_cost_per_message"] = avg_money(cost, t)
        for k in SUMMARY_KEYS[8:13]:
            out[k] = item[k]
        out["active_accounts"] = len(self.active("ACCOUNT", d0, d1))
        out["active_operators"] = len(self.active("OPERATOR", d0, d1))
        return out

    def operators(self, d0, d1, sort="total_messages", order="desc"):
        items = [dict(operator_id=sid, **self.op_item(
            [g for _, g in self.groups("OPERATOR", sid, d0, d1)]))
            for sid in self.active("OPERATOR", d0, d1)]
        return sort_items(items, sort, order, "operator_id")

    def metrics(self, sid, window, d0, d1):
        groups = self.groups("OPERATOR", sid, d0, d1)
        buckets = {}
        for h, g in groups:
            start = h if window == "hour" else datetime.datetime.combine(h.date(), datetime.time(),
                                                                         UTC)
            buckets.setdefault(start, []).append(g)
        series = [dict(bucket=api_ts(b), **self.op_item(aggs))
                  for b, aggs in sorted(buckets.items()) if sum(g.total for g in aggs) > 0]
        return {"operator_id": sid, "totals": self.op_item([g for _, g in groups]),
                "series": series}

    def days(self, acct, d0, d1):
        return sorted((day, v) for (a, day), v in self.daily.items()
                      if a == acct and d0 <= day <= d1)

    @staticmethod
    def acct_item(rows):
        sent = sum(r.sent for r in rows)
        delivered = sum(r.delivered for r in rows)
        cost = sum((r.cost for r in rows), Decimal(0))
        return {"messages_sent": sent, "messages_delivered": delivered,
                "messages_failed": sum(r.failed for r in rows),
                "delivery_rate": rate(delivered, sent),
                "total_cost": money(cost), "avg_cost_per_message": avg_money(cost, sent),
                "total_segments": sum(r.segments for r in rows)}

    def accounts(self, d0, d1, sort="total_cost", order="desc"):
        ids = sorted({a for (a, day) in self.daily if d0 <= day <= d1})
        items = [dict(account_id=a, **self.acct_item([r for _, r in self.days(a, d0, d1)]))
                 for a in ids]
        return sort_items(items, sort, order, "account_id")

    def usage(self, acct, window, d0, d1):
        rows = self.days(acct, d0, d1)
        buckets = {}
        for day, r in rows:
            buckets.setdefault(day if window == "day" else day.replace(day=1), []).append(r)
        series = [dict(bucket=str(b), **self.acct_item(rs)) for b, rs in sorted(buckets.items())
                  if any((r.sent, r.delivered, r.failed) != (0, 0, 0) for r in rs)]
        return {"account_id": acct, "totals": self.acct_item([r for _, r in rows]),
                "series": series}


def sort_value(v):
    if isinstance(v, Num):
        return Decimal(v.text)
    if isinstance(v, str):
        return Decimal(v)  # money
    return v


def sort_items(items, key, order, id_key):
    """SMS.md §6.1/§6.3: by the value as written, nulls last in both orders, ties by id asc."""
    desc = order == "desc"
    if key == id_key:
        return sorted(items, key=lambda i: i[id_key], reverse=desc)
    present = sorted((i for i in items if i[key] is not None), key=lambda i: i[id_key])
    present.sort(key=lambda i: sort_value(i[key]), reverse=desc)  # stable: ties stay by id asc
    return present + sorted((i for i in items if i[key] is None), key=lambda i: i[id_key])


def without(item, key):
    return {k: v for k, v in item.items() if k != key}


# ---- the data set --------------------------------------------------------------------------------

class Days:
    def __init__(self, now):
        day = datetime.timedelta(days=1)
        self.today = now.date()
        self.A = self.today - 3 * day
        self.B = self.today - 4 * day
        self.empty = self.today - 2 * day
        ms = self.today.replace(day=1)
        if ms > self.today - 6 * day:
            ms = (ms - day).replace(day=1)
        self.M, self.P, self.M1, self.P2 = ms, ms - day, ms + day, ms - 2 * day


def at(day, h, m=0, s=0, ms=0):
    return datetime.datetime(day.year, day.month, day.day, h, m, s, ms * 1000, tzinfo=UTC)


class Builder:
    def __init__(self):
        self.items = []  # (event with subject, model record)
        self.seq = 0
        self.rng = random.Random(5)

    def _id(self, prefix):
        self.seq += 1
        return "%s-%d" % (prefix, self.seq)

    def charge(self, op_id, acct, when, cost="0.010000", segments=1, write=ts):
        msg = self._id("rm")
        e = {"subject": "billing.events", "event_id": self._id("rc"),
             "event_type": "billing.message.charged", "occurred_at": write(when), "message_id": msg,
             "account_id": acct, "operator_id": op_id, "segments": segments, "cost": cost}
        self.items.append((e, ("C", msg, op_id.lower(), acct.lower(), when, Decimal(str(cost)),
                               segments)))
        return Msg(msg, op_id, acct, when)

    def orphan(self, op_id, acct, when):
        """A message whose charge never arrives."""
        return Msg(self._id("orphan"), op_id, acct, when)

    def dlr(self, m, status, latency_ms=None, occurred=None, error=None):
        if occurred is None:  # plus 0-999 µs, which the whole-ms latency rounds away
            occurred = m.at + datetime.timedelta(milliseconds=latency_ms,
                                                 microseconds=self.rng.randrange(1000))
        e = {"subject": "sms.dlr.inbound", "event_id": self._id("rd"),
             "event_type": "sms.dlr.received", "occurred_at": ts(occurred), "message_id": m.id,
             "account_id": m.acct, "operator_id": m.op, "status": status,
             "submitted_at": ts(m.at)}
        if error is not None:
            e["error_code"] = error
        self.items.append((e, ("R", m.id, m.op.lower(), m.acct.lower(), status, m.at, occurred,
                               error)))
        return e

    def repeat(self, event):
        self.items.append((dict(event), ("R-again",)))

    def other(self, event, outcome):
        self.items.append((event, ("X", outcome)))


def build(days, b):
    sec = datetime.timedelta(seconds=1)
    A, B = days.A, days.B

    # ---- day A ----
    burst = at(A, 9, 15, 7)  # O1 x2 and O3 x3 in one second: platform peak 5
    o1 = [b.charge(O[1], AC[1], burst + datetime.timedelta(milliseconds=100), "0.05"),
          b.charge(O[1], AC[1], burst + datetime.timedelta(milliseconds=800), "0.05",
                   write=ts_plus2),
          b.charge(O[1], AC[1], at(A, 10, 5), "0.05"),
          b.charge(O[1], AC[1], at(A, 11, 30), "0.05")]
    o3 = [b.charge(O[3], AC[4], burst + datetime.timedelta(milliseconds=200), "0.000002"),
          b.charge(O[3], AC[4], burst + datetime.timedelta(milliseconds=300), "0.000003"),
          b.charge(O[3], AC[3], burst + datetime.timedelta(milliseconds=999), "1.5")]
    o2 = [b.charge(O[2], AC[2], at(A, 10, 0, i + 1), 0.25) for i in range(3)]
    o4 = [b.charge(O[4], AC[5], at(A, 12, 0, 0), "2"), b.charge(O[4], AC[5], at(A, 12, 0, 1), 2)]
    o5 = [b.charge(O[5], AC[8], at(A, 13, 0, 0, 100), "0.5"),
          b.charge(O[5], AC[9], at(A, 13, 0, 0, 200), "0.5"),
          b.charge(O[5], AC[5], at(A, 13, 0, 5), "0.1"),
          b.charge(O[5], AC[5], at(A, 13, 0, 6), "0.1")]
    o6 = b.charge(O[6], AC[1], at(A, 14, 59, 59, 250), "0.3")  # the newest submission time
    o7 = [b.charge(O[7].upper(), AC[2].upper() if i % 2 else AC[3], at(A, 10, 10) + 7 * i * sec)
          for i in range(64)]
    o9 = [b.charge(O[9], AC[1] if i % 2 else AC[5], at(A, 11) + 11 * i * sec, "0.001", 2)
          for i in range(128)]

    for m, lat in zip(o1, (1000, 1000, 2000, 3000)):
        b.dlr(m, "DELIVERED", lat)
    first = b.dlr(o2[0], "DELIVERED", occurred=o2[0].at + datetime.timedelta(microseconds=100999))
    b.dlr(o2[1], "DELIVERED", 101)                       # O2: avg 100.5 -> 101
    b.dlr(o2[2], "FAILED", 30000, error="E42")
    b.dlr(o2[2], "DELIVERED", 40000)                     # second final receipt: duplicate
    b.repeat(first)                                      # same event_id: duplicate
    b.dlr(o3[0], "ENROUTE", 500)
    b.dlr(o3[2], "DELIVERED", 101)                       # O3: avg 101, ties O2
    b.dlr(o4[0], "FAILED", 700, error="E1")
    b.dlr(o4[1], "REJECTED", 800, error="E2")
    b.dlr(o5[2], "ACCEPTED", 100, error="W1")            # non-final with an error code
    b.dlr(o6, "DELIVERED", occurred=o6.at - 5 * sec)     # negative latency counts as 0
    for m, lat in zip(o7, latencies(7, 61)):
        b.dlr(m, "DELIVERED", lat)                       # O7: 61 of 64 delivered = 0.953125
    b.dlr(o7[61], "EXPIRED", 9000)
    b.dlr(o7[62], "UNDELIVERABLE", 9000, error="E9")
    b.dlr(o9[0], "DELIVERED", 250)                       # O9: 1/128 = 0.0078125 -> 0.007813
    for m in o9[1:6]:
        b.dlr(m, "FAILED", 1000)                         # 5/128 = 0.0390625 -> 0.039063

    # ---- day B ----
    o7b = [b.charge(O[7], AC[2] if i % 2 else AC[3], at(B, 8 + i // 5, 20) + 13 * (i % 5) * sec)
           for i in range(40)]
    for m, lat in zip(o7b, latencies(8, 38)):
        b.dlr(m, "DELIVERED", lat)
    b.dlr(o7b[38], "FAILED", 2000)
    o3b = [b.charge(O[3], AC[3], at(B, 9, 0, i), "0.02") for i in range(3)]
    late = b.charge(O[3], AC[3], at(B, 11), "0.02")
    b.dlr(late, "DELIVERED", 500)
    b.dlr(b.orphan(O[3], AC[3], at(B, 11, 30)), "DELIVERED", 700)
    b.dlr(b.orphan(O[3], AC[3], at(B, 11, 30, 1)), "DELIVERED", 900)
    assert len(o3b) == 3
    for i, lat in enumerate((50, 60)):
        b.dlr(b.charge(O[2], AC[2], at(B, 12, 0, 0, 500 * i), "0.25"), "DELIVERED", lat)

    # ---- around the first day of a month: two monthly partitions ----
    lat = iter(latencies(9, 36))
    for day, hour, n, cost in ((days.P, 22, 9, "0.100000"), (days.P, 23, 11, "0.100000"),
                               (days.M, 0, 13, "0.200000"), (days.M, 1, 7, "0.200000")):
        for k in range(n):
            when = at(day, hour, 2) + 37 * k * sec
            if (day, hour) == (days.M, 0) and k >= 10:  # three in one second: peak 3
                when = at(day, hour, 30, 0, 100 * (k - 9))
            m = b.charge(O[8], AC[6], when, cost, 1 + k % 3)
            if k == n - 1:
                b.dlr(m, "FAILED", 1500, error="E5" if hour % 2 else None)
            else:
                b.dlr(m, "DELIVERED", next(lat))
    b.dlr(b.charge(O[8], AC[6], at(days.P2, 12), "0.05"), "DELIVERED", 1234)
    b.charge(O[8], AC[6], at(days.M1, 10, 0, 0), "0.2")
    b.charge(O[8], AC[6], at(days.M1, 10, 0, 1), "0.2")
    b.dlr(b.charge(O[8], AC[7], at(days.M1, 10, 0, 2), "0.07"), "FAILED", 300)

    # ---- outcomes that count nothing ----
    b.other({"subject": "billing.events", "event_id": "ign-1",
             "event_type": "billing.invoice.created"}, "ignored")
    newer = datetime.datetime.now(UTC) - datetime.timedelta(hours=1)
    bad = {"subject": "billing.events", "event_id": "bad-1",
           "event_type": "billing.message.charged", "occurred_at": ts(newer),
           "message_id": "bad-m", "account_id": AC[1], "operator_id": O[1], "segments": 0,
           "cost": "1"}
    b.other(bad, "rejected")  # newer than everything, but not accepted: not in ingested_through


def post_events(svc, events):
    status, hdrs, raw = svc.request("POST", "/api/v1/events",
                                    body=json.dumps({"events": events}).encode(),
                                    headers=dict(KEY, **{"Content-Type": "application/json"}))
    assert status == 200, (status, raw)
    return json.loads(raw)["data"]


def load_dataset():
    global MODEL, DAYS
    DAYS = Days(datetime.datetime.now(UTC))
    MODEL = Model()
    b = Builder()
    build(DAYS, b)
    expected = [MODEL.apply(e, rec) for e, rec in b.items]
    got = []
    for i in range(0, len(b.items), 500):
        data = post_events(SVC, [e for e, _ in b.items[i:i + 500]])
        got += [r["outcome"] for r in data["results"]]
    assert got == expected, [(i, g, w) for i, (g, w) in enumerate(zip(got, expected)) if g != w]
    assert expected.count("duplicate") == 2 and expected.count("rejected") == 1
    assert MODEL.through == at(DAYS.A, 14, 59, 59, 250)


# ---- HTTP helpers --------------------------------------------------------------------------------

class Resp:
    def __init__(self, status, headers, body, t0, t1):
        self.status, self.headers, self.body, self.t0, self.t1 = status, headers, body, t0, t1

    def json(self):
        return json.loads(self.body, parse_float=Num)


def fetch(path, raw=None, svc=None, method="GET", **params):
    q = raw if raw is not None else urllib.parse.urlencode({k: str(v) for k, v in params.items()})
    t0 = time.time()
    status, hdrs, body = (svc or SVC).request(method, path + ("?" + q if q else ""))
    return Resp(status, hdrs, body, t0, time.time())


def mismatch(got, want, path="$"):
    if type(got) is not type(want):
        return "%s: %r (%s) != %r (%s)" % (path, got, type(got).__name__, want,
                                           type(want).__name__)
    if isinstance(want, dict):
        if list(got) != list(want):
            return "%s: members %r != %r" % (path, list(got), list(want))
        for k in want:
            m = mismatch(got[k], want[k], "%s.%s" % (path, k))
            if m:
                return m
    elif isinstance(want, list):
        if len(got) != len(want):
            return "%s: %d items != %d:\n got %r\nwant %r" % (path, len(got), len(want), got, want)
        for i, (g, w) in enumerate(zip(got, want)):
            m = mismatch(g, w, "%s[%d]" % (path, i))
            if m:
                return m
    elif got != want:
        return "%s: %r != %r" % (path, got, want)
    return None


def same(got, want, what=""):
    m = mismatch(got, want)
    assert m is None, "%s: %s" % (what, m) if what else m


def check_meta(meta, r, dates, page, ttl, through):
    keys = ["date_from", "date_to", "freshness"] + (["limit", "offset", "total"] if page else [])
    assert list(meta) == keys, meta
    assert DATE_RE.match(meta["date_from"]) and DATE_RE.match(meta["date_to"]), meta
    if dates is not None:
        assert (meta["date_from"], meta["date_to"]) == (str(dates[0]), str(dates[1])), meta
    fr = meta["freshness"]
    assert type(fr) is dict and list(fr) == ["as_of", "ingested_through"], meta
    as_of = parse_api_ts(fr["as_of"])
    assert r.t0 - ttl - 0.5 <= as_of <= r.t1 + 0.5, (fr, r.t0, r.t1, ttl)
    if through is not False:
        assert fr["ingested_through"] == (MODEL.through_text() if through is None else through), \
            (fr, MODEL.through_text())
    elif fr["ingested_through"] is not None:
        parse_api_ts(fr["ingested_through"])
    if page:
        assert [meta["limit"], meta["offset"], meta["total"]] == list(page), (meta, page)
        assert all(type(meta[k]) is int for k in ("limit", "offset", "total")), meta


def ok(path, raw=None, dates=None, page=None, svc=None, ttl=0, through=None, **params):
    """GET answering 200; checks the envelope and meta; returns (data, meta, response)."""
    r = fetch(path, raw=raw, svc=svc, **params)
    assert r.status == 200, (path, raw, params, r.status, r.body)
    assert r.headers.get("content-type") == "application/json", r.headers
    assert r.body.endswith(b"\n") and b" " not in r.body and b"\n" not in r.body[:-1], r.body
    body = r.json()
    assert type(body) is dict and list(body) == ["data", "meta"], r.body
    if dates is None:
        dates = query_dates(raw, params)
    check_meta(body["meta"], r, dates, page, ttl, through)
    return body["data"], body["meta"], r


def query_dates(raw, params):
    """(date_from, date_to) when the request names both as valid-looking dates, else None."""
    if raw is None:
        got = {k: str(v) for k, v in params.items()}
    else:
        got = {}
        for piece in raw.split("&"):
            name, _, value = piece.partition("=")
            got.setdefault(name, value)
    d0, d1 = got.get("date_from", ""), got.get("date_to", "")
    return (d0, d1) if DATE_RE.match(d0) and DATE_RE.match(d1) else None


def page_for(path, d0, d1, limit=20, offset=0):
    """The pagination meta a list route must show, None for the other routes."""
    if path == OPERATORS:
        return (limit, offset, len(MODEL.operators(d0, d1)))
    if path == ACCOUNTS:
        return (limit, offset, len(MODEL.accounts(d0, d1)))
    return None


def on_a_stable_day(check):
    """Runs check(today); retried when UTC midnight passes during it."""
    for _ in range(3):
        today = datetime.datetime.now(UTC).date()
        try:
            return check(today)
        except AssertionError:
            if datetime.datetime.now(UTC).date() == today:
                raise
    raise AssertionError("the UTC date kept changing")


def err(path, status, message, raw=None, method="GET", **params):
    r = fetch(path, raw=raw, method=method, **params)
    want = ('{"error":{"code":"%s","message":"%s"}}\n' % (ERROR_CODES[status], message)).encode()
    assert (r.status, r.body) == (status, want), (path, raw, params, r.status, r.body)
    assert r.headers.get("content-type") == "application/json", r.headers
    return r


def rng_q(d0, d1, extra=""):
    return "date_from=%s&date_to=%s%s" % (d0, d1, "&" + extra if extra else "")


def check_pcts(obj, samples, what):
    """Percentiles: equal to one sketch over all the samples, and within 1 % (+ rounding) of the
    exact lower percentile (SMS.md §3.4)."""
    assert samples, what
    for q in (50, 95, 99):
        got = obj["p%d_latency_ms" % q]
        exact = exact_pct(samples, q)
        assert type(got) is int, (what, q, got)
        assert abs(got - exact) <= 0.01 * exact + 0.5, (what, q, got, exact, sorted(samples))
        assert got == sketch_pct(samples, q), (what, q, got, sketch_pct(samples, q))


# ---- summary -------------------------------------------------------------------------------------

def test_summary_values_and_shape():
    d = DAYS
    day = datetime.timedelta(days=1)
    for d0, d1 in ((d.A, d.A), (d.B, d.B), (d.B, d.A), (d.P, d.M), (d.P2, d.M1), (d.M1, d.M1),
                   (d.P2, d.today), (d.today - (MAX_DAYS - 1) * day, d.today)):
        data, _, _ = ok(SUMMARY, date_from=d0, date_to=d1)
        same(data, MODEL.summary(d0, d1), "summary %s..%s" % (d0, d1))
        assert list(data) == SUMMARY_KEYS
    # Hand-derived facts of day A (they also check the model).
    data, _, r = ok(SUMMARY, date_from=d.A, date_to=d.A)
    assert (data["total_messages"], data["peak_tps"], data["active_operators"],
            data["active_accounts"]) == (209, 5, 8, 7), data
    # 0.2 + (0.000005 + 1.5) + 0.75 + 4 + 1.2 + 0.3 + 0.64 + 0.128
    assert data["total_cost"] == "8.718005", data
    assert re.search(rb'"delivery_rate":\d\.\d{6},"error_rate":\d\.\d{6},"total_cost":"8\.718005"',
                     r.body), r.body
    # Nothing in the range: zero counts, null rates, averages and percentiles.
    data, _, _ = ok(SUMMARY, date_from=d.empty, date_to=d.empty)
    same(data, {"total_messages": 0, "delivered_messages": 0, "failed_messages": 0,
                "pending_messages": 0, "delivery_rate": None, "error_rate": None,
                "total_cost": "0.000000", "avg_cost_per_message": None, "avg_latency_ms": None,
                "p50_latency_ms": None, "p95_latency_ms": None, "p99_latency_ms": None,
                "peak_tps": 0, "active_accounts": 0, "active_operators": 0}, "empty day")


def test_default_range_is_the_30_days_ending_today():
    day = datetime.timedelta(days=1)
    A, B = DAYS.A, DAYS.B

    def check(today):
        d0 = today - 29 * day
        data, _, _ = ok(SUMMARY, dates=(d0, today))
        same(data, MODEL.summary(d0, today), "default range")
        data, _, _ = ok(OPERATORS, dates=(d0, today), page=page_for(OPERATORS, d0, today))
        same(data, MODEL.operators(d0, today), "operators, default range")
        for path in read_routes():
            for q, (f, t) in (("", (d0, today)), ("date_from=&date_to=%20", (d0, today)),
                              ("date_to=%s" % A, (A - 29 * day, A)),
                              ("date_from=%s" % B, (B, today)),
                              ("date_to=%s&date_from=%%09" % A, (A - 29 * day, A))):
                ok(path, raw=q, dates=(f, t), page=page_for(path, f, t))
    on_a_stable_day(check)


def test_pending_is_clamped_after_summing():
    B = DAYS.B
    hours = MODEL.groups("OPERATOR", O[3], B, B)
    clamped_sum = sum(max(g.total - g.delivered - g.failed, 0) for _, g in hours)
    t, dl, f, _ = Model.measures([g for _, g in hours])
    assert (clamped_sum, t, dl, f) == (3, 4, 3, 0)  # the data really has the case
    item = [i for i in ok(OPERATORS, raw=rng_q(B, B), page=page_for(OPERATORS, B, B))[0]
            if i["operator_id"] == O[3]][0]
    assert (item["total_messages"], item["delivered_messages"], item["pending_messages"]) == \
        (4, 3, 1), item
    assert item["delivery_rate"] == Num("0.750000"), item
    data, _, _ = ok(METRICS(O[3]), date_from=B, date_to=B, window="hour")
    same(data, MODEL.metrics(O[3], "hour", B, B), "O3 hours of day B")
    late = [s for s in data["series"] if s["bucket"] == api_ts(at(B, 11))][0]
    assert (late["total_messages"], late["delivered_messages"], late["pending_messages"],
            late["delivery_rate"]) == (1, 3, 0, Num("3.000000")), late
    assert data["totals"]["pending_messages"] == 1, data
    data, _, _ = ok(USAGE(AC[3]), date_from=B, date_to=B)
    same(data, MODEL.usage(AC[3], "day", B, B), "AC3 on day B")
    data, _, _ = ok(SUMMARY, date_from=B, date_to=B)
    same(data, MODEL.summary(B, B), "summary of day B")


def test_rounding_and_number_text():
    A = DAYS.A
    items, _, r = ok(OPERATORS, raw=rng_q(A, A), page=(20, 0, 8))
    by_id = {i["operator_id"]: i for i in items}
    # Half up, not half even: 1/128 = 0.0078125 and 5/128 = 0.0390625.
    assert (by_id[O[9]]["delivery_rate"], by_id[O[9]]["error_rate"]) == \
        (Num("0.007813"), Num("0.039063")), by_id[O[9]]
    assert b'"delivery_rate":0.007813,"error_rate":0.039063,' in r.body
    assert b'"delivery_rate":0.953125,"error_rate":0.031250,' in r.body  # O7: 61/64, 2/64
    assert b'"delivery_rate":1.000000,"error_rate":0.000000,' in r.body  # O1
    assert by_id[O[2]]["avg_latency_ms"] == 101 and by_id[O[3]]["avg_latency_ms"] == 101  # 100.5
    assert by_id[O[6]]["avg_latency_ms"] == 0 and by_id[O[6]]["p99_latency_ms"] == 0
    assert by_id[O[1]]["avg_latency_ms"] == 1750
    assert by_id[O[2]]["error_count"] == 1 and by_id[O[4]]["error_count"] == 2 and \
        by_id[O[5]]["error_count"] == 1 and by_id[O[7]]["error_count"] == 1, by_id
    assert [by_id[O[i]]["peak_tps"] for i in (1, 2, 3, 4, 5, 6, 7, 9)] == [2, 1, 3, 1, 2, 1, 1, 1]
    accts, _, r = ok(ACCOUNTS, raw=rng_q(A, A), page=(20, 0, 7))
    a4 = [a for a in accts if a["account_id"] == AC[4]][0]
    same(a4, {"account_id": AC[4], "messages_sent": 2, "messages_delivered": 0,
              "messages_failed": 0, "delivery_rate": Num("0.000000"), "total_cost": "0.000005",
              "avg_cost_per_message": "0.000003", "total_segments": 2}, "AC4")
    assert b'"total_cost":"0.000005","avg_cost_per_message":"0.000003"' in r.body


# ---- operators list ------------------------------------------------------------------------------

def test_operators_list_items():
    d = DAYS
    for d0, d1 in ((d.A, d.A), (d.B, d.A), (d.P2, d.today), (d.P, d.M), (d.empty, d.empty)):
        want = MODEL.operators(d0, d1)
        data, _, _ = ok(OPERATORS, raw=rng_q(d0, d1, "limit=100"), dates=(d0, d1),
                        page=(100, 0, len(want)))
        same(data, want, "operators %s..%s" % (d0, d1))
        for item in data:
            assert list(item) == OPERATOR_KEYS
    data, _, r = ok(OPERATORS, raw=rng_q(d.empty, d.empty), page=(20, 0, 0))
    assert data == [] and r.body.startswith(b'{"data":[],"meta":{'), r.body
    # An operator sent in upper case is answered in lower case.
    assert O[7] in [i["operator_id"] for i in ok(OPERATORS, raw=rng_q(d.A, d.A),
                                                  page=(20, 0, 8))[0]]


def test_operators_sorting():
    full = MODEL.operators(DAYS.A, DAYS.A)
    for key in OPERATOR_SORTS[:-1]:  # day A has ties for every sort key, and nulls
        values = [i[key] for i in full if i[key] is not None]
        assert len(values) != len(set(values)), (key, values)
    assert any(i["avg_latency_ms"] is None for i in full)
    assert any(i["p95_latency_ms"] is None for i in full)
    for d0, d1 in ((DAYS.A, DAYS.A), (DAYS.B, DAYS.A)):
        full = MODEL.operators(d0, d1)
        for key in OPERATOR_SORTS:
            for order in ("asc", "desc"):
                data, _, _ = ok(OPERATORS, raw=rng_q(d0, d1, "sort=%s&order=%s" % (key, order)),
                                dates=(d0, d1), page=(20, 0, len(full)))
                same(data, MODEL.operators(d0, d1, key, order), "sort=%s order=%s" % (key, order))
        # Defaults, blank values and trimming.
        want = MODEL.operators(d0, d1)
        for extra in ("", "sort=&order=", "sort=%20&order=%09", "sort=total_messages",
                      "order=desc", "sort=%20total_messages%0A&order=%20desc%20"):
            same(ok(OPERATORS, raw=rng_q(d0, d1, extra), page=(20, 0, len(full)))[0], want, extra)
        same(ok(OPERATORS, raw=rng_q(d0, d1, "sort=%09error_rate%20&order=%0Aasc%20"),
                page=(20, 0, len(full)))[0], MODEL.operators(d0, d1, "error_rate", "asc"),
             "trimmed")
        same(ok(OPERATORS, raw=rng_q(d0, d1, "order=asc"), page=(20, 0, len(full)))[0],
             MODEL.operators(d0, d1, "total_messages", "asc"), "order alone")
        same(ok(OPERATORS, raw=rng_q(d0, d1, "sort=peak_tps"), page=(20, 0, len(full)))[0],
             MODEL.operators(d0, d1, "peak_tps", "desc"), "sort alone")


def test_operators_invalid_sort_and_order():
    q = rng_q(DAYS.A, DAYS.A)
    for s in ("Total_messages", "TOTAL_MESSAGES", "total_cost", "messages_sent", "p50_latency_ms",
              "error_count", "x", "total_messages,peak_tps"):
        err(OPERATORS, 400, MSG_OP_SORT, raw=q + "&sort=" + s)
    for o in ("DESC", "Asc", "descending", "up", "%FF"):
        err(OPERATORS, 400, MSG_ORDER, raw=q + "&order=" + o)
    err(OPERATORS, 400, MSG_ORDER, raw=q + "&sort=peak_tps&order=ASC")
    err(OPERATORS, 400, MSG_OP_SORT, raw=q + "&sort=bogus&order=asc")
    # Names are case-sensitive: Sort is not sort.
    ok(OPERATORS, raw=q + "&Sort=bogus&ORDER=bogus", page=(20, 0, 8))


def test_operators_paging_and_clamping():
    A = DAYS.A
    full = MODEL.operators(A, A)
    assert len(full) == 8
    pages = []
    for off in (0, 3, 6):
        data, _, _ = ok(OPERATORS, raw=rng_q(A, A, "limit=3&offset=%d" % off), page=(3, off, 8))
        pages += data
    same(pages, full, "pages of 3")
    for extra, lim, off in (("limit=0", 20, 0), ("limit=-1", 20, 0), ("limit=500", 100, 0),
                            ("limit=101", 100, 0), ("limit=100", 100, 0), ("limit=1", 1, 0),
                            ("limit=abc", 20, 0), ("limit=5.0", 20, 0), ("limit=%2B3", 3, 0),
                            ("limit=+3", 20, 0), ("limit=%203", 20, 0), ("limit=007", 7, 0),
                            ("limit=99999999999999999999", 20, 0), ("offset=-3", 20, 0),
                            ("offset=abc", 20, 0), ("offset=%2B2", 20, 2),
                            ("limit=2&offset=1", 2, 1), ("Limit=2", 20, 0),
                            ("limit=&offset=", 20, 0), ("limit=2&limit=5", 2, 0),
                            ("offset=8", 20, 8), ("offset=100", 20, 100),
                            ("limit=-5&offset=-5", 20, 0)):
        data, _, _ = ok(OPERATORS, raw=rng_q(A, A, extra), page=(lim, off, 8))
        same(data, full[off:off + lim], extra)
    data, _, _ = ok(OPERATORS, raw=rng_q(A, A, "sort=operator_id&order=asc&limit=2&offset=7"),
                    page=(2, 7, 8))
    same(data, MODEL.operators(A, A, "operator_id", "asc")[7:], "last page")


# ---- operator metrics ----------------------------------------------------------------------------

def test_operator_metrics_windows_and_series():
    d = DAYS
    ranges = ((d.A, d.A), (d.B, d.A), (d.P, d.M), (d.P2, d.M1))
    for d0, d1 in ranges:
        items = MODEL.operators(d0, d1)
        for item in items:
            sid = item["operator_id"]
            for window in ("day", "hour"):
                data, _, _ = ok(METRICS(sid), date_from=d0, date_to=d1, window=window)
                same(data, MODEL.metrics(sid, window, d0, d1),
                     "%s %s %s..%s" % (sid, window, d0, d1))
                assert list(data) == ["operator_id", "totals", "series"], data
                # totals are the operators-list item without operator_id
                same(data["totals"], without(item, "operator_id"), "totals of " + sid)
                buckets = [s["bucket"] for s in data["series"]]
                assert buckets == sorted(buckets) and len(set(buckets)) == len(buckets), buckets
                for s in data["series"]:
                    assert list(s) == ["bucket"] + OPERATOR_KEYS[1:], s
                    assert s["total_messages"] > 0, s
                    assert s["bucket"].endswith(":00:00Z" if window == "hour" else "T00:00:00Z"), s
    # Concrete buckets for O7: one hour of day A, eight hours of day B, two days.
    data, _, _ = ok(METRICS(O[7]), date_from=d.B, date_to=d.A, window="hour")
    assert [s["bucket"] for s in data["series"]] == \
        [api_ts(at(d.B, h)) for h in range(8, 16)] + [api_ts(at(d.A, 10))], data["series"]
    data, _, _ = ok(METRICS(O[7]), date_from=d.B, date_to=d.A)
    assert [s["bucket"] for s in data["series"]] == \
        ["%sT00:00:00Z" % d.B, "%sT00:00:00Z" % d.A], data["series"]
    assert [s["total_messages"] for s in data["series"]] == [40, 64], data["series"]
    # Window spellings: trimmed and case-folded; blank means day.
    day = MODEL.metrics(O[1], "day", d.A, d.A)
    hour = MODEL.metrics(O[1], "hour", d.A, d.A)
    assert len(hour["series"]) == 3 and len(day["series"]) == 1
    for spelled, want in (("", day), ("%20", day), ("Day", day), ("%20DAY%09", day),
                          ("hour", hour), ("HOUR", hour), ("%20Hour%0A", hour)):
        data, _, _ = ok(METRICS(O[1]), raw=rng_q(d.A, d.A, "window=" + spelled),
                        dates=(d.A, d.A))
        same(data, want, "window=" + spelled)
    same(ok(METRICS(O[1]), raw=rng_q(d.A, d.A), dates=(d.A, d.A))[0], day, "no window")


def test_operator_metrics_window_validation():
    t = DAYS.today
    day = datetime.timedelta(days=1)
    for w in ("week", "month", "hours", "d", "minute", "h%20our", "%FF"):
        err(METRICS(O[1]), 400, MSG_OP_WINDOW, raw=rng_q(DAYS.A, DAYS.A, "window=" + w))
    # An hour window spans at most 31 days; a day window may span more.
    err(METRICS(O[1]), 400, MSG_HOUR_SPAN, date_from=t - 31 * day, date_to=t, window="hour")
    err(METRICS(O[1]), 400, MSG_HOUR_SPAN, date_from=t - 200 * day, date_to=t, window=" HOUR ")
    data, _, _ = ok(METRICS(O[7]), date_from=t - 30 * day, date_to=t, window="hour")
    same(data, MODEL.metrics(O[7], "hour", t - 30 * day, t), "31 days of hours")
    data, _, _ = ok(METRICS(O[7]), date_from=t - 31 * day, date_to=t, window="day")
    same(data, MODEL.metrics(O[7], "day", t - 31 * day, t), "32 days of days")


def test_operator_metrics_ids():
    A = DAYS.A
    want = MODEL.metrics(O[7], "day", A, A)
    for spelled in (O[7].upper(), O[7][:20] + O[7][20:].upper(), O[7]):
        data, _, _ = ok(METRICS(spelled), date_from=A, date_to=A)
        same(data, want, spelled)
        assert data["operator_id"] == O[7]
    for bad in ("not-a-uuid", O[1][:-1], O[1] + "0", O[1][:-1] + "g", O[1].replace("-", "_"),
                "%20" + O[1], UNKNOWN_UUID, AC[1]):
        err(METRICS(bad), 404, "operator was not found", date_from=A, date_to=A)
    # Known, but nothing in the range: zero counts, nulls and no series.
    data, _, _ = ok(METRICS(O[8]), date_from=A, date_to=A, window="hour")
    same(data, {"operator_id": O[8], "totals": {
        "total_messages": 0, "delivered_messages": 0, "failed_messages": 0,
        "pending_messages": 0, "delivery_rate": None, "error_rate": None, "avg_latency_ms": None,
        "p50_latency_ms": None, "p95_latency_ms": None, "p99_latency_ms": None, "peak_tps": 0,
        "error_count": 0}, "series": []}, "O8 on day A")
    assert O[8] not in [i["operator_id"] for i in MODEL.operators(A, A)]


# ---- accounts ------------------------------------------------------------------------------------

def test_accounts_list_sorting_and_paging():
    d = DAYS
    for d0, d1 in ((d.A, d.A), (d.B, d.A), (d.P2, d.M1), (d.P2, d.today), (d.empty, d.empty)):
        want = MODEL.accounts(d0, d1)
        data, _, _ = ok(ACCOUNTS, raw=rng_q(d0, d1, "limit=100"), dates=(d0, d1),
                        page=(100, 0, len(want)))
        same(data, want, "accounts %s..%s" % (d0, d1))
        for item in data:
            assert list(item) == ACCOUNT_KEYS, item
    A = d.A
    full = MODEL.accounts(A, A)
    assert len(full) == 7
    for key in ACCOUNT_SORTS[:-1]:
        values = [i[key] for i in full]
        assert len(values) != len(set(values)), (key, values)  # ties exist (AC8, AC9)
    for key in ACCOUNT_SORTS:
        for order in ("asc", "desc"):
            data, _, _ = ok(ACCOUNTS, raw=rng_q(A, A, "sort=%s&order=%s" % (key, order)),
                            page=(20, 0, 7))
            same(data, MODEL.accounts(A, A, key, order), "sort=%s order=%s" % (key, order))
    for extra in ("", "sort=&order=", "sort=%20total_cost%20&order=%09desc", "sort=total_cost"):
        same(ok(ACCOUNTS, raw=rng_q(A, A, extra), page=(20, 0, 7))[0], full, extra)
    same(ok(ACCOUNTS, raw=rng_q(A, A, "sort=%20messages_sent&order=asc%0A"), page=(20, 0, 7))[0],
         MODEL.accounts(A, A, "messages_sent", "asc"), "trimmed")
    for s in ("total_messages", "Total_cost", "cost", "messages_delivered", "operator_id"):
        err(ACCOUNTS, 400, MSG_ACCT_SORT, raw=rng_q(A, A, "sort=" + s))
    for o in ("DESC", "ascending", "1"):
        err(ACCOUNTS, 400, MSG_ORDER, raw=rng_q(A, A, "order=" + o))
    pages = []
    for off in (0, 2, 4, 6):
        pages += ok(ACCOUNTS, raw=rng_q(A, A, "limit=2&offset=%d" % off), page=(2, off, 7))[0]
    same(pages, full, "pages of 2")
    for extra, lim, off in (("limit=0", 20, 0), ("limit=1000", 100, 0), ("offset=-1", 20, 0),
                            ("limit=%2B1&offset=%2B6", 1, 6), ("limit=x&offset=y", 20, 0),
                            ("offset=7", 20, 7), ("limit=+1", 20, 0)):
        same(ok(ACCOUNTS, raw=rng_q(A, A, extra), page=(lim, off, 7))[0], full[off:off + lim],
             extra)


def test_account_usage_windows_and_buckets():
    d = DAYS
    for d0, d1 in ((d.A, d.A), (d.B, d.A), (d.P2, d.M1)):
        for item in MODEL.accounts(d0, d1):
            aid = item["account_id"]
            for window in ("day", "month"):
                data, _, _ = ok(USAGE(aid), date_from=d0, date_to=d1, window=window)
                same(data, MODEL.usage(aid, window, d0, d1), "%s %s %s..%s" % (aid, window, d0, d1))
                assert list(data) == ["account_id", "totals", "series"], data
                same(data["totals"], without(item, "account_id"), "totals of " + aid)
                for s in data["series"]:
                    assert list(s) == ["bucket"] + ACCOUNT_KEYS[1:], s
                    assert DATE_RE.match(s["bucket"]), s
                    if window == "month":
                        assert s["bucket"].endswith("-01"), s
    # AC6 has days ms-2, ms-1, ms and ms+1: a month bucket counts only the days in the range.
    wide = MODEL.usage(AC[6], "month", d.P2, d.M1)
    narrow = MODEL.usage(AC[6], "month", d.P, d.M)
    assert [s["bucket"] for s in narrow["series"]] == [str(d.P.replace(day=1)), str(d.M)]
    assert narrow["series"] != wide["series"]
    data, _, _ = ok(USAGE(AC[6]), date_from=d.P, date_to=d.M, window="month")
    same(data, narrow, "AC6 months of ms-1..ms")
    assert [s["messages_sent"] for s in data["series"]] == [20, 20], data
    data, _, _ = ok(USAGE(AC[6]), date_from=d.P2, date_to=d.M1, window="month")
    same(data, wide, "AC6 months of ms-2..ms+1")
    assert [s["messages_sent"] for s in data["series"]] == [21, 22], data
    data, _, _ = ok(USAGE(AC[6]), date_from=d.P2, date_to=d.M1, window="day")
    assert [s["bucket"] for s in data["series"]] == [str(x) for x in (d.P2, d.P, d.M, d.M1)], data
    # Window spellings.
    day = MODEL.usage(AC[6], "day", d.P, d.M)
    month = MODEL.usage(AC[6], "month", d.P, d.M)
    for spelled, want in (("", day), ("%09", day), ("DAY", day), ("%20Day%20", day),
                          ("month", month), ("MONTH", month), ("%20Month%0A", month)):
        same(ok(USAGE(AC[6]), raw=rng_q(d.P, d.M, "window=" + spelled), dates=(d.P, d.M))[0], want,
             "window=" + spelled)
    same(ok(USAGE(AC[6]), raw=rng_q(d.P, d.M), dates=(d.P, d.M))[0], day, "no window")
    for w in ("hour", "week", "months", "year", "m", "%FF"):
        err(USAGE(AC[6]), 400, MSG_ACCT_WINDOW, raw=rng_q(d.P, d.M, "window=" + w))


def test_account_usage_ids():
    A = DAYS.A
    want = MODEL.usage(AC[2], "day", A, A)
    for spelled in (AC[2].upper(), AC[2]):
        data, _, _ = ok(USAGE(spelled), date_from=A, date_to=A)
        same(data, want, spelled)
    for bad in ("not-a-uuid", AC[1][:-1], AC[1][:-1] + "z", UNKNOWN_UUID, O[1]):
        err(USAGE(bad), 404, "account was not found", date_from=A, date_to=A)
    data, _, _ = ok(USAGE(AC[6]), date_from=A, date_to=A, window="month")
    same(data, {"account_id": AC[6], "totals": {
        "messages_sent": 0, "messages_delivered": 0, "messages_failed": 0, "delivery_rate": None,
        "total_cost": "0.000000", "avg_cost_per_message": None, "total_segments": 0},
        "series": []}, "AC6 on day A")


def test_nul_in_sort_order_window_is_not_blank():
    """API.md §2.2/§2.3: U+0000 is not whitespace, so `%00` is neither blank (no default) nor,
    followed or preceded by anything, one of the words: 400 under each parameter's own rule."""
    A = DAYS.A
    for path, name, values, msg in (
            (OPERATORS, "sort", ("%00", "total_messages%00", "peak_tps%00x"), MSG_OP_SORT),
            (OPERATORS, "order", ("%00", "asc%00"), MSG_ORDER),
            (ACCOUNTS, "sort", ("%00", "total_cost%00"), MSG_ACCT_SORT),
            (ACCOUNTS, "order", ("%00", "desc%00"), MSG_ORDER),
            (METRICS(O[1]), "window", ("%00", "hour%00", "%00day"), MSG_OP_WINDOW),
            (USAGE(AC[1]), "window", ("%00", "month%00"), MSG_ACCT_WINDOW)):
        for v in values:
            err(path, 400, msg, raw=rng_q(A, A, "%s=%s" % (name, v)))


# ---- dates, routing, HEAD ------------------------------------------------------------------------

def read_routes():
    return (SUMMARY, OPERATORS, METRICS(O[1]), ACCOUNTS, USAGE(AC[1]))


def test_date_validation_on_every_route():
    t = DAYS.today
    day = datetime.timedelta(days=1)
    cases = (("date_to=2026-13-01", MSG_BAD_TO), ("date_to=x&date_from=y", MSG_BAD_TO),
             ("date_to=%202026-01-01", MSG_BAD_TO), ("date_to=2026-1-01", MSG_BAD_TO),
             ("date_to=2026-01-01T00:00:00Z", MSG_BAD_TO), ("date_to=0000-01-01", MSG_BAD_TO),
             ("date_to=2026-01-01%00", MSG_BAD_TO), ("date_to=%00", MSG_BAD_TO),
             ("date_from=2026-02-30", MSG_BAD_FROM), ("date_from=2026-02-29", MSG_BAD_FROM),
             ("date_from=2026-02-01%20", MSG_BAD_FROM), ("date_from=20260201", MSG_BAD_FROM),
             ("date_from=2026-02-02&date_to=2026-02-01", MSG_FROM_AFTER_TO),
             (rng_q(t - MAX_DAYS * day, t), MSG_SPAN),
             (rng_q(t - 1000 * day, t - 500 * day), MSG_SPAN))
    for path in read_routes():
        for q, msg in cases:
            err(path, 400, msg, raw=q)
        longest = t - (MAX_DAYS - 1) * day
        ok(path, raw=rng_q(longest, t), page=page_for(path, longest, t))
        leap = datetime.date(2024, 2, 29)
        ok(path, raw=rng_q(leap, leap), page=page_for(path, leap, leap))


def test_head_and_405_on_every_route():
    q = rng_q(DAYS.A, DAYS.A)
    paths = [p + "?" + q for p in read_routes()] + [
        OPERATORS + "?" + q + "&sort=bogus",                 # 400
        METRICS(O[1]) + "?" + q + "&window=week",            # 400
        METRICS(UNKNOWN_UUID) + "?" + q,                     # 404
        USAGE("nope") + "?" + q,                             # 404
        SUMMARY + "?date_to=bad"]                            # 400
    for path in paths:
        gstatus, ghdrs, gbody = SVC.request("GET", path)
        status, hdrs, body = SVC.request("HEAD", path)
        assert (status, body) == (gstatus, b""), (path, status, gstatus, body)
        assert hdrs.get("content-type") == ghdrs.get("content-type") == "application/json", hdrs
        assert gbody, path
    for path in list(read_routes()) + [METRICS("not-a-uuid"), USAGE(UNKNOWN_UUID)]:
        for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
            status, hdrs, body = SVC.request(method, path + "?" + q, body=b"{}")
            assert (status, hdrs.get("allow"), body) == (405, "GET, HEAD", METHOD_NOT_ALLOWED), \
                (method, path, status, hdrs, body)
            assert hdrs.get("content-type") == "application/json"


def test_conditional_reads():
    """ETag of an SMS answer (README): W/"<16 hex>" over the body without as_of, so it is the
    same for every computation of the same answer (SMS_CACHE_TTL 0 here: every read recomputes),
    differs between answers, and If-None-Match gets 304; errors carry none."""
    q = rng_q(DAYS.A, DAYS.A)
    tags = set()
    for path in read_routes():
        r1, r2 = fetch(path, raw=q), fetch(path, raw=q)
        assert (r1.status, r2.status) == (200, 200), path
        tag = r1.headers["etag"]
        assert re.fullmatch(r'W/"[0-9a-f]{16}"', tag) and r2.headers["etag"] == tag, (path, r1, r2)
        assert r1.headers["cache-control"] == "private, no-cache", r1.headers
        tags.add(tag)
        for inm in (tag, tag[2:], '"x", ' + tag, "*"):
            for method in ("GET", "HEAD"):
                status, hdrs, body = SVC.request(method, path + "?" + q,
                                                 headers={"If-None-Match": inm})
                assert (status, body, hdrs["etag"]) == (304, b"", tag), (path, inm, status)
                assert "content-type" not in hdrs, hdrs
        status, hdrs, _ = SVC.request("GET", path + "?" + q, headers={"If-None-Match": 'W/"0"'})
        assert status == 200 and hdrs["etag"] == tag
    assert len(tags) == len(read_routes()), tags  # different answers, different tags
    other = fetch(SUMMARY, raw=rng_q(DAYS.A - datetime.timedelta(days=1), DAYS.A))
    assert other.status == 200 and other.headers["etag"] not in tags
    for path in (OPERATORS + "?" + q + "&sort=bogus", METRICS(UNKNOWN_UUID) + "?" + q):
        status, hdrs, _ = SVC.request("GET", path, headers={"If-None-Match": "*"})
        assert status in (400, 404) and "etag" not in hdrs, (path, status, hdrs)


def test_unknown_sub_paths_are_404():
    for path in ("/api/v1/sms", "/api/v1/sms/", "/api/v1/sms/summary/", "/api/v1/sms/Summary",
                 "/api/v1/sms/summary/x", "/api/v1/sms/operators/", "/api/v1/sms/operators/" + O[1],
                 "/api/v1/sms/operators/%s/" % O[1], METRICS(O[1]) + "/",
                 METRICS(O[1]) + "/x", "/api/v1/sms/operators//metrics",
                 "/api/v1/sms/operators/%s/usage" % O[1], "/api/v1/sms/operators/%s/Metrics" % O[1],
                 "/api/v1/sms/accounts/", "/api/v1/sms/accounts/" + AC[1],
                 "/api/v1/sms/accounts/%s/metrics" % AC[1], USAGE(AC[1]) + "/",
                 "/api/v1/sms/accounts//usage", "/api/v1/sms/operator/%s/metrics" % O[1],
                 "/api/v1/sms/nothing", "//api/v1/sms/summary", "/api/v1/SMS/summary",
                 "/api/v1/sms/operators/%s/metrics/%s/usage" % (O[1], AC[1])):
        for method in ("GET", "POST"):
            status, hdrs, body = SVC.request(method, path)
            assert (status, body) == (404, ROUTE_NOT_FOUND), (method, path, status, body)
        status, _, body = SVC.request("HEAD", path)
        assert (status, body) == (404, b""), (path, status, body)


# ---- percentiles ---------------------------------------------------------------------------------

def test_percentiles_one_hour_and_one_day():
    A, B = DAYS.A, DAYS.B
    # One hour: the 61 samples of O7 in hour 10 of day A.
    data, _, _ = ok(METRICS(O[7]), date_from=A, date_to=A, window="hour")
    same(data, MODEL.metrics(O[7], "hour", A, A), "O7 hours of day A")
    (hour,) = data["series"]
    assert hour["bucket"] == api_ts(at(A, 10))
    samples = MODEL.samples("OPERATOR", O[7], A, A, at(A, 10))
    assert len(samples) == 61 and len(set(samples)) > 30 and 0 in samples
    check_pcts(hour, samples, "O7 hour")
    # One day: O7 over eight hours of day B; the day equals one sketch of all of them.
    data, _, _ = ok(METRICS(O[7]), date_from=B, date_to=B, window="hour")
    assert len(data["series"]) == 8
    for s in data["series"]:
        h = datetime.datetime.fromtimestamp(parse_api_ts(s["bucket"]), UTC)
        check_pcts(s, MODEL.samples("OPERATOR", O[7], B, B, h), "O7 " + s["bucket"])
    data, _, _ = ok(METRICS(O[7]), date_from=B, date_to=B, window="day")
    samples = MODEL.samples("OPERATOR", O[7], B, B)
    assert len(samples) == 38
    check_pcts(data["series"][0], samples, "O7 day B")
    check_pcts(data["totals"], samples, "O7 totals day B")
    # The platform over day A (70 samples of six operators) and O7 over both days.
    data, _, _ = ok(SUMMARY, date_from=A, date_to=A)
    samples = MODEL.samples("PLATFORM", "platform", A, A)
    assert len(samples) == 70
    check_pcts(data, samples, "summary day A")
    item = [i for i in ok(OPERATORS, raw=rng_q(B, A), page=(20, 0, 8))[0]
            if i["operator_id"] == O[7]][0]
    check_pcts(item, MODEL.samples("OPERATOR", O[7], B, A), "O7 days B..A")


def test_percentiles_across_month_partitions():
    P, M = DAYS.P, DAYS.M
    boundary = at(M, 0)
    hours = [h for h, g in MODEL.groups("PLATFORM", "platform", P, M) if g.samples]
    assert [h for h in hours if h < boundary] and [h for h in hours if h >= boundary], hours
    assert all(boundary - h <= datetime.timedelta(hours=2) and h - boundary <
               datetime.timedelta(hours=2) for h in hours), hours
    data, _, _ = ok(SUMMARY, date_from=P, date_to=M)
    samples = MODEL.samples("PLATFORM", "platform", P, M)
    assert len(samples) == 36
    check_pcts(data, samples, "summary across months")
    data, _, _ = ok(SUMMARY, date_from=DAYS.P2, date_to=DAYS.M1)
    check_pcts(data, MODEL.samples("PLATFORM", "platform", DAYS.P2, DAYS.M1), "ms-2..ms+1")
    data, _, _ = ok(METRICS(O[8]), date_from=P, date_to=M, window="hour")
    same(data, MODEL.metrics(O[8], "hour", P, M), "O8 hours")
    assert [s["bucket"] for s in data["series"]] == \
        [api_ts(at(P, 22)), api_ts(at(P, 23)), api_ts(at(M, 0)), api_ts(at(M, 1))]
    for s in data["series"]:
        h = datetime.datetime.fromtimestamp(parse_api_ts(s["bucket"]), UTC)
        check_pcts(s, MODEL.samples("OPERATOR", O[8], P, M, h), "O8 " + s["bucket"])
    check_pcts(data["totals"], MODEL.samples("OPERATOR", O[8], P, M), "O8 across months")
    assert data["series"][2]["peak_tps"] == 3 and data["totals"]["peak_tps"] == 3, data
    data, _, _ = ok(METRICS(O[8]), date_from=P, date_to=M, window="day")
    same(data, MODEL.metrics(O[8], "day", P, M), "O8 days")
    for s, day in zip(data["series"], (P, M)):
        check_pcts(s, MODEL.samples("OPERATOR", O[8], day, day), "O8 %s" % day)


def test_null_percentiles_without_samples():
    M1, A = DAYS.M1, DAYS.A
    data, _, _ = ok(SUMMARY, date_from=M1, date_to=M1)
    same(data, MODEL.summary(M1, M1), "ms+1")
    assert data["total_messages"] == 3 and data["failed_messages"] == 1
    assert [data[k] for k in ("avg_latency_ms", "p50_latency_ms", "p95_latency_ms",
                              "p99_latency_ms")] == [None] * 4, data
    assert data["delivery_rate"] == Num("0.000000") and data["error_rate"] == Num("0.333333")
    items = {i["operator_id"]: i for i in ok(OPERATORS, raw=rng_q(A, A), page=(20, 0, 8))[0]}
    for sid in (O[4], O[5]):
        assert [items[sid][k] for k in ("avg_latency_ms", "p50_latency_ms", "p95_latency_ms",
                                        "p99_latency_ms")] == [None] * 4, items[sid]
    data, _, _ = ok(METRICS(O[4]), date_from=A, date_to=A, window="hour")
    assert data["series"] and all(s["p50_latency_ms"] is None for s in data["series"]), data


# ---- freshness and caching -----------------------------------------------------------------------

def test_freshness_meta():
    assert MODEL.through_text() == "%sT14:59:59.25Z" % DAYS.A  # trailing zeros dropped
    A = DAYS.A
    for path in read_routes():  # ok() checks ingested_through and as_of on every answer
        ok(path, raw=rng_q(A, A), page=page_for(path, A, A))
        ok(path, raw=rng_q(DAYS.empty, DAYS.empty), page=page_for(path, DAYS.empty, DAYS.empty))
    # With SMS_CACHE_TTL=0 every answer is computed for its request.
    seen = []
    for _ in range(5):
        _, meta, r = ok(SUMMARY, date_from=A, date_to=A)
        seen.append(parse_api_ts(meta["freshness"]["as_of"]))
        assert r.t0 - 0.5 <= seen[-1] <= r.t1 + 0.5
    assert all(a < b for a, b in zip(seen, seen[1:])), seen


def test_cache_ttl_visibility():
    svc = adtest.Service(DB, SMS_CACHE_TTL="%ds" % CACHE_TTL_S,
                         MAX_REPORT_RANGE_DAYS=str(MAX_DAYS)).start()
    try:
        now = datetime.datetime.now(UTC)
        when = (now - datetime.timedelta(hours=3)).replace(microsecond=123000)
        x = when.date()
        assert x > DAYS.A  # no scripted data on that day
        ttl = CACHE_TTL_S

        def read(through=False):
            return ok(SUMMARY, svc=svc, ttl=ttl, through=through, date_from=x, date_to=x)

        before = MODEL.summary(x, x)
        data, meta1, r1 = read(None)
        same(data, before, "before the event")
        _, meta2, r2 = read(None)
        if meta2["freshness"]["as_of"] == meta1["freshness"]["as_of"]:
            assert r2.body == r1.body  # a cached answer is the same answer
        assert r2.headers["etag"] == r1.headers["etag"]  # recomputed or not: the same answer
        assert r1.headers["cache-control"] == "private, max-age=%d" % CACHE_TTL_S
        ok(ACCOUNTS, svc=svc, ttl=ttl, raw=rng_q(x, x), page=page_for(ACCOUNTS, x, x))

        e = {"subject": "billing.events", "event_id": "cache-1",
             "event_type": "billing.message.charged", "occurred_at": ts(when),
             "message_id": "cache-m1", "account_id": AC[1], "operator_id": O[1], "segments": 3,
             "cost": "0.42"}
        rec = ("C", "cache-m1", O[1], AC[1], when, Decimal("0.42"), 3)
        res = post_events(SVC, [e])
        committed = time.time()
        assert res["accepted"] == 1, res
        assert MODEL.apply(e, rec) == "accepted"
        after = MODEL.summary(x, x)
        assert after["total_messages"] == before["total_messages"] + 1

        # Visible in every read within SMS_CACHE_TTL + 1 s of the commit (+0.5 s for the polls).
        def fresh():
            r = fetch(SUMMARY, svc=svc, date_from=x, date_to=x)
            a = fetch(ACCOUNTS, svc=svc, date_from=x, date_to=x)
            if (r.status, a.status) != (200, 200):
                return False
            body, accts = r.json(), a.json()
            return (mismatch(body["data"], after) is None and
                    body["meta"]["freshness"]["ingested_through"] == api_ts(when) and
                    mismatch(accts["data"], MODEL.accounts(x, x)) is None)

        assert adtest.wait_until(fresh, committed + ttl + 1.5 - time.time(), 0.05), \
            "new event not visible within %ss" % (ttl + 1)
        # Once TTL + 1 s have passed, every read shows it, whichever worker answers.
        time.sleep(max(0.0, committed + ttl + 1 - time.time()))
        for _ in range(6):
            data, _, _ = read(api_ts(when))
            same(data, after, "after the event")
            data, _, _ = ok(ACCOUNTS, svc=svc, ttl=ttl, raw=rng_q(x, x),
                            page=page_for(ACCOUNTS, x, x))
            same(data, MODEL.accounts(x, x), "accounts after the event")
        assert MODEL.through_text() == api_ts(when)
        assert fetch(SUMMARY, svc=svc, date_from=x, date_to=x).headers["etag"] != \
            r1.headers["etag"]  # a changed answer has a new tag
        # The uncached service sees it at once.
        data, _, _ = ok(SUMMARY, date_from=x, date_to=x)
        same(data, after, "uncached service")
    finally:
        svc.stop()


def test_concurrent_misses_share_one_statement():
    """With the cache on, requests that miss the same key while its statement runs wait for
    that statement (one per worker) instead of each running their own: the answers of 24
    requests sent while the statement is blocked carry at most one as_of per worker."""
    svc = adtest.Service(DB, SMS_CACHE_TTL="60s", HTTP_WORKERS="2",
                         MAX_REPORT_RANGE_DAYS=str(MAX_DAYS)).start()
    hold = subprocess.Popen(["psql", DB.conninfo, "-X", "-q", "-At"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    results = []
    try:
        hold.stdin.write("BEGIN;\nLOCK TABLE anlyt.ingest_state IN ACCESS EXCLUSIVE MODE;\n"
                         "SELECT 'held';\n")
        hold.stdin.flush()
        while hold.stdout.readline().strip() != "held":
            pass
        day = DAYS.A.isoformat()

        def one():
            results.append(fetch(SUMMARY, svc=svc, date_from=day, date_to=day))

        threads = [threading.Thread(target=one) for _ in range(24)]
        for t in threads:
            t.start()
        waiting = lambda: int(DB.sql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type"
                                     " = 'Lock' AND application_name LIKE '%:http:%'")[0][0])
        assert adtest.wait_until(lambda: waiting() >= 1, 10)
        time.sleep(1.0)  # let every request reach its worker
        assert waiting() <= 2, waiting()
    finally:
        hold.stdin.write("COMMIT;\n")
        hold.stdin.close()
        hold.wait(10)
    try:
        for t in threads:
            t.join(20)
        assert len(results) == 24 and all(r.status == 200 for r in results), \
            [r.status for r in results]
        bodies = [r.json() for r in results]
        assert len({b["meta"]["freshness"]["as_of"] for b in bodies}) <= 2, \
            sorted({b["meta"]["freshness"]["as_of"] for b in bodies})
        assert all(b["data"] == bodies[0]["data"] for b in bodies)
        same(bodies[0]["data"], MODEL.summary(DAYS.A, DAYS.A), "coalesced answer")
    finally:
        svc.stop()


def main():
    global DB, SVC
    adtest.require_env()
    adtest.redis_cli(adtest.redis_db_url(adtest.default_redis_db()), "FLUSHDB")
    DB = adtest.ScratchDatabase(seed=False)
    try:
        SVC = adtest.Service(DB, SMS_CACHE_TTL="0", MAX_REPORT_RANGE_DAYS=str(MAX_DAYS)).start()
        load_dataset()
        only = os.environ.get("SMS_TEST_ONLY")  # one test by name, when debugging
        tests = [test_summary_values_and_shape,
                 test_default_range_is_the_30_days_ending_today,
                 test_pending_is_clamped_after_summing,
                 test_rounding_and_number_text,
                 test_operators_list_items,
                 test_operators_sorting,
                 test_operators_invalid_sort_and_order,
                 test_operators_paging_and_clamping,
                 test_operator_metrics_windows_and_series,
                 test_operator_metrics_window_validation,
                 test_operator_metrics_ids,
                 test_accounts_list_sorting_and_paging,
                 test_account_usage_windows_and_buckets,
                 test_account_usage_ids,
                 test_nul_in_sort_order_window_is_not_blank,
                 test_date_validation_on_every_route,
                 test_head_and_405_on_every_route,
                 test_conditional_reads,
                 test_unknown_sub_paths_are_404,
                 test_percentiles_one_hour_and_one_day,
                 test_percentiles_across_month_partitions,
                 test_null_percentiles_without_samples,
                 test_freshness_meta,
                 test_cache_ttl_visibility,
                 test_concurrent_misses_share_one_statement]
        selected = [t for t in tests if not only or t.__name__ == only]
        assert selected, "SMS_TEST_ONLY=%s names no test" % only
        adtest.run(selected)
    finally:
        if SVC is not None:
            SVC.stop()
        DB.drop()


if __name__ == "__main__":
    main()
