/* psc_heap.h - the timer heap of both modules' loops (httpd-free core).
 *
 * A binary min-heap of elements of any struct type T that carries an
 * apr_time_t key (the deadline) and an int index (-1 = not in the heap);
 * the heap is told where they are with offsetof(T, ...), so that the
 * pollees of both loops (ps_sub_t, pswt_tunnel_t) keep their own fields. */
#ifndef PSC_HEAP_H
#define PSC_HEAP_H

#include <stddef.h>
#include <apr_errno.h>
#include <apr_time.h>

typedef struct psc_heap_t {
    void **v;
    int n, cap;
    size_t key_off;                /* offsetof(T, deadline): apr_time_t */
    size_t idx_off;                /* offsetof(T, heap_idx): int */
} psc_heap_t;

void psc_heap_init(psc_heap_t *h, size_t key_off, size_t idx_off);

/* Insert e (not in the heap).  APR_ENOMEM when the heap cannot grow: e
 * stays out (index -1) and the heap is unchanged. */
apr_status_t psc_heap_push(psc_heap_t *h, void *e);

/* Take e out; nothing when it is not in. */
void psc_heap_remove(psc_heap_t *h, void *e);

/* The element with the smallest key if that key is <= now, taken out of
 * the heap; NULL when none is due. */
void *psc_heap_pop_due(psc_heap_t *h, apr_time_t now);

/* How long to sleep: max, or less when the earliest key comes sooner
 * (0 when it is past). */
apr_interval_time_t psc_heap_timeout(const psc_heap_t *h, apr_time_t now,
                                     apr_interval_time_t max);

/* e was copied from an element in the heap (same index): the heap points
 * to e instead. */
void psc_heap_moved(psc_heap_t *h, void *e);

int psc_heap_count(const psc_heap_t *h);

/* Free the array (the elements are the caller's). */
void psc_heap_free(psc_heap_t *h);

#endif
