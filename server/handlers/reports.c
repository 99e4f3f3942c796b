/*
 * server/handlers/reports.c: GET /api/v1/reports (API.md §4.2) and GET /api/v1/reports/{slug}
 * (§4.3). Runs in HTTP workers.
 *
 * Both read PostgreSQL on every request (see catalogue.h for why), one statement each, through
 * the worker's pool without blocking. Search uses PostgreSQL's ILIKE with %, _ and \ escaped,
 * so case folding is exactly the database's. A value that cannot match (API.md §2.3) is
 * answered without a query. The pending query lives in the request's pool; its dispose hook
 * cancels it if the client goes away.
 */
#include <stdlib.h>
#include <string.h>

#include "common/json_out.h"
#include "common/params.h"
#include "common/util.h"
#include "server/catalogue.h"
#include "server/http_app.h"
#include "server/http_response.h"

#define LIST_DEFAULT_LIMIT 20
#define LIST_MAX_LIMIT     100

typedef struct reports_pending {
    h2o_req_t *req;
    pgpool_query *pg;
    int64_t limit, offset;
} reports_pending;

static void reports_dispose(void *p)
{
    reports_pending *s = p;
    if (s->pg != NULL)
        pgpool_cancel(s->pg);
}

static reports_pending *reports_pending_new(h2o_req_t *req)
{
    reports_pending *s = h2o_mem_alloc_shared(&req->pool, sizeof(*s), reports_dispose);
    memset(s, 0, sizeof(*s));
    s->req = req;
    return s;
}

/* The raw query string (without '?') of req; length 0 when there is none. */
static const char *query_string(h2o_req_t *req, size_t *len)
{
    if (req->query_at == SIZE_MAX) {
        *len = 0;
        return "";
    }
    *len = req->path.len - req->query_at - 1;
    return req->path.base + req->query_at + 1;
}

/* Decodes parameter `name` into pool memory; *v NULL when absent. */
static void query_param(h2o_req_t *req, const char *qs, size_t qs_len, const char *name,
                        const char **v, size_t *len)
{
    char *buf = h2o_mem_alloc_pool(&req->pool, qs_len + 1);
    *v = NULL;
    *len = 0;
    if (query_get(qs, qs_len, name, buf, len))
        *v = buf;
}

/* ---- list -------------------------------------------------------------------------------- */

static void send_list(h2o_req_t *req, const PGresult *res, int64_t limit, int64_t offset)
{
    jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"data\":[");
    int64_t total = 0;
    int rows = res != NULL ? PQntuples(res) : 0, written = 0;
    for (int r = 0; r < rows; r++) {
        total = strtoll(PQgetvalue(res, r, 0), NULL, 10);
        if (PQgetisnull(res, r, 1))
            continue; /* the count-only row of an empty page */
        if (written++ > 0)
            jbuf_putc(&b, ',');
        if (catalogue_definition_json(&b, res, r, 1) != 0) {
            jbuf_free(&b);
            http_send_error(req, 500, "failed to list reports");
            return;
        }
    }
    jbuf_puts(&b, "],\"meta\":{\"pagination\":{\"limit\":");
    jout_int(&b, limit);
    jbuf_puts(&b, ",\"offset\":");
    jout_int(&b, offset);
    jbuf_puts(&b, ",\"total\":");
    jout_int(&b, total);
    jbuf_puts(&b, "}}}");
    http_send_jbuf(req, 200, &b);
}

static void on_list(void *data, PGresult *res)
{
    reports_pending *s = data;
    s->pg = NULL;
    if (res == NULL)
        http_send_error(s->req, 500, "failed to list reports");
    else
        send_list(s->req, res, s->limit, s->offset);
}

static const char *sort_column(const char *v, size_t len)
{
    static const char *const columns[] = {"slug", "name", "updated_at", "cache_ttl_seconds"};
    size_t start, n;
    text_trim(v, len, &start, &n);
    for (size_t i = 0; i < ARRAY_LEN(columns); i++)
        if (n == strlen(columns[i]) && memcmp(v + start, columns[i], n) == 0)
            return columns[i];
    return "name";
}

static int order_is_desc(const char *v, size_t len)
{
    size_t start, n;
    text_trim(v, len, &start, &n);
    return n == 4 && strncasecmp(v + start, "desc", 4) == 0;
}

void reports_list_handle(http_app *app, h2o_req_t *req, const route_match *m)
{
    (void)m;
    size_t qs_len, len;
    const char *qs = query_string(req, &qs_len), *v;
    reports_pending *s = reports_pending_new(req);

    s->limit = LIST_DEFAULT_LIMIT;
    query_param(req, qs, qs_len, "limit", &v, &len);
    param_int(v, len, v != NULL, &s->limit);
    if (s->limit < 1)
        s->limit = LIST_DEFAULT_LIMIT;
    if (s->limit > LIST_MAX_LIMIT)
        s->limit = LIST_MAX_LIMIT;
    s->offset = 0;
    query_param(req, qs, qs_len, "offset", &v, &len);
    param_int(v, len, v != NULL, &s->offset);
    if (s->offset < 0)
        s->offset = 0;

    query_param(req, qs, qs_len, "sort", &v, &len);
    const char *column = sort_column(v, len);
    query_param(req, qs, qs_len, "order", &v, &len);
    const char *dir = order_is_desc(v, len) ? "DESC" : "ASC";
    const char *collate =
        strcmp(column, "slug") == 0 || strcmp(column, "name") == 0 ? " COLLATE \"C\"" : "";

    const char *search;
    size_t search_len, start;
    query_param(req, qs, qs_len, "search", &search, &search_len);
    text_trim(search, search_len, &start, &search_len);
    search = search_len == 0 ? NULL : h2o_strdup(&req->pool, search + start, search_len).base;
    if (search != NULL && !text_is_matchable(search, search_len)) {
        send_list(req, NULL, s->limit, s->offset);
        return;
    }

    char limit_text[24], offset_text[24];
    snprintf(limit_text, sizeof(limit_text), "%lld", (long long)s->limit);
    snprintf(offset_text, sizeof(offset_text), "%lld", (long long)s->offset);
    const char *params[] = {search, limit_text, offset_text};
    /* One row per definition of the page, each carrying the total; an empty page still
     * yields one row (definition columns NULL) so the total is known. */
    char *sql = xasprintf(
        "WITH p AS (SELECT '%%' || replace(replace(replace($1::text, '\\', '\\\\'),"
        " '%%', '\\%%'), '_', '\\_') || '%%' AS pattern),"
        " m AS (SELECT " CATALOGUE_DEFINITION_COLUMNS ", d.updated_at AS sort_updated_at,"
        " d.cache_ttl_seconds AS sort_ttl"
        " FROM report_definitions d, p WHERE d.is_public AND ($1::text IS NULL"
        " OR d.slug ILIKE p.pattern OR d.name ILIKE p.pattern)),"
        " page AS (SELECT m.*, row_number() OVER (ORDER BY %s%s %s, m.slug COLLATE \"C\" %s)"
        " AS rn FROM m ORDER BY rn LIMIT $2::bigint OFFSET $3::bigint)"
        " SELECT (SELECT count(*) FROM m), page.slug, page.name, page.description,"
        " page.cache_ttl_seconds, page.default_window, page.has_day, page.has_week,"
        " page.supported_filters FROM (SELECT 1) one LEFT JOIN page ON true ORDER BY page.rn",
        strcmp(column, "updated_at") == 0          ? "m.sort_updated_at"
        : strcmp(column, "cache_ttl_seconds") == 0 ? "m.sort_ttl"
        : strcmp(column, "slug") == 0              ? "m.slug"
                                                   : "m.name",
        collate, dir, dir);
    s->pg = pgpool_exec(app->pg, sql, 3, params, on_list, s);
    free(sql);
    if (s->pg == NULL)
        http_send_error(req, 500, "failed to list reports");
}

/* ---- get --------------------------------------------------------------------------------- */

static void on_get(void *data, PGresult *res)
{
    reports_pending *s = data;
    s->pg = NULL;
    if (res == NULL) {
        http_send_error(s->req, 500, "internal error");
        return;
    }
    if (PQntuples(res) == 0) {
        http_send_error(s->req, 404, "report was not found");
        return;
    }
    jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"data\":");
    if (catalogue_definition_json(&b, res, 0, 0) != 0) {
        jbuf_free(&b);
        http_send_error(s->req, 500, "internal error");
        return;
    }
    jbuf_putc(&b, '}');
    http_send_jbuf(s->req, 200, &b);
}

void report_get_handle(http_app *app, h2o_req_t *req, const route_match *m)
{
    if (!text_is_matchable(m->param, m->param_len)) {
        http_send_error(req, 404, "report was not found");
        return;
    }
    reports_pending *s = reports_pending_new(req);
    const char *params[] = {h2o_strdup(&req->pool, m->param, m->param_len).base};
    s->pg = pgpool_exec(app->pg,
                        "SELECT " CATALOGUE_DEFINITION_COLUMNS
                        " FROM report_definitions d WHERE d.slug = $1 AND d.is_public",
                        1, params, on_get, s);
    if (s->pg == NULL)
        http_send_error(req, 500, "internal error");
}
