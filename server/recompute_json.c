/*
 * server/recompute_json.c: RecomputeRun and AuditEntry JSON from PostgreSQL rows (see
 * recompute_json.h). Runs in the HTTP workers.
 */
#include "server/recompute_json.h"

#include "common/dates.h"
#include "common/json_out.h"
#include "common/json_sorted.h"
#include "common/log.h"
#include "common/params.h"
#include "common/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- small column readers --------------------------------------------------------------- */

static int col_text(const PGresult *res, int row, int col, const char **s, size_t *len)
{
    if (PQgetisnull(res, row, col))
        return -1;
    *s = PQgetvalue(res, row, col);
    *len = (size_t)PQgetlength(res, row, col);
    return 0;
}

static int col_int(const PGresult *res, int row, int col, int64_t *out)
{
    const char *s;
    size_t len;
    if (col_text(res, row, col, &s, &len) != 0 || len == 0)
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end != s + len)
        return -1;
    *out = v;
    return 0;
}

static int put_string_col(jbuf *b, const char *key, const PGresult *res, int row, int col)
{
    const char *s;
    size_t len;
    if (col_text(res, row, col, &s, &len) != 0)
        return -1;
    jout_key(b, key);
    jout_string(b, s, len);
    return 0;
}

static int put_date_col(jbuf *b, const char *key, const PGresult *res, int row, int col)
{
    const char *s;
    size_t len;
    int32_t days;
    if (col_text(res, row, col, &s, &len) != 0 || date_parse(s, len, &days) != 0)
        return -1;
    jout_key(b, key);
    jout_date(b, days);
    return 0;
}

/* Writes ,"key":<timestamp>; a NULL column is omitted when optional, an error otherwise. */
static int put_timestamp_col(jbuf *b, const char *key, const PGresult *res, int row, int col,
                             int optional)
{
    if (PQgetisnull(res, row, col))
        return optional ? 0 : -1;
    int64_t sec;
    int32_t nanos;
    if (pgtime_parse(PQgetvalue(res, row, col), &sec, &nanos) != 0)
        return -1;
    jbuf_putc(b, ',');
    jout_key(b, key);
    jout_timestamp(b, sec, nanos);
    return 0;
}

static int put_sorted_col(jbuf *b, const char *key, const PGresult *res, int row, int col)
{
    const char *s;
    size_t len;
    if (col_text(res, row, col, &s, &len) != 0)
        return -1;
    jout_key(b, key);
    return jout_sorted(b, s, len);
}

/* ---- objects ---------------------------------------------------------------------------- */

int recompute_json_run(jbuf *b, const PGresult *res, int row, int col)
{
    int64_t attempts;
    const char *err;
    size_t err_len;
    jbuf_putc(b, '{');
    if (put_string_col(b, "id", res, row, col) != 0)
        goto bad;
    jbuf_putc(b, ',');
    if (put_string_col(b, "report_slug", res, row, col + 1) != 0)
        goto bad;
    jbuf_putc(b, ',');
    if (put_string_col(b, "window", res, row, col + 2) != 0)
        goto bad;
    jbuf_putc(b, ',');
    if (put_date_col(b, "date_from", res, row, col + 3) != 0)
        goto bad;
    jbuf_putc(b, ',');
    if (put_date_col(b, "date_to", res, row, col + 4) != 0)
        goto bad;
    jbuf_putc(b, ',');
    if (put_string_col(b, "requested_by", res, row, col + 5) != 0)
        goto bad;
    jbuf_putc(b, ',');
    if (put_string_col(b, "status", res, row, col + 6) != 0)
        goto bad;
    if (col_int(res, row, col + 7, &attempts) != 0)
        goto bad;
    jbuf_putc(b, ',');
    jout_key(b, "attempts");
    jout_int(b, attempts);
    if (put_timestamp_col(b, "requested_at", res, row, col + 8, 0) != 0 ||
        put_timestamp_col(b, "started_at", res, row, col + 9, 1) != 0 ||
        put_timestamp_col(b, "finished_at", res, row, col + 10, 1) != 0)
        goto bad;
    if (col_text(res, row, col + 11, &err, &err_len) == 0 && err_len > 0) {
        jbuf_putc(b, ',');
        jout_key(b, "error_message");
        jout_string(b, err, err_len);
    }
    jbuf_putc(b, ',');
    if (put_sorted_col(b, "summary", res, row, col + 12) != 0)
        goto bad;
    jbuf_putc(b, '}');
    return 0;
bad:
    log_error("recompute run row %d cannot be rendered", row);
    return -1;
}

int recompute_json_audit(jbuf *b, const PGresult *res, int row, int col)
{
    int64_t id;
    const char *rid;
    size_t rid_len;
    if (col_int(res, row, col, &id) != 0)
        goto bad;
    jbuf_putc(b, '{');
    jout_key(b, "id");
    jout_int(b, id);
    jbuf_putc(b, ',');
    if (put_string_col(b, "actor", res, row, col + 1) != 0)
        goto bad;
    jbuf_putc(b, ',');
    if (put_string_col(b, "action", res, row, col + 2) != 0)
        goto bad;
    jbuf_putc(b, ',');
    if (put_string_col(b, "resource_type", res, row, col + 3) != 0)
        goto bad;
    if (col_text(res, row, col + 4, &rid, &rid_len) == 0 && rid_len > 0) {
        jbuf_putc(b, ',');
        jout_key(b, "resource_id");
        jout_string(b, rid, rid_len);
    }
    jbuf_putc(b, ',');
    if (put_sorted_col(b, "metadata", res, row, col + 5) != 0)
        goto bad;
    if (put_timestamp_col(b, "created_at", res, row, col + 6, 0) != 0)
        goto bad;
    jbuf_putc(b, '}');
    return 0;
bad:
    log_error("audit entry row %d cannot be rendered", row);
    return -1;
}
