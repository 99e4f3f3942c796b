/*
 * common/sms_event.c: validation of one SMS event (see sms_event.h for the rules and their
 * order). Pure code, run by the ingest workers and the HTTP workers.
 *
 * jansson parses (strict UTF-8; \u0000 allowed so that it fails the member's own rule instead
 * of the whole document; integers read as reals so that no number is "too big" to parse) and
 * json_span.c finds the literal text of numbers.
 */
#include "common/sms_event.h"

#include "common/dates.h"
#include "common/json_span.h"
#include "common/textutil.h"
#include "common/util.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

#define NS_PER_SEC      INT64_C(1000000000)
#define FUTURE_SLACK_NS (300 * NS_PER_SEC)
/* Times are clamped to +-4e18 ns (years 1843-2096) so that differences never overflow. */
#define TIME_CLAMP_NS INT64_C(4000000000000000000)

static const char CHARGED[] = "billing.message.charged";
static const char DLR[] = "sms.dlr.received";

static const char *const reason_names[] = {
    [SMS_REASON_NONE] = NULL,
    [SMS_REASON_INVALID_JSON] = "invalid_json",
    [SMS_REASON_NOT_AN_OBJECT] = "not_an_object",
    [SMS_REASON_MISSING_FIELD] = "missing_field",
    [SMS_REASON_INVALID_FIELD] = "invalid_field",
    [SMS_REASON_UNKNOWN_EVENT_TYPE] = "unknown_event_type",
    [SMS_REASON_TOO_OLD] = "too_old",
    [SMS_REASON_IN_FUTURE] = "in_future",
};

const char *sms_reason_name(sms_reason r)
{
    return (size_t)r < ARRAY_LEN(reason_names) ? reason_names[r] : NULL;
}

const char *sms_subject_name(sms_subject s)
{
    return s == SMS_SUBJECT_BILLING ? "billing.events" : "sms.dlr.inbound";
}

sms_window sms_window_at(int64_t now_ns, int64_t retention_days)
{
    sms_window w = {now_ns - retention_days * 86400 * NS_PER_SEC, now_ns + FUTURE_SLACK_NS};
    return w;
}

/* ---- scalar rules --------------------------------------------------------------------------- */

static int digits(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

int sms_time_parse(const char *s, size_t len, int64_t *ns)
{
    if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
        s[16] != ':')
        return -1;
    int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
    int h = digits(s + 11, 2), mi = digits(s + 14, 2), sec = digits(s + 17, 2);
    if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h < 0 || h > 23 ||
        mi < 0 || mi > 59 || sec < 0 || sec > 59)
        return -1;
    size_t i = 19;
    int64_t frac = 0;
    if (s[i] == '.') {
        size_t start = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        size_t n = i - start;
        if (n < 1 || n > 9)
            return -1;
        frac = digits(s + start, n);
        for (size_t k = n; k < 9; k++)
            frac *= 10;
    }
    int64_t offset = 0;
    if (i + 1 == len && (s[i] == 'Z' || s[i] == 'z')) {
        offset = 0;
    } else if (i + 6 == len && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
        int oh = digits(s + i + 1, 2), om = digits(s + i + 4, 2);
        if (oh < 0 || oh > 23 || om < 0 || om > 59)
            return -1;
        offset = (s[i] == '-' ? -1 : 1) * (int64_t)(oh * 3600 + om * 60);
    } else {
        return -1;
    }
    int64_t secs = dates_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset;
    if (secs > TIME_CLAMP_NS / NS_PER_SEC)
        *ns = TIME_CLAMP_NS;
    else if (secs < -TIME_CLAMP_NS / NS_PER_SEC)
        *ns = -TIME_CLAMP_NS;
    else
        *ns = secs * NS_PER_SEC + frac;
    return 0;
}

/* 1-128 bytes of 0x21-0x7E. */
static bool id_valid(const char *s, size_t n)
{
    if (n < 1 || n > SMS_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    }
    return true;
}

/* 8-4-4-4-12 hex digits of either case, written lower-case into out. */
static bool uuid_canonical(const char *s, size_t n, char out[37])
{
    static const char hex[] = "0123456789abcdef";
    if (n != 36)
        return false;
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
            out[i] = '-';
            continue;
        }
        int v = text_hex_value((unsigned char)s[i]);
        if (v < 0)
            return false;
        out[i] = hex[v];
    }
    out[36] = '\0';
    return true;
}

/* ^[0-9]{1,12}(\.[0-9]{1,6})?$ */
static bool cost_valid(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    if (i < 1 || i > 12)
        return false;
    if (i == n)
        return true;
    if (s[i] != '.')
        return false;
    size_t f = n - i - 1;
    return f >= 1 && f <= 6 && digits(s + i + 1, f) >= 0;
}

int sms_sketch_bucket(int64_t ms)
{
    static double log_gamma = 0;
    if (log_gamma == 0)
        log_gamma = log(1.01 / 0.99);
    if (ms <= 0)
        return -1;
    return (int)ceil(log((double)ms) / log_gamma);
}

/* ---- member rules --------------------------------------------------------------------------- */

typedef struct checker {
    json_t *root;
    const char *raw;
    size_t len;
    sms_parse *out;
} checker;

static void reject(sms_parse *out, sms_reason r, const char *field)
{
    out->verdict = SMS_REJECTED;
    out->reason = r;
    out->field = field;
}

/* The member, or NULL when it is missing or null. */
static json_t *member(const checker *c, const char *name)
{
    json_t *v = json_object_get(c->root, name);
    return v == NULL || json_is_null(v) ? NULL : v;
}

/* A required string member; false after rejecting. */
static bool string_member(const checker *c, const char *name, const char **s, size_t *n)
{
    json_t *v = member(c, name);
    if (v == NULL) {
        reject(c->out, SMS_REASON_MISSING_FIELD, name);
        return false;
    }
    if (!json_is_string(v)) {
        reject(c->out, SMS_REASON_INVALID_FIELD, name);
        return false;
    }
    *s = json_string_value(v);
    *n = json_string_length(v);
    return true;
}

static bool id_member(const checker *c, const char *name, char out[SMS_ID_MAX + 1])
{
    const char *s;
    size_t n;
    if (!string_member(c, name, &s, &n))
        return false;
    if (!id_valid(s, n)) {
        reject(c->out, SMS_REASON_INVALID_FIELD, name);
        return false;
    }
    memcpy(out, s, n);
    out[n] = '\0';
    return true;
}

static bool time_member(const checker *c, const char *name, int64_t *ns)
{
    const char *s;
    size_t n;
    if (!string_member(c, name, &s, &n))
        return false;
    if (sms_time_parse(s, n, ns) != 0) {
        reject(c->out, SMS_REASON_INVALID_FIELD, name);
        return false;
    }
    return true;
}

static bool uuid_member(const checker *c, const char *name, char out[37])
{
    const char *s;
    size_t n;
    if (!string_member(c, name, &s, &n))
        return false;
    if (!uuid_canonical(s, n, out)) {
        reject(c->out, SMS_REASON_INVALID_FIELD, name);
        return false;
    }
    return true;
}

/* The literal text of a number member (json_span over the raw text). */
static bool number_literal(const checker *c, const char *name, const char **lit, size_t *n)
{
    return json_span_member(c->raw, c->len, name, lit, n) == 0;
}

static bool charge_members(const checker *c, sms_event *ev)
{
    json_t *v = member(c, "segments");
    const char *lit;
    size_t n;
    if (v == NULL) {
        reject(c->out, SMS_REASON_MISSING_FIELD, "segments");
        return false;
    }
    int segments = -1;
    if (json_is_number(v) && number_literal(c, "segments", &lit, &n) && n <= 3)
        segments = digits(lit, n);
    if (segments < 1 || segments > 255) {
        reject(c->out, SMS_REASON_INVALID_FIELD, "segments");
        return false;
    }
    ev->segments = segments;

    v = member(c, "cost");
    if (v == NULL) {
        reject(c->out, SMS_REASON_MISSING_FIELD, "cost");
        return false;
    }
    if (json_is_string(v)) {
        lit = json_string_value(v);
        n = json_string_length(v);
    } else if (!json_is_number(v) || !number_literal(c, "cost", &lit, &n)) {
        reject(c->out, SMS_REASON_INVALID_FIELD, "cost");
        return false;
    }
    if (!cost_valid(lit, n)) {
        reject(c->out, SMS_REASON_INVALID_FIELD, "cost");
        return false;
    }
    memcpy(ev->cost, lit, n);
    ev->cost[n] = '\0';
    return true;
}

static bool receipt_members(const checker *c, sms_event *ev, int64_t occurred_ns)
{
    static const struct {
        const char *name;
        sms_effect effect;
    } statuses[] = {
        {"DELIVERED", SMS_EFFECT_DELIVERED},  {"FAILED", SMS_EFFECT_FAILED},
        {"REJECTED", SMS_EFFECT_FAILED},      {"EXPIRED", SMS_EFFECT_FAILED},
        {"UNDELIVERABLE", SMS_EFFECT_FAILED}, {"ACCEPTED", SMS_EFFECT_NONFINAL},
        {"ENROUTE", SMS_EFFECT_NONFINAL},     {"UNKNOWN", SMS_EFFECT_NONFINAL},
    };
    const char *s;
    size_t n;
    if (!string_member(c, "status", &s, &n))
        return false;
    size_t k = 0;
    while (k < ARRAY_LEN(statuses) &&
           !(strlen(statuses[k].name) == n && memcmp(statuses[k].name, s, n) == 0))
        k++;
    if (k == ARRAY_LEN(statuses)) {
        reject(c->out, SMS_REASON_INVALID_FIELD, "status");
        return false;
    }
    ev->effect = statuses[k].effect;
    if (!time_member(c, "submitted_at", &ev->at_ns))
        return false;

    json_t *v = member(c, "error_code");
    ev->has_error = false;
    if (v != NULL) {
        if (!json_is_string(v)) {
            reject(c->out, SMS_REASON_INVALID_FIELD, "error_code");
            return false;
        }
        s = json_string_value(v);
        n = json_string_length(v);
        /* blank as API.md §2.2 defines it (empty after trimming its whitespace set) */
        bool blank = text_is_blank(s, n), printable = n <= 32;
        for (size_t i = 0; i < n; i++) {
            unsigned char ch = (unsigned char)s[i];
            printable = printable && ch >= 0x20 && ch <= 0x7e;
        }
        if (!blank && !printable) {
            reject(c->out, SMS_REASON_INVALID_FIELD, "error_code");
            return false;
        }
        ev->has_error = !blank;
    }
    if (ev->effect == SMS_EFFECT_DELIVERED) {
        int64_t d = occurred_ns - ev->at_ns;
        ev->latency_ms = d <= 0 ? 0 : d / 1000000;
        ev->sketch_bucket = sms_sketch_bucket(ev->latency_ms);
    }
    return true;
}

/* Everything after the JSON/object checks (and the subject of HTTP items). */
static void check_event(const checker *c, sms_subject subject, const char *header_id,
                        const sms_window *w)
{
    sms_parse *out = c->out;
    sms_event *ev = &out->ev;
    json_t *v = member(c, "event_id");
    if (v == NULL && header_id != NULL) {
        size_t n = strlen(header_id);
        if (!id_valid(header_id, n)) {
            reject(out, SMS_REASON_INVALID_FIELD, "event_id");
            return;
        }
        memcpy(ev->event_id, header_id, n + 1);
    } else if (!id_member(c, "event_id", ev->event_id)) {
        return;
    }

    const char *type;
    size_t type_len;
    if (!string_member(c, "event_type", &type, &type_len))
        return;
    const char *known = subject == SMS_SUBJECT_BILLING ? CHARGED : DLR;
    if (type_len != strlen(known) || memcmp(type, known, type_len) != 0) {
        if (subject == SMS_SUBJECT_BILLING)
            out->verdict = SMS_IGNORED;
        else
            reject(out, SMS_REASON_UNKNOWN_EVENT_TYPE, "event_type");
        return;
    }
    ev->event_type = known;

    int64_t occurred_ns;
    if (!time_member(c, "occurred_at", &occurred_ns) ||
        !id_member(c, "message_id", ev->message_id) ||
        !uuid_member(c, "account_id", ev->account_id) ||
        !uuid_member(c, "operator_id", ev->operator_id))
        return;
    if (subject == SMS_SUBJECT_BILLING) {
        ev->effect = SMS_EFFECT_CHARGE;
        ev->at_ns = occurred_ns;
        if (!charge_members(c, ev))
            return;
    } else if (!receipt_members(c, ev, occurred_ns)) {
        return;
    }

    const char *at_member = subject == SMS_SUBJECT_BILLING ? "occurred_at" : "submitted_at";
    if (ev->at_ns < w->oldest_ns) {
        reject(out, SMS_REASON_TOO_OLD, at_member);
        return;
    }
    if (ev->at_ns > w->newest_ns) {
        reject(out, SMS_REASON_IN_FUTURE, at_member);
        return;
    }
    out->verdict = SMS_VALID;
}

/* Parses raw[0..len); NULL after rejecting (invalid_json / not_an_object). */
static json_t *parse_object(const char *raw, size_t len, sms_parse *out)
{
    memset(out, 0, sizeof(*out));
    json_error_t err;
    /* A raw NUL byte is never JSON, but jansson skips one after a number or a literal (and
     * json_span would then stop there): reject it here. */
    json_t *root =
        memchr(raw, '\0', len) != NULL
            ? NULL
            : json_loadb(raw, len, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL,
                         &err);
    if (root == NULL) {
        reject(out, SMS_REASON_INVALID_JSON, NULL);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        reject(out, SMS_REASON_NOT_AN_OBJECT, NULL);
        return NULL;
    }
    json_t *id = json_object_get(root, "event_id");
    if (json_is_string(id)) {
        out->echo_len = json_string_length(id);
        out->echo_id = xmalloc(out->echo_len + 1);
        memcpy(out->echo_id, json_string_value(id), out->echo_len + 1);
    }
    return root;
}

void sms_event_parse(const char *raw, size_t len, sms_subject subject, const char *header_id,
                     const sms_window *w, sms_parse *out)
{
    json_t *root = parse_object(raw, len, out);
    if (root == NULL)
        return;
    checker c = {root, raw, len, out};
    check_event(&c, subject, header_id, w);
    json_decref(root);
}

void sms_event_parse_item(const char *raw, size_t len, const sms_window *w, sms_parse *out)
{
    json_t *root = parse_object(raw, len, out);
    if (root == NULL)
        return;
    checker c = {root, raw, len, out};
    const char *s;
    size_t n;
    if (string_member(&c, "subject", &s, &n)) {
        for (int k = SMS_SUBJECT_BILLING; k <= SMS_SUBJECT_DLR; k++) {
            const char *name = sms_subject_name((sms_subject)k);
            if (n == strlen(name) && memcmp(s, name, n) == 0) {
                out->has_subject = true;
                out->subject = (sms_subject)k;
            }
        }
        if (out->has_subject)
            check_event(&c, out->subject, NULL, w);
        else
            reject(out, SMS_REASON_INVALID_FIELD, "subject");
    }
    json_decref(root);
}

void sms_parse_free(sms_parse *p)
{
    free(p->echo_id);
    p->echo_id = NULL;
    p->echo_len = 0;
}
