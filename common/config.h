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
#include <stddef.h>
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

/*
 * The parsed variables. Defaults, ranges and the programs that read each one are in the table
 * of config.c (config_vars), nowhere else; a field a program does not read holds its default.
 */
typedef struct config {
    char *app_env;                    /* APP_ENV */
    int app_port;                     /* APP_PORT */
    char *app_host;                   /* APP_HOST, NULL = all interfaces */
    int metrics_port;                 /* METRICS_BIND port; 0 (unset) = GET /metrics on APP_PORT */
    char *metrics_host;               /* METRICS_BIND host, NULL = all interfaces */
    int http_workers;                 /* HTTP_WORKERS */
    char *app_version;                /* APP_VERSION */
    char *database_url;               /* DATABASE_URL, required by every role */
    char *redis_url;                  /* REDIS_URL (raw), required by the server */
    config_redis redis;               /* REDIS_URL decoded (server only) */
    char *management_key;             /* MANAGEMENT_API_KEY */
    bool management_key_is_default;   /* the table's default is in effect */
    bool auto_migrate;                /* APP_AUTO_MIGRATE */
    bool auto_seed;                   /* APP_AUTO_SEED */
    int64_t max_report_range_days;    /* MAX_REPORT_RANGE_DAYS */
    int64_t recompute_lock_ttl_ns;    /* RECOMPUTE_LOCK_TTL */
    int recompute_workers;            /* RECOMPUTE_WORKERS */
    int recompute_queue_size;         /* RECOMPUTE_QUEUE_SIZE */
    int64_t recompute_max_pending;    /* RECOMPUTE_MAX_PENDING */
    int recompute_max_attempts;       /* RECOMPUTE_MAX_ATTEMPTS */
    int64_t http_read_timeout_ns;     /* HTTP_READ_TIMEOUT */
    int64_t http_write_timeout_ns;    /* HTTP_WRITE_TIMEOUT */
    int64_t http_shutdown_timeout_ns; /* HTTP_SHUTDOWN_TIMEOUT */
    int log_format;                   /* LOG_FORMAT (log_format of log.h) */
    bool access_log;                  /* ACCESS_LOG */
    int64_t report_local_cache_mb;    /* REPORT_LOCAL_CACHE_MB (64, 0 = no local copies) */
    bool seed_force_reset;            /* SEED_FORCE_RESET (seed only) */
    /* SMS delivery analytics (SMS.md §4, §7) */
    char *nats_url;                    /* NATS_URL, NULL = NATS ingestion off */
    char *nats_consumer;               /* NATS_CONSUMER */
    char *nats_billing_stream;         /* NATS_BILLING_STREAM */
    char *nats_dlr_stream;             /* NATS_DLR_STREAM */
    bool nats_create_streams;          /* NATS_CREATE_STREAMS */
    int ingest_workers;                /* INGEST_WORKERS (only when nats_url is set) */
    int sms_ingest_batch;              /* SMS_INGEST_BATCH */
    int64_t sms_cache_ttl_ns;          /* SMS_CACHE_TTL, 0 = no caching */
    int64_t sms_rollup_interval_ns;    /* SMS_ROLLUP_INTERVAL */
    int64_t sms_hourly_retention_days; /* SMS_HOURLY_RETENTION_DAYS */
    int64_t sms_daily_retention_days;  /* SMS_DAILY_RETENTION_DAYS */
    int64_t sms_dedupe_retention_ns;   /* SMS_DEDUPE_RETENTION */
} config;

/* ---- the table of variables (config.c) ---- */

/* Which programs read a variable (CONFIG.md §1): one bit per config_role. */
#define CONFIG_READ_BY(role) (1u << (role))

typedef enum {
    CONFIG_KIND_TEXT,             /* any non-empty value */
    CONFIG_KIND_BOOL,             /* CONFIG.md §3.3 */
    CONFIG_KIND_INT,              /* §3.4, then min..max ("below" is the message under min) */
    CONFIG_KIND_PORT,             /* 1-65535, one message for every failure */
    CONFIG_KIND_DURATION,         /* §3.5, > 0, in ns */
    CONFIG_KIND_DURATION_OR_ZERO, /* a duration, or exactly "0" (off) */
    CONFIG_KIND_SPECIAL,          /* its own parser (addresses, URLs, the key, names, formats) */
} config_kind;

/* The C type of a field of struct config a variable is stored in. */
typedef enum {
    CONFIG_FIELD_NONE, /* no (second) field */
    CONFIG_FIELD_STR,  /* char *, owned by the config */
    CONFIG_FIELD_BOOL,
    CONFIG_FIELD_INT,
    CONFIG_FIELD_I64,
} config_field_type;

typedef struct config_loader config_loader;
typedef struct config_var config_var;

struct config_var {
    const char *name;
    config_kind kind;
    const char *def;         /* default, as written in the environment; NULL: none or def_fn */
    int64_t (*def_fn)(void); /* a default computed at load time (HTTP_WORKERS) */
    int64_t min, max;        /* CONFIG_KIND_INT */
    const char *below;       /* CONFIG_KIND_INT: "<NAME> <below>" under min */
    unsigned read_by;        /* CONFIG_READ_BY bits */
    bool required;           /* unset or empty: "<NAME> is required" */
    bool restart_only;       /* a reload keeps the running value (config_keep_restart_only) */
    size_t field;            /* offsetof(config, ...) */
    config_field_type type;
    size_t field2; /* a second field the variable sets (METRICS_BIND's host), type2 NONE if none */
    config_field_type type2;
    /* CONFIG_KIND_SPECIAL: parses and stores v; 0, or -1 after reporting one error. */
    int (*parse)(config_loader *l, const config_var *var, const char *v, config *cfg);
};

extern const config_var config_vars[]; /* in error-report order */
extern const size_t config_var_count;

/* The row of the variable called name, or NULL. */
const config_var *config_var_find(const char *name);

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

/*
 * The reload diff: for every restart-only variable whose value differs between the running
 * config and the next one, calls changed(var, ctx) (may be NULL) and puts the running value
 * into next, so the new HTTP workers see what the rest of the service was started with.
 * Returns the number of such variables. Cannot fail (OOM aborts).
 */
int config_keep_restart_only(const config *running, config *next,
                             void (*changed)(const config_var *var, void *ctx), void *ctx);

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
