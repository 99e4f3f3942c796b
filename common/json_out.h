/*
 * common/json_out.h (prefix jout_, distinct from jansson's json_*): writers that append JSON tokens
 * to a jbuf, with the exact string escaping of API.md §1.4 and the timestamp/date forms of §1.5.
 * Used by the HTTP workers (responses, cache keys) and the recompute workers (summaries). None of
 * these functions can fail; they abort on out-of-memory like every jbuf append.
 */
#ifndef ANALYTICSD_JSON_OUT_H
#define ANALYTICSD_JSON_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/jbuf.h"

/*
 * Appends s[0..len) as a quoted JSON string. Escapes: `"` `\` as \" \\; U+0008, U+000C,
 * U+000A, U+000D, U+0009 as \b \f \n \r \t; other U+0000–U+001F as \u00xx (lower-case hex);
 * < > & as \u003c \u003e \u0026; U+2028/U+2029 as \u2028/\u2029; every byte that is not part
 * of a valid UTF-8 sequence (textutil.h) as \ufffd. Everything else, U+007F included, is copied
 * raw. s may be NULL when len == 0.
 */
void jout_string(jbuf *b, const char *s, size_t len);

/* jout_string of a NUL-terminated string. */
void jout_cstr(jbuf *b, const char *s);

/*
 * Appends `"key":` for a key that needs no escaping (a literal member name of the contract).
 * The key is copied as is.
 */
void jout_key(jbuf *b, const char *key);

/* Appends a decimal integer (full int64 range, no exponent). */
void jout_int(jbuf *b, int64_t v);

/* Writes the digits jout_int would append to out (room for JOUT_INT_MAX chars, no NUL) and
 * returns how many; for header values built on a hot path without printf. */
#define JOUT_INT_MAX 20
size_t jout_int_chars(char *out, int64_t v);

/* Appends true or false. */
void jout_bool(jbuf *b, bool v);

/* Appends null. */
void jout_null(jbuf *b);

/*
 * Appends a quoted UTC timestamp "YYYY-MM-DDTHH:MM:SS[.f]Z" (API.md §1.5): the fraction has
 * trailing zeros removed and is left out (with its dot) when zero. nanos outside 0..999999999
 * is carried into the seconds. Years outside 0..9999 are written with more digits or a sign.
 */
void jout_timestamp(jbuf *b, int64_t unix_seconds, int32_t nanos);

/* Appends a quoted date "YYYY-MM-DD"; days counts from 1970-01-01 (see dates.h). */
void jout_date(jbuf *b, int32_t days);

#endif
