/*
 * server/metrics_http.h: the HTTP workers' side of the metrics (common/metrics.h): counting
 * every response by route, method and status with its duration (an h2o filter), publishing the
 * worker's PostgreSQL pool and Redis connection state, and answering GET /metrics (Prometheus
 * text format 0.0.4) from the sums of every process's slot. Runs in HTTP workers.
 */
#ifndef ANALYTICSD_METRICS_HTTP_H
#define ANALYTICSD_METRICS_HTTP_H

#include <h2o.h>

#include "common/jbuf.h"
#include "server/http_app.h"
#include "server/router.h"

/*
 * Adds the counting filter to path (call once per path, before creating the worker's other
 * filters: h2o runs the filters last registered first, so it then sees the final status). Every
 * response that goes through h2o's filters is counted: handler answers and h2o's own (413); not the
 * raw 400 h2o writes for unparsable requests.
 */
void metrics_http_register(h2o_pathconf_t *path);

/* Publishes this worker's pool and Redis gauges into its slot (the worker's 500 ms tick). */
void metrics_http_publish(http_app *app);

/* Appends the whole exposition to out (nothing without a metrics mapping). app gives the job
 * ring (may be NULL: ring gauges 0). Cannot fail (OOM aborts). */
void metrics_http_render(http_app *app, jbuf *out);

/*
 * METRICS_BIND: the listening socket of the separate metrics address, opened by the master
 * before forking (listener_open), -1 when /metrics is served on APP_PORT. Inherited by every
 * child; children other than HTTP workers close it.
 */
extern int metrics_http_listen_fd;

/*
 * HTTP worker, after its h2o context exists: when metrics_http_listen_fd is open, accepts on it
 * too, with a host configuration of its own that answers GET/HEAD /metrics (405 with Allow for
 * other methods) and 404 for every other path. Does nothing otherwise. Aborts on OOM only.
 */
void metrics_http_listen(h2o_context_t *ctx, http_app *app);

/* GET/HEAD /metrics on APP_PORT: 200 with the exposition, or 404 "route was not found" when
 * METRICS_BIND moved it to its own address. Cannot fail (OOM aborts). */
void metrics_handle(http_app *app, h2o_req_t *req, const route_match *m);

/* The route label of a route id: its path template ("/api/v1/reports/{slug}/run"), "none" for
 * ROUTE_NONE, "other" for ids without a name. */
const char *metrics_route_name(unsigned route);

#endif
