/* ps_redis_sub.c - the child's Redis thread (see ps_redis.h): a pub/sub
 * connection subscribed to "ps:<channel>" for every channel with
 * subscribers on this node, read with poll() (never blocking in hiredis),
 * a command connection for catch-up (SYNC), a PING every 5 s, reconnection
 * with backoff and jitter; the node's state changes are logged once
 * (PS0171, PS0172: the children share ps_rd_node_t). */

#include <poll.h>
#include <sys/eventfd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <apr_atomic.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <httpd.h>
#include <http_log.h>

#include "ps_redis_int.h"
#include "ps_child.h"

APLOG_USE_MODULE(pushstream);

/* ---- the child's Redis thread ------------------------------------------ */

typedef struct ps_rd_sub_t {
    ps_rd_t *rd;
    redisContext *ps;                    /* pub/sub connection */
    redisContext *cmd;                   /* SYNC of gaps and new channels */
    apr_pool_t *pool;                    /* this session's */
    apr_hash_t *subs;                    /* channels subscribed (asked) */
    apr_hash_t *written;                 /* channel -> count in ps:{ch}:subs */
    apr_time_t subs_at;                  /* next full write of the counts */
    apr_time_t ping_at, ping_sent;
    apr_time_t update_at;                /* next ps_rd_update() */
    const char *why;                     /* why the session ended */
} ps_rd_sub_t;

/* Send what hiredis holds (blocking, bounded by the send timeout). */
static int ps_rd_flush(redisContext *c)
{
    int done = 0;

    while (!done) {
        if (redisBufferWrite(c, &done) != REDIS_OK) {
            return -1;
        }
    }
    return 0;
}

static void ps_rd_want_cb(void *baton, const ps_chinfo_t *info, int wildcard)
{
    apr_hash_t *h = baton;

    if (info->subscribers) {
        apr_pool_t *p = apr_hash_pool_get(h);
        apr_hash_set(h, apr_pstrmemdup(p, info->id, info->id_len),
                     (apr_ssize_t)info->id_len,
                     (void *)(apr_uintptr_t)info->subscribers);
    }
}

/* The node's subscriber counts into Redis (ps_redis_lua.h SUBS): a changed
 * count at once, all of them with the node's liveness key every
 * PS_RD_SUBS_SEC; a node that stops writing drops out of the sums within
 * PS_RD_NODE_TTL_MS.  Every child of the node writes the same figures
 * (the segment's).  0 or -1 (command connection failed). */
static int ps_rd_write_counts(ps_rd_sub_t *x, apr_hash_t *want,
                              apr_pool_t *tmp)
{
    ps_rd_t *rd = x->rd;
    apr_hash_index_t *hi;
    apr_time_t now = apr_time_now();
    int full = now >= x->subs_at, n = 0, i;

    if (full) {
        redisAppendCommand(x->cmd, "SET ps:node:%s 1 PX %d", rd->node_id,
                           PS_RD_NODE_TTL_MS);
        n++;
        x->subs_at = now + apr_time_from_sec(PS_RD_SUBS_SEC);
    }
    for (hi = apr_hash_first(tmp, want); hi; hi = apr_hash_next(hi)) {
        const void *k;
        apr_ssize_t klen;
        void *v;
        apr_hash_this(hi, &k, &klen, &v);
        if (full || apr_hash_get(x->written, k, klen) != v) {
            redisAppendCommand(x->cmd, "HSET ps:{%b}:subs %s %llu", k,
                               (size_t)klen, rd->node_id,
                               (unsigned long long)(apr_uintptr_t)v);
            redisAppendCommand(x->cmd, "PEXPIRE ps:{%b}:subs %d", k,
                               (size_t)klen, 2 * PS_RD_NODE_TTL_MS);
            n += 2;
            if (!apr_hash_get(x->written, k, klen)) {
                k = apr_pstrmemdup(x->pool, k, (apr_size_t)klen);
            }
            apr_hash_set(x->written, k, klen, v);
        }
    }
    for (hi = apr_hash_first(tmp, x->written); hi; hi = apr_hash_next(hi)) {
        const void *k;
        apr_ssize_t klen;
        apr_hash_this(hi, &k, &klen, NULL);
        if (!apr_hash_get(want, k, klen)) {
            redisAppendCommand(x->cmd, "HDEL ps:{%b}:subs %s", k,
                               (size_t)klen, rd->node_id);
            n++;
            apr_hash_set(x->written, k, klen, NULL);
        }
    }
    for (i = 0; i < n; i++) {
        void *r = NULL;
        if (redisGetReply(x->cmd, &r) != REDIS_OK || !r) {
            x->why = "subscriber counts not written";
            return -1;
        }
        freeReplyObject(r);
    }
    return 0;
}

/* (Un)subscribe so that the subscribed set is the set of local channels
 * with subscribers.  0 or -1. */
static int ps_rd_update(ps_rd_sub_t *x, apr_pool_t *tmp)
{
    apr_hash_t *want = apr_hash_make(tmp);
    apr_hash_index_t *hi;
    int sent = 0;

    if (ps_store_lock(x->rd->st, NULL) != APR_SUCCESS) {
        return 0;
    }
    ps_store_foreach_channel_locked(x->rd->st, tmp, ps_rd_want_cb, want);
    ps_store_unlock(x->rd->st);
    for (hi = apr_hash_first(tmp, want); hi; hi = apr_hash_next(hi)) {
        const void *k;
        apr_ssize_t klen;
        apr_hash_this(hi, &k, &klen, NULL);
        if (!apr_hash_get(x->subs, k, klen)) {
            redisAppendCommand(x->ps, "SUBSCRIBE " PS_RD_PREFIX "%b", k,
                               (size_t)klen);
            apr_hash_set(x->subs, apr_pstrmemdup(x->pool, k, (apr_size_t)klen),
                         klen, "");
            sent = 1;
        }
    }
    for (hi = apr_hash_first(tmp, x->subs); hi; hi = apr_hash_next(hi)) {
        const void *k;
        apr_ssize_t klen;
        apr_hash_this(hi, &k, &klen, NULL);
        if (!apr_hash_get(want, k, klen)) {
            redisAppendCommand(x->ps, "UNSUBSCRIBE " PS_RD_PREFIX "%b", k,
                               (size_t)klen);
            apr_hash_set(x->subs, k, klen, NULL);
            sent = 1;
        }
    }
    apr_atomic_set32(&x->rd->subscribed, apr_hash_count(x->subs));
    if (ps_rd_write_counts(x, want, tmp)) {
        return -1;
    }
    return sent ? ps_rd_flush(x->ps) : 0;
}

/* An announcement of pub/sub channel name[0..len). */
static int ps_rd_message(ps_rd_sub_t *x, const char *name, apr_size_t len,
                         const char *payload, apr_size_t plen)
{
    ps_rd_t *rd = x->rd;
    apr_size_t pl = strlen(PS_RD_PREFIX);
    ps_redis_rec_t rec;

    if (len < pl || memcmp(name, PS_RD_PREFIX, pl)
        || ps_redis_announce_parse(payload, plen, &rec)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, rd->s, "PS0175: malformed "
                     "announcement on Redis channel %.*s ignored", (int)len,
                     name);
        return 0;
    }
    name += pl;
    len -= pl;
    ps_rd_epoch(rd, rec.epoch, rec.epoch_len);
    if (rec.deleted) {
        ps_channel_t *ch;
        if (ps_store_lock(rd->st, NULL) == APR_SUCCESS) {
            ch = ps_store_find_locked(rd->st, name, len);
            if (ch) {
                ps_store_delete_locked(rd->st, ch, rec.text, rec.text_len,
                                       ps_now_sec());
            }
            ps_store_unlock(rd->st);
            ps_store_notify(rd->st);
        }
        return 0;
    }
    ps_rd_deliver(rd, x->cmd, rd->st, rd->sc, name, len, &rec);
    return x->cmd->err ? -1 : 0;
}

static int ps_rd_reply(ps_rd_sub_t *x, redisReply *r)
{
    redisReply **e = r->element;
    apr_size_t pl = strlen(PS_RD_PREFIX);

    if (r->type == REDIS_REPLY_STATUS && !strcasecmp(r->str, "PONG")) {
        x->ping_sent = 0;
        return 0;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2
        || e[0]->type != REDIS_REPLY_STRING) {
        x->why = r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply";
        return -1;
    }
    if (!strcmp(e[0]->str, "pong")) {
        x->ping_sent = 0;
        return 0;
    }
    if (!strcmp(e[0]->str, "message") && r->elements == 3) {
        return ps_rd_message(x, e[1]->str, e[1]->len, e[2]->str, e[2]->len);
    }
    if (!strcmp(e[0]->str, "subscribe") && e[1]->len > pl) {
        /* subscribed: what was published before comes from the store */
        return ps_rd_sync_one(x->rd, x->cmd, x->rd->st, x->rd->sc,
                              e[1]->str + pl, e[1]->len - pl, 0);
    }
    return 0;
}

/* One connected session; returns when the connection fails or at stop. */
static void ps_rd_session(ps_rd_sub_t *x, apr_pool_t *tmp)
{
    ps_rd_t *rd = x->rd;
    apr_interval_time_t to = apr_time_from_sec(rd->tv.tv_sec)
                             + rd->tv.tv_usec;

    x->ping_at = apr_time_now() + apr_time_from_sec(PS_RD_PING_SEC);
    x->ping_sent = 0;
    x->update_at = 0;
    while (!rd->stop) {
        struct pollfd pfd[2];
        redisReply *r;
        void *rp;
        apr_time_t now;

        apr_pool_clear(tmp);
        if (apr_atomic_xchg32(&rd->resync, 0)) {
            apr_hash_index_t *hi;
            for (hi = apr_hash_first(tmp, x->subs); hi; hi = apr_hash_next(hi)) {
                const void *k;
                apr_ssize_t klen;
                apr_hash_this(hi, &k, &klen, NULL);
                if (ps_rd_sync_one(rd, x->cmd, rd->st, rd->sc, k,
                                   (apr_size_t)klen, 0)) {
                    x->why = "SYNC failed";
                    return;
                }
            }
        }
        now = apr_time_now();
        /* the subscribed set follows the local channels every tick, not
         * after every announcement (a walk of the channels, locked) */
        if (now >= x->update_at) {
            if (ps_rd_update(x, tmp)) {
                x->why = apr_pstrdup(x->pool, x->why ? x->why
                                                     : x->ps->errstr);
                return;
            }
            x->update_at = now + apr_time_from_msec(PS_RD_TICK_MS);
        }
        if (x->ping_sent && now - x->ping_sent > to) {
            x->why = "no answer to PING";
            return;
        }
        if (!x->ping_sent && now >= x->ping_at) {
            redisAppendCommand(x->ps, "PING");
            if (ps_rd_flush(x->ps)) {
                x->why = apr_pstrdup(x->pool, x->ps->errstr);
                return;
            }
            x->ping_sent = now;
            x->ping_at = now + apr_time_from_sec(PS_RD_PING_SEC);
        }
        pfd[0].fd = x->ps->fd;
        pfd[0].events = POLLIN;
        pfd[0].revents = 0;
        pfd[1].fd = rd->kick_fd;         /* -1: ignored by poll() */
        pfd[1].events = POLLIN;
        pfd[1].revents = 0;
        if (poll(pfd, 2, PS_RD_TICK_MS) > 0) {
            if (pfd[1].revents & POLLIN) {
                eventfd_t v;
                (void)eventfd_read(rd->kick_fd, &v);
                x->update_at = 0;        /* a new local subscriber */
            }
        }
        if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (redisBufferRead(x->ps) != REDIS_OK) {
                x->why = apr_pstrdup(x->pool, x->ps->errstr);
                return;
            }
        }
        for (;;) {
            rp = NULL;
            if (redisGetReplyFromReader(x->ps, &rp) != REDIS_OK) {
                x->why = apr_pstrdup(x->pool, x->ps->errstr);
                return;
            }
            if (!rp) {
                break;
            }
            r = rp;
            if (ps_rd_reply(x, r)) {
                if (!x->why) {
                    x->why = "command connection failed";
                }
                x->why = apr_pstrdup(x->pool, x->why);
                freeReplyObject(r);
                return;
            }
            freeReplyObject(r);
        }
    }
}

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

void *APR_THREAD_FUNC ps_rd_thread(apr_thread_t *t, void *data)
{
    ps_rd_t *rd = data;
    apr_pool_t *tp = apr_thread_pool_get(t), *tmp;
    ps_rd_sub_t x;
    int backoff = PS_RD_BACKOFF_MIN;
    unsigned int seed = (unsigned int)getpid() ^ (unsigned int)apr_time_now();
    char why[160];

    memset(&x, 0, sizeof(x));
    x.rd = rd;
    apr_pool_create(&x.pool, tp);
    apr_pool_create(&tmp, tp);
    while (!rd->stop) {
        const char *w = "";
        int waited;

        apr_pool_clear(x.pool);
        x.why = NULL;
        x.subs = apr_hash_make(x.pool);
        x.written = apr_hash_make(x.pool);
        x.subs_at = 0;
        x.ps = ps_rd_connect(rd, &w);
        x.cmd = x.ps ? ps_rd_connect(rd, &w) : NULL;
        apr_cpystrn(why, w, sizeof(why));
        if (x.ps && x.cmd) {
            apr_atomic_inc32(&rd->node->connected);
            ps_rd_set_state(rd, PS_RD_UP, "");
            backoff = PS_RD_BACKOFF_MIN;
            ps_rd_session(&x, tmp);
            apr_cpystrn(why, x.why ? x.why : "stopping", sizeof(why));
            apr_atomic_dec32(&rd->node->connected);
            apr_atomic_set32(&rd->subscribed, 0);
            if (!rd->stop) {
                apr_atomic_inc32(&rd->node->disconnects);
            }
        }
        if (x.ps) {
            redisFree(x.ps);
            x.ps = NULL;
        }
        if (x.cmd) {
            redisFree(x.cmd);
            x.cmd = NULL;
        }
        if (rd->stop) {
            break;
        }
        ps_rd_set_state(rd, PS_RD_DOWN, why);
        /* backoff with jitter: 50%..150% of the step */
        waited = backoff / 2 + (int)(rand_r(&seed) % (unsigned)(backoff + 1));
        while (waited > 0 && !rd->stop) {
            usleep(50000);
            waited -= 50;
        }
        backoff = backoff * 2 > PS_RD_BACKOFF_MAX ? PS_RD_BACKOFF_MAX
                                                  : backoff * 2;
    }
    /* return, not apr_thread_exit(): pthread_exit's unwinding leaves
     * ASan's stack poison behind */
    return NULL;
}
