/*
 * tests/unit/test_sms_event.c: unit tests for common/sms_event and common/json_span: the SMS
 * event body rules and outcomes of SMS.md §2.2–§2.3 through sms_event_parse (NATS messages, with
 * and without a Nats-Msg-Id header) and sms_event_parse_item (POST /api/v1/events items, §6.6),
 * with a fixed clock (now = 2026-11-20T12:00:00Z, hourly retention 90 days); the RFC 3339 parser;
 * the latency sketch of §3.4 (1 % relative accuracy); and the raw value spans of json_span.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/json_span.h"
#include "common/sms_event.h"

#define NS        INT64_C(1000000000)
#define NOW_SEC   INT64_C(1795176000) /* 2026-11-20T12:00:00Z */
#define NOW_NS    (NOW_SEC * NS)
#define RETENTION 90
#define BYTES(s)  s, sizeof(s) - 1

static sms_window win;

/* Unix seconds of a UTC civil time, by the C library (independent of common/dates.c). */
static int64_t utc(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    return (int64_t)timegm(&tm);
}

/* ---- building event bodies ------------------------------------------------------------------- */

typedef struct member {
    const char *name;
    const char *json; /* the value's JSON text */
} member;

#define UUID_UPPER "6F1C2A3B-4D5E-4F60-8A7B-9C0D1E2F3A4B"
#define UUID_LOWER "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
#define UUID_OP    "0a1b2c3d-4e5f-4a6b-8c7d-8e9fa0b1c2d3"

/* The members of a valid charge and of a valid receipt, in the order of the §2.2 tables. */
static const member charge_base[] = {
    {"event_id", "\"ev-1\""},
    {"event_type", "\"billing.message.charged\""},
    {"occurred_at", "\"2026-11-20T10:15:30.123Z\""},
    {"message_id", "\"msg-1\""},
    {"account_id", "\"" UUID_UPPER "\""},
    {"operator_id", "\"" UUID_OP "\""},
    {"segments", "2"},
    {"cost", "\"0.045\""},
};
#define CHARGE_N (sizeof(charge_base) / sizeof(charge_base[0]))

static const member receipt_base[] = {
    {"event_id", "\"dlr-1\""},
    {"event_type", "\"sms.dlr.received\""},
    {"occurred_at", "\"2026-11-20T10:15:31.500Z\""},
    {"message_id", "\"msg-1\""},
    {"account_id", "\"" UUID_LOWER "\""},
    {"operator_id", "\"" UUID_OP "\""},
    {"status", "\"DELIVERED\""},
    {"submitted_at", "\"2026-11-20T10:15:30.123Z\""},
};
#define RECEIPT_N (sizeof(receipt_base) / sizeof(receipt_base[0]))

/*
 * Writes the JSON object of base with up to two overrides into a static buffer: an override
 * with json == NULL removes the member; a name not in base is appended at the end.
 */
static char body_buf[8192];

static const char *build2(const member *base, size_t n, const char *name1, const char *json1,
                          const char *name2, const char *json2)
{
    size_t o = 0;
    bool used1 = false, used2 = false;
    o += (size_t)snprintf(body_buf + o, sizeof(body_buf) - o, "{");
    for (size_t i = 0; i < n + 2; i++) {
        const char *name, *json;
        if (i < n) {
            name = base[i].name;
            json = base[i].json;
            if (name1 != NULL && strcmp(name, name1) == 0) {
                json = json1;
                used1 = true;
            } else if (name2 != NULL && strcmp(name, name2) == 0) {
                json = json2;
                used2 = true;
            }
        } else if (i == n && name1 != NULL && !used1) {
            name = name1;
            json = json1;
        } else if (i == n + 1 && name2 != NULL && !used2) {
            name = name2;
            json = json2;
        } else {
            continue;
        }
        if (json == NULL)
            continue;
        o += (size_t)snprintf(body_buf + o, sizeof(body_buf) - o, "%s\"%s\":%s", o > 1 ? "," : "",
                              name, json);
    }
    o += (size_t)snprintf(body_buf + o, sizeof(body_buf) - o, "}");
    assert_true(o < sizeof(body_buf));
    return body_buf;
}

static const char *build(const member *base, size_t n, const char *name, const char *json)
{
    return build2(base, n, name, json, NULL, NULL);
}

#define CHARGE(name, json)  build(charge_base, CHARGE_N, name, json)
#define RECEIPT(name, json) build(receipt_base, RECEIPT_N, name, json)

/* A JSON string literal of n copies of c. */
static const char *repeat_string(char c, size_t n)
{
    static char buf[1024];
    assert_true(n + 3 <= sizeof(buf));
    buf[0] = '"';
    memset(buf + 1, c, n);
    buf[n + 1] = '"';
    buf[n + 2] = '\0';
    return buf;
}

/* ---- checking outcomes ----------------------------------------------------------------------- */

static void parse(const char *json, sms_subject subject, const char *header, sms_parse *p)
{
    sms_event_parse(json, strlen(json), subject, header, &win, p);
}

static void expect_valid(const sms_parse *p, const char *json)
{
    if (p->verdict != SMS_VALID)
        fail_msg("%s: verdict %d reason %s field %s", json, (int)p->verdict,
                 sms_reason_name(p->reason) ? sms_reason_name(p->reason) : "-",
                 p->field ? p->field : "-");
    assert_int_equal(p->reason, SMS_REASON_NONE);
    assert_null(p->field);
}

static void expect_rejected(const sms_parse *p, sms_reason reason, const char *field,
                            const char *what)
{
    const char *got_field = p->field ? p->field : "(none)";
    const char *want_field = field ? field : "(none)";
    if (p->verdict != SMS_REJECTED || p->reason != reason || strcmp(got_field, want_field) != 0 ||
        (field == NULL) != (p->field == NULL))
        fail_msg("%s: verdict %d reason %s field %s, want rejected %s %s", what, (int)p->verdict,
                 sms_reason_name(p->reason) ? sms_reason_name(p->reason) : "-", got_field,
                 sms_reason_name(reason), want_field);
}

/* Parses json on subject (no header) and expects a rejection. */
static void check_reject(const char *json, sms_subject subject, sms_reason reason,
                         const char *field)
{
    sms_parse p;
    parse(json, subject, NULL, &p);
    expect_rejected(&p, reason, field, json);
    sms_parse_free(&p);
}

static void check_valid(const char *json, sms_subject subject, sms_parse *p)
{
    parse(json, subject, NULL, p);
    expect_valid(p, json);
}

/* ---- valid events ---------------------------------------------------------------------------- */

static void test_window(void **state)
{
    (void)state;
    assert_int_equal(NOW_SEC, utc(2026, 11, 20, 12, 0, 0));
    sms_window w = sms_window_at(NOW_NS, RETENTION);
    assert_int_equal(w.oldest_ns, NOW_NS - INT64_C(90) * 86400 * NS);
    assert_int_equal(w.newest_ns, NOW_NS + 300 * NS);
    assert_string_equal(sms_subject_name(SMS_SUBJECT_BILLING), "billing.events");
    assert_string_equal(sms_subject_name(SMS_SUBJECT_DLR), "sms.dlr.inbound");
    assert_null(sms_reason_name(SMS_REASON_NONE));
    assert_string_equal(sms_reason_name(SMS_REASON_INVALID_JSON), "invalid_json");
    assert_string_equal(sms_reason_name(SMS_REASON_NOT_AN_OBJECT), "not_an_object");
    assert_string_equal(sms_reason_name(SMS_REASON_MISSING_FIELD), "missing_field");
    assert_string_equal(sms_reason_name(SMS_REASON_INVALID_FIELD), "invalid_field");
    assert_string_equal(sms_reason_name(SMS_REASON_UNKNOWN_EVENT_TYPE), "unknown_event_type");
    assert_string_equal(sms_reason_name(SMS_REASON_TOO_OLD), "too_old");
    assert_string_equal(sms_reason_name(SMS_REASON_IN_FUTURE), "in_future");
    assert_null(sms_reason_name((sms_reason)99));
}

static void test_valid_charge(void **state)
{
    (void)state;
    sms_parse p;
    const char *json = CHARGE(NULL, NULL);
    check_valid(json, SMS_SUBJECT_BILLING, &p);
    const sms_event *ev = &p.ev;
    assert_string_equal(ev->event_id, "ev-1");
    assert_string_equal(ev->event_type, "billing.message.charged");
    assert_int_equal(ev->effect, SMS_EFFECT_CHARGE);
    assert_int_equal(ev->effect, 'C');
    assert_int_equal(ev->at_ns, utc(2026, 11, 20, 10, 15, 30) * NS + 123000000);
    assert_string_equal(ev->message_id, "msg-1");
    assert_string_equal(ev->account_id, UUID_LOWER); /* upper-case input stored lower-case */
    assert_string_equal(ev->operator_id, UUID_OP);
    assert_int_equal(ev->segments, 2);
    assert_string_equal(ev->cost, "0.045");
    assert_false(ev->has_error);
    assert_non_null(p.echo_id);
    assert_int_equal(p.echo_len, 4);
    assert_memory_equal(p.echo_id, "ev-1", 5);
    sms_parse_free(&p);
    assert_null(p.echo_id);
    assert_int_equal(p.echo_len, 0);

    /* cost as a number or a string, checked and kept as written */
    static const struct {
        const char *json, *want;
    } costs[] = {
        {"1.5", "1.5"},
        {"\"1.5\"", "1.5"},
        {"1.50", "1.50"},
        {"0", "0"},
        {"\"0\"", "0"},
        {"\"007\"", "007"},
        {"0.000001", "0.000001"},
        {"123456789012.123456", "123456789012.123456"},
        {"\"123456789012.123456\"", "123456789012.123456"},
        {"999999999999", "999999999999"},
        {" 12.25 ", "12.25"},
        {"\n1.5\t", "1.5"},
    };
    for (size_t i = 0; i < sizeof(costs) / sizeof(costs[0]); i++) {
        json = CHARGE("cost", costs[i].json);
        check_valid(json, SMS_SUBJECT_BILLING, &p);
        if (strcmp(p.ev.cost, costs[i].want) != 0)
            fail_msg("%s: cost [%s] want [%s]", json, p.ev.cost, costs[i].want);
        sms_parse_free(&p);
    }

    /* segments bounds */
    static const struct {
        const char *json;
        int want;
    } segs[] = {{"1", 1}, {"7", 7}, {"255", 255}, {" 12 ", 12}};
    for (size_t i = 0; i < sizeof(segs) / sizeof(segs[0]); i++) {
        json = CHARGE("segments", segs[i].json);
        check_valid(json, SMS_SUBJECT_BILLING, &p);
        assert_int_equal(p.ev.segments, segs[i].want);
        sms_parse_free(&p);
    }

    /* ids: 1 and 128 bytes, every printable ASCII byte class */
    json = CHARGE("event_id", repeat_string('x', 128));
    check_valid(json, SMS_SUBJECT_BILLING, &p);
    assert_int_equal(strlen(p.ev.event_id), 128);
    sms_parse_free(&p);
    json = CHARGE("message_id", repeat_string('~', 128));
    check_valid(json, SMS_SUBJECT_BILLING, &p);
    assert_int_equal(strlen(p.ev.message_id), 128);
    assert_int_equal(p.ev.message_id[127], '~');
    sms_parse_free(&p);
    json = build2(charge_base, CHARGE_N, "event_id", "\"!\"", "message_id", "\"a\\\"b\\\\c\\/{}\"");
    check_valid(json, SMS_SUBJECT_BILLING, &p);
    assert_string_equal(p.ev.event_id, "!");
    assert_string_equal(p.ev.message_id, "a\"b\\c/{}");
    sms_parse_free(&p);
    json = CHARGE("event_id", "\"\\u0041\\u007e\""); /* escapes decode to printable bytes */
    check_valid(json, SMS_SUBJECT_BILLING, &p);
    assert_string_equal(p.ev.event_id, "A~");
    sms_parse_free(&p);

    /* unknown members (even with odd values) are ignored; whitespace anywhere */
    json = CHARGE("extra", "{\"cost\":\"bad\",\"segments\":[0,{\"x\":\"]}\"}]}");
    check_valid(json, SMS_SUBJECT_BILLING, &p);
    assert_string_equal(p.ev.cost, "0.045");
    assert_int_equal(p.ev.segments, 2);
    sms_parse_free(&p);
    json =
        " \n{ \"event_id\" : \"ev-2\" , \"event_type\":\"billing.message.charged\",\r\n"
        "\"occurred_at\":\"2026-11-20T10:15:30Z\",\"message_id\":\"m\",\"account_id\":\"" UUID_LOWER
        "\",\"operator_id\":\"" UUID_OP "\",\"segments\" :\t3 ,\"cost\" : 2.5 } \n";
    check_valid(json, SMS_SUBJECT_BILLING, &p);
    assert_int_equal(p.ev.segments, 3);
    assert_string_equal(p.ev.cost, "2.5");
    sms_parse_free(&p);
}

/* Duplicate and escaped member names: the last occurrence counts, as jansson keeps it. */
static void test_charge_member_names(void **state)
{
    (void)state;
    sms_parse p;
    char json[2048];
    const char *base = CHARGE("cost", NULL);
    size_t n = strlen(base) - 1; /* without the closing brace */

    snprintf(json, sizeof(json), "%.*s,\"cost\":\"bad\",\"cost\":1.25}", (int)n, base);
    check_valid(json, SMS_SUBJECT_BILLING, &p);
    assert_string_equal(p.ev.cost, "1.25");
    sms_parse_free(&p);

    snprintf(json, sizeof(json), "%.*s,\"cost\":1.25,\"cost\":1.1234567}", (int)n, base);
    check_reject(json, SMS_SUBJECT_BILLING, SMS_REASON_INVALID_FIELD, "cost");

    snprintf(json, sizeof(json), "%.*s,\"cost\":\"1\",\"cost\":null}", (int)n, base);
    check_reject(json, SMS_SUBJECT_BILLING, SMS_REASON_MISSING_FIELD, "cost");

    /* "co\u0073t" is the member cost: its literal number text is found through the escape */
    snprintf(json, sizeof(json), "%.*s,\"co\\u0073t\":3.75}", (int)n, base);
    check_valid(json, SMS_SUBJECT_BILLING, &p);
    assert_string_equal(p.ev.cost, "3.75");
    sms_parse_free(&p);

    snprintf(json, sizeof(json), "%.*s,\"cost\":1.5,\"\\u0063ost\":4.5}", (int)n, base);
    check_valid(json, SMS_SUBJECT_BILLING, &p);
    assert_string_equal(p.ev.cost, "4.5");
    sms_parse_free(&p);

    snprintf(json, sizeof(json), "%.*s,\"co\\u0073t\":4.5,\"cost\":1.1234567}", (int)n, base);
    check_reject(json, SMS_SUBJECT_BILLING, SMS_REASON_INVALID_FIELD, "cost");

    /* member names are exact: "Cost" and "cost " are other members */
    snprintf(json, sizeof(json), "%.*s,\"Cost\":1.5,\"cost \":1.5}", (int)n, base);
    check_reject(json, SMS_SUBJECT_BILLING, SMS_REASON_MISSING_FIELD, "cost");

    /* a number member whose first occurrence is a string and last a valid number */
    base = CHARGE("segments", NULL);
    n = strlen(base) - 1;
    snprintf(json, sizeof(json), "%.*s,\"segments\":\"300\",\"segm\\u0065nts\":200}", (int)n, base);
    check_valid(json, SMS_SUBJECT_BILLING, &p);
    assert_int_equal(p.ev.segments, 200);
    sms_parse_free(&p);
    snprintf(json, sizeof(json), "%.*s,\"segments\":200,\"segments\":256}", (int)n, base);
    check_reject(json, SMS_SUBJECT_BILLING, SMS_REASON_INVALID_FIELD, "segments");
}

static void test_valid_receipts(void **state)
{
    (void)state;
    static const struct {
        const char *status;
        sms_effect effect;
        char letter;
    } statuses[] = {
        {"DELIVERED", SMS_EFFECT_DELIVERED, 'D'},  {"FAILED", SMS_EFFECT_FAILED, 'F'},
        {"REJECTED", SMS_EFFECT_FAILED, 'F'},      {"EXPIRED", SMS_EFFECT_FAILED, 'F'},
        {"UNDELIVERABLE", SMS_EFFECT_FAILED, 'F'}, {"ACCEPTED", SMS_EFFECT_NONFINAL, 'N'},
        {"ENROUTE", SMS_EFFECT_NONFINAL, 'N'},     {"UNKNOWN", SMS_EFFECT_NONFINAL, 'N'},
    };
    const int64_t submitted = utc(2026, 11, 20, 10, 15, 30) * NS + 123000000;
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        char status[32];
        snprintf(status, sizeof(status), "\"%s\"", statuses[i].status);
        const char *json = RECEIPT("status", status);
        sms_parse p;
        check_valid(json, SMS_SUBJECT_DLR, &p);
        assert_int_equal(p.ev.effect, statuses[i].effect);
        assert_int_equal((char)p.ev.effect, statuses[i].letter);
        assert_string_equal(p.ev.event_type, "sms.dlr.received");
        assert_string_equal(p.ev.event_id, "dlr-1");
        assert_string_equal(p.ev.message_id, "msg-1");
        assert_string_equal(p.ev.account_id, UUID_LOWER);
        assert_string_equal(p.ev.operator_id, UUID_OP);
        /* a receipt's submission time is submitted_at, not occurred_at */
        assert_int_equal(p.ev.at_ns, submitted);
        assert_false(p.ev.has_error);
        if (statuses[i].effect == SMS_EFFECT_DELIVERED) {
            assert_int_equal(p.ev.latency_ms, 1377); /* 31.500 - 30.123 */
            assert_int_equal(p.ev.sketch_bucket, sms_sketch_bucket(1377));
            assert_true(p.ev.sketch_bucket > 0);
        }
        sms_parse_free(&p);
    }
}

static void test_receipt_latency(void **state)
{
    (void)state;
    static const struct {
        const char *occurred, *submitted;
        int64_t latency;
    } cases[] = {
        /* floor: 1376.999999 ms */
        {"\"2026-11-20T10:15:31.377Z\"", "\"2026-11-20T10:15:30.000000001Z\"", 1376},
        {"\"2026-11-20T10:15:31.377000001Z\"", "\"2026-11-20T10:15:30Z\"", 1377},
        {"\"2026-11-20T10:15:30.000999999Z\"", "\"2026-11-20T10:15:30Z\"", 0},
        {"\"2026-11-20T10:15:30.001Z\"", "\"2026-11-20T10:15:30Z\"", 1},
        {"\"2026-11-20T10:15:30Z\"", "\"2026-11-20T10:15:30Z\"", 0},
        /* negative -> 0 */
        {"\"2026-11-20T10:15:29.999Z\"", "\"2026-11-20T10:15:30Z\"", 0},
        {"\"2020-01-01T00:00:00Z\"", "\"2026-11-20T10:15:30Z\"", 0},
        /* offsets on either side */
        {"\"2026-11-20T12:15:30.250+02:00\"", "\"2026-11-20T10:15:30Z\"", 250},
        {"\"2026-11-20T11:00:00Z\"", "\"2026-11-20T10:00:00Z\"", 3600000},
        /* occurred_at is not window-checked: a receipt may arrive long after submission */
        {"\"2027-01-01T00:00:00Z\"", "\"2026-11-20T12:00:00Z\"",
         (INT64_C(41) * 86400 + 12 * 3600) * 1000},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *json = build2(receipt_base, RECEIPT_N, "occurred_at", cases[i].occurred,
                                  "submitted_at", cases[i].submitted);
        sms_parse p;
        check_valid(json, SMS_SUBJECT_DLR, &p);
        if (p.ev.latency_ms != cases[i].latency)
            fail_msg("%s: latency %lld want %lld", json, (long long)p.ev.latency_ms,
                     (long long)cases[i].latency);
        assert_int_equal(p.ev.sketch_bucket, sms_sketch_bucket(cases[i].latency));
        if (cases[i].latency == 0)
            assert_int_equal(p.ev.sketch_bucket, -1);
        sms_parse_free(&p);
    }
}

static void test_receipt_error_code(void **state)
{
    (void)state;
    static const struct {
        const char *json; /* NULL: absent */
        bool has_error;
    } ok[] = {
        {NULL, false},
        {"null", false},
        {"\"\"", false},
        {"\" \"", false},
        {"\"\\t \\t\"", false},
        {"\"                                        \"", false}, /* 40 blanks: still blank */
        {"\"\\n\"", false},                                      /* API.md §2.2 blank */
        {"\"\\r\\n \\u00a0\\u3000\"", false},
        {"\"E42\"", true},
        {"\"0\"", true},
        {"\"!~\"", true},
        {"\"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345\"", true}, /* 32 bytes */
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        const char *json = RECEIPT("error_code", ok[i].json);
        sms_parse p;
        check_valid(json, SMS_SUBJECT_DLR, &p);
        if (p.ev.has_error != ok[i].has_error)
            fail_msg("%s: has_error %d", json, p.ev.has_error);
        sms_parse_free(&p);
    }
    /* has_error on every kind of receipt */
    const char *json =
        build2(receipt_base, RECEIPT_N, "status", "\"ENROUTE\"", "error_code", "\"E1\"");
    sms_parse p;
    check_valid(json, SMS_SUBJECT_DLR, &p);
    assert_true(p.ev.has_error);
    assert_int_equal(p.ev.effect, SMS_EFFECT_NONFINAL);
    sms_parse_free(&p);

    static const char *const bad[] = {
        "\"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456\"", /* 33 bytes */
        "5",
        "true",
        "[]",
        "{}",
        "\"E\\u0001\"",
        "\"E\\u0000\"",
        "\"E\\u007f\"",
        "\"\\u00e9\"",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        check_reject(RECEIPT("error_code", bad[i]), SMS_SUBJECT_DLR, SMS_REASON_INVALID_FIELD,
                     "error_code");
}

/* ---- rejections ------------------------------------------------------------------------------ */

static void test_invalid_json_and_not_object(void **state)
{
    (void)state;
    static const struct {
        const char *raw;
        size_t len;
    } invalid[] = {
        {BYTES("")},
        {BYTES("not json")},
        {BYTES("{\"event_id\":\"e-1\"")},           /* truncated */
        {BYTES("{\"event_id\":\"e-1\",}")},         /* trailing comma */
        {BYTES("{\"event_id\":\"\xff\"}")},         /* invalid UTF-8 */
        {BYTES("{\"event_id\":\"\xc3\x28\"}")},     /* invalid continuation */
        {BYTES("{\"event_id\":\"\xed\xa0\x80\"}")}, /* surrogate in UTF-8 */
        {BYTES("{\"event_id\":\"\\ud800\"}")},      /* lone surrogate escape */
        {BYTES("{\"a\":1}\0")},                     /* trailing NUL byte */
        {BYTES("{\"a\":\"x\0y\"}")},                /* raw NUL inside a string */
        {BYTES("{\"a\":1\0,\"b\":2}")},             /* raw NUL after a number (jansson skips it) */
        {BYTES("{\"a\":true\0}")},
        {BYTES("[1\0,2]")},
        {BYTES("{\"a\":1} {\"b\":2}")}, /* two values */
        {BYTES("\xef\xbb\xbf{}")},      /* byte-order mark */
        {BYTES("{'a':1}")},
        {BYTES("{\"a\":01}")},
    };
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        for (int s = SMS_SUBJECT_BILLING; s <= SMS_SUBJECT_DLR; s++) {
            sms_parse p;
            sms_event_parse(invalid[i].raw, invalid[i].len, (sms_subject)s, "hdr-1", &win, &p);
            expect_rejected(&p, SMS_REASON_INVALID_JSON, NULL, invalid[i].raw);
            assert_null(p.echo_id);
            sms_parse_free(&p);
        }
        sms_parse p;
        sms_event_parse_item(invalid[i].raw, invalid[i].len, &win, &p);
        expect_rejected(&p, SMS_REASON_INVALID_JSON, NULL, invalid[i].raw);
        assert_false(p.has_subject);
        sms_parse_free(&p);
    }
    /* a raw NUL byte in an otherwise valid charge: not JSON, whatever jansson makes of it */
    static const char nul_charge[] =
        "{\"cost\":1.5,\"event_id\":\"e\",\"event_type\":\"billing.message.charged\","
        "\"occurred_at\":\"2026-11-20T10:00:00Z\",\"message_id\":\"m\",\"account_id\":\"" UUID_LOWER
        "\",\"operator_id\":\"" UUID_OP "\",\"segments\":2\0,\"cost\":9.5}";
    sms_parse q;
    sms_event_parse(nul_charge, sizeof(nul_charge) - 1, SMS_SUBJECT_BILLING, NULL, &win, &q);
    expect_rejected(&q, SMS_REASON_INVALID_JSON, NULL, "charge with a raw NUL");
    sms_parse_free(&q);
    /* the length is respected: bytes after len are not part of the message */
    sms_parse p;
    const char *json = CHARGE(NULL, NULL);
    sms_event_parse(json, strlen(json) - 1, SMS_SUBJECT_BILLING, NULL, &win, &p);
    expect_rejected(&p, SMS_REASON_INVALID_JSON, NULL, "truncated by len");
    sms_parse_free(&p);

    static const char *const not_object[] = {
        "[]", "[{\"event_id\":\"e\"}]", "\"str\"", "42", "1.5", "-0", "true", "null", " \n[1] ",
    };
    for (size_t i = 0; i < sizeof(not_object) / sizeof(not_object[0]); i++) {
        for (int s = SMS_SUBJECT_BILLING; s <= SMS_SUBJECT_DLR; s++) {
            parse(not_object[i], (sms_subject)s, "hdr-1", &p);
            expect_rejected(&p, SMS_REASON_NOT_AN_OBJECT, NULL, not_object[i]);
            assert_null(p.echo_id);
            sms_parse_free(&p);
        }
        sms_event_parse_item(not_object[i], strlen(not_object[i]), &win, &p);
        expect_rejected(&p, SMS_REASON_NOT_AN_OBJECT, NULL, not_object[i]);
        sms_parse_free(&p);
    }
}

/* Every required member missing (absent or null) in turn, and the first one named. */
static void check_missing(const member *base, size_t n, sms_subject subject)
{
    for (size_t i = 0; i < n; i++) {
        check_reject(build(base, n, base[i].name, NULL), subject, SMS_REASON_MISSING_FIELD,
                     base[i].name);
        check_reject(build(base, n, base[i].name, "null"), subject, SMS_REASON_MISSING_FIELD,
                     base[i].name);
        /* with every later member missing too, the first one is named */
        for (size_t j = i + 1; j < n; j++)
            check_reject(build2(base, n, base[i].name, NULL, base[j].name, "null"), subject,
                         SMS_REASON_MISSING_FIELD, base[i].name);
    }
    /* a body with only the first members: the next one is named */
    char json[2048];
    size_t o = (size_t)snprintf(json, sizeof(json), "{");
    for (size_t i = 0; i < n; i++) {
        snprintf(json + o, sizeof(json) - o, "}");
        check_reject(json, subject, SMS_REASON_MISSING_FIELD, base[i].name);
        o += (size_t)snprintf(json + o, sizeof(json) - o, "%s\"%s\":%s", i ? "," : "", base[i].name,
                              base[i].json);
    }
}

static void test_missing_fields(void **state)
{
    (void)state;
    check_missing(charge_base, CHARGE_N, SMS_SUBJECT_BILLING);
    check_missing(receipt_base, RECEIPT_N, SMS_SUBJECT_DLR);
    /* a missing event_type is missing_field on either subject */
    check_reject("{\"event_id\":\"e-1\"}", SMS_SUBJECT_BILLING, SMS_REASON_MISSING_FIELD,
                 "event_type");
    check_reject("{\"event_id\":\"e-1\"}", SMS_SUBJECT_DLR, SMS_REASON_MISSING_FIELD, "event_type");
    check_reject("{}", SMS_SUBJECT_DLR, SMS_REASON_MISSING_FIELD, "event_id");
}

struct invalid_case {
    const char *name;
    const char *json;
};

static const char *long_id(void)
{
    return repeat_string('x', 129);
}

/* Invalid values of the common members (checked on both kinds of event). */
static const struct invalid_case common_invalid[] = {
    {"event_id", "5"},
    {"event_id", "true"},
    {"event_id", "[\"e\"]"},
    {"event_id", "{}"},
    {"event_id", "\"\""},
    {"event_id", "\"a b\""},
    {"event_id", "\" e\""},
    {"event_id", "\"a\\u0000b\""},
    {"event_id", "\"a\\tb\""},
    {"event_id", "\"a\\u007fb\""},
    {"event_id", "\"caf\\u00e9\""},
    {"event_id", "\"caf\xc3\xa9\""},
    {"event_type", "5"},
    {"event_type", "[]"},
    {"occurred_at", "1795176000"},
    {"occurred_at", "\"2026-11-20T10:15:30\""},             /* no offset */
    {"occurred_at", "\"2026-11-20T10:15:30.1234567890Z\""}, /* 10 fraction digits */
    {"occurred_at", "\"2026-02-30T10:15:30Z\""},            /* Feb 30 */
    {"occurred_at", "\"2026-11-20T24:00:00Z\""},            /* hour 24 */
    {"occurred_at", "\"2026-11-20T10:60:00Z\""},
    {"occurred_at", "\"2026-11-20T10:15:60Z\""},
    {"occurred_at", "\"2026-11-31T10:15:30Z\""},
    {"occurred_at", "\"2026-13-20T10:15:30Z\""},
    {"occurred_at", "\"2026-11-20 10:15:30Z\""},
    {"occurred_at", "\"2026-11-20T10:15:30Z \""},
    {"occurred_at", "\"2026-11-20T10:15:30.Z\""},
    {"occurred_at", "\"2026-11-20T10:15:30+0200\""},
    {"occurred_at", "\"2026-11-20T10:15:30+24:00\""},
    {"occurred_at", "\"2026-11-20\""},
    {"occurred_at", "\"\""},
    {"message_id", "5"},
    {"message_id", "\"\""},
    {"message_id", "\"m 1\""},
    {"message_id", "\"m\\u0000\""},
    {"account_id", "5"},
    {"account_id", "\"not-a-uuid\""},
    {"account_id", "\"6f1c2a3b4d5e4f608a7b9c0d1e2f3a4b\""},
    {"account_id", "\"{6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b}\""},
    {"account_id", "\"6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4\""},
    {"account_id", "\"6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4bb\""},
    {"account_id", "\"6g1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b\""},
    {"account_id", "\"6f1c2a3b4-d5e-4f60-8a7b-9c0d1e2f3a4b\""},
    {"account_id", "\" 6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4\""},
    {"operator_id", "\"\""},
    {"operator_id", "[]"},
    {"operator_id", "\"0a1b2c3d_4e5f_4a6b_8c7d_8e9fa0b1c2d3\""},
};

static const struct invalid_case charge_invalid[] = {
    {"segments", "0"},
    {"segments", "256"},
    {"segments", "1000"},
    {"segments", "2.0"},
    {"segments", "\"2\""},
    {"segments", "1e2"},
    {"segments", "1E0"},
    {"segments", "-1"},
    {"segments", "1.5"},
    {"segments", "true"},
    {"segments", "[2]"},
    {"segments", "{}"},
    {"cost", "1.1234567"},
    {"cost", "\"1.1234567\""},
    {"cost", "1234567890123"},
    {"cost", "\"1234567890123\""},
    {"cost", "1234567890123.5"},
    {"cost", "\"-1\""},
    {"cost", "-1"},
    {"cost", "-0"},
    {"cost", "\"1.\""},
    {"cost", "\".5\""},
    {"cost", "\"1e2\""},
    {"cost", "1e2"},
    {"cost", "1E-2"},
    {"cost", "\"\""},
    {"cost", "\" 1\""},
    {"cost", "\"1 \""},
    {"cost", "\"1,5\""},
    {"cost", "\"+1\""},
    {"cost", "\"0x1\""},
    {"cost", "\"1\\u0000\""},
    {"cost", "\"\\uff11\""}, /* fullwidth digit one */
    {"cost", "true"},
    {"cost", "{}"},
    {"cost", "[1]"},
};

static const struct invalid_case receipt_invalid[] = {
    {"status", "\"delivered\""},
    {"status", "\"Delivered\""},
    {"status", "\" DELIVERED\""},
    {"status", "\"DELIVERED \""},
    {"status", "\"DELIVERED\\u0000\""},
    {"status", "\"DELIVER\""},
    {"status", "\"SENT\""},
    {"status", "\"\""},
    {"status", "5"},
    {"submitted_at", "5"},
    {"submitted_at", "\"2026-11-20T10:15:30\""},
    {"submitted_at", "\"2026-11-20T10:15:30.1234567890Z\""},
    {"submitted_at", "\"2026-02-30T10:15:30Z\""},
    {"submitted_at", "\"2026-11-20T24:00:00Z\""},
};

static void test_invalid_fields(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(common_invalid) / sizeof(common_invalid[0]); i++) {
        const struct invalid_case *c = &common_invalid[i];
        check_reject(CHARGE(c->name, c->json), SMS_SUBJECT_BILLING, SMS_REASON_INVALID_FIELD,
                     c->name);
        check_reject(RECEIPT(c->name, c->json), SMS_SUBJECT_DLR, SMS_REASON_INVALID_FIELD, c->name);
    }
    for (size_t i = 0; i < sizeof(charge_invalid) / sizeof(charge_invalid[0]); i++)
        check_reject(CHARGE(charge_invalid[i].name, charge_invalid[i].json), SMS_SUBJECT_BILLING,
                     SMS_REASON_INVALID_FIELD, charge_invalid[i].name);
    for (size_t i = 0; i < sizeof(receipt_invalid) / sizeof(receipt_invalid[0]); i++)
        check_reject(RECEIPT(receipt_invalid[i].name, receipt_invalid[i].json), SMS_SUBJECT_DLR,
                     SMS_REASON_INVALID_FIELD, receipt_invalid[i].name);
    /* 129-byte ids */
    check_reject(CHARGE("event_id", long_id()), SMS_SUBJECT_BILLING, SMS_REASON_INVALID_FIELD,
                 "event_id");
    check_reject(RECEIPT("message_id", long_id()), SMS_SUBJECT_DLR, SMS_REASON_INVALID_FIELD,
                 "message_id");
    /* the charge's own members are not checked on receipts and vice versa */
    sms_parse p;
    check_valid(build2(receipt_base, RECEIPT_N, "segments", "0", "cost", "\"x\""), SMS_SUBJECT_DLR,
                &p);
    sms_parse_free(&p);
    check_valid(build2(charge_base, CHARGE_N, "status", "\"x\"", "error_code", "5"),
                SMS_SUBJECT_BILLING, &p);
    assert_false(p.ev.has_error);
    sms_parse_free(&p);
}

/* One bad value per member: two bad members name the first in the §2.2 order. */
static const char *bad_value(const char *name)
{
    static const struct invalid_case bad[] = {
        {"event_id", "\"a b\""},    {"event_type", "5"},
        {"occurred_at", "\"x\""},   {"message_id", "\"\""},
        {"account_id", "\"nope\""}, {"operator_id", "\"nope\""},
        {"segments", "0"},          {"cost", "\"-1\""},
        {"status", "\"sent\""},     {"submitted_at", "\"2026\""},
        {"error_code", "5"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (strcmp(bad[i].name, name) == 0)
            return bad[i].json;
    }
    fail_msg("no bad value for %s", name);
    return NULL;
}

static void check_first_wins(const member *base, size_t n, sms_subject subject)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t j = i + 1; j < n; j++) {
            const char *a = base[i].name, *b = base[j].name;
            check_reject(build2(base, n, a, bad_value(a), b, bad_value(b)), subject,
                         SMS_REASON_INVALID_FIELD, a);
            check_reject(build2(base, n, a, bad_value(a), b, NULL), subject,
                         SMS_REASON_INVALID_FIELD, a);
            check_reject(build2(base, n, a, "null", b, bad_value(b)), subject,
                         SMS_REASON_MISSING_FIELD, a);
        }
    }
}

static void test_first_offending_member(void **state)
{
    (void)state;
    check_first_wins(charge_base, CHARGE_N, SMS_SUBJECT_BILLING);
    check_first_wins(receipt_base, RECEIPT_N, SMS_SUBJECT_DLR);
    /* error_code comes after every required receipt member */
    for (size_t i = 0; i < RECEIPT_N; i++) {
        const char *a = receipt_base[i].name;
        check_reject(build(receipt_base, RECEIPT_N, a, bad_value(a)), SMS_SUBJECT_DLR,
                     SMS_REASON_INVALID_FIELD, a);
        char json[4096];
        const char *body = build(receipt_base, RECEIPT_N, a, bad_value(a));
        snprintf(json, sizeof(json), "%.*s,\"error_code\":5}", (int)strlen(body) - 1, body);
        check_reject(json, SMS_SUBJECT_DLR, SMS_REASON_INVALID_FIELD, a);
    }
    /* member order in the document does not matter, only the order of the rules */
    check_reject("{\"cost\":\"-1\",\"segments\":0,\"operator_id\":1,\"account_id\":1,"
                 "\"message_id\":1,\"occurred_at\":1,\"event_type\":\"billing.message.charged\","
                 "\"event_id\":\"e\"}",
                 SMS_SUBJECT_BILLING, SMS_REASON_INVALID_FIELD, "occurred_at");
}

static void test_event_types(void **state)
{
    (void)state;
    sms_parse p;
    /* on sms.dlr.inbound, any other type is unknown_event_type, even billing's charge */
    static const char *const dlr_unknown[] = {
        "\"billing.message.charged\"",
        "\"sms.dlr.final\"",
        "\"SMS.DLR.RECEIVED\"",
        "\"sms.dlr.received \"",
        "\"\"",
        "\"sms.dlr.received\\u0000\"",
    };
    for (size_t i = 0; i < sizeof(dlr_unknown) / sizeof(dlr_unknown[0]); i++) {
        check_reject(RECEIPT("event_type", dlr_unknown[i]), SMS_SUBJECT_DLR,
                     SMS_REASON_UNKNOWN_EVENT_TYPE, "event_type");
        /* the remaining members are not checked for an unknown type */
        check_reject(
            build2(receipt_base, RECEIPT_N, "event_type", dlr_unknown[i], "occurred_at", NULL),
            SMS_SUBJECT_DLR, SMS_REASON_UNKNOWN_EVENT_TYPE, "event_type");
    }
    /* on billing.events, any other type is ignored, whatever the other members hold */
    static const char *const billing_other[] = {
        "\"billing.invoice.created\"",  "\"sms.dlr.received\"",
        "\"BILLING.MESSAGE.CHARGED\"",  "\"\"",
        "\"billing.message.charged \"",
    };
    for (size_t i = 0; i < sizeof(billing_other) / sizeof(billing_other[0]); i++) {
        const char *json = CHARGE("event_type", billing_other[i]);
        parse(json, SMS_SUBJECT_BILLING, NULL, &p);
        if (p.verdict != SMS_IGNORED)
            fail_msg("%s: verdict %d, want ignored", json, (int)p.verdict);
        assert_int_equal(p.reason, SMS_REASON_NONE);
        assert_null(p.field);
        assert_non_null(p.echo_id);
        sms_parse_free(&p);
        json = build2(charge_base, CHARGE_N, "event_type", billing_other[i], "segments", "0");
        parse(json, SMS_SUBJECT_BILLING, NULL, &p);
        assert_int_equal(p.verdict, SMS_IGNORED);
        sms_parse_free(&p);
        json = build2(receipt_base, RECEIPT_N, "event_type", billing_other[i], "occurred_at",
                      "\"1999-01-01T00:00:00Z\"");
        parse(json, SMS_SUBJECT_BILLING, NULL, &p);
        assert_int_equal(p.verdict, SMS_IGNORED);
        sms_parse_free(&p);
    }
    parse("{\"event_id\":\"e\",\"event_type\":\"billing.refund\"}", SMS_SUBJECT_BILLING, NULL, &p);
    assert_int_equal(p.verdict, SMS_IGNORED);
    sms_parse_free(&p);
    /* event_id is checked before the type */
    check_reject("{\"event_type\":\"billing.refund\"}", SMS_SUBJECT_BILLING,
                 SMS_REASON_MISSING_FIELD, "event_id");
    check_reject("{\"event_id\":\"a b\",\"event_type\":\"billing.refund\"}", SMS_SUBJECT_BILLING,
                 SMS_REASON_INVALID_FIELD, "event_id");
    /* a non-string type is invalid on both subjects */
    check_reject(CHARGE("event_type", "1"), SMS_SUBJECT_BILLING, SMS_REASON_INVALID_FIELD,
                 "event_type");
    /* a receipt body sent to billing.events and a charge sent to sms.dlr.inbound */
    parse(RECEIPT(NULL, NULL), SMS_SUBJECT_BILLING, NULL, &p);
    assert_int_equal(p.verdict, SMS_IGNORED);
    sms_parse_free(&p);
    check_reject(CHARGE(NULL, NULL), SMS_SUBJECT_DLR, SMS_REASON_UNKNOWN_EVENT_TYPE, "event_type");
}

static void test_time_window(void **state)
{
    (void)state;
    static const struct {
        const char *at;
        sms_reason reason; /* NONE: valid */
    } cases[] = {
        {"\"2026-08-22T12:00:00Z\"", SMS_REASON_NONE}, /* exactly now - 90 days */
        {"\"2026-08-22T11:59:59.999999999Z\"", SMS_REASON_TOO_OLD},
        {"\"2026-08-22T14:00:00+02:00\"", SMS_REASON_NONE},
        {"\"2026-08-22T13:59:59.999+02:00\"", SMS_REASON_TOO_OLD},
        {"\"2026-08-22T11:59:59-00:01\"", SMS_REASON_NONE},
        {"\"2026-01-01T00:00:00Z\"", SMS_REASON_TOO_OLD},
        {"\"1970-01-01T00:00:00Z\"", SMS_REASON_TOO_OLD},
        {"\"0001-01-01T00:00:00Z\"", SMS_REASON_TOO_OLD},
        {"\"2026-11-20T12:00:00Z\"", SMS_REASON_NONE},
        {"\"2026-11-20T12:05:00Z\"", SMS_REASON_NONE}, /* exactly 5 minutes ahead */
        {"\"2026-11-20T12:05:00.000000001Z\"", SMS_REASON_IN_FUTURE},
        {"\"2026-11-20T12:05:01Z\"", SMS_REASON_IN_FUTURE},
        {"\"2026-11-20T14:05:00+02:00\"", SMS_REASON_NONE},
        {"\"2026-11-20T14:05:00.000000001+02:00\"", SMS_REASON_IN_FUTURE},
        {"\"2026-11-20T07:05:00.1-05:00\"", SMS_REASON_IN_FUTURE},
        {"\"2026-11-21T00:00:00Z\"", SMS_REASON_IN_FUTURE},
        {"\"9999-12-31T23:59:59.999999999Z\"", SMS_REASON_IN_FUTURE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sms_parse p;
        const char *json = CHARGE("occurred_at", cases[i].at);
        if (cases[i].reason == SMS_REASON_NONE) {
            check_valid(json, SMS_SUBJECT_BILLING, &p);
            sms_parse_free(&p);
        } else {
            check_reject(json, SMS_SUBJECT_BILLING, cases[i].reason, "occurred_at");
        }
        /* receipts: the window applies to submitted_at, and names it */
        json = RECEIPT("submitted_at", cases[i].at);
        if (cases[i].reason == SMS_REASON_NONE) {
            check_valid(json, SMS_SUBJECT_DLR, &p);
            sms_parse_free(&p);
        } else {
            check_reject(json, SMS_SUBJECT_DLR, cases[i].reason, "submitted_at");
        }
        /* ... and not to occurred_at */
        json = RECEIPT("occurred_at", cases[i].at);
        check_valid(json, SMS_SUBJECT_DLR, &p);
        sms_parse_free(&p);
    }
    /* the window is checked last: a bad member wins over the submission time */
    check_reject(
        build2(charge_base, CHARGE_N, "occurred_at", "\"2020-01-01T00:00:00Z\"", "cost", "\"-1\""),
        SMS_SUBJECT_BILLING, SMS_REASON_INVALID_FIELD, "cost");
    check_reject(
        build2(charge_base, CHARGE_N, "occurred_at", "\"2030-01-01T00:00:00Z\"", "segments", NULL),
        SMS_SUBJECT_BILLING, SMS_REASON_MISSING_FIELD, "segments");
    check_reject(build2(receipt_base, RECEIPT_N, "submitted_at", "\"2020-01-01T00:00:00Z\"",
                        "error_code", "5"),
                 SMS_SUBJECT_DLR, SMS_REASON_INVALID_FIELD, "error_code");
    /* another window: a retention of 1 day */
    sms_window one = sms_window_at(NOW_NS, 1);
    sms_parse p;
    const char *json = CHARGE("occurred_at", "\"2026-11-19T11:59:59Z\"");
    sms_event_parse(json, strlen(json), SMS_SUBJECT_BILLING, NULL, &one, &p);
    expect_rejected(&p, SMS_REASON_TOO_OLD, "occurred_at", json);
    sms_parse_free(&p);
    json = CHARGE("occurred_at", "\"2026-11-19T12:00:00Z\"");
    sms_event_parse(json, strlen(json), SMS_SUBJECT_BILLING, NULL, &one, &p);
    expect_valid(&p, json);
    sms_parse_free(&p);
}

static void test_header_id(void **state)
{
    (void)state;
    sms_parse p;
    /* missing or null event_id: the Nats-Msg-Id header is the event_id */
    static const char *const absent[] = {NULL, "null"};
    for (size_t i = 0; i < 2; i++) {
        const char *json = CHARGE("event_id", absent[i]);
        parse(json, SMS_SUBJECT_BILLING, "hdr-1", &p);
        expect_valid(&p, json);
        assert_string_equal(p.ev.event_id, "hdr-1");
        assert_null(p.echo_id);
        sms_parse_free(&p);
        json = RECEIPT("event_id", absent[i]);
        parse(json, SMS_SUBJECT_DLR, "H~!", &p);
        expect_valid(&p, json);
        assert_string_equal(p.ev.event_id, "H~!");
        sms_parse_free(&p);
        /* ignored events too */
        json = build2(charge_base, CHARGE_N, "event_id", absent[i], "event_type", "\"other\"");
        parse(json, SMS_SUBJECT_BILLING, "hdr-2", &p);
        assert_int_equal(p.verdict, SMS_IGNORED);
        sms_parse_free(&p);
    }
    /* 128 bytes is fine */
    char hdr[130];
    memset(hdr, 'h', 128);
    hdr[128] = '\0';
    parse(CHARGE("event_id", NULL), SMS_SUBJECT_BILLING, hdr, &p);
    expect_valid(&p, "128-byte header");
    assert_string_equal(p.ev.event_id, hdr);
    sms_parse_free(&p);
    /* the body's event_id wins over the header, valid or not */
    parse(CHARGE(NULL, NULL), SMS_SUBJECT_BILLING, "hdr-1", &p);
    expect_valid(&p, "body and header");
    assert_string_equal(p.ev.event_id, "ev-1");
    sms_parse_free(&p);
    parse(CHARGE(NULL, NULL), SMS_SUBJECT_BILLING, "bad header", &p);
    expect_valid(&p, "body and a bad header");
    assert_string_equal(p.ev.event_id, "ev-1");
    sms_parse_free(&p);
    parse(CHARGE("event_id", "\"a b\""), SMS_SUBJECT_BILLING, "hdr-1", &p);
    expect_rejected(&p, SMS_REASON_INVALID_FIELD, "event_id", "bad body id with a header");
    sms_parse_free(&p);
    parse(CHARGE("event_id", "7"), SMS_SUBJECT_BILLING, "hdr-1", &p);
    expect_rejected(&p, SMS_REASON_INVALID_FIELD, "event_id", "number id with a header");
    sms_parse_free(&p);
    /* an invalid header id, when it is used, is invalid_field event_id */
    hdr[128] = 'h';
    hdr[129] = '\0';
    static const char *bad_headers[] = {"", "a b", "tab\tid", "caf\xc3\xa9", "\x7f", NULL};
    bad_headers[5] = hdr;
    for (size_t i = 0; i < sizeof(bad_headers) / sizeof(bad_headers[0]); i++) {
        parse(CHARGE("event_id", NULL), SMS_SUBJECT_BILLING, bad_headers[i], &p);
        expect_rejected(&p, SMS_REASON_INVALID_FIELD, "event_id", bad_headers[i]);
        assert_int_equal(p.ev.event_id[0], '\0');
        sms_parse_free(&p);
        parse(RECEIPT("event_id", "null"), SMS_SUBJECT_DLR, bad_headers[i], &p);
        expect_rejected(&p, SMS_REASON_INVALID_FIELD, "event_id", bad_headers[i]);
        sms_parse_free(&p);
    }
    /* no header: missing */
    parse(CHARGE("event_id", NULL), SMS_SUBJECT_BILLING, NULL, &p);
    expect_rejected(&p, SMS_REASON_MISSING_FIELD, "event_id", "no id, no header");
    sms_parse_free(&p);
}

/* ---- HTTP items ------------------------------------------------------------------------------ */

static void item(const char *json, sms_parse *p)
{
    sms_event_parse_item(json, strlen(json), &win, p);
}

static void test_items(void **state)
{
    (void)state;
    sms_parse p;
    char json[4096];
    const char *body = CHARGE(NULL, NULL);

    /* subject + a valid charge / receipt */
    snprintf(json, sizeof(json), "{\"subject\":\"billing.events\",%s", body + 1);
    item(json, &p);
    expect_valid(&p, json);
    assert_true(p.has_subject);
    assert_int_equal(p.subject, SMS_SUBJECT_BILLING);
    assert_int_equal(p.ev.effect, SMS_EFFECT_CHARGE);
    assert_string_equal(p.ev.account_id, UUID_LOWER);
    assert_string_equal(p.echo_id, "ev-1");
    sms_parse_free(&p);

    body = RECEIPT(NULL, NULL);
    snprintf(json, sizeof(json), "%.*s,\"subject\":\"sms.dlr.inbound\"}", (int)strlen(body) - 1,
             body);
    item(json, &p);
    expect_valid(&p, json);
    assert_true(p.has_subject);
    assert_int_equal(p.subject, SMS_SUBJECT_DLR);
    assert_int_equal(p.ev.effect, SMS_EFFECT_DELIVERED);
    sms_parse_free(&p);

    /* the subject decides the rules: a receipt on billing.events is ignored */
    snprintf(json, sizeof(json), "{\"subject\":\"billing.events\",%s", body + 1);
    item(json, &p);
    assert_int_equal(p.verdict, SMS_IGNORED);
    assert_true(p.has_subject);
    assert_int_equal(p.subject, SMS_SUBJECT_BILLING);
    sms_parse_free(&p);
    body = CHARGE(NULL, NULL);
    snprintf(json, sizeof(json), "{\"subject\":\"sms.dlr.inbound\",%s", body + 1);
    item(json, &p);
    expect_rejected(&p, SMS_REASON_UNKNOWN_EVENT_TYPE, "event_type", json);
    assert_true(p.has_subject);
    assert_int_equal(p.subject, SMS_SUBJECT_DLR);
    sms_parse_free(&p);

    /* subject missing or null: missing_field; anything else: invalid_field */
    item(body, &p);
    expect_rejected(&p, SMS_REASON_MISSING_FIELD, "subject", body);
    assert_false(p.has_subject);
    assert_string_equal(p.echo_id, "ev-1");
    sms_parse_free(&p);
    static const char *const bad_subjects[] = {
        "null",
        "\"x\"",
        "5",
        "true",
        "[\"billing.events\"]",
        "\"BILLING.EVENTS\"",
        "\"billing.events \"",
        "\"\"",
        "\"billing.events\\u0000\"",
        "\"sms.dlr.received\"",
    };
    for (size_t i = 0; i < sizeof(bad_subjects) / sizeof(bad_subjects[0]); i++) {
        snprintf(json, sizeof(json), "{\"subject\":%s,%s", bad_subjects[i], body + 1);
        item(json, &p);
        expect_rejected(&p, i == 0 ? SMS_REASON_MISSING_FIELD : SMS_REASON_INVALID_FIELD, "subject",
                        json);
        assert_false(p.has_subject);
        sms_parse_free(&p);
    }
    /* the subject is checked before every member */
    item("{\"subject\":\"x\"}", &p);
    expect_rejected(&p, SMS_REASON_INVALID_FIELD, "subject", "subject only");
    sms_parse_free(&p);
    item("{}", &p);
    expect_rejected(&p, SMS_REASON_MISSING_FIELD, "subject", "{}");
    sms_parse_free(&p);
    /* Nats-Msg-Id does not exist over HTTP: a missing event_id is missing */
    item("{\"subject\":\"billing.events\"}", &p);
    expect_rejected(&p, SMS_REASON_MISSING_FIELD, "event_id", "no event_id");
    assert_true(p.has_subject);
    assert_null(p.echo_id);
    sms_parse_free(&p);
    /* the last subject counts */
    snprintf(json, sizeof(json), "{\"subject\":\"x\",\"subject\":\"billing.events\",%s", body + 1);
    item(json, &p);
    expect_valid(&p, json);
    sms_parse_free(&p);
}

static void test_item_echo_id(void **state)
{
    (void)state;
    sms_parse p;
    /* a string event_id is echoed even when it is invalid or the item is rejected earlier */
    static const struct {
        const char *json;
        const char *echo;
        size_t echo_len;
    } cases[] = {
        {"{\"event_id\":\"e-1\"}", "e-1", 3},
        {"{\"event_id\":\"a b\",\"subject\":\"billing.events\"}", "a b", 3},
        {"{\"event_id\":\"\"}", "", 0},
        {"{\"event_id\":\"a\\u0000b\",\"subject\":\"sms.dlr.inbound\"}", "a\0b", 3},
        {"{\"event_id\":\"caf\\u00e9\"}", "caf\xc3\xa9", 5},
        {"{\"event_id\":\"x\",\"event_id\":\"y\"}", "y", 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        item(cases[i].json, &p);
        assert_int_equal(p.verdict, SMS_REJECTED);
        if (p.echo_id == NULL || p.echo_len != cases[i].echo_len ||
            memcmp(p.echo_id, cases[i].echo, cases[i].echo_len + 1) != 0)
            fail_msg("%s: echo_id wrong (len %zu)", cases[i].json, p.echo_len);
        sms_parse_free(&p);
        /* the NATS parser echoes the same way */
        parse(cases[i].json, SMS_SUBJECT_DLR, NULL, &p);
        assert_non_null(p.echo_id);
        assert_int_equal(p.echo_len, cases[i].echo_len);
        sms_parse_free(&p);
    }
    /* event_id that is not a string: no echo */
    static const char *const none[] = {
        "{\"event_id\":5,\"subject\":\"billing.events\"}",
        "{\"event_id\":null}",
        "{\"event_id\":[\"e\"]}",
        "{\"subject\":\"billing.events\"}",
        "{\"event_id\":\"x\",\"event_id\":1}",
    };
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
        item(none[i], &p);
        assert_int_equal(p.verdict, SMS_REJECTED);
        if (p.echo_id != NULL || p.echo_len != 0)
            fail_msg("%s: echo_id set", none[i]);
        sms_parse_free(&p);
    }
    /* sms_parse_free twice is harmless */
    item("{\"event_id\":\"e\"}", &p);
    sms_parse_free(&p);
    sms_parse_free(&p);
    assert_null(p.echo_id);
}

/* ---- sms_time_parse -------------------------------------------------------------------------- */

static void test_time_parse(void **state)
{
    (void)state;
    const int64_t base = utc(2026, 11, 20, 10, 15, 30) * NS;
    static const struct {
        const char *s;
        int64_t delta_ns; /* from 2026-11-20T10:15:30Z */
    } ok[] = {
        {"2026-11-20T10:15:30Z", 0},
        {"2026-11-20t10:15:30z", 0},
        {"2026-11-20T10:15:30z", 0},
        {"2026-11-20t10:15:30Z", 0},
        {"2026-11-20T12:15:30+02:00", 0},
        {"2026-11-20T04:45:30-05:30", 0},
        {"2026-11-20T10:15:30+00:00", 0},
        {"2026-11-20T10:15:30-00:00", 0},
        {"2026-11-21T00:15:30+14:00", 0},
        {"2026-11-20T10:15:30.1Z", 100000000},
        {"2026-11-20T10:15:30.12Z", 120000000},
        {"2026-11-20T10:15:30.123Z", 123000000},
        {"2026-11-20T10:15:30.1234Z", 123400000},
        {"2026-11-20T10:15:30.12345Z", 123450000},
        {"2026-11-20T10:15:30.123456Z", 123456000},
        {"2026-11-20T10:15:30.1234567Z", 123456700},
        {"2026-11-20T10:15:30.12345678Z", 123456780},
        {"2026-11-20T10:15:30.123456789Z", 123456789},
        {"2026-11-20T10:15:30.000000001Z", 1},
        {"2026-11-20T10:15:30.999999999Z", 999999999},
        {"2026-11-20T12:15:30.5+02:00", 500000000},
        {"2026-11-20T10:15:31Z", NS},
        {"2026-11-20T10:15:29Z", -NS},
        {"2026-11-20T10:15:30+23:59", -(23 * 3600 + 59 * 60) * NS},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int64_t ns = 42;
        int rc = sms_time_parse(ok[i].s, strlen(ok[i].s), &ns);
        if (rc != 0 || ns != base + ok[i].delta_ns)
            fail_msg("%s: rc %d ns %lld want %lld", ok[i].s, rc, (long long)ns,
                     (long long)(base + ok[i].delta_ns));
    }
    /* +02:00 equals the Z time minus 2 hours */
    int64_t z, plus;
    assert_int_equal(sms_time_parse(BYTES("2026-11-20T12:15:30Z"), &z), 0);
    assert_int_equal(sms_time_parse(BYTES("2026-11-20T12:15:30+02:00"), &plus), 0);
    assert_int_equal(plus, z - 2 * 3600 * NS);
    /* other dates, before 1970 too */
    static const struct {
        const char *s;
        int64_t ns;
    } dates[] = {
        {"1970-01-01T00:00:00Z", 0},
        {"1969-12-31T23:59:59.5Z", -500000000},
        {"1970-01-01T01:00:00+01:00", 0},
        {"2024-02-29T00:00:00Z", INT64_C(1709164800) * NS},
        {"2000-02-29T12:00:00Z", INT64_C(951825600) * NS},
        {"2026-12-31T23:59:59Z", INT64_C(1798761599) * NS},
    };
    for (size_t i = 0; i < sizeof(dates) / sizeof(dates[0]); i++) {
        int64_t ns = 42;
        int rc = sms_time_parse(dates[i].s, strlen(dates[i].s), &ns);
        if (rc != 0 || ns != dates[i].ns)
            fail_msg("%s: rc %d ns %lld want %lld", dates[i].s, rc, (long long)ns,
                     (long long)dates[i].ns);
    }
    static const char *const bad[] = {
        "",
        "2026-11-20T10:15:30",
        "2026-11-20T10:15:30.123",
        "2026-11-20T10:15:30Z ",
        " 2026-11-20T10:15:30Z",
        "2026-11-20T10:15:30Zx",
        "2026-11-20T10:15:30ZZ",
        "2026-11-20T10:15:30+02:00x",
        "2026-11-20T10:15:30+02:00Z",
        "2026-11-20T10:15:30.1234567890Z",
        "2026-11-20T10:15:30.Z",
        "2026-11-20T10:15:30,5Z",
        "2026-11-20T10:15:30+0200",
        "2026-11-20T10:15:30+02",
        "2026-11-20T10:15:30+2:00",
        "2026-11-20T10:15:30+02:0",
        "2026-11-20T10:15:30+24:00",
        "2026-11-20T10:15:30+02:60",
        "2026-11-20T10:15:30 Z",
        "2026-11-20 10:15:30Z",
        "2026-11-20X10:15:30Z",
        "2026-02-30T10:15:30Z",
        "2026-02-29T10:15:30Z",
        "1900-02-29T10:15:30Z",
        "2026-04-31T10:15:30Z",
        "2026-00-20T10:15:30Z",
        "2026-13-20T10:15:30Z",
        "2026-11-00T10:15:30Z",
        "2026-11-20T24:00:00Z",
        "2026-11-20T10:60:30Z",
        "2026-11-20T10:15:60Z",
        "2026-1-20T10:15:30Z",
        "2026-11-2T10:15:30Z",
        "2026-11-20T1:15:30Z",
        "+026-11-20T10:15:30Z",
        "2026-11-20T10:15:3aZ",
        "2026/11/20T10:15:30Z",
        "20261120T101530Z",
        "2026-11-20T10:15Z",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ns = 42;
        if (sms_time_parse(bad[i], strlen(bad[i]), &ns) != -1)
            fail_msg("%s: accepted (%lld)", bad[i], (long long)ns);
    }
    /* an embedded NUL, and the explicit length */
    int64_t ns;
    assert_int_equal(sms_time_parse(BYTES("2026-11-20T10:15:30\0Z"), &ns), -1);
    assert_int_equal(sms_time_parse(BYTES("2026-11-20T10:15:30Z\0"), &ns), -1);
    assert_int_equal(sms_time_parse("2026-11-20T10:15:30Zjunk", 20, &ns), 0);
    assert_int_equal(ns, base);
    assert_int_equal(sms_time_parse("2026-11-20T10:15:30.5Z", 21, &ns), -1);
}

/* ---- latency sketch -------------------------------------------------------------------------- */

/* The value bucket b stands for (anlyt.sketch_value before its rounding to whole ms). */
static double sketch_value(int b)
{
    const double gamma = 1.01 / 0.99;
    return b < 0 ? 0.0 : 2.0 * pow(gamma, b) / (gamma + 1.0);
}

static void check_bucket(int64_t ms)
{
    const double gamma = 1.01 / 0.99;
    int b = sms_sketch_bucket(ms);
    double v = sketch_value(b);
    double err = fabs(v - (double)ms) / (double)ms;
    if (!(err <= 0.01 + 1e-12))
        fail_msg("%lld ms: bucket %d value %f, relative error %f", (long long)ms, b, v, err);
    /* bucket i holds (gamma^(i-1), gamma^i] */
    double hi = pow(gamma, b), lo = pow(gamma, b - 1);
    if (!((double)ms <= hi * (1 + 1e-12) && (double)ms > lo * (1 - 1e-12)))
        fail_msg("%lld ms: bucket %d holds (%f, %f]", (long long)ms, b, lo, hi);
}

static void test_sketch(void **state)
{
    (void)state;
    assert_int_equal(sms_sketch_bucket(0), -1);
    assert_int_equal(sms_sketch_bucket(-5), -1);
    assert_true(sketch_value(-1) == 0.0);
    assert_int_equal(sms_sketch_bucket(1), 0);
    assert_true(fabs(sketch_value(0) - 0.99) < 1e-12);
    assert_int_equal(sms_sketch_bucket(2), 35); /* ceil(ln 2 / ln(1.01/0.99)) */
    int prev = -1;
    for (int64_t ms = 1; ms <= 100000; ms++) {
        check_bucket(ms);
        int b = sms_sketch_bucket(ms);
        if (b < prev)
            fail_msg("bucket of %lld ms (%d) below the previous (%d)", (long long)ms, b, prev);
        prev = b;
    }
    static const int64_t large[] = {
        1000000,
        123456789,
        INT64_C(90) * 86400 * 1000,
        INT32_MAX,
        INT64_C(1) << 40,
        INT64_C(1000000000000),
        INT64_C(999999999999999),
    };
    for (size_t i = 0; i < sizeof(large) / sizeof(large[0]); i++)
        check_bucket(large[i]);
}

/* ---- json_span ------------------------------------------------------------------------------- */

static void expect_span(const char *doc, const char *name, const char *want)
{
    const char *val = NULL;
    size_t vlen = 0;
    int rc = json_span_member(doc, strlen(doc), name, &val, &vlen);
    if (want == NULL) {
        if (rc != -1)
            fail_msg("%s: member %s found: [%.*s]", doc, name, (int)vlen, val);
        return;
    }
    if (rc != 0 || vlen != strlen(want) || memcmp(val, want, vlen) != 0)
        fail_msg("%s: member %s: rc %d [%.*s] want [%s]", doc, name, rc, rc == 0 ? (int)vlen : 0,
                 rc == 0 ? val : "", want);
    /* the span points into the document */
    assert_true(val >= doc && val + vlen <= doc + strlen(doc));
}

static void test_json_span_member(void **state)
{
    (void)state;
    expect_span("{\"a\":1}", "a", "1");
    expect_span("{\"a\":1,\"a\":22}", "a", "22");
    expect_span("{\"a\":\"x\",\"b\":2,\"a\":[3]}", "a", "[3]");
    expect_span("{\"a\":1,\"b\":2}", "b", "2");
    expect_span("{\"a\":1,\"b\":2}", "c", NULL);
    expect_span("{}", "a", NULL);
    expect_span(" { } ", "a", NULL);
    expect_span("[{\"a\":1}]", "a", NULL);
    expect_span("\"a\"", "a", NULL);
    expect_span("1", "a", NULL);
    expect_span("", "a", NULL);
    /* whitespace around names, colons and values */
    expect_span(" \r\n{ \"a\" :\t\"s\" \n, \"b\" : -1.5e+3 \n} ", "a", "\"s\"");
    expect_span(" \r\n{ \"a\" :\t\"s\" \n, \"b\" : -1.5e+3 \n} ", "b", "-1.5e+3");
    expect_span("{\"t\":true,\"f\":false,\"n\":null}", "t", "true");
    expect_span("{\"t\":true,\"f\":false,\"n\":null}", "f", "false");
    expect_span("{\"t\":true,\"f\":false,\"n\":null}", "n", "null");
    /* escaped member names are compared after unescaping */
    expect_span("{\"co\\u0073t\":1.5}", "cost", "1.5");
    expect_span("{\"\\u0063\\u006F\\u0073\\u0074\":2}", "cost", "2");
    expect_span("{\"cost\":1,\"co\\u0073t\":3}", "cost", "3");
    expect_span("{\"co\\u0073t\":3,\"cost\":1}", "cost", "1");
    expect_span("{\"a\\\"b\":7}", "a\"b", "7");
    expect_span("{\"a\\\\b\":7}", "a\\b", "7");
    expect_span("{\"a\\/b\":7}", "a/b", "7");
    expect_span("{\"a\\nb\":7,\"a\\tb\":8}", "a\nb", "7");
    expect_span("{\"a\\nb\":7,\"a\\tb\":8}", "a\tb", "8");
    expect_span("{\"cost\\u0000\":1}", "cost", NULL);
    expect_span("{\"costs\":1,\"cos\":2}", "cost", NULL);
    expect_span("{\"Cost\":1}", "cost", NULL);
    expect_span("{\"caf\\u00e9\":1,\"x\":2}", "x", "2");
    /* nested values are skipped whole, brackets and quotes inside strings included */
    expect_span("{\"x\":{\"cost\":1,\"y\":[1,\"]}\",{\"z\":\"\\\"}\"}]},\"cost\":  7 }", "cost",
                "7");
    expect_span("{\"x\":{\"cost\":1,\"y\":[1,\"]}\",{\"z\":\"\\\"}\"}]},\"cost\":  7 }", "x",
                "{\"cost\":1,\"y\":[1,\"]}\",{\"z\":\"\\\"}\"}]}");
    expect_span("{\"x\":\"{\\\"cost\\\":1}\"}", "cost", NULL);
    expect_span("{\"x\":\"{\\\"cost\\\":1}\"}", "x", "\"{\\\"cost\\\":1}\"");
    expect_span("{\"x\":[[[]],{},[{\"cost\":2}]],\"cost\":\"c\"}", "cost", "\"c\"");
    expect_span("{\"x\":[[[]],{},[{\"cost\":2}]],\"cost\":\"c\"}", "x", "[[[]],{},[{\"cost\":2}]]");
    expect_span("{\"s\":\"a\\\\\",\"cost\":5}", "cost", "5"); /* string ending in a backslash */
    expect_span("{\"s\":\"a\\\\\",\"cost\":5}", "s", "\"a\\\\\"");
    expect_span("{\"s\":\"\\\\\\\"\",\"cost\":5}", "cost", "5");
    expect_span("{\"e\":\"\xc3\xa9}\",\"cost\":5}", "cost", "5");
}

struct elements {
    const char *arr;
    const char *want[10];
};

static void test_json_span_elements(void **state)
{
    (void)state;
    static const struct elements cases[] = {
        {"[]", {NULL}},
        {" [ \n ] ", {NULL}},
        {"[1]", {"1", NULL}},
        {"[1,2,3]", {"1", "2", "3", NULL}},
        {" [ 1 , \"a,]\" ,\n{\"b\":[1,2]} , [ ] ,null,true,false,-2.5e3,\"\\\"]\"] ",
         {"1", "\"a,]\"", "{\"b\":[1,2]}", "[ ]", "null", "true", "false", "-2.5e3", "\"\\\"]\"",
          NULL}},
        {"[{\"subject\":\"billing.events\",\"x\":\"}\"},{\"y\":{\"z\":[\"[\"]}}]",
         {"{\"subject\":\"billing.events\",\"x\":\"}\"}", "{\"y\":{\"z\":[\"[\"]}}", NULL}},
        {"[[1,[2,[3]]],[]]", {"[1,[2,[3]]]", "[]", NULL}},
        {"[\"\\\\\",\"\\\\\\\"\"]", {"\"\\\\\"", "\"\\\\\\\"\"", NULL}},
        {"{\"a\":1}", {NULL}},
        {"\"[1]\"", {NULL}},
        {"", {NULL}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *arr = cases[i].arr;
        size_t len = strlen(arr), pos = 0, k = 0;
        const char *el;
        size_t ellen;
        while (json_span_next_element(arr, len, &pos, &el, &ellen) == 1) {
            const char *want = cases[i].want[k];
            if (want == NULL)
                fail_msg("%s: extra element [%.*s]", arr, (int)ellen, el);
            if (ellen != strlen(want) || memcmp(el, want, ellen) != 0)
                fail_msg("%s: element %zu [%.*s] want [%s]", arr, k, (int)ellen, el, want);
            assert_true(el >= arr && el + ellen <= arr + len);
            assert_true(pos <= len);
            k++;
        }
        if (cases[i].want[k] != NULL)
            fail_msg("%s: %zu elements, missing [%s]", arr, k, cases[i].want[k]);
        /* once done, it stays done */
        assert_int_equal(json_span_next_element(arr, len, &pos, &el, &ellen), 0);
    }
    /* the array of a member, found by json_span_member, iterated element by element */
    const char *doc = "{\"events\":[{\"a\":1},{\"b\":[2,3]}],\"events2\":[9]}";
    const char *arr;
    size_t arr_len, pos = 0, ellen;
    assert_int_equal(json_span_member(doc, strlen(doc), "events", &arr, &arr_len), 0);
    const char *el;
    assert_int_equal(json_span_next_element(arr, arr_len, &pos, &el, &ellen), 1);
    assert_int_equal(ellen, 7);
    assert_memory_equal(el, "{\"a\":1}", 7);
    assert_int_equal(json_span_next_element(arr, arr_len, &pos, &el, &ellen), 1);
    assert_int_equal(ellen, 11);
    assert_memory_equal(el, "{\"b\":[2,3]}", 11);
    assert_int_equal(json_span_next_element(arr, arr_len, &pos, &el, &ellen), 0);
}

int main(void)
{
    win = sms_window_at(NOW_NS, RETENTION);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_valid_charge),
        cmocka_unit_test(test_charge_member_names),
        cmocka_unit_test(test_valid_receipts),
        cmocka_unit_test(test_receipt_latency),
        cmocka_unit_test(test_receipt_error_code),
        cmocka_unit_test(test_invalid_json_and_not_object),
        cmocka_unit_test(test_missing_fields),
        cmocka_unit_test(test_invalid_fields),
        cmocka_unit_test(test_first_offending_member),
        cmocka_unit_test(test_event_types),
        cmocka_unit_test(test_time_window),
        cmocka_unit_test(test_header_id),
        cmocka_unit_test(test_items),
        cmocka_unit_test(test_item_echo_id),
        cmocka_unit_test(test_time_parse),
        cmocka_unit_test(test_sketch),
        cmocka_unit_test(test_json_span_member),
        cmocka_unit_test(test_json_span_elements),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
