/*
 * common/resp.c: RESP command formatting (see resp.h). Runs in HTTP workers.
 */
#include "common/resp.h"

#include <string.h>

static size_t digits(size_t v)
{
    size_t n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

static char *put_header(char *p, char kind, size_t v)
{
    size_t n = digits(v);
    *p++ = kind;
    for (size_t i = n; i > 0; i--) {
        p[i - 1] = (char)('0' + v % 10);
        v /= 10;
    }
    p += n;
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

static size_t arg_len(const char *const *argv, const size_t *argvlen, int i)
{
    return argvlen != NULL ? argvlen[i] : strlen(argv[i]);
}

size_t resp_length(int argc, const char *const *argv, const size_t *argvlen)
{
    size_t total = 3 + digits((size_t)argc);
    for (int i = 0; i < argc; i++) {
        size_t len = arg_len(argv, argvlen, i);
        total += 3 + digits(len) + len + 2;
    }
    return total;
}

size_t resp_format(char *out, int argc, const char *const *argv, const size_t *argvlen)
{
    char *p = put_header(out, '*', (size_t)argc);
    for (int i = 0; i < argc; i++) {
        size_t len = arg_len(argv, argvlen, i);
        p = put_header(p, '$', len);
        memcpy(p, argv[i], len);
        p += len;
        *p++ = '\r';
        *p++ = '\n';
    }
    return (size_t)(p - out);
}
