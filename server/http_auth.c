/*
 * server/http_auth.c: management key check (see http_auth.h). Runs in HTTP workers.
 */
#include "server/http_auth.h"

#include "common/textutil.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <string.h>

/* True when p starts with "bearer " in any ASCII case (p holds at least 7 bytes). */
static bool has_bearer_prefix(const char *p)
{
    static const char want[] = "bearer ";
    for (size_t i = 0; i < 7; i++) {
        char c = p[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != want[i])
            return false;
    }
    return true;
}

int http_auth_candidate(const char *x_key, size_t x_len, const char *authz, size_t authz_len,
                        const char **out, size_t *out_len)
{
    size_t start = 0, n = 0;
    const char *src = NULL;
    if (x_key != NULL) {
        text_trim(x_key, x_len, &start, &n);
        src = x_key;
    }
    if (n == 0 && authz != NULL) {
        text_trim(authz, authz_len, &start, &n);
        src = authz;
    }
    if (n == 0)
        return -1;
    const char *c = src + start;
    if (n >= 7 && has_bearer_prefix(c)) {
        size_t s2, n2;
        text_trim(c + 7, n - 7, &s2, &n2);
        c += 7 + s2;
        n = n2;
        if (n == 0)
            return -1;
    }
    *out = c;
    *out_len = n;
    return 0;
}

/* First occurrence of a header by (case-insensitive) name, or NULL. */
static const h2o_iovec_t *first_header(h2o_req_t *req, const char *name, size_t len)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, len, -1);
    return i < 0 ? NULL : &req->headers.entries[i].value;
}

bool http_auth_ok(h2o_req_t *req, const config *cfg)
{
    const h2o_iovec_t *x = first_header(req, H2O_STRLIT("x-management-key"));
    const h2o_iovec_t *a = first_header(req, H2O_STRLIT("authorization"));
    const char *candidate;
    size_t candidate_len;
    if (http_auth_candidate(x ? x->base : NULL, x ? x->len : 0, a ? a->base : NULL, a ? a->len : 0,
                            &candidate, &candidate_len) != 0)
        return false;
    unsigned char want[SHA256_DIGEST_LENGTH], got[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)cfg->management_key, strlen(cfg->management_key), want);
    SHA256((const unsigned char *)candidate, candidate_len, got);
    return CRYPTO_memcmp(want, got, sizeof(want)) == 0;
}
