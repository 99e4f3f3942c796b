/*
 * tests/fuzz/fuzz_dates.c: fuzz target for common/dates.h (API.md §1.5, §2.6). The input is
 * used four ways: as a date string for date_parse (accepted → in range, formats back to the
 * identical bytes; compared both ways with an independent validator), as int32 day counts for
 * date_format → date_parse round trips, split at its first '|' into date_from|date_to for
 * date_range_resolve (outcome compared with the contract's rule), and NUL-terminated for
 * pgtime_parse (accepted → fraction in range). Built by tests/fuzz/CMakeLists.txt (regression)
 * and run.sh (libFuzzer).
 */
#include "common/dates.h"
#include "common/textutil.h"
#include "tests/fuzz/fuzz_check.h"

#include <string.h>

/* Independent check of the exact YYYY-MM-DD form (proleptic Gregorian, years 1–9999). */
static int ref_date_ok(const unsigned char *s, size_t len)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (len != 10 || s[4] != '-' || s[7] != '-')
        return 0;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return 0;
    int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int m = (s[5] - '0') * 10 + (s[6] - '0');
    int d = (s[8] - '0') * 10 + (s[9] - '0');
    if (y < 1 || m < 1 || m > 12 || d < 1)
        return 0;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d <= mdays[m - 1] + (m == 2 && leap);
}

static void check_parse(const unsigned char *s, size_t len)
{
    int32_t days = 0x7abcdef;
    int rc = date_parse((const char *)s, len, &days);
    int want = ref_date_ok(s, len);
    FUZZ_CHECK((rc == 0) == want, "date_parse rc %d, reference %d (len %zu)", rc, want, len);
    if (rc != 0) {
        FUZZ_CHECK(days == 0x7abcdef, "date_parse wrote *days on failure");
        return;
    }
    FUZZ_CHECK(days >= DATE_MIN_DAYS && days <= DATE_MAX_DAYS, "days %d out of range", days);
    char out[11];
    date_format(days, out);
    FUZZ_CHECK(strlen(out) == 10 && memcmp(out, s, 10) == 0, "round trip gave %s", out);
    int y, m, d;
    dates_civil_from_days(days, &y, &m, &d);
    FUZZ_CHECK(dates_days_from_civil(y, m, d) == days, "civil conversions disagree");
}

static void check_format(int32_t days)
{
    char out[11];
    memset(out, 'x', sizeof(out));
    date_format(days, out);
    FUZZ_CHECK(out[10] == '\0' && strlen(out) == 10, "date_format length");
    int32_t clamped = days < DATE_MIN_DAYS   ? DATE_MIN_DAYS
                      : days > DATE_MAX_DAYS ? DATE_MAX_DAYS
                                             : days;
    int32_t back = 0;
    FUZZ_CHECK(date_parse(out, 10, &back) == 0, "date_format wrote unparsable %s", out);
    FUZZ_CHECK(back == clamped, "date_format(%d) = %s parses to %d", days, out, back);
    FUZZ_CHECK(date_monday(clamped) <= clamped && date_monday(clamped) > clamped - 7,
               "date_monday out of the week");
}

static void check_range(const unsigned char *data, size_t size, int32_t today)
{
    const unsigned char *bar = memchr(data, '|', size);
    const char *from = (const char *)data, *to = NULL;
    size_t from_len = size, to_len = 0;
    if (bar != NULL) {
        from_len = (size_t)(bar - data);
        to = (const char *)bar + 1;
        to_len = size - from_len - 1;
    }
    /* A leading '!' in either half means "absent" (NULL). */
    if (from_len > 0 && from[0] == '!')
        from = NULL, from_len = 0;
    if (to != NULL && to_len > 0 && to[0] == '!')
        to = NULL, to_len = 0;
    int32_t f = 0, t = 0;
    date_range_status st = date_range_resolve(from, from_len, to, to_len, today, &f, &t);

    date_range_status want;
    int32_t wt = today, wf = 0;
    if (!text_is_blank(to, to_len) && date_parse(to, to_len, &wt) != 0) {
        want = DATE_RANGE_BAD_TO;
    } else {
        if (text_is_blank(from, from_len)) {
            wf = wt - 29 < DATE_MIN_DAYS ? DATE_MIN_DAYS : wt - 29;
            want = DATE_RANGE_OK;
        } else if (date_parse(from, from_len, &wf) != 0) {
            want = DATE_RANGE_BAD_FROM;
        } else {
            want = DATE_RANGE_OK;
        }
        if (want == DATE_RANGE_OK && wf > wt)
            want = DATE_RANGE_FROM_AFTER_TO;
    }
    FUZZ_CHECK(st == want, "date_range_resolve %d, reference %d", (int)st, (int)want);
    FUZZ_CHECK((date_range_message(st) == NULL) == (st == DATE_RANGE_OK), "message presence");
    if (st == DATE_RANGE_OK) {
        FUZZ_CHECK(f == wf && t == wt, "range (%d,%d), reference (%d,%d)", f, t, wf, wt);
        FUZZ_CHECK(f <= t && f >= DATE_MIN_DAYS && t <= DATE_MAX_DAYS, "range out of bounds");
        FUZZ_CHECK(date_span_days(f, t) >= 1, "span below 1");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1024)
        return 0;
    check_parse(data, size);
    int32_t today = 20000;
    for (size_t i = 0; i + 4 <= size && i < 32; i += 4) {
        int32_t d;
        memcpy(&d, data + i, 4);
        check_format(d);
        if (i == 0)
            today = d < DATE_MIN_DAYS || d > DATE_MAX_DAYS ? 20000 : d;
    }
    check_range(data, size, today);
    check_range(data, size, DATE_MIN_DAYS);

    char *z = malloc(size + 1);
    memcpy(z, data, size);
    z[size] = '\0';
    int64_t sec = 7;
    int32_t nanos = -1;
    if (pgtime_parse(z, &sec, &nanos) == 0) {
        FUZZ_CHECK(nanos >= 0 && nanos <= 999999999, "pgtime nanos %d", nanos);
        /* Years 1–9999 (a date and a time of day) shifted by an offset of at most 99:59:59. */
        const int64_t slack = 100 * 3600;
        FUZZ_CHECK(sec >= (int64_t)DATE_MIN_DAYS * 86400 - slack &&
                       sec < ((int64_t)DATE_MAX_DAYS + 1) * 86400 + slack,
                   "pgtime seconds %lld out of range", (long long)sec);
    } else {
        FUZZ_CHECK(sec == 7 && nanos == -1, "pgtime_parse wrote outputs on failure");
    }
    free(z);
    return 0;
}
