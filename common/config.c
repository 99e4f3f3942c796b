/*
 * common/config.c: the configuration contract of CONFIG.md §1–§3 (see config.h).
 * Runs in the master (serve, and again on SIGHUP), migrate and seed; nothing here connects to
 * anything: DATABASE_URL is only checked with libpq's parser.
 *
 * One table, config_vars (below), drives parsing, defaults, the reload diff and the check of
 * deploy/analyticsd.env.example. Error order: config_load reports invalid variables in the
 * table's order, which is that of the CONFIG.md §2 table followed by LOG_FORMAT, ACCESS_LOG,
 * REPORT_LOCAL_CACHE_MB (ours, issue 16),
 * SEED_FORCE_RESET and the SMS variables in the order of SMS.md §7; at most one line per
 * variable.
 * Messages not listed in §3.2 (our own choices):
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
    size_t len;
    if (text_percent_decode(p, n, false, out, &len) != 0 || memchr(out, '\0', len) != NULL) {
        free(out);
        return NULL;
    }
    out[len] = '\0';
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

struct config_loader {
    config_source src;
    FILE *err;
    int errors;
    bool defaults; /* applying the table's defaults, not values from src */
};
typedef config_loader loader;

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

/* ---- fields of struct config, addressed by the table ---------------------------------------- */

static void *field_at(config *cfg, size_t offset)
{
    return (char *)cfg + offset;
}

static const void *field_at_const(const config *cfg, size_t offset)
{
    return (const char *)cfg + offset;
}

/* Replaces the string at offset by a copy of s (NULL allowed); the old one is freed. */
static void store_str(config *cfg, size_t offset, const char *s)
{
    char **p = field_at(cfg, offset);
    free(*p);
    *p = s != NULL ? xstrdup(s) : NULL;
}

/* Stores n into the variable's integer field (int or int64_t; n is within the row's range). */
static void store_int(config *cfg, const config_var *var, int64_t n)
{
    if (var->type == CONFIG_FIELD_INT)
        *(int *)field_at(cfg, var->field) = (int)n;
    else
        *(int64_t *)field_at(cfg, var->field) = n;
}

static bool field_equal(const config *a, const config *b, size_t offset, config_field_type type)
{
    const void *pa = field_at_const(a, offset), *pb = field_at_const(b, offset);
    switch (type) {
    case CONFIG_FIELD_NONE:
        return true;
    case CONFIG_FIELD_STR: {
        const char *sa = *(char *const *)pa, *sb = *(char *const *)pb;
        return sa == sb || (sa != NULL && sb != NULL && strcmp(sa, sb) == 0);
    }
    case CONFIG_FIELD_BOOL:
        return *(const bool *)pa == *(const bool *)pb;
    case CONFIG_FIELD_INT:
        return *(const int *)pa == *(const int *)pb;
    case CONFIG_FIELD_I64:
        return *(const int64_t *)pa == *(const int64_t *)pb;
    }
    return false;
}

static void field_copy(config *to, const config *from, size_t offset, config_field_type type)
{
    switch (type) {
    case CONFIG_FIELD_NONE:
        break;
    case CONFIG_FIELD_STR:
        store_str(to, offset, *(char *const *)field_at_const(from, offset));
        break;
    case CONFIG_FIELD_BOOL:
        *(bool *)field_at(to, offset) = *(const bool *)field_at_const(from, offset);
        break;
    case CONFIG_FIELD_INT:
        *(int *)field_at(to, offset) = *(const int *)field_at_const(from, offset);
        break;
    case CONFIG_FIELD_I64:
        *(int64_t *)field_at(to, offset) = *(const int64_t *)field_at_const(from, offset);
        break;
    }
}

/* ---- parsers of the variables with their own syntax (CONFIG_KIND_SPECIAL) -------------------- */

/* CONFIG.md §3.6: checked with libpq's parser, without connecting. */
static int parse_database_url(loader *l, const config_var *var, const char *v, config *cfg)
{
    char *errmsg = NULL;
    PQconninfoOption *opts = PQconninfoParse(v, &errmsg);
    if (opts == NULL) {
        report(l, "%s is invalid", var->name); /* libpq's message may quote the string: dropped */
        if (errmsg != NULL)
            PQfreemem(errmsg);
        return -1;
    }
    PQconninfoFree(opts);
    store_str(cfg, var->field, v);
    return 0;
}

/* CONFIG.md §3.7: the raw URL and its decoded form (cfg->redis). */
static int parse_redis_url(loader *l, const config_var *var, const char *v, config *cfg)
{
    const char *reason = NULL;
    config_redis_free(&cfg->redis);
    if (config_parse_redis_url(v, &cfg->redis, &reason) != 0) {
        report(l, "%s is invalid: %s", var->name, reason);
        return -1;
    }
    store_str(cfg, var->field, v);
    return 0;
}

/*
 * CONFIG.md §3.8: whitespace at either end is checked first, then control characters. The
 * table's default counts as "the default is in effect" (a warning at startup); the same text
 * set explicitly does not.
 */
static int parse_management_key(loader *l, const config_var *var, const char *v, config *cfg)
{
    size_t n = strlen(v);
    if (v[0] == ' ' || v[0] == '\t' || v[n - 1] == ' ' || v[n - 1] == '\t') {
        report(l, "%s must not start or end with whitespace", var->name);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c == 0x7f) {
            report(l, "%s must not contain control characters", var->name);
            return -1;
        }
    }
    store_str(cfg, var->field, v);
    cfg->management_key_is_default = l->defaults;
    return 0;
}

/* APP_HOST: an IPv4 or IPv6 literal. */
static int parse_ip_literal(loader *l, const config_var *var, const char *v, config *cfg)
{
    unsigned char buf[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, v, buf) != 1 && inet_pton(AF_INET6, v, buf) != 1) {
        report(l, "%s must be an IP address", var->name);
        return -1;
    }
    store_str(cfg, var->field, v);
    return 0;
}

/*
 * METRICS_BIND (README, "Metrics"): "HOST:PORT", "[IPV6]:PORT" or ":PORT" (all interfaces);
 * the port must not be APP_PORT (read before it: the table's order). Sets the port (field) and
 * the host (field2, NULL for all interfaces).
 */
static int parse_metrics_bind(loader *l, const config_var *var, const char *v, config *cfg)
{
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
        report(l, "%s must be HOST:PORT with an IP address and a port between 1 and 65535",
               var->name);
        return -1;
    }
    if (port == cfg->app_port) {
        report(l, "%s must use a port other than APP_PORT", var->name);
        return -1;
    }
    store_int(cfg, var, port);
    store_str(cfg, var->field2, host[0] != '\0' ? host : NULL);
    return 0;
}

/* LOG_FORMAT: exactly "text" or "json". */
static int parse_log_format(loader *l, const config_var *var, const char *v, config *cfg)
{
    if (strcmp(v, "text") == 0) {
        store_int(cfg, var, LOG_FORMAT_TEXT);
    } else if (strcmp(v, "json") == 0) {
        store_int(cfg, var, LOG_FORMAT_JSON);
    } else {
        report(l, "%s must be json or text", var->name);
        return -1;
    }
    return 0;
}

/* NATS_URL: a comma-separated list of nats:// or tls:// URLs, each with a host. */
static int parse_nats_url(loader *l, const config_var *var, const char *v, config *cfg)
{
    const char *p = v;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        size_t skip = n > 7 && strncasecmp(p, "nats://", 7) == 0  ? 7
                      : n > 6 && strncasecmp(p, "tls://", 6) == 0 ? 6
                                                                  : 0;
        if (skip == 0 || p[skip] == ':' || p[skip] == '/') {
            report(l, "%s is invalid", var->name); /* may carry credentials: not quoted */
            return -1;
        }
        if (end == NULL)
            break;
        p = end + 1;
    }
    store_str(cfg, var->field, v);
    return 0;
}

/* Stream and consumer names: what JetStream accepts in an API subject token. */
static int parse_nats_name(loader *l, const config_var *var, const char *v, config *cfg)
{
    size_t n = strlen(v);
    bool ok = n <= 255;
    for (size_t i = 0; ok && i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        ok = c > 0x20 && c < 0x7f && c != '.' && c != '*' && c != '>';
    }
    if (!ok) {
        report(l, "%s must be a NATS name (printable ASCII without '.', '*', '>' or spaces)",
               var->name);
        return -1;
    }
    store_str(cfg, var->field, v);
    return 0;
}

/* HTTP_WORKERS' default: the online CPUs, within its range 1-256. */
static int64_t online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 256 ? 256 : n;
}

/* ---- the table --------------------------------------------------------------------------------
 *
 * One row per variable, in the order errors are reported (CONFIG.md §2, then SMS.md §7). A row
 * says which programs read the variable, its kind, its default (written once, here, as it would
 * be written in the environment, and parsed like a value), its range, where it is stored and
 * whether a reload may change it (restart_only: the master keeps the running value and logs
 * that; config_keep_restart_only).
 *
 * Adding a variable is one row here (with its field in struct config, config.h). Its lines in
 * deploy/analyticsd.env.example (a comment with "Default: <def>", "Needs a restart" when
 * restart_only) are checked against this table by tests/unit/test_config.c, so they cannot
 * drift. Only a new syntax needs a parse_* function above.
 */

#define VAR(n, k)    .name = (n), .kind = CONFIG_KIND_##k
#define FIELD(f, t)  .field = offsetof(config, f), .type = CONFIG_FIELD_##t
#define FIELD2(f, t) .field2 = offsetof(config, f), .type2 = CONFIG_FIELD_##t
#define SERVER       CONFIG_READ_BY(CONFIG_ROLE_SERVER)
#define SEED         CONFIG_READ_BY(CONFIG_ROLE_SEED)
#define ALL          (SERVER | CONFIG_READ_BY(CONFIG_ROLE_MIGRATE) | SEED)
#define AT_LEAST_1   .below = "must be at least 1"

/* clang-format off */
const config_var config_vars[] = {
    {VAR("APP_ENV", TEXT), .def = "development", .read_by = SERVER, FIELD(app_env, STR)},
    {VAR("APP_PORT", PORT), .def = "3004", .read_by = SERVER, .restart_only = true,
     FIELD(app_port, INT)},
    {VAR("APP_HOST", SPECIAL), .parse = parse_ip_literal, .read_by = SERVER, .restart_only = true,
     FIELD(app_host, STR)},
    {VAR("METRICS_BIND", SPECIAL), .parse = parse_metrics_bind, .read_by = SERVER,
     .restart_only = true, FIELD(metrics_port, INT), FIELD2(metrics_host, STR)},
    {VAR("HTTP_WORKERS", INT), .def_fn = online_cpus, .min = 1, .max = 256, AT_LEAST_1,
     .read_by = SERVER, FIELD(http_workers, INT)},
    {VAR("APP_VERSION", TEXT), .def = "dev", .read_by = SERVER, FIELD(app_version, STR)},
    {VAR("DATABASE_URL", SPECIAL), .parse = parse_database_url, .required = true, .read_by = ALL,
     FIELD(database_url, STR)},
    {VAR("REDIS_URL", SPECIAL), .parse = parse_redis_url, .required = true, .read_by = SERVER,
     FIELD(redis_url, STR)},
    {VAR("MANAGEMENT_API_KEY", SPECIAL), .parse = parse_management_key, .def = "change-me",
     .read_by = SERVER, FIELD(management_key, STR)},
    {VAR("APP_AUTO_MIGRATE", BOOL), .def = "true", .read_by = SERVER, FIELD(auto_migrate, BOOL)},
    {VAR("APP_AUTO_SEED", BOOL), .def = "false", .read_by = SERVER, FIELD(auto_seed, BOOL)},
    {VAR("MAX_REPORT_RANGE_DAYS", INT), .def = "366", .min = 1, .max = INT32_MAX,
     .below = "must be positive", .read_by = SERVER, FIELD(max_report_range_days, I64)},
    {VAR("RECOMPUTE_LOCK_TTL", DURATION), .def = "15m", .read_by = SERVER,
     FIELD(recompute_lock_ttl_ns, I64)},
    {VAR("RECOMPUTE_WORKERS", INT), .def = "1", .min = 1, .max = 64, AT_LEAST_1, .read_by = SERVER,
     .restart_only = true, FIELD(recompute_workers, INT)},
    {VAR("RECOMPUTE_QUEUE_SIZE", INT), .def = "64", .min = 1, .max = 65536, AT_LEAST_1,
     .read_by = SERVER, .restart_only = true, FIELD(recompute_queue_size, INT)},
    {VAR("RECOMPUTE_MAX_PENDING", INT), .def = "1000", .min = 1, .max = INT32_MAX, AT_LEAST_1,
     .read_by = SERVER, FIELD(recompute_max_pending, I64)},
    {VAR("RECOMPUTE_MAX_ATTEMPTS", INT), .def = "3", .min = 1, .max = 100, AT_LEAST_1,
     .read_by = SERVER, FIELD(recompute_max_attempts, INT)},
    {VAR("HTTP_READ_TIMEOUT", DURATION), .def = "10s", .read_by = SERVER,
     FIELD(http_read_timeout_ns, I64)},
    {VAR("HTTP_WRITE_TIMEOUT", DURATION), .def = "20s", .read_by = SERVER,
     FIELD(http_write_timeout_ns, I64)},
    {VAR("HTTP_SHUTDOWN_TIMEOUT", DURATION), .def = "15s", .read_by = SERVER,
     FIELD(http_shutdown_timeout_ns, I64)},
    {VAR("LOG_FORMAT", SPECIAL), .parse = parse_log_format, .def = "text", .read_by = SERVER,
     .restart_only = true, FIELD(log_format, INT)},
    {VAR("ACCESS_LOG", BOOL), .def = "false", .read_by = SERVER, FIELD(access_log, BOOL)},
    /* Ours (issue 16): memory of each HTTP worker's local report copies (server/redistrack.h). */
    {VAR("REPORT_LOCAL_CACHE_MB", INT), .def = "64", .min = 0, .max = 65536,
     .below = "must be 0 or more", .read_by = SERVER, FIELD(report_local_cache_mb, I64)},
    /* The seed program's own; before the SMS rows so the seed reports it before
     * SMS_HOURLY_RETENTION_DAYS. */
    {VAR("SEED_FORCE_RESET", BOOL), .def = "false", .read_by = SEED, FIELD(seed_force_reset, BOOL)},
    /* SMS delivery analytics, SMS.md §7 */
    {VAR("NATS_URL", SPECIAL), .parse = parse_nats_url, .read_by = SERVER, .restart_only = true,
     FIELD(nats_url, STR)},
    {VAR("NATS_CONSUMER", SPECIAL), .parse = parse_nats_name, .def = "analytics-service",
     .read_by = SERVER, FIELD(nats_consumer, STR)},
    {VAR("NATS_BILLING_STREAM", SPECIAL), .parse = parse_nats_name, .def = "BILLING",
     .read_by = SERVER, FIELD(nats_billing_stream, STR)},
    {VAR("NATS_DLR_STREAM", SPECIAL), .parse = parse_nats_name, .def = "SMS_DLR",
     .read_by = SERVER, FIELD(nats_dlr_stream, STR)},
    {VAR("NATS_CREATE_STREAMS", BOOL), .def = "false", .read_by = SERVER,
     FIELD(nats_create_streams, BOOL)},
    {VAR("INGEST_WORKERS", INT), .def = "1", .min = 1, .max = 64, AT_LEAST_1, .read_by = SERVER,
     .restart_only = true, FIELD(ingest_workers, INT)},
    {VAR("SMS_INGEST_BATCH", INT), .def = "500", .min = 1, .max = 10000, AT_LEAST_1,
     .read_by = SERVER, FIELD(sms_ingest_batch, INT)},
    {VAR("SMS_CACHE_TTL", DURATION_OR_ZERO), .def = "5s", .read_by = SERVER,
     FIELD(sms_cache_ttl_ns, I64)},
    {VAR("SMS_ROLLUP_INTERVAL", DURATION), .def = "60s", .read_by = SERVER,
     FIELD(sms_rollup_interval_ns, I64)},
    /* read by the seed too: its demo events must be inside the retention */
    {VAR("SMS_HOURLY_RETENTION_DAYS", INT), .def = "90", .min = 1, .max = 36500, AT_LEAST_1,
     .read_by = SERVER | SEED, FIELD(sms_hourly_retention_days, I64)},
    {VAR("SMS_DAILY_RETENTION_DAYS", INT), .def = "365", .min = 1, .max = 36500, AT_LEAST_1,
     .read_by = SERVER, FIELD(sms_daily_retention_days, I64)},
    {VAR("SMS_DEDUPE_RETENTION", DURATION), .def = "48h", .read_by = SERVER,
     FIELD(sms_dedupe_retention_ns, I64)},
};
/* clang-format on */
const size_t config_var_count = ARRAY_LEN(config_vars);

#undef VAR
#undef FIELD
#undef FIELD2
#undef SERVER
#undef SEED
#undef ALL
#undef AT_LEAST_1

/* ---- config_load ------------------------------------------------------------------------------
 */

/*
 * Parses v as the row's kind and stores it. Returns 0, or -1 after reporting one error; the
 * fields then keep their previous value (the default).
 */
static int apply(loader *l, const config_var *var, const char *v, config *cfg)
{
    int64_t n;
    bool b;
    switch (var->kind) {
    case CONFIG_KIND_TEXT:
        store_str(cfg, var->field, v);
        return 0;
    case CONFIG_KIND_BOOL:
        if (config_parse_bool(v, &b) != 0) {
            report(l, "%s must be a boolean (true/false, 1/0, t/f)", var->name);
            return -1;
        }
        *(bool *)field_at(cfg, var->field) = b;
        return 0;
    case CONFIG_KIND_INT:
        if (config_parse_int64(v, &n) != 0)
            report(l, "%s must be an integer", var->name);
        else if (n < var->min)
            report(l, "%s %s", var->name, var->below);
        else if (n > var->max)
            report(l, "%s must be at most %" PRId64, var->name, var->max);
        else {
            store_int(cfg, var, n);
            return 0;
        }
        return -1;
    case CONFIG_KIND_PORT:
        if (config_parse_int64(v, &n) != 0 || n < 1 || n > 65535) {
            report(l, "%s must be an integer between 1 and 65535", var->name);
            return -1;
        }
        store_int(cfg, var, n);
        return 0;
    case CONFIG_KIND_DURATION:
        if (config_parse_duration(v, &n) != 0) {
            report(l, "%s must be a positive duration (for example 10s, 1.5m, 300ms)", var->name);
            return -1;
        }
        store_int(cfg, var, n);
        return 0;
    case CONFIG_KIND_DURATION_OR_ZERO:
        if (strcmp(v, "0") == 0) {
            n = 0;
        } else if (config_parse_duration(v, &n) != 0) {
            report(l, "%s must be 0 or a positive duration (for example 5s, 500ms)", var->name);
            return -1;
        }
        store_int(cfg, var, n);
        return 0;
    case CONFIG_KIND_SPECIAL:
        return var->parse(l, var, v, cfg);
    }
    return -1;
}

/*
 * Every variable gets its default first, whatever the role reads, through the same parser as a
 * value. A default the parser rejects is a bug in the table: abort.
 */
static void set_defaults(config *cfg)
{
    loader l = {{NULL, NULL}, stderr, 0, true};
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < config_var_count; i++) {
        const config_var *var = &config_vars[i];
        if (var->def != NULL)
            apply(&l, var, var->def, cfg);
        else if (var->def_fn != NULL)
            store_int(cfg, var, var->def_fn());
    }
    if (l.errors != 0)
        abort();
}

int config_load(config *cfg, config_role role, config_source src, FILE *err)
{
    loader l = {src, err, 0, false};
    set_defaults(cfg);
    for (size_t i = 0; i < config_var_count; i++) {
        const config_var *var = &config_vars[i];
        if ((var->read_by & CONFIG_READ_BY(role)) == 0)
            continue; /* CONFIG.md §1: not read, not validated */
        const char *v = get(&l, var->name);
        if (v != NULL)
            apply(&l, var, v, cfg);
        else if (var->required)
            report(&l, "%s is required", var->name);
    }
    fflush(err);
    return l.errors == 0 ? 0 : -1;
}

int config_keep_restart_only(const config *running, config *next,
                             void (*changed)(const config_var *var, void *ctx), void *ctx)
{
    int n = 0;
    for (size_t i = 0; i < config_var_count; i++) {
        const config_var *var = &config_vars[i];
        if (!var->restart_only)
            continue;
        if (field_equal(running, next, var->field, var->type) &&
            field_equal(running, next, var->field2, var->type2))
            continue;
        if (changed != NULL)
            changed(var, ctx);
        n++;
        field_copy(next, running, var->field, var->type);
        field_copy(next, running, var->field2, var->type2);
    }
    return n;
}

const config_var *config_var_find(const char *name)
{
    for (size_t i = 0; i < config_var_count; i++) {
        if (strcmp(config_vars[i].name, name) == 0)
            return &config_vars[i];
    }
    return NULL;
}

void config_free(config *cfg)
{
    for (size_t i = 0; i < config_var_count; i++) {
        const config_var *var = &config_vars[i];
        if (var->type == CONFIG_FIELD_STR)
            free(*(char **)field_at(cfg, var->field));
        if (var->type2 == CONFIG_FIELD_STR)
            free(*(char **)field_at(cfg, var->field2));
    }
    config_redis_free(&cfg->redis);
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
