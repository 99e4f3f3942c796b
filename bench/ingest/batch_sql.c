/*
 * bench/ingest/batch_sql.c: the SQL of the "PostgreSQL alone" reference of bench/run's SMS
 * ingestion benchmark. Built by the optional CMake target bench_batch_sql (not part of `all`),
 * linked against adcore, so the statements are built by the service's own code.
 *
 *   bench_batch_sql BILLING.jsonl DLR.jsonl NOW_MS [BATCH [RETENTION_DAYS]] > batches.sql
 *
 * Reads the generated message bodies (one a line, in the order they were published to each
 * stream), validates each with sms_event_parse against the window of NOW_MS (the generation time)
 * and RETENTION_DAYS (default 90, SMS_HOURLY_RETENTION_DAYS's default), and groups them as an
 * ingest worker with INGEST_WORKERS=1 receives them from a backlog: BATCH (default 500,
 * SMS_INGEST_BATCH) messages of billing.events, then BATCH of sms.dlr.inbound, alternately, each
 * stream in its own order (worker/ingest_worker.c fetches the two streams in turn). Each batch is
 * built with sms_batch_add_event / sms_batch_add_rejection exactly as the worker builds it and
 * written as one statement: SMS_STORE_BATCH_SQL with its 18 placeholders replaced by the
 * parameters as string literals ('...' with single quotes doubled; the array literals' own \" and
 * \\ escapes pass through unchanged because the script first sets standard_conforming_strings).
 * A summary goes to standard error: batches, events, rejections, ignored.
 */
#include "common/sms_event.h"
#include "common/sms_store.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct source {
    FILE *f;
    sms_subject subject;
    char *line;
    size_t cap;
} source;

static void put_literal(FILE *out, const char *s)
{
    fputc('\'', out);
    for (; *s != '\0'; s++) {
        if (*s == '\'')
            fputc('\'', out);
        fputc(*s, out);
    }
    fputc('\'', out);
}

/* SMS_STORE_BATCH_SQL with $1..$18 replaced by the literal parameters, then ";\n". */
static void put_statement(FILE *out, const char *params[SMS_STORE_BATCH_NPARAMS])
{
    for (const char *p = SMS_STORE_BATCH_SQL; *p != '\0'; p++) {
        if (*p == '$' && isdigit((unsigned char)p[1])) {
            char *end;
            long n = strtol(p + 1, &end, 10);
            if (n < 1 || n > SMS_STORE_BATCH_NPARAMS) {
                fprintf(stderr, "bench_batch_sql: unexpected placeholder $%ld\n", n);
                exit(1);
            }
            put_literal(out, params[n - 1]);
            p = end - 1;
        } else {
            fputc(*p, out);
        }
    }
    fputs(";\n", out);
}

/* Reads up to `batch` messages of src into b; returns how many were read. */
static size_t fill(source *src, sms_batch *b, size_t batch, const sms_window *w, size_t *ignored)
{
    size_t n = 0;
    sms_batch_reset(b);
    while (n < batch) {
        ssize_t len = getline(&src->line, &src->cap, src->f);
        if (len < 0)
            break;
        if (len > 0 && src->line[len - 1] == '\n')
            src->line[--len] = '\0';
        sms_parse p;
        /* The worker passes the Nats-Msg-Id header (the event_id here); the body has its own. */
        sms_event_parse(src->line, (size_t)len, src->subject, NULL, w, &p);
        if (p.verdict == SMS_VALID)
            sms_batch_add_event(b, &p.ev);
        else if (p.verdict == SMS_REJECTED)
            sms_batch_add_rejection(b, sms_subject_name(src->subject), &p, src->line, (size_t)len);
        else
            (*ignored)++;
        sms_parse_free(&p);
        n++;
    }
    return n;
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 6) {
        fprintf(stderr,
                "usage: bench_batch_sql BILLING.jsonl DLR.jsonl NOW_MS [BATCH [RETENTION_DAYS]]\n");
        return 2;
    }
    int64_t now_ms = strtoll(argv[3], NULL, 10);
    long batch = argc > 4 ? strtol(argv[4], NULL, 10) : 500;
    long retention = argc > 5 ? strtol(argv[5], NULL, 10) : 90;
    if (now_ms <= 0 || batch < 1 || batch > 10000 || retention < 1) {
        fprintf(stderr, "bench_batch_sql: bad NOW_MS, BATCH or RETENTION_DAYS\n");
        return 2;
    }
    source src[2] = {{NULL, SMS_SUBJECT_BILLING, NULL, 0}, {NULL, SMS_SUBJECT_DLR, NULL, 0}};
    for (int i = 0; i < 2; i++) {
        src[i].f = fopen(argv[1 + i], "r");
        if (src[i].f == NULL) {
            perror(argv[1 + i]);
            return 1;
        }
    }
    sms_window w = sms_window_at(now_ms * INT64_C(1000000), retention);
    sms_batch b;
    sms_batch_init(&b, "nats");
    size_t batches = 0, events = 0, rejections = 0, ignored = 0;
    static char outbuf[1 << 20];
    setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
    bool done[2] = {false, false};
    while (!done[0] || !done[1]) {
        for (int i = 0; i < 2; i++) {
            if (done[i])
                continue;
            size_t n = fill(&src[i], &b, (size_t)batch, &w, &ignored);
            if (n < (size_t)batch)
                done[i] = true;
            if (n == 0)
                continue;
            const char *params[SMS_STORE_BATCH_NPARAMS];
            sms_batch_params(&b, params);
            put_statement(stdout, params);
            batches++;
            events += b.events;
            rejections += b.rejections;
        }
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        perror("bench_batch_sql: stdout");
        return 1;
    }
    fprintf(stderr, "batches %zu events %zu rejections %zu ignored %zu\n", batches, events,
            rejections, ignored);
    sms_batch_free(&b);
    for (int i = 0; i < 2; i++) {
        free(src[i].line);
        fclose(src[i].f);
    }
    return 0;
}
