/*
 * server/router.h: exact routing of API.md §1.1–§1.2 on the raw request path. Pure code, used by
 * HTTP workers (and unit tests).
 */
#ifndef ANALYTICSD_ROUTER_H
#define ANALYTICSD_ROUTER_H

#include <stddef.h>

typedef enum {
    ROUTE_NONE = 0,
    ROUTE_METRICS, /* GET /metrics, outside /api/v1 (README, "Metrics") */
    ROUTE_HEALTH,
    ROUTE_REPORTS,
    ROUTE_REPORT,
    ROUTE_REPORT_RUN,
    ROUTE_RECOMPUTATIONS,
    ROUTE_RECOMPUTATION,
    ROUTE_AUDIT_ENTRIES,
    ROUTE_EVENTS, /* POST only (SMS.md §6.6) */
    ROUTE_SMS_SUMMARY,
    ROUTE_SMS_OPERATORS,
    ROUTE_SMS_OPERATOR_METRICS, /* {operator_id}/metrics */
    ROUTE_SMS_ACCOUNTS,
    ROUTE_SMS_ACCOUNT_USAGE, /* {account_id}/usage */
    ROUTE_LIVEZ,             /* /livez, outside /api/v1 (API.md §8) */
    ROUTE_READYZ,            /* /readyz, outside /api/v1 (API.md §8) */
    ROUTE_OPENAPI,           /* /api/v1/openapi.json (API.md §8, docs/openapi.json) */
} route_id;

/* Request body limits: 64 KiB (API.md), 1 MiB for POST /api/v1/events (SMS.md §6.6). */
#define ROUTER_BODY_LIMIT        65536
#define ROUTER_EVENTS_BODY_LIMIT 1048576

typedef enum { ROUTER_OK, ROUTER_NOT_FOUND, ROUTER_METHOD_NOT_ALLOWED } router_status;

typedef struct route_match {
    route_id route;
    const char *param; /* {slug} or {id}: raw segment text, not percent-decoded */
    size_t param_len;
    int is_head;       /* HEAD is answered like GET, without a body */
    int is_management; /* the route requires management authentication (API.md §3) */
    const char *allow; /* Allow header value for 405 */
    size_t body_limit; /* largest request body the route takes (413 above) */
} route_match;

/*
 * Matches path (without the query string) byte for byte and checks the method.
 * ROUTER_NOT_FOUND: no route (404, whatever the method). ROUTER_METHOD_NOT_ALLOWED: route found,
 * method not served (405 with m->allow). ROUTER_OK: m is filled in.
 */
router_status router_match(const char *method, size_t method_len, const char *path, size_t path_len,
                           route_match *m);

#endif
