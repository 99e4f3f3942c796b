/*
 * server/handlers/recomputations.c: the recompute run resource (API.md §4.5–§4.7): trigger
 * (POST /api/v1/recomputations), list (GET /api/v1/recomputations) and get
 * (GET /api/v1/recomputations/{id}). Runs in HTTP workers, after authentication.
 *
 * The trigger is a chain of asynchronous steps, each started from the previous one's callback:
 *
 *   report lookup -> [Redis scope lock: SET NX, on conflict GET + stale check + compare-and-
 *   delete + SET NX once more] -> acquire a connection -> BEGIN -> advisory lock -> INSERT ...
 *   ON CONFLICT DO NOTHING RETURNING -> count pending -> audit INSERT -> COMMIT -> 202
 *
 * (DATA.md §6.8, §7.5). Every early exit that creates no run releases the scope lock if this
 * request took it and gives the connection back, which rolls the transaction back.
 *
 * Pending state lives in the request's pool; its dispose hook (the client went away) cancels
 * whatever is in flight: a pending query or Redis command is cancelled; an acquired connection
 * is closed (PostgreSQL rolls the transaction back) unless COMMIT is already in flight (then the
 * pool waits for it and the run, if committed, keeps its lock); a lock this request holds, or
 * a SET NX still in flight, is released by compare-and-delete on the same Redis connection.
 */
#include "common/dates.h"
#include "common/json_out.h"
#include "common/log.h"
#include "common/params.h"
#include "common/registry.h"
#include "common/runs.h"
#include "common/scopelock.h"
#include "common/shstate.h"
#include "common/util.h"
#include "server/catalogue.h"
#include "server/http_app.h"
#include "server/http_query.h"
#include "server/http_response.h"
#include "server/recompute_body.h"
#include "server/recompute_json.h"

#include <openssl/rand.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- GET /api/v1/recomputations ----------------------------------------------------------- */

void recompute_list_handle(http_app *app, h2o_req_t *req, const route_match *m)
{
    (void)m;
    http_query_list(app, req, runs_list_sql, (const char *const[]){"status", "report_slug", NULL},
                    recompute_json_run, "failed to list recompute runs");
}

/* ---- GET /api/v1/recomputations/{id} ------------------------------------------------------ */

void recompute_get_handle(http_app *app, h2o_req_t *req, const route_match *m)
{
    char id[37];
    if (uuid_parse(m->param, m->param_len, id) != 0) {
        http_send_error(req, 404, "recompute run was not found");
        return;
    }
    const char *params[1] = {id};
    http_query_object(app, req, runs_get_sql, 1, params, recompute_json_run,
                      "recompute run was not found", "internal error");
}

/* ---- POST /api/v1/recomputations ---------------------------------------------------------- */

typedef enum {
    TX_BEGIN,
    TX_LOCK,
    TX_INSERT,
    TX_COUNT,
    TX_AUDIT,
    TX_COMMIT,
} trigger_step;

typedef struct trigger {
    http_app *app;
    h2o_req_t *req;
    pgpool_query *q;    /* pending query or acquire */
    pgpool_conn *conn;  /* acquired connection (transaction) */
    redisconn_cmd *cmd; /* pending Redis command */
    bool set_in_flight; /* cmd is a SET NX with our id: dispose must release */
    bool holds_lock;    /* the scope lock's value is our id */
    int set_attempts;   /* SET NX sent so far (at most 2) */
    trigger_step step;
    char *slug;         /* trimmed report_slug (pool) */
    const char *window; /* "day" or "week" */
    char *requested_by; /* resolved, trimmed (pool), requested_by_len bytes */
    size_t requested_by_len;
    char from[11], to[11];
    char id[37];
    char *key;   /* recompute:lock:... (pool) */
    char *stale; /* value found in a conflicting lock (pool), binary */
    size_t stale_len;
    jbuf run; /* the inserted run, rendered after the INSERT */
} trigger;

static void tx_begin(trigger *t);
static void lock_set(trigger *t);

static void trigger_fail(trigger *t, int status, const char *message)
{
    http_send_error(t->req, status, message);
}

/* Compare-and-delete of the lock whose value is `value`, fire and forget (DATA.md §7.5). */
static void lock_release_value(trigger *t, const char *value)
{
    if (t->app->redis == NULL || !shstate_redis_trusted())
        return;
    scopelock_release_async(t->app->redis, t->key, value, strlen(value), NULL, NULL);
}

static void lock_release_own(trigger *t)
{
    if (t->holds_lock)
        lock_release_value(t, t->id);
    t->holds_lock = false;
}

/* Ends a transaction that creates no run: the connection goes back (rolled back or closed),
 * the lock is released, and the error is answered. */
static void tx_abort(trigger *t, int status, const char *message)
{
    if (t->conn != NULL) {
        pgpool_release(t->conn, status == 500);
        t->conn = NULL;
    }
    lock_release_own(t);
    trigger_fail(t, status, message);
}

static void on_tx_result(void *data, pgpool_status st, PGresult *res);

static void tx_exec(trigger *t, trigger_step step, const char *sql, int nparams,
                    const char *const *params)
{
    t->step = step;
    t->q = pgpool_conn_exec(t->conn, sql, nparams, params, on_tx_result, t);
    if (t->q == NULL)
        tx_abort(t, 500, "failed to create recompute run");
}

static void tx_done(trigger *t)
{
    pgpool_release(t->conn, 0);
    t->conn = NULL;
    t->holds_lock = false; /* the lock now belongs to the pending run */
    ring_status rs = ring_push(t->app->ring, t->id, 2);
    if (rs != RING_OK && rs != RING_FULL && rs != RING_BUSY && rs != RING_DUPLICATE)
        log_warn("run %s not offered to the job ring (status %d)", t->id, (int)rs);
    jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"data\":");
    jbuf_append(&b, t->run.data, t->run.len);
    jbuf_putc(&b, '}');
    jbuf_free(&t->run);
    http_send_jbuf(t->req, 202, &b);
}

static void on_tx_result(void *data, pgpool_status st, PGresult *res)
{
    trigger *t = data;
    t->q = NULL;
    if (st != PGPOOL_OK) {
        tx_abort(t, 500, "failed to create recompute run");
        return;
    }
    switch (t->step) {
    case TX_BEGIN:
        tx_exec(t, TX_LOCK, runs_trigger_lock_sql, 0, NULL);
        return;
    case TX_LOCK: {
        const char *params[6] = {t->id, t->slug, t->window, t->from, t->to, t->requested_by};
        tx_exec(t, TX_INSERT, runs_insert_sql, 6, params);
        return;
    }
    case TX_INSERT:
        if (PQntuples(res) == 0) {
            tx_abort(t, 409, "a recompute run for this scope is already in progress");
            return;
        }
        jbuf_reset(&t->run);
        if (recompute_json_run(&t->run, res, 0, 0) != 0) {
            tx_abort(t, 500, "failed to create recompute run");
            return;
        }
        tx_exec(t, TX_COUNT, runs_pending_count_sql, 0, NULL);
        return;
    case TX_COUNT: {
        if (PQntuples(res) != 1) {
            tx_abort(t, 500, "failed to create recompute run");
            return;
        }
        /* The count includes the new run: above the cap means the backlog was full. */
        if (strtoll(PQgetvalue(res, 0, 0), NULL, 10) > t->app->cfg->recompute_max_pending) {
            tx_abort(t, 503, "recompute queue is full");
            return;
        }
        const char *params[7] = {t->requested_by,        t->id, t->from, t->to, t->slug, t->window,
                                 http_request_id(t->req)};
        tx_exec(t, TX_AUDIT, runs_audit_triggered_sql, 7, params);
        return;
    }
    case TX_AUDIT:
        tx_exec(t, TX_COMMIT, "COMMIT", 0, NULL);
        return;
    case TX_COMMIT:
        tx_done(t);
        return;
    }
}

static void on_acquired(void *data, pgpool_status st, pgpool_conn *conn)
{
    trigger *t = data;
    t->q = NULL;
    if (st != PGPOOL_OK) {
        tx_abort(t, 500, "failed to create recompute run");
        return;
    }
    t->conn = conn;
    tx_exec(t, TX_BEGIN, "BEGIN", 0, NULL);
}

static void tx_begin(trigger *t)
{
    t->q = pgpool_acquire(t->app->pg, on_acquired, t);
    if (t->q == NULL)
        tx_abort(t, 500, "failed to create recompute run");
}

/* ---- scope lock (DATA.md §7.5) ---- */

static void on_stale_released(void *data, redisconn_status st, redisReply *reply)
{
    (void)reply;
    trigger *t = data;
    t->cmd = NULL;
    if (st != REDISCONN_OK) {
        tx_begin(t); /* Redis failed (now untrusted) or refused: go on without the lock */
        return;
    }
    lock_set(t);
}

/* The lock's value names no active run: compare-and-delete that exact value, then SET NX once
 * more (lock_set counts the attempts). */
static void stale_release(trigger *t)
{
    if (t->app->redis == NULL || !shstate_redis_trusted()) {
        tx_begin(t);
        return;
    }
    t->cmd = scopelock_release_async(t->app->redis, t->key, t->stale, t->stale_len,
                                     on_stale_released, t);
}

static void on_stale_checked(void *data, pgpool_status st, PGresult *res)
{
    trigger *t = data;
    t->q = NULL;
    if (st != PGPOOL_OK) {
        trigger_fail(t, 500, "failed to create recompute run");
        return;
    }
    if (PQntuples(res) > 0) {
        trigger_fail(t, 409, "a recompute run for this scope is already in progress");
        return;
    }
    stale_release(t);
}

static void on_lock_value(void *data, redisconn_status st, redisReply *reply)
{
    trigger *t = data;
    t->cmd = NULL;
    if (st != REDISCONN_OK) {
        tx_begin(t); /* failure (now untrusted) or a wrong-type key: the PostgreSQL index decides */
        return;
    }
    if (reply->type == REDIS_REPLY_NIL) {
        lock_set(t); /* expired or released meanwhile */
        return;
    }
    if (reply->type != REDIS_REPLY_STRING) {
        tx_begin(t);
        return;
    }
    t->stale_len = (size_t)reply->len;
    t->stale = h2o_mem_alloc_pool(&t->req->pool, t->stale_len + 1);
    memcpy(t->stale, reply->str, t->stale_len);
    t->stale[t->stale_len] = '\0';
    char holder[37];
    if (uuid_parse(t->stale, t->stale_len, holder) != 0) {
        stale_release(t); /* not a UUID: names no run; PostgreSQL is not asked */
        return;
    }
    const char *params[1] = {holder};
    t->q = pgpool_exec(t->app->pg, runs_active_sql, 1, params, on_stale_checked, t);
    if (t->q == NULL)
        trigger_fail(t, 500, "failed to create recompute run");
}

static void on_lock_set(void *data, redisconn_status st, redisReply *reply)
{
    trigger *t = data;
    t->cmd = NULL;
    t->set_in_flight = false;
    if (st == REDISCONN_UNAVAILABLE || st == REDISCONN_TIMEOUT) {
        tx_begin(t); /* Redis failed: it is untrusted now; continue without the lock */
        return;
    }
    if (reply->type == REDIS_REPLY_STATUS) {
        t->holds_lock = true;
        tx_begin(t);
        return;
    }
    if (reply->type == REDIS_REPLY_NIL) {
        if (t->set_attempts >= 2) {
            trigger_fail(t, 409, "a recompute run for this scope is already in progress");
            return;
        }
        static const char get[] = "GET";
        const char *argv[] = {get, t->key};
        size_t argvlen[] = {3, strlen(t->key)};
        t->cmd = redisconn_command_argv(t->app->redis, 2, argv, argvlen, on_lock_value, t);
        return;
    }
    log_warn("unexpected reply to the scope lock SET; continuing without the lock");
    tx_begin(t);
}

static void lock_set(trigger *t)
{
    if (t->app->redis == NULL || !shstate_redis_trusted()) {
        tx_begin(t);
        return;
    }
    int64_t ttl_ns = t->app->cfg->recompute_lock_ttl_ns;
    char ttl[24];
    const char *unit;
    if (ttl_ns % 1000000000 == 0) {
        unit = "EX";
        snprintf(ttl, sizeof(ttl), "%lld", (long long)(ttl_ns / 1000000000));
    } else {
        int64_t ms = ttl_ns / 1000000;
        unit = "PX";
        snprintf(ttl, sizeof(ttl), "%lld", (long long)(ms < 1 ? 1 : ms));
    }
    const char *argv[] = {"SET", t->key, t->id, "NX", unit, ttl};
    size_t argvlen[] = {3, strlen(t->key), 36, 2, 2, strlen(ttl)};
    t->set_attempts++;
    t->set_in_flight = true;
    t->cmd = redisconn_command_argv(t->app->redis, 6, argv, argvlen, on_lock_set, t);
}

/* ---- entry, validation (API.md §4.5 steps 2–8) and dispose ---- */

static void trigger_dispose(void *p)
{
    trigger *t = p;
    if (t->cmd != NULL) {
        redisconn_cancel(t->cmd);
        t->cmd = NULL;
        if (t->set_in_flight)
            t->holds_lock = true; /* it may still succeed: release after it, same connection */
    }
    if (t->conn != NULL) {
        if (t->step == TX_COMMIT) {
            /* The commit may take effect: let the pool finish it; a committed run keeps its
             * lock (and a lock left without a run is stale by §7.5). */
            pgpool_release(t->conn, 0);
            t->holds_lock = false;
        } else {
            pgpool_release(t->conn, 1); /* closing the session rolls the transaction back */
        }
        t->conn = NULL;
        t->q = NULL;
    } else if (t->q != NULL) {
        pgpool_cancel(t->q);
        t->q = NULL;
    }
    lock_release_own(t);
    jbuf_free(&t->run);
}

static void on_report_found(void *data, pgpool_status st, PGresult *res)
{
    trigger *t = data;
    t->q = NULL;
    if (st != PGPOOL_OK) {
        trigger_fail(t, 500, "internal error");
        return;
    }
    if (PQntuples(res) == 0) {
        trigger_fail(t, 404, "report was not found");
        return;
    }
    /* Step 8: requested_by from the body, else X-Actor (first occurrence), else the default. */
    if (t->requested_by == NULL) {
        ssize_t i = h2o_find_header_by_str(&t->req->headers, H2O_STRLIT("x-actor"), -1);
        if (i >= 0) {
            const h2o_iovec_t *v = &t->req->headers.entries[i].value;
            size_t start, len;
            text_trim(v->base, v->len, &start, &len);
            if (len > 0) {
                t->requested_by = h2o_strdup(&t->req->pool, v->base + start, len).base;
                t->requested_by_len = len;
            }
        }
        if (t->requested_by == NULL) {
            t->requested_by = "management-api";
            t->requested_by_len = strlen(t->requested_by);
        }
    }
    /* Valid text has no U+0000, so the value is also a proper C string for libpq. */
    if (!text_requested_by_valid(t->requested_by, t->requested_by_len)) {
        trigger_fail(t, 400, "requested_by is invalid");
        return;
    }
    unsigned char r[16];
    if (RAND_bytes(r, sizeof(r)) != 1) {
        log_error("RAND_bytes failed; cannot generate a run id");
        trigger_fail(t, 500, "failed to create recompute run");
        return;
    }
    r[6] = (unsigned char)((r[6] & 0x0F) | 0x40); /* version 4 */
    r[8] = (unsigned char)((r[8] & 0x3F) | 0x80); /* RFC 4122 variant */
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            t->id[o++] = '-';
        t->id[o++] = hex[r[i] >> 4];
        t->id[o++] = hex[r[i] & 0x0F];
    }
    t->id[o] = '\0';
    lock_set(t);
}

/* Copies the trimmed text of v into the pool (NUL-terminated; *len bytes, which may include NUL
 * bytes); NULL when absent or blank. */
static char *trimmed_copy(h2o_req_t *req, const recompute_body_str *v, size_t *len)
{
    size_t start, n;
    *len = 0;
    if (v->s == NULL)
        return NULL;
    text_trim(v->s, v->len, &start, &n);
    if (n == 0)
        return NULL;
    *len = n;
    return h2o_strdup(&req->pool, v->s + start, n).base;
}

void recompute_trigger_handle(http_app *app, h2o_req_t *req, const route_match *m)
{
    (void)m;
    recompute_body body;
    if (recompute_body_decode(req->entity.base, req->entity.base == NULL ? 0 : req->entity.len,
                              &body) != 0) {
        http_send_error(req, 400, "invalid JSON body");
        return;
    }
    trigger *t = h2o_mem_alloc_shared(&req->pool, sizeof(*t), trigger_dispose);
    memset(t, 0, sizeof(*t));
    t->app = app;
    t->req = req;
    jbuf_init(&t->run);

    size_t slug_len;
    t->slug = trimmed_copy(req, &body.report_slug, &slug_len);
    t->requested_by = trimmed_copy(req, &body.requested_by, &t->requested_by_len);
    int32_t from, to;
    date_range_status ds = date_range_resolve(body.date_from.s, body.date_from.len, body.date_to.s,
                                              body.date_to.len, date_today_utc(), &from, &to);
    int window_ok = param_window(body.window.s, body.window.len, &t->window) == 0;
    recompute_body_free(&body);

    if (t->slug == NULL) {
        http_send_error(req, 400, "report_slug is required");
        return;
    }
    if (ds != DATE_RANGE_OK) {
        http_send_error(req, 400, date_range_message(ds));
        return;
    }
    if (!window_ok) {
        http_send_error(req, 400, registry_window_message(0));
        return;
    }
    if (date_span_days(from, to) > app->cfg->max_report_range_days) {
        char msg[64];
        snprintf(msg, sizeof(msg), "date range exceeds %lld days",
                 (long long)app->cfg->max_report_range_days);
        http_send_error(req, 400, msg);
        return;
    }
    if (!text_is_matchable(t->slug, slug_len)) {
        http_send_error(req, 404, "report was not found"); /* step 7 without a query (§2.3) */
        return;
    }
    date_format(from, t->from);
    date_format(to, t->to);
    size_t key_cap = slug_len + 64;
    t->key = h2o_mem_alloc_pool(&req->pool, key_cap);
    scopelock_key(t->key, key_cap, t->slug, t->window, from, to);
    const char *params[1] = {t->slug};
    t->q = pgpool_exec(app->pg, CATALOGUE_PUBLIC_SQL, 1, params, on_report_found, t);
    if (t->q == NULL)
        http_send_error(req, 500, "internal error");
}
