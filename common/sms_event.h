/*
 * common/sms_event.h: validation of one SMS event (SMS.md §2.2–§2.3) into the facts the batch
 * statement needs, or into the outcome `ignored` or a rejection with its fixed reason and
 * member. Pure code (no I/O, clock passed in); used by the ingest workers (NATS messages), the
 * HTTP workers (POST /api/v1/events items), unit tests and the fuzzer.
 *
 * Check order: JSON, object, (HTTP items: subject), event_id, event_type (an unknown type is
 * `ignored` on billing.events and `unknown_event_type` on sms.dlr.inbound; the remaining members
 * are only checked for a known type), occurred_at, message_id, account_id, operator_id, then the
 * type's own members in the order of §2.2, and last the submission time's window (too_old,
 * in_future). A JSON null counts as a missing member. Numbers (segments, and cost when written
 * as a number) are checked on their literal text.
 */
#ifndef ANALYTICSD_SMS_EVENT_H
#define ANALYTICSD_SMS_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { SMS_SUBJECT_BILLING, SMS_SUBJECT_DLR } sms_subject;

typedef enum { SMS_VALID, SMS_IGNORED, SMS_REJECTED } sms_verdict;

/* Rejection reasons (SMS.md §2.3); sms_reason_name gives the fixed spelling. */
typedef enum {
    SMS_REASON_NONE,
    SMS_REASON_INVALID_JSON,
    SMS_REASON_NOT_AN_OBJECT,
    SMS_REASON_MISSING_FIELD,
    SMS_REASON_INVALID_FIELD,
    SMS_REASON_UNKNOWN_EVENT_TYPE,
    SMS_REASON_TOO_OLD,
    SMS_REASON_IN_FUTURE,
} sms_reason;

/* What an accepted event does to the counters (SMS.md §3.2); the letters are the SQL's. */
typedef enum {
    SMS_EFFECT_CHARGE = 'C',    /* billing.message.charged */
    SMS_EFFECT_DELIVERED = 'D', /* final receipt DELIVERED */
    SMS_EFFECT_FAILED = 'F',    /* any other final receipt */
    SMS_EFFECT_NONFINAL = 'N',  /* ACCEPTED, ENROUTE, UNKNOWN */
} sms_effect;

#define SMS_ID_MAX   128 /* event_id, message_id: bytes */
#define SMS_COST_MAX 19  /* 12 digits, '.', 6 digits */

/* A valid event. Strings are NUL-terminated copies; UUIDs are lower-case canonical. */
typedef struct sms_event {
    char event_id[SMS_ID_MAX + 1];
    const char *event_type; /* static: "billing.message.charged" or "sms.dlr.received" */
    sms_effect effect;
    int64_t at_ns; /* submission time, Unix ns (charges: occurred_at; receipts: submitted_at) */
    char message_id[SMS_ID_MAX + 1];
    char account_id[37];
    char operator_id[37];
    int segments;                /* charges */
    char cost[SMS_COST_MAX + 1]; /* charges: as written */
    int64_t latency_ms;          /* DELIVERED: occurred_at - submitted_at, floor, >= 0 */
    int sketch_bucket;           /* DELIVERED: sms_sketch_bucket(latency_ms) */
    bool has_error;              /* receipts with a non-blank error_code */
} sms_event;

/*
 * The outcome of one parse. For SMS_VALID, ev is filled in; for SMS_REJECTED, reason and field
 * (a static member name, or NULL when the reason names none). echo_id/echo_len: the event_id
 * member when it is a JSON string, even an invalid one (heap copy, may hold NUL bytes; NULL
 * otherwise), for the HTTP answer; free it with sms_parse_free. For HTTP items, subject and
 * subject_name tell the item's subject when it named a valid one.
 */
typedef struct sms_parse {
    sms_verdict verdict;
    sms_reason reason;
    const char *field;
    sms_event ev;
    char *echo_id;
    size_t echo_len;
    bool has_subject;
    sms_subject subject;
} sms_parse;

/* The clock of a parse: submission times outside [oldest_ns, newest_ns] are rejected. */
typedef struct sms_window {
    int64_t oldest_ns; /* now - SMS_HOURLY_RETENTION_DAYS: older is too_old */
    int64_t newest_ns; /* now + 5 min: later is in_future */
} sms_window;

/* The window for `now_ns` and a retention of `retention_days` days. */
sms_window sms_window_at(int64_t now_ns, int64_t retention_days);

/*
 * Validates the NATS message body raw[0..len) received on `subject`. header_id (may be NULL)
 * is the Nats-Msg-Id header, used as event_id when the body has none. Fills *out; never fails
 * otherwise (any bytes are a valid input). Call sms_parse_free afterwards.
 */
void sms_event_parse(const char *raw, size_t len, sms_subject subject, const char *header_id,
                     const sms_window *w, sms_parse *out);

/*
 * Validates one item of a POST /api/v1/events body: raw[0..len) is the item's JSON text, whose
 * "subject" member (billing.events or sms.dlr.inbound) says which rules apply; a missing one is
 * missing_field, another value invalid_field (both naming subject). Otherwise as above.
 */
void sms_event_parse_item(const char *raw, size_t len, const sms_window *w, sms_parse *out);

/* Frees what a parse allocated (echo_id); the struct may be reused. */
void sms_parse_free(sms_parse *p);

/* "invalid_json", ... for a reason; NULL for SMS_REASON_NONE. */
const char *sms_reason_name(sms_reason r);

/* The subject's name ("billing.events" or "sms.dlr.inbound"). */
const char *sms_subject_name(sms_subject s);

/*
 * RFC 3339 date-time (SMS.md §2.2): YYYY-MM-DD 'T' HH:MM:SS, an optional '.' with 1-9 digits, then
 * 'Z' or +HH:MM / -HH:MM ('t' and 'z' in lower case too). Sets *ns to Unix nanoseconds and
 * returns 0, or returns -1.
 */
int sms_time_parse(const char *s, size_t len, int64_t *ns);

/*
 * DDSketch with relative accuracy 1 % (SMS.md §3.4): the bucket of a latency in ms (-1 for 0 ms,
 * else ceil(log_gamma(ms)), gamma = 1.01/0.99). The value a bucket stands for is computed where
 * percentiles are read: anlyt.sketch_value in schema/0005_sms_reads.sql.
 */
int sms_sketch_bucket(int64_t ms);

#endif
