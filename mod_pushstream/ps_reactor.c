/* ps_reactor.c - the per-child event loop (see ps_reactor.h).
 *
 * Two threads per child: the loop, and a notifier that sleeps on the
 * segment's futex word and wakes the loop's pollset when any process
 * publishes.  Everything else below runs on the loop thread only. */

#include <pthread.h>
#include <signal.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <httpd.h>
#include <http_log.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>

#include "ps_reactor.h"
#include "ps_sub.h"
#include "ps_h2.h"
#include "psc_heap.h"
#include "psc_inbox.h"

APLOG_USE_MODULE(pushstream);

#define PS_POLL_MAX        apr_time_from_sec(1)
#define PS_LOG_SAFETY      apr_time_from_msec(500)   /* read the log anyway */
#define PS_RELEASE_AGE     apr_time_from_msec(50)
/* A graceful stop waits this long for the last detached streams. */
#define PS_STOP_WAIT       apr_time_from_sec(5)
/* Free memory the detached streams' bucket allocator may keep. */
#define PS_BA_MAX_FREE     (512 * 1024)
#define PS_REACTOR_MAX_EXT 4

/* Subscribers of this child to one channel generation. */
typedef struct ps_lchan_t {
    char *key;
    apr_size_t klen;
    ps_sub_chan_t *head;
    struct ps_lchan_t *next_empty;       /* on re->empties */
    int queued;
} ps_lchan_t;

/* A message copied out of the segment for delivery. */
typedef struct ps_lmsg_t {
    ps_msgview_t view;
    apr_uint64_t seq;
    int deleted;
    ps_lchan_t *lchan;
} ps_lmsg_t;

typedef struct ps_target_t {
    ps_sub_t *sub;
    int ci;
} ps_target_t;

struct ps_reactor_t {
    ps_child_t *child;
    apr_pool_t *pool;
    apr_pool_t *scratch;               /* per log read */
    apr_pollset_t *ps;
    apr_thread_t *thread, *notifier;
    psc_inbox_t inbox;                 /* ps_sub_t handed over by workers */
    volatile int shutdown, exit;
    int graceful;
    int shutdown_done;
    apr_hash_t *lchans;
    ps_lchan_t *empties;               /* emptied lchans, freed end of turn */
    psc_heap_t heap;                   /* ps_sub_t by deadline */
    ps_sub_t *all;                     /* every adopted, not retired sub */
    ps_sub_t *retired;
    apr_uint32_t count;
    apr_uint32_t released;             /* connections freed since last trim */
    apr_uint32_t released_tick;        /* ... as seen by the previous tick */
    apr_uint64_t last_seq;
    apr_uint32_t wake_seen;
    apr_time_t next_log_read, next_maint;
    apr_array_header_t *msgs;          /* ps_lmsg_t, per log read */
    apr_array_header_t *targets;       /* ps_target_t, per message */
    apr_array_header_t *again;         /* ps_sub_t*, to read next turn */
    const ps_sub_t *catchup_only;      /* log read for one new subscriber */
    ps_sub_batch_t batch;              /* subs to write after a log read */
    apr_allocator_t *ba_allocator;     /* detached streams: loop thread only */
    apr_bucket_alloc_t *ba;
    apr_pool_t *sock_pool;             /* their apr_socket_t structs */
    apr_array_header_t *spare_socks;   /* ... closed, for reuse */
    ps_loop_ext_t ext[PS_REACTOR_MAX_EXT];   /* the publisher port ... */
    int n_ext;
};

void ps_reactor_reschedule(ps_reactor_t *re, ps_sub_t *sub)
{
    psc_heap_remove(&re->heap, sub);
    if (sub->deadline && sub->state != PS_SUBST_DONE
        && psc_heap_push(&re->heap, sub) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, APR_ENOMEM, re->child->s,
                     "PS0029: out of memory for a subscriber's timer");
    }
}

/* ---- pollset -------------------------------------------------------------------- */

static void ps_poll_update(ps_reactor_t *re, ps_sub_t *sub, apr_int16_t ev)
{
    if (sub->in_pollset) {
        if (sub->pfd.reqevents == ev) {
            return;
        }
        apr_pollset_remove(re->ps, &sub->pfd);
        sub->in_pollset = 0;
    }
    if (ev) {
        sub->pfd.reqevents = ev;
        if (apr_pollset_add(re->ps, &sub->pfd) == APR_SUCCESS) {
            sub->in_pollset = 1;
        }
    }
}

void ps_reactor_want_write(ps_reactor_t *re, ps_sub_t *sub, int on)
{
    sub->want_write = on;
    if (sub->state != PS_SUBST_DONE) {
        ps_poll_update(re, sub, (apr_int16_t)(APR_POLLIN
                                              | (on ? APR_POLLOUT : 0)));
    }
}

/* ---- local channels ---------------------------------------------------------------- */

static char *ps_lchan_key(apr_pool_t *p, const char *id, apr_size_t len,
                          apr_uint64_t serial, apr_size_t *klen)
{
    char *k = apr_palloc(p, len + 1 + sizeof(serial));
    memcpy(k, id, len);
    k[len] = '\0';
    memcpy(k + len + 1, &serial, sizeof(serial));
    *klen = len + 1 + sizeof(serial);
    return k;
}

static void ps_lchan_link(ps_reactor_t *re, ps_sub_chan_t *sc)
{
    apr_size_t klen;
    char *key = ps_lchan_key(re->scratch, sc->id, sc->len, sc->serial, &klen);
    ps_lchan_t *lc = apr_hash_get(re->lchans, key, (apr_ssize_t)klen);

    if (!lc) {
        lc = calloc(1, sizeof(*lc));
        lc->key = malloc(klen);
        memcpy(lc->key, key, klen);
        lc->klen = klen;
        apr_hash_set(re->lchans, lc->key, (apr_ssize_t)klen, lc);
    }
    sc->lchan = lc;
    sc->prev = NULL;
    sc->next = lc->head;
    if (lc->head) {
        lc->head->prev = sc;
    }
    lc->head = sc;
}

static void ps_lchan_unlink(ps_reactor_t *re, ps_sub_chan_t *sc)
{
    ps_lchan_t *lc = sc->lchan;

    if (!lc) {
        return;
    }
    if (sc->prev) {
        sc->prev->next = sc->next;
    }
    else {
        lc->head = sc->next;
    }
    if (sc->next) {
        sc->next->prev = sc->prev;
    }
    sc->lchan = NULL;
    /* Not freed here: queued messages of the batch being delivered (lm->lchan)
     * and ps_drop_lchan still point at lc (ASan: heap-use-after-free). */
    if (!lc->head && !lc->queued) {
        lc->queued = 1;
        lc->next_empty = re->empties;
        re->empties = lc;
    }
}

/* End of a loop turn: free the lchans still empty (no lm refers to them). */
static void ps_lchan_free_empties(ps_reactor_t *re)
{
    while (re->empties) {
        ps_lchan_t *lc = re->empties;
        re->empties = lc->next_empty;
        lc->queued = 0;
        if (!lc->head) {
            apr_hash_set(re->lchans, lc->key, (apr_ssize_t)lc->klen, NULL);
            free(lc->key);
            free(lc);
        }
    }
}

/* ---- retiring and releasing ------------------------------------------------------------ */

static void ps_unsubscribe(ps_reactor_t *re, ps_sub_t *sub)
{
    ps_child_t *child = re->child;
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

void ps_reactor_read_again(ps_reactor_t *re, ps_sub_t *sub)
{
    if (!sub->read_again) {
        sub->read_again = 1;
        APR_ARRAY_PUSH(re->again, ps_sub_t *) = sub;
    }
}

/* Subscribers that stopped reading at their budget last turn. */
static void ps_read_again(ps_reactor_t *re, apr_time_t now)
{
    apr_array_header_t *list = re->again;
    int i, n = list->nelts;

    for (i = 0; i < n; i++) {
        ps_sub_t *sub = APR_ARRAY_IDX(list, i, ps_sub_t *);
        sub->read_again = 0;
        if (sub->state != PS_SUBST_DONE) {
            ps_sub_io(sub, APR_POLLIN, now);
        }
    }
    /* keep what was queued again meanwhile */
    memmove(list->elts, list->elts + n * sizeof(ps_sub_t *),
            (list->nelts - n) * sizeof(ps_sub_t *));
    list->nelts -= n;
}

void ps_reactor_retire(ps_reactor_t *re, ps_sub_t *sub)
{
    int i;

    if (sub->state == PS_SUBST_DONE) {
        return;
    }
    sub->state = PS_SUBST_DONE;
    if (sub->in_pollset) {
        apr_pollset_remove(re->ps, &sub->pfd);
        sub->in_pollset = 0;
    }
    psc_heap_remove(&re->heap, sub);
    for (i = 0; i < sub->nchan; i++) {
        ps_lchan_unlink(re, &sub->chans[i]);
    }
    ps_unsubscribe(re, sub);
    if (sub->all_prev) {
        sub->all_prev->all_next = sub->all_next;
    }
    else if (re->all == sub) {
        re->all = sub->all_next;
    }
    if (sub->all_next) {
        sub->all_next->all_prev = sub->all_prev;
    }
    sub->all_prev = sub->all_next = NULL;
    re->count--;
    sub->next = re->retired;
    re->retired = sub;
}

void ps_reactor_freed(ps_reactor_t *re)
{
    re->released++;
}

ps_sub_batch_t *ps_reactor_batch(ps_reactor_t *re)
{
    return &re->batch;
}

/* May c->pool go?  The event MPM worker that suspended the connection runs
 * two more stores after our suspend_connection hook returned: c->sbh = NULL,
 * then one into its connection state, which lives in c->pool.  So wait
 * until the first store is visible, then a margin for the second one. */
static int ps_worker_gone(ps_sub_t *sub, apr_time_t now)
{
    if (sub->fallback || !sub->c) {
        return 1;
    }
    if (__atomic_load_n(&sub->c->sbh, __ATOMIC_ACQUIRE) != NULL) {
        return 0;
    }
    if (!sub->worker_left_at) {
        sub->worker_left_at = now;
        return 0;
    }
    return now - sub->worker_left_at >= PS_RELEASE_AGE;
}

/* Destroy retired connections once the MPM is done with them. */
static void ps_release_retired(ps_reactor_t *re, apr_time_t now, int all)
{
    ps_sub_t **link = &re->retired;

    while (*link) {
        ps_sub_t *sub = *link;
        if (all || ps_worker_gone(sub, now)) {
            *link = sub->next;
            ps_sub_release(sub);
            re->released++;
            continue;
        }
        link = &sub->next;
    }
    if (!all && !re->count && !re->retired && re->released) {
        /* the last subscriber of this child is gone: its memory goes back
         * now rather than at the next maintenance tick */
        malloc_trim(0);
        re->released = 0;
    }
}

/* ---- the publish log ---------------------------------------------------------------------- */

/* Under the store lock: copy messages that someone here waits for. */
static void ps_collect_cb(void *baton, const ps_logmsg_t *m)
{
    ps_reactor_t *re = baton;
    apr_size_t klen;
    char *key = ps_lchan_key(re->scratch, m->view.channel, m->view.channel_len,
                             m->channel_serial, &klen);
    ps_lchan_t *lc = apr_hash_get(re->lchans, key, (apr_ssize_t)klen);
    ps_lmsg_t *lm;

    if (!lc) {
        return;
    }
    lm = apr_array_push(re->msgs);
    lm->view = m->view;
    lm->view.text = apr_pmemdup(re->scratch, m->view.text, m->view.text_len);
    lm->view.channel = apr_pmemdup(re->scratch, m->view.channel,
                                   m->view.channel_len);
    lm->view.event_id = apr_pmemdup(re->scratch, m->view.event_id,
                                    m->view.event_id_len);
    lm->view.event_type = apr_pmemdup(re->scratch, m->view.event_type,
                                      m->view.event_type_len);
    lm->seq = m->seq;
    lm->deleted = m->deleted_notice;
    lm->lchan = lc;
}

/* A deleted channel: its subscriptions here end (the store counts too). */
static void ps_drop_lchan(ps_reactor_t *re, ps_lchan_t *lc)
{
    ps_child_t *child = re->child;
    apr_int64_t now = ps_now_sec();

    if (ps_store_lock(child->store, NULL) != APR_SUCCESS) {
        return;
    }
    while (lc->head) {                   /* lc itself stays (deferred free) */
        ps_sub_chan_t *sc = lc->head;
        if (sc->subscribed) {
            ps_store_unsubscribe_locked(child->store, sc->ref, sc->serial,
                                        child->slot, &sc->sub->sc->limits, now);
            sc->subscribed = 0;
        }
        ps_lchan_unlink(re, sc);
    }
    ps_store_unlock(child->store);
}

static void ps_deliver(ps_reactor_t *re, ps_lmsg_t *lm)
{
    ps_sub_chan_t *sc;
    int i;

    /* Collect first: delivering may end subscribers and unlink them. */
    apr_array_clear(re->targets);
    for (sc = lm->lchan->head; sc; sc = sc->next) {
        ps_sub_t *sub = sc->sub;
        if (sub->state == PS_SUBST_ACTIVE && lm->seq > sub->start_seq
            && (!re->catchup_only || re->catchup_only == sub)) {
            ps_target_t *t = apr_array_push(re->targets);
            t->sub = sub;
            t->ci = (int)(sc - sub->chans);
        }
    }
    for (i = 0; i < re->targets->nelts; i++) {
        ps_target_t *t = &APR_ARRAY_IDX(re->targets, i, ps_target_t);
        ps_sub_message(t->sub, t->ci, &lm->view, lm->deleted);
    }
    if (lm->deleted && !re->catchup_only) {
        ps_drop_lchan(re, lm->lchan);
    }
}

static void ps_read_log(ps_reactor_t *re, apr_uint64_t from, apr_uint64_t to)
{
    ps_child_t *child = re->child;
    apr_uint64_t lost = 0, seq;
    int i;

    apr_array_clear(re->msgs);
    if (ps_store_lock(child->store, NULL) != APR_SUCCESS) {
        return;
    }
    if (!re->catchup_only && !apr_hash_count(re->lchans)) {
        /* Nobody here listens: skip what was published since.  A publisher
         * port publishing 60k/s to channels without subscribers would
         * otherwise have each loop walk 30k entries every 500 ms, holding
         * the lock every publisher needs. */
        re->last_seq = ps_store_seq_locked(child->store);
        ps_store_unlock(child->store);
        return;
    }
    seq = ps_store_read_log_locked(child->store, from, ps_collect_cb, re, &lost);
    ps_store_unlock(child->store);
    if (!re->catchup_only) {
        re->last_seq = seq;
    }
    if (lost) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, child->s, "PS0030: %"
                     APR_UINT64_T_FMT " messages left the publish log before "
                     "this child read them", lost);
    }
    ps_sub_batch_begin(&re->batch);
    for (i = 0; i < re->msgs->nelts; i++) {
        ps_lmsg_t *lm = &APR_ARRAY_IDX(re->msgs, i, ps_lmsg_t);
        if (to && lm->seq > to) {
            break;
        }
        if (lm->lchan->head) {           /* a delete may have emptied it */
            ps_deliver(re, lm);
        }
    }
    ps_sub_batch_end(&re->batch);
    apr_array_clear(re->msgs);
    apr_pool_clear(re->scratch);
}

/* ---- adoption ---------------------------------------------------------------------------- */

void ps_reactor_adopt(ps_reactor_t *re, ps_sub_t *sub)
{
    psc_inbox_put(&re->inbox, sub);
    apr_pollset_wakeup(re->ps);
}

static void ps_adopt_one(ps_reactor_t *re, ps_sub_t *sub, apr_time_t now)
{
    int i;

    sub->adopted_at = now;
    sub->heap_idx = -1;
    sub->all_prev = NULL;
    sub->all_next = re->all;
    if (re->all) {
        re->all->all_prev = sub;
    }
    re->all = sub;
    re->count++;
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
    sub->pfd.client_data = sub;
    sub->pfd.p = sub->c->pool;
    ps_poll_update(re, sub, APR_POLLIN);
    for (i = 0; i < sub->nchan; i++) {
        sub->chans[i].sub = sub;
        ps_lchan_link(re, &sub->chans[i]);
    }
    ps_sub_started(sub, now);
    /* Messages published between the subscription and now that this loop
     * already dispatched before it knew the subscriber. */
    if (sub->state == PS_SUBST_ACTIVE && sub->start_seq < re->last_seq) {
        re->catchup_only = sub;
        ps_read_log(re, sub->start_seq, re->last_seq);
        re->catchup_only = NULL;
    }
    if (re->shutdown) {
        ps_sub_shutdown(sub);
    }
}

static void ps_take_inbox(ps_reactor_t *re, apr_time_t now)
{
    ps_sub_t *sub = psc_inbox_take(&re->inbox);

    while (sub) {
        ps_sub_t *next = psc_inbox_next(&re->inbox, sub);
        ps_adopt_one(re, sub, now);
        sub = next;
    }
}

/* ---- detached subscribers ------------------------------------------------------------------- */

apr_socket_t *ps_reactor_socket_open(ps_reactor_t *re, apr_os_sock_t fd)
{
    apr_socket_t *s = NULL;

    if (re->spare_socks->nelts) {
        s = *(apr_socket_t **)apr_array_pop(re->spare_socks);
    }
    /* with *s set, apr_os_sock_put() reuses the struct */
    if (apr_os_sock_put(&s, &fd, re->sock_pool) != APR_SUCCESS) {
        return NULL;
    }
    apr_socket_timeout_set(s, 0);
    return s;
}

void ps_reactor_socket_close(ps_reactor_t *re, apr_socket_t *s)
{
    apr_socket_close(s);
    APR_ARRAY_PUSH(re->spare_socks, apr_socket_t *) = s;
}

apr_bucket_alloc_t *ps_reactor_bucket_alloc(ps_reactor_t *re)
{
    return re->ba;
}

/* A link into old's channel array, moved along with it into new's. */
static ps_sub_chan_t *ps_rebase_chan(ps_sub_chan_t *p, const ps_sub_t *old,
                                     ps_sub_t *new)
{
    if (p >= old->chans && p < old->chans + old->nchan) {
        return new->chans + (p - old->chans);
    }
    return p;
}

void ps_reactor_replace(ps_reactor_t *re, ps_sub_t *old, ps_sub_t *new)
{
    apr_int16_t ev = old->in_pollset ? old->pfd.reqevents : 0;
    int i;

    if (old->in_pollset) {
        apr_pollset_remove(re->ps, &old->pfd);
        old->in_pollset = 0;
    }
    new->in_pollset = 0;
    ps_poll_update(re, new, ev);
    psc_heap_moved(&re->heap, new);
    if (new->all_prev) {
        new->all_prev->all_next = new;
    }
    else {
        re->all = new;
    }
    if (new->all_next) {
        new->all_next->all_prev = new;
    }
    for (i = 0; i < new->nchan; i++) {
        ps_sub_chan_t *sc = &new->chans[i];
        sc->sub = new;
        sc->prev = ps_rebase_chan(sc->prev, old, new);
        sc->next = ps_rebase_chan(sc->next, old, new);
        if (!sc->lchan) {
            continue;
        }
        if (sc->prev) {
            sc->prev->next = sc;
        }
        else {
            sc->lchan->head = sc;
        }
        if (sc->next) {
            sc->next->prev = sc;
        }
    }
}

/* ---- the loop ------------------------------------------------------------------------------ */

static void ps_run_timers(ps_reactor_t *re, apr_time_t now)
{
    int budget = psc_heap_count(&re->heap) * 2 + 16;
    ps_sub_t *sub;

    while (budget-- > 0 && (sub = psc_heap_pop_due(&re->heap, now))) {
        ps_sub_timer(sub, now);
    }
}

static void ps_maintenance(ps_reactor_t *re, apr_time_t now)
{
    ps_store_t *st = re->child->store;
    int i;

    if (now < re->next_maint) {
        return;
    }
    re->next_maint = now + apr_time_from_sec(1);
    for (i = 0; i < re->n_ext; i++) {
        re->ext[i].on_tick(re->ext[i].baton, now);
    }
    /* Connection pools are freed here but were allocated by the MPM's
     * threads (other malloc arenas): after a burst of closes, hand the
     * free pages back so the child's RSS returns to where it was. */
    if (re->released >= 1000
        || (re->released && re->released == re->released_tick)) {
        /* many, or the end of a burst (nothing new for a second): else
         * the tail of a burst of subscribers that ended their requests
         * (ps_sub_end_request) stays in the heap */
        malloc_trim(0);
        re->released = 0;
    }
    re->released_tick = re->released;
    if (ps_store_lock(st, NULL) == APR_SUCCESS) {
        ps_store_cleanup_locked(st, (apr_int64_t)apr_time_sec(now));
        ps_store_unlock(st);
    }
}

static void ps_shutdown_all(ps_reactor_t *re)
{
    ps_sub_t *sub = re->all;
    int i;

    while (sub) {
        ps_sub_t *next = sub->all_next;
        ps_sub_shutdown(sub);
        sub = next;
    }
    for (i = 0; i < re->n_ext; i++) {
        re->ext[i].on_shutdown(re->ext[i].baton);
    }
    re->shutdown_done = 1;
}

static apr_interval_time_t ps_poll_timeout(ps_reactor_t *re, apr_time_t now)
{
    apr_interval_time_t t = psc_heap_timeout(&re->heap, now, PS_POLL_MAX);

    if (re->retired && t > PS_RELEASE_AGE) {
        t = PS_RELEASE_AGE;
    }
    if (re->again->nelts) {
        t = 0;
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

static void ps_loop_turn(ps_reactor_t *re)
{
    const apr_pollfd_t *fds;
    apr_int32_t n = 0, i;
    apr_time_t now = apr_time_now();
    apr_uint32_t wake;

    if (apr_pollset_poll(re->ps, ps_poll_timeout(re, now), &n, &fds)
        != APR_SUCCESS) {
        n = 0;
    }
    now = apr_time_now();
    for (i = 0; i < n; i++) {
        ps_pollee_t *pe = fds[i].client_data;
        ps_sub_t *sub = fds[i].client_data;
        if (pe->on_io) {
            pe->on_io(pe, fds[i].rtnevents, now);
        }
        else if (sub->state != PS_SUBST_DONE) {
            ps_sub_io(sub, fds[i].rtnevents, now);
        }
    }
    ps_read_again(re, now);
    ps_release_retired(re, now, 0);
    ps_take_inbox(re, now);
    wake = ps_store_wake_counter(re->child->store);
    if (wake != re->wake_seen || now >= re->next_log_read) {
        re->wake_seen = wake;
        re->next_log_read = now + PS_LOG_SAFETY;
        ps_read_log(re, re->last_seq, 0);
    }
    ps_run_timers(re, now);
    if (re->shutdown && !re->shutdown_done) {
        ps_shutdown_all(re);
    }
    ps_maintenance(re, now);
    ps_lchan_free_empties(re);
}

static void *APR_THREAD_FUNC ps_reactor_main(apr_thread_t *t, void *data)
{
    ps_reactor_t *re = data;
    ps_sub_t *sub;
    int i;

    while (!re->exit) {
        ps_loop_turn(re);
    }
    /* The process is going away: nothing more is written. */
    ps_take_inbox(re, apr_time_now());
    while ((sub = re->all) != NULL) {
        ps_sub_abort(sub);
    }
    for (sub = re->retired; sub; sub = sub->next) {
        if (sub->fallback) {
            ps_sub_release(sub);
        }
        else {
            apr_socket_close(sub->sock);
        }
    }
    re->retired = NULL;
    for (i = 0; i < re->n_ext; i++) {
        re->ext[i].on_destroy(re->ext[i].baton);
    }
    re->n_ext = 0;
    psc_heap_free(&re->heap);
    return NULL;
}

static void *APR_THREAD_FUNC ps_notifier_main(apr_thread_t *t, void *data)
{
    ps_reactor_t *re = data;
    ps_store_t *st = re->child->store;
    apr_uint32_t seen = ps_store_wake_counter(st);

    while (!re->exit) {
        apr_uint32_t now_seen;
        ps_store_wait(st, seen, apr_time_from_msec(500));
        now_seen = ps_store_wake_counter(st);
        if (now_seen != seen) {
            seen = now_seen;
            apr_pollset_wakeup(re->ps);
        }
    }
    return NULL;
}

apr_status_t ps_reactor_add_ext(ps_reactor_t *re, const ps_loop_ext_t *ext)
{
    if (re->n_ext == PS_REACTOR_MAX_EXT) {
        return APR_ENOSPC;
    }
    re->ext[re->n_ext++] = *ext;
    return APR_SUCCESS;
}

static apr_uint32_t ps_ext_count(ps_reactor_t *re)
{
    apr_uint32_t n = 0;
    int i;

    for (i = 0; i < re->n_ext; i++) {
        n += re->ext[i].count(re->ext[i].baton);
    }
    return n;
}

apr_status_t ps_reactor_start(ps_child_t *child, ps_reactor_attach_fn *attach,
                              ps_reactor_t **out)
{
    ps_reactor_t *re = apr_pcalloc(child->pool, sizeof(*re));
    sigset_t block, old;
    apr_status_t rv;

    re->child = child;
    re->pool = child->pool;
    psc_heap_init(&re->heap, offsetof(ps_sub_t, deadline),
                  offsetof(ps_sub_t, heap_idx));
    apr_pool_create(&re->batch.pool, child->pool);  /* loop thread only */
    apr_pool_create(&re->scratch, child->pool);
    apr_pool_create(&re->sock_pool, child->pool);
    re->spare_socks = apr_array_make(child->pool, 64, sizeof(apr_socket_t *));
    re->lchans = apr_hash_make(child->pool);
    re->msgs = apr_array_make(child->pool, 64, sizeof(ps_lmsg_t));
    re->targets = apr_array_make(child->pool, 256, sizeof(ps_target_t));
    re->again = apr_array_make(child->pool, 16, sizeof(ps_sub_t *));
    rv = psc_inbox_init(&re->inbox, child->pool, offsetof(ps_sub_t, next));
    if (rv == APR_SUCCESS) {
        rv = apr_pollset_create_ex(&re->ps, 1024, child->pool,
                                   APR_POLLSET_WAKEABLE, APR_POLLSET_EPOLL);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_allocator_create(&re->ba_allocator);
    }
    if (rv == APR_SUCCESS) {
        apr_allocator_max_free_set(re->ba_allocator, PS_BA_MAX_FREE);
        re->ba = apr_bucket_alloc_create_ex(re->ba_allocator);
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (ps_store_lock(child->store, NULL) == APR_SUCCESS) {
        re->last_seq = ps_store_seq_locked(child->store);
        ps_store_unlock(child->store);
    }
    re->wake_seen = ps_store_wake_counter(child->store);
    if (attach) {
        attach(child, re);
    }
    /* Our threads inherit a mask blocking every asynchronous signal: the
     * MPM's signals (SIGTERM, SIGHUP...) must reach its own thread, not one
     * of ours (prefork's handler exits the process from the thread it runs
     * on, and would then wait for itself). */
    sigfillset(&block);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    rv = ap_thread_create(&re->thread, NULL, ps_reactor_main, re, child->pool);
    if (rv == APR_SUCCESS) {
        rv = ap_thread_create(&re->notifier, NULL, ps_notifier_main, re,
                              child->pool);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    *out = re;
    return rv;
}

void ps_reactor_shutdown(ps_reactor_t *re, int graceful)
{
    re->graceful = graceful;
    re->shutdown = 1;
    apr_pollset_wakeup(re->ps);
}

void ps_reactor_stop(ps_reactor_t *re)
{
    apr_status_t rv;
    apr_time_t until = apr_time_now() + PS_STOP_WAIT;

    /* Graceful: detached streams are no connections of the MPM's, which so
     * may end the child while their footers are still going out. */
    while (re->graceful && re->thread
           && (__atomic_load_n(&re->count, __ATOMIC_RELAXED)
               || __atomic_load_n(&re->retired, __ATOMIC_RELAXED)
               || ps_ext_count(re))
           && apr_time_now() < until) {
        apr_sleep(apr_time_from_msec(10));
    }
    re->exit = 1;
    apr_pollset_wakeup(re->ps);
    ps_store_notify(re->child->store);      /* the notifier sleeps on it */
    if (re->thread) {
        apr_thread_join(&rv, re->thread);
    }
    if (re->notifier) {
        apr_thread_join(&rv, re->notifier);
    }
    if (re->ba) {                      /* not a pool's: ours to destroy */
        apr_bucket_alloc_destroy(re->ba);
        re->ba = NULL;
    }
    if (re->ba_allocator) {
        apr_allocator_destroy(re->ba_allocator);
        re->ba_allocator = NULL;
    }
}

apr_status_t ps_reactor_poll_add(ps_reactor_t *re, apr_pollfd_t *pfd)
{
    return apr_pollset_add(re->ps, pfd);
}

void ps_reactor_poll_remove(ps_reactor_t *re, apr_pollfd_t *pfd)
{
    apr_pollset_remove(re->ps, pfd);
}

apr_uint32_t ps_reactor_count(ps_reactor_t *re)
{
    return re->count;
}
