/*
 * server/http_auth.c: management key check (see http_auth.h). Runs in HTTP workers.
 */
#include "server/http_auth.h"

#include "common/params.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <string.h>

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
    if (auth_candidate(x ? x->base : NULL, x ? x->len : 0, a ? a->base : NULL, a ? a->len : 0,
                       &candidate, &candidate_len) != 0)
        return false;
    unsigned char want[SHA256_DIGEST_LENGTH], got[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)cfg->management_key, strlen(cfg->management_key), want);
    SHA256((const unsigned char *)candidate, candidate_len, got);
    return CRYPTO_memcmp(want, got, sizeof(want)) == 0;
}
