/*
 * server/http_auth.h: management authentication of API.md §3. Runs in HTTP workers.
 */
#ifndef ANALYTICSD_HTTP_AUTH_H
#define ANALYTICSD_HTTP_AUTH_H

#include <h2o.h>
#include <stdbool.h>

#include "common/config.h"

/*
 * True when the request carries MANAGEMENT_API_KEY: the first X-Management-Key header, else the
 * first Authorization header, trimmed, with an optional "bearer " prefix (common/params.h
 * auth_candidate). The comparison takes the same time wherever the first difference is (both
 * sides are hashed with SHA-256 and the digests compared with CRYPTO_memcmp). Never logs.
 */
bool http_auth_ok(h2o_req_t *req, const config *cfg);

#endif
