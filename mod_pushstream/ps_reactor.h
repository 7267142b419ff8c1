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

struct ps_sub_t;
typedef struct ps_reactor_t ps_reactor_t;

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
apr_status_t ps_reactor_start(ps_child_t *child, ps_reactor_attach_fn *attach,
                              ps_reactor_t **out);

/* From an attach hook: serve ext too (up to 4); *ext is copied. */
apr_status_t ps_reactor_add_ext(ps_reactor_t *re, const ps_loop_ext_t *ext);

/* Hand a subscriber to the loop; any thread.  From then on only the loop
 * thread touches its connection. */
void ps_reactor_adopt(ps_reactor_t *re, struct ps_sub_t *sub);

/* Child stopping: end every subscriber cleanly (footer, 304, close).
 * graceful: ps_reactor_stop() then waits (bounded) for them to finish,
 * since detached streams no longer keep the MPM from ending the child. */
void ps_reactor_shutdown(ps_reactor_t *re, int graceful);

/* Stop the thread and wait for it (pchild cleanup). */
void ps_reactor_stop(ps_reactor_t *re);

/* Loop-thread only: (re)arm a subscriber's timer after its deadline moved,
 * and ask for write readiness. */
void ps_reactor_reschedule(ps_reactor_t *re, struct ps_sub_t *sub);
void ps_reactor_want_write(ps_reactor_t *re, struct ps_sub_t *sub, int on);

/* Loop-thread only: read this subscriber again on the next turn, whether
 * or not the socket polls readable (its filters may hold input). */
void ps_reactor_read_again(ps_reactor_t *re, struct ps_sub_t *sub);

/* Loop-thread only: the subscriber's connection is finished; its
 * resources are released on a later turn of the loop. */
void ps_reactor_retire(ps_reactor_t *re, struct ps_sub_t *sub);

/* Loop thread: a connection gave memory back (counts toward malloc_trim). */
void ps_reactor_freed(ps_reactor_t *re);

/* Loop thread: the reactor's write batch (ps_sub_batch_begin()). */
struct ps_sub_batch_t *ps_reactor_batch(ps_reactor_t *re);

/* Loop thread: a detached subscriber's socket (sockets are reused, so
 * none stays allocated per subscriber that came and went), timeout 0. */
apr_socket_t *ps_reactor_socket_open(ps_reactor_t *re, apr_os_sock_t fd);
void ps_reactor_socket_close(ps_reactor_t *re, apr_socket_t *s);
/* ... on a dup() of s's descriptor (*fd); NULL: none (EMFILE). */
apr_socket_t *ps_reactor_socket_dup(ps_reactor_t *re, apr_socket_t *s,
                                    apr_os_sock_t *fd);

/* Loop thread: the bucket allocator of detached subscribers. */
apr_bucket_alloc_t *ps_reactor_bucket_alloc(ps_reactor_t *re);

/* Loop thread: sub moved to new (ps_sub_detach): every link of the loop
 * to it (list, timer heap, pollset, local channels) is redone for new. */
void ps_reactor_replace(ps_reactor_t *re, struct ps_sub_t *old,
                        struct ps_sub_t *new);

/* Loop thread: poll another kind of connection (ps_pubport.c); the
 * client_data of pfd starts with its ps_pollee_t. */
apr_status_t ps_reactor_poll_add(ps_reactor_t *re, apr_pollfd_t *pfd);
void ps_reactor_poll_remove(ps_reactor_t *re, apr_pollfd_t *pfd);

/* Number of subscribers the loop owns (any thread; approximate). */
apr_uint32_t ps_reactor_count(ps_reactor_t *re);

#endif
