/*
 * tests/unit/test_json_out.c: unit tests for common/jbuf, the JSON writers of common/json_out
 * (API.md §1.4 escaping, §1.5 timestamps and dates) and the UTF-8 decoder of common/textutil.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/jbuf.h"
#include "common/json_out.h"
#include "common/textutil.h"

/* A byte string literal with its length (may contain NUL). */
#define BYTES(s) s, sizeof(s) - 1

static void test_jbuf_basics(void **state)
{
    (void)state;
    jbuf b;
    jbuf_init(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    jbuf_append(&b, NULL, 0);
    assert_non_null(b.data);
    assert_string_equal(b.data, "");
    jbuf_putc(&b, 'a');
    jbuf_puts(&b, "bc");
    jbuf_append(&b, "d\0e", 3);
    assert_int_equal(b.len, 6);
    assert_memory_equal(b.data, "abcd\0e", 6);
    assert_int_equal(b.data[6], '\0');
    jbuf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    jbuf_printf(&b, "%s-%d", "x", 42);
    assert_string_equal(b.data, "x-42");
    jbuf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
}

static void test_jbuf_growth_and_printf(void **state)
{
    (void)state;
    jbuf b;
    jbuf_init(&b);
    /* Many small appends and a printf larger than the current capacity. */
    for (int i = 0; i < 10000; i++)
        jbuf_putc(&b, (char)('a' + i % 26));
    assert_int_equal(b.len, 10000);
    assert_true(b.cap > b.len);
    assert_int_equal(b.data[9999], 'a' + 9999 % 26);
    char big[5000];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    jbuf_printf(&b, "[%s]", big);
    assert_int_equal(b.len, 10000 + 5001);
    assert_int_equal(b.data[10000], '[');
    assert_int_equal(b.data[15000], ']');
    assert_int_equal(b.data[15001], '\0');
    size_t len;
    char *p = jbuf_steal(&b, &len);
    assert_int_equal(len, 15001);
    assert_null(b.data);
    free(p);

    /* printf into an empty buffer, and steal of an empty buffer. */
    jbuf_printf(&b, "%d", 7);
    assert_string_equal(b.data, "7");
    jbuf_free(&b);
    p = jbuf_steal(&b, &len);
    assert_string_equal(p, "");
    assert_int_equal(len, 0);
    free(p);
}

struct str_case {
    const char *in;
    size_t len;
    const char *want;
};

static const struct str_case string_cases[] = {
    {BYTES(""), "\"\""},
    {BYTES("plain ascii 123"), "\"plain ascii 123\""},
    {BYTES("a\"b\\c"), "\"a\\\"b\\\\c\""},
    {BYTES("\b\f\n\r\t"), "\"\\b\\f\\n\\r\\t\""},
    {BYTES("\x1b"), "\"\\u001b\""},
    {BYTES("\x00\x01\x0b\x0e\x1f"), "\"\\u0000\\u0001\\u000b\\u000e\\u001f\""},
    {BYTES("<a href=\"x\">&amp;</a>"),
     "\"\\u003ca href=\\\"x\\\"\\u003e\\u0026amp;\\u003c/a\\u003e\""},
    {BYTES("/ ' ~"), "\"/ ' ~\""},
    {BYTES("\x7f"), "\"\x7f\""},                         /* U+007F raw */
    {BYTES("caf\xc3\xa9"), "\"caf\xc3\xa9\""},           /* é raw */
    {BYTES("\xc2\x85\xc2\xa0"), "\"\xc2\x85\xc2\xa0\""}, /* U+0085, U+00A0 raw */
    {BYTES("\xe2\x82\xac"), "\"\xe2\x82\xac\""},         /* € raw */
    {BYTES("\xf0\x9f\x98\x80"), "\"\xf0\x9f\x98\x80\""}, /* U+1F600 raw */
    {BYTES("\xef\xbf\xbd"), "\"\xef\xbf\xbd\""},         /* a real U+FFFD is raw */
    {BYTES("\xf4\x8f\xbf\xbf"), "\"\xf4\x8f\xbf\xbf\""}, /* U+10FFFF raw */
    {BYTES("a\xe2\x80\xa8"
           "b\xe2\x80\xa9"),
     "\"a\\u2028b\\u2029\""},
    {BYTES("\xe2\x80\xa7\xe2\x80\xaa"), "\"\xe2\x80\xa7\xe2\x80\xaa\""}, /* neighbours raw */
    /* Invalid UTF-8: every byte that is not part of a valid sequence becomes \ufffd. */
    {BYTES("\xff"), "\"\\ufffd\""},
    {BYTES("a\x80z"), "\"a\\ufffdz\""},
    {BYTES("\xc0\xaf"), "\"\\ufffd\\ufffd\""}, /* overlong '/' */
    {BYTES("\xc1\xbf"), "\"\\ufffd\\ufffd\""},
    {BYTES("\xe0\x80\xaf"), "\"\\ufffd\\ufffd\\ufffd\""}, /* overlong 3-byte */
    {BYTES("\xf0\x80\x80\xaf"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\""},
    {BYTES("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\""},            /* surrogate U+D800 */
    {BYTES("\xed\xbf\xbf"), "\"\\ufffd\\ufffd\\ufffd\""},            /* surrogate U+DFFF */
    {BYTES("\xed\x9f\xbf"), "\"\xed\x9f\xbf\""},                     /* U+D7FF is valid */
    {BYTES("\xf4\x90\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\""}, /* > U+10FFFF */
    {BYTES("\xf5\x80\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\""},
    {BYTES("\xe2\x82"), "\"\\ufffd\\ufffd\""}, /* truncated at end */
    {BYTES("\xe2\x82"
           "A"),
     "\"\\ufffd\\ufffdA\""}, /* truncated before ASCII */
    {BYTES("\xf0\x9f\x98"
           "<"),
     "\"\\ufffd\\ufffd\\ufffd\\u003c\""},
    {BYTES("\xc3"
           "\xc3\xa9"),
     "\"\\ufffd\xc3\xa9\""}, /* bad lead then valid */
    {BYTES("\xe2\x80\xa8\xff\n"), "\"\\u2028\\ufffd\\n\""},
};

static void test_json_string_table(void **state)
{
    (void)state;
    jbuf b;
    jbuf_init(&b);
    for (size_t i = 0; i < sizeof(string_cases) / sizeof(string_cases[0]); i++) {
        const struct str_case *c = &string_cases[i];
        jbuf_reset(&b);
        jout_string(&b, c->in, c->len);
        if (b.len != strlen(c->want) || memcmp(b.data, c->want, b.len) != 0)
            fail_msg("case %zu: got [%s] want [%s]", i, b.data, c->want);
    }
    /* Appends after existing content, NULL with length 0, json_cstr. */
    jbuf_reset(&b);
    jbuf_puts(&b, "x=");
    jout_string(&b, NULL, 0);
    jout_cstr(&b, "<");
    assert_string_equal(b.data, "x=\"\"\"\\u003c\"");
    jbuf_free(&b);
}

static void test_json_string_long_runs(void **state)
{
    (void)state;
    /* A long string mixing plain runs and escapes, checked against a byte-by-byte oracle. */
    size_t n = 100000;
    char *in = malloc(n);
    jbuf want, got;
    jbuf_init(&want);
    jbuf_init(&got);
    jbuf_putc(&want, '"');
    for (size_t i = 0; i < n; i++) {
        in[i] = (i % 97 == 0) ? '\n' : (i % 89 == 0) ? '&' : (char)('a' + i % 26);
        if (in[i] == '\n')
            jbuf_puts(&want, "\\n");
        else if (in[i] == '&')
            jbuf_puts(&want, "\\u0026");
        else
            jbuf_putc(&want, in[i]);
    }
    jbuf_putc(&want, '"');
    jout_string(&got, in, n);
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.data, want.data, want.len);
    free(in);
    jbuf_free(&want);
    jbuf_free(&got);
}

static void test_json_scalars(void **state)
{
    (void)state;
    jbuf b;
    jbuf_init(&b);
    jout_int(&b, 0);
    jbuf_putc(&b, ',');
    jout_int(&b, 42);
    jbuf_putc(&b, ',');
    jout_int(&b, -7);
    jbuf_putc(&b, ',');
    jout_int(&b, INT64_MAX);
    jbuf_putc(&b, ',');
    jout_int(&b, INT64_MIN);
    jbuf_putc(&b, ',');
    jout_bool(&b, true);
    jbuf_putc(&b, ',');
    jout_bool(&b, false);
    jbuf_putc(&b, ',');
    jout_null(&b);
    jbuf_putc(&b, ',');
    jout_key(&b, "limit");
    assert_string_equal(b.data, "0,42,-7,9223372036854775807,-9223372036854775808,true,false,"
                                "null,\"limit\":");
    jbuf_free(&b);
}

struct ts_case {
    int64_t sec;
    int32_t nanos;
    const char *want;
};

static const struct ts_case ts_cases[] = {
    {1773451069, 123456000, "\"2026-03-14T01:17:49.123456Z\""},
    {1773451069, 100000000, "\"2026-03-14T01:17:49.1Z\""},
    {1773451069, 0, "\"2026-03-14T01:17:49Z\""},
    {1773451069, 1, "\"2026-03-14T01:17:49.000000001Z\""},
    {1773451069, 999999999, "\"2026-03-14T01:17:49.999999999Z\""},
    {1773451069, 120000, "\"2026-03-14T01:17:49.00012Z\""},
    {0, 0, "\"1970-01-01T00:00:00Z\""},
    {-1, 500000000, "\"1969-12-31T23:59:59.5Z\""},
    {951782400, 0, "\"2000-02-29T00:00:00Z\""},
    {253402300799, 0, "\"9999-12-31T23:59:59Z\""},
    {-62135596800, 0, "\"0001-01-01T00:00:00Z\""},
    {86399, 0, "\"1970-01-01T23:59:59Z\""},
    /* nanos outside 0..999999999 are carried into the seconds */
    {0, 1500000000, "\"1970-01-01T00:00:01.5Z\""},
    {0, -1, "\"1969-12-31T23:59:59.999999999Z\""},
};

static void test_json_timestamp(void **state)
{
    (void)state;
    jbuf b;
    jbuf_init(&b);
    for (size_t i = 0; i < sizeof(ts_cases) / sizeof(ts_cases[0]); i++) {
        jbuf_reset(&b);
        jout_timestamp(&b, ts_cases[i].sec, ts_cases[i].nanos);
        if (strcmp(b.data, ts_cases[i].want) != 0)
            fail_msg("case %zu: got %s want %s", i, b.data, ts_cases[i].want);
    }
    jbuf_free(&b);
}

static void test_json_date(void **state)
{
    (void)state;
    jbuf b;
    jbuf_init(&b);
    jout_date(&b, 0);
    jout_date(&b, 20526);
    jout_date(&b, 19782);
    jout_date(&b, -719162);
    jout_date(&b, 2932896);
    assert_string_equal(b.data, "\"1970-01-01\"\"2026-03-14\"\"2024-02-29\"\"0001-01-01\""
                                "\"9999-12-31\"");
    jbuf_free(&b);
}

/* Independent oracle: generic decode, then reject overlongs, surrogates and > U+10FFFF. */
static size_t oracle_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
    unsigned c = s[0];
    size_t w;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        w = 2, v = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        w = 3, v = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        w = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len < w)
        return 0;
    for (size_t i = 1; i < w; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return w;
}

static void test_utf8_decode_exhaustive(void **state)
{
    (void)state;
    static const unsigned char tails[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F,
                                          0xA0, 0xBF, 0xC0, 0xC2, 0xE0, 0xF0, 0xFF};
    unsigned char s[4];
    uint32_t a, b;
    for (unsigned c0 = 0; c0 < 256; c0++)
        for (unsigned c1 = 0; c1 < 256; c1++)
            for (size_t t2 = 0; t2 < sizeof(tails); t2++)
                for (size_t t3 = 0; t3 < sizeof(tails); t3++) {
                    s[0] = (unsigned char)c0, s[1] = (unsigned char)c1;
                    s[2] = tails[t2], s[3] = tails[t3];
                    for (size_t len = 1; len <= 4; len++) {
                        size_t wa = utf8_decode(s, len, &a);
                        size_t wb = oracle_decode(s, len, &b);
                        if (wa != wb || (wa != 0 && a != b))
                            fail_msg("%02x %02x %02x %02x len %zu: %zu/%x vs %zu/%x", s[0], s[1],
                                     s[2], s[3], len, wa, a, wb, b);
                    }
                }
    assert_int_equal(utf8_decode((const unsigned char *)"\xff", 1, &a), 0);
    assert_int_equal(a, 0xFFFD);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jbuf_basics),       cmocka_unit_test(test_jbuf_growth_and_printf),
        cmocka_unit_test(test_json_string_table), cmocka_unit_test(test_json_string_long_runs),
        cmocka_unit_test(test_json_scalars),      cmocka_unit_test(test_json_timestamp),
        cmocka_unit_test(test_json_date),         cmocka_unit_test(test_utf8_decode_exhaustive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
