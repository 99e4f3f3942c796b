/*
 * common/json_sorted.h: canonical re-serialisation of stored JSON (see json_sorted.c).
 */
#ifndef ANALYTICSD_JSON_SORTED_H
#define ANALYTICSD_JSON_SORTED_H

#include <stddef.h>

#include "common/jbuf.h"

/*
 * Parses s[0..len) with jansson and appends it compactly to b with every object's keys in
 * ascending byte order and strings escaped per API.md §1.4. Returns 0, or -1 (b unchanged)
 * when s is not valid JSON.
 */
int jout_sorted(jbuf *b, const char *s, size_t len);

#endif
