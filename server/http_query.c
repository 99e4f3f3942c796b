/*
 * server/http_query.c: one statement answered as a page or an object (see http_query.h). Runs
 * in HTTP workers.
 */
#include "server/http_query.h"

#include "common/json_out.h"
#include "common/params.h"
#include "server/http_response.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct http_query {
    h2o_req_t *req;
    pgpool_query *q;
    http_row_writer row;
    int64_t limit, offset; /* page only */
    const char *not_found; /* object only; NULL for a page */
    const char *failure;
} http_query;

const char *http_query_string(h2o_req_t *req, size_t *len)
{
    if (req->query_at == SIZE_MAX) {
        *len = 0;
        return "";
    }
    *len = req->path.len - req->query_at - 1;
    return req->path.base + req->query_at + 1;
}

void http_query_param(h2o_req_t *req, const char *name, const char **v, size_t *len)
{
    size_t qs_len;
    const char *qs = http_query_string(req, &qs_len);
    query_param *params =
        h2o_mem_alloc_pool(&req->pool, query_piece_bound(qs, qs_len) * sizeof(*params));
    size_t n = query_parse(qs, qs_len, params, h2o_mem_alloc_pool(&req->pool, qs_len + 1));
    const query_param *q = query_find(params, n, name);
    *v = q != NULL ? q->value : NULL;
    *len = q != NULL ? q->value_len : 0;
}

void http_page_params(h2o_req_t *req, int64_t *limit, int64_t *offset)
{
    const char *v;
    size_t len;
    *limit = 20;
    *offset = 0;
    http_query_param(req, "limit", &v, &len);
    param_int(v, len, v != NULL, limit);
    if (*limit < 1)
        *limit = 20;
    if (*limit > 100)
        *limit = 100;
    http_query_param(req, "offset", &v, &len);
    param_int(v, len, v != NULL, offset);
    if (*offset < 0)
        *offset = 0;
}

int http_list_filter(h2o_req_t *req, const char *name, const char **out)
{
    const char *v;
    size_t len, start, tlen;
    *out = NULL;
    http_query_param(req, name, &v, &len);
    if (v == NULL)
        return 0;
    text_trim(v, len, &start, &tlen);
    if (tlen == 0)
        return 0;
    if (!text_is_matchable(v + start, tlen))
        return -1;
    *out = h2o_strdup(&req->pool, v + start, tlen).base;
    return 0;
}

void http_write_pagination(jbuf *b, int64_t limit, int64_t offset, int64_t total)
{
    jbuf_puts(b, "{\"pagination\":{\"limit\":");
    jout_int(b, limit);
    jbuf_puts(b, ",\"offset\":");
    jout_int(b, offset);
    jbuf_puts(b, ",\"total\":");
    jout_int(b, total);
    jbuf_puts(b, "}}");
}

static void send_page(http_query *h, const PGresult *res)
{
    jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"data\":[");
    int64_t total = 0;
    int rows = res != NULL ? PQntuples(res) : 0, written = 0;
    for (int r = 0; r < rows; r++) {
        total = strtoll(PQgetvalue(res, r, 0), NULL, 10);
        if (PQgetisnull(res, r, 1))
            continue;
        if (written++ > 0)
            jbuf_putc(&b, ',');
        if (h->row(&b, res, r, 1) != 0) {
            jbuf_free(&b);
            http_send_error(h->req, 500, h->failure);
            return;
        }
    }
    jbuf_puts(&b, "],\"meta\":");
    http_write_pagination(&b, h->limit, h->offset, total);
    jbuf_putc(&b, '}');
    http_send_jbuf(h->req, 200, &b);
}

static void send_object(http_query *h, const PGresult *res)
{
    if (PQntuples(res) == 0) {
        http_send_error(h->req, 404, h->not_found);
        return;
    }
    jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"data\":");
    if (h->row(&b, res, 0, 0) != 0) {
        jbuf_free(&b);
        http_send_error(h->req, 500, h->failure);
        return;
    }
    jbuf_putc(&b, '}');
    http_send_jbuf(h->req, 200, &b);
}

static void on_result(void *data, pgpool_status st, PGresult *res)
{
    http_query *h = data;
    h->q = NULL;
    if (st != PGPOOL_OK)
        http_send_error(h->req, 500, h->failure);
    else if (h->not_found != NULL)
        send_object(h, res);
    else
        send_page(h, res);
}

static void http_query_dispose(void *p)
{
    http_query *h = p;
    if (h->q != NULL)
        pgpool_cancel(h->q);
}

static void start(http_app *app, h2o_req_t *req, const char *sql, int nparams,
                  const char *const *params, http_query proto)
{
    http_query *h = h2o_mem_alloc_shared(&req->pool, sizeof(*h), http_query_dispose);
    *h = proto;
    h->req = req;
    h->q = pgpool_exec(app->pg, sql, nparams, params, on_result, h);
    if (h->q == NULL)
        http_send_error(req, 500, h->failure); /* the pool's wait queue is full */
}

void http_query_page(http_app *app, h2o_req_t *req, const char *sql, int nfilters,
                     const char *const *filters, int64_t limit, int64_t offset, http_row_writer row,
                     const char *failure)
{
    const char *params[8];
    char limit_text[24], offset_text[24];
    if (nfilters < 0 || nfilters > 6)
        abort(); /* programming error: the handlers pass at most a few filters */
    for (int i = 0; i < nfilters; i++)
        params[i] = filters[i];
    snprintf(limit_text, sizeof(limit_text), "%lld", (long long)limit);
    snprintf(offset_text, sizeof(offset_text), "%lld", (long long)offset);
    params[nfilters] = limit_text;
    params[nfilters + 1] = offset_text;
    http_query proto = {.row = row, .limit = limit, .offset = offset, .failure = failure};
    start(app, req, sql, nfilters + 2, params, proto);
}

void http_query_list(http_app *app, h2o_req_t *req, const char *sql, const char *const *names,
                     http_row_writer row, const char *failure)
{
    int64_t limit, offset;
    http_page_params(req, &limit, &offset);
    const char *filters[6];
    int n = 0;
    for (; names[n] != NULL; n++) {
        if (n == 6)
            abort(); /* programming error: the handlers pass at most a few filters */
        if (http_list_filter(req, names[n], &filters[n]) != 0) {
            http_send_empty_page(req, limit, offset);
            return;
        }
    }
    http_query_page(app, req, sql, n, filters, limit, offset, row, failure);
}

void http_send_empty_page(h2o_req_t *req, int64_t limit, int64_t offset)
{
    http_query h = {.req = req, .limit = limit, .offset = offset, .failure = "internal error"};
    send_page(&h, NULL);
}

void http_query_object(http_app *app, h2o_req_t *req, const char *sql, int nparams,
                       const char *const *params, http_row_writer row, const char *not_found,
                       const char *failure)
{
    http_query proto = {.row = row, .not_found = not_found, .failure = failure};
    start(app, req, sql, nparams, params, proto);
}
