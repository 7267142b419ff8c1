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
    ps_rlink_t *head;
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
    apr_array_header_t *targets;       /* ps_rlink_t *, per message */
    const void *catchup_only;          /* log read for one new subscriber */
    const ps_reactor_subs_t *subs;     /* the subscribers' callbacks */
    void *subs_baton;                  /* subs->init() */
    apr_allocator_t *ba_allocator;     /* detached streams: loop thread only */
    apr_bucket_alloc_t *ba;
};

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

void ps_reactor_link(ps_reactor_t *re, ps_rlink_t *sc, const char *id,
                     apr_size_t len, apr_uint64_t serial)
{
    apr_size_t klen;
    char *key = ps_lchan_key(re->scratch, id, len, serial, &klen);
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

void ps_reactor_unlink(ps_reactor_t *re, ps_rlink_t *sc)
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

void ps_reactor_link_moved(ps_rlink_t *sc)
{
    if (!sc->lchan) {
        return;
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

/* ---- releasing ------------------------------------------------------------ */

void ps_reactor_freed(ps_reactor_t *re)
{
    re->released++;
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
        ps_rlink_t *sc = lc->head;
        re->subs->dropped(sc, now);
        ps_reactor_unlink(re, sc);
    }
    ps_store_unlock(child->store);
}

static void ps_deliver(ps_reactor_t *re, ps_lmsg_t *lm)
{
    ps_rlink_t *sc;
    int i;

    /* Collect first: delivering may end subscribers and unlink them. */
    apr_array_clear(re->targets);
    for (sc = lm->lchan->head; sc; sc = sc->next) {
        const void *owner = re->subs->wants(sc, lm->seq);
        if (owner && (!re->catchup_only || re->catchup_only == owner)) {
            APR_ARRAY_PUSH(re->targets, ps_rlink_t *) = sc;
        }
    }
    for (i = 0; i < re->targets->nelts; i++) {
        re->subs->message(APR_ARRAY_IDX(re->targets, i, ps_rlink_t *),
                          &lm->view, lm->deleted);
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
    re->subs->batch_begin(re->subs_baton);
    for (i = 0; i < re->msgs->nelts; i++) {
        ps_lmsg_t *lm = &APR_ARRAY_IDX(re->msgs, i, ps_lmsg_t);
        if (to && lm->seq > to) {
            break;
        }
        if (lm->lchan->head) {           /* a delete may have emptied it */
            ps_deliver(re, lm);
        }
    }
    re->subs->batch_end(re->subs_baton);
    apr_array_clear(re->msgs);
    apr_pool_clear(re->scratch);
}

/* ---- adoption ---------------------------------------------------------------------------- */

void ps_reactor_catchup(ps_reactor_t *re, const void *owner,
                        apr_uint64_t start_seq)
{
    if (start_seq < re->last_seq) {
        re->catchup_only = owner;
        ps_read_log(re, start_seq, re->last_seq);
        re->catchup_only = NULL;
    }
}

/* ---- detached subscribers ------------------------------------------------------------------- */

int ps_reactor_fd_dup(apr_socket_t *s)
{
    return psc_loop_fd_dup(s);
}

apr_socket_t *ps_reactor_fd_socket(ps_reactor_t *re, apr_os_sock_t fd)
{
    return psc_loop_fd_socket(re->loop, fd);
}

apr_bucket_alloc_t *ps_reactor_bucket_alloc(ps_reactor_t *re)
{
    return re->ba;
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

psc_loop_t *ps_reactor_loop(ps_reactor_t *re)
{
    return re->loop;
}

void *ps_reactor_subs_baton(ps_reactor_t *re)
{
    return re->subs_baton;
}

apr_status_t ps_reactor_start(ps_child_t *child,
                              const ps_reactor_subs_t *subs,
                              ps_reactor_attach_fn *attach, ps_reactor_t **out)
{
    ps_reactor_t *re = apr_pcalloc(child->pool, sizeof(*re));
    psc_loop_hooks_t hooks = { re, ps_reactor_on_turn, ps_reactor_on_turn_end,
                               NULL };
    sigset_t block, old;
    apr_status_t rv;

    re->child = child;
    re->pool = child->pool;
    re->subs = subs;
    re->subs_baton = subs->init(child->pool);
    apr_pool_create(&re->scratch, child->pool);
    re->lchans = apr_hash_make(child->pool);
    re->msgs = apr_array_make(child->pool, 64, sizeof(ps_lmsg_t));
    re->targets = apr_array_make(child->pool, 256, sizeof(ps_rlink_t *));
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
