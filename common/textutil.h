/*
 * common/textutil.h: UTF-8 decoding, percent-decoding and the text rules of API.md §2.2, §2.3
 * and §4.5 step 8 (trimming, blank values, matchable values, requested_by). Pure functions, no
 * allocation; used by the HTTP workers (and by the configuration, for REDIS_URL).
 *
 * "Valid UTF-8" follows Go's unicode/utf8: shortest form only, no surrogates (U+D800–U+DFFF),
 * nothing above U+10FFFF. A byte that does not start a valid sequence is invalid on its own
 * (width 1), so the bytes of a truncated sequence are each invalid.
 */
#ifndef ANALYTICSD_TEXTUTIL_H
#define ANALYTICSD_TEXTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Decodes the character at s[0..len) (len >= 1). Returns its width (1–4) and stores the code
 * point in *cp; returns 0 when s[0] does not start a valid sequence (*cp is then U+FFFD).
 */
size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp);

/* True when all of s[0..len) is valid UTF-8. */
bool utf8_valid(const char *s, size_t len);

/* True when cp is in the trimming set of API.md §2.2. */
bool text_is_space(uint32_t cp);

/*
 * Trims s[0..len) (API.md §2.2): *start is the offset of the first character that is not
 * whitespace and *out_len the length up to the end of the last one; both 0 for a blank value.
 * Invalid bytes are never whitespace. s may be NULL when len == 0.
 */
void text_trim(const char *s, size_t len, size_t *start, size_t *out_len);

/* True when s is NULL (absent) or empty after trimming. */
bool text_is_blank(const char *s, size_t len);

/* API.md §2.3: true when s[0..len) is valid UTF-8 and contains no NUL byte. */
bool text_is_matchable(const char *s, size_t len);

/*
 * API.md §4.5 step 8: true when s[0..len) is valid UTF-8, 1 to 128 code points long and has no
 * control character (U+0000–U+001F, U+007F–U+009F). The caller trims and picks the value first.
 */
bool text_requested_by_valid(const char *s, size_t len);

/* Value of one hexadecimal digit (either case), or -1 for any other byte. */
int text_hex_value(unsigned char c);

/*
 * The one percent-decoder (RFC 3986 %XX, either hex case): query-string pieces (API.md §2.1,
 * plus_space: '+' is a space) and REDIS_URL credentials (CONFIG.md §3.7). Decodes p[0..n) into
 * out (room for n bytes; no NUL added), sets *out_len and returns 0; returns -1 when a '%' is
 * not followed by two hex digits (out then partly written, *out_len untouched). %00 decodes to
 * a NUL byte: callers that cannot hold one check for it.
 */
int text_percent_decode(const char *p, size_t n, bool plus_space, char *out, size_t *out_len);

#endif
