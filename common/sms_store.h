/*
 * common/sms_store.h: the SMS event store (SMS.md §2.4, §3): the one statement that applies a
 * batch of events (anlyt.ingest_batch of schema/0004_sms.sql), the building of its parameters,
 * the reading of its result, and the upkeep the leading supervisor runs (partitions made and
 * dropped, the daily rollup, retention purges). Shared by the blocking callers (ingest workers,
 * supervisor, seed) and the asynchronous one (POST /api/v1/events in the HTTP workers, which
 * sends SMS_STORE_BATCH_SQL through its pgpool).
 *
 * A batch is one transaction: rejection rows, dedupe records and counters commit together or
 * not at all. Ownership: an sms_batch owns its buffers; the parameter pointers it hands out stay
 * valid until the next add, reset or free.
 */
#ifndef ANALYTICSD_SMS_STORE_H
#define ANALYTICSD_SMS_STORE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/jbuf.h"
#include "common/sms_event.h"

#define SMS_STORE_BATCH_NPARAMS 18
#define SMS_STORE_PAYLOAD_MAX   8192 /* bytes of a rejected message kept in rejected_events */

/* SELECT anlyt.ingest_batch($1 .. $18): one row, one int[] column of accepted positions. */
extern const char SMS_STORE_BATCH_SQL[];

typedef struct sms_batch {
    const char *transport;              /* "nats" or "http" (static) */
    size_t events, rejections;          /* counts added since the last reset */
    jbuf cols[SMS_STORE_BATCH_NPARAMS]; /* array literals under construction; [12] transport */
} sms_batch;

/* Why a store call failed; the ingest worker naks and backs off on either. */
typedef enum {
    SMS_STORE_OK,
    SMS_STORE_UNAVAILABLE, /* the connection is gone or could not be used */
    SMS_STORE_FAILED,      /* the statement failed (logged with its SQLSTATE) */
} sms_store_status;

/* An empty batch for `transport` ("nats" or "http"). */
void sms_batch_init(sms_batch *b, const char *transport);
void sms_batch_reset(sms_batch *b);
void sms_batch_free(sms_batch *b);

/* Adds a valid event; returns its 1-based position in the batch. */
size_t sms_batch_add_event(sms_batch *b, const sms_event *ev);

/*
 * Adds a rejection row for parse p (verdict SMS_REJECTED) of a message received on `subject`
 * (NULL when unknown) whose raw bytes are payload[0..len) (the first SMS_STORE_PAYLOAD_MAX kept).
 */
void sms_batch_add_rejection(sms_batch *b, const char *subject, const sms_parse *p,
                             const char *payload, size_t len);

/* Fills params with the statement's parameters (valid until the batch changes). */
void sms_batch_params(sms_batch *b, const char *params[SMS_STORE_BATCH_NPARAMS]);

/*
 * Reads the statement's result: accepted[i] (0-based) is set for the events accepted, the others
 * of the b->events positions are cleared (duplicates). Returns 0, or -1 if the result is not
 * what the statement returns.
 */
int sms_batch_result(const PGresult *res, bool *accepted, size_t events);

/*
 * Blocking: runs the batch on conn in one transaction and fills accepted (b->events entries).
 * On failure nothing was applied; the status says whether the connection is still usable.
 * sms_store_apply = sms_store_send + sms_store_finish.
 */
sms_store_status sms_store_apply(PGconn *conn, sms_batch *b, bool *accepted);

/*
 * The two halves of sms_store_apply, so that a caller can prepare its next batch while
 * PostgreSQL works on this one. send queues the statement (conn must be idle); finish waits for
 * its result. Between them b must not change. A failed send needs no finish.
 */
sms_store_status sms_store_send(PGconn *conn, sms_batch *b);
sms_store_status sms_store_finish(PGconn *conn, sms_batch *b, bool *accepted);

/*
 * Blocking: makes sure the monthly partitions exist for every hour an event may be accepted
 * for (retention_days back) and two months ahead. Logs how many it created. Returns 0 or -1.
 */
int sms_store_ensure_partitions(PGconn *conn, int64_t retention_days);

/*
 * Blocking: deletes dedupe records and per-second counts older than dedupe_retention_ns,
 * rejection rows older than 30 days, and daily rows (metrics, account usage, latency sketches)
 * of days that began more than daily_retention_days ago (SMS.md §5), in slices of 10,000 rows so
 * that no statement holds its locks for long. Logs what it deleted. Returns 0, or -1 (logged) if
 * a slice failed (the others still ran).
 */
int sms_store_purge(PGconn *conn, int64_t dedupe_retention_ns, int64_t daily_retention_days);

/*
 * Blocking: drops the monthly partitions of the hourly tables whose every hour is more than
 * hourly_retention_days old (anlyt.drop_partitions; gives up after 2 s waiting for its lock and
 * fails, to be retried). Logs what it dropped. Returns 0 or -1 (logged).
 */
int sms_store_drop_partitions(PGconn *conn, int64_t hourly_retention_days);

/*
 * Blocking: one daily rollup pass (anlyt.rollup, SMS.md §3.3): recomputes the days whose hours
 * changed, except days leaving the hourly retention. Returns the number of days recomputed
 * (logged when not 0), or -1 (logged; nothing changed, the days stay marked).
 */
int sms_store_rollup(PGconn *conn, int64_t hourly_retention_days);

#endif
