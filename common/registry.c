/*
 * common/registry.c: the rows of the report registry (see registry.h). Linked into every
 * process; constant data, so it is shared read-only after fork.
 */
#include "common/registry.h"

#include <stdio.h>
#include <string.h>

#include "common/dates.h"
#include "common/util.h"

/* The layouts of API.md §4.4, per breakdown: blank, source, status, period. */
#define PERIOD_UNLESS_SOURCE                                                                       \
    {                                                                                              \
        REGISTRY_LAYOUT_PERIOD, REGISTRY_LAYOUT_PERIOD_VALUES, REGISTRY_LAYOUT_PERIOD,             \
            REGISTRY_LAYOUT_PERIOD                                                                 \
    }
#define TOTALS_UNLESS_PERIOD                                                                       \
    {                                                                                              \
        REGISTRY_LAYOUT_TOTALS, REGISTRY_LAYOUT_TOTALS, REGISTRY_LAYOUT_TOTALS,                    \
            REGISTRY_LAYOUT_PERIOD_VALUES                                                          \
    }
#define TOTALS_ALWAYS                                                                              \
    {                                                                                              \
        REGISTRY_LAYOUT_TOTALS, REGISTRY_LAYOUT_TOTALS, REGISTRY_LAYOUT_TOTALS,                    \
            REGISTRY_LAYOUT_TOTALS                                                                 \
    }

/* In seeding order (DATA.md §5 step 6); dimensions and metrics of DATA.md §6.2. */
const registry_report registry_reports[] = {
    {"volume-by-period", "failed to run volume report", "event_count", "count(*)", "source",
     "s.slug", 1, "source", PERIOD_UNLESS_SOURCE},
    {"status-counts", "failed to run status report", "event_count", "count(*)", "status",
     "e.status", 0, "status", TOTALS_UNLESS_PERIOD},
    {"top-entities", "failed to run top entities report", "event_count", "count(*)", "entity_id",
     "e.entity_id", 0, NULL, TOTALS_ALWAYS},
    {"amount-by-source", "failed to run amount report", "amount_cents", "sum(e.amount_cents)",
     "source", "s.slug", 1, "source", PERIOD_UNLESS_SOURCE},
};
const size_t registry_report_count = ARRAY_LEN(registry_reports);

#define BUCKET_AS_DATE "(bucket_start AT TIME ZONE 'UTC')::date::text"

/* In the order catalogue entries list them (allowed_windows: day first). */
const registry_window registry_windows[] = {
    {"day", BUCKET_AS_DATE, 1},
    {"week", BUCKET_AS_DATE, 1},
    {"hour", "to_char(bucket_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')", 0},
    {"month", BUCKET_AS_DATE, 0},
};
const size_t registry_window_count = ARRAY_LEN(registry_windows);

static const char *const breakdown_names[REGISTRY_BREAKDOWNS] = {"", "source", "status", "period"};

const registry_report *registry_report_find(const char *slug, size_t len)
{
    for (size_t i = 0; slug != NULL && i < registry_report_count; i++) {
        const char *s = registry_reports[i].slug;
        if (strlen(s) == len && memcmp(s, slug, len) == 0)
            return &registry_reports[i];
    }
    return NULL;
}

size_t registry_report_index(const registry_report *r)
{
    return (size_t)(r - registry_reports);
}

const registry_window *registry_window_find(const char *name)
{
    for (size_t i = 0; name != NULL && i < registry_window_count; i++)
        if (strcmp(registry_windows[i].name, name) == 0)
            return &registry_windows[i];
    return NULL;
}

int32_t registry_window_floor(const registry_window *w, int32_t day)
{
    if (strcmp(w->name, "week") == 0)
        return date_monday(day);
    if (strcmp(w->name, "month") == 0) {
        int y, m, d;
        dates_civil_from_days(day, &y, &m, &d);
        return (int32_t)dates_days_from_civil(y, m, 1);
    }
    return day;
}

size_t registry_window_index(const registry_window *w)
{
    return (size_t)(w - registry_windows);
}

const char *registry_window_message(int either)
{
    static char messages[2][160];
    char *m = messages[either != 0];
    if (m[0] != '\0')
        return m;
    size_t total = 0, seen = 0, len;
    for (size_t i = 0; i < registry_window_count; i++)
        total += registry_windows[i].report_api != 0;
    len = (size_t)snprintf(m, sizeof(messages[0]), "window must be%s", either ? " either" : "");
    for (size_t i = 0; i < registry_window_count && len < sizeof(messages[0]); i++) {
        if (!registry_windows[i].report_api)
            continue;
        const char *sep = seen == 0 ? " " : seen + 1 == total ? " or " : ", ";
        len += (size_t)snprintf(m + len, sizeof(messages[0]) - len, "%s%s", sep,
                                registry_windows[i].name);
        seen++;
    }
    return m;
}

int registry_breakdown_parse(const char *s, size_t len)
{
    for (int b = 0; b < REGISTRY_BREAKDOWNS; b++)
        if (strlen(breakdown_names[b]) == len &&
            (len == 0 || memcmp(breakdown_names[b], s, len) == 0))
            return b;
    return -1;
}
