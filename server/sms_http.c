/*
 * server/sms_http.c: the shared plumbing of the SMS read handlers (see sms_http.h). Runs in
 * HTTP workers, on the worker's event loop.
 */
#include "server/sms_http.h"

#include "common/dates.h"
#include "common/log.h"
#include "common/textutil.h"
#include "common/sms_read.h"
#include "common/util.h"
#include "server/http_query.h"
#include "server/http_response.h"
#include "server/sms_cache.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define SMS_HTTP_CACHE_SLOTS 256

static void read_dispose(void *p)
{
    sms_read_req *r = p;
    if (r->q != NULL)
        pgpool_cancel(r->q);
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

sms_choice sms_http_choice(h2o_req_t *req, const char *name, int fold)
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

int sms_choice_is(sms_choice c, const char *word)
{
    return c.len == strlen(word) && memcmp(c.p, word, c.len) == 0;
}

int sms_http_list_params(sms_read_req *r, const char *const *sorts, size_t n,
                         const char *sort_message, const char **sort, const char **desc)
{
    sms_choice c = sms_http_choice(r->req, "sort", 0);
    size_t i = 0;
    while (c.len != 0 && i < n && !sms_choice_is(c, sorts[i]))
        i++;
    if (i == n) {
        http_send_error(r->req, 400, sort_message);
        return -1;
    }
    sms_choice order = sms_http_choice(r->req, "order", 0);
    if (order.len != 0 && !sms_choice_is(order, "asc") && !sms_choice_is(order, "desc")) {
        http_send_error(r->req, 400, "order must be asc or desc");
        return -1;
    }
    *sort = sorts[i];
    *desc = sms_choice_is(order, "asc") ? "false" : "true";
    http_page_params(r->req, &r->limit, &r->offset);
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

typedef struct pending {
    sms_read_req *r;
    char *key; /* pool */
    size_t key_len;
} pending;

static void on_result(void *data, PGresult *res)
{
    pending *p = data;
    sms_read_req *r = p->r;
    r->q = NULL;
    if (res == NULL) {
        http_send_error(r->req, 500, "internal error");
        return;
    }
    if (r->not_found != NULL && !sms_read_found(res)) {
        http_send_error(r->req, 404, r->not_found);
        return;
    }
    jbuf b;
    jbuf_init(&b);
    jbuf_putc(&b, '{');
    if (r->render(&b, res, r) != 0) {
        log_error("sms read: unexpected result shape (%d rows, %d columns)", PQntuples(res),
                  PQnfields(res));
        jbuf_free(&b);
        http_send_error(r->req, 500, "internal error");
        return;
    }
    jbuf_puts(&b, "}\n");
    sms_cache *c = worker_cache(r->app);
    if (c != NULL)
        sms_cache_put(c, p->key, p->key_len, b.data, b.len,
                      clock_monotonic_ns() + r->app->cfg->sms_cache_ttl_ns);
    http_send_body(r->req, 200, b.data, b.len);
    jbuf_free(&b);
}

void sms_http_run(sms_read_req *r, const char *key, size_t key_len, const char *sql, int nparams,
                  const char *const *params)
{
    sms_cache *c = worker_cache(r->app);
    const char *body;
    size_t len;
    if (c != NULL && sms_cache_get(c, key, key_len, clock_monotonic_ns(), &body, &len)) {
        http_send_body(r->req, 200, body, len);
        return;
    }
    pending *p = h2o_mem_alloc_pool(&r->req->pool, sizeof(*p));
    p->r = r;
    p->key = h2o_mem_alloc_pool(&r->req->pool, key_len);
    memcpy(p->key, key, key_len);
    p->key_len = key_len;
    r->q = pgpool_exec(r->app->pg, sql, nparams, params, on_result, p);
    if (r->q == NULL)
        http_send_error(r->req, 500, "internal error");
}
