/*
 * worker/runstore.c: run state changes, audit entries, scope lock release, version bump and
 * dispatch refill (see runstore.h). Runs in the recompute workers and the supervisor.
 */
#include "worker/runstore.h"

#include "common/cachekey.h"
#include "common/log.h"
#include "common/pgsession.h"
#include "common/dates.h"
#include "common/redissync.h"
#include "common/scopelock.h"
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
    PGresult *res = NULL;
    runstore_status st = exec_one(conn, "claim run", runs_claim_sql, 1, params, &res);
    if (st == RUNSTORE_OK) {
        runstore_read(res, out);
        PQclear(res);
    }
    return st;
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
    PGresult *res = NULL;
    *exhausted = 0;
    runstore_status st = exec_one(conn, "recover orphaned run", runs_orphan_sql, 2, params, &res);
    if (st == RUNSTORE_OK) {
        runstore_read(res, out);
        *exhausted = strcmp(PQgetvalue(res, 0, 6), "failed") == 0;
        PQclear(res);
    }
    return st;
}

int runstore_release_scope_lock(const config *cfg, const runstore_run *run)
{
    if (!shstate_redis_trusted())
        return 0;
    int32_t from, to;
    if (date_parse(run->date_from, strlen(run->date_from), &from) != 0 ||
        date_parse(run->date_to, strlen(run->date_to), &to) != 0) {
        log_error("scope lock release for run %s: bad dates %s..%s", run->id, run->date_from,
                  run->date_to);
        return -1;
    }
    char key[256];
    scopelock_key(key, sizeof(key), run->report_slug, run->window, from, to);
    redisContext *rc = redissync_connect(&cfg->redis);
    if (rc == NULL)
        return -1;
    const char *argv[] = {"EVAL", SCOPELOCK_RELEASE_LUA, "1", key, run->id};
    redisReply *r = redissync_command(&rc, 5, argv, NULL);
    int ok = r != NULL && r->type == REDIS_REPLY_INTEGER;
    if (r != NULL && !ok)
        log_warn("scope lock release for run %s rejected: %s", run->id,
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    else if (r == NULL)
        log_warn("scope lock release for run %s failed: redis unreachable", run->id);
    if (r != NULL)
        freeReplyObject(r);
    if (rc != NULL)
        redisFree(rc);
    return ok ? 0 : -1;
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

/* Whether `value` is the id of a pending or running run: 1, 0, or -1 on a database error. */
static int run_is_active(PGconn *conn, const char *value)
{
    const char *params[] = {value};
    PGresult *res = pgsession_exec(conn, "stale lock check", runs_active_sql, 1, params);
    if (res == NULL)
        return -1;
    int active = PQntuples(res) > 0;
    PQclear(res);
    return active;
}

/* Whether the lock at `key` was set less than RUNSTORE_SWEEP_GRACE_MS ago, judged by its
 * remaining TTL against RECOMPUTE_LOCK_TTL. A trigger sets its lock before its transaction
 * inserts the run, so a young lock may name a run nobody else can see yet (the HTTP sessions'
 * statement_timeout bounds that wait). A lock without a TTL was not set by a trigger and is
 * never young. Returns 1 or 0, or -1 when Redis failed (then *rc is NULL). */
static int lock_is_young(redisContext **rc, const char *key, const config *cfg)
{
    const char *argv[] = {"PTTL", key};
    redisReply *r = redissync_command(rc, 2, argv, NULL);
    if (r == NULL)
        return -1;
    int young = 1; /* an error reply: leave the key for the next sweep */
    if (r->type == REDIS_REPLY_INTEGER)
        young = r->integer >= 0 &&
                cfg->recompute_lock_ttl_ns / 1000000 - r->integer < RUNSTORE_SWEEP_GRACE_MS;
    freeReplyObject(r);
    return young;
}

int runstore_sweep_scope_locks(PGconn *conn, const config *cfg, int max_keys)
{
    if (!shstate_redis_trusted())
        return 0;
    redisContext *rc = redissync_connect(&cfg->redis);
    if (rc == NULL)
        return -1;
    int released = 0, seen = 0, failed = 0;
    char cursor[32] = "0";
    do {
        const char *scan[] = {"SCAN", cursor, "MATCH", "recompute:lock:*", "COUNT", "100"};
        redisReply *r = redissync_command(&rc, 6, scan, NULL);
        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING) {
            if (r != NULL)
                freeReplyObject(r);
            failed = 1;
            break;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        redisReply *keys = r->element[1];
        for (size_t i = 0; i < keys->elements && seen < max_keys && !failed; i++, seen++) {
            const char *key = keys->element[i]->str;
            const char *get[] = {"GET", key};
            redisReply *v = redissync_command(&rc, 2, get, NULL);
            if (v == NULL) {
                failed = 1;
                break;
            }
            int young = v->type == REDIS_REPLY_STRING ? lock_is_young(&rc, key, cfg) : 1;
            if (young < 0)
                failed = 1;
            else if (!young) {
                int active = run_is_active(conn, v->str);
                if (active < 0)
                    failed = 1;
                else if (!active) {
                    const char *del[] = {"EVAL", SCOPELOCK_RELEASE_LUA, "1", key, v->str};
                    redisReply *d = redissync_command(&rc, 5, del, NULL);
                    if (d != NULL && d->type == REDIS_REPLY_INTEGER && d->integer == 1) {
                        log_info("released stale scope lock %s (run %s is not active)", key,
                                 v->str);
                        released++;
                    }
                    if (d != NULL)
                        freeReplyObject(d);
                    else
                        failed = 1; /* rc is gone */
                }
            }
            freeReplyObject(v);
        }
        freeReplyObject(r);
    } while (!failed && strcmp(cursor, "0") != 0 && seen < max_keys && rc != NULL);
    if (rc != NULL)
        redisFree(rc);
    return failed ? -1 : released;
}
