/*
 * server/router.c: the route table (see router.h). Runs in HTTP workers.
 *
 * Every route lives under /api/v1/ except the probes /livez and /readyz (API.md §8), which are
 * public GET/HEAD routes like the others.
 */
#include "server/router.h"

#include <string.h>

#define PREFIX         "/api/v1/"
#define ALLOW_GET      "GET, HEAD"
#define ALLOW_GET_POST "GET, HEAD, POST"
#define ALLOW_POST     "POST"

static int eq(const char *s, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    return len == n && memcmp(s, lit, n) == 0;
}

/* Splits "a/b" style remainders: returns the length of the first segment (up to '/' or end). */
static size_t segment(const char *s, size_t len)
{
    const char *slash = memchr(s, '/', len);
    return slash ? (size_t)(slash - s) : len;
}

/* The SMS read routes (SMS.md §6), p after "/api/v1/sms/". */
static route_id match_sms(const char *p, size_t len, const char **param, size_t *param_len)
{
    if (eq(p, len, "summary"))
        return ROUTE_SMS_SUMMARY;
    if (eq(p, len, "operators"))
        return ROUTE_SMS_OPERATORS;
    if (eq(p, len, "accounts"))
        return ROUTE_SMS_ACCOUNTS;
    int operators = len > 10 && memcmp(p, "operators/", 10) == 0;
    int accounts = len > 9 && memcmp(p, "accounts/", 9) == 0;
    if (!operators && !accounts)
        return ROUTE_NONE;
    size_t skip = operators ? 10 : 9;
    const char *seg = p + skip;
    size_t rest = len - skip;
    size_t seglen = segment(seg, rest);
    if (seglen == 0)
        return ROUTE_NONE;
    *param = seg;
    *param_len = seglen;
    if (operators && eq(seg + seglen, rest - seglen, "/metrics"))
        return ROUTE_SMS_OPERATOR_METRICS;
    if (accounts && eq(seg + seglen, rest - seglen, "/usage"))
        return ROUTE_SMS_ACCOUNT_USAGE;
    return ROUTE_NONE;
}

static route_id match_path(const char *p, size_t len, const char **param, size_t *param_len)
{
    if (eq(p, len, "/livez"))
        return ROUTE_LIVEZ;
    if (eq(p, len, "/readyz"))
        return ROUTE_READYZ;
    if (eq(p, len, "/metrics"))
        return ROUTE_METRICS;
    size_t plen = sizeof(PREFIX) - 1;
    if (len <= plen || memcmp(p, PREFIX, plen) != 0)
        return ROUTE_NONE;
    p += plen;
    len -= plen;
    if (eq(p, len, "health"))
        return ROUTE_HEALTH;
    if (eq(p, len, "reports"))
        return ROUTE_REPORTS;
    if (eq(p, len, "recomputations"))
        return ROUTE_RECOMPUTATIONS;
    if (eq(p, len, "audit-entries"))
        return ROUTE_AUDIT_ENTRIES;
    if (eq(p, len, "events"))
        return ROUTE_EVENTS;
    if (eq(p, len, "openapi.json"))
        return ROUTE_OPENAPI;
    if (len > 4 && memcmp(p, "sms/", 4) == 0)
        return match_sms(p + 4, len - 4, param, param_len);

    int reports = len > 8 && memcmp(p, "reports/", 8) == 0;
    int runs = len > 15 && memcmp(p, "recomputations/", 15) == 0;
    if (!reports && !runs)
        return ROUTE_NONE;
    size_t skip = reports ? 8 : 15;
    const char *seg = p + skip;
    size_t rest = len - skip;
    size_t seglen = segment(seg, rest);
    if (seglen == 0)
        return ROUTE_NONE;
    *param = seg;
    *param_len = seglen;
    if (seglen == rest)
        return reports ? ROUTE_REPORT : ROUTE_RECOMPUTATION;
    if (reports && eq(seg + seglen, rest - seglen, "/run"))
        return ROUTE_REPORT_RUN;
    return ROUTE_NONE;
}

router_status router_match(const char *method, size_t method_len, const char *path, size_t path_len,
                           route_match *m)
{
    memset(m, 0, sizeof(*m));
    m->route = match_path(path, path_len, &m->param, &m->param_len);
    if (m->route == ROUTE_NONE)
        return ROUTER_NOT_FOUND;
    m->is_management = m->route == ROUTE_RECOMPUTATIONS || m->route == ROUTE_RECOMPUTATION ||
                       m->route == ROUTE_AUDIT_ENTRIES || m->route == ROUTE_EVENTS;
    m->body_limit = m->route == ROUTE_EVENTS ? ROUTER_EVENTS_BODY_LIMIT : ROUTER_BODY_LIMIT;
    if (m->route == ROUTE_EVENTS) {
        m->allow = ALLOW_POST;
        return eq(method, method_len, "POST") ? ROUTER_OK : ROUTER_METHOD_NOT_ALLOWED;
    }
    m->allow = m->route == ROUTE_RECOMPUTATIONS ? ALLOW_GET_POST : ALLOW_GET;
    if (eq(method, method_len, "GET"))
        return ROUTER_OK;
    if (eq(method, method_len, "HEAD")) {
        m->is_head = 1;
        return ROUTER_OK;
    }
    if (m->route == ROUTE_RECOMPUTATIONS && eq(method, method_len, "POST"))
        return ROUTER_OK;
    return ROUTER_METHOD_NOT_ALLOWED;
}
