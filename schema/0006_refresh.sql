-- 0006_refresh.sql: snapshots that keep themselves fresh (API.md §8): change tracking on
-- analytics_events, the scheduled incremental refresh driven by
-- aggregate_windows.refresh_interval_minutes, and the retention driven by retention_days.
-- Also the index the freshness of report runs reads (section 9). Applied by the migration runner
-- (common/migrate.c) in one transaction. The functions are
-- called by the leading supervisor (worker/scheduler.c) and by nothing else; the seed empties
-- the change log after its full rebuild (seed/seed.c).
--
-- How a change reaches a report:
--   any INSERT/UPDATE/DELETE/COPY on analytics_events (any client)
--     -> statement trigger: one row per distinct UTC day touched, in event_change_days
--   refresh_collect() (every scheduler pass)
--     -> moves those days into refresh_dirty_days, one row per (report, window, day)
--   refresh_plan(report, window, ...) (when that pair's interval has passed)
--     -> takes the pair's dirty days, coalesces them into ranges and creates a pending
--        `scheduler` run (+ its recompute.triggered audit entry) per range
-- Consuming by DELETE (not by a watermark) is what makes it exact: a change committed after a
-- pass read the table is still there for the next pass, whatever its timestamps say.

-- 1. The change log. Append-only, no index: every scheduler pass empties it.
CREATE TABLE event_change_days (
    day DATE NOT NULL,
    noted_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One row per distinct day per statement, from the statement's transition tables: a COPY of a
-- million events costs one hash aggregate over their timestamps, not a million upserts. The
-- day is the UTC day of occurred_at, the bucket of the day window (common/rebuild.c); week
-- buckets follow from days. An UPDATE marks the days of both the old and the new rows.
CREATE FUNCTION note_event_changes() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO event_change_days (day)
        SELECT DISTINCT (occurred_at AT TIME ZONE 'UTC')::date FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO event_change_days (day)
        SELECT DISTINCT (occurred_at AT TIME ZONE 'UTC')::date FROM old_rows;
    ELSE
        INSERT INTO event_change_days (day)
        SELECT (occurred_at AT TIME ZONE 'UTC')::date FROM old_rows
        UNION
        SELECT (occurred_at AT TIME ZONE 'UTC')::date FROM new_rows;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER analytics_events_note_insert AFTER INSERT ON analytics_events
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION note_event_changes();
CREATE TRIGGER analytics_events_note_update AFTER UPDATE ON analytics_events
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION note_event_changes();
CREATE TRIGGER analytics_events_note_delete AFTER DELETE ON analytics_events
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION note_event_changes();

-- 2. Days whose snapshots of one (report, window) are older than their events.
CREATE TABLE refresh_dirty_days (
    report_slug TEXT NOT NULL,
    window_name TEXT NOT NULL,
    day DATE NOT NULL,
    PRIMARY KEY (report_slug, window_name, day),
    FOREIGN KEY (report_slug, window_name)
        REFERENCES aggregate_windows (report_slug, window_name) ON DELETE CASCADE
);

-- 3. When each (report, window) was last planned. A pair without a row is first planned one
-- interval after the scheduler first sees it; the interval is read from aggregate_windows at
-- every pass, so changing refresh_interval_minutes takes effect at once.
CREATE TABLE refresh_schedule (
    report_slug TEXT NOT NULL,
    window_name TEXT NOT NULL,
    last_pass_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (report_slug, window_name),
    FOREIGN KEY (report_slug, window_name)
        REFERENCES aggregate_windows (report_slug, window_name) ON DELETE CASCADE
);

-- 4. The first bucket start a window keeps: today (UTC) minus retention_days for days, the
-- Monday on or after that for weeks (a week is kept only whole). The read path computes the
-- same date for meta.retained_from (server/handlers/report_run.c).
CREATE FUNCTION refresh_keep_from(p_window TEXT, p_retention_days INTEGER) RETURNS DATE
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN p_window = 'week'
                THEN d + (8 - extract(isodow FROM d)::int) % 7
                ELSE d END
      FROM (SELECT (now() AT TIME ZONE 'UTC')::date - p_retention_days AS d) t
$$;

-- 5. Moves the change log into the dirty days of every (report, window), leaving out days
-- before the window's retention. Returns the number of new dirty rows.
CREATE FUNCTION refresh_collect() RETURNS BIGINT
LANGUAGE sql AS $$
    WITH taken AS (DELETE FROM event_change_days RETURNING day),
    days AS (SELECT DISTINCT day FROM taken),
    ins AS (
        INSERT INTO refresh_dirty_days (report_slug, window_name, day)
        SELECT w.report_slug, w.window_name, days.day
          FROM days CROSS JOIN aggregate_windows w
         WHERE days.day >= refresh_keep_from(w.window_name, w.retention_days)
        ON CONFLICT DO NOTHING
        RETURNING 1)
    SELECT count(*) FROM ins
$$;

-- 5b. The (report, window) pairs whose interval has passed since their last plan, in slug and
-- window order. Gives every pair without a schedule row one stamped now (so it is first due one
-- interval later).
CREATE FUNCTION refresh_due() RETURNS TABLE (o_report_slug TEXT, o_window TEXT)
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO refresh_schedule (report_slug, window_name, last_pass_at)
    SELECT w.report_slug, w.window_name, now() FROM aggregate_windows w
    ON CONFLICT DO NOTHING;
    RETURN QUERY
    SELECT w.report_slug, w.window_name
      FROM aggregate_windows w
      JOIN refresh_schedule s ON s.report_slug = w.report_slug AND s.window_name = w.window_name
     WHERE s.last_pass_at + w.refresh_interval_minutes * interval '1 minute' <= now()
     ORDER BY 1, 2;
END
$$;

-- 6. Plans one (report, window): takes its dirty days, turns them into buckets (days, or the
-- Mondays of their weeks), coalesces contiguous buckets into ranges of at most p_max_days days
-- (whole weeks for weeks) and creates one pending run per range exactly as a trigger does
-- (DATA.md §6.8: same serialisation lock, same active-scope index, backlog cap p_max_pending;
-- §6.12: a recompute.triggered entry by `scheduler`, requested_via "scheduler"). A range whose
-- run cannot be created (an active run of that exact scope, a full backlog) stays dirty for the
-- next pass. Records the pass in refresh_schedule. Returns the runs created.
CREATE FUNCTION refresh_plan(p_slug TEXT, p_window TEXT, p_max_days INTEGER,
                             p_max_pending BIGINT)
RETURNS TABLE (o_run_id UUID, o_date_from DATE, o_date_to DATE, o_buckets INTEGER)
LANGUAGE plpgsql AS $$
DECLARE
    keep DATE;
    pending BIGINT;
    step INTEGER := CASE WHEN p_window = 'week' THEN 7 ELSE 1 END;
    cap INTEGER := GREATEST(1, p_max_days / CASE WHEN p_window = 'week' THEN 7 ELSE 1 END);
    r RECORD;
    new_id UUID;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('recompute:trigger', 0));
    INSERT INTO refresh_schedule AS s (report_slug, window_name, last_pass_at)
    VALUES (p_slug, p_window, now())
    ON CONFLICT (report_slug, window_name) DO UPDATE SET last_pass_at = now();
    SELECT refresh_keep_from(w.window_name, w.retention_days) INTO keep
      FROM aggregate_windows w WHERE w.report_slug = p_slug AND w.window_name = p_window;
    IF keep IS NULL THEN
        RETURN;
    END IF;
    SELECT count(*) INTO pending FROM recompute_runs WHERE status = 'pending';
    FOR r IN
        WITH taken AS (
            DELETE FROM refresh_dirty_days d
             WHERE d.report_slug = p_slug AND d.window_name = p_window
            RETURNING d.day),
        buckets AS (
            SELECT DISTINCT CASE WHEN step = 7 THEN date_trunc('week', t.day)::date
                                 ELSE t.day END AS b
              FROM taken t
             WHERE t.day >= keep),
        islands AS (
            SELECT b, b - (row_number() OVER (ORDER BY b))::int * step AS g FROM buckets),
        chunks AS (
            SELECT b, g, (row_number() OVER (PARTITION BY g ORDER BY b) - 1) / cap AS c
              FROM islands)
        SELECT min(b) AS lo, max(b) + (step - 1) AS hi, count(*)::int AS n
          FROM chunks GROUP BY g, c ORDER BY 1
    LOOP
        new_id := NULL;
        IF pending < p_max_pending THEN
            INSERT INTO recompute_runs AS x (id, report_slug, window_name, date_from, date_to,
                                             requested_by, status, requested_at, attempts,
                                             summary)
            VALUES (gen_random_uuid(), p_slug, p_window, r.lo, r.hi, 'scheduler', 'pending',
                    now(), 0, '{}'::jsonb)
            ON CONFLICT (report_slug, window_name, date_from, date_to)
                WHERE status IN ('pending', 'running') DO NOTHING
            RETURNING x.id INTO new_id;
        END IF;
        IF new_id IS NULL THEN
            INSERT INTO refresh_dirty_days (report_slug, window_name, day)
            SELECT p_slug, p_window, g::date FROM generate_series(r.lo, r.hi, interval '1 day') g
            ON CONFLICT DO NOTHING;
            CONTINUE;
        END IF;
        INSERT INTO audit_entries (actor, action, resource_type, resource_id, metadata,
                                   created_at)
        VALUES ('scheduler', 'recompute.triggered', 'recompute_run', new_id::text,
                jsonb_build_object('date_from', r.lo::text, 'date_to', r.hi::text,
                                   'report_slug', p_slug, 'requested_via', 'scheduler',
                                   'window', p_window),
                now());
        pending := pending + 1;
        o_run_id := new_id;
        o_date_from := r.lo;
        o_date_to := r.hi;
        o_buckets := r.n;
        RETURN NEXT;
    END LOOP;
END
$$;

-- 7. A scheduled run that fails (timeout, rebuild error, crashes past the attempt limit) gives
-- its days back to the dirty set, so the next due pass tries again; the failure itself is in
-- the audit trail. Manual runs are the operator's to retry.
CREATE FUNCTION refresh_redirty_failed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO refresh_dirty_days (report_slug, window_name, day)
    SELECT NEW.report_slug, NEW.window_name, g::date
      FROM generate_series(NEW.date_from, NEW.date_to, interval '1 day') g
     WHERE EXISTS (SELECT 1 FROM aggregate_windows w
                    WHERE w.report_slug = NEW.report_slug AND w.window_name = NEW.window_name)
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER recompute_runs_redirty_failed AFTER UPDATE OF status ON recompute_runs
    FOR EACH ROW
    WHEN (NEW.status = 'failed' AND OLD.status <> 'failed' AND NEW.requested_by = 'scheduler')
    EXECUTE FUNCTION refresh_redirty_failed();

-- 8. Retention (API.md §8): deletes, for every (report, window), the snapshots whose bucket
-- starts before refresh_keep_from, and writes one `snapshot.retention` audit entry (actor
-- `scheduler`) for the whole pass when anything was deleted. Returns one row per window that
-- lost rows.
CREATE FUNCTION snapshot_retention()
RETURNS TABLE (o_report_slug TEXT, o_window TEXT, o_keep_from DATE, o_rows_deleted BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    w RECORD;
    n BIGINT;
    windows JSONB := '[]'::jsonb;
    total BIGINT := 0;
BEGIN
    FOR w IN SELECT a.report_slug, a.window_name,
                    refresh_keep_from(a.window_name, a.retention_days) AS keep
               FROM aggregate_windows a ORDER BY a.report_slug, a.window_name
    LOOP
        DELETE FROM metric_snapshots m
         WHERE m.report_slug = w.report_slug AND m.window_name = w.window_name
           AND m.bucket_start < (w.keep::timestamp AT TIME ZONE 'UTC');
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n > 0 THEN
            total := total + n;
            windows := windows || jsonb_build_object('keep_from', w.keep::text,
                                                     'report_slug', w.report_slug,
                                                     'rows_deleted', n,
                                                     'window', w.window_name);
            o_report_slug := w.report_slug;
            o_window := w.window_name;
            o_keep_from := w.keep;
            o_rows_deleted := n;
            RETURN NEXT;
        END IF;
    END LOOP;
    IF total > 0 THEN
        INSERT INTO audit_entries (actor, action, resource_type, resource_id, metadata)
        VALUES ('scheduler', 'snapshot.retention', 'metric_snapshots', NULL,
                jsonb_build_object('rows_deleted', total, 'windows', windows));
    END IF;
END
$$;

-- 9. The freshness of a report run (API.md §4.4; server/report_query.h): the newest completed
-- run of a report and window, newest first, so the read finds it in the first index entries.
CREATE INDEX ix_recompute_runs_completed ON recompute_runs (report_slug, window_name, finished_at DESC)
    WHERE status = 'completed';
