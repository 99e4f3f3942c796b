/*
 * common/scopelock.h: the Redis scope lock of DATA.md §7.5, the whole protocol but the trigger's
 * SET NX (server/handlers/recomputations.c, which sets it inside its state machine): the key
 * format, the compare-and-delete release for the trigger (HTTP workers, asynchronous) and for
 * the recompute side (workers and supervisor, blocking), and the stale-lock sweep of the
 * supervisor.
 */
#ifndef ANALYTICSD_SCOPELOCK_H
#define ANALYTICSD_SCOPELOCK_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "common/config.h"
#include "common/redisconn.h"

/* EVAL script: deletes KEYS[1] only if its value equals ARGV[1]; returns 1 or 0. */
#define SCOPELOCK_RELEASE_LUA                                                                      \
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else "        \
    "return 0 end"

/*
 * Writes "recompute:lock:{slug}:{window}:{from}:{to}" (dates as YYYYMMDD, given as days since
 * 1970-01-01) into out (NUL-terminated, truncated to cap). Returns the length written.
 */
size_t scopelock_key(char *out, size_t cap, const char *slug, const char *window, int32_t from,
                     int32_t to);

/*
 * Asynchronous release (HTTP workers): sends the compare-and-delete of `key` if its value is the
 * value_len bytes of `value` on c; cb (may be NULL: fire and forget) gets the reply, integer 1
 * released or 0 not held, or the failure's status. Returns the command (see
 * redisconn_command_argv).
 */
redisconn_cmd *scopelock_release_async(redisconn *c, const char *key, const char *value,
                                       size_t value_len, redisconn_cb cb, void *data);

/*
 * Blocking release (recompute workers, supervisor): compare-and-delete of the lock of the scope
 * slug/window/date_from..date_to (YYYY-MM-DD) whose value is run_id. Skipped (returns 0) while
 * Redis is untrusted. Connects for the call (1 s limits); returns 0 when released or absent, -1 on
 * a Redis failure (logged, Redis marked untrusted by redissync; the lock then expires or is cleared
 * by the stale rule).
 */
int scopelock_release(const config *cfg, const char *slug, const char *window,
                      const char *date_from, const char *date_to, const char *run_id);

/*
 * Stale scope-lock sweep (DATA.md §7.5): a worker killed after committing a run's final state
 * but before releasing its lock leaves the lock until its TTL. Scans at most `max_keys`
 * recompute:lock:* keys and compare-and-deletes each whose value is not the id of a pending or
 * running run (the same stale rule the trigger applies). Locks set less than
 * SCOPELOCK_SWEEP_GRACE_MS ago are left alone: their trigger may still be inserting the run.
 * Skipped while Redis is untrusted.
 * Returns the number of locks released, or -1 on a Redis or database failure (logged).
 */
#define SCOPELOCK_SWEEP_GRACE_MS 60000 /* twice the HTTP sessions' statement_timeout */
int scopelock_sweep(PGconn *conn, const config *cfg, int max_keys);

#endif
