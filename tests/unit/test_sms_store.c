/*
 * tests/unit/test_sms_store.c: unit tests for common/sms_store without a database: the
 * parameters of the batch statement (SMS.md §2.4, §3.1) built by sms_batch_add_event /
 * sms_batch_add_rejection / sms_batch_params as exact PostgreSQL array literals (quoting and
 * escaping, timestamps truncated to the microsecond before and after 1970, NULLs for the columns
 * an event does not have, bytea payloads cut at 8 KiB), and the reading of the statement's int[]
 * result by sms_batch_result from PGresults built in memory with libpq (no server).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sms_event.h"
#include "common/sms_store.h"

#define NS       INT64_C(1000000000)
#define NOW_NS   (INT64_C(1795176000) * NS) /* 2026-11-20T12:00:00Z */
#define BYTES(s) s, sizeof(s) - 1

#define UUID_A "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
#define UUID_O "0a1b2c3d-4e5f-4a6b-8c7d-8e9fa0b1c2d3"

/* Column positions of the statement's parameters ($1 .. $18). */
enum {
    P_EVENT_ID,
    P_EVENT_TYPE,
    P_EFFECT,
    P_AT,
    P_MESSAGE_ID,
    P_ACCOUNT,
    P_OPERATOR,
    P_SEGMENTS,
    P_COST,
    P_LATENCY,
    P_SKETCH,
    P_HAS_ERROR,
    P_TRANSPORT,
    P_REJ_SUBJECT,
    P_REJ_EVENT_ID,
    P_REJ_REASON,
    P_REJ_FIELD,
    P_REJ_PAYLOAD,
};

static sms_event event(const char *id, sms_effect effect, int64_t at_ns, const char *message_id)
{
    sms_event ev;
    memset(&ev, 0, sizeof(ev));
    snprintf(ev.event_id, sizeof(ev.event_id), "%s", id);
    ev.event_type = effect == SMS_EFFECT_CHARGE ? "billing.message.charged" : "sms.dlr.received";
    ev.effect = effect;
    ev.at_ns = at_ns;
    snprintf(ev.message_id, sizeof(ev.message_id), "%s", message_id);
    memcpy(ev.account_id, UUID_A, 37);
    memcpy(ev.operator_id, UUID_O, 37);
    return ev;
}

static void expect_param(const char *const params[SMS_STORE_BATCH_NPARAMS], int i, const char *want)
{
    assert_non_null(params[i]);
    if (strcmp(params[i], want) != 0)
        fail_msg("$%d: [%s]\n want [%s]", i + 1, params[i], want);
}

static void test_statement(void **state)
{
    (void)state;
    assert_int_equal(SMS_STORE_BATCH_NPARAMS, 18);
    assert_non_null(strstr(SMS_STORE_BATCH_SQL, "anlyt.ingest_batch("));
    assert_non_null(strstr(SMS_STORE_BATCH_SQL, "$18::bytea[]"));
    assert_non_null(strstr(SMS_STORE_BATCH_SQL, "$4::timestamptz[]"));
    assert_null(strstr(SMS_STORE_BATCH_SQL, "$19"));
}

static void test_empty_batch(void **state)
{
    (void)state;
    sms_batch b;
    sms_batch_init(&b, "nats");
    assert_int_equal(b.events, 0);
    assert_int_equal(b.rejections, 0);
    const char *params[SMS_STORE_BATCH_NPARAMS];
    sms_batch_params(&b, params);
    for (int i = 0; i < SMS_STORE_BATCH_NPARAMS; i++)
        expect_param(params, i, i == P_TRANSPORT ? "nats" : "{}");
    /* asking again changes nothing */
    sms_batch_params(&b, params);
    for (int i = 0; i < SMS_STORE_BATCH_NPARAMS; i++)
        expect_param(params, i, i == P_TRANSPORT ? "nats" : "{}");
    sms_batch_free(&b);

    sms_batch_init(&b, "http");
    sms_batch_params(&b, params);
    expect_param(params, P_TRANSPORT, "http");
    sms_batch_free(&b);
}

static void test_events(void **state)
{
    (void)state;
    sms_batch b;
    sms_batch_init(&b, "nats");

    /* a charge whose event_id holds a double quote and a backslash */
    sms_event charge =
        event("e\"1\\x", SMS_EFFECT_CHARGE,
              INT64_C(1795169730) * NS + 123456789, /* 2026-11-20T10:15:30.123456789Z */
              "m-1");
    charge.segments = 2;
    snprintf(charge.cost, sizeof(charge.cost), "123456789012.123456");
    assert_int_equal(sms_batch_add_event(&b, &charge), 1);

    /* receipts before and at 1970: floor to the microsecond, not toward zero */
    sms_event delivered = event("r-1", SMS_EFFECT_DELIVERED, -1, "m\\\"2");
    delivered.latency_ms = 1377;
    delivered.sketch_bucket = sms_sketch_bucket(1377);
    delivered.has_error = true;
    assert_int_equal(sms_batch_add_event(&b, &delivered), 2);
    sms_event failed = event("f-1", SMS_EFFECT_FAILED, -1500, "m-3");
    failed.latency_ms = 55; /* ignored: only DELIVERED carries a latency */
    failed.sketch_bucket = 7;
    assert_int_equal(sms_batch_add_event(&b, &failed), 3);
    sms_event nonfinal = event("n-1", SMS_EFFECT_NONFINAL, 0, "m-4");
    nonfinal.segments = 9; /* ignored: only charges carry segments and cost */
    snprintf(nonfinal.cost, sizeof(nonfinal.cost), "1.5");
    assert_int_equal(sms_batch_add_event(&b, &nonfinal), 4);
    sms_event zero = event("z-1", SMS_EFFECT_DELIVERED, -INT64_C(86400) * NS * 365 + 999, "m-5");
    zero.latency_ms = 0;
    zero.sketch_bucket = -1;
    assert_int_equal(sms_batch_add_event(&b, &zero), 5);
    assert_int_equal(b.events, 5);
    assert_int_equal(b.rejections, 0);

    const char *params[SMS_STORE_BATCH_NPARAMS];
    sms_batch_params(&b, params);
    expect_param(params, P_EVENT_ID, "{\"e\\\"1\\\\x\",\"r-1\",\"f-1\",\"n-1\",\"z-1\"}");
    expect_param(params, P_EVENT_TYPE,
                 "{\"billing.message.charged\",\"sms.dlr.received\",\"sms.dlr.received\","
                 "\"sms.dlr.received\",\"sms.dlr.received\"}");
    expect_param(params, P_EFFECT, "{C,D,F,N,D}");
    expect_param(params, P_AT,
                 "{\"2026-11-20 10:15:30.123456+00\",\"1969-12-31 23:59:59.999999+00\","
                 "\"1969-12-31 23:59:59.999998+00\",\"1970-01-01 00:00:00.000000+00\","
                 "\"1969-01-01 00:00:00.000000+00\"}");
    expect_param(params, P_MESSAGE_ID, "{\"m-1\",\"m\\\\\\\"2\",\"m-3\",\"m-4\",\"m-5\"}");
    expect_param(params, P_ACCOUNT, "{" UUID_A "," UUID_A "," UUID_A "," UUID_A "," UUID_A "}");
    expect_param(params, P_OPERATOR, "{" UUID_O "," UUID_O "," UUID_O "," UUID_O "," UUID_O "}");
    expect_param(params, P_SEGMENTS, "{2,NULL,NULL,NULL,NULL}");
    expect_param(params, P_COST, "{123456789012.123456,NULL,NULL,NULL,NULL}");
    expect_param(params, P_LATENCY, "{NULL,1377,NULL,NULL,0}");
    char sketch[64];
    snprintf(sketch, sizeof(sketch), "{NULL,%d,NULL,NULL,-1}", sms_sketch_bucket(1377));
    expect_param(params, P_SKETCH, sketch);
    expect_param(params, P_HAS_ERROR, "{f,t,f,f,f}");
    expect_param(params, P_TRANSPORT, "nats");
    for (int i = P_REJ_SUBJECT; i <= P_REJ_PAYLOAD; i++)
        expect_param(params, i, "{}");

    /* reset: empty again, positions restart at 1, the transport stays */
    sms_batch_reset(&b);
    assert_int_equal(b.events, 0);
    sms_batch_params(&b, params);
    expect_param(params, P_EVENT_ID, "{}");
    expect_param(params, P_AT, "{}");
    expect_param(params, P_TRANSPORT, "nats");
    charge.at_ns = INT64_C(1795169730) * NS + 999; /* sub-microsecond part dropped */
    assert_int_equal(sms_batch_add_event(&b, &charge), 1);
    sms_batch_params(&b, params);
    expect_param(params, P_AT, "{\"2026-11-20 10:15:30.000000+00\"}");
    expect_param(params, P_SEGMENTS, "{2}");
    expect_param(params, P_LATENCY, "{NULL}");
    sms_batch_free(&b);
}

/* A rejection row from a real parse. */
static void add_parsed_rejection(sms_batch *b, const char *raw, size_t len, sms_subject subject,
                                 const char *subject_name)
{
    sms_window win = sms_window_at(NOW_NS, 90);
    sms_parse p;
    sms_event_parse(raw, len, subject, NULL, &win, &p);
    assert_int_equal(p.verdict, SMS_REJECTED);
    sms_batch_add_rejection(b, subject_name, &p, raw, len);
    sms_parse_free(&p);
}

static void test_rejections(void **state)
{
    (void)state;
    sms_batch b;
    sms_batch_init(&b, "http");
    /* invalid_field after a valid event_id: the id is kept */
    add_parsed_rejection(&b, BYTES("{\"event_id\":\"e-9\",\"event_type\":5}"), SMS_SUBJECT_BILLING,
                         "billing.events");
    /* invalid JSON with a NUL byte, no subject known: NULLs, payload bytes as they came */
    add_parsed_rejection(&b, BYTES("x\0\xff"), SMS_SUBJECT_DLR, NULL);
    /* an event_id with a quote and a backslash, escaped in the array literal */
    add_parsed_rejection(&b, BYTES("{\"event_id\":\"q\\\"\\\\\",\"event_type\":\"x\"}"),
                         SMS_SUBJECT_DLR, "sms.dlr.inbound");
    /* an invalid event_id is not stored */
    add_parsed_rejection(&b, BYTES("{\"event_id\":\"a b\"}"), SMS_SUBJECT_DLR, "sms.dlr.inbound");
    assert_int_equal(b.rejections, 4);
    assert_int_equal(b.events, 0);

    const char *params[SMS_STORE_BATCH_NPARAMS];
    sms_batch_params(&b, params);
    expect_param(params, P_REJ_SUBJECT,
                 "{\"billing.events\",NULL,\"sms.dlr.inbound\",\"sms.dlr.inbound\"}");
    expect_param(params, P_REJ_EVENT_ID, "{\"e-9\",NULL,\"q\\\"\\\\\",NULL}");
    expect_param(params, P_REJ_REASON,
                 "{\"invalid_field\",\"invalid_json\",\"unknown_event_type\",\"invalid_field\"}");
    expect_param(params, P_REJ_FIELD, "{\"event_type\",NULL,\"event_type\",\"event_id\"}");
    /* bytea hex elements: "\\x..." inside the array literal */
    char want[1024];
    const char *raws[] = {"{\"event_id\":\"e-9\",\"event_type\":5}", NULL,
                          "{\"event_id\":\"q\\\"\\\\\",\"event_type\":\"x\"}",
                          "{\"event_id\":\"a b\"}"};
    size_t o = (size_t)snprintf(want, sizeof(want), "{");
    for (int i = 0; i < 4; i++) {
        o += (size_t)snprintf(want + o, sizeof(want) - o, "%s\"\\\\x", i ? "," : "");
        if (raws[i] == NULL) {
            o += (size_t)snprintf(want + o, sizeof(want) - o, "7800ff");
        } else {
            for (const char *c = raws[i]; *c; c++)
                o += (size_t)snprintf(want + o, sizeof(want) - o, "%02x", (unsigned char)*c);
        }
        o += (size_t)snprintf(want + o, sizeof(want) - o, "\"");
    }
    snprintf(want + o, sizeof(want) - o, "}");
    expect_param(params, P_REJ_PAYLOAD, want);
    expect_param(params, P_REJ_PAYLOAD,
                 "{\"\\\\x7b226576656e745f6964223a22652d39222c226576656e745f74797065223a357d\","
                 "\"\\\\x7800ff\",\"\\\\x7b226576656e745f6964223a22715c225c5c222c226576656e745f"
                 "74797065223a2278227d\",\"\\\\x7b226576656e745f6964223a22612062227d\"}");
    /* the event columns stay empty, the transport is set */
    expect_param(params, P_EVENT_ID, "{}");
    expect_param(params, P_TRANSPORT, "http");
    sms_batch_free(&b);
}

/* The payload column for one rejection of `len` bytes of 'A' (0x41), hex of the first 8192. */
static void check_payload(size_t len)
{
    char *payload = malloc(len ? len : 1);
    memset(payload, 'A', len);
    sms_batch b;
    sms_batch_init(&b, "nats");
    sms_parse p;
    memset(&p, 0, sizeof(p));
    p.verdict = SMS_REJECTED;
    p.reason = SMS_REASON_TOO_OLD;
    p.field = "occurred_at";
    snprintf(p.ev.event_id, sizeof(p.ev.event_id), "old-1");
    sms_batch_add_rejection(&b, "billing.events", &p, payload, len);
    const char *params[SMS_STORE_BATCH_NPARAMS];
    sms_batch_params(&b, params);
    size_t kept = len < SMS_STORE_PAYLOAD_MAX ? len : SMS_STORE_PAYLOAD_MAX;
    const char *s = params[P_REJ_PAYLOAD];
    size_t n = strlen(s);
    if (n != 2 * kept + 7)
        fail_msg("%zu bytes: payload literal of %zu chars, want %zu", len, n, 2 * kept + 7);
    assert_memory_equal(s, "{\"\\\\x", 5);
    for (size_t i = 0; i < kept; i++) {
        if (s[5 + 2 * i] != '4' || s[6 + 2 * i] != '1')
            fail_msg("%zu bytes: byte %zu is [%.2s]", len, i, s + 5 + 2 * i);
    }
    assert_string_equal(s + 5 + 2 * kept, "\"}");
    expect_param(params, P_REJ_EVENT_ID, "{\"old-1\"}");
    expect_param(params, P_REJ_REASON, "{\"too_old\"}");
    expect_param(params, P_REJ_FIELD, "{\"occurred_at\"}");
    sms_batch_free(&b);
    free(payload);
}

static void test_payload_limit(void **state)
{
    (void)state;
    assert_int_equal(SMS_STORE_PAYLOAD_MAX, 8192);
    check_payload(0);
    check_payload(1);
    check_payload(8191);
    check_payload(8192);
    check_payload(8193);
    check_payload(9000);
    check_payload(1 << 20);
}

static void test_events_and_rejections(void **state)
{
    (void)state;
    sms_batch b;
    sms_batch_init(&b, "nats");
    sms_window win = sms_window_at(NOW_NS, 90);
    static const char *const msgs[] = {
        "{\"event_id\":\"c-1\",\"event_type\":\"billing.message.charged\",\"occurred_at\":"
        "\"2026-11-20T10:15:30.5Z\",\"message_id\":\"m-1\",\"account_id\":\"" UUID_A "\","
        "\"operator_id\":\"" UUID_O "\",\"segments\":3,\"cost\":1.5}",
        "[]",
        "{\"event_id\":\"c-2\",\"event_type\":\"billing.message.charged\",\"occurred_at\":"
        "\"2026-11-20T12:15:30+02:00\",\"message_id\":\"m-2\",\"account_id\":\"" UUID_A "\","
        "\"operator_id\":\"" UUID_O "\",\"segments\":1,\"cost\":\"0.000001\"}",
        "{\"event_id\":\"c-3\",\"event_type\":\"billing.refund\"}",
    };
    size_t positions = 0;
    for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        sms_parse p;
        sms_event_parse(msgs[i], strlen(msgs[i]), SMS_SUBJECT_BILLING, NULL, &win, &p);
        if (p.verdict == SMS_VALID)
            assert_int_equal(sms_batch_add_event(&b, &p.ev), ++positions);
        else if (p.verdict == SMS_REJECTED)
            sms_batch_add_rejection(&b, "billing.events", &p, msgs[i], strlen(msgs[i]));
        sms_parse_free(&p);
    }
    assert_int_equal(b.events, 2);
    assert_int_equal(b.rejections, 1);
    const char *params[SMS_STORE_BATCH_NPARAMS];
    sms_batch_params(&b, params);
    expect_param(params, P_EVENT_ID, "{\"c-1\",\"c-2\"}");
    expect_param(params, P_EFFECT, "{C,C}");
    expect_param(params, P_AT,
                 "{\"2026-11-20 10:15:30.500000+00\",\"2026-11-20 10:15:30.000000+00\"}");
    expect_param(params, P_SEGMENTS, "{3,1}");
    expect_param(params, P_COST, "{1.5,0.000001}");
    expect_param(params, P_LATENCY, "{NULL,NULL}");
    expect_param(params, P_SKETCH, "{NULL,NULL}");
    expect_param(params, P_HAS_ERROR, "{f,f}");
    expect_param(params, P_REJ_SUBJECT, "{\"billing.events\"}");
    expect_param(params, P_REJ_EVENT_ID, "{NULL}");
    expect_param(params, P_REJ_REASON, "{\"not_an_object\"}");
    expect_param(params, P_REJ_FIELD, "{NULL}");
    expect_param(params, P_REJ_PAYLOAD, "{\"\\\\x5b5d\"}");
    sms_batch_free(&b);
}

/* Adding after sms_batch_params continues the same arrays (the pointers handed out go stale). */
static void test_add_after_params(void **state)
{
    (void)state;
    sms_batch b;
    sms_batch_init(&b, "nats");
    const char *params[SMS_STORE_BATCH_NPARAMS];
    sms_event ev = event("a-1", SMS_EFFECT_NONFINAL, 0, "m-1");
    assert_int_equal(sms_batch_add_event(&b, &ev), 1);
    sms_batch_params(&b, params);
    expect_param(params, P_EVENT_ID, "{\"a-1\"}");
    expect_param(params, P_REJ_REASON, "{}");
    ev = event("a-2", SMS_EFFECT_FAILED, NS, "m-2");
    assert_int_equal(sms_batch_add_event(&b, &ev), 2);
    sms_parse p;
    memset(&p, 0, sizeof(p));
    p.verdict = SMS_REJECTED;
    p.reason = SMS_REASON_NOT_AN_OBJECT;
    sms_batch_add_rejection(&b, "sms.dlr.inbound", &p, "1", 1);
    sms_batch_params(&b, params);
    expect_param(params, P_EVENT_ID, "{\"a-1\",\"a-2\"}");
    expect_param(params, P_EFFECT, "{N,F}");
    expect_param(params, P_AT,
                 "{\"1970-01-01 00:00:00.000000+00\",\"1970-01-01 00:00:01.000000+00\"}");
    expect_param(params, P_SEGMENTS, "{NULL,NULL}");
    expect_param(params, P_HAS_ERROR, "{f,f}");
    expect_param(params, P_TRANSPORT, "nats");
    expect_param(params, P_REJ_SUBJECT, "{\"sms.dlr.inbound\"}");
    expect_param(params, P_REJ_EVENT_ID, "{NULL}");
    expect_param(params, P_REJ_REASON, "{\"not_an_object\"}");
    expect_param(params, P_REJ_FIELD, "{NULL}");
    expect_param(params, P_REJ_PAYLOAD, "{\"\\\\x31\"}");
    sms_batch_free(&b);
}

/* ---- sms_batch_result ------------------------------------------------------------------------ */

/* A tuples result of `rows` rows and `cols` int[] columns, every value `value` (NULL: SQL NULL). */
static PGresult *result(int rows, int cols, const char *value)
{
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    assert_non_null(res);
    PGresAttDesc attrs[2];
    memset(attrs, 0, sizeof(attrs));
    for (int c = 0; c < cols; c++) {
        attrs[c].name = (char *)"ingest_batch";
        attrs[c].typid = 1007; /* int4[] */
        attrs[c].typlen = -1;
        attrs[c].atttypmod = -1;
    }
    assert_int_equal(PQsetResultAttrs(res, cols, attrs), 1);
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < cols; c++) {
            assert_int_equal(PQsetvalue(res, r, c, (char *)value, value ? (int)strlen(value) : -1),
                             1);
        }
    }
    assert_int_equal(PQntuples(res), rows);
    assert_int_equal(PQnfields(res), cols);
    return res;
}

static void test_result(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        size_t events;
        const char *want; /* accepted flags as '1'/'0', NULL: -1 */
    } cases[] = {
        {"{1,3}", 3, "101"},
        {"{3,1}", 3, "101"},
        {"{}", 2, "00"},
        {"{}", 0, ""},
        {"{1}", 1, "1"},
        {"{2}", 4, "0100"},
        {"{1,2,3,4}", 4, "1111"},
        {"{10}", 10, "0000000001"},
        {"{0}", 3, NULL},
        {"{4}", 3, NULL},
        {"{-1}", 3, NULL},
        {"{1}", 0, NULL},
        {"{99999999999999999999}", 3, NULL},
        {"1,3", 3, NULL},
        {"{1,3", 3, NULL},
        {"{1;3}", 3, NULL},
        {"{1 3}", 3, NULL},
        {"{a}", 3, NULL},
        {"{,}", 3, NULL},
        {"{,1}", 3, NULL},
        {"{NULL}", 3, NULL},
        {"{", 3, NULL},
        {"", 3, NULL},
        {"[1]", 3, NULL},
        {"(1)", 3, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        PGresult *res = result(1, 1, cases[i].value);
        bool accepted[16];
        for (size_t k = 0; k < 16; k++)
            accepted[k] = true;
        int rc = sms_batch_result(res, accepted, cases[i].events);
        PQclear(res);
        if (cases[i].want == NULL) {
            if (rc != -1)
                fail_msg("[%s] (%zu events): accepted", cases[i].value, cases[i].events);
            continue;
        }
        if (rc != 0)
            fail_msg("[%s] (%zu events): rc %d", cases[i].value, cases[i].events, rc);
        for (size_t k = 0; k < cases[i].events; k++) {
            if (accepted[k] != (cases[i].want[k] == '1'))
                fail_msg("[%s]: position %zu is %d", cases[i].value, k + 1, accepted[k]);
        }
        /* nothing written past the batch */
        for (size_t k = cases[i].events; k < 16; k++)
            assert_true(accepted[k]);
    }
    /* a SQL NULL, no row, two rows, two columns */
    bool accepted[4];
    PGresult *res = result(1, 1, NULL);
    assert_int_equal(sms_batch_result(res, accepted, 2), -1);
    PQclear(res);
    res = result(0, 1, "{1}");
    assert_int_equal(sms_batch_result(res, accepted, 2), -1);
    PQclear(res);
    res = result(2, 1, "{1}");
    assert_int_equal(sms_batch_result(res, accepted, 2), -1);
    PQclear(res);
    res = result(1, 2, "{1}");
    assert_int_equal(sms_batch_result(res, accepted, 2), -1);
    PQclear(res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_statement),        cmocka_unit_test(test_empty_batch),
        cmocka_unit_test(test_events),           cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_payload_limit),    cmocka_unit_test(test_events_and_rejections),
        cmocka_unit_test(test_add_after_params), cmocka_unit_test(test_result),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
