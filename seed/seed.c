/*
 * seed/seed.c: the deterministic demo seed of DATA.md §5 (see seed.h). Runs in the
 * `analyticsd seed` process and in the master at startup when APP_AUTO_SEED is true.
 *
 * Under the session-level seed advisory lock, one transaction: optional truncate, the
 * "events already exist" skip, the 25,000 events in one INSERT … SELECT over generate_series,
 * then one seed run per report and report window of the registry (eight), each rebuilt with the
 * shared rebuild SQL (common/rebuild.c), and the change log of the scheduled refresh emptied (the
 * seed rebuilt everything it noted). N is the transaction timestamp now(); every formula below is
 * the table of §5. Then, still under the lock, the SMS demo data in its own transaction
 * (seed/sms_demo.c).
 */
#include "seed/seed.h"

#include "common/log.h"
#include "common/pgsession.h"
#include "common/rebuild.h"
#include "common/registry.h"
#include "common/runs.h"
#include "common/util.h"
#include "seed/sms_demo.h"

#include <stdlib.h>

#define SEED_LOCK_KEY    "hashtextextended('pg-analytics-service:seed', 0)"
#define SEED_EVENT_COUNT 25000

static const char seed_truncate_sql[] =
    "TRUNCATE metric_snapshots, recompute_runs, audit_entries, analytics_events, "
    "refresh_dirty_days RESTART IDENTITY CASCADE";

/* The seed rebuilds every report over all its events: the days its INSERT noted for the
 * scheduled refresh (schema/0006_refresh.sql) are already fresh. */
static const char seed_forget_changes_sql[] = "DELETE FROM event_change_days";

/*
 * Events in g order, so a fresh (or reset) table gets id = g. H is now() truncated to the hour
 * in UTC; the offset (g mod 90) days + (g mod 24) hours is applied as whole hours.
 */
static const char seed_events_sql[] =
    "INSERT INTO analytics_events (source_id, external_ref, entity_id, status, processing_ms,"
    " amount_cents, occurred_at, payload) "
    "SELECT CASE g % 3 WHEN 0 THEN src.stripe WHEN 1 THEN src.adyen ELSE src.paypal END,"
    " 'evt-' || g,"
    " 'entity-' || (g % 240 + 1),"
    " CASE WHEN g % 17 = 0 THEN 'failed' WHEN g % 11 = 0 THEN 'pending' ELSE 'success' END,"
    " 80 + g % 700,"
    " 100 + (g * 37) % 100000,"
    " date_trunc('hour', now(), 'UTC') - ((g % 90) * 24 + g % 24) * interval '1 hour',"
    " jsonb_build_object('batch', g / 100, 'provider_rank', g % 5, 'region',"
    "  CASE g % 3 WHEN 0 THEN 'us-east' WHEN 1 THEN 'eu-west' ELSE 'ap-south' END) "
    "FROM generate_series(1, 25000) AS g,"
    " (SELECT (SELECT id FROM event_sources WHERE slug = 'stripe') AS stripe,"
    "         (SELECT id FROM event_sources WHERE slug = 'adyen') AS adyen,"
    "         (SELECT id FROM event_sources WHERE slug = 'paypal') AS paypal) AS src "
    "ORDER BY g";

/* date_from = UTC date of N − 90 days, date_to = UTC date of N. */
static const char seed_dates_sql[] =
    "SELECT to_char((now() AT TIME ZONE 'UTC') - interval '90 days', 'YYYY-MM-DD'),"
    " to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD')";

/* Inserts, rebuilds and completes one seed run (§5 step 6). Returns 0 or -1 (logged). */
static int seed_one_run(PGconn *conn, const char *slug, const char *window, const char *from,
                        const char *to)
{
    const char *params[4] = {slug, window, from, to};
    PGresult *res = pgsession_exec(conn, "seed: inserting run", runs_seed_insert_sql, 4, params);
    if (res == NULL)
        return -1;
    char *run_id = xstrdup(PQgetvalue(res, 0, 0));
    PQclear(res);

    rebuild_summary sum;
    rebuild_status st = rebuild_run(conn, run_id, slug, window, from, to, &sum);
    int rc = -1;
    if (st == REBUILD_OK) {
        char *json = rebuild_summary_json(&sum);
        const char *upd[2] = {run_id, json};
        rc = pgsession_command(conn, "seed: completing run", runs_seed_complete_sql, 2, upd);
        free(json);
    } else if (st == REBUILD_UNSUPPORTED) {
        log_error("seed: unsupported report slug for recompute: %s", slug);
    }
    free(run_id);
    return rc;
}

/* The body of the seed transaction. Sets *skipped when events already existed. */
static int seed_body(PGconn *conn, bool force, bool *skipped)
{
    if (force && pgsession_command(conn, "seed: truncating", seed_truncate_sql, 0, NULL) != 0)
        return -1;

    PGresult *res = pgsession_exec(conn, "seed: checking events",
                                   "SELECT EXISTS (SELECT 1 FROM analytics_events)", 0, NULL);
    if (res == NULL)
        return -1;
    *skipped = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (*skipped)
        return 0;

    res = pgsession_exec(conn, "seed: inserting events", seed_events_sql, 0, NULL);
    if (res == NULL)
        return -1;
    long inserted = strtol(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    if (inserted != SEED_EVENT_COUNT) {
        log_error("seed: inserted %ld events instead of %d", inserted, SEED_EVENT_COUNT);
        return -1;
    }

    res = pgsession_exec(conn, "seed: computing dates", seed_dates_sql, 0, NULL);
    if (res == NULL)
        return -1;
    char *from = xstrdup(PQgetvalue(res, 0, 0));
    char *to = xstrdup(PQgetvalue(res, 0, 1));
    PQclear(res);

    int rc = 0;
    /* §5 step 6: every report of the registry, in its order, and each of its report windows
     * (day, then week). */
    for (size_t r = 0; rc == 0 && r < registry_report_count; r++)
        for (size_t w = 0; rc == 0 && w < registry_window_count; w++)
            if (registry_windows[w].report_api)
                rc = seed_one_run(conn, registry_reports[r].slug, registry_windows[w].name, from,
                                  to);
    if (rc == 0)
        rc = pgsession_command(conn, "seed: forgetting the noted changes", seed_forget_changes_sql,
                               0, NULL);
    free(from);
    free(to);
    return rc;
}

int seed_run(PGconn *conn, bool force, int64_t sms_retention_days)
{
    if (pgsession_command(conn, "seed: taking the seed lock",
                          "SELECT pg_advisory_lock(" SEED_LOCK_KEY ")", 0, NULL) != 0)
        return -1;
    bool skipped = false;
    int rc = pgsession_command(conn, "seed: BEGIN", "BEGIN", 0, NULL);
    if (rc == 0) {
        rc = seed_body(conn, force, &skipped);
        if (rc == 0)
            rc = pgsession_command(conn, "seed: COMMIT", "COMMIT", 0, NULL);
        if (rc != 0)
            PQclear(PQexec(conn, "ROLLBACK"));
    }
    if (rc != 0) {
        log_error("seed: failed, nothing was changed");
    } else {
        if (skipped)
            log_info("seed: skipped, analytics_events already has rows");
        else
            log_info("seeded %d events", SEED_EVENT_COUNT);
        rc = sms_demo_run(conn, force, sms_retention_days);
    }
    PQclear(PQexec(conn, "SELECT pg_advisory_unlock(" SEED_LOCK_KEY ")"));
    return rc == 0 ? 0 : -1;
}
