/*
 * common/json_span.h: finds the raw text of values inside a JSON document that a parser
 * (jansson) has already accepted, for rules that are written about the literal text (SMS.md
 * §2.2: numbers "checked on their literal text") and for handing each item of an array to a
 * per-item parser. Pure code; used by the SMS event parser and the events handler.
 *
 * Precondition of every function: raw[0..len) is valid JSON. On other input they return
 * without reading outside the buffer, but what they find is unspecified.
 */
#ifndef ANALYTICSD_JSON_SPAN_H
#define ANALYTICSD_JSON_SPAN_H

#include <stddef.h>

/*
 * The raw text of member `name` of the top-level object (the last occurrence, as jansson keeps
 * it; member names are compared after unescaping). Returns 0 and sets *val and *vlen, or -1 when
 * the document is not an object or has no such member.
 */
int json_span_member(const char *raw, size_t len, const char *name, const char **val, size_t *vlen);

/*
 * Iterates the elements of the array whose raw text is arr[0..len). *pos starts at 0. Returns 1
 * and sets *el and *ellen to the next element's text, or 0 when there is none left.
 */
int json_span_next_element(const char *arr, size_t len, size_t *pos, const char **el,
                           size_t *ellen);

#endif
