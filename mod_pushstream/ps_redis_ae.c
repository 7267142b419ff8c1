/* ps_redis_ae.c - hiredis's async API on the child's event loop (see
 * ps_redis_ae.h).  Every use of the loop's API by the Redis code is here:
 * a ps_pollee_t per context socket, one timerfd for the users' timers
 * (armed at the earliest), an eventfd for jobs posted and pokes by other
 * threads, a ps_loop_ext_t for the end of the loop. */

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/timerfd.h>
#include <sys/eventfd.h>
#include <pthread.h>

#include <apr_atomic.h>
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
    int write_due;                 /* hiredis asked to write: at turn end */
    int queued;                    /* in ps_rae_flushq */
    int flushing;                  /* in ps_rae_flush's write */
    struct ps_rae_watch_t *dead_next;
    struct ps_rae_watch_t *flush_next;
} ps_rae_watch_t;

typedef struct ps_rae_timer_t {
    ps_pollee_t pollee;            /* first: on_io = ps_rae_timer_io */
    apr_pool_t *pool;
    apr_socket_t *sock;
    apr_pollfd_t pfd;
    int fd;
} ps_rae_timer_t;

static struct ps_reactor_t *ps_rae_re;
static ps_rae_user_t ps_rae_users[PS_RAE_USERS];
static apr_time_t ps_rae_when[PS_RAE_USERS];  /* each user's wake-up */
static int ps_rae_nusers;
static volatile apr_uint32_t ps_rae_poked;   /* ps_rae_poke() pending */
static ps_rae_timer_t *ps_rae_tm;
static apr_time_t ps_rae_armed;         /* the timerfd's expiry; 0: none */
static ps_rae_watch_t *ps_rae_flushq;   /* contexts to write at turn end */
static ps_rae_watch_t *ps_rae_dead;     /* freed after the loop's turn */
static pthread_t ps_rae_thread;
static int ps_rae_thread_known;

/* Jobs posted by other threads (ps_rae_post), under ps_rae_jobs_mu. */
static pthread_mutex_t ps_rae_jobs_mu = PTHREAD_MUTEX_INITIALIZER;
static ps_rae_job_t *ps_rae_jobs_head, *ps_rae_jobs_tail;
static int ps_rae_jobs_open;                /* the loop takes jobs */
static ps_rae_timer_t *ps_rae_jobs_ev;      /* the eventfd (a pollee) */

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

/* A connected context's commands are written at the end of the loop's
 * turn (ps_rae_flush): one send for all the commands of a turn, and no
 * pollset change per command (remove + add twice, since APR's pollset
 * cannot modify, cost four epoll_ctl per publish).  The connect, and what
 * the socket did not take whole, wait for POLLOUT. */
static void ps_rae_add_write(void *d)
{
    ps_rae_watch_t *w = d;

    if (w->ac && (w->ac->c.flags & REDIS_CONNECTED) && !w->flushing
        && !(w->events & APR_POLLOUT)) {
        w->write_due = 1;
        if (!w->queued) {
            w->queued = 1;
            w->flush_next = ps_rae_flushq;
            ps_rae_flushq = w;
        }
        return;
    }
    ps_rae_want(w, w->events | APR_POLLOUT);
}

static void ps_rae_del_write(void *d)
{
    ps_rae_watch_t *w = d;

    w->write_due = 0;
    ps_rae_want(w, w->events & ~APR_POLLOUT);
}

static void ps_rae_unqueue(ps_rae_watch_t *w)
{
    ps_rae_watch_t **pp;

    for (pp = &ps_rae_flushq; *pp; pp = &(*pp)->flush_next) {
        if (*pp == w) {
            *pp = w->flush_next;
            break;
        }
    }
    w->queued = 0;
}

/* The turn's writes (a reply callback run by a failed write may queue
 * more: taken in the same pass). */
static void ps_rae_flush(void *baton, apr_time_t now)
{
    ps_rae_watch_t *w;

    while ((w = ps_rae_flushq) != NULL) {
        ps_rae_flushq = w->flush_next;
        w->queued = 0;
        if (w->ac && w->write_due) {
            w->write_due = 0;
            w->flushing = 1;
            redisAsyncHandleWrite(w->ac);  /* may free the context */
            w->flushing = 0;
        }
    }
}

/* hiredis frees the context (it closes the socket right after).  The
 * watch is freed later (ps_rae_reap): an event of this turn of the loop
 * may still name it. */
static void ps_rae_cleanup(void *d)
{
    ps_rae_watch_t *w = d;

    ps_rae_want(w, 0);
    if (w->queued) {
        ps_rae_unqueue(w);                 /* freed before the next flush */
    }
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

/* Every user's on_timer (each looks at its own deadlines). */
static void ps_rae_timers(apr_time_t now)
{
    int i;

    for (i = 0; i < ps_rae_nusers; i++) {
        if (ps_rae_users[i].on_timer) {
            ps_rae_users[i].on_timer(ps_rae_users[i].baton, now);
        }
    }
}

static apr_time_t ps_rae_earliest(apr_time_t after);
static void ps_rae_arm(apr_time_t when);

static void ps_rae_timer_io(ps_pollee_t *self, apr_int16_t ev, apr_time_t now)
{
    ps_rae_timer_t *t = (ps_rae_timer_t *)self;
    apr_uint64_t n;

    if (read(t->fd, &n, sizeof(n)) < 0) {
        /* EAGAIN: nothing due */
    }
    ps_rae_armed = 0;                      /* one-shot: it fired */
    ps_rae_timers(now);
    if (!ps_rae_armed) {
        /* a deadline its user did not renew was served by this call */
        ps_rae_arm(ps_rae_earliest(now));
    }
}

/* The earliest wake-up asked for after 'after' (0: none). */
static apr_time_t ps_rae_earliest(apr_time_t after)
{
    apr_time_t when = 0;
    int i;

    for (i = 0; i < ps_rae_nusers; i++) {
        if (ps_rae_when[i] > after && (!when || ps_rae_when[i] < when)) {
            when = ps_rae_when[i];
        }
    }
    return when;
}

static void ps_rae_arm(apr_time_t when)
{
    struct itimerspec its;
    apr_interval_time_t d;

    if (!when) {
        return;
    }
    d = when - apr_time_now();
    if (d < 1000) {
        d = 1000;                          /* due: soon (0 would disarm) */
    }
    memset(&its, 0, sizeof(its));
    its.it_value.tv_sec = (time_t)apr_time_sec(d);
    its.it_value.tv_nsec = (long)apr_time_usec(d) * 1000;
    if (timerfd_settime(ps_rae_tm->fd, 0, &its, NULL) == 0) {
        ps_rae_armed = when;
    }
}

/* The timerfd is re-armed only for a deadline earlier than the one it
 * holds: a later or cancelled one leaves it, and the users' on_timer run
 * early (they look at the clock).  Every Redis command moves its
 * connection's next deadline, so re-arming each time cost two
 * timerfd_settime per publish. */
void ps_rae_wake_at(int user, apr_time_t when)
{
    if (!ps_rae_tm || user < 0 || user >= ps_rae_nusers) {
        return;
    }
    ps_rae_when[user] = when;
    if (when && (!ps_rae_armed || when < ps_rae_armed)) {
        ps_rae_arm(when);
    }
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

/* ---- jobs from other threads -------------------------------------- */

/* Take every queued job (in order); close: no more are accepted. */
static ps_rae_job_t *ps_rae_jobs_take(int close)
{
    ps_rae_job_t *j;

    pthread_mutex_lock(&ps_rae_jobs_mu);
    j = ps_rae_jobs_head;
    ps_rae_jobs_head = ps_rae_jobs_tail = NULL;
    if (close) {
        ps_rae_jobs_open = 0;
    }
    pthread_mutex_unlock(&ps_rae_jobs_mu);
    return j;
}

static void ps_rae_jobs_run(ps_rae_job_t *j, int cancelled)
{
    while (j) {
        ps_rae_job_t *next = j->next;
        j->run(j, cancelled);              /* may free j */
        j = next;
    }
}

static void ps_rae_jobs_io(ps_pollee_t *self, apr_int16_t ev, apr_time_t now)
{
    ps_rae_timer_t *t = (ps_rae_timer_t *)self;
    eventfd_t n;

    if (!ps_rae_thread_known) {
        ps_rae_thread = pthread_self();    /* a pollee: the loop thread */
        ps_rae_thread_known = 1;
    }
    (void)eventfd_read(t->fd, &n);         /* EAGAIN: a spurious wake-up */
    ps_rae_jobs_run(ps_rae_jobs_take(0), 0);
    if (apr_atomic_xchg32(&ps_rae_poked, 0)) {
        ps_rae_timers(now);
    }
}

void ps_rae_poke(void)
{
    pthread_mutex_lock(&ps_rae_jobs_mu);
    if (ps_rae_jobs_open && !apr_atomic_xchg32(&ps_rae_poked, 1)) {
        (void)eventfd_write(ps_rae_jobs_ev->fd, 1);
    }
    pthread_mutex_unlock(&ps_rae_jobs_mu);
}

int ps_rae_post(ps_rae_job_t *job)
{
    int first;

    job->next = NULL;
    pthread_mutex_lock(&ps_rae_jobs_mu);
    if (!ps_rae_jobs_open) {
        pthread_mutex_unlock(&ps_rae_jobs_mu);
        return -1;
    }
    first = !ps_rae_jobs_head;
    if (ps_rae_jobs_tail) {
        ps_rae_jobs_tail->next = job;
    }
    else {
        ps_rae_jobs_head = job;
    }
    ps_rae_jobs_tail = job;
    /* one wake-up per batch: the loop takes every queued job at once */
    if (first) {
        (void)eventfd_write(ps_rae_jobs_ev->fd, 1);
    }
    pthread_mutex_unlock(&ps_rae_jobs_mu);
    return 0;
}

/* A pollee on a non-blocking fd (timerfd, eventfd); NULL on failure (fd
 * closed). */
static ps_rae_timer_t *ps_rae_fd_pollee(struct ps_reactor_t *re, int fd,
                                        void (*on_io)(ps_pollee_t *,
                                                      apr_int16_t,
                                                      apr_time_t))
{
    apr_pool_t *pool;
    ps_rae_timer_t *t;

    if (fd < 0 || apr_pool_create(&pool, NULL) != APR_SUCCESS) {
        if (fd >= 0) {
            close(fd);
        }
        return NULL;
    }
    t = apr_pcalloc(pool, sizeof(*t));
    t->pollee.on_io = on_io;
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
        return NULL;
    }
    return t;
}

static void ps_rae_fd_pollee_free(ps_rae_timer_t *t)
{
    ps_reactor_poll_remove(ps_rae_re, &t->pfd);
    close(t->fd);
    apr_pool_destroy(t->pool);
}

/* ---- the loop's extension ------------------------------------------ */

static void ps_rae_tick(void *baton, apr_time_t now)
{
    if (!ps_rae_thread_known) {
        ps_rae_thread = pthread_self();    /* on_tick: the loop thread */
        ps_rae_thread_known = 1;
    }
    ps_rae_reap();                         /* after the turn's events */
    ps_rae_timers(now);                    /* a safety net */
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
    int i;

    for (i = ps_rae_nusers - 1; i >= 0; i--) {
        if (ps_rae_users[i].on_destroy) {
            ps_rae_users[i].on_destroy(ps_rae_users[i].baton);
        }
    }
    ps_rae_nusers = 0;
    ps_rae_jobs_run(ps_rae_jobs_take(1), 1);   /* none is left waiting */
    ps_rae_reap();
    if (ps_rae_tm) {
        ps_rae_fd_pollee_free(ps_rae_tm);
        ps_rae_tm = NULL;
    }
    if (ps_rae_jobs_ev) {
        ps_rae_fd_pollee_free(ps_rae_jobs_ev);
        ps_rae_jobs_ev = NULL;
    }
    ps_rae_re = NULL;
}

int ps_rae_user_add(const ps_rae_user_t *user)
{
    if (!ps_rae_re || ps_rae_nusers == PS_RAE_USERS) {
        return -1;
    }
    ps_rae_users[ps_rae_nusers] = *user;
    ps_rae_when[ps_rae_nusers] = 0;
    return ps_rae_nusers++;
}

void ps_rae_attach(struct ps_reactor_t *re)
{
    ps_loop_ext_t ext;

    memset(&ext, 0, sizeof(ext));
    ext.on_tick = ps_rae_tick;
    ext.on_shutdown = ps_rae_shutdown;
    ext.count = ps_rae_count;
    ext.on_destroy = ps_rae_destroy;
    ext.on_turn_end = ps_rae_flush;
    if (ps_reactor_add_ext(re, &ext) != APR_SUCCESS) {
        return;
    }
    ps_rae_re = re;
    ps_rae_nusers = 0;
    ps_rae_armed = 0;
    ps_rae_flushq = NULL;
    /* no timerfd: the 1 s tick only */
    ps_rae_tm = ps_rae_fd_pollee(re, timerfd_create(CLOCK_MONOTONIC,
                                                    TFD_NONBLOCK | TFD_CLOEXEC),
                                 ps_rae_timer_io);
    /* no eventfd: no jobs (the callers use their blocking path) */
    ps_rae_jobs_ev = ps_rae_fd_pollee(re, eventfd(0, EFD_NONBLOCK
                                                     | EFD_CLOEXEC),
                                      ps_rae_jobs_io);
    if (ps_rae_jobs_ev) {
        pthread_mutex_lock(&ps_rae_jobs_mu);
        ps_rae_jobs_open = 1;
        pthread_mutex_unlock(&ps_rae_jobs_mu);
    }
}
