/*
 * server/http_app.h: what every request handler of an HTTP worker can reach: the worker's
 * configuration, event loop, PostgreSQL pool and Redis connection. One per HTTP worker process,
 * created after fork by http_worker.c.
 */
#ifndef ANALYTICSD_HTTP_APP_H
#define ANALYTICSD_HTTP_APP_H

#include <h2o.h>

#include "common/config.h"
#include "common/pgpool.h"
#include "common/redisconn.h"
#include "common/ring.h"
#include "server/router.h"

struct catalogue;

typedef struct http_app {
    const config *cfg;
    h2o_loop_t *loop;
    pgpool *pg;
    redisconn *redis;            /* NULL when Redis can never be used (rediss:// unsupported) */
    ring_t *ring;                /* job ring: the trigger's fast path offers new run ids here */
    struct catalogue *catalogue; /* report catalogue held in memory (server/catalogue.h) */
    struct redistrack *track;    /* local report copies (server/redistrack.h); NULL when off */
    struct sms_cache *sms_cache; /* SMS read answers (server/sms_cache.h); NULL until used */
    struct sms_fill *sms_fills;  /* SMS read statements in flight, by cache key (sms_http.c) */
    struct probes *probes; /* GET /readyz's own PostgreSQL check (probes.c); NULL until used */
} http_app;

/*
 * Handlers, one file per API resource under server/handlers/. Each is called after routing,
 * the 413 check and (for management routes) authentication, and answers the request exactly
 * once, now or later from a callback. Pending work lives in memory allocated with
 * h2o_mem_alloc_shared(&req->pool, ..., dispose) whose dispose hook cancels it if the client
 * goes away first.
 */
typedef void http_handler(http_app *app, h2o_req_t *req, const route_match *m);

http_handler health_handle, reports_list_handle, report_get_handle, report_run_handle,
    recompute_trigger_handle, recompute_list_handle, recompute_get_handle, audit_list_handle,
    events_ingest_handle, sms_summary_handle, livez_handle, readyz_handle, openapi_handle;

/* The SMS operator and account routes are tables (server/sms_http.h). */

#endif
