/*
 * common/params.h: request input rules of API.md §2.1, §2.4, §2.5 and §4.7: the query-string
 * parser, integer and window parameters and the UUID path form (the management key candidate of
 * §3 is server/http_auth.h's). Pure functions, no allocation; used by the HTTP workers. The
 * text rules (trimming, blank, matchable, requested_by) live in textutil.h, included here.
 */
#ifndef ANALYTICSD_PARAMS_H
#define ANALYTICSD_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/textutil.h"

/* One decoded piece of a query string (query_parse). */
typedef struct query_param {
    const char *name, *value; /* decoded bytes, not NUL-terminated; value "" when no '=' */
    size_t name_len, value_len;
} query_param;

/* How many query_param entries query_parse may need for qs: one more than its '&' count. */
size_t query_piece_bound(const char *qs, size_t qs_len);

/*
 * API.md §2.1, the one query-string parser. Decodes every valid piece of the raw query string
 * qs[0..qs_len) (without the '?'), in order, into out[] (room for query_piece_bound entries),
 * with the decoded names and values written to buf (room for qs_len bytes). Pieces are split on
 * '&'; empty pieces are skipped; a piece without '=' has an empty value; '+' decodes to a space
 * and %XX (either hex case, textutil.h) to a byte; a piece containing ';' or a malformed '%'
 * escape (in its name or value) is left out entirely. Returns the number of entries. Cannot
 * fail.
 */
size_t query_parse(const char *qs, size_t qs_len, query_param *out, char *buf);

/* The first entry of params[0..n) whose name equals the NUL-terminated name (byte-exact,
 * case-sensitive), or NULL. */
const query_param *query_find(const query_param *params, size_t n, const char *name);

typedef enum { PARAM_INT_DEFAULT, PARAM_INT_SET } param_int_status;

/*
 * API.md §2.4. When present and not blank, the untrimmed value v[0..len) must be an optional
 * '+' or '-' followed by one or more ASCII digits and fit in int64: then *out is set and
 * PARAM_INT_SET returned. Every other case (absent, blank, malformed, overflow) returns
 * PARAM_INT_DEFAULT and leaves *out untouched. Range clamping is the caller's.
 */
param_int_status param_int(const char *v, size_t len, bool present, int64_t *out);

/*
 * API.md §2.5. Trims v (NULL = absent), folds ASCII letters to lower case; blank means "day".
 * Sets *out to the name of a registry window the report API accepts (common/registry.h: "day"
 * or "week") and returns 0; returns -1 for any other value (*out untouched).
 */
int param_window(const char *v, size_t len, const char **out);

/*
 * API.md §4.7 (PostgreSQL uuid_in): 32 hex digits of either case, optionally wrapped in '{'
 * '}', where a single '-' may follow any group of four hex digits except the last. Writes the
 * lower-case 8-4-4-4-12 form plus a NUL into out and returns 0; returns -1 otherwise (out may
 * have been partly written).
 */
int uuid_parse(const char *s, size_t len, char out[37]);

#endif
