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

/* ---- column readers ---------------------------------------------------------------------- */

static int col_text(const PGresult *res, int row, int col, const char **s, size_t *len)
{
    if (PQgetisnull(res, row, col))
        return -1;
    *s = PQgetvalue(res, row, col);
    *len = (size_t)PQgetlength(res, row, col);
    return 0;
}

static int parse_int(const char *s, size_t len, int64_t *out)
{
    if (len == 0)
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end != s + len)
        return -1;
    *out = v;
    return 0;
}

/* ---- objects as tables of members --------------------------------------------------------- */

/* How a member is written from its column. */
typedef enum {
    FIELD_STRING,    /* "text" */
    FIELD_INT,       /* 123 */
    FIELD_DATE,      /* "YYYY-MM-DD" */
    FIELD_TIMESTAMP, /* RFC 3339 in UTC (pgtime_parse, jout_timestamp) */
    FIELD_SORTED,    /* a JSON object with its keys in byte order */
} field_kind;

/* One member; the table's order is both the columns' and the members' order. */
typedef struct {
    const char *key;
    field_kind kind;
    int optional; /* omitted when NULL or empty; otherwise NULL is an error */
} field;

/* Appends one member (with a comma unless it is the first written). 0, or -1. */
static int put_field(jbuf *b, const field *f, const PGresult *res, int row, int col, int *first)
{
    const char *s;
    size_t len;
    if (col_text(res, row, col, &s, &len) != 0 || (f->optional && len == 0))
        return f->optional ? 0 : -1;
    if (!*first)
        jbuf_putc(b, ',');
    *first = 0;
    jout_key(b, f->key);
    int64_t v;
    int32_t days, nanos;
    switch (f->kind) {
    case FIELD_STRING:
        jout_string(b, s, len);
        return 0;
    case FIELD_INT:
        if (parse_int(s, len, &v) != 0)
            return -1;
        jout_int(b, v);
        return 0;
    case FIELD_DATE:
        if (date_parse(s, len, &days) != 0)
            return -1;
        jout_date(b, days);
        return 0;
    case FIELD_TIMESTAMP:
        if (pgtime_parse(s, &v, &nanos) != 0)
            return -1;
        jout_timestamp(b, v, nanos);
        return 0;
    case FIELD_SORTED:
        return jout_sorted(b, s, len);
    }
    return -1;
}

/* Appends the object of fields[0..n) from columns col.. of the row; 0, or -1 (logged). */
static int put_object(jbuf *b, const field *fields, size_t n, const PGresult *res, int row, int col,
                      const char *what)
{
    int first = 1;
    jbuf_putc(b, '{');
    for (size_t i = 0; i < n; i++) {
        if (put_field(b, &fields[i], res, row, col + (int)i, &first) != 0) {
            log_error("%s row %d cannot be rendered", what, row);
            return -1;
        }
    }
    jbuf_putc(b, '}');
    return 0;
}

/* RUNS_JSON_COLUMNS, API.md §5.3 */
static const field RUN_FIELDS[] = {
    {"id", FIELD_STRING, 0},
    {"report_slug", FIELD_STRING, 0},
    {"window", FIELD_STRING, 0},
    {"date_from", FIELD_DATE, 0},
    {"date_to", FIELD_DATE, 0},
    {"requested_by", FIELD_STRING, 0},
    {"status", FIELD_STRING, 0},
    {"attempts", FIELD_INT, 0},
    {"requested_at", FIELD_TIMESTAMP, 0},
    {"started_at", FIELD_TIMESTAMP, 1},
    {"finished_at", FIELD_TIMESTAMP, 1},
    {"error_message", FIELD_STRING, 1},
    {"summary", FIELD_SORTED, 0},
};

/* RUNS_AUDIT_JSON_COLUMNS, API.md §5.4 */
static const field AUDIT_FIELDS[] = {
    {"id", FIELD_INT, 0},
    {"actor", FIELD_STRING, 0},
    {"action", FIELD_STRING, 0},
    {"resource_type", FIELD_STRING, 0},
    {"resource_id", FIELD_STRING, 1},
    {"metadata", FIELD_SORTED, 0},
    {"created_at", FIELD_TIMESTAMP, 0},
};

int recompute_json_run(jbuf *b, const PGresult *res, int row, int col)
{
    return put_object(b, RUN_FIELDS, ARRAY_LEN(RUN_FIELDS), res, row, col, "recompute run");
}

int recompute_json_audit(jbuf *b, const PGresult *res, int row, int col)
{
    return put_object(b, AUDIT_FIELDS, ARRAY_LEN(AUDIT_FIELDS), res, row, col, "audit entry");
}
