/* test_inbox.c - the loops' hand-over list (common/psc_inbox.c): order,
 * an empty take, and 4 threads putting while a taker drains: every element
 * arrives once, each thread's in the order it put them. */
#include <apr_thread_proc.h>

#include "ps_test.h"
#include "psc_inbox.h"

typedef struct psc_t_item_t {
    int thread, seq;
    struct psc_t_item_t *next;
} psc_t_item_t;

#define PSC_T_THREADS 4
#define PSC_T_EACH    20000

static psc_inbox_t psc_t_in;
static psc_t_item_t psc_t_items[PSC_T_THREADS][PSC_T_EACH];

static void test_inbox_order(void **state)
{
    apr_pool_t *p = *state;
    psc_t_item_t it[3] = { { 0, 0, NULL }, { 0, 1, NULL }, { 0, 2, NULL } };
    psc_t_item_t *e;
    int n = 0;

    assert_int_equal(psc_inbox_init(&psc_t_in, p, offsetof(psc_t_item_t, next)),
                     APR_SUCCESS);
    assert_null(psc_inbox_take(&psc_t_in));
    psc_inbox_put(&psc_t_in, &it[0]);
    psc_inbox_put(&psc_t_in, &it[1]);
    psc_inbox_put(&psc_t_in, &it[2]);
    for (e = psc_inbox_take(&psc_t_in); e; e = psc_inbox_next(&psc_t_in, e))
        assert_int_equal(e->seq, n++);
    assert_int_equal(n, 3);
    assert_null(psc_inbox_take(&psc_t_in));
}

static void *APR_THREAD_FUNC psc_t_putter(apr_thread_t *t, void *data)
{
    int id = (int)(apr_uintptr_t)data, i;

    for (i = 0; i < PSC_T_EACH; i++) {
        psc_t_items[id][i].thread = id;
        psc_t_items[id][i].seq = i;
        psc_inbox_put(&psc_t_in, &psc_t_items[id][i]);
    }
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static void test_inbox_threads(void **state)
{
    apr_pool_t *p = *state;
    apr_thread_t *th[PSC_T_THREADS];
    int last[PSC_T_THREADS], got = 0, i;
    apr_status_t rv;

    assert_int_equal(psc_inbox_init(&psc_t_in, p, offsetof(psc_t_item_t, next)),
                     APR_SUCCESS);
    for (i = 0; i < PSC_T_THREADS; i++) {
        last[i] = -1;
        assert_int_equal(apr_thread_create(&th[i], NULL, psc_t_putter,
                                           (void *)(apr_uintptr_t)i, p),
                         APR_SUCCESS);
    }
    while (got < PSC_T_THREADS * PSC_T_EACH) {
        psc_t_item_t *e = psc_inbox_take(&psc_t_in);

        while (e) {
            psc_t_item_t *next = psc_inbox_next(&psc_t_in, e);
            assert_int_equal(e->seq, last[e->thread] + 1);
            last[e->thread] = e->seq;
            e->next = (psc_t_item_t *)0x1;       /* the taker reuses it */
            got++;
            e = next;
        }
    }
    for (i = 0; i < PSC_T_THREADS; i++) {
        apr_thread_join(&rv, th[i]);
        assert_int_equal(last[i], PSC_T_EACH - 1);
    }
    assert_null(psc_inbox_take(&psc_t_in));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        PS_TEST(test_inbox_order),
        PS_TEST(test_inbox_threads),
    };
    PS_TEST_RUN(tests);
}
