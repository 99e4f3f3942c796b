/*
 * server/sms_cache.c: the per-worker answer cache of the SMS read routes (see sms_cache.h).
 * Runs in HTTP workers.
 */
#include "server/sms_cache.h"

#include "common/util.h"

#include <stdlib.h>
#include <string.h>

typedef struct entry {
    char *key;
    size_t key_len;
    char *body;
    size_t len;
    int64_t expires_ns;
} entry;

struct sms_cache {
    entry *slots;
    size_t n;
};

/* FNV-1a, 64 bits. */
static uint64_t hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

sms_cache *sms_cache_create(size_t slots)
{
    sms_cache *c = xcalloc(1, sizeof(*c));
    c->n = slots;
    c->slots = xcalloc(slots, sizeof(entry));
    return c;
}

void sms_cache_free(sms_cache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++) {
        free(c->slots[i].key);
        free(c->slots[i].body);
    }
    free(c->slots);
    free(c);
}

int sms_cache_get(sms_cache *c, const char *key, size_t key_len, int64_t now_ns, const char **body,
                  size_t *len)
{
    entry *e = &c->slots[hash(key, key_len) % c->n];
    if (e->key == NULL || e->expires_ns <= now_ns || e->key_len != key_len ||
        memcmp(e->key, key, key_len) != 0)
        return 0;
    *body = e->body;
    *len = e->len;
    return 1;
}

void sms_cache_put(sms_cache *c, const char *key, size_t key_len, const char *body, size_t len,
                   int64_t expires_ns)
{
    entry *e = &c->slots[hash(key, key_len) % c->n];
    free(e->key);
    free(e->body);
    e->key = xmalloc(key_len);
    memcpy(e->key, key, key_len);
    e->key_len = key_len;
    e->body = xmalloc(len);
    memcpy(e->body, body, len);
    e->len = len;
    e->expires_ns = expires_ns;
}
