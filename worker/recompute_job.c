/*
 * worker/recompute_job.c: one recompute job in a recompute worker process (see recompute_job.h
 * and worker/README.md).
 *
 * The rebuild statements are the shared blocking ones of common/rebuild.c, so the job cannot
 * poll while they run. Instead a watcher thread, alive only for the rebuild transaction, polls
 * the stop signalfd and a wake eventfd with a timeout: when the job deadline passes (a backstop:
 * the server-side statement_timeout/lock_timeout set to the remaining time normally fires
 * first) or when a stop signal arrived and the shutdown grace is about to run out, it sends
 * PQcancel (thread-safe, on its own PGcancel object) and repeats it every 200 ms until the
 * main thread finishes the transaction. The main thread then decides from the watcher's reason
 * what the run becomes.
 */
#include "worker/recompute_job.h"

#include "common/log.h"
#include "common/metrics.h"
#include "common/pgsession.h"
#include "common/rebuild.h"
#include "common/util.h"
#include "common/scopelock.h"
#include "worker/runstore.h"
#include "worker/stopsignal.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define JOB_DEADLINE_SLACK_NS   200000000LL /* client-side cancel this long after the deadline */
#define JOB_CANCEL_REPEAT_MS    200
#define JOB_TIMEOUT_FUZZ_NS     100000000LL /* an error this close to the deadline is a timeout */
#define JOB_SHUTDOWN_MARGIN_MIN 200000000LL /* keep this much of the grace for the rollback */
#define JOB_SHUTDOWN_MARGIN_MAX 2000000000LL

enum { CUT_NONE = 0, CUT_DEADLINE, CUT_SHUTDOWN };

typedef struct job_watcher {
    pthread_t thread;
    int stopfd;
    int wakefd;
    PGcancel *cancel;
    const char *run_id;
    int64_t deadline_at;  /* monotonic ns */
    int64_t grace_ns;     /* HTTP_SHUTDOWN_TIMEOUT minus a margin for the rollback */
    int64_t stop_seen_at; /* watcher thread only until joined */
    _Atomic int done;
    _Atomic int cut; /* CUT_* reason of the first cancel */
} job_watcher;

static void *watcher_main(void *arg)
{
    job_watcher *w = arg;
    int sent = 0;
    while (!atomic_load(&w->done)) {
        int64_t now = clock_monotonic_ns();
        if (w->stop_seen_at == 0 && stopsignal_wait(w->stopfd, 0))
            w->stop_seen_at = now;
        int64_t deadline_cut = w->deadline_at + JOB_DEADLINE_SLACK_NS;
        int64_t shutdown_cut = w->stop_seen_at ? w->stop_seen_at + w->grace_ns : INT64_MAX;
        int64_t cut_at = deadline_cut < shutdown_cut ? deadline_cut : shutdown_cut;
        int timeout_ms;
        if (now >= cut_at) {
            int expected = CUT_NONE;
            atomic_compare_exchange_strong(
                &w->cut, &expected, shutdown_cut <= deadline_cut ? CUT_SHUTDOWN : CUT_DEADLINE);
            if (!sent)
                log_warn("run %s: cancelling the rebuild (%s)", w->run_id,
                         atomic_load(&w->cut) == CUT_SHUTDOWN ? "shutdown grace ran out"
                                                              : "job deadline passed");
            sent = 1;
            char err[256];
            if (!PQcancel(w->cancel, err, sizeof(err)))
                log_warn("run %s: cancel request failed: %s", w->run_id, err);
            timeout_ms = JOB_CANCEL_REPEAT_MS;
        } else {
            timeout_ms = (int)((cut_at - now) / 1000000) + 1;
        }
        struct pollfd pfd[2] = {{w->wakefd, POLLIN, 0}, {w->stopfd, POLLIN, 0}};
        poll(pfd, w->stop_seen_at ? 1 : 2, timeout_ms);
    }
    return NULL;
}

static int watcher_start(job_watcher *w, const recompute_job_env *env, PGconn *conn,
                         const char *run_id)
{
    memset(w, 0, sizeof(*w));
    w->stopfd = env->stopfd;
    w->run_id = run_id;
    w->deadline_at = atomic_load(&env->slot->busy_until_ns);
    int64_t grace = env->cfg->http_shutdown_timeout_ns;
    /* 40 %: a cancel, rollback and return to pending took over 1 s of a 5 s grace on a loaded
     * two-core host under ASan, and the master then killed the worker (exit status 1). */
    int64_t margin = grace * 2 / 5;
    if (margin < JOB_SHUTDOWN_MARGIN_MIN)
        margin = JOB_SHUTDOWN_MARGIN_MIN;
    if (margin > JOB_SHUTDOWN_MARGIN_MAX)
        margin = JOB_SHUTDOWN_MARGIN_MAX;
    w->grace_ns = grace > margin ? grace - margin : 0;
    w->cancel = PQgetCancel(conn);
    w->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->cancel == NULL || w->wakefd < 0) {
        log_error("run %s: cannot set up the job watcher", run_id);
        goto fail;
    }
    if (pthread_create(&w->thread, NULL, watcher_main, w) != 0) {
        log_error("run %s: cannot start the job watcher thread", run_id);
        goto fail;
    }
    return 0;
fail:
    if (w->cancel != NULL)
        PQfreeCancel(w->cancel);
    if (w->wakefd >= 0)
        close(w->wakefd);
    return -1;
}

/* Stops the watcher; returns its CUT_* reason. */
static int watcher_stop(job_watcher *w)
{
    atomic_store(&w->done, 1);
    uint64_t one = 1;
    if (write(w->wakefd, &one, sizeof(one)) < 0)
        log_warn("job watcher wake-up failed");
    pthread_join(w->thread, NULL);
    close(w->wakefd);
    PQfreeCancel(w->cancel);
    return atomic_load(&w->cut);
}

/* Gives up ownership of the run: closing the session frees the advisory lock. */
static void abandon(PGconn **conn, const char *run_id, const char *why)
{
    log_warn("run %s: %s; closing the session so the orphan scan retries the run", run_id, why);
    PQfinish(*conn);
    *conn = NULL;
}

/* A finalising statement, retried once if it failed on a still healthy session (for example a
 * cancel request that arrived after its statement had finished). */
typedef runstore_status (*final_fn)(PGconn *, const runstore_run *, const void *);

static runstore_status final_fail(PGconn *c, const runstore_run *r, const void *msg)
{
    return runstore_fail(c, r, msg);
}

static runstore_status final_complete(PGconn *c, const runstore_run *r, const void *summary)
{
    return runstore_complete(c, r, summary);
}

static runstore_status final_interrupted(PGconn *c, const runstore_run *r, const void *unused)
{
    (void)unused;
    return runstore_return_interrupted(c, r->id);
}

static runstore_status finalise(PGconn *conn, final_fn fn, const runstore_run *run, const void *arg)
{
    runstore_status st = fn(conn, run, arg);
    if (st == RUNSTORE_DB_ERROR && PQstatus(conn) == CONNECTION_OK)
        st = fn(conn, run, arg);
    if (st == RUNSTORE_NOT_FOUND)
        log_warn("run %s was no longer running when this worker finalised it", run->id);
    return st;
}

/* Rebuild transaction of §6.4 under the deadline. Returns 1 committed, 0 not; *rs, *cut set. */
static int rebuild_transaction(const recompute_job_env *env, PGconn *conn, const runstore_run *run,
                               rebuild_summary *sum, rebuild_status *rs, int *cut)
{
    job_watcher w;
    *rs = REBUILD_DB_ERROR;
    *cut = CUT_NONE;
    if (watcher_start(&w, env, conn, run->id) != 0)
        return 0;
    int committed = 0;
    int64_t remaining_ms = (w.deadline_at - clock_monotonic_ns()) / 1000000;
    char limit[32];
    snprintf(limit, sizeof(limit), "%lld", (long long)(remaining_ms > 0 ? remaining_ms : 1));
    const char *params[1] = {limit};
    if (pgsession_command(conn, "rebuild: begin", "BEGIN", 0, NULL) == 0 &&
        pgsession_command(conn, "rebuild: job deadline",
                          "SELECT set_config('statement_timeout', $1, true),"
                          " set_config('lock_timeout', $1, true)",
                          1, params) == 0) {
        *rs = rebuild_run(conn, run->id, run->report_slug, run->window, run->date_from,
                          run->date_to, sum);
        if (*rs == REBUILD_OK)
            committed = pgsession_command(conn, "rebuild: commit", "COMMIT", 0, NULL) == 0;
        if (*rs == REBUILD_OK && !committed)
            *rs = REBUILD_DB_ERROR;
    }
    *cut = watcher_stop(&w);
    return committed;
}

/* After a final transition (completed or failed): frees the scope lock so the next run of the
 * same scope may start, then releases the ownership lock; when that fails, abandon(). */
static recompute_job_outcome release_final(const recompute_job_env *env, PGconn **conn,
                                           const runstore_run *run)
{
    scopelock_release(env->cfg, run->report_slug, run->window, run->date_from, run->date_to,
                      run->id);
    if (runstore_unlock(*conn, run->id) != 0) {
        abandon(conn, run->id, "cannot release the ownership lock");
        return RECOMPUTE_JOB_ABANDONED;
    }
    return RECOMPUTE_JOB_FINISHED;
}

static recompute_job_outcome job_succeeded(const recompute_job_env *env, PGconn **conn,
                                           const runstore_run *run, const rebuild_summary *sum)
{
    runstore_bump_version(env->cfg, run->report_slug); /* failures mark Redis untrusted */
    runstore_status st = finalise(*conn, final_complete, run, sum);
    if (st == RUNSTORE_DB_ERROR) {
        abandon(conn, run->id, "cannot mark the run completed");
        return RECOMPUTE_JOB_ABANDONED;
    }
    log_info("run %s completed: %s %s %s..%s, %lld buckets, %lld rows deleted, %lld inserted "
             "(attempt %d)",
             run->id, run->report_slug, run->window, run->date_from, run->date_to,
             (long long)sum->bucket_count, (long long)sum->rows_deleted,
             (long long)sum->rows_inserted, run->attempts);
    return release_final(env, conn, run);
}

static recompute_job_outcome job_failed(const recompute_job_env *env, PGconn **conn,
                                        const runstore_run *run, rebuild_status rs, int cut)
{
    if (PQstatus(*conn) != CONNECTION_OK) {
        abandon(conn, run->id, "the database session was lost during the rebuild");
        return cut == CUT_SHUTDOWN ? RECOMPUTE_JOB_INTERRUPTED : RECOMPUTE_JOB_ABANDONED;
    }
    if (pgsession_command(*conn, "rebuild: rollback", "ROLLBACK", 0, NULL) != 0 &&
        pgsession_command(*conn, "rebuild: rollback", "ROLLBACK", 0, NULL) != 0) {
        abandon(conn, run->id, "cannot roll back the rebuild");
        return cut == CUT_SHUTDOWN ? RECOMPUTE_JOB_INTERRUPTED : RECOMPUTE_JOB_ABANDONED;
    }
    if (cut == CUT_SHUTDOWN) {
        /* §6.7: back to pending, attempt not counted; the scope lock stays with the run. */
        if (finalise(*conn, final_interrupted, run, NULL) == RUNSTORE_DB_ERROR) {
            abandon(conn, run->id, "cannot return the interrupted run to pending");
            return RECOMPUTE_JOB_INTERRUPTED;
        }
        log_info("run %s interrupted by shutdown; returned to pending", run->id);
        if (runstore_unlock(*conn, run->id) != 0)
            abandon(conn, run->id, "cannot release the ownership lock");
        return RECOMPUTE_JOB_INTERRUPTED;
    }
    const char *msg;
    if (rs == REBUILD_UNSUPPORTED)
        msg = RUNS_ERR_UNSUPPORTED;
    else if (cut == CUT_DEADLINE ||
             clock_monotonic_ns() >= atomic_load(&env->slot->busy_until_ns) - JOB_TIMEOUT_FUZZ_NS)
        msg = RUNS_ERR_TIMEOUT;
    else
        msg = RUNS_ERR_REBUILD;
    log_error("run %s failed: %s (%s %s %s..%s, attempt %d; details above)", run->id, msg,
              run->report_slug, run->window, run->date_from, run->date_to, run->attempts);
    if (finalise(*conn, final_fail, run, msg) == RUNSTORE_DB_ERROR) {
        abandon(conn, run->id, "cannot mark the run failed");
        return RECOMPUTE_JOB_ABANDONED;
    }
    return release_final(env, conn, run);
}

recompute_job_outcome recompute_job_run(const recompute_job_env *env, PGconn **conn,
                                        const char *run_id)
{
    int locked = runstore_try_lock(*conn, run_id);
    if (locked < 0) {
        abandon(conn, run_id, "cannot take the ownership lock");
        return RECOMPUTE_JOB_ABANDONED;
    }
    if (locked == 0) {
        log_info("run %s is owned by another session; dropped", run_id);
        return RECOMPUTE_JOB_DROPPED;
    }
    runstore_run run;
    int64_t claimed_at = clock_monotonic_ns();
    runstore_status st = runstore_claim(*conn, run_id, &run);
    if (st == RUNSTORE_DB_ERROR) {
        abandon(conn, run_id, "cannot claim the run");
        return RECOMPUTE_JOB_ABANDONED;
    }
    if (st == RUNSTORE_NOT_FOUND) {
        if (runstore_unlock(*conn, run_id) != 0) {
            abandon(conn, run_id, "cannot release the ownership lock");
            return RECOMPUTE_JOB_ABANDONED;
        }
        return RECOMPUTE_JOB_DROPPED;
    }
    int64_t deadline = claimed_at + env->deadline_ns;
    atomic_store(&env->slot->busy_until_ns, deadline);
    log_info("run %s claimed: %s %s %s..%s (attempt %d)", run.id, run.report_slug, run.window,
             run.date_from, run.date_to, run.attempts);

    rebuild_summary sum;
    rebuild_status rs;
    int cut;
    recompute_job_outcome out;
    int committed = rebuild_transaction(env, *conn, &run, &sum, &rs, &cut);
    if (committed)
        out = job_succeeded(env, conn, &run, &sum);
    else
        out = job_failed(env, conn, &run, rs, cut);
    if (out == RECOMPUTE_JOB_FINISHED) /* the run reached its final state here */
        metrics_recompute_finished(committed, (uint64_t)(clock_monotonic_ns() - claimed_at));

    /* Heartbeat first: once busy_until_ns is 0 the master judges the idle heartbeat. */
    atomic_store(&env->slot->heartbeat_ns, clock_monotonic_ns());
    atomic_store(&env->slot->busy_until_ns, 0);
    return out;
}
