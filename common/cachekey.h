/*
 * common/cachekey.h: the report cache key of DATA.md §7.3: canonical JSON of the resolved run
 * parameters, its SHA-256, and "report:{slug}:v{version}:{hash}". Used by the HTTP workers.
 */
#ifndef ANALYTICSD_CACHEKEY_H
#define ANALYTICSD_CACHEKEY_H

#include <stddef.h>
#include <stdint.h>

#include "common/jbuf.h"

/*
 * The resolved parameters of one report run. breakdown/source/status are the trimmed query
 * values (NULL or length 0 = blank, written as ""); window is the normalised "day"/"week"
 * (NUL-terminated); dates are days since 1970-01-01; limit/offset the values in effect.
 */
struct cachekey_params {
    const char *breakdown;
    size_t breakdown_len;
    int32_t date_from, date_to;
    int64_t limit, offset;
    const char *source;
    size_t source_len;
    const char *status;
    size_t status_len;
    const char *window;
};

/*
 * Appends the canonical JSON text
 * {"breakdown":B,"date_from":"YYYY-MM-DD","date_to":"YYYY-MM-DD","limit":L,"offset":O,
 *  "source":SRC,"status":ST,"window":W} (no whitespace, strings escaped per API.md §1.4).
 */
void cachekey_canonical(jbuf *out, const struct cachekey_params *p);

/*
 * Writes the lower-case hex SHA-256 of data[0..len) plus a NUL into out. Uses OpenSSL; if the
 * digest cannot be computed (OpenSSL misconfigured) it logs and aborts.
 */
void cachekey_sha256_hex(const void *data, size_t len, char out[65]);

/* Appends the entry key "report:{slug}:v{version}:{hash}" for an already computed 64-character
 * hash (DATA.md §7.3). */
void cachekey_entry(jbuf *out, const char *slug, size_t slug_len, int64_t version,
                    const char *hash);

/* Appends the version key "report:version:{slug}" (DATA.md §7.2). */
void cachekey_version(jbuf *out, const char *slug, size_t slug_len);

#endif
