/*
 * common/pgpool.c: the asynchronous PostgreSQL pool of the HTTP worker processes (see
 * pgpool.h). Runs on the worker's h2o event loop; every libpq call here is non-blocking.
 *
 * Shape: each libpq connection (pgpool_conn) is wrapped in an h2o socket made from a dup()ed,
 * CLOEXEC copy of PQsocket with H2O_SOCKET_FLAG_DONT_READ, so h2o only reports readiness and
 * libpq does the I/O. The h2o socket is always closed before PQfinish (each closes its own fd).
 * A connection runs one statement at a time; `done` says who consumes its result (session
 * setup, a user query, a ROLLBACK). Requests that find no idle connection wait in a FIFO;
 * pump() hands them to idle connections and opens new ones. Every request carries one h2o
 * timeout entry: its deadline, or, once decided, a zero-delay entry that delivers the outcome
 * from the loop (callbacks never run inside the call that registered them).
 *
 * Causes (pgpool_status): a statement's consumer gets PGPOOL_OK or PGPOOL_STATEMENT_ERROR from
 * conn_collect (the first error result is kept for it); query_done turns an error into
 * PGPOOL_UNAVAILABLE when the connection went bad with it. A request's deadline gives
 * PGPOOL_TIMEOUT (on_query_deadline); every other failure (no connection, back-off, lost or
 * broken connection, send failure) is PGPOOL_UNAVAILABLE.
 *
 * Log context: a request carries the log request id that was current when it was submitted
 * (log.h; the HTTP request it works for) and restores it while its callback runs and while a
 * failure of its statement is logged, so those lines name the HTTP request.
 */
#include "common/pgpool.h"

#include "common/log.h"
#include "common/pgsession.h"
#include "common/util.h"

#include <assert.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 1000

enum conn_state { CS_CONNECTING, CS_SETUP, CS_READY, CS_BROKEN };
/* POOLED: idle or running a pgpool_exec/ping; SESSION: acquired by a caller; RESETTING: a
 * released session running its ROLLBACK. */
enum conn_role { CR_POOLED, CR_SESSION, CR_RESETTING };
enum query_kind { QK_EXEC, QK_ACQUIRE, QK_PING };
/* QUEUED: in the wait queue; INFLIGHT: statement sent on q->conn; DEFERRED: outcome decided,
 * delivered from a zero-delay timeout; DELIVERING: its callback is running. */
enum query_state { QS_QUEUED, QS_INFLIGHT, QS_DEFERRED, QS_DELIVERING };

/* st: PGPOOL_OK with the final result, or PGPOOL_STATEMENT_ERROR with the first error result;
 * res is the consumer's to PQclear. */
typedef void (*stmt_done_fn)(pgpool_conn *c, pgpool_status st, PGresult *res);

typedef struct pgpool_timeout {
    struct pgpool_timeout *next;
    uint64_t ms;
    h2o_timeout_t t;
} pgpool_timeout;

struct pgpool_conn {
    h2o_linklist_t link;      /* pool->conns (every connection, until freed) */
    h2o_linklist_t idle_link; /* pool->idle */
    pgpool *pool;
    PGconn *pg;
    h2o_socket_t *sock;
    dev_t sock_dev; /* identity of the socket that sock watches */
    ino_t sock_ino;
    enum conn_state state;
    enum conn_role role;
    stmt_done_fn done;         /* statement in flight, NULL when idle */
    PGresult *res;             /* last good result, or the first error result, of that statement */
    int res_failed;            /* res is an error result */
    pgpool_query *q;           /* user statement in flight (or decided, on a broken session) */
    int releasing;             /* session released while its statement was in flight */
    h2o_timeout_entry_t timer; /* connect limit, or ROLLBACK deadline */
};

struct pgpool_query {
    h2o_linklist_t link;      /* pool->queries */
    h2o_linklist_t wait_link; /* pool->queue */
    pgpool *pool;
    enum query_kind kind;
    enum query_state state;
    char *sql;
    int nparams;
    char **params;
    pgpool_cb cb;
    pgpool_acquire_cb acquire_cb;
    pgpool_ping_cb ping_cb;
    void *data;
    pgpool_conn *conn;
    int cancelled;
    h2o_timeout_entry_t timer;
    char rid[LOG_REQUEST_ID_MAX + 1]; /* log request id at submission, "" for none */
};

struct pgpool {
    h2o_loop_t *loop;
    char *url;
    char *setup_sql;
    pgsession_params params;
    uint64_t connect_ms;
    uint64_t deadline_ms;
    size_t max_conns, max_queue;
    size_t nconns;     /* pooled connections open or opening (not broken) */
    size_t connecting; /* of which still connecting or running the setup */
    size_t queue_len;
    h2o_linklist_t conns, idle, queue, queries;
    unsigned fail_streak;
    uint64_t retry_at; /* no new connection attempt before this (h2o_now ms) */
    pgpool_timeout *timeouts;
};

static void pump(pgpool *p);
static void conn_abandon(pgpool_conn *c);
static void connect_failed(pgpool_conn *c, const char *why);

/* ---- small helpers ------------------------------------------------------------------------ */

static void log_pg(const char *what, const char *msg)
{
    if (msg == NULL || *msg == '\0')
        msg = "(no message)";
    log_warn("%s: %.*s", what, (int)strcspn(msg, "\n"), msg);
}

/* log_pg about the statement of q (may be NULL), under q's log request id. */
static void log_pg_query(const pgpool_query *q, const char *what, const char *msg)
{
    char saved[LOG_REQUEST_ID_MAX + 1];
    log_push_request_id(q != NULL && !q->cancelled ? q->rid : NULL, saved);
    log_pg(what, msg);
    log_set_request_id(saved);
}

static void on_notice(void *arg, const char *message)
{
    (void)arg;
    log_pg("postgres notice", message);
}

/* h2o needs one h2o_timeout_t per duration; they are created on first use. */
static h2o_timeout_t *pool_timeout(pgpool *p, uint64_t ms)
{
    for (pgpool_timeout *t = p->timeouts; t != NULL; t = t->next)
        if (t->ms == ms)
            return &t->t;
    pgpool_timeout *t = xcalloc(1, sizeof(*t));
    t->ms = ms;
    h2o_timeout_init(p->loop, &t->t, ms);
    t->next = p->timeouts;
    p->timeouts = t;
    return &t->t;
}

static void arm(pgpool *p, h2o_timeout_entry_t *e, uint64_t ms, h2o_timeout_cb cb)
{
    h2o_timeout_unlink(e);
    e->cb = cb;
    h2o_timeout_link(p->loop, pool_timeout(p, ms), e);
}

static int in_backoff(pgpool *p)
{
    return p->retry_at != 0 && h2o_now(p->loop) < p->retry_at;
}

static void backoff_bump(pgpool *p)
{
    uint64_t d = (uint64_t)BACKOFF_MIN_MS << (p->fail_streak < 8 ? p->fail_streak : 8);
    if (d > BACKOFF_MAX_MS)
        d = BACKOFF_MAX_MS;
    p->fail_streak++;
    p->retry_at = h2o_now(p->loop) + d;
}

/* ---- requests ----------------------------------------------------------------------------- */

static pgpool_query *query_new(pgpool *p, enum query_kind kind, const char *sql, int nparams,
                               const char *const *params, void *data)
{
    pgpool_query *q = xcalloc(1, sizeof(*q));
    q->pool = p;
    q->kind = kind;
    q->sql = sql != NULL ? xstrdup(sql) : NULL;
    q->nparams = nparams > 0 ? nparams : 0;
    if (q->nparams > 0) {
        q->params = xcalloc((size_t)q->nparams, sizeof(char *));
        for (int i = 0; i < q->nparams; i++)
            q->params[i] = params[i] != NULL ? xstrdup(params[i]) : NULL;
    }
    q->data = data;
    strcpy(q->rid, log_request_id());
    h2o_linklist_insert(&p->queries, &q->link);
    return q;
}

static void query_free(pgpool_query *q)
{
    h2o_timeout_unlink(&q->timer);
    if (h2o_linklist_is_linked(&q->wait_link)) {
        h2o_linklist_unlink(&q->wait_link);
        q->pool->queue_len--;
    }
    h2o_linklist_unlink(&q->link);
    for (int i = 0; i < q->nparams; i++)
        free(q->params[i]);
    free(q->params);
    free(q->sql);
    free(q);
}

/* Calls q's callback (unless cancelled) with st and res, then frees q. res stays the
 * caller's. An acquire finished here failed (its success goes through on_query_deferred). */
static void query_finish(pgpool_query *q, pgpool_status st, PGresult *res)
{
    char saved[LOG_REQUEST_ID_MAX + 1];
    log_push_request_id(q->rid, saved);
    if (!q->cancelled) {
        q->state = QS_DELIVERING;
        switch (q->kind) {
        case QK_EXEC:
            q->cb(q->data, st, res);
            break;
        case QK_PING:
            q->ping_cb(q->data, st);
            break;
        case QK_ACQUIRE:
            assert(st != PGPOOL_OK);
            q->acquire_cb(q->data, st, NULL);
            break;
        }
    }
    query_free(q);
    log_set_request_id(saved);
}

static void on_query_deferred(h2o_timeout_entry_t *e)
{
    pgpool_query *q = H2O_STRUCT_FROM_MEMBER(pgpool_query, timer, e);
    pgpool_conn *c = q->conn;
    q->conn = NULL;
    if (q->kind == QK_ACQUIRE && c != NULL) {
        char saved[LOG_REQUEST_ID_MAX + 1];
        q->state = QS_DELIVERING;
        log_push_request_id(q->rid, saved);
        q->acquire_cb(q->data, PGPOOL_OK, c);
        query_free(q);
        log_set_request_id(saved);
        return;
    }
    if (c != NULL && c->q == q)
        c->q = NULL;
    query_finish(q, PGPOOL_UNAVAILABLE, NULL);
}

/* Decides q's outcome now (PGPOOL_UNAVAILABLE, or for an acquire with q->conn set, success)
 * and delivers it from the loop. */
static void query_defer(pgpool_query *q)
{
    if (h2o_linklist_is_linked(&q->wait_link)) {
        h2o_linklist_unlink(&q->wait_link);
        q->pool->queue_len--;
    }
    q->state = QS_DEFERRED;
    arm(q->pool, &q->timer, 0, on_query_deferred);
}

static void on_query_deadline(h2o_timeout_entry_t *e)
{
    pgpool_query *q = H2O_STRUCT_FROM_MEMBER(pgpool_query, timer, e);
    pgpool *p = q->pool;
    if (q->state == QS_INFLIGHT) {
        pgpool_conn *c = q->conn;
        log_pg_query(q, "postgres statement passed its client deadline", "closing its connection");
        c->q = NULL;
        q->conn = NULL;
        conn_abandon(c);
    }
    query_finish(q, PGPOOL_TIMEOUT, NULL);
    pump(p);
}

/* ---- connections: lifetime ---------------------------------------------------------------- */

static void conn_close_pg(pgpool_conn *c)
{
    if (c->sock != NULL) {
        h2o_socket_close(c->sock); /* closes our dup; libpq's fd is closed by PQfinish */
        c->sock = NULL;
    }
    if (c->pg != NULL) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    h2o_timeout_unlink(&c->timer);
    if (h2o_linklist_is_linked(&c->idle_link))
        h2o_linklist_unlink(&c->idle_link);
    PQclear(c->res);
    c->res = NULL;
    c->done = NULL;
}

/* Removes c from the pool's counters (once). */
static void conn_uncount(pgpool_conn *c)
{
    pgpool *p = c->pool;
    if (c->state == CS_BROKEN)
        return;
    if (c->state == CS_CONNECTING || c->state == CS_SETUP)
        p->connecting--;
    p->nconns--;
}

/* Closes and frees c. Its statement, if any, must have been detached. */
static void conn_drop(pgpool_conn *c)
{
    assert(c->q == NULL);
    conn_uncount(c);
    conn_close_pg(c);
    h2o_linklist_unlink(&c->link);
    free(c);
}

/* Closes an acquired connection but keeps the struct for its owner until pgpool_release. */
static void conn_break(pgpool_conn *c)
{
    conn_uncount(c);
    conn_close_pg(c);
    c->state = CS_BROKEN;
}

static void conn_make_idle(pgpool_conn *c)
{
    c->role = CR_POOLED;
    h2o_linklist_insert(&c->pool->idle, &c->idle_link);
}

/* (Re)wraps PQsocket in an h2o socket if libpq switched sockets. */
static int conn_wrap(pgpool_conn *c)
{
    struct stat st;
    int fd = PQsocket(c->pg);
    if (fd < 0 || fstat(fd, &st) != 0)
        return -1;
    if (c->sock != NULL && st.st_dev == c->sock_dev && st.st_ino == c->sock_ino)
        return 0;
    if (c->sock != NULL) {
        h2o_socket_close(c->sock);
        c->sock = NULL;
    }
    int dupfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dupfd < 0)
        return -1;
    c->sock = h2o_evloop_socket_create(c->pool->loop, dupfd, H2O_SOCKET_FLAG_DONT_READ);
    c->sock->data = c;
    c->sock_dev = st.st_dev;
    c->sock_ino = st.st_ino;
    return 0;
}

/* ---- connections: statements -------------------------------------------------------------- */

static void on_sock_write(h2o_socket_t *sock, const char *err);

static int conn_flush(pgpool_conn *c)
{
    int r = PQflush(c->pg);
    if (r < 0)
        return -1;
    if (r > 0 && !h2o_socket_is_writing(c->sock))
        h2o_socket_notify_write(c->sock, on_sock_write);
    return 0;
}

/* Sends sql (nparams < 0: simple protocol, several statements allowed). */
static int conn_send(pgpool_conn *c, const char *sql, int nparams, char *const *params,
                     stmt_done_fn done)
{
    int ok = nparams < 0 ? PQsendQuery(c->pg, sql)
                         : PQsendQueryParams(c->pg, sql, nparams, NULL, (const char *const *)params,
                                             NULL, NULL, 0);
    if (!ok || conn_flush(c) != 0) {
        log_pg("postgres send failed", PQerrorMessage(c->pg));
        return -1;
    }
    c->done = done;
    c->res = NULL;
    c->res_failed = 0;
    return 0;
}

static void conn_failed(pgpool_conn *c, const char *why)
{
    if (c->state == CS_CONNECTING || c->state == CS_SETUP) {
        connect_failed(c, why);
        return;
    }
    log_pg("postgres connection lost", why);
    conn_abandon(c);
}

/* The statement has returned all its results: hand the outcome to its consumer. A statement
 * without any result (libpq gives at least one for every statement) is a broken protocol. */
static void conn_stmt_complete(pgpool_conn *c)
{
    stmt_done_fn done = c->done;
    PGresult *res = c->res;
    pgpool_status st = c->res_failed ? PGPOOL_STATEMENT_ERROR : PGPOOL_OK;
    if (res == NULL) {
        conn_failed(c, "statement returned no result");
        return;
    }
    c->done = NULL;
    c->res = NULL;
    c->res_failed = 0;
    done(c, st, res);
}

/* Collects whatever results libpq has parsed. Returns -1 if c is gone. */
static int conn_collect(pgpool_conn *c)
{
    while (c->done != NULL && !PQisBusy(c->pg)) {
        PGresult *r = PQgetResult(c->pg);
        if (r == NULL) {
            conn_stmt_complete(c);
            return -1; /* the consumer may have freed or reused c */
        }
        switch (PQresultStatus(r)) {
        case PGRES_TUPLES_OK:
        case PGRES_COMMAND_OK:
        case PGRES_EMPTY_QUERY:
            if (c->res_failed) {
                PQclear(r);
            } else {
                PQclear(c->res);
                c->res = r;
            }
            break;
        case PGRES_COPY_IN:
        case PGRES_COPY_OUT:
        case PGRES_COPY_BOTH:
            PQclear(r);
            conn_failed(c, "COPY is not supported");
            return -1;
        default:
            if (c->res_failed) {
                PQclear(r); /* the first error is the cause */
                break;
            }
            log_pg_query(c->q, "postgres statement failed", PQresultErrorMessage(r));
            c->res_failed = 1;
            PQclear(c->res);
            c->res = r;
            break;
        }
    }
    return 0;
}

static void conn_connect_poll(pgpool_conn *c);

static void on_sock_read(h2o_socket_t *sock, const char *err)
{
    pgpool_conn *c = sock->data;
    (void)err; /* DONT_READ sockets report readiness only; libpq finds the error itself */
    if (c->state == CS_CONNECTING) {
        conn_connect_poll(c);
        return;
    }
    if (!PQconsumeInput(c->pg)) {
        conn_failed(c, PQerrorMessage(c->pg));
        return;
    }
    if (c->done != NULL && conn_flush(c) != 0) {
        conn_failed(c, PQerrorMessage(c->pg));
        return;
    }
    if (conn_collect(c) != 0)
        return;
    if (PQstatus(c->pg) == CONNECTION_BAD)
        conn_failed(c, PQerrorMessage(c->pg));
}

static void on_sock_write(h2o_socket_t *sock, const char *err)
{
    pgpool_conn *c = sock->data;
    (void)err;
    if (c->state == CS_CONNECTING) {
        conn_connect_poll(c);
        return;
    }
    if (conn_flush(c) != 0)
        conn_failed(c, PQerrorMessage(c->pg));
}

static void on_conn_timer(h2o_timeout_entry_t *e)
{
    pgpool_conn *c = H2O_STRUCT_FROM_MEMBER(pgpool_conn, timer, e);
    if (c->state == CS_CONNECTING || c->state == CS_SETUP)
        connect_failed(c, "connection attempt timed out");
    else
        conn_failed(c, "statement timed out");
}

/* The connection cannot be used any more (lost, or its statement passed its deadline). */
static void conn_abandon(pgpool_conn *c)
{
    pgpool *p = c->pool;
    pgpool_query *q = c->q;
    c->q = NULL;
    if (c->role == CR_SESSION && !c->releasing)
        conn_break(c);
    else
        conn_drop(c);
    if (q != NULL) {
        q->conn = NULL;
        query_finish(q, PGPOOL_UNAVAILABLE, NULL);
    }
    pump(p);
}

/* A released session (or a pooled connection left inside a transaction) with nothing in
 * flight: make it clean again, then idle. */
static void rollback_done(pgpool_conn *c, pgpool_status st, PGresult *res);

static void conn_reset(pgpool_conn *c)
{
    c->releasing = 0;
    switch (PQtransactionStatus(c->pg)) {
    case PQTRANS_IDLE:
        conn_make_idle(c);
        return;
    case PQTRANS_INTRANS:
    case PQTRANS_INERROR:
        c->role = CR_RESETTING;
        if (conn_send(c, "ROLLBACK", -1, NULL, rollback_done) == 0) {
            arm(c->pool, &c->timer, c->pool->deadline_ms, on_conn_timer);
            return;
        }
        break;
    default:
        break;
    }
    conn_drop(c);
}

static void rollback_done(pgpool_conn *c, pgpool_status st, PGresult *res)
{
    pgpool *p = c->pool;
    h2o_timeout_unlink(&c->timer);
    if (st == PGPOOL_OK && PQstatus(c->pg) == CONNECTION_OK &&
        PQtransactionStatus(c->pg) == PQTRANS_IDLE)
        conn_make_idle(c);
    else
        conn_drop(c);
    PQclear(res);
    pump(p);
}

/* A statement error that came with the loss of the connection (the server ended the session,
 * or libpq's own "server closed the connection" result) says the connection is gone, not that
 * the statement is wrong: PGPOOL_UNAVAILABLE. */
static void query_done(pgpool_conn *c, pgpool_status st, PGresult *res)
{
    pgpool *p = c->pool;
    pgpool_query *q = c->q;
    c->q = NULL;
    int bad = PQstatus(c->pg) != CONNECTION_OK;
    if (c->role == CR_POOLED) {
        if (bad)
            conn_drop(c);
        else
            conn_reset(c);
    } else if (c->role == CR_SESSION) {
        if (bad && c->releasing)
            conn_drop(c);
        else if (bad)
            conn_break(c);
        else if (c->releasing)
            conn_reset(c);
    }
    if (q != NULL) {
        q->conn = NULL;
        if (bad && st != PGPOOL_OK)
            query_finish(q, PGPOOL_UNAVAILABLE, NULL);
        else
            query_finish(q, st, res);
    }
    PQclear(res);
    pump(p);
}

static int conn_start_query(pgpool_conn *c, pgpool_query *q)
{
    c->q = q;
    q->conn = c;
    q->state = QS_INFLIGHT;
    if (conn_send(c, q->sql, q->nparams, q->params, query_done) != 0) {
        c->q = NULL;
        q->conn = NULL;
        return -1;
    }
    return 0;
}

/* ---- connections: connecting -------------------------------------------------------------- */

static void setup_done(pgpool_conn *c, pgpool_status st, PGresult *res)
{
    pgpool *p = c->pool;
    PQclear(res);
    if (st != PGPOOL_OK) {
        connect_failed(c, "session setup failed");
        return;
    }
    h2o_timeout_unlink(&c->timer);
    c->state = CS_READY;
    p->connecting--;
    p->fail_streak = 0;
    p->retry_at = 0;
    conn_make_idle(c);
    pump(p);
}

static void conn_connected(pgpool_conn *c)
{
    if (PQsetnonblocking(c->pg, 1) != 0 || conn_wrap(c) != 0) {
        connect_failed(c, PQerrorMessage(c->pg));
        return;
    }
    h2o_socket_read_start(c->sock, on_sock_read);
    c->state = CS_SETUP;
    if (conn_send(c, c->pool->setup_sql, -1, NULL, setup_done) != 0)
        connect_failed(c, PQerrorMessage(c->pg));
}

static void conn_connect_poll(pgpool_conn *c)
{
    for (;;) {
        switch (PQconnectPoll(c->pg)) {
        case PGRES_POLLING_OK:
            conn_connected(c);
            return;
        case PGRES_POLLING_READING:
            if (conn_wrap(c) != 0)
                break;
            h2o_socket_read_start(c->sock, on_sock_read);
            return;
        case PGRES_POLLING_WRITING:
            if (conn_wrap(c) != 0)
                break;
            h2o_socket_read_start(c->sock, on_sock_read);
            if (!h2o_socket_is_writing(c->sock))
                h2o_socket_notify_write(c->sock, on_sock_write);
            return;
        case PGRES_POLLING_ACTIVE:
            continue;
        default:
            break;
        }
        connect_failed(c, PQerrorMessage(c->pg));
        return;
    }
}

/* Starts a pooled connection attempt. Returns NULL if it failed at once. */
static pgpool_conn *conn_start(pgpool *p)
{
    pgpool_conn *c = xcalloc(1, sizeof(*c));
    c->pool = p;
    c->state = CS_CONNECTING;
    c->role = CR_POOLED;
    h2o_linklist_insert(&p->conns, &c->link);
    p->nconns++;
    p->connecting++;
    c->pg = PQconnectStartParams(p->params.keywords, p->params.values, 1);
    if (c->pg == NULL || PQstatus(c->pg) == CONNECTION_BAD || conn_wrap(c) != 0) {
        log_pg("postgres connection failed", c->pg ? PQerrorMessage(c->pg) : "out of memory");
        conn_drop(c);
        return NULL;
    }
    PQsetNoticeProcessor(c->pg, on_notice, NULL);
    arm(p, &c->timer, p->connect_ms, on_conn_timer);
    /* libpq: behave as if PQconnectPoll last returned PGRES_POLLING_WRITING */
    h2o_socket_notify_write(c->sock, on_sock_write);
    return c;
}

static void connect_failed(pgpool_conn *c, const char *why)
{
    pgpool *p = c->pool;
    log_pg("postgres connection failed", why);
    conn_drop(c);
    backoff_bump(p);
    pump(p); /* fails the requests that no remaining attempt will serve */
}

/* ---- the wait queue ----------------------------------------------------------------------- */

static void pump(pgpool *p)
{
    while (!h2o_linklist_is_empty(&p->queue) && !h2o_linklist_is_empty(&p->idle)) {
        pgpool_query *q = H2O_STRUCT_FROM_MEMBER(pgpool_query, wait_link, p->queue.next);
        pgpool_conn *c = H2O_STRUCT_FROM_MEMBER(pgpool_conn, idle_link, p->idle.next);
        h2o_linklist_unlink(&c->idle_link);
        h2o_linklist_unlink(&q->wait_link);
        p->queue_len--;
        if (q->kind == QK_ACQUIRE) {
            c->role = CR_SESSION;
            q->conn = c;
            query_defer(q);
        } else if (conn_start_query(c, q) != 0) {
            /* unusable connection: close it and give q back its place */
            h2o_linklist_insert(p->queue.next, &q->wait_link);
            p->queue_len++;
            q->state = QS_QUEUED;
            conn_drop(c);
        }
    }
    size_t want = p->queue_len > p->connecting ? p->queue_len - p->connecting : 0;
    while (want > 0 && p->nconns < p->max_conns && !in_backoff(p)) {
        if (conn_start(p) != NULL)
            want--;
        else
            backoff_bump(p);
    }
    if (want > 0 && p->nconns < p->max_conns) {
        /* back-off after failed attempts: no connection is coming for these, fail them now */
        while (want-- > 0 && !h2o_linklist_is_empty(&p->queue))
            query_defer(H2O_STRUCT_FROM_MEMBER(pgpool_query, wait_link, p->queue.next));
    }
}

static pgpool_query *submit(pgpool *p, pgpool_query *q, uint64_t deadline_ms)
{
    arm(p, &q->timer, deadline_ms, on_query_deadline);
    q->state = QS_QUEUED;
    /* health probes go ahead of the backlog: they measure the database, not our queue */
    h2o_linklist_insert(q->kind == QK_PING ? p->queue.next : &p->queue, &q->wait_link);
    p->queue_len++;
    pump(p);
    return q;
}

static int queue_full(pgpool *p)
{
    return p->queue_len >= p->max_queue && h2o_linklist_is_empty(&p->idle);
}

/* ---- public API --------------------------------------------------------------------------- */

pgpool *pgpool_create(h2o_loop_t *loop, const char *url, const char *role, size_t max_conns,
                      size_t max_queue)
{
    pgpool *p = xcalloc(1, sizeof(*p));
    p->loop = loop;
    p->url = xstrdup(url);
    p->setup_sql = pgsession_setup_sql(role);
    pgsession_params_init(&p->params, p->url);
    p->connect_ms = strtoull(p->params.timeout, NULL, 10) * 1000;
    if (p->connect_ms == 0)
        p->connect_ms = 5000;
    p->deadline_ms = PGPOOL_DEFAULT_DEADLINE_MS;
    p->max_conns = max_conns > 0 ? max_conns : 1;
    p->max_queue = max_queue;
    h2o_linklist_init_anchor(&p->conns);
    h2o_linklist_init_anchor(&p->idle);
    h2o_linklist_init_anchor(&p->queue);
    h2o_linklist_init_anchor(&p->queries);
    return p;
}

void pgpool_destroy(pgpool *p)
{
    if (p == NULL)
        return;
    while (!h2o_linklist_is_empty(&p->queries)) {
        pgpool_query *q = H2O_STRUCT_FROM_MEMBER(pgpool_query, link, p->queries.next);
        if (q->conn != NULL && q->conn->q == q)
            q->conn->q = NULL;
        query_free(q);
    }
    while (!h2o_linklist_is_empty(&p->conns)) {
        pgpool_conn *c = H2O_STRUCT_FROM_MEMBER(pgpool_conn, link, p->conns.next);
        conn_close_pg(c);
        h2o_linklist_unlink(&c->link);
        free(c);
    }
    while (p->timeouts != NULL) {
        pgpool_timeout *t = p->timeouts;
        p->timeouts = t->next;
        h2o_timeout_dispose(p->loop, &t->t);
        free(t);
    }
    free(p->setup_sql);
    free(p->url);
    free(p);
}

void pgpool_set_deadline(pgpool *p, uint64_t ms)
{
    p->deadline_ms = ms > 0 ? ms : PGPOOL_DEFAULT_DEADLINE_MS;
}

pgpool_query *pgpool_exec(pgpool *p, const char *sql, int nparams, const char *const *params,
                          pgpool_cb cb, void *data)
{
    if (queue_full(p))
        return NULL;
    pgpool_query *q = query_new(p, QK_EXEC, sql, nparams, params, data);
    q->cb = cb;
    return submit(p, q, p->deadline_ms);
}

pgpool_query *pgpool_ping(pgpool *p, uint64_t timeout_ms, pgpool_ping_cb cb, void *data)
{
    if (queue_full(p))
        return NULL;
    pgpool_query *q = query_new(p, QK_PING, "SELECT 1", 0, NULL, data);
    q->ping_cb = cb;
    return submit(p, q, timeout_ms > 0 ? timeout_ms : 1);
}

pgpool_query *pgpool_acquire(pgpool *p, pgpool_acquire_cb cb, void *data)
{
    if (queue_full(p))
        return NULL;
    pgpool_query *q = query_new(p, QK_ACQUIRE, NULL, 0, NULL, data);
    q->acquire_cb = cb;
    return submit(p, q, p->deadline_ms);
}

pgpool_query *pgpool_conn_exec(pgpool_conn *c, const char *sql, int nparams,
                               const char *const *params, pgpool_cb cb, void *data)
{
    pgpool *p = c->pool;
    if (c->q != NULL || c->done != NULL)
        return NULL;
    pgpool_query *q = query_new(p, QK_EXEC, sql, nparams, params, data);
    q->cb = cb;
    c->q = q;
    q->conn = c;
    if (c->state == CS_BROKEN) {
        query_defer(q);
        return q;
    }
    arm(p, &q->timer, p->deadline_ms, on_query_deadline);
    q->state = QS_INFLIGHT;
    if (conn_send(c, q->sql, q->nparams, q->params, query_done) != 0) {
        conn_break(c);
        query_defer(q);
    }
    return q;
}

void pgpool_release(pgpool_conn *c, int broken)
{
    pgpool *p = c->pool;
    pgpool_query *q = c->q;
    if (q != NULL && (q->state == QS_DEFERRED || broken || c->state == CS_BROKEN)) {
        c->q = NULL;
        q->conn = NULL;
        query_free(q);
        q = NULL;
    }
    if (c->state == CS_BROKEN) {
        h2o_linklist_unlink(&c->link);
        free(c);
        return;
    }
    if (broken) {
        conn_drop(c);
    } else if (q != NULL) {
        q->cancelled = 1; /* query_done resets the connection when the result arrives */
        c->releasing = 1;
        return;
    } else {
        conn_reset(c);
    }
    pump(p);
}

void pgpool_cancel(pgpool_query *q)
{
    if (q == NULL)
        return;
    switch (q->state) {
    case QS_QUEUED:
        query_free(q);
        return;
    case QS_DEFERRED: {
        pgpool_conn *c = q->conn;
        int acquired = q->kind == QK_ACQUIRE && c != NULL;
        if (c != NULL && c->q == q)
            c->q = NULL;
        q->conn = NULL;
        query_free(q);
        if (acquired)
            pgpool_release(c, 0); /* the connection set aside for it goes back */
        return;
    }
    case QS_INFLIGHT:
        q->cancelled = 1; /* the result is discarded when it arrives */
        return;
    case QS_DELIVERING:
        return;
    }
}

void pgpool_get_stats(const pgpool *p, pgpool_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (p == NULL)
        return;
    for (const h2o_linklist_t *l = p->idle.next; l != &p->idle; l = l->next)
        out->idle++;
    out->connecting = p->connecting;
    out->queued = p->queue_len;
    size_t open = p->nconns > p->connecting ? p->nconns - p->connecting : 0;
    out->busy = open > out->idle ? open - out->idle : 0;
}
