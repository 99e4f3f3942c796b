/*
 * common/util.h: allocation helpers and tiny macros shared by every process.
 *
 * Out-of-memory is not a condition this service tries to survive inside a request: every
 * x*alloc function logs and aborts instead of returning NULL, so callers never check.
 */
#ifndef ANALYTICSD_UTIL_H
#define ANALYTICSD_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Finds the struct that embeds `ptr` as member `member` (callbacks reach their owner this way). */
#define CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* malloc/calloc/realloc/strdup that abort the process on failure; they never return NULL. */
void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* printf into a fresh heap string (aborts on failure). The caller frees it. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* CLOCK_MONOTONIC and CLOCK_REALTIME in nanoseconds. */
int64_t clock_monotonic_ns(void);
int64_t clock_realtime_ns(void);

#endif
