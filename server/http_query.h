/*
 * server/http_query.h: the common shape of read handlers: one PostgreSQL statement answered
 * as a page ({"data":[…],"meta":{"pagination":…}}, API.md §5.5) or as one object
 * ({"data":{…}}). Runs in HTTP workers; the pending statement lives in the request's pool and
 * is cancelled if the client goes away.
 */
#ifndef ANALYTICSD_HTTP_QUERY_H
#define ANALYTICSD_HTTP_QUERY_H

#include <h2o.h>
#include <libpq-fe.h>
#include <stdint.h>

#include "common/jbuf.h"
#include "server/http_app.h"

/* Writes the JSON object of result row `row` whose columns start at `col`; 0 or -1. */
typedef int (*http_row_writer)(jbuf *b, const PGresult *res, int row, int col);

/* The raw query string of req (after '?', not decoded); "" with *len 0 when there is none. */
const char *http_query_string(h2o_req_t *req, size_t *len);

/*
 * Decodes query parameter `name` (first occurrence, API.md §2.1) into request-pool memory.
 * *v is NULL when the parameter is absent.
 */
void http_query_param(h2o_req_t *req, const char *name, const char **v, size_t *len);

/*
 * limit/offset of the list endpoints (API.md §4.2, §4.6, §4.8): integer rule 2.4, then a limit
 * below 1 becomes 20 and above 100 becomes 100; a negative offset becomes 0.
 */
void http_page_params(h2o_req_t *req, int64_t *limit, int64_t *offset);

/*
 * A text filter of a list endpoint: query parameter `name`, trimmed (API.md §2.2). Returns 0
 * with *out NULL when absent or blank, or the trimmed NUL-terminated value (request pool).
 * Returns -1 when the value cannot match anything (§2.3): answer an empty page, no query.
 */
int http_list_filter(h2o_req_t *req, const char *name, const char **out);

/* {"pagination":{"limit":L,"offset":O,"total":T}} */
void http_write_pagination(jbuf *b, int64_t limit, int64_t offset, int64_t total);

/*
 * Runs sql and answers 200 with a page. sql takes the nfilters filter parameters first, then
 * limit and offset as $nfilters+1 and $nfilters+2 (added here from the integers). Column 0 of
 * every row is the total number of matches; the item's columns start at column 1; a row whose
 * column 1 is NULL is the count-only row of an empty page and is skipped. Any failure (query or
 * row writer) answers 500 with `failure` (a catalogue message).
 */
void http_query_page(http_app *app, h2o_req_t *req, const char *sql, int nfilters,
                     const char *const *filters, int64_t limit, int64_t offset, http_row_writer row,
                     const char *failure);

/*
 * A list endpoint whose filters are all text filters (API.md §4.6, §4.8): limit and offset
 * (http_page_params), then each parameter of `names` (NULL-terminated, at most 6) through
 * http_list_filter, in order; if one cannot match, answers an empty page without a query,
 * otherwise http_query_page with the filters in that order.
 */
void http_query_list(http_app *app, h2o_req_t *req, const char *sql, const char *const *names,
                     http_row_writer row, const char *failure);

/* Answers 200 with an empty page (total 0) without a query: filters that cannot match. */
void http_send_empty_page(h2o_req_t *req, int64_t limit, int64_t offset);

/*
 * Runs sql and answers 200 {"data":<row 0>}; no row → 404 with `not_found`; any failure → 500
 * with `failure`.
 */
void http_query_object(http_app *app, h2o_req_t *req, const char *sql, int nparams,
                       const char *const *params, http_row_writer row, const char *not_found,
                       const char *failure);

#endif
