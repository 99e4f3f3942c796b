/*
 * common/config.h: the environment contract of CONFIG.md §2–§3, parsed and validated.
 * Used by the master (serve, and again on SIGHUP), migrate and seed; children inherit the
 * parsed struct across fork.
 *
 * A program validates only the variables its role reads (CONFIG.md §1). Every problem found is
 * reported as one "configuration error: <message>" line; the caller then exits 1.
 */
#ifndef ANALYTICSD_CONFIG_H
#define ANALYTICSD_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef enum { CONFIG_ROLE_SERVER, CONFIG_ROLE_MIGRATE, CONFIG_ROLE_SEED } config_role;

/* REDIS_URL, decoded (CONFIG.md §3.7). Strings are heap copies owned by the config. */
typedef struct config_redis {
    bool tls;       /* rediss:// */
    char *host;     /* without brackets for IPv6 */
    int port;       /* default 6379 */
    int64_t db;     /* default 0 */
    char *username; /* percent-decoded; NULL when absent */
    char *password; /* percent-decoded; NULL when absent (then no AUTH) */
} config_redis;

typedef struct config {
    char *app_env;        /* APP_ENV, default "development" */
    int app_port;         /* APP_PORT, default 3004 */
    char *app_host;       /* APP_HOST, NULL = all interfaces */
    int metrics_port;     /* METRICS_BIND port; 0 (default) = GET /metrics on APP_PORT */
    char *metrics_host;   /* METRICS_BIND host, NULL = all interfaces */
    int http_workers;     /* HTTP_WORKERS, default = online CPUs */
    char *app_version;    /* APP_VERSION, default "dev" */
    char *database_url;   /* DATABASE_URL, required by every role */
    char *redis_url;      /* REDIS_URL (raw), required by the server */
    config_redis redis;   /* REDIS_URL decoded (server only) */
    char *management_key; /* MANAGEMENT_API_KEY, default "change-me" */
    bool management_key_is_default;
    bool auto_migrate;                /* APP_AUTO_MIGRATE, default true */
    bool auto_seed;                   /* APP_AUTO_SEED, default false */
    int64_t max_report_range_days;    /* MAX_REPORT_RANGE_DAYS, default 366 */
    int64_t recompute_lock_ttl_ns;    /* RECOMPUTE_LOCK_TTL, default 15m */
    int recompute_workers;            /* RECOMPUTE_WORKERS, default 1 */
    int recompute_queue_size;         /* RECOMPUTE_QUEUE_SIZE, default 64 */
    int64_t recompute_max_pending;    /* RECOMPUTE_MAX_PENDING, default 1000 */
    int recompute_max_attempts;       /* RECOMPUTE_MAX_ATTEMPTS, default 3 */
    int64_t http_read_timeout_ns;     /* HTTP_READ_TIMEOUT, default 10s */
    int64_t http_write_timeout_ns;    /* HTTP_WRITE_TIMEOUT, default 20s */
    int64_t http_shutdown_timeout_ns; /* HTTP_SHUTDOWN_TIMEOUT, default 15s */
    int log_format;                   /* LOG_FORMAT (log_format of log.h), default text */
    bool access_log;                  /* ACCESS_LOG, default false */
    int64_t report_local_cache_mb;    /* REPORT_LOCAL_CACHE_MB, default 64, 0 = no local copies */
    bool seed_force_reset;            /* SEED_FORCE_RESET (seed only), default false */
    /* SMS delivery analytics (SMS.md §4, §7) */
    char *nats_url;                    /* NATS_URL, NULL = NATS ingestion off */
    char *nats_consumer;               /* NATS_CONSUMER, default "analytics-service" */
    char *nats_billing_stream;         /* NATS_BILLING_STREAM, default "BILLING" */
    char *nats_dlr_stream;             /* NATS_DLR_STREAM, default "SMS_DLR" */
    bool nats_create_streams;          /* NATS_CREATE_STREAMS, default false */
    int ingest_workers;                /* INGEST_WORKERS, default 1 (only when nats_url is set) */
    int sms_ingest_batch;              /* SMS_INGEST_BATCH, default 500 */
    int64_t sms_cache_ttl_ns;          /* SMS_CACHE_TTL, default 5s, 0 = no caching */
    int64_t sms_rollup_interval_ns;    /* SMS_ROLLUP_INTERVAL, default 60s */
    int64_t sms_hourly_retention_days; /* SMS_HOURLY_RETENTION_DAYS, default 90 */
    int64_t sms_daily_retention_days;  /* SMS_DAILY_RETENTION_DAYS, default 365 */
    int64_t sms_dedupe_retention_ns;   /* SMS_DEDUPE_RETENTION, default 48h */
} config;

/*
 * Where variable values come from: lookup(ctx, name) returns the value or NULL when unset.
 * config_source_environ() reads the process environment.
 */
typedef struct config_source {
    const char *(*lookup)(void *ctx, const char *name);
    void *ctx;
} config_source;

config_source config_source_environ(void);

/*
 * Fills *cfg from src for the given role. Returns 0 when every variable the role reads is
 * valid. Otherwise writes one "configuration error: <message>\n" line per invalid variable to
 * err (messages exactly as CONFIG.md §3.2; secrets never quoted), leaves *cfg partially filled
 * (still safe to pass to config_free) and returns -1. Never connects to anything.
 */
int config_load(config *cfg, config_role role, config_source src, FILE *err);

/* Frees every string the config owns and zeroes it. Safe on a zeroed or partial config. */
void config_free(config *cfg);

/* Single-value parsers (CONFIG.md §3.3–3.5, §3.7); each returns 0 on success, -1 if invalid. */
int config_parse_bool(const char *s, bool *out);
int config_parse_int64(const char *s, int64_t *out);
int config_parse_duration(const char *s, int64_t *out_ns); /* also rejects values <= 0 */
/* On failure *reason is one of the §3.7 reasons ("unsupported scheme", "missing host", ...). */
int config_parse_redis_url(const char *s, config_redis *out, const char **reason);
void config_redis_free(config_redis *r);

/*
 * Reads a systemd-style environment file (KEY=VALUE lines, '#' comments, optional quotes) into
 * a source whose lookup falls back to the process environment for names the file lacks.
 * Returns 0, or -1 with a message in *error (static text) when the file cannot be read.
 * config_env_file_free releases it.
 */
typedef struct config_env_file config_env_file;
int config_env_file_load(const char *path, config_env_file **out, const char **error);
config_source config_env_file_source(config_env_file *f);
void config_env_file_free(config_env_file *f);

#endif
