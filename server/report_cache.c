/*
 * server/report_cache.c: the report response cache on Redis (see report_cache.h). Runs in
 * HTTP workers, on the worker's event loop.
 */
#include "server/report_cache.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/cachekey.h"
#include "common/util.h"

/* ---- lookup ------------------------------------------------------------------------------ */

redisconn_cmd *cache_lookup(redisconn *r, const char *slug, size_t slug_len, int64_t guess,
                            const char *hash, redisconn_cb cb, void *data)
{
    jbuf keys;
    jbuf_init(&keys);
    jbuf_reserve(&keys, 2 * slug_len + 128);
    cachekey_version(&keys, slug, slug_len);
    size_t vk_len = keys.len;
    cachekey_entry(&keys, slug, slug_len, guess, hash);
    const char *argv[] = {"MGET", keys.data, keys.data + vk_len};
    const size_t argvlen[] = {4, vk_len, keys.len - vk_len};
    redisconn_cmd *cmd = redisconn_command_argv(r, 3, argv, argvlen, cb, data);
    jbuf_free(&keys);
    return cmd;
}

redisconn_cmd *cache_version_create(redisconn *r, const char *slug, size_t slug_len)
{
    jbuf key;
    jbuf_init(&key);
    cachekey_version(&key, slug, slug_len);
    const char *argv[] = {"SET", key.data, "1", "NX"};
    const size_t argvlen[] = {3, key.len, 1, 2};
    redisconn_cmd *cmd = redisconn_command_argv(r, 4, argv, argvlen, NULL, NULL);
    jbuf_free(&key);
    return cmd;
}

/* Parses a canonical decimal int64 (what INCR and SET 1 produce). */
static int parse_version(const char *s, size_t len, int64_t *out)
{
    if (len == 0 || len > 20)
        return -1;
    size_t i = s[0] == '-' ? 1 : 0;
    if (i == len || (s[i] == '0' && len > i + 1) || (i == 1 && s[1] == '0'))
        return -1;
    uint64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_C(9223372036854775808) - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (s[0] == '-') {
        *out = v == UINT64_C(9223372036854775808) ? INT64_MIN : -(int64_t)v;
        return 0;
    }
    if (v > INT64_MAX)
        return -1;
    *out = (int64_t)v;
    return 0;
}

cache_reply_status cache_lookup_reply(redisconn_status st, const redisReply *reply, int64_t guess,
                                      int64_t *version, const char **value, size_t *len)
{
    if (st != REDISCONN_OK || reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
        reply->elements != 2)
        return CACHE_REPLY_OFF;
    const redisReply *v = reply->element[0], *e = reply->element[1];
    if (v->type == REDIS_REPLY_NIL)
        return CACHE_REPLY_ABSENT;
    if (v->type != REDIS_REPLY_STRING || parse_version(v->str, v->len, version) != 0)
        return CACHE_REPLY_OFF;
    if (*version != guess)
        return CACHE_REPLY_STALE;
    if (e->type != REDIS_REPLY_STRING)
        return CACHE_REPLY_MISS;
    *value = e->str;
    *len = e->len;
    return CACHE_REPLY_HIT;
}

redisconn_cmd *cache_store(redisconn *r, const char *key, size_t key_len, const char *value,
                           size_t len, int32_t ttl_seconds, redisconn_cb cb, void *data)
{
    char ttl[16];
    int n = snprintf(ttl, sizeof(ttl), "%d", (int)ttl_seconds);
    const char *argv[] = {"SET", key, value, "EX", ttl};
    const size_t argvlen[] = {3, key_len, len, 2, (size_t)n};
    return redisconn_command_argv(r, 5, argv, argvlen, cb, data);
}

/* ---- hit ------------------------------------------------------------------------------- */

static int member_is(json_t *obj, const char *key, const char *s, size_t len)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) && json_string_length(v) == len &&
           memcmp(json_string_value(v), s, len) == 0;
}

static int stored_is_report_result(const char *stored, size_t len, const cache_expect *x)
{
    json_error_t err;
    json_t *obj = json_loadb(stored, len, JSON_REJECT_DUPLICATES, &err);
    int ok = json_is_object(obj) && json_object_size(obj) == 10 &&
             member_is(obj, "report_slug", x->slug, x->slug_len) &&
             member_is(obj, "window", x->window, strlen(x->window)) &&
             member_is(obj, "date_from", x->date_from, strlen(x->date_from)) &&
             member_is(obj, "date_to", x->date_to, strlen(x->date_to)) &&
             json_is_string(json_object_get(obj, "generated_at")) &&
             json_is_false(json_object_get(obj, "cache_hit")) &&
             member_is(obj, "source_system", "postgres", 8) &&
             json_is_integer(json_object_get(obj, "execution_ms")) &&
             json_integer_value(json_object_get(obj, "execution_ms")) >= 0;
    json_t *rows = json_object_get(obj, "rows");
    json_t *count = json_object_get(obj, "row_count");
    ok = ok && json_is_array(rows) && json_is_integer(count) &&
         json_integer_value(count) == (json_int_t)json_array_size(rows);
    for (size_t i = 0; ok && i < json_array_size(rows); i++)
        ok = json_is_object(json_array_get(rows, i));
    json_decref(obj);
    return ok;
}

/* Moves *end back over the literal lit if the text ends with it there. */
static int back_over(const char *s, size_t *end, const char *lit)
{
    size_t n = strlen(lit);
    if (*end < n || memcmp(s + *end - n, lit, n) != 0)
        return 0;
    *end -= n;
    return 1;
}

static int back_over_digits(const char *s, size_t *end)
{
    size_t start = *end;
    while (*end > 0 && s[*end - 1] >= '0' && s[*end - 1] <= '9')
        (*end)--;
    return *end < start;
}

#define TAIL_SOURCE     ",\"source_system\":\"postgres\"}"
#define TAIL_CACHE_HIT  ",\"cache_hit\":false"
#define ENVELOPE_HEAD   "{\"data\":"
#define ENVELOPE_MIDDLE ",\"freshness\":"

/* Whether f[0..len) is a freshness object as cache_entry_value writes it: {} or
 * {"rebuilt_at":"<timestamp>"} (digits, '-', ':', '.', 'T', 'Z'). */
static int freshness_is_valid(const char *f, size_t len)
{
    static const char head[] = "{\"rebuilt_at\":\"";
    if (len == 2)
        return memcmp(f, "{}", 2) == 0;
    size_t hl = sizeof(head) - 1;
    if (len < hl + 3 || len > hl + 40 || memcmp(f, head, hl) != 0 || f[len - 2] != '"' ||
        f[len - 1] != '}')
        return 0;
    for (size_t i = hl; i < len - 2; i++)
        if (strchr("0123456789-:.TZ", f[i]) == NULL || f[i] == '\0')
            return 0;
    return 1;
}

/* Splits a stored value into its ReportResult and freshness: the envelope
 * {"data":<result>,"freshness":<f>} this service writes, or a bare ReportResult (freshness {}).
 * Returns 0, or -1 for an envelope whose freshness is not valid. */
static int split_entry(const char *stored, size_t len, const char **data, size_t *data_len,
                       const char **fresh, size_t *fresh_len)
{
    size_t hl = sizeof(ENVELOPE_HEAD) - 1, ml = sizeof(ENVELOPE_MIDDLE) - 1;
    *data = stored;
    *data_len = len;
    *fresh = "{}";
    *fresh_len = 2;
    if (len < hl || memcmp(stored, ENVELOPE_HEAD, hl) != 0)
        return 0;
    if (stored[len - 1] != '}')
        return -1;
    /* The freshness object holds no "," so the last ENVELOPE_MIDDLE is the separator. */
    for (size_t i = len - 1; i >= hl + ml; i--) {
        if (memcmp(stored + i - ml, ENVELOPE_MIDDLE, ml) == 0) {
            *data = stored + hl;
            *data_len = i - ml - hl;
            *fresh = stored + i;
            *fresh_len = len - 1 - i;
            return freshness_is_valid(*fresh, *fresh_len) ? 0 : -1;
        }
    }
    return -1;
}

void cache_entry_value(jbuf *out, const char *data, size_t len, const char *freshness,
                       size_t freshness_len)
{
    jbuf_reserve(out, len + freshness_len + 32);
    jbuf_puts(out, ENVELOPE_HEAD);
    jbuf_append(out, data, len);
    jbuf_puts(out, ENVELOPE_MIDDLE);
    jbuf_append(out, freshness, freshness_len);
    jbuf_putc(out, '}');
}

int cache_hit_body(jbuf *out, const char *value, size_t value_len, const cache_expect *expect)
{
    const char *stored, *fresh;
    size_t len, fresh_len;
    if (split_entry(value, value_len, &stored, &len, &fresh, &fresh_len) != 0)
        return -1;
    /* The tail this service writes: ,"cache_hit":false,"row_count":N,"execution_ms":M,
     * "source_system":"postgres"} — checked textually so only those bytes are rewritten. */
    size_t end = len;
    if (!back_over(stored, &end, TAIL_SOURCE))
        return -1;
    size_t counts_end = end;
    if (!back_over_digits(stored, &end) || !back_over(stored, &end, ",\"execution_ms\":") ||
        !back_over_digits(stored, &end) || !back_over(stored, &end, ",\"row_count\":"))
        return -1;
    size_t counts_start = end;
    if (!back_over(stored, &end, TAIL_CACHE_HIT))
        return -1;
    if (!stored_is_report_result(stored, len, expect))
        return -1;
    jbuf_reserve(out, len + fresh_len + 64);
    jbuf_puts(out, "{\"data\":");
    jbuf_append(out, stored, end);
    jbuf_puts(out, ",\"cache_hit\":true");
    jbuf_append(out, stored + counts_start, counts_end - counts_start);
    jbuf_puts(out, ",\"source_system\":\"redis\"},\"meta\":{\"cache_hit\":true,\"freshness\":");
    jbuf_append(out, fresh, fresh_len);
    jbuf_puts(out, "}}\n");
    return 0;
}

/* ---- memo of validated entries ------------------------------------------------------------ */

typedef struct memo_slot {
    char hash[64];
    int64_t version;
    char *slug;
    size_t slug_len;
    char *value;
    size_t value_len;
    jbuf body;
} memo_slot;

static memo_slot memo[CACHE_MEMO_SLOTS];

static size_t memo_index(const char *hash, int64_t version)
{
    uint64_t h = (uint64_t)version * 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < 8; i++)
        h = (h << 4) ^ (uint64_t)(unsigned char)hash[i];
    return (size_t)(h % CACHE_MEMO_SLOTS);
}

int cache_hit_response(const char *hash, int64_t version, const char *stored, size_t len,
                       const cache_expect *expect, const char **body, size_t *body_len)
{
    memo_slot *m = &memo[memo_index(hash, version)];
    if (m->value != NULL && m->version == version && memcmp(m->hash, hash, 64) == 0 &&
        m->slug_len == expect->slug_len && memcmp(m->slug, expect->slug, m->slug_len) == 0 &&
        m->value_len == len && memcmp(m->value, stored, len) == 0) {
        *body = m->body.data;
        *body_len = m->body.len;
        return 0;
    }
    free(m->slug);
    free(m->value);
    m->slug = m->value = NULL;
    jbuf_reset(&m->body);
    if (cache_hit_body(&m->body, stored, len, expect) != 0)
        return -1;
    *body = m->body.data;
    *body_len = m->body.len;
    if (len <= CACHE_MEMO_MAX_VALUE) {
        memcpy(m->hash, hash, 64);
        m->version = version;
        m->slug = xstrndup(expect->slug, expect->slug_len);
        m->slug_len = expect->slug_len;
        m->value = xmalloc(len + 1);
        memcpy(m->value, stored, len);
        m->value_len = len;
    }
    return 0;
}

/* ---- version guesses ---------------------------------------------------------------------- */

typedef struct guess_slot {
    char *slug;
    size_t slug_len;
    int64_t version;
} guess_slot;

static guess_slot guesses[CACHE_GUESS_SLOTS];

static guess_slot *guess_slot_of(const char *slug, size_t slug_len)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < slug_len; i++)
        h = (h ^ (unsigned char)slug[i]) * 1099511628211ULL;
    return &guesses[h % CACHE_GUESS_SLOTS];
}

int64_t cache_version_guess(const char *slug, size_t slug_len)
{
    guess_slot *g = guess_slot_of(slug, slug_len);
    if (g->slug != NULL && g->slug_len == slug_len && memcmp(g->slug, slug, slug_len) == 0)
        return g->version;
    return 0;
}

void cache_version_remember(const char *slug, size_t slug_len, int64_t version)
{
    guess_slot *g = guess_slot_of(slug, slug_len);
    if (g->slug == NULL || g->slug_len != slug_len || memcmp(g->slug, slug, slug_len) != 0) {
        free(g->slug);
        g->slug = xstrndup(slug, slug_len);
        g->slug_len = slug_len;
    }
    g->version = version;
}
