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
#include "server/router.h"

typedef struct http_app {
    const config *cfg;
    h2o_loop_t *loop;
    pgpool *pg;
    redisconn *redis;
} http_app;

/* Handlers: each answers the request now or later (from a callback); never both, never none. */
void health_handle(http_app *app, h2o_req_t *req, const route_match *m);

#endif
