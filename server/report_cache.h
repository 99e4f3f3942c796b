/*
 * server/report_cache.h: the Redis response cache of report runs (DATA.md §7.2–§7.4, API.md
 * §6), as used by the HTTP workers on their event loop (redisconn).
 *
 * Round trips: the lookup is ONE command. A Lua script (sent with EVALSHA, falling back to EVAL
 * once after NOSCRIPT) reads report:version:{slug}; if it is missing it runs SET ... 1 NX and
 * GET again (the F9 sequence, atomic inside the script); if the value is a canonical decimal
 * integer it GETs report:{slug}:v{version}:{hash} and returns both. The entry key is built
 * inside the script from the prefix "report:{slug}:v" and the suffix ":{hash}", which is the
 * exact key format of DATA.md §7.3 (the script touches a key not declared in KEYS, which is
 * fine for a standalone Redis, the only kind this service supports). The write after a miss is
 * a plain SET key value EX ttl whose reply is not awaited.
 *
 * Callers check shstate_redis_trusted() first: while Redis is untrusted nothing here is used.
 * Connection failures are reported by redisconn (whose on_failure marks Redis untrusted);
 * error replies are not failures and just disable the cache for that request.
 */
#ifndef ANALYTICSD_REPORT_CACHE_H
#define ANALYTICSD_REPORT_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "common/jbuf.h"
#include "common/redisconn.h"

/*
 * Sends the lookup for slug and the 64-character hash of the canonical parameters. With
 * use_eval the script text is sent (EVAL) instead of its SHA-1 (EVALSHA). cb gets the raw
 * reply; decode it with cache_lookup_reply. Returns the command handle (never NULL).
 */
redisconn_cmd *cache_lookup(redisconn *r, const char *slug, size_t slug_len, const char *hash,
                            int use_eval, redisconn_cb cb, void *data);

typedef enum {
    CACHE_REPLY_NOSCRIPT, /* the script is not loaded: send again with use_eval */
    CACHE_REPLY_OFF,      /* error reply, odd reply or non-integer version: no cache */
    CACHE_REPLY_MISS,     /* *version set, no entry */
    CACHE_REPLY_HIT,      /* *version set, *value and *len: the stored entry (borrowed) */
} cache_reply_status;

/* Decodes a lookup reply (st/reply as given to the callback). */
cache_reply_status cache_lookup_reply(redisconn_status st, const redisReply *reply,
                                      int64_t *version, const char **value, size_t *len);

/* Appends "report:{slug}:v{version}:{hash}". */
void cache_key(jbuf *b, const char *slug, size_t slug_len, int64_t version, const char *hash);

/*
 * SET key value EX ttl. cb (may be NULL) gets the reply like any redisconn command; the miss
 * path waits for it before answering, so a client that reads again at once (on any worker)
 * finds the entry. Returns the command handle (never NULL).
 */
redisconn_cmd *cache_store(redisconn *r, const char *key, size_t key_len, const char *value,
                           size_t len, int32_t ttl_seconds, redisconn_cb cb, void *data);

/* What a stored entry must match to be served for this request. */
typedef struct cache_expect {
    const char *slug;
    size_t slug_len;
    const char *window;    /* "day" / "week" */
    const char *date_from; /* YYYY-MM-DD */
    const char *date_to;
} cache_expect;

/*
 * Checks that stored[0..len) is a ReportResult as this service writes it on a miss (parsed
 * with jansson: the ten members with their types, row_count = length of rows, cache_hit false,
 * source_system "postgres", and the slug, window and dates of the request), then appends the
 * full hit response body to out:
 *   {"data":<stored with cache_hit:true and source_system:"redis">,"meta":{"cache_hit":true}}\n
 * Only those two members change; every other byte is the stored text. Returns 0, or -1 (out
 * unchanged) when the entry is not usable: the caller treats it as a miss and overwrites it.
 */
int cache_hit_body(jbuf *out, const char *stored, size_t len, const cache_expect *expect);

/*
 * The hit path used by the handler: like cache_hit_body, but remembers the last validated
 * entries of this process (CACHE_MEMO_SLOTS, values up to CACHE_MEMO_MAX_VALUE bytes) under
 * (slug, version, hash). When the same key returns byte-identical stored text again, the
 * remembered response is reused without parsing (the check is a memcmp); any other text is
 * validated afresh. On 0, *body and *body_len are the full response body, valid until the next
 * call; on -1 the entry is unusable (a miss).
 */
#define CACHE_MEMO_SLOTS     64
#define CACHE_MEMO_MAX_VALUE (256 * 1024)
int cache_hit_response(const char *hash, int64_t version, const char *stored, size_t len,
                       const cache_expect *expect, const char **body, size_t *body_len);

#endif
