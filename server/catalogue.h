/*
 * server/catalogue.h: the report catalogue of one HTTP worker (API.md §6): the public report
 * definitions held in memory for the report run's lookup, plus the SQL and JSON of a
 * ReportDefinition (API.md §5.1) used by the list and get handlers.
 *
 * What is served from memory and what is not (decided against API.md §7.2):
 *  - GET /reports/{slug}/run looks the report up here (slug, cache_ttl_seconds and the
 *    retention_days of its windows), so it needs
 *    no query for the lookup and a cached result can be served while PostgreSQL is down.
 *  - GET /reports and GET /reports/{slug} read PostgreSQL on every request, so they answer 500
 *    while it is down exactly as the §7.2 table says, search has PostgreSQL's own ILIKE case
 *    folding, and catalogue changes show at once. They are not the benchmarked path.
 *
 * Freshness: loaded when the worker starts and reloaded every CATALOGUE_RELOAD_MS (well within
 * the 5 s of API.md §6), without blocking (pgpool). A failed reload keeps the last good copy.
 * Until the first load succeeds (PostgreSQL down since the start) lookups say
 * CATALOGUE_NOT_LOADED and the caller falls back to a live query.
 */
#ifndef ANALYTICSD_CATALOGUE_H
#define ANALYTICSD_CATALOGUE_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "common/jbuf.h"

struct http_app;
typedef struct catalogue catalogue;

#define CATALOGUE_RELOAD_MS 2000
#define CATALOGUE_RETRY_MS  250 /* while never loaded */

/*
 * Creates the worker's catalogue and starts loading it on the app's loop (app->pg, app->loop
 * must be set). Never fails; the catalogue lives as long as the worker.
 */
catalogue *catalogue_create(struct http_app *app);

typedef enum { CATALOGUE_FOUND, CATALOGUE_NOT_FOUND, CATALOGUE_NOT_LOADED } catalogue_status;

#define CATALOGUE_MAX_WINDOWS 8 /* room for the windows of the registry (common/registry.h) */

/* What the report run needs to know about a report. */
typedef struct catalogue_report {
    int32_t cache_ttl_seconds;
    /* aggregate_windows.retention_days per registry window (by registry_window_index); 0: the
     * report has no such window */
    int32_t retention_days[CATALOGUE_MAX_WINDOWS];
} catalogue_report;

/* The select expression (from report_definitions AS d) of a report's windows: "name:retention"
 * joined by commas, NULL when it has none. Read by catalogue_report_from_row and by
 * catalogue_definition_json (allowed_windows). */
#define CATALOGUE_WINDOWS_COLUMN                                                                   \
    "(SELECT string_agg(w.window_name || ':' || w.retention_days, ',') FROM aggregate_windows w"   \
    " WHERE w.report_slug = d.slug)"

/* Fills *out from columns col (cache_ttl_seconds) and col + 1 (CATALOGUE_WINDOWS_COLUMN) of row
 * `row` of res; windows the registry does not know are left out. */
void catalogue_report_from_row(catalogue_report *out, const PGresult *res, int row, int col);

/* The live lookup of one public report, for a worker whose catalogue has not loaded yet:
 * $1 slug; no row, or one row for catalogue_report_from_row(…, 0, 0). */
#define CATALOGUE_REPORT_SQL                                                                       \
    "SELECT d.cache_ttl_seconds, " CATALOGUE_WINDOWS_COLUMN                                        \
    " FROM report_definitions d WHERE d.slug = $1 AND d.is_public"

/*
 * Looks up the public report `slug` (byte-exact, len bytes). On CATALOGUE_FOUND fills *out.
 * c == NULL counts as not loaded.
 */
catalogue_status catalogue_lookup(const catalogue *c, const char *slug, size_t len,
                                  catalogue_report *out);

/* True once a load has succeeded (a later failed reload keeps the copy: still true).
 * c == NULL counts as not loaded. Used by GET /readyz. */
int catalogue_is_loaded(const catalogue *c);

/*
 * The select list (from report_definitions AS d) whose row catalogue_definition_json
 * writes: slug, name, description, cache_ttl_seconds, default_window, windows,
 * supported_filters::text, last_rebuilt_at (finished_at of the newest completed run of the
 * report, any window, through ix_recompute_runs_completed; NULL when none).
 */
#define CATALOGUE_DEFINITION_COLUMNS                                                               \
    "d.slug, d.name, d.description, d.cache_ttl_seconds, d.default_window,"                        \
    " " CATALOGUE_WINDOWS_COLUMN " AS windows,"                                                    \
    " d.supported_filters::text AS supported_filters,"                                             \
    " (SELECT max(r.finished_at) FROM recompute_runs r WHERE r.report_slug = d.slug"               \
    " AND r.status = 'completed')::text AS last_rebuilt_at"

/*
 * Appends the ReportDefinition JSON (API.md §5.1) of row `row` of res, whose columns start at
 * `col` in the order of CATALOGUE_DEFINITION_COLUMNS: allowed_windows day first,
 * supported_filters with its keys in byte order, last_rebuilt_at left out when NULL. Returns 0, or
 * -1 if supported_filters is not a JSON object (b may then hold a partial object; the caller
 * answers 500).
 */
int catalogue_definition_json(jbuf *b, const PGresult *res, int row, int col);

/* Whether a public report exists (the trigger's lookup, API.md §4.5 step 7): $1 slug; a row
 * when it does. */
#define CATALOGUE_PUBLIC_SQL "SELECT 1 FROM report_definitions WHERE slug = $1 AND is_public"

/* GET /reports/{slug} (API.md §4.3): $1 slug; no row, or one row of
 * CATALOGUE_DEFINITION_COLUMNS. */
#define CATALOGUE_GET_SQL                                                                          \
    "SELECT " CATALOGUE_DEFINITION_COLUMNS " FROM report_definitions d WHERE d.slug = $1"          \
    " AND d.is_public"

/* The sort columns of GET /reports (API.md §4.2). */
typedef enum {
    CATALOGUE_SORT_NAME, /* the default, for any other value */
    CATALOGUE_SORT_SLUG,
    CATALOGUE_SORT_UPDATED_AT,
    CATALOGUE_SORT_TTL,
    CATALOGUE_SORTS
} catalogue_sort;

/* The sort column named by the untrimmed value v[0..len) (case-sensitive after trimming);
 * CATALOGUE_SORT_NAME for anything else, including absent (v NULL). */
catalogue_sort catalogue_sort_parse(const char *v, size_t len);

/*
 * The GET /reports statement for a sort and direction: $1 the search text or NULL, $2 limit,
 * $3 offset. One row per definition of the page, each carrying the total in column 0 and then
 * the CATALOGUE_DEFINITION_COLUMNS; an empty page still yields one row (definition columns
 * NULL) so the total is known. Search is ILIKE on slug and name with %, _ and \ escaped; ties
 * are broken by slug in the same direction; text sorts use COLLATE "C". Built once per variant
 * and kept for the process's life.
 */
const char *catalogue_list_sql(catalogue_sort sort, int desc);

/*
 * Appends the JSON object text `text` (a JSON object as PostgreSQL prints jsonb) re-emitted
 * with keys in byte order and strings escaped per API.md §1.4. Returns 0, or -1 if it is not
 * a JSON object.
 */
int catalogue_filters_json(jbuf *b, const char *text, size_t len);

#endif
