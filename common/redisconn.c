/*
 * common/redisconn.c: non-blocking Redis connection on the h2o evloop (see redisconn.h). Runs
 * in HTTP workers and in the master's helpers.
 *
 * Two parts:
 *   1. The hiredis event adapter (hiredis 0.14 ships none for h2o): the hiredis fd is wrapped
 *      as an h2o DONT_READ socket; addRead/delRead map to h2o_socket_read_start/stop. addWrite
 *      on a connected context schedules a flush at the end of the current loop iteration (a
 *      0 ms timer), so every command issued in one iteration leaves in one write(2) without
 *      asking epoll first; while connecting, or when a flush could not write everything, it
 *      arms a one-shot h2o_socket_notify_write instead. cleanup closes the h2o socket (which
 *      closes the fd) and sets ac->c.fd = -1 so that redisFree does not close it a second
 *      time. The adapter state belongs to the hiredis context, not to the redisconn.
 *   2. The connection object. Every command is a redisconn_cmd owned by the redisconn: first in
 *      `inflight` (handed to hiredis, same order as hiredis's reply queue), then, if the
 *      connection fails, in `failed` until the failure report runs. The teardown records the
 *      cause (`failure`: REDISCONN_TIMEOUT from a deadline, REDISCONN_UNAVAILABLE otherwise),
 *      which the report gives every command it fails.
 *
 * Lifetime rules for hiredis 0.14: after a failure we "detach" the context (ac->data = NULL)
 * before anything else; from then on every hiredis callback for that context returns at once
 * without touching its privdata. hiredis frees the context itself when it initiated the
 * disconnect (onConnect error, read/write error, EOF); we call redisAsyncFree only when we
 * initiated it (timeout, AUTH/SELECT refusal, destroy). Inside a reply callback hiredis defers
 * that free until the callback returns. No user code runs during teardown: failures are
 * reported from a 1 ms loop timer (the next loop iteration).
 */
#include "common/redisconn.h"

#include "common/resp.h"

#include "common/log.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <assert.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <h2o/linklist.h>
#include <h2o/socket/evloop.h>
#include <h2o/timeout.h>
#include <hiredis/async.h>

/* rid: the log request id current when the command was issued (log.h), restored while its
 * callback runs so that the callback's log lines name the HTTP request. */
struct redisconn_cmd {
    redisconn *conn;
    redisconn_cb cb; /* NULL once cancelled */
    void *data;
    h2o_linklist_t link;              /* in conn->inflight or conn->failed */
    h2o_timeout_entry_t deadline;     /* linked while in conn->inflight */
    char rid[LOG_REQUEST_ID_MAX + 1]; /* log request id at submission (log.h), "" for none */
};

struct redisconn {
    h2o_loop_t *loop;
    char *addr;     /* what hiredis connects to: an IP literal, or the name as a fallback */
    char *endpoint; /* "host:port" for log lines (never credentials) */
    int port;
    int64_t db;
    char *username;
    char *password;
    void (*on_failure)(void *data);
    void *data;
    redisAsyncContext *ac;    /* NULL when there is no connection */
    h2o_linklist_t inflight;  /* commands handed to ac, in send order */
    h2o_linklist_t failed;    /* commands waiting for the failure report */
    int failure_pending;      /* a failure report is scheduled; no connect until it ran */
    redisconn_status failure; /* its cause, given to the commands it fails */
    int in_callback;          /* depth of user callbacks running (destroy must not run then) */
    h2o_timeout_t deadlines;  /* REDISCONN_TIMEOUT_MS */
    h2o_timeout_t immediate;  /* 1 ms: runs the failure report */
    h2o_timeout_entry_t report;
    h2o_timeout_t end_of_iteration; /* 0 ms: runs the flush */
    h2o_timeout_entry_t flush;
    int flushing; /* inside on_flush: a partial write waits for writability instead */
};

/* ---- hiredis adapter ------------------------------------------------------------------- */

typedef struct redisconn_ev {
    redisAsyncContext *ac;
    h2o_socket_t *sock;
} redisconn_ev;

static void ev_on_readable(h2o_socket_t *sock, const char *err)
{
    (void)err; /* DONT_READ socket: hiredis reads and sees errors itself */
    redisconn_ev *e = sock->data;
    redisAsyncHandleRead(e->ac); /* may free e */
}

static void ev_on_writable(h2o_socket_t *sock, const char *err)
{
    (void)err;
    redisconn_ev *e = sock->data;
    redisAsyncHandleWrite(e->ac); /* may free e */
}

static void ev_add_read(void *privdata)
{
    redisconn_ev *e = privdata;
    if (e != NULL && !h2o_socket_is_reading(e->sock))
        h2o_socket_read_start(e->sock, ev_on_readable);
}

static void ev_del_read(void *privdata)
{
    redisconn_ev *e = privdata;
    if (e != NULL && h2o_socket_is_reading(e->sock))
        h2o_socket_read_stop(e->sock);
}

static void ev_add_write(void *privdata)
{
    redisconn_ev *e = privdata;
    if (e == NULL)
        return;
    redisconn *c = e->ac->data; /* NULL once detached */
    if (c != NULL && !c->flushing && (e->ac->c.flags & REDIS_CONNECTED) != 0) {
        if (!h2o_timeout_is_linked(&c->flush))
            h2o_timeout_link(c->loop, &c->end_of_iteration, &c->flush);
        return;
    }
    /* notify_write is one-shot and asserts that no write callback is armed */
    if (!h2o_socket_is_writing(e->sock))
        h2o_socket_notify_write(e->sock, ev_on_writable);
}

static void ev_del_write(void *privdata)
{
    /* Nothing to cancel: a one-shot notification that fires with nothing to write is harmless
     * (hiredis then finds its output buffer empty). */
    (void)privdata;
}

static void ev_cleanup(void *privdata)
{
    redisconn_ev *e = privdata;
    if (e == NULL)
        return;
    e->ac->ev.data = NULL;
    h2o_socket_close(e->sock); /* closes the fd */
    e->ac->c.fd = -1;          /* so redisFree does not close it (or a recycled fd) again */
    free(e);
}

static void ev_attach(redisAsyncContext *ac, h2o_loop_t *loop)
{
    redisconn_ev *e = xcalloc(1, sizeof(*e));
    e->ac = ac;
    e->sock = h2o_evloop_socket_create(loop, ac->c.fd, H2O_SOCKET_FLAG_DONT_READ);
    e->sock->data = e;
    ac->ev.data = e;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
}

/* ---- failure handling ------------------------------------------------------------------ */

static void schedule_report(redisconn *c)
{
    c->failure_pending = 1;
    if (!h2o_timeout_is_linked(&c->report))
        h2o_timeout_link(c->loop, &c->immediate, &c->report);
}

/*
 * Drops the current connection (if any) after a failure whose cause is `cause`: every
 * in-flight command moves to the failed list and a failure report is scheduled. free_ac says
 * whether we must ask hiredis to free the context (we initiated the teardown) or hiredis is
 * already freeing it.
 */
static void conn_teardown(redisconn *c, const char *why, int free_ac, redisconn_status cause)
{
    redisAsyncContext *ac = c->ac;

    log_warn("redis %s: %s; connection dropped", c->endpoint, why);
    c->ac = NULL;
    c->failure = cause;
    while (!h2o_linklist_is_empty(&c->inflight)) {
        redisconn_cmd *cmd = H2O_STRUCT_FROM_MEMBER(redisconn_cmd, link, c->inflight.next);
        h2o_linklist_unlink(&cmd->link);
        h2o_timeout_unlink(&cmd->deadline);
        h2o_linklist_insert(&c->failed, &cmd->link);
    }
    schedule_report(c);
    if (ac != NULL) {
        ac->data = NULL; /* detach first: its remaining callbacks become no-ops */
        if (free_ac)
            redisAsyncFree(ac);
    }
}

/* hiredis's message for the context's error, or fallback. (In onConnect the error is only in
 * the inner redisContext; hiredis copies it to ac->err later.) */
static const char *ac_error(const redisAsyncContext *ac, const char *fallback)
{
    if (ac->c.err != 0 && ac->c.errstr[0] != '\0')
        return ac->c.errstr;
    if (ac->err != 0 && ac->errstr != NULL && ac->errstr[0] != '\0')
        return ac->errstr;
    return fallback;
}

static void on_report(h2o_timeout_entry_t *entry)
{
    redisconn *c = H2O_STRUCT_FROM_MEMBER(redisconn, report, entry);
    h2o_linklist_t batch;

    h2o_linklist_init_anchor(&batch);
    h2o_linklist_insert_list(&batch, &c->failed);
    c->failure_pending = 0; /* commands issued from the callbacks below connect afresh */

    c->in_callback++;
    if (c->on_failure != NULL)
        c->on_failure(c->data);
    while (!h2o_linklist_is_empty(&batch)) {
        redisconn_cmd *cmd = H2O_STRUCT_FROM_MEMBER(redisconn_cmd, link, batch.next);
        redisconn_cb cb = cmd->cb;
        void *data = cmd->data;
        h2o_linklist_unlink(&cmd->link);
        if (cb != NULL) {
            char saved[LOG_REQUEST_ID_MAX + 1];
            log_push_request_id(cmd->rid, saved);
            free(cmd);
            cb(data, c->failure, NULL);
            log_set_request_id(saved);
        } else {
            free(cmd);
        }
    }
    c->in_callback--;
}

/* End of the loop iteration in which commands were queued: write them in one go. A context
 * replaced since (teardown, then a new connect) waits for its connect notification instead. */
static void on_flush(h2o_timeout_entry_t *entry)
{
    redisconn *c = H2O_STRUCT_FROM_MEMBER(redisconn, flush, entry);
    if (c->ac == NULL || (c->ac->c.flags & REDIS_CONNECTED) == 0)
        return;
    c->flushing = 1;
    redisAsyncHandleWrite(c->ac); /* may tear the connection down; c stays */
    c->flushing = 0;
}

static void on_deadline(h2o_timeout_entry_t *entry)
{
    redisconn_cmd *cmd = H2O_STRUCT_FROM_MEMBER(redisconn_cmd, deadline, entry);
    redisconn *c = cmd->conn;
    int connected = c->ac != NULL && (c->ac->c.flags & REDIS_CONNECTED) != 0;
    conn_teardown(c, connected ? "no reply within 1 s" : "connect timed out after 1 s", 1,
                  REDISCONN_TIMEOUT);
}

/* ---- hiredis callbacks ----------------------------------------------------------------- */

static void on_connect(const redisAsyncContext *cac, int status)
{
    redisconn *c = cac->data;
    if (c == NULL || status == REDIS_OK)
        return;
    /* hiredis frees the context after this returns */
    conn_teardown(c, ac_error(cac, "connect failed"), 0, REDISCONN_UNAVAILABLE);
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
    (void)status;
    redisconn *c = cac->data;
    if (c == NULL)
        return;
    /* hiredis-initiated (EOF, I/O or protocol error); it frees the context afterwards */
    conn_teardown(c, ac_error(cac, "connection closed"), 0, REDISCONN_UNAVAILABLE);
}

static void on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    redisconn *c = ac->data;
    redisconn_cmd *cmd = privdata;
    redisReply *reply = r;

    if (c == NULL)
        return; /* detached: cmd was already moved to the failed list or freed */
    if (reply == NULL) {
        /* hiredis is freeing the context because of an error */
        conn_teardown(c, ac_error(ac, "connection lost"), 0, REDISCONN_UNAVAILABLE);
        return;
    }
    assert(c->inflight.next == &cmd->link);
    h2o_linklist_unlink(&cmd->link);
    h2o_timeout_unlink(&cmd->deadline);
    redisconn_cb cb = cmd->cb;
    void *data = cmd->data;
    if (cb != NULL) {
        char saved[LOG_REQUEST_ID_MAX + 1];
        log_push_request_id(cmd->rid, saved);
        free(cmd);
        c->in_callback++;
        cb(data, reply->type == REDIS_REPLY_ERROR ? REDISCONN_ERROR_REPLY : REDISCONN_OK, reply);
        c->in_callback--;
        log_set_request_id(saved);
    } else {
        free(cmd);
    }
}

/* Replies to the pipelined AUTH and SELECT: anything but +OK makes Redis unusable. */
static void check_setup_reply(redisconn *c, redisconn_status st, redisReply *reply,
                              const char *what)
{
    if (st == REDISCONN_UNAVAILABLE || st == REDISCONN_TIMEOUT)
        return; /* the failure is being reported already */
    if (st == REDISCONN_OK && reply->type == REDIS_REPLY_STATUS &&
        strcasecmp(reply->str, "OK") == 0)
        return;
    /* The error text is not logged: an AUTH error might echo parts of the request. */
    conn_teardown(c, what, 1, REDISCONN_UNAVAILABLE);
}

static void on_auth_reply(void *data, redisconn_status st, redisReply *reply)
{
    check_setup_reply(data, st, reply, "AUTH refused");
}

static void on_select_reply(void *data, redisconn_status st, redisReply *reply)
{
    check_setup_reply(data, st, reply, "SELECT refused");
}

/* ---- commands -------------------------------------------------------------------------- */

static void send_cmd(redisconn *c, redisconn_cmd *cmd, const char *buf, size_t len)
{
    h2o_linklist_insert(&c->inflight, &cmd->link);
    h2o_timeout_link(c->loop, &c->deadlines, &cmd->deadline);
    if (redisAsyncFormattedCommand(c->ac, on_reply, cmd, buf, len) != REDIS_OK)
        conn_teardown(c, "hiredis refused the command", 1, REDISCONN_UNAVAILABLE);
}

static redisconn_cmd *new_cmd(redisconn *c, redisconn_cb cb, void *data)
{
    redisconn_cmd *cmd = xcalloc(1, sizeof(*cmd));
    cmd->conn = c;
    cmd->cb = cb;
    cmd->data = data;
    cmd->deadline.cb = on_deadline;
    strcpy(cmd->rid, log_request_id());
    return cmd;
}

static void send_internal(redisconn *c, redisconn_cb cb, int argc, const char **argv)
{
    size_t argvlen[3];
    char *buf;
    for (int i = 0; i < argc; i++)
        argvlen[i] = strlen(argv[i]);
    int len = redisFormatCommandArgv(&buf, argc, argv, argvlen);
    if (len < 0)
        abort(); /* only on out of memory */
    send_cmd(c, new_cmd(c, cb, c), buf, (size_t)len);
    redisFreeCommand(buf);
}

/* Opens the connection and pipelines AUTH/SELECT. On failure a report is scheduled. */
static void conn_start(redisconn *c)
{
    redisAsyncContext *ac = redisAsyncConnect(c->addr, c->port);
    if (ac == NULL) {
        conn_teardown(c, "cannot allocate a hiredis context", 0, REDISCONN_UNAVAILABLE);
        return;
    }
    if (ac->err != 0) {
        conn_teardown(c, ac_error(ac, "connect failed"), 0, REDISCONN_UNAVAILABLE);
        redisAsyncFree(ac); /* never attached: no callbacks, hiredis closes its fd */
        return;
    }
    fcntl(ac->c.fd, F_SETFD, FD_CLOEXEC);
    ac->data = c;
    ev_attach(ac, c->loop);
    redisAsyncSetConnectCallback(ac, on_connect); /* arms the write notification */
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    c->ac = ac;

    if (c->password != NULL) {
        if (c->username != NULL)
            send_internal(c, on_auth_reply, 3, (const char *[]){"AUTH", c->username, c->password});
        else
            send_internal(c, on_auth_reply, 2, (const char *[]){"AUTH", c->password});
    }
    if (c->db != 0 && c->ac != NULL) {
        char db[24];
        snprintf(db, sizeof(db), "%" PRId64, c->db);
        send_internal(c, on_select_reply, 2, (const char *[]){"SELECT", db});
    }
}

static redisconn_cmd *submit(redisconn *c, const char *buf, size_t len, redisconn_cb cb, void *data)
{
    redisconn_cmd *cmd = new_cmd(c, cb, data);
    if (c->ac == NULL && !c->failure_pending)
        conn_start(c);
    if (c->failure_pending) {
        /* this attempt failed already (or an earlier failure is not reported yet) */
        h2o_linklist_insert(&c->failed, &cmd->link);
        return cmd;
    }
    send_cmd(c, cmd, buf, len);
    return cmd;
}

redisconn_cmd *redisconn_command_argv(redisconn *c, int argc, const char **argv,
                                      const size_t *argvlen, redisconn_cb cb, void *data)
{
    if (argc < 1)
        return NULL;
    /* RESP written by hand into a stack buffer when it fits (the hot path: cache lookups);
     * hiredis copies it into its output buffer. */
    char stack[1024];
    size_t len = resp_length(argc, argv, argvlen);
    char *buf = len <= sizeof(stack) ? stack : xmalloc(len);
    resp_format(buf, argc, argv, argvlen);
    redisconn_cmd *cmd = submit(c, buf, len, cb, data);
    if (buf != stack)
        free(buf);
    return cmd;
}

void redisconn_cancel(redisconn_cmd *cmd)
{
    if (cmd != NULL)
        cmd->cb = NULL;
}

/* ---- lifecycle ------------------------------------------------------------------------- */

/* The address hiredis connects to, chosen as described in redisconn.h. */
static char *resolve_host(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    if (strcasecmp(host, "localhost") == 0)
        return xstrdup("127.0.0.1");
    if (inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1)
        return xstrdup(host);

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    char text[INET6_ADDRSTRLEN];
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc == 0 && getnameinfo(res->ai_addr, res->ai_addrlen, text, sizeof(text), NULL, 0,
                               NI_NUMERICHOST) == 0) {
        freeaddrinfo(res);
        return xstrdup(text);
    }
    if (res != NULL)
        freeaddrinfo(res);
    log_warn("redis %s: cannot resolve the host name (%s); will resolve on each connect", host,
             rc != 0 ? gai_strerror(rc) : "no numeric address");
    return xstrdup(host);
}

redisconn *redisconn_create(h2o_loop_t *loop, const config_redis *ep,
                            void (*on_failure)(void *data), void *data)
{
    static int tls_logged;
    if (ep->tls) {
        if (!tls_logged)
            log_error("redis: rediss:// (TLS) is not supported by this build (hiredis 0.14); "
                      "Redis stays unavailable");
        tls_logged = 1;
        return NULL;
    }

    redisconn *c = xcalloc(1, sizeof(*c));
    c->loop = loop;
    c->addr = resolve_host(ep->host);
    c->endpoint = strchr(ep->host, ':') != NULL ? xasprintf("[%s]:%d", ep->host, ep->port)
                                                : xasprintf("%s:%d", ep->host, ep->port);
    c->port = ep->port;
    c->db = ep->db;
    c->username = ep->username != NULL ? xstrdup(ep->username) : NULL;
    c->password = ep->password != NULL ? xstrdup(ep->password) : NULL;
    c->on_failure = on_failure;
    c->data = data;
    h2o_linklist_init_anchor(&c->inflight);
    h2o_linklist_init_anchor(&c->failed);
    h2o_timeout_init(loop, &c->deadlines, REDISCONN_TIMEOUT_MS);
    /* 1 ms, not 0: a report scheduled while a report runs (a callback retrying against an
     * address that fails at once) must wait for the next loop iteration instead of running
     * in the same h2o_timeout_run pass forever. */
    h2o_timeout_init(loop, &c->immediate, 1);
    c->report.cb = on_report;
    /* 0 ms is safe here: on_flush never links the flush again (c->flushing). */
    h2o_timeout_init(loop, &c->end_of_iteration, 0);
    c->flush.cb = on_flush;
    return c;
}

static void free_cmds(h2o_linklist_t *list)
{
    while (!h2o_linklist_is_empty(list)) {
        redisconn_cmd *cmd = H2O_STRUCT_FROM_MEMBER(redisconn_cmd, link, list->next);
        h2o_linklist_unlink(&cmd->link);
        h2o_timeout_unlink(&cmd->deadline);
        free(cmd);
    }
}

void redisconn_destroy(redisconn *c)
{
    if (c == NULL)
        return;
    assert(c->in_callback == 0);
    redisAsyncContext *ac = c->ac;
    c->ac = NULL;
    if (ac != NULL) {
        ac->data = NULL;
        redisAsyncFree(ac);
    }
    free_cmds(&c->inflight);
    free_cmds(&c->failed);
    h2o_timeout_unlink(&c->report);
    h2o_timeout_unlink(&c->flush);
    h2o_timeout_dispose(c->loop, &c->end_of_iteration);
    h2o_timeout_dispose(c->loop, &c->deadlines);
    h2o_timeout_dispose(c->loop, &c->immediate);
    if (c->password != NULL)
        memset(c->password, 0, strlen(c->password));
    free(c->password);
    free(c->username);
    free(c->endpoint);
    free(c->addr);
    free(c);
}

int redisconn_is_connected(const redisconn *c)
{
    return c != NULL && c->ac != NULL && (c->ac->c.flags & REDIS_CONNECTED) != 0;
}
