/* ps_redis_sub.c - the pub/sub side of several servers, on the child's
 * event loop (see ps_redis.h; no thread of its own, nothing here waits
 * for Redis): one hiredis async context hooked into the loop by
 * ps_redis_ae.c, subscribed to "ps:<channel>" for every channel with
 * subscribers on this node (the set is compared with the node's channels
 * every 100 ms of a loop timer, at once after ps_redis_kick()).
 * Announcements enter the node's segment in order; a channel's id jump
 * holds its announcements back while the gap is filled from the stored
 * messages (SYNC on the loop's command connection, ps_redis_async.c: one
 * command connection per child, pipelined, with its deadlines), and so
 * does the catch-up after each SUBSCRIBE.  The subscriber counts are
 * written on that connection too.
 *
 * hiredis 0.14 has no timeouts: the connect and the liveness ping (every
 * 5 s) have deadlines of PushStreamRedisTimeout on the loop timer, and the
 * reconnection waits with backoff and jitter there.  The ping: the context
 * PSUBSCRIBEs the pattern PS_RD_PING_CH first, and "PING <it>" is written
 * straight into its output buffer, so that its answer ("pong", a pub/sub
 * reply) reaches the pattern's callback (hiredis would otherwise queue a
 * callback per PING that is never called).  The session is up when that
 * PSUBSCRIBE is answered (AUTH and SELECT went through).
 *
 * The node's state changes are logged once (PS0171, PS0172: the children
 * share ps_rd_node_t). */

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <apr_atomic.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <httpd.h>
#include <http_log.h>

#include "ps_nameset.h"
#include "ps_redis_int.h"
#include "ps_redis_ae.h"
#include "ps_child.h"

APLOG_USE_MODULE(pushstream);

/* The pattern each pub/sub connection holds, for the PING replies (no
 * channel is published under it: "ps:" is the channels' prefix). */
#define PS_RD_PING_CH "ps!ping"

/* A channel whose announcements wait for a SYNC (a gap, the catch-up
 * after SUBSCRIBE or a new epoch); its own pool, freed when drained. */
typedef struct ps_rds_msg_t {
    struct ps_rds_msg_t *next;
    apr_size_t len;
    char *payload;
} ps_rds_msg_t;

typedef struct ps_rds_chan_t {
    apr_pool_t *pool;
    char *ch;
    apr_size_t len;
    int busy;                      /* a SYNC under way */
    int allow_gap;                 /* it failed: the next enters anyway */
    int again;                     /* a new epoch meanwhile: SYNC again */
    ps_rds_msg_t *head, *tail;
} ps_rds_chan_t;

static struct {
    int attached, stopping, user;
    redisAsyncContext *ac;         /* the pub/sub context; NULL: none */
    int up;                        /* PSUBSCRIBE answered: session on */
    unsigned int gen;              /* sessions started */
    apr_time_t connect_deadline, retry_at;
    int backoff;
    unsigned int seed;
    apr_pool_t *tmp;
    ps_nameset_t subs;             /* channels subscribed (asked) */
    apr_pool_t *hpool;             /* held's */
    apr_hash_t *held;              /* channel -> ps_rds_chan_t */
    apr_uint64_t walked;           /* ps_store_subs_changes() written */
    apr_time_t ping_at, ping_sent, update_at;
    volatile apr_uint32_t kicked;  /* ps_rd_sub_kick() */
    char whybuf[160];
} ps_rds;

static apr_interval_time_t ps_rds_timeout(void)
{
    return apr_time_from_sec(ps_rd->tv.tv_sec) + ps_rd->tv.tv_usec;
}

/* ---- the node's state --------------------------------------------------- */

/* The node's state changes: logged by the child that changes it first. */
static void ps_rd_set_state(ps_rd_t *rd, apr_uint32_t to, const char *why)
{
    apr_uint32_t from = apr_atomic_read32(&rd->node->state);

    if (from == to || apr_atomic_cas32(&rd->node->state, to, from) != from) {
        return;
    }
    if (to == PS_RD_UP) {
        ap_log_error(APLOG_MARK, from == PS_RD_DOWN ? APLOG_NOTICE
                     : APLOG_INFO, 0, rd->s, "PS0171: Redis %s%s:%d "
                     "connected%s", rd->url.path ? rd->url.path : "",
                     rd->url.host ? rd->url.host : "",
                     rd->url.path ? 0 : rd->url.port,
                     from == PS_RD_DOWN ? " again; channels with subscribers "
                     "are subscribed and caught up again" : "");
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, rd->s, "PS0172: Redis "
                     "unreachable (%s); publishes answer 503, subscribers "
                     "stay; reconnecting with backoff", why);
    }
}

/* ---- announcements held while a SYNC fills a gap ------------------------ */

static void ps_rds_fill(ps_rds_chan_t *c, apr_uint64_t upto);
static void ps_rds_drop(const char *why);

static ps_rds_chan_t *ps_rds_chan(const char *ch, apr_size_t len)
{
    ps_rds_chan_t *c = apr_hash_get(ps_rds.held, ch, (apr_ssize_t)len);
    apr_pool_t *p;

    if (c || apr_pool_create(&p, NULL) != APR_SUCCESS) {
        return c;
    }
    c = apr_pcalloc(p, sizeof(*c));
    c->pool = p;
    c->ch = apr_pstrmemdup(p, ch, len);
    c->len = len;
    apr_hash_set(ps_rds.held, c->ch, (apr_ssize_t)len, c);
    return c;
}

static void ps_rds_hold(ps_rds_chan_t *c, const char *payload,
                        apr_size_t len)
{
    ps_rds_msg_t *m = apr_pcalloc(c->pool, sizeof(*m));

    m->payload = apr_pmemdup(c->pool, payload, len);
    m->len = len;
    if (c->tail) {
        c->tail->next = m;
    }
    else {
        c->head = m;
    }
    c->tail = m;
}

/* An announcement of channel ch enters the segment: 0, or the id after a
 * gap (left out; allow_gap: entered anyway). */
static apr_uint64_t ps_rds_apply(const char *ch, apr_size_t len,
                                 const char *payload, apr_size_t plen,
                                 int allow_gap)
{
    ps_rd_t *rd = ps_rd;
    ps_redis_rec_t rec;

    if (ps_redis_announce_parse(payload, plen, &rec)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, rd->s, "PS0175: malformed "
                     "announcement on Redis channel " PS_RD_PREFIX "%.*s "
                     "ignored", (int)len, ch);
        return 0;
    }
    ps_rd_epoch(rd, rec.epoch, rec.epoch_len);
    if (rec.deleted) {
        ps_channel_t *lch;
        if (ps_store_lock(rd->st, NULL) == APR_SUCCESS) {
            lch = ps_store_find_locked(rd->st, ch, len);
            if (lch) {
                ps_store_delete_locked(rd->st, lch, rec.text, rec.text_len,
                                       ps_now_sec());
            }
            ps_store_unlock(rd->st);
            ps_store_notify(rd->st);
        }
        return 0;
    }
    if (ps_rd_mirror(rd, rd->st, rd->sc, ch, len, &rec, allow_gap)) {
        apr_atomic_inc32(&rd->node->gaps_filled);
        return (apr_uint64_t)rec.id;
    }
    return 0;
}

/* The held announcements in order, until the next gap; c is freed when
 * none is left (the caller must not use c after this). */
static void ps_rds_drain(ps_rds_chan_t *c)
{
    while (c->head && !c->busy) {
        ps_rds_msg_t *m = c->head;
        apr_uint64_t id = ps_rds_apply(c->ch, c->len, m->payload, m->len,
                                       c->allow_gap);
        c->allow_gap = 0;
        if (id) {
            ps_rds_fill(c, id);            /* may drain (and free) c */
            return;
        }
        c->head = m->next;
        if (!c->head) {
            c->tail = NULL;
        }
    }
    if (c->busy) {
        return;
    }
    if (c->again) {
        c->again = 0;
        ps_rds_fill(c, 0);
        return;
    }
    apr_hash_set(ps_rds.held, c->ch, (apr_ssize_t)c->len, NULL);
    apr_pool_destroy(c->pool);
}

static void ps_rds_filled(void *baton, int ok)
{
    ps_rds_chan_t *c = baton;

    c->busy = 0;
    if (ps_rds.stopping) {
        apr_pool_destroy(c->pool);         /* held is gone already */
        return;
    }
    if (!ok) {
        /* what is held enters with its gap; the session starts again
         * (SUBSCRIBE, SYNC) once Redis answers */
        c->allow_gap = 1;
        ps_rds_drop("SYNC failed");
    }
    ps_rds_drain(c);
}

static void ps_rds_fill(ps_rds_chan_t *c, apr_uint64_t upto)
{
    c->busy = 1;
    if (ps_rd_sync_async(ps_rd, c->ch, c->len, upto, ps_rds_filled, c)
        != 0) {
        ps_rds_filled(c, 0);
    }
}

/* Catch-up of a channel (subscribed, or a new epoch): a SYNC, its
 * announcements held meanwhile. */
static void ps_rds_catch_up(const char *ch, apr_size_t len)
{
    ps_rds_chan_t *c = ps_rds_chan(ch, len);

    if (!c) {
        return;
    }
    if (c->busy) {
        c->again = 1;
    }
    else {
        ps_rds_fill(c, 0);
    }
}

static void ps_rds_message(const char *name, apr_size_t len,
                           const char *payload, apr_size_t plen)
{
    apr_size_t pl = strlen(PS_RD_PREFIX);
    ps_rds_chan_t *c;
    apr_uint64_t id;

    if (len < pl || memcmp(name, PS_RD_PREFIX, pl)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, ps_rd->s, "PS0175: "
                     "malformed announcement on Redis channel %.*s ignored",
                     (int)len, name);
        return;
    }
    name += pl;
    len -= pl;
    c = apr_hash_get(ps_rds.held, name, (apr_ssize_t)len);
    if (c) {
        ps_rds_hold(c, payload, plen);     /* after what waits already */
        return;
    }
    id = ps_rds_apply(name, len, payload, plen, 0);
    if (id) {
        c = ps_rds_chan(name, len);
        if (!c) {
            ps_rds_apply(name, len, payload, plen, 1);
            return;
        }
        ps_rds_hold(c, payload, plen);
        ps_rds_fill(c, id);
    }
}

/* The names of channels gone leave the session's sets (ps_nameset.h):
 * with per-user channels coming and going between two reconnects. */
static void ps_rds_compact(void)
{
    apr_size_t freed = ps_nameset_compact(&ps_rds.subs) + ps_rdc_compact();

    if (freed) {
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, ps_rd->s, "PS0180: the "
                     "names of channels gone from the Redis pub/sub "
                     "session freed (%" APR_SIZE_T_FMT " bytes; channels "
                     "subscribed: %u)", freed, ps_nameset_count(&ps_rds.subs));
    }
}

/* ---- the pub/sub session --------------------------------------------- */

static void ps_rds_want_cb(void *baton, const ps_chinfo_t *info, int wildcard)
{
    apr_hash_t *h = baton;

    if (info->subscribers) {
        apr_pool_t *p = apr_hash_pool_get(h);
        apr_hash_set(h, apr_pstrmemdup(p, info->id, info->id_len),
                     (apr_ssize_t)info->id_len,
                     (void *)(apr_uintptr_t)info->subscribers);
    }
}

static void ps_rds_on_reply(redisAsyncContext *ac, void *reply, void *priv);

/* (Un)subscribe so that the subscribed set is the set of local channels
 * with subscribers; the counts follow. */
static void ps_rds_update(apr_time_t now)
{
    ps_rd_t *rd = ps_rd;
    apr_hash_t *want;
    apr_hash_index_t *hi;
    apr_uint64_t changes = ps_store_subs_changes(rd->st);

    apr_pool_clear(ps_rds.tmp);
    if (changes == ps_rds.walked && !ps_rdc_due(now)) {
        /* no channel's subscribers changed since the counts were written
         * (chan_at 0: a new session, or Redis lost its data): no walk of
         * every channel (sorted, under the store lock) */
        ps_rdc_write(NULL, now, ps_rds.gen);
        return;
    }
    want = apr_hash_make(ps_rds.tmp);
    if (ps_store_lock(rd->st, NULL) != APR_SUCCESS) {
        return;
    }
    ps_store_foreach_channel_locked(rd->st, ps_rds.tmp, ps_rds_want_cb, want);
    ps_store_unlock(rd->st);
    for (hi = apr_hash_first(ps_rds.tmp, want); hi; hi = apr_hash_next(hi)) {
        const void *k;
        apr_ssize_t klen;
        apr_hash_this(hi, &k, &klen, NULL);
        if (!ps_nameset_get(&ps_rds.subs, k, (apr_size_t)klen)) {
            redisAsyncCommand(ps_rds.ac, ps_rds_on_reply, NULL,
                              "SUBSCRIBE " PS_RD_PREFIX "%b", k,
                              (size_t)klen);
            ps_nameset_put(&ps_rds.subs, k, (apr_size_t)klen, "");
        }
    }
    for (hi = apr_hash_first(NULL, ps_rds.subs.h); hi;
         hi = apr_hash_next(hi)) {
        const void *k;
        apr_ssize_t klen;
        apr_hash_this(hi, &k, &klen, NULL);
        if (!apr_hash_get(want, k, klen)) {
            /* (no callback: each channel's reply goes to its SUBSCRIBE's) */
            redisAsyncCommand(ps_rds.ac, NULL, NULL,
                              "UNSUBSCRIBE " PS_RD_PREFIX "%b", k,
                              (size_t)klen);
            ps_nameset_del(&ps_rds.subs, k, (apr_size_t)klen);
        }
    }
    apr_atomic_set32(&rd->subscribed, ps_nameset_count(&ps_rds.subs));
    if (ps_rdc_write(want, now, ps_rds.gen)) {
        ps_rds.walked = changes;           /* read before the walk */
    }
    ps_rds_compact();
}

/* The session is down (the context is gone already): the next connect
 * waits with backoff and jitter. */
static void ps_rds_down(const char *why)
{
    ps_rd_t *rd = ps_rd;
    int wait;

    if (ps_rds.up) {
        ps_rds.up = 0;
        apr_atomic_dec32(&rd->node->connected);
        if (!ps_rds.stopping) {
            apr_atomic_inc32(&rd->node->disconnects);
        }
    }
    apr_atomic_set32(&rd->subscribed, 0);
    ps_rdc_leave();
    ps_nameset_clear(&ps_rds.subs);
    if (ps_rds.stopping) {
        return;
    }
    ps_rd_set_state(rd, PS_RD_DOWN, why);
    /* backoff with jitter: 50%..150% of the step */
    wait = ps_rds.backoff / 2
           + (int)(rand_r(&ps_rds.seed) % (unsigned)(ps_rds.backoff + 1));
    ps_rds.retry_at = apr_time_now() + apr_time_from_msec(wait);
    ps_rds.backoff = ps_rds.backoff * 2 > PS_RD_BACKOFF_MAX
                     ? PS_RD_BACKOFF_MAX : ps_rds.backoff * 2;
}

static void ps_rds_drop(const char *why)
{
    redisAsyncContext *ac = ps_rds.ac;

    if (!ac) {
        return;
    }
    apr_cpystrn(ps_rds.whybuf, why, sizeof(ps_rds.whybuf));
    ps_rds.ac = NULL;                      /* its callbacks: not ours now */
    redisAsyncFree(ac);                    /* (deferred in its callback) */
    ps_rds_down(ps_rds.whybuf);
}

void ps_rd_sub_lost(unsigned int gen, const char *why)
{
    if (!ps_rds.stopping && gen == ps_rds.gen && ps_rds.up) {
        ps_rds_drop(why);
    }
}

static void ps_rds_up(apr_time_t now)
{
    ps_rds.up = 1;
    ps_rds.gen++;
    apr_atomic_inc32(&ps_rd->node->connected);
    ps_rd_set_state(ps_rd, PS_RD_UP, "");
    ps_rds.backoff = PS_RD_BACKOFF_MIN;
    ps_nameset_clear(&ps_rds.subs);
    ps_rdc_reset();
    ps_rds.ping_at = now + apr_time_from_sec(PS_RD_PING_SEC);
    ps_rds.ping_sent = 0;
    ps_rds.update_at = now + apr_time_from_msec(PS_RD_TICK_MS);
    ps_rds_update(now);
}

/* Every reply of the pub/sub context: to the PSUBSCRIBE of the ping
 * pattern and PING, to each SUBSCRIBE (and its channel's messages). */
static void ps_rds_on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    redisReply *r = reply, **e;
    apr_size_t pl = strlen(PS_RD_PREFIX);

    if (ac != ps_rds.ac || !r || ps_rds.stopping) {
        return;                            /* a context being freed */
    }
    e = r->element;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2
        || e[0]->type != REDIS_REPLY_STRING) {
        ps_rds_drop(r->type == REDIS_REPLY_ERROR ? r->str
                    : "unexpected reply");
        return;
    }
    if (!strcmp(e[0]->str, "message") && r->elements == 3) {
        ps_rds_message(e[1]->str, e[1]->len, e[2]->str, e[2]->len);
    }
    else if (!strcmp(e[0]->str, "pong")) {
        ps_rds.ping_sent = 0;
    }
    else if (!strcmp(e[0]->str, "subscribe") && e[1]->len > pl) {
        /* subscribed: what was published before comes from the store */
        ps_rds_catch_up(e[1]->str + pl, e[1]->len - pl);
    }
    else if (!strcmp(e[0]->str, "psubscribe") && !ps_rds.up) {
        ps_rds_up(apr_time_now());
    }
}

static void ps_rds_on_connect(const redisAsyncContext *ac, int status)
{
    if (ac == ps_rds.ac && status != REDIS_OK) {
        apr_cpystrn(ps_rds.whybuf, ac->errstr[0] ? ac->errstr
                    : "connect failed", sizeof(ps_rds.whybuf));
        ps_rds.ac = NULL;                  /* hiredis frees it */
        ps_rds_down(ps_rds.whybuf);
    }
}

static void ps_rds_on_disconnect(const redisAsyncContext *ac, int status)
{
    if (ac == ps_rds.ac) {
        apr_cpystrn(ps_rds.whybuf, ac->err ? ac->errstr
                    : "closed the connection", sizeof(ps_rds.whybuf));
        ps_rds.ac = NULL;                  /* hiredis frees it */
        ps_rds_down(ps_rds.whybuf);
    }
}

/* AUTH / SELECT refused: the connection is of no use. */
static void ps_rds_on_setup(redisAsyncContext *ac, void *reply, void *priv)
{
    redisReply *r = reply;

    if (r && r->type == REDIS_REPLY_ERROR && ac == ps_rds.ac) {
        ps_rds_drop(priv);
    }
}

static void ps_rds_connect(apr_time_t now)
{
    const char *why = "";
    redisAsyncContext *ac = ps_rda_open(ps_rds_on_connect,
                                        ps_rds_on_disconnect, ps_rds_on_setup,
                                        ps_rds.whybuf, sizeof(ps_rds.whybuf),
                                        &why);

    if (!ac) {
        ps_rds_down(why);
        return;
    }
    ps_rds.ac = ac;
    ps_rds.connect_deadline = now + ps_rds_timeout();
    redisAsyncCommand(ac, ps_rds_on_reply, NULL, "PSUBSCRIBE %s",
                      PS_RD_PING_CH);
}

static void ps_rds_ping(apr_time_t now)
{
    redisAsyncContext *ac = ps_rds.ac;

    /* straight into the output buffer: no callback queued (see above) */
    if (redisAppendCommand(&ac->c, "PING %s", PS_RD_PING_CH) != REDIS_OK) {
        ps_rds_drop("cannot send PING");
        return;
    }
    ac->ev.addWrite(ac->ev.data);
    ps_rds.ping_sent = now;
    ps_rds.ping_at = now + apr_time_from_sec(PS_RD_PING_SEC);
}

/* ---- the loop timer ---------------------------------------------------- */

static void ps_rds_rearm(void)
{
    apr_time_t t;

    if (!ps_rds.ac) {
        t = ps_rds.retry_at;
    }
    else if (!ps_rds.up) {
        t = ps_rds.connect_deadline;
    }
    else {
        t = ps_rds.ping_sent ? ps_rds.ping_sent + ps_rds_timeout()
                             : ps_rds.ping_at;
        if (ps_rds.update_at < t) {
            t = ps_rds.update_at;
        }
    }
    ps_rae_wake_at(ps_rds.user, t ? t : 1);
}

static void ps_rds_resync(void)
{
    apr_hash_index_t *hi;

    ps_rdc_reset();                        /* every count written again */
    apr_pool_clear(ps_rds.tmp);
    for (hi = apr_hash_first(ps_rds.tmp, ps_rds.subs.h); hi;
         hi = apr_hash_next(hi)) {
        const void *k;
        apr_ssize_t klen;
        apr_hash_this(hi, &k, &klen, NULL);
        ps_rds_catch_up(k, (apr_size_t)klen);
        if (!ps_rds.up) {
            return;                        /* the session went */
        }
    }
}

static void ps_rds_timer(void *baton, apr_time_t now)
{
    if (!ps_rds.attached || ps_rds.stopping) {
        return;
    }
    now = apr_time_now();
    if (!ps_rds.ac) {
        if (now >= ps_rds.retry_at) {
            ps_rds_connect(now);
        }
    }
    else if (!ps_rds.up) {
        if (now >= ps_rds.connect_deadline) {
            ps_rds_drop("did not accept the connection within "
                        "PushStreamRedisTimeout");
        }
    }
    else if (ps_rds.ping_sent && now - ps_rds.ping_sent > ps_rds_timeout()) {
        ps_rds_drop("no answer to PING");
    }
    else {
        if (apr_atomic_xchg32(&ps_rds.kicked, 0)) {
            ps_rds.update_at = 0;          /* a new local subscriber */
        }
        if (apr_atomic_xchg32(&ps_rd->resync, 0)) {
            ps_rds_resync();               /* Redis lost its data */
        }
        /* the subscribed set follows the local channels every tick, not
         * after every announcement (a walk of the channels, locked) */
        if (ps_rds.up && now >= ps_rds.update_at) {
            ps_rds_update(now);
            ps_rds.update_at = now + apr_time_from_msec(PS_RD_TICK_MS);
        }
        if (ps_rds.up && !ps_rds.ping_sent && now >= ps_rds.ping_at) {
            ps_rds_ping(now);
        }
    }
    ps_rds_rearm();
}

static void ps_rds_destroy(void *baton)
{
    redisAsyncContext *ac = ps_rds.ac;

    ps_rds.stopping = 1;
    ps_rds.ac = NULL;
    if (ac) {
        redisAsyncFree(ac);
    }
    ps_rds_down("stopping");
    ps_rds.attached = 0;
    /* the held channels are freed by their SYNC's callback (the command
     * connection ends after this) */
    apr_pool_destroy(ps_rds.hpool);
    apr_pool_destroy(ps_rds.tmp);
    ps_nameset_destroy(&ps_rds.subs);
    ps_rdc_destroy();
}

void ps_rd_sub_attach(void)
{
    ps_rae_user_t u;
    apr_time_t now = apr_time_now();

    memset(&ps_rds, 0, sizeof(ps_rds));
    u.baton = NULL;
    u.on_timer = ps_rds_timer;
    u.on_destroy = ps_rds_destroy;
    ps_rds.user = ps_rae_user_add(&u);
    if (ps_rds.user < 0) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, ps_rd->s, "PS0170: this "
                     "child's loop cannot take its Redis pub/sub connection: "
                     "it gets no announcements");
        return;
    }
    apr_pool_create(&ps_rds.tmp, NULL);
    ps_nameset_init(&ps_rds.subs, PS_RD_NAMES_MIN);
    ps_rdc_init();
    apr_pool_create(&ps_rds.hpool, NULL);
    ps_rds.held = apr_hash_make(ps_rds.hpool);
    ps_rds.seed = (unsigned int)getpid() ^ (unsigned int)now;
    ps_rds.backoff = PS_RD_BACKOFF_MIN;
    ps_rds.retry_at = now;
    ps_rds.attached = 1;
    ps_rae_wake_at(ps_rds.user, now);
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, ps_rd->s, "PS0179: the Redis "
                 "pub/sub connection of this child runs on its event loop");
}

void ps_rd_sub_kick(void)
{
    if (ps_rd) {
        apr_atomic_set32(&ps_rds.kicked, 1);
        ps_rae_poke();
    }
}
