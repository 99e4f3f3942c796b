/*
 * tests/unit/test_localcache.c: the bounded LRU map of local report copies
 * (server/localcache.c): get/put/drop/clear, replacement, deadlines, the byte bound and the
 * LRU order of evictions.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "server/localcache.h"

static int get(localcache *lc, const char *key, int64_t now, const char **v, size_t *len,
               int64_t *num)
{
    return localcache_get(lc, key, strlen(key), now, v, len, num);
}

static void test_put_get_replace_drop(void **state)
{
    (void)state;
    localcache *lc = localcache_create(1 << 20);
    const char *v;
    size_t len;
    int64_t num;
    assert_int_equal(get(lc, "a", 0, &v, &len, &num), -1);
    assert_int_equal(localcache_put(lc, "a", 1, "hello", 5, 7, LOCALCACHE_FOREVER), 0);
    assert_int_equal(get(lc, "a", 0, &v, &len, &num), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(v, "hello", 5);
    assert_int_equal(num, 7);
    assert_int_equal(localcache_bytes(lc), LOCALCACHE_ITEM_OVERHEAD + 1 + 5);
    /* Replacing keeps one item and its new bytes. */
    assert_int_equal(localcache_put(lc, "a", 1, "hi", 2, 8, LOCALCACHE_FOREVER), 0);
    assert_int_equal(localcache_count(lc), 1);
    assert_int_equal(localcache_bytes(lc), LOCALCACHE_ITEM_OVERHEAD + 1 + 2);
    assert_int_equal(get(lc, "a", 0, &v, &len, &num), 0);
    assert_int_equal(num, 8);
    assert_memory_equal(v, "hi", 2);
    /* Empty values are items too (version keys). */
    assert_int_equal(localcache_put(lc, "b", 1, "", 0, 3, LOCALCACHE_FOREVER), 0);
    assert_int_equal(get(lc, "b", 0, &v, &len, &num), 0);
    assert_int_equal(len, 0);
    assert_int_equal(localcache_drop(lc, "a", 1), 1);
    assert_int_equal(localcache_drop(lc, "a", 1), 0);
    assert_int_equal(get(lc, "a", 0, &v, &len, &num), -1);
    assert_int_equal(localcache_clear(lc), 1);
    assert_int_equal(localcache_bytes(lc), 0);
    assert_int_equal(get(lc, "b", 0, &v, &len, &num), -1);
    localcache_destroy(lc);
}

static void test_deadline(void **state)
{
    (void)state;
    localcache *lc = localcache_create(1 << 20);
    const char *v;
    size_t len;
    int64_t num;
    localcache_put(lc, "k", 1, "x", 1, 1, 1000);
    assert_int_equal(get(lc, "k", 999, &v, &len, &num), 0);
    assert_int_equal(get(lc, "k", 1000, &v, &len, &num), -1); /* at the deadline: gone */
    assert_int_equal(localcache_count(lc), 0);
    assert_int_equal(localcache_bytes(lc), 0);
    localcache_destroy(lc);
}

static void test_bound_and_lru(void **state)
{
    (void)state;
    const size_t item = LOCALCACHE_ITEM_OVERHEAD + 3 + 100;
    localcache *lc = localcache_create(10 * item);
    char value[100];
    memset(value, 'v', sizeof(value));
    char key[8];
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "k%02d", i);
        assert_int_equal(localcache_put(lc, key, 3, value, 100, i, LOCALCACHE_FOREVER), 0);
    }
    assert_int_equal(localcache_bytes(lc), 10 * item);
    /* Touch k00: k01 is now the least recently used and goes first. */
    const char *v;
    size_t len;
    int64_t num;
    assert_int_equal(get(lc, "k00", 0, &v, &len, &num), 0);
    assert_int_equal(localcache_put(lc, "k10", 3, value, 100, 10, LOCALCACHE_FOREVER), 1);
    assert_int_equal(get(lc, "k01", 0, &v, &len, &num), -1);
    assert_int_equal(get(lc, "k00", 0, &v, &len, &num), 0);
    assert_int_equal(get(lc, "k02", 0, &v, &len, &num), 0);
    /* Ten times the bound in distinct keys: the bound holds all along. */
    int evicted = 0;
    for (int i = 0; i < 1000; i++) {
        char k[16];
        int n = snprintf(k, sizeof(k), "x%05d", i);
        int e = localcache_put(lc, k, (size_t)n, value, 97, i, LOCALCACHE_FOREVER);
        assert_true(e >= 0);
        evicted += e;
        assert_true(localcache_bytes(lc) <= 10 * item);
    }
    assert_true(evicted >= 990);
    assert_int_equal(get(lc, "x00999", 0, &v, &len, &num), 0);
    assert_int_equal(num, 999);
    /* An item larger than the bound is refused and removes the old item of its key. */
    char big[4096] = {0};
    assert_int_equal(localcache_put(lc, "x00999", 6, big, sizeof(big), 1, LOCALCACHE_FOREVER), -1);
    assert_int_equal(get(lc, "x00999", 0, &v, &len, &num), -1);
    localcache_destroy(lc);
}

static void test_many_keys_grow(void **state)
{
    (void)state;
    localcache *lc = localcache_create(64 << 20);
    for (int i = 0; i < 20000; i++) {
        char k[16];
        int n = snprintf(k, sizeof(k), "key%d", i);
        assert_int_equal(localcache_put(lc, k, (size_t)n, k, (size_t)n, i, LOCALCACHE_FOREVER), 0);
    }
    for (int i = 0; i < 20000; i += 7) {
        char k[16];
        int n = snprintf(k, sizeof(k), "key%d", i);
        const char *v;
        size_t len;
        int64_t num;
        assert_int_equal(localcache_get(lc, k, (size_t)n, 0, &v, &len, &num), 0);
        assert_int_equal(num, i);
        assert_memory_equal(v, k, (size_t)n);
    }
    assert_int_equal(localcache_count(lc), 20000);
    localcache_destroy(lc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_replace_drop),
        cmocka_unit_test(test_deadline),
        cmocka_unit_test(test_bound_and_lru),
        cmocka_unit_test(test_many_keys_grow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
