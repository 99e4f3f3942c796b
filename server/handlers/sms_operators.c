/*
 * server/handlers/sms_operators.c: the operator resource of the SMS read API: GET
 * /api/v1/sms/operators (SMS.md §6.3, a sorted page of operator items) and GET
 * /api/v1/sms/operators/{operator_id}/metrics (§6.4, totals and an hourly or daily series).
 * Runs in HTTP workers; one statement each (anlyt.api_operators, anlyt.api_operator_metrics),
 * answered through the worker's cache.
 *
 * Check order: date range, span, then the route's own parameters (sort, order / window and the
 * hour window's span), then the path id (404), which is also looked up by the statement.
 */
#include "common/sms_read.h"
#include "common/util.h"
#include "server/http_app.h"
#include "server/http_response.h"
#include "server/sms_http.h"

#include <string.h>

#define SMS_HOUR_WINDOW_MAX_DAYS 31

static const char SORT_MESSAGE[] = "sort must be one of total_messages, delivery_rate, error_rate, "
                                   "avg_latency_ms, p95_latency_ms, peak_tps, operator_id";
static const char *const SORTS[] = {"total_messages", "delivery_rate",  "error_rate",
                                    "avg_latency_ms", "p95_latency_ms", "peak_tps",
                                    "operator_id"};

static int render_list(jbuf *b, const PGresult *res, const sms_read_req *r)
{
    return sms_read_operators_json(b, res, r->from, r->to, r->limit, r->offset);
}

static int render_metrics(jbuf *b, const PGresult *res, const sms_read_req *r)
{
    return sms_read_operator_metrics_json(b, res, r->id, r->from, r->to);
}

void sms_operators_handle(http_app *app, h2o_req_t *req, const route_match *m)
{
    (void)m;
    sms_read_req *r = sms_http_begin(app, req);
    sms_list l;
    if (r == NULL || sms_http_list_params(r, SORTS, ARRAY_LEN(SORTS), SORT_MESSAGE, &l) != 0)
        return;
    r->render = render_list;
    const char *params[7] = {r->lo, r->hi, r->floor, l.sort, l.desc, l.limit, l.offset};
    sms_http_run(r, "operators", SMS_READ_OPERATORS_SQL, 7, params);
}

void sms_operator_metrics_handle(http_app *app, h2o_req_t *req, const route_match *m)
{
    sms_read_req *r = sms_http_begin(app, req);
    const char *window;
    if (r == NULL || sms_http_window(r, "hour", "day", &window) != 0)
        return;
    if (strcmp(window, "hour") == 0 && r->to - r->from + 1 > SMS_HOUR_WINDOW_MAX_DAYS) {
        http_send_error(req, 400, "date range exceeds 31 days for window hour");
        return;
    }
    if (sms_http_path_id(r, m->param, m->param_len, "operator was not found") != 0)
        return;
    r->render = render_metrics;
    const char *params[5] = {r->id, r->lo, r->hi, r->floor, window};
    sms_http_run(r, "operator_metrics", SMS_READ_OPERATOR_METRICS_SQL, 5, params);
}
