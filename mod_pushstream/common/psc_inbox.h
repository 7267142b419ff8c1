/* psc_inbox.h - the hand-over list of both loops (httpd-free core): any
 * thread puts a connection in, the loop thread takes them all out, oldest
 * first.  Elements are structs of the caller's with a "next" pointer at
 * next_off (offsetof). */
#ifndef PSC_INBOX_H
#define PSC_INBOX_H

#include <stddef.h>
#include <apr_pools.h>
#include <apr_thread_mutex.h>

typedef struct psc_inbox_t {
    apr_thread_mutex_t *mtx;
    void *head, *tail;
    size_t next_off;
} psc_inbox_t;

apr_status_t psc_inbox_init(psc_inbox_t *in, apr_pool_t *p, size_t next_off);

/* Any thread.  The caller then wakes its loop. */
void psc_inbox_put(psc_inbox_t *in, void *e);

/* Loop thread: everything put so far, oldest first (NULL: nothing); walk
 * with psc_inbox_next() before handing an element on (it reuses "next"). */
void *psc_inbox_take(psc_inbox_t *in);
void *psc_inbox_next(const psc_inbox_t *in, void *e);

#endif
