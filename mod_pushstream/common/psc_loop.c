/* psc_loop.c - the event loop of both modules (see psc_loop.h).
 *
 * One turn: poll, the pollees' on_io, the ready list, the inbox, the
 * owner's on_turn, the due timers, a pending shutdown, the exts' ticks,
 * the retired items whose worker is gone, the owner's on_turn_end. */

#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <fcntl.h>
#include <unistd.h>

#include <apr_atomic.h>
#include <apr_thread_proc.h>

#include "psc_loop.h"
#include "psc_heap.h"
#include "psc_inbox.h"

#define PSC_POLL_MAX       apr_time_from_sec(1)
#define PSC_TICK           apr_time_from_sec(1)

struct psc_loop_t {
    apr_pool_t *pool;
    apr_pollset_t *ps;
    int wakeable;
    apr_thread_t *thread;
    psc_inbox_t inbox;                 /* psc_item_t handed over */
    volatile int shutdown, exit;
    int shutdown_done;
    psc_heap_t heap;                   /* psc_item_t by deadline */
    psc_item_t *all;                   /* adopted, not retired */
    psc_item_t *retired;
    psc_item_t *ready_head;
    volatile apr_uint32_t count;
    apr_time_t next_tick;
    psc_loop_hooks_t hooks;
    psc_loop_ext_t ext[PSC_LOOP_MAX_EXT];
    int n_ext;
    apr_pool_t *sock_pool;             /* sockets of connections out of httpd */
    apr_array_header_t *spare_socks;   /* ... closed, for reuse */
    apr_socket_t *fd_sock;             /* psc_loop_fd_socket()'s one struct */
};

/* ---- timers, ready list, pollset --------------------------------------------- */

apr_status_t psc_loop_schedule(psc_loop_t *l, psc_item_t *it)
{
    psc_heap_remove(&l->heap, it);
    if (it->deadline && !it->done) {
        return psc_heap_push(&l->heap, it);
    }
    return APR_SUCCESS;
}

void psc_loop_ready(psc_loop_t *l, psc_item_t *it)
{
    if (!it->ready && !it->done) {
        it->ready = 1;
        it->ready_next = l->ready_head;
        l->ready_head = it;
    }
}

apr_status_t psc_loop_watch(psc_loop_t *l, apr_pollfd_t *pfd,
                            apr_int16_t *events, apr_int16_t ev)
{
    apr_status_t rv;

    if (*events == ev) {
        return APR_SUCCESS;
    }
    if (*events) {
        apr_pollset_remove(l->ps, pfd);
        *events = 0;
    }
    if (!ev) {
        return APR_SUCCESS;
    }
    pfd->reqevents = ev;
    rv = apr_pollset_add(l->ps, pfd);
    if (rv == APR_SUCCESS) {
        *events = ev;
    }
    return rv;
}

apr_status_t psc_loop_poll_add(psc_loop_t *l, apr_pollfd_t *pfd)
{
    return apr_pollset_add(l->ps, pfd);
}

void psc_loop_poll_remove(psc_loop_t *l, apr_pollfd_t *pfd)
{
    apr_pollset_remove(l->ps, pfd);
}

/* ---- sockets of connections out of httpd -------------------------------------- */

apr_socket_t *psc_loop_socket_open(psc_loop_t *l, apr_os_sock_t fd)
{
    apr_socket_t *s = NULL;

    if (l->spare_socks->nelts) {
        s = *(apr_socket_t **)apr_array_pop(l->spare_socks);
    }
    /* with s set, apr_os_sock_put() reuses the struct */
    if (apr_os_sock_put(&s, &fd, l->sock_pool) != APR_SUCCESS) {
        return NULL;
    }
    apr_socket_timeout_set(s, 0);
    return s;
}

void psc_loop_socket_close(psc_loop_t *l, apr_socket_t *s)
{
    apr_socket_close(s);
    APR_ARRAY_PUSH(l->spare_socks, apr_socket_t *) = s;
}

int psc_loop_fd_dup(apr_socket_t *s)
{
    apr_os_sock_t old;
    int fd, fl;

    if (apr_os_sock_get(&old, s) != APR_SUCCESS || (fd = dup(old)) < 0) {
        return -1;
    }
    /* (shared with old's open file: set whatever httpd left) */
    fl = fcntl(fd, F_GETFL);
    if (fl < 0
        || (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)) {
        close(fd);
        return -1;
    }
    return fd;
}

apr_socket_t *psc_loop_fd_socket(psc_loop_t *l, apr_os_sock_t fd)
{
    apr_socket_t *s = l->fd_sock;

    /* with s set, apr_os_sock_put() only stores fd (and allocates nothing);
     * the fd is nonblocking already (psc_loop_fd_dup) */
    if (apr_os_sock_put(&s, &fd, l->sock_pool) != APR_SUCCESS) {
        return NULL;
    }
    if (!l->fd_sock) {
        apr_socket_timeout_set(s, 0);
        l->fd_sock = s;
    }
    return s;
}

apr_socket_t *psc_loop_socket_dup(psc_loop_t *l, apr_socket_t *s,
                                  apr_os_sock_t *fd)
{
    apr_os_sock_t old;
    apr_socket_t *ns;

    if (apr_os_sock_get(&old, s) != APR_SUCCESS || (*fd = dup(old)) < 0) {
        return NULL;
    }
    ns = psc_loop_socket_open(l, *fd);
    if (!ns) {
        close(*fd);
    }
    return ns;
}

/* ---- the list of live items ------------------------------------------------------ */

static void psc_all_unlink(psc_loop_t *l, psc_item_t *it)
{
    if (it->all_prev) {
        it->all_prev->all_next = it->all_next;
    }
    else if (l->all == it) {
        l->all = it->all_next;
    }
    if (it->all_next) {
        it->all_next->all_prev = it->all_prev;
    }
    it->all_prev = it->all_next = NULL;
}

void psc_loop_replace(psc_loop_t *l, psc_item_t *old, psc_item_t *new)
{
    (void)old;
    if (new->heap_idx >= 0) {
        psc_heap_moved(&l->heap, new);
    }
    if (new->all_prev) {
        new->all_prev->all_next = new;
    }
    else {
        l->all = new;
    }
    if (new->all_next) {
        new->all_next->all_prev = new;
    }
}

psc_item_t *psc_loop_first(psc_loop_t *l)
{
    return l->all;
}

/* ---- adoption, retirement, release ----------------------------------------------- */

void psc_loop_adopt(psc_loop_t *l, psc_item_t *it, const psc_item_ops_t *ops,
                    void *const *worker_mark)
{
    it->ops = ops;
    it->worker_mark = worker_mark;
    it->worker_left_at = 0;
    it->deadline = 0;
    it->heap_idx = -1;
    it->done = it->ready = 0;
    it->ready_next = NULL;
    it->all_prev = it->all_next = NULL;
    psc_inbox_put(&l->inbox, it);
    if (l->wakeable) {
        apr_pollset_wakeup(l->ps);
    }
}

static void psc_take_inbox(psc_loop_t *l, apr_time_t now)
{
    psc_item_t *it = psc_inbox_take(&l->inbox);

    while (it) {
        psc_item_t *next = psc_inbox_next(&l->inbox, it);
        it->adopted_at = now;
        it->all_next = l->all;
        if (l->all) {
            l->all->all_prev = it;
        }
        l->all = it;
        l->count++;
        it->ops->on_adopt(it, now);
        if (l->shutdown && !it->done) {
            it->ops->on_shutdown(it, now);
        }
        it = next;
    }
}

void psc_loop_retire(psc_loop_t *l, psc_item_t *it)
{
    if (it->done) {
        return;
    }
    it->done = 1;
    psc_heap_remove(&l->heap, it);
    psc_all_unlink(l, it);
    l->count--;
    /* seen now, the worker's margin counts from here at the latest */
    psc_item_worker_left(it, apr_time_now());
    it->next = l->retired;
    l->retired = it;
}

int psc_item_worker_left(psc_item_t *it, apr_time_t now)
{
    if (!it->worker_mark) {
        return 1;
    }
    if (!it->worker_left_at) {
        if (__atomic_load_n(it->worker_mark, __ATOMIC_ACQUIRE) != NULL) {
            return 0;
        }
        it->worker_left_at = now;
    }
    return 1;
}

/* May the connection's memory go?  The event MPM's worker clears c->sbh
 * after our suspend_connection hook returned, then stores once more into
 * the connection state, in c->pool: wait until the first store is seen,
 * then a margin for the second. */
int psc_item_worker_gone(psc_item_t *it, apr_time_t now)
{
    if (!it->worker_mark) {
        return 1;
    }
    if (!psc_item_worker_left(it, now)) {
        return 0;
    }
    return now - it->worker_left_at >= PSC_RELEASE_AGE;
}

static void psc_release_retired(psc_loop_t *l, apr_time_t now)
{
    psc_item_t **link = &l->retired;

    while (*link) {
        psc_item_t *it = *link;
        /* not while the ready list still points to it */
        if (!it->ready && psc_item_worker_gone(it, now)) {
            *link = it->next;
            it->ops->on_release(it);
            continue;
        }
        link = &it->next;
    }
}

int psc_loop_is_shutting_down(const psc_loop_t *l)
{
    return l->shutdown;
}

int psc_loop_has_retired(const psc_loop_t *l)
{
    return l->retired != NULL;
}

apr_uint32_t psc_loop_count(psc_loop_t *l)
{
    return __atomic_load_n(&l->count, __ATOMIC_RELAXED);
}

/* ---- the loop --------------------------------------------------------------------- */

static void psc_run_ready(psc_loop_t *l, apr_time_t now)
{
    psc_item_t *it = l->ready_head;

    l->ready_head = NULL;
    while (it) {
        psc_item_t *next = it->ready_next;
        it->ready = 0;
        if (!it->done) {
            it->ops->on_again(it, now);
        }
        it = next;
    }
}

static void psc_run_timers(psc_loop_t *l, apr_time_t now)
{
    int budget = psc_heap_count(&l->heap) * 2 + 16;
    psc_item_t *it;

    while (budget-- > 0 && (it = psc_heap_pop_due(&l->heap, now))) {
        it->ops->on_timer(it, now);
    }
}

static void psc_shutdown_all(psc_loop_t *l, apr_time_t now)
{
    psc_item_t *it = l->all;
    int i;

    while (it) {
        psc_item_t *next = it->all_next;
        it->ops->on_shutdown(it, now);
        it = next;
    }
    for (i = 0; i < l->n_ext; i++) {
        l->ext[i].on_shutdown(l->ext[i].baton);
    }
    l->shutdown_done = 1;
}

static void psc_ticks(psc_loop_t *l, apr_time_t now)
{
    int i;

    if (now < l->next_tick) {
        return;
    }
    l->next_tick = now + PSC_TICK;
    for (i = 0; i < l->n_ext; i++) {
        l->ext[i].on_tick(l->ext[i].baton, now);
    }
}

static apr_interval_time_t psc_poll_timeout(psc_loop_t *l, apr_time_t now)
{
    apr_interval_time_t t;

    if (l->ready_head || (l->shutdown && !l->shutdown_done)) {
        return 0;
    }
    t = psc_heap_timeout(&l->heap, now, PSC_POLL_MAX);
    if (l->retired && t > PSC_RELEASE_AGE) {
        t = PSC_RELEASE_AGE;
    }
    /* epoll waits whole milliseconds and APR truncates: a timer due in
     * less than 1 ms made the loop spin (epoll_wait(0)) until it was due,
     * which with thousands of timers 100 ms after each adoption kept the
     * loop busy for a whole reconnect storm.  Round up instead. */
    if (t > 0 && t % 1000) {
        t += 1000 - t % 1000;
    }
    return t;
}

static void psc_loop_turn(psc_loop_t *l)
{
    const apr_pollfd_t *fds;
    apr_int32_t n = 0, i;
    apr_time_t now = apr_time_now();

    if (apr_pollset_poll(l->ps, psc_poll_timeout(l, now), &n, &fds)
        != APR_SUCCESS) {
        n = 0;
    }
    now = apr_time_now();
    for (i = 0; i < n; i++) {
        psc_pollee_t *pe = fds[i].client_data;
        pe->on_io(pe, fds[i].rtnevents, now);
    }
    psc_run_ready(l, now);
    psc_take_inbox(l, now);
    if (l->hooks.on_turn) {
        l->hooks.on_turn(l->hooks.baton, now);
    }
    psc_run_timers(l, now);
    if (l->shutdown && !l->shutdown_done) {
        psc_shutdown_all(l, now);
    }
    psc_ticks(l, now);
    psc_release_retired(l, now);
    if (l->hooks.on_turn_end) {
        l->hooks.on_turn_end(l->hooks.baton, now);
    }
    for (i = 0; i < l->n_ext; i++) {
        if (l->ext[i].on_turn_end) {
            l->ext[i].on_turn_end(l->ext[i].baton, now);
        }
    }
}

static void *APR_THREAD_FUNC psc_loop_main(apr_thread_t *thd, void *data)
{
    psc_loop_t *l = data;
    psc_item_t *it;
    int i;

    while (!l->exit) {
        psc_loop_turn(l);
    }
    /* The process is going away: nothing more is said to anyone. */
    psc_take_inbox(l, apr_time_now());
    while ((it = l->all) != NULL) {
        it->ops->on_abort(it);
        psc_loop_retire(l, it);          /* if on_abort did not */
    }
    for (it = l->retired; it; it = it->next) {
        if (it->ops->on_drop) {
            it->ops->on_drop(it);
        }
    }
    l->retired = NULL;
    for (i = 0; i < l->n_ext; i++) {
        l->ext[i].on_destroy(l->ext[i].baton);
    }
    l->n_ext = 0;
    if (l->hooks.on_exit) {
        l->hooks.on_exit(l->hooks.baton);
    }
    return NULL;
}

void psc_loop_run_local(psc_loop_t *l)
{
    psc_take_inbox(l, apr_time_now());
    while (l->all || l->retired) {
        psc_loop_turn(l);
    }
}

static apr_status_t psc_loop_cleanup(void *data)
{
    psc_loop_t *l = data;

    psc_heap_free(&l->heap);
    return APR_SUCCESS;
}

apr_status_t psc_loop_create(apr_pool_t *p, int wakeable, apr_uint32_t size,
                             const psc_loop_hooks_t *hooks, psc_loop_t **out)
{
    psc_loop_t *l = apr_pcalloc(p, sizeof(*l));
    /* NOCOPY: every pfd lives in its owner, which takes it out of the
     * pollset before it moves or goes (and so APR keeps no copy per
     * connection, nor searches them all on each removal); the loop reads
     * desc.s only while adding or removing (psc_loop_fd_socket) */
    apr_int32_t flags = (wakeable ? APR_POLLSET_WAKEABLE : 0)
                        | APR_POLLSET_NOCOPY;
    apr_status_t rv;

    l->pool = p;
    l->wakeable = wakeable;
    if (hooks) {
        l->hooks = *hooks;
    }
    psc_heap_init(&l->heap, offsetof(psc_item_t, deadline),
                  offsetof(psc_item_t, heap_idx));
    rv = psc_inbox_init(&l->inbox, p, offsetof(psc_item_t, next));
    if (rv == APR_SUCCESS) {
        rv = apr_pollset_create_ex(&l->ps, size, p, flags, APR_POLLSET_EPOLL);
        if (rv != APR_SUCCESS) {
            rv = apr_pollset_create(&l->ps, size, p, flags);
        }
    }
    if (rv == APR_SUCCESS) {
        rv = apr_pool_create(&l->sock_pool, p);
    }
    if (rv == APR_SUCCESS) {
        l->spare_socks = apr_array_make(p, 64, sizeof(apr_socket_t *));
        apr_pool_cleanup_register(p, l, psc_loop_cleanup,
                                  apr_pool_cleanup_null);
    }
    *out = l;
    return rv;
}

apr_status_t psc_loop_add_ext(psc_loop_t *l, const psc_loop_ext_t *ext)
{
    if (l->n_ext == PSC_LOOP_MAX_EXT) {
        return APR_ENOSPC;
    }
    l->ext[l->n_ext++] = *ext;
    return APR_SUCCESS;
}

apr_status_t psc_loop_start(psc_loop_t *l, psc_thread_create_fn *create)
{
    sigset_t block, old;
    apr_status_t rv;

    /* The thread inherits a mask blocking every asynchronous signal: the
     * MPM's signals (SIGTERM, SIGHUP...) must reach its own thread, not
     * ours (prefork's handler exits the process from the thread it runs
     * on, and would then wait for itself). */
    sigfillset(&block);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    rv = create(&l->thread, NULL, psc_loop_main, l, l->pool);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rv != APR_SUCCESS) {
        l->thread = NULL;
    }
    return rv;
}

void psc_loop_wakeup(psc_loop_t *l)
{
    if (l->wakeable) {
        apr_pollset_wakeup(l->ps);
    }
}

void psc_loop_shutdown(psc_loop_t *l)
{
    l->shutdown = 1;
    psc_loop_wakeup(l);
}

static apr_uint32_t psc_ext_count(psc_loop_t *l)
{
    apr_uint32_t n = 0;
    int i;

    for (i = 0; i < l->n_ext; i++) {
        n += l->ext[i].count(l->ext[i].baton);
    }
    return n;
}

void psc_loop_stop(psc_loop_t *l, apr_interval_time_t wait)
{
    apr_time_t until = apr_time_now() + wait;
    apr_status_t rv;

    while (wait > 0 && l->thread
           && (psc_loop_count(l)
               || __atomic_load_n(&l->retired, __ATOMIC_RELAXED)
               || psc_ext_count(l))
           && apr_time_now() < until) {
        apr_sleep(apr_time_from_msec(10));
    }
    l->exit = 1;
    psc_loop_wakeup(l);
    if (l->thread) {
        apr_thread_join(&rv, l->thread);
        l->thread = NULL;
    }
}
