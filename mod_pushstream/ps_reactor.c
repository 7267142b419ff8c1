/* ps_reactor.c - the subscribers on the child's loop (see ps_reactor.h).
 *
 * Two threads per child: the loop (psc_loop.c), and a notifier that sleeps
 * on the segment's futex word and wakes the loop when any process
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
#include "psc_loop.h"

APLOG_USE_MODULE(pushstream);

#define PS_LOG_SAFETY      apr_time_from_msec(500)   /* read the log anyway */
/* A graceful stop waits this long for the last detached streams. */
#define PS_STOP_WAIT       apr_time_from_sec(5)
/* Free memory the detached streams' bucket allocator may keep. */
#define PS_BA_MAX_FREE     (512 * 1024)

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
    psc_loop_t *loop;
    apr_thread_t *notifier;
    volatile int exit;                 /* the notifier stops */
    int graceful;
    apr_hash_t *lchans;
    ps_lchan_t *empties;               /* emptied lchans, freed end of turn */
    apr_uint32_t released;             /* connections freed since last trim */
    apr_uint32_t released_tick;        /* ... as seen by the previous tick */
    apr_uint64_t last_seq;
    apr_uint32_t wake_seen;
    apr_time_t next_log_read, next_maint;
    apr_array_header_t *msgs;          /* ps_lmsg_t, per log read */
    apr_array_header_t *targets;       /* ps_target_t, per message */
    const ps_sub_t *catchup_only;      /* log read for one new subscriber */
    ps_sub_batch_t batch;              /* subs to write after a log read */
    apr_allocator_t *ba_allocator;     /* detached streams: loop thread only */
    apr_bucket_alloc_t *ba;
};

static ps_sub_t *ps_sub_of(psc_item_t *it)
{
    return (ps_sub_t *)((char *)it - offsetof(ps_sub_t, item));
}

void ps_reactor_reschedule(ps_reactor_t *re, ps_sub_t *sub)
{
    sub->item.deadline = sub->state != PS_SUBST_DONE ? sub->deadline : 0;
    if (psc_loop_schedule(re->loop, &sub->item) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, APR_ENOMEM, re->child->s,
                     "PS0029: out of memory for a subscriber's timer");
    }
}

/* ---- pollset -------------------------------------------------------------------- */

static void ps_poll_update(ps_reactor_t *re, ps_sub_t *sub, apr_int16_t ev)
{
    (void)psc_loop_watch(re->loop, &sub->pfd, &sub->polled, ev);
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
        psc_loop_ready(re->loop, &sub->item);
    }
}

void ps_reactor_retire(ps_reactor_t *re, ps_sub_t *sub)
{
    int i;

    if (sub->state == PS_SUBST_DONE) {
        return;
    }
    sub->state = PS_SUBST_DONE;
    ps_poll_update(re, sub, 0);
    for (i = 0; i < sub->nchan; i++) {
        ps_lchan_unlink(re, &sub->chans[i]);
    }
    ps_unsubscribe(re, sub);
    psc_loop_retire(re->loop, &sub->item);
}

void ps_reactor_freed(ps_reactor_t *re)
{
    re->released++;
}

ps_sub_batch_t *ps_reactor_batch(ps_reactor_t *re)
{
    return &re->batch;
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

static const psc_item_ops_t ps_sub_ops;

void ps_reactor_adopt(ps_reactor_t *re, ps_sub_t *sub)
{
    /* a fallback's worker waits for it: nothing to wait for in turn */
    psc_loop_adopt(re->loop, &sub->item, &ps_sub_ops,
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
    re->released++;
}

/* The process is going away: nothing more is written. */
static void ps_sub_on_drop(psc_item_t *it)
{
    ps_sub_t *sub = ps_sub_of(it);

    if (sub->fallback) {
        ps_sub_release(sub);
    }
    else {
        apr_socket_close(sub->sock);
    }
}

static const psc_item_ops_t ps_sub_ops = {
    ps_sub_on_adopt, ps_sub_on_timer, ps_sub_on_again, ps_sub_on_shutdown,
    ps_sub_on_abort, ps_sub_on_release, ps_sub_on_drop
};

/* ---- detached subscribers ------------------------------------------------------------------- */

apr_socket_t *ps_reactor_socket_open(ps_reactor_t *re, apr_os_sock_t fd)
{
    return psc_loop_socket_open(re->loop, fd);
}

void ps_reactor_socket_close(ps_reactor_t *re, apr_socket_t *s)
{
    psc_loop_socket_close(re->loop, s);
}

apr_socket_t *ps_reactor_socket_dup(ps_reactor_t *re, apr_socket_t *s,
                                    apr_os_sock_t *fd)
{
    return psc_loop_socket_dup(re->loop, s, fd);
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
    apr_int16_t ev = old->polled;
    int i;

    ps_poll_update(re, old, 0);
    new->polled = 0;
    ps_poll_update(re, new, ev);
    new->item.worker_mark = NULL;        /* out of httpd: no worker */
    psc_loop_replace(re->loop, &old->item, &new->item);
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

/* ---- the loop's turns ------------------------------------------------------------ */

static void ps_maintenance(ps_reactor_t *re, apr_time_t now)
{
    ps_store_t *st = re->child->store;

    if (now < re->next_maint) {
        return;
    }
    re->next_maint = now + apr_time_from_sec(1);
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

/* After I/O and adoptions: the publish log when someone published. */
static void ps_reactor_on_turn(void *baton, apr_time_t now)
{
    ps_reactor_t *re = baton;
    apr_uint32_t wake = ps_store_wake_counter(re->child->store);

    if (wake != re->wake_seen || now >= re->next_log_read) {
        re->wake_seen = wake;
        re->next_log_read = now + PS_LOG_SAFETY;
        ps_read_log(re, re->last_seq, 0);
    }
    ps_maintenance(re, now);
}

static void ps_reactor_on_turn_end(void *baton, apr_time_t now)
{
    ps_reactor_t *re = baton;

    if (!psc_loop_count(re->loop) && !psc_loop_has_retired(re->loop)
        && re->released) {
        /* the last subscriber of this child is gone: its memory goes back
         * now rather than at the next maintenance tick */
        malloc_trim(0);
        re->released = 0;
    }
    ps_lchan_free_empties(re);
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
            psc_loop_wakeup(re->loop);
        }
    }
    return NULL;
}

apr_status_t ps_reactor_add_ext(ps_reactor_t *re, const ps_loop_ext_t *ext)
{
    return psc_loop_add_ext(re->loop, ext);
}

apr_status_t ps_reactor_start(ps_child_t *child, ps_reactor_attach_fn *attach,
                              ps_reactor_t **out)
{
    ps_reactor_t *re = apr_pcalloc(child->pool, sizeof(*re));
    psc_loop_hooks_t hooks = { re, ps_reactor_on_turn, ps_reactor_on_turn_end,
                               NULL };
    sigset_t block, old;
    apr_status_t rv;

    re->child = child;
    re->pool = child->pool;
    apr_pool_create(&re->batch.pool, child->pool);  /* loop thread only */
    apr_pool_create(&re->scratch, child->pool);
    re->lchans = apr_hash_make(child->pool);
    re->msgs = apr_array_make(child->pool, 64, sizeof(ps_lmsg_t));
    re->targets = apr_array_make(child->pool, 256, sizeof(ps_target_t));
    rv = psc_loop_create(child->pool, 1, 1024, &hooks, &re->loop);
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
    *out = re;
    rv = psc_loop_start(re->loop, ap_thread_create);
    if (rv == APR_SUCCESS) {
        /* (its signals blocked too, as psc_loop_start() does) */
        sigfillset(&block);
        pthread_sigmask(SIG_BLOCK, &block, &old);
        rv = ap_thread_create(&re->notifier, NULL, ps_notifier_main, re,
                              child->pool);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    return rv;
}

void ps_reactor_shutdown(ps_reactor_t *re, int graceful)
{
    re->graceful = graceful;
    psc_loop_shutdown(re->loop);
}

void ps_reactor_stop(ps_reactor_t *re)
{
    apr_status_t rv;

    /* Graceful: detached streams are no connections of the MPM's, which so
     * may end the child while their footers are still going out. */
    psc_loop_stop(re->loop, re->graceful ? PS_STOP_WAIT : 0);
    re->exit = 1;
    ps_store_notify(re->child->store);      /* the notifier sleeps on it */
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
    return psc_loop_poll_add(re->loop, pfd);
}

void ps_reactor_poll_remove(ps_reactor_t *re, apr_pollfd_t *pfd)
{
    psc_loop_poll_remove(re->loop, pfd);
}

apr_uint32_t ps_reactor_count(ps_reactor_t *re)
{
    return psc_loop_count(re->loop);
}
