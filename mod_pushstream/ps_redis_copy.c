/* ps_redis_copy.c - the node's local copy of what Redis holds: messages
 * Redis assigned enter the node's segment (ps_rd_deliver), gaps are filled
 * from the stored messages (SYNC), so the loops deliver them as local
 * publishes.  Called from the Redis thread (ps_redis_sub.c), the loop's
 * asynchronous connection and publishing threads (ps_redis.c). */

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

static int ps_rd_sync_upto(ps_rd_t *rd, redisContext *c, ps_store_t *st,
                           const ps_srv_conf_t *sc, const char *ch,
                           apr_size_t len, int create, apr_uint64_t upto);

/* SYNC one channel on connection c: the stored messages after the local
 * last id enter the local copy.  0, or -1 when Redis did not answer. */
int ps_rd_sync_one(ps_rd_t *rd, redisContext *c, ps_store_t *st,
                   const ps_srv_conf_t *sc, const char *ch, apr_size_t len,
                   int create)
{
    return ps_rd_sync_upto(rd, c, st, sc, ch, len, create, 0);
}

/* upto > 0: the gap before message upto is filled (stored messages
 * before it; the last id moves to upto - 1 at most, so that message
 * itself, stored or not, is mirrored next). */
static int ps_rd_sync_upto(ps_rd_t *rd, redisContext *c, ps_store_t *st,
                           const ps_srv_conf_t *sc, const char *ch,
                           apr_size_t len, int create, apr_uint64_t upto)
{
    apr_uint64_t after = ps_rd_local_last(st, ch, len);
    const char *argv[8];
    size_t lens[8];
    char sa[24], sm[24];
    redisReply *r;
    apr_int64_t now = ps_now_sec(), last;
    ps_channel_t *lch;
    size_t i;
    int filled = 0;

    {
        char *km = malloc(2 * (len + 10)), *kq = km + len + 10;
        if (!km) {
            return -1;
        }
        ps_rd_key_pair(km, ch, len);
        apr_snprintf(sa, sizeof(sa), "%" APR_UINT64_T_FMT, after);
        apr_snprintf(sm, sizeof(sm), "%" APR_INT64_T_FMT,
                     (sc->limits.message_ttl > sc->limits.channel_inactivity
                      ? sc->limits.message_ttl : sc->limits.channel_inactivity)
                     + 3600);
        argv[3] = PS_RD_EPOCH_KEY;
        lens[3] = strlen(PS_RD_EPOCH_KEY);
        argv[4] = km;
        lens[4] = len + 10;
        argv[5] = kq;
        lens[5] = len + 10;
        argv[6] = sa;
        lens[6] = strlen(sa);
        argv[7] = sm;
        lens[7] = strlen(sm);
        r = ps_rd_eval(c, PS_LUA_SYNC, 3, 8, argv, lens);
        free(km);
    }
    if (!r) {
        return -1;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2
        || r->element[0]->type != REDIS_REPLY_STRING
        || r->element[1]->type != REDIS_REPLY_INTEGER) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, rd->s, "PS0175: unexpected "
                     "reply of Redis to SYNC: %s", r->type == REDIS_REPLY_ERROR
                     ? r->str : "(not an array)");
        freeReplyObject(r);
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
    freeReplyObject(r);
    return 0;
}

/* A message Redis assigned enters the local copy; an id jump is filled
 * from the stored messages first (c may be NULL: no filling; skip_gap:
 * a message after a gap is left to the Redis thread or the next SYNC). */
void ps_rd_deliver_ex(ps_rd_t *rd, redisContext *c, ps_store_t *st,
                      const ps_srv_conf_t *sc, const char *ch,
                      apr_size_t len, const ps_redis_rec_t *rec,
                      int skip_gap)
{
    apr_int64_t now = ps_now_sec();
    apr_status_t rv = APR_EGENERAL;
    ps_channel_t *lch;
    ps_msgview_t v;
    int pass, wake = 0;

    ps_rd_view(rec, ch, len, &v);
    for (pass = 0; pass < 2; pass++) {
        if (ps_store_lock(st, NULL) != APR_SUCCESS) {
            return;
        }
        rv = ps_store_get_or_create_locked(st, ch, len,
                                           ps_rd_wildcard(sc, ch, len),
                                           &sc->limits, now, &lch);
        if (rv == APR_SUCCESS) {
            rv = ps_store_mirror_locked(st, lch, &v, rec->stored, rec->expires,
                                        !skip_gap && (pass == 1 || !c),
                                        &sc->limits, now);
            /* the loops are woken only for a channel with subscribers here
             * (or an events channel): else they read the log within
             * 500 ms anyway, and waking every loop per publish costs */
            wake = rv == APR_SUCCESS
                   && (sc->events_channel
                       || ps_store_channel_subscribers(lch) > 0);
        }
        ps_store_unlock(st);
        if (rv != APR_INCOMPLETE || skip_gap) {
            break;
        }
        apr_atomic_inc32(&rd->node->gaps_filled);
        ps_rd_sync_upto(rd, c, st, sc, ch, len, 0, (apr_uint64_t)rec->id);
    }
    if (wake) {
        ps_store_notify(st);     /* a copy already here woke the loops */
    }
}

void ps_rd_deliver(ps_rd_t *rd, redisContext *c, ps_store_t *st,
                   const ps_srv_conf_t *sc, const char *ch, apr_size_t len,
                   const ps_redis_rec_t *rec)
{
    ps_rd_deliver_ex(rd, c, st, sc, ch, len, rec, 0);
}
