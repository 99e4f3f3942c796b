/*
 * worker/scheduler.h: the report scheduler (API.md §8): the scheduled incremental refresh of
 * snapshots driven by aggregate_windows.refresh_interval_minutes, and their retention driven by
 * retention_days. Runs in the supervisor, and only while it leads the deployment
 * (worker/leader.h), so two or ten instances schedule each refresh once.
 *
 * The SQL side is schema/0006_refresh.sql: a statement trigger on analytics_events notes the
 * changed UTC days, refresh_collect() spreads them over every (report, window), refresh_plan()
 * turns one pair's changed days into pending `scheduler` runs. Those runs go through the same
 * durable backlog, recompute workers, audit entries and cache version bump as manual triggers;
 * the supervisor's dispatch refill offers them to the job ring within a second. Nothing here
 * lives in one process's memory except "when to look next": a new leader looks at once.
 *
 * Scheduled runs take no Redis scope lock: the active-scope index of PostgreSQL alone makes a
 * manual trigger of the same scope answer 409 while one is pending or running (DATA.md §7.5
 * allows that), and a scope with an active run stays dirty for the next pass.
 */
#ifndef ANALYTICSD_SCHEDULER_H
#define ANALYTICSD_SCHEDULER_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"

#define SCHEDULER_PASS_NS      5000000000LL    /* change collection and due check */
#define SCHEDULER_RETENTION_NS 3600000000000LL /* retention pass */

typedef struct scheduler {
    int64_t pass_due;      /* monotonic ns; 0 = at the next tick */
    int64_t retention_due; /* monotonic ns; 0 = at the next tick */
} scheduler;

/* A scheduler that runs both passes at its first tick. */
void scheduler_init(scheduler *s);

/* Forgets when it last ran, so that a newly elected leader runs both passes at once (the last
 * leader may have died before its pass). */
void scheduler_reset(scheduler *s);

/*
 * Leader only, about every second, on the supervisor's session `conn` (UTC, no open
 * transaction). When due: collects the noted changes and plans every (report, window) whose
 * interval has passed (pairs of reports the recompute workers cannot rebuild are left alone);
 * hourly, the retention pass, then the report version bump of every report that lost rows.
 * Each step logs what it changed; a failed step is logged and retried at the next pass (a
 * failed transaction is rolled back, so nothing is half done).
 */
void scheduler_tick(scheduler *s, PGconn *conn, const config *cfg, int64_t now);

#endif
