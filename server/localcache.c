/*
 * server/localcache.c: the bounded LRU map of local copies (see localcache.h). Runs in HTTP
 * workers, on the worker's event loop.
 *
 * Layout: one allocation per item (node, then key bytes, then value bytes); a chained hash
 * table of power-of-two size that doubles when the item count passes it; an intrusive
 * doubly-linked LRU list whose head is the most recently used item.
 */
#include "server/localcache.h"

#include <stdlib.h>
#include <string.h>

#include "common/util.h"

typedef struct lc_item {
    struct lc_item *chain;       /* next in the bucket */
    struct lc_item *prev, *next; /* LRU list: prev towards the head (newer) */
    uint64_t hash;
    int64_t num;
    int64_t deadline_ns;
    size_t key_len, len;
    char bytes[]; /* key, then value */
} lc_item;

struct localcache {
    size_t max_bytes, bytes, count;
    lc_item **buckets;
    size_t nbuckets; /* power of two */
    lc_item *head, *tail;
};

static uint64_t hash_key(const char *key, size_t len)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a, then a final mix */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)key[i]) * 1099511628211ULL;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ULL;
    return h ^ (h >> 32);
}

static size_t item_cost(size_t key_len, size_t len)
{
    return LOCALCACHE_ITEM_OVERHEAD + key_len + len;
}

localcache *localcache_create(size_t max_bytes)
{
    localcache *lc = xcalloc(1, sizeof(*lc));
    lc->max_bytes = max_bytes;
    lc->nbuckets = 64;
    lc->buckets = xcalloc(lc->nbuckets, sizeof(*lc->buckets));
    return lc;
}

static void lru_unlink(localcache *lc, lc_item *it)
{
    if (it->prev != NULL)
        it->prev->next = it->next;
    else
        lc->head = it->next;
    if (it->next != NULL)
        it->next->prev = it->prev;
    else
        lc->tail = it->prev;
    it->prev = it->next = NULL;
}

static void lru_push_head(localcache *lc, lc_item *it)
{
    it->prev = NULL;
    it->next = lc->head;
    if (lc->head != NULL)
        lc->head->prev = it;
    lc->head = it;
    if (lc->tail == NULL)
        lc->tail = it;
}

/* The bucket slot that points at the item of key (or the slot holding NULL at the chain's end). */
static lc_item **find_slot(localcache *lc, uint64_t h, const char *key, size_t key_len)
{
    lc_item **p = &lc->buckets[h & (lc->nbuckets - 1)];
    while (*p != NULL &&
           !((*p)->hash == h && (*p)->key_len == key_len && memcmp((*p)->bytes, key, key_len) == 0))
        p = &(*p)->chain;
    return p;
}

static void free_item(localcache *lc, lc_item **slot)
{
    lc_item *it = *slot;
    *slot = it->chain;
    lru_unlink(lc, it);
    lc->bytes -= item_cost(it->key_len, it->len);
    lc->count--;
    free(it);
}

static void remove_item(localcache *lc, lc_item *it)
{
    free_item(lc, find_slot(lc, it->hash, it->bytes, it->key_len));
}

static void grow(localcache *lc)
{
    size_t n = lc->nbuckets * 2;
    lc_item **b = xcalloc(n, sizeof(*b));
    for (size_t i = 0; i < lc->nbuckets; i++) {
        lc_item *it = lc->buckets[i];
        while (it != NULL) {
            lc_item *next = it->chain;
            it->chain = b[it->hash & (n - 1)];
            b[it->hash & (n - 1)] = it;
            it = next;
        }
    }
    free(lc->buckets);
    lc->buckets = b;
    lc->nbuckets = n;
}

int localcache_get(localcache *lc, const char *key, size_t key_len, int64_t now_ns,
                   const char **value, size_t *len, int64_t *num)
{
    lc_item **slot = find_slot(lc, hash_key(key, key_len), key, key_len);
    lc_item *it = *slot;
    if (it == NULL)
        return -1;
    if (now_ns >= it->deadline_ns) {
        free_item(lc, slot);
        return -1;
    }
    if (lc->head != it) {
        lru_unlink(lc, it);
        lru_push_head(lc, it);
    }
    *value = it->bytes + it->key_len;
    *len = it->len;
    *num = it->num;
    return 0;
}

int localcache_put(localcache *lc, const char *key, size_t key_len, const char *value, size_t len,
                   int64_t num, int64_t deadline_ns)
{
    uint64_t h = hash_key(key, key_len);
    lc_item **slot = find_slot(lc, h, key, key_len);
    if (*slot != NULL)
        free_item(lc, slot);
    size_t cost = item_cost(key_len, len);
    if (cost > lc->max_bytes)
        return -1;
    int evicted = 0;
    while (lc->bytes + cost > lc->max_bytes) {
        remove_item(lc, lc->tail);
        evicted++;
    }
    if (lc->count + 1 > lc->nbuckets)
        grow(lc);
    lc_item *it = xmalloc(sizeof(*it) + key_len + len);
    it->hash = h;
    it->num = num;
    it->deadline_ns = deadline_ns;
    it->key_len = key_len;
    it->len = len;
    memcpy(it->bytes, key, key_len);
    if (len > 0)
        memcpy(it->bytes + key_len, value, len);
    slot = &lc->buckets[h & (lc->nbuckets - 1)];
    it->chain = *slot;
    *slot = it;
    it->prev = it->next = NULL;
    lru_push_head(lc, it);
    lc->bytes += cost;
    lc->count++;
    return evicted;
}

int localcache_drop(localcache *lc, const char *key, size_t key_len)
{
    lc_item **slot = find_slot(lc, hash_key(key, key_len), key, key_len);
    if (*slot == NULL)
        return 0;
    free_item(lc, slot);
    return 1;
}

size_t localcache_clear(localcache *lc)
{
    size_t n = lc->count;
    lc_item *it = lc->head;
    while (it != NULL) {
        lc_item *next = it->next;
        free(it);
        it = next;
    }
    memset(lc->buckets, 0, lc->nbuckets * sizeof(*lc->buckets));
    lc->head = lc->tail = NULL;
    lc->bytes = lc->count = 0;
    return n;
}

void localcache_destroy(localcache *lc)
{
    if (lc == NULL)
        return;
    localcache_clear(lc);
    free(lc->buckets);
    free(lc);
}

size_t localcache_bytes(const localcache *lc)
{
    return lc->bytes;
}

size_t localcache_count(const localcache *lc)
{
    return lc->count;
}
