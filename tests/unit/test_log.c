/*
 * tests/unit/test_log.c: the two log line formats of common/log.h. JSON lines must parse
 * (jansson) and give back exactly what was logged, whatever bytes the message, the request id
 * or the access fields hold; text lines must stay one line with client-chosen values as single
 * tokens.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <string.h>

#include "common/log.h"

#define NOW_NS INT64_C(1700000000123456789) /* 2023-11-14T22:13:20.123456789Z */

/* Renders one line; the caller frees b. */
static void render(jbuf *b, log_level level, const char *msg, size_t len,
                   const log_access_fields *a)
{
    jbuf_init(b);
    log_render(b, level, NOW_NS, msg, len, a);
    assert_null(memchr(b->data, '\n', b->len)); /* one line, whatever the input */
    assert_null(memchr(b->data, '\r', b->len));
}

static json_t *parse(const char *s, size_t len)
{
    json_error_t err;
    json_t *j = json_loadb(s, len, JSON_ALLOW_NUL, &err);
    if (j == NULL)
        fail_msg("not JSON (%s): %.*s", err.text, (int)len, s);
    assert_true(json_is_object(j));
    return j;
}

static void assert_member(json_t *j, const char *key, const char *want)
{
    json_t *v = json_object_get(j, key);
    assert_non_null(v);
    assert_true(json_is_string(v));
    assert_int_equal(json_string_length(v), strlen(want));
    assert_memory_equal(json_string_value(v), want, strlen(want));
}

static int setup_json(void **state)
{
    (void)state;
    log_set_format(LOG_FORMAT_JSON);
    log_set_journal_prefix(0);
    log_set_role("http");
    log_set_request_id(NULL);
    return 0;
}

static void test_json_escaping(void **state)
{
    (void)state;
    static const char msg[] = "said \"hi\" \\ back\n\ttab \x01\x1f <b>&amp; \xff end \xc3\xa9";
    jbuf b;
    render(&b, LOG_LEVEL_WARN, msg, sizeof(msg) - 1, NULL);
    json_t *j = parse(b.data, b.len);
    /* the invalid byte 0xFF comes back as U+FFFD; everything else exactly */
    assert_member(j, "msg",
                  "said \"hi\" \\ back\n\ttab \x01\x1f <b>&amp; \xef\xbf\xbd end \xc3\xa9");
    assert_member(j, "level", "warn");
    assert_member(j, "role", "http");
    assert_member(j, "ts", "2023-11-14T22:13:20.123456789Z");
    assert_true(json_is_integer(json_object_get(j, "pid")));
    assert_null(json_object_get(j, "request_id")); /* none set */
    json_decref(j);
    jbuf_free(&b);
}

static void test_json_message_with_nul_and_request_id(void **state)
{
    (void)state;
    log_set_request_id("id\"with\\quote}{");
    jbuf b;
    render(&b, LOG_LEVEL_INFO, "a\0b", 3, NULL);
    json_t *j = parse(b.data, b.len);
    json_t *msg = json_object_get(j, "msg");
    assert_int_equal(json_string_length(msg), 3);
    assert_memory_equal(json_string_value(msg), "a\0b", 3);
    assert_member(j, "request_id", "id\"with\\quote}{");
    json_decref(j);
    jbuf_free(&b);
    log_set_request_id(NULL);
}

static void test_json_access_line(void **state)
{
    (void)state;
    log_set_request_id("r-1");
    static const char path[] = "/api/v1/reports/\"x\n\x02\xfe";
    log_access_fields f = {"GET", 3, path, sizeof(path) - 1, 404, 63, 1.5, 2};
    jbuf b;
    render(&b, LOG_LEVEL_INFO, "access", 6, &f);
    json_t *j = parse(b.data, b.len);
    assert_member(j, "msg", "access");
    assert_member(j, "method", "GET");
    assert_member(j, "path", "/api/v1/reports/\"x\n\x02\xef\xbf\xbd");
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 404);
    assert_int_equal(json_integer_value(json_object_get(j, "bytes")), 63);
    assert_true(json_number_value(json_object_get(j, "duration_ms")) == 1.5);
    assert_int_equal(json_integer_value(json_object_get(j, "worker")), 2);
    assert_member(j, "request_id", "r-1");
    json_decref(j);
    jbuf_free(&b);
    log_set_request_id(NULL);
}

static void test_json_journal_prefix(void **state)
{
    (void)state;
    log_set_journal_prefix(1);
    jbuf b;
    render(&b, LOG_LEVEL_ERROR, "boom", 4, NULL);
    assert_memory_equal(b.data, "<3>{", 4); /* journald reads the priority, then the object */
    json_t *j = parse(b.data + 3, b.len - 3);
    assert_member(j, "level", "error");
    json_decref(j);
    jbuf_free(&b);
    log_set_journal_prefix(0);
}

static void test_text_lines(void **state)
{
    (void)state;
    log_set_format(LOG_FORMAT_TEXT);
    log_set_request_id("abc-123");
    jbuf b;
    render(&b, LOG_LEVEL_INFO, "hello", 5, NULL);
    const char *tail = " http[";
    assert_non_null(strstr(b.data, " info"));
    assert_non_null(strstr(b.data, tail));
    const char *end = "]: hello request_id=abc-123";
    assert_true(b.len > strlen(end));
    assert_string_equal(b.data + b.len - strlen(end), end);
    assert_memory_equal(b.data, "2023-11-14T22:13:20.123456Z ", 28);
    jbuf_free(&b);

    /* client-chosen values stay one token: space, newline, '%' and non-ASCII are %XX */
    static const char path[] = "/a b\nc%\xff";
    log_access_fields f = {"GET", 3, path, sizeof(path) - 1, 200, 10, 0.25, 1};
    render(&b, LOG_LEVEL_INFO, "access", 6, &f);
    assert_non_null(strstr(b.data, "]: access method=GET path=/a%20b%0Ac%25%FF status=200 bytes=10 "
                                   "duration_ms=0.250 worker=1 request_id=abc-123"));
    jbuf_free(&b);
    log_set_request_id(NULL);
    render(&b, LOG_LEVEL_INFO, "bye", 3, NULL);
    assert_null(strstr(b.data, "request_id"));
    jbuf_free(&b);
    log_set_format(LOG_FORMAT_JSON);
}

static void test_push_request_id(void **state)
{
    (void)state;
    char saved[LOG_REQUEST_ID_MAX + 1];
    log_set_request_id("outer");
    log_push_request_id("inner", saved);
    assert_string_equal(log_request_id(), "inner");
    log_set_request_id(saved);
    assert_string_equal(log_request_id(), "outer");
    char longer[LOG_REQUEST_ID_MAX + 20];
    memset(longer, 'y', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    log_set_request_id(longer); /* cut at LOG_REQUEST_ID_MAX */
    assert_int_equal(strlen(log_request_id()), LOG_REQUEST_ID_MAX);
    log_set_request_id("");
    assert_string_equal(log_request_id(), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_json_escaping, setup_json),
        cmocka_unit_test_setup(test_json_message_with_nul_and_request_id, setup_json),
        cmocka_unit_test_setup(test_json_access_line, setup_json),
        cmocka_unit_test_setup(test_json_journal_prefix, setup_json),
        cmocka_unit_test_setup(test_text_lines, setup_json),
        cmocka_unit_test_setup(test_push_request_id, setup_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
