/*
 * common/dates.h: UTC calendar dates as days since 1970-01-01 (int32), the date range rule of
 * API.md §2.6, and parsing of PostgreSQL timestamptz text. Pure functions except
 * date_today_utc; used by the HTTP workers and the recompute workers.
 *
 * The proleptic Gregorian calendar is used throughout. The contract's dates are the years
 * 0001–9999: DATE_MIN_DAYS (0001-01-01) to DATE_MAX_DAYS (9999-12-31).
 */
#ifndef ANALYTICSD_DATES_H
#define ANALYTICSD_DATES_H

#include <stddef.h>
#include <stdint.h>

#define DATE_MIN_DAYS (-719162) /* 0001-01-01 */
#define DATE_MAX_DAYS 2932896   /* 9999-12-31 */

/* Days since 1970-01-01 of the date y-m-d (m 1–12, d 1–31; not validated). */
int64_t dates_days_from_civil(int64_t y, int m, int d);

/* Inverse of dates_days_from_civil for any int64 day count that fits an int year. */
void dates_civil_from_days(int64_t days, int *y, int *m, int *d);

/*
 * Parses exactly "YYYY-MM-DD" (10 bytes: 4 ASCII digits, '-', 2, '-', 2, nothing else), year
 * 0001–9999, month 01–12, a day that exists in that month. Returns 0 and sets *days, or -1
 * (leaving *days untouched) for anything else, including surrounding whitespace.
 */
int date_parse(const char *s, size_t len, int32_t *days);

/*
 * Writes "YYYY-MM-DD" and a NUL into out. days must lie in DATE_MIN_DAYS..DATE_MAX_DAYS; other
 * values are clamped to that range (never an overflow).
 */
void date_format(int32_t days, char out[11]);

/* The current UTC calendar date (CLOCK_REALTIME). */
int32_t date_today_utc(void);

/* The Monday on or before the given date. */
int32_t date_monday(int32_t days);

/* Number of days in the inclusive range: to - from + 1 (may be <= 0 if from > to). */
int64_t date_span_days(int32_t from, int32_t to);

typedef enum {
    DATE_RANGE_OK,
    DATE_RANGE_BAD_TO,
    DATE_RANGE_BAD_FROM,
    DATE_RANGE_FROM_AFTER_TO
} date_range_status;

/*
 * API.md §2.6. from/to are the raw decoded values (NULL = absent). A blank value (API.md §2.2)
 * takes its default: to = today; from = to - 29 days, not earlier than 0001-01-01. A non-blank
 * value is parsed untrimmed with date_parse. date_to is checked first. On DATE_RANGE_OK both
 * outputs are set; on any other status the outputs are unspecified.
 */
date_range_status date_range_resolve(const char *from, size_t from_len, const char *to,
                                     size_t to_len, int32_t today, int32_t *out_from,
                                     int32_t *out_to);

/*
 * The exact 400 message for a failed status ("date_to must use YYYY-MM-DD format", ...), or
 * NULL for DATE_RANGE_OK.
 */
const char *date_range_message(date_range_status st);

/*
 * Parses PostgreSQL timestamptz text output (DateStyle ISO), e.g. "2026-03-14 01:17:49.123456+00":
 * date, ' ' (or 'T'), HH:MM:SS, optional '.' and 1–9 fraction digits, then a UTC offset
 * [+-]HH[:MM[:SS]] which is applied (a UTC session always prints "+00"). Sets *sec (Unix
 * seconds) and *nanos (0..999999999) and returns 0; returns -1 for anything else (BC dates,
 * years beyond 9999, "infinity", trailing bytes), leaving the outputs untouched.
 */
int pgtime_parse(const char *s, int64_t *sec, int32_t *nanos);

#endif
