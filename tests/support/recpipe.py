"""tests/support/recpipe.py: helpers for the recompute pipeline tests (test_recompute_pipeline.py).

Runs are created directly in SQL exactly as the trigger would (a pending row plus its
recompute.triggered audit entry); the service's dispatch refill picks them up. Also: a background
psql session holding the rebuild hook lock of DATA.md §8.5, snapshot fingerprints, and lookups of
recompute worker pids through pg_stat_activity.
"""

import json
import os
import signal
import subprocess
import time
import uuid

import adtest

REPORTS = ("volume-by-period", "status-counts", "top-entities", "amount-by-source")


def reset(db, svc_redis_url=None):
    """DATA.md §8.5 reset: Redis db, audit entries, non-seed runs."""
    if svc_redis_url:
        adtest.redis_cli(svc_redis_url, "FLUSHDB")
    db.sql("DELETE FROM audit_entries")
    db.sql("DELETE FROM recompute_runs WHERE requested_by <> 'seed'")


def today(db):
    return db.sql("SELECT to_char((now() AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD')")[0][0]


def day(db, offset):
    """today + offset days (UTC) as YYYY-MM-DD."""
    return db.sql("SELECT to_char((now() AT TIME ZONE 'UTC')::date + %d, 'YYYY-MM-DD')" % offset)[0][0]


def insert_run(db, slug, window, date_from, date_to, run_id=None, status="pending", attempts=0,
               requested_by="pipeline-test"):
    """Inserts a run as the trigger does (pending + recompute.triggered audit); returns its id."""
    run_id = run_id or str(uuid.uuid4())
    started = "now()" if status == "running" else "NULL"
    meta = json.dumps({"date_from": date_from, "date_to": date_to, "report_slug": slug,
                       "requested_via": "http", "window": window})
    db.sql("BEGIN; INSERT INTO recompute_runs (id, report_slug, window_name, date_from, date_to,"
           " requested_by, status, started_at, attempts) VALUES ('%s', '%s', '%s', '%s', '%s', '%s',"
           " '%s', %s, %d); INSERT INTO audit_entries (actor, action, resource_type, resource_id,"
           " metadata) VALUES ('%s', 'recompute.triggered', 'recompute_run', '%s', '%s'); COMMIT"
           % (run_id, slug, window, date_from, date_to, requested_by, status, started, attempts,
              requested_by, run_id, meta))
    return run_id


def run_row(db, run_id):
    rows = db.sql("SELECT status, attempts, coalesce(error_message, '<null>'), summary::text,"
                  " started_at IS NULL, finished_at IS NULL FROM recompute_runs WHERE id = '%s'"
                  % run_id)
    if not rows:
        return None
    st, attempts, err, summary, no_start, no_finish = rows[0]
    return {"status": st, "attempts": int(attempts), "error_message": err,
            "summary": json.loads(summary), "started_at_null": no_start == "t",
            "finished_at_null": no_finish == "t"}


def wait_run(db, run_id, pred, timeout, what=""):
    """Waits until pred(row) holds; returns the row or raises with the last row seen."""
    row = adtest.wait_until(lambda: (lambda r: r if r and pred(r) else None)(run_row(db, run_id)),
                            timeout, step=0.1)
    if not row:
        raise AssertionError("run %s: %s not reached within %ss; last row %s"
                             % (run_id, what, timeout, run_row(db, run_id)))
    return row


def wait_status(db, run_id, status, timeout, attempts=None):
    return wait_run(db, run_id, lambda r: r["status"] == status and
                    (attempts is None or r["attempts"] == attempts), timeout,
                    "status %s%s" % (status, "" if attempts is None else " attempts %d" % attempts))


def audit(db, run_id, action):
    """Audit entries of one run and action: list of (actor, metadata dict)."""
    rows = db.sql("SELECT actor, metadata::text FROM audit_entries WHERE resource_type ="
                  " 'recompute_run' AND resource_id = '%s' AND action = '%s' ORDER BY id"
                  % (run_id, action))
    return [(a, json.loads(m)) for a, m in rows]


def snapshot_fingerprint(db):
    """(md5 of every snapshot row's report-visible content, {(slug, window, bucket): (rows, sum)})."""
    digest = db.sql("SELECT md5(string_agg(concat_ws('|', report_slug, window_name, bucket_start,"
                    " dimension_key, dimension_value, metric_name, metric_value), ','"
                    " ORDER BY report_slug, window_name, bucket_start, dimension_key,"
                    " dimension_value, metric_name)), count(*) FROM metric_snapshots")[0]
    buckets = {(s, w, b): (int(n), int(v)) for s, w, b, n, v in db.sql(
        "SELECT report_slug, window_name, bucket_start::text, count(*), sum(metric_value)"
        " FROM metric_snapshots GROUP BY 1, 2, 3")}
    return tuple(digest), buckets


def fingerprint_diff(before, after):
    keys = sorted(set(before[1]) | set(after[1]))
    return [(k, before[1].get(k), after[1].get(k)) for k in keys if before[1].get(k) != after[1].get(k)]


def totals(db):
    """Sum of the snapshots per event-count report and window (25,000 each after the seed)."""
    return {(s, w): int(v) for s, w, v in db.sql(
        "SELECT report_slug, window_name, sum(metric_value) FROM metric_snapshots"
        " WHERE metric_name = 'event_count' GROUP BY 1, 2")}


def versions(redis_url):
    return {s: adtest.redis_cli(redis_url, "GET", "report:version:" + s) for s in REPORTS}


def lock_key(slug, window, date_from, date_to):
    return "recompute:lock:%s:%s:%s:%s" % (slug, window, date_from.replace("-", ""),
                                          date_to.replace("-", ""))


def recompute_backend_pids(db):
    """{os pid of the recompute worker: backend state} from pg_stat_activity (DATA.md §8.5)."""
    rows = db.sql("SELECT application_name, state FROM pg_stat_activity WHERE datname ="
                  " current_database() AND application_name LIKE 'pg-analytics-service:recompute:%'")
    return {int(a.rsplit(":", 1)[1]): s for a, s in rows}


def kill_worker_of_waiting_run(db, exclude=()):
    """SIGKILLs the recompute worker whose backend is active (waiting in the rebuild)."""
    def find():
        for pid, state in recompute_backend_pids(db).items():
            if state == "active" and pid not in exclude:
                return pid
        return None
    pid = adtest.wait_until(find, 10, step=0.05)
    if not pid:
        raise AssertionError("no active recompute backend: %s" % recompute_backend_pids(db))
    os.kill(pid, signal.SIGKILL)
    return pid


class HookLock:
    """Holds pg_advisory_lock(hashtextextended('recompute:<slug>:<window>', 0)) in a psql session."""

    def __init__(self, db, slug="top-entities", window="day"):
        self.key = "hashtextextended('recompute:%s:%s', 0)" % (slug, window)
        self.proc = subprocess.Popen(["psql", db.conninfo, "-X", "-q", "-At"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.proc.stdin.write("SELECT 'locked' FROM (SELECT pg_advisory_lock(%s)) s;\n" % self.key)
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if line.strip() != "locked":
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("hook lock not taken: %r" % line)

    def release(self):
        if self.proc is None:
            return
        try:
            self.proc.stdin.write("SELECT pg_advisory_unlock(%s);\n\\q\n" % self.key)
            self.proc.stdin.flush()
            self.proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self.proc = None
