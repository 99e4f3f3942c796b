/*
 * worker/ingest_worker.c: an ingest worker process (forked by the master, INGEST_WORKERS of them
 * when NATS_URL is set; SMS.md §4). It blocks freely: its pulls are request/reply.
 *
 * It owns one NATS connection (unlimited reconnects), the durable pull consumers of the billing
 * and receipt streams (created with the streams when NATS_CREATE_STREAMS is true), one
 * PostgreSQL session (role "ingest"), and the loop:
 *
 *   fetch a batch from either stream -> validate each message (common/sms_event.h) -> apply the
 *   batch in one statement (common/sms_store.h) -> ack every message of it
 *
 * so a crash at any point leads to redelivery, and redelivery to `duplicate` (SMS.md §2.4).
 * Rejected and ignored messages are acked with their batch: a poison message never blocks a
 * stream. When the batch cannot be applied (PostgreSQL down, a statement error such as a missing
 * partition) every message of it is negatively acknowledged with a delay and the worker backs
 * off; nothing is lost. While NATS is unreachable, fetches fail fast and the worker waits.
 * Batches are pipelined: the next one is fetched and validated while PostgreSQL applies the
 * current one, whose messages are acked before the next is sent.
 * Its heartbeat and NATS state live in its shared slot (health reads nats_connected).
 *
 * Test hook: ANALYTICSD_TEST_INGEST_CRASH_ONCE=<path> makes the first worker that creates that
 * file exit with a crash status right after its first committed batch, before acking it; it
 * exists only so tests can prove redelivery after that crash, and is logged loudly when used.
 */
#include "worker/ingest_worker.h"

#include "common/exitcodes.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/pgsession.h"
#include "common/shstate.h"
#include "common/sms_event.h"
#include "common/sms_store.h"
#include "common/util.h"
#include "worker/stopsignal.h"

#include <fcntl.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define INGEST_IDLE_FETCH_MS   25   /* both streams idle: each pull waits this long */
#define INGEST_BUSY_FETCH_MS   5    /* this stream was idle and the other has work */
#define INGEST_RETRY_MS        1000 /* NATS or stream setup failed: try again after this */
#define INGEST_NAK_DELAY_MS    2000 /* a batch that could not be applied is redelivered then */
#define INGEST_BACKOFF_MAX_MS  5000
#define INGEST_ACK_WAIT_NS     (INT64_C(10) * 1000000000)
#define INGEST_MAX_ACK_PENDING 20000
#define INGEST_STREAM_MAX_AGE  (INT64_C(24) * 3600 * 1000000000) /* <= SMS_DEDUPE_RETENTION */
#define INGEST_STREAM_DUPES    (INT64_C(120) * 1000000000)
#define INGEST_STATEMENT_LIMIT "SET statement_timeout = '20s'"

typedef struct ingest_stream {
    sms_subject subject;
    const char *stream;    /* NATS_BILLING_STREAM / NATS_DLR_STREAM */
    natsSubscription *sub; /* synchronous subscription on this stream's own inbox */
    natsInbox *inbox;
    char *next_subject; /* $JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer> */
    bool busy;          /* the last pull returned messages */
} ingest_stream;

/* One fetched list and the batch built from it; two of them take turns (fetch one while
 * PostgreSQL applies the other). */
typedef struct ingest_slot {
    natsMsg **msgs; /* the pulled messages (owned), count of them */
    int count;
    const ingest_stream *st;
    sms_batch batch;
    bool in_flight;          /* sent to PostgreSQL, result not read yet */
    int64_t sent_ns;         /* when the batch was sent (commit latency metric) */
    metrics_sms_tally tally; /* ignored and rejected messages of the batch (accepted and
                                duplicates are added once it commits) */
} ingest_slot;

typedef struct ingest {
    const config *cfg;
    shstate_slot *me;
    int stopfd;
    natsConnection *nc;
    jsCtx *js;
    ingest_stream streams[2];
    PGconn *pg;
    ingest_slot slots[2];
    int next_slot;   /* the slot the next fetch fills; the other may be in flight */
    int next_stream; /* the stream looked at first by the next fetch */
    bool *accepted;  /* per batch position: accepted (else duplicate) */
    size_t accepted_cap;
    int backoff_ms;  /* current back-off after failed batches */
    bool crash_once; /* test hook: crash after the next commit */
} ingest;

/* ---- connections -------------------------------------------------------------------------- */

static void beat(ingest *w)
{
    atomic_store(&w->me->heartbeat_ns, clock_monotonic_ns());
    bool up = w->nc != NULL && natsConnection_Status(w->nc) == NATS_CONN_STATUS_CONNECTED;
    atomic_store(&w->me->nats_connected, up ? 1 : 0);
}

/* Waits ms (heartbeating); returns true when a stop signal arrived. */
static bool pause_ms(ingest *w, int ms)
{
    while (ms > 0) {
        int step = ms > 500 ? 500 : ms;
        if (stopsignal_wait(w->stopfd, step))
            return true;
        ms -= step;
        beat(w);
    }
    return false;
}

static PGconn *ingest_pg(ingest *w)
{
    if (w->pg != NULL && PQstatus(w->pg) != CONNECTION_OK) {
        log_warn("database session lost; reconnecting");
        PQfinish(w->pg);
        w->pg = NULL;
    }
    if (w->pg == NULL) {
        w->pg = pgsession_connect(w->cfg->database_url, "ingest");
        PGresult *res =
            w->pg ? pgsession_exec(w->pg, "ingest session setup", INGEST_STATEMENT_LIMIT, 0, NULL)
                  : NULL;
        if (res != NULL)
            PQclear(res);
    }
    return w->pg;
}

/* Called on the library's threads: health sees a NATS outage at once, not at the next beat. */
static void on_nats_down(natsConnection *nc, void *closure)
{
    (void)nc;
    atomic_store(&((shstate_slot *)closure)->nats_connected, 0);
}

static void on_nats_up(natsConnection *nc, void *closure)
{
    (void)nc;
    atomic_store(&((shstate_slot *)closure)->nats_connected, 1);
}

/* Connects to NATS (the library then reconnects forever). 0, or -1 after logging. */
static int nats_connect(ingest *w)
{
    natsOptions *opts = NULL;
    char *urls = xstrdup(w->cfg->nats_url);
    const char *servers[32];
    int n = 0;
    for (char *save = NULL, *u = strtok_r(urls, ",", &save); u != NULL && n < 32;
         u = strtok_r(NULL, ",", &save))
        servers[n++] = u;
    char name[64];
    snprintf(name, sizeof(name), "analyticsd-ingest-%d", (int)getpid());
    natsStatus s = natsOptions_Create(&opts);
    if (s == NATS_OK)
        s = natsOptions_SetServers(opts, servers, n);
    if (s == NATS_OK)
        s = natsOptions_SetName(opts, name);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(opts, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(opts, 500);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(opts, 2000);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(opts, on_nats_down, w->me);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(opts, on_nats_up, w->me);
    if (s == NATS_OK)
        s = natsConnection_Connect(&w->nc, opts);
    if (s == NATS_OK)
        s = natsConnection_JetStream(&w->js, w->nc, NULL);
    natsOptions_Destroy(opts);
    free(urls);
    if (s != NATS_OK) {
        log_warn("cannot connect to NATS: %s; retrying", natsStatus_GetText(s));
        if (w->nc != NULL)
            natsConnection_Destroy(w->nc);
        w->nc = NULL;
        w->js = NULL;
        return -1;
    }
    log_info("connected to NATS");
    return 0;
}

/* Creates the stream when allowed and missing. 0, or -1 after logging. */
static int ensure_stream(ingest *w, const ingest_stream *st)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, w->js, st->stream, NULL, &jerr);
    if (s == NATS_OK) {
        if (si->Config->MaxAge == 0 || si->Config->MaxAge > w->cfg->sms_dedupe_retention_ns)
            log_warn("stream %s keeps messages longer than SMS_DEDUPE_RETENTION: a redelivery "
                     "older than that would be counted again",
                     st->stream);
        jsStreamInfo_Destroy(si);
        return 0;
    }
    if (s != NATS_NOT_FOUND || !w->cfg->nats_create_streams) {
        log_warn("stream %s is not available (%s)%s", st->stream, natsStatus_GetText(s),
                 s == NATS_NOT_FOUND ? "; set NATS_CREATE_STREAMS=true or create it" : "");
        return -1;
    }
    const char *subjects[1] = {sms_subject_name(st->subject)};
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = st->stream;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.MaxAge = INGEST_STREAM_MAX_AGE;
    sc.Duplicates = INGEST_STREAM_DUPES;
    s = js_AddStream(&si, w->js, &sc, NULL, &jerr);
    if (s != NATS_OK && jerr != JSStreamNameExistErr) {
        log_warn("cannot create stream %s: %s (%d)", st->stream, natsStatus_GetText(s), (int)jerr);
        return -1;
    }
    if (s == NATS_OK)
        log_info("created stream %s (subject %s)", st->stream, subjects[0]);
    jsStreamInfo_Destroy(si);
    return 0;
}

/* Binds the durable pull consumer of a stream, creating it when allowed. 0, or -1. */
static int bind_consumer(ingest *w, ingest_stream *st)
{
    const char *durable = w->cfg->nats_consumer;
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetConsumerInfo(&ci, w->js, st->stream, durable, NULL, &jerr);
    if (s == NATS_NOT_FOUND && w->cfg->nats_create_streams) {
        jsConsumerConfig cc;
        jsConsumerConfig_Init(&cc);
        cc.Durable = durable;
        cc.AckPolicy = js_AckExplicit;
        cc.DeliverPolicy = js_DeliverAll;
        cc.AckWait = INGEST_ACK_WAIT_NS;
        cc.MaxAckPending = INGEST_MAX_ACK_PENDING;
        cc.FilterSubject = sms_subject_name(st->subject);
        s = js_AddConsumer(&ci, w->js, st->stream, &cc, NULL, &jerr);
        if (s == NATS_OK)
            log_info("created consumer %s on stream %s", durable, st->stream);
    }
    jsConsumerInfo_Destroy(ci);
    if (s != NATS_OK) {
        log_warn("consumer %s on stream %s is not available: %s", durable, st->stream,
                 natsStatus_GetText(s));
        return -1;
    }
    /* Pull requests are sent by hand to this stream's own inbox (see pull()). */
    if (st->inbox == NULL && natsInbox_Create(&st->inbox) != NATS_OK)
        return -1;
    free(st->next_subject);
    st->next_subject = xasprintf("$JS.API.CONSUMER.MSG.NEXT.%s.%s", st->stream, durable);
    s = natsConnection_SubscribeSync(&st->sub, w->nc, st->inbox);
    if (s == NATS_OK)
        s = natsSubscription_SetPendingLimits(st->sub, -1, -1);
    if (s != NATS_OK) {
        log_warn("cannot subscribe for consumer %s on stream %s: %s", durable, st->stream,
                 natsStatus_GetText(s));
        if (st->sub != NULL)
            natsSubscription_Destroy(st->sub);
        st->sub = NULL;
        return -1;
    }
    return 0;
}

/* Connection, streams and consumers; retries until ready. false when asked to stop. */
static bool nats_setup(ingest *w)
{
    for (;;) {
        beat(w);
        if (w->nc == NULL && nats_connect(w) != 0) {
            if (pause_ms(w, INGEST_RETRY_MS))
                return false;
            continue;
        }
        bool ok = true;
        for (int i = 0; i < 2 && ok; i++) {
            if (w->streams[i].sub == NULL)
                ok = ensure_stream(w, &w->streams[i]) == 0 && bind_consumer(w, &w->streams[i]) == 0;
        }
        if (ok)
            return true;
        if (pause_ms(w, INGEST_RETRY_MS))
            return false;
    }
}

/* ---- batches ----------------------------------------------------------------------------- */

/* Acks (or naks with a delay) every message of s by publishing to its reply subject, then
 * frees them. */
static void settle(ingest *w, ingest_slot *s, bool ack)
{
    char nak[64];
    snprintf(nak, sizeof(nak), "-NAK {\"delay\":%lld}", (long long)INGEST_NAK_DELAY_MS * 1000000);
    for (int i = 0; i < s->count; i++) {
        const char *reply = natsMsg_GetReply(s->msgs[i]);
        if (reply != NULL)
            natsConnection_PublishString(w->nc, reply, ack ? "+ACK" : nak);
        natsMsg_Destroy(s->msgs[i]);
    }
    s->count = 0;
}

/* Validates the fetched messages of s into its batch. */
static void build_batch(ingest *w, ingest_slot *s)
{
    sms_window win = sms_window_at(clock_realtime_ns(), w->cfg->sms_hourly_retention_days);
    sms_batch_reset(&s->batch);
    memset(&s->tally, 0, sizeof(s->tally));
    for (int i = 0; i < s->count; i++) {
        natsMsg *m = s->msgs[i];
        const char *header_id = NULL;
        if (natsMsgHeader_Get(m, "Nats-Msg-Id", &header_id) != NATS_OK)
            header_id = NULL;
        const char *data = natsMsg_GetData(m);
        size_t len = data ? (size_t)natsMsg_GetDataLength(m) : 0;
        sms_parse p;
        sms_event_parse(data ? data : "", len, s->st->subject, header_id, &win, &p);
        if (p.verdict == SMS_VALID)
            sms_batch_add_event(&s->batch, &p.ev);
        else if (p.verdict == SMS_REJECTED)
            sms_batch_add_rejection(&s->batch, sms_subject_name(s->st->subject), &p,
                                    data ? data : "", len);
        if (p.verdict == SMS_IGNORED)
            s->tally.outcome[METRICS_OUTCOME_IGNORED]++;
        if (p.verdict == SMS_REJECTED && (unsigned)p.reason < METRICS_REASONS) {
            s->tally.outcome[METRICS_OUTCOME_REJECTED]++;
            s->tally.rejected[p.reason]++;
        }
        sms_parse_free(&p);
    }
}

/* Gives up on s: every message is redelivered later, and the worker backs off. */
static void give_up(ingest *w, ingest_slot *s)
{
    int n = s->count;
    settle(w, s, false);
    w->backoff_ms = w->backoff_ms == 0 ? 250 : w->backoff_ms * 2;
    if (w->backoff_ms > INGEST_BACKOFF_MAX_MS)
        w->backoff_ms = INGEST_BACKOFF_MAX_MS;
    log_warn("%d message(s) from %s will be redelivered; backing off %d ms", n, s->st->stream,
             w->backoff_ms);
}

/* Sends the batch of s to PostgreSQL (its result is read by finish). */
static void send(ingest *w, ingest_slot *s)
{
    if (ingest_pg(w) == NULL || sms_store_send(w->pg, &s->batch) != SMS_STORE_OK) {
        give_up(w, s);
        return;
    }
    s->in_flight = true;
    s->sent_ns = clock_monotonic_ns();
}

/* Metrics of a committed batch: outcomes, size, commit latency. */
static void count_batch(ingest *w, ingest_slot *s)
{
    metrics_sms_tally t = s->tally;
    for (size_t i = 0; i < s->batch.events; i++)
        t.outcome[w->accepted[i] ? METRICS_OUTCOME_ACCEPTED : METRICS_OUTCOME_DUPLICATE]++;
    metrics_sms_count(METRICS_TRANSPORT_NATS, &t);
    metrics_counters *c = &metrics_self->counters;
    metrics_observe(&c->sms_batch_size, &metrics_batch_buckets, (uint64_t)s->count);
    metrics_observe(&c->sms_commit, &metrics_commit_buckets,
                    (uint64_t)(clock_monotonic_ns() - s->sent_ns));
}

/* Reads the result of the batch in flight in s, then acks (committed) or naks it. */
static void finish(ingest *w, ingest_slot *s)
{
    if (!s->in_flight)
        return;
    s->in_flight = false;
    if (s->batch.events > w->accepted_cap) { /* never trust a list to hold at most a batch */
        w->accepted_cap = s->batch.events;
        w->accepted = xrealloc(w->accepted, w->accepted_cap * sizeof(*w->accepted));
    }
    if (sms_store_finish(w->pg, &s->batch, w->accepted) != SMS_STORE_OK) {
        give_up(w, s);
        return;
    }
    w->backoff_ms = 0;
    count_batch(w, s);
    if (w->crash_once) {
        log_warn("TEST HOOK: crashing after a commit, before the ack");
        fflush(NULL);
        _exit(EXIT_CHILD_CRASHED);
    }
    settle(w, s, true);
}

/* A JetStream status message (404 no messages, 408 request expired, 409, 100 heartbeat). */
static bool is_status(natsMsg *m)
{
    const char *v = NULL;
    return natsMsg_GetDataLength(m) == 0 && natsMsgHeader_Get(m, "Status", &v) == NATS_OK;
}

/*
 * Pulls up to `batch` messages of st into s, waiting up to wait_ms (SMS.md §4). The pull request
 * ($JS.API.CONSUMER.MSG.NEXT) is sent by hand on the stream's own inbox instead of through
 * cnats 3.4.1's natsSubscription_Fetch: that function writes past its array when messages of an
 * earlier request are still queued (nats.c#749, fixed in 3.10; it crashed this worker in the
 * NATS and PostgreSQL outage test). Here messages that arrive after a pull ended, or stale
 * statuses, are simply taken by the next pull; nothing is ever written past s->msgs.
 * Returns the number of messages pulled.
 */
static int pull(ingest *w, ingest_stream *st, ingest_slot *s, int batch, int wait_ms)
{
    if (s->msgs == NULL)
        s->msgs = xcalloc((size_t)batch, sizeof(*s->msgs));
    s->count = 0;
    natsMsg *m = NULL;
    /* What is already queued (late answers to earlier pulls) comes first. */
    while (s->count < batch && natsSubscription_NextMsg(&m, st->sub, 0) == NATS_OK) {
        if (is_status(m))
            natsMsg_Destroy(m);
        else
            s->msgs[s->count++] = m;
    }
    if (s->count == batch)
        return s->count;
    char req[96];
    if (s->count > 0) /* take what the server has now, without waiting */
        snprintf(req, sizeof(req), "{\"batch\":%d,\"no_wait\":true}", batch - s->count);
    else
        snprintf(req, sizeof(req), "{\"batch\":%d,\"expires\":%lld}", batch,
                 (long long)wait_ms * 1000000);
    if (natsConnection_PublishRequestString(w->nc, st->next_subject, st->inbox, req) != NATS_OK)
        return s->count;
    int64_t deadline = clock_monotonic_ns() + ((int64_t)wait_ms + 50) * 1000000;
    while (s->count < batch) {
        int64_t left_ms = (deadline - clock_monotonic_ns()) / 1000000;
        if (left_ms <= 0 || natsSubscription_NextMsg(&m, st->sub, left_ms) != NATS_OK)
            break;
        if (!is_status(m)) {
            s->msgs[s->count++] = m;
            continue;
        }
        natsMsg_Destroy(m); /* this request (or an earlier one) is over */
        break;
    }
    return s->count;
}

/* Consumer lag metric: the pending count in the last pulled message's metadata, or 0 when a
 * pull over a working connection found nothing (the consumer has nothing left to deliver); left
 * as it was while NATS is unreachable. */
static void note_pending(ingest *w, const ingest_stream *st, const ingest_slot *s, int n)
{
    if (n == 0) {
        if (natsConnection_Status(w->nc) == NATS_CONN_STATUS_CONNECTED)
            metrics_set_sms_pending(st->subject, 0);
        return;
    }
    jsMsgMetaData *meta = NULL;
    if (natsMsg_GetMetaData(&meta, s->msgs[n - 1]) == NATS_OK && meta != NULL)
        metrics_set_sms_pending(st->subject, (int64_t)meta->NumPending);
    if (meta != NULL)
        jsMsgMetaData_Destroy(meta);
}

/*
 * Pulls the next batch into s from one of the streams, taking turns. A stream whose last pull
 * brought messages may wait for a whole batch; an idle one only gets a short look while the
 * other stream has work or a batch is in flight. Returns true when s holds messages.
 */
static bool fetch(ingest *w, ingest_slot *s, bool in_flight)
{
    for (int k = 0; k < 2; k++) {
        ingest_stream *st = &w->streams[(w->next_stream + k) % 2];
        ingest_stream *other = &w->streams[(w->next_stream + k + 1) % 2];
        bool short_look = !st->busy && (other->busy || in_flight);
        int n = pull(w, st, s, w->cfg->sms_ingest_batch,
                     short_look ? INGEST_BUSY_FETCH_MS : INGEST_IDLE_FETCH_MS);
        st->busy = n > 0;
        note_pending(w, st, s, n);
        if (st->busy) {
            s->st = st;
            w->next_stream = (w->next_stream + k + 1) % 2;
            build_batch(w, s);
            return true;
        }
    }
    if (natsConnection_Status(w->nc) != NATS_CONN_STATUS_CONNECTED && !in_flight) {
        beat(w); /* disconnected: the library reconnects; do not spin */
        pause_ms(w, 100);
    }
    return false;
}

static bool test_crash_once(void)
{
    const char *path = getenv("ANALYTICSD_TEST_INGEST_CRASH_ONCE");
    if (path == NULL || *path == '\0')
        return false;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return false; /* an earlier worker crashed already */
    close(fd);
    log_warn("TEST HOOK: this ingest worker crashes after its first commit "
             "(ANALYTICSD_TEST_INGEST_CRASH_ONCE)");
    return true;
}

int ingest_worker_main(const config *cfg, int slot)
{
    ingest w = {0};
    w.cfg = cfg;
    w.me = &shstate_global->slots[slot];
    w.stopfd = stopsignal_open();
    if (w.stopfd < 0)
        return EXIT_CHILD_CRASHED;
    w.streams[0] =
        (ingest_stream){.subject = SMS_SUBJECT_BILLING, .stream = cfg->nats_billing_stream};
    w.streams[1] = (ingest_stream){.subject = SMS_SUBJECT_DLR, .stream = cfg->nats_dlr_stream};
    w.accepted_cap = (size_t)cfg->sms_ingest_batch;
    w.accepted = xcalloc(w.accepted_cap, sizeof(*w.accepted));
    w.crash_once = test_crash_once();
    for (int i = 0; i < 2; i++)
        sms_batch_init(&w.slots[i].batch, "nats");
    atomic_store(&w.me->ready, 1);
    ingest_pg(&w);

    if (nats_setup(&w)) {
        log_info("consuming %s and %s as %s (batches of up to %d)", cfg->nats_billing_stream,
                 cfg->nats_dlr_stream, cfg->nats_consumer, cfg->sms_ingest_batch);
        /* Pipelined: batch N+1 is fetched and validated while PostgreSQL applies batch N; N is
         * acknowledged once its statement committed, before N+1 is sent. */
        while (!stopsignal_wait(w.stopfd, 0)) {
            beat(&w);
            ingest_slot *cur = &w.slots[w.next_slot], *prev = &w.slots[1 - w.next_slot];
            if (w.backoff_ms > 0 && !prev->in_flight && pause_ms(&w, w.backoff_ms))
                break;
            bool got = fetch(&w, cur, prev->in_flight);
            finish(&w, prev);
            if (got) {
                send(&w, cur);
                w.next_slot = 1 - w.next_slot;
            }
        }
        finish(&w, &w.slots[1 - w.next_slot]);
    }
    /* Acks already handed to the library are flushed by closing the connection. */
    if (w.nc != NULL)
        natsConnection_Close(w.nc);
    PQfinish(w.pg);
    for (int i = 0; i < 2; i++) {
        sms_batch_free(&w.slots[i].batch);
        free(w.slots[i].msgs);
        free(w.streams[i].next_subject);
    }
    free(w.accepted);
    return EXIT_CHILD_STOPPED;
}
