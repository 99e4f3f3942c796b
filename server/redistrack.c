/*
 * server/redistrack.c: the invalidation connection, the barrier and the copy rules of the
 * worker's local report cache (see redistrack.h). Runs in HTTP workers, on the worker's event
 * loop.
 *
 * ---- Why a copy served here is never older than a write Redis acknowledged before the read --
 *
 * The race: client W writes a `report:` key (INCR of a version, SET or DEL of an entry,
 * FLUSHDB, FLUSHALL) and gets Redis's acknowledgement; then a reader's request reaches this
 * worker. The worker must not answer from a copy made before the write. It learns about the
 * write only from the invalidation message on its own connection, which is a different TCP
 * connection from W's: nothing orders the two deliveries.
 *
 * Draining the invalidation socket (a non-blocking read of whatever has arrived) at the start
 * of each lookup is NOT enough. What Redis 7.0 guarantees is the order in which it *queues*
 * output, not the order in which the bytes leave:
 *   - for key writes, BCAST invalidations are collected while the command runs and queued on
 *     the tracking connection in beforeSleep() by trackingBroadcastInvalidationMessages(),
 *     before handleClientsWithPendingWrites() writes W's reply;
 *   - for FLUSHDB/FLUSHALL, trackingInvalidateKeysOnFlush() queues the null message during the
 *     command, before addReply() queues W's "+OK";
 *   - but the writes happen client by client: clients_pending_write is a list that the FLUSH
 *     case leaves with W ahead of our connection (W's reply is written first); a connection
 *     whose previous output was not fully written waits for its own writable event (a later
 *     loop iteration) while W's reply goes out now; with io-threads the writes are
 *     concurrent; and Redis can be preempted between two write(2) calls while W, woken by
 *     its reply, sends the next request to us (on two cores that is a scheduler decision, not
 *     a theory). Over a real network the two TCP streams are independent anyway.
 * So "drained at the start of the lookup" only means "everything that happened to arrive",
 * and a stale copy can be served inside that window.
 *
 * What is enough: a barrier on the invalidation connection itself. Every read that wants a
 * copy waits for a PING written on that connection after the read started; Redis processes
 * the PING after W's acknowledgement was written (the reader's request came after it, and our
 * PING after the request), so the invalidation, queued before that acknowledgement, is ahead
 * of the pong in the connection's single ordered output stream. When the pong arrives, every
 * message before it has been processed (we parse in order), and the copy is looked up again.
 * Expiry has no acknowledgement: a copy's deadline is the key's PTTL counted from before the
 * PTTL was sent, so it ends no later than the key does in Redis (Redis also pushes an
 * invalidation when it deletes the expired key, which only drops the copy sooner).
 *
 * Cost: one small round trip per loop iteration that has reads wanting copies, shared by all
 * of them (a PING is written at the end of the iteration, like redisconn's flush), instead of
 * one MGET per request; Redis does no key lookups and sends no values for them.
 *
 * The other direction, making a copy: the lookup MGET on the data connection reads values at
 * some instant T. A write after T sends an invalidation on our connection (which was subscribed
 * before the MGET left, so the write is tracked). If we process that invalidation before the
 * copy is made, the stamp check below refuses the copy; if after, it drops the copy. Either way
 * no copy outlives a write that followed its read. The stamp is an epoch counter bumped by
 * every processed invalidation (logged with a hash of its key, or as a wildcard for flushes,
 * reconnects and trust changes); a copy is refused when any logged event since its stamp is a
 * wildcard or matches one of its two keys, or when the log no longer reaches back that far.
 *
 * Loss: EOF, a read or write error, a protocol surprise, or no pong within 1 s closes the
 * connection and drops every copy at once, and waiting reads fall back to the Redis lookup.
 * A Redis restart closes the connection too. CLIENT KILL of this connection, or of the
 * tracking client, is a loss. While the connection is down (reconnect after 100 ms) no copy is
 * made or served. Redis untrusted (DATA.md §7.6), or any failure counted in shstate since the
 * last check, drops every copy before the lookup goes on.
 */
#include "server/redistrack.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <h2o/socket/evloop.h>
#include <hiredis/hiredis.h>

#include "common/cachekey.h"
#include "common/jbuf.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/resp.h"
#include "common/shstate.h"
#include "common/util.h"
#include "server/localcache.h"

#define TRK_RETRY_MS 100
#define TRK_LOG      256 /* invalidation events remembered for the copy check */

typedef enum { TRK_DOWN, TRK_CONNECTING, TRK_HANDSHAKE, TRK_UP } trk_state;

/* Replies expected during the handshake, in order. */
typedef enum { EXP_OK, EXP_ID, EXP_SUBSCRIBED } trk_expect;

struct redistrack {
    h2o_loop_t *loop;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char *endpoint; /* host:port for log lines */
    char *username, *password;
    localcache *lc;

    trk_state state;
    h2o_socket_t *sock; /* DONT_READ: we read(2) and write(2) the fd ourselves */
    redisReader *reader;
    trk_expect expect[4];
    int nexpect;
    int logged_down; /* a loss was logged and the connection has not been up since */

    uint64_t epoch;                  /* bumped by every invalidation event */
    uint64_t log_hash[TRK_LOG];      /* key hash of event e at [e % TRK_LOG]; 0 = everything */
    uint64_t failures_seen;          /* shstate redis_failures at the last check */
    uint64_t pings_sent, pongs_seen; /* barriers */
    h2o_linklist_t waiters;          /* redistrack_wait, oldest first */
    jbuf vkey, ekey;                 /* scratch key names */

    h2o_timeout_t zero_to, deadline_to, retry_to;
    h2o_timeout_entry_t flush, deadline, retry;
};

/* ---- copies and epochs --------------------------------------------------------------------- */

static uint64_t key_hash(const char *key, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)key[i]) * 1099511628211ULL;
    return h | 1; /* never 0, the wildcard */
}

static void log_event(redistrack *t, uint64_t hash)
{
    t->epoch++;
    t->log_hash[t->epoch % TRK_LOG] = hash;
}

static void publish_gauges(redistrack *t)
{
    metrics_gauges *g = &metrics_self->gauges;
    atomic_store_explicit(&g->report_local_bytes, (int64_t)localcache_bytes(t->lc),
                          memory_order_relaxed);
    atomic_store_explicit(&g->report_local_items, (int64_t)localcache_count(t->lc),
                          memory_order_relaxed);
}

/* Drops every copy (a flush, a loss, a trust change): nothing made before stays. */
static void reset(redistrack *t)
{
    log_event(t, 0);
    if (localcache_clear(t->lc) > 0) {
        metrics_add(&metrics_self->counters.report_local_resets, 1);
        publish_gauges(t);
    }
}

static uint64_t redis_failures(void)
{
    return shstate_global != NULL ? atomic_load(&shstate_global->redis_failures) : 0;
}

/* Whether copies may be used and made now; drops them all when Redis is or was untrusted
 * since the last check. */
static int usable(redistrack *t)
{
    if (t->state != TRK_UP)
        return 0;
    uint64_t failures = redis_failures();
    int trusted = shstate_redis_trusted();
    if (!trusted || failures != t->failures_seen) {
        t->failures_seen = failures;
        reset(t);
    }
    return trusted;
}

/* Whether nothing that could change the keys of hashes a and b was processed since stamp. */
static int unchanged_since(const redistrack *t, uint64_t stamp, uint64_t a, uint64_t b)
{
    if (t->epoch - stamp >= TRK_LOG)
        return t->epoch == stamp;
    for (uint64_t e = stamp + 1; e <= t->epoch; e++) {
        uint64_t h = t->log_hash[e % TRK_LOG];
        if (h == 0 || h == a || h == b)
            return 0;
    }
    return 1;
}

static void build_keys(redistrack *t, const char *slug, size_t slug_len, int64_t version,
                       const char *hash)
{
    jbuf_reset(&t->vkey);
    cachekey_version(&t->vkey, slug, slug_len);
    jbuf_reset(&t->ekey);
    cachekey_entry(&t->ekey, slug, slug_len, version, hash);
}

int redistrack_get(redistrack *t, const char *slug, size_t slug_len, const char *hash,
                   int64_t *version, const char **body, size_t *len)
{
    if (!usable(t))
        return -1;
    int64_t now = clock_monotonic_ns();
    const char *unused;
    size_t unused_len;
    jbuf_reset(&t->vkey);
    cachekey_version(&t->vkey, slug, slug_len);
    if (localcache_get(t->lc, t->vkey.data, t->vkey.len, now, &unused, &unused_len, version) != 0)
        return -1;
    int64_t entry_version;
    build_keys(t, slug, slug_len, *version, hash);
    return localcache_get(t->lc, t->ekey.data, t->ekey.len, now, body, len, &entry_version);
}

uint64_t redistrack_stamp(redistrack *t)
{
    return usable(t) ? t->epoch : 0;
}

/* ---- filling -------------------------------------------------------------------------------- */

typedef struct trk_fill {
    redistrack *t;
    uint64_t stamp;
    int64_t version;
    int64_t sent_ns;
    int64_t pttl[2]; /* version key, entry */
    int replies, failed;
    size_t vkey_len, ekey_len, len;
    char *bytes; /* version key, entry key, body */
} trk_fill;

static int64_t deadline_of(const trk_fill *f, int64_t pttl)
{
    return pttl == -1 ? LOCALCACHE_FOREVER : f->sent_ns + pttl * 1000000;
}

static void fill_store(trk_fill *f)
{
    redistrack *t = f->t;
    const char *vkey = f->bytes, *ekey = f->bytes + f->vkey_len;
    if (f->failed || f->pttl[0] < -1 || f->pttl[1] < -1 || !usable(t) ||
        !unchanged_since(t, f->stamp, key_hash(vkey, f->vkey_len), key_hash(ekey, f->ekey_len)))
        return;
    int ev =
        localcache_put(t->lc, vkey, f->vkey_len, "", 0, f->version, deadline_of(f, f->pttl[0]));
    int ee = ev < 0 ? -1
                    : localcache_put(t->lc, ekey, f->ekey_len, ekey + f->ekey_len, f->len,
                                     f->version, deadline_of(f, f->pttl[1]));
    uint64_t evicted = (uint64_t)(ev > 0 ? ev : 0) + (uint64_t)(ee > 0 ? ee : 0);
    if (evicted > 0)
        metrics_add(&metrics_self->counters.report_local_evictions, evicted);
    publish_gauges(t);
}

static void on_pttl(trk_fill *f, int which, redisconn_status st, redisReply *reply)
{
    if (st != REDISCONN_OK || reply == NULL || reply->type != REDIS_REPLY_INTEGER)
        f->failed = 1;
    else
        f->pttl[which] = reply->integer;
    if (++f->replies < 2)
        return;
    fill_store(f);
    free(f->bytes);
    free(f);
}

static void on_pttl_version(void *data, redisconn_status st, redisReply *reply)
{
    on_pttl(data, 0, st, reply);
}

static void on_pttl_entry(void *data, redisconn_status st, redisReply *reply)
{
    on_pttl(data, 1, st, reply);
}

void redistrack_fill(redistrack *t, redisconn *r, uint64_t stamp, const char *slug, size_t slug_len,
                     int64_t version, const char *hash, const char *body, size_t len)
{
    if (t == NULL || r == NULL || stamp == 0 || !usable(t) ||
        !unchanged_since(t, stamp, 0, 0) /* early refusal: a reset happened since */)
        return;
    build_keys(t, slug, slug_len, version, hash);
    trk_fill *f = xcalloc(1, sizeof(*f));
    f->t = t;
    f->stamp = stamp;
    f->version = version;
    f->vkey_len = t->vkey.len;
    f->ekey_len = t->ekey.len;
    f->len = len;
    f->bytes = xmalloc(f->vkey_len + f->ekey_len + len + 1);
    memcpy(f->bytes, t->vkey.data, f->vkey_len);
    memcpy(f->bytes + f->vkey_len, t->ekey.data, f->ekey_len);
    memcpy(f->bytes + f->vkey_len + f->ekey_len, body, len);
    f->sent_ns = clock_monotonic_ns();
    const char *argv[2] = {"PTTL", f->bytes};
    size_t argvlen[2] = {4, f->vkey_len};
    redisconn_command_argv(r, 2, argv, argvlen, on_pttl_version, f);
    argv[1] = f->bytes + f->vkey_len;
    argvlen[1] = f->ekey_len;
    redisconn_command_argv(r, 2, argv, argvlen, on_pttl_entry, f);
}

/* ---- the connection --------------------------------------------------------------------- */

static void connect_now(redistrack *t);

/* Completes the oldest waiting reads covered by pong number `upto` (ok), or all (failed). */
static void complete_waiters(redistrack *t, uint64_t upto, int ok)
{
    while (!h2o_linklist_is_empty(&t->waiters)) {
        redistrack_wait *w = H2O_STRUCT_FROM_MEMBER(redistrack_wait, link, t->waiters.next);
        if (ok && (w->ping == 0 || w->ping > upto))
            break;
        h2o_linklist_unlink(&w->link);
        char saved[LOG_REQUEST_ID_MAX + 1];
        log_push_request_id(w->rid, saved);
        w->cb(w, ok);
        log_set_request_id(saved);
    }
}

static void teardown(redistrack *t, const char *why)
{
    if (t->state == TRK_UP || !t->logged_down)
        log_warn("redis %s: invalidation connection: %s; local report copies dropped", t->endpoint,
                 why);
    t->logged_down = 1;
    if (t->sock != NULL) {
        h2o_socket_close(t->sock);
        t->sock = NULL;
    }
    if (t->reader != NULL) {
        redisReaderFree(t->reader);
        t->reader = NULL;
    }
    t->state = TRK_DOWN;
    t->nexpect = 0;
    t->pings_sent = t->pongs_seen = 0;
    h2o_timeout_unlink(&t->deadline);
    h2o_timeout_unlink(&t->flush);
    if (!h2o_timeout_is_linked(&t->retry))
        h2o_timeout_link(t->loop, &t->retry_to, &t->retry);
    reset(t);
    complete_waiters(t, 0, 0);
}

static void arm_deadline(redistrack *t)
{
    h2o_timeout_unlink(&t->deadline);
    h2o_timeout_link(t->loop, &t->deadline_to, &t->deadline);
}

/* Writes one command; the connection is nearly idle, so a short write means trouble. */
static int send_argv(redistrack *t, int argc, const char **argv)
{
    char buf[512];
    size_t len = resp_length(argc, argv, NULL);
    if (len > sizeof(buf))
        return -1;
    resp_format(buf, argc, argv, NULL);
    ssize_t n = write(h2o_socket_get_fd(t->sock), buf, len);
    return n == (ssize_t)len ? 0 : -1;
}

static void expect(redistrack *t, trk_expect e)
{
    t->expect[t->nexpect++] = e;
}

/* A reply while subscribed: an invalidation or a pong. Returns -1 for anything else. */
static int on_push(redistrack *t, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return -1;
    const char *kind = r->element[0]->str;
    if (r->elements == 2 && strcasecmp(kind, "pong") == 0) {
        if (t->pongs_seen >= t->pings_sent)
            return -1;
        t->pongs_seen++;
        if (t->pongs_seen < t->pings_sent)
            arm_deadline(t);
        else
            h2o_timeout_unlink(&t->deadline);
        complete_waiters(t, t->pongs_seen, 1);
        return 0;
    }
    if (r->elements != 3 || strcasecmp(kind, "message") != 0)
        return -1;
    const redisReply *keys = r->element[2];
    if (keys->type == REDIS_REPLY_NIL) { /* FLUSHDB / FLUSHALL */
        metrics_add(&metrics_self->counters.report_local_invalidations, 1);
        reset(t);
        return 0;
    }
    if (keys->type != REDIS_REPLY_ARRAY)
        return -1;
    for (size_t i = 0; i < keys->elements; i++) {
        const redisReply *k = keys->element[i];
        if (k->type != REDIS_REPLY_STRING)
            return -1;
        log_event(t, key_hash(k->str, k->len));
        localcache_drop(t->lc, k->str, k->len);
    }
    metrics_add(&metrics_self->counters.report_local_invalidations, keys->elements);
    publish_gauges(t);
    return 0;
}

/* A reply during the handshake. Returns -1 when it is not the one expected. */
static int on_setup_reply(redistrack *t, const redisReply *r)
{
    if (t->nexpect == 0)
        return -1;
    trk_expect e = t->expect[0];
    memmove(t->expect, t->expect + 1, (size_t)(--t->nexpect) * sizeof(t->expect[0]));
    switch (e) {
    case EXP_OK:
        return r->type == REDIS_REPLY_STATUS && strcasecmp(r->str, "OK") == 0 ? 0 : -1;
    case EXP_ID: {
        if (r->type != REDIS_REPLY_INTEGER)
            return -1;
        char id[24];
        snprintf(id, sizeof(id), "%lld", (long long)r->integer);
        const char *tracking[] = {"CLIENT", "TRACKING", "on",     "REDIRECT",
                                  id,       "BCAST",    "PREFIX", "report:"};
        const char *subscribe[] = {"SUBSCRIBE", "__redis__:invalidate"};
        if (send_argv(t, 8, tracking) != 0 || send_argv(t, 2, subscribe) != 0)
            return -1;
        expect(t, EXP_OK);
        expect(t, EXP_SUBSCRIBED);
        return 0;
    }
    case EXP_SUBSCRIBED:
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
            r->element[0]->type != REDIS_REPLY_STRING ||
            strcasecmp(r->element[0]->str, "subscribe") != 0)
            return -1;
        /* Tracking is on: from here every write of a report: key reaches us. */
        t->state = TRK_UP;
        t->logged_down = 0;
        t->failures_seen = redis_failures();
        log_event(t, 0); /* a fresh session: stamps of the old one are void */
        h2o_timeout_unlink(&t->deadline);
        log_info("redis %s: invalidation connection subscribed; local report copies enabled",
                 t->endpoint);
        return 0;
    }
    return -1;
}

static void on_readable(h2o_socket_t *sock, const char *err)
{
    (void)err;
    redistrack *t = sock->data;
    int fd = h2o_socket_get_fd(sock);
    char buf[16384];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n > 0) {
            if (redisReaderFeed(t->reader, buf, (size_t)n) != REDIS_OK) {
                teardown(t, "protocol error");
                return;
            }
            if ((size_t)n < sizeof(buf))
                break;
            continue;
        }
        if (n == 0) {
            teardown(t, "connection closed");
            return;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
        teardown(t, strerror(errno));
        return;
    }
    for (;;) {
        void *reply = NULL;
        if (t->reader == NULL)
            return; /* torn down by a callback */
        if (redisReaderGetReply(t->reader, &reply) != REDIS_OK) {
            teardown(t, "protocol error");
            return;
        }
        if (reply == NULL)
            return;
        int rc = t->state == TRK_UP ? on_push(t, reply) : on_setup_reply(t, reply);
        freeReplyObject(reply);
        if (rc != 0) {
            teardown(t, "unexpected reply");
            return;
        }
    }
}

static void on_connected(h2o_socket_t *sock, const char *err)
{
    redistrack *t = sock->data;
    int fd = h2o_socket_get_fd(sock);
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (err != NULL || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
        teardown(t, soerr != 0 ? strerror(soerr) : "connect failed");
        return;
    }
    t->state = TRK_HANDSHAKE;
    t->reader = redisReaderCreate();
    int ok = 1;
    if (t->password != NULL) {
        const char *auth3[] = {"AUTH", t->username != NULL ? t->username : "", t->password};
        const char *auth2[] = {"AUTH", t->password};
        ok = send_argv(t, t->username != NULL ? 3 : 2, t->username != NULL ? auth3 : auth2) == 0;
        expect(t, EXP_OK);
    }
    const char *setname[] = {"CLIENT", "SETNAME", "analyticsd-invalidation"};
    const char *id[] = {"CLIENT", "ID"};
    ok = ok && send_argv(t, 3, setname) == 0 && send_argv(t, 2, id) == 0;
    expect(t, EXP_OK);
    expect(t, EXP_ID);
    if (!ok) {
        teardown(t, "cannot send the handshake");
        return;
    }
    h2o_socket_read_start(sock, on_readable);
}

static void connect_now(redistrack *t)
{
    int fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        teardown(t, strerror(errno));
        return;
    }
    if (connect(fd, (struct sockaddr *)&t->addr, t->addrlen) != 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        teardown(t, strerror(e));
        return;
    }
    t->sock = h2o_evloop_socket_create(t->loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    t->sock->data = t;
    t->state = TRK_CONNECTING;
    arm_deadline(t); /* covers the connect and the handshake */
    h2o_socket_notify_write(t->sock, on_connected);
}

static void on_retry(h2o_timeout_entry_t *entry)
{
    redistrack *t = H2O_STRUCT_FROM_MEMBER(redistrack, retry, entry);
    if (t->state == TRK_DOWN)
        connect_now(t);
}

static void on_deadline(h2o_timeout_entry_t *entry)
{
    redistrack *t = H2O_STRUCT_FROM_MEMBER(redistrack, deadline, entry);
    teardown(t, t->state == TRK_UP ? "no pong within 1 s" : "no handshake within 1 s");
}

/* End of the loop iteration: one PING covers every read that registered during it. */
static void on_flush(h2o_timeout_entry_t *entry)
{
    redistrack *t = H2O_STRUCT_FROM_MEMBER(redistrack, flush, entry);
    if (t->state != TRK_UP)
        return;
    const char *ping[] = {"PING"};
    if (send_argv(t, 1, ping) != 0) {
        teardown(t, "cannot write a PING");
        return;
    }
    if (t->pongs_seen == t->pings_sent)
        arm_deadline(t);
    t->pings_sent++;
    for (h2o_linklist_t *n = t->waiters.prev; n != &t->waiters; n = n->prev) {
        redistrack_wait *w = H2O_STRUCT_FROM_MEMBER(redistrack_wait, link, n);
        if (w->ping != 0)
            break;
        w->ping = t->pings_sent;
    }
}

int redistrack_sync(redistrack *t, redistrack_wait *w, redistrack_cb cb)
{
    if (t->state != TRK_UP)
        return -1;
    w->cb = cb;
    w->ping = 0;
    strcpy(w->rid, log_request_id());
    h2o_linklist_insert(&t->waiters, &w->link);
    if (!h2o_timeout_is_linked(&t->flush))
        h2o_timeout_link(t->loop, &t->zero_to, &t->flush);
    return 0;
}

void redistrack_cancel(redistrack_wait *w)
{
    if (h2o_linklist_is_linked(&w->link))
        h2o_linklist_unlink(&w->link);
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

static int resolve(redistrack *t, const config_redis *ep)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    char port[16];
    snprintf(port, sizeof(port), "%d", ep->port);
    const char *host = strcasecmp(ep->host, "localhost") == 0 ? "127.0.0.1" : ep->host;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0 || res == NULL || res->ai_addrlen > sizeof(t->addr)) {
        log_warn("redis %s: cannot resolve the host name for the invalidation connection (%s); "
                 "no local report copies",
                 ep->host, rc != 0 ? gai_strerror(rc) : "no address");
        if (res != NULL)
            freeaddrinfo(res);
        return -1;
    }
    memcpy(&t->addr, res->ai_addr, res->ai_addrlen);
    t->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

redistrack *redistrack_create(h2o_loop_t *loop, const config_redis *ep, size_t max_bytes)
{
    if (max_bytes == 0 || ep->tls)
        return NULL;
    redistrack *t = xcalloc(1, sizeof(*t));
    if (resolve(t, ep) != 0) {
        free(t);
        return NULL;
    }
    t->loop = loop;
    t->endpoint = strchr(ep->host, ':') != NULL ? xasprintf("[%s]:%d", ep->host, ep->port)
                                                : xasprintf("%s:%d", ep->host, ep->port);
    t->username = ep->username != NULL ? xstrdup(ep->username) : NULL;
    t->password = ep->password != NULL ? xstrdup(ep->password) : NULL;
    t->lc = localcache_create(max_bytes);
    t->epoch = 1;
    h2o_linklist_init_anchor(&t->waiters);
    jbuf_init(&t->vkey);
    jbuf_init(&t->ekey);
    h2o_timeout_init(loop, &t->zero_to, 0);
    h2o_timeout_init(loop, &t->deadline_to, REDISCONN_TIMEOUT_MS);
    h2o_timeout_init(loop, &t->retry_to, TRK_RETRY_MS);
    t->flush.cb = on_flush;
    t->deadline.cb = on_deadline;
    t->retry.cb = on_retry;
    t->failures_seen = redis_failures();
    connect_now(t);
    return t;
}

void redistrack_destroy(redistrack *t)
{
    if (t == NULL)
        return;
    while (!h2o_linklist_is_empty(&t->waiters))
        h2o_linklist_unlink(t->waiters.next);
    if (t->sock != NULL)
        h2o_socket_close(t->sock);
    if (t->reader != NULL)
        redisReaderFree(t->reader);
    h2o_timeout_unlink(&t->flush);
    h2o_timeout_unlink(&t->deadline);
    h2o_timeout_unlink(&t->retry);
    h2o_timeout_dispose(t->loop, &t->zero_to);
    h2o_timeout_dispose(t->loop, &t->deadline_to);
    h2o_timeout_dispose(t->loop, &t->retry_to);
    localcache_destroy(t->lc);
    jbuf_free(&t->vkey);
    jbuf_free(&t->ekey);
    if (t->password != NULL)
        memset(t->password, 0, strlen(t->password));
    free(t->password);
    free(t->username);
    free(t->endpoint);
    free(t);
}
