/* psc_heap.c - the loops' timer heap (see psc_heap.h). */

#include <stdlib.h>

#include "psc_heap.h"

#define PSC_HEAP_FIRST 256

static apr_time_t psc_key(const psc_heap_t *h, const void *e)
{
    return *(const apr_time_t *)((const char *)e + h->key_off);
}

static int *psc_idx(const psc_heap_t *h, void *e)
{
    return (int *)((char *)e + h->idx_off);
}

static void psc_set(psc_heap_t *h, int i, void *e)
{
    h->v[i] = e;
    *psc_idx(h, e) = i;
}

static void psc_up(psc_heap_t *h, int i)
{
    void *e = h->v[i];

    while (i > 0) {
        int parent = (i - 1) / 2;
        if (psc_key(h, h->v[parent]) <= psc_key(h, e)) {
            break;
        }
        psc_set(h, i, h->v[parent]);
        i = parent;
    }
    psc_set(h, i, e);
}

static void psc_down(psc_heap_t *h, int i)
{
    void *e = h->v[i];

    for (;;) {
        int child = 2 * i + 1;
        if (child >= h->n) {
            break;
        }
        if (child + 1 < h->n
            && psc_key(h, h->v[child + 1]) < psc_key(h, h->v[child])) {
            child++;
        }
        if (psc_key(h, e) <= psc_key(h, h->v[child])) {
            break;
        }
        psc_set(h, i, h->v[child]);
        i = child;
    }
    psc_set(h, i, e);
}

void psc_heap_init(psc_heap_t *h, size_t key_off, size_t idx_off)
{
    h->v = NULL;
    h->n = h->cap = 0;
    h->key_off = key_off;
    h->idx_off = idx_off;
}

apr_status_t psc_heap_push(psc_heap_t *h, void *e)
{
    if (h->n == h->cap) {
        int cap = h->cap ? h->cap * 2 : PSC_HEAP_FIRST;
        void **v = realloc(h->v, (size_t)cap * sizeof(*v));
        if (!v) {
            *psc_idx(h, e) = -1;
            return APR_ENOMEM;
        }
        h->v = v;
        h->cap = cap;
    }
    h->v[h->n] = e;
    *psc_idx(h, e) = h->n++;
    psc_up(h, h->n - 1);
    return APR_SUCCESS;
}

void psc_heap_remove(psc_heap_t *h, void *e)
{
    int i = *psc_idx(h, e);
    void *last;

    if (i < 0) {
        return;
    }
    *psc_idx(h, e) = -1;
    last = h->v[--h->n];
    if (i < h->n) {
        psc_set(h, i, last);
        psc_down(h, i);
        psc_up(h, *psc_idx(h, last));
    }
}

void *psc_heap_pop_due(psc_heap_t *h, apr_time_t now)
{
    void *e;

    if (!h->n || psc_key(h, h->v[0]) > now) {
        return NULL;
    }
    e = h->v[0];
    psc_heap_remove(h, e);
    return e;
}

apr_interval_time_t psc_heap_timeout(const psc_heap_t *h, apr_time_t now,
                                     apr_interval_time_t max)
{
    apr_interval_time_t d;

    if (!h->n) {
        return max;
    }
    d = psc_key(h, h->v[0]) - now;
    return d < 0 ? 0 : (d < max ? d : max);
}

void psc_heap_moved(psc_heap_t *h, void *e)
{
    int i = *psc_idx(h, e);

    if (i >= 0 && i < h->n) {
        h->v[i] = e;
    }
}

int psc_heap_count(const psc_heap_t *h)
{
    return h->n;
}

void psc_heap_free(psc_heap_t *h)
{
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}
