/*
 * common/sms_read.h: the SMS read store (SMS.md §6): the statement of each read route (calls of
 * the anlyt.api_* functions of schema/0005_sms_reads.sql, so that the service and the benchmark
 * run the same SQL), their parameters, and the rendering of their rows as the contract's JSON
 * members. Used by the HTTP workers (server/handlers/sms_*.c) and bench tools.
 *
 * Every statement takes the range as $1 lo and $2 hi (dates 'YYYY-MM-DD': the first day, the
 * day after the last) and, where it reads hourly rows, $3 floor (sms_read_floor). Results are
 * text. Rendering never fails on a result of the matching statement; it returns -1 (and the
 * caller answers 500) when a timestamp column cannot be read.
 */
#ifndef ANALYTICSD_SMS_READ_H
#define ANALYTICSD_SMS_READ_H

#include <libpq-fe.h>
#include <stdint.h>

#include "common/jbuf.h"

/* $1 lo, $2 hi, $3 floor. One row. */
extern const char SMS_READ_SUMMARY_SQL[];
/* $1 lo, $2 hi, $3 floor, $4 sort key, $5 'true' for desc, $6 limit, $7 offset. */
extern const char SMS_READ_OPERATORS_SQL[];
/* $1 operator uuid, $2 lo, $3 hi, $4 floor, $5 'hour' or 'day'. Totals row, then series. */
extern const char SMS_READ_OPERATOR_METRICS_SQL[];
/* $1 lo, $2 hi, $3 sort key, $4 'true' for desc, $5 limit, $6 offset. */
extern const char SMS_READ_ACCOUNTS_SQL[];
/* $1 account uuid, $2 lo, $3 hi, $4 'day' or 'month'. Totals row, then series. */
extern const char SMS_READ_ACCOUNT_USAGE_SQL[];

/* The first day read from hourly rows when the hourly retention is retention_days and the
 * time is now_s (Unix seconds): the day after the one holding now - retention (all its hours
 * are inside the retention). Days before it are read from metrics_daily. */
int32_t sms_read_floor(int64_t now_s, int64_t retention_days);

/* Writes `"data":{…},"meta":{…}` (without the outer braces) of the summary. */
int sms_read_summary_json(jbuf *b, const PGresult *res, int32_t from, int32_t to);

/*
 * Lists (operators, accounts): writes `"data":[…],"meta":{…}` with meta's limit, offset and
 * total. Row 0 with a NULL id is the count-only row of an empty page.
 */
int sms_read_operators_json(jbuf *b, const PGresult *res, int32_t from, int32_t to, int64_t limit,
                            int64_t offset);
int sms_read_accounts_json(jbuf *b, const PGresult *res, int32_t from, int32_t to, int64_t limit,
                           int64_t offset);

/* Whether the id of a metrics/usage result exists at all (row 0's `found`). */
int sms_read_found(const PGresult *res);

/* `"data":{"operator_id":…,"totals":{…},"series":[…]},"meta":{…}`; id is lower case. */
int sms_read_operator_metrics_json(jbuf *b, const PGresult *res, const char *id, int32_t from,
                                   int32_t to);
/* `"data":{"account_id":…,"totals":{…},"series":[…]},"meta":{…}`. */
int sms_read_account_usage_json(jbuf *b, const PGresult *res, const char *id, int32_t from,
                                int32_t to);

#endif
