/*
 * tests/fuzz/fuzz_check.h: shared helpers of the fuzz targets (tests/fuzz/fuzz_*.c), built both
 * as libFuzzer binaries (tests/fuzz/run.sh) and as corpus regression tests (regress_main.c).
 *
 * FUZZ_CHECK(cond, ...) reports a violated property on stderr and aborts, so libFuzzer saves
 * the input as a crash and the regression test fails. ref_utf8_width is an independent
 * reference UTF-8 decoder (shortest form, no surrogates, at most U+10FFFF) used to cross-check
 * the code under test; it deliberately shares no code with common/textutil.c.
 */
#ifndef ANALYTICSD_FUZZ_CHECK_H
#define ANALYTICSD_FUZZ_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: property violated: %s: ", __FILE__, __LINE__, #cond);          \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/*
 * Width (1–4) of the valid UTF-8 sequence at s[0..len), storing its code point in *cp; 0 when
 * s[0] does not start a valid sequence.
 */
static inline size_t ref_utf8_width(const unsigned char *s, size_t len, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        n = 2, v = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3, v = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return n;
}

/* The trimming set of API.md §2.2, written out independently of textutil.c. */
static inline int ref_is_space(uint32_t cp)
{
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
           cp == 0x205F || cp == 0x3000;
}

/* True when all of s[0..len) is valid UTF-8 by the reference decoder. */
static inline int ref_utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    uint32_t cp;
    while (i < len) {
        size_t w = ref_utf8_width(s + i, len - i, &cp);
        if (w == 0)
            return 0;
        i += w;
    }
    return 1;
}

/*
 * Reference trim: offset of the first non-space character and length up to the end of the
 * last one (both 0 when blank).
 */
static inline void ref_trim(const unsigned char *s, size_t len, size_t *start, size_t *n)
{
    size_t i = 0, first = len, end = 0;
    while (i < len) {
        uint32_t cp;
        size_t w = ref_utf8_width(s + i, len - i, &cp);
        int space = w != 0 && ref_is_space(cp);
        if (w == 0)
            w = 1;
        if (!space) {
            if (first == len)
                first = i;
            end = i + w;
        }
        i += w;
    }
    *start = first == len ? 0 : first;
    *n = first == len ? 0 : end - first;
}

#endif
