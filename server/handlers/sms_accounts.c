/*
 * server/handlers/sms_accounts.c: the account resource of the SMS read API (SMS.md §6.5): GET
 * /api/v1/sms/accounts (a sorted page of account items) and GET
 * /api/v1/sms/accounts/{account_id}/usage (totals and a daily or monthly series), both from
 * anlyt.account_usage_daily. Runs in HTTP workers; one statement each (anlyt.api_accounts,
 * anlyt.api_account_usage), answered through the worker's cache (server/sms_http.h does the
 * checks, in the order date range, span, the route's own parameters, path id).
 */
#include "common/sms_read.h"
#include "server/sms_http.h"

const sms_list_route sms_accounts_list = {
    .name = "accounts",
    .sql = SMS_READ_ACCOUNTS_SQL,
    .items_json = sms_read_accounts_json,
    .sorts =
        (const char *const[]){"total_cost", "messages_sent", "delivery_rate", "account_id", NULL},
};

const sms_detail_route sms_account_usage_detail = {
    .name = "account_usage",
    .sql = SMS_READ_ACCOUNT_USAGE_SQL,
    .detail_json = sms_read_account_usage_json,
    .windows = {"day", "month"},
    .not_found = "account was not found",
};
