/*
 * tests/unit/test_params.c: unit tests for common/params and common/textutil: query-string
 * decoding (API.md §2.1), trimming and blank values (§2.2), matchable text (§2.3), integer
 * parameters (§2.4), window (§2.5), the management key candidate (§3, server/http_auth.h), UUID
 * ids (§4.7) and requested_by (§4.5 step 8).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/params.h"
#include "server/http_auth.h"

#define BYTES(s) s, sizeof(s) - 1

/* ---- query_parse / query_find ---------------------------------------------------------- */

struct query_case {
    const char *qs;
    const char *name;
    int found;
    const char *want; /* decoded value */
    size_t want_len;
};

#define FOUND(qs, name, v)                                                                         \
    {                                                                                              \
        qs, name, 1, v, sizeof(v) - 1                                                              \
    }
#define ABSENT(qs, name)                                                                           \
    {                                                                                              \
        qs, name, 0, NULL, 0                                                                       \
    }

static const struct query_case query_cases[] = {
    FOUND("limit=5", "limit", "5"),
    FOUND("limit=%2B5", "limit", "+5"),
    FOUND("limit=+5", "limit", " 5"),
    FOUND("limit=%205", "limit", " 5"),
    FOUND("a=1&limit=007&b=2", "limit", "007"),
    FOUND("Limit=5&limit=6", "limit", "6"),
    ABSENT("Limit=5&LIMIT=6", "limit"),
    FOUND("limit=1&limit=2", "limit", "1"),
    FOUND("limit=1;x&limit=2", "limit", "2"),
    FOUND("limit;=1&limit=2", "limit", "2"),
    FOUND("limit=;&limit=2", "limit", "2"),
    FOUND("limit=%zz&limit=3", "limit", "3"),
    FOUND("limit=%4&limit=3", "limit", "3"),
    FOUND("limit=5%&limit=3", "limit", "3"),
    FOUND("limit%=1&limit=2", "limit", "2"),
    FOUND("limit%2=1&limit=2", "limit", "2"),
    FOUND("limi%74=4", "limit", "4"),
    FOUND("limi%74=4&limit=5", "limit", "4"),
    FOUND("limit", "limit", ""),
    FOUND("limit=", "limit", ""),
    FOUND("limit&limit=3", "limit", ""),
    FOUND("&&limit=7&", "limit", "7"),
    FOUND("limit=a=b", "limit", "a=b"),
    FOUND("limit=1%3B", "limit", "1;"),
    FOUND("limit=%e9%E9", "limit", "\xe9\xe9"),
    FOUND("limit=5%00x", "limit", "5\0x"),
    FOUND("window=%57EEK", "window", "WEEK"),
    FOUND("a+b=1", "a b", "1"),
    FOUND("a%20b=1", "a b", "1"),
    FOUND("a%3Db=1", "a=b", "1"),
    FOUND("source=a<b%26c", "source", "a<b&c"),
    FOUND("=5", "", "5"),
    ABSENT("x=1", "limit"),
    ABSENT("limits=1&limi=2", "limit"),
    ABSENT("", "limit"),
    ABSENT("&&&", "limit"),
    ABSENT("limit=1;", "limit"),
    ABSENT("limit=%", "limit"),
    ABSENT("limit=%g0", "limit"),
};

/* Every case through the one parser, as the handlers use it: query_parse, then query_find. */
static void test_query_parse(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(query_cases) / sizeof(query_cases[0]); i++) {
        const struct query_case *c = &query_cases[i];
        size_t qlen = strlen(c->qs);
        size_t bound = query_piece_bound(c->qs, qlen);
        query_param *params = malloc(bound * sizeof(*params)); /* exact sizes for ASan */
        char *buf = malloc(qlen ? qlen : 1);
        size_t n = query_parse(c->qs, qlen, params, buf);
        assert_true(n <= bound);
        const query_param *q = query_find(params, n, c->name);
        if ((q != NULL) != c->found)
            fail_msg("case %zu (%s): found %d", i, c->qs, q != NULL);
        if (q != NULL && (q->value_len != c->want_len || memcmp(q->value, c->want, q->value_len)))
            fail_msg("case %zu (%s): value [%.*s]", i, c->qs, (int)q->value_len, q->value);
        free(params);
        free(buf);
    }
    /* Pieces in order, invalid ones skipped, names decoded too. */
    const char *qs = "a=1&&b%3D=x+y&bad=%zz&c&a=2";
    query_param p[6];
    char buf[32];
    assert_int_equal(query_piece_bound(qs, strlen(qs)), 6);
    assert_int_equal(query_parse(qs, strlen(qs), p, buf), 4);
    assert_int_equal(p[1].name_len, 2);
    assert_memory_equal(p[1].name, "b=", 2);
    assert_memory_equal(p[1].value, "x y", 3);
    assert_int_equal(p[2].name_len, 1);
    assert_int_equal(p[2].value_len, 0);
    assert_memory_equal(query_find(p, 4, "a")->value, "1", 1);
    assert_null(query_find(p, 4, "bad"));

    /* The explicit length bounds the scan. */
    query_param one[2];
    assert_int_equal(query_piece_bound("limit=12&x=1", 7), 1);
    assert_int_equal(query_parse("limit=12&x=1", 7, one, buf), 1);
    assert_int_equal(one[0].value_len, 1);
    assert_int_equal(one[0].value[0], '1');
}

/* The one percent-decoder (textutil.h), also used for REDIS_URL credentials. */
static void test_percent_decode(void **state)
{
    (void)state;
    char out[16];
    size_t n = 99;
    assert_int_equal(text_percent_decode(BYTES("a+b%2B%41%e9"), true, out, &n), 0);
    assert_int_equal(n, 6);
    assert_memory_equal(out, "a b+A\xe9", 6);
    assert_int_equal(text_percent_decode(BYTES("a+b"), false, out, &n), 0);
    assert_memory_equal(out, "a+b", 3);
    assert_int_equal(text_percent_decode(BYTES("%00"), false, out, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0], '\0');
    n = 99;
    assert_int_equal(text_percent_decode(BYTES("%4"), true, out, &n), -1);
    assert_int_equal(text_percent_decode(BYTES("x%"), true, out, &n), -1);
    assert_int_equal(text_percent_decode(BYTES("%g0"), true, out, &n), -1);
    assert_int_equal(n, 99);
    assert_int_equal(text_percent_decode("", 0, true, out, &n), 0);
    assert_int_equal(n, 0);
}

/* ---- trimming, blank, matchable ------------------------------------------------------ */

static bool in_trim_set(uint32_t cp)
{
    static const uint32_t set[] = {0x09,   0x0A,   0x0B,   0x0C,   0x0D,   0x20,   0x85,
                                   0xA0,   0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004,
                                   0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200A, 0x2028,
                                   0x2029, 0x202F, 0x205F, 0x3000};
    for (size_t i = 0; i < sizeof(set) / sizeof(set[0]); i++)
        if (set[i] == cp)
            return true;
    return false;
}

static size_t encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Every code point: it is trimmed from both ends of "<c>x<c>" exactly when in the set. */
static void test_trim_every_code_point(void **state)
{
    (void)state;
    char s[16];
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF)
            continue;
        size_t w = encode(cp, s);
        s[w] = 'x';
        memcpy(s + w + 1, s, w);
        size_t start, len;
        text_trim(s, 2 * w + 1, &start, &len);
        bool ws = in_trim_set(cp);
        if (ws && (start != w || len != 1))
            fail_msg("U+%04X not trimmed", cp);
        if (!ws && (start != 0 || len != 2 * w + 1))
            fail_msg("U+%04X trimmed", cp);
        if (text_is_blank(s, w) != ws)
            fail_msg("U+%04X blank mismatch", cp);
    }
}

struct trim_case {
    const char *s;
    size_t len;
    size_t start, out_len;
};

static const struct trim_case trim_cases[] = {
    {BYTES(""), 0, 0},
    {BYTES("   "), 0, 0},
    {BYTES("\t\n\v\f\r \xc2\x85\xc2\xa0\xe3\x80\x80"), 0, 0},
    {BYTES("abc"), 0, 3},
    {BYTES("  a b  "), 2, 3},
    {BYTES("\xe2\x80\x82"
           "day\xe2\x80\xaf"),
     3, 3},
    {BYTES("\xa0x"), 0, 2}, /* a lone 0xA0 byte is invalid, not U+00A0 */
    {BYTES("x\xc2"), 0, 2}, /* truncated sequence is not whitespace */
    {BYTES(" \xc2 "), 1, 1},
    {BYTES("\x1c"
           "a\x1f"),
     0, 3}, /* U+001C–U+001F are not in the set */
    {BYTES("\xe2\x80\x8b"
           "a"),
     0, 4}, /* U+200B zero width space is not either */
    {BYTES("\xef\xbb\xbf"
           "a"),
     0, 4},                /* U+FEFF */
    {BYTES(" \0 "), 1, 1}, /* NUL is not whitespace */
};

static void test_trim_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(trim_cases) / sizeof(trim_cases[0]); i++) {
        const struct trim_case *c = &trim_cases[i];
        size_t start = 99, len = 99;
        text_trim(c->s, c->len, &start, &len);
        if (start != c->start || len != c->out_len)
            fail_msg("case %zu: start %zu len %zu", i, start, len);
        assert_int_equal(text_is_blank(c->s, c->len), c->out_len == 0);
    }
    assert_true(text_is_blank(NULL, 0));
    size_t start, len;
    text_trim(NULL, 0, &start, &len);
    assert_int_equal(len, 0);
}

static void test_matchable(void **state)
{
    (void)state;
    assert_true(text_is_matchable(BYTES("status-counts")));
    assert_true(text_is_matchable(BYTES("")));
    assert_true(text_is_matchable(NULL, 0));
    assert_true(text_is_matchable(BYTES("caf\xc3\xa9 \xf0\x9f\x98\x80")));
    assert_true(text_is_matchable(BYTES("\x7f\x01")));
    assert_false(text_is_matchable(BYTES("a\0b")));
    assert_false(text_is_matchable(BYTES("\0")));
    assert_false(text_is_matchable(BYTES("a\xff")));
    assert_false(text_is_matchable(BYTES("\xed\xa0\x80")));
    assert_false(text_is_matchable(BYTES("\xc0\xaf")));
    assert_false(text_is_matchable(BYTES("\xe2\x82")));
    assert_true(utf8_valid(BYTES("a\0b")));
    assert_false(utf8_valid(BYTES("\xf4\x90\x80\x80")));
}

static void test_requested_by(void **state)
{
    (void)state;
    assert_true(text_requested_by_valid(BYTES("management-api")));
    assert_true(text_requested_by_valid(BYTES("integration-test")));
    assert_true(text_requested_by_valid(BYTES("\xe6\x97\xa5\xe6\x9c\xac")));
    assert_true(text_requested_by_valid(BYTES("a b\xc2\xa0"
                                              "c")));
    assert_false(text_requested_by_valid(BYTES("")));
    assert_false(text_requested_by_valid(NULL, 0));
    assert_false(text_requested_by_valid(BYTES("a\tb")));
    assert_false(text_requested_by_valid(BYTES("a\nb")));
    assert_false(text_requested_by_valid(BYTES("a\0b")));
    assert_false(text_requested_by_valid(BYTES("a\x1f")));
    assert_false(text_requested_by_valid(BYTES("a\x7f")));
    assert_false(text_requested_by_valid(BYTES("a\xc2\x80")));
    assert_false(text_requested_by_valid(BYTES("a\xc2\x9f")));
    assert_false(text_requested_by_valid(BYTES("a\xff")));
    assert_false(text_requested_by_valid(BYTES("a\xe2\x82")));

    /* 128 code points allowed, 129 not, counted in code points rather than bytes. */
    char s[600];
    memset(s, 'a', 129);
    assert_true(text_requested_by_valid(s, 128));
    assert_false(text_requested_by_valid(s, 129));
    for (int i = 0; i < 129; i++)
        memcpy(s + 3 * i, "\xe2\x82\xac", 3);
    assert_true(text_requested_by_valid(s, 3 * 128));
    assert_false(text_requested_by_valid(s, 3 * 129));
}

/* ---- integers and window ------------------------------------------------------------- */

struct int_case {
    const char *v; /* NULL = absent */
    size_t len;
    param_int_status st;
    int64_t want;
};

#define IS(s, w)                                                                                   \
    {                                                                                              \
        s, sizeof(s) - 1, PARAM_INT_SET, w                                                         \
    }
#define IDEF(s)                                                                                    \
    {                                                                                              \
        s, sizeof(s) - 1, PARAM_INT_DEFAULT, 0                                                     \
    }

static const struct int_case int_cases[] = {
    IS("5", 5),
    IS("+5", 5), /* what limit=%2B5 decodes to */
    IS("007", 7),
    IS("0", 0),
    IS("-0", 0),
    IS("-1", -1),
    IS("-20", -20),
    IS("9223372036854775807", INT64_MAX),
    IS("-9223372036854775808", INT64_MIN),
    IS("+0009223372036854775807", INT64_MAX),
    IDEF(""),
    IDEF("   "),
    IDEF(" 5"), /* limit=+5 and limit=%205 */
    IDEF("5 "),
    IDEF("abc"),
    IDEF("5.0"),
    IDEF("1e3"),
    IDEF("0x10"),
    IDEF("+"),
    IDEF("-"),
    IDEF("+-5"),
    IDEF("--5"),
    IDEF("5\0"),
    IDEF("\xef\xbc\x95"), /* fullwidth 5 */
    IDEF("9223372036854775808"),
    IDEF("-9223372036854775809"),
    IDEF("99999999999999999999"),
    IDEF("18446744073709551616"),
};

static void test_param_int(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(int_cases) / sizeof(int_cases[0]); i++) {
        const struct int_case *c = &int_cases[i];
        int64_t out = 4242;
        param_int_status st = param_int(c->v, c->len, true, &out);
        if (st != c->st)
            fail_msg("case %zu (%s): status %d", i, c->v, st);
        if (st == PARAM_INT_SET && out != c->want)
            fail_msg("case %zu (%s): %lld", i, c->v, (long long)out);
        if (st == PARAM_INT_DEFAULT && out != 4242)
            fail_msg("case %zu: output touched", i);
    }
    int64_t out = 1;
    assert_int_equal(param_int(NULL, 0, false, &out), PARAM_INT_DEFAULT);
    assert_int_equal(param_int("5", 1, false, &out), PARAM_INT_DEFAULT);
    assert_int_equal(out, 1);

    /* End to end with the query decoder: the spec's examples. */
    static const struct {
        const char *qs;
        param_int_status st;
        int64_t want;
    } e2e[] = {
        {"limit=%2B5", PARAM_INT_SET, 5},
        {"limit=+5", PARAM_INT_DEFAULT, 0},
        {"limit=%205", PARAM_INT_DEFAULT, 0},
        {"limit=007", PARAM_INT_SET, 7},
        {"limit=99999999999999999999", PARAM_INT_DEFAULT, 0},
        {"limit=abc", PARAM_INT_DEFAULT, 0},
        {"limit=5.0", PARAM_INT_DEFAULT, 0},
        {"limit=", PARAM_INT_DEFAULT, 0},
        {"other=3", PARAM_INT_DEFAULT, 0},
    };
    for (size_t i = 0; i < sizeof(e2e) / sizeof(e2e[0]); i++) {
        char buf[64];
        query_param params[4];
        size_t np = query_parse(e2e[i].qs, strlen(e2e[i].qs), params, buf);
        const query_param *q = query_find(params, np, "limit");
        out = -99;
        param_int_status st = param_int(q ? q->value : NULL, q ? q->value_len : 0, q != NULL, &out);
        if (st != e2e[i].st || (st == PARAM_INT_SET && out != e2e[i].want))
            fail_msg("%s: status %d value %lld", e2e[i].qs, st, (long long)out);
    }
}

struct window_case {
    const char *v;
    size_t len;
    const char *want; /* NULL = invalid */
};

#define W(s, w)                                                                                    \
    {                                                                                              \
        s, sizeof(s) - 1, w                                                                        \
    }

static const struct window_case window_cases[] = {
    W("day", "day"),
    W("week", "week"),
    W("WEEK", "week"),
    W(" Week ", "week"),
    W("DaY", "day"),
    W("", "day"),
    W("  \t", "day"),
    W("\xc2\xa0week\xe3\x80\x80", "week"),
    W("days", NULL),
    W("wee", NULL),
    W("month", NULL),
    W("we ek", NULL),
    W("week\0", NULL),
    W("\xef\xbd\x97"
      "eek",
      NULL), /* fullwidth w */
    W("week\xff", NULL),
    W("weekly-long-value", NULL),
};

static void test_param_window(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(window_cases) / sizeof(window_cases[0]); i++) {
        const struct window_case *c = &window_cases[i];
        const char *out = "untouched";
        int rc = param_window(c->v, c->len, &out);
        if (c->want == NULL) {
            if (rc != -1 || strcmp(out, "untouched") != 0)
                fail_msg("case %zu: accepted as %s", i, out);
        } else if (rc != 0 || strcmp(out, c->want) != 0) {
            fail_msg("case %zu: rc %d out %s", i, rc, out);
        }
    }
    const char *out = NULL;
    assert_int_equal(param_window(NULL, 0, &out), 0);
    assert_string_equal(out, "day");
}

/* ---- UUID ------------------------------------------------------------------------------ */

#define CANON "6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab"

static const char *const uuid_ok[] = {
    "6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab",    "6F1C2D3E-4B5A-4C6D-8E7F-0123456789AB",
    "6f1c2d3e4b5a4c6d8e7f0123456789ab",        "6F1c2d3E4b5a4c6d8E7f0123456789aB",
    "{6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab}",  "{6f1c2d3e4b5a4c6d8e7f0123456789ab}",
    "6f1c-2d3e-4b5a-4c6d-8e7f-0123-4567-89ab", "{6f1c-2d3e-4b5a-4c6d-8e7f-0123-4567-89ab}",
    "6f1c2d3e4b5a-4c6d8e7f-0123456789ab",      "6f1c-2d3e4b5a4c6d8e7f0123456789ab",
    "6f1c2d3e4b5a4c6d8e7f01234567-89ab",
};

static const char *const uuid_bad[] = {
    "",
    "{}",
    "6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab-", /* hyphen after the last group */
    "-6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab", /* leading hyphen */
    "6f1c2d3e--4b5a-4c6d-8e7f-0123456789ab", /* double hyphen */
    "6f1c2d3e-4b5a-4c6d-8e7f-0123456789a",   /* 31 digits */
    "6f1c2d3e-4b5a-4c6d-8e7f-0123456789abc", /* 33 digits */
    "6f1c2d3-e4b5a-4c6d-8e7f-0123456789ab",  /* hyphen after 7 digits */
    "6f1c2d3e4-b5a-4c6d-8e7f-0123456789ab",  /* hyphen after 9 digits */
    "6f-1c2d3e4b5a4c6d8e7f0123456789ab",     /* hyphen after 2 digits */
    "6f1c2d-3e4b5a4c6d8e7f0123456789ab",     /* hyphen after 6 digits */
    "6f1c2d3g-4b5a-4c6d-8e7f-0123456789ab",  /* not hex */
    "{6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab", /* unclosed brace */
    "6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab}", /* close without open */
    "{{6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab}}",
    "(6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab)",
    " 6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab",
    "6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab ",
    "6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab\n",
    "{-6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab}",
    "{6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab-}",
    "6f1c2d3e_4b5a_4c6d_8e7f_0123456789ab",
    "urn:uuid:6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab",
    "1",
};

static void test_uuid_parse(void **state)
{
    (void)state;
    char out[37];
    for (size_t i = 0; i < sizeof(uuid_ok) / sizeof(uuid_ok[0]); i++) {
        memset(out, 'X', sizeof(out));
        if (uuid_parse(uuid_ok[i], strlen(uuid_ok[i]), out) != 0)
            fail_msg("rejected %s", uuid_ok[i]);
        assert_string_equal(out, CANON);
    }
    for (size_t i = 0; i < sizeof(uuid_bad) / sizeof(uuid_bad[0]); i++)
        if (uuid_parse(uuid_bad[i], strlen(uuid_bad[i]), out) != -1)
            fail_msg("accepted %s", uuid_bad[i]);
    /* Explicit length: an embedded NUL is rejected, trailing bytes beyond len are not read. */
    assert_int_equal(uuid_parse(BYTES(CANON "\0"), out), -1);
    assert_int_equal(uuid_parse(CANON "zz", 36, out), 0);
    assert_int_equal(uuid_parse(NULL, 0, out), -1);
}

/* ---- management key candidate ------------------------------------------------------------ */

struct auth_case {
    const char *x;     /* NULL = header absent */
    const char *authz; /* NULL = header absent */
    const char *want;  /* NULL = authentication fails */
};

static const struct auth_case auth_cases[] = {
    {"k", NULL, "k"},
    {"Bearer k", NULL, "k"},
    {" k \t", NULL, "k"},
    {NULL, "Bearer k", "k"},
    {NULL, "bearer k", "k"},
    {NULL, "BEARER k", "k"},
    {NULL, "bEaReR   k  ", "k"},
    {NULL, "k", "k"},
    {"", "Bearer k", "k"},
    {"   ", "Bearer k", "k"},
    {"\xc2\xa0", "k", "k"},
    {"wrong", "Bearer k", "wrong"},
    {"Bearer wrong", "k", "wrong"},
    {NULL, "Basic abc", "Basic abc"},
    {NULL, "Bearer", "Bearer"},
    {NULL, "Bearer ", "Bearer"},
    {NULL, "bearerk", "bearerk"},
    {NULL, "Bearer\tk", "Bearer\tk"},
    {NULL, "Bearer \xe3\x80\x80k", "k"},
    {NULL, "Bearer Bearer k", "Bearer k"},
    {NULL, " Bearer k", "k"},
    {NULL, "Bearer k k", "k k"},
    {NULL, NULL, NULL},
    {"", "", NULL},
    {" ", "\t", NULL},
    {NULL, " ", NULL},
    {"", NULL, NULL},
};

static void test_http_auth_candidate(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(auth_cases) / sizeof(auth_cases[0]); i++) {
        const struct auth_case *c = &auth_cases[i];
        const char *out = NULL;
        size_t out_len = 0;
        int rc = http_auth_candidate(c->x, c->x ? strlen(c->x) : 0, c->authz,
                                     c->authz ? strlen(c->authz) : 0, &out, &out_len);
        if (c->want == NULL) {
            if (rc != -1)
                fail_msg("case %zu: accepted [%.*s]", i, (int)out_len, out);
        } else if (rc != 0 || out_len != strlen(c->want) || memcmp(out, c->want, out_len) != 0) {
            fail_msg("case %zu: rc %d [%.*s] want [%s]", i, rc, (int)out_len, out ? out : "",
                     c->want);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_parse),
        cmocka_unit_test(test_percent_decode),
        cmocka_unit_test(test_trim_every_code_point),
        cmocka_unit_test(test_trim_table),
        cmocka_unit_test(test_matchable),
        cmocka_unit_test(test_requested_by),
        cmocka_unit_test(test_param_int),
        cmocka_unit_test(test_param_window),
        cmocka_unit_test(test_uuid_parse),
        cmocka_unit_test(test_http_auth_candidate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
