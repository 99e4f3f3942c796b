/*
 * tests/fuzz/fuzz_uuid.c: fuzz target for uuid_parse (common/params.h, API.md §4.7). Its
 * accept/reject decision is compared with a reference written from PostgreSQL's uuid_in rules
 * (32 hex digits of either case, optional surrounding braces, one optional '-' after any group
 * of four digits except the last); an accepted value must come out as the canonical 36-char
 * lower-case 8-4-4-4-12 form holding the same digits, and parse again to itself. Built by
 * tests/fuzz/CMakeLists.txt (regression) and run.sh (libFuzzer).
 */
#include "common/params.h"
#include "tests/fuzz/fuzz_check.h"

#include <string.h>

static int ref_hex(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* PostgreSQL uuid_in over s[0..len); on success the 32 lower-case digits go to digits. */
static int ref_uuid(const unsigned char *s, size_t len, char digits[33])
{
    size_t i = 0, end = len;
    if (len > 0 && s[0] == '{') {
        if (len < 2 || s[len - 1] != '}')
            return 0;
        i = 1, end = len - 1;
    }
    int nd = 0;
    while (nd < 32) {
        if (i >= end || ref_hex(s[i]) < 0)
            return 0;
        digits[nd++] = "0123456789abcdef"[ref_hex(s[i])];
        i++;
        if (nd % 4 == 0 && nd < 32 && i < end && s[i] == '-')
            i++;
    }
    digits[32] = '\0';
    return i == end;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256)
        return 0;
    char out[37], digits[33];
    int rc = uuid_parse((const char *)data, size, out);
    int want = ref_uuid(data, size, digits);
    FUZZ_CHECK((rc == 0) == want, "uuid_parse rc %d, reference %d", rc, want);
    if (rc != 0)
        return 0;
    FUZZ_CHECK(strlen(out) == 36, "canonical form has %zu chars", strlen(out));
    int nd = 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            FUZZ_CHECK(out[i] == '-', "no dash at %d in %s", i, out);
            continue;
        }
        FUZZ_CHECK((out[i] >= '0' && out[i] <= '9') || (out[i] >= 'a' && out[i] <= 'f'),
                   "not lower-case hex at %d in %s", i, out);
        FUZZ_CHECK(out[i] == digits[nd], "digit %d differs: %s vs %s", nd, out, digits);
        nd++;
    }
    char again[37];
    FUZZ_CHECK(uuid_parse(out, 36, again) == 0 && strcmp(again, out) == 0,
               "canonical form does not parse to itself");
    return 0;
}
