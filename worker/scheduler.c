/*
 * worker/scheduler.c: the report scheduler (see scheduler.h): the every-5-s pass (collect the
 * noted changes, plan the due pairs) and the hourly retention pass. Runs in the supervisor,
 * leader only. All decisions about what to rebuild are made in SQL (schema/0006_refresh.sql)
 * inside one transaction per pair; this file decides when, and logs.
 */
#include "worker/scheduler.h"

#include "common/log.h"
#include "common/pgsession.h"
#include "common/registry.h"
#include "common/util.h"
#include "worker/runstore.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void scheduler_init(scheduler *s)
{
    scheduler_reset(s);
}

void scheduler_reset(scheduler *s)
{
    s->pass_due = 0;
    s->retention_due = 0;
}

static void rollback(PGconn *conn)
{
    PQclear(PQexec(conn, "ROLLBACK"));
}

/* Plans one pair in its own transaction. Returns the number of runs created, or -1. */
static int plan_pair(PGconn *conn, const config *cfg, const char *slug, const char *window)
{
    char max_days[24], max_pending[24];
    snprintf(max_days, sizeof(max_days), "%" PRId64, cfg->max_report_range_days);
    snprintf(max_pending, sizeof(max_pending), "%" PRId64, cfg->recompute_max_pending);
    const char *params[4] = {slug, window, max_days, max_pending};
    PGresult *res = pgsession_exec(conn, "scheduler: BEGIN", "BEGIN", 0, NULL);
    if (res == NULL)
        return -1;
    PQclear(res);
    res = pgsession_exec(conn, "scheduler: planning a refresh",
                         "SELECT o_run_id::text, o_date_from::text, o_date_to::text, o_buckets"
                         " FROM refresh_plan($1, $2, $3::int, $4::bigint)",
                         4, params);
    if (res == NULL) {
        rollback(conn);
        return -1;
    }
    PGresult *commit = pgsession_exec(conn, "scheduler: COMMIT", "COMMIT", 0, NULL);
    if (commit == NULL) {
        PQclear(res);
        rollback(conn);
        return -1;
    }
    PQclear(commit);
    int n = PQntuples(res);
    for (int i = 0; i < n; i++)
        log_info("scheduler: run %s refreshes %s %s %s..%s (%s changed bucket(s))",
                 PQgetvalue(res, i, 0), slug, window, PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
                 PQgetvalue(res, i, 3));
    PQclear(res);
    return n;
}

/* Collects the change log, then plans every due pair. Returns 0, or -1 on a database error. */
static int refresh_pass(PGconn *conn, const config *cfg)
{
    PGresult *res =
        pgsession_exec(conn, "scheduler: collecting changes", "SELECT refresh_collect()", 0, NULL);
    if (res == NULL)
        return -1;
    PQclear(res);
    res = pgsession_exec(conn, "scheduler: listing due refreshes",
                         "SELECT o_report_slug, o_window FROM refresh_due()", 0, NULL);
    if (res == NULL)
        return -1;
    int rc = 0;
    for (int i = 0; rc == 0 && i < PQntuples(res); i++) {
        const char *slug = PQgetvalue(res, i, 0);
        if (registry_report_find(slug, strlen(slug)) != NULL)
            rc = plan_pair(conn, cfg, slug, PQgetvalue(res, i, 1)) < 0 ? -1 : 0;
    }
    PQclear(res);
    return rc;
}

/* Deletes expired snapshots (one audit entry for the pass), then bumps the version of every
 * report that lost rows so no cached result still shows them. Returns 0 or -1. */
static int retention_pass(PGconn *conn, const config *cfg)
{
    PGresult *res = pgsession_exec(conn, "scheduler: snapshot retention",
                                   "SELECT o_report_slug, o_window, o_keep_from::text, "
                                   "o_rows_deleted FROM snapshot_retention()",
                                   0, NULL);
    if (res == NULL)
        return -1;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *slug = PQgetvalue(res, i, 0);
        log_info("scheduler: retention deleted %s snapshot row(s) of %s %s before %s",
                 PQgetvalue(res, i, 3), slug, PQgetvalue(res, i, 1), PQgetvalue(res, i, 2));
        if (i == 0 || strcmp(slug, PQgetvalue(res, i - 1, 0)) != 0)
            runstore_bump_version(cfg, slug); /* rows are in slug order */
    }
    PQclear(res);
    return 0;
}

void scheduler_tick(scheduler *s, PGconn *conn, const config *cfg, int64_t now)
{
    if (now >= s->retention_due)
        s->retention_due =
            now + (retention_pass(conn, cfg) == 0 ? SCHEDULER_RETENTION_NS : SCHEDULER_PASS_NS);
    if (now >= s->pass_due) {
        refresh_pass(conn, cfg);
        s->pass_due = now + SCHEDULER_PASS_NS;
    }
}
