/*
 * common/params.c: query-string and parameter rules (see params.h). Run by the HTTP workers.
 */
#include "common/params.h"

#include "common/registry.h"

#include <string.h>

/* True when p[0..n) has no ';' and every '%' is followed by two hex digits. */
static bool piece_valid(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == ';')
            return false;
        if (p[i] == '%') {
            if (n - i < 3 || text_hex_value((unsigned char)p[i + 1]) < 0 ||
                text_hex_value((unsigned char)p[i + 2]) < 0)
                return false;
            i += 2;
        }
    }
    return true;
}

/* Decodes the valid component p[0..n) into out; returns the decoded length. */
static size_t decode(const char *p, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '+') {
            out[o++] = ' ';
        } else if (p[i] == '%') {
            out[o++] = (char)(text_hex_value((unsigned char)p[i + 1]) * 16 +
                              text_hex_value((unsigned char)p[i + 2]));
            i += 2;
        } else {
            out[o++] = p[i];
        }
    }
    return o;
}

/* True when the valid component p[0..n) decodes to exactly name[0..name_len). */
static bool decoded_equals(const char *p, size_t n, const char *name, size_t name_len)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++, o++) {
        char c;
        if (p[i] == '+') {
            c = ' ';
        } else if (p[i] == '%') {
            c = (char)(text_hex_value((unsigned char)p[i + 1]) * 16 +
                       text_hex_value((unsigned char)p[i + 2]));
            i += 2;
        } else {
            c = p[i];
        }
        if (o >= name_len || name[o] != c)
            return false;
    }
    return o == name_len;
}

/* One valid, non-empty piece of a query string, still encoded. */
typedef struct raw_piece {
    const char *name, *value; /* value NULL when the piece has no '=' */
    size_t name_len, value_len;
} raw_piece;

/* Moves *pos past the next valid non-empty piece of qs and describes it in *p; returns false
 * when there is none left. */
static bool next_piece(const char *qs, size_t qs_len, size_t *pos, raw_piece *p)
{
    while (*pos < qs_len) {
        const char *piece = qs + *pos;
        const char *amp = memchr(piece, '&', qs_len - *pos);
        size_t n = amp ? (size_t)(amp - piece) : qs_len - *pos;
        *pos += n + 1;
        if (n == 0 || !piece_valid(piece, n))
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

int query_get(const char *qs, size_t qs_len, const char *name, char *buf, size_t *out_len)
{
    size_t name_len = strlen(name), pos = 0;
    raw_piece p;
    while (next_piece(qs, qs_len, &pos, &p)) {
        if (!decoded_equals(p.name, p.name_len, name, name_len))
            continue;
        *out_len = p.value != NULL ? decode(p.value, p.value_len, buf) : 0;
        return 1;
    }
    return 0;
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
        query_param *q = &out[count++];
        q->name = buf + used;
        q->name_len = decode(p.name, p.name_len, buf + used);
        used += q->name_len;
        q->value = buf + used;
        q->value_len = p.value != NULL ? decode(p.value, p.value_len, buf + used) : 0;
        used += q->value_len;
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

/* True when p starts with "bearer " in any ASCII case (p holds at least 7 bytes). */
static bool has_bearer_prefix(const char *p)
{
    static const char want[] = "bearer ";
    for (size_t i = 0; i < 7; i++) {
        char c = p[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != want[i])
            return false;
    }
    return true;
}

int auth_candidate(const char *x_key, size_t x_len, const char *authz, size_t authz_len,
                   const char **out, size_t *out_len)
{
    size_t start = 0, n = 0;
    const char *src = NULL;
    if (x_key != NULL) {
        text_trim(x_key, x_len, &start, &n);
        src = x_key;
    }
    if (n == 0 && authz != NULL) {
        text_trim(authz, authz_len, &start, &n);
        src = authz;
    }
    if (n == 0)
        return -1;
    const char *c = src + start;
    if (n >= 7 && has_bearer_prefix(c)) {
        size_t s2, n2;
        text_trim(c + 7, n - 7, &s2, &n2);
        c += 7 + s2;
        n = n2;
        if (n == 0)
            return -1;
    }
    *out = c;
    *out_len = n;
    return 0;
}
