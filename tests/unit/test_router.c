/*
 * tests/unit/test_router.c: routing table of API.md §1.2 (exact, case-sensitive, raw path).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "server/router.h"

static router_status route(const char *method, const char *path, route_match *m)
{
    return router_match(method, strlen(method), path, strlen(path), m);
}

static void test_known_routes(void **state)
{
    (void)state;
    route_match m;
    assert_int_equal(route("GET", "/api/v1/health", &m), ROUTER_OK);
    assert_int_equal(m.route, ROUTE_HEALTH);
    assert_int_equal(route("GET", "/api/v1/reports", &m), ROUTER_OK);
    assert_int_equal(m.route, ROUTE_REPORTS);
    assert_int_equal(route("GET", "/api/v1/reports/top-entities", &m), ROUTER_OK);
    assert_int_equal(m.route, ROUTE_REPORT);
    assert_int_equal(m.param_len, strlen("top-entities"));
    assert_memory_equal(m.param, "top-entities", m.param_len);
    assert_int_equal(route("HEAD", "/api/v1/reports/x/run", &m), ROUTER_OK);
    assert_int_equal(m.route, ROUTE_REPORT_RUN);
    assert_true(m.is_head);
    assert_int_equal(route("POST", "/api/v1/recomputations", &m), ROUTER_OK);
    assert_true(m.is_management);
    assert_int_equal(route("GET", "/api/v1/recomputations/abc", &m), ROUTER_OK);
    assert_int_equal(m.route, ROUTE_RECOMPUTATION);
    assert_int_equal(route("GET", "/api/v1/audit-entries", &m), ROUTER_OK);
    assert_true(m.is_management);
    assert_int_equal(route("GET", "/api/v1/reports/volume%2Dby%2Dperiod", &m), ROUTER_OK);
    assert_int_equal(m.param_len, strlen("volume%2Dby%2Dperiod"));
}

/* SMS.md §6.6: POST only (HEAD and GET are 405 with Allow: POST), management, 1 MiB body. */
static void test_events_route(void **state)
{
    (void)state;
    route_match m;
    assert_int_equal(route("POST", "/api/v1/events", &m), ROUTER_OK);
    assert_int_equal(m.route, ROUTE_EVENTS);
    assert_true(m.is_management);
    assert_int_equal(m.body_limit, 1048576);
    for (int i = 0; i < 4; i++) {
        const char *method[] = {"GET", "HEAD", "PUT", "DELETE"};
        assert_int_equal(route(method[i], "/api/v1/events", &m), ROUTER_METHOD_NOT_ALLOWED);
        assert_string_equal(m.allow, "POST");
    }
    assert_int_equal(route("POST", "/api/v1/events/", &m), ROUTER_NOT_FOUND);
    assert_int_equal(route("POST", "/api/v1/Events", &m), ROUTER_NOT_FOUND);
    assert_int_equal(route("POST", "/api/v1/recomputations", &m), ROUTER_OK);
    assert_int_equal(m.body_limit, 65536);
    assert_int_equal(route("GET", "/api/v1/health", &m), ROUTER_OK);
    assert_int_equal(m.body_limit, 65536);
}

/* API.md §8: the probes, outside /api/v1, public, GET and HEAD only, exact paths. */
static void test_probe_routes(void **state)
{
    (void)state;
    route_match m;
    assert_int_equal(route("GET", "/livez", &m), ROUTER_OK);
    assert_int_equal(m.route, ROUTE_LIVEZ);
    assert_false(m.is_management);
    assert_false(m.is_head);
    assert_int_equal(route("HEAD", "/readyz", &m), ROUTER_OK);
    assert_int_equal(m.route, ROUTE_READYZ);
    assert_true(m.is_head);
    assert_false(m.is_management);
    assert_int_equal(m.body_limit, 65536);
    const char *methods[] = {"POST", "PUT", "DELETE", "OPTIONS", "get"};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        assert_int_equal(route(methods[i], "/livez", &m), ROUTER_METHOD_NOT_ALLOWED);
        assert_string_equal(m.allow, "GET, HEAD");
        assert_int_equal(route(methods[i], "/readyz", &m), ROUTER_METHOD_NOT_ALLOWED);
        assert_string_equal(m.allow, "GET, HEAD");
    }
    const char *paths[] = {"/livez/", "/readyz/",      "/Livez",         "//livez",  "/livezz",
                           "/ready",  "/api/v1/livez", "/api/v1/readyz", "/livez/x", "/health"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        assert_int_equal(route("GET", paths[i], &m), ROUTER_NOT_FOUND);
}

/* API.md §8: the OpenAPI document, public, GET and HEAD only, exact path. */
static void test_openapi_route(void **state)
{
    (void)state;
    route_match m;
    assert_int_equal(route("GET", "/api/v1/openapi.json", &m), ROUTER_OK);
    assert_int_equal(m.route, ROUTE_OPENAPI);
    assert_false(m.is_management);
    assert_int_equal(route("HEAD", "/api/v1/openapi.json", &m), ROUTER_OK);
    assert_true(m.is_head);
    assert_int_equal(route("POST", "/api/v1/openapi.json", &m), ROUTER_METHOD_NOT_ALLOWED);
    assert_string_equal(m.allow, "GET, HEAD");
    const char *paths[] = {"/api/v1/openapi.json/", "/api/v1/openapi", "/api/v1/OpenAPI.json",
                           "/openapi.json", "/api/v1/openapi.yaml"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        assert_int_equal(route("GET", paths[i], &m), ROUTER_NOT_FOUND);
}

static void test_not_found(void **state)
{
    (void)state;
    route_match m;
    const char *paths[] = {"/",
                           "/api/v1",
                           "/api/v1/",
                           "/api/v1/reports/",
                           "//api/v1/health",
                           "/api/v1/reports//run",
                           "/api/v1/reports/x/run/",
                           "/api/v1/reports/x/y",
                           "/API/v1/health",
                           "/api/v1/health/",
                           "/api/v1/recomputations/",
                           "/api/v1/recomputations/a/b",
                           "/api/v1/healthz",
                           "*",
                           ""};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        assert_int_equal(route("GET", paths[i], &m), ROUTER_NOT_FOUND);
    assert_int_equal(route("DELETE", "/nope", &m), ROUTER_NOT_FOUND);
}

static void test_method_not_allowed(void **state)
{
    (void)state;
    route_match m;
    assert_int_equal(route("DELETE", "/api/v1/audit-entries", &m), ROUTER_METHOD_NOT_ALLOWED);
    assert_string_equal(m.allow, "GET, HEAD");
    assert_int_equal(route("PUT", "/api/v1/recomputations", &m), ROUTER_METHOD_NOT_ALLOWED);
    assert_string_equal(m.allow, "GET, HEAD, POST");
    assert_int_equal(route("POST", "/api/v1/health", &m), ROUTER_METHOD_NOT_ALLOWED);
    assert_int_equal(route("OPTIONS", "/api/v1/reports", &m), ROUTER_METHOD_NOT_ALLOWED);
    assert_int_equal(route("get", "/api/v1/reports", &m), ROUTER_METHOD_NOT_ALLOWED);
    assert_int_equal(route("POST", "/api/v1/recomputations/x", &m), ROUTER_METHOD_NOT_ALLOWED);
    assert_string_equal(m.allow, "GET, HEAD");
}

/* SMS.md §6: public GET/HEAD routes; {id} segments are raw; anything else under sms/ is 404. */
static void test_sms_routes(void **state)
{
    (void)state;
    route_match m;
    static const struct {
        const char *path;
        route_id id;
        const char *param;
    } ok[] = {
        {"/api/v1/sms/summary", ROUTE_SMS_SUMMARY, NULL},
        {"/api/v1/sms/operators", ROUTE_SMS_OPERATORS, NULL},
        {"/api/v1/sms/accounts", ROUTE_SMS_ACCOUNTS, NULL},
        {"/api/v1/sms/operators/ABC-1/metrics", ROUTE_SMS_OPERATOR_METRICS, "ABC-1"},
        {"/api/v1/sms/accounts/x%20y/usage", ROUTE_SMS_ACCOUNT_USAGE, "x%20y"},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(route("GET", ok[i].path, &m), ROUTER_OK);
        assert_int_equal(m.route, ok[i].id);
        assert_false(m.is_management);
        assert_false(m.is_head);
        if (ok[i].param != NULL) {
            assert_int_equal(m.param_len, strlen(ok[i].param));
            assert_memory_equal(m.param, ok[i].param, m.param_len);
        }
        assert_int_equal(route("HEAD", ok[i].path, &m), ROUTER_OK);
        assert_true(m.is_head);
        assert_int_equal(route("POST", ok[i].path, &m), ROUTER_METHOD_NOT_ALLOWED);
        assert_string_equal(m.allow, "GET, HEAD");
    }
    static const char *const missing[] = {
        "/api/v1/sms",
        "/api/v1/sms/",
        "/api/v1/sms/summary/",
        "/api/v1/sms/Summary",
        "/api/v1/sms/operators/",
        "/api/v1/sms/operators/x",
        "/api/v1/sms/operators/x/",
        "/api/v1/sms/operators//metrics",
        "/api/v1/sms/operators/x/usage",
        "/api/v1/sms/accounts/x/metrics",
        "/api/v1/sms/accounts/x/usage/",
        "/api/v1/sms/operators/x/metrics/y",
    };
    for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++)
        assert_int_equal(route("GET", missing[i], &m), ROUTER_NOT_FOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probe_routes),  cmocka_unit_test(test_known_routes),
        cmocka_unit_test(test_events_route),  cmocka_unit_test(test_sms_routes),
        cmocka_unit_test(test_not_found),     cmocka_unit_test(test_method_not_allowed),
        cmocka_unit_test(test_openapi_route),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
