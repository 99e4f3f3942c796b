/*
 * tests/unit/test_dates.c: unit tests for common/dates: YYYY-MM-DD parsing and formatting,
 * Mondays, the date range rule of API.md §2.6 and PostgreSQL timestamptz parsing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/dates.h"

#define D_1970_01_01 0
#define D_2024_02_29 19782
#define D_2026_01_01 20454
#define D_2026_03_14 20526 /* a Saturday */

struct parse_case {
    const char *s;
    int ok;
    int32_t days;
};

static const struct parse_case parse_cases[] = {
    {"1970-01-01", 1, 0},
    {"2024-02-29", 1, D_2024_02_29},
    {"2026-01-01", 1, D_2026_01_01},
    {"2026-03-14", 1, D_2026_03_14},
    {"0001-01-01", 1, DATE_MIN_DAYS},
    {"9999-12-31", 1, DATE_MAX_DAYS},
    {"2000-02-29", 1, 11016},
    {"1969-12-31", 1, -1},
    {"2023-02-29", 0, 0},
    {"1900-02-29", 0, 0},
    {"2100-02-29", 0, 0},
    {"0000-01-01", 0, 0},
    {"2026-00-10", 0, 0},
    {"2026-13-01", 0, 0},
    {"2026-01-00", 0, 0},
    {"2026-01-32", 0, 0},
    {"2026-04-31", 0, 0},
    {"2026-1-01", 0, 0},
    {"2026-01-1", 0, 0},
    {" 2026-01-01", 0, 0},
    {"2026-01-01 ", 0, 0},
    {"2026-01-01T00:00:00Z", 0, 0},
    {"2026/01/01", 0, 0},
    {"+026-01-01", 0, 0},
    {"2026-+1-01", 0, 0},
    {"20260101", 0, 0},
    {"10000-01-01", 0, 0},
    {"", 0, 0},
    {"２０２６-01-01", 0, 0},
};

static void test_date_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
        const struct parse_case *c = &parse_cases[i];
        int32_t days = 12345;
        int rc = date_parse(c->s, strlen(c->s), &days);
        if (c->ok) {
            if (rc != 0 || days != c->days)
                fail_msg("%s: rc %d days %d want %d", c->s, rc, days, c->days);
        } else if (rc != -1 || days != 12345) {
            fail_msg("%s: accepted (%d)", c->s, days);
        }
    }
    /* Explicit length: bytes after len are not read; an embedded NUL is rejected. */
    int32_t d;
    assert_int_equal(date_parse("2026-01-01xyz", 10, &d), 0);
    assert_int_equal(d, D_2026_01_01);
    assert_int_equal(date_parse("2026-01-0\0", 10, &d), -1);
    assert_int_equal(date_parse(NULL, 0, &d), -1);
}

static int month_days(int y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dim[m - 1];
}

/* Walks every day of 0001-01-01..9999-12-31 with a simple counter as the oracle. */
static void test_date_every_day_round_trip(void **state)
{
    (void)state;
    int32_t n = DATE_MIN_DAYS;
    char want[40], got[11];
    for (int y = 1; y <= 9999; y++)
        for (int m = 1; m <= 12; m++)
            for (int d = 1; d <= month_days(y, m); d++, n++) {
                snprintf(want, sizeof(want), "%04d-%02d-%02d", y, m, d);
                int32_t days;
                if (date_parse(want, 10, &days) != 0 || days != n)
                    fail_msg("parse %s gave %d want %d", want, days, n);
                date_format(n, got);
                if (strcmp(got, want) != 0)
                    fail_msg("format %d gave %s want %s", n, got, want);
            }
    assert_int_equal(n - 1, DATE_MAX_DAYS);
}

static void test_date_format_clamps(void **state)
{
    (void)state;
    char out[11];
    date_format(DATE_MIN_DAYS - 1, out);
    assert_string_equal(out, "0001-01-01");
    date_format(INT32_MIN, out);
    assert_string_equal(out, "0001-01-01");
    date_format(INT32_MAX, out);
    assert_string_equal(out, "9999-12-31");
}

static void test_date_monday(void **state)
{
    (void)state;
    /* 2026-03-09 is a Monday; every day through Sunday 2026-03-15 maps to it. */
    for (int32_t d = D_2026_03_14 - 5; d <= D_2026_03_14 + 1; d++)
        assert_int_equal(date_monday(d), D_2026_03_14 - 5);
    assert_int_equal(date_monday(D_2026_03_14 + 2), D_2026_03_14 + 2);
    /* 1970-01-01 was a Thursday: Monday 1969-12-29. */
    assert_int_equal(date_monday(0), -3);
    assert_int_equal(date_monday(-3), -3);
    assert_int_equal(date_monday(-4), -10);
    assert_int_equal(date_monday(4), 4); /* 1970-01-05 Monday */
    /* 0001-01-01 was a Monday in the proleptic Gregorian calendar. */
    assert_int_equal(date_monday(DATE_MIN_DAYS), DATE_MIN_DAYS);
    assert_int_equal(date_monday(DATE_MIN_DAYS + 6), DATE_MIN_DAYS);
}

static void test_date_today_and_span(void **state)
{
    (void)state;
    int32_t today = date_today_utc();
    int32_t expect = (int32_t)(time(NULL) / 86400);
    assert_true(today == expect || today == expect - 1 || today == expect + 1);
    assert_int_equal(date_span_days(D_2026_01_01, D_2026_01_01), 1);
    assert_int_equal(date_span_days(D_2026_01_01, D_2026_01_01 + 29), 30);
    assert_int_equal(date_span_days(DATE_MIN_DAYS, DATE_MAX_DAYS), 3652059);
    assert_int_equal(date_span_days(5, 3), -1);
}

struct range_case {
    const char *from, *to; /* NULL = absent */
    date_range_status st;
    int32_t want_from, want_to;
};

#define TODAY D_2026_03_14

static const struct range_case range_cases[] = {
    {NULL, NULL, DATE_RANGE_OK, TODAY - 29, TODAY},
    {"", "", DATE_RANGE_OK, TODAY - 29, TODAY},
    {" ", "\t\xc2\xa0\xe3\x80\x80", DATE_RANGE_OK, TODAY - 29, TODAY},
    {NULL, "2026-02-01", DATE_RANGE_OK, D_2026_01_01 + 31 - 29, D_2026_01_01 + 31},
    {"2026-01-01", "2026-02-01", DATE_RANGE_OK, D_2026_01_01, D_2026_01_01 + 31},
    {"2026-01-01", "2026-01-01", DATE_RANGE_OK, D_2026_01_01, D_2026_01_01},
    {"2026-01-01", NULL, DATE_RANGE_OK, D_2026_01_01, TODAY},
    {NULL, "0001-01-10", DATE_RANGE_OK, DATE_MIN_DAYS, DATE_MIN_DAYS + 9},
    {NULL, "0001-01-30", DATE_RANGE_OK, DATE_MIN_DAYS, DATE_MIN_DAYS + 29},
    {NULL, "0001-01-31", DATE_RANGE_OK, DATE_MIN_DAYS + 1, DATE_MIN_DAYS + 30},
    {"0001-01-01", "9999-12-31", DATE_RANGE_OK, DATE_MIN_DAYS, DATE_MAX_DAYS},
    {"bad", "bad", DATE_RANGE_BAD_TO, 0, 0},
    {"2026-01-01", "2026-02-30", DATE_RANGE_BAD_TO, 0, 0},
    {NULL, " 2026-01-01", DATE_RANGE_BAD_TO, 0, 0},
    {NULL, "0000-01-01", DATE_RANGE_BAD_TO, 0, 0},
    {"2026-1-01", "2026-02-01", DATE_RANGE_BAD_FROM, 0, 0},
    {" 2026-01-01", NULL, DATE_RANGE_BAD_FROM, 0, 0},
    {"2023-02-29", NULL, DATE_RANGE_BAD_FROM, 0, 0},
    {"2026-02-02", "2026-02-01", DATE_RANGE_FROM_AFTER_TO, 0, 0},
    {"2026-03-15", NULL, DATE_RANGE_FROM_AFTER_TO, 0, 0},
};

static void test_date_range_resolve(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(range_cases) / sizeof(range_cases[0]); i++) {
        const struct range_case *c = &range_cases[i];
        int32_t f = 0, t = 0;
        date_range_status st = date_range_resolve(c->from, c->from ? strlen(c->from) : 0, c->to,
                                                  c->to ? strlen(c->to) : 0, TODAY, &f, &t);
        if (st != c->st)
            fail_msg("case %zu: status %d want %d", i, st, c->st);
        if (st == DATE_RANGE_OK && (f != c->want_from || t != c->want_to))
            fail_msg("case %zu: range %d..%d want %d..%d", i, f, t, c->want_from, c->want_to);
    }
    /* The default range is the 30 days ending today, inclusive. */
    int32_t f, t;
    assert_int_equal(date_range_resolve(NULL, 0, NULL, 0, TODAY, &f, &t), DATE_RANGE_OK);
    assert_int_equal(date_span_days(f, t), 30);
    assert_int_equal(t, TODAY);
}

static void test_date_range_messages(void **state)
{
    (void)state;
    assert_null(date_range_message(DATE_RANGE_OK));
    assert_string_equal(date_range_message(DATE_RANGE_BAD_TO),
                        "date_to must use YYYY-MM-DD format");
    assert_string_equal(date_range_message(DATE_RANGE_BAD_FROM),
                        "date_from must use YYYY-MM-DD format");
    assert_string_equal(date_range_message(DATE_RANGE_FROM_AFTER_TO),
                        "date_from must be on or before date_to");
}

struct pg_case {
    const char *s;
    int ok;
    int64_t sec;
    int32_t nanos;
};

static const struct pg_case pg_cases[] = {
    {"2026-03-14 01:17:49.123456+00", 1, 1773451069, 123456000},
    {"2026-03-14 01:17:49.1+00", 1, 1773451069, 100000000},
    {"2026-03-14 01:17:49+00", 1, 1773451069, 0},
    {"2026-03-14 01:17:49.000001+00", 1, 1773451069, 1000},
    {"2026-03-14T01:17:49.5+00", 1, 1773451069, 500000000},
    {"2026-03-14 01:17:49.123456789+00", 1, 1773451069, 123456789},
    {"2026-03-14 03:17:49+02", 1, 1773451069, 0},
    {"2026-03-13 20:47:49-04:30", 1, 1773451069, 0},
    {"2026-03-14 01:17:59+00:00:10", 1, 1773451069, 0},
    {"1970-01-01 00:00:00+00", 1, 0, 0},
    {"1969-12-31 23:59:59.5+00", 1, -1, 500000000},
    {"0001-01-01 00:00:00+00", 1, -62135596800, 0},
    {"2026-03-14 01:17:49", 0, 0, 0},
    {"2026-03-14 01:17:49.+00", 0, 0, 0},
    {"2026-03-14 01:17:49.1234567890+00", 0, 0, 0},
    {"2026-03-14 01:17:49+00 ", 0, 0, 0},
    {"2026-03-14 01:17:49+0", 0, 0, 0},
    {"2026-03-14 24:00:00+00", 0, 0, 0},
    {"2026-03-14 01:60:00+00", 0, 0, 0},
    {"2026-03-14 1:17:49+00", 0, 0, 0},
    {"2026-02-30 01:17:49+00", 0, 0, 0},
    {"2026-03-14", 0, 0, 0},
    {"2026-03-14 ", 0, 0, 0},
    {"0001-01-01 00:00:00+00 BC", 0, 0, 0},
    {"10000-01-01 00:00:00+00", 0, 0, 0},
    {"infinity", 0, 0, 0},
    {"", 0, 0, 0},
};

static void test_pgtime_parse(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(pg_cases) / sizeof(pg_cases[0]); i++) {
        const struct pg_case *c = &pg_cases[i];
        int64_t sec = 77;
        int32_t ns = 77;
        int rc = pgtime_parse(c->s, &sec, &ns);
        if (c->ok) {
            if (rc != 0 || sec != c->sec || ns != c->nanos)
                fail_msg("%s: rc %d sec %lld ns %d", c->s, rc, (long long)sec, ns);
        } else if (rc != -1 || sec != 77 || ns != 77) {
            fail_msg("%s: accepted", c->s);
        }
    }
    int64_t sec;
    int32_t ns;
    assert_int_equal(pgtime_parse(NULL, &sec, &ns), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_date_parse_table),
        cmocka_unit_test(test_date_every_day_round_trip),
        cmocka_unit_test(test_date_format_clamps),
        cmocka_unit_test(test_date_monday),
        cmocka_unit_test(test_date_today_and_span),
        cmocka_unit_test(test_date_range_resolve),
        cmocka_unit_test(test_date_range_messages),
        cmocka_unit_test(test_pgtime_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
