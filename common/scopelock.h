/*
 * common/scopelock.h: the Redis scope lock of DATA.md §7.5, the parts shared by the trigger
 * (HTTP workers, asynchronous) and the recompute side (workers and supervisor, blocking): the
 * key format and the compare-and-delete script.
 */
#ifndef ANALYTICSD_SCOPELOCK_H
#define ANALYTICSD_SCOPELOCK_H

#include <stddef.h>
#include <stdint.h>

/* EVAL script: deletes KEYS[1] only if its value equals ARGV[1]; returns 1 or 0. */
#define SCOPELOCK_RELEASE_LUA                                                                      \
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else "        \
    "return 0 end"

/*
 * Writes "recompute:lock:{slug}:{window}:{from}:{to}" (dates as YYYYMMDD, given as days since
 * 1970-01-01) into out (NUL-terminated, truncated to cap). Returns the length written.
 */
size_t scopelock_key(char *out, size_t cap, const char *slug, const char *window, int32_t from,
                     int32_t to);

#endif
