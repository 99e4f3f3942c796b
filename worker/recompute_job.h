/*
 * worker/recompute_job.h: one recompute job, DATA.md §6.10, run by a recompute worker process
 * for a run id it claimed from the ring: ownership lock, claim, rebuild transaction under the
 * job deadline, version bump, final state with its audit entry, scope lock release, unlock.
 * Also the graceful-shutdown rule of §6.9 (finish within HTTP_SHUTDOWN_TIMEOUT or roll back and
 * return the run to pending without counting the attempt).
 */
#ifndef ANALYTICSD_RECOMPUTE_JOB_H
#define ANALYTICSD_RECOMPUTE_JOB_H

#include <libpq-fe.h>
#include <stdint.h>

#include "common/config.h"
#include "common/shstate.h"

/* Fixed job deadline of CONFIG.md §4. */
#define RECOMPUTE_JOB_DEADLINE_NS 120000000000LL

typedef struct recompute_job_env {
    const config *cfg;
    shstate_slot *slot;  /* this worker's shared-state slot (busy_until_ns, heartbeat) */
    int stopfd;          /* worker/stopsignal.h signalfd */
    int64_t deadline_ns; /* job deadline length: RECOMPUTE_JOB_DEADLINE_NS except in tests */
} recompute_job_env;

typedef enum {
    RECOMPUTE_JOB_DROPPED,     /* not ours: ownership lock held elsewhere or run not pending */
    RECOMPUTE_JOB_FINISHED,    /* run completed or failed; scope lock and ownership released */
    RECOMPUTE_JOB_ABANDONED,   /* database trouble: the session was closed (*conn = NULL), so
                                  the ownership lock is gone and the orphan scan takes over */
    RECOMPUTE_JOB_INTERRUPTED, /* graceful shutdown cut the job off: the run went back to
                                  pending (or was abandoned); the worker must exit now */
} recompute_job_outcome;

/*
 * Runs the job for run_id on *conn (an open session of this worker). Blocks for the job's
 * duration; the stop signal and the deadline are watched by a helper thread that cancels the
 * running statement (PQcancel) when the deadline or the shutdown grace runs out. Sets
 * env->slot->busy_until_ns to claim time + deadline while the run is owned and back to 0.
 * Every failure is logged with its detail; the run's error_message is only a §6.11 text.
 * On RECOMPUTE_JOB_ABANDONED (and possibly INTERRUPTED) *conn has been closed and set to NULL.
 */
recompute_job_outcome recompute_job_run(const recompute_job_env *env, PGconn **conn,
                                        const char *run_id);

#endif
