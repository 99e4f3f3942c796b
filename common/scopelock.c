/*
 * common/scopelock.c: scope lock key format (see scopelock.h). Used by HTTP workers, recompute
 * workers and the supervisor.
 */
#include "common/scopelock.h"

#include "common/dates.h"

#include <stdio.h>

static void compact_date(int32_t days, char out[9])
{
    char iso[11];
    date_format(days, iso);
    snprintf(out, 9, "%.4s%.2s%.2s", iso, iso + 5, iso + 8);
}

size_t scopelock_key(char *out, size_t cap, const char *slug, const char *window, int32_t from,
                     int32_t to)
{
    char f[9], t[9];
    compact_date(from, f);
    compact_date(to, t);
    int n = snprintf(out, cap, "recompute:lock:%s:%s:%s:%s", slug, window, f, t);
    if (n < 0)
        return 0;
    return (size_t)n < cap ? (size_t)n : cap - 1;
}
