/*
 * server/metrics_http.c: counting filter, gauge publishing and the GET /metrics answer (see
 * metrics_http.h). Runs in HTTP workers. The exposition lists every metric of the README's
 * "Metrics" section; labelled HTTP series appear once they have been observed, the other label
 * sets are small and fixed and always listed.
 */
#include "server/metrics_http.h"

#include "common/jbuf.h"
#include "common/metrics.h"
#include "common/metrics_text.h"
#include "common/ring.h"
#include "common/shstate.h"
#include "common/sms_event.h"
#include "common/util.h"
#include "server/http_response.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* ---- route names ------------------------------------------------------------------------- */

static const char *const route_names[METRICS_ROUTES] = {
    [ROUTE_NONE] = "none",
    [ROUTE_METRICS] = "/metrics",
    [ROUTE_HEALTH] = "/api/v1/health",
    [ROUTE_REPORTS] = "/api/v1/reports",
    [ROUTE_REPORT] = "/api/v1/reports/{slug}",
    [ROUTE_REPORT_RUN] = "/api/v1/reports/{slug}/run",
    [ROUTE_RECOMPUTATIONS] = "/api/v1/recomputations",
    [ROUTE_RECOMPUTATION] = "/api/v1/recomputations/{id}",
    [ROUTE_AUDIT_ENTRIES] = "/api/v1/audit-entries",
    [ROUTE_EVENTS] = "/api/v1/events",
    [ROUTE_SMS_SUMMARY] = "/api/v1/sms/summary",
    [ROUTE_SMS_OPERATORS] = "/api/v1/sms/operators",
    [ROUTE_SMS_OPERATOR_METRICS] = "/api/v1/sms/operators/{operator_id}/metrics",
    [ROUTE_SMS_ACCOUNTS] = "/api/v1/sms/accounts",
    [ROUTE_SMS_ACCOUNT_USAGE] = "/api/v1/sms/accounts/{account_id}/usage",
    [ROUTE_LIVEZ] = "/livez",
    [ROUTE_READYZ] = "/readyz",
    [ROUTE_OPENAPI] = "/api/v1/openapi.json",
};
_Static_assert(ROUTE_OPENAPI < METRICS_ROUTES - 1, "METRICS_ROUTES too small");

const char *metrics_route_name(unsigned route)
{
    return route < METRICS_ROUTES && route_names[route] != NULL ? route_names[route] : "other";
}

/* ---- counting ---------------------------------------------------------------------------- */

typedef struct counting_filter {
    h2o_filter_t super;
    int metrics_only; /* on the METRICS_BIND address: every other path counts as "none" */
} counting_filter;

static void on_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    int metrics_only = ((counting_filter *)self)->metrics_only;
    route_match m;
    size_t path_len = req->query_at == SIZE_MAX ? req->path.len : req->query_at;
    router_status rs =
        router_match(req->method.base, req->method.len, req->path.base, path_len, &m);
    /* From h2o's request start (the loop iteration that read the headers) to the response. */
    struct timeval now;
    gettimeofday(&now, NULL);
    int64_t ns = ((int64_t)now.tv_sec - req->timestamps.request_begin_at.tv_sec) * 1000000000LL +
                 ((int64_t)now.tv_usec - req->timestamps.request_begin_at.tv_usec) * 1000LL;
    int none = rs == ROUTER_NOT_FOUND || (metrics_only && m.route != ROUTE_METRICS);
    metrics_http_request(none ? ROUTE_NONE : (unsigned)m.route, req->method.base, req->method.len,
                         req->res.status, ns > 0 ? (uint64_t)ns : 0);
    h2o_setup_next_ostream(req, slot);
}

static void add_counting_filter(h2o_pathconf_t *path, int metrics_only)
{
    counting_filter *f = (counting_filter *)h2o_create_filter(path, sizeof(*f));
    f->super.on_setup_ostream = on_setup_ostream;
    f->metrics_only = metrics_only;
}

void metrics_http_register(h2o_pathconf_t *path)
{
    add_counting_filter(path, 0);
}

void metrics_http_publish(http_app *app)
{
    pgpool_stats st;
    pgpool_get_stats(app->pg, &st);
    metrics_gauges *g = &metrics_self->gauges;
    atomic_store_explicit(&g->pg_busy, (int64_t)st.busy, memory_order_relaxed);
    atomic_store_explicit(&g->pg_idle, (int64_t)st.idle, memory_order_relaxed);
    atomic_store_explicit(&g->pg_connecting, (int64_t)st.connecting, memory_order_relaxed);
    atomic_store_explicit(&g->pg_queued, (int64_t)st.queued, memory_order_relaxed);
    atomic_store_explicit(&g->redis_connected, redisconn_is_connected(app->redis),
                          memory_order_relaxed);
}

/* ---- exposition -------------------------------------------------------------------------- */

typedef struct expo {
    jbuf b;
    metrics_totals t;
} expo;

static void http_series(expo *e)
{
    metrics_text_family(&e->b, "http_requests_total", "counter",
                        "HTTP responses by route template, method and status code.");
    for (unsigned r = 0; r < METRICS_ROUTES; r++) {
        for (unsigned m = 0; m < METRICS_METHODS; m++) {
            for (unsigned c = 0; c < METRICS_CODES; c++) {
                uint64_t v = METRICS_CELL(&e->t, http_requests[r][m][c]);
                if (v == 0)
                    continue;
                char code[16];
                if (c < METRICS_CODES - 1)
                    snprintf(code, sizeof(code), "%d", metrics_code_values[c]);
                else
                    snprintf(code, sizeof(code), "other");
                metrics_label l[3] = {{"route", metrics_route_name(r)},
                                      {"method", metrics_method_names[m]},
                                      {"code", code}};
                metrics_text_sample(&e->b, "http_requests_total", l, 3, (int64_t)v);
            }
        }
    }
    metrics_text_family(&e->b, "http_request_duration_seconds", "histogram",
                        "Time from reading a request to starting its response, by route.");
    for (unsigned r = 0; r < METRICS_ROUTES; r++) {
        uint64_t buckets[METRICS_MAX_BUCKETS + 1], count = 0;
        for (size_t i = 0; i <= metrics_http_buckets.n; i++) {
            buckets[i] = METRICS_CELL(&e->t, http_duration[r].bucket[i]);
            count += buckets[i];
        }
        if (count == 0)
            continue;
        metrics_label l = {"route", metrics_route_name(r)};
        metrics_text_histogram(&e->b, "http_request_duration_seconds", &l, 1, &metrics_http_buckets,
                               buckets, METRICS_CELL(&e->t, http_duration[r].sum));
    }
}

/* A histogram without labels whose cells start at member h of the totals. */
static void plain_histogram(expo *e, const char *name, const char *help,
                            const metrics_buckets *layout, size_t first_cell)
{
    uint64_t buckets[METRICS_MAX_BUCKETS + 1];
    for (size_t i = 0; i <= layout->n; i++)
        buckets[i] = e->t.cells[first_cell + i];
    metrics_text_family(&e->b, name, "histogram", help);
    metrics_text_histogram(&e->b, name, NULL, 0, layout, buckets,
                           e->t.cells[first_cell + METRICS_MAX_BUCKETS + 1]);
}

#define HIST_CELL(member) (offsetof(metrics_counters, member) / sizeof(uint64_t))

static void gauge(expo *e, const char *name, const char *help, const char *label,
                  const char *const *values, const int64_t *v, size_t n)
{
    metrics_text_family(&e->b, name, "gauge", help);
    for (size_t i = 0; i < n; i++) {
        metrics_label l = {label, label ? values[i] : NULL};
        metrics_text_sample(&e->b, name, &l, label ? 1 : 0, v[i]);
    }
}

static void cache_series(expo *e)
{
    /* A local hit (server/redistrack.h) is also counted as a cache hit. */
    static const char *const names[3] = {"analyticsd_report_cache_hits_total",
                                         "analyticsd_report_cache_misses_total",
                                         "analyticsd_report_cache_local_hits_total"};
    static const char *const helps[3] = {
        "Report runs answered from the Redis cache, by report.",
        "Report runs looked up in the Redis cache and computed, by report.",
        "Report cache hits answered from a worker's local copy, by report."};
    for (int k = 0; k < 3; k++) {
        metrics_text_family(&e->b, names[k], "counter", helps[k]);
        for (unsigned r = 0; r < metrics_report_count(); r++) {
            metrics_label l = {"report", metrics_report_name(r)};
            uint64_t v = k == 0   ? METRICS_CELL(&e->t, cache_hits[r])
                         : k == 1 ? METRICS_CELL(&e->t, cache_misses[r])
                                  : METRICS_CELL(&e->t, report_local_hits[r]);
            metrics_text_sample(&e->b, names[k], &l, 1, (int64_t)v);
        }
    }
    static const char *const local[3][2] = {
        {"analyticsd_report_cache_local_evictions_total",
         "Local report copies evicted by the REPORT_LOCAL_CACHE_MB bound."},
        {"analyticsd_report_cache_local_invalidations_total",
         "Keys (or flushes) Redis reported changed to the workers' invalidation connections."},
        {"analyticsd_report_cache_local_resets_total",
         "Times a worker dropped every local copy (flush, lost connection, Redis untrusted)."}};
    uint64_t counts[3] = {METRICS_CELL(&e->t, report_local_evictions),
                          METRICS_CELL(&e->t, report_local_invalidations),
                          METRICS_CELL(&e->t, report_local_resets)};
    for (int k = 0; k < 3; k++) {
        metrics_text_family(&e->b, local[k][0], "counter", local[k][1]);
        metrics_text_sample(&e->b, local[k][0], NULL, 0, (int64_t)counts[k]);
    }
    gauge(e, "analyticsd_report_cache_local_bytes",
          "Memory accounted to local report copies, summed over the HTTP workers.", NULL, NULL,
          &e->t.report_local_bytes, 1);
    gauge(e, "analyticsd_report_cache_local_items",
          "Local report copies (entries and version keys), summed over the HTTP workers.", NULL,
          NULL, &e->t.report_local_items, 1);
}

static void recompute_series(expo *e, http_app *app)
{
    static const char *const statuses[2] = {"completed", "failed"};
    metrics_text_family(&e->b, "analyticsd_recompute_runs_total", "counter",
                        "Recompute runs finished by the recompute workers, by final status.");
    for (int i = 0; i < 2; i++) {
        metrics_label l = {"status", statuses[i]};
        metrics_text_sample(&e->b, "analyticsd_recompute_runs_total", &l, 1,
                            (int64_t)METRICS_CELL(&e->t, recompute_runs[i]));
    }
    plain_histogram(e, "analyticsd_recompute_run_duration_seconds",
                    "Duration of finished recompute runs, from claim to final state.",
                    &metrics_recompute_buckets, HIST_CELL(recompute_duration));
    ring_stats_t rs;
    memset(&rs, 0, sizeof(rs));
    if (app != NULL && app->ring != NULL)
        ring_stats(app->ring, &rs);
    static const char *const states[2] = {"queued", "claimed"};
    int64_t depth[2] = {rs.queued, rs.claimed};
    gauge(e, "analyticsd_ring_jobs", "Run ids in the shared-memory job ring, by state.", "state",
          states, depth, 2);
    int64_t cap = rs.capacity;
    gauge(e, "analyticsd_ring_capacity", "Slots of the shared-memory job ring.", NULL, NULL, &cap,
          1);
    int64_t pending = atomic_load_explicit(&metrics_global->pending_runs, memory_order_relaxed);
    if (pending >= 0)
        gauge(e, "analyticsd_recompute_pending_runs",
              "Runs in status pending, as counted by the supervisor every second.", NULL, NULL,
              &pending, 1);
}

/* A counter family with two labels: one sample per (row, column) of values (row-major,
 * rows x cols); columns whose name is NULL are left out. */
typedef struct grid {
    const char *row_label, *const *rows;
    size_t nrows;
    const char *col_label, *const *cols;
    size_t ncols;
} grid;

static void counter_grid(expo *e, const char *name, const char *help, const grid *g,
                         const uint64_t *values)
{
    metrics_text_family(&e->b, name, "counter", help);
    for (size_t r = 0; r < g->nrows; r++) {
        for (size_t c = 0; c < g->ncols; c++) {
            if (g->cols[c] == NULL)
                continue;
            metrics_label l[2] = {{g->row_label, g->rows[r]}, {g->col_label, g->cols[c]}};
            metrics_text_sample(&e->b, name, l, 2, (int64_t)values[r * g->ncols + c]);
        }
    }
}

static void process_series(expo *e)
{
    uint64_t restarts[METRICS_KINDS * METRICS_CAUSES];
    for (size_t i = 0; i < METRICS_KINDS * METRICS_CAUSES; i++)
        restarts[i] =
            atomic_load_explicit(&metrics_global->restarts[i / METRICS_CAUSES][i % METRICS_CAUSES],
                                 memory_order_relaxed);
    grid g = {"kind",  metrics_kind_names,  METRICS_KINDS,
              "cause", metrics_cause_names, METRICS_CAUSES};
    counter_grid(e, "analyticsd_worker_restarts_total",
                 "Child processes respawned by the master, by kind and exit cause.", &g, restarts);
    static const char *const states[3] = {"busy", "idle", "connecting"};
    int64_t conns[3] = {e->t.pg_busy, e->t.pg_idle, e->t.pg_connecting};
    gauge(e, "analyticsd_pg_pool_connections",
          "PostgreSQL connections of the HTTP workers' pools, by state, summed.", "state", states,
          conns, 3);
    gauge(e, "analyticsd_pg_pool_queued_requests",
          "Requests waiting for a PostgreSQL connection in the HTTP workers' pools, summed.", NULL,
          NULL, &e->t.pg_queued, 1);
    gauge(e, "analyticsd_redis_connected_workers",
          "HTTP workers whose Redis connection is established.", NULL, NULL, &e->t.redis_connected,
          1);
    int64_t trusted = shstate_redis_trusted() ? 1 : 0;
    gauge(e, "analyticsd_redis_trusted", "1 while the Redis cache is trusted (DATA.md 7.6).", NULL,
          NULL, &trusted, 1);
}

static void sms_series(expo *e)
{
    grid g = {"transport", metrics_transport_names, METRICS_TRANSPORTS,
              "outcome",   metrics_outcome_names,   METRICS_OUTCOMES};
    counter_grid(e, "analyticsd_sms_events_total",
                 "SMS events processed in committed batches, by transport and outcome.", &g,
                 &METRICS_CELL(&e->t, sms_events[0][0]));
    const char *reasons[METRICS_REASONS]; /* [0] is SMS_REASON_NONE: NULL, left out */
    for (unsigned r = 0; r < METRICS_REASONS; r++)
        reasons[r] = sms_reason_name((sms_reason)r);
    g.col_label = "reason";
    g.cols = reasons;
    g.ncols = METRICS_REASONS;
    counter_grid(e, "analyticsd_sms_events_rejected_total",
                 "Rejected SMS events, by transport and reason (SMS.md 2.3).", &g,
                 &METRICS_CELL(&e->t, sms_rejected[0][0]));
    plain_histogram(e, "analyticsd_sms_ingest_batch_size",
                    "Messages per batch committed by the ingest workers.", &metrics_batch_buckets,
                    HIST_CELL(sms_batch_size));
    plain_histogram(e, "analyticsd_sms_ingest_commit_duration_seconds",
                    "Time for an ingest worker's batch statement to commit.",
                    &metrics_commit_buckets, HIST_CELL(sms_commit));
    int64_t lag[METRICS_STREAMS];
    int known = 0;
    for (int i = 0; i < METRICS_STREAMS; i++) {
        lag[i] = atomic_load_explicit(&metrics_global->sms_pending[i], memory_order_relaxed);
        known |= lag[i] >= 0;
    }
    if (known) {
        for (int i = 0; i < METRICS_STREAMS; i++)
            lag[i] = lag[i] < 0 ? 0 : lag[i];
        gauge(e, "analyticsd_sms_consumer_pending_messages",
              "Messages of the stream not yet delivered to the durable consumer, as last seen "
              "by an ingest worker.",
              "stream", metrics_stream_names, lag, METRICS_STREAMS);
    }
}

void metrics_http_render(http_app *app, jbuf *out)
{
    expo *e = xcalloc(1, sizeof(*e));
    e->b = *out;
    if (metrics_sum(&e->t) == 0) {
        jbuf_reserve(&e->b, 16384);
        http_series(e);
        cache_series(e);
        recompute_series(e, app);
        process_series(e);
        sms_series(e);
    }
    *out = e->b;
    free(e);
}

static void send_exposition(http_app *app, h2o_req_t *req)
{
    jbuf b;
    jbuf_init(&b);
    metrics_http_render(app, &b);
    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = b.len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT(CONTENT_TYPE));
    h2o_send_inline(req, b.data != NULL ? b.data : "", b.len);
    jbuf_free(&b);
}

void metrics_handle(http_app *app, h2o_req_t *req, const route_match *m)
{
    (void)m;
    if (metrics_http_listen_fd >= 0) {
        http_send_error(req, 404, "route was not found"); /* served on METRICS_BIND */
        return;
    }
    send_exposition(app, req);
}

/* ---- METRICS_BIND ------------------------------------------------------------------------ */

int metrics_http_listen_fd = -1;

typedef struct metrics_listener {
    h2o_globalconf_t globalconf; /* its own host: nothing of the API is reachable here */
    h2o_accept_ctx_t accept_ctx;
    http_app *app;
} metrics_listener;

static metrics_listener *listener;

static int on_metrics_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    route_match m;
    size_t path_len = req->query_at == SIZE_MAX ? req->path.len : req->query_at;
    router_status rs =
        router_match(req->method.base, req->method.len, req->path.base, path_len, &m);
    if (rs == ROUTER_NOT_FOUND || m.route != ROUTE_METRICS) {
        http_send_error(req, 404, "route was not found");
    } else if (rs == ROUTER_METHOD_NOT_ALLOWED) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, m.allow,
                       strlen(m.allow));
        http_send_error(req, 405, "method not allowed");
    } else {
        send_exposition(listener->app, req);
    }
    return 0;
}

static void on_metrics_accept(h2o_socket_t *sock, const char *err)
{
    if (err != NULL)
        return;
    for (int i = 0; i < 4; i++) {
        h2o_socket_t *conn = h2o_evloop_socket_accept(sock);
        if (conn == NULL)
            return; /* another worker took it */
        h2o_accept(&listener->accept_ctx, conn);
    }
}

void metrics_http_listen(h2o_context_t *ctx, http_app *app)
{
    if (metrics_http_listen_fd < 0)
        return;
    listener = xcalloc(1, sizeof(*listener));
    listener->app = app;
    h2o_config_init(&listener->globalconf);
    listener->globalconf.server_name = h2o_iovec_init(H2O_STRLIT("analyticsd"));
    listener->globalconf.http1.upgrade_to_http2 = 0;
    h2o_hostconf_t *host = h2o_config_register_host(&listener->globalconf,
                                                    h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *paths[2] = {h2o_config_register_path(host, "/", 0), &host->fallback_path};
    for (int i = 0; i < 2; i++) {
        h2o_handler_t *handler = h2o_create_handler(paths[i], sizeof(*handler));
        handler->on_req = on_metrics_req;
        add_counting_filter(paths[i], 1);
    }
    listener->accept_ctx.ctx = ctx;
    listener->accept_ctx.hosts = listener->globalconf.hosts;
    h2o_socket_t *sock =
        h2o_evloop_socket_create(ctx->loop, metrics_http_listen_fd, H2O_SOCKET_FLAG_DONT_READ);
    h2o_socket_read_start(sock, on_metrics_accept);
}
