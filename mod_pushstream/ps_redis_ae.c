/* ps_redis_ae.c - hiredis's async API on the child's event loop (see
 * ps_redis_ae.h).  Every use of the loop's API by the Redis code is here:
 * a ps_pollee_t per context socket, a timerfd for the timer, a
 * ps_loop_ext_t for the end of the loop. */

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/timerfd.h>
#include <pthread.h>

#include <apr_poll.h>
#include <apr_portable.h>

#include "ps_redis_ae.h"
#include "ps_reactor.h"

/* A hooked context's socket in the pollset. */
typedef struct ps_rae_watch_t {
    ps_pollee_t pollee;            /* first: on_io = ps_rae_io */
    redisAsyncContext *ac;         /* NULL once hiredis cleaned up */
    apr_pool_t *pool;
    apr_socket_t *sock;
    apr_pollfd_t pfd;
    apr_int16_t events;            /* what pfd is polled for */
    int fd;
    struct ps_rae_watch_t *dead_next;
} ps_rae_watch_t;

typedef struct ps_rae_timer_t {
    ps_pollee_t pollee;            /* first: on_io = ps_rae_timer_io */
    apr_pool_t *pool;
    apr_socket_t *sock;
    apr_pollfd_t pfd;
    int fd;
} ps_rae_timer_t;

static struct ps_reactor_t *ps_rae_re;
static ps_rae_user_t ps_rae_user;
static ps_rae_timer_t *ps_rae_tm;
static ps_rae_watch_t *ps_rae_dead;     /* freed after the loop's turn */
static pthread_t ps_rae_thread;
static int ps_rae_thread_known;

static void ps_rae_want(ps_rae_watch_t *w, apr_int16_t events)
{
    if (events == w->events || !w->ac) {
        return;
    }
    /* APR's pollset has no "modify": remove and add again */
    if (w->events) {
        ps_reactor_poll_remove(ps_rae_re, &w->pfd);
    }
    w->events = 0;
    if (events) {
        w->pfd.reqevents = events;
        if (ps_reactor_poll_add(ps_rae_re, &w->pfd) == APR_SUCCESS) {
            w->events = events;
        }
    }
}

static void ps_rae_add_read(void *d)
{
    ps_rae_watch_t *w = d;
    ps_rae_want(w, w->events | APR_POLLIN);
}

static void ps_rae_del_read(void *d)
{
    ps_rae_watch_t *w = d;
    ps_rae_want(w, w->events & ~APR_POLLIN);
}

static void ps_rae_add_write(void *d)
{
    ps_rae_watch_t *w = d;
    ps_rae_want(w, w->events | APR_POLLOUT);
}

static void ps_rae_del_write(void *d)
{
    ps_rae_watch_t *w = d;
    ps_rae_want(w, w->events & ~APR_POLLOUT);
}

/* hiredis frees the context (it closes the socket right after).  The
 * watch is freed later (ps_rae_reap): an event of this turn of the loop
 * may still name it. */
static void ps_rae_cleanup(void *d)
{
    ps_rae_watch_t *w = d;

    ps_rae_want(w, 0);
    w->ac = NULL;
    w->dead_next = ps_rae_dead;
    ps_rae_dead = w;
}

/* After the loop's turn (its tick; the end of the loop). */
static void ps_rae_reap(void)
{
    while (ps_rae_dead) {
        ps_rae_watch_t *w = ps_rae_dead;
        ps_rae_dead = w->dead_next;
        apr_pool_destroy(w->pool);
    }
}

static void ps_rae_io(ps_pollee_t *self, apr_int16_t ev, apr_time_t now)
{
    ps_rae_watch_t *w = (ps_rae_watch_t *)self;

    /* level-triggered: what hiredis leaves unread polls readable again */
    if (w->ac && (ev & (APR_POLLIN | APR_POLLHUP | APR_POLLERR))) {
        redisAsyncHandleRead(w->ac);       /* may free the context */
    }
    if (w->ac && (ev & APR_POLLOUT)) {
        redisAsyncHandleWrite(w->ac);
    }
}

int ps_rae_hook(redisAsyncContext *ac)
{
    ps_rae_watch_t *w;
    apr_pool_t *pool;

    if (!ps_rae_re || ac->ev.data || apr_pool_create(&pool, NULL)
        != APR_SUCCESS) {
        return -1;
    }
    w = apr_pcalloc(pool, sizeof(*w));
    w->pollee.on_io = ps_rae_io;
    w->pool = pool;
    w->ac = ac;
    w->fd = ac->c.fd;
    apr_os_sock_put(&w->sock, &w->fd, pool);   /* hiredis closes the fd */
    w->pfd.desc_type = APR_POLL_SOCKET;
    w->pfd.desc.s = w->sock;
    w->pfd.client_data = w;
    ac->ev.data = w;
    ac->ev.addRead = ps_rae_add_read;
    ac->ev.delRead = ps_rae_del_read;
    ac->ev.addWrite = ps_rae_add_write;
    ac->ev.delWrite = ps_rae_del_write;
    ac->ev.cleanup = ps_rae_cleanup;
    ps_rae_add_write(w);                   /* the connect completes */
    return 0;
}

/* ---- the timer ------------------------------------------------------- */

static void ps_rae_timer_io(ps_pollee_t *self, apr_int16_t ev, apr_time_t now)
{
    ps_rae_timer_t *t = (ps_rae_timer_t *)self;
    apr_uint64_t n;

    if (read(t->fd, &n, sizeof(n)) < 0) {
        /* EAGAIN: nothing due */
    }
    if (ps_rae_user.on_timer) {
        ps_rae_user.on_timer(ps_rae_user.baton, now);
    }
}

void ps_rae_wake_at(apr_time_t when)
{
    struct itimerspec its;

    if (!ps_rae_tm) {
        return;
    }
    memset(&its, 0, sizeof(its));
    if (when) {
        apr_interval_time_t d = when - apr_time_now();
        if (d < 1000) {
            d = 1000;                      /* due: soon (0 would disarm) */
        }
        its.it_value.tv_sec = (time_t)apr_time_sec(d);
        its.it_value.tv_nsec = (long)apr_time_usec(d) * 1000;
    }
    (void)timerfd_settime(ps_rae_tm->fd, 0, &its, NULL);
}

int ps_rae_on_loop(void)
{
    if (!ps_rae_re) {
        return 0;
    }
    if (!ps_rae_thread_known) {
        return 0;                          /* the loop has not turned yet */
    }
    return pthread_equal(ps_rae_thread, pthread_self());
}

/* ---- the loop's extension ------------------------------------------ */

static void ps_rae_tick(void *baton, apr_time_t now)
{
    if (!ps_rae_thread_known) {
        ps_rae_thread = pthread_self();    /* on_tick: the loop thread */
        ps_rae_thread_known = 1;
    }
    ps_rae_reap();                         /* after the turn's events */
    if (ps_rae_user.on_timer) {
        ps_rae_user.on_timer(ps_rae_user.baton, now);   /* a safety net */
    }
}

static void ps_rae_shutdown(void *baton)
{
}

static apr_uint32_t ps_rae_count(void *baton)
{
    return 0;
}

static void ps_rae_destroy(void *baton)
{
    if (ps_rae_user.on_destroy) {
        ps_rae_user.on_destroy(ps_rae_user.baton);
    }
    ps_rae_reap();
    if (ps_rae_tm) {
        ps_reactor_poll_remove(ps_rae_re, &ps_rae_tm->pfd);
        close(ps_rae_tm->fd);
        apr_pool_destroy(ps_rae_tm->pool);
        ps_rae_tm = NULL;
    }
    ps_rae_re = NULL;
}

void ps_rae_attach(struct ps_reactor_t *re, const ps_rae_user_t *user)
{
    ps_loop_ext_t ext;
    apr_pool_t *pool;
    ps_rae_timer_t *t;
    int fd;

    memset(&ext, 0, sizeof(ext));
    ext.on_tick = ps_rae_tick;
    ext.on_shutdown = ps_rae_shutdown;
    ext.count = ps_rae_count;
    ext.on_destroy = ps_rae_destroy;
    if (ps_reactor_add_ext(re, &ext) != APR_SUCCESS) {
        return;
    }
    ps_rae_re = re;
    ps_rae_user = *user;
    fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd < 0 || apr_pool_create(&pool, NULL) != APR_SUCCESS) {
        if (fd >= 0) {
            close(fd);
        }
        return;                            /* the 1 s tick only */
    }
    t = apr_pcalloc(pool, sizeof(*t));
    t->pollee.on_io = ps_rae_timer_io;
    t->pool = pool;
    t->fd = fd;
    apr_os_sock_put(&t->sock, &t->fd, pool);
    t->pfd.desc_type = APR_POLL_SOCKET;
    t->pfd.desc.s = t->sock;
    t->pfd.reqevents = APR_POLLIN;
    t->pfd.client_data = t;
    if (ps_reactor_poll_add(re, &t->pfd) != APR_SUCCESS) {
        close(fd);
        apr_pool_destroy(pool);
        return;
    }
    ps_rae_tm = t;
}
