/*
 * tests/fuzz/jansson_ref.h: jansson-based reference checks for the fuzz targets. They live in
 * their own translation unit because jansson.h and common/json_out.h both declare json_string
 * and json_null.
 */
#ifndef ANALYTICSD_FUZZ_JANSSON_REF_H
#define ANALYTICSD_FUZZ_JANSSON_REF_H

#include <stddef.h>
#include <stdint.h>

/*
 * Decodes json[0..len) with jansson (any top-level value, NUL allowed). When it is a JSON
 * string, returns 0 and sets *out (malloc'd, free with free()) and *out_len to its bytes;
 * otherwise returns -1 and writes jansson's message (or "not a string") into err[0..160).
 */
int jref_decode_string(const char *json, size_t len, char **out, size_t *out_len, char err[160]);

/*
 * API.md §4.5 body rules judged with jansson: 1 = the decoder must accept (the literal null,
 * or an object whose members are all report_slug/window/date_from/date_to/requested_by with
 * string or null values), 0 = it must reject (any other complete JSON value), -1 = jansson
 * cannot judge (invalid UTF-8, a byte-order mark, or anything jansson does not parse).
 */
int jref_body_expectation(const uint8_t *data, size_t size);

#endif
