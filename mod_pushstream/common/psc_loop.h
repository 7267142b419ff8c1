/* psc_loop.h - the event loop of both modules (httpd-free core).
 *
 * httpd 2.4's event MPM forgets a connection whose handler returned
 * SUSPENDED, so each child runs a loop of its own that owns such
 * connections (subscribers of mod_pushstream, tunnels of
 * mod_pushstream_wstunnel): a pollset with a wakeup, a timer heap
 * (psc_heap.h), an inbox for connections handed over by other threads
 * (psc_inbox.h), a ready list (read again next turn), a retire list with
 * the one rule for when a suspended connection's pool may be freed, and
 * run / graceful shutdown / stop.
 *
 * The loop knows what it serves only by callbacks: a connection embeds a
 * psc_item_t (its ops: on_adopt, on_timer, on_again, on_shutdown,
 * on_abort, on_release), and every pollset entry's client_data points to a
 * psc_pollee_t (on_io).  Anything else a loop serves (a publisher port, a
 * Redis connection) is a psc_loop_ext_t. */
#ifndef PSC_LOOP_H
#define PSC_LOOP_H

#include <apr_poll.h>
#include <apr_pools.h>
#include <apr_thread_proc.h>
#include <apr_portable.h>

typedef struct psc_loop_t psc_loop_t;
typedef struct psc_item_t psc_item_t;

/* What apr_pollfd_t.client_data points to (first member of the owner's
 * struct, or reached with offsetof): the loop calls on_io on events. */
typedef struct psc_pollee_t {
    void (*on_io)(struct psc_pollee_t *self, apr_int16_t rtnevents,
                  apr_time_t now);
} psc_pollee_t;

/* What a connection of the loop does; every callback on the loop thread. */
typedef struct psc_item_ops_t {
    /* taken from the inbox (psc_loop_adopt()) */
    void (*on_adopt)(psc_item_t *it, apr_time_t now);
    /* its deadline came (psc_loop_schedule()) */
    void (*on_timer)(psc_item_t *it, apr_time_t now);
    /* queued with psc_loop_ready(): read again without waiting */
    void (*on_again)(psc_item_t *it, apr_time_t now);
    /* the child stops: end cleanly */
    void (*on_shutdown)(psc_item_t *it, apr_time_t now);
    /* the process goes away: end without a word, psc_loop_retire() */
    void (*on_abort)(psc_item_t *it);
    /* retired, and the worker that suspended it is gone: free it */
    void (*on_release)(psc_item_t *it);
    /* the process goes away and it was retired, not released (NULL: nothing) */
    void (*on_drop)(psc_item_t *it);
} psc_item_ops_t;

/* Embedded in each connection; the loop's fields, the owner's ops. */
struct psc_item_t {
    const psc_item_ops_t *ops;
    /* The word the worker that suspended the connection clears when it
     * leaves (&c->sbh); NULL: no worker to wait for (the handler's own
     * thread runs it, or it left httpd). */
    void *const *worker_mark;
    apr_time_t worker_left_at;     /* when *worker_mark was seen NULL */
    apr_time_t deadline;           /* heap key; 0 = no timer */
    int heap_idx;                  /* -1 = not in the heap */
    int done;                      /* retired */
    int ready;                     /* in the ready list */
    apr_time_t adopted_at;
    psc_item_t *next;              /* inbox / retired list */
    psc_item_t *ready_next;
    psc_item_t *all_prev, *all_next;
};

/* Something else the loop serves, known by its callbacks (loop thread,
 * except count). */
typedef struct psc_loop_ext_t {
    void *baton;
    void (*on_tick)(void *baton, apr_time_t now);     /* about once a second */
    void (*on_shutdown)(void *baton);                 /* the child stops */
    apr_uint32_t (*count)(void *baton);               /* open connections */
    void (*on_destroy)(void *baton);                  /* the loop exits */
    /* may be NULL: the last thing of every turn, right before the loop
     * polls again (a place to flush what the turn queued) */
    void (*on_turn_end)(void *baton, apr_time_t now);
} psc_loop_ext_t;

/* The owner's hooks into each turn (all may be NULL). */
typedef struct psc_loop_hooks_t {
    void *baton;
    /* after I/O, the ready list and the inbox, before the timers */
    void (*on_turn)(void *baton, apr_time_t now);
    /* last thing of a turn */
    void (*on_turn_end)(void *baton, apr_time_t now);
    /* the loop thread is about to exit (after every item was aborted) */
    void (*on_exit)(void *baton);
} psc_loop_hooks_t;

/* How long a retired connection waits after its worker was seen leaving
 * (*worker_mark NULL): the event MPM's worker still stores into the
 * connection state (in c->pool) right after clearing c->sbh. */
#define PSC_RELEASE_AGE    apr_time_from_msec(50)

#define PSC_LOOP_MAX_EXT   4

/* wakeable: other threads adopt into it, shut it down, stop it. */
apr_status_t psc_loop_create(apr_pool_t *p, int wakeable, apr_uint32_t size,
                             const psc_loop_hooks_t *hooks, psc_loop_t **out);

/* Before psc_loop_start(): serve ext too (up to PSC_LOOP_MAX_EXT). */
apr_status_t psc_loop_add_ext(psc_loop_t *l, const psc_loop_ext_t *ext);

/* The thread function's creator (ap_thread_create in httpd, which sets up
 * its thread-local state; apr_thread_create elsewhere). */
typedef apr_status_t (psc_thread_create_fn)(apr_thread_t **t,
                                            apr_threadattr_t *attr,
                                            apr_thread_start_t func,
                                            void *data, apr_pool_t *p);

/* Run the loop on a thread of its own (asynchronous signals blocked on it). */
apr_status_t psc_loop_start(psc_loop_t *l, psc_thread_create_fn *create);

/* Run on this thread until every adopted item is released. */
void psc_loop_run_local(psc_loop_t *l);

/* Any thread: end every item cleanly (on_shutdown). */
void psc_loop_shutdown(psc_loop_t *l);

/* Stop the thread and wait for it.  wait > 0: first wait (bounded) for the
 * items, the retired ones and the exts' connections to end. */
void psc_loop_stop(psc_loop_t *l, apr_interval_time_t wait);

/* Any thread: wake the poll. */
void psc_loop_wakeup(psc_loop_t *l);

/* Any thread: hand it over; from then on the loop thread owns it. */
void psc_loop_adopt(psc_loop_t *l, psc_item_t *it, const psc_item_ops_t *ops,
                    void *const *worker_mark);

/* ---- loop thread only ---- */

/* (Re)arm the item's timer at it->deadline (0: none).  APR_ENOMEM: no
 * timer (the heap could not grow). */
apr_status_t psc_loop_schedule(psc_loop_t *l, psc_item_t *it);

/* Call on_again on the next turn. */
void psc_loop_ready(psc_loop_t *l, psc_item_t *it);

/* The item is finished: out of the lists; released by a later turn. */
void psc_loop_retire(psc_loop_t *l, psc_item_t *it);

/* Has the worker that suspended it left the connection for good?  Seen
 * once, the answer stays (a later resume cannot undo it). */
int psc_item_worker_gone(psc_item_t *it, apr_time_t now);
/* Only: is *worker_mark NULL (seen once: stays)? */
int psc_item_worker_left(psc_item_t *it, apr_time_t now);

/* Poll pfd for ev (0: not at all); *events holds what is registered. */
apr_status_t psc_loop_watch(psc_loop_t *l, apr_pollfd_t *pfd,
                            apr_int16_t *events, apr_int16_t ev);
apr_status_t psc_loop_poll_add(psc_loop_t *l, apr_pollfd_t *pfd);
void psc_loop_poll_remove(psc_loop_t *l, apr_pollfd_t *pfd);

/* old was copied into new (a connection leaving httpd): the timer heap and
 * the loop's list point to new (the pollset entries are the owner's). */
void psc_loop_replace(psc_loop_t *l, psc_item_t *old, psc_item_t *new);

/* An apr_socket_t (timeout 0) for an fd of ours, reused from closed ones;
 * and closing it. */
apr_socket_t *psc_loop_socket_open(psc_loop_t *l, apr_os_sock_t fd);
void psc_loop_socket_close(psc_loop_t *l, apr_socket_t *s);
/* Such a socket on a dup() of s's descriptor (*fd); NULL: none (EMFILE). */
apr_socket_t *psc_loop_socket_dup(psc_loop_t *l, apr_socket_t *s,
                                  apr_os_sock_t *fd);
/* A connection that keeps only a descriptor (no apr_socket_t of its own,
 * ~0.5 KB with its two addresses): psc_loop_fd_dup() gives a nonblocking
 * dup() of s's (-1: none, EMFILE), psc_loop_fd_socket() lends the loop's
 * one apr_socket_t holding fd, valid until the next call (loop thread):
 * for a call on the socket, or as pfd->desc.s while the pfd is added to or
 * removed from the pollset (which keeps no copy: APR_POLLSET_NOCOPY). */
int psc_loop_fd_dup(apr_socket_t *s);
apr_socket_t *psc_loop_fd_socket(psc_loop_t *l, apr_os_sock_t fd);

int psc_loop_is_shutting_down(const psc_loop_t *l);
int psc_loop_has_retired(const psc_loop_t *l);

/* Visit every live item (loop thread). */
psc_item_t *psc_loop_first(psc_loop_t *l);

/* Any thread (approximate): live items. */
apr_uint32_t psc_loop_count(psc_loop_t *l);

#endif
