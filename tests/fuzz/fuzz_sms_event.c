/*
 * tests/fuzz/fuzz_sms_event.c: fuzz target for the SMS event validation (common/sms_event.h,
 * SMS.md §2.2–§2.3) and the raw value spans it relies on (common/json_span.h). The input is one
 * message body. It is parsed as a NATS message on both subjects, without a Nats-Msg-Id header,
 * with a valid one and with an invalid one, and as a POST /api/v1/events item, with a fixed clock
 * (2026-11-20T12:00:00Z, 90 days of retention). Properties: the outcome is consistent (a valid
 * event has reason none and NUL-terminated ids of 1–128 printable bytes, lower-case canonical
 * UUIDs, an effect letter of its subject, a submission time inside the window; a rejection has a
 * reason and names a member of §2.2, or none exactly for invalid_json / not_an_object) and agrees
 * with jansson on the same bytes (invalid_json, not_an_object, missing vs invalid members,
 * echo_id, the values of a valid event; a raw NUL byte is never JSON, although jansson skips one
 * after a number or a literal); an item with a valid subject gets the same outcome as
 * the NATS message on that subject; parsing is deterministic. On inputs jansson accepts, every
 * ASCII member name of an object and every element of an array (recursively) has a span that
 * jansson decodes to the same value. Built by tests/fuzz/CMakeLists.txt (regression) and run.sh
 * (libFuzzer).
 */
#include "common/json_span.h"
#include "common/sms_event.h"
#include "tests/fuzz/fuzz_check.h"

#include <jansson.h>
#include <stdbool.h>
#include <string.h>

#define NS     INT64_C(1000000000)
#define NOW_NS (INT64_C(1795176000) * NS)
#define FLAGS  (JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL)

static const char CHARGED[] = "billing.message.charged";
static const char DLR[] = "sms.dlr.received";

static const char *const common_members[] = {"event_id",   "event_type", "occurred_at",
                                             "message_id", "account_id", "operator_id"};
static const char *const charge_members[] = {"segments", "cost"};
static const char *const receipt_members[] = {"status", "submitted_at", "error_code"};

static bool in_list(const char *f, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(f, list[i]) == 0)
            return true;
    }
    return false;
}

#define IN(f, list) in_list(f, list, sizeof(list) / sizeof(list[0]))

static json_t *jload(const char *s, size_t n)
{
    json_error_t err;
    return json_loadb(s, n, FLAGS, &err);
}

/* The member (NULL when absent or null), as the rules see it. */
static json_t *jmember(json_t *root, const char *name)
{
    json_t *v = json_object_get(root, name);
    return v == NULL || json_is_null(v) ? NULL : v;
}

static bool jstring_is(json_t *v, const char *s, size_t n)
{
    return json_is_string(v) && json_string_length(v) == n &&
           memcmp(json_string_value(v), s, n) == 0;
}

/* Length of a NUL-terminated id of at most cap - 1 bytes; cap when unterminated. */
static size_t id_len(const char *s, size_t cap)
{
    const char *z = memchr(s, '\0', cap);
    return z == NULL ? cap : (size_t)(z - s);
}

static void check_id(const char *s, size_t cap, const char *what)
{
    size_t n = id_len(s, cap);
    FUZZ_CHECK(n >= 1 && n <= SMS_ID_MAX, "%s of %zu bytes", what, n);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(s[i] >= 0x21 && s[i] <= 0x7e, "%s byte %zu is 0x%02x", what, i,
                   (unsigned char)s[i]);
}

static void check_uuid(const char *u, json_t *src, const char *what)
{
    FUZZ_CHECK(u[36] == '\0', "%s not terminated", what);
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            FUZZ_CHECK(u[i] == '-', "%s: no dash at %zu", what, i);
        else
            FUZZ_CHECK((u[i] >= '0' && u[i] <= '9') || (u[i] >= 'a' && u[i] <= 'f'),
                       "%s: byte %zu is not lower-case hex", what, i);
    }
    /* the same UUID as the body's, case aside */
    FUZZ_CHECK(json_is_string(src) && json_string_length(src) == 36, "%s: source not 36 bytes",
               what);
    const char *s = json_string_value(src);
    for (size_t i = 0; i < 36; i++) {
        char c = s[i] >= 'A' && s[i] <= 'F' ? (char)(s[i] + 32) : s[i];
        FUZZ_CHECK(c == u[i], "%s differs from the body at %zu", what, i);
    }
}

/* ^[0-9]{1,12}(\.[0-9]{1,6})?$ written out again. */
static bool ref_cost(const char *s)
{
    size_t n = strlen(s), i = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    if (i < 1 || i > 12)
        return false;
    if (i == n)
        return true;
    if (s[i] != '.' || n - i - 1 < 1 || n - i - 1 > 6)
        return false;
    for (size_t k = i + 1; k < n; k++) {
        if (s[k] < '0' || s[k] > '9')
            return false;
    }
    return true;
}

static int64_t time_of(json_t *v)
{
    int64_t ns = 0;
    FUZZ_CHECK(json_is_string(v) &&
                   sms_time_parse(json_string_value(v), json_string_length(v), &ns) == 0,
               "a valid event's time does not parse");
    return ns;
}

/* A valid event against the rules and against jansson's view of the same body. */
static void check_valid(const sms_parse *p, sms_subject subject, const char *header,
                        const sms_window *w, json_t *root)
{
    const sms_event *ev = &p->ev;
    FUZZ_CHECK(p->reason == SMS_REASON_NONE && p->field == NULL, "valid with a reason");
    check_id(ev->event_id, sizeof(ev->event_id), "event_id");
    check_id(ev->message_id, sizeof(ev->message_id), "message_id");
    json_t *id = jmember(root, "event_id");
    if (id != NULL)
        FUZZ_CHECK(jstring_is(id, ev->event_id, strlen(ev->event_id)),
                   "event_id is not the body's");
    else
        FUZZ_CHECK(header != NULL && strcmp(header, ev->event_id) == 0,
                   "event_id is not the header's");
    FUZZ_CHECK(jstring_is(jmember(root, "message_id"), ev->message_id, strlen(ev->message_id)),
               "message_id is not the body's");
    check_uuid(ev->account_id, jmember(root, "account_id"), "account_id");
    check_uuid(ev->operator_id, jmember(root, "operator_id"), "operator_id");
    FUZZ_CHECK(ev->at_ns >= w->oldest_ns && ev->at_ns <= w->newest_ns, "time outside the window");
    int64_t occurred = time_of(jmember(root, "occurred_at"));
    if (subject == SMS_SUBJECT_BILLING) {
        FUZZ_CHECK(ev->event_type != NULL && strcmp(ev->event_type, CHARGED) == 0, "charge type");
        FUZZ_CHECK(ev->effect == SMS_EFFECT_CHARGE, "billing effect %d", (int)ev->effect);
        FUZZ_CHECK(ev->at_ns == occurred, "a charge's time is not occurred_at");
        FUZZ_CHECK(ev->segments >= 1 && ev->segments <= 255, "segments %d", ev->segments);
        json_t *seg = jmember(root, "segments");
        FUZZ_CHECK(json_is_number(seg) && json_number_value(seg) == ev->segments,
                   "segments differ from the body's");
        FUZZ_CHECK(id_len(ev->cost, sizeof(ev->cost)) <= SMS_COST_MAX && ref_cost(ev->cost),
                   "cost [%.*s]", (int)sizeof(ev->cost), ev->cost);
        json_t *cost = jmember(root, "cost");
        if (json_is_string(cost))
            FUZZ_CHECK(jstring_is(cost, ev->cost, strlen(ev->cost)), "cost is not the body's");
        else
            FUZZ_CHECK(json_is_number(cost) && json_number_value(cost) == strtod(ev->cost, NULL),
                       "cost %s is not the body's number", ev->cost);
        FUZZ_CHECK(!ev->has_error, "charge with an error");
    } else {
        FUZZ_CHECK(ev->event_type != NULL && strcmp(ev->event_type, DLR) == 0, "receipt type");
        json_t *status = jmember(root, "status");
        FUZZ_CHECK(json_is_string(status), "status not a string");
        const char *s = json_string_value(status);
        sms_effect want = strcmp(s, "DELIVERED") == 0 ? SMS_EFFECT_DELIVERED
                          : (strcmp(s, "FAILED") == 0 || strcmp(s, "REJECTED") == 0 ||
                             strcmp(s, "EXPIRED") == 0 || strcmp(s, "UNDELIVERABLE") == 0)
                              ? SMS_EFFECT_FAILED
                              : SMS_EFFECT_NONFINAL;
        FUZZ_CHECK(json_string_length(status) == strlen(s), "status with NUL");
        FUZZ_CHECK(want != SMS_EFFECT_NONFINAL || strcmp(s, "ACCEPTED") == 0 ||
                       strcmp(s, "ENROUTE") == 0 || strcmp(s, "UNKNOWN") == 0,
                   "status %s accepted", s);
        FUZZ_CHECK(ev->effect == want, "effect %c for %s", (char)ev->effect, s);
        FUZZ_CHECK(ev->at_ns == time_of(jmember(root, "submitted_at")),
                   "a receipt's time is not submitted_at");
        if (ev->effect == SMS_EFFECT_DELIVERED) {
            int64_t d = occurred - ev->at_ns;
            int64_t want_ms = d <= 0 ? 0 : d / 1000000;
            FUZZ_CHECK(ev->latency_ms == want_ms, "latency %lld, want %lld",
                       (long long)ev->latency_ms, (long long)want_ms);
            FUZZ_CHECK(ev->sketch_bucket == sms_sketch_bucket(ev->latency_ms), "sketch bucket");
        }
        json_t *code = jmember(root, "error_code");
        FUZZ_CHECK(code == NULL || json_is_string(code), "error_code not a string");
        /* has_error exactly when error_code is there and not blank (API.md §2.2 trimming) */
        size_t start = 0, trimmed = 0;
        if (code != NULL)
            ref_trim((const unsigned char *)json_string_value(code), json_string_length(code),
                     &start, &trimmed);
        FUZZ_CHECK(ev->has_error == (trimmed > 0), "has_error %d, trimmed length %zu",
                   ev->has_error, trimmed);
        if (ev->has_error) {
            size_t n = json_string_length(code);
            FUZZ_CHECK(n >= 1 && n <= 32, "error_code of %zu bytes", n);
        }
    }
}

/* Every outcome: consistency of verdict, reason and field, and agreement with jansson. */
static void check_parse(const sms_parse *p, sms_subject subject, const char *header,
                        const sms_window *w, json_t *root, bool item)
{
    FUZZ_CHECK(p->verdict == SMS_VALID || p->verdict == SMS_IGNORED || p->verdict == SMS_REJECTED,
               "verdict %d", (int)p->verdict);
    bool no_field = p->reason == SMS_REASON_INVALID_JSON || p->reason == SMS_REASON_NOT_AN_OBJECT;
    if (p->verdict == SMS_REJECTED) {
        FUZZ_CHECK(p->reason != SMS_REASON_NONE && sms_reason_name(p->reason) != NULL,
                   "rejected without a reason");
        FUZZ_CHECK((p->field == NULL) == no_field, "reason %s with field %s",
                   sms_reason_name(p->reason), p->field ? p->field : "(none)");
    } else {
        FUZZ_CHECK(p->reason == SMS_REASON_NONE && p->field == NULL, "%s with reason %d field %s",
                   p->verdict == SMS_VALID ? "valid" : "ignored", (int)p->reason,
                   p->field ? p->field : "(none)");
    }
    /* invalid_json / not_an_object exactly as jansson decides */
    if (root == NULL)
        FUZZ_CHECK(p->reason == SMS_REASON_INVALID_JSON, "jansson rejects, reason %d",
                   (int)p->reason);
    else if (!json_is_object(root))
        FUZZ_CHECK(p->reason == SMS_REASON_NOT_AN_OBJECT, "not an object, reason %d",
                   (int)p->reason);
    else
        FUZZ_CHECK(!no_field, "an object rejected as %s", sms_reason_name(p->reason));
    /* echo_id: the event_id member when it is a string */
    json_t *id = json_is_object(root) ? json_object_get(root, "event_id") : NULL;
    if (json_is_string(id)) {
        FUZZ_CHECK(p->echo_id != NULL && p->echo_len == json_string_length(id) &&
                       memcmp(p->echo_id, json_string_value(id), p->echo_len) == 0 &&
                       p->echo_id[p->echo_len] == '\0',
                   "echo_id differs from the event_id string");
    } else {
        FUZZ_CHECK(p->echo_id == NULL && p->echo_len == 0, "echo_id without a string event_id");
    }
    if (item) {
        json_t *subj = json_is_object(root) ? jmember(root, "subject") : NULL;
        bool known =
            jstring_is(subj, "billing.events", 14) || jstring_is(subj, "sms.dlr.inbound", 15);
        FUZZ_CHECK(p->has_subject == known, "has_subject %d", p->has_subject);
        if (known)
            FUZZ_CHECK(p->subject == (jstring_is(subj, "billing.events", 14) ? SMS_SUBJECT_BILLING
                                                                             : SMS_SUBJECT_DLR),
                       "wrong subject");
        if (json_is_object(root) && !known)
            FUZZ_CHECK(p->verdict == SMS_REJECTED && strcmp(p->field, "subject") == 0 &&
                           p->reason ==
                               (subj == NULL ? SMS_REASON_MISSING_FIELD : SMS_REASON_INVALID_FIELD),
                       "bad subject not rejected as such");
        if (!known)
            return;
        subject = p->subject;
    }

    if (p->verdict == SMS_VALID) {
        check_valid(p, subject, header, w, root);
        return;
    }
    if (p->verdict == SMS_IGNORED) {
        FUZZ_CHECK(subject == SMS_SUBJECT_BILLING, "ignored on sms.dlr.inbound");
        json_t *type = jmember(root, "event_type");
        FUZZ_CHECK(json_is_string(type) && !jstring_is(type, CHARGED, strlen(CHARGED)),
                   "ignored with event_type billing.message.charged");
        return;
    }
    if (p->field == NULL)
        return;
    const char *f = p->field;
    bool own = subject == SMS_SUBJECT_BILLING ? IN(f, charge_members) : IN(f, receipt_members);
    FUZZ_CHECK(IN(f, common_members) || own, "field %s on subject %d", f, (int)subject);
    switch (p->reason) {
    case SMS_REASON_MISSING_FIELD:
        FUZZ_CHECK(jmember(root, f) == NULL, "missing_field %s, but it is there", f);
        FUZZ_CHECK(strcmp(f, "error_code") != 0, "error_code is optional");
        if (strcmp(f, "event_id") == 0)
            FUZZ_CHECK(header == NULL, "missing event_id despite a header");
        break;
    case SMS_REASON_INVALID_FIELD:
        FUZZ_CHECK(jmember(root, f) != NULL || (strcmp(f, "event_id") == 0 && header != NULL),
                   "invalid_field %s, but it is missing", f);
        break;
    case SMS_REASON_UNKNOWN_EVENT_TYPE:
        FUZZ_CHECK(subject == SMS_SUBJECT_DLR && strcmp(f, "event_type") == 0 &&
                       json_is_string(jmember(root, f)) &&
                       !jstring_is(jmember(root, f), DLR, strlen(DLR)),
                   "unknown_event_type on %s", f);
        break;
    case SMS_REASON_TOO_OLD:
    case SMS_REASON_IN_FUTURE: {
        const char *at = subject == SMS_SUBJECT_BILLING ? "occurred_at" : "submitted_at";
        FUZZ_CHECK(strcmp(f, at) == 0, "%s names %s", sms_reason_name(p->reason), f);
        int64_t t = time_of(jmember(root, at));
        FUZZ_CHECK(p->reason == SMS_REASON_TOO_OLD ? t < w->oldest_ns : t > w->newest_ns,
                   "%s at %lld", sms_reason_name(p->reason), (long long)t);
        break;
    }
    default:
        FUZZ_CHECK(false, "reason %d with field %s", (int)p->reason, f);
    }
}

static bool same_outcome(const sms_parse *a, const sms_parse *b)
{
    return a->verdict == b->verdict && a->reason == b->reason &&
           (a->field == NULL ? b->field == NULL
                             : b->field != NULL && !strcmp(a->field, b->field)) &&
           memcmp(&a->ev, &b->ev, sizeof(a->ev)) == 0 && a->echo_len == b->echo_len &&
           (a->echo_id == NULL) == (b->echo_id == NULL) &&
           (a->echo_id == NULL || memcmp(a->echo_id, b->echo_id, a->echo_len) == 0);
}

/* ---- json_span ------------------------------------------------------------------------------ */

static bool ascii_key(const char *k)
{
    for (; *k; k++) {
        if ((unsigned char)*k >= 0x80)
            return false;
    }
    return true;
}

static void check_spans(const char *raw, size_t len, json_t *v, int depth, int *budget);

/* The span decodes to what jansson holds for it, and is checked in turn. */
static void check_span_value(const char *span, size_t n, json_t *want, int depth, int *budget,
                             const char *what)
{
    json_t *got = jload(span, n);
    FUZZ_CHECK(got != NULL && json_equal(got, want), "%s: span [%.*s] is not the value", what,
               (int)(n > 200 ? 200 : n), span);
    json_decref(got);
    check_spans(span, n, want, depth + 1, budget);
}

/* raw[0..len) is valid JSON whose value jansson decoded as v. */
static void check_spans(const char *raw, size_t len, json_t *v, int depth, int *budget)
{
    if (depth > 4 || --*budget < 0)
        return;
    const char *span;
    size_t n;
    if (json_is_object(v)) {
        const char *key;
        json_t *val;
        json_object_foreach(v, key, val)
        {
            if (!ascii_key(key) || --*budget < 0)
                continue;
            FUZZ_CHECK(json_span_member(raw, len, key, &span, &n) == 0, "member %s not found", key);
            FUZZ_CHECK(span >= raw && span + n <= raw + len, "span outside the document");
            check_span_value(span, n, val, depth, budget, key);
        }
        for (size_t i = 0; i < 3; i++) {
            const char *name = i == 0 ? "cost" : i == 1 ? "segments" : "events";
            if (json_object_get(v, name) == NULL)
                FUZZ_CHECK(json_span_member(raw, len, name, &span, &n) == -1,
                           "absent member %s found", name);
        }
        return;
    }
    FUZZ_CHECK(json_span_member(raw, len, "cost", &span, &n) == -1, "member of a non-object");
    if (!json_is_array(v)) {
        size_t pos = 0;
        FUZZ_CHECK(json_span_next_element(raw, len, &pos, &span, &n) == 0,
                   "element of a non-array");
        return;
    }
    size_t pos = 0, count = 0, size = json_array_size(v);
    while (json_span_next_element(raw, len, &pos, &span, &n) == 1) {
        FUZZ_CHECK(count < size, "more than %zu elements", size);
        FUZZ_CHECK(span >= raw && span + n <= raw + len && pos <= len, "element outside");
        check_span_value(span, n, json_array_get(v, count), depth, budget, "element");
        count++;
    }
    FUZZ_CHECK(count == size, "%zu elements, jansson has %zu", count, size);
}

/* ---- entry point ---------------------------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    const char *raw = (const char *)data;
    const sms_window w = sms_window_at(NOW_NS, 90);
    /* jansson's view, except that a raw NUL byte is never JSON (jansson skips one after a
     * number or a literal) */
    json_t *root = memchr(raw, '\0', size) != NULL ? NULL : jload(raw, size);

    static const char *const headers[] = {NULL, "hdr-1", "bad header"};
    for (int s = SMS_SUBJECT_BILLING; s <= SMS_SUBJECT_DLR; s++) {
        for (size_t h = 0; h < sizeof(headers) / sizeof(headers[0]); h++) {
            sms_parse p;
            sms_event_parse(raw, size, (sms_subject)s, headers[h], &w, &p);
            check_parse(&p, (sms_subject)s, headers[h], &w, root, false);
            if (h == 0) {
                sms_parse again;
                sms_event_parse(raw, size, (sms_subject)s, NULL, &w, &again);
                FUZZ_CHECK(same_outcome(&p, &again), "parsing is not deterministic");
                sms_parse_free(&again);
            }
            sms_parse_free(&p);
        }
    }

    sms_parse it;
    sms_event_parse_item(raw, size, &w, &it);
    check_parse(&it, SMS_SUBJECT_BILLING, NULL, &w, root, true);
    if (it.has_subject) {
        /* an item with a subject is the NATS message on that subject, without a header */
        sms_parse nats;
        sms_event_parse(raw, size, it.subject, NULL, &w, &nats);
        FUZZ_CHECK(same_outcome(&it, &nats), "item and NATS message differ");
        sms_parse_free(&nats);
    }
    sms_parse_free(&it);

    if (root != NULL) {
        int budget = 256;
        check_spans(raw, size, root, 0, &budget);
    }
    json_decref(root);
    return 0;
}
