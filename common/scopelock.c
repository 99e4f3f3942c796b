/*
 * common/scopelock.c: the Redis scope lock of DATA.md §7.5 (see scopelock.h): key format,
 * compare-and-delete release (asynchronous for the HTTP workers, blocking for the recompute
 * workers and the supervisor) and the supervisor's stale-lock sweep.
 */
#include "common/scopelock.h"

#include "common/dates.h"
#include "common/log.h"
#include "common/pgsession.h"
#include "common/redissync.h"
#include "common/runs.h"
#include "common/shstate.h"

#include <stdio.h>
#include <string.h>

static void compact_date(int32_t days, char out[9])
{
    char iso[11];
    date_format(days, iso);
    snprintf(out, 9, "%.4s%.2s%.2s", iso, iso + 5, iso + 8);
}

size_t scopelock_key(char *out, size_t cap, const char *slug, const char *window, int32_t from,
                     int32_t to)
{
    char f[9], t[9];
    compact_date(from, f);
    compact_date(to, t);
    int n = snprintf(out, cap, "recompute:lock:%s:%s:%s:%s", slug, window, f, t);
    if (n < 0)
        return 0;
    return (size_t)n < cap ? (size_t)n : cap - 1;
}

redisconn_cmd *scopelock_release_async(redisconn *c, const char *key, const char *value,
                                       size_t value_len, redisconn_cb cb, void *data)
{
    const char *argv[] = {"EVAL", SCOPELOCK_RELEASE_LUA, "1", key, value};
    size_t argvlen[] = {4, strlen(SCOPELOCK_RELEASE_LUA), 1, strlen(key), value_len};
    return redisconn_command_argv(c, 5, argv, argvlen, cb, data);
}

int scopelock_release(const config *cfg, const char *slug, const char *window,
                      const char *date_from, const char *date_to, const char *run_id)
{
    if (!shstate_redis_trusted())
        return 0;
    int32_t from, to;
    if (date_parse(date_from, strlen(date_from), &from) != 0 ||
        date_parse(date_to, strlen(date_to), &to) != 0) {
        log_error("scope lock release for run %s: bad dates %s..%s", run_id, date_from, date_to);
        return -1;
    }
    char key[256];
    scopelock_key(key, sizeof(key), slug, window, from, to);
    redisContext *rc = redissync_connect(&cfg->redis);
    if (rc == NULL)
        return -1;
    const char *argv[] = {"EVAL", SCOPELOCK_RELEASE_LUA, "1", key, run_id};
    redisReply *r = redissync_command(&rc, 5, argv, NULL);
    int ok = r != NULL && r->type == REDIS_REPLY_INTEGER;
    if (r != NULL && !ok)
        log_warn("scope lock release for run %s rejected: %s", run_id,
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    else if (r == NULL)
        log_warn("scope lock release for run %s failed: redis unreachable", run_id);
    if (r != NULL)
        freeReplyObject(r);
    if (rc != NULL)
        redisFree(rc);
    return ok ? 0 : -1;
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

/* Whether the lock at `key` was set less than SCOPELOCK_SWEEP_GRACE_MS ago, judged by its
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
                cfg->recompute_lock_ttl_ns / 1000000 - r->integer < SCOPELOCK_SWEEP_GRACE_MS;
    freeReplyObject(r);
    return young;
}

int scopelock_sweep(PGconn *conn, const config *cfg, int max_keys)
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
