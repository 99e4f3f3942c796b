-- 0003_durable_recompute.sql: run attempts, the active-scope unique index and the listing
-- index of DATA.md §3.9, in that order. Applied by the migration runner (common/migrate.c) in
-- one transaction together with its schema_migrations row.

-- 1. Attempt counter.
ALTER TABLE recompute_runs
    ADD COLUMN IF NOT EXISTS attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0);

-- 2. Backfill: runs that were started or completed count one attempt. (On the first
-- application every row still has 0; the guard only keeps a re-application harmless.)
UPDATE recompute_runs
SET attempts = 1
WHERE (started_at IS NOT NULL OR status = 'completed') AND attempts = 0;

-- 3. Duplicate active scopes left by older software: keep the newest (latest requested_at,
-- then greatest id) and fail the others.
UPDATE recompute_runs AS r
SET status = 'failed', finished_at = now(), error_message = 'superseded by a newer run'
FROM (
    SELECT id,
           row_number() OVER (PARTITION BY report_slug, window_name, date_from, date_to
                              ORDER BY requested_at DESC, id DESC) AS rank
    FROM recompute_runs
    WHERE status IN ('pending', 'running')
) AS active
WHERE r.id = active.id AND active.rank > 1;

-- 4. At most one pending or running run per scope.
CREATE UNIQUE INDEX IF NOT EXISTS uq_recompute_runs_active_scope
    ON recompute_runs (report_slug, window_name, date_from, date_to)
    WHERE status IN ('pending', 'running');

-- 5. Listing order of GET /api/v1/recomputations.
CREATE INDEX IF NOT EXISTS idx_recompute_runs_requested_at
    ON recompute_runs (requested_at DESC, id DESC);
