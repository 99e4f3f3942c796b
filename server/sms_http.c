/*
 * server/sms_http.c: the shared plumbing of the SMS read handlers (see sms_http.h). Runs in
 * HTTP workers, on the worker's event loop.
 */
#include "server/sms_http.h"

#include "common/cachekey.h"
#include "common/dates.h"
#include "common/log.h"
#include "common/params.h"
#include "common/textutil.h"
#include "common/sms_read.h"
#include "common/util.h"
#include "server/http_query.h"
#include "server/http_response.h"
#include "server/sms_cache.h"

#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>

#define SMS_HTTP_CACHE_SLOTS 256
#define SMS_ETAG_LEN         20 /* W/"<16 hex digits>" */

/*
 * The ETag of an SMS answer (README, "SMS delivery analytics: reads"): W/"<the first 16 hex
 * digits of the SHA-256 of the body without the value of meta.freshness.as_of>". as_of says
 * when the answer was computed and changes at every computation; everything else (data, range,
 * ingested_through) is what a client's copy depends on, so an unchanged answer keeps its tag
 * across recomputations and cache expiries, on every worker and every instance.
 */
static void sms_etag(const char *body, size_t len, char out[SMS_ETAG_LEN + 1])
{
    static const char mark[] = "\"as_of\":\"";
    jbuf t;
    jbuf_init(&t);
    const char *at = memmem(body, len, mark, sizeof(mark) - 1);
    const char *end = at == NULL ? NULL
                                 : memchr(at + sizeof(mark) - 1, '"',
                                          len - (size_t)(at + sizeof(mark) - 1 - body));
    if (end != NULL) {
        jbuf_append(&t, body, (size_t)(at - body) + sizeof(mark) - 1);
        jbuf_append(&t, end, len - (size_t)(end - body));
    } else {
        jbuf_append(&t, body, len);
    }
    char hex[65];
    cachekey_sha256_hex(t.data, t.len, hex);
    jbuf_free(&t);
    snprintf(out, SMS_ETAG_LEN + 1, "W/\"%.16s\"", hex);
}

/* A 200 answer with its ETag (the entry's first SMS_ETAG_LEN bytes) and Cache-Control, or 304
 * when the client's copy is current. */
static void send_ok(h2o_req_t *req, const http_app *app, const char *entry_etag, const char *body,
                    size_t len)
{
    char *etag = h2o_strdup(&req->pool, entry_etag, SMS_ETAG_LEN).base; /* NUL-terminated */
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ETAG, NULL, etag, SMS_ETAG_LEN);
    char cc[48];
    int64_t ttl_s = app->cfg->sms_cache_ttl_ns / 1000000000;
    int n = ttl_s > 0 ? snprintf(cc, sizeof(cc), "private, max-age=%lld", (long long)ttl_s)
                      : snprintf(cc, sizeof(cc), "private, no-cache");
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   h2o_strdup(&req->pool, cc, (size_t)n).base, (size_t)n);
    if (http_if_none_match(req, etag))
        http_send_not_modified(req);
    else
        http_send_body(req, 200, body, len);
}

/*
 * A statement in flight for one cache key, shared by every request that misses that key while
 * it runs (without it, each expiry sent one statement per waiting request: up to 32 per worker
 * at 64 connections). It renders from its own copy of the first request's parameters, so it
 * outlives any of its requests; a request whose client goes away just leaves the list. The
 * answer is cached even when nobody waits any more.
 */
struct sms_fill {
    struct sms_fill *next; /* app->sms_fills */
    http_app *app;
    char *key;
    size_t key_len;
    pgpool_query *q;
    sms_read_req proto;    /* parameters and render of the first request (req NULL) */
    sms_read_req *waiters; /* linked by next_waiter */
};

static void read_dispose(void *p)
{
    sms_read_req *r = p;
    if (r->q != NULL)
        pgpool_cancel(r->q);
    if (r->fill != NULL) { /* leave the fill's list; the fill goes on for the others */
        sms_read_req **link = &r->fill->waiters;
        while (*link != r)
            link = &(*link)->next_waiter;
        *link = r->next_waiter;
    }
}

sms_read_req *sms_http_begin(http_app *app, h2o_req_t *req)
{
    const char *from, *to;
    size_t from_len, to_len;
    http_query_param(req, "date_from", &from, &from_len);
    http_query_param(req, "date_to", &to, &to_len);
    int32_t f, t;
    date_range_status ds = date_range_resolve(from, from_len, to, to_len, date_today_utc(), &f, &t);
    if (ds != DATE_RANGE_OK) {
        http_send_error(req, 400, date_range_message(ds));
        return NULL;
    }
    if (date_span_days(f, t) > app->cfg->max_report_range_days) {
        char msg[64];
        snprintf(msg, sizeof(msg), "date range exceeds %lld days",
                 (long long)app->cfg->max_report_range_days);
        http_send_error(req, 400, msg);
        return NULL;
    }
    sms_read_req *r = h2o_mem_alloc_shared(&req->pool, sizeof(*r), read_dispose);
    memset(r, 0, sizeof(*r));
    r->app = app;
    r->req = req;
    r->from = f;
    r->to = t;
    date_format(f, r->lo);
    date_format(t + 1, r->hi);
    date_format(sms_read_floor((int64_t)time(NULL), app->cfg->sms_hourly_retention_days), r->floor);
    return r;
}

/* A decoded, trimmed parameter value (bytes, may hold NUL; len 0 when absent or blank). */
typedef struct sms_choice {
    const char *p;
    size_t len;
} sms_choice;

/* Query parameter `name` trimmed (API.md §2.2), in the request's pool; with fold, ASCII letters
 * folded to lower case. */
static sms_choice sms_http_choice(h2o_req_t *req, const char *name, int fold)
{
    const char *v;
    size_t len, start;
    http_query_param(req, name, &v, &len);
    if (v == NULL)
        return (sms_choice){"", 0};
    text_trim(v, len, &start, &len);
    char *out = h2o_mem_alloc_pool(&req->pool, len + 1);
    memcpy(out, v + start, len);
    out[len] = '\0';
    for (size_t i = 0; fold && i < len; i++)
        if (out[i] >= 'A' && out[i] <= 'Z')
            out[i] = (char)(out[i] - 'A' + 'a');
    return (sms_choice){out, len};
}

/* Whether c is exactly the NUL-terminated word (a value with a NUL byte matches no word). */
static int sms_choice_is(sms_choice c, const char *word)
{
    return c.len == strlen(word) && memcmp(c.p, word, c.len) == 0;
}

/* `window` (see sms_detail_route): sets *out to a or b and returns 0, or answers 400 and
 * returns -1. */
static int sms_http_window(sms_read_req *r, const char *a, const char *b, const char **out)
{
    sms_choice w = sms_http_choice(r->req, "window", 1);
    if (w.len == 0)
        w = (sms_choice){"day", 3};
    if (sms_choice_is(w, a) || sms_choice_is(w, b)) {
        *out = sms_choice_is(w, a) ? a : b;
        return 0;
    }
    char message[64];
    snprintf(message, sizeof(message), "window must be %s or %s", a, b);
    http_send_error(r->req, 400, message);
    return -1;
}

/* The path id into r->id (lower case) and r->not_found; or answers 404 and returns -1. */
static int sms_http_path_id(sms_read_req *r, const char *param, size_t len, const char *not_found)
{
    if (uuid_parse(param, len, r->id) != 0) {
        http_send_error(r->req, 404, not_found);
        return -1;
    }
    r->not_found = not_found;
    return 0;
}

/* The worker's cache, created on first use; NULL when SMS_CACHE_TTL is 0. */
static sms_cache *worker_cache(http_app *app)
{
    if (app->cfg->sms_cache_ttl_ns <= 0)
        return NULL;
    if (app->sms_cache == NULL)
        app->sms_cache = sms_cache_create(SMS_HTTP_CACHE_SLOTS);
    return app->sms_cache;
}

/* Renders res for r into b as an entry: the ETag (SMS_ETAG_LEN bytes), then the whole body.
 * Returns the status to answer (200, 404 or 500). */
static int answer(const sms_read_req *r, pgpool_status st, PGresult *res, jbuf *b)
{
    if (st != PGPOOL_OK)
        return 500;
    if (r->not_found != NULL && !sms_read_found(res))
        return 404;
    jbuf_append(b, "W/\"0000000000000000\"", SMS_ETAG_LEN); /* set below */
    jbuf_putc(b, '{');
    if (r->render(b, res, r) != 0) {
        log_error("sms read: unexpected result shape (%d rows, %d columns)", PQntuples(res),
                  PQnfields(res));
        return 500;
    }
    jbuf_puts(b, "}\n");
    char etag[SMS_ETAG_LEN + 1];
    sms_etag(b->data + SMS_ETAG_LEN, b->len - SMS_ETAG_LEN, etag);
    memcpy(b->data, etag, SMS_ETAG_LEN);
    return 200;
}

/* b: the entry, ETag then body (see on_fill_result). */
static void send_answer(h2o_req_t *req, const sms_read_req *r, int status, const jbuf *b)
{
    if (status == 200)
        send_ok(req, r->app, b->data, b->data + SMS_ETAG_LEN, b->len - SMS_ETAG_LEN);
    else
        http_send_error(req, status, status == 404 ? r->not_found : "internal error");
}

/* Uncached reads (SMS_CACHE_TTL 0): one statement per request. */
static void on_result(void *data, pgpool_status st, PGresult *res)
{
    sms_read_req *r = data;
    r->q = NULL;
    jbuf b;
    jbuf_init(&b);
    send_answer(r->req, r, answer(r, st, res, &b), &b);
    jbuf_free(&b);
}

static void on_fill_result(void *data, pgpool_status st, PGresult *res)
{
    struct sms_fill *f = data;
    struct sms_fill **link = &f->app->sms_fills;
    while (*link != f)
        link = &(*link)->next;
    *link = f->next;
    jbuf b;
    jbuf_init(&b);
    int status = answer(&f->proto, st, res, &b);
    if (status == 200)
        sms_cache_put(worker_cache(f->app), f->key, f->key_len, b.data, b.len,
                      clock_monotonic_ns() + f->app->cfg->sms_cache_ttl_ns);
    while (f->waiters != NULL) {
        sms_read_req *w = f->waiters;
        f->waiters = w->next_waiter;
        w->fill = NULL;
        send_answer(w->req, &f->proto, status, &b);
    }
    jbuf_free(&b);
    free(f->key);
    free(f);
}

static void wait_for(struct sms_fill *f, sms_read_req *r)
{
    r->fill = f;
    r->next_waiter = f->waiters;
    f->waiters = r;
}

void sms_http_run(sms_read_req *r, const char *route, const char *sql, int nparams,
                  const char *const *params)
{
    sms_cache *c = worker_cache(r->app);
    jbuf k;
    jbuf_init(&k);
    jbuf_puts(&k, route);
    for (int i = 0; i < nparams; i++) {
        jbuf_putc(&k, '|');
        jbuf_puts(&k, params[i]);
    }
    char *key = h2o_mem_alloc_pool(&r->req->pool, k.len);
    size_t key_len = k.len;
    memcpy(key, k.data, key_len);
    jbuf_free(&k);
    if (c == NULL) {
        r->q = pgpool_exec(r->app->pg, sql, nparams, params, on_result, r);
        if (r->q == NULL)
            http_send_error(r->req, 500, "internal error");
        return;
    }
    const char *body;
    size_t len;
    if (sms_cache_get(c, key, key_len, clock_monotonic_ns(), &body, &len)) {
        send_ok(r->req, r->app, body, body + SMS_ETAG_LEN, len - SMS_ETAG_LEN);
        return;
    }
    for (struct sms_fill *f = r->app->sms_fills; f != NULL; f = f->next)
        if (f->key_len == key_len && memcmp(f->key, key, key_len) == 0) {
            wait_for(f, r);
            return;
        }
    struct sms_fill *f = xcalloc(1, sizeof(*f));
    f->app = r->app;
    f->key = xmalloc(key_len);
    memcpy(f->key, key, key_len);
    f->key_len = key_len;
    f->proto = *r;
    f->proto.req = NULL;
    f->q = pgpool_exec(r->app->pg, sql, nparams, params, on_fill_result, f);
    if (f->q == NULL) {
        free(f->key);
        free(f);
        http_send_error(r->req, 500, "internal error");
        return;
    }
    wait_for(f, r);
    f->next = r->app->sms_fills;
    r->app->sms_fills = f;
}

static int render_list(jbuf *b, const PGresult *res, const sms_read_req *r)
{
    return r->list->items_json(b, res, r->from, r->to, r->limit, r->offset);
}

void sms_http_list(http_app *app, h2o_req_t *req, const sms_list_route *route)
{
    sms_read_req *r = sms_http_begin(app, req);
    if (r == NULL)
        return;
    sms_choice c = sms_http_choice(req, "sort", 0);
    size_t i = 0;
    while (c.len != 0 && route->sorts[i] != NULL && !sms_choice_is(c, route->sorts[i]))
        i++;
    if (route->sorts[i] == NULL) {
        jbuf m;
        jbuf_init(&m);
        jbuf_puts(&m, "sort must be one of ");
        for (size_t k = 0; route->sorts[k] != NULL; k++) {
            if (k > 0)
                jbuf_puts(&m, ", ");
            jbuf_puts(&m, route->sorts[k]);
        }
        jbuf_putc(&m, '\0');
        http_send_error(req, 400, m.data);
        jbuf_free(&m);
        return;
    }
    sms_choice order = sms_http_choice(req, "order", 0);
    if (order.len != 0 && !sms_choice_is(order, "asc") && !sms_choice_is(order, "desc")) {
        http_send_error(req, 400, "order must be asc or desc");
        return;
    }
    http_page_params(req, &r->limit, &r->offset);
    char limit[24], offset[24];
    snprintf(limit, sizeof(limit), "%lld", (long long)r->limit);
    snprintf(offset, sizeof(offset), "%lld", (long long)r->offset);
    const char *params[7] = {r->lo, r->hi};
    int n = 2;
    if (route->takes_floor)
        params[n++] = r->floor;
    params[n++] = route->sorts[i];
    params[n++] = sms_choice_is(order, "asc") ? "false" : "true";
    params[n++] = limit;
    params[n++] = offset;
    r->list = route;
    r->render = render_list;
    sms_http_run(r, route->name, route->sql, n, params);
}

static int render_detail(jbuf *b, const PGresult *res, const sms_read_req *r)
{
    return r->detail->detail_json(b, res, r->id, r->from, r->to);
}

void sms_http_detail(http_app *app, h2o_req_t *req, const route_match *m,
                     const sms_detail_route *route)
{
    sms_read_req *r = sms_http_begin(app, req);
    const char *window;
    if (r == NULL || sms_http_window(r, route->windows[0], route->windows[1], &window) != 0)
        return;
    if (route->hour_max_days > 0 && strcmp(window, "hour") == 0 &&
        r->to - r->from + 1 > route->hour_max_days) {
        char message[64];
        snprintf(message, sizeof(message), "date range exceeds %d days for window hour",
                 route->hour_max_days);
        http_send_error(req, 400, message);
        return;
    }
    if (sms_http_path_id(r, m->param, m->param_len, route->not_found) != 0)
        return;
    const char *params[5] = {r->id, r->lo, r->hi};
    int n = 3;
    if (route->takes_floor)
        params[n++] = r->floor;
    params[n++] = window;
    r->detail = route;
    r->render = render_detail;
    sms_http_run(r, route->name, route->sql, n, params);
}
