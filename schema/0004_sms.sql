-- 0004_sms.sql: schema anlyt of SMS delivery analytics (SMS.md §3): the four aggregate tables of
-- seed 002 with their exact columns and keys, the dedupe and rejection tables, the latency
-- sketch, per-second traffic counts, the ingestion watermark, the monthly partition helper, and
-- anlyt.ingest_batch: the one statement that applies a batch of events (SMS.md §2.4, §3.2).
-- Applied by the migration runner (common/migrate.c) in one transaction. Called by the ingest
-- workers and the HTTP workers through common/sms_store.c, and by the supervisor (partitions).

CREATE SCHEMA IF NOT EXISTS anlyt;

-- 1. Aggregates (seed 002). metrics_hourly and operator_performance are partitioned by month;
-- there is deliberately no default partition: an event for a month without a partition fails
-- its batch, which is then redelivered until the partition exists.
CREATE TABLE anlyt.metrics_hourly (
    hour_bucket TIMESTAMPTZ NOT NULL,
    scope TEXT NOT NULL,
    scope_id TEXT NOT NULL,
    total_messages BIGINT NOT NULL DEFAULT 0,
    delivered_messages BIGINT NOT NULL DEFAULT 0,
    failed_messages BIGINT NOT NULL DEFAULT 0,
    pending_messages BIGINT NOT NULL DEFAULT 0,
    total_cost NUMERIC(18,6) NOT NULL DEFAULT 0,
    latency_sum_ms BIGINT NOT NULL DEFAULT 0,
    latency_sample_count BIGINT NOT NULL DEFAULT 0,
    peak_tps INTEGER NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (hour_bucket, scope, scope_id)
) PARTITION BY RANGE (hour_bucket);

-- metrics_daily: the same counters per UTC day, written by the rollup (0005); not partitioned.
-- Its columns (types, NOT NULL, defaults, order) are metrics_hourly's, the bucket renamed.
CREATE TABLE anlyt.metrics_daily (LIKE anlyt.metrics_hourly INCLUDING DEFAULTS);
ALTER TABLE anlyt.metrics_daily RENAME COLUMN hour_bucket TO day_bucket;
ALTER TABLE anlyt.metrics_daily ADD PRIMARY KEY (day_bucket, scope, scope_id);

CREATE TABLE anlyt.operator_performance (
    hour_bucket TIMESTAMPTZ NOT NULL,
    operator_id UUID NOT NULL,
    total_messages BIGINT NOT NULL DEFAULT 0,
    delivered_messages BIGINT NOT NULL DEFAULT 0,
    failed_messages BIGINT NOT NULL DEFAULT 0,
    latency_sum_ms BIGINT NOT NULL DEFAULT 0,
    latency_sample_count BIGINT NOT NULL DEFAULT 0,
    latency_p95_ms INTEGER,
    peak_tps INTEGER NOT NULL DEFAULT 0,
    error_count BIGINT NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (hour_bucket, operator_id)
) PARTITION BY RANGE (hour_bucket);
CREATE INDEX ix_anlyt_op_perf_operator_hour
    ON anlyt.operator_performance (operator_id, hour_bucket DESC);

CREATE TABLE anlyt.account_usage_daily (
    day_bucket TIMESTAMPTZ NOT NULL,
    account_id UUID NOT NULL,
    messages_sent BIGINT NOT NULL DEFAULT 0,
    messages_delivered BIGINT NOT NULL DEFAULT 0,
    messages_failed BIGINT NOT NULL DEFAULT 0,
    total_cost NUMERIC(18,6) NOT NULL DEFAULT 0,
    total_segments BIGINT NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (day_bucket, account_id)
);
CREATE INDEX ix_anlyt_acct_usage_account ON anlyt.account_usage_daily (account_id, day_bucket DESC);

-- 2. Dedupe (seed 002), rejections, latency sketch (SMS.md §3.4), per-second charge counts.
CREATE TABLE anlyt.processed_events (
    event_id TEXT COLLATE "C" PRIMARY KEY, -- ids compare as bytes: no locale work per compare
    event_type TEXT NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX ix_anlyt_processed_at ON anlyt.processed_events (processed_at);

CREATE TABLE anlyt.rejected_events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    transport TEXT NOT NULL CHECK (transport IN ('nats', 'http')),
    subject TEXT,
    event_id TEXT,
    reason TEXT NOT NULL CHECK (reason IN ('invalid_json', 'not_an_object', 'missing_field',
                                           'invalid_field', 'unknown_event_type', 'too_old',
                                           'in_future')),
    field TEXT,
    payload BYTEA NOT NULL -- the first 8 KiB of the message as received
);
CREATE INDEX ix_anlyt_rejected_received ON anlyt.rejected_events (received_at);

-- bucket: -1 holds 0 ms; i >= 0 holds (gamma^(i-1), gamma^i] ms, gamma = 1.01/0.99.
CREATE TABLE anlyt.latency_histogram (
    hour_bucket TIMESTAMPTZ NOT NULL,
    scope TEXT NOT NULL CHECK (scope IN ('PLATFORM', 'OPERATOR')),
    scope_id TEXT NOT NULL,
    bucket SMALLINT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (hour_bucket, scope, scope_id, bucket)
) PARTITION BY RANGE (hour_bucket);

CREATE TABLE anlyt.traffic_seconds (
    second_bucket TIMESTAMPTZ NOT NULL,
    scope TEXT NOT NULL,
    scope_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (second_bucket, scope, scope_id)
);

-- Days whose hourly rows changed since the last rollup pass (SMS.md §3.3): marked by every
-- batch, in its transaction, before it writes any table the rollup writes; taken (deleted) by the
-- rollup in the transaction that recomputes them. A day listed here is read from its hourly rows.
CREATE TABLE anlyt.rollup_days (
    day_bucket TIMESTAMPTZ PRIMARY KEY,
    changes BIGINT NOT NULL DEFAULT 1
);

-- The newest submission time among all accepted events (meta.freshness.ingested_through).
CREATE TABLE anlyt.ingest_state (
    id BOOLEAN PRIMARY KEY DEFAULT true CHECK (id),
    ingested_through TIMESTAMPTZ
);
INSERT INTO anlyt.ingest_state (id, ingested_through) VALUES (true, NULL);

-- 3. Monthly partitions of the three partitioned tables covering every month that intersects
-- [p_from, p_to]; existing ones are kept. Serialised by a transaction-level advisory lock so
-- that several processes may call it at once. Returns the number of partitions created.
CREATE FUNCTION anlyt.ensure_partitions(p_from TIMESTAMPTZ, p_to TIMESTAMPTZ) RETURNS INTEGER
LANGUAGE plpgsql AS $$
DECLARE
    v_month TIMESTAMPTZ := date_trunc('month', p_from, 'UTC');
    v_table TEXT;
    v_name TEXT;
    v_created INTEGER := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('anlyt:partitions', 0));
    WHILE v_month <= p_to LOOP
        FOREACH v_table IN ARRAY ARRAY['metrics_hourly', 'operator_performance',
                                       'latency_histogram'] LOOP
            v_name := v_table || '_p' || to_char(v_month AT TIME ZONE 'UTC', 'YYYY_MM');
            IF to_regclass('anlyt.' || v_name) IS NULL THEN
                EXECUTE format('CREATE TABLE anlyt.%I PARTITION OF anlyt.%I '
                               'FOR VALUES FROM (%L) TO (%L)', v_name, v_table, v_month,
                               v_month + interval '1 month');
                v_created := v_created + 1;
            END IF;
        END LOOP;
        v_month := (v_month AT TIME ZONE 'UTC' + interval '1 month') AT TIME ZONE 'UTC';
    END LOOP;
    RETURN v_created;
END $$;

-- Events up to the default hourly retention (90 days) old are accepted, and the next two
-- months must exist before their first event; the supervisor extends this at startup and hourly.
SELECT anlyt.ensure_partitions(now() - interval '92 days', now() + interval '2 months');

-- 4. One batch of events, applied in one statement (so in one transaction): rejection rows,
-- dedupe records, then the counters of the accepted events. Element i of every p_ array
-- describes event i (1-based):
--   p_effect: 'C' charge, 'D' first-final DELIVERED, 'F' other final status, 'N' non-final
--   p_at: submission time (charges: occurred_at; receipts: submitted_at)
--   p_latency / p_sketch: for 'D', latency in ms and its sketch bucket (computed by the caller)
-- Each touched row is upserted once, and every statement locks rows in key order, tables always
-- in the order below, so concurrent batches never deadlock. Hours and days are UTC (the function
-- runs with TimeZone UTC; date_trunc's zone argument cost 5 % of a batch). Returns the positions accepted
-- (first time seen); the other events of the batch were duplicates.
-- The arrays are read with unnest only (subscripting a text[] walks it from its start), and the
-- joins between the batch's row sets are hash joins (their sizes are unknown to the planner; a
-- nested loop over them made a batch quadratic).
CREATE TYPE anlyt.batch_event AS (
    i INTEGER, event_id TEXT COLLATE "C", event_type TEXT, effect TEXT, at TIMESTAMPTZ,
    message_id TEXT COLLATE "C",
    account_id UUID, operator_id UUID, segments INTEGER, cost NUMERIC, latency BIGINT,
    sketch SMALLINT, has_error BOOLEAN);

CREATE FUNCTION anlyt.ingest_batch(
    p_event_id TEXT[], p_event_type TEXT[], p_effect TEXT[], p_at TIMESTAMPTZ[],
    p_message_id TEXT[], p_account_id UUID[], p_operator_id UUID[], p_segments INTEGER[],
    p_cost NUMERIC[], p_latency BIGINT[], p_sketch SMALLINT[], p_has_error BOOLEAN[],
    p_transport TEXT, p_rej_subject TEXT[], p_rej_event_id TEXT[], p_rej_reason TEXT[],
    p_rej_field TEXT[], p_rej_payload BYTEA[]) RETURNS INTEGER[]
LANGUAGE plpgsql SET TimeZone = 'UTC' AS $$
DECLARE
    v_all anlyt.batch_event[]; -- every valid event of the batch
    v_acc anlyt.batch_event[]; -- the accepted ones
    v_pk_hour TIMESTAMPTZ[];
    v_pk_scope TEXT[];
    v_pk_id TEXT[];
    v_pk_n INTEGER[];
BEGIN
    IF cardinality(p_rej_reason) > 0 THEN
        INSERT INTO anlyt.rejected_events (transport, subject, event_id, reason, field, payload)
        SELECT p_transport, r.subject, r.event_id, r.reason, r.field, r.payload
        FROM unnest(p_rej_subject, p_rej_event_id, p_rej_reason, p_rej_field, p_rej_payload)
             AS r(subject, event_id, reason, field, payload);
    END IF;
    IF coalesce(cardinality(p_event_id), 0) = 0 THEN
        RETURN '{}';
    END IF;
    SELECT array_agg(ROW(e.i, e.event_id, e.event_type, e.effect, e.at, e.message_id,
                         e.account_id, e.operator_id, e.segments, e.cost, e.latency, e.sketch,
                         e.has_error)::anlyt.batch_event)
    INTO v_all
    FROM unnest(p_event_id, p_event_type, p_effect, p_at, p_message_id, p_account_id,
                p_operator_id, p_segments, p_cost, p_latency, p_sketch, p_has_error)
         WITH ORDINALITY AS e(event_id, event_type, effect, at, message_id, account_id,
                              operator_id, segments, cost, latency, sketch, has_error, i);

    -- Dedupe by event_id (the first occurrence in the batch claims the key), then the guard of
    -- final receipts: a second final receipt of a message, under any event_id, is a duplicate.
    WITH firsts AS (
        SELECT DISTINCT ON (e.event_id) e.* FROM unnest(v_all) AS e ORDER BY e.event_id, e.i
    ), claimed AS (
        INSERT INTO anlyt.processed_events (event_id, event_type)
        SELECT event_id, event_type FROM firsts ORDER BY event_id
        ON CONFLICT DO NOTHING
        RETURNING event_id
    ), fresh AS (
        SELECT f.* FROM firsts f JOIN claimed c ON c.event_id = f.event_id
    ), fin AS (
        SELECT DISTINCT ON (k) ('dlr-final:' || message_id) COLLATE "C" AS k, i
        FROM fresh WHERE effect IN ('D', 'F') ORDER BY k, i
    ), fin_claimed AS (
        INSERT INTO anlyt.processed_events (event_id, event_type)
        SELECT k, 'sms.dlr.final' FROM fin ORDER BY k
        ON CONFLICT DO NOTHING
        RETURNING event_id
    ), fin_ok AS (
        SELECT fin.i FROM fin JOIN fin_claimed c ON c.event_id = fin.k
    )
    SELECT coalesce(array_agg(ROW(f.*)::anlyt.batch_event ORDER BY f.i), '{}') INTO v_acc
    FROM fresh f LEFT JOIN fin_ok o ON o.i = f.i
    WHERE f.effect NOT IN ('D', 'F') OR o.i IS NOT NULL;

    IF cardinality(v_acc) = 0 THEN
        RETURN '{}';
    END IF;

    -- The days this batch changes, first of the tables the rollup writes or deletes (so a batch
    -- and a rollup pass wait for each other here, never in a cycle). DO UPDATE takes the row
    -- lock: a pass that deletes the mark waits for this batch's commit, then sees its counters.
    INSERT INTO anlyt.rollup_days AS r (day_bucket)
    SELECT DISTINCT date_trunc('day', e.at) FROM unnest(v_acc) AS e WHERE e.effect <> 'N'
    ORDER BY 1
    ON CONFLICT (day_bucket) DO UPDATE SET changes = r.changes + 1;

    -- Per-second charge counts of every scope; the largest of each hour feeds peak_tps.
    WITH t AS (
        INSERT INTO anlyt.traffic_seconds AS t (second_bucket, scope, scope_id, n)
        SELECT date_trunc('second', e.at), s.scope, s.scope_id, count(*)
        FROM unnest(v_acc) AS e
        CROSS JOIN LATERAL (VALUES ('PLATFORM', 'platform'), ('OPERATOR', e.operator_id::TEXT),
                                   ('ACCOUNT', e.account_id::TEXT)) AS s(scope, scope_id)
        WHERE e.effect = 'C'
        GROUP BY 1, 2, 3
        ORDER BY 1, 2, 3
        ON CONFLICT (second_bucket, scope, scope_id) DO UPDATE SET n = t.n + EXCLUDED.n
        RETURNING t.second_bucket, t.scope, t.scope_id, t.n
    )
    SELECT array_agg(hour), array_agg(scope), array_agg(scope_id), array_agg(peak)
    INTO v_pk_hour, v_pk_scope, v_pk_id, v_pk_n
    FROM (SELECT date_trunc('hour', second_bucket) AS hour, scope, scope_id, max(n) AS peak
          FROM t GROUP BY 1, 2, 3) AS p;

    INSERT INTO anlyt.metrics_hourly AS m (hour_bucket, scope, scope_id, total_messages,
        delivered_messages, failed_messages, pending_messages, total_cost, latency_sum_ms,
        latency_sample_count, peak_tps, updated_at)
    SELECT hour, scope, scope_id, sum(tot), sum(del), sum(fail),
           GREATEST(sum(tot) - sum(del) - sum(fail), 0), sum(cost), sum(lat), sum(del), max(peak),
           now()
    FROM (
        SELECT date_trunc('hour', e.at) AS hour, s.scope, s.scope_id,
               (e.effect = 'C')::INTEGER AS tot, (e.effect = 'D')::INTEGER AS del,
               (e.effect = 'F')::INTEGER AS fail,
               CASE WHEN e.effect = 'C' THEN e.cost ELSE 0 END AS cost,
               CASE WHEN e.effect = 'D' THEN e.latency ELSE 0 END AS lat, 0 AS peak
        FROM unnest(v_acc) AS e
        CROSS JOIN LATERAL (VALUES ('PLATFORM', 'platform'), ('OPERATOR', e.operator_id::TEXT),
                                   ('ACCOUNT', e.account_id::TEXT)) AS s(scope, scope_id)
        WHERE e.effect <> 'N'
        UNION ALL
        SELECT p.hour, p.scope, p.scope_id, 0, 0, 0, 0, 0, p.peak
        FROM unnest(v_pk_hour, v_pk_scope, v_pk_id, v_pk_n) AS p(hour, scope, scope_id, peak)
    ) AS c
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (hour_bucket, scope, scope_id) DO UPDATE SET
        total_messages = m.total_messages + EXCLUDED.total_messages,
        delivered_messages = m.delivered_messages + EXCLUDED.delivered_messages,
        failed_messages = m.failed_messages + EXCLUDED.failed_messages,
        pending_messages = GREATEST(m.total_messages + EXCLUDED.total_messages
                                    - m.delivered_messages - EXCLUDED.delivered_messages
                                    - m.failed_messages - EXCLUDED.failed_messages, 0),
        total_cost = m.total_cost + EXCLUDED.total_cost,
        latency_sum_ms = m.latency_sum_ms + EXCLUDED.latency_sum_ms,
        latency_sample_count = m.latency_sample_count + EXCLUDED.latency_sample_count,
        peak_tps = GREATEST(m.peak_tps, EXCLUDED.peak_tps),
        updated_at = now();

    INSERT INTO anlyt.operator_performance AS o (hour_bucket, operator_id, total_messages,
        delivered_messages, failed_messages, latency_sum_ms, latency_sample_count, peak_tps,
        error_count, updated_at)
    SELECT hour, op, sum(tot), sum(del), sum(fail), sum(lat), sum(del), max(peak), sum(err), now()
    FROM (
        SELECT date_trunc('hour', e.at) AS hour, e.operator_id AS op,
               (e.effect = 'C')::INTEGER AS tot, (e.effect = 'D')::INTEGER AS del,
               (e.effect = 'F')::INTEGER AS fail,
               CASE WHEN e.effect = 'D' THEN e.latency ELSE 0 END AS lat, 0 AS peak,
               e.has_error::INTEGER AS err
        FROM unnest(v_acc) AS e
        WHERE e.effect <> 'N' OR e.has_error
        UNION ALL
        SELECT p.hour, p.scope_id::UUID, 0, 0, 0, 0, p.peak, 0
        FROM unnest(v_pk_hour, v_pk_scope, v_pk_id, v_pk_n) AS p(hour, scope, scope_id, peak)
        WHERE p.scope = 'OPERATOR'
    ) AS c
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT (hour_bucket, operator_id) DO UPDATE SET
        total_messages = o.total_messages + EXCLUDED.total_messages,
        delivered_messages = o.delivered_messages + EXCLUDED.delivered_messages,
        failed_messages = o.failed_messages + EXCLUDED.failed_messages,
        latency_sum_ms = o.latency_sum_ms + EXCLUDED.latency_sum_ms,
        latency_sample_count = o.latency_sample_count + EXCLUDED.latency_sample_count,
        peak_tps = GREATEST(o.peak_tps, EXCLUDED.peak_tps),
        error_count = o.error_count + EXCLUDED.error_count,
        updated_at = now();

    INSERT INTO anlyt.latency_histogram AS l (hour_bucket, scope, scope_id, bucket, n)
    SELECT date_trunc('hour', e.at), s.scope, s.scope_id, e.sketch, count(*)
    FROM unnest(v_acc) AS e
    CROSS JOIN LATERAL (VALUES ('PLATFORM', 'platform'),
                               ('OPERATOR', e.operator_id::TEXT)) AS s(scope, scope_id)
    WHERE e.effect = 'D'
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (hour_bucket, scope, scope_id, bucket) DO UPDATE SET n = l.n + EXCLUDED.n;

    INSERT INTO anlyt.account_usage_daily AS a (day_bucket, account_id, messages_sent,
        messages_delivered, messages_failed, total_cost, total_segments, updated_at)
    SELECT date_trunc('day', e.at), e.account_id,
           count(*) FILTER (WHERE e.effect = 'C'), count(*) FILTER (WHERE e.effect = 'D'),
           count(*) FILTER (WHERE e.effect = 'F'),
           coalesce(sum(e.cost) FILTER (WHERE e.effect = 'C'), 0),
           coalesce(sum(e.segments) FILTER (WHERE e.effect = 'C'), 0), now()
    FROM unnest(v_acc) AS e
    WHERE e.effect <> 'N'
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT (day_bucket, account_id) DO UPDATE SET
        messages_sent = a.messages_sent + EXCLUDED.messages_sent,
        messages_delivered = a.messages_delivered + EXCLUDED.messages_delivered,
        messages_failed = a.messages_failed + EXCLUDED.messages_failed,
        total_cost = a.total_cost + EXCLUDED.total_cost,
        total_segments = a.total_segments + EXCLUDED.total_segments,
        updated_at = now();

    UPDATE anlyt.ingest_state
    SET ingested_through = GREATEST(ingested_through, (SELECT max(e.at) FROM unnest(v_acc) AS e));

    RETURN ARRAY(SELECT e.i FROM unnest(v_acc) AS e);
END $$;
