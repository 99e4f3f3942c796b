/*
 * server/report_query.h: the snapshot side of a report run (API.md §4.4): which of the five row
 * shapes a report and breakdown select, the SQL that reads metric_snapshots for it, and the
 * JSON of its rows. Pure code (no I/O); used by the HTTP workers' report_run handler.
 */
#ifndef ANALYTICSD_REPORT_QUERY_H
#define ANALYTICSD_REPORT_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "common/jbuf.h"

/* The three reports the service knows how to run; REPORT_KIND_UNKNOWN for any other slug. */
typedef enum {
    REPORT_KIND_UNKNOWN = 0,
    REPORT_KIND_VOLUME,
    REPORT_KIND_STATUS,
    REPORT_KIND_TOP_ENTITIES,
} report_kind;

/* The row shapes of API.md §4.4, one per line of its table. */
typedef enum {
    REPORT_SHAPE_VOLUME_BY_SOURCE, /* bucket_date, event_count, source */
    REPORT_SHAPE_VOLUME_BY_PERIOD, /* bucket_date, event_count */
    REPORT_SHAPE_STATUS_BY_PERIOD, /* bucket_date, event_count, status */
    REPORT_SHAPE_STATUS_TOTALS,    /* event_count, status */
    REPORT_SHAPE_TOP_ENTITIES,     /* entity_id, event_count */
} report_shape;

/* The kind of the report with this slug (byte-exact). */
report_kind report_query_kind(const char *slug, size_t len);

/* The shape for a known kind and a valid breakdown ("" when blank, "source", "status",
 * "period"). Must not be called with REPORT_KIND_UNKNOWN. */
report_shape report_query_shape(report_kind kind, const char *breakdown, size_t breakdown_len);

/* True when the shape's report filters on its dimension (volume: source, status-counts:
 * status); top-entities uses no filter. */
int report_query_uses_filter(report_shape shape);

/*
 * The freshness of a report run (API.md §4.4): finished_at of the newest completed run of report
 * `slug` and window `win` whose dates intersect from..to (SQL expressions), or NULL.
 */
#define REPORT_FRESHNESS_SUBQUERY(slug, win, to, from)                                             \
    "(SELECT r.finished_at FROM recompute_runs r WHERE r.report_slug = " slug                      \
    " AND r.window_name = " win " AND r.status = 'completed' AND r.date_from <= " to "::date"      \
    " AND r.date_to >= " from "::date ORDER BY r.finished_at DESC LIMIT 1)"

/* The freshness alone (for a result with no rows): $1 slug, $2 window, $3 date_from,
 * $4 date_to; one row, one column: finished_at as text or NULL. */
#define REPORT_FRESHNESS_SQL "SELECT " REPORT_FRESHNESS_SUBQUERY("$1", "$2", "$4", "$3") "::text"

/*
 * The SQL for a shape. Parameters (text): $1 report slug, $2 window ("day"/"week"), $3 lower
 * bound date (YYYY-MM-DD; the Monday on or before date_from for weeks), $4 date_to (the upper
 * bound is date_to + 1 day, exclusive), $5 the filter value or NULL for none, $6 limit,
 * $7 offset, $8 date_from. Columns, in row-member order, are the shape's members; bucket_date
 * is text YYYY-MM-DD, event_count a decimal integer. Text sorts use COLLATE "C". After them,
 * in column report_query_freshness_column(shape), the freshness (REPORT_FRESHNESS_SUBQUERY over
 * date_from..date_to), the same in every row.
 */
const char *report_query_sql(report_shape shape);
int report_query_freshness_column(report_shape shape);

/* The 500 message for a failed snapshot query of this kind (API.md §1.6). */
const char *report_query_failure_message(report_kind kind);

/* Appends the JSON array of rows for a result of report_query_sql(shape): "[" rows "]",
 * members in the shape's order, keys in byte order (API.md §1.4). */
void report_query_rows_json(jbuf *b, report_shape shape, const PGresult *res);

#endif
