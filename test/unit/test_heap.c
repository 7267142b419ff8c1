/* test_heap.c - the loops' timer heap (common/psc_heap.c): order, removal,
 * due elements, timeouts, and a realloc() that fails while the heap grows
 * (the heap stays sound; the element stays out).  Linked with
 * -Wl,--wrap=realloc (apxs.mk). */
#include <stdlib.h>

#include "ps_test.h"
#include "psc_heap.h"

void *__real_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n);

static int psc_t_fail_realloc;

void *__wrap_realloc(void *p, size_t n)
{
    if (psc_t_fail_realloc) {
        return NULL;
    }
    return __real_realloc(p, n);
}

typedef struct psc_t_elt_t {
    int tag;
    apr_time_t deadline;
    int heap_idx;
} psc_t_elt_t;

#define PSC_T_N 1000

static void psc_t_init(psc_heap_t *h)
{
    psc_heap_init(h, offsetof(psc_t_elt_t, deadline),
                  offsetof(psc_t_elt_t, heap_idx));
}

/* Pop everything due by now; the keys come out sorted. */
static int psc_t_drain(psc_heap_t *h, apr_time_t now)
{
    psc_t_elt_t *e;
    apr_time_t last = -1;
    int n = 0;

    while ((e = psc_heap_pop_due(h, now)) != NULL) {
        assert_true(e->deadline >= last);
        assert_int_equal(e->heap_idx, -1);
        last = e->deadline;
        n++;
    }
    return n;
}

static void test_heap_order(void **state)
{
    static psc_t_elt_t e[PSC_T_N];
    psc_heap_t h;
    int i, due;

    psc_t_init(&h);
    for (i = 0; i < PSC_T_N; i++) {
        e[i].tag = i;
        e[i].deadline = (apr_time_t)((i * 7919) % PSC_T_N) + 1;
        assert_int_equal(psc_heap_push(&h, &e[i]), APR_SUCCESS);
    }
    assert_int_equal(psc_heap_count(&h), PSC_T_N);
    /* remove every third: the rest still comes out in order */
    for (i = 0; i < PSC_T_N; i += 3) {
        psc_heap_remove(&h, &e[i]);
        assert_int_equal(e[i].heap_idx, -1);
        psc_heap_remove(&h, &e[i]);          /* twice: nothing */
    }
    assert_null(psc_heap_pop_due(&h, 0));
    due = 0;
    for (i = 0; i < PSC_T_N; i++) {
        due += i % 3 && e[i].deadline <= PSC_T_N / 2;
    }
    assert_int_equal(psc_t_drain(&h, PSC_T_N / 2), due);
    assert_int_equal(psc_t_drain(&h, PSC_T_N) + due,
                     PSC_T_N - (PSC_T_N + 2) / 3);
    assert_int_equal(psc_heap_count(&h), 0);
    psc_heap_free(&h);
}

static void test_heap_timeout(void **state)
{
    psc_t_elt_t a = { 1, 1000, -1 }, b = { 2, 5000, -1 };
    psc_heap_t h;

    psc_t_init(&h);
    assert_int_equal(psc_heap_timeout(&h, 0, 777), 777);
    assert_int_equal(psc_heap_push(&h, &b), APR_SUCCESS);
    assert_int_equal(psc_heap_push(&h, &a), APR_SUCCESS);
    assert_int_equal(psc_heap_timeout(&h, 400, 1000000), 600);
    assert_int_equal(psc_heap_timeout(&h, 400, 100), 100);
    assert_int_equal(psc_heap_timeout(&h, 2000, 100), 0);
    psc_heap_free(&h);
}

static void test_heap_moved(void **state)
{
    psc_t_elt_t a = { 1, 10, -1 }, b = { 2, 20, -1 }, c;
    psc_heap_t h;

    psc_t_init(&h);
    assert_int_equal(psc_heap_push(&h, &a), APR_SUCCESS);
    assert_int_equal(psc_heap_push(&h, &b), APR_SUCCESS);
    c = b;                                   /* b moves to c */
    c.tag = 3;
    psc_heap_moved(&h, &c);
    assert_ptr_equal(psc_heap_pop_due(&h, 100), &a);
    assert_ptr_equal(psc_heap_pop_due(&h, 100), &c);
    psc_heap_free(&h);
}

/* The heap cannot grow: push says so, the element stays out, everything
 * already in is still there and in order; once memory is back, it grows. */
static void test_heap_realloc_fails(void **state)
{
    static psc_t_elt_t e[PSC_T_N];
    psc_t_elt_t extra = { -1, 0, 1234 };
    psc_heap_t h;
    int i, in = 0;

    psc_t_init(&h);
    psc_t_fail_realloc = 1;                  /* not even the first array */
    assert_int_equal(psc_heap_push(&h, &extra), APR_ENOMEM);
    assert_int_equal(extra.heap_idx, -1);
    assert_int_equal(psc_heap_count(&h), 0);
    psc_heap_remove(&h, &extra);             /* not in: nothing */
    psc_t_fail_realloc = 0;
    for (i = 0; i < PSC_T_N; i++) {
        e[i].deadline = PSC_T_N - i;
        psc_t_fail_realloc = i >= 256;       /* the first array holds 256 */
        if (psc_heap_push(&h, &e[i]) == APR_SUCCESS) {
            in++;
        }
        else {
            assert_int_equal(e[i].heap_idx, -1);
        }
    }
    psc_t_fail_realloc = 0;
    assert_int_equal(in, 256);
    assert_int_equal(psc_heap_count(&h), 256);
    for (i = 256; i < PSC_T_N; i++) {
        psc_heap_remove(&h, &e[i]);          /* never in: nothing */
    }
    assert_int_equal(psc_heap_push(&h, &extra), APR_SUCCESS);
    assert_int_equal(psc_t_drain(&h, PSC_T_N), 257);
    psc_heap_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heap_order),
        cmocka_unit_test(test_heap_timeout),
        cmocka_unit_test(test_heap_moved),
        cmocka_unit_test(test_heap_realloc_fails),
    };
    PS_TEST_RUN(tests);
}
