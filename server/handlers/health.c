/*
 * server/handlers/health.c: GET /api/v1/health (API.md §4.1). Runs in HTTP workers.
 *
 * PostgreSQL is checked first, then Redis, each with its own 1 s limit, both without blocking
 * the event loop. NATS (when configured) is what the ingest workers last reported in shared
 * state. The pending check lives in the request's pool; if the client goes away, the
 * pool's dispose hook cancels whatever is still in flight, so no callback reaches freed memory.
 */
#include "common/json_out.h"
#include "common/shstate.h"
#include "common/util.h"
#include "server/http_app.h"
#include "server/http_response.h"

#define HEALTH_CHECK_MS 1000

typedef struct health_check {
    http_app *app;
    h2o_req_t *req;
    pgpool_query *pg;
    redisconn_cmd *redis;
    int postgres_ok;
} health_check;

static void health_respond(health_check *h, int redis_ok)
{
    int ok = h->postgres_ok && redis_ok;
    jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"data\":{\"status\":");
    jbuf_puts(&b, ok ? "\"ok\"" : "\"degraded\"");
    jbuf_puts(&b, ",\"service\":\"pg-analytics-service\",\"version\":");
    jout_string(&b, h->app->cfg->app_version, strlen(h->app->cfg->app_version));
    jbuf_puts(&b, ",\"timestamp\":");
    int64_t now = clock_realtime_ns();
    jout_timestamp(&b, now / 1000000000, (int32_t)(now % 1000000000));
    jbuf_puts(&b, ",\"dependencies\":{\"postgres\":");
    jbuf_puts(&b, h->postgres_ok ? "\"ok\"" : "\"unavailable\"");
    jbuf_puts(&b, ",\"redis\":");
    jbuf_puts(&b, redis_ok ? "\"ok\"" : "\"unavailable\"");
    if (h->app->cfg->nats_url != NULL) { /* SMS.md §4: reported, never a reason for 503 */
        jbuf_puts(&b, ",\"nats\":");
        jbuf_puts(&b, shstate_nats_connected() ? "\"ok\"" : "\"unavailable\"");
    }
    jbuf_puts(&b, "}}}");
    http_send_jbuf(h->req, ok ? 200 : 503, &b);
}

static void on_redis_pong(void *data, redisconn_status st, redisReply *reply)
{
    health_check *h = data;
    h->redis = NULL;
    health_respond(h, st == REDISCONN_OK && reply->type == REDIS_REPLY_STATUS);
}

static void on_postgres_ping(void *data, pgpool_status st)
{
    health_check *h = data;
    h->pg = NULL;
    h->postgres_ok = st == PGPOOL_OK;
    static const char *argv[] = {"PING"};
    static const size_t argvlen[] = {4};
    h->redis = h->app->redis == NULL
                   ? NULL
                   : redisconn_command_argv(h->app->redis, 1, argv, argvlen, on_redis_pong, h);
    if (h->redis == NULL)
        health_respond(h, 0);
}

static void health_dispose(void *p)
{
    health_check *h = p;
    if (h->pg != NULL)
        pgpool_cancel(h->pg);
    if (h->redis != NULL)
        redisconn_cancel(h->redis);
}

void health_handle(http_app *app, h2o_req_t *req, const route_match *m)
{
    (void)m;
    health_check *h = h2o_mem_alloc_shared(&req->pool, sizeof(*h), health_dispose);
    memset(h, 0, sizeof(*h));
    h->app = app;
    h->req = req;
    h->pg = pgpool_ping(app->pg, HEALTH_CHECK_MS, on_postgres_ping, h);
    if (h->pg == NULL) /* the pool's wait queue is full: no answer within the limit either */
        on_postgres_ping(h, PGPOOL_UNAVAILABLE);
}
