/*
 * server/report_query.h: the snapshot side of a report run (API.md §4.4): the SQL that reads
 * metric_snapshots for a report of the registry (common/registry.h), one of its layouts and a
 * window, and the JSON of its rows. Pure code (no I/O); used by the HTTP workers' report_run
 * handler.
 */
#ifndef ANALYTICSD_REPORT_QUERY_H
#define ANALYTICSD_REPORT_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "common/jbuf.h"
#include "common/registry.h"

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
 * The SQL of report r in layout l and window w. Parameters (text): $1 report slug, $2 window,
 * $3 date_from (YYYY-MM-DD, for the freshness), $4 date_to (the upper bound is date_to + 1 day,
 * exclusive), $5 the filter value or NULL for none, $6 limit, $7 offset, $8 the lower bound:
 * the first day of date_from's bucket (registry_window_floor), computed by the caller: with
 * date_trunc($2, …) here and totals sorted by a second sum(), PostgreSQL spent more CPU per
 * statement under load (bench/README, "Uncached reads after the report registry"). Columns are the
 * layout's row members in ascending byte order of their names (report_query_rows_json writes them
 * in that order): the bucket as w->bucket_sql writes it, the metric as a decimal integer, the
 * dimension value. Text sorts use COLLATE "C". After them, in column
 * report_query_freshness_column(l), the freshness (REPORT_FRESHNESS_SUBQUERY over
 * date_from..date_to), the same in every row.
 *
 * Built on first use for each (report, layout, window) and kept for the process's life.
 */
const char *report_query_sql(const registry_report *r, registry_layout l, const registry_window *w);
int report_query_freshness_column(registry_layout l);

/* Appends the JSON array of rows for a result of report_query_sql(r, l, …): "[" rows "]",
 * members in ascending byte order of their names (API.md §1.4). */
void report_query_rows_json(jbuf *b, const registry_report *r, registry_layout l,
                            const PGresult *res);

#endif
