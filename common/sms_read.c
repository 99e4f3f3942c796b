/*
 * common/sms_read.c: statements and rendering of the SMS read routes (see sms_read.h). Runs in
 * the HTTP workers.
 *
 * The functions called here return values already rounded and formatted by PostgreSQL
 * (numeric text with exactly 6 decimals for rates and money, integers for counts and
 * latencies), so rendering copies them: a number as is, money quoted, SQL NULL as null.
 */
#include "common/sms_read.h"

#include "common/dates.h"
#include "common/json_out.h"

#include <string.h>

const char SMS_READ_SUMMARY_SQL[] = "SELECT * FROM anlyt.api_summary($1::date, $2::date, $3::date)";
const char SMS_READ_OPERATORS_SQL[] = "SELECT * FROM anlyt.api_operators($1::date, $2::date, "
                                      "$3::date, $4, $5::boolean, $6::integer, $7::integer)";
const char SMS_READ_OPERATOR_METRICS_SQL[] =
    "SELECT * FROM anlyt.api_operator_metrics($1::uuid, $2::date, $3::date, $4::date, $5)";
const char SMS_READ_ACCOUNTS_SQL[] = "SELECT * FROM anlyt.api_accounts($1::date, $2::date, $3, "
                                     "$4::boolean, $5::integer, $6::integer)";
const char SMS_READ_ACCOUNT_USAGE_SQL[] =
    "SELECT * FROM anlyt.api_account_usage($1::uuid, $2::date, $3::date, $4)";

typedef enum { COL_NUMBER, COL_MONEY } col_kind;

typedef struct member {
    const char *name;
    col_kind kind;
} member;

static const member SUMMARY[] = {
    {"total_messages", COL_NUMBER},   {"delivered_messages", COL_NUMBER},
    {"failed_messages", COL_NUMBER},  {"pending_messages", COL_NUMBER},
    {"delivery_rate", COL_NUMBER},    {"error_rate", COL_NUMBER},
    {"total_cost", COL_MONEY},        {"avg_cost_per_message", COL_MONEY},
    {"avg_latency_ms", COL_NUMBER},   {"p50_latency_ms", COL_NUMBER},
    {"p95_latency_ms", COL_NUMBER},   {"p99_latency_ms", COL_NUMBER},
    {"peak_tps", COL_NUMBER},         {"active_accounts", COL_NUMBER},
    {"active_operators", COL_NUMBER},
};
#define SUMMARY_N (int)(sizeof(SUMMARY) / sizeof(SUMMARY[0]))

/* An operator item without operator_id (SMS.md §6.3), also the totals and series members. */
static const member OPERATOR[] = {
    {"total_messages", COL_NUMBER},  {"delivered_messages", COL_NUMBER},
    {"failed_messages", COL_NUMBER}, {"pending_messages", COL_NUMBER},
    {"delivery_rate", COL_NUMBER},   {"error_rate", COL_NUMBER},
    {"avg_latency_ms", COL_NUMBER},  {"p50_latency_ms", COL_NUMBER},
    {"p95_latency_ms", COL_NUMBER},  {"p99_latency_ms", COL_NUMBER},
    {"peak_tps", COL_NUMBER},        {"error_count", COL_NUMBER},
};
#define OPERATOR_N (int)(sizeof(OPERATOR) / sizeof(OPERATOR[0]))

/* An account item without account_id (SMS.md §6.5). */
static const member ACCOUNT[] = {
    {"messages_sent", COL_NUMBER},   {"messages_delivered", COL_NUMBER},
    {"messages_failed", COL_NUMBER}, {"delivery_rate", COL_NUMBER},
    {"total_cost", COL_MONEY},       {"avg_cost_per_message", COL_MONEY},
    {"total_segments", COL_NUMBER},
};
#define ACCOUNT_N (int)(sizeof(ACCOUNT) / sizeof(ACCOUNT[0]))

int32_t sms_read_floor(int64_t now_s, int64_t retention_days)
{
    int64_t t = now_s - retention_days * 86400;
    int64_t day = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    return (int32_t)(day + 1);
}

/* Appends the members of row `row`, columns first .. first+n-1, after a ',' unless `lead` is
 * 0 (the first member of an object). */
static void write_members(jbuf *b, const PGresult *res, int row, int first, const member *m, int n,
                          int lead)
{
    for (int i = 0; i < n; i++) {
        if (i > 0 || lead)
            jbuf_putc(b, ',');
        jout_key(b, m[i].name);
        int col = first + i;
        if (PQgetisnull(res, row, col)) {
            jout_null(b);
            continue;
        }
        const char *v = PQgetvalue(res, row, col);
        size_t len = (size_t)PQgetlength(res, row, col);
        if (m[i].kind == COL_MONEY)
            jout_string(b, v, len);
        else
            jbuf_append(b, v, len);
    }
}

/* A timestamptz column as a JSON timestamp (null when NULL); -1 if unreadable. */
static int write_time(jbuf *b, const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col)) {
        jout_null(b);
        return 0;
    }
    int64_t sec;
    int32_t nanos;
    if (pgtime_parse(PQgetvalue(res, row, col), &sec, &nanos) != 0)
        return -1;
    jout_timestamp(b, sec, nanos);
    return 0;
}

/* `"meta":{"date_from":…,"date_to":…,"freshness":{"as_of":…,"ingested_through":…}` without
 * the closing brace (lists add limit, offset and total). */
static int write_meta(jbuf *b, const PGresult *res, int row, int it_col, int as_of_col,
                      int32_t from, int32_t to)
{
    jbuf_puts(b, ",\"meta\":{\"date_from\":");
    jout_date(b, from);
    jbuf_puts(b, ",\"date_to\":");
    jout_date(b, to);
    jbuf_puts(b, ",\"freshness\":{\"as_of\":");
    if (write_time(b, res, row, as_of_col) != 0)
        return -1;
    jbuf_puts(b, ",\"ingested_through\":");
    if (write_time(b, res, row, it_col) != 0)
        return -1;
    jbuf_putc(b, '}');
    return 0;
}

int sms_read_summary_json(jbuf *b, const PGresult *res, int32_t from, int32_t to)
{
    if (PQntuples(res) != 1 || PQnfields(res) != SUMMARY_N + 2)
        return -1;
    jbuf_puts(b, "\"data\":{");
    write_members(b, res, 0, 0, SUMMARY, SUMMARY_N, 0);
    jbuf_putc(b, '}');
    if (write_meta(b, res, 0, SUMMARY_N, SUMMARY_N + 1, from, to) != 0)
        return -1;
    jbuf_putc(b, '}');
    return 0;
}

/* Lists: column 0 total, 1 id, then the members, then ingested_through and as_of. */
static int write_list(jbuf *b, const PGresult *res, const char *id_name, const member *m, int n,
                      int32_t from, int32_t to, int64_t limit, int64_t offset)
{
    int rows = PQntuples(res);
    if (rows < 1 || PQnfields(res) != n + 4)
        return -1;
    jbuf_puts(b, "\"data\":[");
    int written = 0;
    for (int r = 0; r < rows; r++) {
        if (PQgetisnull(res, r, 1))
            continue; /* the count-only row of an empty page */
        jbuf_puts(b, written++ ? ",{" : "{");
        jout_key(b, id_name);
        jout_string(b, PQgetvalue(res, r, 1), (size_t)PQgetlength(res, r, 1));
        write_members(b, res, r, 2, m, n, 1);
        jbuf_putc(b, '}');
    }
    jbuf_putc(b, ']');
    if (write_meta(b, res, 0, n + 2, n + 3, from, to) != 0)
        return -1;
    jbuf_puts(b, ",\"limit\":");
    jout_int(b, limit);
    jbuf_puts(b, ",\"offset\":");
    jout_int(b, offset);
    jbuf_puts(b, ",\"total\":");
    jbuf_puts(b, PQgetvalue(res, 0, 0));
    jbuf_puts(b, "}");
    return 0;
}

int sms_read_operators_json(jbuf *b, const PGresult *res, int32_t from, int32_t to, int64_t limit,
                            int64_t offset)
{
    return write_list(b, res, "operator_id", OPERATOR, OPERATOR_N, from, to, limit, offset);
}

int sms_read_accounts_json(jbuf *b, const PGresult *res, int32_t from, int32_t to, int64_t limit,
                           int64_t offset)
{
    return write_list(b, res, "account_id", ACCOUNT, ACCOUNT_N, from, to, limit, offset);
}

int sms_read_found(const PGresult *res)
{
    return PQntuples(res) >= 1 && !PQgetisnull(res, 0, 0) &&
           strcmp(PQgetvalue(res, 0, 0), "t") == 0;
}

/* Metrics and usage: column 0 found, 1 bucket, then the members, then ingested_through and
 * as_of; row 0 is the totals, the others the series. */
static int write_series(jbuf *b, const PGresult *res, const char *id_name, const char *id,
                        const member *m, int n, int bucket_is_date, int32_t from, int32_t to)
{
    int rows = PQntuples(res);
    if (rows < 1 || PQnfields(res) != n + 4)
        return -1;
    jbuf_puts(b, "\"data\":{");
    jout_key(b, id_name);
    jout_cstr(b, id);
    jbuf_puts(b, ",\"totals\":{");
    write_members(b, res, 0, 2, m, n, 0);
    jbuf_puts(b, "},\"series\":[");
    for (int r = 1; r < rows; r++) {
        jbuf_puts(b, r > 1 ? ",{\"bucket\":" : "{\"bucket\":");
        if (bucket_is_date)
            jout_string(b, PQgetvalue(res, r, 1), (size_t)PQgetlength(res, r, 1));
        else if (write_time(b, res, r, 1) != 0)
            return -1;
        write_members(b, res, r, 2, m, n, 1);
        jbuf_putc(b, '}');
    }
    jbuf_puts(b, "]}");
    if (write_meta(b, res, 0, n + 2, n + 3, from, to) != 0)
        return -1;
    jbuf_putc(b, '}');
    return 0;
}

int sms_read_operator_metrics_json(jbuf *b, const PGresult *res, const char *id, int32_t from,
                                   int32_t to)
{
    return write_series(b, res, "operator_id", id, OPERATOR, OPERATOR_N, 0, from, to);
}

int sms_read_account_usage_json(jbuf *b, const PGresult *res, const char *id, int32_t from,
                                int32_t to)
{
    return write_series(b, res, "account_id", id, ACCOUNT, ACCOUNT_N, 1, from, to);
}
