/*
 * common/textutil.c: UTF-8 decoding and text rules (see textutil.h). Run by the HTTP workers.
 */
#include "common/textutil.h"

#include <string.h>

size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
    unsigned c = s[0];
    *cp = 0xFFFD;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c < 0xC2 || c > 0xF4)
        return 0; /* continuation byte, overlong lead C0/C1, or beyond U+10FFFF */
    /* Allowed range of the second byte depends on the lead (rejects overlongs, surrogates). */
    unsigned lo = 0x80, hi = 0xBF;
    size_t width;
    if (c < 0xE0) {
        width = 2;
    } else if (c < 0xF0) {
        width = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else {
        width = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    }
    if (len < width || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < width; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    uint32_t v;
    if (width == 2)
        v = ((c & 0x1Fu) << 6) | (s[1] & 0x3Fu);
    else if (width == 3)
        v = ((c & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu);
    else
        v = ((c & 0x07u) << 18) | ((s[1] & 0x3Fu) << 12) | ((s[2] & 0x3Fu) << 6) | (s[3] & 0x3Fu);
    *cp = v;
    return width;
}

bool utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    uint32_t cp;
    while (i < len) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t w = utf8_decode(p + i, len - i, &cp);
        if (w == 0)
            return false;
        i += w;
    }
    return true;
}

bool text_is_space(uint32_t cp)
{
    if (cp < 0x80)
        return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20;
    switch (cp) {
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
        return true;
    default:
        return cp >= 0x2000 && cp <= 0x200A;
    }
}

void text_trim(const char *s, size_t len, size_t *start, size_t *out_len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, first = len, end = 0;
    while (i < len) {
        uint32_t cp;
        size_t w = utf8_decode(p + i, len - i, &cp);
        bool space = w != 0 && text_is_space(cp);
        if (w == 0)
            w = 1;
        if (!space) {
            if (first == len)
                first = i;
            end = i + w;
        }
        i += w;
    }
    if (first == len) {
        *start = 0;
        *out_len = 0;
    } else {
        *start = first;
        *out_len = end - first;
    }
}

bool text_is_blank(const char *s, size_t len)
{
    if (s == NULL)
        return true;
    size_t start, n;
    text_trim(s, len, &start, &n);
    return n == 0;
}

bool text_is_matchable(const char *s, size_t len)
{
    if (len == 0)
        return true;
    return memchr(s, '\0', len) == NULL && utf8_valid(s, len);
}

bool text_requested_by_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, count = 0;
    while (i < len) {
        uint32_t cp;
        size_t w = utf8_decode(p + i, len - i, &cp);
        if (w == 0)
            return false;
        if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))
            return false;
        if (++count > 128)
            return false;
        i += w;
    }
    return count >= 1;
}

int text_hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int text_percent_decode(const char *p, size_t n, bool plus_space, char *out, size_t *out_len)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '%') {
            int hi = n - i >= 3 ? text_hex_value((unsigned char)p[i + 1]) : -1;
            int lo = n - i >= 3 ? text_hex_value((unsigned char)p[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return -1;
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = plus_space && p[i] == '+' ? ' ' : p[i];
        }
    }
    *out_len = o;
    return 0;
}
