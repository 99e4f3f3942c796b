/*
 * server/handlers/audit_entries.c: GET /api/v1/audit-entries (API.md §4.8). Runs in HTTP
 * workers, after authentication.
 *
 * One statement gives the total and the page (a count joined laterally with the page, so the
 * total is there even when the page is empty). Filters that cannot match (API.md §2.3) answer an
 * empty page without a query. The pending query lives in the request's pool; its dispose hook
 * cancels it if the client goes away.
 */
#include <stdio.h>
#include <stdlib.h>

#include "server/http_app.h"
#include "server/http_response.h"
#include "server/recompute_json.h"

#define AUDIT_FILTER "($1::text IS NULL OR a.action = $1) AND ($2::text IS NULL OR a.actor = $2)"

static const char AUDIT_LIST_SQL[] =
    "SELECT t.total, p.* FROM (SELECT count(*) FROM audit_entries a WHERE " AUDIT_FILTER
    ") t(total) LEFT JOIN LATERAL (SELECT " RECOMPUTE_JSON_AUDIT_COLUMNS
    ", a.created_at AS sort_at, a.id AS sort_id FROM audit_entries a WHERE " AUDIT_FILTER
    " ORDER BY a.created_at DESC, a.id DESC LIMIT $3::bigint OFFSET $4::bigint) p ON true "
    "ORDER BY p.sort_at DESC, p.sort_id DESC";

typedef struct audit_list {
    h2o_req_t *req;
    pgpool_query *q;
    int64_t limit, offset;
} audit_list;

static void audit_list_respond(audit_list *l, PGresult *res)
{
    jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"data\":[");
    int64_t total = 0;
    int rows = res == NULL ? 0 : PQntuples(res);
    if (rows > 0)
        total = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    int n = 0;
    for (int i = 0; i < rows; i++) {
        if (PQgetisnull(res, i, 1))
            continue; /* the count row of an empty page */
        if (n++ > 0)
            jbuf_putc(&b, ',');
        if (recompute_json_audit(&b, res, i, 1) != 0) {
            jbuf_free(&b);
            http_send_error(l->req, 500, "failed to list audit entries");
            return;
        }
    }
    jbuf_puts(&b, "],");
    recompute_json_pagination(&b, l->limit, l->offset, total);
    jbuf_putc(&b, '}');
    http_send_jbuf(l->req, 200, &b);
}

static void on_audit_rows(void *data, PGresult *res)
{
    audit_list *l = data;
    l->q = NULL;
    if (res == NULL) {
        http_send_error(l->req, 500, "failed to list audit entries");
        return;
    }
    audit_list_respond(l, res);
}

static void audit_list_dispose(void *p)
{
    audit_list *l = p;
    if (l->q != NULL)
        pgpool_cancel(l->q);
}

void audit_list_handle(http_app *app, h2o_req_t *req, const route_match *m)
{
    (void)m;
    const char *qs = NULL;
    size_t qs_len = 0;
    if (req->query_at != SIZE_MAX) {
        qs = req->path.base + req->query_at + 1;
        qs_len = req->path.len - req->query_at - 1;
    }
    audit_list *l = h2o_mem_alloc_shared(&req->pool, sizeof(*l), audit_list_dispose);
    memset(l, 0, sizeof(*l));
    l->req = req;
    char *scratch = h2o_mem_alloc_pool(&req->pool, qs_len + 1);
    recompute_page_params(qs, qs_len, scratch, &l->limit, &l->offset);

    const char *action, *actor;
    char *action_buf = h2o_mem_alloc_pool(&req->pool, qs_len + 1);
    char *actor_buf = h2o_mem_alloc_pool(&req->pool, qs_len + 1);
    if (recompute_list_filter(qs, qs_len, "action", action_buf, &action) != 0 ||
        recompute_list_filter(qs, qs_len, "actor", actor_buf, &actor) != 0) {
        audit_list_respond(l, NULL);
        return;
    }
    char limit_s[24], offset_s[24];
    snprintf(limit_s, sizeof(limit_s), "%lld", (long long)l->limit);
    snprintf(offset_s, sizeof(offset_s), "%lld", (long long)l->offset);
    const char *params[4] = {action, actor, limit_s, offset_s};
    l->q = pgpool_exec(app->pg, AUDIT_LIST_SQL, 4, params, on_audit_rows, l);
    if (l->q == NULL)
        http_send_error(req, 500, "failed to list audit entries");
}
