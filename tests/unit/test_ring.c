/*
 * tests/unit/test_ring.c: behaviour of the shared-memory job ring (common/ring.c) in one
 * process (plus a forked pusher for the doorbell): FIFO, full, duplicate, claim/complete,
 * empty after the wait, reclaim after reincarnation, stale completion, drop after too many
 * reclaims, capacity bounds, attach, destroy.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/ring.h"
#include "common/util.h"

static char seg_name[64];

static const char *new_name(void)
{
    static int n;
    snprintf(seg_name, sizeof(seg_name), "/analyticsd-test-ring-%d-%d", (int)getpid(), n++);
    return seg_name;
}

/* Run id number n as a UUID string (static buffer per call slot). */
static const char *rid(uint32_t n)
{
    static char buf[8][40];
    static int k;
    char *b = buf[k++ % 8];
    snprintf(b, 40, "00000000-0000-4000-8000-%012x", n);
    return b;
}

static void assert_consistent(ring_t *r)
{
    char err[200] = "";
    int rc = ring_check(r, 1000, err, sizeof(err));
    if (rc != 0)
        fail_msg("ring_check: %d %s", rc, err);
}

static void test_fifo_and_complete(void **state)
{
    (void)state;
    ring_t *r = ring_create(new_name(), 8, 2);
    assert_non_null(r);
    for (uint32_t i = 0; i < 5; i++)
        assert_int_equal(ring_push(r, rid(i), 10), RING_OK);
    ring_stats_t st;
    ring_stats(r, &st);
    assert_int_equal(st.queued, 5);
    assert_int_equal(st.claimed, 0);
    assert_int_equal(ring_free_slots(r), 3);
    uint64_t last_seq = 0;
    for (uint32_t i = 0; i < 5; i++) {
        ring_claim_t c;
        assert_int_equal(ring_claim(r, i % 2, 0, &c, 0), RING_OK);
        assert_string_equal(c.run_id, rid(i));
        assert_true(c.seq > last_seq);
        assert_int_equal(c.attempts, 0);
        last_seq = c.seq;
        ring_stats(r, &st);
        assert_int_equal(st.claimed, 1);
        /* a producer re-offering a claimed run is refused */
        assert_int_equal(ring_push(r, rid(i), 10), RING_DUPLICATE);
        assert_int_equal(ring_complete(r, &c), RING_OK);
        ring_stats(r, &st);
        assert_int_equal(st.claimed, 0);
        assert_int_equal(ring_complete(r, &c), RING_STALE); /* second completion ignored */
    }
    ring_stats(r, &st);
    assert_int_equal(st.queued, 0);
    assert_int_equal(st.claimed, 0);
    assert_int_equal(st.free_slots, 8);
    assert_int_equal(st.pushed, 5);
    assert_int_equal(st.completed, 5);
    assert_consistent(r);
    ring_destroy(r);
}

static void test_full_duplicate_invalid(void **state)
{
    (void)state;
    ring_t *r = ring_create(new_name(), 3, 1);
    assert_non_null(r);
    assert_int_equal(ring_push(r, rid(1), 10), RING_OK);
    assert_int_equal(ring_push(r, rid(1), 10), RING_DUPLICATE);
    assert_int_equal(ring_push(r, rid(2), 10), RING_OK);
    assert_int_equal(ring_push(r, rid(3), 10), RING_OK);
    assert_int_equal(ring_push(r, rid(4), 10), RING_FULL);
    assert_int_equal(ring_push(r, rid(2), 10), RING_DUPLICATE); /* duplicate wins over full */
    assert_int_equal(ring_free_slots(r), 0);

    ring_claim_t c;
    assert_int_equal(ring_claim(r, 0, 0, &c, 0), RING_OK);
    assert_string_equal(c.run_id, rid(1));
    assert_int_equal(ring_push(r, rid(1), 10), RING_DUPLICATE); /* CLAIMED counts too */
    assert_int_equal(ring_complete(r, &c), RING_OK);
    assert_int_equal(ring_push(r, rid(1), 10), RING_OK); /* free again: may be queued anew */

    assert_int_equal(ring_push(r, "00000000-0000-4000-8000-00000000000A", 10), RING_INVALID);
    assert_int_equal(ring_push(r, "00000000-0000-4000-8000-0000000000", 10), RING_INVALID);
    assert_int_equal(ring_push(r, "00000000-0000-4000-8000-0000000000001", 10), RING_INVALID);
    assert_int_equal(ring_push(r, "000000000000-4000-8000-0000-00000000", 10), RING_INVALID);
    assert_int_equal(ring_push(r, NULL, 10), RING_INVALID);
    assert_false(ring_run_id_valid("g0000000-0000-4000-8000-000000000000"));
    assert_true(ring_run_id_valid("0a1b2c3d-4e5f-4a6b-8c7d-9e8f7a6b5c4d"));
    assert_int_equal(ring_claim(r, 1, 0, &c, 0), RING_INVALID); /* worker out of range */
    assert_consistent(r);
    ring_destroy(r);
}

static void test_empty_after_wait(void **state)
{
    (void)state;
    ring_t *r = ring_create(new_name(), 4, 1);
    assert_non_null(r);
    ring_claim_t c;
    int64_t t0 = clock_monotonic_ns();
    assert_int_equal(ring_claim(r, 0, 0, &c, 80), RING_EMPTY);
    int64_t dt = clock_monotonic_ns() - t0;
    assert_true(dt >= 75 * 1000000LL);
    assert_true(dt < 2000 * 1000000LL);
    t0 = clock_monotonic_ns();
    assert_int_equal(ring_claim(r, 0, 0, &c, 0), RING_EMPTY);
    assert_true(clock_monotonic_ns() - t0 < 50 * 1000000LL);
    ring_destroy(r);
}

static void test_doorbell_wakes_consumer(void **state)
{
    (void)state;
    ring_t *r = ring_create(new_name(), 4, 1);
    assert_non_null(r);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        usleep(150 * 1000);
        _exit(ring_push(r, rid(42), 10) == RING_OK ? 0 : 1);
    }
    ring_claim_t c;
    int64_t t0 = clock_monotonic_ns();
    assert_int_equal(ring_claim(r, 0, 0, &c, 5000), RING_OK);
    int64_t dt = clock_monotonic_ns() - t0;
    assert_string_equal(c.run_id, rid(42));
    assert_true(dt < 2000 * 1000000LL); /* woken by the doorbell, not the 5 s timeout */
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(ring_complete(r, &c), RING_OK);
    ring_destroy(r);
}

static void test_reclaim_after_reincarnate(void **state)
{
    (void)state;
    ring_t *r = ring_create(new_name(), 8, 2);
    assert_non_null(r);
    assert_int_equal(ring_push(r, rid(1), 10), RING_OK);
    assert_int_equal(ring_push(r, rid(2), 10), RING_OK);
    ring_claim_t old;
    assert_int_equal(ring_claim(r, 0, 0, &old, 0), RING_OK);
    assert_string_equal(old.run_id, rid(1));
    assert_int_equal(ring_push(r, rid(3), 10), RING_OK);

    /* The master reaps worker 0 and bumps its incarnation. */
    ring_worker_reincarnate(r, 0);
    assert_int_equal(ring_worker_incarnation(r, 0), 1);
    assert_int_equal(ring_worker_incarnation(r, 1), 0);

    /* A process still using the old incarnation is refused. */
    ring_claim_t c;
    assert_int_equal(ring_claim(r, 0, 0, &c, 0), RING_STALE);

    /* Worker 1 gets the reclaimed job first (smallest seq), with attempts + 1. */
    assert_int_equal(ring_claim(r, 1, 0, &c, 0), RING_OK);
    assert_string_equal(c.run_id, rid(1));
    assert_int_equal(c.attempts, 1);
    assert_int_equal(c.seq, old.seq);
    ring_stats_t st;
    ring_stats(r, &st);
    assert_int_equal(st.reclaimed, 1);

    /* The dead incarnation's completion is ignored; the job stays claimed by worker 1. */
    assert_int_equal(ring_complete(r, &old), RING_STALE);
    assert_int_equal(ring_push(r, rid(1), 10), RING_DUPLICATE);
    assert_int_equal(ring_complete(r, &c), RING_OK);

    /* The replacement of worker 0 works with the new incarnation; order continues. */
    assert_int_equal(ring_claim(r, 0, 1, &c, 0), RING_OK);
    assert_string_equal(c.run_id, rid(2));
    assert_int_equal(c.attempts, 0);
    assert_int_equal(ring_complete(r, &c), RING_OK);
    assert_int_equal(ring_claim(r, 0, 1, &c, 0), RING_OK);
    assert_string_equal(c.run_id, rid(3));
    assert_int_equal(ring_complete(r, &c), RING_OK);
    assert_consistent(r);
    ring_destroy(r);
}

static void test_drop_after_max_reclaims(void **state)
{
    (void)state;
    ring_t *r = ring_create(new_name(), 2, 1);
    assert_non_null(r);
    assert_int_equal(ring_push(r, rid(9), 10), RING_OK);
    ring_claim_t c;
    for (uint32_t i = 0; i <= RING_MAX_RECLAIMS; i++) {
        assert_int_equal(ring_claim(r, 0, i, &c, 0), RING_OK);
        assert_string_equal(c.run_id, rid(9));
        assert_int_equal(c.attempts, i);
        ring_worker_reincarnate(r, 0); /* the worker "crashed" on this job */
    }
    assert_int_equal(ring_claim(r, 0, RING_MAX_RECLAIMS + 1, &c, 0), RING_EMPTY);
    ring_stats_t st;
    ring_stats(r, &st);
    assert_int_equal(st.dropped, 1);
    assert_int_equal(st.reclaimed, RING_MAX_RECLAIMS);
    assert_int_equal(st.free_slots, 2);
    assert_int_equal(ring_push(r, rid(9), 10), RING_OK); /* the dispatcher may offer it again */
    assert_consistent(r);
    ring_destroy(r);
}

static void test_capacity_one(void **state)
{
    (void)state;
    ring_t *r = ring_create(new_name(), 1, 1);
    assert_non_null(r);
    for (uint32_t round = 0; round < 3; round++) {
        assert_int_equal(ring_push(r, rid(round), 10), RING_OK);
        assert_int_equal(ring_push(r, rid(100 + round), 10), RING_FULL);
        ring_claim_t c;
        assert_int_equal(ring_claim(r, 0, 0, &c, 0), RING_OK);
        assert_string_equal(c.run_id, rid(round));
        assert_int_equal(ring_push(r, rid(100 + round), 10), RING_FULL);
        assert_int_equal(ring_complete(r, &c), RING_OK);
        assert_int_equal(ring_free_slots(r), 1);
    }
    assert_consistent(r);
    ring_destroy(r);
    assert_null(ring_create(new_name(), 0, 1));
    assert_null(ring_create(new_name(), RING_MAX_CAPACITY + 1, 1));
    assert_null(ring_create(new_name(), 4, RING_MAX_WORKERS + 1));
    assert_null(ring_create("no-slash", 4, 1));
    assert_null(ring_create("/a/b", 4, 1));
}

static void test_capacity_max(void **state)
{
    (void)state;
    const uint32_t cap = RING_MAX_CAPACITY;
    ring_t *r = ring_create(new_name(), cap, RING_MAX_WORKERS);
    assert_non_null(r);
    for (uint32_t i = 0; i < cap; i++)
        if (ring_push(r, rid(i * 7919u), 10) != RING_OK)
            fail_msg("push %u failed", i);
    assert_int_equal(ring_push(r, rid(cap * 7919u), 10), RING_FULL);
    assert_int_equal(ring_push(r, rid(5 * 7919u), 10), RING_DUPLICATE);
    assert_int_equal(ring_free_slots(r), 0);
    assert_consistent(r);
    /* Claim half, complete every other one, reincarnate a worker, then drain in FIFO order. */
    for (uint32_t i = 0; i < cap; i++) {
        ring_claim_t c;
        uint32_t w = i % RING_MAX_WORKERS;
        if (ring_claim(r, w, ring_worker_incarnation(r, w), &c, 0) != RING_OK)
            fail_msg("claim %u failed", i);
        if (strcmp(c.run_id, rid(i * 7919u)) != 0)
            fail_msg("claim %u out of order: %s", i, c.run_id);
        if (ring_complete(r, &c) != RING_OK)
            fail_msg("complete %u failed", i);
    }
    ring_stats_t st;
    ring_stats(r, &st);
    assert_int_equal(st.free_slots, cap);
    assert_int_equal(st.completed, cap);
    assert_consistent(r);
    ring_destroy(r);
}

/*
 * The production path: children use the ring they inherit across fork (a claim is plain data
 * that any process may complete); only the creator unlinks the name.
 */
static void test_shared_across_fork_and_destroy(void **state)
{
    (void)state;
    const char *name = new_name();
    char saved[64];
    snprintf(saved, sizeof(saved), "%s", name);
    ring_t *r = ring_create(saved, 16, 3);
    assert_non_null(r);

    int fd = shm_open(saved, O_RDONLY, 0);
    assert_true(fd >= 0);
    struct stat sb;
    assert_int_equal(fstat(fd, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    close(fd);

    assert_int_equal(ring_push(r, rid(1), 10), RING_OK);
    ring_worker_reincarnate(r, 2);
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* a producer and consumer 2 in one child */
        ring_claim_t c;
        int ok = ring_push(r, rid(1), 10) == RING_DUPLICATE &&
                 ring_push(r, rid(2), 10) == RING_OK && ring_worker_incarnation(r, 2) == 1 &&
                 ring_claim(r, 2, 1, &c, 0) == RING_OK && strcmp(c.run_id, rid(1)) == 0 &&
                 write(p[1], &c, sizeof(c)) == (ssize_t)sizeof(c);
        ring_destroy(r); /* a forked child never unlinks */
        _exit(ok ? 0 : 1);
    }
    close(p[1]);
    int ws;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    ring_claim_t c;
    assert_int_equal(read(p[0], &c, sizeof(c)), (ssize_t)sizeof(c));
    close(p[0]);
    ring_stats_t st;
    ring_stats(r, &st);
    assert_int_equal(st.capacity, 16);
    assert_int_equal(st.nworkers, 3);
    assert_int_equal(st.queued, 1);
    assert_int_equal(st.claimed, 1);
    assert_int_equal(ring_complete(r, &c), RING_OK); /* the claim is plain data */
    ring_stats(r, &st);
    assert_int_equal(st.claimed, 0);
    assert_consistent(r);

    ring_destroy(r); /* the creator unlinks */
    errno = 0;
    assert_true(shm_open(saved, O_RDWR, 0) < 0);
    assert_int_equal(errno, ENOENT);
}

static void test_stale_segment_replaced(void **state)
{
    (void)state;
    char name[64];
    snprintf(name, sizeof(name), "%s", new_name());
    int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 100000), 0);
    char junk[4096];
    memset(junk, 0x5a, sizeof(junk));
    assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
    close(fd);

    ring_t *r = ring_create(name, 4, 1); /* stale segment of that name is replaced */
    assert_non_null(r);
    ring_stats_t st;
    ring_stats(r, &st);
    assert_int_equal(st.free_slots, 4);
    assert_int_equal(st.queued, 0);
    assert_consistent(r);

    /* A forked child holding the inherited ring_t must not unlink the name. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ring_destroy(r);
        _exit(0);
    }
    int ws;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    fd = shm_open(name, O_RDWR, 0); /* still there */
    assert_true(fd >= 0);
    close(fd);
    ring_destroy(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_and_complete),
        cmocka_unit_test(test_full_duplicate_invalid),
        cmocka_unit_test(test_empty_after_wait),
        cmocka_unit_test(test_doorbell_wakes_consumer),
        cmocka_unit_test(test_reclaim_after_reincarnate),
        cmocka_unit_test(test_drop_after_max_reclaims),
        cmocka_unit_test(test_capacity_one),
        cmocka_unit_test(test_capacity_max),
        cmocka_unit_test(test_shared_across_fork_and_destroy),
        cmocka_unit_test(test_stale_segment_replaced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
