/*
 * server/handlers/audit_entries.c: GET /api/v1/audit-entries (API.md §4.8). Runs in HTTP
 * workers, after authentication.
 *
 * One statement gives the total and the page (a count joined laterally with the page, so the
 * total is there even when the page is empty). Filters that cannot match (API.md §2.3) answer an
 * empty page without a query (server/http_query.h runs the statement and writes the page).
 */

#include "common/runs.h"
#include "server/http_app.h"
#include "server/http_query.h"
#include "server/recompute_json.h"

void audit_list_handle(http_app *app, h2o_req_t *req, const route_match *m)
{
    (void)m;
    http_query_list(app, req, runs_audit_list_sql, (const char *const[]){"action", "actor", NULL},
                    recompute_json_audit, "failed to list audit entries");
}
