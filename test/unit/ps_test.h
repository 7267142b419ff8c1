/* ps_test.h - common includes and helpers for the cmocka unit tests of the
 * core files (no httpd).  Each test_*.c has its own main(). */
#ifndef PS_TEST_H
#define PS_TEST_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_pools.h>

/* A fresh pool per test: pass as the group/test setup, destroy in the
 * teardown.  *state holds the apr_pool_t *. */
static inline int ps_test_pool_setup(void **state)
{
    apr_pool_t *p = NULL;

    if (apr_pool_create(&p, NULL) != APR_SUCCESS)
        return -1;
    *state = p;
    return 0;
}

static inline int ps_test_pool_teardown(void **state)
{
    apr_pool_destroy((apr_pool_t *)*state);
    return 0;
}

/* Initialise APR, run the tests each with its own pool, shut APR down. */
#define PS_TEST_RUN(tests)                                                 \
    do {                                                                   \
        int ps_rc_;                                                        \
        apr_initialize();                                                  \
        ps_rc_ = cmocka_run_group_tests(tests, NULL, NULL);                \
        apr_terminate();                                                   \
        return ps_rc_;                                                     \
    } while (0)

#define PS_TEST(f) \
    cmocka_unit_test_setup_teardown(f, ps_test_pool_setup, ps_test_pool_teardown)

/* Byte-exact comparison of a (pointer, length) against a literal. */
#define ps_assert_mem(ptr, len, lit)                                       \
    do {                                                                   \
        assert_int_equal((len), sizeof(lit) - 1);                          \
        assert_memory_equal((ptr), (lit), sizeof(lit) - 1);                 \
    } while (0)

#endif
