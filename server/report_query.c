/*
 * server/report_query.c: snapshot SQL and row JSON of the report run (see report_query.h).
 * Runs in HTTP workers.
 *
 * Every statement reads metric_snapshots through idx_metric_snapshots_lookup (report, window,
 * bucket range), in a UTC session: a bucket's date is bucket_start at UTC, and the range bounds
 * are midnight UTC of the lower date and of date_to + 1 day; plus the freshness subquery.
 */
#include "server/report_query.h"

#include <string.h>

#include "common/json_out.h"

/* The freshness column (last in every shape, see report_query.h): an uncorrelated subquery, so
 * PostgreSQL evaluates it once per statement (an InitPlan) through ix_recompute_runs_completed. */
#define SNAPSHOT_WHERE(dimension)                                                                  \
    ", " REPORT_FRESHNESS_SUBQUERY(                                                                \
        "$1", "$2", "$4",                                                                          \
        "$8") "::text"                                                                             \
              " FROM metric_snapshots"                                                             \
              " WHERE report_slug = $1 AND window_name = $2 AND metric_name = 'event_count'"       \
              " AND dimension_key = '" dimension "'"                                               \
              " AND bucket_start >= ($3::date)::timestamp AT TIME ZONE 'UTC'"                      \
              " AND bucket_start < ($4::date + 1)::timestamp AT TIME ZONE 'UTC'"                   \
              " AND ($5::text IS NULL OR dimension_value = $5::text)"

#define BUCKET_DATE "(bucket_start AT TIME ZONE 'UTC')::date::text"
#define PAGE        " LIMIT $6::bigint OFFSET $7::bigint"

/* clang-format off */
static const char *const shape_sql[] = {
    [REPORT_SHAPE_VOLUME_BY_SOURCE] =
        "SELECT " BUCKET_DATE ", sum(metric_value)::bigint, dimension_value"
        SNAPSHOT_WHERE("source")
        " GROUP BY bucket_start, dimension_value"
        " ORDER BY bucket_start, dimension_value COLLATE \"C\"" PAGE,
    [REPORT_SHAPE_VOLUME_BY_PERIOD] =
        "SELECT " BUCKET_DATE ", sum(metric_value)::bigint"
        SNAPSHOT_WHERE("source")
        " GROUP BY bucket_start"
        " ORDER BY bucket_start" PAGE,
    [REPORT_SHAPE_STATUS_BY_PERIOD] =
        "SELECT " BUCKET_DATE ", sum(metric_value)::bigint, dimension_value"
        SNAPSHOT_WHERE("status")
        " GROUP BY bucket_start, dimension_value"
        " ORDER BY bucket_start, dimension_value COLLATE \"C\"" PAGE,
    [REPORT_SHAPE_STATUS_TOTALS] =
        "SELECT sum(metric_value)::bigint, dimension_value"
        SNAPSHOT_WHERE("status")
        " GROUP BY dimension_value"
        " ORDER BY 1 DESC, dimension_value COLLATE \"C\"" PAGE,
    [REPORT_SHAPE_TOP_ENTITIES] =
        "SELECT dimension_value, sum(metric_value)::bigint"
        SNAPSHOT_WHERE("entity_id")
        " GROUP BY dimension_value"
        " ORDER BY 2 DESC, dimension_value COLLATE \"C\"" PAGE,
};
/* clang-format on */

/* Member names per shape, in column (= output) order; NULL-terminated. */
static const char *const shape_members[][4] = {
    [REPORT_SHAPE_VOLUME_BY_SOURCE] = {"bucket_date", "event_count", "source", NULL},
    [REPORT_SHAPE_VOLUME_BY_PERIOD] = {"bucket_date", "event_count", NULL, NULL},
    [REPORT_SHAPE_STATUS_BY_PERIOD] = {"bucket_date", "event_count", "status", NULL},
    [REPORT_SHAPE_STATUS_TOTALS] = {"event_count", "status", NULL, NULL},
    [REPORT_SHAPE_TOP_ENTITIES] = {"entity_id", "event_count", NULL, NULL},
};

static int eq(const char *s, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    return len == n && memcmp(s, lit, n) == 0;
}

report_kind report_query_kind(const char *slug, size_t len)
{
    if (eq(slug, len, "volume-by-period"))
        return REPORT_KIND_VOLUME;
    if (eq(slug, len, "status-counts"))
        return REPORT_KIND_STATUS;
    if (eq(slug, len, "top-entities"))
        return REPORT_KIND_TOP_ENTITIES;
    return REPORT_KIND_UNKNOWN;
}

report_shape report_query_shape(report_kind kind, const char *breakdown, size_t breakdown_len)
{
    switch (kind) {
    case REPORT_KIND_VOLUME:
        return eq(breakdown, breakdown_len, "source") ? REPORT_SHAPE_VOLUME_BY_SOURCE
                                                      : REPORT_SHAPE_VOLUME_BY_PERIOD;
    case REPORT_KIND_STATUS:
        return eq(breakdown, breakdown_len, "period") ? REPORT_SHAPE_STATUS_BY_PERIOD
                                                      : REPORT_SHAPE_STATUS_TOTALS;
    default:
        return REPORT_SHAPE_TOP_ENTITIES;
    }
}

int report_query_uses_filter(report_shape shape)
{
    return shape != REPORT_SHAPE_TOP_ENTITIES;
}

const char *report_query_sql(report_shape shape)
{
    return shape_sql[shape];
}

int report_query_freshness_column(report_shape shape)
{
    int n = 0;
    while (n < 3 && shape_members[shape][n] != NULL)
        n++;
    return n;
}

const char *report_query_failure_message(report_kind kind)
{
    switch (kind) {
    case REPORT_KIND_VOLUME:
        return "failed to run volume report";
    case REPORT_KIND_STATUS:
        return "failed to run status report";
    case REPORT_KIND_TOP_ENTITIES:
        return "failed to run top entities report";
    default:
        return "internal error";
    }
}

void report_query_rows_json(jbuf *b, report_shape shape, const PGresult *res)
{
    const char *const *members = shape_members[shape];
    int rows = PQntuples(res);
    jbuf_putc(b, '[');
    for (int r = 0; r < rows; r++) {
        if (r > 0)
            jbuf_putc(b, ',');
        jbuf_putc(b, '{');
        for (int c = 0; members[c] != NULL; c++) {
            if (c > 0)
                jbuf_putc(b, ',');
            jout_key(b, members[c]);
            const char *v = PQgetvalue(res, r, c);
            size_t len = (size_t)PQgetlength(res, r, c);
            if (strcmp(members[c], "event_count") == 0)
                jbuf_append(b, v, len); /* bigint text: a plain JSON integer */
            else
                jout_string(b, v, len);
        }
        jbuf_putc(b, '}');
    }
    jbuf_putc(b, ']');
}
