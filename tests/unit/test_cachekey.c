/*
 * tests/unit/test_cachekey.c: unit tests for common/cachekey against the worked examples of
 * DATA.md §7.3 (canonical JSON, SHA-256, full key).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "common/cachekey.h"
#include "common/dates.h"
#include "common/params.h"

static int32_t day(const char *s)
{
    int32_t d = 0;
    assert_int_equal(date_parse(s, strlen(s), &d), 0);
    return d;
}

#define STR(s) s, sizeof(s) - 1

static void check_example(const struct cachekey_params *p, const char *want_json,
                          const char *want_hash)
{
    jbuf b;
    jbuf_init(&b);
    cachekey_canonical(&b, p);
    assert_string_equal(b.data, want_json);
    char hash[65];
    cachekey_sha256_hex(b.data, b.len, hash);
    assert_string_equal(hash, want_hash);
    jbuf_free(&b);
}

static void test_example_1_status_counts(void **state)
{
    (void)state;
    struct cachekey_params p = {
        .breakdown = "status",
        .breakdown_len = 6,
        .date_from = day("2026-01-01"),
        .date_to = day("2026-02-01"),
        .limit = 50,
        .offset = 0,
        .source = NULL,
        .source_len = 0,
        .status = "",
        .status_len = 0,
        .window = "day",
    };
    check_example(&p,
                  "{\"breakdown\":\"status\",\"date_from\":\"2026-01-01\",\"date_to\":"
                  "\"2026-02-01\",\"limit\":50,\"offset\":0,\"source\":\"\",\"status\":\"\","
                  "\"window\":\"day\"}",
                  "16a27f9992c394ef2563ecc4bd31dd61ac353455c33531ab9a0d5a2c7417f25c");

    /* The entry key as the run handler builds it: canonical JSON, its hash, the entry key. */
    jbuf canon, key;
    char hash[65];
    jbuf_init(&canon);
    jbuf_init(&key);
    cachekey_canonical(&canon, &p);
    cachekey_sha256_hex(canon.data, canon.len, hash);
    cachekey_entry(&key, "status-counts", strlen("status-counts"), 1, hash);
    assert_string_equal(
        key.data,
        "report:status-counts:v1:16a27f9992c394ef2563ecc4bd31dd61ac353455c33531ab9a0d5a2c7417f25c");
    jbuf_reset(&key);
    cachekey_entry(&key, "status-counts", strlen("status-counts"), 1234567890123LL, hash);
    assert_string_equal(key.data,
                        "report:status-counts:v1234567890123:"
                        "16a27f9992c394ef2563ecc4bd31dd61ac353455c33531ab9a0d5a2c7417f25c");
    jbuf_free(&canon);
    jbuf_free(&key);
}

static void test_example_2_week(void **state)
{
    (void)state;
    struct cachekey_params p = {
        .breakdown = NULL,
        .date_from = day("2026-01-01"),
        .date_to = day("2026-02-01"),
        .limit = 50,
        .offset = 0,
        .window = "week",
    };
    check_example(&p,
                  "{\"breakdown\":\"\",\"date_from\":\"2026-01-01\",\"date_to\":\"2026-02-01\","
                  "\"limit\":50,\"offset\":0,\"source\":\"\",\"status\":\"\",\"window\":"
                  "\"week\"}",
                  "46f5c454adb35ac485bb3e1afec64e7c4c6916d1b9ad1f1cf4d819bfef437a76");
}

/* The third example, derived from the query string the spec names (source=a<b%26c). */
static void test_example_3_escaped_source(void **state)
{
    (void)state;
    const char *qs = "window=day&breakdown=source&limit=100&source=a<b%26c"
                     "&date_from=2026-01-01&date_to=2026-01-31";
    size_t qlen = strlen(qs);
    query_param params[8];
    char buf[128];
    size_t n = query_parse(qs, qlen, params, buf);
    const query_param *src = query_find(params, n, "source");
    const query_param *brk = query_find(params, n, "breakdown");
    assert_non_null(src);
    assert_non_null(brk);
    struct cachekey_params p = {
        .breakdown = brk->value,
        .breakdown_len = brk->value_len,
        .date_from = day("2026-01-01"),
        .date_to = day("2026-01-31"),
        .limit = 100,
        .offset = 0,
        .source = src->value,
        .source_len = src->value_len,
        .status = NULL,
        .window = "day",
    };
    check_example(&p,
                  "{\"breakdown\":\"source\",\"date_from\":\"2026-01-01\",\"date_to\":"
                  "\"2026-01-31\",\"limit\":100,\"offset\":0,\"source\":\"a\\u003cb\\u0026c\","
                  "\"status\":\"\",\"window\":\"day\"}",
                  "7265ce0fe3808bb881ac1074b44d66d002866bfb47e70d8d5524f7caea85fa60");
}

static void test_canonical_escapes_and_lengths(void **state)
{
    (void)state;
    /* Lengths are honoured (bytes past them ignored), invalid bytes become \ufffd,
     * negative numbers are plain decimal. */
    struct cachekey_params p = {
        .breakdown = STR("statusXXX"),
        .date_from = day("0001-01-01"),
        .date_to = day("9999-12-31"),
        .limit = -5,
        .offset = 9223372036854775807LL,
        .source = STR("\xff\"\n"),
        .status = STR("\xc3\xa9"),
        .window = "week",
    };
    p.breakdown_len = 6;
    jbuf b;
    jbuf_init(&b);
    cachekey_canonical(&b, &p);
    assert_string_equal(b.data, "{\"breakdown\":\"status\",\"date_from\":\"0001-01-01\","
                                "\"date_to\":\"9999-12-31\",\"limit\":-5,\"offset\":"
                                "9223372036854775807,\"source\":\"\\ufffd\\\"\\n\",\"status\":"
                                "\"\xc3\xa9\",\"window\":\"week\"}");
    jbuf_free(&b);
}

static void test_sha256_vectors(void **state)
{
    (void)state;
    char hash[65];
    cachekey_sha256_hex("", 0, hash);
    assert_string_equal(hash, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    cachekey_sha256_hex("abc", 3, hash);
    assert_string_equal(hash, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(strlen(hash), 64);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_1_status_counts),
        cmocka_unit_test(test_example_2_week),
        cmocka_unit_test(test_example_3_escaped_source),
        cmocka_unit_test(test_canonical_escapes_and_lengths),
        cmocka_unit_test(test_sha256_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
