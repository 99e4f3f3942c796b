/*
 * tests/unit/test_sms_read_parts.c: the pure parts of the SMS read path: the hourly floor of
 * common/sms_read.c (which day reads switch from metrics_daily to hourly rows) and the answer
 * cache of server/sms_cache.c (hits, expiry, replacement, key comparison).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "common/dates.h"
#include "common/sms_read.h"
#include "server/sms_cache.h"

static int32_t day(const char *s)
{
    int32_t d;
    assert_int_equal(date_parse(s, strlen(s), &d), 0);
    return d;
}

/* The floor is the day after the one holding now - retention: all its hours are retained. */
static void test_floor(void **state)
{
    (void)state;
    int64_t noon = (int64_t)day("2026-12-02") * 86400 + 12 * 3600;
    assert_int_equal(sms_read_floor(noon, 90), day("2026-09-04"));
    assert_int_equal(sms_read_floor(noon, 1), day("2026-12-02"));
    int64_t midnight = (int64_t)day("2026-12-02") * 86400;
    assert_int_equal(sms_read_floor(midnight, 90), day("2026-09-04"));
    assert_int_equal(sms_read_floor(midnight - 1, 90), day("2026-09-03"));
    /* before 1970 (retention reaching back past the epoch) still rounds down */
    assert_int_equal(sms_read_floor(3600, 2), day("1969-12-31"));
}

static void test_cache(void **state)
{
    (void)state;
    sms_cache *c = sms_cache_create(8);
    const char *body;
    size_t len;
    assert_int_equal(sms_cache_get(c, "a", 1, 0, &body, &len), 0);
    sms_cache_put(c, "a", 1, "{\"x\":1}\n", 8, 1000);
    assert_int_equal(sms_cache_get(c, "a", 1, 999, &body, &len), 1);
    assert_int_equal(len, 8);
    assert_memory_equal(body, "{\"x\":1}\n", 8);
    assert_int_equal(sms_cache_get(c, "a", 1, 1000, &body, &len), 0); /* expired */
    assert_int_equal(sms_cache_get(c, "ab", 2, 0, &body, &len), 0);
    sms_cache_put(c, "a", 1, "{}\n", 3, 2000); /* replaced */
    assert_int_equal(sms_cache_get(c, "a", 1, 1500, &body, &len), 1);
    assert_int_equal(len, 3);
    sms_cache_free(c);

    /* One slot: every key shares it; a key never answers with another key's body. */
    c = sms_cache_create(1);
    sms_cache_put(c, "k1", 2, "one", 3, 100);
    sms_cache_put(c, "k2", 2, "two", 3, 100);
    assert_int_equal(sms_cache_get(c, "k1", 2, 0, &body, &len), 0);
    assert_int_equal(sms_cache_get(c, "k2", 2, 0, &body, &len), 1);
    assert_memory_equal(body, "two", 3);
    sms_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_floor),
        cmocka_unit_test(test_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
