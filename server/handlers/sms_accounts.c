/*
 * server/handlers/sms_accounts.c: the account resource of the SMS read API (SMS.md §6.5): GET
 * /api/v1/sms/accounts (a sorted page of account items) and GET
 * /api/v1/sms/accounts/{account_id}/usage (totals and a daily or monthly series), both from
 * anlyt.account_usage_daily. Runs in HTTP workers; one statement each (anlyt.api_accounts,
 * anlyt.api_account_usage), answered through the worker's cache.
 *
 * Check order: date range, span, then the route's own parameters (sort, order / window), then
 * the path id (404), which is also looked up by the statement.
 */
#include "common/sms_read.h"
#include "common/util.h"
#include "server/http_app.h"
#include "server/sms_http.h"

static const char SORT_MESSAGE[] =
    "sort must be one of total_cost, messages_sent, delivery_rate, account_id";
static const char *const SORTS[] = {"total_cost", "messages_sent", "delivery_rate", "account_id"};

static int render_list(jbuf *b, const PGresult *res, const sms_read_req *r)
{
    return sms_read_accounts_json(b, res, r->from, r->to, r->limit, r->offset);
}

static int render_usage(jbuf *b, const PGresult *res, const sms_read_req *r)
{
    return sms_read_account_usage_json(b, res, r->id, r->from, r->to);
}

void sms_accounts_handle(http_app *app, h2o_req_t *req, const route_match *m)
{
    (void)m;
    sms_read_req *r = sms_http_begin(app, req);
    sms_list l;
    if (r == NULL || sms_http_list_params(r, SORTS, ARRAY_LEN(SORTS), SORT_MESSAGE, &l) != 0)
        return;
    r->render = render_list;
    const char *params[6] = {r->lo, r->hi, l.sort, l.desc, l.limit, l.offset};
    sms_http_run(r, "accounts", SMS_READ_ACCOUNTS_SQL, 6, params);
}

void sms_account_usage_handle(http_app *app, h2o_req_t *req, const route_match *m)
{
    sms_read_req *r = sms_http_begin(app, req);
    const char *window;
    if (r == NULL || sms_http_window(r, "day", "month", &window) != 0 ||
        sms_http_path_id(r, m->param, m->param_len, "account was not found") != 0)
        return;
    r->render = render_usage;
    const char *params[4] = {r->id, r->lo, r->hi, window};
    sms_http_run(r, "account_usage", SMS_READ_ACCOUNT_USAGE_SQL, 4, params);
}
