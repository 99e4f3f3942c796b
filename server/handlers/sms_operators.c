/*
 * server/handlers/sms_operators.c: the operator resource of the SMS read API: GET
 * /api/v1/sms/operators (SMS.md §6.3, a sorted page of operator items) and GET
 * /api/v1/sms/operators/{operator_id}/metrics (§6.4, totals and an hourly or daily series; an
 * hourly one spans at most 31 days). Runs in HTTP workers; one statement each
 * (anlyt.api_operators, anlyt.api_operator_metrics), answered through the worker's cache
 * (server/sms_http.h does the checks, in the order date range, span, the route's own
 * parameters, path id). Both statements read hourly rows from r->floor on.
 */
#include "common/sms_read.h"
#include "server/sms_http.h"

const sms_list_route sms_operators_list = {
    .name = "operators",
    .sql = SMS_READ_OPERATORS_SQL,
    .items_json = sms_read_operators_json,
    .takes_floor = 1,
    .sorts =
        (const char *const[]){"total_messages", "delivery_rate", "error_rate", "avg_latency_ms",
                              "p95_latency_ms", "peak_tps", "operator_id", NULL},
};

const sms_detail_route sms_operator_metrics_detail = {
    .name = "operator_metrics",
    .sql = SMS_READ_OPERATOR_METRICS_SQL,
    .detail_json = sms_read_operator_metrics_json,
    .takes_floor = 1,
    .windows = {"hour", "day"},
    .hour_max_days = 31,
    .not_found = "operator was not found",
};
