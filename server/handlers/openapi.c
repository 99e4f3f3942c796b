/*
 * server/handlers/openapi.c: GET /api/v1/openapi.json (API.md §8). Runs in HTTP workers.
 *
 * Serves the OpenAPI 3.1 document of the whole API. Its one source is docs/openapi.json, which
 * the build embeds as the byte array openapi_document[] (cmake/embed_file.cmake, like the
 * migrations); nothing is generated at run time. The first request in each worker process
 * copies the document once without the whitespace between tokens (API.md §1.3: compact JSON
 * and one line feed); string contents, member order and escapes stay exactly as written in the
 * source. That copy lives as long as the process. Public, GET and HEAD; no query parameters.
 */
#include <stdlib.h>

#include "server/http_app.h"
#include "server/http_response.h"

extern const char openapi_document[];
extern const size_t openapi_document_len;

/* Copies JSON text `in` to `out` without the whitespace outside strings; returns the length.
 * `out` needs `len` bytes. The input is trusted (it is our own document, checked by tests). */
static size_t json_compact(const char *in, size_t len, char *out)
{
    size_t n = 0;
    int in_string = 0, escaped = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (in_string) {
            out[n++] = c;
            if (escaped)
                escaped = 0;
            else if (c == '\\')
                escaped = 1;
            else if (c == '"')
                in_string = 0;
        } else if (c == '"') {
            in_string = 1;
            out[n++] = c;
        } else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            out[n++] = c;
        }
    }
    return n;
}

void openapi_handle(http_app *app, h2o_req_t *req, const route_match *m)
{
    (void)app;
    (void)m;
    static char *body; /* the compact document and its "\n", made on first use */
    static size_t body_len;
    if (body == NULL) {
        char *b = malloc(openapi_document_len + 1);
        if (b == NULL) {
            http_send_error(req, 500, "internal error");
            return;
        }
        size_t n = json_compact(openapi_document, openapi_document_len, b);
        b[n++] = '\n';
        body = b;
        body_len = n;
    }
    http_send_body(req, 200, body, body_len);
}
