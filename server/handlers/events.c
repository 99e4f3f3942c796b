/*
 * server/handlers/events.c: POST /api/v1/events (SMS.md §6.6), the HTTP way into SMS ingestion
 * for producers without NATS and for backfills. Runs in HTTP workers, after authentication.
 *
 * The body is checked whole with jansson, then each item's own text (json_span) goes through the
 * same validation as a NATS message (common/sms_event.h), and the whole batch through the same
 * one-statement transaction (common/sms_store.h), sent on the worker's pgpool without blocking
 * the loop. A failed statement applied nothing: 503, and the client retries (retries are
 * duplicates, not double counts). Items that are all ignored need no database at all.
 *
 * Pending state lives in the request's pool; its dispose hook cancels the statement if the
 * client goes away (the statement may still commit; a retry then reports duplicates).
 */
#include "common/json_out.h"
#include "common/json_span.h"
#include "common/metrics.h"
#include "common/sms_event.h"
#include "common/sms_store.h"
#include "common/util.h"
#include "server/http_app.h"
#include "server/http_response.h"

#include <jansson.h>
#include <string.h>

#define EVENTS_MAX          1000
#define EVENTS_BODY_MESSAGE "events must be a non-empty array of at most 1000 objects"

typedef struct event_item {
    sms_verdict verdict;
    sms_reason reason;
    const char *field;
    size_t position; /* valid events: 1-based position in the batch */
    char *echo_id;   /* pool copy, NULL when event_id was not a JSON string */
    size_t echo_len;
} event_item;

typedef struct events_request {
    h2o_req_t *req;
    pgpool_query *q;
    sms_batch batch;
    event_item *items;
    size_t n;
    bool *accepted;
} events_request;

/* The JSON answer of §6.6, from the items and (for valid ones) the statement's result. */
static void events_respond(events_request *e)
{
    size_t counts[4] = {0}; /* accepted, duplicate, ignored, rejected */
    static const char *const outcome[4] = {"accepted", "duplicate", "ignored", "rejected"};
    /* The same counts, with the rejection reasons, for GET /metrics. */
    metrics_sms_tally tally = {{0}, {0}};
    jbuf results;
    jbuf_init(&results);
    for (size_t i = 0; i < e->n; i++) {
        const event_item *it = &e->items[i];
        int o = it->verdict == SMS_IGNORED      ? 2
                : it->verdict == SMS_REJECTED   ? 3
                : e->accepted[it->position - 1] ? 0
                                                : 1;
        counts[o]++;
        tally.outcome[o]++;
        if (o == 3 && (unsigned)it->reason < METRICS_REASONS)
            tally.rejected[it->reason]++;
        jbuf_puts(&results, i == 0 ? "{\"index\":" : ",{\"index\":");
        jout_int(&results, (int64_t)i);
        jbuf_puts(&results, ",\"event_id\":");
        if (it->echo_id != NULL)
            jout_string(&results, it->echo_id, it->echo_len);
        else
            jout_null(&results);
        jbuf_puts(&results, ",\"outcome\":\"");
        jbuf_puts(&results, outcome[o]);
        jbuf_putc(&results, '"');
        if (o == 3) {
            jbuf_puts(&results, ",\"reason\":\"");
            jbuf_puts(&results, sms_reason_name(it->reason));
            jbuf_putc(&results, '"');
            if (it->field != NULL) {
                jbuf_puts(&results, ",\"field\":\"");
                jbuf_puts(&results, it->field);
                jbuf_putc(&results, '"');
            }
        }
        jbuf_putc(&results, '}');
    }
    metrics_sms_count(METRICS_TRANSPORT_HTTP, &tally);
    jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"data\":{");
    for (int o = 0; o < 4; o++) {
        jbuf_puts(&b, o == 0 ? "\"" : ",\"");
        jbuf_puts(&b, outcome[o]);
        jbuf_puts(&b, "\":");
        jout_int(&b, (int64_t)counts[o]);
    }
    jbuf_puts(&b, ",\"results\":[");
    jbuf_append(&b, results.data, results.len);
    jbuf_puts(&b, "]}}");
    jbuf_free(&results);
    http_send_jbuf(e->req, 200, &b);
}

static void on_batch_applied(void *data, pgpool_status st, PGresult *res)
{
    events_request *e = data;
    e->q = NULL;
    if (st != PGPOOL_OK || sms_batch_result(res, e->accepted, e->batch.events) != 0) {
        http_send_error(e->req, 503, "event store is unavailable");
        return;
    }
    events_respond(e);
}

static void events_dispose(void *p)
{
    events_request *e = p;
    if (e->q != NULL)
        pgpool_cancel(e->q);
    e->q = NULL;
    sms_batch_free(&e->batch);
}

/* The raw text of the events array when the body is {"events":[1..1000 items]}; else NULL. */
static const char *events_array(const char *body, size_t len, size_t *arr_len, size_t *n)
{
    if (memchr(body, '\0', len) != NULL)
        return NULL; /* never valid JSON; jansson would skip it where json_span stops */
    json_error_t err;
    json_t *root =
        json_loadb(body, len, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &err);
    json_t *events = json_is_object(root) ? json_object_get(root, "events") : NULL;
    *n = json_is_array(events) ? json_array_size(events) : 0;
    json_decref(root);
    const char *arr;
    if (*n < 1 || *n > EVENTS_MAX || json_span_member(body, len, "events", &arr, arr_len) != 0)
        return NULL;
    return arr;
}

void events_ingest_handle(http_app *app, h2o_req_t *req, const route_match *m)
{
    (void)m;
    const char *body = req->entity.base != NULL ? req->entity.base : "";
    size_t body_len = req->entity.base != NULL ? req->entity.len : 0;
    size_t arr_len, n;
    const char *arr = events_array(body, body_len, &arr_len, &n);
    if (arr == NULL) {
        http_send_error(req, 400, EVENTS_BODY_MESSAGE);
        return;
    }
    events_request *e = h2o_mem_alloc_shared(&req->pool, sizeof(*e), events_dispose);
    memset(e, 0, sizeof(*e));
    e->req = req;
    sms_batch_init(&e->batch, "http");
    e->items = h2o_mem_alloc_pool(&req->pool, n * sizeof(*e->items));
    e->accepted = h2o_mem_alloc_pool(&req->pool, n * sizeof(*e->accepted));
    sms_window win = sms_window_at(clock_realtime_ns(), app->cfg->sms_hourly_retention_days);

    size_t pos = 0;
    const char *item;
    size_t item_len;
    while (e->n < n && json_span_next_element(arr, arr_len, &pos, &item, &item_len)) {
        event_item *it = &e->items[e->n++];
        sms_parse p;
        sms_event_parse_item(item, item_len, &win, &p);
        memset(it, 0, sizeof(*it));
        it->verdict = p.verdict;
        it->reason = p.reason;
        it->field = p.field;
        if (p.echo_id != NULL) {
            it->echo_id = h2o_mem_alloc_pool(&req->pool, p.echo_len + 1);
            memcpy(it->echo_id, p.echo_id, p.echo_len + 1);
            it->echo_len = p.echo_len;
        }
        if (p.verdict == SMS_VALID)
            it->position = sms_batch_add_event(&e->batch, &p.ev);
        else if (p.verdict == SMS_REJECTED)
            sms_batch_add_rejection(&e->batch, p.has_subject ? sms_subject_name(p.subject) : NULL,
                                    &p, item, item_len);
        sms_parse_free(&p);
    }
    if (e->batch.events == 0 && e->batch.rejections == 0) {
        events_respond(e); /* all ignored: nothing to store */
        return;
    }
    const char *params[SMS_STORE_BATCH_NPARAMS];
    sms_batch_params(&e->batch, params);
    e->q = pgpool_exec(app->pg, SMS_STORE_BATCH_SQL, SMS_STORE_BATCH_NPARAMS, params,
                       on_batch_applied, e);
    if (e->q == NULL)
        http_send_error(req, 503, "event store is unavailable");
}
