/*
 * common/json_out.c: JSON token writers (see json_out.h). Run by the HTTP and recompute workers.
 *
 * jout_string scans for the next byte that needs attention with a 256-entry class table and
 * copies the plain run before it in one append, so ASCII and valid multi-byte text cost one
 * table lookup per byte.
 */
#include "common/json_out.h"

#include "common/dates.h"
#include "common/textutil.h"

#include <stdio.h>
#include <string.h>

enum {
    C_PLAIN = 0, /* copy raw */
    C_SHORT,     /* two-character escape: \" \\ \b \f \n \r \t */
    C_UNICODE,   /* \u00xx */
    C_HIGH       /* byte >= 0x80: decode as UTF-8 */
};

static const unsigned char char_class[256] = {
    [0x00 ... 0x07] = C_UNICODE,
    ['\b'] = C_SHORT,
    ['\t'] = C_SHORT,
    ['\n'] = C_SHORT,
    [0x0B] = C_UNICODE,
    ['\f'] = C_SHORT,
    ['\r'] = C_SHORT,
    [0x0E ... 0x1F] = C_UNICODE,
    ['"'] = C_SHORT,
    ['\\'] = C_SHORT,
    ['<'] = C_UNICODE,
    ['>'] = C_UNICODE,
    ['&'] = C_UNICODE,
    [0x80 ... 0xFF] = C_HIGH,
};

static const char hexdig[] = "0123456789abcdef";

static char short_escape(unsigned char c)
{
    switch (c) {
    case '\b':
        return 'b';
    case '\f':
        return 'f';
    case '\n':
        return 'n';
    case '\r':
        return 'r';
    case '\t':
        return 't';
    default:
        return (char)c; /* '"' and '\\' */
    }
}

void jout_string(jbuf *b, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    /* Typical strings need no escapes: reserve for the plain case up front. */
    jbuf_reserve(b, len + 2);
    b->data[b->len++] = '"';
    size_t run = 0, i = 0;
    while (i < len) {
        unsigned char c = p[i];
        unsigned cls = char_class[c];
        if (cls == C_PLAIN) {
            i++;
            continue;
        }
        if (cls == C_HIGH) {
            uint32_t cp;
            size_t w = utf8_decode(p + i, len - i, &cp);
            if (w != 0 && cp != 0x2028 && cp != 0x2029) {
                i += w;
                continue;
            }
            jbuf_append(b, p + run, i - run);
            if (w == 0) {
                jbuf_append(b, "\\ufffd", 6);
                i += 1;
            } else {
                jbuf_append(b, cp == 0x2028 ? "\\u2028" : "\\u2029", 6);
                i += w;
            }
            run = i;
            continue;
        }
        jbuf_append(b, p + run, i - run);
        if (cls == C_SHORT) {
            char esc[2] = {'\\', short_escape(c)};
            jbuf_append(b, esc, 2);
        } else {
            char esc[6] = {'\\', 'u', '0', '0', hexdig[c >> 4], hexdig[c & 15]};
            jbuf_append(b, esc, 6);
        }
        i++;
        run = i;
    }
    jbuf_append(b, p + run, i - run);
    jbuf_putc(b, '"');
}

void jout_cstr(jbuf *b, const char *s)
{
    jout_string(b, s, strlen(s));
}

void jout_key(jbuf *b, const char *key)
{
    size_t n = strlen(key);
    jbuf_reserve(b, n + 3);
    b->data[b->len++] = '"';
    memcpy(b->data + b->len, key, n);
    b->len += n;
    b->data[b->len++] = '"';
    b->data[b->len++] = ':';
    b->data[b->len] = '\0';
}

size_t jout_int_chars(char *out, int64_t v)
{
    char tmp[JOUT_INT_MAX];
    size_t n = 0;
    /* Work on the unsigned magnitude so INT64_MIN is safe. */
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[sizeof(tmp) - 1 - n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        tmp[sizeof(tmp) - 1 - n++] = '-';
    memcpy(out, tmp + sizeof(tmp) - n, n);
    return n;
}

void jout_int(jbuf *b, int64_t v)
{
    char digits[JOUT_INT_MAX];
    jbuf_append(b, digits, jout_int_chars(digits, v));
}

void jout_bool(jbuf *b, bool v)
{
    if (v)
        jbuf_append(b, "true", 4);
    else
        jbuf_append(b, "false", 5);
}

void jout_null(jbuf *b)
{
    jbuf_append(b, "null", 4);
}

/* Writes v (0..99) as two digits. */
static void put2(char *out, int v)
{
    out[0] = (char)('0' + v / 10);
    out[1] = (char)('0' + v % 10);
}

void jout_timestamp(jbuf *b, int64_t unix_seconds, int32_t nanos)
{
    int64_t sec = unix_seconds + nanos / 1000000000;
    int32_t ns = nanos % 1000000000;
    if (ns < 0) {
        ns += 1000000000;
        sec -= 1;
    }
    int64_t days = sec / 86400, rem = sec % 86400;
    if (rem < 0) {
        rem += 86400;
        days -= 1;
    }
    int y, m, d;
    dates_civil_from_days(days, &y, &m, &d);

    char out[48];
    size_t n = 0;
    out[n++] = '"';
    if (y >= 0 && y <= 9999) {
        put2(out + n, y / 100);
        put2(out + n + 2, y % 100);
        n += 4;
    } else {
        n += (size_t)snprintf(out + n, 16, "%d", y);
    }
    out[n++] = '-';
    put2(out + n, m);
    n += 2;
    out[n++] = '-';
    put2(out + n, d);
    n += 2;
    out[n++] = 'T';
    put2(out + n, (int)(rem / 3600));
    n += 2;
    out[n++] = ':';
    put2(out + n, (int)(rem / 60 % 60));
    n += 2;
    out[n++] = ':';
    put2(out + n, (int)(rem % 60));
    n += 2;
    if (ns != 0) {
        out[n++] = '.';
        int digits = 9;
        while (ns % 10 == 0) {
            ns /= 10;
            digits--;
        }
        for (int k = digits - 1; k >= 0; k--) {
            out[n + (size_t)k] = (char)('0' + ns % 10);
            ns /= 10;
        }
        n += (size_t)digits;
    }
    out[n++] = 'Z';
    out[n++] = '"';
    jbuf_append(b, out, n);
}

void jout_date(jbuf *b, int32_t days)
{
    char out[12];
    date_format(days, out);
    jbuf_putc(b, '"');
    jbuf_append(b, out, strlen(out));
    jbuf_putc(b, '"');
}
