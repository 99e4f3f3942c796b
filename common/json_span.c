/*
 * common/json_span.c: raw value spans in JSON text already accepted by a parser (see
 * json_span.h). Pure code, used in the ingest and HTTP workers.
 */
#include "common/json_span.h"

#include "common/textutil.h"

#include <stdbool.h>
#include <string.h>

static size_t skip_ws(const char *s, size_t i, size_t n)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* s[i] is the opening quote; returns the index after the closing one. */
static size_t skip_string(const char *s, size_t i, size_t n)
{
    for (i++; i < n; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return n;
}

/* Returns the index just after the value starting at s[i]. */
static size_t skip_value(const char *s, size_t i, size_t n)
{
    if (i >= n)
        return n;
    if (s[i] == '"')
        return skip_string(s, i, n);
    if (s[i] == '{' || s[i] == '[') {
        int depth = 0;
        while (i < n) {
            char c = s[i];
            if (c == '"') {
                i = skip_string(s, i, n);
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if ((c == '}' || c == ']') && --depth == 0)
                return i + 1;
            i++;
        }
        return n;
    }
    while (i < n && strchr(",}] \t\n\r", s[i]) == NULL)
        i++;
    return i;
}

/* Whether the string literal body k[0..n) (between the quotes) unescapes to name (ASCII). */
static bool key_equals(const char *k, size_t n, const char *name)
{
    size_t o = 0, want = strlen(name);
    for (size_t i = 0; i < n; i++, o++) {
        char c = k[i];
        if (c == '\\' && i + 1 < n) {
            char e = k[++i];
            if (e == 'u') {
                if (n - i < 5)
                    return false;
                int v = 0;
                for (int j = 1; j <= 4; j++) {
                    int h = text_hex_value((unsigned char)k[i + j]);
                    if (h < 0)
                        return false;
                    v = v * 16 + h;
                }
                if (v == 0 || v >= 0x80)
                    return false; /* member names of ours are ASCII without NUL */
                c = (char)v;
                i += 4;
            } else {
                c = e == 'b'   ? '\b'
                    : e == 'f' ? '\f'
                    : e == 'n' ? '\n'
                    : e == 'r' ? '\r'
                    : e == 't' ? '\t'
                               : e;
            }
        }
        if (o >= want || name[o] != c)
            return false;
    }
    return o == want;
}

int json_span_member(const char *raw, size_t len, const char *name, const char **val, size_t *vlen)
{
    size_t i = skip_ws(raw, 0, len);
    if (i >= len || raw[i] != '{')
        return -1;
    int found = -1;
    i = skip_ws(raw, i + 1, len);
    while (i < len && raw[i] == '"') {
        size_t key_start = i + 1;
        i = skip_string(raw, i, len);
        size_t key_len = i > key_start ? i - key_start - 1 : 0;
        i = skip_ws(raw, i, len);
        if (i >= len || raw[i] != ':')
            return found;
        i = skip_ws(raw, i + 1, len);
        size_t v_start = i;
        i = skip_value(raw, i, len);
        if (key_equals(raw + key_start, key_len, name)) {
            *val = raw + v_start;
            *vlen = i - v_start;
            found = 0;
        }
        i = skip_ws(raw, i, len);
        if (i < len && raw[i] == ',')
            i = skip_ws(raw, i + 1, len);
    }
    return found;
}

int json_span_next_element(const char *arr, size_t len, size_t *pos, const char **el, size_t *ellen)
{
    size_t i = *pos;
    if (i == 0) {
        i = skip_ws(arr, 0, len);
        if (i >= len || arr[i] != '[')
            return 0;
        i++;
    }
    i = skip_ws(arr, i, len);
    if (i < len && arr[i] == ',')
        i = skip_ws(arr, i + 1, len);
    if (i >= len || arr[i] == ']') {
        *pos = len;
        return 0;
    }
    size_t start = i;
    i = skip_value(arr, i, len);
    *el = arr + start;
    *ellen = i - start;
    *pos = i;
    return 1;
}
