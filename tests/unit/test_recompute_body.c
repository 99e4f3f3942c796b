/*
 * tests/unit/test_recompute_body.c: unit tests for server/recompute_body (the trigger body of
 * API.md §4.5, [F15]): accepted shapes, every rejection rule, repeated members, U+FFFD for
 * invalid UTF-8 and unpaired surrogates, U+0000 kept with its length, and the sanitizer's
 * invariants.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/recompute_body.h"

#define BYTES(s) s, sizeof(s) - 1
#define FFFD     "\xEF\xBF\xBD"

static int decode(const char *s, size_t len, recompute_body *b)
{
    return recompute_body_decode(s, len, b);
}

static void assert_str(const recompute_body_str *v, const char *want, size_t want_len)
{
    assert_non_null(v->s);
    assert_int_equal(v->len, want_len);
    assert_memory_equal(v->s, want, want_len);
    assert_int_equal(v->s[v->len], '\0');
}

static void assert_absent(const recompute_body_str *v)
{
    assert_null(v->s);
    assert_int_equal(v->len, 0);
}

static void assert_all_absent(const recompute_body *b)
{
    assert_absent(&b->report_slug);
    assert_absent(&b->window);
    assert_absent(&b->date_from);
    assert_absent(&b->date_to);
    assert_absent(&b->requested_by);
}

/* ---- accepted bodies ------------------------------------------------------------------- */

static void test_full_object(void **state)
{
    (void)state;
    recompute_body b;
    const char body[] = "{\"report_slug\":\"volume-by-period\",\"window\":\"week\","
                        "\"date_from\":\"2026-01-01\",\"date_to\":\"2026-02-01\","
                        "\"requested_by\":\"integration-test\"}";
    assert_int_equal(decode(BYTES(body), &b), 0);
    assert_str(&b.report_slug, BYTES("volume-by-period"));
    assert_str(&b.window, BYTES("week"));
    assert_str(&b.date_from, BYTES("2026-01-01"));
    assert_str(&b.date_to, BYTES("2026-02-01"));
    assert_str(&b.requested_by, BYTES("integration-test"));
    recompute_body_free(&b);
    assert_all_absent(&b);
}

static void test_empty_object_and_whitespace(void **state)
{
    (void)state;
    recompute_body b;
    assert_int_equal(decode(BYTES("{}"), &b), 0);
    assert_all_absent(&b);
    assert_int_equal(decode(BYTES(" \t\r\n{ \"window\" : \"day\" } \n\r\t "), &b), 0);
    assert_str(&b.window, BYTES("day"));
    assert_absent(&b.report_slug);
    recompute_body_free(&b);
}

static void test_null_top_level_is_empty_object(void **state)
{
    (void)state;
    recompute_body b;
    assert_int_equal(decode(BYTES("null"), &b), 0);
    assert_all_absent(&b);
    assert_int_equal(decode(BYTES("  null\n"), &b), 0);
    assert_all_absent(&b);
}

static void test_null_member_is_absent(void **state)
{
    (void)state;
    recompute_body b;
    assert_int_equal(decode(BYTES("{\"report_slug\":null,\"window\":null,\"date_from\":null,"
                                  "\"date_to\":null,\"requested_by\":null}"),
                            &b),
                     0);
    assert_all_absent(&b);
}

static void test_repeated_member_last_wins(void **state)
{
    (void)state;
    recompute_body b;
    assert_int_equal(decode(BYTES("{\"report_slug\":\"a\",\"report_slug\":\"b\"}"), &b), 0);
    assert_str(&b.report_slug, BYTES("b"));
    recompute_body_free(&b);
    /* A later null wins too: the member is then absent. */
    assert_int_equal(decode(BYTES("{\"report_slug\":\"a\",\"report_slug\":null}"), &b), 0);
    assert_absent(&b.report_slug);
    recompute_body_free(&b);
    assert_int_equal(decode(BYTES("{\"window\":null,\"window\":\"week\"}"), &b), 0);
    assert_str(&b.window, BYTES("week"));
    recompute_body_free(&b);
}

static void test_empty_and_blank_strings_kept(void **state)
{
    (void)state;
    recompute_body b;
    assert_int_equal(decode(BYTES("{\"report_slug\":\"\",\"requested_by\":\"  \"}"), &b), 0);
    assert_str(&b.report_slug, BYTES(""));
    assert_str(&b.requested_by, BYTES("  "));
    recompute_body_free(&b);
}

static void test_escapes_decoded(void **state)
{
    (void)state;
    recompute_body b;
    assert_int_equal(
        decode(BYTES("{\"requested_by\":\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u00e9\\u20AC\"}"), &b),
        0);
    assert_str(&b.requested_by, BYTES("a\"b\\c/d\b\f\n\r\t\xC3\xA9\xE2\x82\xAC"));
    recompute_body_free(&b);
}

static void test_nul_escape_kept_with_length(void **state)
{
    (void)state;
    recompute_body b;
    assert_int_equal(decode(BYTES("{\"report_slug\":\"a\\u0000b\"}"), &b), 0);
    assert_str(&b.report_slug, "a\0b", 3);
    recompute_body_free(&b);
    assert_int_equal(decode(BYTES("{\"requested_by\":\"\\u0000\"}"), &b), 0);
    assert_str(&b.requested_by, "\0", 1);
    recompute_body_free(&b);
}

static void test_raw_utf8_kept(void **state)
{
    (void)state;
    recompute_body b;
    const char body[] = "{\"requested_by\":\"J\xC3\xBCrgen \xE2\x82\xAC \xF0\x9F\x98\x80\"}";
    assert_int_equal(decode(BYTES(body), &b), 0);
    assert_str(&b.requested_by, BYTES("J\xC3\xBCrgen \xE2\x82\xAC \xF0\x9F\x98\x80"));
    recompute_body_free(&b);
}

/* ---- U+FFFD replacements ---------------------------------------------------------------- */

struct fffd_case {
    const char *body;
    size_t body_len;
    const char *want;
    size_t want_len;
};

#define FFFD_CASE(body, want)                                                                      \
    {                                                                                              \
        BYTES(body), BYTES(want)                                                                   \
    }

static const struct fffd_case fffd_cases[] = {
    /* invalid UTF-8 bytes, each byte on its own */
    FFFD_CASE("{\"report_slug\":\"a\xFF"
              "b\"}",
              "a" FFFD "b"),
    FFFD_CASE("{\"report_slug\":\"\x80\"}", FFFD),
    FFFD_CASE("{\"report_slug\":\"\xC0\xAF\"}", FFFD FFFD),          /* overlong '/' */
    FFFD_CASE("{\"report_slug\":\"\xE2\x82\"}", FFFD FFFD),          /* truncated sequence */
    FFFD_CASE("{\"report_slug\":\"\xED\xA0\x80\"}", FFFD FFFD FFFD), /* encoded surrogate */
    FFFD_CASE("{\"report_slug\":\"\xF4\x90\x80\x80\"}", FFFD FFFD FFFD FFFD), /* > U+10FFFF */
    FFFD_CASE("{\"report_slug\":\"\xF5\"}", FFFD),
    FFFD_CASE("{\"report_slug\":\"x\xE2\x82\xAC\xE2\"}", "x\xE2\x82\xAC" FFFD),
    /* unpaired surrogate escapes */
    FFFD_CASE("{\"report_slug\":\"\\ud800\"}", FFFD),
    FFFD_CASE("{\"report_slug\":\"\\uD800x\"}", FFFD "x"),
    FFFD_CASE("{\"report_slug\":\"\\udc00\"}", FFFD),
    FFFD_CASE("{\"report_slug\":\"\\uDFFF\\uD800\"}", FFFD FFFD),
    FFFD_CASE("{\"report_slug\":\"\\ud83d\\u0041\"}", FFFD "A"),
    FFFD_CASE("{\"report_slug\":\"\\ud83d\\ud83d\\ude00\"}", FFFD "\xF0\x9F\x98\x80"),
    FFFD_CASE("{\"report_slug\":\"\\ude00\\ud83d\"}", FFFD FFFD),
    FFFD_CASE("{\"report_slug\":\"\\ud83d\\\\ude00\"}", FFFD "\\ude00"),
    /* a valid pair is kept */
    FFFD_CASE("{\"report_slug\":\"\\ud83d\\ude00\"}", "\xF0\x9F\x98\x80"),
    FFFD_CASE("{\"report_slug\":\"\\uDBFF\\uDFFF\"}", "\xF4\x8F\xBF\xBF"),
    /* an escaped backslash followed by "ud800" text is not an escape */
    FFFD_CASE("{\"report_slug\":\"\\\\ud800\"}", "\\ud800"),
    FFFD_CASE("{\"report_slug\":\"\\\"\\ud800\"}", "\"" FFFD),
};

static void test_fffd_replacements(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(fffd_cases) / sizeof(fffd_cases[0]); i++) {
        const struct fffd_case *c = &fffd_cases[i];
        recompute_body b;
        int rc = decode(c->body, c->body_len, &b);
        if (rc != 0)
            fail_msg("case %zu rejected", i);
        assert_str(&b.report_slug, c->want, c->want_len);
        recompute_body_free(&b);
    }
}

static void test_invalid_utf8_in_member_name_is_unknown(void **state)
{
    (void)state;
    recompute_body b;
    assert_int_equal(decode(BYTES("{\"report_slug\xFF\":\"a\"}"), &b), -1);
    assert_int_equal(decode(BYTES("{\"\\ud800\":\"a\"}"), &b), -1);
    assert_all_absent(&b);
}

/* ---- rejected bodies --------------------------------------------------------------------- */

struct reject_case {
    const char *body;
    size_t len;
};

#define REJECT(s)                                                                                  \
    {                                                                                              \
        BYTES(s)                                                                                   \
    }

static const struct reject_case reject_cases[] = {
    REJECT(""),
    REJECT(" "),
    REJECT(" \t\r\n "),
    REJECT("\xEF\xBB\xBF{}"),   /* BOM */
    REJECT("\xEF\xBB\xBFnull"), /* BOM */
    REJECT("[]"),               /* not an object */
    REJECT("[{}]"),
    REJECT("\"x\""),
    REJECT("1"),
    REJECT("true"),
    REJECT("false"),
    REJECT("nul"),
    REJECT("{"),
    REJECT("}"),
    REJECT("{\"report_slug\":\"a\""),   /* unterminated object */
    REJECT("{\"report_slug\":\"a}"),    /* unterminated string */
    REJECT("{\"report_slug\":\"a\",}"), /* trailing comma */
    REJECT("{report_slug:\"a\"}"),      /* unquoted name */
    REJECT("{'report_slug':'a'}"),
    REJECT("{}x"), /* trailing garbage */
    REJECT("{} {}"),
    REJECT("{}\n,"),
    REJECT("null null"),
    REJECT("{}\x00"), /* trailing NUL byte */
    REJECT("\x00{}"),
    REJECT("{}\xFF"),              /* invalid byte outside strings */
    REJECT("{\"unknown\":\"a\"}"), /* unknown member */
    REJECT("{\"report_slug\":\"a\",\"extra\":null}"),
    REJECT("{\"Report_Slug\":\"a\"}"), /* names are case-sensitive */
    REJECT("{\"report_slug \":\"a\"}"),
    REJECT("{\"report_slug\\u0000\":\"a\"}"), /* NUL inside a member name */
    REJECT("{\"\":\"a\"}"),
    REJECT("{\"report_slug\":1}"), /* other value types */
    REJECT("{\"report_slug\":1.5}"),
    REJECT("{\"report_slug\":true}"),
    REJECT("{\"report_slug\":false}"),
    REJECT("{\"report_slug\":[]}"),
    REJECT("{\"report_slug\":[\"a\"]}"),
    REJECT("{\"report_slug\":{}}"), /* nested object */
    REJECT("{\"report_slug\":{\"x\":\"a\"}}"),
    REJECT("{\"window\":7}"),
    REJECT("{\"requested_by\":null,\"date_to\":20260101}"),
    REJECT("{\"report_slug\":\"a\",\"report_slug\":1}"), /* a repeat with a bad type */
    REJECT("{\"report_slug\":\"a\nb\"}"),                /* raw control character in a string */
    REJECT("{\"report_slug\":\"a\\x\"}"),                /* invalid escape */
    REJECT("{\"report_slug\":\"\\u12\"}"),               /* short \u escape */
    REJECT("{\"report_slug\":\"\\u12G4\"}"),
    REJECT("{\"report_slug\":\"a\\"), /* backslash at the end */
    REJECT("{\"report_slug\":\"a\"\"b\"}"),
    REJECT("{\"report_slug\" \"a\"}"), /* missing colon */
    REJECT("{\"report_slug\":NaN}"),
    REJECT("\"\\ud800\""), /* a string top level, even sanitised */
};

static void test_rejections(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(reject_cases) / sizeof(reject_cases[0]); i++) {
        recompute_body b;
        memset(&b, 0x5a, sizeof(b));
        int rc = decode(reject_cases[i].body, reject_cases[i].len, &b);
        if (rc != -1)
            fail_msg("case %zu accepted", i);
        assert_all_absent(&b);
        recompute_body_free(&b); /* harmless */
    }
}

static void test_null_pointer_empty_body(void **state)
{
    (void)state;
    recompute_body b;
    assert_int_equal(decode(NULL, 0, &b), -1);
    assert_all_absent(&b);
}

static void test_deep_nesting_rejected(void **state)
{
    (void)state;
    size_t depth = 5000;
    char *s = malloc(depth * 2 + 32);
    size_t n = 0;
    n += (size_t)sprintf(s, "{\"report_slug\":");
    for (size_t i = 0; i < depth; i++)
        s[n++] = '[';
    for (size_t i = 0; i < depth; i++)
        s[n++] = ']';
    s[n++] = '}';
    recompute_body b;
    assert_int_equal(decode(s, n, &b), -1);
    free(s);
}

/* ---- sanitizer ------------------------------------------------------------------------- */

static void test_sanitize_outside_strings_untouched(void **state)
{
    (void)state;
    const char in[] = "\xFF{\xC0 \"a\xFF\" \xFF}\"\\ud800";
    char out[sizeof(in) * 3];
    size_t n = recompute_body_sanitize(in, sizeof(in) - 1, out);
    const char want[] = "\xFF{\xC0 \"a" FFFD "\" \xFF}\"\\uFFFD";
    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(out, want, n);
}

static void test_sanitize_worst_case_length(void **state)
{
    (void)state;
    char in[65];
    in[0] = '"';
    memset(in + 1, 0xFF, 64);
    char out[sizeof(in) * 3];
    size_t n = recompute_body_sanitize(in, sizeof(in), out);
    assert_int_equal(n, 1 + 64 * 3);
    assert_true(n <= sizeof(in) * 3);
}

static void test_sanitize_identity_on_valid_json(void **state)
{
    (void)state;
    const char in[] = "{\"report_slug\":\"\\ud83d\\ude00 \xE2\x82\xAC \\\\ \\\" \\u0000\"}";
    char out[sizeof(in) * 3];
    size_t n = recompute_body_sanitize(in, sizeof(in) - 1, out);
    assert_int_equal(n, sizeof(in) - 1);
    assert_memory_equal(out, in, n);
}

static void test_sanitize_truncated_escapes(void **state)
{
    (void)state;
    /* Escapes cut off by the end of the input are copied as they are. */
    const char *ins[] = {"\"\\", "\"\\u", "\"\\ud8", "\"\\ud800\\", "\"\\ud800\\udc"};
    const char *wants[] = {"\"\\", "\"\\u", "\"\\ud8", "\"\\uFFFD\\", "\"\\uFFFD\\udc"};
    for (size_t i = 0; i < sizeof(ins) / sizeof(ins[0]); i++) {
        char out[64];
        size_t n = recompute_body_sanitize(ins[i], strlen(ins[i]), out);
        assert_int_equal(n, strlen(wants[i]));
        assert_memory_equal(out, wants[i], n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_object),
        cmocka_unit_test(test_empty_object_and_whitespace),
        cmocka_unit_test(test_null_top_level_is_empty_object),
        cmocka_unit_test(test_null_member_is_absent),
        cmocka_unit_test(test_repeated_member_last_wins),
        cmocka_unit_test(test_empty_and_blank_strings_kept),
        cmocka_unit_test(test_escapes_decoded),
        cmocka_unit_test(test_nul_escape_kept_with_length),
        cmocka_unit_test(test_raw_utf8_kept),
        cmocka_unit_test(test_fffd_replacements),
        cmocka_unit_test(test_invalid_utf8_in_member_name_is_unknown),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_null_pointer_empty_body),
        cmocka_unit_test(test_deep_nesting_rejected),
        cmocka_unit_test(test_sanitize_outside_strings_untouched),
        cmocka_unit_test(test_sanitize_worst_case_length),
        cmocka_unit_test(test_sanitize_identity_on_valid_json),
        cmocka_unit_test(test_sanitize_truncated_escapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
