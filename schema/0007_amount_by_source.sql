-- 0007_amount_by_source.sql: the reference rows of the fourth report, amount-by-source
-- (DATA.md §4.1, §4.2), for databases that already carry 0001-0006, as upserts with the same
-- conflict rules as 0002 (the overwritten columns written as one row assignment; a migration
-- that adds a report repeats them, since 0002 has already run where it runs). Applied by the migration runner (common/migrate.c) in one transaction.
--
-- The report itself (its dimension, metric and row layouts) is one row of the report registry
-- (common/registry.c); this script is the other half of adding a report.

INSERT INTO report_definitions
    (slug, name, description, cache_ttl_seconds, default_window, supported_filters)
VALUES
    ('amount-by-source', 'Amount by Source',
     'Processed amount in cents per source, by day or week.', 120, 'day',
     '{"window":"day|week","breakdown":"period|source","source":"source slug"}')
ON CONFLICT (slug) DO UPDATE SET
    (name, description, cache_ttl_seconds, default_window, supported_filters, updated_at) =
    (EXCLUDED.name, EXCLUDED.description, EXCLUDED.cache_ttl_seconds, EXCLUDED.default_window,
     EXCLUDED.supported_filters, now());

INSERT INTO aggregate_windows
    (report_slug, window_name, retention_days, refresh_interval_minutes, is_default)
VALUES
    ('amount-by-source', 'day', 365, 60, TRUE),
    ('amount-by-source', 'week', 730, 240, FALSE)
ON CONFLICT (report_slug, window_name) DO UPDATE SET
    (retention_days, refresh_interval_minutes, is_default) =
    (EXCLUDED.retention_days, EXCLUDED.refresh_interval_minutes, EXCLUDED.is_default);

-- A database that already holds events has no snapshots of the new report yet: every retained
-- day with events becomes a dirty day of both its windows, and both windows are due at once, so
-- the scheduler's next pass (worker/scheduler.c) builds them as ordinary `scheduler` runs rather
-- than one refresh interval after it first sees the report. A fresh database has no events here
-- (the seed builds the report with the others) and the schedule rows change nothing.
INSERT INTO refresh_dirty_days (report_slug, window_name, day)
SELECT w.report_slug, w.window_name, d.day
  FROM (SELECT DISTINCT (occurred_at AT TIME ZONE 'UTC')::date AS day FROM analytics_events) d
  JOIN aggregate_windows w ON w.report_slug = 'amount-by-source'
 WHERE d.day >= refresh_keep_from(w.window_name, w.retention_days)
ON CONFLICT DO NOTHING;

INSERT INTO refresh_schedule (report_slug, window_name, last_pass_at)
SELECT w.report_slug, w.window_name, '-infinity'
  FROM aggregate_windows w
 WHERE w.report_slug = 'amount-by-source' AND EXISTS (SELECT 1 FROM analytics_events)
ON CONFLICT (report_slug, window_name) DO UPDATE SET last_pass_at = '-infinity';
