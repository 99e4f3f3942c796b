/*
 * common/metrics_text.h: writer of the Prometheus text exposition format 0.0.4 (HELP and TYPE
 * lines, samples with escaped label values, cumulative histograms). Pure code on a jbuf: used by
 * the HTTP worker answering GET /metrics, and by unit tests.
 */
#ifndef ANALYTICSD_METRICS_TEXT_H
#define ANALYTICSD_METRICS_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "common/jbuf.h"
#include "common/metrics.h"

typedef struct metrics_label {
    const char *name;  /* a valid label name (not checked) */
    const char *value; /* any UTF-8 text; escaped on output */
} metrics_label;

/* "# HELP name help\n# TYPE name type\n"; help is escaped (backslash, line feed). */
void metrics_text_family(jbuf *b, const char *name, const char *type, const char *help);

/* Appends value escaped as a label value: backslash, double quote and line feed. */
void metrics_text_escape_label(jbuf *b, const char *value);

/* "name{l1="v1",...} value\n" (no braces without labels); value printed as an integer. */
void metrics_text_sample(jbuf *b, const char *name, const metrics_label *labels, size_t nlabels,
                         int64_t value);

/*
 * A histogram's series: name_bucket{labels,le="..."} cumulative over the non-cumulative counts
 * bucket[0..layout->n] (the last is +Inf), then name_sum (sum / layout->scale, exactly, in
 * decimal) and name_count (the +Inf bucket's value).
 */
void metrics_text_histogram(jbuf *b, const char *name, const metrics_label *labels, size_t nlabels,
                            const metrics_buckets *layout, const uint64_t *bucket, uint64_t sum);

#endif
