/*
 * common/runs.h: the store of recompute runs and their audit trail (tables recompute_runs and
 * audit_entries, DATA.md §3, §6.7, §6.12): every statement any process sends about them, in
 * one place, for both kinds of caller:
 *  - the HTTP workers send them without blocking through pgpool (server/handlers/
 *    recomputations.c, audit_entries.c; rows rendered by server/recompute_json.h);
 *  - the recompute workers, the supervisor and the scheduler send them blocking through
 *    pgsession (worker/runstore.c), and so does the seed (seed/seed.c).
 * Linked into every process; constant data only. A final run transition is always one statement
 * that writes its audit row (or none when the run was not in the expected state).
 *
 * Each statement lists its parameters ($n, all text) and the columns it returns.
 */
#ifndef ANALYTICSD_RUNS_H
#define ANALYTICSD_RUNS_H

/* §6.11 messages. */
#define RUNS_ERR_UNSUPPORTED "unsupported report slug for recompute"
#define RUNS_ERR_TIMEOUT     "recompute timed out"
#define RUNS_ERR_REBUILD     "snapshot rebuild failed"
#define RUNS_ERR_CRASHED     "recompute worker crashed"

/* The RecomputeRun columns (from recompute_runs AS r) that recompute_json_run reads, in order;
 * and the AuditEntry columns (from audit_entries AS a) of recompute_json_audit. */
#define RUNS_JSON_COLUMNS                                                                          \
    "r.id::text, r.report_slug, r.window_name, r.date_from::text, r.date_to::text, "               \
    "r.requested_by, r.status, r.attempts, r.requested_at, r.started_at, r.finished_at, "          \
    "r.error_message, r.summary::text"
#define RUNS_JSON_NCOLS 13
#define RUNS_AUDIT_JSON_COLUMNS                                                                    \
    "a.id, a.actor, a.action, a.resource_type, a.resource_id, a.metadata::text, a.created_at"
#define RUNS_AUDIT_JSON_NCOLS 7

/* ---- the management API (HTTP workers) ------------------------------------------------------ */

/* GET /recomputations: $1 status or NULL, $2 report slug or NULL, $3 limit, $4 offset. Column
 * 0 the total, then RUNS_JSON_COLUMNS (NULL on the one row of an empty page). */
extern const char runs_list_sql[];
/* GET /recomputations/{id}: $1 uuid; RUNS_JSON_COLUMNS or no row. */
extern const char runs_get_sql[];
/* GET /audit-entries: $1 action or NULL, $2 actor or NULL, $3 limit, $4 offset. Column 0 the
 * total, then RUNS_AUDIT_JSON_COLUMNS. */
extern const char runs_audit_list_sql[];

/* The trigger's transaction (API.md §4.5 steps 9-11), in this order after BEGIN: */
/* the advisory lock that serialises triggers (so the pending count is exact); no parameters */
extern const char runs_trigger_lock_sql[];
/* $1 id, $2 slug, $3 window, $4 date_from, $5 date_to, $6 requested_by; RUNS_JSON_COLUMNS of
 * the new pending run, or no row when the scope already has a pending or running run */
extern const char runs_insert_sql[];
/* one row, one column: the number of pending runs */
extern const char runs_pending_count_sql[];
/* the recompute.triggered entry: $1 actor, $2 run id, $3 date_from, $4 date_to, $5 slug,
 * $6 window, $7 request id or NULL */
extern const char runs_audit_triggered_sql[];

/*
 * The stale-lock rule (DATA.md §6.8), shared by the trigger and the supervisor's sweep: a scope
 * lock is stale when the run it names is neither pending nor running. $1 the lock's value as
 * text (anything: a value that is not a run id names no run); a row when the run is active.
 * Goes through the primary key.
 */
extern const char runs_active_sql[];

/* ---- the recompute workers and the supervisor (blocking) ------------------------------------ */

/* The columns of runs_claim_sql and runs_orphan_sql, in runstore_read order: id, slug, window,
 * date_from, date_to (YYYY-MM-DD), attempts. */
#define RUNS_WORKER_COLUMNS                                                                        \
    "id::text, report_slug, window_name, to_char(date_from, 'YYYY-MM-DD'), "                       \
    "to_char(date_to, 'YYYY-MM-DD'), attempts"

/* The session-level ownership lock of a run: $1 id; one boolean / void row. */
extern const char runs_lock_sql[];
extern const char runs_unlock_sql[];
/* pending -> running: $1 id; RUNS_WORKER_COLUMNS or no row */
extern const char runs_claim_sql[];
/* running -> failed with its recompute.failed entry: $1 id, $2 message; a row when done */
extern const char runs_fail_sql[];
/* running -> completed with its recompute.completed entry: $1 id, $2 summary JSON,
 * $3 bucket_count, $4 rows_deleted, $5 rows_inserted; a row when done */
extern const char runs_complete_sql[];
/* running -> pending (shutdown interrupted the run, the attempt is given back): $1 id */
extern const char runs_interrupted_sql[];
/* An orphan (its worker died): running -> pending while attempts < $2, else failed with
 * RUNS_ERR_CRASHED and its audit entry; $1 id; RUNS_WORKER_COLUMNS and the new status */
extern const char runs_orphan_sql[];
/* The oldest pending run ids: $1 limit */
extern const char runs_pending_sql[];

/* ---- the seed (DATA.md §5 step 6) ------------------------------------------------------------ */

/* A running seed run: $1 slug, $2 window, $3 date_from, $4 date_to; its id */
extern const char runs_seed_insert_sql[];
/* running -> completed, no audit entry (§5): $1 id, $2 summary JSON */
extern const char runs_seed_complete_sql[];

#endif
