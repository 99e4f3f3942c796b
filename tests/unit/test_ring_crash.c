/*
 * tests/unit/test_ring_crash.c: crash safety of the shared-memory job ring (common/ring.c).
 *
 * 1. Every hook point, deterministically: a forked child SIGKILLs itself at that point (inside
 *    the robust mutex, between individual field writes) and the parent checks that the next
 *    locker repairs the ring and that the job ends up where the design says (README.ring.md).
 * 2. Chaos: the parent plays the master (reaps, reincarnates, respawns) over producers,
 *    consumers and an invariant checker that are SIGKILLed at random, by themselves inside the
 *    ring's critical sections (ring_test_hook) or by the parent at any moment. At the end: every
 *    job whose push returned RING_OK completed at least once, only reclaimed jobs completed
 *    twice, no job was in two slots, the mutex never became ENOTRECOVERABLE, the ring drained.
 *
 * Children never call cmocka: they record violations in shared memory and leave with _exit.
 * RING_CRASH_SEED=<n> replays a seed; RING_CRASH_MS=<n> changes the chaos duration (6000).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/ring.h"
#include "common/util.h"

static char seg_name[64];

static const char *new_name(void)
{
    static int n;
    snprintf(seg_name, sizeof(seg_name), "/analyticsd-test-ringcrash-%d-%d", (int)getpid(), n++);
    return seg_name;
}

static void format_rid(char *b, uint32_t n)
{
    snprintf(b, 40, "00000000-0000-4000-8000-%012x", n);
}

static uint32_t parse_rid(const char *s)
{
    return (uint32_t)strtoul(s + 24, NULL, 16);
}

static void quiet_child(void)
{
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        close(fd);
    }
}

static int check_ring(ring_t *r, char *err, size_t len)
{
    err[0] = '\0';
    return ring_check(r, 2000, err, len);
}

/* ---- 1. deterministic kill at every hook point ------------------------------------------ */

static const char *kill_point;

static void kill_at_point_hook(const char *point)
{
    if (kill_point && strcmp(point, kill_point) == 0)
        raise(SIGKILL);
}

typedef enum { OP_PUSH, OP_CLAIM, OP_COMPLETE, OP_RECLAIM, OP_REPAIR } op_kind;

struct point_case {
    op_kind op;
    const char *point;
    int expect; /* PUSH: job present after; CLAIM/COMPLETE/RECLAIM: attempts seen on the next
                   claim, -1 = ring empty; REPAIR: unused */
};

static const struct point_case point_cases[] = {
    {OP_PUSH, "lock.acquired", 0},
    {OP_PUSH, "push.locked", 0},
    {OP_PUSH, "push.seq", 0},
    {OP_PUSH, "push.payload", 0},
    {OP_PUSH, "push.fields", 0},
    {OP_PUSH, "push.published", 1},
    {OP_PUSH, "push.unfreed", 1},
    {OP_PUSH, "push.indexed", 1},
    {OP_PUSH, "unlock", 1},
    {OP_CLAIM, "claim.locked", 0},
    {OP_CLAIM, "claim.reconciled", 0},
    {OP_CLAIM, "claim.popped", 0},
    {OP_CLAIM, "claim.owner", 0},
    {OP_CLAIM, "claim.incarnation", 0},
    {OP_CLAIM, "claim.published", 1},
    {OP_CLAIM, "unlock", 1},
    {OP_COMPLETE, "complete.locked", 1},
    {OP_COMPLETE, "complete.unindexed", 1},
    {OP_COMPLETE, "complete.freed", -1},
    {OP_COMPLETE, "unlock", -1},
    {OP_RECLAIM, "reclaim.attempts", 2},
    {OP_RECLAIM, "reclaim.published", 1},
    {OP_RECLAIM, "reclaim.next", 1},
    {OP_RECLAIM, "claim.reconciled", 1},
    {OP_REPAIR, "repair.begin", 0},
    {OP_REPAIR, "repair.middle", 0},
    {OP_REPAIR, "repair.end", 0},
    {OP_REPAIR, "repair.consistent", 0},
};

/* Forks a child that runs op with the kill hook armed; asserts it died by SIGKILL there. */
static void run_killed_child(ring_t *r, op_kind op, const char *point)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        quiet_child();
        char id[40];
        ring_claim_t c;
        kill_point = point;
        ring_test_hook = kill_at_point_hook;
        switch (op) {
        case OP_PUSH:
        case OP_REPAIR:
            format_rid(id, 1);
            ring_push(r, id, 1000);
            break;
        case OP_CLAIM:
            ring_claim(r, 0, ring_worker_incarnation(r, 0), &c, 0);
            break;
        case OP_COMPLETE:
            ring_test_hook = NULL;
            if (ring_claim(r, 0, ring_worker_incarnation(r, 0), &c, 0) != RING_OK)
                _exit(2);
            ring_test_hook = kill_at_point_hook;
            ring_complete(r, &c);
            break;
        case OP_RECLAIM:
            ring_claim(r, 1, ring_worker_incarnation(r, 1), &c, 0);
            break;
        }
        _exit(1); /* the point was never reached */
    }
    int ws;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    if (!(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL))
        fail_msg("child for point %s was not killed there (status %#x)", point, ws);
}

static void test_kill_at_every_point(void **state)
{
    (void)state;
    for (size_t k = 0; k < ARRAY_LEN(point_cases); k++) {
        const struct point_case *pc = &point_cases[k];
        ring_t *r = ring_create(new_name(), 4, 2);
        assert_non_null(r);
        char id[40], err[200];
        format_rid(id, 1);
        ring_claim_t c;

        if (pc->op != OP_PUSH && pc->op != OP_REPAIR)
            assert_int_equal(ring_push(r, id, 100), RING_OK);
        if (pc->op == OP_RECLAIM) {
            assert_int_equal(ring_claim(r, 0, 0, &c, 0), RING_OK);
            ring_worker_reincarnate(r, 0); /* worker 0 died holding the job */
        }
        if (pc->op == OP_REPAIR)
            run_killed_child(r, OP_PUSH, "push.locked"); /* leaves the lock owner-dead */

        ring_stats_t before, after;
        ring_stats(r, &before);
        run_killed_child(r, pc->op, pc->point);
        int rc = check_ring(r, err, sizeof(err)); /* first lock after the death: repairs */
        if (rc != 0)
            fail_msg("point %s: ring_check %d: %s", pc->point, rc, err);
        ring_stats(r, &after);
        if (after.repairs < before.repairs + 1 || after.notrecoverable != 0)
            fail_msg("point %s: no repair ran (%llu -> %llu)", pc->point,
                     (unsigned long long)before.repairs, (unsigned long long)after.repairs);

        /* The master reaps the dead consumer(s). */
        ring_worker_reincarnate(r, 0);
        ring_worker_reincarnate(r, 1);
        switch (pc->op) {
        case OP_PUSH:
        case OP_REPAIR: {
            /* The ring was empty before the killed push: a consumer finds exactly its job or
             * nothing (the production path; a second push would also answer RING_DUPLICATE). */
            int present = pc->op == OP_PUSH ? pc->expect : 0;
            ring_status st = ring_claim(r, 1, ring_worker_incarnation(r, 1), &c, 0);
            if (st != (present ? RING_OK : RING_EMPTY) || (present && strcmp(c.run_id, id) != 0))
                fail_msg("point %s: job presence is not %d (status %d)", pc->point, present, st);
            if (present)
                assert_int_equal(ring_complete(r, &c), RING_OK);
            break;
        }
        default: {
            ring_status st = ring_claim(r, 1, ring_worker_incarnation(r, 1), &c, 0);
            if (pc->expect < 0) {
                if (st != RING_EMPTY)
                    fail_msg("point %s: expected an empty ring, got %d", pc->point, st);
            } else {
                if (st != RING_OK || strcmp(c.run_id, id) != 0 || (int)c.attempts != pc->expect)
                    fail_msg("point %s: expected the job with attempts %d (status %d, %u)",
                             pc->point, pc->expect, st, c.attempts);
                assert_int_equal(ring_complete(r, &c), RING_OK);
            }
        }
        }
        rc = check_ring(r, err, sizeof(err));
        if (rc != 0)
            fail_msg("point %s: after drain: %s", pc->point, err);
        assert_int_equal(ring_free_slots(r), 4);
        ring_destroy(r);
    }
}

/* ---- 2. chaos -------------------------------------------------------------------------- */

#define MAX_JOBS   (1u << 20)
#define NPRODUCERS 3
#define NCONSUMERS 4
#define CAPACITY   16
#define KILL_ODDS  2500 /* a child kills itself at about 1 hook call in KILL_ODDS */
#define PAUSE_ODDS 150  /* ... and pauses (so the parent's SIGKILL lands inside) in PAUSE_ODDS */

struct shared {
    _Atomic uint32_t next_job;
    _Atomic int chaos;          /* hooks kill and pause only while set */
    _Atomic int stop_producers; /* finish the current job, then exit */
    _Atomic int stop_consumers; /* exit when the ring is empty */
    _Atomic uint32_t violations;
    char violation[256];
    _Atomic uint64_t self_kills, pauses, stale_claims, busy;
    _Atomic uint8_t attempted[MAX_JOBS];
    _Atomic uint8_t pushed_ok[MAX_JOBS];
    _Atomic uint8_t reclaimed[MAX_JOBS];
    _Atomic uint32_t completions[MAX_JOBS];
};

static struct shared *sh;
static uint64_t rng_state;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

static void violate(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void violate(const char *fmt, ...)
{
    if (atomic_fetch_add(&sh->violations, 1) == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(sh->violation, sizeof(sh->violation), fmt, ap);
        va_end(ap);
    }
}

static void chaos_hook(const char *point)
{
    (void)point;
    if (!atomic_load_explicit(&sh->chaos, memory_order_relaxed))
        return;
    uint32_t x = rnd();
    if (x % KILL_ODDS == 0) {
        atomic_fetch_add(&sh->self_kills, 1);
        raise(SIGKILL);
    }
    if (x % PAUSE_ODDS == 1) {
        atomic_fetch_add(&sh->pauses, 1);
        struct timespec ts = {0, (long)(rnd() % 1000) * 1000};
        nanosleep(&ts, NULL);
    }
}

static void producer_main(ring_t *r)
{
    char id[40];
    while (!atomic_load(&sh->stop_producers)) {
        uint32_t j = atomic_fetch_add(&sh->next_job, 1);
        if (j >= MAX_JOBS)
            break;
        format_rid(id, j);
        atomic_store(&sh->attempted[j], 1);
        for (;;) {
            ring_status st = ring_push(r, id, 5);
            if (st == RING_OK) {
                atomic_store(&sh->pushed_ok[j], 1);
                break;
            }
            if (st == RING_DUPLICATE || st == RING_INVALID) {
                violate("push of unique job %u returned %d", j, st);
                break;
            }
            if (st == RING_BUSY)
                atomic_fetch_add(&sh->busy, 1);
            if (atomic_load(&sh->stop_producers))
                break; /* never pushed: allowed never to complete */
            struct timespec ts = {0, (long)(rnd() % 300) * 1000};
            nanosleep(&ts, NULL);
        }
    }
    _exit(0);
}

static void consumer_main(ring_t *r, uint32_t w, uint64_t inc)
{
    ring_claim_t c;
    for (;;) {
        ring_status st = ring_claim(r, w, inc, &c, 20);
        if (st == RING_EMPTY) {
            if (atomic_load(&sh->stop_consumers))
                _exit(0);
            continue;
        }
        if (st == RING_BUSY)
            continue;
        if (st != RING_OK) {
            violate("claim by live worker %u/%llu returned %d", w, (unsigned long long)inc, st);
            _exit(3);
        }
        uint32_t j = parse_rid(c.run_id);
        if (j >= MAX_JOBS || !atomic_load(&sh->attempted[j])) {
            violate("claimed job %s that nobody pushed", c.run_id);
            _exit(3);
        }
        if (c.attempts > 0)
            atomic_store(&sh->reclaimed[j], 1);
        chaos_hook("consumer.claimed");
        if (rnd() % 8 == 0) { /* "run the job" for a moment */
            struct timespec ts = {0, (long)(rnd() % 200) * 1000};
            nanosleep(&ts, NULL);
        }
        atomic_fetch_add(&sh->completions[j], 1);
        chaos_hook("consumer.ran");
        do
            st = ring_complete(r, &c);
        while (st == RING_BUSY);
        if (st != RING_OK) {
            atomic_fetch_add(&sh->stale_claims, 1);
            violate("completion by live worker %u of %s returned %d", w, c.run_id, st);
        }
    }
}

static void checker_main(ring_t *r)
{
    char err[200];
    while (!atomic_load(&sh->stop_consumers)) {
        if (ring_check(r, 50, err, sizeof(err)) == 1)
            violate("ring_check: %s", err);
        ring_stats_t s;
        ring_stats(r, &s);
        if (s.notrecoverable)
            violate("mutex became ENOTRECOVERABLE");
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    _exit(0);
}

enum { ROLE_PRODUCER, ROLE_CONSUMER, ROLE_CHECKER };

struct child {
    pid_t pid;
    int role;
    uint32_t index;
};

static uint64_t seed;
static uint32_t spawn_serial;

static pid_t spawn(ring_t *r, int role, uint32_t index)
{
    uint64_t inc = role == ROLE_CONSUMER ? ring_worker_incarnation(r, index) : 0;
    uint64_t child_seed = seed ^ ((uint64_t)++spawn_serial * 0x9E3779B97F4A7C15ull);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        abort();
    }
    if (pid == 0) {
        quiet_child();
        rng_state = child_seed | 1;
        ring_test_hook = chaos_hook;
        if (role == ROLE_PRODUCER)
            producer_main(r);
        else if (role == ROLE_CONSUMER)
            consumer_main(r, index, inc);
        else
            checker_main(r);
        _exit(0);
    }
    return pid;
}

/* Reaps every dead child; respawns it if respawn is set (consumers are reincarnated first). */
static int reap(ring_t *r, struct child *kids, int nkids, bool respawn, uint32_t *deaths)
{
    int alive = 0;
    for (;;) {
        int ws;
        pid_t pid = waitpid(-1, &ws, WNOHANG);
        if (pid <= 0)
            break;
        for (int k = 0; k < nkids; k++) {
            if (kids[k].pid != pid)
                continue;
            if (WIFSIGNALED(ws))
                (*deaths)++;
            else if (WEXITSTATUS(ws) != 0)
                violate("child role %d exited with %d", kids[k].role, WEXITSTATUS(ws));
            if (kids[k].role == ROLE_CONSUMER)
                ring_worker_reincarnate(r, kids[k].index); /* before its replacement starts */
            kids[k].pid = 0;
            bool again = respawn && (WIFSIGNALED(ws) || kids[k].role == ROLE_CONSUMER);
            if (kids[k].role == ROLE_PRODUCER && atomic_load(&sh->stop_producers))
                again = false;
            if (again)
                kids[k].pid = spawn(r, kids[k].role, kids[k].index);
        }
    }
    for (int k = 0; k < nkids; k++)
        alive += kids[k].pid != 0;
    return alive;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void test_chaos(void **state)
{
    (void)state;
    const char *s = getenv("RING_CRASH_SEED");
    seed = s ? strtoull(s, NULL, 10) : (uint64_t)clock_realtime_ns() ^ (uint64_t)getpid();
    const char *m = getenv("RING_CRASH_MS");
    int64_t chaos_ms = m ? atoll(m) : 6000;
    printf("test_ring_crash: seed=%llu (replay with RING_CRASH_SEED=%llu)\n",
           (unsigned long long)seed, (unsigned long long)seed);
    fflush(stdout);
    rng_state = seed | 1;

    sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(sh != MAP_FAILED);
    ring_t *r = ring_create(new_name(), CAPACITY, NCONSUMERS);
    assert_non_null(r);
    atomic_store(&sh->chaos, 1);

    enum { NKIDS = NPRODUCERS + NCONSUMERS + 1 };
    struct child kids[NKIDS];
    int n = 0;
    for (uint32_t i = 0; i < NPRODUCERS; i++)
        kids[n++] = (struct child){0, ROLE_PRODUCER, i};
    for (uint32_t i = 0; i < NCONSUMERS; i++)
        kids[n++] = (struct child){0, ROLE_CONSUMER, i};
    kids[n++] = (struct child){0, ROLE_CHECKER, 0};
    for (int k = 0; k < NKIDS; k++)
        kids[k].pid = spawn(r, kids[k].role, kids[k].index);

    /* Chaos: random SIGKILLs from the "master" on top of the children's own. */
    uint32_t deaths = 0, parent_kills = 0;
    int64_t t0 = clock_monotonic_ns();
    while (clock_monotonic_ns() - t0 < chaos_ms * 1000000) {
        reap(r, kids, NKIDS, true, &deaths);
        if (rnd() % 3 == 0) {
            struct child *victim = &kids[rnd() % NKIDS];
            if (victim->pid > 0 && kill(victim->pid, SIGKILL) == 0)
                parent_kills++;
        }
        struct timespec ts = {0, (long)(500 + rnd() % 3000) * 1000};
        nanosleep(&ts, NULL);
    }

    /* Calm down: producers stop, consumers drain, the ring must reach empty. */
    atomic_store(&sh->chaos, 0);
    atomic_store(&sh->stop_producers, 1);
    int64_t t1 = clock_monotonic_ns();
    bool drained = false;
    while (clock_monotonic_ns() - t1 < 10000 * 1000000LL) {
        reap(r, kids, NKIDS, true, &deaths);
        bool producers_gone = true;
        for (int k = 0; k < NKIDS; k++)
            if (kids[k].role == ROLE_PRODUCER && kids[k].pid != 0)
                producers_gone = false;
        ring_stats_t st;
        ring_stats(r, &st);
        if (producers_gone && st.queued == 0 && st.claimed == 0 && st.free_slots == CAPACITY) {
            drained = true;
            break;
        }
        sleep_ms(2);
    }
    atomic_store(&sh->stop_consumers, 1);
    int64_t t2 = clock_monotonic_ns();
    while (reap(r, kids, NKIDS, false, &deaths) > 0 && clock_monotonic_ns() - t2 < 5000000000LL)
        sleep_ms(2);
    for (int k = 0; k < NKIDS; k++)
        if (kids[k].pid > 0) {
            kill(kids[k].pid, SIGKILL);
            waitpid(kids[k].pid, NULL, 0);
        }

    /* Verdict. */
    char err[200];
    int rc = check_ring(r, err, sizeof(err));
    ring_stats_t st;
    ring_stats(r, &st);
    uint32_t njobs = atomic_load(&sh->next_job);
    if (njobs > MAX_JOBS)
        njobs = MAX_JOBS;
    uint32_t pushed = 0, lost = 0, dup_bad = 0, phantom = 0, done = 0, dups = 0;
    uint32_t first_lost = UINT32_MAX, first_dup = UINT32_MAX;
    for (uint32_t j = 0; j < njobs; j++) {
        uint32_t cnt = atomic_load(&sh->completions[j]);
        pushed += sh->pushed_ok[j];
        done += cnt > 0;
        dups += cnt > 1;
        if (sh->pushed_ok[j] && cnt == 0 && lost++ == 0)
            first_lost = j;
        if (cnt > 1 && !sh->reclaimed[j] && dup_bad++ == 0)
            first_dup = j;
        if (!sh->attempted[j] && cnt > 0)
            phantom++;
    }
    printf("test_ring_crash: %u jobs, %u pushed ok, %u completed (%u more than once), "
           "%u deaths (%u parent kills, %llu self kills, %llu pauses), repairs %llu, "
           "reclaimed %llu, dropped %llu, busy %llu\n",
           njobs, pushed, done, dups, deaths, parent_kills,
           (unsigned long long)atomic_load(&sh->self_kills),
           (unsigned long long)atomic_load(&sh->pauses), (unsigned long long)st.repairs,
           (unsigned long long)st.reclaimed, (unsigned long long)st.dropped,
           (unsigned long long)st.busy);
    bool ok = true;
#define VERDICT(cond, ...)                                                                         \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("test_ring_crash: FAILED (seed=%llu): ", (unsigned long long)seed);             \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
            ok = false;                                                                            \
        }                                                                                          \
    } while (0)
    VERDICT(atomic_load(&sh->violations) == 0, "%u violations, first: %s",
            atomic_load(&sh->violations), sh->violation);
    VERDICT(rc == 0, "final ring_check %d: %s", rc, err);
    VERDICT(st.notrecoverable == 0, "mutex became ENOTRECOVERABLE");
    VERDICT(drained, "ring never drained: queued %u claimed %u free %u", st.queued, st.claimed,
            st.free_slots);
    VERDICT(lost == 0, "%u pushed jobs never completed (first %u)", lost, first_lost);
    VERDICT(dup_bad == 0, "%u jobs completed twice without a reclaim (first %u)", dup_bad,
            first_dup);
    VERDICT(phantom == 0, "%u jobs completed that were never pushed", phantom);
    VERDICT(st.dropped == 0, "%llu jobs dropped after %d reclaims", (unsigned long long)st.dropped,
            RING_MAX_RECLAIMS);
    VERDICT(pushed > 1000, "only %u jobs pushed: the run did too little", pushed);
    VERDICT(st.repairs > 0 && st.reclaimed > 0 && deaths > 50,
            "chaos too mild: %llu repairs, %llu reclaims, %u deaths",
            (unsigned long long)st.repairs, (unsigned long long)st.reclaimed, deaths);
    fflush(stdout);
    ring_destroy(r);
    munmap(sh, sizeof(*sh));
    assert_true(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_at_every_point),
        cmocka_unit_test(test_chaos),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
