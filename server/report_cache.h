/*
 * server/report_cache.h: the Redis response cache of report runs (DATA.md §7.2–§7.4, API.md
 * §6), as used by the HTTP workers on their event loop (redisconn).
 *
 * Round trips: a lookup is ONE command, MGET report:version:{slug} report:{slug}:v{G}:{hash},
 * where G is this process's guess of the slug's version (the last one it saw). When the version
 * read equals G, the second value is the entry (or its absence, a miss) under exactly the key
 * DATA.md §7.3 builds from that version. When it differs (a recompute bumped it since), the
 * caller remembers the new version and looks up again with it; when the version key is missing,
 * the caller sends SET report:version:{slug} 1 NX and looks up again (the F9 sequence of §7.2:
 * the next MGET reads the value that won). Each extra round trip happens once per version bump
 * per process, so a steady hit costs one MGET, two plain key reads inside Redis. A version
 * value that is not a canonical decimal integer disables the cache for the request. The write
 * after a miss is a plain SET key value EX ttl.
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
 * Sends the lookup MGET for slug, the version guess and the 64-character hash of the
 * canonical parameters. cb gets the raw reply; decode it with cache_lookup_reply and the same
 * guess. Returns the command handle (never NULL).
 */
redisconn_cmd *cache_lookup(redisconn *r, const char *slug, size_t slug_len, int64_t guess,
                            const char *hash, redisconn_cb cb, void *data);

typedef enum {
    CACHE_REPLY_OFF,    /* failure, error reply, odd reply or non-integer version: no cache */
    CACHE_REPLY_ABSENT, /* the version key does not exist: cache_version_create, look up again */
    CACHE_REPLY_STALE,  /* *version set and not the guess: look up again with *version */
    CACHE_REPLY_MISS,   /* *version set (the guess), no entry */
    CACHE_REPLY_HIT,    /* *version set, *value and *len: the stored entry (borrowed) */
} cache_reply_status;

/* Decodes a lookup reply (st/reply as given to the callback; guess as sent). */
cache_reply_status cache_lookup_reply(redisconn_status st, const redisReply *reply, int64_t guess,
                                      int64_t *version, const char **value, size_t *len);

/*
 * SET report:version:{slug} 1 NX, its reply ignored (a failure reaches the trusted flag through
 * redisconn). Sent just before the next lookup on the same connection, so that lookup reads the
 * value that won. Returns the command handle (never NULL); it needs no cancelling.
 */
redisconn_cmd *cache_version_create(redisconn *r, const char *slug, size_t slug_len);

/*
 * This process's guess of a slug's version: the last value given to cache_version_remember
 * for it (CACHE_GUESS_SLOTS slots; a slug that lost its slot guesses 0, which no lookup
 * confirms unless the version really is 0). A wrong guess costs one extra round trip, never a
 * wrong answer: the MGET reads the real version beside the guessed entry.
 */
#define CACHE_GUESS_SLOTS 64
int64_t cache_version_guess(const char *slug, size_t slug_len);
void cache_version_remember(const char *slug, size_t slug_len, int64_t version);

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
 * The stored value (DATA.md §7.4, API.md §4.4 "Freshness"): the ReportResult `data` of the miss
 * exactly as served, with the result's freshness object next to it, so that a hit repeats it
 * without a query:  {"data":<ReportResult>,"freshness":<{} or {"rebuilt_at":"<timestamp>"}>}
 * Appends that value to out.
 */
void cache_entry_value(jbuf *out, const char *data, size_t len, const char *freshness,
                       size_t freshness_len);

/*
 * Checks that value[0..len) is an entry as cache_entry_value writes it (or a bare ReportResult,
 * whose freshness is then {}), whose ReportResult is as this service writes it on a miss
 * (parsed with jansson: the ten members with their types, row_count = length of rows, cache_hit
 * false, source_system "postgres", and the slug, window and dates of the request), then appends
 * the full hit response body to out:
 *   {"data":<result with cache_hit:true and source_system:"redis">,
 *    "meta":{"cache_hit":true,"freshness":<stored freshness>}}\n
 * Only those two members change; every other byte is the stored text. Returns 0, or -1 (out
 * unchanged) when the entry is not usable: the caller treats it as a miss and overwrites it.
 */
int cache_hit_body(jbuf *out, const char *value, size_t len, const cache_expect *expect);

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
