/*
 * server/handlers/reports.c: GET /api/v1/reports (API.md §4.2) and GET /api/v1/reports/{slug}
 * (§4.3). Runs in HTTP workers.
 *
 * Both read PostgreSQL on every request (see catalogue.h for why), one statement each, through
 * the worker's pool without blocking. Search uses PostgreSQL's ILIKE with %, _ and \ escaped,
 * so case folding is exactly the database's. A value that cannot match (API.md §2.3) is
 * answered without a query. server/http_query.h runs the statement and writes the answer.
 */
#include <stdlib.h>
#include <string.h>

#include "common/json_out.h"
#include "common/params.h"
#include "common/util.h"
#include "server/catalogue.h"
#include "server/http_app.h"
#include "server/http_query.h"
#include "server/http_response.h"

/* ---- list -------------------------------------------------------------------------------- */

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
    size_t len;
    const char *v;
    int64_t limit, offset;
    http_page_params(req, &limit, &offset);

    http_query_param(req, "sort", &v, &len);
    const char *column = sort_column(v, len);
    http_query_param(req, "order", &v, &len);
    const char *dir = order_is_desc(v, len) ? "DESC" : "ASC";
    const char *collate =
        strcmp(column, "slug") == 0 || strcmp(column, "name") == 0 ? " COLLATE \"C\"" : "";

    const char *search;
    size_t search_len, start;
    http_query_param(req, "search", &search, &search_len);
    text_trim(search, search_len, &start, &search_len);
    search = search_len == 0 ? NULL : h2o_strdup(&req->pool, search + start, search_len).base;
    if (search != NULL && !text_is_matchable(search, search_len)) {
        http_send_empty_page(req, limit, offset);
        return;
    }

    const char *filters[] = {search};
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
        " page.supported_filters, page.last_rebuilt_at"
        " FROM (SELECT 1) one LEFT JOIN page ON true ORDER BY page.rn",
        strcmp(column, "updated_at") == 0          ? "m.sort_updated_at"
        : strcmp(column, "cache_ttl_seconds") == 0 ? "m.sort_ttl"
        : strcmp(column, "slug") == 0              ? "m.slug"
                                                   : "m.name",
        collate, dir, dir);
    http_query_page(app, req, sql, 1, filters, limit, offset, catalogue_definition_json,
                    "failed to list reports");
    free(sql);
}

/* ---- get --------------------------------------------------------------------------------- */

void report_get_handle(http_app *app, h2o_req_t *req, const route_match *m)
{
    if (!text_is_matchable(m->param, m->param_len)) {
        http_send_error(req, 404, "report was not found");
        return;
    }
    const char *params[] = {h2o_strdup(&req->pool, m->param, m->param_len).base};
    http_query_object(app, req,
                      "SELECT " CATALOGUE_DEFINITION_COLUMNS
                      " FROM report_definitions d WHERE d.slug = $1 AND d.is_public",
                      1, params, catalogue_definition_json, "report was not found",
                      "internal error");
}
