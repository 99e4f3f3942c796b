/*
 * server/http_response.h: writing responses in the envelope of API.md §1.3. Runs in HTTP
 * workers. Every body is copied into the request's pool by h2o, so callers keep ownership of
 * what they pass in.
 */
#ifndef ANALYTICSD_HTTP_RESPONSE_H
#define ANALYTICSD_HTTP_RESPONSE_H

#include <h2o.h>

#include "common/jbuf.h"

/* Sends status + body (exactly as given) with Content-Type: application/json and a
 * Content-Length; HEAD requests get the same headers without the body (h2o drops it).
 * Does nothing if the request was already answered (res.status set). */
void http_send_body(h2o_req_t *req, int status, const char *body, size_t len);

/* Appends the final "\n" to b, sends it as the body and frees b. */
void http_send_jbuf(h2o_req_t *req, int status, jbuf *b);

/* {"error":{"code":"<code for status>","message":"<message>"}}\n; message is a catalogue
 * literal (API.md §1.6), written through the JSON string encoder. */
void http_send_error(h2o_req_t *req, int status, const char *message);

/*
 * Conditional reads (RFC 9110 §13.1.2, API.md §4.4): whether an If-None-Match header of req
 * lists `etag` (a weak tag W/"…") by weak comparison (the opaque tags are equal, either side may
 * be weak) or is "*". Every If-None-Match header is read; malformed members do not match.
 */
int http_if_none_match(h2o_req_t *req, const char *etag);

/* 304 Not Modified with the headers already on req->res (the caller adds ETag and
 * Cache-Control), no body and no Content-Type. Does nothing if the request was answered. */
void http_send_not_modified(h2o_req_t *req);

/* The X-Request-Id this worker gave the response (API.md §8; http_worker.c sets it before any
 * handler runs), NUL-terminated in the request's pool; NULL before that. */
const char *http_request_id(h2o_req_t *req);

/* The `code` member for an HTTP status (API.md §1.6); "internal_error" for unknown ones. */
const char *http_error_code(int status);

#endif
