/*
 * common/params.c: query-string and parameter rules (see params.h). Run by the HTTP workers.
 */
#include "common/params.h"

#include "common/registry.h"

#include <string.h>

/* One non-empty piece of a query string without ';', still encoded. */
typedef struct raw_piece {
    const char *name, *value; /* value NULL when the piece has no '=' */
    size_t name_len, value_len;
} raw_piece;

/* Moves *pos past the next non-empty piece of qs without ';' and describes it in *p; returns
 * false when there is none left. Escapes are checked when the piece is decoded. */
static bool next_piece(const char *qs, size_t qs_len, size_t *pos, raw_piece *p)
{
    while (*pos < qs_len) {
        const char *piece = qs + *pos;
        const char *amp = memchr(piece, '&', qs_len - *pos);
        size_t n = amp ? (size_t)(amp - piece) : qs_len - *pos;
        *pos += n + 1;
        if (n == 0 || memchr(piece, ';', n) != NULL)
            continue;
        const char *eq = memchr(piece, '=', n);
        p->name = piece;
        p->name_len = eq ? (size_t)(eq - piece) : n;
        p->value = eq ? eq + 1 : NULL;
        p->value_len = eq ? n - p->name_len - 1 : 0;
        return true;
    }
    return false;
}

size_t query_piece_bound(const char *qs, size_t qs_len)
{
    size_t n = 1;
    for (const char *p = qs, *end = qs + qs_len; (p = memchr(p, '&', (size_t)(end - p))) != NULL;
         p++)
        n++;
    return n;
}

size_t query_parse(const char *qs, size_t qs_len, query_param *out, char *buf)
{
    size_t count = 0, pos = 0, used = 0;
    raw_piece p;
    while (next_piece(qs, qs_len, &pos, &p)) {
        query_param *q = &out[count];
        q->name = buf + used;
        if (text_percent_decode(p.name, p.name_len, true, buf + used, &q->name_len) != 0)
            continue; /* a malformed escape drops the whole piece */
        q->value = buf + used + q->name_len;
        q->value_len = 0;
        if (p.value != NULL && text_percent_decode(p.value, p.value_len, true,
                                                   buf + used + q->name_len, &q->value_len) != 0)
            continue;
        used += q->name_len + q->value_len;
        count++;
    }
    return count;
}

const query_param *query_find(const query_param *params, size_t n, const char *name)
{
    size_t name_len = strlen(name);
    for (size_t i = 0; i < n; i++)
        if (params[i].name_len == name_len && memcmp(params[i].name, name, name_len) == 0)
            return &params[i];
    return NULL;
}

param_int_status param_int(const char *v, size_t len, bool present, int64_t *out)
{
    if (!present || text_is_blank(v, len))
        return PARAM_INT_DEFAULT;
    size_t i = 0;
    bool neg = false;
    if (v[0] == '+' || v[0] == '-') {
        neg = v[0] == '-';
        i = 1;
    }
    if (i == len)
        return PARAM_INT_DEFAULT;
    /* Accumulate the magnitude; the limit is 2^63 for negatives, 2^63 - 1 otherwise. */
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t acc = 0;
    for (; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return PARAM_INT_DEFAULT;
        unsigned dgt = (unsigned)(v[i] - '0');
        if (acc > (limit - dgt) / 10)
            return PARAM_INT_DEFAULT;
        acc = acc * 10 + dgt;
    }
    if (neg)
        *out = acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc;
    else
        *out = (int64_t)acc;
    return PARAM_INT_SET;
}

int param_window(const char *v, size_t len, const char **out)
{
    size_t start = 0, n = 0;
    if (v != NULL)
        text_trim(v, len, &start, &n);
    if (n == 0) {
        *out = registry_windows[0].name; /* day */
        return 0;
    }
    char low[8];
    if (n >= sizeof(low))
        return -1;
    for (size_t i = 0; i < n; i++) {
        char c = v[start + i];
        if (c == '\0')
            return -1; /* a window name has no NUL: "week\0" is not week */
        low[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    low[n] = '\0';
    const registry_window *w = registry_window_find(low);
    if (w == NULL || !w->report_api)
        return -1;
    *out = w->name;
    return 0;
}

int uuid_parse(const char *s, size_t len, char out[37])
{
    static const char hex[] = "0123456789abcdef";
    size_t i = 0, end = len, o = 0;
    if (len > 0 && s[0] == '{') {
        if (s[len - 1] != '}')
            return -1;
        i = 1;
        end = len - 1;
    }
    /* 16 bytes of two hex digits; after each odd byte except the last, an optional '-'. */
    for (int byte = 0; byte < 16; byte++) {
        if (end - i < 2)
            return -1;
        int hi = text_hex_value((unsigned char)s[i]), lo = text_hex_value((unsigned char)s[i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        i += 2;
        if (byte == 4 || byte == 6 || byte == 8 || byte == 10)
            out[o++] = '-';
        out[o++] = hex[hi];
        out[o++] = hex[lo];
        if (byte % 2 == 1 && byte < 15 && i < end && s[i] == '-')
            i++;
    }
    if (i != end)
        return -1;
    out[o] = '\0';
    return 0;
}
