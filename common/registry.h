/*
 * common/registry.h: the report registry, the one place that knows what each report is (its
 * slug, the snapshot rows it keeps, the rows it answers with for each breakdown, the filter it
 * takes, its 500 message) and which windows exist. Pure data and lookups, no I/O; read by the
 * HTTP workers (report run, catalogue, metrics), the recompute workers and the scheduler (the
 * rebuild) and the seed, so every process links it.
 *
 * Adding a report of an existing shape is one row of registry_reports (registry.c) plus a
 * migration with its report_definitions and aggregate_windows rows (schema/0007 is the model);
 * nothing else names a report. Adding a window is one row of registry_windows; offering it on
 * the report API is also a contract change (README.registry.md, "Adding a window").
 */
#ifndef ANALYTICSD_REGISTRY_H
#define ANALYTICSD_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

/* The breakdowns of API.md §4.4, in the order of registry_report.layouts. */
typedef enum {
    REGISTRY_BREAKDOWN_NONE, /* blank */
    REGISTRY_BREAKDOWN_SOURCE,
    REGISTRY_BREAKDOWN_STATUS,
    REGISTRY_BREAKDOWN_PERIOD,
    REGISTRY_BREAKDOWNS
} registry_breakdown;

/* The 400 message for any other breakdown (API.md §1.6). */
#define REGISTRY_BREAKDOWN_MESSAGE "breakdown must be one of source, status, period"

/*
 * How a report run groups and sorts its snapshot rows (one line of the table of API.md §4.4).
 * The row members are the bucket date (for the period layouts), the report's metric and its
 * dimension (for the layouts that keep it), written in ascending byte order of their names.
 */
typedef enum {
    REGISTRY_LAYOUT_PERIOD,        /* per bucket; bucket ascending */
    REGISTRY_LAYOUT_PERIOD_VALUES, /* per bucket and value; bucket, then value ascending */
    REGISTRY_LAYOUT_TOTALS,        /* per value; metric descending, then value ascending */
    REGISTRY_LAYOUTS
} registry_layout;

/* One report type. Every SQL fragment is a constant of this file, never user input. */
typedef struct registry_report {
    const char *slug;            /* report_definitions.slug */
    const char *failure_message; /* 500 when its snapshot query fails (API.md §1.6) */
    const char *metric_name;     /* metric_snapshots.metric_name and the rows' member */
    const char *metric_sql;      /* the aggregate over the events e of one group */
    const char *dimension_key;   /* metric_snapshots.dimension_key and the rows' member */
    const char *dimension_sql;   /* the group's value, over e (and s when joins_sources) */
    int joins_sources;           /* the rebuild joins event_sources s ON s.id = e.source_id */
    const char *filter_param;    /* query parameter kept against the dimension, or NULL */
    registry_layout layouts[REGISTRY_BREAKDOWNS]; /* per breakdown */
} registry_report;

/* One window: a date_trunc unit (the window's name) and how a bucket start is written. */
typedef struct registry_window {
    const char *name;       /* window_name; also the date_trunc unit (hour, day, week, month) */
    const char *bucket_sql; /* SQL text of bucket_start (a UTC session) in report rows */
    int report_api; /* 1: kept in metric_snapshots, accepted by report runs and recomputations
                       (API.md §2.5) */
} registry_window;

extern const registry_report registry_reports[];
extern const size_t registry_report_count;
extern const registry_window registry_windows[];
extern const size_t registry_window_count;

/* The report with this slug (len bytes, byte-exact), or NULL. */
const registry_report *registry_report_find(const char *slug, size_t len);

/* Index of r in registry_reports (r must come from it). */
size_t registry_report_index(const registry_report *r);

/* The window with this exact name (NUL-terminated), or NULL. */
const registry_window *registry_window_find(const char *name);

/* The first day of the bucket of window w that holds `day` (days since 1970-01-01): the day
 * itself for hour and day, its Monday for week, the first of its month for month. */
int32_t registry_window_floor(const registry_window *w, int32_t day);

/* Index of w in registry_windows (w must come from it). */
size_t registry_window_index(const registry_window *w);

/*
 * The 400 message for a window the report API does not accept (API.md §1.6): "window must be
 * either day or week" for report runs (either = 1), "window must be day or week" for triggers
 * (either = 0). The names are those of the report_api windows in registry order ("a, b or c"
 * for three). Built at the first call and kept; never NULL.
 */
const char *registry_window_message(int either);

/* The breakdown named by the len bytes at s ("" or NULL with len 0 is NONE), or -1 when the
 * value is none of them (case-sensitive). */
int registry_breakdown_parse(const char *s, size_t len);

#endif
