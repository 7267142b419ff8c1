/* ps_sub_loop.c - a subscriber as an item of the child's loop and as a
 * member of the reactor's registry (ps_reactor.h): the loop's callbacks,
 * its pollset entry and timer, its channel links, and what the reactor
 * calls back (delivery, deleted channels, write batches). */

#include <stddef.h>

#include <httpd.h>
#include <http_log.h>

#include "ps_sub.h"
#include "ps_h2.h"
#include "psc_loop.h"

APLOG_USE_MODULE(pushstream);

static ps_sub_t *ps_sub_of(psc_item_t *it)
{
    return (ps_sub_t *)((char *)it - offsetof(ps_sub_t, item));
}

static ps_sub_chan_t *ps_sub_chan_of(const ps_rlink_t *l)
{
    return (ps_sub_chan_t *)((char *)l - offsetof(ps_sub_chan_t, link));
}

static psc_loop_t *ps_sub_loop(const ps_sub_t *sub)
{
    return ps_reactor_loop(sub->child->reactor);
}

/* ---- pollset and timer ------------------------------------------------------------ */

apr_socket_t *ps_sub_sock(ps_sub_t *sub)
{
    return sub->sock ? sub->sock
                     : ps_reactor_fd_socket(sub->child->reactor, sub->fd);
}

static void ps_poll_update(ps_sub_t *sub, apr_int16_t ev)
{
    if (!sub->sock) {                   /* read only while (re)added */
        sub->pfd.desc.s = ps_sub_sock(sub);
    }
    (void)psc_loop_watch(ps_sub_loop(sub), &sub->pfd, &sub->polled, ev);
}

void ps_sub_want_write(ps_sub_t *sub, int on)
{
    sub->want_write = on;
    if (sub->state != PS_SUBST_DONE) {
        ps_poll_update(sub, (apr_int16_t)(APR_POLLIN | (on ? APR_POLLOUT : 0)));
    }
}

void ps_sub_reschedule(ps_sub_t *sub)
{
    sub->item.deadline = sub->state != PS_SUBST_DONE ? sub->deadline : 0;
    if (psc_loop_schedule(ps_sub_loop(sub), &sub->item) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, APR_ENOMEM, sub->child->s,
                     "PS0029: out of memory for a subscriber's timer");
    }
}

void ps_sub_read_again(ps_sub_t *sub)
{
    if (!sub->read_again) {
        sub->read_again = 1;
        psc_loop_ready(ps_sub_loop(sub), &sub->item);
    }
}

/* ---- retiring ------------------------------------------------------------------------ */

static void ps_sub_unsubscribe(ps_sub_t *sub)
{
    ps_child_t *child = sub->child;
    apr_int64_t now = ps_now_sec();
    int i;

    if (ps_store_lock(child->store, NULL) != APR_SUCCESS) {
        return;
    }
    for (i = 0; i < sub->nchan; i++) {
        if (sub->chans[i].subscribed) {
            ps_store_unsubscribe_locked(child->store, sub->chans[i].ref,
                                        sub->chans[i].serial, child->slot,
                                        &sub->sc->limits, now);
            sub->chans[i].subscribed = 0;
        }
    }
    if (sub->counted) {
        ps_store_worker_conn_locked(child->store, child->slot, -1);
        sub->counted = 0;
    }
    ps_store_unlock(child->store);
}

void ps_sub_retire(ps_sub_t *sub)
{
    ps_reactor_t *re = sub->child->reactor;
    int i;

    if (sub->state == PS_SUBST_DONE) {
        return;
    }
    sub->state = PS_SUBST_DONE;
    ps_poll_update(sub, 0);
    for (i = 0; i < sub->nchan; i++) {
        ps_reactor_unlink(re, &sub->chans[i].link);
    }
    ps_sub_unsubscribe(sub);
    psc_loop_retire(ps_reactor_loop(re), &sub->item);
}

/* ---- moving (ps_sub_detach) ---------------------------------------------------------- */

/* A link into old's channel array, moved along with it into new's. */
static ps_rlink_t *ps_rebase_link(ps_rlink_t *p, const ps_sub_t *old,
                                  ps_sub_t *new)
{
    const char *a = (const char *)old->chans;

    if ((const char *)p >= a
        && (const char *)p < (const char *)(old->chans + old->nchan)) {
        return (ps_rlink_t *)((char *)new->chans + ((const char *)p - a));
    }
    return p;
}

void ps_sub_moved(ps_sub_t *old, ps_sub_t *new)
{
    apr_int16_t ev = old->polled;
    int i;

    ps_poll_update(old, 0);
    new->polled = 0;
    ps_poll_update(new, ev);
    new->item.worker_mark = NULL;        /* out of httpd: no worker */
    psc_loop_replace(ps_sub_loop(old), &old->item, &new->item);
    for (i = 0; i < new->nchan; i++) {
        ps_sub_chan_t *sc = &new->chans[i];
        sc->sub = new;
        sc->link.prev = ps_rebase_link(sc->link.prev, old, new);
        sc->link.next = ps_rebase_link(sc->link.next, old, new);
        ps_reactor_link_moved(&sc->link);
    }
}

/* ---- the loop's callbacks ------------------------------------------------------------ */

static const psc_item_ops_t ps_sub_ops;

void ps_sub_adopt(ps_sub_t *sub)
{
    /* a fallback's worker waits for it: nothing to wait for in turn */
    psc_loop_adopt(ps_sub_loop(sub), &sub->item, &ps_sub_ops,
                   sub->fallback ? NULL : (void *const *)&sub->c->sbh);
}

static void ps_sub_on_io(ps_pollee_t *pe, apr_int16_t rtnevents, apr_time_t now)
{
    ps_sub_t *sub = (ps_sub_t *)pe;

    /* an earlier event of this batch may have ended it */
    if (sub->state != PS_SUBST_DONE) {
        ps_sub_io(sub, rtnevents, now);
    }
}

static void ps_sub_on_adopt(psc_item_t *it, apr_time_t now)
{
    ps_sub_t *sub = ps_sub_of(it);
    ps_reactor_t *re = sub->child->reactor;
    int i;

    if (sub->relay) {
        /* h2: the stream's socket is mod_http2's dummy; its worker tells
         * us through this pipe that the client went away */
        sub->pfd.desc_type = APR_POLL_FILE;
        sub->pfd.desc.f = ps_h2_relay_gone_in(sub->relay);
    }
    else {
        sub->pfd.desc_type = APR_POLL_SOCKET;
        sub->pfd.desc.s = sub->sock;
    }
    sub->pollee.on_io = ps_sub_on_io;
    sub->pfd.client_data = sub;
    sub->pfd.p = sub->c->pool;
    sub->polled = 0;
    ps_poll_update(sub, APR_POLLIN);
    for (i = 0; i < sub->nchan; i++) {
        ps_sub_chan_t *sc = &sub->chans[i];
        sc->sub = sub;
        ps_reactor_link(re, &sc->link, sc->id, sc->len, sc->serial);
    }
    ps_sub_started(sub, now);
    /* Messages published between the subscription and now that this loop
     * already dispatched before it knew the subscriber. */
    if (sub->state == PS_SUBST_ACTIVE) {
        ps_reactor_catchup(re, sub, sub->start_seq);
    }
}

static void ps_sub_on_timer(psc_item_t *it, apr_time_t now)
{
    ps_sub_timer(ps_sub_of(it), now);
}

/* Subscribers that stopped reading at their budget last turn. */
static void ps_sub_on_again(psc_item_t *it, apr_time_t now)
{
    ps_sub_t *sub = ps_sub_of(it);

    sub->read_again = 0;
    if (sub->state != PS_SUBST_DONE) {
        ps_sub_io(sub, APR_POLLIN, now);
    }
}

static void ps_sub_on_shutdown(psc_item_t *it, apr_time_t now)
{
    ps_sub_shutdown(ps_sub_of(it));
}

static void ps_sub_on_abort(psc_item_t *it)
{
    ps_sub_abort(ps_sub_of(it));
}

static void ps_sub_on_release(psc_item_t *it)
{
    ps_sub_t *sub = ps_sub_of(it);
    ps_reactor_t *re = sub->child->reactor;

    ps_sub_release(sub);
    ps_reactor_freed(re);
}

/* The process is going away: nothing more is written. */
static void ps_sub_on_drop(psc_item_t *it)
{
    ps_sub_t *sub = ps_sub_of(it);

    if (sub->fallback) {
        ps_sub_release(sub);
    }
    else {
        apr_socket_close(ps_sub_sock(sub));
    }
}

static const psc_item_ops_t ps_sub_ops = {
    ps_sub_on_adopt, ps_sub_on_timer, ps_sub_on_again, ps_sub_on_shutdown,
    ps_sub_on_abort, ps_sub_on_release, ps_sub_on_drop
};

/* ---- the reactor's callbacks --------------------------------------------------------- */

static void *ps_subs_init(apr_pool_t *pool)
{
    ps_sub_batch_t *b = apr_pcalloc(pool, sizeof(*b));

    apr_pool_create(&b->pool, pool);          /* loop thread only */
    return b;
}

static const void *ps_subs_wants(const ps_rlink_t *l, apr_uint64_t seq)
{
    ps_sub_t *sub = ps_sub_chan_of(l)->sub;

    return sub->state == PS_SUBST_ACTIVE && seq > sub->start_seq ? sub : NULL;
}

static void ps_subs_message(ps_rlink_t *l, const ps_msgview_t *m, int deleted)
{
    ps_sub_chan_t *sc = ps_sub_chan_of(l);

    ps_sub_message(sc->sub, (int)(sc - sc->sub->chans), m, deleted);
}

static void ps_subs_dropped(ps_rlink_t *l, apr_int64_t now)
{
    ps_sub_chan_t *sc = ps_sub_chan_of(l);
    ps_child_t *child = sc->sub->child;

    if (sc->subscribed) {
        ps_store_unsubscribe_locked(child->store, sc->ref, sc->serial,
                                    child->slot, &sc->sub->sc->limits, now);
        sc->subscribed = 0;
    }
}

static void ps_subs_batch_begin(void *baton)
{
    ps_sub_batch_begin(baton);
}

static void ps_subs_batch_end(void *baton)
{
    ps_sub_batch_end(baton);
}

const ps_reactor_subs_t ps_sub_reactor_subs = {
    ps_subs_init, ps_subs_wants, ps_subs_message, ps_subs_dropped,
    ps_subs_batch_begin, ps_subs_batch_end
};
