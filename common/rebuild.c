/*
 * common/rebuild.c: the snapshot rebuild SQL of DATA.md §6.2–§6.4 (see rebuild.h). Runs in the
 * seed process and in the recompute worker processes, always inside the caller's transaction.
 *
 * Three statements, all parameterised: the pair's transaction-level advisory lock (its own
 * statement, so the DELETE that follows takes its snapshot after any concurrent rebuild of the
 * same pair has committed), the DELETE of [lo, hi) counted by PQcmdTuples, and a single
 * INSERT … SELECT … GROUP BY whose RETURNING rows are counted in the same statement.
 * lo and hi are derived in SQL from the date strings, in UTC, as in §6.3.
 */
#include "common/rebuild.h"

#include "common/log.h"
#include "common/pgsession.h"
#include "common/util.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* [lo, hi) of §6.3 with $2 = window, $3 = F, $4 = T: day F..T+1, week monday(F)..monday(T)+7. */
#define REBUILD_LO "(date_trunc($2, $3::date::timestamp) AT TIME ZONE 'UTC')"
#define REBUILD_HI                                                                                 \
    "((date_trunc($2, $4::date::timestamp) + CASE WHEN $2 = 'day' THEN interval '1 day' "          \
    "ELSE interval '7 days' END) AT TIME ZONE 'UTC')"
#define REBUILD_BUCKET "date_trunc($2, e.occurred_at, 'UTC')"

/* Shared head and tail of the grouped insert; $1 = S, $2 = W, $5 = run id. */
#define REBUILD_INSERT_HEAD                                                                        \
    "WITH ins AS (INSERT INTO metric_snapshots (report_slug, window_name, bucket_start, "          \
    "dimension_key, dimension_value, metric_name, metric_value, computed_at, run_id) "             \
    "SELECT $1, $2, " REBUILD_BUCKET ", "
#define REBUILD_INSERT_RANGE                                                                       \
    " WHERE e.occurred_at >= " REBUILD_LO " AND e.occurred_at < " REBUILD_HI                       \
    " GROUP BY " REBUILD_BUCKET
#define REBUILD_INSERT_TAIL                                                                        \
    " RETURNING bucket_start) SELECT count(*), count(DISTINCT bucket_start) FROM ins"

static const char rebuild_lock_sql[] =
    "SELECT pg_advisory_xact_lock(hashtextextended('recompute:' || $1 || ':' || $2, 0))";

static const char rebuild_delete_sql[] =
    "DELETE FROM metric_snapshots WHERE report_slug = $1 AND window_name = $2"
    " AND bucket_start >= " REBUILD_LO " AND bucket_start < " REBUILD_HI;

/* One grouped insert per report: the dimension of §6.2. */
static const struct rebuild_report {
    const char *slug;
    const char *insert_sql;
} rebuild_reports[] = {
    {"volume-by-period", REBUILD_INSERT_HEAD
     "'source', s.slug, 'event_count', count(*), now(), $5::uuid"
     " FROM analytics_events e JOIN event_sources s ON s.id = e.source_id" REBUILD_INSERT_RANGE
     ", s.slug" REBUILD_INSERT_TAIL},
    {"status-counts", REBUILD_INSERT_HEAD
     "'status', e.status, 'event_count', count(*), now(), $5::uuid"
     " FROM analytics_events e" REBUILD_INSERT_RANGE ", e.status" REBUILD_INSERT_TAIL},
    {"top-entities", REBUILD_INSERT_HEAD
     "'entity_id', e.entity_id, 'event_count', count(*), now(), $5::uuid"
     " FROM analytics_events e" REBUILD_INSERT_RANGE ", e.entity_id" REBUILD_INSERT_TAIL},
};

static const struct rebuild_report *rebuild_find(const char *slug)
{
    for (size_t i = 0; i < ARRAY_LEN(rebuild_reports); i++)
        if (strcmp(rebuild_reports[i].slug, slug) == 0)
            return &rebuild_reports[i];
    return NULL;
}

int rebuild_slug_supported(const char *report_slug)
{
    return report_slug != NULL && rebuild_find(report_slug) != NULL;
}

rebuild_status rebuild_run(PGconn *conn, const char *run_id, const char *report_slug,
                           const char *window, const char *date_from, const char *date_to,
                           rebuild_summary *out)
{
    const struct rebuild_report *rep = report_slug ? rebuild_find(report_slug) : NULL;
    if (rep == NULL)
        return REBUILD_UNSUPPORTED;
    if (window == NULL || (strcmp(window, "day") != 0 && strcmp(window, "week") != 0) ||
        date_from == NULL || date_to == NULL) {
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

    res = pgsession_exec(conn, "rebuild: insert", rep->insert_sql, 5, params);
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
