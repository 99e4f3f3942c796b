/*
 * tests/fuzz/jansson_ref.c: jansson-based reference checks for the fuzz targets (see
 * jansson_ref.h). Linked into every fuzz target by tests/fuzz/CMakeLists.txt.
 */
#include "tests/fuzz/jansson_ref.h"
#include "tests/fuzz/fuzz_check.h"

#include <jansson.h>
#include <string.h>

int jref_decode_string(const char *json, size_t len, char **out, size_t *out_len, char err[160])
{
    json_error_t e;
    json_t *v = json_loadb(json, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (v == NULL) {
        snprintf(err, 160, "%s", e.text);
        return -1;
    }
    if (!json_is_string(v)) {
        snprintf(err, 160, "not a string");
        json_decref(v);
        return -1;
    }
    *out_len = json_string_length(v);
    *out = malloc(*out_len + 1);
    memcpy(*out, json_string_value(v), *out_len + 1);
    json_decref(v);
    return 0;
}

static const char *const members[] = {"report_slug", "window", "date_from", "date_to",
                                      "requested_by"};

int jref_body_expectation(const uint8_t *data, size_t size)
{
    if (!ref_utf8_valid(data, size) || (size >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0))
        return -1;
    json_error_t err;
    json_t *v = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (v == NULL)
        return -1;
    int want = 1;
    if (!json_is_null(v) && !json_is_object(v)) {
        want = 0;
    } else if (json_is_object(v)) {
        const char *key;
        json_t *val;
        json_object_foreach(v, key, val)
        {
            int known = 0;
            for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++)
                known |= strcmp(key, members[i]) == 0;
            if (!known || (!json_is_string(val) && !json_is_null(val)))
                want = 0;
        }
    }
    json_decref(v);
    return want;
}
