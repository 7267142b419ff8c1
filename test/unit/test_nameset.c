/* test_nameset.c - the set of names whose memory follows what it holds
 * (ps_nameset.c): put/get/del, removal while walking, compaction only
 * past its bounds with every kept name and value intact, and churn that
 * keeps the removed bytes bounded. */
#include <stdio.h>

#include "ps_test.h"
#include "ps_nameset.h"

#define PS_T_MIN 4096

static void test_put_get_del(void **state)
{
    ps_nameset_t s;
    int one = 1, two = 2;

    assert_int_equal(ps_nameset_init(&s, PS_T_MIN), APR_SUCCESS);
    ps_nameset_put(&s, "alpha", 5, &one);
    ps_nameset_put(&s, "alphabet", 5, &two);       /* the same name: a new value */
    assert_int_equal(ps_nameset_count(&s), 1);
    assert_ptr_equal(ps_nameset_get(&s, "alpha", 5), &two);
    assert_null(ps_nameset_get(&s, "alph", 4));
    assert_int_equal(s.live, 6);
    ps_nameset_put(&s, "b\0c", 3, &one);           /* names are bytes */
    assert_ptr_equal(ps_nameset_get(&s, "b\0c", 3), &one);
    ps_nameset_del(&s, "alpha", 5);
    ps_nameset_del(&s, "alpha", 5);                /* not in: nothing */
    ps_nameset_del(&s, "zzz", 3);
    assert_null(ps_nameset_get(&s, "alpha", 5));
    assert_int_equal(ps_nameset_count(&s), 1);
    assert_int_equal(s.live, 4);
    assert_int_equal(s.dead, 6);
    ps_nameset_clear(&s);
    assert_int_equal(ps_nameset_count(&s), 0);
    assert_int_equal(s.live + s.dead, 0);
    ps_nameset_destroy(&s);
    ps_nameset_destroy(&s);                        /* twice: nothing */
}

static void test_del_while_walking(void **state)
{
    ps_nameset_t s;
    apr_hash_index_t *hi;
    char name[32];
    int i, n, v = 1;

    assert_int_equal(ps_nameset_init(&s, PS_T_MIN), APR_SUCCESS);
    for (i = 0; i < 1000; i++) {
        n = snprintf(name, sizeof(name), "ch%d", i);
        ps_nameset_put(&s, name, (apr_size_t)n, &v);
    }
    for (hi = apr_hash_first(NULL, s.h); hi; hi = apr_hash_next(hi)) {
        const void *k;
        apr_ssize_t klen;
        apr_hash_this(hi, &k, &klen, NULL);
        if (((const char *)k)[klen - 1] % 2) {
            ps_nameset_del(&s, k, (apr_size_t)klen);
        }
    }
    assert_int_equal(ps_nameset_count(&s), 500);
    for (i = 0; i < 1000; i++) {
        n = snprintf(name, sizeof(name), "ch%d", i);
        if (i % 2) {
            assert_null(ps_nameset_get(&s, name, (apr_size_t)n));
        }
        else {
            assert_ptr_equal(ps_nameset_get(&s, name, (apr_size_t)n), &v);
        }
    }
    ps_nameset_destroy(&s);
}

/* Where the set keeps name (its stored copy), or NULL. */
static const char *ps_t_key(ps_nameset_t *s, const char *name, int n)
{
    apr_hash_index_t *hi;

    for (hi = apr_hash_first(NULL, s->h); hi; hi = apr_hash_next(hi)) {
        const void *k;
        apr_ssize_t klen;
        apr_hash_this(hi, &k, &klen, NULL);
        if (klen == n && !memcmp(k, name, (size_t)n)) {
            return k;
        }
    }
    return NULL;
}

static void test_compact_bounds_and_contents(void **state)
{
    static int vals[5000];
    ps_nameset_t s;
    char name[64];
    const char *before;
    int i, n;

    assert_int_equal(ps_nameset_init(&s, PS_T_MIN), APR_SUCCESS);
    for (i = 0; i < 5000; i++) {
        n = snprintf(name, sizeof(name), "user-%08d-inbox", i);
        vals[i] = i;
        ps_nameset_put(&s, name, (apr_size_t)n, &vals[i]);
    }
    /* removed bytes below min: kept as they are */
    for (i = 0; i < 100; i++) {
        n = snprintf(name, sizeof(name), "user-%08d-inbox", i);
        ps_nameset_del(&s, name, (apr_size_t)n);
    }
    assert_int_equal(s.dead, 100 * 20);
    assert_int_equal(ps_nameset_compact(&s), 0);
    /* past min but fewer than the kept ones: kept */
    for (; i < 2000; i++) {
        n = snprintf(name, sizeof(name), "user-%08d-inbox", i);
        ps_nameset_del(&s, name, (apr_size_t)n);
    }
    assert_int_equal(ps_nameset_compact(&s), 0);
    /* more removed than kept: the kept ones move */
    for (; i < 4990; i++) {
        n = snprintf(name, sizeof(name), "user-%08d-inbox", i);
        ps_nameset_del(&s, name, (apr_size_t)n);
    }
    n = snprintf(name, sizeof(name), "user-%08d-inbox", 4995);
    before = ps_t_key(&s, name, n);
    assert_non_null(before);
    assert_int_equal(ps_nameset_compact(&s), 4990 * 20);
    assert_int_equal(s.dead, 0);
    assert_int_equal(s.live, 10 * 20);
    assert_int_equal(ps_nameset_count(&s), 10);
    for (i = 0; i < 5000; i++) {
        n = snprintf(name, sizeof(name), "user-%08d-inbox", i);
        if (i < 4990) {
            assert_null(ps_nameset_get(&s, name, (apr_size_t)n));
        }
        else {
            assert_ptr_equal(ps_nameset_get(&s, name, (apr_size_t)n), &vals[i]);
        }
    }
    /* the kept names live in the new pool */
    n = snprintf(name, sizeof(name), "user-%08d-inbox", 4995);
    assert_ptr_not_equal(ps_t_key(&s, name, n), before);
    assert_non_null(ps_t_key(&s, name, n));
    assert_int_equal(ps_nameset_compact(&s), 0);   /* nothing removed since */
    ps_nameset_destroy(&s);
}

/* Users come and go for "days": with a compaction after each round (as
 * the Redis session's tick), the removed bytes never pass the bound. */
static void test_churn_stays_bounded(void **state)
{
    ps_nameset_t s;
    char name[64];
    int round, i, n, v = 1, compactions = 0;

    assert_int_equal(ps_nameset_init(&s, PS_T_MIN), APR_SUCCESS);
    for (round = 0; round < 200; round++) {
        for (i = 0; i < 300; i++) {
            n = snprintf(name, sizeof(name), "u%d-%d", round, i);
            ps_nameset_put(&s, name, (apr_size_t)n, &v);
        }
        for (i = 0; i < 300; i++) {
            n = snprintf(name, sizeof(name), "u%d-%d", round ? round - 1 : 0, i);
            ps_nameset_del(&s, name, (apr_size_t)n);
        }
        if (ps_nameset_compact(&s)) {
            compactions++;
        }
        assert_true(s.dead < PS_T_MIN || s.dead < s.live);
    }
    assert_true(compactions > 10);
    assert_int_equal(ps_nameset_count(&s), 300);
    ps_nameset_destroy(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        PS_TEST(test_put_get_del),
        PS_TEST(test_del_while_walking),
        PS_TEST(test_compact_bounds_and_contents),
        PS_TEST(test_churn_stays_bounded),
    };

    PS_TEST_RUN(tests);
}
