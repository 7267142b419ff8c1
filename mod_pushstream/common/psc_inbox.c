/* psc_inbox.c - the loops' hand-over list (see psc_inbox.h). */

#include "psc_inbox.h"

static void **psc_next_of(const psc_inbox_t *in, void *e)
{
    return (void **)((char *)e + in->next_off);
}

apr_status_t psc_inbox_init(psc_inbox_t *in, apr_pool_t *p, size_t next_off)
{
    in->head = in->tail = NULL;
    in->next_off = next_off;
    return apr_thread_mutex_create(&in->mtx, APR_THREAD_MUTEX_DEFAULT, p);
}

void psc_inbox_put(psc_inbox_t *in, void *e)
{
    *psc_next_of(in, e) = NULL;
    apr_thread_mutex_lock(in->mtx);
    if (in->tail) {
        *psc_next_of(in, in->tail) = e;
    }
    else {
        in->head = e;
    }
    in->tail = e;
    apr_thread_mutex_unlock(in->mtx);
}

void *psc_inbox_take(psc_inbox_t *in)
{
    void *e;

    apr_thread_mutex_lock(in->mtx);
    e = in->head;
    in->head = in->tail = NULL;
    apr_thread_mutex_unlock(in->mtx);
    return e;
}

void *psc_inbox_next(const psc_inbox_t *in, void *e)
{
    return *psc_next_of(in, e);
}
