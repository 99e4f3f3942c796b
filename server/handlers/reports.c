/*
 * server/handlers/reports.c: GET /api/v1/reports (API.md §4.2) and GET /api/v1/reports/{slug}
 * (§4.3). Runs in HTTP workers.
 *
 * Both read PostgreSQL on every request (see catalogue.h for why), one statement each (owned by
 * the catalogue, server/catalogue.h), through the worker's pool without blocking. Search uses
 * PostgreSQL's ILIKE with %, _ and \ escaped, so case folding is exactly the database's. A value
 * that cannot match (API.md §2.3) is answered without a query. server/http_query.h runs the
 * statement and writes the answer.
 */
#include <string.h>

#include "common/json_out.h"
#include "common/params.h"
#include "common/util.h"
#include "server/catalogue.h"
#include "server/http_app.h"
#include "server/http_query.h"
#include "server/http_response.h"

/* ---- list -------------------------------------------------------------------------------- */

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
    catalogue_sort sort = catalogue_sort_parse(v, len);
    http_query_param(req, "order", &v, &len);
    int desc = order_is_desc(v, len);

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
    http_query_page(app, req, catalogue_list_sql(sort, desc), 1, filters, limit, offset,
                    catalogue_definition_json, "failed to list reports");
}

/* ---- get --------------------------------------------------------------------------------- */

void report_get_handle(http_app *app, h2o_req_t *req, const route_match *m)
{
    if (!text_is_matchable(m->param, m->param_len)) {
        http_send_error(req, 404, "report was not found");
        return;
    }
    const char *params[] = {h2o_strdup(&req->pool, m->param, m->param_len).base};
    http_query_object(app, req, CATALOGUE_GET_SQL, 1, params, catalogue_definition_json,
                      "report was not found", "internal error");
}
