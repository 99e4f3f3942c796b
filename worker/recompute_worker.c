/*
 * worker/recompute_worker.c: a recompute worker process (forked by the master,
 * RECOMPUTE_WORKERS of them). It keeps one PostgreSQL session (application_name
 * pg-analytics-service:recompute:<pid>), claims run ids from the shared-memory ring, runs each
 * job (worker/recompute_job.c, DATA.md §6.10), completes the ring claim and then refills the
 * ring from the pending runs itself (§6.8 "whenever a worker finishes a job"). Between jobs it
 * refreshes its heartbeat at least once a second. Design and crash cases: worker/README.md.
 *
 * Test hook: ANALYTICSD_TEST_JOB_DEADLINE_MS (a positive integer) replaces the fixed 120 s job
 * deadline; it exists only so tests can exercise `recompute timed out` without waiting two
 * minutes, and is logged loudly when used. Production never sets it.
 */
#include "worker/recompute_worker.h"

#include "common/log.h"
#include "common/pgsession.h"
#include "common/shstate.h"
#include "common/util.h"
#include "common/exitcodes.h"
#include "worker/recompute_job.h"
#include "worker/runstore.h"
#include "worker/stopsignal.h"

#include <stdlib.h>

#define RECOMPUTE_CLAIM_WAIT_MS    500
#define RECOMPUTE_RECONNECT_MS     1000
#define RECOMPUTE_COMPLETE_RETRIES 5

/* Opens the worker's session; NULL if PostgreSQL is unreachable (logged). */
static PGconn *worker_connect(const config *cfg)
{
    PGconn *conn = pgsession_connect(cfg->database_url, "recompute");
    if (conn == NULL)
        return NULL;
    /* A killed worker's backend may be waiting on a lock; make it notice the dead client
     * within a second so its ownership lock frees promptly (§6.9). Best effort. */
    PGresult *res = pgsession_exec(conn, "recompute session setup",
                                   "SET client_connection_check_interval = '1s'", 0, NULL);
    if (res != NULL)
        PQclear(res);
    return conn;
}

static int64_t job_deadline_ns(void)
{
    const char *v = getenv("ANALYTICSD_TEST_JOB_DEADLINE_MS");
    if (v != NULL && *v != '\0') {
        char *end;
        long long ms = strtoll(v, &end, 10);
        if (*end == '\0' && ms > 0) {
            log_warn("TEST HOOK: job deadline is %lld ms (ANALYTICSD_TEST_JOB_DEADLINE_MS)", ms);
            return ms * 1000000LL;
        }
        log_warn("ignoring invalid ANALYTICSD_TEST_JOB_DEADLINE_MS");
    }
    return RECOMPUTE_JOB_DEADLINE_NS;
}

static void complete_claim(ring_t *ring, const ring_claim_t *claim)
{
    for (int i = 0; i < RECOMPUTE_COMPLETE_RETRIES; i++) {
        ring_status st = ring_complete(ring, claim);
        if (st != RING_BUSY)
            return; /* OK, or STALE: reclaimed meanwhile, nothing to do */
    }
    log_warn("could not complete the ring claim of run %s; it will be reclaimed", claim->run_id);
}

int recompute_worker_main(const config *cfg, ring_t *ring, uint32_t worker, int slot)
{
    int stopfd = stopsignal_open();
    if (stopfd < 0)
        return EXIT_CHILD_CRASHED;
    shstate_slot *me = &shstate_global->slots[slot];
    recompute_job_env env = {cfg, me, stopfd, job_deadline_ns()};
    uint64_t incarnation = ring_worker_incarnation(ring, worker);
    PGconn *conn = worker_connect(cfg);
    atomic_store(&me->ready, 1);
    int rc = EXIT_CHILD_STOPPED;
    while (!stopsignal_wait(stopfd, 0)) {
        atomic_store(&me->heartbeat_ns, clock_monotonic_ns());
        if (conn != NULL && PQstatus(conn) != CONNECTION_OK) {
            log_warn("database session lost; reconnecting");
            PQfinish(conn);
            conn = NULL;
        }
        if (conn == NULL) {
            /* Without a session a claimed id would only be dropped: leave them queued. */
            if (stopsignal_wait(stopfd, RECOMPUTE_RECONNECT_MS))
                break;
            conn = worker_connect(cfg);
            continue;
        }
        ring_claim_t claim;
        ring_status st = ring_claim(ring, worker, incarnation, &claim, RECOMPUTE_CLAIM_WAIT_MS);
        if (st == RING_STALE) {
            log_error("this worker's ring incarnation was retired; exiting");
            rc = EXIT_CHILD_CRASHED;
            break;
        }
        if (st != RING_OK)
            continue;
        recompute_job_outcome out = recompute_job_run(&env, &conn, claim.run_id);
        complete_claim(ring, &claim);
        if (out == RECOMPUTE_JOB_INTERRUPTED)
            break;
        if (out != RECOMPUTE_JOB_DROPPED && conn != NULL)
            runstore_refill(conn, ring);
    }
    PQfinish(conn);
    return rc;
}
