/*
 * common/metrics_text.c: Prometheus text format 0.0.4 writer (see metrics_text.h). Runs in the
 * HTTP worker that answers GET /metrics.
 */
#include "common/metrics_text.h"

#include <inttypes.h>
#include <stdio.h>

static void escape(jbuf *b, const char *s, int quotes)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\')
            jbuf_puts(b, "\\\\");
        else if (*s == '\n')
            jbuf_puts(b, "\\n");
        else if (*s == '"' && quotes)
            jbuf_puts(b, "\\\"");
        else
            jbuf_putc(b, *s);
    }
}

void metrics_text_escape_label(jbuf *b, const char *value)
{
    escape(b, value, 1);
}

void metrics_text_family(jbuf *b, const char *name, const char *type, const char *help)
{
    jbuf_puts(b, "# HELP ");
    jbuf_puts(b, name);
    jbuf_putc(b, ' ');
    escape(b, help, 0);
    jbuf_puts(b, "\n# TYPE ");
    jbuf_puts(b, name);
    jbuf_putc(b, ' ');
    jbuf_puts(b, type);
    jbuf_putc(b, '\n');
}

/* name{labels[,le="..."]} with the given suffix (e.g. "_bucket"). */
static void series(jbuf *b, const char *name, const char *suffix, const metrics_label *labels,
                   size_t nlabels, const char *le)
{
    jbuf_puts(b, name);
    jbuf_puts(b, suffix);
    if (nlabels == 0 && le == NULL)
        return;
    jbuf_putc(b, '{');
    for (size_t i = 0; i < nlabels; i++) {
        if (i > 0)
            jbuf_putc(b, ',');
        jbuf_puts(b, labels[i].name);
        jbuf_puts(b, "=\"");
        escape(b, labels[i].value, 1);
        jbuf_putc(b, '"');
    }
    if (le != NULL) {
        jbuf_puts(b, nlabels > 0 ? ",le=\"" : "le=\"");
        jbuf_puts(b, le);
        jbuf_putc(b, '"');
    }
    jbuf_putc(b, '}');
}

static void value_u64(jbuf *b, uint64_t v)
{
    char num[32];
    int n = snprintf(num, sizeof(num), " %" PRIu64 "\n", v);
    jbuf_append(b, num, (size_t)n);
}

void metrics_text_sample(jbuf *b, const char *name, const metrics_label *labels, size_t nlabels,
                         int64_t value)
{
    series(b, name, "", labels, nlabels, NULL);
    char num[32];
    int n = snprintf(num, sizeof(num), " %" PRId64 "\n", value);
    jbuf_append(b, num, (size_t)n);
}

void metrics_text_histogram(jbuf *b, const char *name, const metrics_label *labels, size_t nlabels,
                            const metrics_buckets *layout, const uint64_t *bucket, uint64_t sum)
{
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= layout->n; i++) {
        cumulative += bucket[i];
        series(b, name, "_bucket", labels, nlabels, i < layout->n ? layout->le[i] : "+Inf");
        value_u64(b, cumulative);
    }
    series(b, name, "_sum", labels, nlabels, NULL);
    char num[48];
    int n;
    if (layout->scale == 1) {
        n = snprintf(num, sizeof(num), " %" PRIu64 "\n", sum);
    } else {
        /* Exact decimal of sum / scale (scale a power of ten), trailing zeros kept. */
        int digits = 0;
        for (uint64_t s = layout->scale; s > 1; s /= 10)
            digits++;
        n = snprintf(num, sizeof(num), " %" PRIu64 ".%0*" PRIu64 "\n", sum / layout->scale, digits,
                     sum % layout->scale);
    }
    jbuf_append(b, num, (size_t)n);
    series(b, name, "_count", labels, nlabels, NULL);
    value_u64(b, cumulative);
}
