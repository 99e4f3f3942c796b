/*
 * server/sms_http.h: what the SMS read handlers (server/handlers/sms_*.c) share: the date range
 * of SMS.md §6.1, the trimmed choice parameters, and one statement answered through the
 * worker's answer cache (server/sms_cache.h). Runs in HTTP workers.
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
 * The `window` parameter of a series (SMS.md §6.4, §6.5), trimmed and case-folded: `a` or `b`,
 * blank meaning `day`. Sets *out to that word (static) and returns 0, or answers 400 `window must
 * be <a> or <b>` and returns -1.
 */
int sms_http_window(sms_read_req *r, const char *a, const char *b, const char **out);

/*
 * The id in the path of a detail route: a UUID, copied in lower case into r->id, and the 404
 * message `not_found` for a statement that finds no such id (r->not_found). Returns 0, or answers
 * 404 `not_found` at once and returns -1 when it is not a UUID.
 */
int sms_http_path_id(sms_read_req *r, const char *param, size_t len, const char *not_found);

/*
 * The list parameters (SMS.md §6.3): `sort` one of sorts[0..n) (blank: sorts[0]; else 400 with
 * sort_message), `order` asc or desc (blank: desc; else 400 `order must be asc or desc`), then
 * limit and offset clamped into r. Fills *out and returns 0, or answers the 400 and returns -1.
 */
typedef struct sms_list {
    const char *sort;           /* one of the route's sort names */
    const char *desc;           /* "true" or "false" */
    char limit[24], offset[24]; /* r->limit and r->offset as statement parameters */
} sms_list;

int sms_http_list_params(sms_read_req *r, const char *const *sorts, size_t n,
                         const char *sort_message, sms_list *out);

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

#endif
