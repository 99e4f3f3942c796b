/*
 * seed/sms_demo.c: the SMS demo data set of SMS.md §8 (see sms_demo.h). Runs in the
 * `analyticsd seed` process and in the master at startup when APP_AUTO_SEED is true.
 *
 * Every message is a JSON body built here and handed to the real ingestion code: sms_event_parse
 * (as an ingest worker does for a NATS message) and an sms_batch applied with sms_store_apply
 * every 500 messages, all inside one transaction. The generator is a splitmix64 stream with a
 * fixed seed and integer arithmetic only, so every count and amount is the same on every machine
 * and every day; only the submission times move with the clock: uniform over [00:00 UTC 29 days
 * ago, now - 10 min), but 10 % in 8 bursts of 20 s that start on a whole second (so peak_tps is
 * fixed too).
 *
 * Per message i (1..20,000): charge "demo-c-%06d" of message "demo-m-%06d"; then 0.8 % get no
 * receipt and 1.2 % only an ACCEPTED one (both stay pending), 15 % of the rest an ENROUTE receipt
 * first, then one final receipt (DELIVERED, latency 200 ms to 30 s; or FAILED, EXPIRED, REJECTED,
 * UNDELIVERABLE, by operator quality). Receipts are "demo-d-%06d". Duplicates (2 % of charges and
 * 1 % of final receipts sent again, 0.5 % of delivered messages with a second DELIVERED receipt
 * under a new id) are sent after all the originals, as a redelivery would. Messages 500, 1,500, …
 * are followed by one of ten invalid messages "demo-r-%03d" (each kind twice), every 5,000th by
 * an event type billing.events carries but this service ignores.
 */
#include "seed/sms_demo.h"

#include "common/dates.h"
#include "common/log.h"
#include "common/pgsession.h"
#include "common/sms_event.h"
#include "common/sms_store.h"
#include "common/util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEMO_SEED     UINT64_C(0x5eed0005d3d0da7a)
#define DEMO_MESSAGES 20000
#define DEMO_ACCOUNTS 40
#define DEMO_BATCH    500 /* messages per sms_store_apply, as SMS_INGEST_BATCH's default */
#define DEMO_BODY_MAX 512

/* Share of the traffic (%), price per segment (micro-units), failures (‰), slowness (+%). */
static const struct {
    unsigned share, price, fail, slow;
} demo_ops[] = {{40, 7500, 20, 0}, {30, 8200, 45, 5}, {20, 6900, 80, 10}, {10, 11300, 150, 20}};

/* A message held back to be sent again after the originals. */
typedef struct demo_later {
    sms_subject subject;
    char *body;
} demo_later;

typedef struct demo {
    PGconn *conn;
    uint64_t rng;
    sms_window win;
    int64_t start_ms, span_ms; /* submission times: [start_ms, start_ms + span_ms) */
    int receipts;              /* receipt ids handed out */
    sms_batch batch;
    size_t in_batch; /* messages in the batch: events, rejections and ignored ones */
    bool accepted[DEMO_BATCH];
    demo_later *later;
    size_t nlater, cap_later;
    size_t sent, accepted_n, duplicate_n, ignored_n, rejected_n;
} demo;

static uint64_t rng_next(demo *d)
{
    uint64_t z = (d->rng += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Uniform in [0, n). */
static uint64_t rng_below(demo *d, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)rng_next(d) * n) >> 64);
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" of Unix milliseconds ms (>= 0). */
static void fmt_time(int64_t ms, char out[32])
{
    int64_t secs = ms / 1000, days = secs / 86400, sod = secs % 86400;
    int y, m, d;
    dates_civil_from_days(days, &y, &m, &d);
    snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, m, d, (int)(sod / 3600),
             (int)(sod / 60 % 60), (int)(sod % 60), (int)(ms % 1000));
}

/* Applies the batch (if any) and counts its outcomes. Returns 0, or -1 (logged by the store). */
static int flush(demo *d)
{
    if (d->in_batch == 0)
        return 0;
    if (sms_store_apply(d->conn, &d->batch, d->accepted) != SMS_STORE_OK)
        return -1;
    for (size_t i = 0; i < d->batch.events; i++) {
        if (d->accepted[i])
            d->accepted_n++;
        else
            d->duplicate_n++;
    }
    d->rejected_n += d->batch.rejections;
    sms_batch_reset(&d->batch);
    d->in_batch = 0;
    return 0;
}

/* Validates one message received on `subject` into the batch. Returns 0 or -1 (flush). */
static int submit(demo *d, sms_subject subject, const char *body)
{
    sms_parse p;
    size_t len = strlen(body);
    sms_event_parse(body, len, subject, NULL, &d->win, &p);
    if (p.verdict == SMS_VALID)
        sms_batch_add_event(&d->batch, &p.ev);
    else if (p.verdict == SMS_REJECTED)
        sms_batch_add_rejection(&d->batch, sms_subject_name(subject), &p, body, len);
    else
        d->ignored_n++;
    sms_parse_free(&p);
    d->sent++;
    return ++d->in_batch == DEMO_BATCH ? flush(d) : 0;
}

/* Keeps a copy of body to be sent again after the originals. */
static void later(demo *d, sms_subject subject, const char *body)
{
    if (d->nlater == d->cap_later) {
        d->cap_later = d->cap_later ? 2 * d->cap_later : 256;
        d->later = xrealloc(d->later, d->cap_later * sizeof(*d->later));
    }
    d->later[d->nlater++] = (demo_later){subject, xstrdup(body)};
}

static void operator_id(unsigned op, char out[37])
{
    snprintf(out, 37, "0f000000-0000-4000-8000-%012u", op + 1);
}

static void account_id(unsigned acct, char out[37])
{
    snprintf(out, 37, "0a000000-0000-4000-8000-%012u", acct + 1);
}

/* The facts every event of one message shares. */
typedef struct demo_msg {
    int i;
    char op[37], acct[37];
    int64_t at_ms;
} demo_msg;

/* Sends a receipt of m with status, received after delay_ms; code "" for none. */
static int receipt(demo *d, const demo_msg *m, const char *status, int64_t delay_ms,
                   const char *code, char body[DEMO_BODY_MAX])
{
    char occurred[32], submitted[32];
    fmt_time(m->at_ms + delay_ms, occurred);
    fmt_time(m->at_ms, submitted);
    snprintf(body, DEMO_BODY_MAX,
             "{\"event_id\":\"demo-d-%06d\",\"event_type\":\"sms.dlr.received\","
             "\"occurred_at\":\"%s\",\"message_id\":\"demo-m-%06d\",\"account_id\":\"%s\","
             "\"operator_id\":\"%s\",\"status\":\"%s\",\"submitted_at\":\"%s\","
             "\"error_code\":\"%s\"}",
             ++d->receipts, occurred, m->i, m->acct, m->op, status, submitted, code);
    return submit(d, SMS_SUBJECT_DLR, body);
}

/* Delivery latency in ms, log-ish: 200 ms to 30 s, slower operators shifted up. */
static int64_t latency(demo *d, unsigned op)
{
    uint64_t band = rng_below(d, 100) + demo_ops[op].slow;
    if (band < 50)
        return 200 + (int64_t)rng_below(d, 1800);
    if (band < 85)
        return 2000 + (int64_t)rng_below(d, 6000);
    if (band < 97)
        return 8000 + (int64_t)rng_below(d, 12000);
    return 20000 + (int64_t)rng_below(d, 10001);
}

/* The final receipt of a message that failed: status, error code (EXPIRED has none). */
static int failure(demo *d, const demo_msg *m, char body[DEMO_BODY_MAX])
{
    static const char *const codes[] = {"34", "69", "255"};
    uint64_t kind = rng_below(d, 10);
    int64_t delay = 1000 + (int64_t)rng_below(d, 300000);
    if (kind < 5)
        return receipt(d, m, "FAILED", delay, codes[rng_below(d, ARRAY_LEN(codes))], body);
    if (kind < 8)
        return receipt(d, m, "EXPIRED", delay, "", body);
    if (kind < 9)
        return receipt(d, m, "REJECTED", delay, "88", body);
    return receipt(d, m, "UNDELIVERABLE", delay, "1", body);
}

/* Message i: its charge and receipts (duplicates kept for later). Returns 0 or -1. */
static int one_message(demo *d, int i)
{
    demo_msg m = {.i = i};
    unsigned op = 0;
    for (uint64_t r = rng_below(d, 100); r >= demo_ops[op].share; op++)
        r -= demo_ops[op].share;
    unsigned acct = (unsigned)rng_below(d, 1 + rng_below(d, DEMO_ACCOUNTS)); /* skewed to low */
    operator_id(op, m.op);
    account_id(acct, m.acct);
    if (rng_below(d, 10) == 0) { /* one of 8 campaign bursts of 20 s (peak_tps) */
        int64_t base = d->start_ms + d->span_ms / 16 * (2 * (int64_t)rng_below(d, 8) + 1);
        m.at_ms = base - base % 1000 + (int64_t)rng_below(d, 20000);
    } else {
        m.at_ms = d->start_ms + (int64_t)rng_below(d, (uint64_t)d->span_ms);
    }

    uint64_t r = rng_below(d, 100);
    int segments = r < 70 ? 1 : r < 90 ? 2 : r < 98 ? 3 : 4 + (int)rng_below(d, 3);
    int64_t cost = (int64_t)demo_ops[op].price * segments * (acct < 5 ? 9 : 10) / 10;
    char body[DEMO_BODY_MAX], at[32], cost_text[32];
    fmt_time(m.at_ms, at);
    snprintf(cost_text, sizeof(cost_text), "%" PRId64 ".%06" PRId64, cost / 1000000,
             cost % 1000000);
    bool as_number = rng_below(d, 20) == 0; /* a JSON number, checked on its literal text */
    snprintf(body, sizeof(body),
             "{\"event_id\":\"demo-c-%06d\",\"event_type\":\"billing.message.charged\","
             "\"occurred_at\":\"%s\",\"message_id\":\"demo-m-%06d\",\"account_id\":\"%s\","
             "\"operator_id\":\"%s\",\"segments\":%d,\"cost\":%s%s%s}",
             i, at, i, m.acct, m.op, segments, as_number ? "" : "\"", cost_text,
             as_number ? "" : "\"");
    if (submit(d, SMS_SUBJECT_BILLING, body) != 0)
        return -1;
    if (rng_below(d, 100) < 2)
        later(d, SMS_SUBJECT_BILLING, body);

    r = rng_below(d, 1000);
    if (r < 8) /* no receipt yet: pending */
        return 0;
    if (r < 20) /* accepted by the operator, no final status yet: pending */
        return receipt(d, &m, "ACCEPTED", 100, "", body);
    if (rng_below(d, 100) < 15 &&
        receipt(d, &m, "ENROUTE", 50 + (int64_t)rng_below(d, 100), "", body) != 0)
        return -1;
    if (rng_below(d, 1000) < demo_ops[op].fail) {
        if (failure(d, &m, body) != 0)
            return -1;
    } else {
        int64_t lat = latency(d, op);
        if (receipt(d, &m, "DELIVERED", lat, "", body) != 0)
            return -1;
        if (rng_below(d, 1000) < 5) { /* a second final receipt under a new event id */
            char again[DEMO_BODY_MAX];
            char occurred[32];
            fmt_time(m.at_ms + lat + 1000, occurred);
            snprintf(again, sizeof(again),
                     "{\"event_id\":\"demo-d-%06d\",\"event_type\":\"sms.dlr.received\","
                     "\"occurred_at\":\"%s\",\"message_id\":\"demo-m-%06d\","
                     "\"account_id\":\"%s\",\"operator_id\":\"%s\",\"status\":\"DELIVERED\","
                     "\"submitted_at\":\"%s\"}",
                     ++d->receipts, occurred, i, m.acct, m.op, at);
            later(d, SMS_SUBJECT_DLR, again);
        }
    }
    if (rng_below(d, 100) < 1) /* body holds the final receipt */
        later(d, SMS_SUBJECT_DLR, body);
    return 0;
}

/* Ten invalid messages, one per %03d id; their rejection reason and field in the comment. */
#define DEMO_VALID_IDS                                                                             \
    "\"message_id\":\"demo-r-m\",\"account_id\":\"0a000000-0000-4000-8000-000000000001\","         \
    "\"operator_id\":\"0f000000-0000-4000-8000-000000000001\""
static const struct {
    sms_subject subject;
    const char *fmt;
} demo_invalid[] = {
    /* invalid_json */
    {SMS_SUBJECT_BILLING,
     "{\"event_id\":\"demo-r-%03d\",\"event_type\":\"billing.message.charged\",\"occurred_at\":"},
    /* not_an_object */
    {SMS_SUBJECT_DLR, "[\"demo-r-%03d\"]"},
    /* missing_field event_id */
    {SMS_SUBJECT_BILLING, "{\"id\":\"demo-r-%03d\",\"event_type\":\"billing.message.charged\"}"},
    /* missing_field cost */
    {SMS_SUBJECT_BILLING,
     "{\"event_id\":\"demo-r-%03d\",\"event_type\":\"billing.message.charged\","
     "\"occurred_at\":\"2026-01-01T00:00:00Z\"," DEMO_VALID_IDS ",\"segments\":1}"},
    /* invalid_field account_id */
    {SMS_SUBJECT_BILLING,
     "{\"event_id\":\"demo-r-%03d\",\"event_type\":\"billing.message.charged\","
     "\"occurred_at\":\"2026-01-01T00:00:00Z\",\"message_id\":\"demo-r-m\","
     "\"account_id\":\"account-7\",\"operator_id\":\"0f000000-0000-4000-8000-000000000001\","
     "\"segments\":1,\"cost\":\"0.0075\"}"},
    /* invalid_field cost (7 decimals) */
    {SMS_SUBJECT_BILLING,
     "{\"event_id\":\"demo-r-%03d\",\"event_type\":\"billing.message.charged\","
     "\"occurred_at\":\"2026-01-01T00:00:00Z\"," DEMO_VALID_IDS
     ",\"segments\":1,\"cost\":\"0.0075000\"}"},
    /* invalid_field status */
    {SMS_SUBJECT_DLR, "{\"event_id\":\"demo-r-%03d\",\"event_type\":\"sms.dlr.received\","
                      "\"occurred_at\":\"2026-01-01T00:00:00Z\"," DEMO_VALID_IDS
                      ",\"status\":\"delivered\",\"submitted_at\":\"2026-01-01T00:00:00Z\"}"},
    /* unknown_event_type */
    {SMS_SUBJECT_DLR, "{\"event_id\":\"demo-r-%03d\",\"event_type\":\"sms.dlr.bounced\"}"},
    /* in_future occurred_at */
    {SMS_SUBJECT_BILLING,
     "{\"event_id\":\"demo-r-%03d\",\"event_type\":\"billing.message.charged\","
     "\"occurred_at\":\"2999-01-01T00:00:00Z\"," DEMO_VALID_IDS ",\"segments\":1,\"cost\":1}"},
    /* too_old submitted_at (beyond the largest SMS_HOURLY_RETENTION_DAYS) */
    {SMS_SUBJECT_DLR, "{\"event_id\":\"demo-r-%03d\",\"event_type\":\"sms.dlr.received\","
                      "\"occurred_at\":\"1900-01-01T00:00:05Z\"," DEMO_VALID_IDS
                      ",\"status\":\"DELIVERED\",\"submitted_at\":\"1900-01-01T00:00:00Z\"}"},
};

/* Every message of the data set, then the held-back duplicates. Returns 0 or -1. */
static int generate(demo *d)
{
    char body[DEMO_BODY_MAX];
    int invalid = 0;
    for (int i = 1; i <= DEMO_MESSAGES; i++) {
        if (one_message(d, i) != 0)
            return -1;
        if (i % 1000 == 500) {
            size_t k = (size_t)invalid % ARRAY_LEN(demo_invalid);
            snprintf(body, sizeof(body), demo_invalid[k].fmt, ++invalid);
            if (submit(d, demo_invalid[k].subject, body) != 0)
                return -1;
        }
        if (i % 5000 == 0) {
            snprintf(body, sizeof(body),
                     "{\"event_id\":\"demo-i-%d\",\"event_type\":\"billing.invoice.paid\"}", i);
            if (submit(d, SMS_SUBJECT_BILLING, body) != 0)
                return -1;
        }
    }
    for (size_t k = 0; k < d->nlater; k++)
        if (submit(d, d->later[k].subject, d->later[k].body) != 0)
            return -1;
    return flush(d);
}

/* Empties every anlyt table but ingest_state, whose watermark it clears (SEED_FORCE_RESET). */
static const char demo_truncate_sql[] =
    "DO $$ DECLARE t TEXT; BEGIN"
    " SELECT string_agg(format('anlyt.%I', relname), ', ' ORDER BY relname) INTO t FROM pg_class"
    " WHERE relnamespace = 'anlyt'::regnamespace AND relkind IN ('r', 'p')"
    " AND NOT relispartition AND relname <> 'ingest_state';"
    " IF t IS NOT NULL THEN EXECUTE 'TRUNCATE ' || t || ' RESTART IDENTITY'; END IF;"
    " UPDATE anlyt.ingest_state SET ingested_through = NULL;"
    " END $$";

static const char demo_exists_sql[] =
    "SELECT coalesce((SELECT ingested_through IS NOT NULL FROM anlyt.ingest_state), false)"
    " OR EXISTS (SELECT 1 FROM anlyt.metrics_hourly) OR EXISTS (SELECT 1 FROM anlyt.metrics_daily)";

/* The body of the transaction; sets *skipped when anlyt already held SMS data. */
static int demo_body(demo *d, bool force, bool *skipped)
{
    if (force && pgsession_command(d->conn, "seed: emptying the SMS tables", demo_truncate_sql, 0,
                                   NULL) != 0)
        return -1;
    PGresult *res = pgsession_exec(d->conn, "seed: checking SMS data", demo_exists_sql, 0, NULL);
    if (res == NULL)
        return -1;
    *skipped = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    return *skipped ? 0 : generate(d);
}

int sms_demo_run(PGconn *conn, bool force, int64_t retention_days)
{
    if (sms_store_ensure_partitions(conn, retention_days) != 0) {
        log_error("seed: SMS demo data not loaded");
        return -1;
    }
    demo d = {.conn = conn, .rng = DEMO_SEED};
    int64_t now_ns = clock_realtime_ns();
    int64_t now_ms = now_ns / 1000000;
    d.win = sms_window_at(now_ns, retention_days);
    d.start_ms = (now_ms / 86400000 - 29) * 86400000;
    d.span_ms = now_ms - 10 * 60 * 1000 - d.start_ms;
    sms_batch_init(&d.batch, "nats");

    bool skipped = false;
    int rc = pgsession_command(conn, "seed: BEGIN", "BEGIN", 0, NULL);
    if (rc == 0) {
        rc = demo_body(&d, force, &skipped);
        if (rc == 0)
            rc = pgsession_command(conn, "seed: COMMIT", "COMMIT", 0, NULL);
        if (rc != 0)
            PQclear(PQexec(conn, "ROLLBACK"));
    }
    sms_batch_free(&d.batch);
    for (size_t k = 0; k < d.nlater; k++)
        free(d.later[k].body);
    free(d.later);

    if (rc != 0)
        log_error("seed: SMS demo data failed, nothing of it was changed");
    else if (skipped)
        log_info("seed: SMS demo data skipped, anlyt already holds SMS data");
    else
        log_info("seeded SMS demo data: %zu messages: %zu accepted, %zu duplicate, %zu ignored, "
                 "%zu rejected",
                 d.sent, d.accepted_n, d.duplicate_n, d.ignored_n, d.rejected_n);
    return rc == 0 ? 0 : -1;
}
