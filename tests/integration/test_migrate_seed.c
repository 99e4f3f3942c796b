/*
 * tests/integration/test_migrate_seed.c: the migration runner (DATA.md §2–§4), the seed (§5,
 * §8.1–§8.2) and the shared rebuild SQL (§6.2–§6.4, §6.6) against a real PostgreSQL. Each test
 * creates its own scratch database from TEST_PG_CONNINFO and drops it in its teardown; the
 * `migrate` and `seed` commands run through the real binary (ANALYTICSD_BIN).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/migrate.h"
#include "common/rebuild.h"
#include "common/registry.h"
#include "common/util.h"
#include "seed/seed.h"
#include "tests/support/testdb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fixture {
    testdb db;
    PGconn *conn;
    char *last_out; /* stdout of the last run_ok(), freed by the next call or the teardown */
    char *old_ids;  /* run ids before a forced reseed, freed by the teardown */
} fixture;

static int setup(void **state)
{
    fixture *f = xcalloc(1, sizeof(*f));
    *state = f;
    testdb_create(&f->db);
    f->conn = testdb_connect(&f->db);
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->conn != NULL)
        PQfinish(f->conn);
    testdb_drop(&f->db);
    free(f->last_out);
    free(f->old_ids);
    free(f);
    return 0;
}

/* Runs `analyticsd <cmd>` against the fixture's database; force_env is NULL or an env entry. */
static int run_cmd(fixture *f, const char *cmd, const char *force_env, testdb_proc *p)
{
    char *url = xasprintf("DATABASE_URL=%s", f->db.conninfo);
    const char *args[] = {cmd, NULL};
    const char *env[] = {url, force_env ? force_env : "SEED_FORCE_RESET", NULL};
    testdb_run_analyticsd(args, env, 120, p);
    free(url);
    if (p->status != 0)
        print_message("analyticsd %s exited %d\nstdout:\n%s\nstderr:\n%s\n", cmd, p->status, p->out,
                      p->err);
    return p->status;
}

/* Runs a command that must succeed; returns its stdout (owned by the fixture). */
static const char *run_ok(fixture *f, const char *cmd, const char *force_env)
{
    testdb_proc p;
    int status = run_cmd(f, cmd, force_env, &p);
    free(f->last_out);
    f->last_out = p.out;
    p.out = NULL;
    testdb_proc_free(&p);
    assert_int_equal(status, 0);
    return f->last_out;
}

static void expect_text(PGconn *conn, const char *sql, const char *expected)
{
    char *v = testdb_query_text(conn, sql);
    if (v != NULL && strcmp(v, expected) == 0) {
        free(v);
        return;
    }
    print_message("query: %s\n  got:      %s\n  expected: %s\n", sql, v ? v : "(null)", expected);
    free(v);
    fail_msg("unexpected query result");
}

static void expect_int(PGconn *conn, const char *sql, int64_t expected)
{
    int64_t v = testdb_query_int(conn, sql);
    if (v != expected)
        print_message("query: %s\n", sql);
    assert_int_equal(v, expected);
}

/* ---- migrations ------------------------------------------------------------------------ */

static const char applied_sql[] =
    "SELECT string_agg(version || '@' || applied_at::text, ',' ORDER BY version)"
    " FROM schema_migrations";

static const char index_sql[] =
    "SELECT string_agg(indexname || ' ' || tablename || ' (' ||"
    " substring(indexdef from 'USING btree \\(([^)]*)\\)') || ')', E'\\n' ORDER BY indexname)"
    " FROM pg_indexes WHERE schemaname = 'public'"
    " AND (indexname LIKE 'idx\\_%' OR indexname LIKE 'uq\\_%')";

static const char index_expected[] =
    "idx_analytics_events_entity_time analytics_events (entity_id, occurred_at DESC)\n"
    "idx_analytics_events_occurred_at analytics_events (occurred_at DESC)\n"
    "idx_analytics_events_source_time analytics_events (source_id, occurred_at DESC)\n"
    "idx_analytics_events_status_time analytics_events (status, occurred_at DESC)\n"
    "idx_audit_entries_action_created_at audit_entries (action, created_at DESC)\n"
    "idx_audit_entries_created_at audit_entries (created_at DESC)\n"
    "idx_metric_snapshots_dimension metric_snapshots (report_slug, dimension_key, "
    "dimension_value, bucket_start DESC)\n"
    "idx_metric_snapshots_lookup metric_snapshots (report_slug, window_name, bucket_start DESC)\n"
    "idx_recompute_runs_report_requested_at recompute_runs (report_slug, requested_at DESC)\n"
    "idx_recompute_runs_requested_at recompute_runs (requested_at DESC, id DESC)\n"
    "idx_recompute_runs_status_requested_at recompute_runs (status, requested_at DESC)\n"
    "uq_recompute_runs_active_scope recompute_runs (report_slug, window_name, date_from, "
    "date_to)";

static void check_reference_data(PGconn *c)
{
    expect_int(c,
               "SELECT count(*) FROM report_definitions WHERE (slug, name, description,"
               " cache_ttl_seconds, default_window, is_public, supported_filters) IN (VALUES"
               " ('volume-by-period', 'Volume by Period', 'Event volume grouped by day or week"
               " with optional source breakdown.', 120, 'day', TRUE, '{\"window\":\"day|week\","
               "\"breakdown\":\"period|source\",\"source\":\"source slug\"}'::jsonb),"
               " ('status-counts', 'Status Counts', 'Distribution of processing outcomes with"
               " optional trend view by period.', 90, 'day', TRUE, '{\"window\":\"day|week\","
               "\"breakdown\":\"status|period\",\"status\":\"success|failed|pending\"}'::jsonb),"
               " ('top-entities', 'Top Entities', 'Highest-volume entities over a date range.',"
               " 45, 'day', TRUE, '{\"window\":\"day|week\",\"limit\":\"1-100\","
               "\"offset\":\">=0\"}'::jsonb),"
               " ('amount-by-source', 'Amount by Source', 'Processed amount in cents per source,"
               " by day or week.', 120, 'day', TRUE, '{\"window\":\"day|week\","
               "\"breakdown\":\"period|source\",\"source\":\"source slug\"}'::jsonb))",
               4);
    expect_int(c, "SELECT count(*) FROM report_definitions", 4);
    expect_text(c,
                "SELECT string_agg(report_slug || ':' || window_name || ':' || retention_days ||"
                " ':' || refresh_interval_minutes || ':' || is_default, ',' ORDER BY id)"
                " FROM aggregate_windows",
                "volume-by-period:day:365:60:true,volume-by-period:week:730:240:false,"
                "status-counts:day:365:60:true,status-counts:week:730:240:false,"
                "top-entities:day:180:120:true,top-entities:week:365:360:false,"
                "amount-by-source:day:365:60:true,amount-by-source:week:730:240:false");
    expect_text(c,
                "SELECT string_agg(id || ':' || slug || ':' || provider_name || ':' || description"
                " || ':' || is_active, ',' ORDER BY id) FROM event_sources",
                "1:stripe:Stripe:Primary card processor events.:true,"
                "2:adyen:Adyen:Secondary processor and regional failover.:true,"
                "3:paypal:PayPal:Wallet checkout event stream.:true");
}

static void test_migrate_empty_then_noop(void **state)
{
    fixture *f = *state;
    PGconn *c = f->conn;
    const char *out = run_ok(f, "migrate", NULL);
    assert_non_null(strstr(out, "7 script(s) applied"));

    expect_int(c,
               "SELECT count(*) FROM unnest(ARRAY['event_sources', 'analytics_events',"
               " 'report_definitions', 'aggregate_windows', 'recompute_runs', 'metric_snapshots',"
               " 'audit_entries', 'schema_migrations']) AS t WHERE to_regclass(t) IS NOT NULL",
               8);
    expect_text(c, index_sql, index_expected);
    expect_int(c,
               "SELECT count(*) FROM pg_indexes WHERE indexname = 'uq_recompute_runs_active_scope'"
               " AND indexdef LIKE 'CREATE UNIQUE INDEX %WHERE (status = ANY "
               "(ARRAY[''pending''::text, ''running''::text]))'",
               1);
    expect_text(c, "SELECT string_agg(version, ',' ORDER BY version) FROM schema_migrations",
                "0001_init.sql,0002_reference_data.sql,0003_durable_recompute.sql,0004_sms.sql,"
                "0005_sms_reads.sql,0006_refresh.sql,0007_amount_by_source.sql");
    /* 0006: the change-tracking statement triggers (with transition tables) and the tables of
     * the scheduled refresh. */
    expect_int(c,
               "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'analytics_events'::regclass"
               " AND NOT tgisinternal AND tgname LIKE 'analytics_events_note_%'"
               " AND (tgoldtable IS NOT NULL OR tgnewtable IS NOT NULL)",
               3);
    expect_int(c,
               "SELECT count(*) FROM unnest(ARRAY['event_change_days', 'refresh_dirty_days',"
               " 'refresh_schedule']) AS t WHERE to_regclass(t) IS NOT NULL",
               3);
    /* SMS.md §3.1: the anlyt tables, and partitions from 92 days back to two months ahead. */
    expect_int(c,
               "SELECT count(*) FROM pg_tables WHERE schemaname = 'anlyt'"
               " AND tablename IN ('metrics_daily', 'account_usage_daily', 'processed_events',"
               " 'rejected_events', 'traffic_seconds', 'ingest_state')",
               6);
    expect_int(
        c,
        "SELECT count(*) FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid"
        " WHERE c.relname IN ('metrics_hourly', 'operator_performance', 'latency_histogram')",
        3);
    expect_int(
        c,
        "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhparent"
        " WHERE c.relname = 'metrics_hourly' AND i.inhrelid IN"
        " (to_regclass(to_char(now() AT TIME ZONE 'UTC', '\"anlyt\".\"metrics_hourly_p\"YYYY_MM')),"
        " to_regclass(to_char((now() - interval '92 days') AT TIME ZONE 'UTC',"
        " '\"anlyt\".\"metrics_hourly_p\"YYYY_MM')),"
        " to_regclass(to_char((now() + interval '2 months') AT TIME ZONE 'UTC',"
        " '\"anlyt\".\"metrics_hourly_p\"YYYY_MM')))",
        3);
    expect_int(c, "SELECT count(*) FROM pg_extension WHERE extname = 'pgcrypto'", 1);
    expect_text(c,
                "SELECT column_default || ':' || is_nullable FROM information_schema.columns"
                " WHERE table_name = 'recompute_runs' AND column_name = 'attempts'",
                "0:NO");
    check_reference_data(c);

    /* Value constraints are CHECKs. */
    assert_false(testdb_try_exec(c, "INSERT INTO analytics_events (source_id, external_ref,"
                                    " entity_id, status, processing_ms, amount_cents, occurred_at)"
                                    " VALUES (1, 'x', 'e', 'bogus', 1, 1, now())"));
    assert_false(testdb_try_exec(c, "INSERT INTO analytics_events (source_id, external_ref,"
                                    " entity_id, status, processing_ms, amount_cents, occurred_at)"
                                    " VALUES (1, 'x', 'e', 'success', -1, 1, now())"));
    assert_false(testdb_try_exec(c, "UPDATE report_definitions SET supported_filters ="
                                    " '{\"a\":1}' WHERE slug = 'top-entities'"));
    assert_false(testdb_try_exec(c, "UPDATE report_definitions SET default_window = 'month'"));
    assert_false(testdb_try_exec(c, "UPDATE aggregate_windows SET retention_days = 0"));
    assert_false(testdb_try_exec(c, "UPDATE recompute_runs SET attempts = -1"
                                    " WHERE true; INSERT INTO recompute_runs (report_slug,"
                                    " window_name, date_from, date_to, requested_by, status,"
                                    " attempts) VALUES ('top-entities', 'day', '2026-01-01',"
                                    " '2026-01-02', 'x', 'pending', -1)"));
    assert_true(testdb_try_exec(c, "INSERT INTO recompute_runs (report_slug, window_name,"
                                   " date_from, date_to, requested_by, status) VALUES"
                                   " ('top-entities', 'day', '2026-01-01', '2026-01-02', 'x',"
                                   " 'pending')"));
    expect_text(c, "SELECT attempts || ':' || summary::text FROM recompute_runs", "0:{}");
    testdb_exec(c, "DELETE FROM recompute_runs");

    /* Second run: nothing applied, bookkeeping unchanged. */
    char *before = testdb_query_text(c, applied_sql);
    out = run_ok(f, "migrate", NULL);
    assert_non_null(strstr(out, "0 script(s) applied"));
    expect_text(c, applied_sql, before);
    free(before);

    /* 0002 is an upsert: listed columns are overwritten, the others are kept. */
    testdb_exec(c, "UPDATE report_definitions SET name = 'x', cache_ttl_seconds = 1,"
                   " is_public = FALSE, updated_at = '2000-01-01' WHERE slug = 'top-entities';"
                   " UPDATE aggregate_windows SET retention_days = 1 WHERE report_slug ="
                   " 'status-counts' AND window_name = 'week';"
                   " UPDATE event_sources SET provider_name = 'x', is_active = FALSE"
                   " WHERE slug = 'adyen'");
    assert_string_equal(migrations[1].version, "0002_reference_data.sql");
    testdb_exec(c, migrations[1].sql);
    testdb_exec(c, "UPDATE report_definitions SET is_public = TRUE WHERE slug = 'top-entities'"
                   " AND NOT is_public AND updated_at > '2001-01-01'");
    check_reference_data(c);
}

static void test_migrate_applies_only_0003(void **state)
{
    fixture *f = *state;
    PGconn *c = f->conn;
    (void)(run_ok(f, "migrate", NULL));
    /* Back to a database that carries only 0001 and 0002 (plus a version from the future). */
    testdb_exec(c, "DROP INDEX uq_recompute_runs_active_scope;"
                   " DROP INDEX idx_recompute_runs_requested_at;"
                   " ALTER TABLE recompute_runs DROP COLUMN attempts;"
                   " DELETE FROM schema_migrations WHERE version = '0003_durable_recompute.sql';"
                   " INSERT INTO schema_migrations VALUES ('9999_future.sql', now())");
    /* Runs left by older software: ids end in the row's label for readability. */
    testdb_exec(
        c, "INSERT INTO recompute_runs (id, report_slug, window_name, date_from, date_to,"
           " requested_by, status, requested_at, started_at, finished_at) VALUES"
           " ('00000000-0000-4000-8000-000000000001', 'status-counts', 'day', '2026-01-01',"
           "  '2026-01-31', 'old', 'completed', '2026-01-01 08:00Z', NULL, '2026-01-01 09:00Z'),"
           " ('00000000-0000-4000-8000-000000000002', 'status-counts', 'day', '2026-01-01',"
           "  '2026-01-31', 'old', 'failed', '2026-01-01 08:00Z', '2026-01-01 08:01Z',"
           "  '2026-01-01 09:00Z'),"
           " ('00000000-0000-4000-8000-000000000003', 'status-counts', 'day', '2026-01-01',"
           "  '2026-01-31', 'old', 'failed', '2026-01-01 08:00Z', NULL, '2026-01-01 09:00Z'),"
           " ('00000000-0000-4000-8000-000000000011', 'status-counts', 'day', '2026-01-01',"
           "  '2026-01-31', 'old', 'pending', '2026-01-01 10:00Z', NULL, NULL),"
           " ('00000000-0000-4000-8000-000000000012', 'status-counts', 'day', '2026-01-01',"
           "  '2026-01-31', 'old', 'running', '2026-01-01 12:00Z', '2026-01-01 12:00Z', NULL),"
           " ('00000000-0000-4000-8000-000000000013', 'status-counts', 'day', '2026-01-01',"
           "  '2026-01-31', 'old', 'pending', '2026-01-01 12:00Z', NULL, NULL),"
           " ('00000000-0000-4000-8000-000000000014', 'status-counts', 'day', '2026-01-01',"
           "  '2026-01-31', 'old', 'completed', '2026-01-01 13:00Z', '2026-01-01 13:00Z',"
           "  '2026-01-01 13:01Z'),"
           " ('00000000-0000-4000-8000-000000000021', 'top-entities', 'week', '2026-01-01',"
           "  '2026-01-31', 'old', 'running', '2026-01-01 08:00Z', '2026-01-01 08:00Z', NULL),"
           " ('00000000-0000-4000-8000-000000000031', 'status-counts', 'week', '2026-01-01',"
           "  '2026-01-31', 'old', 'pending', '2026-01-01 08:00Z', NULL, NULL)");
    char *before = testdb_query_text(c, "SELECT string_agg(version || '@' || applied_at::text,"
                                        " ',' ORDER BY version) FROM schema_migrations");

    const char *out = run_ok(f, "migrate", NULL);
    assert_non_null(strstr(out, "applied 0003_durable_recompute.sql"));
    assert_null(strstr(out, "applied 0001"));
    assert_non_null(strstr(out, "1 script(s) applied"));

    /* 0001/0002 and the unknown version untouched; 0003 recorded now. */
    expect_int(c, "SELECT count(*) FROM schema_migrations", 8);
    char *after = testdb_query_text(c, "SELECT string_agg(version || '@' || applied_at::text,"
                                       " ',' ORDER BY version) FROM schema_migrations"
                                       " WHERE version <> '0003_durable_recompute.sql'");
    assert_string_equal(after, before);
    free(before);
    free(after);
    expect_int(c,
               "SELECT count(*) FROM schema_migrations WHERE version ="
               " '0003_durable_recompute.sql' AND applied_at > now() - interval '1 minute'",
               1);
    expect_text(c, index_sql, index_expected);

    /* Backfill and superseded rules (§3.9 steps 2–3). */
    expect_text(c,
                "SELECT string_agg(right(id::text, 2) || ':' || status || ':' || attempts || ':'"
                " || coalesce(error_message, '-') || ':' || (finished_at IS NOT NULL), ','"
                " ORDER BY id) FROM recompute_runs",
                "01:completed:1:-:true,02:failed:1:-:true,03:failed:0:-:true,"
                "11:failed:0:superseded by a newer run:true,"
                "12:failed:1:superseded by a newer run:true,"
                "13:pending:0:-:false,14:completed:1:-:true,"
                "21:running:1:-:false,31:pending:0:-:false");
    expect_int(c,
               "SELECT count(*) FROM recompute_runs WHERE right(id::text, 2) IN ('11', '12')"
               " AND finished_at > now() - interval '1 minute'",
               2);

    /* The active-scope index now blocks a second active run of a scope. */
    assert_false(testdb_try_exec(c, "INSERT INTO recompute_runs (report_slug, window_name,"
                                    " date_from, date_to, requested_by, status) VALUES"
                                    " ('top-entities', 'week', '2026-01-01', '2026-01-31', 't',"
                                    " 'pending')"));
    assert_false(testdb_try_exec(c, "INSERT INTO recompute_runs (report_slug, window_name,"
                                    " date_from, date_to, requested_by, status) VALUES"
                                    " ('status-counts', 'day', '2026-01-01', '2026-01-31', 't',"
                                    " 'running')"));
    assert_true(testdb_try_exec(c, "INSERT INTO recompute_runs (report_slug, window_name,"
                                   " date_from, date_to, requested_by, status) VALUES"
                                   " ('status-counts', 'day', '2026-01-01', '2026-01-31', 't',"
                                   " 'completed')"));
}

static void test_migrate_stops_at_first_failure(void **state)
{
    fixture *f = *state;
    PGconn *c = f->conn;
    /* A pre-existing, incompatible report_definitions: 0001 skips it, 0002 then fails. */
    testdb_exec(c, "CREATE TABLE report_definitions (slug TEXT PRIMARY KEY)");
    testdb_proc p;
    assert_int_equal(run_cmd(f, "migrate", NULL, &p), 1);
    assert_non_null(strstr(p.out, "0002_reference_data.sql failed"));
    testdb_proc_free(&p);
    expect_text(c, "SELECT string_agg(version, ',' ORDER BY version) FROM schema_migrations",
                "0001_init.sql");
    expect_int(c, "SELECT count(*) FROM event_sources", 0);
    expect_int(c,
               "SELECT count(*) FROM pg_indexes WHERE indexname ="
               " 'uq_recompute_runs_active_scope'",
               0);
    expect_int(c,
               "SELECT count(*) FROM information_schema.columns WHERE table_name ="
               " 'recompute_runs' AND column_name = 'attempts'",
               0);
}

/* ---- seed ------------------------------------------------------------------------------ */

/* Every fact of DATA.md §8.1 and §8.2 that does not depend on the seeding instant. */
static void check_seed_facts(PGconn *c)
{
    expect_int(c, "SELECT count(*) FROM analytics_events", 25000);
    expect_text(c,
                "SELECT string_agg(status || ':' || n, ',' ORDER BY status) FROM"
                " (SELECT status, count(*) n FROM analytics_events GROUP BY 1) x",
                "failed:1470,pending:2139,success:21391");
    expect_text(c,
                "SELECT string_agg(slug || ':' || n, ',' ORDER BY slug) FROM (SELECT s.slug,"
                " count(*) n FROM analytics_events e JOIN event_sources s ON s.id = e.source_id"
                " GROUP BY 1) x",
                "adyen:8334,paypal:8333,stripe:8333");
    expect_text(c,
                "SELECT string_agg(slug || '/' || status || ':' || n, ',' ORDER BY slug, status)"
                " FROM (SELECT s.slug, e.status, count(*) n FROM analytics_events e"
                " JOIN event_sources s ON s.id = e.source_id GROUP BY 1, 2) x",
                "adyen/failed:490,adyen/pending:712,adyen/success:7132,"
                "paypal/failed:490,paypal/pending:714,paypal/success:7129,"
                "stripe/failed:490,stripe/pending:713,stripe/success:7130");
    expect_int(c, "SELECT count(DISTINCT entity_id) FROM analytics_events", 240);
    expect_int(c,
               "SELECT count(*) FROM (SELECT entity_id, count(*) n FROM analytics_events"
               " GROUP BY 1) x WHERE n = CASE WHEN substr(entity_id, 8)::int BETWEEN 2 AND 41"
               " THEN 105 ELSE 104 END",
               240);
    /* One event checked against the §5 formulas by hand: g = 12345. */
    expect_text(c,
                "SELECT s.slug || '|' || e.entity_id || '|' || e.status || '|' ||"
                " e.processing_ms || '|' || e.amount_cents || '|' || e.payload::text || '|' ||"
                " (e.occurred_at = date_trunc('hour', r.requested_at) - interval '15 days 9"
                " hours') FROM analytics_events e JOIN event_sources s ON s.id = e.source_id,"
                " (SELECT max(requested_at) requested_at FROM recompute_runs) r"
                " WHERE e.external_ref = 'evt-12345'",
                "stripe|entity-106|success|525|56865|"
                "{\"batch\": 123, \"region\": \"us-east\", \"provider_rank\": 0}|true");
    expect_text(c, "SELECT payload::text FROM analytics_events WHERE external_ref = 'evt-187'",
                "{\"batch\": 1, \"region\": \"eu-west\", \"provider_rank\": 2}");
    expect_text(c, "SELECT status FROM analytics_events WHERE external_ref = 'evt-187'",
                "failed"); /* 187 = 11 × 17: failed wins over pending */

    /* §8.2: time structure relative to H. */
    expect_text(c,
                "SELECT count(DISTINCT occurred_at) || ':' || (min(occurred_at) = h - interval"
                " '89 days 23 hours') || ':' || (max(occurred_at) = h) FROM analytics_events,"
                " (SELECT date_trunc('hour', max(requested_at)) h FROM recompute_runs) r"
                " GROUP BY h",
                "360:true:true");

    /* Snapshots: every event-count report and window sums to 25,000, amount-by-source to the
     * amount of §8.1; one metric each, §6.2 dimension keys. */
    expect_text(c,
                "SELECT string_agg(report_slug || '/' || window_name || ':' || k || ':' || s,"
                " ',' ORDER BY report_slug, window_name) FROM (SELECT report_slug, window_name,"
                " string_agg(DISTINCT dimension_key || '.' || metric_name, '+') k,"
                " sum(metric_value) s FROM metric_snapshots GROUP BY 1, 2) x",
                "amount-by-source/day:source.amount_cents:1227162500,"
                "amount-by-source/week:source.amount_cents:1227162500,"
                "status-counts/day:status.event_count:25000,"
                "status-counts/week:status.event_count:25000,"
                "top-entities/day:entity_id.event_count:25000,"
                "top-entities/week:entity_id.event_count:25000,"
                "volume-by-period/day:source.event_count:25000,"
                "volume-by-period/week:source.event_count:25000");
    expect_int(c,
               "SELECT count(*) FROM metric_snapshots WHERE window_name = 'week' AND"
               " bucket_start <> date_trunc('week', bucket_start)",
               0);

    /* Top entities over the full range, for both windows. */
    static const char *const windows[] = {"day", "week"};
    for (size_t w = 0; w < 2; w++) {
        char *sql;
        sql =
            xasprintf("SELECT string_agg(v || ':' || n, ',' ORDER BY n DESC, v COLLATE \"C\")"
                      " FROM (SELECT dimension_value v, sum(metric_value) n FROM"
                      " metric_snapshots WHERE report_slug = 'top-entities' AND window_name ="
                      " '%s' GROUP BY 1 ORDER BY n DESC, dimension_value COLLATE \"C\" LIMIT 3) x",
                      windows[w]);
        expect_text(c, sql, "entity-10:105,entity-11:105,entity-12:105");
        free(sql);
        sql = xasprintf(
            "SELECT string_agg(v || ':' || n, ',' ORDER BY n DESC, v COLLATE \"C\")"
            " FROM (SELECT dimension_value v, sum(metric_value) n FROM"
            " metric_snapshots WHERE report_slug = 'top-entities' AND window_name ="
            " '%s' GROUP BY 1 ORDER BY n DESC, dimension_value COLLATE \"C\" OFFSET 38 LIMIT 4) x",
            windows[w]);
        expect_text(c, sql, "entity-8:105,entity-9:105,entity-1:104,entity-100:104");
        free(sql);
        sql = xasprintf("SELECT count(*) || ':' || (array_agg(v ORDER BY n DESC,"
                        " v COLLATE \"C\"))[count(*)] FROM (SELECT dimension_value v,"
                        " sum(metric_value) n FROM metric_snapshots WHERE report_slug ="
                        " 'top-entities' AND window_name = '%s' GROUP BY 1 ORDER BY n DESC,"
                        " dimension_value COLLATE \"C\" OFFSET 200 LIMIT 100) x",
                        windows[w]);
        expect_text(c, sql, "40:entity-99");
        free(sql);
    }

    expect_text(c,
                "SELECT string_agg(dimension_value || ':' || s, ',' ORDER BY dimension_value)"
                " FROM (SELECT dimension_value, sum(metric_value) s FROM metric_snapshots"
                " WHERE report_slug = 'amount-by-source' AND window_name = 'week'"
                " GROUP BY 1) x",
                "adyen:409062579,paypal:409045800,stripe:409054121");

    /* The eight seed runs (§5 step 6). */
    expect_text(c,
                "SELECT string_agg(report_slug || '/' || window_name, ','"
                " ORDER BY finished_at) FROM recompute_runs",
                "volume-by-period/day,volume-by-period/week,status-counts/day,"
                "status-counts/week,top-entities/day,top-entities/week,amount-by-source/day,"
                "amount-by-source/week");
    expect_int(c,
               "SELECT count(*) FROM recompute_runs, (SELECT min(requested_at) n FROM"
               " recompute_runs) r WHERE requested_by = 'seed' AND status = 'completed'"
               " AND attempts = 1 AND requested_at = r.n AND started_at = r.n"
               " AND finished_at >= started_at AND error_message IS NULL"
               " AND date_from = ((r.n AT TIME ZONE 'UTC') - interval '90 days')::date"
               " AND date_to = (r.n AT TIME ZONE 'UTC')::date",
               8);
    expect_int(c, "SELECT count(DISTINCT requested_at) FROM recompute_runs", 1);
    expect_int(c,
               "SELECT count(*) FROM recompute_runs r WHERE"
               " (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(summary) k) ="
               " ARRAY['bucket_count', 'rows_deleted', 'rows_inserted']"
               " AND jsonb_typeof(summary->'bucket_count') = 'number'"
               " AND jsonb_typeof(summary->'rows_inserted') = 'number'"
               " AND summary->>'rows_deleted' = '0' AND (summary->>'bucket_count')::bigint > 0"
               " AND summary->>'bucket_count' ~ '^[0-9]+$'"
               " AND summary->>'rows_inserted' ~ '^[0-9]+$'"
               " AND (summary->>'rows_inserted')::bigint = (SELECT count(*) FROM"
               "  metric_snapshots m WHERE m.report_slug = r.report_slug AND m.window_name ="
               "  r.window_name AND m.run_id = r.id)"
               " AND (summary->>'bucket_count')::bigint = (SELECT count(DISTINCT bucket_start)"
               "  FROM metric_snapshots m WHERE m.report_slug = r.report_slug AND"
               "  m.window_name = r.window_name)",
               8);
    expect_int(c, "SELECT count(*) FROM metric_snapshots WHERE run_id IS NULL", 0);
    expect_int(c,
               "SELECT count(*) FROM recompute_runs WHERE window_name = 'day' AND"
               " (summary->>'bucket_count')::int IN (90, 91)",
               4);
}

/* ---- SMS demo data (SMS.md §8; the totals README.md states) ------------------------------ */

#define SMS_DEMO_LOG                                                                               \
    "seeded SMS demo data: 43519 messages: 42814 accepted, 681 duplicate, 4 ignored, 20 rejected"

/* total:delivered:failed:pending:cost:latency sum:samples:peak_tps of one scope's hours. */
#define SMS_DEMO_TOTALS_SQL(scope)                                                                 \
    "SELECT sum(total_messages) || ':' || sum(delivered_messages) || ':' ||"                       \
    " sum(failed_messages) || ':' || sum(pending_messages) || ':' || sum(total_cost) || ':' ||"    \
    " sum(latency_sum_ms) || ':' || sum(latency_sample_count) || ':' || max(peak_tps) || ':' ||"   \
    " count(DISTINCT scope_id) FROM anlyt.metrics_hourly WHERE scope = '" scope "'"

/* What the SMS tables hold; equal before and after a seed that must change nothing. */
static const char sms_fingerprint_sql[] =
    "SELECT concat_ws(':',"
    " (SELECT md5(string_agg(concat_ws('|', hour_bucket, scope, scope_id, total_messages,"
    "  delivered_messages, failed_messages, total_cost, peak_tps, updated_at), ','"
    "  ORDER BY hour_bucket, scope, scope_id)) FROM anlyt.metrics_hourly),"
    " (SELECT md5(string_agg(concat_ws('|', day_bucket, account_id, messages_sent, total_cost,"
    "  updated_at), ',' ORDER BY day_bucket, account_id)) FROM anlyt.account_usage_daily),"
    " (SELECT count(*) || '/' || coalesce(max(id), 0) FROM anlyt.rejected_events),"
    " (SELECT count(*) FROM anlyt.processed_events),"
    " (SELECT coalesce(ingested_through::text, '-') FROM anlyt.ingest_state))";

static void check_sms_demo(PGconn *c)
{
    /* Every scope sums to the same totals: 4 operators, 40 accounts. */
    expect_text(c, SMS_DEMO_TOTALS_SQL("PLATFORM"),
                "20000:18513:1071:416:220.508190:109770889:18513:21:1");
    expect_text(c, SMS_DEMO_TOTALS_SQL("OPERATOR"),
                "20000:18513:1071:416:220.508190:109770889:18513:11:4");
    expect_text(c, SMS_DEMO_TOTALS_SQL("ACCOUNT"),
                "20000:18513:1071:416:220.508190:109770889:18513:6:40");
    expect_text(c,
                "SELECT sum(messages_sent) || ':' || sum(messages_delivered) || ':' ||"
                " sum(messages_failed) || ':' || sum(total_cost) || ':' || sum(total_segments)"
                " FROM anlyt.account_usage_daily",
                "20000:18513:1071:220.508190:28714");
    expect_text(c,
                "SELECT sum(total_messages) || ':' || sum(delivered_messages) || ':' ||"
                " sum(failed_messages) || ':' || sum(error_count) FROM anlyt.operator_performance",
                "20000:18513:1071:743");
    expect_int(c, "SELECT sum(n) FROM anlyt.latency_histogram WHERE scope = 'PLATFORM'", 18513);
    /* Submitted from 00:00 UTC 29 days ago to 10 minutes ago. */
    expect_int(c,
               "SELECT count(*) FROM anlyt.metrics_hourly WHERE hour_bucket <"
               " date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval"
               " '29 days' OR hour_bucket > now() - interval '10 minutes'",
               0);
    expect_int(c,
               "SELECT count(*) FROM anlyt.ingest_state WHERE ingested_through <= now() -"
               " interval '10 minutes' AND ingested_through > now() - interval '1 day'",
               1);
    /* The 20 invalid messages: 2 of each of 10 kinds, as NATS messages. */
    expect_text(c,
                "SELECT string_agg(reason || '/' || coalesce(field, '-') || '/' || subject || '/'"
                " || n, ',' ORDER BY reason, field) FROM (SELECT reason, field, subject, count(*)"
                " n FROM anlyt.rejected_events WHERE transport = 'nats' GROUP BY 1, 2, 3) r",
                "in_future/occurred_at/billing.events/2,invalid_field/account_id/billing.events/2,"
                "invalid_field/cost/billing.events/2,invalid_field/status/sms.dlr.inbound/2,"
                "invalid_json/-/billing.events/2,missing_field/cost/billing.events/2,"
                "missing_field/event_id/billing.events/2,not_an_object/-/sms.dlr.inbound/2,"
                "too_old/submitted_at/sms.dlr.inbound/2,"
                "unknown_event_type/event_type/sms.dlr.inbound/2");
    expect_int(c, "SELECT count(*) FROM anlyt.rejected_events", 20);
    /* Dedupe records: the 42,814 accepted events, the 91 second final receipts under a new id
     * (recorded, then duplicates of their message's final key) and one final key per finished
     * message. */
    expect_int(c, "SELECT count(*) FROM anlyt.processed_events", 42814 + 91 + 19584);
    expect_int(c, "SELECT count(*) FROM anlyt.processed_events WHERE event_type = 'sms.dlr.final'",
               20000 - 416);
}

static void expect_no_sms_data(PGconn *c)
{
    expect_int(c,
               "SELECT (SELECT count(*) FROM anlyt.metrics_hourly) + (SELECT count(*) FROM"
               " anlyt.account_usage_daily) + (SELECT count(*) FROM anlyt.processed_events) +"
               " (SELECT count(*) FROM anlyt.rejected_events) + (SELECT count(*) FROM"
               " anlyt.ingest_state WHERE ingested_through IS NOT NULL)",
               0);
}

static void test_seed_facts_and_skip(void **state)
{
    fixture *f = *state;
    PGconn *c = f->conn;
    (void)(run_ok(f, "migrate", NULL));
    const char *out = run_ok(f, "seed", NULL);
    assert_non_null(strstr(out, "seeded 25000 events"));
    assert_non_null(strstr(out, SMS_DEMO_LOG));
    check_seed_facts(c);
    check_sms_demo(c);
    expect_int(c, "SELECT count(*) FROM audit_entries", 0);
    /* The seed rebuilt every report over its events: nothing is left for the scheduler. */
    expect_int(c, "SELECT count(*) FROM event_change_days", 0);

    /* Second seed: skipped, nothing changes. */
    char *runs = testdb_query_text(c, "SELECT string_agg(id::text || finished_at::text, ','"
                                      " ORDER BY id) FROM recompute_runs");
    char *snap = testdb_query_text(c, "SELECT sum(id) || ':' || count(*) FROM metric_snapshots");
    char *sms = testdb_query_text(c, sms_fingerprint_sql);
    out = run_ok(f, "seed", NULL);
    assert_non_null(strstr(out, "skipped, analytics_events already has rows"));
    assert_non_null(strstr(out, "SMS demo data skipped"));
    assert_null(strstr(out, "seeded 25000 events"));
    assert_null(strstr(out, "seeded SMS demo data"));
    expect_text(c, sms_fingerprint_sql, sms);
    expect_int(c, "SELECT count(*) FROM analytics_events", 25000);
    expect_int(c, "SELECT count(*) FROM recompute_runs", 8);
    expect_text(c,
                "SELECT string_agg(id::text || finished_at::text, ',' ORDER BY id) FROM"
                " recompute_runs",
                runs);
    expect_text(c, "SELECT sum(id) || ':' || count(*) FROM metric_snapshots", snap);

    /* 48 h later the dedupe records are purged: still skipped (the watermark and the hours). */
    testdb_exec(c, "DELETE FROM anlyt.processed_events");
    free(sms);
    sms = testdb_query_text(c, sms_fingerprint_sql);
    out = run_ok(f, "seed", NULL);
    assert_non_null(strstr(out, "SMS demo data skipped"));
    expect_text(c, sms_fingerprint_sql, sms);
    /* ... and so it is when only the watermark, or only the hourly rows, are left. */
    testdb_exec(c, "CREATE TABLE hourly_copy AS SELECT * FROM anlyt.metrics_hourly;"
                   " DELETE FROM anlyt.metrics_hourly");
    free(sms);
    sms = testdb_query_text(c, sms_fingerprint_sql);
    out = run_ok(f, "seed", NULL);
    assert_non_null(strstr(out, "SMS demo data skipped"));
    expect_text(c, sms_fingerprint_sql, sms);
    testdb_exec(c, "INSERT INTO anlyt.metrics_hourly SELECT * FROM hourly_copy;"
                   " UPDATE anlyt.ingest_state SET ingested_through = NULL");
    free(sms);
    sms = testdb_query_text(c, sms_fingerprint_sql);
    out = run_ok(f, "seed", NULL);
    assert_non_null(strstr(out, "SMS demo data skipped"));
    expect_text(c, sms_fingerprint_sql, sms);
    free(runs);
    free(snap);
    free(sms);
}

/* Adds rows a reset must remove, and returns the current run ids (caller frees). */
static char *dirty_database(PGconn *c)
{
    testdb_exec(c, "INSERT INTO audit_entries (actor, action, resource_type, resource_id)"
                   " VALUES ('t', 'recompute.triggered', 'recompute_run', 'x');"
                   " INSERT INTO recompute_runs (report_slug, window_name, date_from, date_to,"
                   " requested_by, status) VALUES ('top-entities', 'day', '2026-01-01',"
                   " '2026-01-02', 'someone', 'pending');"
                   " UPDATE report_definitions SET is_public = FALSE WHERE slug = 'status-counts';"
                   " INSERT INTO anlyt.rejected_events (transport, reason, payload) VALUES"
                   " ('http', 'invalid_json', '\\x00');"
                   " INSERT INTO anlyt.processed_events (event_id, event_type) VALUES"
                   " ('someone-else', 'billing.message.charged')");
    return testdb_query_text(c, "SELECT string_agg(id::text, ',') FROM recompute_runs");
}

static void check_reset(PGconn *c, const char *old_ids)
{
    check_seed_facts(c);
    check_sms_demo(c); /* emptied, then loaded once: not doubled, no foreign row left */
    expect_int(c, "SELECT min(id) FROM anlyt.rejected_events", 1);
    expect_text(c, "SELECT min(id) || ':' || max(id) FROM analytics_events", "1:25000");
    expect_int(c, "SELECT count(*) FROM analytics_events WHERE external_ref <> 'evt-' || id", 0);
    expect_int(c, "SELECT count(*) FROM audit_entries", 0);
    expect_int(c, "SELECT min(id) FROM metric_snapshots", 1);
    char *sql = xasprintf("SELECT count(*) FROM recompute_runs WHERE id::text = ANY"
                          " (string_to_array('%s', ','))",
                          old_ids);
    expect_int(c, sql, 0);
    free(sql);
    /* Reference tables kept as they were (including the local change). */
    expect_int(c, "SELECT count(*) FROM report_definitions WHERE NOT is_public", 1);
    expect_int(c, "SELECT count(*) FROM event_sources", 3);
    expect_int(c, "SELECT count(*) FROM aggregate_windows", 8);
}

/*
 * 0007 on a database that already holds events from before the fourth report (DATA.md §2.2):
 * its reference rows arrive and every retained day with events becomes a dirty day of both of
 * its windows, which the scheduler then rebuilds; the other reports are not touched.
 */
static void test_migrate_0007_marks_existing_days(void **state)
{
    fixture *f = *state;
    PGconn *c = f->conn;
    assert_int_equal(migrate_run(c), 0);
    assert_int_equal(seed_run(c, false, 90), 0);
    testdb_exec(c, "DELETE FROM metric_snapshots WHERE report_slug = 'amount-by-source';"
                   " DELETE FROM recompute_runs WHERE report_slug = 'amount-by-source';"
                   " DELETE FROM aggregate_windows WHERE report_slug = 'amount-by-source';"
                   " DELETE FROM report_definitions WHERE slug = 'amount-by-source';"
                   " DELETE FROM schema_migrations WHERE version = '0007_amount_by_source.sql'");
    expect_int(c, "SELECT count(*) FROM refresh_dirty_days", 0);
    assert_int_equal(migrate_run(c), 0);
    check_reference_data(c);
    char *want = testdb_query_text(c, "SELECT 'day:' || n || ',week:' || n FROM (SELECT"
                                      " count(DISTINCT (occurred_at AT TIME ZONE 'UTC')::date) n"
                                      " FROM analytics_events) x");
    expect_text(c,
                "SELECT string_agg(window_name || ':' || n, ',' ORDER BY window_name) FROM"
                " (SELECT window_name, count(*) n FROM refresh_dirty_days GROUP BY 1) x",
                want);
    free(want);
    expect_int(c, "SELECT count(*) FROM refresh_dirty_days WHERE report_slug <> 'amount-by-source'",
               0);
    /* Due at the scheduler's next pass, not one refresh interval later. */
    expect_text(c,
                "SELECT string_agg(o_report_slug || '/' || o_window, ',' ORDER BY o_window)"
                " FROM refresh_due()",
                "amount-by-source/day,amount-by-source/week");
}

static void test_seed_force_reset_direct(void **state)
{
    fixture *f = *state;
    PGconn *c = f->conn;
    assert_int_equal(migrate_run(c), 0);
    assert_int_equal(seed_run(c, false, 90), 0);
    f->old_ids = dirty_database(c);
    assert_int_equal(seed_run(c, true, 90), 0);
    check_reset(c, f->old_ids);
    /* The session is reusable: no advisory lock or transaction left behind. */
    expect_int(c,
               "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
               " AND pid = pg_backend_pid()",
               0);
    expect_text(c, "SELECT 'idle'", "idle");
}

/* Through the binary with SEED_FORCE_RESET=true (read by common/config.c for the seed role). */
static void test_seed_force_reset_binary(void **state)
{
    fixture *f = *state;
    PGconn *c = f->conn;
    (void)(run_ok(f, "migrate", NULL));
    (void)(run_ok(f, "seed", NULL));
    f->old_ids = dirty_database(c);
    const char *out = run_ok(f, "seed", "SEED_FORCE_RESET=true");
    assert_non_null(strstr(out, "seeded 25000 events"));
    assert_non_null(strstr(out, SMS_DEMO_LOG));
    check_reset(c, f->old_ids);
}

static void test_seed_without_schema_fails(void **state)
{
    fixture *f = *state;
    testdb_proc p;
    assert_int_equal(run_cmd(f, "seed", NULL, &p), 1);
    testdb_proc_free(&p);
    /* Reference data missing → the events insert fails and nothing is left behind. */
    (void)(run_ok(f, "migrate", NULL));
    testdb_exec(f->conn, "DELETE FROM event_sources WHERE slug = 'paypal'");
    assert_int_equal(run_cmd(f, "seed", NULL, &p), 1);
    testdb_proc_free(&p);
    expect_int(f->conn, "SELECT count(*) FROM analytics_events", 0);
    expect_int(f->conn, "SELECT count(*) FROM recompute_runs", 0);
    expect_int(f->conn, "SELECT count(*) FROM metric_snapshots", 0);
    expect_no_sms_data(f->conn); /* the SMS part never ran */

    /* The SMS part fails halfway, at the batch holding the 14th invalid message (about the 30th
     * batch): the report demo stays, and not one SMS row. */
    testdb_exec(f->conn, "INSERT INTO event_sources (slug, provider_name, description) VALUES"
                         " ('paypal', 'PayPal', 'Wallet checkout event stream.');"
                         " ALTER TABLE anlyt.rejected_events ADD CONSTRAINT not_14 CHECK"
                         " (event_id IS DISTINCT FROM 'demo-r-014')");
    assert_int_equal(run_cmd(f, "seed", NULL, &p), 1);
    assert_non_null(strstr(p.out, "seeded 25000 events"));
    assert_non_null(strstr(p.out, "SMS demo data failed"));
    testdb_proc_free(&p);
    expect_int(f->conn, "SELECT count(*) FROM analytics_events", 25000);
    expect_no_sms_data(f->conn);
    /* Once it works again, the next seed loads the SMS part alone. */
    testdb_exec(f->conn, "ALTER TABLE anlyt.rejected_events DROP CONSTRAINT not_14");
    const char *out = run_ok(f, "seed", NULL);
    assert_non_null(strstr(out, "skipped, analytics_events already has rows"));
    assert_non_null(strstr(out, SMS_DEMO_LOG));
    check_sms_demo(f->conn);
}

/* ---- rebuild --------------------------------------------------------------------------- */

static const char fingerprint_sql[] =
    "SELECT md5(string_agg(report_slug || '|' || window_name || '|' || bucket_start::text || '|'"
    " || dimension_key || '|' || dimension_value || '|' || metric_name || '|' || metric_value,"
    " ',' ORDER BY report_slug, window_name, bucket_start, dimension_key,"
    " dimension_value COLLATE \"C\", metric_name)) FROM metric_snapshots";

static rebuild_status rebuild_tx(PGconn *c, const char *run_id, const char *slug,
                                 const char *window, const char *from, const char *to,
                                 rebuild_summary *s)
{
    testdb_exec(c, "BEGIN");
    rebuild_status st = rebuild_run(c, run_id, slug, window, from, to, s);
    testdb_exec(c, st == REBUILD_OK ? "COMMIT" : "ROLLBACK");
    return st;
}

static void test_rebuild(void **state)
{
    fixture *f = *state;
    PGconn *c = f->conn;
    assert_int_equal(migrate_run(c), 0);
    assert_int_equal(seed_run(c, false, 90), 0);
    char *fp = testdb_query_text(c, fingerprint_sql);
    char *t0 = testdb_query_text(c, "SELECT max(date_to)::text FROM recompute_runs");

    /* Week range Wednesday..Sunday (§6.3): whole weeks rebuilt, nothing else changes. */
    char *sql = xasprintf("SELECT (date_trunc('week', '%s'::date - 40) + interval '2 days')"
                          "::date::text || ' ' || (date_trunc('week', '%s'::date - 20) +"
                          " interval '6 days')::date::text",
                          t0, t0);
    char *range = testdb_query_text(c, sql);
    free(sql);
    char wf[11], wt[11];
    assert_int_equal(sscanf(range, "%10s %10s", wf, wt), 2);
    free(range);
    expect_int(c, "SELECT extract(isodow FROM '1970-01-01'::date)::int", 4); /* sanity */
    sql = xasprintf("SELECT extract(isodow FROM '%s'::date)::int * 10 +"
                    " extract(isodow FROM '%s'::date)::int",
                    wf, wt);
    expect_int(c, sql, 37); /* Wednesday, Sunday */
    free(sql);
    static const char *const reports[] = {"volume-by-period", "status-counts", "top-entities"};
    static const char *const dims[] = {"source_id", "status", "entity_id"};
    for (size_t r = 0; r < 3; r++) {
        rebuild_summary s = {-1, -1, -1};
        assert_int_equal(rebuild_tx(c, NULL, reports[r], "week", wf, wt, &s), REBUILD_OK);
        assert_true(s.rows_inserted > 0);
        assert_int_equal(s.rows_deleted, s.rows_inserted);
        sql = xasprintf("SELECT count(DISTINCT date_trunc('week', occurred_at)) || ':' ||"
                        " count(DISTINCT (date_trunc('week', occurred_at), %s)) FROM"
                        " analytics_events WHERE occurred_at >= date_trunc('week', '%s'::date)"
                        " AND occurred_at < date_trunc('week', '%s'::date) + interval '7 days'",
                        dims[r], wf, wt);
        char *expected =
            xasprintf("%lld:%lld", (long long)s.bucket_count, (long long)s.rows_inserted);
        expect_text(c, sql, expected);
        free(expected);
        free(sql);
        assert_true(s.bucket_count >= 3 && s.bucket_count <= 4);
    }
    expect_text(c, fingerprint_sql, fp);

    /* Day range F..T with a run id: T+1 and F−1 untouched, the range rewritten by the run. */
    testdb_exec(c, "INSERT INTO recompute_runs (id, report_slug, window_name, date_from, date_to,"
                   " requested_by, status, started_at, attempts) VALUES"
                   " ('00000000-0000-4000-8000-00000000abcd', 'top-entities', 'day',"
                   " '2026-01-01', '2026-01-02', 't', 'running', now(), 1)");
    sql = xasprintf("SELECT ('%s'::date - 40)::text || ' ' || ('%s'::date - 30)::text", t0, t0);
    range = testdb_query_text(c, sql);
    free(sql);
    char df[11], dt[11];
    assert_int_equal(sscanf(range, "%10s %10s", df, dt), 2);
    free(range);
    char *edges_sql = xasprintf("SELECT string_agg(id::text || '@' || computed_at::text, ','"
                                " ORDER BY id) FROM metric_snapshots WHERE report_slug ="
                                " 'top-entities' AND window_name = 'day' AND bucket_start IN"
                                " ('%s'::date - 1, '%s'::date + 1)",
                                df, dt);
    char *edges = testdb_query_text(c, edges_sql);
    assert_non_null(edges);
    int64_t max_id = testdb_query_int(c, "SELECT max(id) FROM metric_snapshots");
    rebuild_summary s = {-1, -1, -1};
    assert_int_equal(
        rebuild_tx(c, "00000000-0000-4000-8000-00000000abcd", "top-entities", "day", df, dt, &s),
        REBUILD_OK);
    assert_int_equal(s.bucket_count, 11);
    assert_int_equal(s.rows_deleted, s.rows_inserted);
    assert_true(s.rows_inserted > 0);
    expect_text(c, edges_sql, edges);
    free(edges);
    free(edges_sql);
    sql = xasprintf("SELECT count(*) FROM metric_snapshots WHERE report_slug = 'top-entities'"
                    " AND window_name = 'day' AND bucket_start >= '%s'::date AND bucket_start <"
                    " '%s'::date + 1 AND id > %lld AND run_id ="
                    " '00000000-0000-4000-8000-00000000abcd'",
                    df, dt, (long long)max_id);
    expect_int(c, sql, s.rows_inserted);
    free(sql);
    expect_text(c, fingerprint_sql, fp);

    /* Unsupported slug: nothing sent, the transaction stays usable. */
    testdb_exec(c, "BEGIN");
    assert_int_equal(rebuild_run(c, NULL, "no-such-report", "day", df, dt, &s),
                     REBUILD_UNSUPPORTED);
    expect_int(c, "SELECT 1", 1);
    testdb_exec(c, "ROLLBACK");
    assert_int_equal(rebuild_tx(c, NULL, "top-entities", "month", df, dt, &s), REBUILD_DB_ERROR);
    assert_null(registry_report_find("no-such-report", strlen("no-such-report")));
    assert_non_null(registry_report_find("status-counts", strlen("status-counts")));

    /* The rebuild waits on the pair's advisory lock (§6.4 step 1, §8.5) and only on it. */
    PGconn *other = testdb_connect(&f->db);
    testdb_exec(other, "SELECT pg_advisory_lock(hashtextextended('recompute:top-entities:day',"
                       " 0))");
    testdb_exec(c, "BEGIN; SET LOCAL lock_timeout = '300ms'");
    assert_int_equal(rebuild_run(c, NULL, "top-entities", "day", df, dt, &s), REBUILD_DB_ERROR);
    testdb_exec(c, "ROLLBACK");
    testdb_exec(c, "BEGIN; SET LOCAL lock_timeout = '300ms'");
    assert_int_equal(rebuild_run(c, NULL, "top-entities", "week", df, dt, &s), REBUILD_OK);
    testdb_exec(c, "ROLLBACK");
    PQfinish(other);
    expect_text(c, fingerprint_sql, fp);

    rebuild_summary js = {3, 5, 7};
    char *json = rebuild_summary_json(&js);
    assert_string_equal(json, "{\"bucket_count\":3,\"rows_deleted\":5,\"rows_inserted\":7}");
    free(json);
    free(fp);
    free(t0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrate_empty_then_noop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_applies_only_0003, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_stops_at_first_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seed_facts_and_skip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seed_force_reset_direct, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_0007_marks_existing_days, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seed_without_schema_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rebuild, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seed_force_reset_binary, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
