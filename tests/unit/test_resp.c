/*
 * tests/unit/test_resp.c: RESP formatting (common/resp.c) against hiredis's own formatter.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <hiredis.h>
#include <stdlib.h>
#include <string.h>

#include "common/resp.h"

static void check_same_as_hiredis(int argc, const char **argv, const size_t *argvlen)
{
    char *want;
    int want_len = redisFormatCommandArgv(&want, argc, argv, argvlen);
    assert_true(want_len > 0);
    size_t n = resp_length(argc, argv, argvlen);
    assert_int_equal(n, (size_t)want_len);
    char *got = malloc(n + 1);
    got[n] = 'X'; /* must stay untouched */
    assert_int_equal(resp_format(got, argc, argv, argvlen), n);
    assert_memory_equal(got, want, n);
    assert_int_equal(got[n], 'X');
    free(got);
    redisFreeCommand(want);
}

static void test_simple_commands(void **state)
{
    (void)state;
    const char *ping[] = {"PING"};
    check_same_as_hiredis(1, ping, NULL);
    const char *set[] = {"SET", "report:version:status-counts", "1", "NX"};
    check_same_as_hiredis(4, set, NULL);
    char out[64];
    size_t n = resp_format(out, 2, (const char *[]){"GET", "k"}, NULL);
    assert_int_equal(n, strlen("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"));
    assert_memory_equal(out, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", n);
}

static void test_binary_and_long_arguments(void **state)
{
    (void)state;
    static char big[123457];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)(i * 31);
    const char *argv[] = {"SET", "\0\r\n", big, ""};
    const size_t argvlen[] = {3, 3, sizeof(big), 0};
    check_same_as_hiredis(4, argv, argvlen);
    /* 10 and 100 arguments cross digit boundaries in the array header */
    const char *many[100];
    for (int i = 0; i < 100; i++)
        many[i] = "x";
    check_same_as_hiredis(10, many, NULL);
    check_same_as_hiredis(100, many, NULL);
    const char *nine[] = {"123456789"};
    check_same_as_hiredis(1, nine, NULL);
    const char *ten[] = {"1234567890"};
    check_same_as_hiredis(1, ten, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_commands),
        cmocka_unit_test(test_binary_and_long_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
