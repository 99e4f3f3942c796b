/*
 * tests/unit/test_request_id.c: the X-Request-Id rules of API.md §8 (server/request_id.h):
 * which values are echoed, and the shape and spread of generated ids.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "server/request_id.h"

static int valid(const char *s)
{
    return request_id_valid(s, strlen(s));
}

static void test_valid_ids(void **state)
{
    (void)state;
    assert_true(valid("a"));
    assert_true(valid("0f8fad5b-d9cb-469f-a165-70867728950e"));
    assert_true(valid("a\"b\\c<d>&e%f{g}"));
    char all[0x7f - 0x21 + 1];
    for (int c = 0x21; c < 0x7f; c++)
        all[c - 0x21] = (char)c;
    all[sizeof(all) - 1] = '\0';
    assert_true(valid(all)); /* every byte 0x21-0x7E */
    char max[REQUEST_ID_MAX + 2];
    memset(max, 'x', sizeof(max));
    assert_true(request_id_valid(max, REQUEST_ID_MAX));
}

static void test_invalid_ids(void **state)
{
    (void)state;
    char max[REQUEST_ID_MAX + 2];
    memset(max, 'x', sizeof(max));
    assert_false(request_id_valid(max, REQUEST_ID_MAX + 1)); /* too long */
    assert_false(request_id_valid("", 0));                   /* empty */
    assert_false(valid("a b"));                              /* inner space: not one log token */
    assert_false(valid(" a"));
    assert_false(valid("a\tb"));
    assert_false(valid("a\nb"));
    assert_false(valid("a\x7f"));
    assert_false(valid("caf\xc3\xa9")); /* non-ASCII */
    assert_false(request_id_valid("a\0b", 3));
}

static void test_generated_ids(void **state)
{
    (void)state;
    enum { N = 2000 };
    char(*ids)[REQUEST_ID_GENERATED_LEN + 1] = calloc(N, sizeof(*ids));
    assert_non_null(ids);
    for (int i = 0; i < N; i++) {
        if (i == N / 2)
            request_id_seed(); /* a reseed (what each worker does after fork) keeps them apart */
        request_id_generate(ids[i]);
        assert_int_equal(strlen(ids[i]), REQUEST_ID_GENERATED_LEN);
        assert_int_equal(strspn(ids[i], "0123456789abcdef"), REQUEST_ID_GENERATED_LEN);
        assert_true(request_id_valid(ids[i], REQUEST_ID_GENERATED_LEN));
    }
    /* 128 random bits each: any repeat means a broken generator */
    qsort(ids, N, sizeof(*ids), (int (*)(const void *, const void *))strcmp);
    for (int i = 1; i < N; i++)
        assert_string_not_equal(ids[i - 1], ids[i]);
    free(ids);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_ids),
        cmocka_unit_test(test_invalid_ids),
        cmocka_unit_test(test_generated_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
