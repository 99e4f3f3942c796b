/*
 * worker/runstore.c: run state changes, audit entries, version bump and
 * dispatch refill (see runstore.h). Runs in the recompute workers and the supervisor.
 */
#include "worker/runstore.h"

#include "common/cachekey.h"
#include "common/log.h"
#include "common/pgsession.h"
#include "common/redissync.h"
#include "common/shstate.h"
#include "common/util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RUNSTORE_PUSH_LOCK_MS 100

static void runstore_read(PGresult *res, runstore_run *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->id, sizeof(out->id), "%s", PQgetvalue(res, 0, 0));
    snprintf(out->report_slug, sizeof(out->report_slug), "%s", PQgetvalue(res, 0, 1));
    snprintf(out->window, sizeof(out->window), "%s", PQgetvalue(res, 0, 2));
    snprintf(out->date_from, sizeof(out->date_from), "%s", PQgetvalue(res, 0, 3));
    snprintf(out->date_to, sizeof(out->date_to), "%s", PQgetvalue(res, 0, 4));
    out->attempts = atoi(PQgetvalue(res, 0, 5));
}

/* Runs a statement whose RETURNING yields at most one row: OK (1 row) / NOT_FOUND / ERROR. */
static runstore_status exec_one(PGconn *conn, const char *what, const char *sql, int n,
                                const char *const *params, PGresult **keep)
{
    PGresult *res = pgsession_exec(conn, what, sql, n, params);
    if (res == NULL)
        return RUNSTORE_DB_ERROR;
    runstore_status st = PQntuples(res) > 0 ? RUNSTORE_OK : RUNSTORE_NOT_FOUND;
    if (keep != NULL && st == RUNSTORE_OK)
        *keep = res;
    else
        PQclear(res);
    return st;
}

/* exec_one for a statement that returns the run's row: on OK fills *out and, when failed is not
 * NULL, sets *failed to whether column 6 (the new status) is `failed`. */
static runstore_status exec_run(PGconn *conn, const char *what, const char *sql, int n,
                                const char *const *params, runstore_run *out, int *failed)
{
    PGresult *res = NULL;
    runstore_status st = exec_one(conn, what, sql, n, params, &res);
    if (st != RUNSTORE_OK)
        return st;
    runstore_read(res, out);
    if (failed != NULL)
        *failed = strcmp(PQgetvalue(res, 0, 6), "failed") == 0;
    PQclear(res);
    return st;
}

static int lock_call(PGconn *conn, const char *what, const char *sql, const char *run_id)
{
    const char *params[1] = {run_id};
    PGresult *res = pgsession_exec(conn, what, sql, 1, params);
    if (res == NULL)
        return -1;
    int got = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return got;
}

int runstore_try_lock(PGconn *conn, const char *run_id)
{
    return lock_call(conn, "ownership lock", runs_lock_sql, run_id);
}

int runstore_unlock(PGconn *conn, const char *run_id)
{
    int rc = lock_call(conn, "ownership unlock", runs_unlock_sql, run_id);
    if (rc == 0)
        log_warn("ownership lock of run %s was not held by this session", run_id);
    return rc < 0 ? -1 : 0;
}

runstore_status runstore_claim(PGconn *conn, const char *run_id, runstore_run *out)
{
    const char *params[1] = {run_id};
    return exec_run(conn, "claim run", runs_claim_sql, 1, params, out, NULL);
}

runstore_status runstore_fail(PGconn *conn, const runstore_run *run, const char *message)
{
    const char *params[2] = {run->id, message};
    return exec_one(conn, "mark run failed", runs_fail_sql, 2, params, NULL);
}

runstore_status runstore_complete(PGconn *conn, const runstore_run *run,
                                  const rebuild_summary *summary)
{
    char *json = rebuild_summary_json(summary);
    char b[24], d[24], i[24];
    snprintf(b, sizeof(b), "%" PRId64, summary->bucket_count);
    snprintf(d, sizeof(d), "%" PRId64, summary->rows_deleted);
    snprintf(i, sizeof(i), "%" PRId64, summary->rows_inserted);
    const char *params[5] = {run->id, json, b, d, i};
    runstore_status st = exec_one(conn, "mark run completed", runs_complete_sql, 5, params, NULL);
    free(json);
    return st;
}

runstore_status runstore_return_interrupted(PGconn *conn, const char *run_id)
{
    const char *params[1] = {run_id};
    return exec_one(conn, "return interrupted run to pending", runs_interrupted_sql, 1, params,
                    NULL);
}

runstore_status runstore_recover_orphan(PGconn *conn, const char *run_id, int max_attempts,
                                        runstore_run *out, int *exhausted)
{
    char max[16];
    snprintf(max, sizeof(max), "%d", max_attempts);
    const char *params[2] = {run_id, max};
    *exhausted = 0;
    return exec_run(conn, "recover orphaned run", runs_orphan_sql, 2, params, out, exhausted);
}

int runstore_bump_version(const config *cfg, const char *report_slug)
{
    if (!shstate_redis_trusted())
        return 1;
    redisContext *rc = redissync_connect(&cfg->redis);
    if (rc == NULL) {
        log_warn("version bump of %s skipped: redis unreachable", report_slug);
        return -1;
    }
    jbuf key;
    jbuf_init(&key);
    cachekey_version(&key, report_slug, strlen(report_slug));
    const char *argv[] = {"INCR", key.data};
    redisReply *r = redissync_command(&rc, 2, argv, NULL);
    int ok = r != NULL && r->type == REDIS_REPLY_INTEGER;
    if (r != NULL && !ok) {
        /* The bump did not happen: let the recovery bump make up for it. */
        log_warn("version bump of %s rejected: %s", report_slug,
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        shstate_redis_mark_untrusted("version bump rejected");
    } else if (r == NULL) {
        log_warn("version bump of %s failed: redis unreachable", report_slug);
    }
    if (r != NULL)
        freeReplyObject(r);
    if (rc != NULL)
        redisFree(rc);
    jbuf_free(&key);
    return ok ? 0 : -1;
}

int runstore_refill(PGconn *conn, ring_t *ring)
{
    if (ring_free_slots(ring) == 0)
        return 0;
    /* Queued and claimed ids may come back as duplicates, so ask for a whole ring's worth. */
    ring_stats_t stats;
    ring_stats(ring, &stats);
    char limit[16];
    snprintf(limit, sizeof(limit), "%u", stats.capacity);
    const char *params[1] = {limit};
    PGresult *res = pgsession_exec(conn, "dispatch refill", runs_pending_sql, 1, params);
    if (res == NULL)
        return -1;
    int pushed = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        ring_status st = ring_push(ring, PQgetvalue(res, i, 0), RUNSTORE_PUSH_LOCK_MS);
        if (st == RING_OK)
            pushed++;
        else if (st == RING_FULL || st == RING_BUSY)
            break;
        else if (st != RING_DUPLICATE)
            log_warn("dispatch refill: cannot queue run %s (status %d)", PQgetvalue(res, i, 0),
                     (int)st);
    }
    PQclear(res);
    return pushed;
}
