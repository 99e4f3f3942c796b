-- bench/sql/status_counts_snapshot.sql: the pgbench script of benchmark 2 (uncached reads). It is
-- the snapshot query of API.md §4.4 for status-counts WITHOUT breakdown (rows: status,
-- event_count; grouped by status; sorted by event_count desc, status asc in byte order; the
-- optional status filter; limit/offset), written here from the spec.
--
-- KEEP IN SYNC: it must be the statement the report-run handler (server/handlers/report_run.c)
-- sends on a cache miss, with the same parameters; when that handler lands, copy its SQL here.
-- If the handler also runs a report lookup per request, the comparison stays "ours (lookup +
-- snapshot) vs pgbench (snapshot only)", as the issue defines it.
--
-- bench/run passes the variables with pgbench -D: window, date_from, date_to, status (blank =
-- no filter, passed as the single character '-' because pgbench cannot set an empty value),
-- limit, offset. pgbench -M extended sends them as parameters, like libpq's PQsendQueryParams.
-- The last column is the result's freshness (API.md §4.4; REPORT_FRESHNESS_SUBQUERY of
-- server/report_query.h), evaluated once per statement.
SELECT dimension_value AS status, sum(metric_value)::bigint AS event_count,
       (SELECT r.finished_at FROM recompute_runs r
         WHERE r.report_slug = 'status-counts' AND r.window_name = :window
           AND r.status = 'completed' AND r.date_from <= :date_to::date
           AND r.date_to >= :date_from::date
         ORDER BY r.finished_at DESC LIMIT 1)::text AS rebuilt_at
  FROM metric_snapshots
 WHERE report_slug = 'status-counts'
   AND window_name = :window
   AND metric_name = 'event_count'
   AND dimension_key = 'status'
   AND bucket_start >= (CASE WHEN :window = 'week'
                             THEN date_trunc('week', :date_from::date::timestamp)
                             ELSE :date_from::date::timestamp END) AT TIME ZONE 'UTC'
   AND bucket_start < ((:date_to::date + 1)::timestamp AT TIME ZONE 'UTC')
   AND (:status = '-' OR dimension_value = :status)
 GROUP BY dimension_value
 ORDER BY event_count DESC, dimension_value COLLATE "C" ASC
 LIMIT :limit OFFSET :offset;
