/*
 * server/report_query.c: snapshot SQL and row JSON of the report run (see report_query.h).
 * Runs in HTTP workers.
 *
 * Every statement reads metric_snapshots through idx_metric_snapshots_lookup (report, window,
 * bucket range), in a UTC session: a bucket's date is bucket_start at UTC, and the range bounds
 * are midnight UTC of the start of date_from's bucket and of date_to + 1 day; plus the
 * freshness subquery. What a report groups by, its metric and its dimension come from its
 * registry row; the three layouts are the only SQL shapes.
 */
#include "server/report_query.h"

#include <stdlib.h>
#include <string.h>

#include "common/json_out.h"
#include "common/util.h"

#define QUERY_MAX_REPORTS 16
#define QUERY_MAX_WINDOWS 8

/* A row member: its name and the select expression that yields it. */
typedef struct member {
    const char *name;
    const char *sql;
} member;

/* The members of layout l for report r and window w, in ascending byte order of their names;
 * returns how many (at most 3). */
static int layout_members(const registry_report *r, registry_layout l, const registry_window *w,
                          member out[3])
{
    int n = 0;
    if (l != REGISTRY_LAYOUT_TOTALS)
        out[n++] = (member){"bucket_date", w != NULL ? w->bucket_sql : NULL};
    out[n++] = (member){r->metric_name, "sum(metric_value)::bigint"};
    if (l != REGISTRY_LAYOUT_PERIOD)
        out[n++] = (member){r->dimension_key, "dimension_value"};
    for (int i = 1; i < n; i++) /* insertion sort of at most three */
        for (int j = i; j > 0 && strcmp(out[j - 1].name, out[j].name) > 0; j--) {
            member t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    return n;
}

static const char *const layout_tail[REGISTRY_LAYOUTS] = {
    [REGISTRY_LAYOUT_PERIOD] = " GROUP BY bucket_start ORDER BY bucket_start",
    [REGISTRY_LAYOUT_PERIOD_VALUES] = " GROUP BY bucket_start, dimension_value"
                                      " ORDER BY bucket_start, dimension_value COLLATE \"C\"",
    [REGISTRY_LAYOUT_TOTALS] = " GROUP BY dimension_value", /* ordered in report_query_sql */
};

const char *report_query_sql(const registry_report *r, registry_layout l, const registry_window *w)
{
    static char *built[QUERY_MAX_REPORTS][REGISTRY_LAYOUTS][QUERY_MAX_WINDOWS];
    size_t ri = registry_report_index(r), wi = (size_t)(w - registry_windows);
    if (ri >= QUERY_MAX_REPORTS || wi >= QUERY_MAX_WINDOWS)
        abort(); /* raise the bounds with the registry */
    if (built[ri][l][wi] != NULL)
        return built[ri][l][wi];
    member m[3];
    int n = layout_members(r, l, w, m);
    char *select =
        xasprintf("%s, %s%s%s", m[0].sql, m[1].sql, n > 2 ? ", " : "", n > 2 ? m[2].sql : "");
    /* Totals sort by the metric's output column: by the bigint already computed, not by a
     * second numeric sum() (bench/README, "Uncached reads after the report registry"). */
    int metric_column = 1;
    while (m[metric_column - 1].name != r->metric_name)
        metric_column++;
    char *tail = l == REGISTRY_LAYOUT_TOTALS
                     ? xasprintf("%s ORDER BY %d DESC, dimension_value COLLATE \"C\"",
                                 layout_tail[l], metric_column)
                     : xasprintf("%s", layout_tail[l]);
    built[ri][l][wi] =
        xasprintf("SELECT %s, " REPORT_FRESHNESS_SUBQUERY(
                      "$1", "$2", "$4",
                      "$3") "::text"
                            " FROM metric_snapshots"
                            " WHERE report_slug = $1 AND window_name = $2 AND metric_name = '%s'"
                            " AND dimension_key = '%s'"
                            " AND bucket_start >= ($8::date)::timestamp AT TIME ZONE 'UTC'"
                            " AND bucket_start < ($4::date + 1)::timestamp AT TIME ZONE 'UTC'"
                            " AND ($5::text IS NULL OR dimension_value = $5::text)%s"
                            " LIMIT $6::bigint OFFSET $7::bigint",
                  select, r->metric_name, r->dimension_key, tail);
    free(select);
    free(tail);
    return built[ri][l][wi];
}

int report_query_freshness_column(registry_layout l)
{
    return l == REGISTRY_LAYOUT_PERIOD_VALUES ? 3 : 2;
}

void report_query_rows_json(jbuf *b, const registry_report *r, registry_layout l,
                            const PGresult *res)
{
    member m[3];
    int n = layout_members(r, l, NULL, m);
    int rows = PQntuples(res);
    jbuf_putc(b, '[');
    for (int row = 0; row < rows; row++) {
        if (row > 0)
            jbuf_putc(b, ',');
        jbuf_putc(b, '{');
        for (int c = 0; c < n; c++) {
            if (c > 0)
                jbuf_putc(b, ',');
            jout_key(b, m[c].name);
            const char *v = PQgetvalue(res, row, c);
            size_t len = (size_t)PQgetlength(res, row, c);
            if (m[c].name == r->metric_name)
                jbuf_append(b, v, len); /* bigint text: a plain JSON integer */
            else
                jout_string(b, v, len);
        }
        jbuf_putc(b, '}');
    }
    jbuf_putc(b, ']');
}
