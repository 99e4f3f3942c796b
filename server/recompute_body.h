/*
 * server/recompute_body.h: the decoder of the POST /api/v1/recomputations body (API.md §4.5,
 * "Body", [F15]). Pure code with explicit lengths (no NUL termination needed), no I/O; used by
 * the HTTP workers and by unit tests and fuzzers.
 *
 * Rules: the top level is an object or the literal null (= {}); its members are report_slug,
 * window, date_from, date_to and requested_by (exact, case-sensitive names), each a string or
 * null (null = absent); any other member or value type, malformed JSON, an empty or
 * whitespace-only body, a byte-order mark, or anything but JSON whitespace after the value is
 * invalid. A repeated member: the last occurrence wins. Inside strings, every byte that is not
 * part of a valid UTF-8 sequence and every unpaired \uD800–\uDFFF escape decodes to U+FFFD.
 * Decoded strings may contain U+0000 (\u0000); lengths are kept.
 */
#ifndef ANALYTICSD_RECOMPUTE_BODY_H
#define ANALYTICSD_RECOMPUTE_BODY_H

#include <stddef.h>

/* One member value: s == NULL when absent (missing or null); otherwise s[0..len) is the decoded
 * UTF-8 text (valid UTF-8, may contain NUL bytes) and s[len] is a NUL byte. */
typedef struct recompute_body_str {
    char *s;
    size_t len;
} recompute_body_str;

typedef struct recompute_body {
    recompute_body_str report_slug;
    recompute_body_str window;
    recompute_body_str date_from;
    recompute_body_str date_to;
    recompute_body_str requested_by;
} recompute_body;

/*
 * Decodes body[0..len) (body may be NULL when len == 0). Returns 0 and fills *out (heap copies;
 * free with recompute_body_free), or -1 when the body is invalid (400 `invalid JSON body`);
 * then *out is left all-absent and needs no freeing (freeing it is harmless).
 */
int recompute_body_decode(const char *body, size_t len, recompute_body *out);

/* Frees the member strings and leaves *b all-absent. Safe on an all-absent body. */
void recompute_body_free(recompute_body *b);

/*
 * The pre-pass used by recompute_body_decode (exposed for tests and fuzzers): copies in[0..len)
 * into out (which must hold at least 3 * len bytes) and returns the number of bytes written.
 * Inside string literals (a '"' outside a string opens one; an unescaped '"' closes it; a '\'
 * escapes the next byte) every byte that is not part of a valid UTF-8 sequence becomes EF BF BD,
 * and every \uXXXX escape of a surrogate that is not a high surrogate immediately followed by a
 * \uXXXX low surrogate becomes \uFFFD. Everything else is copied unchanged, so a document's JSON
 * structure is preserved, valid JSON stays valid, and text outside strings is never touched
 * (invalid bytes there still make the parser reject the document).
 */
size_t recompute_body_sanitize(const char *in, size_t len, char *out);

#endif
