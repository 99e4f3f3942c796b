/*
 * server/http_auth.h: management authentication of API.md §3 (the key candidate of the request
 * headers and its constant-time check). Runs in HTTP workers.
 */
#ifndef ANALYTICSD_HTTP_AUTH_H
#define ANALYTICSD_HTTP_AUTH_H

#include <h2o.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/config.h"

/*
 * True when the request carries MANAGEMENT_API_KEY: the first X-Management-Key header, else the
 * first Authorization header, trimmed, with an optional "bearer " prefix (http_auth_candidate).
 * The comparison takes the same time wherever the first difference is (both sides are hashed
 * with SHA-256 and the digests compared with CRYPTO_memcmp). Never logs.
 */
bool http_auth_ok(h2o_req_t *req, const config *cfg);

/*
 * API.md §3 steps 1–2. x_key/authz are the first X-Management-Key and Authorization header
 * values (NULL = header absent). The candidate is the trimmed X-Management-Key if not blank,
 * else the trimmed Authorization; a leading "bearer " (ASCII case-insensitive, one space) is
 * removed and the rest trimmed again. Sets *out and *out_len to the candidate (pointing into the
 * chosen header value) and returns 0; returns -1 when the candidate is blank (authentication
 * fails). The caller compares in constant time.
 */
int http_auth_candidate(const char *x_key, size_t x_len, const char *authz, size_t authz_len,
                        const char **out, size_t *out_len);

#endif
