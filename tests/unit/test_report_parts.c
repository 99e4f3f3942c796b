/*
 * tests/unit/test_report_parts.c: the pure parts of the report cache and snapshot query
 * modules: the hit rewrite and validation of stored entries (server/report_cache), decoding of
 * lookup replies, the cache key text, the report kinds and row shapes (server/report_query),
 * and supported_filters re-emitted in byte order (server/catalogue).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "common/dates.h"
#include "common/cachekey.h"
#include "server/catalogue.h"
#include "server/report_cache.h"
#include "server/report_query.h"

#define STORED                                                                                     \
    "{\"report_slug\":\"status-counts\",\"window\":\"day\",\"date_from\":\"2026-01-01\","          \
    "\"date_to\":\"2026-02-01\",\"generated_at\":\"2026-03-14T01:17:49.123456Z\",\"rows\":"        \
    "[{\"event_count\":2,\"status\":\"a\\u003cb\"},{\"event_count\":1,\"status\":\"x\"}],"         \
    "\"cache_hit\":false,\"row_count\":2,\"execution_ms\":17,\"source_system\":\"postgres\"}"

static const cache_expect expect = {"status-counts", 13, "day", "2026-01-01", "2026-02-01"};

static void test_hit_rewrites_two_members(void **state)
{
    (void)state;
    jbuf b;
    jbuf_init(&b);
    assert_int_equal(cache_hit_body(&b, STORED, strlen(STORED), &expect), 0);
    assert_string_equal(
        b.data,
        "{\"data\":{\"report_slug\":\"status-counts\",\"window\":\"day\",\"date_from\":"
        "\"2026-01-01\",\"date_to\":\"2026-02-01\",\"generated_at\":"
        "\"2026-03-14T01:17:49.123456Z\",\"rows\":[{\"event_count\":2,\"status\":\"a\\u003cb\"},"
        "{\"event_count\":1,\"status\":\"x\"}],\"cache_hit\":true,\"row_count\":2,"
        "\"execution_ms\":17,\"source_system\":\"redis\"},\"meta\":{\"cache_hit\":true,"
        "\"freshness\":{}}}\n");
    jbuf_free(&b);
}

/* The entry as the service writes it (API.md §4.4 "Freshness"): the hit repeats its freshness. */
static void test_entry_envelope_carries_freshness(void **state)
{
    (void)state;
    const char *fresh = "{\"rebuilt_at\":\"2026-03-14T01:17:49.5Z\"}";
    jbuf v, b;
    jbuf_init(&v);
    jbuf_init(&b);
    cache_entry_value(&v, STORED, strlen(STORED), fresh, strlen(fresh));
    assert_string_equal(v.data, "{\"data\":" STORED
                                ",\"freshness\":{\"rebuilt_at\":\"2026-03-14T01:17:49.5Z\"}}");
    assert_int_equal(cache_hit_body(&b, v.data, v.len, &expect), 0);
    assert_non_null(strstr(b.data,
                           "\"source_system\":\"redis\"},\"meta\":{\"cache_hit\":true,"
                           "\"freshness\":{\"rebuilt_at\":\"2026-03-14T01:17:49.5Z\"}}}\n"));
    static const char head[] = "{\"data\":{\"report_slug\":";
    assert_int_equal(strncmp(b.data, head, strlen(head)), 0);
    jbuf_free(&b);
    jbuf_reset(&v);
    cache_entry_value(&v, STORED, strlen(STORED), "{}", 2);
    assert_int_equal(cache_hit_body(&b, v.data, v.len, &expect), 0);
    assert_non_null(strstr(b.data, "\"meta\":{\"cache_hit\":true,\"freshness\":{}}}\n"));
    jbuf_free(&b);
    jbuf_free(&v);
}

static void expect_rejected(const char *stored, const cache_expect *x)
{
    jbuf b;
    jbuf_init(&b);
    assert_int_equal(cache_hit_body(&b, stored, strlen(stored), x), -1);
    assert_int_equal(b.len, 0);
    jbuf_free(&b);
}

static void replace(char *out, const char *in, const char *from, const char *to)
{
    const char *at = strstr(in, from);
    assert_non_null(at);
    size_t head = (size_t)(at - in);
    memcpy(out, in, head);
    strcpy(out + head, to);
    strcat(out, at + strlen(from));
}

static void test_unusable_entries_are_rejected(void **state)
{
    (void)state;
    char buf[1024];
    expect_rejected("", &expect);
    expect_rejected("garbage", &expect);
    expect_rejected("{}", &expect);
    replace(buf, STORED, "\"row_count\":2", "\"row_count\":3");
    expect_rejected(buf, &expect);
    replace(buf, STORED, "\"cache_hit\":false", "\"cache_hit\":true");
    expect_rejected(buf, &expect);
    replace(buf, STORED, "\"postgres\"}", "\"postgres\"} ");
    expect_rejected(buf, &expect);
    replace(buf, STORED, "\"rows\":[", "\"rows\":[1,");
    expect_rejected(buf, &expect);
    replace(buf, STORED, "\"execution_ms\":17", "\"execution_ms\":-1");
    expect_rejected(buf, &expect);
    replace(buf, STORED, "\"generated_at\":\"2026-03-14T01:17:49.123456Z\",", "");
    expect_rejected(buf, &expect);
    replace(buf, STORED, "{\"report_slug\"", "{\"extra\":1,\"report_slug\"");
    expect_rejected(buf, &expect);
    /* Envelopes whose freshness is not what the service writes, or that are cut short. */
    expect_rejected("{\"data\":" STORED ",\"freshness\":{\"x\":1}}", &expect);
    expect_rejected("{\"data\":" STORED ",\"freshness\":{\"rebuilt_at\":\"a\\\"\"}}", &expect);
    expect_rejected("{\"data\":" STORED ",\"freshness\":{}", &expect);
    expect_rejected("{\"data\":" STORED "}", &expect);
    expect_rejected("{\"data\":" STORED ",\"freshness\":{},\"x\":1}", &expect);
    /* Valid, but for another request. */
    cache_expect other = expect;
    other.window = "week";
    expect_rejected(STORED, &other);
    other = expect;
    other.date_to = "2026-02-02";
    expect_rejected(STORED, &other);
    other = expect;
    other.slug = "top-entities";
    other.slug_len = 12;
    expect_rejected(STORED, &other);
}

static void test_memo_reuses_only_identical_entries(void **state)
{
    (void)state;
    const char *hash = "16a27f9992c394ef2563ecc4bd31dd61ac353455c33531ab9a0d5a2c7417f25c";
    const char *body1, *body2;
    size_t len1, len2;
    assert_int_equal(cache_hit_response(hash, 3, STORED, strlen(STORED), &expect, &body1, &len1),
                     0);
    char first[1024];
    memcpy(first, body1, len1);
    assert_int_equal(cache_hit_response(hash, 3, STORED, strlen(STORED), &expect, &body2, &len2),
                     0);
    assert_int_equal(len1, len2);
    assert_memory_equal(first, body2, len2);
    assert_non_null(strstr(body2, "\"source_system\":\"redis\"},\"meta\":{\"cache_hit\":true,"
                                  "\"freshness\":{}}}\n"));
    /* Same key, different bytes: validated afresh (and rejected). */
    char buf[1024];
    replace(buf, STORED, "\"row_count\":2", "\"row_count\":9");
    assert_int_equal(cache_hit_response(hash, 3, buf, strlen(buf), &expect, &body2, &len2), -1);
    /* Then the good bytes are accepted again. */
    assert_int_equal(cache_hit_response(hash, 3, STORED, strlen(STORED), &expect, &body2, &len2),
                     0);
    /* Another request (its own hash: the hash covers window and dates) is validated afresh. */
    cache_expect other = expect;
    other.window = "week";
    const char *hash2 = "46f5c454adb35ac485bb3e1afec64e7c4c6916d1b9ad1f1cf4d819bfef437a76";
    assert_int_equal(cache_hit_response(hash2, 3, STORED, strlen(STORED), &other, &body2, &len2),
                     -1);
    assert_int_equal(cache_hit_response(hash, 4, STORED, strlen(STORED), &expect, &body2, &len2),
                     0);
}

static void test_lookup_reply_decoding(void **state)
{
    (void)state;
    redisReply v = {.type = REDIS_REPLY_STRING, .str = "12", .len = 2};
    redisReply e = {.type = REDIS_REPLY_STRING, .str = "{}", .len = 2};
    redisReply nil = {.type = REDIS_REPLY_NIL};
    redisReply *hit_el[] = {&v, &e}, *miss_el[] = {&v, &nil}, *absent_el[] = {&nil, &e};
    redisReply hit = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = hit_el};
    redisReply miss = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = miss_el};
    redisReply absent = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = absent_el};
    redisReply one = {.type = REDIS_REPLY_ARRAY, .elements = 1, .element = hit_el};
    redisReply err = {.type = REDIS_REPLY_ERROR, .str = "WRONGTYPE x", .len = 11};
    int64_t version = 0;
    const char *value = NULL;
    size_t len = 0;
    assert_int_equal(cache_lookup_reply(REDISCONN_OK, &hit, 12, &version, &value, &len),
                     CACHE_REPLY_HIT);
    assert_int_equal(version, 12);
    assert_int_equal(len, 2);
    assert_ptr_equal(value, e.str);
    assert_int_equal(cache_lookup_reply(REDISCONN_OK, &miss, 12, &version, &value, &len),
                     CACHE_REPLY_MISS);
    /* The entry read under a wrong guess is never used, hit or not. */
    version = 0;
    assert_int_equal(cache_lookup_reply(REDISCONN_OK, &hit, 11, &version, &value, &len),
                     CACHE_REPLY_STALE);
    assert_int_equal(version, 12);
    assert_int_equal(cache_lookup_reply(REDISCONN_OK, &miss, 0, &version, &value, &len),
                     CACHE_REPLY_STALE);
    assert_int_equal(cache_lookup_reply(REDISCONN_OK, &absent, 1, &version, &value, &len),
                     CACHE_REPLY_ABSENT);
    assert_int_equal(cache_lookup_reply(REDISCONN_ERROR_REPLY, &err, 12, &version, &value, &len),
                     CACHE_REPLY_OFF);
    assert_int_equal(cache_lookup_reply(REDISCONN_OK, &one, 12, &version, &value, &len),
                     CACHE_REPLY_OFF);
    assert_int_equal(cache_lookup_reply(REDISCONN_UNAVAILABLE, NULL, 12, &version, &value, &len),
                     CACHE_REPLY_OFF);
    assert_int_equal(cache_lookup_reply(REDISCONN_TIMEOUT, NULL, 12, &version, &value, &len),
                     CACHE_REPLY_OFF);
    const char *bad[] = {"", "abc", "01", "+1", "-0", "1.5", "9223372036854775808", " 1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v.str = (char *)bad[i];
        v.len = strlen(bad[i]);
        assert_int_equal(cache_lookup_reply(REDISCONN_OK, &hit, 1, &version, &value, &len),
                         CACHE_REPLY_OFF);
    }
    v.str = "-9223372036854775808";
    v.len = strlen(v.str);
    assert_int_equal(cache_lookup_reply(REDISCONN_OK, &miss, INT64_MIN, &version, &value, &len),
                     CACHE_REPLY_MISS);
    assert_true(version == INT64_MIN);
}

static void test_version_guesses(void **state)
{
    (void)state;
    assert_int_equal(cache_version_guess("status-counts", 13), 0);
    cache_version_remember("status-counts", 13, 7);
    cache_version_remember("top-entities", 12, 3);
    assert_int_equal(cache_version_guess("status-counts", 13), 7);
    assert_int_equal(cache_version_guess("top-entities", 12), 3);
    /* Length counts: a prefix of a known slug is another slug. */
    assert_int_equal(cache_version_guess("status-count", 12), 0);
    cache_version_remember("status-counts", 13, 8);
    assert_int_equal(cache_version_guess("status-counts", 13), 8);
    /* Many slugs: each guess is the remembered one or 0, never another slug's. */
    char slug[32];
    for (int i = 0; i < 4 * CACHE_GUESS_SLOTS; i++) {
        int n = snprintf(slug, sizeof(slug), "report-%d", i);
        cache_version_remember(slug, (size_t)n, 1000 + i);
    }
    int kept = 0;
    for (int i = 0; i < 4 * CACHE_GUESS_SLOTS; i++) {
        int n = snprintf(slug, sizeof(slug), "report-%d", i);
        int64_t g = cache_version_guess(slug, (size_t)n);
        assert_true(g == 0 || g == 1000 + i);
        kept += g != 0;
    }
    assert_true(kept > 0 && kept <= CACHE_GUESS_SLOTS);
}

static void test_cache_key_text(void **state)
{
    (void)state;
    jbuf b;
    jbuf_init(&b);
    cachekey_entry(&b, "status-counts", 13, 1,
                   "16a27f9992c394ef2563ecc4bd31dd61ac353455c33531ab9a0d5a2c7417f25c");
    assert_string_equal(
        b.data,
        "report:status-counts:v1:16a27f9992c394ef2563ecc4bd31dd61ac353455c33531ab9a0d5a2c7417f25c");
    jbuf_reset(&b);
    cachekey_version(&b, "status-counts", 13);
    assert_string_equal(b.data, "report:version:status-counts");
    jbuf_free(&b);
}

static const registry_report *find(const char *slug)
{
    return registry_report_find(slug, strlen(slug));
}

static void test_registry_reports_and_layouts(void **state)
{
    (void)state;
    assert_non_null(find("volume-by-period"));
    assert_non_null(find("amount-by-source"));
    assert_null(registry_report_find("top-entities", 11));
    assert_null(find("Top-entities"));
    assert_int_equal(registry_breakdown_parse("", 0), REGISTRY_BREAKDOWN_NONE);
    assert_int_equal(registry_breakdown_parse("period", 6), REGISTRY_BREAKDOWN_PERIOD);
    assert_int_equal(registry_breakdown_parse("Period", 6), -1);
    assert_int_equal(registry_breakdown_parse("sourc", 5), -1);
    /* The table of API.md §4.4, one line per assertion. */
    assert_int_equal(find("volume-by-period")->layouts[REGISTRY_BREAKDOWN_SOURCE],
                     REGISTRY_LAYOUT_PERIOD_VALUES);
    assert_int_equal(find("volume-by-period")->layouts[REGISTRY_BREAKDOWN_STATUS],
                     REGISTRY_LAYOUT_PERIOD);
    assert_int_equal(find("status-counts")->layouts[REGISTRY_BREAKDOWN_PERIOD],
                     REGISTRY_LAYOUT_PERIOD_VALUES);
    assert_int_equal(find("status-counts")->layouts[REGISTRY_BREAKDOWN_SOURCE],
                     REGISTRY_LAYOUT_TOTALS);
    assert_int_equal(find("top-entities")->layouts[REGISTRY_BREAKDOWN_PERIOD],
                     REGISTRY_LAYOUT_TOTALS);
    assert_int_equal(find("amount-by-source")->layouts[REGISTRY_BREAKDOWN_SOURCE],
                     REGISTRY_LAYOUT_PERIOD_VALUES);
    assert_int_equal(find("amount-by-source")->layouts[REGISTRY_BREAKDOWN_NONE],
                     REGISTRY_LAYOUT_PERIOD);
    assert_null(find("top-entities")->filter_param);
    assert_string_equal(find("status-counts")->filter_param, "status");
    assert_string_equal(find("amount-by-source")->filter_param, "source");
    assert_string_equal(find("top-entities")->failure_message, "failed to run top entities report");
    assert_string_equal(find("amount-by-source")->failure_message, "failed to run amount report");
    assert_true(registry_window_find("week")->report_api);
    assert_false(registry_window_find("month")->report_api);
    assert_null(registry_window_find("WEEK"));
    /* The window messages of API.md §1.6 come from the report_api rows. */
    assert_string_equal(registry_window_message(1), "window must be either day or week");
    assert_string_equal(registry_window_message(0), "window must be day or week");
    assert_string_equal(registry_window_message(1), "window must be either day or week");
    /* Bucket starts: 2026-12-02 is a Wednesday. */
    int32_t d;
    assert_int_equal(date_parse("2026-12-02", 10, &d), 0);
    assert_int_equal(registry_window_floor(registry_window_find("day"), d), d);
    assert_int_equal(registry_window_floor(registry_window_find("week"), d), d - 2);
    assert_int_equal(registry_window_floor(registry_window_find("month"), d), d - 1);
    assert_int_equal(registry_window_floor(registry_window_find("month"), d - 2), d - 31);
}

static void test_snapshot_sql_per_layout(void **state)
{
    (void)state;
    const registry_window *day = registry_window_find("day");
    const char *top = report_query_sql(find("top-entities"), REGISTRY_LAYOUT_TOTALS, day);
    /* Totals sort by the metric's output column: entity_id, event_count for top-entities;
     * event_count, status for status-counts. */
    assert_non_null(strstr(top, "ORDER BY 2 DESC, dimension_value COLLATE \"C\""));
    assert_non_null(strstr(report_query_sql(find("status-counts"), REGISTRY_LAYOUT_TOTALS, day),
                           "ORDER BY 1 DESC, dimension_value COLLATE \"C\""));
    assert_non_null(strstr(top, "bucket_start >= ($8::date)::timestamp"));
    assert_non_null(strstr(top, "dimension_key = 'entity_id'"));
    assert_ptr_equal(top, report_query_sql(find("top-entities"), REGISTRY_LAYOUT_TOTALS, day));
    const char *amount =
        report_query_sql(find("amount-by-source"), REGISTRY_LAYOUT_PERIOD_VALUES, day);
    assert_non_null(strstr(amount, "metric_name = 'amount_cents'"));
    /* Members in byte order: amount_cents, bucket_date, source. */
    assert_true(strstr(amount, "sum(metric_value)") < strstr(amount, "::date::text"));
    assert_int_equal(report_query_freshness_column(REGISTRY_LAYOUT_PERIOD_VALUES), 3);
    assert_int_equal(report_query_freshness_column(REGISTRY_LAYOUT_TOTALS), 2);
}

static void test_filters_in_byte_order(void **state)
{
    (void)state;
    jbuf b;
    jbuf_init(&b);
    const char *in = "{\"window\": \"day|week\", \"limit\": \"1-100\", \"offset\": \">=0\", "
                     "\"Z\": \"\\u00e9\", \"\\u00e9\": 5}";
    assert_int_equal(catalogue_filters_json(&b, in, strlen(in)), 0);
    assert_string_equal(b.data, "{\"Z\":\"\xc3\xa9\",\"limit\":\"1-100\",\"offset\":\"\\u003e=0\","
                                "\"window\":\"day|week\",\"\xc3\xa9\":5}");
    jbuf_reset(&b);
    assert_int_equal(catalogue_filters_json(&b, "{}", 2), 0);
    assert_string_equal(b.data, "{}");
    assert_int_equal(catalogue_filters_json(&b, "[1]", 3), -1);
    assert_int_equal(catalogue_filters_json(&b, "nope", 4), -1);
    jbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_rewrites_two_members),
        cmocka_unit_test(test_entry_envelope_carries_freshness),
        cmocka_unit_test(test_unusable_entries_are_rejected),
        cmocka_unit_test(test_memo_reuses_only_identical_entries),
        cmocka_unit_test(test_lookup_reply_decoding),
        cmocka_unit_test(test_version_guesses),
        cmocka_unit_test(test_cache_key_text),
        cmocka_unit_test(test_registry_reports_and_layouts),
        cmocka_unit_test(test_snapshot_sql_per_layout),
        cmocka_unit_test(test_filters_in_byte_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
