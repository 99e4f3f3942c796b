/*
 * bench/ingest/nats_drain.c: the "NATS alone" reference of bench/run's SMS ingestion benchmark.
 * Built by the optional CMake target bench_nats_drain (not part of `all`; cnats 3.4.1, like the
 * service).
 *
 *   bench_nats_drain URL DURABLE BATCH N_BILLING N_DLR [TIMEOUT_S]
 *
 * Creates the durable pull consumer DURABLE on the streams BILLING (billing.events) and SMS_DLR
 * (sms.dlr.inbound) with the ingest worker's settings (explicit acks, DeliverPolicy all, ack wait
 * 10 s, max ack pending 20000), binds to it, then consumes both streams the way
 * worker/ingest_worker.c does, without PostgreSQL and without looking at the bodies: fetch up to
 * BATCH messages from each stream in turn (25 ms timeout, 2 ms for a stream that was idle while
 * the other had work), ack each message (natsMsg_Ack), until N_BILLING and N_DLR messages have
 * been received (one deviation: see safe_batch). Then it flushes the connection and polls
 * consumer info (every 5 ms) until both consumers have nothing pending or unacknowledged, and
 * prints "elapsed_ms received cpu_ms" on standard output: elapsed from the first fetch to that
 * confirmation, and the CPU time (user + system) this process used in all. Exit 1 on an error or
 * after TIMEOUT_S (default 900) seconds.
 */
#include <inttypes.h>
#include <nats/nats.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define IDLE_FETCH_MS   25
#define BUSY_FETCH_MS   2
#define ACK_WAIT_NS     (INT64_C(10) * 1000000000)
#define MAX_ACK_PENDING 20000

typedef struct stream {
    const char *name, *subject;
    natsSubscription *sub;
    int64_t want, got;
    bool busy;
} stream;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void fail(const char *what, natsStatus s, jsErrCode jerr)
{
    fprintf(stderr, "bench_nats_drain: %s: %s (%d)\n", what, natsStatus_GetText(s), (int)jerr);
    nats_PrintLastErrorStack(stderr);
    exit(1);
}

static void bind(jsCtx *js, stream *st, const char *durable)
{
    jsConsumerConfig cc;
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    jsConsumerConfig_Init(&cc);
    cc.Durable = durable;
    cc.FilterSubject = st->subject;
    /* The ingest worker's settings (see the top of this file), written here again on purpose:
     * this reference program does not depend on the service's code. */
    cc.AckPolicy = js_AckExplicit;
    cc.DeliverPolicy = js_DeliverAll;
    cc.AckWait = ACK_WAIT_NS;
    cc.MaxAckPending = MAX_ACK_PENDING;
    natsStatus s = js_AddConsumer(&ci, js, st->name, &cc, NULL, &jerr);
    if (s != NATS_OK)
        fail("add consumer", s, jerr);
    jsConsumerInfo_Destroy(ci);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = st->name;
    so.Consumer = durable;
    s = js_PullSubscribe(&st->sub, js, st->subject, durable, NULL, &so, &jerr);
    if (s != NATS_OK)
        fail("pull subscribe", s, jerr);
}

/*
 * cnats 3.4.1 (Debian bookworm) overflows the message array of natsSubscription_Fetch when the
 * subscription already holds more than half a batch of messages delivered after an earlier
 * fetch timed out: it reduces the batch by what it took from the queue, then loops while
 * count != batch, writing past the array (fixed upstream in v3.10.0, "Fix heap buffer overflow
 * in _fetch", #749). Asking for exactly what is queued (when something is) makes the first loop
 * fill the batch, so the second never runs.
 */
static int safe_batch(natsSubscription *sub, int batch)
{
    int queued = 0, bytes = 0;
    if (natsSubscription_GetPending(sub, &queued, &bytes) == NATS_OK && queued > 0 &&
        queued < batch)
        return queued;
    return batch;
}

static int64_t outstanding(jsCtx *js, const stream *st, const char *durable)
{
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetConsumerInfo(&ci, js, st->name, durable, NULL, &jerr);
    if (s != NATS_OK)
        fail("consumer info", s, jerr);
    int64_t n = (int64_t)ci->NumPending + ci->NumAckPending;
    jsConsumerInfo_Destroy(ci);
    return n;
}

int main(int argc, char **argv)
{
    if (argc < 6 || argc > 7) {
        fprintf(stderr, "usage: bench_nats_drain URL DURABLE BATCH N_BILLING N_DLR [TIMEOUT_S]\n");
        return 2;
    }
    const char *url = argv[1], *durable = argv[2];
    int batch = atoi(argv[3]);
    double timeout_ms = (argc > 6 ? atof(argv[6]) : 900.0) * 1000.0;
    stream st[2] = {{"BILLING", "billing.events", NULL, strtoll(argv[4], NULL, 10), 0, false},
                    {"SMS_DLR", "sms.dlr.inbound", NULL, strtoll(argv[5], NULL, 10), 0, false}};
    if (batch < 1 || st[0].want < 0 || st[1].want < 0) {
        fprintf(stderr, "bench_nats_drain: bad BATCH or counts\n");
        return 2;
    }
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    natsStatus s = natsConnection_ConnectTo(&nc, url);
    if (s == NATS_OK)
        s = natsConnection_JetStream(&js, nc, NULL);
    if (s != NATS_OK)
        fail("connect", s, 0);
    for (int i = 0; i < 2; i++)
        bind(js, &st[i], durable);

    double t0 = now_ms(), deadline = t0 + timeout_ms;
    while (st[0].got < st[0].want || st[1].got < st[1].want) {
        if (now_ms() > deadline) {
            fprintf(stderr,
                    "bench_nats_drain: timeout (%" PRId64 "/%" PRId64 ", %" PRId64 "/%" PRId64
                    ")\n",
                    st[0].got, st[0].want, st[1].got, st[1].want);
            return 1;
        }
        for (int i = 0; i < 2; i++) {
            bool other_busy = st[1 - i].busy && !st[i].busy;
            natsMsgList list = {0};
            s = natsSubscription_Fetch(&list, st[i].sub, safe_batch(st[i].sub, batch),
                                       other_busy ? BUSY_FETCH_MS : IDLE_FETCH_MS, NULL);
            st[i].busy = s == NATS_OK && list.Count > 0;
            for (int k = 0; k < list.Count; k++)
                natsMsg_Ack(list.Msgs[k], NULL);
            st[i].got += list.Count;
            natsMsgList_Destroy(&list);
            if (s != NATS_OK && s != NATS_TIMEOUT && s != NATS_NOT_FOUND)
                fail("fetch", s, 0);
        }
    }
    s = natsConnection_Flush(nc);
    if (s != NATS_OK)
        fail("flush", s, 0);
    while (outstanding(js, &st[0], durable) + outstanding(js, &st[1], durable) > 0) {
        if (now_ms() > deadline) {
            fprintf(stderr, "bench_nats_drain: consumers not drained in time\n");
            return 1;
        }
        nats_Sleep(5);
    }
    double t1 = now_ms();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
                 (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
    printf("%.1f %" PRId64 " %.0f\n", t1 - t0, st[0].got + st[1].got, cpu);
    for (int i = 0; i < 2; i++)
        natsSubscription_Destroy(st[i].sub);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    nats_Close();
    return 0;
}
