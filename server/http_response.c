/*
 * server/http_response.c: JSON envelope responses (see http_response.h). Runs in HTTP workers.
 */
#include "server/http_response.h"

#include "common/json_out.h"

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 202:
        return "Accepted";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 503:
        return "Service Unavailable";
    default:
        return "Internal Server Error";
    }
}

const char *http_error_code(int status)
{
    switch (status) {
    case 400:
        return "invalid_request";
    case 401:
        return "unauthorized";
    case 404:
        return "not_found";
    case 405:
        return "method_not_allowed";
    case 409:
        return "conflict";
    case 413:
        return "payload_too_large";
    case 503:
        return "service_unavailable";
    default:
        return "internal_error";
    }
}

void http_send_body(h2o_req_t *req, int status, const char *body, size_t len)
{
    /* A request is answered once: after the write timeout answered it (http_worker.c), a late
     * handler callback must not start a second response. */
    if (req->res.status != 0)
        return;
    req->res.status = status;
    req->res.reason = reason_phrase(status);
    req->res.content_length = len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("application/json"));
    h2o_send_inline(req, body, len);
}

void http_send_jbuf(h2o_req_t *req, int status, jbuf *b)
{
    jbuf_putc(b, '\n');
    http_send_body(req, status, b->data, b->len);
    jbuf_free(b);
}

void http_send_error(h2o_req_t *req, int status, const char *message)
{
    jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"error\":{\"code\":\"");
    jbuf_puts(&b, http_error_code(status));
    jbuf_puts(&b, "\",\"message\":");
    jout_string(&b, message, strlen(message));
    jbuf_puts(&b, "}}");
    http_send_jbuf(req, status, &b);
}

const char *http_request_id(h2o_req_t *req)
{
    ssize_t i = h2o_find_header_by_str(&req->res.headers, H2O_STRLIT("x-request-id"), -1);
    return i < 0 ? NULL : req->res.headers.entries[i].value.base;
}

/*
 * See http_response.h.
 */
int http_if_none_match(h2o_req_t *req, const char *etag)
{
    const char *opaque = etag + 2; /* "<version>-<hash>" with its quotes */
    size_t olen = strlen(opaque);
    for (ssize_t i = -1; (i = h2o_find_header(&req->headers, H2O_TOKEN_IF_NONE_MATCH, i)) != -1;) {
        const h2o_iovec_t *v = &req->headers.entries[i].value;
        size_t p = 0;
        while (p < v->len) {
            while (p < v->len && (v->base[p] == ' ' || v->base[p] == '\t' || v->base[p] == ','))
                p++;
            size_t start = p;
            while (p < v->len && v->base[p] != ',')
                p++;
            size_t end = p;
            while (end > start && (v->base[end - 1] == ' ' || v->base[end - 1] == '\t'))
                end--;
            const char *t = v->base + start;
            size_t n = end - start;
            if (n == 1 && t[0] == '*')
                return 1;
            if (n >= 2 && t[0] == 'W' && t[1] == '/') {
                t += 2;
                n -= 2;
            }
            if (n == olen && memcmp(t, opaque, olen) == 0)
                return 1;
        }
    }
    return 0;
}

void http_send_not_modified(h2o_req_t *req)
{
    if (req->res.status != 0)
        return;
    req->res.status = 304;
    req->res.reason = "Not Modified";
    h2o_send_inline(req, NULL, 0);
}
