/*
 * tests/fuzz/fuzz_recompute_body.c: fuzz target for the trigger body decoder
 * (server/recompute_body.h, API.md §4.5 "Body"), built only when that header exists. Only the
 * decoder's accept/reject decision is checked (0 = decoded, anything else = 400 invalid JSON
 * body), against jansson on inputs jansson can judge: valid UTF-8 that jansson parses as one
 * complete value. Then the decoder must accept exactly the objects whose members are all among
 * report_slug, window, date_from, date_to, requested_by with string or null values, and the
 * literal null; every other top-level value must be rejected. Decoding twice must agree.
 * Built by tests/fuzz/CMakeLists.txt (regression) and run.sh (libFuzzer).
 */
#include "server/recompute_body.h"
#include "tests/fuzz/fuzz_check.h"

#include "tests/fuzz/jansson_ref.h"

#include <string.h>

static int decode_once(const uint8_t *data, size_t size)
{
    recompute_body body;
    memset(&body, 0, sizeof(body));
    int rc = recompute_body_decode((const char *)data, size, &body);
#ifdef HAVE_RECOMPUTE_BODY_FREE
    recompute_body_free(&body);
#endif
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    int rc = decode_once(data, size);
    FUZZ_CHECK(decode_once(data, size) == rc, "decoding is not deterministic");
    int want = jref_body_expectation(data, size);
    if (want == 1)
        FUZZ_CHECK(rc == 0, "decoder rejected a valid body (rc %d)", rc);
    else if (want == 0)
        FUZZ_CHECK(rc != 0, "decoder accepted an invalid body");
    return 0;
}
