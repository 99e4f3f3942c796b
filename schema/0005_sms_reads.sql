-- 0005_sms_reads.sql: what the SMS read API and its upkeep need on top of 0004 (SMS.md §3.3–§3.4,
-- §5, §6): indexes by scope for the range reads, daily latency sketches, the sketch's quantiles,
-- the daily rollup and the dropping of expired monthly partitions. Applied by the migration
-- runner (common/migrate.c) in one transaction. The rollup and the partition drop are called by
-- the leading supervisor (worker/leader.h) through common/sms_store.c; the quantile functions by
-- the read queries of common/sms_read.c (HTTP workers).

-- 1. Range reads go by scope first: one scope's hours are contiguous in these indexes. New rows
-- are few (one per scope and hour); counter updates do not touch indexed columns (HOT).
CREATE INDEX ix_anlyt_hourly_scope ON anlyt.metrics_hourly (scope, scope_id, hour_bucket);
CREATE INDEX ix_anlyt_daily_scope ON anlyt.metrics_daily (scope, scope_id, day_bucket);
CREATE INDEX ix_anlyt_histogram_scope ON anlyt.latency_histogram (scope, scope_id, hour_bucket);

-- 2. The day's sketch of each scope: the sum of its hours' sketches, written by the rollup, kept
-- SMS_DAILY_RETENTION_DAYS. A day listed in anlyt.rollup_days is read from its hours instead.
CREATE TABLE anlyt.latency_histogram_daily (
    scope TEXT NOT NULL CHECK (scope IN ('PLATFORM', 'OPERATOR')),
    scope_id TEXT NOT NULL,
    day_bucket TIMESTAMPTZ NOT NULL,
    bucket SMALLINT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (scope, scope_id, day_bucket, bucket)
);
CREATE INDEX ix_anlyt_histogram_daily_day ON anlyt.latency_histogram_daily (day_bucket);

-- 3. DDSketch (alpha = 1 %, gamma = 1.01/0.99): the value of bucket b in whole ms, rounded half
-- up (bucket -1 holds 0 ms).
CREATE FUNCTION anlyt.sketch_value(p_bucket SMALLINT) RETURNS INTEGER
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p_bucket < 0 THEN 0
                ELSE floor(2 * power(1.01::float8 / 0.99, p_bucket) / (1.01::float8 / 0.99 + 1)
                           + 0.5)::INTEGER END
$$;

-- 4. Daily rollup (SMS.md §3.3): takes the days marked by the batches and recomputes, from their
-- hours, their metrics_daily rows and daily sketches and the hourly latency_p95_ms of
-- operator_performance. Days before p_keep_from (hours leaving the retention) keep their last
-- rows. Idempotent; several calls at once are safe (each day is taken by one of them) but the
-- service runs it in the leader only. Every statement takes a new snapshot (VOLATILE), so the
-- recompute sees every batch whose mark the DELETE waited for. Returns the days recomputed.
CREATE FUNCTION anlyt.rollup(p_keep_from TIMESTAMPTZ) RETURNS INTEGER
LANGUAGE plpgsql SET TimeZone = 'UTC' AS $$
DECLARE
    v_days TIMESTAMPTZ[];
BEGIN
    -- Marks are locked in day order, the order batches mark them in (no lock cycle).
    WITH locked AS (
        SELECT day_bucket FROM anlyt.rollup_days ORDER BY day_bucket FOR UPDATE
    ), taken AS (
        DELETE FROM anlyt.rollup_days r USING locked l
        WHERE r.day_bucket = l.day_bucket
        RETURNING r.day_bucket
    )
    SELECT coalesce(array_agg(day_bucket ORDER BY day_bucket)
                    FILTER (WHERE day_bucket >= date_trunc('day', p_keep_from)), '{}')
    INTO v_days FROM taken;
    IF cardinality(v_days) = 0 THEN
        RETURN 0;
    END IF;

    INSERT INTO anlyt.metrics_daily AS m (day_bucket, scope, scope_id, total_messages,
        delivered_messages, failed_messages, pending_messages, total_cost, latency_sum_ms,
        latency_sample_count, peak_tps, updated_at)
    SELECT d.day, h.scope, h.scope_id, sum(h.total_messages), sum(h.delivered_messages),
           sum(h.failed_messages),
           GREATEST(sum(h.total_messages) - sum(h.delivered_messages) - sum(h.failed_messages), 0),
           sum(h.total_cost), sum(h.latency_sum_ms), sum(h.latency_sample_count), max(h.peak_tps),
           now()
    FROM unnest(v_days) AS d(day)
    JOIN anlyt.metrics_hourly h
      ON h.hour_bucket >= d.day AND h.hour_bucket < d.day + interval '1 day'
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (day_bucket, scope, scope_id) DO UPDATE SET
        total_messages = EXCLUDED.total_messages,
        delivered_messages = EXCLUDED.delivered_messages,
        failed_messages = EXCLUDED.failed_messages,
        pending_messages = EXCLUDED.pending_messages,
        total_cost = EXCLUDED.total_cost,
        latency_sum_ms = EXCLUDED.latency_sum_ms,
        latency_sample_count = EXCLUDED.latency_sample_count,
        peak_tps = EXCLUDED.peak_tps,
        updated_at = now()
    WHERE (m.total_messages, m.delivered_messages, m.failed_messages, m.total_cost,
           m.latency_sum_ms, m.latency_sample_count, m.peak_tps)
          IS DISTINCT FROM
          (EXCLUDED.total_messages, EXCLUDED.delivered_messages, EXCLUDED.failed_messages,
           EXCLUDED.total_cost, EXCLUDED.latency_sum_ms, EXCLUDED.latency_sample_count,
           EXCLUDED.peak_tps);

    INSERT INTO anlyt.latency_histogram_daily AS l (scope, scope_id, day_bucket, bucket, n)
    SELECT h.scope, h.scope_id, d.day, h.bucket, sum(h.n)
    FROM unnest(v_days) AS d(day)
    JOIN anlyt.latency_histogram h
      ON h.hour_bucket >= d.day AND h.hour_bucket < d.day + interval '1 day'
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (scope, scope_id, day_bucket, bucket) DO UPDATE SET n = EXCLUDED.n
    WHERE l.n <> EXCLUDED.n;

    UPDATE anlyt.operator_performance o SET latency_p95_ms = q.p95
    FROM unnest(v_days) AS d(day),
         LATERAL anlyt.sketch_percentiles('OPERATOR', NULL, d.day, d.day + interval '1 day',
                                          'hour', true) AS q
    WHERE o.hour_bucket = q.bucket AND o.operator_id = q.scope_id::UUID
      AND o.latency_p95_ms IS DISTINCT FROM q.p95;

    RETURN cardinality(v_days);
END $$;

-- 5. Drops the monthly partitions (named <table>_pYYYY_MM by ensure_partitions) of the three
-- partitioned tables whose every hour is before p_before. Serialised with ensure_partitions.
-- Dropping a partition locks its parent exclusively: lock_timeout keeps a long reader from
-- queueing every batch behind the drop (the drop fails and the next pass tries again).
-- Returns the names dropped.
CREATE FUNCTION anlyt.drop_partitions(p_before TIMESTAMPTZ) RETURNS TEXT[]
LANGUAGE plpgsql SET TimeZone = 'UTC' SET lock_timeout = '2s' AS $$
DECLARE
    v_part RECORD;
    v_dropped TEXT[] := '{}';
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('anlyt:partitions', 0));
    FOR v_part IN
        SELECT c.relname
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_class p ON p.oid = i.inhparent
        JOIN pg_namespace n ON n.oid = p.relnamespace
        WHERE n.nspname = 'anlyt'
          AND p.relname IN ('metrics_hourly', 'operator_performance', 'latency_histogram')
          AND c.relname ~ '_p[0-9]{4}_[0-9]{2}$'
          AND to_timestamp(right(c.relname, 7), 'YYYY_MM') + interval '1 month' <= p_before
        ORDER BY c.relname
    LOOP
        EXECUTE format('DROP TABLE anlyt.%I', v_part.relname);
        v_dropped := v_dropped || v_part.relname::TEXT;
    END LOOP;
    RETURN v_dropped;
END $$;

-- 6. The read API (SMS.md §6), one function per route so that the service and a benchmark run the
-- same statement. Common parameters: p_lo / p_hi the range [first day 00:00, day after the last
-- 00:00) UTC; p_floor the first day read from hourly rows (every hour of it is inside the hourly
-- retention); earlier days come from metrics_daily. Values come back already rounded the way
-- the answer writes them (SMS.md §6.1), so that sorting uses exactly those values.

-- d / n rounded half up to 6 decimals; NULL when n is 0.
CREATE FUNCTION anlyt.ratio6(p_part NUMERIC, p_whole NUMERIC) RETURNS NUMERIC
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p_whole > 0 THEN round(p_part / p_whole, 6) END
$$;

-- The sketch rows of one scope (p_id NULL: every id of the scope) over [p_lo, p_hi): a day's
-- daily sketch once rolled up, its hours' sketches while the day is marked in rollup_days. The
-- rollup's swap of both is one transaction, so a snapshot sees each day exactly once.
CREATE FUNCTION anlyt.sketch_rows(p_scope TEXT, p_id TEXT, p_lo TIMESTAMPTZ, p_hi TIMESTAMPTZ)
RETURNS TABLE (scope_id TEXT, at TIMESTAMPTZ, bucket SMALLINT, n BIGINT)
LANGUAGE sql STABLE AS $$
    SELECT x.scope_id, x.day_bucket, x.bucket, x.n
    FROM anlyt.latency_histogram_daily x
    WHERE x.scope = p_scope AND (p_id IS NULL OR x.scope_id = p_id)
      AND x.day_bucket >= p_lo AND x.day_bucket < p_hi
      AND x.day_bucket <> ALL (ARRAY(SELECT d.day_bucket FROM anlyt.rollup_days d))
    UNION ALL
    SELECT x.scope_id, x.hour_bucket, x.bucket, x.n
    FROM anlyt.rollup_days d
    JOIN anlyt.latency_histogram x
      ON x.hour_bucket >= d.day_bucket AND x.hour_bucket < d.day_bucket + interval '1 day'
    WHERE x.scope = p_scope AND (p_id IS NULL OR x.scope_id = p_id)
      AND d.day_bucket >= p_lo AND d.day_bucket < p_hi
$$;

-- P50, P95 and P99 of the sketches of one scope (p_id NULL: every id) over [p_lo, p_hi), per id
-- and per p_unit ('hour', 'day', 'month'; NULL: the whole range, bucket NULL), from the hourly
-- sketches when p_hourly, else from sketch_rows. The lower percentile: the value of the first
-- sketch bucket at which the running count reaches ceil(q * n) (exact numeric arithmetic).
-- Groups without samples have no row (their percentiles are null).
CREATE FUNCTION anlyt.sketch_percentiles(p_scope TEXT, p_id TEXT, p_lo TIMESTAMPTZ,
                                         p_hi TIMESTAMPTZ, p_unit TEXT, p_hourly BOOLEAN)
RETURNS TABLE (scope_id TEXT, bucket TIMESTAMPTZ, p50 INTEGER, p95 INTEGER, p99 INTEGER)
LANGUAGE sql STABLE AS $$
    WITH r AS (
        SELECT s.scope_id, s.at, s.bucket, s.n
        FROM anlyt.sketch_rows(p_scope, p_id, p_lo, p_hi) AS s
        WHERE NOT p_hourly
        UNION ALL
        SELECT h.scope_id, h.hour_bucket, h.bucket, h.n
        FROM anlyt.latency_histogram h
        WHERE p_hourly AND h.scope = p_scope AND (p_id IS NULL OR h.scope_id = p_id)
          AND h.hour_bucket >= p_lo AND h.hour_bucket < p_hi
    ), g AS (
        SELECT r.scope_id, date_trunc(p_unit, r.at) AS grp, r.bucket AS b, sum(r.n) AS n
        FROM r GROUP BY 1, 2, 3
    ), w AS (
        SELECT g.scope_id, g.grp, g.b,
               sum(g.n) OVER (PARTITION BY g.scope_id, g.grp ORDER BY g.b) AS cum,
               sum(g.n) OVER (PARTITION BY g.scope_id, g.grp) AS tot
        FROM g
    )
    SELECT w.scope_id, w.grp,
           anlyt.sketch_value(min(w.b) FILTER (WHERE w.cum >= ceil(0.50 * w.tot))),
           anlyt.sketch_value(min(w.b) FILTER (WHERE w.cum >= ceil(0.95 * w.tot))),
           anlyt.sketch_value(min(w.b) FILTER (WHERE w.cum >= ceil(0.99 * w.tot)))
    FROM w GROUP BY 1, 2
$$;

-- The counters of one scope (p_id NULL: every id) per hour (from p_floor on) and per day
-- (before p_floor). err is operator_performance.error_count (0 for other scopes and for days).
CREATE FUNCTION anlyt.counter_rows(p_scope TEXT, p_id TEXT, p_lo TIMESTAMPTZ, p_hi TIMESTAMPTZ,
                                   p_floor TIMESTAMPTZ)
RETURNS TABLE (scope_id TEXT, at TIMESTAMPTZ, hourly BOOLEAN, t BIGINT, d BIGINT, f BIGINT,
               cost NUMERIC, ls BIGINT, lc BIGINT, peak INTEGER, err BIGINT)
LANGUAGE sql STABLE AS $$
    SELECT h.scope_id, h.hour_bucket, true, h.total_messages, h.delivered_messages,
           h.failed_messages, h.total_cost, h.latency_sum_ms, h.latency_sample_count, h.peak_tps,
           0::BIGINT
    FROM anlyt.metrics_hourly h
    WHERE p_scope <> 'OPERATOR' AND h.scope = p_scope AND (p_id IS NULL OR h.scope_id = p_id)
      AND h.hour_bucket >= GREATEST(p_lo, p_floor) AND h.hour_bucket < p_hi
    UNION ALL
    SELECT o.operator_id::TEXT, o.hour_bucket, true, o.total_messages, o.delivered_messages,
           o.failed_messages, 0, o.latency_sum_ms, o.latency_sample_count, o.peak_tps,
           o.error_count
    FROM anlyt.operator_performance o
    WHERE p_scope = 'OPERATOR' AND (p_id IS NULL OR o.operator_id = p_id::UUID)
      AND o.hour_bucket >= GREATEST(p_lo, p_floor) AND o.hour_bucket < p_hi
    UNION ALL
    SELECT m.scope_id, m.day_bucket, false, m.total_messages, m.delivered_messages,
           m.failed_messages, m.total_cost, m.latency_sum_ms, m.latency_sample_count, m.peak_tps,
           0::BIGINT
    FROM anlyt.metrics_daily m
    WHERE m.scope = p_scope AND (p_id IS NULL OR m.scope_id = p_id)
      AND m.day_bucket >= p_lo AND m.day_bucket < LEAST(p_hi, p_floor)
$$;

-- GET /api/v1/sms/summary: one row.
CREATE FUNCTION anlyt.api_summary(p_lo TIMESTAMPTZ, p_hi TIMESTAMPTZ, p_floor TIMESTAMPTZ)
RETURNS TABLE (total_messages BIGINT, delivered_messages BIGINT, failed_messages BIGINT,
               pending_messages BIGINT, delivery_rate NUMERIC, error_rate NUMERIC,
               total_cost NUMERIC, avg_cost_per_message NUMERIC, avg_latency_ms NUMERIC,
               p50 INTEGER, p95 INTEGER, p99 INTEGER, peak_tps INTEGER, active_accounts BIGINT,
               active_operators BIGINT, ingested_through TIMESTAMPTZ, as_of TIMESTAMPTZ)
LANGUAGE sql STABLE AS $$
    WITH c AS (
        SELECT coalesce(sum(t), 0)::BIGINT AS t, coalesce(sum(d), 0)::BIGINT AS d,
               coalesce(sum(f), 0)::BIGINT AS f, coalesce(sum(cost), 0) AS cost,
               coalesce(sum(ls), 0) AS ls, coalesce(sum(lc), 0) AS lc,
               coalesce(max(peak), 0) AS peak
        FROM anlyt.counter_rows('PLATFORM', 'platform', p_lo, p_hi, p_floor)
    ), q AS (
        SELECT ARRAY[max(p50), max(p95), max(p99)] AS q
        FROM anlyt.sketch_percentiles('PLATFORM', 'platform', p_lo, p_hi, NULL, false)
    )
    SELECT c.t, c.d, c.f, GREATEST(c.t - c.d - c.f, 0), anlyt.ratio6(c.d, c.t),
           anlyt.ratio6(c.f, c.t), round(c.cost, 6), anlyt.ratio6(c.cost, c.t),
           CASE WHEN c.lc > 0 THEN round(c.ls::NUMERIC / c.lc) END, q.q[1], q.q[2], q.q[3],
           c.peak,
           (SELECT count(*) FROM (SELECT DISTINCT a.account_id FROM anlyt.account_usage_daily a
                                  WHERE a.day_bucket >= p_lo AND a.day_bucket < p_hi
                                    AND (a.messages_sent > 0 OR a.messages_delivered > 0
                                         OR a.messages_failed > 0)) AS x),
           (SELECT count(*) FROM (SELECT DISTINCT o.scope_id
                                  FROM anlyt.counter_rows('OPERATOR', NULL, p_lo, p_hi, p_floor) o
                                  WHERE o.t > 0 OR o.d > 0 OR o.f > 0) AS x),
           (SELECT s.ingested_through FROM anlyt.ingest_state s), now()
    FROM c, q
$$;

-- The operator items over a range (every operator with a message in it), unsorted.
CREATE FUNCTION anlyt.operator_items(p_lo TIMESTAMPTZ, p_hi TIMESTAMPTZ, p_floor TIMESTAMPTZ)
RETURNS TABLE (operator_id UUID, total_messages BIGINT, delivered_messages BIGINT,
               failed_messages BIGINT, pending_messages BIGINT, delivery_rate NUMERIC,
               error_rate NUMERIC, avg_latency_ms NUMERIC, p50 INTEGER, p95 INTEGER,
               p99 INTEGER, peak_tps INTEGER, error_count BIGINT)
LANGUAGE sql STABLE AS $$
    WITH c AS (
        SELECT scope_id, sum(t)::BIGINT AS t, sum(d)::BIGINT AS d, sum(f)::BIGINT AS f,
               sum(ls) AS ls, sum(lc) AS lc, max(peak) AS peak, sum(err)::BIGINT AS err
        FROM anlyt.counter_rows('OPERATOR', NULL, p_lo, p_hi, p_floor)
        GROUP BY scope_id
        HAVING sum(t) > 0 OR sum(d) > 0 OR sum(f) > 0
    )
    SELECT c.scope_id::UUID, c.t, c.d, c.f, GREATEST(c.t - c.d - c.f, 0), anlyt.ratio6(c.d, c.t),
           anlyt.ratio6(c.f, c.t), CASE WHEN c.lc > 0 THEN round(c.ls::NUMERIC / c.lc) END,
           q.p50, q.p95, q.p99, c.peak, c.err
    FROM c
    LEFT JOIN anlyt.sketch_percentiles('OPERATOR', NULL, p_lo, p_hi, NULL, false) AS q
      ON q.scope_id = c.scope_id
$$;

-- GET /api/v1/sms/operators/{id}/metrics: first the totals row (bucket NULL; found says whether
-- the operator has any row in the retained aggregates), then the series rows, buckets ascending,
-- only those with a counter not zero. p_window is 'hour' (hours from p_floor on) or 'day'.
CREATE FUNCTION anlyt.api_operator_metrics(p_id UUID, p_lo TIMESTAMPTZ, p_hi TIMESTAMPTZ,
                                           p_floor TIMESTAMPTZ, p_window TEXT)
RETURNS TABLE (found BOOLEAN, bucket TIMESTAMPTZ, total_messages BIGINT,
               delivered_messages BIGINT, failed_messages BIGINT, pending_messages BIGINT,
               delivery_rate NUMERIC, error_rate NUMERIC, avg_latency_ms NUMERIC, p50 INTEGER,
               p95 INTEGER, p99 INTEGER, peak_tps INTEGER, error_count BIGINT,
               ingested_through TIMESTAMPTZ, as_of TIMESTAMPTZ)
LANGUAGE sql STABLE AS $$
    WITH c AS (
        SELECT * FROM anlyt.counter_rows('OPERATOR', p_id::TEXT, p_lo, p_hi, p_floor)
    ), series AS (
        SELECT date_trunc(p_window, c.at) AS bucket, sum(c.t)::BIGINT AS t,
               sum(c.d)::BIGINT AS d, sum(c.f)::BIGINT AS f, sum(c.ls) AS ls, sum(c.lc) AS lc,
               max(c.peak) AS peak, sum(c.err)::BIGINT AS err
        FROM c WHERE p_window = 'day' OR c.hourly
        GROUP BY 1
    ), series_q AS (
        SELECT * FROM anlyt.sketch_percentiles(
            'OPERATOR', p_id::TEXT,
            CASE WHEN p_window = 'hour' THEN GREATEST(p_lo, p_floor) ELSE p_lo END, p_hi,
            p_window, p_window = 'hour')
    ), tot AS (
        SELECT coalesce(sum(c.t), 0)::BIGINT AS t, coalesce(sum(c.d), 0)::BIGINT AS d,
               coalesce(sum(c.f), 0)::BIGINT AS f, coalesce(sum(c.ls), 0) AS ls,
               coalesce(sum(c.lc), 0) AS lc, coalesce(max(c.peak), 0) AS peak,
               coalesce(sum(c.err), 0)::BIGINT AS err,
               (SELECT ARRAY[q.p50, q.p95, q.p99]
                FROM anlyt.sketch_percentiles('OPERATOR', p_id::TEXT, p_lo, p_hi, NULL, false) q)
                   AS q
        FROM c
    )
    SELECT EXISTS (SELECT 1 FROM anlyt.operator_performance o WHERE o.operator_id = p_id)
           OR EXISTS (SELECT 1 FROM anlyt.metrics_daily m
                      WHERE m.scope = 'OPERATOR' AND m.scope_id = p_id::TEXT),
           NULL::TIMESTAMPTZ, t, d, f, GREATEST(t - d - f, 0), anlyt.ratio6(d, t),
           anlyt.ratio6(f, t), CASE WHEN lc > 0 THEN round(ls::NUMERIC / lc) END, q[1], q[2],
           q[3], peak, err, (SELECT ingested_through FROM anlyt.ingest_state), now()
    FROM tot
    UNION ALL
    SELECT NULL, s.bucket, s.t, s.d, s.f, GREATEST(s.t - s.d - s.f, 0), anlyt.ratio6(s.d, s.t),
           anlyt.ratio6(s.f, s.t), CASE WHEN s.lc > 0 THEN round(s.ls::NUMERIC / s.lc) END,
           q.p50, q.p95, q.p99, s.peak, s.err, NULL, NULL
    FROM series s LEFT JOIN series_q q ON q.bucket = s.bucket
    WHERE s.t <> 0 OR s.d <> 0 OR s.f <> 0 OR s.err <> 0
    ORDER BY 2 NULLS FIRST
$$;

-- The account items over a range (every account with a message in it), unsorted.
CREATE FUNCTION anlyt.account_items(p_lo TIMESTAMPTZ, p_hi TIMESTAMPTZ, p_id UUID)
RETURNS TABLE (account_id UUID, messages_sent BIGINT, messages_delivered BIGINT,
               messages_failed BIGINT, delivery_rate NUMERIC, total_cost NUMERIC,
               avg_cost_per_message NUMERIC, total_segments BIGINT)
LANGUAGE sql STABLE AS $$
    SELECT a.account_id, sum(a.messages_sent)::BIGINT, sum(a.messages_delivered)::BIGINT,
           sum(a.messages_failed)::BIGINT, anlyt.ratio6(sum(a.messages_delivered),
           sum(a.messages_sent)), round(sum(a.total_cost), 6),
           anlyt.ratio6(sum(a.total_cost), sum(a.messages_sent)), sum(a.total_segments)::BIGINT
    FROM anlyt.account_usage_daily a
    WHERE a.day_bucket >= p_lo AND a.day_bucket < p_hi AND (p_id IS NULL OR a.account_id = p_id)
    GROUP BY a.account_id
    HAVING sum(a.messages_sent) > 0 OR sum(a.messages_delivered) > 0
        OR sum(a.messages_failed) > 0
$$;

-- GET /api/v1/sms/operators and GET /api/v1/sms/accounts: the page, each row with the total
-- count; an empty page is one row whose id (operator_id, account_id) is NULL. p_sort is one of
-- the route's sort keys (checked by the caller): a key of the list below, or the id (ascending
-- unless p_desc); ties go by id ascending. The two differ only in their items function, id, sort
-- keys and columns, so both are created from the one body below: each row of the list holds
-- what differs and format() fills it in. The functions stored are as if written out by hand.
DO $do$
DECLARE
    f RECORD;
BEGIN
    FOR f IN SELECT * FROM (VALUES
        -- api_operators: operator_items; sort total_messages, delivery_rate, error_rate,
        -- avg_latency_ms, p95_latency_ms, peak_tps or operator_id.
        ('api_operators',
         'p_lo TIMESTAMPTZ, p_hi TIMESTAMPTZ, p_floor TIMESTAMPTZ, p_sort TEXT, p_desc BOOLEAN, '
         'p_limit INTEGER, p_offset INTEGER',
         'total BIGINT, operator_id UUID, total_messages BIGINT, delivered_messages BIGINT, '
         'failed_messages BIGINT, pending_messages BIGINT, delivery_rate NUMERIC, '
         'error_rate NUMERIC, avg_latency_ms NUMERIC, p50 INTEGER, p95 INTEGER, p99 INTEGER, '
         'peak_tps INTEGER, error_count BIGINT, ingested_through TIMESTAMPTZ, as_of TIMESTAMPTZ',
         'operator_items(p_lo, p_hi, p_floor)', 'operator_id',
         ARRAY['WHEN ''total_messages'' THEN i.total_messages::NUMERIC',
               'WHEN ''delivery_rate'' THEN i.delivery_rate',
               'WHEN ''error_rate'' THEN i.error_rate',
               'WHEN ''avg_latency_ms'' THEN i.avg_latency_ms',
               'WHEN ''p95_latency_ms'' THEN i.p95::NUMERIC',
               'WHEN ''peak_tps'' THEN i.peak_tps::NUMERIC'],
         ARRAY['p.total, p.operator_id, p.total_messages, p.delivered_messages, p.failed_messages',
               'p.pending_messages, p.delivery_rate, p.error_rate, p.avg_latency_ms, p.p50, p.p95',
               'p.p99, p.peak_tps, p.error_count, s.it, s.as_of'],
         15),
        -- api_accounts: account_items (all accounts); sort total_cost, messages_sent,
        -- delivery_rate or account_id.
        ('api_accounts',
         'p_lo TIMESTAMPTZ, p_hi TIMESTAMPTZ, p_sort TEXT, p_desc BOOLEAN, p_limit INTEGER, '
         'p_offset INTEGER',
         'total BIGINT, account_id UUID, messages_sent BIGINT, messages_delivered BIGINT, '
         'messages_failed BIGINT, delivery_rate NUMERIC, total_cost NUMERIC, '
         'avg_cost_per_message NUMERIC, total_segments BIGINT, ingested_through TIMESTAMPTZ, '
         'as_of TIMESTAMPTZ',
         'account_items(p_lo, p_hi, NULL)', 'account_id',
         ARRAY['WHEN ''total_cost'' THEN i.total_cost',
               'WHEN ''messages_sent'' THEN i.messages_sent::NUMERIC',
               'WHEN ''delivery_rate'' THEN i.delivery_rate'],
         ARRAY['p.total, p.account_id, p.messages_sent, p.messages_delivered, p.messages_failed',
               'p.delivery_rate, p.total_cost, p.avg_cost_per_message, p.total_segments, '
               's.it, s.as_of'],
         10)
    ) AS v(name, args, cols, items, id, sort_keys, select_lines, nulls) LOOP
        -- The empty page's row: the count, then one NULL per other column (nulls), eight on
        -- the first line.
        EXECUTE format($f$CREATE FUNCTION anlyt.%1$s(%2$s) RETURNS TABLE (%3$s)
LANGUAGE sql STABLE AS $$
    WITH i AS (
        SELECT i.*, CASE p_sort %6$s END AS k
        FROM anlyt.%4$s AS i
    ), page AS (
        SELECT count(*) OVER () AS total,
               row_number() OVER (
                   ORDER BY CASE WHEN p_desc THEN i.k END DESC NULLS LAST,
                            CASE WHEN NOT p_desc THEN i.k END ASC NULLS LAST,
                            CASE WHEN p_sort = '%5$s' AND p_desc THEN i.%5$s END
                                DESC,
                            i.%5$s) AS rn,
               i.*
        FROM i
    ), s AS (
        SELECT (SELECT ingested_through FROM anlyt.ingest_state) AS it, now() AS as_of
    )
    SELECT %7$s
    FROM (SELECT * FROM page WHERE rn > p_offset AND rn <= p_offset + p_limit
          UNION ALL
          SELECT (SELECT count(*) FROM page), %8$s,
                 %9$s
          WHERE NOT EXISTS (SELECT 1 FROM page WHERE rn > p_offset AND rn <= p_offset + p_limit))
         AS p, s
    ORDER BY p.rn
$$$f$,
            f.name, f.args, f.cols, f.items, f.id,
            array_to_string(f.sort_keys, E'\n' || repeat(' ', 32)),
            array_to_string(f.select_lines, E',\n' || repeat(' ', 11)),
            array_to_string(array_fill('NULL'::TEXT, ARRAY[8]), ', '),
            array_to_string(array_fill('NULL'::TEXT, ARRAY[f.nulls - 8]), ', '));
    END LOOP;
END $do$;

-- GET /api/v1/sms/accounts/{id}/usage: the totals row (bucket NULL, found), then the series
-- (p_window 'day' or 'month'; a month counts only the days inside the range).
CREATE FUNCTION anlyt.api_account_usage(p_id UUID, p_lo TIMESTAMPTZ, p_hi TIMESTAMPTZ,
                                        p_window TEXT)
RETURNS TABLE (found BOOLEAN, bucket DATE, messages_sent BIGINT, messages_delivered BIGINT,
               messages_failed BIGINT, delivery_rate NUMERIC, total_cost NUMERIC,
               avg_cost_per_message NUMERIC, total_segments BIGINT,
               ingested_through TIMESTAMPTZ, as_of TIMESTAMPTZ)
LANGUAGE sql STABLE SET TimeZone = 'UTC' AS $$
    WITH s AS (
        SELECT date_trunc(p_window, a.day_bucket) AS bucket, sum(a.messages_sent) AS sent,
               sum(a.messages_delivered) AS del, sum(a.messages_failed) AS fail,
               sum(a.total_cost) AS cost, sum(a.total_segments) AS seg
        FROM anlyt.account_usage_daily a
        WHERE a.account_id = p_id AND a.day_bucket >= p_lo AND a.day_bucket < p_hi
        GROUP BY 1
    ), t AS (
        SELECT coalesce(sum(sent), 0)::BIGINT AS sent, coalesce(sum(del), 0)::BIGINT AS del,
               coalesce(sum(fail), 0)::BIGINT AS fail, coalesce(sum(cost), 0) AS cost,
               coalesce(sum(seg), 0)::BIGINT AS seg
        FROM s
    )
    SELECT EXISTS (SELECT 1 FROM anlyt.account_usage_daily a WHERE a.account_id = p_id),
           NULL::DATE, sent, del, fail, anlyt.ratio6(del, sent), round(cost, 6),
           anlyt.ratio6(cost, sent), seg, (SELECT ingested_through FROM anlyt.ingest_state), now()
    FROM t
    UNION ALL
    SELECT NULL, s.bucket::DATE, s.sent::BIGINT, s.del::BIGINT, s.fail::BIGINT,
           anlyt.ratio6(s.del, s.sent), round(s.cost, 6), anlyt.ratio6(s.cost, s.sent),
           s.seg::BIGINT, NULL, NULL
    FROM s WHERE s.sent <> 0 OR s.del <> 0 OR s.fail <> 0
    ORDER BY 2 NULLS FIRST
$$;
