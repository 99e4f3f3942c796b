/*
 * worker/runstore.h: the recompute_runs state changes of DATA.md §6.7 that the recompute workers
 * and the supervisor share, each one atomic with its audit entry (§6.12), plus the version bump
 * after a completed run (§7.2) and the dispatch refill (§6.8). The scope lock (§7.5) is
 * common/scopelock.h. Blocking; used only
 * by the processes that may block (recompute workers, supervisor).
 *
 * Every state change is a single conditional statement (WHERE status = 'running'), so a run that
 * somebody else already finalised is left alone and the audit entry is written only together
 * with the change it describes.
 */
#ifndef ANALYTICSD_RUNSTORE_H
#define ANALYTICSD_RUNSTORE_H

#include <libpq-fe.h>
#include <stdint.h>

#include "common/config.h"
#include "common/rebuild.h"
#include "common/ring.h"
#include "common/runs.h"

/* What a claimed (or orphaned) run looks like to its finaliser. */
typedef struct runstore_run {
    char id[RING_RUN_ID_LEN + 1];
    char report_slug[129];
    char window[8];
    char date_from[11]; /* YYYY-MM-DD */
    char date_to[11];
    int attempts;
} runstore_run;

typedef enum {
    RUNSTORE_OK,        /* the statement did what was asked */
    RUNSTORE_NOT_FOUND, /* the row was not in the expected state: nothing changed */
    RUNSTORE_DB_ERROR   /* statement failed (logged); the connection may be unusable */
} runstore_status;

/*
 * pg_try_advisory_lock / pg_advisory_unlock on hashtextextended('recompute:run:' || id, 0), the
 * ownership lock of §6.9, on conn's session. try_lock returns 1 acquired, 0 held elsewhere, -1
 * on a database error (logged). unlock returns 0, or -1 on error (logged; closing the session
 * frees the lock anyway).
 */
int runstore_try_lock(PGconn *conn, const char *run_id);
int runstore_unlock(PGconn *conn, const char *run_id);

/*
 * The claim of §6.8: pending → running, started_at = now(), attempts + 1, only if still
 * pending. Fills *out on RUNSTORE_OK; RUNSTORE_NOT_FOUND when nothing was updated.
 */
runstore_status runstore_claim(PGconn *conn, const char *run_id, runstore_run *out);

/*
 * running → failed with `message` (one of the §6.11 texts), finished_at = now(), plus the
 * recompute.failed audit entry, in one statement. RUNSTORE_NOT_FOUND if the run is not running.
 */
runstore_status runstore_fail(PGconn *conn, const runstore_run *run, const char *message);

/*
 * running → completed with finished_at, error_message NULL and summary, plus the
 * recompute.completed audit entry, in one statement.
 */
runstore_status runstore_complete(PGconn *conn, const runstore_run *run,
                                  const rebuild_summary *summary);

/*
 * running → pending, started_at NULL, attempts − 1: the job was interrupted by a graceful
 * shutdown (§6.7). No audit entry.
 */
runstore_status runstore_return_interrupted(PGconn *conn, const char *run_id);

/*
 * Orphan handling of §6.9 for a run whose ownership lock the caller holds: if still running,
 * attempts < max_attempts → pending (started_at NULL), else failed with
 * `recompute worker crashed` + audit, in one statement. *out is filled when something changed;
 * *exhausted is set to 1 when the run was failed (the caller releases its scope lock).
 */
runstore_status runstore_recover_orphan(PGconn *conn, const char *run_id, int max_attempts,
                                        runstore_run *out, int *exhausted);

/*
 * §7.2 bump after a completed rebuild: INCR report:version:{slug} unless Redis is untrusted.
 * On any failure (connection, timeout or error reply) Redis is marked untrusted, so the
 * recovery bump makes up for it; returns 0 bumped, 1 skipped (untrusted), -1 failed.
 */
int runstore_bump_version(const config *cfg, const char *report_slug);

/*
 * Dispatch refill of §6.8: reads up to ring_free_slots(ring) pending run ids in
 * (requested_at, id) order and pushes each (RING_DUPLICATE is fine: already queued or claimed).
 * Returns the number pushed, or -1 on a database error (logged).
 */
int runstore_refill(PGconn *conn, ring_t *ring);

#endif
