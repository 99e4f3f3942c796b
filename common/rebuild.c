/*
 * common/rebuild.c: the snapshot rebuild SQL of DATA.md §6.2–§6.4 (see rebuild.h). Runs in the
 * seed process and in the recompute worker processes, always inside the caller's transaction.
 *
 * What each report groups and sums comes from its registry row (common/registry.h).
 * Three statements, all parameterised: the pair's transaction-level advisory lock (its own
 * statement, so the DELETE that follows takes its snapshot after any concurrent rebuild of the
 * same pair has committed), the DELETE of [lo, hi) counted by PQcmdTuples, and a single
 * INSERT … SELECT … GROUP BY whose RETURNING rows are counted in the same statement.
 * lo and hi are derived in SQL from the date strings, in UTC, as in §6.3.
 */
#include "common/rebuild.h"

#include "common/log.h"
#include "common/registry.h"
#include "common/pgsession.h"
#include "common/util.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/*
 * [lo, hi) of §6.3 with $2 = window (a date_trunc unit), $3 = F, $4 = T: lo is the start of F's
 * bucket, hi the first bucket start at or after T + 1 day. For day that is F..T+1, for week
 * monday(F)..monday(T)+7, and the same rule serves every window of the registry.
 */
#define REBUILD_NEXT "($4::date + 1)::timestamp"
#define REBUILD_LO   "(date_trunc($2, $3::date::timestamp) AT TIME ZONE 'UTC')"
#define REBUILD_HI                                                                                 \
    "((date_trunc($2, " REBUILD_NEXT ") + CASE WHEN date_trunc($2, " REBUILD_NEXT                  \
    ") = " REBUILD_NEXT " THEN interval '0' ELSE ('1 ' || $2)::interval END) AT TIME ZONE 'UTC')"

static const char rebuild_lock_sql[] =
    "SELECT pg_advisory_xact_lock(hashtextextended('recompute:' || $1 || ':' || $2, 0))";

static const char rebuild_delete_sql[] =
    "DELETE FROM metric_snapshots WHERE report_slug = $1 AND window_name = $2"
    " AND bucket_start >= " REBUILD_LO " AND bucket_start < " REBUILD_HI;

/*
 * The grouped insert of report r (§6.2): its dimension and metric from the registry; $1 = S,
 * $2 = W, $5 = run id. Built once per report and process (the processes are single-threaded)
 * and kept for the process's life.
 */
static const char *rebuild_insert_sql(const registry_report *r)
{
    static char *built[16];
    size_t i = registry_report_index(r);
    if (i >= ARRAY_LEN(built))
        abort(); /* raise the bound with the registry */
    if (built[i] == NULL)
        built[i] = xasprintf(
            "WITH ins AS (INSERT INTO metric_snapshots (report_slug, window_name, bucket_start,"
            " dimension_key, dimension_value, metric_name, metric_value, computed_at, run_id)"
            " SELECT $1, $2, date_trunc($2, e.occurred_at, 'UTC'), '%s', %s, '%s', %s, now(),"
            " $5::uuid FROM analytics_events e%s"
            " WHERE e.occurred_at >= " REBUILD_LO " AND e.occurred_at < " REBUILD_HI
            " GROUP BY 3, 5 RETURNING bucket_start)"
            " SELECT count(*), count(DISTINCT bucket_start) FROM ins",
            r->dimension_key, r->dimension_sql, r->metric_name, r->metric_sql,
            r->joins_sources ? " JOIN event_sources s ON s.id = e.source_id" : "");
    return built[i];
}

rebuild_status rebuild_run(PGconn *conn, const char *run_id, const char *report_slug,
                           const char *window, const char *date_from, const char *date_to,
                           rebuild_summary *out)
{
    const registry_report *rep =
        report_slug != NULL ? registry_report_find(report_slug, strlen(report_slug)) : NULL;
    if (rep == NULL)
        return REBUILD_UNSUPPORTED;
    const registry_window *w = registry_window_find(window);
    if (w == NULL || !w->report_api || date_from == NULL || date_to == NULL) {
        log_error("rebuild: invalid window or dates for %s", report_slug);
        return REBUILD_DB_ERROR;
    }
    const char *params[5] = {report_slug, window, date_from, date_to, run_id};

    PGresult *res = pgsession_exec(conn, "rebuild: advisory lock", rebuild_lock_sql, 2, params);
    if (res == NULL)
        return REBUILD_DB_ERROR;
    PQclear(res);

    res = pgsession_exec(conn, "rebuild: delete", rebuild_delete_sql, 4, params);
    if (res == NULL)
        return REBUILD_DB_ERROR;
    int64_t deleted = strtoll(PQcmdTuples(res), NULL, 10);
    PQclear(res);

    res = pgsession_exec(conn, "rebuild: insert", rebuild_insert_sql(rep), 5, params);
    if (res == NULL)
        return REBUILD_DB_ERROR;
    if (PQntuples(res) != 1 || PQnfields(res) != 2) {
        log_error("rebuild: insert returned an unexpected result shape");
        PQclear(res);
        return REBUILD_DB_ERROR;
    }
    out->rows_deleted = deleted;
    out->rows_inserted = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    out->bucket_count = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    PQclear(res);
    return REBUILD_OK;
}

char *rebuild_summary_json(const rebuild_summary *s)
{
    return xasprintf("{\"bucket_count\":%" PRId64 ",\"rows_deleted\":%" PRId64
                     ",\"rows_inserted\":%" PRId64 "}",
                     s->bucket_count, s->rows_deleted, s->rows_inserted);
}
