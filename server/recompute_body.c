/*
 * server/recompute_body.c: decoder of the recompute trigger body (see recompute_body.h). Runs in
 * the HTTP workers; pure code.
 *
 * jansson does the parsing. It rejects invalid UTF-8 and unpaired surrogate escapes, which the
 * contract decodes to U+FFFD instead, so a byte scanner (not a parser) first rewrites exactly
 * those spots inside string literals. Invariants of the scanner:
 *  - It only tracks "outside a string", "inside a string" and "just after a backslash inside a
 *    string", the same way jansson's lexer delimits strings: '"' outside opens, an unescaped '"'
 *    closes, '\' escapes exactly the next byte.
 *  - Bytes outside strings are copied unchanged; so is every valid UTF-8 sequence and every
 *    escape other than an unpaired surrogate \uXXXX inside strings.
 *  - A replaced invalid byte (1 byte) becomes EF BF BD (3 bytes); a replaced escape (6 bytes)
 *    becomes \uFFFD (6 bytes). Output length is therefore at most 3 * input length.
 *  - Replacements never produce '"' or '\' outside an escape, so string boundaries, and with them
 *    the document's structure, are the same before and after; a document jansson rejects for any
 *    other reason is still rejected.
 */
#include "server/recompute_body.h"

#include "common/textutil.h"
#include "common/util.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* If s[0..len) starts with "\uXXXX", stores the code unit and returns 1; else 0. */
static int read_u_escape(const unsigned char *s, size_t len, uint32_t *unit)
{
    if (len < 6 || s[0] != '\\' || s[1] != 'u')
        return 0;
    uint32_t v = 0;
    for (int i = 2; i < 6; i++) {
        int h = text_hex_value(s[i]);
        if (h < 0)
            return 0;
        v = (v << 4) | (uint32_t)h;
    }
    *unit = v;
    return 1;
}

size_t recompute_body_sanitize(const char *in, size_t len, char *out)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t i = 0, o = 0;
    bool in_string = false;
    while (i < len) {
        unsigned char c = s[i];
        if (!in_string) {
            if (c == '"')
                in_string = true;
            out[o++] = (char)c;
            i++;
            continue;
        }
        if (c == '"') {
            in_string = false;
            out[o++] = (char)c;
            i++;
            continue;
        }
        if (c == '\\') {
            uint32_t unit, low;
            if (read_u_escape(s + i, len - i, &unit) && unit >= 0xD800 && unit <= 0xDFFF) {
                if (unit <= 0xDBFF && read_u_escape(s + i + 6, len - i - 6, &low) &&
                    low >= 0xDC00 && low <= 0xDFFF) {
                    memcpy(out + o, s + i, 12); /* a valid pair is kept as written */
                    o += 12;
                    i += 12;
                } else {
                    memcpy(out + o, "\\uFFFD", 6);
                    o += 6;
                    i += 6;
                }
                continue;
            }
            /* Any other escape: copy the backslash and the escaped byte (if any). */
            out[o++] = (char)c;
            i++;
            if (i < len)
                out[o++] = (char)s[i++];
            continue;
        }
        if (c < 0x80) {
            out[o++] = (char)c;
            i++;
            continue;
        }
        uint32_t cp;
        size_t w = utf8_decode(s + i, len - i, &cp);
        if (w == 0) {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        } else {
            memcpy(out + o, s + i, w);
            o += w;
            i += w;
        }
    }
    return o;
}

static recompute_body_str *member_slot(recompute_body *b, const char *key, size_t key_len)
{
    static const struct {
        const char *name;
        size_t offset;
    } members[] = {
        {"report_slug", offsetof(recompute_body, report_slug)},
        {"window", offsetof(recompute_body, window)},
        {"date_from", offsetof(recompute_body, date_from)},
        {"date_to", offsetof(recompute_body, date_to)},
        {"requested_by", offsetof(recompute_body, requested_by)},
    };
    for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++) {
        if (strlen(members[i].name) == key_len && memcmp(members[i].name, key, key_len) == 0)
            return (recompute_body_str *)((char *)b + members[i].offset);
    }
    return NULL;
}

static char *copy_bytes(const char *s, size_t len)
{
    char *p = xmalloc(len + 1);
    if (len != 0)
        memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

int recompute_body_decode(const char *body, size_t len, recompute_body *out)
{
    memset(out, 0, sizeof(*out));
    if (len == 0)
        return -1;
    if (len > SIZE_MAX / 3)
        return -1;
    char *clean = xmalloc(len * 3);
    size_t clean_len = recompute_body_sanitize(body, len, clean);
    json_error_t err;
    json_t *root = json_loadb(clean, clean_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    free(clean);
    if (root == NULL)
        return -1;
    int rc = 0;
    if (json_is_null(root)) {
        rc = 0;
    } else if (!json_is_object(root)) {
        rc = -1;
    } else {
        /* jansson keeps the last occurrence of a repeated key (json_object_setn replaces). */
        for (void *it = json_object_iter(root); it != NULL && rc == 0;
             it = json_object_iter_next(root, it)) {
            const char *key = json_object_iter_key(it);
            size_t key_len = json_object_iter_key_len(it);
            json_t *v = json_object_iter_value(it);
            recompute_body_str *slot = member_slot(out, key, key_len);
            if (slot == NULL || !(json_is_null(v) || json_is_string(v))) {
                rc = -1;
            } else if (json_is_string(v)) {
                slot->len = json_string_length(v);
                slot->s = copy_bytes(json_string_value(v), slot->len);
            }
        }
    }
    json_decref(root);
    if (rc != 0)
        recompute_body_free(out);
    return rc;
}

void recompute_body_free(recompute_body *b)
{
    recompute_body_str *all[] = {&b->report_slug, &b->window, &b->date_from, &b->date_to,
                                 &b->requested_by};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        free(all[i]->s);
        all[i]->s = NULL;
        all[i]->len = 0;
    }
}
