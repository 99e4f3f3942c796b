-- bench/gen_events.sql: the benchmark data generator, run by bench/run through psql against the
-- bench's OWN private database (never the shared or the developer database: it truncates).
--
--   psql -X -v ON_ERROR_STOP=1 -v n=1000000 -f bench/gen_events.sql <conninfo>
--
-- Inserts :n events with the column formulas of the deterministic seed (DATA.md §5) for
-- g = 1 … :n, except that occurred_at is spread over about one year instead of 90 days:
--
--   occurred_at = H − (g mod 365) days − (g mod 24) hours      (H = now() truncated to the hour)
--
-- so the rebuild range covering every event is (today − 365) … today, and a 30-day report read
-- touches ~1/12 of the data. external_ref is 'bench-' || g. Sources, statuses, entities (240),
-- processing_ms, amount_cents and payload follow the seed formulas exactly.
--
-- Speed: one INSERT … SELECT over generate_series with the secondary indexes and the
-- external_ref unique constraint dropped first and rebuilt afterwards from their own catalog
-- definitions (bulk index builds are several times faster than row-by-row maintenance); the end
-- state has exactly the schema of the migrations. Snapshots, runs and audit entries are emptied:
-- bench/run rebuilds them.
--
-- The change log of the scheduled refresh (schema/0006_refresh.sql) is emptied too, at the end:
-- the insert trigger notes the ~366 days of the INSERT in event_change_days, and a running
-- service's scheduler would otherwise turn them into refreshes of every day (as the seed does,
-- seed/seed.c: everything noted here is rebuilt by bench/run anyway). refresh_schedule is kept.

\set ON_ERROR_STOP 1
SET synchronous_commit = off;
SET maintenance_work_mem = '512MB';
SET TimeZone = 'UTC';

TRUNCATE metric_snapshots, recompute_runs, audit_entries, analytics_events RESTART IDENTITY CASCADE;

-- The unique constraints and the secondary indexes (every index but the primary key's), as the
-- migrations define them: their definitions are read from the catalog, so that they are rebuilt
-- exactly (same names and definitions), in the same order, without being written here again.
CREATE TEMP TABLE bench_rebuilt AS
SELECT 1 AS kind, c.oid AS ord,
       format('ALTER TABLE analytics_events DROP CONSTRAINT %I', c.conname) AS drop_sql,
       format('ALTER TABLE analytics_events ADD CONSTRAINT %I %s', c.conname,
              pg_get_constraintdef(c.oid)) AS create_sql
  FROM pg_constraint c
 WHERE c.conrelid = 'analytics_events'::regclass AND c.contype = 'u'
UNION ALL
SELECT 2, i.indexrelid, format('DROP INDEX %s', i.indexrelid::regclass),
       pg_get_indexdef(i.indexrelid)
  FROM pg_index i
 WHERE i.indrelid = 'analytics_events'::regclass
   AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid);
SELECT drop_sql FROM bench_rebuilt ORDER BY kind, ord \gexec

INSERT INTO analytics_events (source_id, external_ref, entity_id, status, processing_ms,
                              amount_cents, occurred_at, payload)
SELECT CASE g % 3 WHEN 0 THEN src.stripe WHEN 1 THEN src.adyen ELSE src.paypal END,
       'bench-' || g,
       'entity-' || (g % 240 + 1),
       CASE WHEN g % 17 = 0 THEN 'failed' WHEN g % 11 = 0 THEN 'pending' ELSE 'success' END,
       80 + g % 700,
       100 + (g * 37) % 100000,
       date_trunc('hour', now(), 'UTC') - ((g % 365) * 24 + g % 24) * interval '1 hour',
       jsonb_build_object('batch', g / 100, 'provider_rank', g % 5, 'region',
                          CASE g % 3 WHEN 0 THEN 'us-east' WHEN 1 THEN 'eu-west' ELSE 'ap-south' END)
  FROM generate_series(1::bigint, :n::bigint) AS g,
       (SELECT (SELECT id FROM event_sources WHERE slug = 'stripe') AS stripe,
               (SELECT id FROM event_sources WHERE slug = 'adyen')  AS adyen,
               (SELECT id FROM event_sources WHERE slug = 'paypal') AS paypal) AS src;

SELECT create_sql FROM bench_rebuilt ORDER BY kind, ord \gexec
DROP TABLE bench_rebuilt;

-- After the load, so that neither the trigger's rows nor days a scheduler pass moved meanwhile
-- remain (the scheduler, if a service runs, plans no pair before its interval has passed).
TRUNCATE event_change_days, refresh_dirty_days;

VACUUM (ANALYZE) analytics_events;
