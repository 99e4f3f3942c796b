/*
 * common/json_sorted.c: re-emits JSON text (jsonb output from PostgreSQL) with object keys in
 * byte order at every level (API.md §1.4: objects whose keys are data), strings through
 * jout_string. Runs in the HTTP workers.
 */
#include "common/json_sorted.h"

#include "common/json_out.h"

#include "common/util.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

typedef struct sorted_key {
    const char *key;
    size_t len;
    json_t *value;
} sorted_key;

static int sorted_key_cmp(const void *a, const void *b)
{
    const sorted_key *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->key, y->key, n);
    if (c != 0)
        return c;
    return x->len < y->len ? -1 : x->len > y->len ? 1 : 0;
}

static void write_sorted(jbuf *b, json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        size_t n = json_object_size(v), i = 0;
        sorted_key *keys = xcalloc(n > 0 ? n : 1, sizeof(*keys));
        for (void *it = json_object_iter(v); it != NULL; it = json_object_iter_next(v, it)) {
            keys[i].key = json_object_iter_key(it);
            keys[i].len = json_object_iter_key_len(it);
            keys[i].value = json_object_iter_value(it);
            i++;
        }
        qsort(keys, i, sizeof(*keys), sorted_key_cmp);
        jbuf_putc(b, '{');
        for (size_t k = 0; k < i; k++) {
            if (k > 0)
                jbuf_putc(b, ',');
            jout_string(b, keys[k].key, keys[k].len);
            jbuf_putc(b, ':');
            write_sorted(b, keys[k].value);
        }
        jbuf_putc(b, '}');
        free(keys);
        break;
    }
    case JSON_ARRAY:
        jbuf_putc(b, '[');
        for (size_t k = 0; k < json_array_size(v); k++) {
            if (k > 0)
                jbuf_putc(b, ',');
            write_sorted(b, json_array_get(v, k));
        }
        jbuf_putc(b, ']');
        break;
    case JSON_STRING:
        jout_string(b, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        jbuf_printf(b, "%lld", (long long)json_integer_value(v));
        break;
    case JSON_REAL:
        jbuf_printf(b, "%.17g", json_real_value(v));
        break;
    case JSON_TRUE:
        jbuf_puts(b, "true");
        break;
    case JSON_FALSE:
        jbuf_puts(b, "false");
        break;
    case JSON_NULL:
        jbuf_puts(b, "null");
        break;
    }
}

int jout_sorted(jbuf *b, const char *s, size_t len)
{
    json_error_t err;
    json_t *v = json_loadb(s, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (v == NULL)
        return -1;
    write_sorted(b, v);
    json_decref(v);
    return 0;
}
