/*
 * server/sms_http.h: what the SMS read routes (server/handlers/sms_*.c) share: the date range
 * of SMS.md §6.1, the trimmed choice parameters, one statement answered through the worker's
 * answer cache (server/sms_cache.h), and the list and detail routes of operators and accounts,
 * which are tables answered here. Runs in HTTP workers.
 */
#ifndef ANALYTICSD_SMS_HTTP_H
#define ANALYTICSD_SMS_HTTP_H

#include <h2o.h>
#include <libpq-fe.h>
#include <stdint.h>

#include "common/jbuf.h"
#include "server/http_app.h"

struct sms_read_req;

/* Writes the members of the answer (between the outer braces) from the result; 0 or -1. */
typedef int (*sms_render_fn)(jbuf *b, const PGresult *res, const struct sms_read_req *r);

/* One read request; lives in the request's pool (its dispose cancels the statement). */
typedef struct sms_read_req {
    http_app *app;
    h2o_req_t *req;
    pgpool_query *q;
    int32_t from, to;      /* the range, days since 1970-01-01 */
    char lo[11], hi[11];   /* first day, day after the last: YYYY-MM-DD */
    char floor[11];        /* first day read from hourly rows (sms_read_floor) */
    int64_t limit, offset; /* lists */
    char id[37];           /* path id, lower case (metrics, usage) */
    const char *not_found; /* 404 message when row 0 says the id is unknown; NULL: never */
    sms_render_fn render;
    const struct sms_list_route *list;     /* the list route being answered, or NULL */
    const struct sms_detail_route *detail; /* the detail route being answered, or NULL */
    struct sms_fill *fill;            /* the shared statement this request waits for, or NULL */
    struct sms_read_req *next_waiter; /* in fill->waiters */
} sms_read_req;

/*
 * Starts a read: allocates its state and resolves date_from/date_to (API.md §2.6) and the span
 * (MAX_REPORT_RANGE_DAYS). On a violation answers 400 with the contract's message and returns
 * NULL.
 */
sms_read_req *sms_http_begin(http_app *app, h2o_req_t *req);

/*
 * One list route (SMS.md §6.3, §6.5): a sorted page of items from one statement. The statement
 * takes $1 the first day, $2 the day after the last, then r->floor when takes_floor, then the
 * sort name, "true" for descending, the limit and the offset.
 */
typedef struct sms_list_route {
    const char *name; /* the cache's route name */
    const char *sql;  /* the statement (common/sms_read.h) */
    /* Writes the answer's members from the statement's rows (common/sms_read.h); 0 or -1. */
    int (*items_json)(jbuf *b, const PGresult *res, int32_t from, int32_t to, int64_t limit,
                      int64_t offset);
    int takes_floor;
    const char *const *sorts; /* `sort` values, the default first; NULL-terminated */
} sms_list_route;

/*
 * Answers a list route: the date range and span (sms_http_begin), then `sort` one of the route's
 * (blank: the first; else 400 `sort must be one of <the sorts, comma-separated>`), `order` asc or
 * desc (blank: desc; else 400 `order must be asc or desc`), limit and offset clamped (API.md §2.4),
 * then sms_http_run.
 */
void sms_http_list(http_app *app, h2o_req_t *req, const sms_list_route *route);

/*
 * One detail route (SMS.md §6.4, §6.5): one id's totals and series from one statement. The
 * statement takes $1 the id, $2 the first day, $3 the day after the last, then r->floor when
 * takes_floor, then the window; its row 0 says whether the id is known.
 */
typedef struct sms_detail_route {
    const char *name; /* the cache's route name */
    const char *sql;  /* the statement (common/sms_read.h) */
    /* Writes the answer's members from the statement's rows (common/sms_read.h); 0 or -1. */
    int (*detail_json)(jbuf *b, const PGresult *res, const char *id, int32_t from, int32_t to);
    int takes_floor;
    const char *windows[2]; /* the two `window` values; blank means day */
    int hour_max_days;      /* with window hour, the longest range in days; 0: no such limit */
    const char *not_found;  /* the 404 message */
} sms_detail_route;

/*
 * Answers a detail route: the date range and span (sms_http_begin); `window` trimmed and
 * case-folded, one of the route's two (else 400 `window must be <a> or <b>`); for hour, the
 * range at most hour_max_days (else 400 `date range exceeds <n> days for window hour`); the
 * path id a UUID (else 404 not_found, which the statement also answers for an unknown id); then
 * sms_http_run.
 */
void sms_http_detail(http_app *app, h2o_req_t *req, const route_match *m,
                     const sms_detail_route *route);

/*
 * Answers from the worker's cache entry for this statement and parameters (the key is `route`
 * and every parameter) if fresh; otherwise waits for the same statement already running in
 * this worker, or runs sql; renders the result with r->render, answers 200 (or 404
 * r->not_found), and caches a 200 for SMS_CACHE_TTL. With SMS_CACHE_TTL 0 every request runs
 * its own statement. A failed statement or rendering answers 500 `internal error` (the cause is
 * logged).
 */
void sms_http_run(sms_read_req *r, const char *route, const char *sql, int nparams,
                  const char *const *params);

/* The routes, one file a resource: server/handlers/sms_operators.c and sms_accounts.c. */
extern const sms_list_route sms_operators_list;
extern const sms_detail_route sms_operator_metrics_detail;
extern const sms_list_route sms_accounts_list;
extern const sms_detail_route sms_account_usage_detail;

#endif
