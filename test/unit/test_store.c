/* test_store.c: the hash table: put, get, replace, delete, growth and
 * shrinking across incremental rehashes, iteration. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "unit.h"

static const unsigned char seed[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

static term_view v(const char *s) { return (term_view){s, strlen(s)}; }

static void test_put_get_replace_delete(void)
{
    store *s = store_create(seed);
    term_view out;
    CU_ASSERT_EQUAL(store_get(s, v("k"), &out), 0);
    CU_ASSERT_EQUAL(store_put(s, v("k"), v("one")), 0);
    CU_ASSERT_EQUAL(store_get(s, v("k"), &out), 1);
    CU_ASSERT(out.len == 3 && memcmp(out.ptr, "one", 3) == 0);
    CU_ASSERT_EQUAL(store_put(s, v("k"), v("a longer value")), 0);
    CU_ASSERT_EQUAL(store_get(s, v("k"), &out), 1);
    CU_ASSERT(out.len == 14 && memcmp(out.ptr, "a longer value", 14) == 0);
    CU_ASSERT_EQUAL(store_size(s), 1);
    CU_ASSERT_EQUAL(store_put(s, v("k2"), v("")), 0);
    CU_ASSERT_EQUAL(store_get(s, v("k2"), &out), 1);
    CU_ASSERT_EQUAL(out.len, 0);
    CU_ASSERT_EQUAL(store_delete(s, v("k")), 1);
    CU_ASSERT_EQUAL(store_delete(s, v("k")), 0);
    CU_ASSERT_EQUAL(store_get(s, v("k"), &out), 0);
    CU_ASSERT_EQUAL(store_size(s), 1);
    store_destroy(s);
}

static void test_keys_differ_by_bytes_only(void)
{
    store *s = store_create(seed);
    term_view out;
    char a[3] = {'a', 0, 'b'}, b[3] = {'a', 0, 'c'};
    store_put(s, (term_view){a, 3}, v("A"));
    store_put(s, (term_view){b, 3}, v("B"));
    store_put(s, (term_view){a, 2}, v("prefix"));
    CU_ASSERT_EQUAL(store_size(s), 3);
    CU_ASSERT(store_get(s, (term_view){b, 3}, &out) && out.ptr[0] == 'B');
    CU_ASSERT(store_get(s, (term_view){a, 2}, &out) && out.len == 6);
    store_destroy(s);
}

static void test_grows_and_shrinks_through_rehash(void)
{
    enum { N = 100000 };
    store *s = store_create(seed);
    char k[32], val[32];
    term_view out;
    for (int i = 0; i < N; i++) {
        snprintf(k, sizeof k, "key-%d", i);
        snprintf(val, sizeof val, "value-%d", i);
        CU_ASSERT_EQUAL_FATAL(store_put(s, v(k), v(val)), 0);
        /* every earlier key stays reachable while buckets move */
        if (i % 9973 == 0)
            for (int j = 0; j <= i; j += 97) {
                snprintf(k, sizeof k, "key-%d", j);
                CU_ASSERT_EQUAL_FATAL(store_get(s, v(k), &out), 1);
            }
    }
    CU_ASSERT_EQUAL(store_size(s), N);
    size_t big = store_bytes(s);
    for (int i = 0; i < N; i++) {
        snprintf(k, sizeof k, "key-%d", i);
        snprintf(val, sizeof val, "value-%d", i);
        CU_ASSERT_EQUAL_FATAL(store_get(s, v(k), &out), 1);
        CU_ASSERT_FATAL(out.len == strlen(val) && memcmp(out.ptr, val, out.len) == 0);
    }
    for (int i = 0; i < N - 10; i++) {
        snprintf(k, sizeof k, "key-%d", i);
        CU_ASSERT_EQUAL_FATAL(store_delete(s, v(k)), 1);
    }
    CU_ASSERT_EQUAL(store_size(s), 10);
    for (int i = N - 10; i < N; i++) {
        snprintf(k, sizeof k, "key-%d", i);
        CU_ASSERT_EQUAL(store_get(s, v(k), &out), 1);
    }
    CU_ASSERT(store_bytes(s) < big / 100); /* buckets shrank too */
    store_destroy(s);
}

static void test_iteration_sees_each_entry_once(void)
{
    enum { N = 5000 };
    store *s = store_create(seed);
    static char seen[N];
    char k[16];
    for (int i = 0; i < N; i++) {
        snprintf(k, sizeof k, "%d", i);
        store_put(s, v(k), v("x"));
    }
    store_iter it;
    term_view key, value;
    int count = 0;
    memset(seen, 0, sizeof seen);
    store_iter_init(&it);
    while (store_next(s, &it, &key, &value)) {
        char buf[16] = {0};
        memcpy(buf, key.ptr, key.len < 15 ? key.len : 15);
        int i = atoi(buf);
        CU_ASSERT_FATAL(i >= 0 && i < N);
        CU_ASSERT_EQUAL(seen[i], 0);
        seen[i] = 1;
        count++;
    }
    CU_ASSERT_EQUAL(count, N);
    store_destroy(s);
    store *empty = store_create(seed);
    store_iter_init(&it);
    CU_ASSERT_EQUAL(store_next(empty, &it, &key, &value), 0);
    store_destroy(empty);
}

void unit_suite_store(void)
{
    CU_pSuite s = CU_add_suite("store", NULL, NULL);
    CU_add_test(s, "put, get, replace, delete", test_put_get_replace_delete);
    CU_add_test(s, "keys differ by bytes only", test_keys_differ_by_bytes_only);
    CU_add_test(s, "grows and shrinks through rehash", test_grows_and_shrinks_through_rehash);
    CU_add_test(s, "iteration sees each entry once", test_iteration_sees_each_entry_once);
}
