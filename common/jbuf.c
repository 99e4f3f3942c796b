/*
 * common/jbuf.c: growable byte buffer (see jbuf.h). Used by every process that builds text.
 */
#include "common/jbuf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/log.h"
#include "common/util.h"

void jbuf_init(jbuf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void jbuf_free(jbuf *b)
{
    free(b->data);
    jbuf_init(b);
}

void jbuf_grow(jbuf *b, size_t extra)
{
    if (extra > SIZE_MAX / 2 - b->len - 1) {
        log_error("jbuf: size overflow (%zu + %zu)", b->len, extra);
        abort();
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap < 64 ? 64 : b->cap;
    while (cap < need)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
    b->data[b->len] = '\0';
}

void jbuf_printf(jbuf *b, const char *fmt, ...)
{
    va_list ap;
    size_t room = b->cap > b->len ? b->cap - b->len : 0;
    va_start(ap, fmt);
    int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0) {
        log_error("jbuf: vsnprintf failed for format \"%s\"", fmt);
        abort();
    }
    if ((size_t)n >= room) {
        jbuf_reserve(b, (size_t)n);
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

char *jbuf_steal(jbuf *b, size_t *len)
{
    if (b->data == NULL)
        jbuf_reserve(b, 0);
    char *p = b->data;
    if (len != NULL)
        *len = b->len;
    jbuf_init(b);
    return p;
}
