/*
 * server/sms_cache.h: the SMS read routes' answer cache (SMS.md §6.1, SMS_CACHE_TTL): whole
 * response bodies kept in the HTTP worker's own memory for at most the TTL, so that a dashboard
 * polled by many users costs PostgreSQL one statement per worker and TTL. One per HTTP worker,
 * used only on its event loop; nothing is shared between processes (an accepted event shows in
 * every worker within the TTL plus the statement's time).
 *
 * A fixed table of slots addressed by a hash of the key; a new answer replaces whatever its
 * slot held (an expired entry or another key's). Memory is bounded by slots x the largest body.
 */
#ifndef ANALYTICSD_SMS_CACHE_H
#define ANALYTICSD_SMS_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct sms_cache sms_cache;

/* A cache of `slots` entries (>= 1). Aborts on out-of-memory. */
sms_cache *sms_cache_create(size_t slots);
void sms_cache_free(sms_cache *c);

/*
 * The body stored for key[0..key_len) if it expires after now_ns: sets *body / *len (valid until
 * the next sms_cache_put) and returns 1; returns 0 otherwise.
 */
int sms_cache_get(sms_cache *c, const char *key, size_t key_len, int64_t now_ns, const char **body,
                  size_t *len);

/* Stores a copy of body[0..len) under key until expires_ns. Aborts on out-of-memory. */
void sms_cache_put(sms_cache *c, const char *key, size_t key_len, const char *body, size_t len,
                   int64_t expires_ns);

#endif
