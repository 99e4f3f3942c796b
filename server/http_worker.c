/*
 * server/http_worker.c: one HTTP worker process (forked by the master): libh2o 2.2.5 with its
 * own event loop, accepting from the listening socket shared by all workers.
 *
 * It owns the h2o configuration and context, the worker's PostgreSQL pool and Redis
 * connection (http_app), request routing (API.md §1.2), the X-Request-Id of every response
 * (API.md §8, request_id.h) and the log context that carries it, the access log (ACCESS_LOG),
 * the 413 rewrite for bodies h2o rejects itself, the write timeout (CONFIG.md §5.2), the heartbeat,
 * readiness and connection count in shared state (the count shares new connections out between
 * workers), and the graceful drain on SIGTERM: stop accepting, finish in-flight requests, exit 0
 * (or 1 if the grace period runs out first).
 */
#include "server/http_worker.h"

#include "common/log.h"
#include "common/shstate.h"
#include "common/util.h"
#include "common/exitcodes.h"
#include "server/catalogue.h"
#include "server/http_app.h"
#include "server/http_auth.h"
#include "server/http_response.h"
#include "server/metrics_http.h"
#include "server/redistrack.h"
#include "server/request_id.h"
#include "server/router.h"
#include "server/sms_http.h"

#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define HTTP_TICK_MS        500
#define HTTP_PG_CONNECTIONS 4
#define HTTP_PG_QUEUE       1024
/* Sharing out connections (on_accept): at most HTTP_ACCEPT_BATCH per wake-up, while this
 * worker holds at most HTTP_ACCEPT_SLACK more than the least loaded worker; above that it
 * leaves waiting connections to the others for up to HTTP_ACCEPT_WAIT_NS. */
#define HTTP_ACCEPT_BATCH   16
#define HTTP_ACCEPT_SLACK   1
#define HTTP_ACCEPT_WAIT_NS 10000000

typedef struct http_worker {
    h2o_globalconf_t globalconf;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *listener;
    h2o_socket_t *signals;
    h2o_timeout_t tick_timeout;
    h2o_timeout_entry_t tick_entry;
    h2o_timeout_t write_timeout;
    size_t connections;     /* accepted and not yet closed (also in the shared slot) */
    int64_t leave_since_ns; /* when this worker began leaving connections to the others */
    int64_t last_left_ns;   /* when it last did */
    int draining;
    int64_t drain_deadline_ns;
    int slot;
    int number; /* N of "http worker N" */
    http_app app;
} http_worker;

static http_worker *worker;

/* h2o's own reason phrase for the 413 it generates; ours is "Payload Too Large". */
#define H2O_413_REASON "Request Entity Too Large"

/* ---- request ids (API.md §8) ------------------------------------------------------------ */

#define X_REQUEST_ID "x-request-id"

/*
 * Gives the response its X-Request-Id, once: the request's own first X-Request-Id when it is
 * well-formed, else a generated one (request_id.h). The value lives in the request's pool.
 * Returns it.
 */
static const char *attach_request_id(h2o_req_t *req)
{
    const char *id = http_request_id(req);
    if (id != NULL)
        return id;
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT(X_REQUEST_ID), -1);
    h2o_iovec_t v;
    if (i >= 0 &&
        request_id_valid(req->headers.entries[i].value.base, req->headers.entries[i].value.len)) {
        v = h2o_strdup(&req->pool, req->headers.entries[i].value.base,
                       req->headers.entries[i].value.len);
    } else {
        v.base = h2o_mem_alloc_pool(&req->pool, REQUEST_ID_GENERATED_LEN + 1);
        request_id_generate(v.base);
        v.len = REQUEST_ID_GENERATED_LEN;
    }
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT(X_REQUEST_ID), 0,
                          "X-Request-Id", v.base, v.len);
    return v.base;
}

/* ---- per-request write timeout ----------------------------------------------------------- */

typedef struct write_deadline {
    h2o_timeout_entry_t entry;
    h2o_req_t *req;
} write_deadline;

static void on_write_deadline(h2o_timeout_entry_t *entry)
{
    write_deadline *d = CONTAINER_OF(entry, write_deadline, entry);
    h2o_socket_t *sock = d->req->conn->callbacks->get_socket(d->req->conn);
    log_set_request_id(http_request_id(d->req));
    log_warn("HTTP_WRITE_TIMEOUT expired; closing the connection");
    /* Shut the socket down so the peer sees the connection close, then answer: the write fails,
     * h2o closes the connection and frees the request, and the handler's dispose hook cancels
     * its pending work. A late handler answer is ignored (http_send_body answers once). */
    if (sock != NULL)
        shutdown(h2o_socket_get_fd(sock), SHUT_RDWR);
    http_send_error(d->req, 500, "internal error");
    log_set_request_id(NULL);
}

static void on_write_deadline_dispose(void *p)
{
    write_deadline *d = p;
    if (h2o_timeout_is_linked(&d->entry))
        h2o_timeout_unlink(&d->entry);
}

static void arm_write_deadline(h2o_req_t *req)
{
    write_deadline *d = h2o_mem_alloc_shared(&req->pool, sizeof(*d), on_write_deadline_dispose);
    memset(d, 0, sizeof(*d));
    d->req = req;
    d->entry.cb = on_write_deadline;
    h2o_timeout_link(worker->ctx.loop, &worker->write_timeout, &d->entry);
}

/* ---- polling while a request is handled ------------------------------------------------- */

/*
 * h2o 2.2.5's HTTP/1 code stops reading a connection before it hands a request to us and
 * starts again once the response is written. For a response written in a later loop iteration
 * (every handler that waits for Redis or PostgreSQL) the loop applies both changes, which is
 * one epoll_ctl to stop and one to start per request. Keeping the socket polled, with the
 * callback below in h2o's place, makes both unnecessary: h2o installs its own callback again
 * when the response is done (reqread_start), and the loop sees no change to apply.
 *
 * If bytes or an end of stream arrive meanwhile (a pipelined request, a client going away),
 * the callback stops reading, which is the state h2o had asked for: the bytes stay in the
 * socket's input buffer, where h2o looks first when it reads again, and a closed connection is
 * noticed at the response's write as before.
 */
static void on_read_while_handling(h2o_socket_t *sock, const char *err)
{
    (void)err;
    h2o_socket_read_stop(sock);
}

static void keep_polling_while_handling(h2o_req_t *req)
{
    if (req->version >= 0x200)
        return; /* HTTP/2 reads all the time (and is not enabled) */
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    if (sock != NULL && !h2o_socket_is_reading(sock))
        h2o_socket_read_start(sock, on_read_while_handling);
}

/* ---- routing ----------------------------------------------------------------------------- */

static size_t path_length(h2o_req_t *req)
{
    return req->query_at == SIZE_MAX ? req->path.len : req->query_at;
}

static void send_method_not_allowed(h2o_req_t *req, const char *allow)
{
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, allow, strlen(allow));
    http_send_error(req, 405, "method not allowed");
}

static void dispatch(h2o_req_t *req)
{
    route_match m;
    router_status rs =
        router_match(req->method.base, req->method.len, req->path.base, path_length(req), &m);
    if (rs == ROUTER_NOT_FOUND) {
        http_send_error(req, 404, "route was not found");
        return;
    }
    if (rs == ROUTER_METHOD_NOT_ALLOWED) {
        send_method_not_allowed(req, m.allow);
        return;
    }
    if (req->entity.base != NULL && req->entity.len > m.body_limit) {
        http_send_error(req, 413, "request body too large");
        return;
    }
    if (m.is_management && !http_auth_ok(req, worker->app.cfg)) {
        http_send_error(req, 401, "management authentication failed");
        return;
    }
    arm_write_deadline(req);
    keep_polling_while_handling(req);
    http_app *app = &worker->app;
    switch (m.route) {
    case ROUTE_HEALTH:
        health_handle(app, req, &m);
        break;
    case ROUTE_OPENAPI:
        openapi_handle(app, req, &m);
        break;
    case ROUTE_REPORTS:
        reports_list_handle(app, req, &m);
        break;
    case ROUTE_REPORT:
        report_get_handle(app, req, &m);
        break;
    case ROUTE_REPORT_RUN:
        report_run_handle(app, req, &m);
        break;
    case ROUTE_RECOMPUTATIONS:
        if (req->method.len == 4 && memcmp(req->method.base, "POST", 4) == 0)
            recompute_trigger_handle(app, req, &m);
        else
            recompute_list_handle(app, req, &m);
        break;
    case ROUTE_RECOMPUTATION:
        recompute_get_handle(app, req, &m);
        break;
    case ROUTE_AUDIT_ENTRIES:
        audit_list_handle(app, req, &m);
        break;
    case ROUTE_SMS_SUMMARY:
        sms_summary_handle(app, req, &m);
        break;
    case ROUTE_SMS_OPERATORS:
        sms_http_list(app, req, &sms_operators_list);
        break;
    case ROUTE_SMS_OPERATOR_METRICS:
        sms_http_detail(app, req, &m, &sms_operator_metrics_detail);
        break;
    case ROUTE_SMS_ACCOUNTS:
        sms_http_list(app, req, &sms_accounts_list);
        break;
    case ROUTE_SMS_ACCOUNT_USAGE:
        sms_http_detail(app, req, &m, &sms_account_usage_detail);
        break;
    case ROUTE_EVENTS:
        events_ingest_handle(app, req, &m);
        break;
    case ROUTE_LIVEZ:
        livez_handle(app, req, &m);
        break;
    case ROUTE_READYZ:
        readyz_handle(app, req, &m);
        break;
    case ROUTE_METRICS:
        metrics_handle(app, req, &m);
        break;
    default:
        http_send_error(req, 404, "route was not found");
        break;
    }
}

/* Every request: its id first (on the response, and on every log line written while it is
 * handled; pgpool and redisconn carry it into their callbacks), then routing. */
static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    log_set_request_id(attach_request_id(req));
    dispatch(req);
    log_set_request_id(NULL);
    return 0;
}

/*
 * h2o rejects a declared or chunked body above max_request_entity_size itself, before any
 * handler runs, with a text/plain 413. This filter (on every path, including the fallback)
 * rewrites such a response into the contract's answer: 404/405 first if the path or method
 * would have failed anyway (API.md §1.2 precedence), else the JSON 413.
 */
typedef struct json_error_ostream {
    h2o_ostream_t super;
    h2o_iovec_t body;
} json_error_ostream;

static void json_error_do_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs,
                               size_t bufcnt, h2o_send_state_t state)
{
    (void)bufs;
    (void)bufcnt;
    json_error_ostream *o = (json_error_ostream *)self;
    if (h2o_send_state_is_in_progress(state)) {
        h2o_ostream_send_next(self, req, NULL, 0, state);
        return;
    }
    h2o_ostream_send_next(self, req, &o->body, 1, state);
}

static void on_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    (void)self;
    if (req->res.status == 413 && req->res.reason != NULL &&
        strcmp(req->res.reason, H2O_413_REASON) == 0) {
        route_match m;
        router_status rs =
            router_match(req->method.base, req->method.len, req->path.base, path_length(req), &m);
        int status = rs == ROUTER_NOT_FOUND ? 404 : rs == ROUTER_METHOD_NOT_ALLOWED ? 405 : 413;
        const char *message = status == 404   ? "route was not found"
                              : status == 405 ? "method not allowed"
                                              : "request body too large";
        char body[160];
        int n = snprintf(body, sizeof(body), "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}\n",
                         http_error_code(status), message);
        json_error_ostream *o = (json_error_ostream *)h2o_add_ostream(req, sizeof(*o), slot);
        o->super.do_send = json_error_do_send;
        o->body = h2o_strdup(&req->pool, body, (size_t)n);
        req->res.status = status;
        req->res.reason = status == 404   ? "Not Found"
                          : status == 405 ? "Method Not Allowed"
                                          : "Payload Too Large";
        req->res.content_length = (size_t)n;
        memset(&req->res.headers, 0, sizeof(req->res.headers));
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                       H2O_STRLIT("application/json"));
        if (status == 405)
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, m.allow,
                           strlen(m.allow));
        slot = &o->super.next;
    }
    attach_request_id(req); /* h2o's own answers (413, 400, ...) never went through on_req */
    h2o_setup_next_ostream(req, slot);
}

/* ---- access log (ACCESS_LOG) ------------------------------------------------------------- */

/*
 * One line per request when h2o disposes of it (also for h2o's own answers and for clients
 * that went away): method, path without the query string, status, body bytes sent, duration
 * from the first byte of the request to the last of the response, worker, request id. No
 * header and no body is ever logged.
 */
static void on_log_access(h2o_logger_t *self, h2o_req_t *req)
{
    (void)self;
    struct timeval end = req->timestamps.response_end_at;
    if (h2o_timeval_is_null(&end))
        gettimeofday(&end, NULL);
    int64_t us = (int64_t)(end.tv_sec - req->timestamps.request_begin_at.tv_sec) * 1000000 +
                 (end.tv_usec - req->timestamps.request_begin_at.tv_usec);
    log_access_fields f = {
        .method = req->method.base,
        .method_len = req->method.len,
        .path = req->path.base,
        .path_len = path_length(req),
        .status = req->res.status,
        .bytes = req->bytes_sent,
        .duration_ms = us < 0 ? 0.0 : (double)us / 1000.0,
        .worker = worker->number,
    };
    log_set_request_id(http_request_id(req));
    log_access(&f);
    log_set_request_id(NULL);
}

/* ---- connections, signals, heartbeat ----------------------------------------------------- */

static void maybe_exit(void)
{
    if (worker->draining && worker->connections == 0) {
        log_info("drained; exiting");
        fflush(NULL);
        _exit(EXIT_CHILD_STOPPED);
    }
}

static void set_connections(size_t n)
{
    worker->connections = n;
    atomic_store(&shstate_global->slots[worker->slot].connections, (int32_t)n);
}

static void on_connection_close(void *data)
{
    (void)data;
    set_connections(worker->connections - 1);
    maybe_exit();
}

/*
 * Sharing out connections. Every worker polls the shared listening socket; it stays readable
 * while connections wait, so every worker is woken for each of them. A worker takes up to
 * HTTP_ACCEPT_BATCH per wake-up, but only while it holds at most HTTP_ACCEPT_SLACK connections
 * more than the least loaded ready worker (counts in the shared slots). Above that it returns
 * without accepting, yielding the CPU to the workers that should, and is woken again at once
 * (the socket is still readable): it keeps serving its own connections meanwhile, and takes a
 * connection itself only when one has been left waiting for HTTP_ACCEPT_WAIT_NS (the others
 * are busy or stuck).
 *
 * Without this the first worker to wake drained a burst (a client opening its pool of
 * keep-alive connections: wrk's 64 sometimes all landed on one worker) and served every request
 * on them from one core for as long as they stayed open. Taking one connection per wake-up is
 * not enough (a burst of 256 then took 200 ms to accept under load), and sleeping instead of
 * yielding stalled bursts whenever two workers waited on each other.
 */
static bool above_fair_share(void)
{
    int32_t fewest = shstate_fewest_http_connections(worker->slot);
    return fewest >= 0 && worker->connections > (size_t)fewest + HTTP_ACCEPT_SLACK;
}

/* Accepts one waiting connection; returns false when there was none. */
static bool accept_one(h2o_socket_t *listener)
{
    h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
    if (sock == NULL)
        return false; /* another worker was quicker */
    set_connections(worker->connections + 1);
    sock->on_close.cb = on_connection_close;
    sock->on_close.data = NULL;
    h2o_accept(&worker->accept_ctx, sock);
    return true;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    if (err != NULL)
        return;
    if (above_fair_share()) {
        int64_t now = clock_monotonic_ns();
        if (now - worker->last_left_ns > HTTP_ACCEPT_WAIT_NS)
            worker->leave_since_ns = now; /* a new wait: the last one ended a while ago */
        worker->last_left_ns = now;
        if (now - worker->leave_since_ns < HTTP_ACCEPT_WAIT_NS) {
            sched_yield();
            return;
        }
        worker->leave_since_ns = now; /* left waiting too long: take one, then wait again */
        accept_one(listener);
        return;
    }
    for (int i = 0; i < HTTP_ACCEPT_BATCH && (i == 0 || !above_fair_share()); i++) {
        if (!accept_one(listener))
            break;
    }
}

static void begin_drain(void)
{
    if (worker->draining)
        return;
    worker->draining = 1;
    worker->drain_deadline_ns = clock_monotonic_ns() + worker->app.cfg->http_shutdown_timeout_ns;
    atomic_store(&shstate_global->slots[worker->slot].ready, 0);
    if (worker->listener != NULL) {
        h2o_socket_read_stop(worker->listener);
        h2o_socket_close(worker->listener); /* closes our copy of the shared descriptor */
        worker->listener = NULL;
    }
    h2o_context_request_shutdown(&worker->ctx);
    log_info("draining %zu connection(s)", worker->connections);
    maybe_exit();
}

static void on_signal(h2o_socket_t *sock, const char *err)
{
    (void)err;
    struct signalfd_siginfo si;
    int fd = h2o_socket_get_fd(sock);
    while (read(fd, &si, sizeof(si)) == sizeof(si)) {
        if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
            begin_drain();
    }
}

static void on_tick(h2o_timeout_entry_t *entry)
{
    (void)entry;
    int64_t now = clock_monotonic_ns();
    atomic_store(&shstate_global->slots[worker->slot].heartbeat_ns, now);
    metrics_http_publish(&worker->app);
    if (worker->draining && now >= worker->drain_deadline_ns) {
        log_warn("shutdown grace period over with %zu connection(s) open", worker->connections);
        fflush(NULL);
        _exit(EXIT_CHILD_CRASHED);
    }
    h2o_timeout_link(worker->ctx.loop, &worker->tick_timeout, &worker->tick_entry);
}

/* ---- setup ------------------------------------------------------------------------------- */

/* Any Redis connection failure, timeout or loss makes Redis untrusted for every process. */
static void on_redis_failure(void *data)
{
    (void)data;
    shstate_redis_mark_untrusted("http worker lost its redis connection");
}

static uint64_t ns_to_ms_ceil(int64_t ns)
{
    return (uint64_t)((ns + 999999) / 1000000);
}

static void setup_h2o(const config *cfg)
{
    h2o_config_init(&worker->globalconf);
    worker->globalconf.server_name = h2o_iovec_init(H2O_STRLIT("analyticsd"));
    /* One byte above the largest route limit: h2o's chunked check is ">=", so this lets bodies
     * of exactly that limit through to on_req; larger ones h2o rejects itself (the filter then
     * rewrites its 413); on_req applies each route's own limit (router.h). */
    worker->globalconf.max_request_entity_size = ROUTER_EVENTS_BODY_LIMIT + 1;
    worker->globalconf.http1.req_timeout = ns_to_ms_ceil(cfg->http_read_timeout_ns);
    worker->globalconf.http1.upgrade_to_http2 = 0;
    h2o_hostconf_t *host =
        h2o_config_register_host(&worker->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *paths[2] = {h2o_config_register_path(host, "/", 0), &host->fallback_path};
    for (int i = 0; i < 2; i++) {
        h2o_handler_t *handler = h2o_create_handler(paths[i], sizeof(*handler));
        handler->on_req = on_req;
        metrics_http_register(paths[i]); /* h2o runs the filters last registered first */
        h2o_filter_t *filter = h2o_create_filter(paths[i], sizeof(*filter));
        filter->on_setup_ostream = on_setup_ostream;
        if (cfg->access_log) {
            h2o_logger_t *logger = h2o_create_logger(paths[i], sizeof(*logger));
            logger->log_access = on_log_access;
        }
    }
}

int http_worker_main(const config *cfg, ring_t *ring, int listen_fd, int slot, int number)
{
    worker = xcalloc(1, sizeof(*worker));
    worker->slot = slot;
    worker->number = number;
    request_id_seed(); /* after fork: every worker draws its own ids */
    setup_h2o(cfg);
    h2o_context_init(&worker->ctx, h2o_evloop_create(), &worker->globalconf);
    worker->accept_ctx.ctx = &worker->ctx;
    worker->accept_ctx.hosts = worker->globalconf.hosts;

    worker->app.cfg = cfg;
    worker->app.loop = worker->ctx.loop;
    worker->app.pg = pgpool_create(worker->ctx.loop, cfg->database_url, "http", HTTP_PG_CONNECTIONS,
                                   HTTP_PG_QUEUE);
    worker->app.redis = redisconn_create(worker->ctx.loop, &cfg->redis, on_redis_failure, NULL);
    if (worker->app.redis != NULL)
        worker->app.track = redistrack_create(worker->ctx.loop, &cfg->redis,
                                              (size_t)cfg->report_local_cache_mb << 20);
    worker->app.ring = ring;
    worker->app.catalogue = catalogue_create(&worker->app);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0) {
        log_error("signalfd: %s", strerror(errno));
        return EXIT_CHILD_CRASHED;
    }
    worker->signals = h2o_evloop_socket_create(worker->ctx.loop, sfd, H2O_SOCKET_FLAG_DONT_READ);
    h2o_socket_read_start(worker->signals, on_signal);

    h2o_timeout_init(worker->ctx.loop, &worker->tick_timeout, HTTP_TICK_MS);
    h2o_timeout_init(worker->ctx.loop, &worker->write_timeout,
                     ns_to_ms_ceil(cfg->http_write_timeout_ns));
    worker->tick_entry.cb = on_tick;
    h2o_timeout_link(worker->ctx.loop, &worker->tick_timeout, &worker->tick_entry);

    worker->listener =
        h2o_evloop_socket_create(worker->ctx.loop, listen_fd, H2O_SOCKET_FLAG_DONT_READ);
    h2o_socket_read_start(worker->listener, on_accept);
    metrics_http_listen(&worker->ctx, &worker->app);
    atomic_store(&shstate_global->slots[slot].heartbeat_ns, clock_monotonic_ns());
    atomic_store(&shstate_global->slots[slot].ready, 1);

    /* h2o_evloop_run returns -1 on EINTR; the loop only ends through _exit above. */
    for (;;)
        h2o_evloop_run(worker->ctx.loop, INT32_MAX);
}
