/* pswt_loop.c - the event loop that owns tunnels (see pswt_tunnel.h).
 *
 * One per child, on a thread of its own (event MPM), or one per tunnel on
 * the handler's thread (blocking fallback).  An epoll pollset over both
 * sockets of every tunnel, a timer heap (idle timeouts, close deadlines),
 * an inbox for tunnels handed over by the suspend hook, and a ready list
 * for tunnels that must read again without waiting for the socket (data
 * already buffered in the filters, e.g. decrypted by mod_ssl). */

#include <stdlib.h>

#include <httpd.h>
#include <http_log.h>
#include <apr_thread_proc.h>
#include <apr_portable.h>

#include "pswt_tunnel.h"
#include "psc_heap.h"
#include "psc_inbox.h"

APLOG_USE_MODULE(pushstream_wstunnel);

#define PSWT_POLL_MAX      apr_time_from_sec(1)
/* A retired connection is destroyed only this long after the hand-off:
 * the worker that suspended it must have left the MPM's code for good. */
#define PSWT_RELEASE_AGE   apr_time_from_msec(20)

struct pswt_loop_t {
    apr_pool_t *pool;
    server_rec *s;
    apr_pollset_t *ps;
    int wakeable;
    apr_thread_t *thread;
    psc_inbox_t inbox;                 /* pswt_tunnel_t handed over */
    volatile int shutdown, exit;
    int shutdown_done;
    psc_heap_t heap;                   /* pswt_tunnel_t by deadline */
    pswt_tunnel_t *all;
    pswt_tunnel_t *retired;
    pswt_tunnel_t *ready_head;
    volatile apr_uint32_t count;
    apr_pool_t *sock_pool;             /* detached tunnels' sockets */
    apr_array_header_t *spare_socks;
};

void pswt_loop_schedule(pswt_loop_t *l, pswt_tunnel_t *t)
{
    psc_heap_remove(&l->heap, t);
    if (t->deadline && t->state != PSWT_ST_DONE) {
        /* out of memory: no timer, the tunnel ends by I/O */
        (void)psc_heap_push(&l->heap, t);
    }
}

/* ---- pollset ----------------------------------------------------------- */

void pswt_loop_poll(pswt_loop_t *l, pswt_side_t *side, apr_int16_t ev)
{
    if (side->events == ev) {
        return;
    }
    if (side->events) {
        apr_pollset_remove(l->ps, &side->pfd);
        side->events = 0;
    }
    if (ev) {
        side->pfd.reqevents = ev;
        if (apr_pollset_add(l->ps, &side->pfd) == APR_SUCCESS) {
            side->events = ev;
        }
        else {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, l->s, "PSWT0010: "
                         "cannot watch a tunnel socket");
        }
    }
}

void pswt_loop_ready(pswt_loop_t *l, pswt_tunnel_t *t)
{
    if (!t->ready && t->state != PSWT_ST_DONE) {
        t->ready = 1;
        t->ready_next = l->ready_head;
        l->ready_head = t;
    }
}

/* ---- detached tunnels ------------------------------------------------------------ */

apr_socket_t *pswt_loop_socket_open(pswt_loop_t *l, int fd)
{
    apr_socket_t *s = NULL;
    apr_os_sock_t os = fd;

    if (l->spare_socks->nelts) {
        s = *(apr_socket_t **)apr_array_pop(l->spare_socks);
    }
    /* with s set, apr_os_sock_put() reuses the struct */
    if (apr_os_sock_put(&s, &os, l->sock_pool) != APR_SUCCESS) {
        return NULL;
    }
    apr_socket_timeout_set(s, 0);
    return s;
}

void pswt_loop_socket_close(pswt_loop_t *l, apr_socket_t *s)
{
    apr_socket_close(s);
    APR_ARRAY_PUSH(l->spare_socks, apr_socket_t *) = s;
}

void pswt_loop_replace(pswt_loop_t *l, pswt_tunnel_t *t, pswt_tunnel_t *n)
{
    apr_int16_t ecl = t->cl.events, ebk = t->bk.events;

    /* the old descriptors' entries go (they close later), the dup()s come */
    pswt_loop_poll(l, &t->cl, 0);
    pswt_loop_poll(l, &t->bk, 0);
    n->cl.events = n->bk.events = 0;
    pswt_loop_poll(l, &n->cl, ecl);
    pswt_loop_poll(l, &n->bk, ebk);
    if (n->heap_idx >= 0) {
        psc_heap_moved(&l->heap, n);
    }
    if (n->all_prev) {
        n->all_prev->all_next = n;
    }
    else {
        l->all = n;
    }
    if (n->all_next) {
        n->all_next->all_prev = n;
    }
}

/* ---- adoption and retirement ----------------------------------------------- */

void pswt_loop_adopt(pswt_loop_t *l, pswt_tunnel_t *t)
{
    t->loop = l;
    psc_inbox_put(&l->inbox, t);
    if (l->wakeable) {
        apr_pollset_wakeup(l->ps);
    }
}

static void pswt_adopt_one(pswt_loop_t *l, pswt_tunnel_t *t, apr_time_t now)
{
    t->adopted_at = now;
    t->heap_idx = -1;
    t->all_prev = NULL;
    t->all_next = l->all;
    if (l->all) {
        l->all->all_prev = t;
    }
    l->all = t;
    l->count++;
    pswt_tunnel_start(t, now);
    if (l->shutdown) {
        pswt_tunnel_shutdown(t, now);
    }
}

static void pswt_take_inbox(pswt_loop_t *l, apr_time_t now)
{
    pswt_tunnel_t *t = psc_inbox_take(&l->inbox);

    while (t) {
        pswt_tunnel_t *next = psc_inbox_next(&l->inbox, t);
        pswt_adopt_one(l, t, now);
        t = next;
    }
}

void pswt_loop_retire(pswt_loop_t *l, pswt_tunnel_t *t)
{
    if (t->state == PSWT_ST_DONE) {
        return;
    }
    t->state = PSWT_ST_DONE;
    pswt_loop_poll(l, &t->cl, 0);
    if (!t->bk.gone) {
        pswt_loop_poll(l, &t->bk, 0);
    }
    psc_heap_remove(&l->heap, t);
    if (t->all_prev) {
        t->all_prev->all_next = t->all_next;
    }
    else if (l->all == t) {
        l->all = t->all_next;
    }
    if (t->all_next) {
        t->all_next->all_prev = t->all_prev;
    }
    t->all_prev = t->all_next = NULL;
    l->count--;
    t->next = l->retired;
    l->retired = t;
}

static void pswt_release_retired(pswt_loop_t *l, apr_time_t now, int all)
{
    pswt_tunnel_t **link = &l->retired;

    while (*link) {
        pswt_tunnel_t *t = *link;
        if (all || ((t->local || now - t->adopted_at >= PSWT_RELEASE_AGE)
                    && !t->ready)) {
            *link = t->next;
            pswt_tunnel_release(t);
            continue;
        }
        link = &t->next;
    }
}

int pswt_loop_is_shutting_down(pswt_loop_t *l)
{
    return l->shutdown;
}

/* ---- the loop ----------------------------------------------------------- */

static void pswt_run_ready(pswt_loop_t *l, apr_time_t now)
{
    pswt_tunnel_t *t = l->ready_head;

    l->ready_head = NULL;
    while (t) {
        pswt_tunnel_t *next = t->ready_next;
        t->ready = 0;
        if (t->state != PSWT_ST_DONE) {
            pswt_tunnel_again(t, now);
        }
        t = next;
    }
}

static void pswt_run_timers(pswt_loop_t *l, apr_time_t now)
{
    int budget = psc_heap_count(&l->heap) * 2 + 16;
    pswt_tunnel_t *t;

    while (budget-- > 0 && (t = psc_heap_pop_due(&l->heap, now))) {
        pswt_tunnel_timer(t, now);
    }
}

static void pswt_shutdown_all(pswt_loop_t *l, apr_time_t now)
{
    pswt_tunnel_t *t = l->all;

    while (t) {
        pswt_tunnel_t *next = t->all_next;
        pswt_tunnel_shutdown(t, now);
        t = next;
    }
    l->shutdown_done = 1;
}

static apr_interval_time_t pswt_poll_timeout(pswt_loop_t *l, apr_time_t now)
{
    apr_interval_time_t t;

    if (l->ready_head || (l->shutdown && !l->shutdown_done)) {
        return 0;
    }
    t = psc_heap_timeout(&l->heap, now, PSWT_POLL_MAX);
    if (l->retired && t > PSWT_RELEASE_AGE) {
        t = PSWT_RELEASE_AGE;
    }
    /* epoll waits whole milliseconds and APR truncates: round up, or a
     * timer due in less than 1 ms makes the loop spin until it is due */
    if (t > 0 && t % 1000) {
        t += 1000 - t % 1000;
    }
    return t;
}

static void pswt_loop_turn(pswt_loop_t *l)
{
    const apr_pollfd_t *fds;
    apr_int32_t n = 0, i;
    apr_time_t now = apr_time_now();

    if (apr_pollset_poll(l->ps, pswt_poll_timeout(l, now), &n, &fds)
        != APR_SUCCESS) {
        n = 0;
    }
    now = apr_time_now();
    for (i = 0; i < n; i++) {
        pswt_side_t *side = fds[i].client_data;
        /* an earlier event of this batch may have ended the tunnel */
        if (side->t->state != PSWT_ST_DONE && !side->gone && side->events) {
            pswt_tunnel_io(side, fds[i].rtnevents, now);
        }
    }
    pswt_take_inbox(l, now);
    pswt_run_ready(l, now);
    pswt_run_timers(l, now);
    if (l->shutdown && !l->shutdown_done) {
        pswt_shutdown_all(l, now);
    }
    pswt_release_retired(l, now, 0);
}

static void *APR_THREAD_FUNC pswt_loop_main(apr_thread_t *thd, void *data)
{
    pswt_loop_t *l = data;
    pswt_tunnel_t *t;

    while (!l->exit) {
        pswt_loop_turn(l);
    }
    /* The process is going away: nothing more is said to anyone. */
    pswt_take_inbox(l, apr_time_now());
    while ((t = l->all) != NULL) {
        pswt_tunnel_abort(t);
    }
    l->retired = NULL;
    return NULL;
}

void pswt_loop_run_local(pswt_loop_t *l)
{
    pswt_take_inbox(l, apr_time_now());
    while (l->all || l->retired) {
        pswt_loop_turn(l);
    }
}

static apr_status_t pswt_loop_cleanup(void *data)
{
    pswt_loop_t *l = data;

    psc_heap_free(&l->heap);
    return APR_SUCCESS;
}

apr_status_t pswt_loop_create(apr_pool_t *p, server_rec *s, int wakeable,
                              apr_uint32_t size, pswt_loop_t **out)
{
    pswt_loop_t *l = apr_pcalloc(p, sizeof(*l));
    apr_status_t rv;

    l->pool = p;
    psc_heap_init(&l->heap, offsetof(pswt_tunnel_t, deadline),
                  offsetof(pswt_tunnel_t, heap_idx));
    l->s = s;
    l->wakeable = wakeable;
    rv = psc_inbox_init(&l->inbox, p, offsetof(pswt_tunnel_t, next));
    if (rv == APR_SUCCESS) {
        rv = apr_pollset_create_ex(&l->ps, size, p,
                                   wakeable ? APR_POLLSET_WAKEABLE : 0,
                                   APR_POLLSET_EPOLL);
        if (rv != APR_SUCCESS) {
            rv = apr_pollset_create(&l->ps, size, p,
                                    wakeable ? APR_POLLSET_WAKEABLE : 0);
        }
    }
    if (rv == APR_SUCCESS) {
        rv = apr_pool_create(&l->sock_pool, p);
    }
    if (rv == APR_SUCCESS) {
        l->spare_socks = apr_array_make(p, 64, sizeof(apr_socket_t *));
        apr_pool_cleanup_register(p, l, pswt_loop_cleanup,
                                  apr_pool_cleanup_null);
    }
    *out = l;
    return rv;
}

apr_status_t pswt_loop_start(pswt_loop_t *l)
{
    return ap_thread_create(&l->thread, NULL, pswt_loop_main, l, l->pool);
}

void pswt_loop_shutdown(pswt_loop_t *l)
{
    l->shutdown = 1;
    if (l->wakeable) {
        apr_pollset_wakeup(l->ps);
    }
}

void pswt_loop_stop(pswt_loop_t *l)
{
    apr_status_t rv;

    l->exit = 1;
    if (l->wakeable) {
        apr_pollset_wakeup(l->ps);
    }
    if (l->thread) {
        apr_thread_join(&rv, l->thread);
        l->thread = NULL;
    }
}

apr_uint32_t pswt_loop_count(pswt_loop_t *l)
{
    return l->count;
}
