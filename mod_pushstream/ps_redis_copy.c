/* ps_redis_copy.c - the node's local copy of what Redis holds: messages
 * Redis assigned enter the node's segment (ps_rd_deliver), gaps are filled
 * from the stored messages (SYNC), so the loops deliver them as local
 * publishes.  Called on the child's loop (the pub/sub side,
 * ps_redis_sub.c, and the loop's asynchronous connection: SYNC there by
 * ps_rd_sync_async) and on publishing threads (ps_redis.c, blocking). */

#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include <apr_atomic.h>
#include <apr_strings.h>
#include <httpd.h>
#include <http_log.h>

#include "ps_redis_int.h"
#include "ps_redis_lua.h"
#include "ps_child.h"

APLOG_USE_MODULE(pushstream);

/* ---- the local copy ---------------------------------------------------- */

static int ps_rd_wildcard(const ps_srv_conf_t *sc, const char *id,
                          apr_size_t len)
{
    apr_size_t n = sc->wildcard_prefix ? strlen(sc->wildcard_prefix) : 0;
    return n && len >= n && !memcmp(id, sc->wildcard_prefix, n);
}

static void ps_rd_view(const ps_redis_rec_t *r, const char *ch,
                       apr_size_t chlen, ps_msgview_t *v)
{
    memset(v, 0, sizeof(*v));
    v->id = r->id;
    v->text = r->text;
    v->text_len = r->text_len;
    v->channel = ch;
    v->channel_len = chlen;
    v->time = r->time;
    v->tag = r->tag;
    v->event_id = r->event_id;
    v->event_id_len = r->event_id_len;
    v->event_type = r->event_type;
    v->event_type_len = r->event_type_len;
}

/* A channel's keys "ps:{id}:meta" and "ps:{id}:msgs", each len + 10
 * bytes (no NUL), one after the other in k[2 * (len + 10)]. */
void ps_rd_key_pair(char *k, const char *id, apr_size_t len)
{
    memcpy(k, "ps:{", 4);
    memcpy(k + 4, id, len);
    memcpy(k + 4 + len, "}:meta", 6);
    memcpy(k + len + 10, k, len + 4);
    memcpy(k + 2 * len + 14, "}:msgs", 6);
}

/* Last id of the local channel (0 when none). */
apr_uint64_t ps_rd_local_last(ps_store_t *st, const char *ch,
                              apr_size_t len)
{
    apr_uint64_t last = 0;
    ps_chinfo_t info;
    ps_channel_t *c;

    if (ps_store_lock(st, NULL) != APR_SUCCESS) {
        return 0;
    }
    c = ps_store_find_locked(st, ch, len);
    if (c) {
        ps_store_channel_info_locked(st, c, &info);
        last = info.published_messages;
    }
    ps_store_unlock(st);
    return last;
}

/* One SYNC call: its argv (slots 0..2 free) and what its reply needs. */
typedef struct ps_rd_syncq_t {
    const char *argv[8];
    size_t lens[8];
    char sa[24], sm[24];
    char *km;                      /* the key pair, 2 * (len + 10) */
    apr_uint64_t after;            /* the local last id sent */
} ps_rd_syncq_t;

static void ps_rd_sync_prep(ps_rd_syncq_t *q, char *km, ps_store_t *st,
                            const ps_srv_conf_t *sc, const char *ch,
                            apr_size_t len)
{
    q->after = ps_rd_local_last(st, ch, len);
    q->km = km;
    ps_rd_key_pair(km, ch, len);
    apr_snprintf(q->sa, sizeof(q->sa), "%" APR_UINT64_T_FMT, q->after);
    apr_snprintf(q->sm, sizeof(q->sm), "%" APR_INT64_T_FMT,
                 (sc->limits.message_ttl > sc->limits.channel_inactivity
                  ? sc->limits.message_ttl : sc->limits.channel_inactivity)
                 + 3600);
    q->argv[3] = PS_RD_EPOCH_KEY;
    q->lens[3] = strlen(PS_RD_EPOCH_KEY);
    q->argv[4] = km;
    q->lens[4] = len + 10;
    q->argv[5] = km + len + 10;
    q->lens[5] = len + 10;
    q->argv[6] = q->sa;
    q->lens[6] = strlen(q->sa);
    q->argv[7] = q->sm;
    q->lens[7] = strlen(q->sm);
}

/* SYNC's reply r (not freed here) applied: the stored messages after the
 * local last id enter the local copy.  upto > 0: the gap before message
 * upto is filled (stored messages before it; the last id moves to
 * upto - 1 at most, so that message itself, stored or not, is mirrored
 * next).  0, or -1 (no reply, or not one of SYNC). */
static int ps_rd_sync_apply(ps_rd_t *rd, ps_store_t *st,
                            const ps_srv_conf_t *sc, const char *ch,
                            apr_size_t len, int create, apr_uint64_t upto,
                            apr_uint64_t after, const redisReply *r)
{
    apr_int64_t now = ps_now_sec(), last;
    ps_channel_t *lch;
    size_t i;
    int filled = 0;

    if (!r) {
        return -1;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2
        || r->element[0]->type != REDIS_REPLY_STRING
        || r->element[1]->type != REDIS_REPLY_INTEGER) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, rd->s, "PS0175: unexpected "
                     "reply of Redis to SYNC: %s", r->type == REDIS_REPLY_ERROR
                     ? r->str : "(not an array)");
        return -1;
    }
    ps_rd_epoch(rd, r->element[0]->str, r->element[0]->len);
    last = r->element[1]->integer;
    if ((apr_uint64_t)last > after || (create && !after)) {
        if (ps_store_lock(st, NULL) == APR_SUCCESS) {
            if (ps_store_get_or_create_locked(st, ch, len,
                                              ps_rd_wildcard(sc, ch, len),
                                              &sc->limits, now, &lch)
                == APR_SUCCESS) {
                for (i = 2; i < r->elements; i++) {
                    redisReply *e = r->element[i];
                    ps_redis_rec_t rec;
                    ps_msgview_t v;
                    if (e->type != REDIS_REPLY_STRING
                        || ps_redis_rec_parse(e->str, e->len, &rec)
                        || (upto && (apr_uint64_t)rec.id >= upto)) {
                        continue;
                    }
                    ps_rd_view(&rec, ch, len, &v);
                    if (ps_store_mirror_locked(st, lch, &v, 1, rec.expires, 1,
                                               &sc->limits, now)
                        == APR_SUCCESS) {
                        filled++;
                    }
                }
                ps_store_set_last_id_locked(lch, upto && (apr_uint64_t)last
                                                 >= upto ? upto - 1
                                                 : (apr_uint64_t)last);
            }
            ps_store_unlock(st);
            if (filled) {
                ps_store_notify(st);
            }
        }
    }
    return 0;
}

/* SYNC on the blocking connection c (see ps_rd_sync_apply for upto). */
static int ps_rd_sync_upto(ps_rd_t *rd, redisContext *c, ps_store_t *st,
                           const ps_srv_conf_t *sc, const char *ch,
                           apr_size_t len, int create, apr_uint64_t upto)
{
    ps_rd_syncq_t q;
    char *km = malloc(2 * (len + 10));
    redisReply *r;
    int rv;

    if (!km) {
        return -1;
    }
    ps_rd_sync_prep(&q, km, st, sc, ch, len);
    r = ps_rd_eval(c, PS_LUA_SYNC, 3, 8, q.argv, q.lens);
    free(km);
    rv = ps_rd_sync_apply(rd, st, sc, ch, len, create, upto, q.after, r);
    if (r) {
        freeReplyObject(r);
    }
    return rv;
}

/* SYNC one channel on connection c: the stored messages after the local
 * last id enter the local copy.  0, or -1 when Redis did not answer. */
int ps_rd_sync_one(ps_rd_t *rd, redisContext *c, ps_store_t *st,
                   const ps_srv_conf_t *sc, const char *ch, apr_size_t len,
                   int create)
{
    return ps_rd_sync_upto(rd, c, st, sc, ch, len, create, 0);
}

/* ---- SYNC on the loop's command connection ---------------------------- */

typedef struct ps_rd_async_sync_t {
    apr_pool_t *pool;              /* this call's; destroyed at its end */
    ps_rd_t *rd;
    ps_rd_syncq_t q;
    const char *ch;
    apr_size_t len;
    apr_uint64_t upto;
    ps_rd_synced_fn *done;
    void *baton;
} ps_rd_async_sync_t;

static void ps_rd_sync_reply(void *baton, redisReply *r, const char *why)
{
    ps_rd_async_sync_t *x = baton;
    int ok = ps_rd_sync_apply(x->rd, x->rd->st, x->rd->sc, x->ch, x->len, 0,
                              x->upto, x->q.after, r) == 0;
    ps_rd_synced_fn *done = x->done;
    void *b = x->baton;

    apr_pool_destroy(x->pool);
    done(b, ok);
}

int ps_rd_sync_async(ps_rd_t *rd, const char *ch, apr_size_t len,
                     apr_uint64_t upto, ps_rd_synced_fn *done, void *baton)
{
    apr_pool_t *p;
    ps_rd_async_sync_t *x;
    const char *why = "";

    if (apr_pool_create(&p, NULL) != APR_SUCCESS) {
        return -1;
    }
    x = apr_pcalloc(p, sizeof(*x));
    x->pool = p;
    x->rd = rd;
    x->ch = apr_pstrmemdup(p, ch, len);
    x->len = len;
    x->upto = upto;
    x->done = done;
    x->baton = baton;
    ps_rd_sync_prep(&x->q, apr_palloc(p, 2 * (len + 10)), rd->st, rd->sc,
                    ch, len);
    if (ps_rda_eval(p, PS_LUA_SYNC, 3, 8, x->q.argv, x->q.lens,
                    ps_rd_sync_reply, x, &why) != 0) {
        apr_pool_destroy(p);
        return -1;
    }
    return 0;
}

/* ---- delivery ------------------------------------------------------- */

int ps_rd_mirror(ps_rd_t *rd, ps_store_t *st, const ps_srv_conf_t *sc,
                 const char *ch, apr_size_t len, const ps_redis_rec_t *rec,
                 int allow_gap)
{
    apr_int64_t now = ps_now_sec();
    apr_status_t rv;
    ps_channel_t *lch;
    ps_msgview_t v;
    int wake = 0;

    ps_rd_view(rec, ch, len, &v);
    if (ps_store_lock(st, NULL) != APR_SUCCESS) {
        return 0;
    }
    rv = ps_store_get_or_create_locked(st, ch, len,
                                       ps_rd_wildcard(sc, ch, len),
                                       &sc->limits, now, &lch);
    if (rv == APR_SUCCESS) {
        rv = ps_store_mirror_locked(st, lch, &v, rec->stored, rec->expires,
                                    allow_gap, &sc->limits, now);
        /* the loops are woken only for a channel with subscribers here
         * (or an events channel): else they read the log within
         * 500 ms anyway, and waking every loop per publish costs */
        wake = rv == APR_SUCCESS
               && (sc->events_channel
                   || ps_store_channel_subscribers(lch) > 0);
    }
    ps_store_unlock(st);
    if (wake) {
        ps_store_notify(st);     /* a copy already here woke the loops */
    }
    return rv == APR_INCOMPLETE;
}

/* A message Redis assigned enters the local copy; an id jump is filled
 * from the stored messages first (c may be NULL: no filling; skip_gap:
 * a message after a gap is left to the pub/sub side or the next SYNC). */
void ps_rd_deliver_ex(ps_rd_t *rd, redisContext *c, ps_store_t *st,
                      const ps_srv_conf_t *sc, const char *ch,
                      apr_size_t len, const ps_redis_rec_t *rec,
                      int skip_gap)
{
    if (!ps_rd_mirror(rd, st, sc, ch, len, rec, !skip_gap && !c)
        || skip_gap) {
        return;
    }
    apr_atomic_inc32(&rd->node->gaps_filled);
    ps_rd_sync_upto(rd, c, st, sc, ch, len, 0, (apr_uint64_t)rec->id);
    ps_rd_mirror(rd, st, sc, ch, len, rec, 1);
}

void ps_rd_deliver(ps_rd_t *rd, redisContext *c, ps_store_t *st,
                   const ps_srv_conf_t *sc, const char *ch, apr_size_t len,
                   const ps_redis_rec_t *rec)
{
    ps_rd_deliver_ex(rd, c, st, sc, ch, len, rec, 0);
}
