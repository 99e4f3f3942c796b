/*
 * common/config.c: the configuration contract of CONFIG.md §1–§3 (see config.h).
 * Runs in the master (serve, and again on SIGHUP), migrate and seed; nothing here connects to
 * anything: DATABASE_URL is only checked with libpq's parser.
 *
 * Error order: config_load reports invalid variables in the order of the CONFIG.md §2 table
 * (APP_ENV, APP_PORT, APP_HOST, HTTP_WORKERS, APP_VERSION, DATABASE_URL, REDIS_URL,
 * MANAGEMENT_API_KEY, APP_AUTO_MIGRATE, APP_AUTO_SEED, MAX_REPORT_RANGE_DAYS, RECOMPUTE_LOCK_TTL,
 * RECOMPUTE_WORKERS, RECOMPUTE_QUEUE_SIZE, RECOMPUTE_MAX_PENDING, RECOMPUTE_MAX_ATTEMPTS,
 * HTTP_READ_TIMEOUT, HTTP_WRITE_TIMEOUT, HTTP_SHUTDOWN_TIMEOUT, LOG_FORMAT, ACCESS_LOG,
 * REPORT_LOCAL_CACHE_MB (ours, issue 16), then the SMS variables in the order of SMS.md §7,
 * SEED_FORCE_RESET), at most one line per variable. Messages not listed in §3.2 (our own choices):
 *   - "HTTP_WORKERS must be at least 1" (below the minimum of 1),
 *   - "APP_HOST must be an IP address" (not an IPv4/IPv6 literal),
 *   - "METRICS_BIND must be HOST:PORT ..." and "... must use a port other than APP_PORT"
 *     (METRICS_BIND is read right after APP_HOST),
 *   - "REDIS_URL is invalid: invalid percent-encoding" (bad %XX or %00 in the credentials).
 *   - "NATS_URL is invalid" (not a comma-separated list of nats:// or tls:// URLs with a host),
 *   - "NATS_CONSUMER must be a NATS name" (likewise the stream names: 1-255 printable ASCII
 *     bytes without '.', '*', '>' or whitespace),
 *   - "SMS_CACHE_TTL must be 0 or a positive duration ...",
 *   - "LOG_FORMAT must be json or text" (exact, lower case).
 * Values are never quoted in messages.
 */
#include "common/config.h"

#include "common/textutil.h"

#include "common/log.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define NS_PER_SEC INT64_C(1000000000)

/* ---- single-value parsers ------------------------------------------------------------------ */

/* CONFIG.md §3.3: exactly twelve spellings. */
int config_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (size_t i = 0; i < ARRAY_LEN(yes); i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

/* CONFIG.md §3.4: [+|-] digits, fitting in int64. The magnitude is accumulated unsigned. */
int config_parse_int64(const char *s, int64_t *out)
{
    bool neg = false;
    if (*s == '+' || *s == '-')
        neg = *s++ == '-';
    if (*s == '\0')
        return -1;
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t v = 0;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        unsigned d = (unsigned)(*s - '0');
        if (v > (limit - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (neg)
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    else
        *out = (int64_t)v;
    return 0;
}

/* Units of CONFIG.md §3.5; the two micro signs are U+00B5 and U+03BC in UTF-8. */
static const struct {
    const char *name;
    uint64_t ns;
} duration_units[] = {
    {"ns", 1},
    {"us", 1000},
    {"\xc2\xb5s", 1000},
    {"\xce\xbcs", 1000},
    {"ms", 1000000},
    {"s", 1000000000},
    {"m", UINT64_C(60) * 1000000000},
    {"h", UINT64_C(3600) * 1000000000},
};

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/*
 * floor(0.<digits> * unit) for the n fraction digits at p, exactly: multiply the decimal digit
 * string by unit from the right and keep what carries past the decimal point. The carry stays
 * below unit (<= 3.6e12), so each step fits easily in 64 bits.
 */
static uint64_t fraction_ns(const char *p, size_t n, uint64_t unit)
{
    uint64_t carry = 0;
    while (n-- > 0)
        carry = ((uint64_t)(p[n] - '0') * unit + carry) / 10;
    return carry;
}

/*
 * CONFIG.md §3.5 (Go's time.ParseDuration grammar). Every intermediate is kept at or below
 * INT64_MAX so the result fits; a sign is accepted by the grammar but any negative value (and
 * zero) is rejected because the value must be positive.
 */
int config_parse_duration(const char *s, int64_t *out_ns)
{
    const uint64_t max = (uint64_t)INT64_MAX;
    bool neg = false;
    if (*s == '+' || *s == '-')
        neg = *s++ == '-';
    if (strcmp(s, "0") == 0 || *s == '\0')
        return -1; /* "0" is valid syntax but not positive; "" / "+" / "-" are not durations */
    uint64_t total = 0;
    while (*s != '\0') {
        if (!(*s == '.' || is_digit(*s)))
            return -1;
        uint64_t v = 0;
        const char *int_start = s;
        for (; is_digit(*s); s++) {
            unsigned d = (unsigned)(*s - '0');
            if (v > (max - d) / 10)
                return -1;
            v = v * 10 + d;
        }
        bool pre = s > int_start;
        const char *frac = s;
        size_t frac_len = 0;
        if (*s == '.') {
            frac = ++s;
            while (is_digit(*s))
                s++;
            frac_len = (size_t)(s - frac);
        }
        if (!pre && frac_len == 0)
            return -1;
        const char *unit_start = s;
        while (*s != '\0' && *s != '.' && !is_digit(*s))
            s++;
        size_t unit_len = (size_t)(s - unit_start);
        uint64_t unit = 0;
        for (size_t i = 0; i < ARRAY_LEN(duration_units); i++) {
            if (strlen(duration_units[i].name) == unit_len &&
                memcmp(duration_units[i].name, unit_start, unit_len) == 0)
                unit = duration_units[i].ns;
        }
        if (unit == 0)
            return -1; /* missing or unknown unit */
        if (v > max / unit)
            return -1;
        v *= unit;
        uint64_t f = fraction_ns(frac, frac_len, unit);
        if (f > max - v)
            return -1;
        v += f;
        if (v > max - total)
            return -1;
        total += v;
    }
    if (neg || total == 0)
        return -1;
    *out_ns = (int64_t)total;
    return 0;
}

/* ---- REDIS_URL (CONFIG.md §3.7) ------------------------------------------------------------ */

/* Percent-decodes n bytes at p into a new string; NULL on a bad escape or an encoded NUL. */
static char *percent_decode(const char *p, size_t n)
{
    char *out = xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '%') {
            out[o++] = p[i];
            continue;
        }
        if (n - i < 3 || text_hex_value((unsigned char)p[i + 1]) < 0 ||
            text_hex_value((unsigned char)p[i + 2]) < 0) {
            free(out);
            return NULL;
        }
        char c = (char)(text_hex_value((unsigned char)p[i + 1]) * 16 +
                        text_hex_value((unsigned char)p[i + 2]));
        if (c == '\0') {
            free(out);
            return NULL;
        }
        out[o++] = c;
        i += 2;
    }
    out[o] = '\0';
    return out;
}

/* Non-empty decimal digits at p..p+n with value <= max; -1 otherwise. */
static int64_t parse_decimal(const char *p, size_t n, int64_t max)
{
    if (n == 0)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(p[i]) || v > (max - (p[i] - '0')) / 10)
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

/*
 * Check order when several problems exist: the scheme (case-insensitive, as in URLs) first, then
 * a '?' or '#' anywhere, then left to right: credentials, host, port, database number.
 * An empty username or password counts as absent. ":" with no port digits is an invalid port.
 */
int config_parse_redis_url(const char *s, config_redis *out, const char **reason)
{
    config_redis r = {0};
    const char *colon = strchr(s, ':');
    size_t scheme_len = colon ? (size_t)(colon - s) : 0;
    if (colon != NULL && scheme_len == 5 && strncasecmp(s, "redis", 5) == 0) {
        r.tls = false;
    } else if (colon != NULL && scheme_len == 6 && strncasecmp(s, "rediss", 6) == 0) {
        r.tls = true;
    } else {
        *reason = "unsupported scheme";
        return -1;
    }
    if (strpbrk(s, "?#") != NULL) {
        *reason = "query parameters are not supported";
        return -1;
    }
    if (strncmp(colon, "://", 3) != 0) {
        *reason = "missing host";
        return -1;
    }
    const char *auth = colon + 3;
    const char *path = strchr(auth, '/');
    const char *auth_end = path ? path : auth + strlen(auth);

    /* userinfo: everything before the last '@' of the authority */
    const char *host = auth;
    for (const char *p = auth; p < auth_end; p++) {
        if (*p == '@')
            host = p + 1;
    }
    if (host > auth) {
        const char *ui_end = host - 1;
        const char *sep = memchr(auth, ':', (size_t)(ui_end - auth));
        const char *user_end = sep ? sep : ui_end;
        if (user_end > auth)
            r.username = percent_decode(auth, (size_t)(user_end - auth));
        if (sep != NULL && ui_end > sep + 1)
            r.password = percent_decode(sep + 1, (size_t)(ui_end - sep - 1));
        if ((user_end > auth && r.username == NULL) ||
            (sep != NULL && ui_end > sep + 1 && r.password == NULL)) {
            config_redis_free(&r);
            *reason = "invalid percent-encoding";
            return -1;
        }
    }

    /* host [":" port] */
    const char *host_end;
    const char *after_host;
    if (host < auth_end && *host == '[') {
        const char *close = memchr(host, ']', (size_t)(auth_end - host));
        if (close == NULL || close == host + 1) {
            config_redis_free(&r);
            *reason = "missing host";
            return -1;
        }
        r.host = xstrndup(host + 1, (size_t)(close - host - 1));
        host_end = close;
        after_host = close + 1;
    } else {
        const char *c = memchr(host, ':', (size_t)(auth_end - host));
        host_end = c ? c : auth_end;
        after_host = host_end;
        if (host_end == host) {
            config_redis_free(&r);
            *reason = "missing host";
            return -1;
        }
        r.host = xstrndup(host, (size_t)(host_end - host));
    }
    r.port = 6379;
    if (after_host < auth_end) {
        int64_t port = -1;
        if (*after_host == ':')
            port = parse_decimal(after_host + 1, (size_t)(auth_end - after_host - 1), 65535);
        if (port < 1) {
            config_redis_free(&r);
            *reason = "invalid port";
            return -1;
        }
        r.port = (int)port;
    }

    /* "" | "/" | "/" digits */
    r.db = 0;
    if (path != NULL && path[1] != '\0') {
        r.db = parse_decimal(path + 1, strlen(path + 1), INT64_MAX);
        if (r.db < 0) {
            config_redis_free(&r);
            *reason = "invalid database number";
            return -1;
        }
    }
    *out = r;
    return 0;
}

void config_redis_free(config_redis *r)
{
    free(r->host);
    free(r->username);
    free(r->password);
    memset(r, 0, sizeof(*r));
}

/* ---- config_load ----------------------------------------------------------------------------- */

static const char *env_lookup(void *ctx, const char *name)
{
    (void)ctx;
    return getenv(name);
}

config_source config_source_environ(void)
{
    config_source s = {env_lookup, NULL};
    return s;
}

typedef struct loader {
    config_source src;
    FILE *err;
    int errors;
} loader;

static void report(loader *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(loader *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("configuration error: ", l->err);
    vfprintf(l->err, fmt, ap);
    fputc('\n', l->err);
    va_end(ap);
    l->errors++;
}

/* The variable's value, or NULL when it is unset or empty (both mean "use the default"). */
static const char *get(loader *l, const char *name)
{
    const char *v = l->src.lookup(l->src.ctx, name);
    return v != NULL && *v != '\0' ? v : NULL;
}

/* Text variables take any non-empty value; the default is filled in by config_load. */
static void load_text(loader *l, const char *name, char **out)
{
    const char *v = get(l, name);
    if (v != NULL)
        *out = xstrdup(v);
}

static void load_bool(loader *l, const char *name, bool def, bool *out)
{
    const char *v = get(l, name);
    *out = def;
    if (v != NULL && config_parse_bool(v, out) != 0)
        report(l, "%s must be a boolean (true/false, 1/0, t/f)", name);
}

/* below: the message suffix for values under min (CONFIG.md §3.2). */
static void load_int(loader *l, const char *name, int64_t def, int64_t min, int64_t max,
                     const char *below, int64_t *out)
{
    const char *v = get(l, name);
    int64_t n = def;
    *out = def;
    if (v == NULL)
        return;
    if (config_parse_int64(v, &n) != 0)
        report(l, "%s must be an integer", name);
    else if (n < min)
        report(l, "%s %s", name, below);
    else if (n > max)
        report(l, "%s must be at most %" PRId64, name, max);
    else
        *out = n;
}

static void load_duration(loader *l, const char *name, int64_t def, int64_t *out)
{
    const char *v = get(l, name);
    *out = def;
    if (v != NULL && config_parse_duration(v, out) != 0)
        report(l, "%s must be a positive duration (for example 10s, 1.5m, 300ms)", name);
}

static void load_database_url(loader *l, config *cfg)
{
    const char *v = get(l, "DATABASE_URL");
    if (v == NULL) {
        report(l, "DATABASE_URL is required");
        return;
    }
    char *errmsg = NULL;
    PQconninfoOption *opts = PQconninfoParse(v, &errmsg);
    if (opts == NULL) {
        report(l, "DATABASE_URL is invalid"); /* libpq's message may quote the string: dropped */
        if (errmsg != NULL)
            PQfreemem(errmsg);
        return;
    }
    PQconninfoFree(opts);
    cfg->database_url = xstrdup(v);
}

static void load_redis_url(loader *l, config *cfg)
{
    const char *v = get(l, "REDIS_URL");
    if (v == NULL) {
        report(l, "REDIS_URL is required");
        return;
    }
    const char *reason = NULL;
    if (config_parse_redis_url(v, &cfg->redis, &reason) != 0) {
        report(l, "REDIS_URL is invalid: %s", reason);
        return;
    }
    cfg->redis_url = xstrdup(v);
}

/* CONFIG.md §3.8: whitespace at either end is checked first, then control characters. */
static void load_management_key(loader *l, config *cfg)
{
    const char *v = get(l, "MANAGEMENT_API_KEY");
    if (v == NULL)
        return; /* default "change-me", filled in by config_load */
    size_t n = strlen(v);
    if (v[0] == ' ' || v[0] == '\t' || v[n - 1] == ' ' || v[n - 1] == '\t') {
        report(l, "MANAGEMENT_API_KEY must not start or end with whitespace");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c == 0x7f) {
            report(l, "MANAGEMENT_API_KEY must not contain control characters");
            return;
        }
    }
    cfg->management_key = xstrdup(v);
    cfg->management_key_is_default = false;
}

static void load_app_host(loader *l, config *cfg)
{
    const char *v = get(l, "APP_HOST");
    if (v == NULL)
        return; /* all interfaces */
    unsigned char buf[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, v, buf) != 1 && inet_pton(AF_INET6, v, buf) != 1) {
        report(l, "APP_HOST must be an IP address");
        return;
    }
    cfg->app_host = xstrdup(v);
}

/*
 * METRICS_BIND (README, "Metrics"): "HOST:PORT", "[IPV6]:PORT" or ":PORT" (all interfaces);
 * the port must not be APP_PORT. Unset: GET /metrics is served on APP_PORT.
 */
static void load_metrics_bind(loader *l, config *cfg)
{
    const char *v = get(l, "METRICS_BIND");
    if (v == NULL)
        return;
    const char *colon = strrchr(v, ':');
    size_t hlen = colon != NULL ? (size_t)(colon - v) : 0;
    int bracketed = hlen >= 2 && v[0] == '[' && v[hlen - 1] == ']';
    char host[64] = "";
    if (hlen < sizeof(host)) {
        memcpy(host, v + bracketed, hlen - 2 * bracketed);
        host[hlen - 2 * bracketed] = '\0';
    }
    unsigned char buf[sizeof(struct in6_addr)];
    int family = strchr(host, ':') != NULL ? AF_INET6 : AF_INET; /* IPv6 only in brackets */
    int64_t port = 0;
    if (colon == NULL || hlen >= sizeof(host) || (family == AF_INET6) != bracketed ||
        (host[0] != '\0' && inet_pton(family, host, buf) != 1) ||
        config_parse_int64(colon + 1, &port) != 0 || port < 1 || port > 65535) {
        report(l, "METRICS_BIND must be HOST:PORT with an IP address and a port between 1 and "
                  "65535");
        return;
    }
    if (port == cfg->app_port) {
        report(l, "METRICS_BIND must use a port other than APP_PORT");
        return;
    }
    cfg->metrics_port = (int)port;
    cfg->metrics_host = host[0] != '\0' ? xstrdup(host) : NULL;
}

static void load_app_port(loader *l, config *cfg)
{
    const char *v = get(l, "APP_PORT");
    int64_t n = 3004;
    if (v != NULL && (config_parse_int64(v, &n) != 0 || n < 1 || n > 65535)) {
        report(l, "APP_PORT must be an integer between 1 and 65535");
        n = 3004;
    }
    cfg->app_port = (int)n;
}

static int64_t online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 256 ? 256 : n;
}

/* LOG_FORMAT: exactly "text" or "json". */
static void load_log_format(loader *l, config *cfg)
{
    const char *v = get(l, "LOG_FORMAT");
    cfg->log_format = LOG_FORMAT_TEXT;
    if (v == NULL || strcmp(v, "text") == 0)
        return;
    if (strcmp(v, "json") == 0)
        cfg->log_format = LOG_FORMAT_JSON;
    else
        report(l, "LOG_FORMAT must be json or text");
}

/* NATS_URL: a comma-separated list of nats:// or tls:// URLs, each with a host. */
static void load_nats_url(loader *l, config *cfg)
{
    const char *v = get(l, "NATS_URL");
    if (v == NULL)
        return; /* NATS ingestion off */
    const char *p = v;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        size_t skip = n > 7 && strncasecmp(p, "nats://", 7) == 0  ? 7
                      : n > 6 && strncasecmp(p, "tls://", 6) == 0 ? 6
                                                                  : 0;
        if (skip == 0 || p[skip] == ':' || p[skip] == '/') {
            report(l, "NATS_URL is invalid"); /* the URL may carry credentials: not quoted */
            return;
        }
        if (end == NULL)
            break;
        p = end + 1;
    }
    cfg->nats_url = xstrdup(v);
}

/* Stream and consumer names: what JetStream accepts in an API subject token. */
static void load_nats_name(loader *l, const char *name, char **out)
{
    const char *v = get(l, name);
    if (v == NULL)
        return; /* default filled in by config_load */
    size_t n = strlen(v);
    bool ok = n <= 255;
    for (size_t i = 0; ok && i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        ok = c > 0x20 && c < 0x7f && c != '.' && c != '*' && c != '>';
    }
    if (!ok)
        report(l, "%s must be a NATS name (printable ASCII without '.', '*', '>' or spaces)", name);
    else
        *out = xstrdup(v);
}

/* A duration that may also be exactly "0" (off). */
static void load_duration_or_zero(loader *l, const char *name, int64_t def, int64_t *out)
{
    const char *v = get(l, name);
    *out = def;
    if (v != NULL && strcmp(v, "0") == 0)
        *out = 0;
    else if (v != NULL && config_parse_duration(v, out) != 0)
        report(l, "%s must be 0 or a positive duration (for example 5s, 500ms)", name);
}

/* Read by the server and by the seed (its demo events must be inside the retention). */
static void load_sms_hourly_retention(loader *l, config *cfg)
{
    load_int(l, "SMS_HOURLY_RETENTION_DAYS", 90, 1, 36500, "must be at least 1",
             &cfg->sms_hourly_retention_days);
}

/* SMS.md §7, in that order. */
static void load_sms(loader *l, config *cfg)
{
    int64_t n;
    load_nats_url(l, cfg);
    load_nats_name(l, "NATS_CONSUMER", &cfg->nats_consumer);
    load_nats_name(l, "NATS_BILLING_STREAM", &cfg->nats_billing_stream);
    load_nats_name(l, "NATS_DLR_STREAM", &cfg->nats_dlr_stream);
    load_bool(l, "NATS_CREATE_STREAMS", false, &cfg->nats_create_streams);
    load_int(l, "INGEST_WORKERS", 1, 1, 64, "must be at least 1", &n);
    cfg->ingest_workers = (int)n;
    load_int(l, "SMS_INGEST_BATCH", 500, 1, 10000, "must be at least 1", &n);
    cfg->sms_ingest_batch = (int)n;
    load_duration_or_zero(l, "SMS_CACHE_TTL", 5 * NS_PER_SEC, &cfg->sms_cache_ttl_ns);
    load_duration(l, "SMS_ROLLUP_INTERVAL", 60 * NS_PER_SEC, &cfg->sms_rollup_interval_ns);
    load_sms_hourly_retention(l, cfg);
    load_int(l, "SMS_DAILY_RETENTION_DAYS", 365, 1, 36500, "must be at least 1",
             &cfg->sms_daily_retention_days);
    load_duration(l, "SMS_DEDUPE_RETENTION", 48 * 3600 * NS_PER_SEC, &cfg->sms_dedupe_retention_ns);
}

/* Every variable the server reads, in §2 order (SEED_FORCE_RESET is the seed's). */
static void load_server(loader *l, config *cfg)
{
    int64_t n;
    load_text(l, "APP_ENV", &cfg->app_env);
    load_app_port(l, cfg);
    load_app_host(l, cfg);
    load_metrics_bind(l, cfg);
    /* Below 1: "HTTP_WORKERS must be at least 1" (no message in §3.2; same form as the others). */
    load_int(l, "HTTP_WORKERS", online_cpus(), 1, 256, "must be at least 1", &n);
    cfg->http_workers = (int)n;
    load_text(l, "APP_VERSION", &cfg->app_version);
    load_database_url(l, cfg);
    load_redis_url(l, cfg);
    load_management_key(l, cfg);
    load_bool(l, "APP_AUTO_MIGRATE", true, &cfg->auto_migrate);
    load_bool(l, "APP_AUTO_SEED", false, &cfg->auto_seed);
    load_int(l, "MAX_REPORT_RANGE_DAYS", 366, 1, INT32_MAX, "must be positive",
             &cfg->max_report_range_days);
    load_duration(l, "RECOMPUTE_LOCK_TTL", 15 * 60 * NS_PER_SEC, &cfg->recompute_lock_ttl_ns);
    load_int(l, "RECOMPUTE_WORKERS", 1, 1, 64, "must be at least 1", &n);
    cfg->recompute_workers = (int)n;
    load_int(l, "RECOMPUTE_QUEUE_SIZE", 64, 1, 65536, "must be at least 1", &n);
    cfg->recompute_queue_size = (int)n;
    load_int(l, "RECOMPUTE_MAX_PENDING", 1000, 1, INT32_MAX, "must be at least 1",
             &cfg->recompute_max_pending);
    load_int(l, "RECOMPUTE_MAX_ATTEMPTS", 3, 1, 100, "must be at least 1", &n);
    cfg->recompute_max_attempts = (int)n;
    load_duration(l, "HTTP_READ_TIMEOUT", 10 * NS_PER_SEC, &cfg->http_read_timeout_ns);
    load_duration(l, "HTTP_WRITE_TIMEOUT", 20 * NS_PER_SEC, &cfg->http_write_timeout_ns);
    load_duration(l, "HTTP_SHUTDOWN_TIMEOUT", 15 * NS_PER_SEC, &cfg->http_shutdown_timeout_ns);
    load_log_format(l, cfg);
    load_bool(l, "ACCESS_LOG", false, &cfg->access_log);
    load_int(l, "REPORT_LOCAL_CACHE_MB", 64, 0, 65536, "must be 0 or more",
             &cfg->report_local_cache_mb);
    load_sms(l, cfg);
}

/*
 * Every scalar gets its default first (strings after loading), so roles that do not read a
 * variable still see its default.
 */
static void set_defaults(config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->app_port = 3004;
    cfg->http_workers = (int)online_cpus();
    cfg->management_key_is_default = true;
    cfg->auto_migrate = true;
    cfg->auto_seed = false;
    cfg->max_report_range_days = 366;
    cfg->recompute_lock_ttl_ns = 15 * 60 * NS_PER_SEC;
    cfg->recompute_workers = 1;
    cfg->recompute_queue_size = 64;
    cfg->recompute_max_pending = 1000;
    cfg->recompute_max_attempts = 3;
    cfg->http_read_timeout_ns = 10 * NS_PER_SEC;
    cfg->http_write_timeout_ns = 20 * NS_PER_SEC;
    cfg->http_shutdown_timeout_ns = 15 * NS_PER_SEC;
    cfg->log_format = LOG_FORMAT_TEXT;
    cfg->access_log = false;
    cfg->report_local_cache_mb = 64;
    cfg->seed_force_reset = false;
    cfg->nats_create_streams = false;
    cfg->ingest_workers = 1;
    cfg->sms_ingest_batch = 500;
    cfg->sms_cache_ttl_ns = 5 * NS_PER_SEC;
    cfg->sms_rollup_interval_ns = 60 * NS_PER_SEC;
    cfg->sms_hourly_retention_days = 90;
    cfg->sms_daily_retention_days = 365;
    cfg->sms_dedupe_retention_ns = 48 * 3600 * NS_PER_SEC;
}

int config_load(config *cfg, config_role role, config_source src, FILE *err)
{
    loader l = {src, err, 0};
    set_defaults(cfg);
    switch (role) {
    case CONFIG_ROLE_SERVER:
        load_server(&l, cfg);
        break;
    case CONFIG_ROLE_MIGRATE:
        load_database_url(&l, cfg);
        break;
    case CONFIG_ROLE_SEED:
        load_database_url(&l, cfg);
        load_bool(&l, "SEED_FORCE_RESET", false, &cfg->seed_force_reset);
        load_sms_hourly_retention(&l, cfg);
        break;
    }
    if (cfg->app_env == NULL)
        cfg->app_env = xstrdup("development");
    if (cfg->app_version == NULL)
        cfg->app_version = xstrdup("dev");
    if (cfg->management_key == NULL)
        cfg->management_key = xstrdup("change-me");
    if (cfg->nats_consumer == NULL)
        cfg->nats_consumer = xstrdup("analytics-service");
    if (cfg->nats_billing_stream == NULL)
        cfg->nats_billing_stream = xstrdup("BILLING");
    if (cfg->nats_dlr_stream == NULL)
        cfg->nats_dlr_stream = xstrdup("SMS_DLR");
    fflush(err);
    return l.errors == 0 ? 0 : -1;
}

void config_free(config *cfg)
{
    free(cfg->app_env);
    free(cfg->app_host);
    free(cfg->metrics_host);
    free(cfg->app_version);
    free(cfg->database_url);
    free(cfg->redis_url);
    config_redis_free(&cfg->redis);
    free(cfg->management_key);
    free(cfg->nats_url);
    free(cfg->nats_consumer);
    free(cfg->nats_billing_stream);
    free(cfg->nats_dlr_stream);
    memset(cfg, 0, sizeof(*cfg));
}

/* ---- environment files ----------------------------------------------------------------------- */

struct config_env_file {
    size_t n, cap;
    char **keys;
    char **values;
};

static void env_file_set(config_env_file *f, char *key, char *value)
{
    for (size_t i = 0; i < f->n; i++) {
        if (strcmp(f->keys[i], key) == 0) { /* a later line wins */
            free(key);
            free(f->values[i]);
            f->values[i] = value;
            return;
        }
    }
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 16;
        f->keys = xrealloc(f->keys, f->cap * sizeof(*f->keys));
        f->values = xrealloc(f->values, f->cap * sizeof(*f->values));
    }
    f->keys[f->n] = key;
    f->values[f->n] = value;
    f->n++;
}

/*
 * A value wrapped in matching quotes loses them; inside double quotes \" and \\ stand for " and
 * \ (any other backslash is kept as is). Anything else is taken literally.
 */
static char *env_file_value(const char *v, size_t n)
{
    if (n >= 2 && v[0] == '\'' && v[n - 1] == '\'')
        return xstrndup(v + 1, n - 2);
    if (n < 2 || v[0] != '"' || v[n - 1] != '"')
        return xstrndup(v, n);
    char *out = xmalloc(n);
    size_t o = 0;
    for (size_t i = 1; i < n - 1; i++) {
        if (v[i] == '\\' && i + 1 < n - 1 && (v[i + 1] == '"' || v[i + 1] == '\\'))
            i++;
        out[o++] = v[i];
    }
    out[o] = '\0';
    return out;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* One line without its line ending. Lines without '=' or with an empty key are skipped. */
static void env_file_line(config_env_file *f, const char *path, int lineno, char *line)
{
    while (is_blank(*line))
        line++;
    if (*line == '\0' || *line == '#' || *line == ';')
        return;
    char *eq = strchr(line, '=');
    char *key_end = eq ? eq : line;
    while (key_end > line && is_blank(key_end[-1]))
        key_end--;
    if (eq == NULL || key_end == line) {
        log_warn("config file %s: line %d ignored (not KEY=VALUE)", path, lineno);
        return;
    }
    env_file_set(f, xstrndup(line, (size_t)(key_end - line)),
                 env_file_value(eq + 1, strlen(eq + 1)));
}

int config_env_file_load(const char *path, config_env_file **out, const char **error)
{
    *out = NULL;
    FILE *fp = fopen(path, "r");
    if (fp == NULL) {
        *error = errno == ENOENT   ? "file not found"
                 : errno == EACCES ? "permission denied"
                                   : "cannot be read";
        return -1;
    }
    config_env_file *f = xcalloc(1, sizeof(*f));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0;
    errno = 0;
    while ((len = getline(&line, &cap, fp)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        env_file_line(f, path, lineno, line);
        errno = 0;
    }
    bool failed = ferror(fp) || errno != 0;
    free(line);
    fclose(fp);
    if (failed) {
        config_env_file_free(f);
        *error = "cannot be read";
        return -1;
    }
    *out = f;
    return 0;
}

static const char *env_file_lookup(void *ctx, const char *name)
{
    config_env_file *f = ctx;
    for (size_t i = 0; i < f->n; i++) {
        if (strcmp(f->keys[i], name) == 0)
            return f->values[i];
    }
    return getenv(name);
}

config_source config_env_file_source(config_env_file *f)
{
    config_source s = {env_file_lookup, f};
    return s;
}

void config_env_file_free(config_env_file *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->n; i++) {
        free(f->keys[i]);
        free(f->values[i]);
    }
    free(f->keys);
    free(f->values);
    free(f);
}
