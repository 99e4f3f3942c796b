/*
 * common/ring.h: the crash-safe shared-memory job ring that carries recompute run ids from the
 * HTTP workers (producers, ring_push) to the recompute workers (consumers, ring_claim /
 * ring_complete). The master creates it before forking and only ever does lock-free writes of
 * the worker table (ring_worker_reincarnate) and lock-free reads.
 *
 * PostgreSQL is the truth (DATA.md §6.8); the ring is a fast dispatch path with at-least-once
 * delivery: a job claimed by a consumer that dies is handed to another consumer. Design, layout,
 * invariants and crash cases: common/README.ring.md.
 *
 * Every process uses the ring_t it inherited across fork. None of these functions is
 * async-signal-safe. Consumer liveness (heartbeat, job deadline, pid) is not the ring's: it lives
 * in the shared state (common/shstate.h).
 */
#ifndef ANALYTICSD_RING_H
#define ANALYTICSD_RING_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define RING_MIN_CAPACITY 1
#define RING_MAX_CAPACITY 65536
#define RING_MAX_WORKERS  64
#define RING_RUN_ID_LEN   36 /* lower-case UUID, "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" */
#define RING_MAX_RECLAIMS                                                                          \
    10 /* a job re-queued this many times is dropped on the next stale claim */
#define RING_CONSUMER_LOCK_MS 1000 /* lock deadline used by ring_claim and ring_complete */

typedef struct ring ring_t;

typedef enum {
    RING_OK = 0,
    RING_FULL,      /* push: no FREE slot */
    RING_BUSY,      /* lock not obtained before the deadline (or the lock is unusable) */
    RING_EMPTY,     /* claim: nothing QUEUED before wait_ms ran out */
    RING_DUPLICATE, /* push: that run id is already QUEUED or CLAIMED */
    RING_STALE,     /* claim: incarnation is not the worker's current one;
                       complete: the claim was reclaimed or already completed */
    RING_INVALID    /* malformed run id or out-of-range worker index */
} ring_status;

/* What a consumer holds between ring_claim and ring_complete. Plain data; copy freely. */
typedef struct {
    uint32_t slot;
    uint32_t worker;
    uint64_t incarnation;
    uint64_t seq;      /* FIFO position assigned at push */
    uint32_t attempts; /* how many times this job was reclaimed from a dead consumer */
    char run_id[RING_RUN_ID_LEN + 1];
} ring_claim_t;

/* Lock-free snapshot for tests and STATUS lines; counters are monotonic since creation and may
 * be off by one per process killed inside the ring (they are statistics, not truth). */
typedef struct {
    uint32_t capacity;
    uint32_t nworkers;
    uint32_t queued;
    uint32_t claimed;
    uint32_t free_slots;
    uint64_t pushed;
    uint64_t completed;
    uint64_t reclaimed;      /* CLAIMED slots of dead consumers returned to QUEUED */
    uint64_t dropped;        /* jobs dropped after RING_MAX_RECLAIMS re-queues */
    uint64_t repairs;        /* EOWNERDEAD recoveries (a process died holding the lock) */
    uint64_t busy;           /* lock deadlines missed */
    uint64_t notrecoverable; /* ENOTRECOVERABLE seen: must stay 0 */
} ring_stats_t;

/*
 * Test hook: when non-NULL, called with a static point name ("push.locked", "claim.owner", ...)
 * at fixed places inside push/claim/complete/repair, including while holding the mutex and
 * between individual field writes, so a test can pause or kill the process there. NULL in
 * production. Per process (not in shared memory).
 */
extern void (*ring_test_hook)(const char *point);

/*
 * Creates the segment `name` ("/analyticsd-<port>-<uid>": leading '/', no other '/'), replacing
 * any stale segment of that name (shm_unlink, then O_CREAT|O_EXCL, mode 0600), sizes and maps it
 * MAP_SHARED, and initialises the header, mutex, doorbell, slots and worker table (all
 * incarnations 0). capacity must be 1..65536 and nworkers 0..64. Children inherit the mapping
 * across fork. Returns NULL (with a log line) on a bad argument or a failed system call.
 */
ring_t *ring_create(const char *name, uint32_t capacity, uint32_t nworkers);

/*
 * Unmaps the segment and frees r. If this process created the segment (same pid that called
 * ring_create; a forked child holding the inherited ring_t does not count), the name is also
 * unlinked. Other mappings stay valid until they are destroyed. NULL is a no-op.
 */
void ring_destroy(ring_t *r);

/*
 * Producer: queues run_id (36-char lower-case UUID). Never blocks longer than lock_timeout_ms
 * (0 = only if the lock is free right now; negative = no deadline). Rings the doorbell on
 * success. Returns RING_OK, RING_DUPLICATE (already QUEUED or CLAIMED), RING_FULL,
 * RING_BUSY (deadline passed) or RING_INVALID (malformed id).
 */
ring_status ring_push(ring_t *r, const char *run_id, int lock_timeout_ms);

/* Number of FREE slots, read lock-free (a hint: it may change right after). */
uint32_t ring_free_slots(ring_t *r);

/*
 * Consumer `worker` (0..nworkers-1) running as `incarnation` (its ring_worker_incarnation when
 * it started): waits on the doorbell up to wait_ms, first returning stale claims of dead
 * consumers to the queue (or dropping them after RING_MAX_RECLAIMS), then claims the QUEUED job
 * with the smallest seq into *out.
 * Returns RING_OK, RING_EMPTY (nothing before wait_ms), RING_BUSY (lock deadline of
 * RING_CONSUMER_LOCK_MS missed), RING_STALE (incarnation is not current: the caller is a
 * process the master already replaced) or RING_INVALID (bad worker index).
 */
ring_status ring_claim(ring_t *r, uint32_t worker, uint64_t incarnation, ring_claim_t *out,
                       int wait_ms);

/*
 * Consumer: frees the claimed slot if it is still owned by exactly that claim (slot, seq,
 * worker, incarnation). Returns RING_OK, RING_STALE (reclaimed meanwhile: ignored, the job runs
 * again elsewhere) or RING_BUSY (lock deadline missed; the slot stays CLAIMED, retry).
 */
ring_status ring_complete(ring_t *r, const ring_claim_t *c);

/*
 * Master: after reaping consumer `worker` and before starting its replacement, bumps its
 * incarnation (lock-free atomic increment) so the dead process's claims become stale. Never
 * takes the lock.
 */
void ring_worker_reincarnate(ring_t *r, uint32_t worker);

/* Lock-free read of a consumer's current incarnation; 0 for an out-of-range index. */
uint64_t ring_worker_incarnation(ring_t *r, uint32_t worker);

/* Lock-free statistics snapshot (see ring_stats_t). */
void ring_stats(ring_t *r, ring_stats_t *out);

/*
 * Test/tool helper: takes the lock (waiting at most lock_timeout_ms) and verifies every
 * invariant of README.ring.md (derived indexes match the slots, no run id in two slots, ids
 * well-formed, seq below next_seq). Returns 0 if all hold, 1 with a description in err on the
 * first violation, -1 if the lock was not obtained. Not for the master.
 */
int ring_check(ring_t *r, int lock_timeout_ms, char *err, size_t errlen);

/* True if s is a 36-char lower-case UUID string. */
bool ring_run_id_valid(const char *s);

#endif
