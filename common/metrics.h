/*
 * common/metrics.h: the instance's Prometheus metrics in shared memory (README, "Metrics").
 * The master maps one region before the first fork (metrics_create); every child writes its own
 * slot (the slot number it has in common/shstate.h) and the HTTP worker answering GET /metrics
 * sums them (metrics_sum). Own mapping, not part of shstate: it is large (a few dozen KiB a slot,
 * touched only for slots in use) and has its own retirement protocol.
 *
 * Hot path: a process writes only its own slot, with relaxed atomic adds on cache lines no other
 * process writes: no locks, no shared counters bouncing between cores. A child killed at any
 * instruction leaves every cell either added to or not.
 *
 * Counters survive restarts: when the master reaps a child (metrics_retire), it adds the dead
 * slot's counters to a `retired` accumulator and zeroes the slot, inside a sequence counter
 * (seqlock) that only the summing reader waits on: a scrape that overlaps a retirement sums
 * again, so no sum ever counts a slot twice or not at all. The master never waits on anyone.
 * Gauges (pool state, Redis connection) belong to live processes and are dropped, not folded.
 *
 * Processes not forked by the master (CLI commands, unit tests) write a private dummy slot.
 */
#ifndef ANALYTICSD_METRICS_H
#define ANALYTICSD_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/shstate.h"

/* ---- bounded label sets ----------------------------------------------------------------- */

#define METRICS_ROUTES     24 /* route ids; larger ids count as the last one ("other") */
#define METRICS_METHODS    8  /* GET HEAD POST PUT DELETE PATCH OPTIONS other */
#define METRICS_CODES      16 /* metrics_code_values[] then "other" */
#define METRICS_REPORTS    17 /* room for the registry's reports and "other" */
#define METRICS_KINDS      4  /* metrics_kind */
#define METRICS_CAUSES     3  /* metrics_cause */
#define METRICS_TRANSPORTS 2  /* nats http */
#define METRICS_OUTCOMES   4  /* accepted duplicate ignored rejected */
#define METRICS_REASONS    8  /* sms_reason values (common/sms_event.h), 0 unused */
#define METRICS_STREAMS    2  /* billing receipt (sms_subject) */

/* Histograms keep non-cumulative bucket counts (the last one is +Inf) and a sum in base units
 * times the histogram's scale (nanoseconds for seconds). */
#define METRICS_MAX_BUCKETS 15

typedef enum {
    METRICS_KIND_SUPERVISOR,
    METRICS_KIND_RECOMPUTE,
    METRICS_KIND_HTTP,
    METRICS_KIND_INGEST
} metrics_kind;

typedef enum {
    METRICS_CAUSE_KILLED, /* ended by a signal the master did not send */
    METRICS_CAUSE_EXITED, /* exited on its own with a status (a crash status, or an early 0) */
    METRICS_CAUSE_HUNG    /* killed by the master after its heartbeat or job deadline expired */
} metrics_cause;

typedef enum { METRICS_TRANSPORT_NATS, METRICS_TRANSPORT_HTTP } metrics_transport;

typedef enum {
    METRICS_OUTCOME_ACCEPTED,
    METRICS_OUTCOME_DUPLICATE,
    METRICS_OUTCOME_IGNORED,
    METRICS_OUTCOME_REJECTED
} metrics_outcome;

typedef struct metrics_hist {
    _Atomic uint64_t bucket[METRICS_MAX_BUCKETS + 1];
    _Atomic uint64_t sum;
} metrics_hist;

/* Every counter of one process. Only _Atomic uint64_t members: retirement and summing treat it
 * as an array of cells. */
typedef struct metrics_counters {
    _Atomic uint64_t http_requests[METRICS_ROUTES][METRICS_METHODS][METRICS_CODES];
    metrics_hist http_duration[METRICS_ROUTES]; /* count = requests of the route */
    _Atomic uint64_t cache_hits[METRICS_REPORTS];
    _Atomic uint64_t cache_misses[METRICS_REPORTS];
    _Atomic uint64_t report_local_hits[METRICS_REPORTS]; /* cache hits answered from a local copy */
    _Atomic uint64_t report_local_evictions;             /* copies evicted by the LRU bound */
    _Atomic uint64_t report_local_invalidations;         /* keys (or flushes) Redis invalidated */
    _Atomic uint64_t report_local_resets;                /* times every copy was dropped at once */
    _Atomic uint64_t recompute_runs[2];                  /* completed, failed */
    metrics_hist recompute_duration;
    _Atomic uint64_t sms_events[METRICS_TRANSPORTS][METRICS_OUTCOMES];
    _Atomic uint64_t sms_rejected[METRICS_TRANSPORTS][METRICS_REASONS];
    metrics_hist sms_batch_size;
    metrics_hist sms_commit;
} metrics_counters;

#define METRICS_CELLS (sizeof(metrics_counters) / sizeof(_Atomic uint64_t))

/* Gauges of one live process, published by it (HTTP workers every tick, 500 ms). */
typedef struct metrics_gauges {
    _Atomic int64_t pg_busy, pg_idle, pg_connecting, pg_queued;
    _Atomic int64_t redis_connected;
    _Atomic int64_t report_local_bytes, report_local_items; /* server/redistrack.h */
} metrics_gauges;

typedef struct metrics_slot {
    metrics_gauges gauges;
    metrics_counters counters;
} metrics_slot;

typedef struct metrics_shared {
    _Atomic uint64_t seq;                         /* odd while the master retires a slot */
    _Atomic int64_t pending_runs;                 /* supervisor, every second; -1 = not known yet */
    _Atomic int64_t sms_pending[METRICS_STREAMS]; /* last consumer pending count seen; -1 = none */
    _Atomic uint64_t restarts[METRICS_KINDS][METRICS_CAUSES]; /* master only */
    metrics_counters retired; /* master only: counts of dead children */
    /* Per slot: set by the child on attach, cleared by the master on retirement. Kept apart
     * from the slots so that a scrape reads one small array, not a page of every slot. */
    _Atomic uint32_t used[SHSTATE_MAX_SLOTS];
    metrics_slot slots[SHSTATE_MAX_SLOTS];
} metrics_shared;

/* A plain (non-shared) copy of summed counters and gauges, as a scrape sees them. */
typedef struct metrics_totals {
    uint64_t cells[METRICS_CELLS]; /* same layout as metrics_counters */
    int64_t pg_busy, pg_idle, pg_connecting, pg_queued, redis_connected;
    int64_t report_local_bytes, report_local_items;
} metrics_totals;

/* The summed value of a counters member in t, e.g. METRICS_CELL(t, cache_hits[2]) (GCC accepts
 * run-time indices in offsetof). */
#define METRICS_CELL(t, member) ((t)->cells[offsetof(metrics_counters, member) / sizeof(uint64_t)])

/* ---- histogram layouts ------------------------------------------------------------------- */

typedef struct metrics_buckets {
    size_t n;              /* finite bounds; bucket[n] is +Inf */
    const uint64_t *bound; /* upper bounds in scaled units, increasing */
    const char *const *le; /* the same bounds as text for the le label */
    uint64_t scale;        /* scaled units per base unit: 1e9 (seconds) or 1 (items) */
} metrics_buckets;

extern const metrics_buckets metrics_http_buckets;      /* 0.5 ms .. 10 s */
extern const metrics_buckets metrics_recompute_buckets; /* 50 ms .. 120 s */
extern const metrics_buckets metrics_batch_buckets;     /* 1 .. 1000 events */
extern const metrics_buckets metrics_commit_buckets;    /* 1 ms .. 5 s */

/* Label values of the bounded sets. */
extern const int metrics_code_values[METRICS_CODES - 1];
extern const char *const metrics_method_names[METRICS_METHODS];
extern const char *const metrics_kind_names[METRICS_KINDS];
extern const char *const metrics_cause_names[METRICS_CAUSES];
extern const char *const metrics_transport_names[METRICS_TRANSPORTS];
extern const char *const metrics_outcome_names[METRICS_OUTCOMES];
extern const char *const metrics_stream_names[METRICS_STREAMS];

/* ---- lifecycle (master) ------------------------------------------------------------------ */

/* Maps the zeroed region (aborts if the kernel refuses, like shstate_create). Master only,
 * before the first fork. */
metrics_shared *metrics_create(void);

/* The mapping inherited by this process; NULL outside `serve`. */
extern metrics_shared *metrics_global;

/*
 * Master, after reaping the child of `slot`: adds its counters to the retired accumulator and
 * zeroes the slot (gauges included). Cannot fail; does nothing without a mapping.
 */
void metrics_retire(int slot);

/* Master: one more restart of a child of `kind` for `cause`. */
void metrics_count_restart(metrics_kind kind, metrics_cause cause);

/* ---- recording (children) ---------------------------------------------------------------- */

/* Child, right after fork: from now on this process records into `slot`. Cannot fail; without
 * a mapping the process keeps its private dummy slot. */
void metrics_attach(int slot);

/* This process's slot (the dummy one until metrics_attach). Never NULL. */
extern metrics_slot *metrics_self;

/* Adds n to a cell of this process's slot (relaxed: nothing is ordered by it). */
static inline void metrics_add(_Atomic uint64_t *cell, uint64_t n)
{
    atomic_fetch_add_explicit(cell, n, memory_order_relaxed);
}

/* Records value (scaled units) in histogram h laid out as b: two relaxed adds. */
void metrics_observe(metrics_hist *h, const metrics_buckets *b, uint64_t value);

/* One HTTP response: the route id (router.h), method token, status and duration. Three relaxed
 * adds (request cell, duration bucket, duration sum). */
void metrics_http_request(unsigned route, const char *method, size_t method_len, int status,
                          uint64_t duration_ns);

/* A recompute run that reached its final state in this worker: completed (else failed), and the
 * time from its claim. */
void metrics_recompute_finished(int completed, uint64_t duration_ns);

/* Outcomes of one committed SMS batch (or POST /api/v1/events answer). */
typedef struct metrics_sms_tally {
    uint32_t outcome[METRICS_OUTCOMES];
    uint32_t rejected[METRICS_REASONS]; /* by sms_reason; outcome[REJECTED] is their sum */
} metrics_sms_tally;

/* Adds a tally's counts for transport t. */
void metrics_sms_count(metrics_transport t, const metrics_sms_tally *tally);

/* Supervisor: the number of pending runs it counted. */
void metrics_set_pending_runs(int64_t n);

/* Ingest worker: the consumer's pending count on stream (sms_subject) as last seen. */
void metrics_set_sms_pending(unsigned stream, int64_t n);

/* The report label values: the reports of the registry (common/registry.h) in its order, then
 * "other"; metrics_report_count() of them (all of them fit in METRICS_REPORTS cells; a registry
 * that outgrows it counts its last reports as "other"). */
unsigned metrics_report_count(void);
const char *metrics_report_name(unsigned i);

/* Index of the report slug among the report label values ("other" for any other slug). */
unsigned metrics_report_index(const char *slug, size_t len);

/* ---- reading (the scraping HTTP worker) -------------------------------------------------- */

/*
 * Sums the retired counters and every slot in use into *out (overwritten), and the gauges of
 * the slots in use. Lock-free: retries while the master retires a slot meanwhile (rare, a few
 * microseconds; after 1000 tries it keeps the last sum). Returns 0, or -1 without a mapping
 * (*out is then all zero).
 */
int metrics_sum(metrics_totals *out);

/* Index of an HTTP status in the code label set (METRICS_CODES - 1 = "other"). */
unsigned metrics_code_index(int status);

#endif
