/*
 * server/localcache.h: a bounded in-memory map from Redis key names to local copies of their
 * values (issue 16, DATA.md §7.4 "Local copies"). Pure data structure: no I/O, no clock of its
 * own, no knowledge of when a copy is stale; the rules that keep copies exact live in
 * server/redistrack.h, which owns the one instance of each HTTP worker. Runs in HTTP workers,
 * on the worker's event loop (single-threaded; no locking).
 *
 * Each item is (key, value bytes, an int64 `num`, a deadline). The map holds at most max_bytes
 * of accounted memory (LOCALCACHE_ITEM_OVERHEAD + key + value per item, which covers the
 * allocation itself and its share of the hash table); inserting past the bound evicts least
 * recently used items first. An item whose deadline has passed is never returned: the lookup
 * that finds it frees it. Allocation failure aborts (xmalloc).
 */
#ifndef ANALYTICSD_LOCALCACHE_H
#define ANALYTICSD_LOCALCACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct localcache localcache;

/* Bytes charged per item on top of its key and value: the node, malloc's header and rounding,
 * and the bucket pointer (a generous upper bound, so the bound holds in resident memory). */
#define LOCALCACHE_ITEM_OVERHEAD 128

/* No deadline (a key without a Redis TTL). */
#define LOCALCACHE_FOREVER INT64_MAX

/* An empty map bounded by max_bytes (> 0). Never NULL. */
localcache *localcache_create(size_t max_bytes);

/* Frees every item and the map. NULL is ignored. */
void localcache_destroy(localcache *lc);

/*
 * The item stored under key, if any and if now_ns (CLOCK_MONOTONIC) is before its deadline:
 * *value / *len (valid until the next call that modifies the map) and *num; the item becomes
 * the most recently used. Returns 0, or -1 when absent or expired (an expired item is freed).
 */
int localcache_get(localcache *lc, const char *key, size_t key_len, int64_t now_ns,
                   const char **value, size_t *len, int64_t *num);

/*
 * Stores a copy of value under key (replacing any item of that key), with num and deadline_ns,
 * as the most recently used item, evicting least recently used items until the bound holds.
 * Returns the number of items evicted (>= 0), or -1 when the item alone exceeds the bound (then
 * nothing is stored and any old item of that key is gone).
 */
int localcache_put(localcache *lc, const char *key, size_t key_len, const char *value, size_t len,
                   int64_t num, int64_t deadline_ns);

/* Frees the item of key. Returns 1 when there was one, else 0. */
int localcache_drop(localcache *lc, const char *key, size_t key_len);

/* Frees every item. Returns how many there were. */
size_t localcache_clear(localcache *lc);

/* Accounted bytes and number of items held now. */
size_t localcache_bytes(const localcache *lc);
size_t localcache_count(const localcache *lc);

#endif
