/* test_bytes_map.c: the hash table from byte strings to pointers: keys that
 * differ in length or in one byte, the empty key, growth past many
 * doublings, removal in any order, and the count. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytes_map.h"
#include "unit.h"

static void test_put_get_remove(void)
{
    bytes_map *m = bytes_map_create();
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    int a, b, c, d;
    CU_ASSERT_PTR_NULL(bytes_map_get(m, "ab", 2));
    CU_ASSERT_EQUAL(bytes_map_put(m, "ab", 2, &a), 0);
    CU_ASSERT_EQUAL(bytes_map_put(m, "abc", 3, &b), 0); /* a longer key with the same start */
    CU_ASSERT_EQUAL(bytes_map_put(m, "a", 1, &c), 0);
    CU_ASSERT_EQUAL(bytes_map_put(m, "", 0, &d), 0); /* the empty key is a key */
    CU_ASSERT_EQUAL(bytes_map_count(m), 4);
    CU_ASSERT_PTR_EQUAL(bytes_map_get(m, "ab", 2), &a);
    CU_ASSERT_PTR_EQUAL(bytes_map_get(m, "abc", 3), &b);
    CU_ASSERT_PTR_EQUAL(bytes_map_get(m, "abd", 3), NULL);
    CU_ASSERT_PTR_EQUAL(bytes_map_get(m, "a", 1), &c);
    CU_ASSERT_PTR_EQUAL(bytes_map_get(m, "", 0), &d);
    CU_ASSERT_PTR_EQUAL(bytes_map_get(m, "ab\0", 3), NULL); /* bytes, not C strings */
    CU_ASSERT_PTR_EQUAL(bytes_map_remove(m, "ab", 2), &a);
    CU_ASSERT_PTR_NULL(bytes_map_remove(m, "ab", 2));
    CU_ASSERT_PTR_NULL(bytes_map_get(m, "ab", 2));
    CU_ASSERT_PTR_EQUAL(bytes_map_get(m, "abc", 3), &b);
    CU_ASSERT_EQUAL(bytes_map_count(m), 3);
    CU_ASSERT_EQUAL(bytes_map_put(m, "ab", 2, &c), 0); /* back, with another value */
    CU_ASSERT_PTR_EQUAL(bytes_map_get(m, "ab", 2), &c);
    bytes_map_destroy(m); /* keys freed, values not: they are on the stack */
    bytes_map_destroy(NULL);
}

/* 200,000 keys: found after every doubling; half removed in an order
 * unlike the insertion's; the rest still found; the table emptied. */
static void test_many(void)
{
    enum { N = 200000 };
    bytes_map *m = bytes_map_create();
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    long *vals = malloc(N * sizeof *vals);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vals);
    char key[32];
    int bad = 0;
    for (long i = 0; i < N; i++) {
        vals[i] = i;
        int len = snprintf(key, sizeof key, "k%ld", i);
        bad += bytes_map_put(m, key, (size_t)len, &vals[i]) != 0;
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(bytes_map_count(m), N);
    for (long i = 0; i < N; i++) {
        int len = snprintf(key, sizeof key, "k%ld", i);
        long *v = bytes_map_get(m, key, (size_t)len);
        bad += !v || *v != i;
    }
    CU_ASSERT_EQUAL(bad, 0);
    for (long i = N - 1; i >= 0; i -= 2) { /* the odd ones, from the end */
        int len = snprintf(key, sizeof key, "k%ld", i);
        bad += bytes_map_remove(m, key, (size_t)len) != &vals[i];
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(bytes_map_count(m), N / 2);
    for (long i = 0; i < N; i++) {
        int len = snprintf(key, sizeof key, "k%ld", i);
        bad += (bytes_map_get(m, key, (size_t)len) != NULL) != (i % 2 == 0);
    }
    CU_ASSERT_EQUAL(bad, 0);
    for (long i = 0; i < N; i += 2) {
        int len = snprintf(key, sizeof key, "k%ld", i);
        bad += bytes_map_remove(m, key, (size_t)len) != &vals[i];
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(bytes_map_count(m), 0);
    bytes_map_destroy(m);
    free(vals);
}

void unit_suite_bytes_map(void)
{
    CU_pSuite suite = CU_add_suite("bytes_map", NULL, NULL);
    if (!suite)
        return;
    CU_add_test(suite, "put, get, remove; prefixes and the empty key", test_put_get_remove);
    CU_add_test(suite, "200,000 keys through growth and removal", test_many);
}
