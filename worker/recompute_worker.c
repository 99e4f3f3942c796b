/*
 * worker/recompute_worker.c: a recompute worker process (forked by the master,
 * RECOMPUTE_WORKERS of them). It claims run ids from the shared-memory ring, marks itself busy
 * with the job deadline in shared state (the master kills it 30 s past that deadline), runs the
 * job and completes the claim. Between jobs it refreshes its heartbeat at least once a second.
 *
 * The rebuild itself (DATA.md §6.10) is not wired in yet: a claimed job is acknowledged and
 * logged, which is what the ring and supervision tests exercise.
 */
#include "worker/recompute_worker.h"

#include "common/log.h"
#include "common/shstate.h"
#include "common/util.h"
#include "server/exitcodes.h"
#include "worker/stopsignal.h"

#define RECOMPUTE_CLAIM_WAIT_MS   500
#define RECOMPUTE_JOB_DEADLINE_NS 120000000000LL

int recompute_worker_main(const config *cfg, ring_t *ring, uint32_t worker, int slot)
{
    (void)cfg;
    int stopfd = stopsignal_open();
    if (stopfd < 0)
        return EXIT_CHILD_CRASHED;
    shstate_slot *me = &shstate_global->slots[slot];
    uint64_t incarnation = ring_worker_incarnation(ring, worker);
    atomic_store(&me->ready, 1);
    while (!stopsignal_wait(stopfd, 0)) {
        atomic_store(&me->heartbeat_ns, clock_monotonic_ns());
        ring_heartbeat(ring, worker);
        ring_claim_t claim;
        ring_status st = ring_claim(ring, worker, incarnation, &claim, RECOMPUTE_CLAIM_WAIT_MS);
        if (st == RING_STALE) {
            log_error("this worker's ring incarnation was retired; exiting");
            return EXIT_CHILD_CRASHED;
        }
        if (st != RING_OK)
            continue;
        atomic_store(&me->busy_until_ns, clock_monotonic_ns() + RECOMPUTE_JOB_DEADLINE_NS);
        log_info("claimed run %s (no rebuild wired yet)", claim.run_id);
        ring_complete(ring, &claim);
        atomic_store(&me->busy_until_ns, 0);
    }
    return EXIT_CHILD_STOPPED;
}
