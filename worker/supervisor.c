/*
 * worker/supervisor.c: the supervisor process (forked by the master, one per service).
 *
 * It blocks freely (it serves no requests) and ticks every 100 ms:
 *   - Redis recovery bump (DATA.md §7.6): while Redis is untrusted, at most once a second,
 *     INCR report:version:{slug} for every report definition; when all succeed, Redis becomes
 *     trusted for every process.
 *   - Orphan scan (§6.9): at startup, as soon as shstate->worker_exits changes (the master
 *     counts every recompute worker exit), and every 10 s. A killed worker's backend may need up
 *     to a second to notice its client is gone, so after an exit the scan is repeated every
 *     second for a few seconds while some running run's lock is still held.
 *   - Dispatch refill (§6.8): at startup and every second (cheap when the ring is full).
 *   - The pending-runs count for GET /metrics (common/metrics.h), every second.
 *   - Stale scope-lock sweep (§7.5), every 10 s: locks whose run is no longer pending or
 *     running (its worker was killed between the final commit and the release) are deleted.
 *   - Leadership (worker/leader.h), polled every second: the one leading supervisor of the
 *     deployment runs the SMS rollup every SMS_ROLLUP_INTERVAL and the SMS maintenance at once
 *     and then hourly (retried every 10 s until it succeeds): monthly partitions made ahead and
 *     dropped past the hourly retention, dedupe, per-second, rejection and daily rows purged
 *     past theirs (SMS.md §3.3, §5; common/sms_store.h); and the report scheduler
 *     (worker/scheduler.h): the scheduled incremental refresh every 5 s when due, the
 *     snapshot retention hourly.
 * First pass order: bump, orphan scan, refill, SMS partitions (every instance: a month's first
 * event needs its partition); then startup_done lets the master start the HTTP workers, and the
 * first leadership poll follows. Its sessions use application_name role "supervisor". Design:
 * worker/README.md.
 */
#include "worker/supervisor.h"

#include "common/cachekey.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/pgsession.h"
#include "common/redissync.h"
#include "common/shstate.h"
#include "common/sms_store.h"
#include "common/util.h"
#include "common/exitcodes.h"
#include "worker/leader.h"
#include "common/scopelock.h"
#include "worker/runstore.h"
#include "worker/scheduler.h"
#include "worker/stopsignal.h"

#include <stdlib.h>
#include <string.h>

#define SUPERVISOR_TICK_MS       100
#define SUPERVISOR_SECOND_NS     1000000000LL
#define SUPERVISOR_SCAN_EVERY_NS 10000000000LL /* CONFIG.md §4 */
#define SUPERVISOR_AFTER_EXIT_NS 5000000000LL  /* keep rescanning this long after an exit */
#define SUPERVISOR_RECONNECT_NS  1000000000LL
#define SUPERVISOR_SWEEP_KEYS    1000            /* scope locks looked at per sweep */
#define SUPERVISOR_SMS_UPKEEP_NS 3600000000000LL /* SMS partitions and purge once an hour */

typedef struct supervisor {
    const config *cfg;
    ring_t *ring;
    int slot;
    pgsession_kept pg;                   /* reconnects at most once a second */
    leader lead;                         /* deployment-wide leadership (worker/leader.h) */
    int64_t rollup_due, maintenance_due; /* leader only */
    scheduler sched;                     /* leader only (worker/scheduler.h) */
} supervisor;

/* The session (pgsession_kept_get); NULL while PostgreSQL is unreachable. */
static PGconn *supervisor_pg(supervisor *s)
{
    return pgsession_kept_get(&s->pg, s->cfg->database_url, "supervisor", SUPERVISOR_RECONNECT_NS);
}

/* DATA.md §7.6 recovery bump. Returns 0 when every INCR succeeded. */
static int recovery_bump(supervisor *s)
{
    PGconn *pg = supervisor_pg(s);
    if (pg == NULL)
        return -1;
    PGresult *res = pgsession_exec(pg, "recovery bump: list reports",
                                   "SELECT slug FROM report_definitions ORDER BY slug", 0, NULL);
    if (res == NULL)
        return -1;
    redisContext *rc = redissync_connect(&s->cfg->redis);
    int ok = rc != NULL;
    for (int i = 0; ok && i < PQntuples(res); i++) {
        jbuf key;
        jbuf_init(&key);
        cachekey_version(&key, PQgetvalue(res, i, 0), (size_t)PQgetlength(res, i, 0));
        const char *argv[] = {"INCR", key.data};
        redisReply *r = redissync_command(&rc, 2, argv, NULL);
        ok = r != NULL && r->type == REDIS_REPLY_INTEGER;
        if (r != NULL)
            freeReplyObject(r);
        jbuf_free(&key);
    }
    PQclear(res);
    if (rc != NULL)
        redisFree(rc);
    if (ok)
        shstate_redis_mark_trusted();
    return ok ? 0 : -1;
}

/* One orphan: lock held by the caller. Returns 0, or -1 on a database error. */
static int recover_one(supervisor *s, const char *id)
{
    runstore_run run;
    int exhausted = 0;
    runstore_status st =
        runstore_recover_orphan(s->pg.conn, id, s->cfg->recompute_max_attempts, &run, &exhausted);
    if (st == RUNSTORE_OK && exhausted) {
        log_warn("run %s failed: %s (%s %s %s..%s, %d attempts)", run.id, RUNS_ERR_CRASHED,
                 run.report_slug, run.window, run.date_from, run.date_to, run.attempts);
        scopelock_release(s->cfg, run.report_slug, run.window, run.date_from, run.date_to, run.id);
    } else if (st == RUNSTORE_OK) {
        log_warn("run %s was orphaned after attempt %d; returned to pending", run.id, run.attempts);
    }
    int unlocked = runstore_unlock(s->pg.conn, id);
    return st == RUNSTORE_DB_ERROR || unlocked != 0 ? -1 : 0;
}

/*
 * §6.9 orphan scan. Returns the number of running runs whose ownership lock is held elsewhere
 * (a live worker, or a dead one whose backend has not noticed yet), or -1 on a database error.
 */
static int orphan_scan(supervisor *s)
{
    if (supervisor_pg(s) == NULL)
        return -1;
    PGresult *res = pgsession_exec(s->pg.conn, "orphan scan",
                                   "SELECT id::text FROM recompute_runs WHERE status = 'running'"
                                   " ORDER BY started_at, id",
                                   0, NULL);
    if (res == NULL)
        return -1;
    int held = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *id = PQgetvalue(res, i, 0);
        int locked = runstore_try_lock(s->pg.conn, id);
        if (locked < 0) {
            held = -1;
            break;
        }
        if (locked == 0) {
            held++;
            continue;
        }
        if (recover_one(s, id) != 0) {
            held = -1;
            break;
        }
    }
    PQclear(res);
    return held;
}

static void refill(supervisor *s)
{
    if (ring_free_slots(s->ring) == 0 || supervisor_pg(s) == NULL)
        return;
    runstore_refill(s->pg.conn, s->ring);
}

/* The pending-runs gauge of GET /metrics: one indexed count, every second. */
static void count_pending(supervisor *s)
{
    if (supervisor_pg(s) == NULL)
        return;
    PGresult *res =
        pgsession_exec(s->pg.conn, "pending runs count",
                       "SELECT count(*) FROM recompute_runs WHERE status = 'pending'", 0, NULL);
    if (res == NULL)
        return;
    if (PQntuples(res) == 1)
        metrics_set_pending_runs(strtoll(PQgetvalue(res, 0, 0), NULL, 10));
    PQclear(res);
}

/* Leader only. Returns 0 when the SMS maintenance pass is done, -1 to try again in 10 s. Each
 * step logs what it changed; the pass logs its end. */
static int sms_maintenance(supervisor *s)
{
    const config *c = s->cfg;
    int rc = sms_store_ensure_partitions(s->pg.conn, c->sms_hourly_retention_days);
    if (rc == 0)
        rc = sms_store_drop_partitions(s->pg.conn, c->sms_hourly_retention_days);
    if (rc == 0)
        rc = sms_store_purge(s->pg.conn, c->sms_dedupe_retention_ns, c->sms_daily_retention_days);
    if (rc == 0)
        log_info("sms maintenance: pass done (hourly retention %lld days, daily %lld days)",
                 (long long)c->sms_hourly_retention_days, (long long)c->sms_daily_retention_days);
    else
        log_warn("sms maintenance: pass failed; retrying in 10 s");
    return rc;
}

/* Every second: poll leadership; the leader runs the rollup and the maintenance when due (a
 * new leader does both at once: the last one may have died before its pass). */
static void leader_tick(supervisor *s, int64_t now)
{
    bool was = s->lead.leading;
    if (!leader_poll(&s->lead) || supervisor_pg(s) == NULL)
        return;
    if (!was) {
        s->rollup_due = s->maintenance_due = now;
        scheduler_reset(&s->sched);
    }
    if (now >= s->maintenance_due)
        s->maintenance_due =
            now + (sms_maintenance(s) == 0 ? SUPERVISOR_SMS_UPKEEP_NS : SUPERVISOR_SCAN_EVERY_NS);
    if (now >= s->rollup_due && s->pg.conn != NULL) {
        sms_store_rollup(s->pg.conn, s->cfg->sms_hourly_retention_days);
        s->rollup_due = now + s->cfg->sms_rollup_interval_ns;
    }
    if (s->pg.conn != NULL)
        scheduler_tick(&s->sched, s->pg.conn, s->cfg, now);
}

int supervisor_main(const config *cfg, ring_t *ring, int slot)
{
    supervisor s = {.cfg = cfg, .ring = ring, .slot = slot};
    leader_init(&s.lead, cfg->database_url);
    scheduler_init(&s.sched);
    int stopfd = stopsignal_open();
    if (stopfd < 0)
        return EXIT_CHILD_CRASHED;
    pgsession_set_interrupt_fd(stopfd); /* a long rollup or maintenance statement cannot delay
                                            a graceful stop */
    shstate_slot *me = &shstate_global->slots[slot];
    atomic_store(&me->ready, 1);

    /* First pass (CONFIG.md §5.1 steps 5–6): bump, orphans, dispatch. */
    uint64_t exits_seen = atomic_load(&shstate_global->worker_exits);
    if (!shstate_redis_trusted())
        recovery_bump(&s);
    int held = orphan_scan(&s);
    refill(&s);
    count_pending(&s);             /* the gauge exists once HTTP workers serve */
    if (supervisor_pg(&s) != NULL) /* before serving: a month's first event needs its partition */
        sms_store_ensure_partitions(s.pg.conn, cfg->sms_hourly_retention_days);
    atomic_store(&shstate_global->startup_done, 1);
    int64_t now = clock_monotonic_ns();
    leader_tick(&s, now);

    int64_t last_second = now, last_scan = now, rescan_until = 0;
    while (!stopsignal_wait(stopfd, SUPERVISOR_TICK_MS)) {
        now = clock_monotonic_ns();
        atomic_store(&me->heartbeat_ns, now);
        int scan = 0;
        uint64_t exits = atomic_load(&shstate_global->worker_exits);
        if (exits != exits_seen) {
            exits_seen = exits;
            rescan_until = now + SUPERVISOR_AFTER_EXIT_NS;
            scan = 1;
        }
        int second = now - last_second >= SUPERVISOR_SECOND_NS;
        if (second && now < rescan_until && held != 0)
            scan = 1;
        if (now - last_scan >= SUPERVISOR_SCAN_EVERY_NS)
            scan = 1;
        if (now - last_scan >= SUPERVISOR_SCAN_EVERY_NS && supervisor_pg(&s) != NULL)
            scopelock_sweep(s.pg.conn, s.cfg, SUPERVISOR_SWEEP_KEYS);
        if (scan) {
            held = orphan_scan(&s);
            last_scan = now;
        }
        if (second) {
            last_second = now;
            count_pending(&s);
            leader_tick(&s, now);
            if (!shstate_redis_trusted())
                recovery_bump(&s);
        }
        if (second || scan)
            refill(&s);
    }
    leader_close(&s.lead);
    pgsession_kept_close(&s.pg);
    return EXIT_CHILD_STOPPED;
}
