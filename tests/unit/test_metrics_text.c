/*
 * tests/unit/test_metrics_text.c: unit tests for the Prometheus text writer (common/metrics_text:
 * label and HELP escaping, cumulative histogram buckets with +Inf, _sum and _count) and for the
 * shared slots of common/metrics (bucket choice, sums over forked children, retirement keeps
 * counts, label sets).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/jbuf.h"
#include "common/metrics.h"
#include "common/metrics_text.h"
#include "server/metrics_http.h"
#include "server/router.h"

static void test_label_escaping(void **state)
{
    (void)state;
    jbuf b;
    jbuf_init(&b);
    metrics_label l[2] = {{"route", "a\\b\"c\nd"}, {"code", "200"}};
    metrics_text_sample(&b, "x_total", l, 2, 7);
    assert_string_equal(b.data, "x_total{route=\"a\\\\b\\\"c\\nd\",code=\"200\"} 7\n");
    jbuf_reset(&b);
    metrics_text_sample(&b, "g", NULL, 0, -3);
    assert_string_equal(b.data, "g -3\n");
    jbuf_reset(&b);
    metrics_text_escape_label(&b, "é\"");
    assert_string_equal(b.data, "é\\\"");
    jbuf_free(&b);
}

static void test_family_help_escaping(void **state)
{
    (void)state;
    jbuf b;
    jbuf_init(&b);
    /* HELP escapes backslash and line feed only; a double quote stays as it is. */
    metrics_text_family(&b, "x_total", "counter", "a \"b\" c\\d\ne");
    assert_string_equal(b.data, "# HELP x_total a \"b\" c\\\\d\\ne\n# TYPE x_total counter\n");
    jbuf_free(&b);
}

static void test_histogram_cumulative(void **state)
{
    (void)state;
    jbuf b;
    jbuf_init(&b);
    static const uint64_t bound[] = {1000000, 10000000};
    static const char *const le[] = {"0.001", "0.01"};
    metrics_buckets layout = {2, bound, le, 1000000000ULL};
    uint64_t buckets[3] = {2, 0, 3}; /* non-cumulative; the last is +Inf */
    metrics_label l = {"route", "/x"};
    metrics_text_histogram(&b, "d_seconds", &l, 1, &layout, buckets, 12345000678ULL);
    assert_string_equal(b.data, "d_seconds_bucket{route=\"/x\",le=\"0.001\"} 2\n"
                                "d_seconds_bucket{route=\"/x\",le=\"0.01\"} 2\n"
                                "d_seconds_bucket{route=\"/x\",le=\"+Inf\"} 5\n"
                                "d_seconds_sum{route=\"/x\"} 12.345000678\n"
                                "d_seconds_count{route=\"/x\"} 5\n");
    jbuf_reset(&b);
    /* Without labels, with a unit scale. */
    static const uint64_t sizes[] = {1, 10};
    static const char *const size_le[] = {"1", "10"};
    metrics_buckets count_layout = {2, sizes, size_le, 1};
    uint64_t zero[3] = {0, 1, 0};
    metrics_text_histogram(&b, "s", NULL, 0, &count_layout, zero, 4);
    assert_string_equal(b.data, "s_bucket{le=\"1\"} 0\n"
                                "s_bucket{le=\"10\"} 1\n"
                                "s_bucket{le=\"+Inf\"} 1\n"
                                "s_sum 4\n"
                                "s_count 1\n");
    jbuf_free(&b);
}

static void test_observe_buckets(void **state)
{
    (void)state;
    metrics_hist h;
    memset(&h, 0, sizeof(h));
    metrics_observe(&h, &metrics_batch_buckets, 1);    /* le="1": bounds are inclusive */
    metrics_observe(&h, &metrics_batch_buckets, 2);    /* le="2" */
    metrics_observe(&h, &metrics_batch_buckets, 3);    /* le="5" */
    metrics_observe(&h, &metrics_batch_buckets, 5000); /* +Inf */
    assert_int_equal(h.bucket[0], 1);
    assert_int_equal(h.bucket[1], 1);
    assert_int_equal(h.bucket[2], 1);
    assert_int_equal(h.bucket[metrics_batch_buckets.n], 1);
    assert_int_equal(h.sum, 5006);
}

static void test_label_sets(void **state)
{
    (void)state;
    assert_int_equal(metrics_code_values[metrics_code_index(404)], 404);
    assert_int_equal(metrics_code_index(599), METRICS_CODES - 1);
    assert_string_equal(metrics_report_name(metrics_report_index("top-entities", 12)),
                        "top-entities");
    assert_string_equal(metrics_report_name(metrics_report_index("amount-by-source", 16)),
                        "amount-by-source");
    assert_string_equal(metrics_report_name(metrics_report_index("top-entitie", 11)), "other");
    assert_int_equal(metrics_report_index("top-entitie", 11), metrics_report_count() - 1);
    assert_string_equal(metrics_route_name(ROUTE_REPORT_RUN), "/api/v1/reports/{slug}/run");
    assert_string_equal(metrics_route_name(ROUTE_NONE), "none");
    assert_string_equal(metrics_route_name(METRICS_ROUTES + 5), "other");
    for (unsigned r = 0; r <= ROUTE_SMS_ACCOUNT_USAGE; r++)
        assert_string_not_equal(metrics_route_name(r), "other");
}

/* A child attaches to slot, records n requests, and exits without retiring itself. */
static void child_records(int slot, int n)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        metrics_attach(slot);
        for (int i = 0; i < n; i++)
            metrics_http_request(ROUTE_HEALTH, "GET", 3, 200, 2000000);
        metrics_http_request(ROUTE_HEALTH, "BREW", 4, 418, 1);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_sum_and_retire(void **state)
{
    (void)state;
    metrics_totals *t = malloc(sizeof(*t));
    metrics_create();
    child_records(SHSTATE_FIRST_HTTP_SLOT, 5);
    child_records(SHSTATE_FIRST_HTTP_SLOT + 1, 2);
    assert_int_equal(metrics_sum(t), 0);
    unsigned get = 0, ok = metrics_code_index(200), other = METRICS_CODES - 1;
    assert_int_equal(METRICS_CELL(t, http_requests[ROUTE_HEALTH][get][ok]), 7);
    assert_int_equal(METRICS_CELL(t, http_requests[ROUTE_HEALTH][METRICS_METHODS - 1][other]), 2);
    /* 2 ms lands in le="0.0025" (index 2); 1 ns in the first bucket. */
    assert_int_equal(METRICS_CELL(t, http_duration[ROUTE_HEALTH].bucket[2]), 7);
    assert_int_equal(METRICS_CELL(t, http_duration[ROUTE_HEALTH].bucket[0]), 2);
    assert_int_equal(METRICS_CELL(t, http_duration[ROUTE_HEALTH].sum), 7 * 2000000 + 2);

    /* Retiring a slot moves its counts to the accumulator: the sums do not change, and the
     * slot starts from zero for the next child. */
    metrics_retire(SHSTATE_FIRST_HTTP_SLOT);
    metrics_retire(SHSTATE_FIRST_HTTP_SLOT); /* twice is harmless */
    assert_int_equal(metrics_sum(t), 0);
    assert_int_equal(METRICS_CELL(t, http_requests[ROUTE_HEALTH][get][ok]), 7);
    child_records(SHSTATE_FIRST_HTTP_SLOT, 1);
    assert_int_equal(metrics_sum(t), 0);
    assert_int_equal(METRICS_CELL(t, http_requests[ROUTE_HEALTH][get][ok]), 8);
    assert_int_equal(metrics_global->seq % 2, 0);

    metrics_count_restart(METRICS_KIND_HTTP, METRICS_CAUSE_KILLED);
    assert_int_equal(metrics_global->restarts[METRICS_KIND_HTTP][METRICS_CAUSE_KILLED], 1);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_label_escaping),       cmocka_unit_test(test_family_help_escaping),
        cmocka_unit_test(test_histogram_cumulative), cmocka_unit_test(test_observe_buckets),
        cmocka_unit_test(test_label_sets),           cmocka_unit_test(test_sum_and_retire),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
