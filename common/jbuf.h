/*
 * common/jbuf.h: growable byte buffer used to build response bodies, cache keys and SQL
 * parameters. Used by the HTTP workers and the recompute workers.
 *
 * Invariants: `len` bytes of `data` are valid; whenever data != NULL, data[len] is a NUL byte
 * (so a non-empty buffer can be used as a C string), and cap >= len + 1. A freshly initialised
 * buffer has data == NULL, len == 0, cap == 0. Growth uses xrealloc, so it never fails: on
 * out-of-memory the process aborts. The append functions are inline so the hot path is a bounds
 * check plus memcpy.
 */
#ifndef ANALYTICSD_JBUF_H
#define ANALYTICSD_JBUF_H

#include <stddef.h>
#include <string.h>

typedef struct jbuf {
    char *data;
    size_t len, cap;
} jbuf;

/* Sets the buffer empty without allocating (data NULL). */
void jbuf_init(jbuf *b);

/* Frees the storage and leaves the buffer as after jbuf_init. */
void jbuf_free(jbuf *b);

/* Slow path of jbuf_reserve: grows storage to hold at least len + extra + 1 bytes. */
void jbuf_grow(jbuf *b, size_t extra);

/* Makes room for `extra` more bytes (plus the terminating NUL). Aborts on OOM or overflow. */
static inline void jbuf_reserve(jbuf *b, size_t extra)
{
    if (b->cap - b->len <= extra)
        jbuf_grow(b, extra);
}

/* Appends n bytes from p (p may be NULL when n == 0). */
static inline void jbuf_append(jbuf *b, const void *p, size_t n)
{
    jbuf_reserve(b, n);
    if (n != 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

/* Appends one byte. */
static inline void jbuf_putc(jbuf *b, char c)
{
    jbuf_reserve(b, 1);
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}

/* Appends the C string s (without its NUL). */
static inline void jbuf_puts(jbuf *b, const char *s)
{
    jbuf_append(b, s, strlen(s));
}

/* Sets len to 0 and keeps the storage for reuse. */
static inline void jbuf_reset(jbuf *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

/* Appends printf-formatted text. Aborts on OOM or on an encoding error from vsnprintf. */
void jbuf_printf(jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Returns the storage (NUL-terminated, never NULL: an empty buffer yields a fresh "") and leaves
 * the buffer as after jbuf_init. The caller frees the result with free().
 */
char *jbuf_steal(jbuf *b, size_t *len);

#endif
