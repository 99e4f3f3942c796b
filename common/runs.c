/*
 * common/runs.c: the statements of the runs and audit store (see runs.h). Constant data,
 * linked into every process.
 */
#include "common/runs.h"

/* ---- the management API --------------------------------------------------------------------- */

#define RUN_FILTER                                                                                 \
    "($1::text IS NULL OR r.status = $1) AND ($2::text IS NULL OR r.report_slug = $2)"

const char runs_list_sql[] =
    "SELECT t.total, p.* FROM (SELECT count(*) FROM recompute_runs r WHERE " RUN_FILTER
    ") t(total) LEFT JOIN LATERAL (SELECT " RUNS_JSON_COLUMNS
    ", r.requested_at AS sort_at, r.id AS sort_id FROM recompute_runs r WHERE " RUN_FILTER
    " ORDER BY r.requested_at DESC, r.id DESC LIMIT $3::bigint OFFSET $4::bigint) p ON true "
    "ORDER BY p.sort_at DESC, p.sort_id DESC";

const char runs_get_sql[] =
    "SELECT " RUNS_JSON_COLUMNS " FROM recompute_runs r WHERE r.id = $1::uuid";

#define AUDIT_FILTER "($1::text IS NULL OR a.action = $1) AND ($2::text IS NULL OR a.actor = $2)"

const char runs_audit_list_sql[] =
    "SELECT t.total, p.* FROM (SELECT count(*) FROM audit_entries a WHERE " AUDIT_FILTER
    ") t(total) LEFT JOIN LATERAL (SELECT " RUNS_AUDIT_JSON_COLUMNS
    ", a.created_at AS sort_at, a.id AS sort_id FROM audit_entries a WHERE " AUDIT_FILTER
    " ORDER BY a.created_at DESC, a.id DESC LIMIT $3::bigint OFFSET $4::bigint) p ON true "
    "ORDER BY p.sort_at DESC, p.sort_id DESC";

const char runs_trigger_lock_sql[] =
    "SELECT pg_advisory_xact_lock(hashtextextended('recompute:trigger', 0))";

const char runs_insert_sql[] =
    "INSERT INTO recompute_runs AS r (id, report_slug, window_name, date_from, date_to, "
    "requested_by, status, requested_at, attempts, summary) "
    "VALUES ($1::uuid, $2, $3, $4::date, $5::date, $6, 'pending', now(), 0, '{}'::jsonb) "
    "ON CONFLICT (report_slug, window_name, date_from, date_to) "
    "WHERE status IN ('pending', 'running') DO NOTHING RETURNING " RUNS_JSON_COLUMNS;

const char runs_pending_count_sql[] =
    "SELECT count(*) FROM recompute_runs WHERE status = 'pending'";

const char runs_audit_triggered_sql[] =
    "INSERT INTO audit_entries (actor, action, resource_type, resource_id, metadata, created_at) "
    "VALUES ($1, 'recompute.triggered', 'recompute_run', $2, jsonb_build_object("
    "'date_from', $3::text, 'date_to', $4::text, 'report_slug', $5::text, "
    "'request_id', $7::text, 'requested_via', 'http', 'window', $6::text), now())";

/* A value that is not a canonical lower-case UUID (as the trigger writes them) names no run;
 * the CASE keeps the cast from failing on it, and the comparison stays on the primary key. */
const char runs_active_sql[] =
    "SELECT 1 FROM recompute_runs WHERE id = CASE WHEN $1::text ~"
    " '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN $1::uuid END"
    " AND status IN ('pending', 'running')";

/* ---- the recompute workers and the supervisor ----------------------------------------------- */

const char runs_lock_sql[] =
    "SELECT pg_try_advisory_lock(hashtextextended('recompute:run:' || $1, 0))";
const char runs_unlock_sql[] =
    "SELECT pg_advisory_unlock(hashtextextended('recompute:run:' || $1, 0))";

const char runs_claim_sql[] =
    "UPDATE recompute_runs SET status = 'running', started_at = now(), attempts = attempts + 1"
    " WHERE id = $1::uuid AND status = 'pending' RETURNING " RUNS_WORKER_COLUMNS;

const char runs_fail_sql[] =
    "WITH u AS (UPDATE recompute_runs SET status = 'failed', finished_at = now(),"
    " error_message = $2 WHERE id = $1::uuid AND status = 'running'"
    " RETURNING id, report_slug, window_name)"
    " INSERT INTO audit_entries (actor, action, resource_type, resource_id, metadata)"
    " SELECT 'recompute-worker', 'recompute.failed', 'recompute_run', id::text,"
    " jsonb_build_object('error', $2::text, 'report_slug', report_slug, 'window', window_name)"
    " FROM u RETURNING id";

const char runs_complete_sql[] =
    "WITH u AS (UPDATE recompute_runs SET status = 'completed', finished_at = now(),"
    " error_message = NULL, summary = $2::jsonb WHERE id = $1::uuid AND status = 'running'"
    " RETURNING id, report_slug, window_name)"
    " INSERT INTO audit_entries (actor, action, resource_type, resource_id, metadata)"
    " SELECT 'recompute-worker', 'recompute.completed', 'recompute_run', id::text,"
    " jsonb_build_object('bucket_count', $3::bigint, 'report_slug', report_slug,"
    " 'rows_deleted', $4::bigint, 'rows_inserted', $5::bigint, 'window', window_name)"
    " FROM u RETURNING id";

const char runs_interrupted_sql[] =
    "UPDATE recompute_runs SET status = 'pending', started_at = NULL,"
    " attempts = GREATEST(attempts - 1, 0) WHERE id = $1::uuid AND status = 'running'"
    " RETURNING id";

/* In UPDATE … SET, `attempts` is the value before the update. */
const char runs_orphan_sql[] =
    "WITH u AS (UPDATE recompute_runs SET"
    " status = CASE WHEN attempts < $2::int THEN 'pending' ELSE 'failed' END,"
    " started_at = CASE WHEN attempts < $2::int THEN NULL ELSE started_at END,"
    " finished_at = CASE WHEN attempts < $2::int THEN finished_at ELSE now() END,"
    " error_message = CASE WHEN attempts < $2::int THEN error_message"
    " ELSE '" RUNS_ERR_CRASHED "' END"
    " WHERE id = $1::uuid AND status = 'running' RETURNING *),"
    " a AS (INSERT INTO audit_entries (actor, action, resource_type, resource_id, metadata)"
    " SELECT 'recompute-worker', 'recompute.failed', 'recompute_run', id::text,"
    " jsonb_build_object('error', '" RUNS_ERR_CRASHED "', 'report_slug', report_slug,"
    " 'window', window_name) FROM u WHERE status = 'failed' RETURNING 1)"
    " SELECT " RUNS_WORKER_COLUMNS ", status FROM u";

const char runs_pending_sql[] = "SELECT id::text FROM recompute_runs WHERE status = 'pending'"
                                " ORDER BY requested_at, id LIMIT $1::int";

/* ---- the seed -------------------------------------------------------------------------------- */

const char runs_seed_insert_sql[] =
    "INSERT INTO recompute_runs (id, report_slug, window_name, date_from, date_to, requested_by,"
    " status, requested_at, started_at, attempts) "
    "VALUES (gen_random_uuid(), $1, $2, $3::date, $4::date, 'seed', 'running', now(), now(), 1)"
    " RETURNING id::text";

const char runs_seed_complete_sql[] =
    "UPDATE recompute_runs SET status = 'completed', finished_at = clock_timestamp(),"
    " error_message = NULL, summary = $2::jsonb WHERE id = $1::uuid";
