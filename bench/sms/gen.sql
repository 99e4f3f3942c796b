-- bench/sms/gen.sql: the data generator of benchmark 7 (SMS reads), run by bench/run through psql
-- against the bench's OWN private database after `analyticsd migrate` (never the shared or the
-- developer database: it truncates every anlyt table).
--
--   psql -X -v ON_ERROR_STOP=1 -v account_days=90 -f bench/sms/gen.sql <conninfo>
--
-- What the SMS read routes would find after 90 days of ingestion and a rollup, written directly
-- with SQL (one INSERT … SELECT over generate_series per table), deterministic:
-- every value is a function of (hour index, operator index, account index) through hashint8,
-- never random(), so two runs started at the same time of day produce the same rows.
--
--   hours     every hour from date_trunc('day', now() - 89 days) to the current hour (UTC): the
--             oldest day is the first one whose hours are all inside the 90-day hourly retention
--             (sms_read_floor in common/sms_read.c), so every read of the bench uses hourly rows
--   operators 20, md5('bench-sms-operator-' || k)::uuid, weights 1/k (a few large operators),
--             each with its own delivery and failure rates, price and latency
--   accounts  2,000, md5('bench-sms-account-' || a)::uuid, weights 1/a^0.7 with an hourly jitter;
--             the last :account_days days of hourly rows (default 90; bench/run passes 30,
--             --sms-account-days: 90 days of them make metrics_hourly 4.4M rows instead of 1.5M,
--             which no read of the benchmark touches, for a minute more of generation and rollup)
--
-- Tables (SMS.md §3):
--   anlyt.operator_performance  one row per operator and hour (error_count included)
--   anlyt.metrics_hourly        the same counters for scope OPERATOR; PLATFORM = their sum; ACCOUNT
--                               rows split the platform's delivered, failed, pending and cost of
--                               each hour exactly (integer cumulative weights), so that
--                               PLATFORM = sum(OPERATOR) = sum(ACCOUNT) for every count and cost
--   anlyt.latency_histogram     per operator and hour, the hour's delivered count spread over 40 to
--                               80 consecutive sketch buckets (bucket = ceil(ln(ms)/ln(1.01/0.99)))
--                               around the operator's latency, right-skewed; empty buckets are not
--                               stored (quiet hours of small operators keep ~30); PLATFORM = the sum
--                               of the operators' sketches (~130-170 buckets an hour);
--                               latency_sum_ms = sum(n x bucket value)
--   anlyt.account_usage_daily   per account and day, the sum of its hours (segments 1.2-1.7 per
--                               message)
--   anlyt.ingest_state          ingested_through = one minute ago
-- then the days are marked in anlyt.rollup_days and rolled up by anlyt.rollup(now() - 90 days),
-- as the service's leader does: metrics_daily, latency_histogram_daily and the hourly
-- latency_p95_ms of operator_performance. bench/run then runs VACUUM ANALYZE and
-- bench/sms/check.sql. The last line printed is "<days rolled up> <generation s> <rollup s>".
--
-- Speed: the primary keys and secondary indexes of metrics_hourly and latency_histogram are dropped
-- for the bulk insert and rebuilt afterwards with the same names and definitions (the end state
-- has exactly the schema of the migrations); every sort runs in memory (work_mem 1GB, this
-- session only); the three large tables are analyzed before the rollup (without statistics its
-- plans took 50 s instead of 20). Here (2 vCPUs shared with other work), account_days 30:
-- 49-57 s of generation (a third of it rebuilding the indexes: text keys under C.UTF-8) and
-- 16-23 s of rollup; 2.9M histogram rows, 1.5M metrics_hourly rows.

\set ON_ERROR_STOP 1
\if :{?account_days}
\else
\set account_days 90
\endif
\set QUIET 1
SET TimeZone = 'UTC';
SET client_min_messages = warning;
-- Every sort and hash of the generation and of the rollup in memory (bench/run's private server).
SET work_mem = '1GB';
SET maintenance_work_mem = '1GB';
SELECT clock_timestamp() AS gen_t0 \gset

TRUNCATE anlyt.metrics_hourly, anlyt.metrics_daily, anlyt.operator_performance,
         anlyt.account_usage_daily, anlyt.latency_histogram, anlyt.latency_histogram_daily,
         anlyt.rollup_days, anlyt.processed_events, anlyt.rejected_events, anlyt.traffic_seconds;

-- u(x): a deterministic number in [0, 1) from an integer.
CREATE FUNCTION pg_temp.u(x BIGINT) RETURNS FLOAT8
LANGUAGE sql IMMUTABLE AS $$ SELECT (hashint8(x) & 2147483647)::FLOAT8 / 2147483648.0 $$;

-- The hours, with a daily profile (lowest at 04:00, highest at 16:00) and quieter weekends.
CREATE TEMP TABLE g_hour AS
SELECT h, hour_bucket,
       (0.3 + 0.7 * (0.5 - 0.5 * cos(2 * pi() * (extract(hour FROM hour_bucket) - 4) / 24)))
       * CASE WHEN extract(isodow FROM hour_bucket) >= 6 THEN 0.75 ELSE 1.0 END AS profile
FROM (SELECT h, date_trunc('day', now() - interval '89 days') + h * interval '1 hour' AS hour_bucket
      FROM generate_series(0, (extract(epoch FROM date_trunc('hour', now())
                                       - date_trunc('day', now() - interval '89 days'))
                               / 3600)::INTEGER) AS h) AS x;

CREATE TEMP TABLE g_op AS
SELECT k, md5('bench-sms-operator-' || k)::UUID AS operator_id,
       (1.0 / k) / (SELECT sum(1.0 / i) FROM generate_series(1, 20) AS i) AS share,
       0.80 + 0.16 * pg_temp.u(k * 16 + 1) AS dr,                   -- delivery rate
       0.02 + 0.06 * pg_temp.u(k * 16 + 2) AS fr,                   -- failure rate
       2000 + floor(7000 * pg_temp.u(k * 16 + 3)) AS price,         -- micro-units per segment
       1200 + 6000 * pg_temp.u(k * 16 + 4) AS lat_ms                -- typical receipt latency
FROM generate_series(1, 20) AS k;

-- One operator hour: counters, the sketch's place (centre bucket, width) and peak_tps.
-- Platform traffic peaks near 24,000 messages an hour (~13,000 on average).
CREATE TEMP TABLE g_oh AS
SELECT h, hour_bucket, k, operator_id, t, d, LEAST(f, t - d) AS f, cost_micro,
       GREATEST(err, LEAST(f, t - d)) AS err, peak,
       ceil(ln(lat) / ln(1.01::FLOAT8 / 0.99))::INTEGER AS centre, nb
FROM (SELECT g.h, g.hour_bucket, o.k, o.operator_id, y.t,
             floor(y.t * o.dr * (0.98 + 0.04 * pg_temp.u(s + 2)))::BIGINT AS d,
             floor(y.t * o.fr * (0.8 + 0.4 * pg_temp.u(s + 3)))::BIGINT AS f,
             round(y.t * o.price * (1.2 + 0.5 * pg_temp.u(k)))::BIGINT AS cost_micro,
             floor(y.t * o.fr * (1.0 + 0.3 * pg_temp.u(s + 4)))::BIGINT AS err,
             CASE WHEN y.t > 0 THEN GREATEST(1, ceil(y.t / 3600.0 * (2 + 4 * pg_temp.u(s + 5))))
                  ELSE 0 END::INTEGER AS peak,
             o.lat_ms * (0.85 + 0.3 * pg_temp.u(s + 6)) AS lat,
             40 + (hashint8(s + 7) & 2147483647) % 41 AS nb
      FROM g_hour g CROSS JOIN g_op o
      CROSS JOIN LATERAL (SELECT (g.h::BIGINT * 64 + o.k) * 16 AS s) AS sd
      CROSS JOIN LATERAL (SELECT round(24000 * g.profile * o.share
                                       * (0.85 + 0.3 * pg_temp.u(sd.s + 1)))::BIGINT AS t) AS y
     ) AS x;

-- The sketch shapes: for a width nb (40..80), bucket offsets j = 0..nb-1 with the mode at 35 %
-- of the width (a longer right tail), as integer weights and their running sums: bucket j of an
-- hour with d samples gets floor(d*c1/tot) - floor(d*c0/tot), which adds up to d exactly (every
-- operand BIGINT: integer division; sum() of BIGINT is NUMERIC, hence the casts).
CREATE TEMP TABLE g_shape AS
SELECT nb, j, mode, (sum(w) OVER (PARTITION BY nb ORDER BY j) - w)::BIGINT AS c0,
       (sum(w) OVER (PARTITION BY nb ORDER BY j))::BIGINT AS c1,
       (sum(w) OVER (PARTITION BY nb))::BIGINT AS tot
FROM (SELECT nb, j, mode,
             round(1000000 * exp(-0.5 * power((j - mode)::FLOAT8
                                               / CASE WHEN j < mode THEN mode / 2.2
                                                      ELSE (nb - mode) / 2.6 END, 2)))::BIGINT + 1 AS w
      FROM generate_series(40, 80) AS nb
      CROSS JOIN LATERAL (SELECT floor(nb * 0.35)::INTEGER AS mode) AS m
      CROSS JOIN LATERAL generate_series(0, nb - 1) AS j) AS s;

CREATE TEMP TABLE g_hist AS
SELECT o.hour_bucket, o.operator_id, (o.centre - s.mode + s.j)::SMALLINT AS bucket,
       (o.d * s.c1) / s.tot - (o.d * s.c0) / s.tot AS n
FROM g_oh o JOIN g_shape s ON s.nb = o.nb;

-- latency_sum_ms of an operator hour: its samples at their buckets' values.
CREATE TEMP TABLE g_lat AS
SELECT hour_bucket, operator_id, sum(n * anlyt.sketch_value(bucket))::BIGINT AS ls
FROM g_hist GROUP BY 1, 2;

-- The platform's hours: the sums of the operators'.
CREATE TEMP TABLE g_ph AS
SELECT o.h, o.hour_bucket, sum(o.t)::BIGINT AS t, sum(o.d)::BIGINT AS d, sum(o.f)::BIGINT AS f,
       sum(o.cost_micro)::BIGINT AS cost, sum(coalesce(l.ls, 0))::BIGINT AS ls,
       GREATEST(max(o.peak), ceil(sum(o.t) / 3600.0 * (2 + 2 * pg_temp.u(o.h * 7919)))::INTEGER) AS peak
FROM g_oh o LEFT JOIN g_lat l USING (hour_bucket, operator_id)
GROUP BY 1, 2;

-- Accounts: base weight 1/a^0.7 (x10^5), times a jitter of 0.5..1.5 that changes every hour (one
-- of 24 patterns per hour, chosen by hash). An hour's delivered (d), failed (f) and pending (p)
-- messages are split by the running sums c0/c1 of those integer weights (account a gets
-- floor(x*c1/tot) - floor(x*c0/tot)); its cost and latency sum by the running sums of the
-- messages and deliveries so split (t0/t1, d0/d1), so every account's share adds up exactly to
-- the platform's and an account without messages gets no cost.
CREATE TEMP TABLE g_acc AS
SELECT a, md5('bench-sms-account-' || a)::UUID AS account_id,
       round(100000 / power(a, 0.7))::BIGINT AS base
FROM generate_series(1, 2000) AS a;

CREATE TEMP TABLE g_accw AS
SELECT pat, account_id, (sum(wt) OVER (PARTITION BY pat ORDER BY a) - wt)::BIGINT AS c0,
       (sum(wt) OVER (PARTITION BY pat ORDER BY a))::BIGINT AS c1,
       (sum(wt) OVER (PARTITION BY pat))::BIGINT AS tot
FROM (SELECT pat, c.a, c.account_id,
             c.base * (50 + (hashint8(pat::BIGINT * 4096 + c.a) & 2147483647) % 101) AS wt
      FROM generate_series(0, 23) AS pat CROSS JOIN g_acc c) AS x;

-- Bulk load: the indexes of the two large tables are dropped and rebuilt afterwards with the
-- definitions of 0004_sms.sql and 0005_sms_reads.sql (same names).
ALTER TABLE anlyt.latency_histogram DROP CONSTRAINT latency_histogram_pkey;
DROP INDEX anlyt.ix_anlyt_histogram_scope;
ALTER TABLE anlyt.metrics_hourly DROP CONSTRAINT metrics_hourly_pkey;
DROP INDEX anlyt.ix_anlyt_hourly_scope;

INSERT INTO anlyt.latency_histogram (hour_bucket, scope, scope_id, bucket, n)
SELECT hour_bucket, scope, scope_id, bucket, n
FROM (SELECT hour_bucket, 'OPERATOR' AS scope, operator_id::TEXT AS scope_id, bucket, n
      FROM g_hist WHERE n > 0
      UNION ALL
      SELECT hour_bucket, 'PLATFORM', 'platform', bucket, sum(n) FROM g_hist GROUP BY 1, 4
      HAVING sum(n) > 0) AS x;

INSERT INTO anlyt.operator_performance (hour_bucket, operator_id, total_messages,
    delivered_messages, failed_messages, latency_sum_ms, latency_sample_count, latency_p95_ms,
    peak_tps, error_count, updated_at)
SELECT o.hour_bucket, o.operator_id, o.t, o.d, o.f, coalesce(l.ls, 0), o.d, NULL, o.peak, o.err,
       now()
FROM g_oh o LEFT JOIN g_lat l USING (hour_bucket, operator_id)
ORDER BY 1, 2;

INSERT INTO anlyt.metrics_hourly (hour_bucket, scope, scope_id, total_messages,
    delivered_messages, failed_messages, pending_messages, total_cost, latency_sum_ms,
    latency_sample_count, peak_tps, updated_at)
SELECT * FROM (
    SELECT hour_bucket, 'PLATFORM', 'platform', t, d, f, t - d - f, cost / 1000000.0, ls, d, peak,
           now()
    FROM g_ph
    UNION ALL
    SELECT o.hour_bucket, 'OPERATOR', o.operator_id::TEXT, o.t, o.d, o.f, o.t - o.d - o.f,
           o.cost_micro / 1000000.0, coalesce(l.ls, 0), o.d, o.peak, now()
    FROM g_oh o LEFT JOIN g_lat l USING (hour_bucket, operator_id)
    UNION ALL
    SELECT hour_bucket, 'ACCOUNT', account_id::TEXT, t1 - t0, d1 - d0, f1 - f0, p1 - p0,
           (CASE WHEN pt > 0 THEN (pc * t1) / pt - (pc * t0) / pt ELSE 0 END) / 1000000.0,
           CASE WHEN pd > 0 THEN (pls * d1) / pd - (pls * d0) / pd ELSE 0 END, d1 - d0,
           LEAST(ppeak, GREATEST(1, ceil((t1 - t0) / 1200.0)))::INTEGER, now()
    FROM (SELECT hour_bucket, account_id, pt, pd, pc, pls, ppeak, d0, d1, f0, f1, p0, p1,
                 d0 + f0 + p0 AS t0, d1 + f1 + p1 AS t1
          FROM (SELECT p.hour_bucket, w.account_id, p.t AS pt, p.d AS pd, p.cost AS pc,
                       p.ls AS pls, p.peak AS ppeak,
                       (p.d * w.c0) / w.tot AS d0, (p.d * w.c1) / w.tot AS d1,
                       (p.f * w.c0) / w.tot AS f0, (p.f * w.c1) / w.tot AS f1,
                       ((p.t - p.d - p.f) * w.c0) / w.tot AS p0,
                       ((p.t - p.d - p.f) * w.c1) / w.tot AS p1
                FROM g_ph p
                JOIN g_accw w ON w.pat = (hashint8(p.h * 7 + 3) & 2147483647) % 24
                WHERE p.hour_bucket >= date_trunc('day', now())
                                       - (:'account_days'::INTEGER - 1) * interval '1 day') AS s
         ) AS a
    WHERE t1 > t0) AS x
ORDER BY 1;

ALTER TABLE anlyt.metrics_hourly ADD CONSTRAINT metrics_hourly_pkey
    PRIMARY KEY (hour_bucket, scope, scope_id);
CREATE INDEX ix_anlyt_hourly_scope ON anlyt.metrics_hourly (scope, scope_id, hour_bucket);
ALTER TABLE anlyt.latency_histogram ADD CONSTRAINT latency_histogram_pkey
    PRIMARY KEY (hour_bucket, scope, scope_id, bucket);
CREATE INDEX ix_anlyt_histogram_scope ON anlyt.latency_histogram (scope, scope_id, hour_bucket);

-- An account's day: the sum of its hours; segments 1.2..1.7 per message (fixed per account).
INSERT INTO anlyt.account_usage_daily (day_bucket, account_id, messages_sent, messages_delivered,
    messages_failed, total_cost, total_segments, updated_at)
SELECT day, scope_id::UUID, t, d, f, c, round(t * (1.2 + 0.5 * pg_temp.u(hashtext(scope_id)))), now()
FROM (SELECT date_trunc('day', hour_bucket) AS day, scope_id, sum(total_messages) AS t,
             sum(delivered_messages) AS d, sum(failed_messages) AS f, sum(total_cost) AS c
      FROM anlyt.metrics_hourly WHERE scope = 'ACCOUNT'
      GROUP BY 1, 2) AS x
ORDER BY 1, 2;

UPDATE anlyt.ingest_state SET ingested_through = date_trunc('second', now()) - interval '1 minute';

-- Statistics first, as the service's tables always have them (the rollup's plans depend on them).
ANALYZE anlyt.metrics_hourly, anlyt.latency_histogram, anlyt.operator_performance;

SELECT clock_timestamp() AS gen_t1 \gset

-- Mark every day and roll them up, as the leader does (common/sms_store.c, sms_store_rollup).
INSERT INTO anlyt.rollup_days (day_bucket)
SELECT generate_series(date_trunc('day', now() - interval '89 days'), date_trunc('day', now()),
                       interval '1 day')
ON CONFLICT DO NOTHING;
SELECT anlyt.rollup(now() - interval '90 days') AS rolled_up \gset

-- For bench/run: "<days rolled up> <generation s> <rollup s>".
SELECT :rolled_up, round(extract(epoch FROM :'gen_t1'::timestamptz - :'gen_t0'::timestamptz)::NUMERIC, 1),
       round(extract(epoch FROM clock_timestamp() - :'gen_t1'::timestamptz)::NUMERIC, 1) \g (tuples_only format=unaligned fieldsep=' ')
