/*
 * common/sms_store.c: parameters, result and blocking calls of the SMS event store (see
 * sms_store.h). Runs in the ingest workers, HTTP workers, supervisor and seed (and bench tools).
 *
 * Parameters are PostgreSQL array literals in text form, one per column of the batch; every
 * text element is quoted (with \" and \\ escapes), bytea elements are hex, absent values NULL.
 */
#include "common/sms_store.h"

#include "common/dates.h"
#include "common/log.h"
#include "common/pgsession.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char SMS_STORE_BATCH_SQL[] =
    "SELECT anlyt.ingest_batch($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], "
    "$6::uuid[], $7::uuid[], $8::integer[], $9::numeric[], $10::bigint[], $11::smallint[], "
    "$12::boolean[], $13::text, $14::text[], $15::text[], $16::text[], $17::text[], $18::bytea[])";

enum {
    COL_EVENT_ID,
    COL_EVENT_TYPE,
    COL_EFFECT,
    COL_AT,
    COL_MESSAGE_ID,
    COL_ACCOUNT,
    COL_OPERATOR,
    COL_SEGMENTS,
    COL_COST,
    COL_LATENCY,
    COL_SKETCH,
    COL_HAS_ERROR,
    COL_TRANSPORT,
    COL_REJ_SUBJECT,
    COL_REJ_EVENT_ID,
    COL_REJ_REASON,
    COL_REJ_FIELD,
    COL_REJ_PAYLOAD,
};

void sms_batch_init(sms_batch *b, const char *transport)
{
    memset(b, 0, sizeof(*b));
    b->transport = transport;
    for (int i = 0; i < SMS_STORE_BATCH_NPARAMS; i++)
        jbuf_init(&b->cols[i]);
    sms_batch_reset(b);
}

void sms_batch_reset(sms_batch *b)
{
    b->events = b->rejections = 0;
    for (int i = 0; i < SMS_STORE_BATCH_NPARAMS; i++) {
        jbuf_reset(&b->cols[i]);
        jbuf_putc(&b->cols[i], '{');
    }
    jbuf_reset(&b->cols[COL_TRANSPORT]);
    jbuf_puts(&b->cols[COL_TRANSPORT], b->transport);
}

void sms_batch_free(sms_batch *b)
{
    for (int i = 0; i < SMS_STORE_BATCH_NPARAMS; i++)
        jbuf_free(&b->cols[i]);
}

/* Starts the next element of an array literal (a comma unless it is the first). */
static jbuf *elem(sms_batch *b, int col)
{
    jbuf *j = &b->cols[col];
    /* reopen an array closed by sms_batch_params (no element ends with '}') */
    if (j->len > 1 && j->data[j->len - 1] == '}')
        j->data[--j->len] = '\0';
    if (j->len > 1)
        jbuf_putc(j, ',');
    return j;
}

static void put_text(sms_batch *b, int col, const char *s)
{
    jbuf *j = elem(b, col);
    if (s == NULL) {
        jbuf_puts(j, "NULL");
        return;
    }
    jbuf_putc(j, '"');
    for (; *s != '\0'; s++) {
        if (*s == '"' || *s == '\\')
            jbuf_putc(j, '\\');
        jbuf_putc(j, *s);
    }
    jbuf_putc(j, '"');
}

static void put_raw(sms_batch *b, int col, const char *s)
{
    jbuf_puts(elem(b, col), s);
}

static void put_int(sms_batch *b, int col, int64_t v)
{
    jbuf_printf(elem(b, col), "%" PRId64, v);
}

/* Unix ns as "YYYY-MM-DD HH:MM:SS.ffffff+00", truncated to the microsecond. */
static void put_time(sms_batch *b, int col, int64_t ns)
{
    int64_t us = ns / 1000 - (ns % 1000 < 0 ? 1 : 0);
    int64_t secs = us / 1000000 - (us % 1000000 < 0 ? 1 : 0);
    int64_t frac = us - secs * 1000000;
    int64_t days = secs / 86400 - (secs % 86400 < 0 ? 1 : 0);
    int64_t sod = secs - days * 86400;
    int y, m, d;
    dates_civil_from_days(days, &y, &m, &d);
    jbuf_printf(elem(b, col), "\"%04d-%02d-%02d %02d:%02d:%02d.%06d+00\"", y, m, d,
                (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60), (int)frac);
}

size_t sms_batch_add_event(sms_batch *b, const sms_event *ev)
{
    bool charge = ev->effect == SMS_EFFECT_CHARGE, delivered = ev->effect == SMS_EFFECT_DELIVERED;
    char effect[2] = {(char)ev->effect, '\0'};
    put_text(b, COL_EVENT_ID, ev->event_id);
    put_text(b, COL_EVENT_TYPE, ev->event_type);
    put_raw(b, COL_EFFECT, effect);
    put_time(b, COL_AT, ev->at_ns);
    put_text(b, COL_MESSAGE_ID, ev->message_id);
    put_raw(b, COL_ACCOUNT, ev->account_id);
    put_raw(b, COL_OPERATOR, ev->operator_id);
    if (charge) {
        put_int(b, COL_SEGMENTS, ev->segments);
        put_raw(b, COL_COST, ev->cost);
    } else {
        put_raw(b, COL_SEGMENTS, "NULL");
        put_raw(b, COL_COST, "NULL");
    }
    if (delivered) {
        put_int(b, COL_LATENCY, ev->latency_ms);
        put_int(b, COL_SKETCH, ev->sketch_bucket);
    } else {
        put_raw(b, COL_LATENCY, "NULL");
        put_raw(b, COL_SKETCH, "NULL");
    }
    put_raw(b, COL_HAS_ERROR, ev->has_error ? "t" : "f");
    return ++b->events;
}

void sms_batch_add_rejection(sms_batch *b, const char *subject, const sms_parse *p,
                             const char *payload, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    put_text(b, COL_REJ_SUBJECT, subject);
    put_text(b, COL_REJ_EVENT_ID, p->ev.event_id[0] != '\0' ? p->ev.event_id : NULL);
    put_text(b, COL_REJ_REASON, sms_reason_name(p->reason));
    put_text(b, COL_REJ_FIELD, p->field);
    jbuf *j = elem(b, COL_REJ_PAYLOAD);
    if (len > SMS_STORE_PAYLOAD_MAX)
        len = SMS_STORE_PAYLOAD_MAX;
    jbuf_reserve(j, 2 * len + 8);
    jbuf_puts(j, "\"\\\\x");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)payload[i];
        jbuf_putc(j, hex[c >> 4]);
        jbuf_putc(j, hex[c & 15]);
    }
    jbuf_putc(j, '"');
    b->rejections++;
}

void sms_batch_params(sms_batch *b, const char *params[SMS_STORE_BATCH_NPARAMS])
{
    for (int i = 0; i < SMS_STORE_BATCH_NPARAMS; i++) {
        jbuf *j = &b->cols[i];
        if (i != COL_TRANSPORT && (j->len == 0 || j->data[j->len - 1] != '}'))
            jbuf_putc(j, '}');
        params[i] = j->data;
    }
}

int sms_batch_result(const PGresult *res, bool *accepted, size_t events)
{
    if (PQntuples(res) != 1 || PQnfields(res) != 1)
        return -1;
    for (size_t i = 0; i < events; i++)
        accepted[i] = false;
    const char *s = PQgetvalue(res, 0, 0);
    if (*s++ != '{')
        return -1;
    while (*s != '}') {
        char *end;
        long pos = strtol(s, &end, 10);
        if (end == s || pos < 1 || (size_t)pos > events)
            return -1;
        accepted[pos - 1] = true;
        s = end;
        if (*s == ',')
            s++;
        else if (*s != '}')
            return -1;
    }
    return 0;
}

static sms_store_status failed(PGconn *conn, const sms_batch *b, const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorMessage(res) : NULL;
    if (msg == NULL || *msg == '\0')
        msg = PQerrorMessage(conn);
    log_error("event batch not applied (%zu events, %zu rejections): SQLSTATE %s: %.*s", b->events,
              b->rejections, state ? state : "none", (int)strcspn(msg, "\n"), msg);
    return PQstatus(conn) == CONNECTION_OK ? SMS_STORE_FAILED : SMS_STORE_UNAVAILABLE;
}

sms_store_status sms_store_send(PGconn *conn, sms_batch *b)
{
    const char *params[SMS_STORE_BATCH_NPARAMS];
    sms_batch_params(b, params);
    if (PQsendQueryParams(conn, SMS_STORE_BATCH_SQL, SMS_STORE_BATCH_NPARAMS, NULL, params, NULL,
                          NULL, 0) == 1)
        return SMS_STORE_OK;
    return failed(conn, b, NULL);
}

sms_store_status sms_store_finish(PGconn *conn, sms_batch *b, bool *accepted)
{
    sms_store_status st = SMS_STORE_OK;
    bool got = false;
    PGresult *res;
    while ((res = PQgetResult(conn)) != NULL) { /* drain every result of the statement */
        if (!got) {
            got = true;
            if (PQresultStatus(res) != PGRES_TUPLES_OK ||
                sms_batch_result(res, accepted, b->events) != 0)
                st = failed(conn, b, res);
        }
        PQclear(res);
    }
    if (!got)
        st = failed(conn, b, NULL);
    return st;
}

sms_store_status sms_store_apply(PGconn *conn, sms_batch *b, bool *accepted)
{
    sms_store_status st = sms_store_send(conn, b);
    return st == SMS_STORE_OK ? sms_store_finish(conn, b, accepted) : st;
}

int sms_store_ensure_partitions(PGconn *conn, int64_t retention_days)
{
    char days[24];
    snprintf(days, sizeof(days), "%" PRId64, retention_days + 1);
    const char *params[1] = {days};
    PGresult *res =
        pgsession_exec(conn, "sms partitions",
                       "SELECT anlyt.ensure_partitions(now() - make_interval(days => $1::integer), "
                       "now() + interval '2 months')",
                       1, params);
    if (res == NULL)
        return -1;
    const char *created = PQgetvalue(res, 0, 0);
    if (strcmp(created, "0") != 0)
        log_info("sms partitions: %s monthly partition(s) created", created);
    PQclear(res);
    return 0;
}

/* The UTC day start `age` (an interval parameter) ago. */
/* (Sessions run with TimeZone UTC: pgsession.h.) */
#define DAY_OF(age) "date_trunc('day', now() - " age "::interval)"

/* One table's purge: slices until a slice deletes fewer rows than its size. */
static int purge_table(PGconn *conn, const char *what, const char *sql, const char *age)
{
    const char *params[1] = {age};
    long total = 0;
    for (;;) {
        PGresult *res = pgsession_exec(conn, what, sql, 1, params);
        if (res == NULL)
            return -1;
        long n = strtol(PQcmdTuples(res), NULL, 10);
        PQclear(res);
        total += n;
        if (n < 10000)
            break;
    }
    if (total > 0)
        log_info("%s: %ld row(s) deleted", what, total);
    return 0;
}

int sms_store_purge(PGconn *conn, int64_t dedupe_retention_ns, int64_t daily_retention_days)
{
    char dedupe[32], daily[32];
    snprintf(dedupe, sizeof(dedupe), "%" PRId64 " microseconds", dedupe_retention_ns / 1000);
    snprintf(daily, sizeof(daily), "%" PRId64 " days", daily_retention_days);
    int rc = purge_table(conn, "sms purge: dedupe records",
                         "DELETE FROM anlyt.processed_events WHERE event_id IN (SELECT event_id "
                         "FROM anlyt.processed_events WHERE processed_at < now() - $1::interval "
                         "LIMIT 10000)",
                         dedupe);
    rc |= purge_table(conn, "sms purge: per-second counts",
                      "DELETE FROM anlyt.traffic_seconds WHERE (second_bucket, scope, scope_id) IN "
                      "(SELECT second_bucket, scope, scope_id FROM anlyt.traffic_seconds "
                      "WHERE second_bucket < now() - $1::interval LIMIT 10000)",
                      dedupe);
    rc |= purge_table(conn, "sms purge: rejected events",
                      "DELETE FROM anlyt.rejected_events WHERE id IN (SELECT id FROM "
                      "anlyt.rejected_events WHERE received_at < now() - $1::interval LIMIT 10000)",
                      "30 days");
    rc |= purge_table(conn, "sms purge: daily metrics",
                      "DELETE FROM anlyt.metrics_daily WHERE (day_bucket, scope, scope_id) IN "
                      "(SELECT day_bucket, scope, scope_id FROM anlyt.metrics_daily WHERE "
                      "day_bucket < " DAY_OF("$1") " LIMIT 10000)",
                      daily);
    rc |= purge_table(conn, "sms purge: daily account usage",
                      "DELETE FROM anlyt.account_usage_daily WHERE (day_bucket, account_id) IN "
                      "(SELECT day_bucket, account_id FROM anlyt.account_usage_daily WHERE "
                      "day_bucket < " DAY_OF("$1") " LIMIT 10000)",
                      daily);
    rc |= purge_table(conn, "sms purge: daily latency sketches",
                      "DELETE FROM anlyt.latency_histogram_daily WHERE (scope, scope_id, "
                      "day_bucket, bucket) IN (SELECT scope, scope_id, day_bucket, bucket FROM "
                      "anlyt.latency_histogram_daily WHERE day_bucket < " DAY_OF("$1") " LIMIT "
                                                                                       "10000)",
                      daily);
    return rc;
}

/* Runs sql with $1 the interval of `days` days (an age before now()); its result or NULL. */
static PGresult *exec_days(PGconn *conn, const char *what, const char *sql, int64_t days)
{
    char age[32];
    snprintf(age, sizeof(age), "%" PRId64 " days", days);
    const char *params[1] = {age};
    return pgsession_exec(conn, what, sql, 1, params);
}

int sms_store_drop_partitions(PGconn *conn, int64_t hourly_retention_days)
{
    PGresult *res = exec_days(conn, "sms partitions: drop",
                              "SELECT array_to_string(anlyt.drop_partitions(now() - "
                              "$1::interval), ', ')",
                              hourly_retention_days);
    if (res == NULL)
        return -1;
    const char *dropped = PQgetvalue(res, 0, 0);
    if (dropped[0] != '\0')
        log_info("sms partitions: dropped %s (every hour older than %" PRId64 " days)", dropped,
                 hourly_retention_days);
    PQclear(res);
    return 0;
}

int sms_store_rollup(PGconn *conn, int64_t hourly_retention_days)
{
    PGresult *res = exec_days(conn, "sms rollup", "SELECT anlyt.rollup(now() - $1::interval)",
                              hourly_retention_days);
    if (res == NULL)
        return -1;
    int n = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    if (n > 0)
        log_info("sms rollup: %d day(s) recomputed", n);
    return n;
}
