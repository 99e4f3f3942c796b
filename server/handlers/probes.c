/*
 * server/handlers/probes.c: GET /livez and GET /readyz (API.md §8). Runs in HTTP workers.
 *
 * /livez answers 200 {"data":{"status":"alive"}} at once: the worker's event loop runs. It
 * checks no dependency, so a PostgreSQL or Redis outage never makes systemd or an orchestrator
 * restart a healthy process.
 *
 * /readyz answers 200 when this worker can serve reads: its report catalogue is loaded and
 * PostgreSQL answers "SELECT 1" within PROBE_PG_TIMEOUT_MS; otherwise 503 with the failed
 * check marked ({"catalogue":"not_loaded"} or {"postgres":"unavailable"}). Redis is not
 * checked: without it reads fall back to PostgreSQL (API.md §7.1), so the instance is ready.
 *
 * The PostgreSQL check runs on a pool of its own (one connection per worker, opened on the
 * first probe and kept, application_name "...:readyz:<pid>"), never on the request pool: a
 * pool whose queue is full of slow reads would make a healthy database look down, which is
 * exactly when a load balancer must keep the instance. Probes that arrive while a check is in
 * flight wait for its outcome instead of queueing another one, so the probe connection runs at
 * most one statement at a time however many probes arrive.
 *
 * Ownership: the worker's `probes` lives as long as the worker (app->probes, created on first
 * use). Each waiting request is a `probe_waiter` in the request's pool; its dispose hook
 * unlinks it if the client goes away first, so the check's callback never reaches freed memory.
 */
#include "common/json_out.h"
#include "common/util.h"
#include "server/catalogue.h"
#include "server/http_app.h"
#include "server/http_response.h"

#define PROBE_PG_TIMEOUT_MS 1000
#define PROBE_PG_CONNS      1
#define PROBE_PG_QUEUE      1

struct probes {
    pgpool *pg;
    pgpool_query *ping;     /* the check in flight, NULL when none */
    h2o_linklist_t waiters; /* probe_waiter.link, answered when the check ends */
};

typedef struct probe_waiter {
    h2o_linklist_t link;
    h2o_req_t *req;
    http_app *app;
} probe_waiter;

void livez_handle(http_app *app, h2o_req_t *req, const route_match *m)
{
    (void)app;
    (void)m;
    static const char body[] = "{\"data\":{\"status\":\"alive\"}}\n";
    http_send_body(req, 200, body, sizeof(body) - 1);
}

static void readyz_respond(probe_waiter *w, int postgres_ok)
{
    int catalogue_ok = catalogue_is_loaded(w->app->catalogue);
    int ready = catalogue_ok && postgres_ok;
    jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"data\":{\"status\":");
    jbuf_puts(&b, ready ? "\"ready\"" : "\"not_ready\"");
    jbuf_puts(&b, ",\"checks\":{\"catalogue\":");
    jbuf_puts(&b, catalogue_ok ? "\"ok\"" : "\"not_loaded\"");
    jbuf_puts(&b, ",\"postgres\":");
    jbuf_puts(&b, postgres_ok ? "\"ok\"" : "\"unavailable\"");
    jbuf_puts(&b, "}}}");
    http_send_jbuf(w->req, ready ? 200 : 503, &b);
}

/* Answers every waiting probe with the check's outcome. */
static void readyz_finish(struct probes *p, int postgres_ok)
{
    while (!h2o_linklist_is_empty(&p->waiters)) {
        probe_waiter *w = H2O_STRUCT_FROM_MEMBER(probe_waiter, link, p->waiters.next);
        h2o_linklist_unlink(&w->link);
        readyz_respond(w, postgres_ok);
    }
}

static void on_probe_ping(void *data, pgpool_status st)
{
    struct probes *p = data;
    p->ping = NULL;
    readyz_finish(p, st == PGPOOL_OK);
}

static void probe_waiter_dispose(void *data)
{
    probe_waiter *w = data;
    if (h2o_linklist_is_linked(&w->link))
        h2o_linklist_unlink(&w->link);
}

static struct probes *probes_get(http_app *app)
{
    if (app->probes == NULL) {
        app->probes = xcalloc(1, sizeof(*app->probes));
        app->probes->pg = pgpool_create(app->loop, app->cfg->database_url, "readyz", PROBE_PG_CONNS,
                                        PROBE_PG_QUEUE);
        h2o_linklist_init_anchor(&app->probes->waiters);
    }
    return app->probes;
}

void readyz_handle(http_app *app, h2o_req_t *req, const route_match *m)
{
    (void)m;
    struct probes *p = probes_get(app);
    probe_waiter *w = h2o_mem_alloc_shared(&req->pool, sizeof(*w), probe_waiter_dispose);
    memset(w, 0, sizeof(*w));
    w->req = req;
    w->app = app;
    h2o_linklist_insert(&p->waiters, &w->link);
    if (p->ping == NULL) {
        p->ping = pgpool_ping(p->pg, PROBE_PG_TIMEOUT_MS, on_probe_ping, p);
        if (p->ping == NULL) /* cannot happen with one check at a time; answer rather than hang */
            readyz_finish(p, 0);
    }
}
