-- bench/sms/check.sql: the consistency check of benchmark 7's data set, run by bench/run through
-- psql (read only) against its private database right after bench/sms/gen.sql and VACUUM ANALYZE.
-- Prints one line: "OK: <facts>" or "MISMATCH: <the failed checks>; <facts>". Each large table is
-- read once (~5 s here).
--
-- Checks:
--   platform = sum of operators   every hour: metrics_hourly PLATFORM vs the OPERATOR rows
--                                 (messages, delivered, failed, pending, cost, latency sum and
--                                 samples)
--   operators mirrored            every operator hour: metrics_hourly OPERATOR vs
--                                 operator_performance (the same counters and peak_tps)
--   platform = sum of accounts    every day with ACCOUNT rows: messages, delivered, failed,
--                                 pending, cost
--   sketches                      every PLATFORM and OPERATOR hour: the sketch's samples = the
--                                 delivered count
--   rollup                        metrics_daily = the sums of the hours, every scope and day;
--                                 latency_histogram_daily's samples per scope and day = the hours';
--                                 every operator hour with deliveries has latency_p95_ms;
--                                 rollup_days is empty
--   account days                  account_usage_daily = the sums of the ACCOUNT hours
--   plausible                     delivered + failed <= messages in every metrics_hourly row

\set ON_ERROR_STOP 1
SET TimeZone = 'UTC';
SET work_mem = '256MB';
WITH
hd AS MATERIALIZED ( -- metrics_hourly per scope and day (the one pass over it)
    SELECT date_trunc('day', hour_bucket) AS day, scope, scope_id, count(*) AS hours,
           sum(total_messages) AS t, sum(delivered_messages) AS d, sum(failed_messages) AS f,
           sum(pending_messages) AS p, sum(total_cost) AS c, sum(latency_sum_ms) AS ls,
           max(peak_tps) AS pk, count(*) FILTER (WHERE delivered_messages + failed_messages
                                                  > total_messages) AS implausible
    FROM anlyt.metrics_hourly GROUP BY 1, 2, 3),
oh AS ( -- the PLATFORM and OPERATOR hours (by the scope index)
    SELECT hour_bucket, scope, scope_id, total_messages AS t, delivered_messages AS d,
           failed_messages AS f, pending_messages AS p, total_cost AS c, latency_sum_ms AS ls,
           latency_sample_count AS lc, peak_tps AS pk
    FROM anlyt.metrics_hourly WHERE scope IN ('PLATFORM', 'OPERATOR')),
op AS (
    SELECT hour_bucket, sum(t) AS t, sum(d) AS d, sum(f) AS f, sum(p) AS p, sum(c) AS c,
           sum(ls) AS ls, sum(lc) AS lc
    FROM oh WHERE scope = 'OPERATOR' GROUP BY 1),
sk AS MATERIALIZED ( -- latency_histogram per scope and hour (the one pass over it)
    SELECT hour_bucket, scope, scope_id, sum(n) AS n, count(*) AS buckets
    FROM anlyt.latency_histogram GROUP BY 1, 2, 3),
-- Each check counts its mismatches (n); the message format is filled in only where n > 0.
checks (msg, n) AS (
    SELECT 'platform <> sum(operators): %s hours', count(*)
    FROM (SELECT * FROM oh WHERE scope = 'PLATFORM') AS pl FULL JOIN op USING (hour_bucket)
    WHERE (pl.t, pl.d, pl.f, pl.p, pl.c, pl.ls, pl.lc) IS DISTINCT FROM
          (op.t, op.d, op.f, op.p, op.c, op.ls, op.lc)
    UNION ALL
    SELECT 'metrics_hourly OPERATOR <> operator_performance: %s rows', count(*)
    FROM (SELECT * FROM oh WHERE scope = 'OPERATOR') AS m FULL JOIN anlyt.operator_performance o
      ON o.hour_bucket = m.hour_bucket AND o.operator_id = m.scope_id::UUID
    WHERE (m.t, m.d, m.f, m.ls, m.lc, m.pk) IS DISTINCT FROM
          (o.total_messages, o.delivered_messages, o.failed_messages, o.latency_sum_ms,
           o.latency_sample_count, o.peak_tps)
    UNION ALL
    SELECT 'platform <> sum(accounts): %s days', count(*)
    FROM (SELECT day, sum(t) AS t, sum(d) AS d, sum(f) AS f, sum(p) AS p, sum(c) AS c
          FROM hd WHERE scope = 'ACCOUNT' GROUP BY 1) AS a
    JOIN hd pl ON pl.day = a.day AND pl.scope = 'PLATFORM'
    WHERE (a.t, a.d, a.f, a.p, a.c) IS DISTINCT FROM (pl.t, pl.d, pl.f, pl.p, pl.c)
    UNION ALL
    SELECT 'sketch samples <> delivered: %s scope hours', count(*)
    FROM (SELECT * FROM oh WHERE d > 0) AS m
    FULL JOIN sk USING (hour_bucket, scope, scope_id)
    WHERE m.d IS DISTINCT FROM sk.n
    UNION ALL
    SELECT 'metrics_daily <> sum(hours): %s rows', count(*)
    FROM hd FULL JOIN anlyt.metrics_daily m
      ON m.day_bucket = hd.day AND m.scope = hd.scope AND m.scope_id = hd.scope_id
    WHERE (hd.t, hd.d, hd.f, hd.c, hd.ls, hd.pk) IS DISTINCT FROM
          (m.total_messages, m.delivered_messages, m.failed_messages, m.total_cost,
           m.latency_sum_ms, m.peak_tps)
    UNION ALL
    SELECT 'latency_histogram_daily <> sum(hours): %s scope days', count(*)
    FROM (SELECT date_trunc('day', hour_bucket) AS day, scope, scope_id, sum(n) AS n
          FROM sk GROUP BY 1, 2, 3) AS k
    FULL JOIN (SELECT day_bucket AS day, scope, scope_id, sum(n) AS n
               FROM anlyt.latency_histogram_daily GROUP BY 1, 2, 3) AS l
      USING (day, scope, scope_id)
    WHERE k.n IS DISTINCT FROM l.n
    UNION ALL
    SELECT 'operator hours without latency_p95_ms: %s', count(*)
    FROM anlyt.operator_performance WHERE delivered_messages > 0 AND latency_p95_ms IS NULL
    UNION ALL
    SELECT 'account_usage_daily <> sum(account hours): %s rows', count(*)
    FROM (SELECT * FROM hd WHERE scope = 'ACCOUNT') AS h FULL JOIN anlyt.account_usage_daily a
      ON a.day_bucket = h.day AND a.account_id = h.scope_id::UUID
    WHERE (h.t, h.d, h.f, h.c) IS DISTINCT FROM
          (a.messages_sent, a.messages_delivered, a.messages_failed, a.total_cost)
    UNION ALL
    SELECT 'delivered + failed > messages: %s rows', sum(implausible) FROM hd
    UNION ALL
    SELECT 'rollup_days not empty: %s', count(*) FROM anlyt.rollup_days
),
bad AS (SELECT format(msg, n) AS what FROM checks WHERE n > 0),
facts AS (
    SELECT format('%s hours (%s .. %s UTC), %s messages (%s delivered, %s failed), '
                  '%s operators, %s accounts over %s days; rows: metrics_hourly %s, '
                  'operator_performance %s, latency_histogram %s (%s-%s buckets per operator '
                  'hour, %s-%s per platform hour), latency_histogram_daily %s, metrics_daily %s, '
                  'account_usage_daily %s',
                  (SELECT count(*) FROM oh WHERE scope = 'PLATFORM'),
                  (SELECT to_char(min(hour_bucket), 'YYYY-MM-DD HH24:MI') FROM oh),
                  (SELECT to_char(max(hour_bucket), 'YYYY-MM-DD HH24:MI') FROM oh),
                  (SELECT sum(t) FROM hd WHERE scope = 'PLATFORM'),
                  (SELECT sum(d) FROM hd WHERE scope = 'PLATFORM'),
                  (SELECT sum(f) FROM hd WHERE scope = 'PLATFORM'),
                  (SELECT count(DISTINCT scope_id) FROM hd WHERE scope = 'OPERATOR'),
                  (SELECT count(DISTINCT scope_id) FROM hd WHERE scope = 'ACCOUNT'),
                  (SELECT count(DISTINCT day) FROM hd WHERE scope = 'ACCOUNT'),
                  (SELECT sum(hours) FROM hd),
                  (SELECT count(*) FROM anlyt.operator_performance),
                  (SELECT sum(buckets) FROM sk),
                  (SELECT min(buckets) FROM sk WHERE scope = 'OPERATOR'),
                  (SELECT max(buckets) FROM sk WHERE scope = 'OPERATOR'),
                  (SELECT min(buckets) FROM sk WHERE scope = 'PLATFORM'),
                  (SELECT max(buckets) FROM sk WHERE scope = 'PLATFORM'),
                  (SELECT count(*) FROM anlyt.latency_histogram_daily),
                  (SELECT count(*) FROM anlyt.metrics_daily),
                  (SELECT count(*) FROM anlyt.account_usage_daily)) AS f)
SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM bad) THEN 'OK: ' || f
            ELSE 'MISMATCH: ' || (SELECT string_agg(what, ', ') FROM bad) || '; ' || f END
FROM facts;
