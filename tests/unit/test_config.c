/*
 * tests/unit/test_config.c: the configuration contract of CONFIG.md §1–§3 (common/config.c).
 * Pure code: a fake config_source backed by a name/value array, err captured in memory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/config.h"
#include "common/log.h"

/* ---- fake source ------------------------------------------------------------------------------
 */

typedef struct {
    const char *name;
    const char *value;
} kv;

#define MAX_VARS 64
typedef struct {
    kv vars[MAX_VARS];
    int n;
    char *err;     /* captured error output after run() */
    size_t errlen; /* its length */
} fake;

static const char *fake_lookup(void *ctx, const char *name)
{
    fake *f = ctx;
    for (int i = 0; i < f->n; i++) {
        if (strcmp(f->vars[i].name, name) == 0)
            return f->vars[i].value;
    }
    return NULL;
}

static void set(fake *f, const char *name, const char *value)
{
    for (int i = 0; i < f->n; i++) {
        if (strcmp(f->vars[i].name, name) == 0) {
            f->vars[i].value = value;
            return;
        }
    }
    assert_true(f->n < MAX_VARS);
    f->vars[f->n].name = name;
    f->vars[f->n].value = value;
    f->n++;
}

/* A fake with the two required URLs set to valid values. */
static void fake_valid(fake *f)
{
    memset(f, 0, sizeof(*f));
    set(f, "DATABASE_URL", "postgres://app:app@127.0.0.1:5436/db?sslmode=disable");
    set(f, "REDIS_URL", "redis://127.0.0.1:6383/0");
}

/* Runs config_load with the fake; the caller frees cfg and f->err. */
static int run(fake *f, config_role role, config *cfg)
{
    free(f->err);
    f->err = NULL;
    FILE *err = open_memstream(&f->err, &f->errlen);
    assert_non_null(err);
    config_source src = {fake_lookup, f};
    int rc = config_load(cfg, role, src, err);
    fclose(err);
    return rc;
}

/* Loads with a single variable changed and expects exactly `expected` on err (NULL: success). */
static void expect_one(config_role role, const char *name, const char *value, const char *expected)
{
    fake f;
    fake_valid(&f);
    set(&f, name, value);
    config cfg;
    int rc = run(&f, role, &cfg);
    if (expected == NULL) {
        assert_int_equal(rc, 0);
        assert_string_equal(f.err, "");
    } else {
        assert_int_equal(rc, -1);
        char *line = NULL;
        assert_true(asprintf(&line, "configuration error: %s\n", expected) > 0);
        assert_string_equal(f.err, line);
        free(line);
    }
    config_free(&cfg);
    free(f.err);
}

/* ---- defaults and roles -------------------------------------------------------------------- */

static void test_server_defaults(void **state)
{
    (void)state;
    fake f;
    fake_valid(&f);
    config cfg;
    assert_int_equal(run(&f, CONFIG_ROLE_SERVER, &cfg), 0);
    assert_string_equal(f.err, "");
    assert_string_equal(cfg.app_env, "development");
    assert_int_equal(cfg.app_port, 3004);
    assert_null(cfg.app_host);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    assert_int_equal(cfg.http_workers, cpus < 1 ? 1 : cpus > 256 ? 256 : cpus);
    assert_string_equal(cfg.app_version, "dev");
    assert_string_equal(cfg.database_url, "postgres://app:app@127.0.0.1:5436/db?sslmode=disable");
    assert_string_equal(cfg.redis_url, "redis://127.0.0.1:6383/0");
    assert_string_equal(cfg.redis.host, "127.0.0.1");
    assert_int_equal(cfg.redis.port, 6383);
    assert_int_equal(cfg.redis.db, 0);
    assert_false(cfg.redis.tls);
    assert_string_equal(cfg.management_key, "change-me");
    assert_true(cfg.management_key_is_default);
    assert_true(cfg.auto_migrate);
    assert_false(cfg.auto_seed);
    assert_int_equal(cfg.max_report_range_days, 366);
    assert_int_equal(cfg.recompute_lock_ttl_ns, INT64_C(900000000000));
    assert_int_equal(cfg.recompute_workers, 1);
    assert_int_equal(cfg.recompute_queue_size, 64);
    assert_int_equal(cfg.recompute_max_pending, 1000);
    assert_int_equal(cfg.recompute_max_attempts, 3);
    assert_int_equal(cfg.http_read_timeout_ns, INT64_C(10000000000));
    assert_int_equal(cfg.http_write_timeout_ns, INT64_C(20000000000));
    assert_int_equal(cfg.http_shutdown_timeout_ns, INT64_C(15000000000));
    assert_false(cfg.seed_force_reset);
    config_free(&cfg);
    free(f.err);
}

static void test_empty_means_default(void **state)
{
    (void)state;
    fake f;
    fake_valid(&f);
    const char *names[] = {"APP_ENV",
                           "APP_PORT",
                           "APP_HOST",
                           "HTTP_WORKERS",
                           "APP_VERSION",
                           "MANAGEMENT_API_KEY",
                           "APP_AUTO_MIGRATE",
                           "APP_AUTO_SEED",
                           "MAX_REPORT_RANGE_DAYS",
                           "RECOMPUTE_LOCK_TTL",
                           "RECOMPUTE_WORKERS",
                           "RECOMPUTE_QUEUE_SIZE",
                           "RECOMPUTE_MAX_PENDING",
                           "RECOMPUTE_MAX_ATTEMPTS",
                           "HTTP_READ_TIMEOUT",
                           "HTTP_WRITE_TIMEOUT",
                           "HTTP_SHUTDOWN_TIMEOUT"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        set(&f, names[i], "");
    config cfg;
    assert_int_equal(run(&f, CONFIG_ROLE_SERVER, &cfg), 0);
    assert_string_equal(f.err, "");
    assert_string_equal(cfg.app_env, "development");
    assert_int_equal(cfg.app_port, 3004);
    assert_null(cfg.app_host);
    assert_string_equal(cfg.management_key, "change-me");
    assert_true(cfg.management_key_is_default);
    assert_true(cfg.auto_migrate);
    assert_int_equal(cfg.recompute_lock_ttl_ns, INT64_C(900000000000));
    assert_int_equal(cfg.recompute_queue_size, 64);
    config_free(&cfg);
    free(f.err);
}

static void test_server_values(void **state)
{
    (void)state;
    fake f;
    fake_valid(&f);
    set(&f, "APP_ENV", "production");
    set(&f, "APP_PORT", "8080");
    set(&f, "APP_HOST", "127.0.0.1");
    set(&f, "HTTP_WORKERS", "256");
    set(&f, "APP_VERSION", "1.2.3");
    set(&f, "MANAGEMENT_API_KEY", "s3cret key");
    set(&f, "APP_AUTO_MIGRATE", "false");
    set(&f, "APP_AUTO_SEED", "1");
    set(&f, "MAX_REPORT_RANGE_DAYS", "2147483647");
    set(&f, "RECOMPUTE_LOCK_TTL", "1m30s");
    set(&f, "RECOMPUTE_WORKERS", "64");
    set(&f, "RECOMPUTE_QUEUE_SIZE", "65536");
    set(&f, "RECOMPUTE_MAX_PENDING", "1");
    set(&f, "RECOMPUTE_MAX_ATTEMPTS", "100");
    set(&f, "HTTP_READ_TIMEOUT", "300ms");
    set(&f, "HTTP_WRITE_TIMEOUT", "1h");
    set(&f, "HTTP_SHUTDOWN_TIMEOUT", "1.5s");
    set(&f, "SEED_FORCE_RESET", "garbage"); /* not read by the server */
    config cfg;
    assert_int_equal(run(&f, CONFIG_ROLE_SERVER, &cfg), 0);
    assert_string_equal(f.err, "");
    assert_string_equal(cfg.app_env, "production");
    assert_int_equal(cfg.app_port, 8080);
    assert_string_equal(cfg.app_host, "127.0.0.1");
    assert_int_equal(cfg.http_workers, 256);
    assert_string_equal(cfg.app_version, "1.2.3");
    assert_string_equal(cfg.management_key, "s3cret key");
    assert_false(cfg.management_key_is_default);
    assert_false(cfg.auto_migrate);
    assert_true(cfg.auto_seed);
    assert_int_equal(cfg.max_report_range_days, 2147483647);
    assert_int_equal(cfg.recompute_lock_ttl_ns, INT64_C(90000000000));
    assert_int_equal(cfg.recompute_workers, 64);
    assert_int_equal(cfg.recompute_queue_size, 65536);
    assert_int_equal(cfg.recompute_max_pending, 1);
    assert_int_equal(cfg.recompute_max_attempts, 100);
    assert_int_equal(cfg.http_read_timeout_ns, 300000000);
    assert_int_equal(cfg.http_write_timeout_ns, INT64_C(3600000000000));
    assert_int_equal(cfg.http_shutdown_timeout_ns, 1500000000);
    assert_false(cfg.seed_force_reset);
    config_free(&cfg);
    free(f.err);
}

static void test_migrate_reads_only_database_url(void **state)
{
    (void)state;
    fake f;
    memset(&f, 0, sizeof(f));
    set(&f, "DATABASE_URL", "host=localhost dbname=x");
    set(&f, "REDIS_URL", "http://nope");
    set(&f, "HTTP_WORKERS", "0");
    set(&f, "APP_PORT", "x");
    set(&f, "MANAGEMENT_API_KEY", " bad ");
    set(&f, "SEED_FORCE_RESET", "maybe");
    config cfg;
    assert_int_equal(run(&f, CONFIG_ROLE_MIGRATE, &cfg), 0);
    assert_string_equal(f.err, "");
    assert_string_equal(cfg.database_url, "host=localhost dbname=x");
    assert_null(cfg.redis_url);
    assert_null(cfg.redis.host);
    assert_int_equal(cfg.app_port, 3004);
    assert_false(cfg.seed_force_reset);
    config_free(&cfg);

    /* REDIS_URL is not required either */
    memset(&f.vars, 0, sizeof(f.vars));
    f.n = 0;
    set(&f, "DATABASE_URL", "postgresql:///db");
    assert_int_equal(run(&f, CONFIG_ROLE_MIGRATE, &cfg), 0);
    assert_string_equal(f.err, "");
    config_free(&cfg);
    free(f.err);
}

static void test_seed_reads_force_reset(void **state)
{
    (void)state;
    fake f;
    memset(&f, 0, sizeof(f));
    set(&f, "DATABASE_URL", "postgres://localhost/db");
    set(&f, "REDIS_URL", "nope");
    set(&f, "RECOMPUTE_LOCK_TTL", "0");
    config cfg;
    assert_int_equal(run(&f, CONFIG_ROLE_SEED, &cfg), 0);
    assert_false(cfg.seed_force_reset);
    config_free(&cfg);

    set(&f, "SEED_FORCE_RESET", "True");
    assert_int_equal(run(&f, CONFIG_ROLE_SEED, &cfg), 0);
    assert_true(cfg.seed_force_reset);
    config_free(&cfg);

    set(&f, "SEED_FORCE_RESET", "yes");
    assert_int_equal(run(&f, CONFIG_ROLE_SEED, &cfg), -1);
    assert_string_equal(
        f.err, "configuration error: SEED_FORCE_RESET must be a boolean (true/false, 1/0, t/f)\n");
    config_free(&cfg);
    free(f.err);
}

static void test_database_url_required_all_roles(void **state)
{
    (void)state;
    config_role roles[] = {CONFIG_ROLE_SERVER, CONFIG_ROLE_MIGRATE, CONFIG_ROLE_SEED};
    for (size_t i = 0; i < 3; i++) {
        expect_one(roles[i], "DATABASE_URL", "", "DATABASE_URL is required");
        expect_one(roles[i], "DATABASE_URL", "host='unterminated", "DATABASE_URL is invalid");
        expect_one(roles[i], "DATABASE_URL", "postgres://h/db?nosuchoption=1",
                   "DATABASE_URL is invalid");
    }
    /* truly unset */
    fake f;
    memset(&f, 0, sizeof(f));
    config cfg;
    assert_int_equal(run(&f, CONFIG_ROLE_SEED, &cfg), -1);
    assert_string_equal(f.err, "configuration error: DATABASE_URL is required\n");
    config_free(&cfg);
    free(f.err);
}

/* ---- every §3.2 message, byte for byte --------------------------------------------------- */

static void test_messages(void **state)
{
    (void)state;
    const config_role S = CONFIG_ROLE_SERVER;
    expect_one(S, "REDIS_URL", "", "REDIS_URL is required");
    expect_one(S, "REDIS_URL", "http://h", "REDIS_URL is invalid: unsupported scheme");
    expect_one(S, "APP_AUTO_MIGRATE", "yes",
               "APP_AUTO_MIGRATE must be a boolean (true/false, 1/0, t/f)");
    expect_one(S, "APP_AUTO_SEED", "on", "APP_AUTO_SEED must be a boolean (true/false, 1/0, t/f)");
    expect_one(S, "HTTP_WORKERS", "x", "HTTP_WORKERS must be an integer");
    expect_one(S, "HTTP_WORKERS", "0", "HTTP_WORKERS must be at least 1");
    expect_one(S, "HTTP_WORKERS", "257", "HTTP_WORKERS must be at most 256");
    expect_one(S, "MAX_REPORT_RANGE_DAYS", "0", "MAX_REPORT_RANGE_DAYS must be positive");
    expect_one(S, "MAX_REPORT_RANGE_DAYS", "-5", "MAX_REPORT_RANGE_DAYS must be positive");
    expect_one(S, "MAX_REPORT_RANGE_DAYS", "2147483648",
               "MAX_REPORT_RANGE_DAYS must be at most 2147483647");
    expect_one(S, "MAX_REPORT_RANGE_DAYS", "1.5", "MAX_REPORT_RANGE_DAYS must be an integer");
    expect_one(S, "RECOMPUTE_WORKERS", "0", "RECOMPUTE_WORKERS must be at least 1");
    expect_one(S, "RECOMPUTE_WORKERS", "65", "RECOMPUTE_WORKERS must be at most 64");
    expect_one(S, "RECOMPUTE_QUEUE_SIZE", "0", "RECOMPUTE_QUEUE_SIZE must be at least 1");
    expect_one(S, "RECOMPUTE_QUEUE_SIZE", "65537", "RECOMPUTE_QUEUE_SIZE must be at most 65536");
    expect_one(S, "RECOMPUTE_MAX_PENDING", "0", "RECOMPUTE_MAX_PENDING must be at least 1");
    expect_one(S, "RECOMPUTE_MAX_PENDING", "2147483648",
               "RECOMPUTE_MAX_PENDING must be at most 2147483647");
    expect_one(S, "RECOMPUTE_MAX_ATTEMPTS", "0", "RECOMPUTE_MAX_ATTEMPTS must be at least 1");
    expect_one(S, "RECOMPUTE_MAX_ATTEMPTS", "101", "RECOMPUTE_MAX_ATTEMPTS must be at most 100");
    expect_one(S, "RECOMPUTE_LOCK_TTL", "10",
               "RECOMPUTE_LOCK_TTL must be a positive duration (for example 10s, 1.5m, 300ms)");
    expect_one(S, "HTTP_READ_TIMEOUT", "0s",
               "HTTP_READ_TIMEOUT must be a positive duration (for example 10s, 1.5m, 300ms)");
    expect_one(S, "HTTP_WRITE_TIMEOUT", "-1s",
               "HTTP_WRITE_TIMEOUT must be a positive duration (for example 10s, 1.5m, 300ms)");
    expect_one(S, "HTTP_SHUTDOWN_TIMEOUT", "2562048h",
               "HTTP_SHUTDOWN_TIMEOUT must be a positive duration (for example 10s, 1.5m, 300ms)");
    expect_one(S, "APP_PORT", "0", "APP_PORT must be an integer between 1 and 65535");
    expect_one(S, "APP_PORT", "65536", "APP_PORT must be an integer between 1 and 65535");
    expect_one(S, "APP_PORT", "80a", "APP_PORT must be an integer between 1 and 65535");
    expect_one(S, "APP_PORT", "65535", NULL);
    expect_one(S, "APP_PORT", "1", NULL);
    expect_one(S, "MANAGEMENT_API_KEY", " key",
               "MANAGEMENT_API_KEY must not start or end with whitespace");
    expect_one(S, "MANAGEMENT_API_KEY", "key\t",
               "MANAGEMENT_API_KEY must not start or end with whitespace");
    expect_one(S, "MANAGEMENT_API_KEY", "ke\ny",
               "MANAGEMENT_API_KEY must not contain control characters");
    expect_one(S, "MANAGEMENT_API_KEY", "key\x7f",
               "MANAGEMENT_API_KEY must not contain control characters");
    /* whitespace is checked first */
    expect_one(S, "MANAGEMENT_API_KEY", " ke\ny",
               "MANAGEMENT_API_KEY must not start or end with whitespace");
    expect_one(S, "MANAGEMENT_API_KEY", "inner space ok", NULL);
    expect_one(S, "APP_HOST", "localhost", "APP_HOST must be an IP address");
    expect_one(S, "APP_HOST", " 127.0.0.1", "APP_HOST must be an IP address");
    expect_one(S, "APP_HOST", "[::1]", "APP_HOST must be an IP address");
}

/* SMS.md §7: defaults, values and messages of the SMS variables. */
static void test_sms_variables(void **state)
{
    (void)state;
    fake f;
    fake_valid(&f);
    config cfg;
    assert_int_equal(run(&f, CONFIG_ROLE_SERVER, &cfg), 0);
    assert_null(cfg.nats_url);
    assert_string_equal(cfg.nats_consumer, "analytics-service");
    assert_string_equal(cfg.nats_billing_stream, "BILLING");
    assert_string_equal(cfg.nats_dlr_stream, "SMS_DLR");
    assert_false(cfg.nats_create_streams);
    assert_int_equal(cfg.ingest_workers, 1);
    assert_int_equal(cfg.sms_ingest_batch, 500);
    assert_int_equal(cfg.sms_cache_ttl_ns, INT64_C(5000000000));
    assert_int_equal(cfg.sms_rollup_interval_ns, INT64_C(60000000000));
    assert_int_equal(cfg.sms_hourly_retention_days, 90);
    assert_int_equal(cfg.sms_daily_retention_days, 365);
    assert_int_equal(cfg.sms_dedupe_retention_ns, INT64_C(172800000000000));
    config_free(&cfg);

    set(&f, "NATS_URL", "nats://u:p@10.0.0.1:4222,tls://nats-2:4222");
    set(&f, "NATS_CONSUMER", "svc-1");
    set(&f, "NATS_CREATE_STREAMS", "true");
    set(&f, "INGEST_WORKERS", "64");
    set(&f, "SMS_INGEST_BATCH", "10000");
    set(&f, "SMS_CACHE_TTL", "0");
    set(&f, "SMS_HOURLY_RETENTION_DAYS", "30");
    assert_int_equal(run(&f, CONFIG_ROLE_SERVER, &cfg), 0);
    assert_string_equal(cfg.nats_url, "nats://u:p@10.0.0.1:4222,tls://nats-2:4222");
    assert_string_equal(cfg.nats_consumer, "svc-1");
    assert_true(cfg.nats_create_streams);
    assert_int_equal(cfg.ingest_workers, 64);
    assert_int_equal(cfg.sms_ingest_batch, 10000);
    assert_int_equal(cfg.sms_cache_ttl_ns, 0);
    assert_int_equal(cfg.sms_hourly_retention_days, 30);
    config_free(&cfg);
    free(f.err);

    const config_role S = CONFIG_ROLE_SERVER;
    expect_one(S, "NATS_URL", "http://h:4222", "NATS_URL is invalid");
    expect_one(S, "NATS_URL", "nats://secret@h:1,", "NATS_URL is invalid"); /* never quoted */
    expect_one(S, "NATS_URL", "nats://", "NATS_URL is invalid");
    expect_one(S, "NATS_CONSUMER", "a.b",
               "NATS_CONSUMER must be a NATS name (printable ASCII without '.', '*', '>' or "
               "spaces)");
    expect_one(S, "NATS_BILLING_STREAM", "B ILLING",
               "NATS_BILLING_STREAM must be a NATS name (printable ASCII without '.', '*', '>' "
               "or spaces)");
    expect_one(S, "NATS_DLR_STREAM", "X>",
               "NATS_DLR_STREAM must be a NATS name (printable ASCII without '.', '*', '>' or "
               "spaces)");
    expect_one(S, "NATS_CREATE_STREAMS", "yes",
               "NATS_CREATE_STREAMS must be a boolean (true/false, 1/0, t/f)");
    expect_one(S, "INGEST_WORKERS", "0", "INGEST_WORKERS must be at least 1");
    expect_one(S, "INGEST_WORKERS", "65", "INGEST_WORKERS must be at most 64");
    expect_one(S, "SMS_INGEST_BATCH", "10001", "SMS_INGEST_BATCH must be at most 10000");
    expect_one(S, "SMS_CACHE_TTL", "-1s",
               "SMS_CACHE_TTL must be 0 or a positive duration (for example 5s, 500ms)");
    expect_one(S, "SMS_CACHE_TTL", "0s", /* "0" alone disables: SMS.md §6.1 */
               "SMS_CACHE_TTL must be 0 or a positive duration (for example 5s, 500ms)");
    expect_one(S, "SMS_CACHE_TTL", "250ms", NULL);
    expect_one(S, "SMS_ROLLUP_INTERVAL", "0",
               "SMS_ROLLUP_INTERVAL must be a positive duration (for example 10s, 1.5m, 300ms)");
    expect_one(S, "SMS_HOURLY_RETENTION_DAYS", "0", "SMS_HOURLY_RETENTION_DAYS must be at least 1");
    expect_one(S, "SMS_DAILY_RETENTION_DAYS", "x", "SMS_DAILY_RETENTION_DAYS must be an integer");
    expect_one(S, "SMS_DEDUPE_RETENTION", "2d",
               "SMS_DEDUPE_RETENTION must be a positive duration (for example 10s, 1.5m, 300ms)");
}

static void test_app_host(void **state)
{
    (void)state;
    const char *ok[] = {"127.0.0.1", "0.0.0.0", "::1", "::", "fe80::1"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        fake f;
        fake_valid(&f);
        set(&f, "APP_HOST", ok[i]);
        config cfg;
        assert_int_equal(run(&f, CONFIG_ROLE_SERVER, &cfg), 0);
        assert_string_equal(cfg.app_host, ok[i]);
        config_free(&cfg);
        free(f.err);
    }
}

static void test_metrics_bind(void **state)
{
    (void)state;
    struct {
        const char *value, *host;
        int port;
    } ok[] = {{"127.0.0.1:9464", "127.0.0.1", 9464},
              {":9464", NULL, 9464},
              {"[::1]:1", "::1", 1},
              {"0.0.0.0:65535", "0.0.0.0", 65535}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        fake f;
        fake_valid(&f);
        set(&f, "METRICS_BIND", ok[i].value);
        config cfg;
        assert_int_equal(run(&f, CONFIG_ROLE_SERVER, &cfg), 0);
        assert_int_equal(cfg.metrics_port, ok[i].port);
        if (ok[i].host == NULL)
            assert_null(cfg.metrics_host);
        else
            assert_string_equal(cfg.metrics_host, ok[i].host);
        config_free(&cfg);
        free(f.err);
    }
    const config_role S = CONFIG_ROLE_SERVER;
    const char *msg = "METRICS_BIND must be HOST:PORT with an IP address and a port between 1 and "
                      "65535";
    const char *bad[] = {"9464",       "localhost:9464", "127.0.0.1:0", "127.0.0.1:65536",
                         "127.0.0.1:", "::1:9464",       "[::1]9464",   "127.0.0.1:94x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_one(S, "METRICS_BIND", bad[i], msg);
    expect_one(S, "METRICS_BIND", "127.0.0.1:3004",
               "METRICS_BIND must use a port other than APP_PORT");
    expect_one(S, "METRICS_BIND", "", NULL); /* empty: /metrics on APP_PORT */
}

static void test_multiple_errors_in_order(void **state)
{
    (void)state;
    fake f;
    memset(&f, 0, sizeof(f));
    /* set in scrambled order; reported in §2 order */
    set(&f, "HTTP_SHUTDOWN_TIMEOUT", "5");
    set(&f, "RECOMPUTE_WORKERS", "0");
    set(&f, "APP_AUTO_SEED", "nah");
    set(&f, "MANAGEMENT_API_KEY", "a\x01");
    set(&f, "APP_PORT", "99999");
    set(&f, "HTTP_WORKERS", "-1");
    set(&f, "APP_HOST", "nowhere");
    set(&f, "MAX_REPORT_RANGE_DAYS", "0");
    set(&f, "RECOMPUTE_LOCK_TTL", "1d");
    set(&f, "APP_ENV", "anything goes");
    config cfg;
    assert_int_equal(run(&f, CONFIG_ROLE_SERVER, &cfg), -1);
    assert_string_equal(
        f.err,
        "configuration error: APP_PORT must be an integer between 1 and 65535\n"
        "configuration error: APP_HOST must be an IP address\n"
        "configuration error: HTTP_WORKERS must be at least 1\n"
        "configuration error: DATABASE_URL is required\n"
        "configuration error: REDIS_URL is required\n"
        "configuration error: MANAGEMENT_API_KEY must not contain control characters\n"
        "configuration error: APP_AUTO_SEED must be a boolean (true/false, 1/0, t/f)\n"
        "configuration error: MAX_REPORT_RANGE_DAYS must be positive\n"
        "configuration error: RECOMPUTE_LOCK_TTL must be a positive duration (for example 10s, "
        "1.5m, 300ms)\n"
        "configuration error: RECOMPUTE_WORKERS must be at least 1\n"
        "configuration error: HTTP_SHUTDOWN_TIMEOUT must be a positive duration (for example 10s, "
        "1.5m, 300ms)\n");
    config_free(&cfg);
    free(f.err);
}

static void test_secrets_never_printed(void **state)
{
    (void)state;
    fake f;
    memset(&f, 0, sizeof(f));
    set(&f, "DATABASE_URL", "postgres://u:TOPSECRETDB@h/db?bogus_option=TOPSECRETDB");
    set(&f, "REDIS_URL", "redis://u:TOPSECRETRD@h:99999/0");
    set(&f, "MANAGEMENT_API_KEY", "TOPSECRETKEY\n");
    config cfg;
    assert_int_equal(run(&f, CONFIG_ROLE_SERVER, &cfg), -1);
    assert_null(strstr(f.err, "TOPSECRET"));
    assert_string_equal(f.err, "configuration error: DATABASE_URL is invalid\n"
                               "configuration error: REDIS_URL is invalid: invalid port\n"
                               "configuration error: MANAGEMENT_API_KEY must not contain control "
                               "characters\n");
    config_free(&cfg);

    set(&f, "DATABASE_URL", "password=TOPSECRETDB host='x");
    set(&f, "REDIS_URL", "redis://TOPSECRETRD@/0");
    set(&f, "MANAGEMENT_API_KEY", " TOPSECRETKEY");
    assert_int_equal(run(&f, CONFIG_ROLE_SERVER, &cfg), -1);
    assert_null(strstr(f.err, "TOPSECRET"));
    assert_string_equal(f.err, "configuration error: DATABASE_URL is invalid\n"
                               "configuration error: REDIS_URL is invalid: missing host\n"
                               "configuration error: MANAGEMENT_API_KEY must not start or end with "
                               "whitespace\n");
    config_free(&cfg);
    free(f.err);
}

static void test_config_free_zeroed(void **state)
{
    (void)state;
    config cfg;
    memset(&cfg, 0, sizeof(cfg));
    config_free(&cfg);
    config_free(&cfg);
    config_redis r;
    memset(&r, 0, sizeof(r));
    config_redis_free(&r);
    assert_null(cfg.app_env);
}

/* ---- booleans and integers ------------------------------------------------------------------ */

static void test_bool(void **state)
{
    (void)state;
    const char *t[] = {"1", "t", "T", "TRUE", "true", "True"};
    const char *f[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (size_t i = 0; i < 6; i++) {
        bool b = false;
        assert_int_equal(config_parse_bool(t[i], &b), 0);
        assert_true(b);
        b = true;
        assert_int_equal(config_parse_bool(f[i], &b), 0);
        assert_false(b);
    }
    const char *bad[] = {" true", "true ", "yes", "no",    "on", "off",   "tRuE",
                         "",      "2",     "y",   "FaLsE", "00", "TRUE\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bool b = false;
        assert_int_equal(config_parse_bool(bad[i], &b), -1);
    }
}

static void test_int64(void **state)
{
    (void)state;
    int64_t v = 0;
    assert_int_equal(config_parse_int64("007", &v), 0);
    assert_int_equal(v, 7);
    assert_int_equal(config_parse_int64("+5", &v), 0);
    assert_int_equal(v, 5);
    assert_int_equal(config_parse_int64("-0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(config_parse_int64("-17", &v), 0);
    assert_int_equal(v, -17);
    assert_int_equal(config_parse_int64("9223372036854775807", &v), 0);
    assert_true(v == INT64_MAX);
    assert_int_equal(config_parse_int64("-9223372036854775808", &v), 0);
    assert_true(v == INT64_MIN);
    assert_int_equal(config_parse_int64("00000000000000000000000000042", &v), 0);
    assert_int_equal(v, 42);
    const char *bad[] = {"1e3",
                         "1_000",
                         "5.0",
                         "0x10",
                         " 5",
                         "5 ",
                         "",
                         "+",
                         "-",
                         "+-1",
                         "--1",
                         "9223372036854775808",
                         "-9223372036854775809",
                         "99999999999999999999999",
                         "１"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(config_parse_int64(bad[i], &v), -1);
    /* through config_load: int64 overflow is a syntax error, not "at most" */
    expect_one(CONFIG_ROLE_SERVER, "HTTP_WORKERS", "9223372036854775808",
               "HTTP_WORKERS must be an integer");
    expect_one(CONFIG_ROLE_SERVER, "HTTP_WORKERS", " 5", "HTTP_WORKERS must be an integer");
    expect_one(CONFIG_ROLE_SERVER, "HTTP_WORKERS", "0x10", "HTTP_WORKERS must be an integer");
    expect_one(CONFIG_ROLE_SERVER, "HTTP_WORKERS", "9223372036854775807",
               "HTTP_WORKERS must be at most 256");
}

/* ---- durations --------------------------------------------------------------------------------
 */

static void expect_duration(const char *s, int64_t ns)
{
    int64_t v = -42;
    if (config_parse_duration(s, &v) != 0)
        fail_msg("duration '%s' rejected", s);
    if (v != ns)
        fail_msg("duration '%s' = %lld, want %lld", s, (long long)v, (long long)ns);
}

static void test_duration_ok(void **state)
{
    (void)state;
    const int64_t S = INT64_C(1000000000);
    expect_duration("15m", 15 * 60 * S);
    expect_duration("1.5h", 90 * 60 * S);
    expect_duration("2h45m", (2 * 3600 + 45 * 60) * S);
    expect_duration("300ms", 300000000);
    expect_duration("1m30s", 90 * S);
    expect_duration("0.5s", S / 2);
    expect_duration(".5s", S / 2);
    expect_duration("1.s", S);
    expect_duration("+1s", S);
    expect_duration("1\xc2\xb5s", 1000); /* U+00B5 */
    expect_duration("1\xce\xbcs", 1000); /* U+03BC */
    expect_duration("1us", 1000);
    expect_duration("1ns", 1);
    expect_duration("1.5m", 90 * S);
    expect_duration("10s", 10 * S);
    expect_duration("1h1m1s1ms1us1ns", 3661 * S + 1001001);
    expect_duration("1s1s", 2 * S);
    expect_duration("0s1ns", 1);
    expect_duration("0.000000001s", 1);
    expect_duration("1.0000000009s", S);
    expect_duration("0.9999999999999999999999h", 3600 * S - 1);
    expect_duration("00001s", S);
    expect_duration("9223372036854775807ns", INT64_MAX);
    expect_duration("2562047h", INT64_C(2562047) * 3600 * S);
    expect_duration("2562047h47m16.854775807s", INT64_MAX);
}

static void test_duration_bad(void **state)
{
    (void)state;
    const char *bad[] = {"10",
                         "0",
                         "+0",
                         "-0",
                         "0s",
                         "0.0s",
                         "0.0000000001s", /* rounds down to 0 ns */
                         "-1s",
                         "1d",
                         " 1s",
                         "1s ",
                         "1.5",
                         "s",
                         ".s",
                         "1..5s",
                         "",
                         "+",
                         "-",
                         "1S",
                         "1sec",
                         "1s10",
                         "1 s",
                         "2562048h",
                         "9223372036854775808ns",
                         "2562047h47m16.854775808s",
                         "9223372036854775807ns1ns",
                         "99999999999999999999999ns",
                         "1\xc2s",
                         "1\xce\xbc"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t v = 77;
        if (config_parse_duration(bad[i], &v) != -1)
            fail_msg("duration '%s' accepted", bad[i]);
    }
}

/* ---- REDIS_URL ------------------------------------------------------------------------------ */

static void test_redis_ok(void **state)
{
    (void)state;
    config_redis r;
    const char *reason = NULL;

    assert_int_equal(config_parse_redis_url("redis://localhost", &r, &reason), 0);
    assert_false(r.tls);
    assert_string_equal(r.host, "localhost");
    assert_int_equal(r.port, 6379);
    assert_int_equal(r.db, 0);
    assert_null(r.username);
    assert_null(r.password);
    config_redis_free(&r);
    assert_null(r.host);

    assert_int_equal(config_parse_redis_url("redis://h:6383/", &r, &reason), 0);
    assert_int_equal(r.port, 6383);
    assert_int_equal(r.db, 0);
    config_redis_free(&r);

    assert_int_equal(config_parse_redis_url("redis://10.0.0.1:6383/15", &r, &reason), 0);
    assert_string_equal(r.host, "10.0.0.1");
    assert_int_equal(r.db, 15);
    config_redis_free(&r);

    assert_int_equal(config_parse_redis_url("redis://user:p%40ss@h/2", &r, &reason), 0);
    assert_string_equal(r.username, "user");
    assert_string_equal(r.password, "p@ss");
    assert_string_equal(r.host, "h");
    assert_int_equal(r.db, 2);
    config_redis_free(&r);

    assert_int_equal(config_parse_redis_url("redis://:pw@h:1", &r, &reason), 0);
    assert_null(r.username);
    assert_string_equal(r.password, "pw");
    assert_int_equal(r.port, 1);
    config_redis_free(&r);

    assert_int_equal(config_parse_redis_url("redis://us%3Aer@h", &r, &reason), 0);
    assert_string_equal(r.username, "us:er");
    assert_null(r.password);
    config_redis_free(&r);

    /* lower- and upper-case hex escapes */
    assert_int_equal(config_parse_redis_url("redis://u%3a%3A:x%2fy%7E@h", &r, &reason), 0);
    assert_string_equal(r.username, "u::");
    assert_string_equal(r.password, "x/y~");
    config_redis_free(&r);

    assert_int_equal(config_parse_redis_url("redis://[::1]:6380", &r, &reason), 0);
    assert_string_equal(r.host, "::1");
    assert_int_equal(r.port, 6380);
    config_redis_free(&r);

    assert_int_equal(config_parse_redis_url("redis://[fe80::1]/3", &r, &reason), 0);
    assert_string_equal(r.host, "fe80::1");
    assert_int_equal(r.port, 6379);
    assert_int_equal(r.db, 3);
    config_redis_free(&r);

    assert_int_equal(config_parse_redis_url("rediss://u:p@cache.example.com:65535/0", &r, &reason),
                     0);
    assert_true(r.tls);
    assert_string_equal(r.host, "cache.example.com");
    assert_int_equal(r.port, 65535);
    config_redis_free(&r);

    /* through config_load */
    fake f;
    fake_valid(&f);
    set(&f, "REDIS_URL", "rediss://:a%2Fb@[::1]:6390/7");
    config cfg;
    assert_int_equal(run(&f, CONFIG_ROLE_SERVER, &cfg), 0);
    assert_true(cfg.redis.tls);
    assert_string_equal(cfg.redis.host, "::1");
    assert_int_equal(cfg.redis.port, 6390);
    assert_int_equal(cfg.redis.db, 7);
    assert_string_equal(cfg.redis.password, "a/b");
    assert_string_equal(cfg.redis_url, "rediss://:a%2Fb@[::1]:6390/7");
    config_free(&cfg);
    free(f.err);
}

static void expect_redis_bad(const char *url, const char *want)
{
    config_redis r = {0};
    const char *reason = NULL;
    if (config_parse_redis_url(url, &r, &reason) != -1)
        fail_msg("REDIS_URL '%s' accepted", url);
    if (reason == NULL || strcmp(reason, want) != 0)
        fail_msg("REDIS_URL '%s': reason '%s', want '%s'", url, reason ? reason : "(null)", want);
    assert_null(r.host);
}

static void test_redis_bad(void **state)
{
    (void)state;
    expect_redis_bad("http://h", "unsupported scheme");
    expect_redis_bad("h:6379", "unsupported scheme");
    expect_redis_bad("localhost", "unsupported scheme");
    expect_redis_bad("unix:///tmp/redis.sock", "unsupported scheme");
    expect_redis_bad("redisx://h", "unsupported scheme");
    expect_redis_bad("http://h?x=1", "unsupported scheme"); /* scheme checked first */
    expect_redis_bad("redis://", "missing host");
    expect_redis_bad("redis:///0", "missing host");
    expect_redis_bad("redis://:6379", "missing host");
    expect_redis_bad("redis://user:pw@", "missing host");
    expect_redis_bad("redis://user:pw@:6379/0", "missing host");
    expect_redis_bad("redis://[]:6379", "missing host");
    expect_redis_bad("redis://[::1:6379", "missing host");
    expect_redis_bad("redis:h", "missing host");
    expect_redis_bad("redis://h:0", "invalid port");
    expect_redis_bad("redis://h:65536", "invalid port");
    expect_redis_bad("redis://h:", "invalid port");
    expect_redis_bad("redis://h:80a", "invalid port");
    expect_redis_bad("redis://h:-1", "invalid port");
    expect_redis_bad("redis://h:+80", "invalid port");
    expect_redis_bad("redis://h:99999999999999999999999", "invalid port");
    expect_redis_bad("redis://[::1]x", "invalid port");
    expect_redis_bad("redis://h/x", "invalid database number");
    expect_redis_bad("redis://h/-1", "invalid database number");
    expect_redis_bad("redis://h/+1", "invalid database number");
    expect_redis_bad("redis://h/0/", "invalid database number");
    expect_redis_bad("redis://h//", "invalid database number");
    expect_redis_bad("redis://h/99999999999999999999", "invalid database number");
    expect_redis_bad("redis://h/0?timeout=1", "query parameters are not supported");
    expect_redis_bad("redis://h/0#frag", "query parameters are not supported");
    expect_redis_bad("redis://h?db=1", "query parameters are not supported");
    expect_redis_bad("redis://u:p%zz@h", "invalid percent-encoding");
    expect_redis_bad("redis://u:p%4@h", "invalid percent-encoding");
    expect_redis_bad("redis://u%00:p@h", "invalid percent-encoding");

    expect_one(CONFIG_ROLE_SERVER, "REDIS_URL", "redis://", "REDIS_URL is invalid: missing host");
    expect_one(CONFIG_ROLE_SERVER, "REDIS_URL", "redis://h:0",
               "REDIS_URL is invalid: invalid port");
    expect_one(CONFIG_ROLE_SERVER, "REDIS_URL", "redis://h/db1",
               "REDIS_URL is invalid: invalid database number");
    expect_one(CONFIG_ROLE_SERVER, "REDIS_URL", "redis://h/0?a=b",
               "REDIS_URL is invalid: query parameters are not supported");
}

/* ---- environment files ---------------------------------------------------------------------- */

static char *write_temp(const char *content)
{
    char *path = strdup("/tmp/test_config_env_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *fp = fdopen(fd, "w");
    assert_non_null(fp);
    fputs(content, fp);
    fclose(fp);
    return path;
}

static void test_env_file(void **state)
{
    (void)state;
    char *path = write_temp("# comment\n"
                            "; another comment\n"
                            "\n"
                            "   \n"
                            "  # indented comment\n"
                            "APP_ENV=staging\n"
                            "  APP_VERSION\t = 2.0\n"
                            "PLAIN=a b  \r\n"
                            "SQ='single \\\" quoted'\n"
                            "DQ=\"say \\\"hi\\\" \\\\ \\n\"\n"
                            "HALF=\"open\n"
                            "EMPTY=\n"
                            "EQ=a=b\n"
                            "not a pair\n"
                            "=novalue\n"
                            "DUP=first\n"
                            "DUP=second\n"
                            "LAST=no newline");
    config_env_file *ef = NULL;
    const char *error = NULL;
    assert_int_equal(config_env_file_load(path, &ef, &error), 0);
    assert_non_null(ef);
    config_source src = config_env_file_source(ef);
    assert_string_equal(src.lookup(src.ctx, "APP_ENV"), "staging");
    assert_string_equal(src.lookup(src.ctx, "APP_VERSION"), " 2.0");
    assert_string_equal(src.lookup(src.ctx, "PLAIN"), "a b  ");
    assert_string_equal(src.lookup(src.ctx, "SQ"), "single \\\" quoted");
    assert_string_equal(src.lookup(src.ctx, "DQ"), "say \"hi\" \\ \\n");
    assert_string_equal(src.lookup(src.ctx, "HALF"), "\"open");
    assert_string_equal(src.lookup(src.ctx, "EMPTY"), "");
    assert_string_equal(src.lookup(src.ctx, "EQ"), "a=b");
    assert_string_equal(src.lookup(src.ctx, "DUP"), "second");
    assert_string_equal(src.lookup(src.ctx, "LAST"), "no newline");
    assert_null(src.lookup(src.ctx, "not a pair"));
    assert_null(src.lookup(src.ctx, "# comment"));

    /* present in the file (even empty) wins; absent falls back to the environment */
    setenv("EMPTY", "from-env", 1);
    setenv("TEST_CONFIG_ONLY_IN_ENV", "env-value", 1);
    setenv("APP_ENV", "env-app-env", 1);
    assert_string_equal(src.lookup(src.ctx, "EMPTY"), "");
    assert_string_equal(src.lookup(src.ctx, "APP_ENV"), "staging");
    assert_string_equal(src.lookup(src.ctx, "TEST_CONFIG_ONLY_IN_ENV"), "env-value");
    unsetenv("TEST_CONFIG_ONLY_IN_ENV");
    assert_null(src.lookup(src.ctx, "TEST_CONFIG_ONLY_IN_ENV"));
    unsetenv("EMPTY");
    unsetenv("APP_ENV");

    config_env_file_free(ef);
    unlink(path);
    free(path);
}

static void test_env_file_with_config_load(void **state)
{
    (void)state;
    char *path = write_temp("DATABASE_URL=\"postgres://app:app@127.0.0.1:5436/x\"\n"
                            "HTTP_WORKERS=3\n"
                            "MANAGEMENT_API_KEY=\n");
    setenv("REDIS_URL", "redis://127.0.0.1:6383/4", 1);
    setenv("HTTP_WORKERS", "999", 1);
    setenv("MANAGEMENT_API_KEY", "from-env", 1);
    config_env_file *ef = NULL;
    const char *error = NULL;
    assert_int_equal(config_env_file_load(path, &ef, &error), 0);
    config cfg;
    FILE *devnull = fopen("/dev/null", "w");
    assert_int_equal(config_load(&cfg, CONFIG_ROLE_SERVER, config_env_file_source(ef), devnull), 0);
    fclose(devnull);
    config_env_file_free(ef); /* the config keeps its own copies */
    assert_string_equal(cfg.database_url, "postgres://app:app@127.0.0.1:5436/x");
    assert_int_equal(cfg.redis.db, 4);
    assert_int_equal(cfg.http_workers, 3);
    assert_string_equal(cfg.management_key, "change-me"); /* empty in the file = default */
    assert_true(cfg.management_key_is_default);
    config_free(&cfg);
    unsetenv("REDIS_URL");
    unsetenv("HTTP_WORKERS");
    unsetenv("MANAGEMENT_API_KEY");
    unlink(path);
    free(path);
}

static void test_env_file_errors(void **state)
{
    (void)state;
    config_env_file *ef = (config_env_file *)&ef; /* must be reset to NULL */
    const char *error = NULL;
    assert_int_equal(config_env_file_load("/nonexistent/analyticsd.env", &ef, &error), -1);
    assert_null(ef);
    assert_string_equal(error, "file not found");
    error = NULL;
    assert_int_equal(config_env_file_load("/tmp", &ef, &error), -1);
    assert_null(ef);
    assert_string_equal(error, "cannot be read");
    config_env_file_free(NULL);
}

/* LOG_FORMAT (text|json, default text) and ACCESS_LOG (boolean, default false). */
static void test_log_variables(void **state)
{
    (void)state;
    const config_role S = CONFIG_ROLE_SERVER;
    fake f;
    fake_valid(&f);
    config cfg;
    assert_int_equal(run(&f, S, &cfg), 0);
    assert_int_equal(cfg.log_format, LOG_FORMAT_TEXT);
    assert_false(cfg.access_log);
    config_free(&cfg);
    set(&f, "LOG_FORMAT", "json");
    set(&f, "ACCESS_LOG", "true");
    assert_int_equal(run(&f, S, &cfg), 0);
    assert_int_equal(cfg.log_format, LOG_FORMAT_JSON);
    assert_true(cfg.access_log);
    config_free(&cfg);
    free(f.err);
    expect_one(S, "LOG_FORMAT", "text", NULL);
    expect_one(S, "LOG_FORMAT", "JSON", "LOG_FORMAT must be json or text");
    expect_one(S, "LOG_FORMAT", "logfmt", "LOG_FORMAT must be json or text");
    expect_one(S, "ACCESS_LOG", "yes", "ACCESS_LOG must be a boolean (true/false, 1/0, t/f)");
}

static void test_environ_source(void **state)
{
    (void)state;
    setenv("TEST_CONFIG_ENVIRON", "v", 1);
    config_source s = config_source_environ();
    assert_string_equal(s.lookup(s.ctx, "TEST_CONFIG_ENVIRON"), "v");
    unsetenv("TEST_CONFIG_ENVIRON");
    assert_null(s.lookup(s.ctx, "TEST_CONFIG_ENVIRON"));
}

/* ---- the table of variables (config_vars) ------------------------------------------------- */

/* The value of a variable's field as text, for comparisons across configs. */
static void field_text(const config *cfg, size_t offset, config_field_type type, char *buf,
                       size_t cap)
{
    const char *p = (const char *)cfg + offset;
    switch (type) {
    case CONFIG_FIELD_NONE:
        snprintf(buf, cap, "-");
        break;
    case CONFIG_FIELD_STR:
        snprintf(buf, cap, "%s", *(char *const *)p ? *(char *const *)p : "(null)");
        break;
    case CONFIG_FIELD_BOOL:
        snprintf(buf, cap, "%d", (int)*(const bool *)p);
        break;
    case CONFIG_FIELD_INT:
        snprintf(buf, cap, "%d", *(const int *)p);
        break;
    case CONFIG_FIELD_I64:
        snprintf(buf, cap, "%lld", (long long)*(const int64_t *)p);
        break;
    }
}

/* Rows are unique and complete: a kind, a field, the range of an INT, a parser of a SPECIAL. */
static void test_table_rows(void **state)
{
    (void)state;
    assert_true(config_var_count > 30);
    for (size_t i = 0; i < config_var_count; i++) {
        const config_var *v = &config_vars[i];
        assert_non_null(v->name);
        assert_ptr_equal(config_var_find(v->name), v); /* no name twice */
        assert_true(v->type != CONFIG_FIELD_NONE);
        assert_true(v->read_by != 0);
        assert_false(v->def != NULL && v->def_fn != NULL);
        assert_false(v->required && (v->def != NULL || v->def_fn != NULL));
        if (v->kind == CONFIG_KIND_INT)
            assert_true(v->min <= v->max && v->below != NULL);
        assert_int_equal(v->kind == CONFIG_KIND_SPECIAL, v->parse != NULL);
    }
    assert_null(config_var_find("NO_SUCH_VARIABLE"));
}

/* An unset variable and the same variable set to the table's default load the same value. */
static void test_table_defaults_parse_like_values(void **state)
{
    (void)state;
    for (size_t i = 0; i < config_var_count; i++) {
        const config_var *v = &config_vars[i];
        if (v->def == NULL)
            continue;
        config_role role = (v->read_by & CONFIG_READ_BY(CONFIG_ROLE_SERVER)) ? CONFIG_ROLE_SERVER
                                                                             : CONFIG_ROLE_SEED;
        fake f;
        fake_valid(&f);
        config unset, given;
        assert_int_equal(run(&f, role, &unset), 0);
        set(&f, v->name, v->def);
        assert_int_equal(run(&f, role, &given), 0);
        char a[256], b[256];
        field_text(&unset, v->field, v->type, a, sizeof(a));
        field_text(&given, v->field, v->type, b, sizeof(b));
        if (strcmp(a, b) != 0)
            fail_msg("%s: default %s, given %s", v->name, a, b);
        config_free(&unset);
        config_free(&given);
        free(f.err);
    }
}

/*
 * read_by decides validation (CONFIG.md §1): an invalid value (leading space: invalid for every
 * kind but text) is reported by exactly the programs that read the variable, with a message
 * that starts with the variable's name.
 */
static void test_table_roles(void **state)
{
    (void)state;
    config_role roles[] = {CONFIG_ROLE_SERVER, CONFIG_ROLE_MIGRATE, CONFIG_ROLE_SEED};
    for (size_t i = 0; i < config_var_count; i++) {
        const config_var *v = &config_vars[i];
        if (v->kind == CONFIG_KIND_TEXT)
            continue;
        for (size_t r = 0; r < sizeof(roles) / sizeof(roles[0]); r++) {
            fake f;
            fake_valid(&f);
            set(&f, v->name, " x");
            config cfg;
            int rc = run(&f, roles[r], &cfg);
            char prefix[128];
            snprintf(prefix, sizeof(prefix), "configuration error: %s ", v->name);
            if (v->read_by & CONFIG_READ_BY(roles[r])) {
                assert_int_equal(rc, -1);
                if (strncmp(f.err, prefix, strlen(prefix)) != 0 || strchr(f.err, '\n')[1] != '\0')
                    fail_msg("%s, role %d: %s", v->name, (int)roles[r], f.err);
            } else {
                assert_int_equal(rc, 0);
                assert_string_equal(f.err, "");
            }
            config_free(&cfg);
            free(f.err);
        }
    }
}

typedef struct {
    char names[512];
} changed_list;

static void note_changed(const config_var *var, void *ctx)
{
    changed_list *c = ctx;
    strcat(c->names, var->name);
    strcat(c->names, " ");
}

/*
 * The reload diff: every restart-only variable that changed is named once, in table order, and
 * keeps its running value (both fields of METRICS_BIND); reloadable ones take the new value.
 */
static void test_reload_keeps_restart_only(void **state)
{
    (void)state;
    fake f;
    fake_valid(&f);
    set(&f, "METRICS_BIND", "127.0.0.1:9464");
    config running, next;
    assert_int_equal(run(&f, CONFIG_ROLE_SERVER, &running), 0);

    assert_int_equal(run(&f, CONFIG_ROLE_SERVER, &next), 0);
    changed_list none = {""};
    assert_int_equal(config_keep_restart_only(&running, &next, note_changed, &none), 0);
    assert_string_equal(none.names, "");
    config_free(&next);

    set(&f, "APP_PORT", "3005");
    set(&f, "APP_HOST", "127.0.0.1");
    set(&f, "METRICS_BIND", "[::1]:9464"); /* same port, other host */
    set(&f, "RECOMPUTE_QUEUE_SIZE", "8");
    set(&f, "LOG_FORMAT", "json");
    set(&f, "NATS_URL", "nats://127.0.0.1:4222");
    set(&f, "HTTP_WORKERS", "7");       /* reloadable */
    set(&f, "ACCESS_LOG", "true");      /* reloadable */
    set(&f, "APP_VERSION", "reloaded"); /* reloadable */
    assert_int_equal(run(&f, CONFIG_ROLE_SERVER, &next), 0);
    changed_list c = {""};
    assert_int_equal(config_keep_restart_only(&running, &next, note_changed, &c), 6);
    assert_string_equal(c.names,
                        "APP_PORT APP_HOST METRICS_BIND RECOMPUTE_QUEUE_SIZE LOG_FORMAT NATS_URL ");
    assert_int_equal(next.app_port, running.app_port);
    assert_null(next.app_host);
    assert_int_equal(next.metrics_port, 9464);
    assert_string_equal(next.metrics_host, "127.0.0.1");
    assert_int_equal(next.recompute_queue_size, running.recompute_queue_size);
    assert_int_equal(next.log_format, running.log_format);
    assert_null(next.nats_url);
    assert_int_equal(next.http_workers, 7);
    assert_true(next.access_log);
    assert_string_equal(next.app_version, "reloaded");
    /* every restart-only field now equals the running one: a second pass finds nothing */
    assert_int_equal(config_keep_restart_only(&running, &next, NULL, NULL), 0);
    config_free(&running);
    config_free(&next);
    free(f.err);
}

/* The variable a line of the env file sets (NAME= or #NAME=) into name, or 0 for prose. */
static size_t env_line_name(const char *line, char *name, size_t cap)
{
    const char *l = line[0] == '#' ? line + 1 : line;
    size_t len = strspn(l, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
    if (len == 0 || l[len] != '=')
        return 0;
    snprintf(name, cap, "%.*s", (int)len, l);
    return len;
}

/* The comment block above line i of lines: the '#' prose lines back to a blank or variable line. */
static void comment_above(char **lines, size_t i, char *out, size_t cap)
{
    char name[128];
    size_t start = i;
    while (start > 0 && lines[start - 1][0] == '#' &&
           env_line_name(lines[start - 1], name, sizeof(name)) == 0)
        start--;
    out[0] = '\0';
    for (size_t k = start; k < i; k++) {
        strncat(out, lines[k], cap - strlen(out) - 2);
        strcat(out, "\n");
    }
}

/* "Default: <def>" followed by the end of a word (not a longer value). */
static bool documents_default(const char *comment, const char *def)
{
    char want[128];
    snprintf(want, sizeof(want), "Default: %s", def);
    for (const char *p = strstr(comment, want); p != NULL; p = strstr(p + 1, want)) {
        char next = p[strlen(want)];
        if (next == '\n' || next == '.' || next == ',' || next == ' ' || next == ')')
            return true;
    }
    return false;
}

/*
 * deploy/analyticsd.env.example cannot drift from the table: every variable appears exactly
 * once (as NAME= or #NAME=) and nothing else does; the comment above it gives the table's
 * default ("Default: <def>") and says "Needs a restart" exactly when the row is restart-only;
 * and the file, loaded as the server's --config file, is valid.
 */
static void test_env_example_matches_table(void **state)
{
    (void)state;
    const char *path = ANALYTICSD_SOURCE_DIR "/deploy/analyticsd.env.example";
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    char *lines[512];
    size_t n = 0;
    char buf[1024];
    while (fgets(buf, sizeof(buf), fp) != NULL) {
        assert_true(n < 512);
        buf[strcspn(buf, "\n")] = '\0';
        lines[n++] = strdup(buf);
    }
    fclose(fp);
    int seen[128] = {0};
    assert_true(config_var_count <= 128);
    for (size_t i = 0; i < n; i++) {
        char name[128];
        if (env_line_name(lines[i], name, sizeof(name)) == 0)
            continue; /* prose */
        const config_var *v = config_var_find(name);
        if (v == NULL)
            fail_msg("%s: %s is not in config_vars", path, name);
        seen[v - config_vars]++;
        char comment[4096];
        comment_above(lines, i, comment, sizeof(comment));
        if (v->def != NULL && !documents_default(comment, v->def))
            fail_msg("%s: the comment above %s does not say \"Default: %s\"", path, name, v->def);
        if ((strstr(comment, "Needs a restart") != NULL) != v->restart_only)
            fail_msg("%s: %s is %s but its comment %s \"Needs a restart\"", path, name,
                     v->restart_only ? "restart-only" : "reloadable",
                     v->restart_only ? "lacks" : "says");
    }
    for (size_t i = 0; i < config_var_count; i++) {
        if (seen[i] != 1)
            fail_msg("%s: %s appears %d times", path, config_vars[i].name, seen[i]);
    }
    for (size_t i = 0; i < n; i++)
        free(lines[i]);

    config_env_file *file = NULL;
    const char *error = NULL;
    assert_int_equal(config_env_file_load(path, &file, &error), 0);
    char *errs = NULL;
    size_t errlen = 0;
    FILE *err = open_memstream(&errs, &errlen);
    config cfg;
    assert_int_equal(config_load(&cfg, CONFIG_ROLE_SERVER, config_env_file_source(file), err), 0);
    fclose(err);
    assert_string_equal(errs, "");
    free(errs);
    config_free(&cfg);
    config_env_file_free(file);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_defaults),
        cmocka_unit_test(test_empty_means_default),
        cmocka_unit_test(test_server_values),
        cmocka_unit_test(test_migrate_reads_only_database_url),
        cmocka_unit_test(test_seed_reads_force_reset),
        cmocka_unit_test(test_database_url_required_all_roles),
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_sms_variables),
        cmocka_unit_test(test_app_host),
        cmocka_unit_test(test_metrics_bind),
        cmocka_unit_test(test_multiple_errors_in_order),
        cmocka_unit_test(test_secrets_never_printed),
        cmocka_unit_test(test_config_free_zeroed),
        cmocka_unit_test(test_bool),
        cmocka_unit_test(test_int64),
        cmocka_unit_test(test_duration_ok),
        cmocka_unit_test(test_duration_bad),
        cmocka_unit_test(test_redis_ok),
        cmocka_unit_test(test_redis_bad),
        cmocka_unit_test(test_env_file),
        cmocka_unit_test(test_env_file_with_config_load),
        cmocka_unit_test(test_env_file_errors),
        cmocka_unit_test(test_environ_source),
        cmocka_unit_test(test_log_variables),
        cmocka_unit_test(test_table_rows),
        cmocka_unit_test(test_table_defaults_parse_like_values),
        cmocka_unit_test(test_table_roles),
        cmocka_unit_test(test_reload_keeps_restart_only),
        cmocka_unit_test(test_env_example_matches_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
