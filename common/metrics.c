/*
 * common/metrics.c: the shared metrics region (see metrics.h): created by the master, written by
 * every child into its own slot, retired by the master, summed by the scraping HTTP worker.
 */
#include "common/metrics.h"

#include "common/log.h"
#include "common/registry.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

_Static_assert(sizeof(metrics_counters) % sizeof(uint64_t) == 0, "counters are 64-bit cells");
_Static_assert(sizeof(_Atomic uint64_t) == sizeof(uint64_t), "atomic cells are plain-sized");

/* Sums tried before a scrape takes an inconsistent one: only a master that died inside
 * metrics_retire leaves the sequence odd, and then the children are being stopped anyway. */
#define METRICS_SUM_ATTEMPTS 1000

metrics_shared *metrics_global;

static metrics_slot dummy_slot; /* processes without a mapping record here */
metrics_slot *metrics_self = &dummy_slot;

/* ---- label sets -------------------------------------------------------------------------- */

const int metrics_code_values[METRICS_CODES - 1] = {200, 202, 204, 304, 400, 401, 403, 404,
                                                    405, 408, 409, 413, 431, 500, 503};
const char *const metrics_method_names[METRICS_METHODS] = {"GET",    "HEAD",  "POST",    "PUT",
                                                           "DELETE", "PATCH", "OPTIONS", "other"};
const char *const metrics_kind_names[METRICS_KINDS] = {"supervisor", "recompute", "http", "ingest"};
const char *const metrics_cause_names[METRICS_CAUSES] = {"killed", "exited", "hung"};
const char *const metrics_transport_names[METRICS_TRANSPORTS] = {"nats", "http"};
const char *const metrics_outcome_names[METRICS_OUTCOMES] = {"accepted", "duplicate", "ignored",
                                                             "rejected"};
const char *const metrics_stream_names[METRICS_STREAMS] = {"billing", "receipt"};

/* ---- bucket layouts ---------------------------------------------------------------------- */

#define MS 1000000ULL /* nanoseconds */

static const uint64_t http_bounds[] = {MS / 2,    1 * MS,    5 * MS / 2, 5 * MS,    10 * MS,
                                       25 * MS,   50 * MS,   100 * MS,   250 * MS,  500 * MS,
                                       1000 * MS, 2500 * MS, 5000 * MS,  10000 * MS};
static const char *const http_le[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
                                      "0.1",    "0.25",  "0.5",    "1",     "2.5",  "5",     "10"};
const metrics_buckets metrics_http_buckets = {14, http_bounds, http_le, 1000 * MS};

static const uint64_t recompute_bounds[] = {50 * MS,    100 * MS,   250 * MS,   500 * MS,
                                            1000 * MS,  2500 * MS,  5000 * MS,  10000 * MS,
                                            30000 * MS, 60000 * MS, 120000 * MS};
static const char *const recompute_le[] = {"0.05", "0.1", "0.25", "0.5", "1",  "2.5",
                                           "5",    "10",  "30",   "60",  "120"};
const metrics_buckets metrics_recompute_buckets = {11, recompute_bounds, recompute_le, 1000 * MS};

static const uint64_t batch_bounds[] = {1, 2, 5, 10, 25, 50, 100, 250, 500, 1000};
static const char *const batch_le[] = {"1",  "2",   "5",   "10",  "25",
                                       "50", "100", "250", "500", "1000"};
const metrics_buckets metrics_batch_buckets = {10, batch_bounds, batch_le, 1};

static const uint64_t commit_bounds[] = {1 * MS,   5 * MS / 2, 5 * MS,    10 * MS,
                                         25 * MS,  50 * MS,    100 * MS,  250 * MS,
                                         500 * MS, 1000 * MS,  2500 * MS, 5000 * MS};
static const char *const commit_le[] = {"0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
                                        "0.1",   "0.25",   "0.5",   "1",    "2.5",   "5"};
const metrics_buckets metrics_commit_buckets = {12, commit_bounds, commit_le, 1000 * MS};

/* ---- lifecycle --------------------------------------------------------------------------- */

metrics_shared *metrics_create(void)
{
    void *p = mmap(NULL, sizeof(metrics_shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                   -1, 0);
    if (p == MAP_FAILED) {
        log_error("cannot map the metrics region: out of memory");
        abort();
    }
    metrics_global = p; /* zero-filled; pages are allocated only for slots that get used */
    atomic_store(&metrics_global->pending_runs, -1);
    for (int i = 0; i < METRICS_STREAMS; i++)
        atomic_store(&metrics_global->sms_pending[i], -1);
    return p;
}

void metrics_attach(int slot)
{
    if (metrics_global == NULL || slot < 0 || slot >= SHSTATE_MAX_SLOTS)
        return;
    metrics_self = &metrics_global->slots[slot];
    atomic_store(&metrics_global->used[slot], 1);
}

void metrics_retire(int slot)
{
    if (metrics_global == NULL || slot < 0 || slot >= SHSTATE_MAX_SLOTS)
        return;
    metrics_slot *s = &metrics_global->slots[slot];
    if (atomic_load(&metrics_global->used[slot]) == 0)
        return; /* never attached (died before, or already retired): nothing to fold */
    metrics_shared *g = metrics_global;
    /* Writer side of the seqlock: odd while the slot moves into `retired`. */
    atomic_store_explicit(&g->seq, atomic_load_explicit(&g->seq, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    _Atomic uint64_t *from = (_Atomic uint64_t *)&s->counters;
    _Atomic uint64_t *to = (_Atomic uint64_t *)&g->retired;
    for (size_t i = 0; i < METRICS_CELLS; i++) {
        uint64_t v = atomic_load_explicit(&from[i], memory_order_relaxed);
        if (v == 0)
            continue;
        atomic_store_explicit(&to[i], atomic_load_explicit(&to[i], memory_order_relaxed) + v,
                              memory_order_relaxed);
        atomic_store_explicit(&from[i], 0, memory_order_relaxed);
    }
    atomic_store_explicit(&s->gauges.pg_busy, 0, memory_order_relaxed);
    atomic_store_explicit(&s->gauges.pg_idle, 0, memory_order_relaxed);
    atomic_store_explicit(&s->gauges.pg_connecting, 0, memory_order_relaxed);
    atomic_store_explicit(&s->gauges.pg_queued, 0, memory_order_relaxed);
    atomic_store_explicit(&s->gauges.redis_connected, 0, memory_order_relaxed);
    atomic_store_explicit(&s->gauges.report_local_bytes, 0, memory_order_relaxed);
    atomic_store_explicit(&s->gauges.report_local_items, 0, memory_order_relaxed);
    atomic_store_explicit(&g->used[slot], 0, memory_order_relaxed);
    atomic_store_explicit(&g->seq, atomic_load_explicit(&g->seq, memory_order_relaxed) + 1,
                          memory_order_release);
}

void metrics_count_restart(metrics_kind kind, metrics_cause cause)
{
    if (metrics_global != NULL && (unsigned)kind < METRICS_KINDS &&
        (unsigned)cause < METRICS_CAUSES)
        metrics_add(&metrics_global->restarts[kind][cause], 1);
}

/* ---- recording --------------------------------------------------------------------------- */

void metrics_observe(metrics_hist *h, const metrics_buckets *b, uint64_t value)
{
    size_t i = 0;
    while (i < b->n && value > b->bound[i])
        i++;
    metrics_add(&h->bucket[i], 1);
    metrics_add(&h->sum, value);
}

unsigned metrics_code_index(int status)
{
    for (unsigned i = 0; i < METRICS_CODES - 1; i++) {
        if (metrics_code_values[i] == status)
            return i;
    }
    return METRICS_CODES - 1;
}

static unsigned method_index(const char *m, size_t len)
{
    for (unsigned i = 0; i < METRICS_METHODS - 1; i++) {
        const char *name = metrics_method_names[i];
        if (strlen(name) == len && memcmp(name, m, len) == 0)
            return i;
    }
    return METRICS_METHODS - 1;
}

void metrics_http_request(unsigned route, const char *method, size_t method_len, int status,
                          uint64_t duration_ns)
{
    if (route >= METRICS_ROUTES)
        route = METRICS_ROUTES - 1;
    metrics_counters *c = &metrics_self->counters;
    metrics_add(
        &c->http_requests[route][method_index(method, method_len)][metrics_code_index(status)], 1);
    /* The histogram's count is the route's request count: only bucket and sum are added. */
    metrics_hist *h = &c->http_duration[route];
    size_t i = 0;
    while (i < metrics_http_buckets.n && duration_ns > metrics_http_buckets.bound[i])
        i++;
    metrics_add(&h->bucket[i], 1);
    metrics_add(&h->sum, duration_ns);
}

void metrics_recompute_finished(int completed, uint64_t duration_ns)
{
    metrics_counters *c = &metrics_self->counters;
    metrics_add(&c->recompute_runs[completed ? 0 : 1], 1);
    metrics_observe(&c->recompute_duration, &metrics_recompute_buckets, duration_ns);
}

void metrics_sms_count(metrics_transport t, const metrics_sms_tally *tally)
{
    metrics_counters *c = &metrics_self->counters;
    for (unsigned o = 0; o < METRICS_OUTCOMES; o++) {
        if (tally->outcome[o] != 0)
            metrics_add(&c->sms_events[t][o], tally->outcome[o]);
    }
    for (unsigned r = 0; r < METRICS_REASONS; r++) {
        if (tally->rejected[r] != 0)
            metrics_add(&c->sms_rejected[t][r], tally->rejected[r]);
    }
}

void metrics_set_pending_runs(int64_t n)
{
    if (metrics_global != NULL)
        atomic_store_explicit(&metrics_global->pending_runs, n, memory_order_relaxed);
}

void metrics_set_sms_pending(unsigned stream, int64_t n)
{
    if (metrics_global != NULL && stream < METRICS_STREAMS)
        atomic_store_explicit(&metrics_global->sms_pending[stream], n, memory_order_relaxed);
}

unsigned metrics_report_count(void)
{
    unsigned n = (unsigned)registry_report_count + 1;
    return n <= METRICS_REPORTS ? n : METRICS_REPORTS;
}

const char *metrics_report_name(unsigned i)
{
    return i + 1 < metrics_report_count() ? registry_reports[i].slug : "other";
}

unsigned metrics_report_index(const char *slug, size_t len)
{
    const registry_report *r = registry_report_find(slug, len);
    unsigned i = r != NULL ? (unsigned)registry_report_index(r) : METRICS_REPORTS;
    return i + 1 < metrics_report_count() ? i : metrics_report_count() - 1;
}

/* ---- reading ----------------------------------------------------------------------------- */

static void add_cells(uint64_t *to, const metrics_counters *from)
{
    const _Atomic uint64_t *cells = (const _Atomic uint64_t *)from;
    for (size_t i = 0; i < METRICS_CELLS; i++)
        to[i] += atomic_load_explicit(&cells[i], memory_order_relaxed);
}

int metrics_sum(metrics_totals *out)
{
    memset(out, 0, sizeof(*out));
    metrics_shared *g = metrics_global;
    if (g == NULL)
        return -1;
    for (int attempt = 1;; attempt++) {
        uint64_t seq = atomic_load_explicit(&g->seq, memory_order_acquire);
        if ((seq & 1) && attempt < METRICS_SUM_ATTEMPTS) {
            sched_yield(); /* the master is folding a slot: a few microseconds */
            continue;
        }
        memset(out, 0, sizeof(*out));
        add_cells(out->cells, &g->retired);
        for (int i = 0; i < SHSTATE_MAX_SLOTS; i++) {
            if (atomic_load_explicit(&g->used[i], memory_order_relaxed) == 0)
                continue;
            metrics_slot *s = &g->slots[i];
            add_cells(out->cells, &s->counters);
            out->pg_busy += atomic_load_explicit(&s->gauges.pg_busy, memory_order_relaxed);
            out->pg_idle += atomic_load_explicit(&s->gauges.pg_idle, memory_order_relaxed);
            out->pg_connecting +=
                atomic_load_explicit(&s->gauges.pg_connecting, memory_order_relaxed);
            out->pg_queued += atomic_load_explicit(&s->gauges.pg_queued, memory_order_relaxed);
            out->redis_connected +=
                atomic_load_explicit(&s->gauges.redis_connected, memory_order_relaxed);
            out->report_local_bytes +=
                atomic_load_explicit(&s->gauges.report_local_bytes, memory_order_relaxed);
            out->report_local_items +=
                atomic_load_explicit(&s->gauges.report_local_items, memory_order_relaxed);
        }
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&g->seq, memory_order_relaxed) == seq ||
            attempt >= METRICS_SUM_ATTEMPTS)
            return 0; /* consistent, or (the master stopped mid-fold) the best there is */
    }
}
