/*
 * server/handlers/audit_entries.c: GET /api/v1/audit-entries (API.md §4.8). Runs in HTTP
 * workers, after authentication.
 *
 * One statement gives the total and the page (a count joined laterally with the page, so the
 * total is there even when the page is empty). Filters that cannot match (API.md §2.3) answer an
 * empty page without a query (server/http_query.h runs the statement and writes the page).
 */

#include "server/http_app.h"
#include "server/http_query.h"
#include "server/recompute_json.h"

#define AUDIT_FILTER "($1::text IS NULL OR a.action = $1) AND ($2::text IS NULL OR a.actor = $2)"

static const char AUDIT_LIST_SQL[] =
    "SELECT t.total, p.* FROM (SELECT count(*) FROM audit_entries a WHERE " AUDIT_FILTER
    ") t(total) LEFT JOIN LATERAL (SELECT " RECOMPUTE_JSON_AUDIT_COLUMNS
    ", a.created_at AS sort_at, a.id AS sort_id FROM audit_entries a WHERE " AUDIT_FILTER
    " ORDER BY a.created_at DESC, a.id DESC LIMIT $3::bigint OFFSET $4::bigint) p ON true "
    "ORDER BY p.sort_at DESC, p.sort_id DESC";

void audit_list_handle(http_app *app, h2o_req_t *req, const route_match *m)
{
    (void)m;
    int64_t limit, offset;
    http_page_params(req, &limit, &offset);
    const char *action, *actor;
    if (http_list_filter(req, "action", &action) != 0 ||
        http_list_filter(req, "actor", &actor) != 0) {
        http_send_empty_page(req, limit, offset);
        return;
    }
    const char *filters[2] = {action, actor};
    http_query_page(app, req, AUDIT_LIST_SQL, 2, filters, limit, offset, recompute_json_audit,
                    "failed to list audit entries");
}
