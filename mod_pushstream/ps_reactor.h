/* ps_reactor.h - the subscribers of a child on its loop (psc_loop.h).
 *
 * httpd 2.4's event MPM forgets a connection whose handler returned
 * SUSPENDED, so each child runs one loop thread of its own (psc_loop.c:
 * pollset, timers, hand-over, release).  The reactor is what mod_pushstream
 * puts on it: the registry of this child's subscribers by channel and the
 * reader of the shared segment's publish log, read when another process
 * (or thread) publishes and wakes us, delivering to the subscribers. */
#ifndef PS_REACTOR_H
#define PS_REACTOR_H

#include <apr_buckets.h>
#include <apr_network_io.h>
#include <apr_portable.h>

#include "ps_child.h"
#include "psc_loop.h"

typedef struct ps_reactor_t ps_reactor_t;

/* One channel of a subscriber in this child's registry (the subscriber
 * embeds it, ps_sub.h); the reactor's, between ps_reactor_link() and
 * ps_reactor_unlink(). */
typedef struct ps_rlink_t {
    struct ps_lchan_t *lchan;      /* NULL: not linked */
    struct ps_rlink_t *prev, *next;
} ps_rlink_t;

/* What the reactor calls of its subscribers (ps_sub_loop.c), which it
 * knows only by their links. */
typedef struct ps_reactor_subs_t {
    /* ps_reactor_start(), starting thread: the subscribers' state of this
     * reactor (ps_reactor_subs_baton()), from pool. */
    void *(*init)(apr_pool_t *pool);
    /* Loop thread.  The subscriber of l if it takes the live message of
     * sequence seq now, else NULL (the catch-up of ps_reactor_catchup()
     * compares it with its owner). */
    const void *(*wants)(const ps_rlink_t *l, apr_uint64_t seq);
    /* Loop thread.  A live message for l (deleted: its channel's notice). */
    void (*message)(ps_rlink_t *l, const ps_msgview_t *m, int deleted);
    /* Under the store lock: l's channel was deleted; its subscription in
     * the segment ends (the reactor then unlinks l). */
    void (*dropped)(ps_rlink_t *l, apr_int64_t now);
    /* Around the delivery of one read of the publish log. */
    void (*batch_begin)(void *baton);
    void (*batch_end)(void *baton);
} ps_reactor_subs_t;

/* What the loop finds behind a pollset entry (psc_loop.h): client_data
 * points to a struct whose first member is a ps_pollee_t, whose on_io the
 * loop calls without knowing what the pollee is (subscribers, ps_pubport.c). */
typedef psc_pollee_t ps_pollee_t;

/* Something else the loop serves, known by its callbacks (psc_loop.h). */
typedef psc_loop_ext_t ps_loop_ext_t;

/* Called by ps_reactor_start() before the loop thread runs, to attach
 * what else the loop serves (ps_reactor_add_ext()); may be NULL. */
typedef void (ps_reactor_attach_fn)(ps_child_t *child, ps_reactor_t *re);

/* Start the loop thread (child_init). */
apr_status_t ps_reactor_start(ps_child_t *child,
                              const ps_reactor_subs_t *subs,
                              ps_reactor_attach_fn *attach, ps_reactor_t **out);

/* The loop the subscribers are items of (psc_loop.h). */
psc_loop_t *ps_reactor_loop(ps_reactor_t *re);

/* subs->init()'s result. */
void *ps_reactor_subs_baton(ps_reactor_t *re);

/* From an attach hook: serve ext too (up to 4); *ext is copied. */
apr_status_t ps_reactor_add_ext(ps_reactor_t *re, const ps_loop_ext_t *ext);

/* Child stopping: end every subscriber cleanly (footer, 304, close).
 * graceful: ps_reactor_stop() then waits (bounded) for them to finish,
 * since detached streams no longer keep the MPM from ending the child. */
void ps_reactor_shutdown(ps_reactor_t *re, int graceful);

/* Stop the thread and wait for it (pchild cleanup). */
void ps_reactor_stop(ps_reactor_t *re);

/* Loop thread: l joins the subscribers of channel (id, len) of generation
 * serial / leaves them (no-op when not linked). */
void ps_reactor_link(ps_reactor_t *re, ps_rlink_t *l, const char *id,
                     apr_size_t len, apr_uint64_t serial);
void ps_reactor_unlink(ps_reactor_t *re, ps_rlink_t *l);

/* Loop thread: l was moved in memory (its prev / next already point to
 * where its neighbours are now): the neighbours point to it again. */
void ps_reactor_link_moved(ps_rlink_t *l);

/* Loop thread: a new subscriber (owner, as subs->wants() returns it) gets
 * what this loop dispatched after start_seq before it knew it. */
void ps_reactor_catchup(ps_reactor_t *re, const void *owner,
                        apr_uint64_t start_seq);

/* Loop thread: a connection gave memory back (counts toward malloc_trim). */
void ps_reactor_freed(ps_reactor_t *re);

/* Loop thread: a detached subscriber keeps only a nonblocking dup() of
 * its socket's descriptor (-1: none, EMFILE) and borrows the loop's one
 * apr_socket_t for it, valid until the next call (psc_loop.h:
 * psc_loop_fd_dup, psc_loop_fd_socket). */
int ps_reactor_fd_dup(apr_socket_t *s);
apr_socket_t *ps_reactor_fd_socket(ps_reactor_t *re, apr_os_sock_t fd);

/* Loop thread: the bucket allocator of detached subscribers. */
apr_bucket_alloc_t *ps_reactor_bucket_alloc(ps_reactor_t *re);

/* Loop thread: poll another kind of connection (ps_pubport.c); the
 * client_data of pfd starts with its ps_pollee_t. */
apr_status_t ps_reactor_poll_add(ps_reactor_t *re, apr_pollfd_t *pfd);
void ps_reactor_poll_remove(ps_reactor_t *re, apr_pollfd_t *pfd);

/* Number of subscribers the loop owns (any thread; approximate). */
apr_uint32_t ps_reactor_count(ps_reactor_t *re);

#endif
