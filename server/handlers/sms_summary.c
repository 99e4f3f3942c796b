/*
 * server/handlers/sms_summary.c: GET /api/v1/sms/summary (SMS.md §6.2): the platform's totals,
 * rates, cost, latency percentiles, peak TPS and active accounts and operators over a range.
 * Runs in HTTP workers; one statement (anlyt.api_summary), answered through the worker's cache.
 */
#include "common/sms_read.h"
#include "server/http_app.h"
#include "server/sms_http.h"

#include <stdio.h>

static int render(jbuf *b, const PGresult *res, const sms_read_req *r)
{
    return sms_read_summary_json(b, res, r->from, r->to);
}

void sms_summary_handle(http_app *app, h2o_req_t *req, const route_match *m)
{
    (void)m;
    sms_read_req *r = sms_http_begin(app, req);
    if (r == NULL)
        return;
    r->render = render;
    const char *params[3] = {r->lo, r->hi, r->floor};
    sms_http_run(r, "summary", SMS_READ_SUMMARY_SQL, 3, params);
}
