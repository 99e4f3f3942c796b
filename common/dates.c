/*
 * common/dates.c: calendar arithmetic, the date range rule and timestamptz parsing (see
 * dates.h). Run by the HTTP and recompute workers.
 *
 * Day counts use the era-based conversion between civil dates and day numbers (400-year eras
 * of 146097 days, years starting in March so the leap day is last).
 */
#include "common/dates.h"

#include <stdbool.h>
#include <string.h>

#include "common/textutil.h"
#include "common/util.h"

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

int64_t dates_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;                                  /* 0..399 */
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1; /* 0..365 */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;          /* 0..146096 */
    return era * 146097 + doe - 719468;
}

void dates_civil_from_days(int64_t days, int *y, int *m, int *d)
{
    days += 719468;
    int64_t era = floor_div(days, 146097);
    int64_t doe = days - era * 146097;                                   /* 0..146096 */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* 0..399 */
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* 0..365 */
    int64_t mp = (5 * doy + 2) / 153;                                    /* 0..11 */
    int mm = (int)(mp < 10 ? mp + 3 : mp - 9);
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = mm;
    *y = (int)(yoe + era * 400 + (mm <= 2));
}

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

static bool digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* Parses the 10 bytes at s as YYYY-MM-DD with the §2.6 checks. */
static int parse_ymd(const char *s, int *y, int *m, int *d)
{
    if (!digits(s, 4, y) || s[4] != '-' || !digits(s + 5, 2, m) || s[7] != '-' ||
        !digits(s + 8, 2, d))
        return -1;
    if (*y < 1 || *m < 1 || *m > 12 || *d < 1 || *d > days_in_month(*y, *m))
        return -1;
    return 0;
}

int date_parse(const char *s, size_t len, int32_t *days)
{
    int y, m, d;
    if (s == NULL || len != 10 || parse_ymd(s, &y, &m, &d) != 0)
        return -1;
    *days = (int32_t)dates_days_from_civil(y, m, d);
    return 0;
}

void date_format(int32_t days, char out[11])
{
    if (days < DATE_MIN_DAYS)
        days = DATE_MIN_DAYS;
    if (days > DATE_MAX_DAYS)
        days = DATE_MAX_DAYS;
    int y, m, d;
    dates_civil_from_days(days, &y, &m, &d);
    out[0] = (char)('0' + y / 1000);
    out[1] = (char)('0' + y / 100 % 10);
    out[2] = (char)('0' + y / 10 % 10);
    out[3] = (char)('0' + y % 10);
    out[4] = '-';
    out[5] = (char)('0' + m / 10);
    out[6] = (char)('0' + m % 10);
    out[7] = '-';
    out[8] = (char)('0' + d / 10);
    out[9] = (char)('0' + d % 10);
    out[10] = '\0';
}

int32_t date_today_utc(void)
{
    int64_t sec = floor_div(clock_realtime_ns(), 1000000000);
    return (int32_t)floor_div(sec, 86400);
}

int32_t date_monday(int32_t days)
{
    /* 1970-01-01 was a Thursday: (days + 3) mod 7 is 0 on Mondays. */
    int64_t dow = (int64_t)days + 3 - floor_div((int64_t)days + 3, 7) * 7;
    return (int32_t)(days - dow);
}

int64_t date_span_days(int32_t from, int32_t to)
{
    return (int64_t)to - from + 1;
}

date_range_status date_range_resolve(const char *from, size_t from_len, const char *to,
                                     size_t to_len, int32_t today, int32_t *out_from,
                                     int32_t *out_to)
{
    int32_t t, f;
    if (text_is_blank(to, to_len))
        t = today;
    else if (date_parse(to, to_len, &t) != 0)
        return DATE_RANGE_BAD_TO;
    if (text_is_blank(from, from_len)) {
        int64_t v = (int64_t)t - 29;
        f = v < DATE_MIN_DAYS ? DATE_MIN_DAYS : (int32_t)v;
    } else if (date_parse(from, from_len, &f) != 0) {
        return DATE_RANGE_BAD_FROM;
    }
    if (f > t)
        return DATE_RANGE_FROM_AFTER_TO;
    *out_from = f;
    *out_to = t;
    return DATE_RANGE_OK;
}

const char *date_range_message(date_range_status st)
{
    switch (st) {
    case DATE_RANGE_BAD_TO:
        return "date_to must use YYYY-MM-DD format";
    case DATE_RANGE_BAD_FROM:
        return "date_from must use YYYY-MM-DD format";
    case DATE_RANGE_FROM_AFTER_TO:
        return "date_from must be on or before date_to";
    case DATE_RANGE_OK:
        break;
    }
    return NULL;
}

int pgtime_parse(const char *s, int64_t *sec, int32_t *nanos)
{
    int y, mo, d, hh, mi, ss;
    if (s == NULL || strnlen(s, 10) < 10 || parse_ymd(s, &y, &mo, &d) != 0)
        return -1;
    const char *p = s + 10;
    if ((p[0] != ' ' && p[0] != 'T') || !digits(p + 1, 2, &hh) || p[3] != ':' ||
        !digits(p + 4, 2, &mi) || p[6] != ':' || !digits(p + 7, 2, &ss))
        return -1;
    if (hh > 23 || mi > 59 || ss > 59)
        return -1;
    p += 9;
    int32_t ns = 0;
    if (*p == '.') {
        int n = 0;
        p++;
        while (*p >= '0' && *p <= '9') {
            if (++n > 9)
                return -1;
            ns = ns * 10 + (*p++ - '0');
        }
        if (n == 0)
            return -1;
        for (; n < 9; n++)
            ns *= 10;
    }
    /* UTC offset: [+-]HH[:MM[:SS]]. */
    if (*p != '+' && *p != '-')
        return -1;
    int sign = *p == '-' ? -1 : 1;
    int oh, om = 0, os = 0;
    if (!digits(p + 1, 2, &oh))
        return -1;
    p += 3;
    if (*p == ':') {
        if (!digits(p + 1, 2, &om))
            return -1;
        p += 3;
        if (*p == ':') {
            if (!digits(p + 1, 2, &os))
                return -1;
            p += 3;
        }
    }
    if (*p != '\0' || om > 59 || os > 59)
        return -1;
    int64_t local = dates_days_from_civil(y, mo, d) * 86400 + hh * 3600 + mi * 60 + ss;
    *sec = local - sign * (int64_t)(oh * 3600 + om * 60 + os);
    *nanos = ns;
    return 0;
}
