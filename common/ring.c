/*
 * common/ring.c: the crash-safe shared-memory job ring (see ring.h and README.ring.md).
 * Created by the master; ring_push runs in HTTP workers, ring_claim/ring_complete in recompute
 * workers, the ring_worker_* writers in the master (lock-free only).
 *
 * Truth vs. derived state: the slot array is the truth. The free stack, the FIFO heap, the
 * run-id hash index, the counters and next_seq's value are derived and are rebuilt from the
 * slots (ring_repair_locked) whenever the lock is taken over from a dead holder (EOWNERDEAD).
 * Every slot transition ends with one release store of slot->state, so a process killed at any
 * point leaves every slot valid; only derived state can be half-updated, and then the robust
 * mutex guarantees that the next locker repairs it before anyone reads it.
 */
#include "common/ring.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

#define RING_MAGIC          0x52474e52u /* "RNGR" */
#define RING_LAYOUT_VERSION 1u

enum { SLOT_FREE = 0, SLOT_QUEUED = 1, SLOT_CLAIMED = 2 };

/* One job. Written only under the lock; state is stored last (release) in every transition. */
struct ring_slot {
    _Atomic uint32_t state;
    uint32_t attempts;     /* reclaims so far */
    uint32_t owner_worker; /* valid while CLAIMED */
    uint32_t reserved;
    uint64_t seq;               /* FIFO order, assigned at push */
    uint64_t owner_incarnation; /* valid while CLAIMED */
    int64_t claimed_at_ns;      /* CLOCK_MONOTONIC, valid while CLAIMED */
    uint64_t id_hash;           /* hash of run_id, for the index */
    char run_id[40];            /* RING_RUN_ID_LEN chars + NUL */
};

/*
 * One consumer's incarnation; bumped lock-free by the master when it reaps the consumer. Its
 * liveness (heartbeat, job deadline, pid) is in the shared state (common/shstate.h), which is
 * what the master judges.
 */
struct ring_worker {
    alignas(64) _Atomic uint64_t incarnation;
};

struct ring_header {
    _Atomic uint32_t magic; /* stored last at creation */
    uint32_t version;
    uint32_t header_size;
    uint32_t slot_size;
    uint32_t worker_size;
    uint32_t capacity;
    uint32_t nworkers;
    uint32_t index_size; /* power of two >= 2 * capacity */
    uint64_t total_size;
    uint64_t off_workers, off_slots, off_free, off_heap, off_index; /* byte offsets from base */

    alignas(64) pthread_mutex_t lock; /* PTHREAD_PROCESS_SHARED + PTHREAD_MUTEX_ROBUST */
    alignas(64) sem_t doorbell;       /* pshared; a wake-up hint only */

    /* Under the lock. Derived from the slots except that next_seq only grows. */
    alignas(64) uint64_t next_seq;
    _Atomic uint32_t free_top; /* entries in the free stack (read lock-free for stats) */
    _Atomic uint32_t heap_len; /* QUEUED slots in the heap (read lock-free for stats) */
    uint64_t reconciled[RING_MAX_WORKERS]; /* incarnations already swept for stale claims */

    alignas(64) _Atomic uint64_t pushed, completed, reclaimed, dropped, repairs, busy,
        notrecoverable;
};

struct ring {
    struct ring_header *hdr;
    struct ring_worker *workers;
    struct ring_slot *slots;
    uint32_t *free_stack; /* slot indices; top = last */
    uint32_t *heap;       /* binary min-heap of QUEUED slot indices by seq */
    uint32_t *index;      /* open addressing, linear probing: slot + 1, 0 = empty */
    uint32_t index_mask;
    size_t map_size;
    pid_t creator_pid; /* the process that created (and unlinks) the segment */
    char *name;
};

void (*ring_test_hook)(const char *point);

#define HOOK(p)                                                                                    \
    do {                                                                                           \
        if (ring_test_hook)                                                                        \
            ring_test_hook(p);                                                                     \
    } while (0)

#define RLX memory_order_relaxed

/* ---- layout ---------------------------------------------------------------------------- */

struct layout {
    uint64_t off_workers, off_slots, off_free, off_heap, off_index, total;
    uint32_t index_size;
};

static uint64_t align64(uint64_t v)
{
    return (v + 63) & ~(uint64_t)63;
}

static void layout_compute(uint32_t capacity, uint32_t nworkers, struct layout *l)
{
    uint32_t isz = 2;
    while (isz < 2 * capacity)
        isz *= 2;
    l->index_size = isz;
    l->off_workers = align64(sizeof(struct ring_header));
    l->off_slots = align64(l->off_workers + (uint64_t)nworkers * sizeof(struct ring_worker));
    l->off_free = align64(l->off_slots + (uint64_t)capacity * sizeof(struct ring_slot));
    l->off_heap = align64(l->off_free + (uint64_t)capacity * sizeof(uint32_t));
    l->off_index = align64(l->off_heap + (uint64_t)capacity * sizeof(uint32_t));
    l->total = align64(l->off_index + (uint64_t)isz * sizeof(uint32_t));
}

static ring_t *ring_wrap(void *base, size_t size, const char *name, pid_t creator)
{
    ring_t *r = xcalloc(1, sizeof(*r));
    struct ring_header *h = base;
    r->hdr = h;
    r->workers = (struct ring_worker *)((char *)base + h->off_workers);
    r->slots = (struct ring_slot *)((char *)base + h->off_slots);
    r->free_stack = (uint32_t *)((char *)base + h->off_free);
    r->heap = (uint32_t *)((char *)base + h->off_heap);
    r->index = (uint32_t *)((char *)base + h->off_index);
    r->index_mask = h->index_size - 1;
    r->map_size = size;
    r->creator_pid = creator;
    r->name = xstrdup(name);
    return r;
}

static bool name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    return n >= 2 && n < 200 && name[0] == '/' && strchr(name + 1, '/') == NULL;
}

/* ---- small helpers --------------------------------------------------------------------- */

bool ring_run_id_valid(const char *s)
{
    if (s == NULL)
        return false;
    for (int i = 0; i < RING_RUN_ID_LEN; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return s[RING_RUN_ID_LEN] == '\0';
}

static uint64_t id_hash(const char *id)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a 64 */
    for (int i = 0; i < RING_RUN_ID_LEN; i++) {
        h ^= (unsigned char)id[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint32_t slot_state(const struct ring_slot *s)
{
    return atomic_load_explicit(&s->state, RLX);
}

static void slot_publish(struct ring_slot *s, uint32_t state)
{
    atomic_store_explicit(&s->state, state, memory_order_release);
}

static struct timespec ns_to_ts(int64_t ns)
{
    struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    return ts;
}

static void doorbell_ring(ring_t *r, unsigned n)
{
    while (n-- > 0)
        sem_post(&r->hdr->doorbell); /* EOVERFLOW only means plenty of wake-ups pending */
}

/* ---- derived indexes (all under the lock) ---------------------------------------------- */

static uint32_t index_home(ring_t *r, uint64_t h)
{
    return (uint32_t)(h ^ (h >> 32)) & r->index_mask;
}

/* Position in the index of the non-FREE slot holding id, or -1. */
static int64_t index_find(ring_t *r, const char *id, uint64_t h)
{
    for (uint32_t i = index_home(r, h);; i = (i + 1) & r->index_mask) {
        uint32_t e = r->index[i];
        if (e == 0)
            return -1;
        const struct ring_slot *s = &r->slots[e - 1];
        if (s->id_hash == h && memcmp(s->run_id, id, RING_RUN_ID_LEN) == 0)
            return i;
    }
}

static void index_insert(ring_t *r, uint32_t slot)
{
    uint32_t i = index_home(r, r->slots[slot].id_hash);
    while (r->index[i] != 0)
        i = (i + 1) & r->index_mask;
    r->index[i] = slot + 1;
}

/* Removes slot from the index with backward-shift deletion (no tombstones). */
static void index_remove(ring_t *r, uint32_t slot)
{
    uint32_t i = index_home(r, r->slots[slot].id_hash);
    while (r->index[i] != slot + 1) {
        if (r->index[i] == 0)
            return; /* not indexed: nothing to do */
        i = (i + 1) & r->index_mask;
    }
    for (uint32_t j = i;;) {
        j = (j + 1) & r->index_mask;
        uint32_t e = r->index[j];
        if (e == 0)
            break;
        uint32_t k = index_home(r, r->slots[e - 1].id_hash);
        bool stays = (i <= j) ? (i < k && k <= j) : (i < k || k <= j);
        if (stays)
            continue;
        r->index[i] = e;
        i = j;
    }
    r->index[i] = 0;
}

static bool heap_less(ring_t *r, uint32_t a, uint32_t b)
{
    return r->slots[a].seq < r->slots[b].seq;
}

static void heap_push(ring_t *r, uint32_t slot)
{
    uint32_t i = atomic_load_explicit(&r->hdr->heap_len, RLX);
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!heap_less(r, slot, r->heap[p]))
            break;
        r->heap[i] = r->heap[p];
        i = p;
    }
    r->heap[i] = slot;
    atomic_fetch_add_explicit(&r->hdr->heap_len, 1, RLX);
}

/* Pops the QUEUED slot with the smallest seq, or returns -1 if the heap is empty. */
static int64_t heap_pop(ring_t *r)
{
    uint32_t n = atomic_load_explicit(&r->hdr->heap_len, RLX);
    if (n == 0)
        return -1;
    uint32_t top = r->heap[0], last = r->heap[n - 1], i = 0;
    n--;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && heap_less(r, r->heap[c + 1], r->heap[c]))
            c++;
        if (!heap_less(r, r->heap[c], last))
            break;
        r->heap[i] = r->heap[c];
        i = c;
    }
    if (n > 0)
        r->heap[i] = last;
    atomic_store_explicit(&r->hdr->heap_len, n, RLX);
    return top;
}

static void free_push(ring_t *r, uint32_t slot)
{
    uint32_t top = atomic_load_explicit(&r->hdr->free_top, RLX);
    r->free_stack[top] = slot;
    atomic_store_explicit(&r->hdr->free_top, top + 1, RLX);
}

/* ---- repair and reclaim (under the lock) ----------------------------------------------- */

/*
 * Returns a CLAIMED slot of a dead consumer to QUEUED (attempts + 1), or drops it after
 * RING_MAX_RECLAIMS re-queues. Returns 1 if re-queued, 0 if dropped.
 */
static unsigned reclaim_slot(ring_t *r, uint32_t idx)
{
    struct ring_slot *s = &r->slots[idx];
    uint32_t a = s->attempts;
    if (a >= RING_MAX_RECLAIMS) {
        log_warn("ring: dropping run %.36s after %u reclaims; PostgreSQL still tracks it",
                 s->run_id, a);
        index_remove(r, idx);
        HOOK("reclaim.unindexed");
        slot_publish(s, SLOT_FREE);
        HOOK("reclaim.dropped");
        free_push(r, idx);
        atomic_fetch_add_explicit(&r->hdr->dropped, 1, RLX);
        return 0;
    }
    log_info("ring: re-queueing run %.36s from dead recompute worker %u (reclaim %u)", s->run_id,
             s->owner_worker, a + 1);
    s->attempts = a + 1;
    HOOK("reclaim.attempts");
    slot_publish(s, SLOT_QUEUED);
    HOOK("reclaim.published");
    heap_push(r, idx);
    atomic_fetch_add_explicit(&r->hdr->reclaimed, 1, RLX);
    return 1;
}

/*
 * Sweeps CLAIMED slots whose owner incarnation is no longer current. Skipped (O(nworkers)) when
 * no incarnation changed since the last sweep, unless force. Returns the number re-queued.
 */
static unsigned reconcile_locked(ring_t *r, bool force)
{
    struct ring_header *h = r->hdr;
    uint64_t snap[RING_MAX_WORKERS];
    bool need = force;
    for (uint32_t w = 0; w < h->nworkers; w++) {
        snap[w] = atomic_load_explicit(&r->workers[w].incarnation, memory_order_acquire);
        if (snap[w] != h->reconciled[w])
            need = true;
    }
    if (!need)
        return 0;
    unsigned requeued = 0;
    for (uint32_t i = 0; i < h->capacity; i++) {
        struct ring_slot *s = &r->slots[i];
        if (slot_state(s) != SLOT_CLAIMED)
            continue;
        uint32_t w = s->owner_worker;
        if (w < h->nworkers && s->owner_incarnation == snap[w])
            continue;
        requeued += reclaim_slot(r, i);
        HOOK("reclaim.next");
    }
    for (uint32_t w = 0; w < h->nworkers; w++)
        h->reconciled[w] = snap[w];
    return requeued;
}

/*
 * Rebuilds every derived structure from the slots, which are always individually valid.
 * Slots that cannot be trusted (malformed id, two slots with one id, owner out of range) are
 * freed with a log line; PostgreSQL will dispatch those runs again. Then sweeps stale claims.
 */
static unsigned ring_repair_locked(ring_t *r)
{
    struct ring_header *h = r->hdr;
    uint64_t max_seq = 0;
    HOOK("repair.begin");
    atomic_store_explicit(&h->free_top, 0, RLX);
    atomic_store_explicit(&h->heap_len, 0, RLX);
    memset(r->index, 0, (size_t)h->index_size * sizeof(uint32_t));
    for (uint32_t i = h->capacity; i-- > 0;) { /* descending: slot 0 ends on top of the stack */
        struct ring_slot *s = &r->slots[i];
        uint32_t st = slot_state(s);
        if (st == SLOT_QUEUED || st == SLOT_CLAIMED) {
            bool ok = ring_run_id_valid(s->run_id) && s->id_hash == id_hash(s->run_id) &&
                      (st == SLOT_QUEUED || s->owner_worker < h->nworkers) &&
                      index_find(r, s->run_id, s->id_hash) < 0;
            if (ok) {
                index_insert(r, i);
                if (st == SLOT_QUEUED)
                    heap_push(r, i);
                if (s->seq > max_seq)
                    max_seq = s->seq;
                continue;
            }
            log_warn("ring: repair frees untrustworthy slot %u", i);
            slot_publish(s, SLOT_FREE);
        } else if (st != SLOT_FREE) {
            log_warn("ring: repair frees slot %u with unknown state %u", i, st);
            slot_publish(s, SLOT_FREE);
        }
        free_push(r, i);
        if (i == h->capacity / 2)
            HOOK("repair.middle");
    }
    if (h->next_seq <= max_seq)
        h->next_seq = max_seq + 1;
    unsigned requeued = reconcile_locked(r, true);
    HOOK("repair.end");
    return requeued;
}

/* ---- the lock -------------------------------------------------------------------------- */

/*
 * Takes the robust mutex, waiting at most timeout_ms (negative: no deadline). On EOWNERDEAD
 * repairs and marks it consistent. Returns 0 when held, -1 on timeout or an unusable lock.
 * *requeued (may be NULL) receives the number of jobs a repair re-queued (doorbell posts owed).
 */
static int ring_lock(ring_t *r, int timeout_ms, unsigned *requeued)
{
    struct ring_header *h = r->hdr;
    int rc;
    if (requeued)
        *requeued = 0;
    if (timeout_ms < 0) {
        rc = pthread_mutex_lock(&h->lock);
    } else {
        struct timespec ts = ns_to_ts(clock_monotonic_ns() + (int64_t)timeout_ms * 1000000);
        rc = pthread_mutex_clocklock(&h->lock, CLOCK_MONOTONIC, &ts);
    }
    if (rc == 0) {
        HOOK("lock.acquired");
        return 0;
    }
    if (rc == EOWNERDEAD) {
        log_warn("ring: a process died holding the ring lock; repairing");
        unsigned n = ring_repair_locked(r);
        if (requeued)
            *requeued = n;
        rc = pthread_mutex_consistent(&h->lock);
        if (rc != 0)
            log_error("ring: pthread_mutex_consistent: %s", strerror(rc));
        atomic_fetch_add_explicit(&h->repairs, 1, RLX);
        HOOK("repair.consistent");
        return 0;
    }
    if (rc == ETIMEDOUT) {
        atomic_fetch_add_explicit(&h->busy, 1, RLX);
        return -1;
    }
    if (rc == ENOTRECOVERABLE)
        atomic_fetch_add_explicit(&h->notrecoverable, 1, RLX);
    log_error("ring: lock failed: %s", strerror(rc));
    return -1;
}

static void ring_unlock(ring_t *r)
{
    HOOK("unlock");
    pthread_mutex_unlock(&r->hdr->lock);
}

/* ---- create / attach / destroy --------------------------------------------------------- */

ring_t *ring_create(const char *name, uint32_t capacity, uint32_t nworkers)
{
    if (!name_valid(name) || capacity < RING_MIN_CAPACITY || capacity > RING_MAX_CAPACITY ||
        nworkers > RING_MAX_WORKERS) {
        log_error("ring: bad parameters (name %s, capacity %u, workers %u)", name ? name : "(null)",
                  capacity, nworkers);
        return NULL;
    }
    struct layout l;
    layout_compute(capacity, nworkers, &l);

    if (shm_unlink(name) == 0)
        log_warn("ring: removed stale shared-memory segment %s", name);
    int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) {
        log_error("ring: shm_open %s: %s", name, strerror(errno));
        return NULL;
    }
    if (ftruncate(fd, (off_t)l.total) != 0) {
        log_error("ring: ftruncate %s: %s", name, strerror(errno));
        close(fd);
        shm_unlink(name);
        return NULL;
    }
    void *base = mmap(NULL, l.total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (base == MAP_FAILED) {
        log_error("ring: mmap %s: %s", name, strerror(errno));
        shm_unlink(name);
        return NULL;
    }

    struct ring_header *h = base; /* the fresh segment is zero-filled: every slot is FREE */
    h->version = RING_LAYOUT_VERSION;
    h->header_size = sizeof(struct ring_header);
    h->slot_size = sizeof(struct ring_slot);
    h->worker_size = sizeof(struct ring_worker);
    h->capacity = capacity;
    h->nworkers = nworkers;
    h->index_size = l.index_size;
    h->total_size = l.total;
    h->off_workers = l.off_workers;
    h->off_slots = l.off_slots;
    h->off_free = l.off_free;
    h->off_heap = l.off_heap;
    h->off_index = l.off_index;
    h->next_seq = 1;

    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    int rc = pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    if (rc == 0)
        rc = pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    if (rc == 0)
        rc = pthread_mutex_init(&h->lock, &ma);
    pthread_mutexattr_destroy(&ma);
    if (rc != 0 || sem_init(&h->doorbell, 1, 0) != 0) {
        log_error("ring: cannot initialise the lock or doorbell: %s", strerror(rc ? rc : errno));
        munmap(base, l.total);
        shm_unlink(name);
        return NULL;
    }

    ring_t *r = ring_wrap(base, l.total, name, getpid());
    for (uint32_t i = capacity; i-- > 0;)
        free_push(r, i);
    atomic_store_explicit(&h->magic, RING_MAGIC, memory_order_release);
    log_info("ring: created %s (capacity %u, %u workers, %llu bytes)", name, capacity, nworkers,
             (unsigned long long)l.total);
    return r;
}

void ring_destroy(ring_t *r)
{
    if (r == NULL)
        return;
    munmap(r->hdr, r->map_size);
    if (r->creator_pid != 0 && r->creator_pid == getpid() && shm_unlink(r->name) != 0)
        log_warn("ring: shm_unlink %s: %s", r->name, strerror(errno));
    free(r->name);
    free(r);
}

/* ---- producer -------------------------------------------------------------------------- */

ring_status ring_push(ring_t *r, const char *run_id, int lock_timeout_ms)
{
    if (!ring_run_id_valid(run_id))
        return RING_INVALID;
    uint64_t hash = id_hash(run_id);
    unsigned posts;
    if (ring_lock(r, lock_timeout_ms, &posts) != 0)
        return RING_BUSY;
    struct ring_header *h = r->hdr;
    ring_status st = RING_OK;
    HOOK("push.locked");
    for (int pass = 0;; pass++) {
        if (index_find(r, run_id, hash) >= 0) {
            st = RING_DUPLICATE;
            break;
        }
        uint32_t top = atomic_load_explicit(&h->free_top, RLX);
        if (top == 0) {
            st = RING_FULL;
            break;
        }
        uint32_t idx = r->free_stack[top - 1];
        struct ring_slot *s = &r->slots[idx];
        if (idx >= h->capacity || slot_state(s) != SLOT_FREE) {
            log_error("ring: free stack inconsistent; rebuilding");
            if (pass > 0)
                abort(); /* a rebuild cannot produce this: memory corruption */
            posts += ring_repair_locked(r);
            continue;
        }
        s->seq = h->next_seq;
        HOOK("push.seq");
        memcpy(s->run_id, run_id, RING_RUN_ID_LEN);
        s->run_id[RING_RUN_ID_LEN] = '\0';
        HOOK("push.payload");
        s->id_hash = hash;
        s->attempts = 0;
        s->owner_worker = 0;
        s->owner_incarnation = 0;
        s->claimed_at_ns = 0;
        HOOK("push.fields");
        slot_publish(s, SLOT_QUEUED);
        HOOK("push.published");
        atomic_store_explicit(&h->free_top, top - 1, RLX);
        HOOK("push.unfreed");
        index_insert(r, idx);
        HOOK("push.indexed");
        heap_push(r, idx);
        h->next_seq++;
        atomic_fetch_add_explicit(&h->pushed, 1, RLX);
        posts++;
        break;
    }
    ring_unlock(r);
    doorbell_ring(r, posts);
    return st;
}

uint32_t ring_free_slots(ring_t *r)
{
    return atomic_load_explicit(&r->hdr->free_top, RLX);
}

/* ---- consumer -------------------------------------------------------------------------- */

static ring_status claim_once(ring_t *r, uint32_t worker, uint64_t incarnation, ring_claim_t *out)
{
    struct ring_header *h = r->hdr;
    unsigned posts;
    if (ring_lock(r, RING_CONSUMER_LOCK_MS, &posts) != 0)
        return RING_BUSY;
    ring_status st = RING_EMPTY;
    HOOK("claim.locked");
    if (incarnation !=
        atomic_load_explicit(&r->workers[worker].incarnation, memory_order_acquire)) {
        st = RING_STALE;
        goto out;
    }
    posts += reconcile_locked(r, false);
    HOOK("claim.reconciled");
    for (int pass = 0;; pass++) {
        int64_t idx = heap_pop(r);
        if (idx < 0)
            break;
        struct ring_slot *s = &r->slots[idx];
        if (idx >= h->capacity || slot_state(s) != SLOT_QUEUED) {
            log_error("ring: queue heap inconsistent; rebuilding");
            if (pass > 0)
                abort(); /* a rebuild cannot produce this: memory corruption */
            posts += ring_repair_locked(r);
            continue;
        }
        HOOK("claim.popped");
        s->owner_worker = worker;
        HOOK("claim.owner");
        s->owner_incarnation = incarnation;
        HOOK("claim.incarnation");
        s->claimed_at_ns = clock_monotonic_ns();
        slot_publish(s, SLOT_CLAIMED);
        HOOK("claim.published");
        out->slot = (uint32_t)idx;
        out->worker = worker;
        out->incarnation = incarnation;
        out->seq = s->seq;
        out->attempts = s->attempts;
        memcpy(out->run_id, s->run_id, RING_RUN_ID_LEN);
        out->run_id[RING_RUN_ID_LEN] = '\0';
        st = RING_OK;
        if (posts > 0)
            posts--; /* we took one of the re-queued jobs ourselves */
        break;
    }
out:
    ring_unlock(r);
    doorbell_ring(r, posts);
    return st;
}

ring_status ring_claim(ring_t *r, uint32_t worker, uint64_t incarnation, ring_claim_t *out,
                       int wait_ms)
{
    if (out == NULL || worker >= r->hdr->nworkers)
        return RING_INVALID;
    int64_t deadline = clock_monotonic_ns() + (wait_ms > 0 ? (int64_t)wait_ms * 1000000 : 0);
    for (;;) {
        ring_status st = claim_once(r, worker, incarnation, out);
        if (st != RING_EMPTY)
            return st;
        if (clock_monotonic_ns() >= deadline)
            return RING_EMPTY;
        struct timespec ts = ns_to_ts(deadline);
        (void)sem_clockwait(&r->hdr->doorbell, CLOCK_MONOTONIC, &ts); /* woken, EINTR or timeout:
                                                                          scan again either way */
    }
}

ring_status ring_complete(ring_t *r, const ring_claim_t *c)
{
    struct ring_header *h = r->hdr;
    if (c == NULL || c->slot >= h->capacity)
        return RING_INVALID;
    unsigned posts;
    if (ring_lock(r, RING_CONSUMER_LOCK_MS, &posts) != 0)
        return RING_BUSY;
    ring_status st = RING_STALE;
    HOOK("complete.locked");
    struct ring_slot *s = &r->slots[c->slot];
    if (slot_state(s) == SLOT_CLAIMED && s->seq == c->seq && s->owner_worker == c->worker &&
        s->owner_incarnation == c->incarnation) {
        index_remove(r, c->slot);
        HOOK("complete.unindexed");
        slot_publish(s, SLOT_FREE);
        HOOK("complete.freed");
        free_push(r, c->slot);
        atomic_fetch_add_explicit(&h->completed, 1, RLX);
        st = RING_OK;
    }
    ring_unlock(r);
    doorbell_ring(r, posts);
    return st;
}

/* ---- worker table (lock-free) ---------------------------------------------------------- */

static struct ring_worker *worker_at(ring_t *r, uint32_t w)
{
    return w < r->hdr->nworkers ? &r->workers[w] : NULL;
}

void ring_worker_reincarnate(ring_t *r, uint32_t worker)
{
    struct ring_worker *wk = worker_at(r, worker);
    if (wk == NULL)
        return;
    atomic_fetch_add_explicit(&wk->incarnation, 1, memory_order_release);
}

uint64_t ring_worker_incarnation(ring_t *r, uint32_t worker)
{
    struct ring_worker *wk = worker_at(r, worker);
    return wk ? atomic_load_explicit(&wk->incarnation, memory_order_acquire) : 0;
}

/* ---- statistics and checking ----------------------------------------------------------- */

void ring_stats(ring_t *r, ring_stats_t *out)
{
    struct ring_header *h = r->hdr;
    memset(out, 0, sizeof(*out));
    out->capacity = h->capacity;
    out->nworkers = h->nworkers;
    out->queued = atomic_load_explicit(&h->heap_len, RLX);
    out->free_slots = atomic_load_explicit(&h->free_top, RLX);
    uint64_t used = (uint64_t)out->queued + out->free_slots;
    out->claimed = used < h->capacity ? h->capacity - (uint32_t)used : 0;
    out->pushed = atomic_load_explicit(&h->pushed, RLX);
    out->completed = atomic_load_explicit(&h->completed, RLX);
    out->reclaimed = atomic_load_explicit(&h->reclaimed, RLX);
    out->dropped = atomic_load_explicit(&h->dropped, RLX);
    out->repairs = atomic_load_explicit(&h->repairs, RLX);
    out->busy = atomic_load_explicit(&h->busy, RLX);
    out->notrecoverable = atomic_load_explicit(&h->notrecoverable, RLX);
}

/* Formats the first violation into err; always returns 1 (for "return violation(...)"). */
static int violation(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int violation(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return 1;
}

static int check_locked(ring_t *r, uint8_t *seen, char *err, size_t errlen)
{
    struct ring_header *h = r->hdr;
    uint32_t cap = h->capacity, nfree = 0, nqueued = 0, nused = 0;
    for (uint32_t i = 0; i < cap; i++) {
        const struct ring_slot *s = &r->slots[i];
        uint32_t st = slot_state(s);
        if (st == SLOT_FREE) {
            nfree++;
            continue;
        }
        if (st != SLOT_QUEUED && st != SLOT_CLAIMED)
            return violation(err, errlen, "slot %u has state %u", i, st);
        nused++;
        nqueued += st == SLOT_QUEUED;
        if (!ring_run_id_valid(s->run_id) || s->id_hash != id_hash(s->run_id))
            return violation(err, errlen, "slot %u holds a malformed id", i);
        if (s->seq == 0 || s->seq >= h->next_seq)
            return violation(err, errlen, "slot %u seq %llu outside [1, %llu)", i,
                             (unsigned long long)s->seq, (unsigned long long)h->next_seq);
        if (st == SLOT_CLAIMED &&
            (s->owner_worker >= h->nworkers ||
             s->owner_incarnation > ring_worker_incarnation(r, s->owner_worker)))
            return violation(err, errlen, "slot %u has an impossible owner", i);
        int64_t pos = index_find(r, s->run_id, s->id_hash);
        if (pos < 0 || r->index[pos] != i + 1)
            return violation(err, errlen, "run %.36s is in two slots or not indexed", s->run_id);
    }
    uint32_t top = atomic_load_explicit(&h->free_top, RLX);
    uint32_t hlen = atomic_load_explicit(&h->heap_len, RLX);
    if (top != nfree)
        return violation(err, errlen, "free stack has %u entries for %u FREE slots", top, nfree);
    if (hlen != nqueued)
        return violation(err, errlen, "heap has %u entries for %u QUEUED slots", hlen, nqueued);
    memset(seen, 0, cap);
    for (uint32_t k = 0; k < top; k++) {
        uint32_t i = r->free_stack[k];
        if (i >= cap || seen[i]++ || slot_state(&r->slots[i]) != SLOT_FREE)
            return violation(err, errlen, "free stack entry %u (slot %u) is wrong", k, i);
    }
    memset(seen, 0, cap);
    for (uint32_t k = 0; k < hlen; k++) {
        uint32_t i = r->heap[k];
        if (i >= cap || seen[i]++ || slot_state(&r->slots[i]) != SLOT_QUEUED)
            return violation(err, errlen, "heap entry %u (slot %u) is wrong", k, i);
        if (k > 0 && heap_less(r, i, r->heap[(k - 1) / 2]))
            return violation(err, errlen, "heap order broken at %u", k);
    }
    uint32_t nindexed = 0;
    for (uint32_t k = 0; k < h->index_size; k++)
        nindexed += r->index[k] != 0;
    if (nindexed != nused)
        return violation(err, errlen, "index has %u entries for %u used slots", nindexed, nused);
    return 0;
}

int ring_check(ring_t *r, int lock_timeout_ms, char *err, size_t errlen)
{
    unsigned posts;
    if (ring_lock(r, lock_timeout_ms, &posts) != 0)
        return -1;
    uint8_t *seen = xmalloc(r->hdr->capacity);
    int rc = check_locked(r, seen, err, errlen);
    free(seen);
    ring_unlock(r);
    doorbell_ring(r, posts);
    return rc;
}
