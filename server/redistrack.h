/*
 * server/redistrack.h: local copies of report cache entries and version keys kept exact by
 * Redis client-side caching (issue 16, DATA.md §7.4 "Local copies", REPORT_LOCAL_CACHE_MB).
 * One per HTTP worker process, created after fork by http_worker.c, used on its event loop by
 * handlers/report_run.c. It owns the worker's copies (server/localcache.h) and its invalidation
 * connection, a Redis connection of its own (not a redisconn: its replies do not pair with
 * commands) that runs, once connected:
 *     [AUTH …] CLIENT SETNAME analyticsd-invalidation; CLIENT ID                    -> id
 *     CLIENT TRACKING on REDIRECT <id> BCAST PREFIX report:; SUBSCRIBE __redis__:invalidate
 * so Redis pushes the name of every `report:` key that changes (in any database: tracking is
 * not per database, which only costs copies), a null for FLUSHDB/FLUSHALL, and the pong of
 * each PING this module sends, all in order on that one connection (RESP2, hiredis 0.14).
 *
 * How a copy stays exact (the full reasoning is at the top of redistrack.c):
 *   - A copy is served only after a barrier: a PING written on the invalidation connection
 *     after the read started, whose pong has come back. Redis queues the invalidation of a write
 *     on that connection before it acknowledges the write to the writer, so every invalidation
 *     of a write acknowledged before the read started is processed before the pong. One PING
 *     serves every read that started in the same loop iteration.
 *   - A copy is made only from a lookup whose MGET left after the connection was subscribed,
 *     and only if no invalidation of its keys (nor a flush, a reconnect or a trust change)
 *     was processed since that MGET was issued; its deadline is its Redis PTTL, counted from
 *     before the PTTL was sent.
 *   - Losing the connection, a missing pong within REDISCONN_TIMEOUT_MS, Redis being untrusted
 *     (shstate) or any increase of shstate's failure count drop every copy before the next
 *     lookup; the connection is reopened 100 ms after a loss.
 *
 * Metrics (common/metrics.h): evictions, invalidated keys, resets (every copy dropped), and the
 * bytes/items gauges. Local hits are counted by the caller.
 */
#ifndef ANALYTICSD_REDISTRACK_H
#define ANALYTICSD_REDISTRACK_H

#include <stddef.h>
#include <stdint.h>

#include <h2o.h>

#include "common/config.h"
#include "common/log.h"
#include "common/redisconn.h"

typedef struct redistrack redistrack;

/* A read waiting for a barrier; embed it in the request's state, zeroed. */
typedef struct redistrack_wait redistrack_wait;
typedef void (*redistrack_cb)(redistrack_wait *w, int ok);
struct redistrack_wait {
    h2o_linklist_t link; /* in the waiting list while linked */
    uint64_t ping;       /* the PING that covers it; 0 until one is sent */
    redistrack_cb cb;
    char rid[LOG_REQUEST_ID_MAX + 1]; /* log request id at registration, current during cb */
};

/*
 * Starts the worker's local copies bounded by max_bytes and opens the invalidation connection
 * to ep (a non-blocking connect; a host name is resolved here, once, blocking). Returns NULL
 * (no local copies: every lookup goes to Redis) when max_bytes is 0 or ep uses TLS.
 */
redistrack *redistrack_create(h2o_loop_t *loop, const config_redis *ep, size_t max_bytes);

/* Closes the connection and frees every copy. Waiting reads are dropped without their callback.
 * Must not be called from a callback of this module. NULL is ignored. */
void redistrack_destroy(redistrack *t);

/*
 * The local copy of the entry of (slug, hash) under the version copied for slug, if copies may
 * be used now: *version and the stored hit response body (*body, *len; valid until control
 * returns to the event loop). Returns 0, or -1 (no copy, or copies are not usable; when that
 * is because of the connection or the trusted flag, every copy has just been dropped).
 * Calling it before a barrier only says whether waiting for one is worthwhile; a copy may be
 * served only when this returns 0 inside the barrier's callback.
 */
int redistrack_get(redistrack *t, const char *slug, size_t slug_len, const char *hash,
                   int64_t *version, const char **body, size_t *len);

/*
 * Registers w for the next barrier: cb(w, 1) once every invalidation Redis queued before the
 * barrier's PING (sent at the end of this loop iteration) has been processed, or cb(w, 0) when
 * that cannot be known (the connection was lost or the pong is late; every copy is then
 * dropped). cb is never called from inside this function. Returns 0, or -1 when the
 * connection is not subscribed now (cb is then never called).
 */
int redistrack_sync(redistrack *t, redistrack_wait *w, redistrack_cb cb);

/* Forgets a waiting read (its callback will not run). A w that is not waiting is ignored. */
void redistrack_cancel(redistrack_wait *w);

/*
 * A stamp to take just before sending the lookup MGET whose result may be copied; 0 when no
 * copy can be made from it (connection not subscribed, Redis untrusted).
 */
uint64_t redistrack_stamp(redistrack *t);

/*
 * After a lookup stamped `stamp` found the entry of (slug, version, hash) whose hit response
 * body is body[0..len): copies it (and the version) unless something that could have changed
 * either key was processed since the stamp. Sends PTTL of both keys on r to learn their
 * deadlines; the copy is made when both replies are in. Nothing is reported: a lookup that
 * could not be copied just goes to Redis again next time. stamp 0 does nothing.
 */
void redistrack_fill(redistrack *t, redisconn *r, uint64_t stamp, const char *slug, size_t slug_len,
                     int64_t version, const char *hash, const char *body, size_t len);

#endif
