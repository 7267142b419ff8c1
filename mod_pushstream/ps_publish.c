/* ps_publish.c - publisher operations (see ps_publish.h). */

#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>
#include <apr_network_io.h>
#include <httpd.h>
#include <http_config.h>
#include <http_log.h>

#include "ps_publish.h"
#include "ps_child.h"
#include "ps_redis.h"

APLOG_USE_MODULE(pushstream);

/* Channels of a publish held on the stack; more are malloc()ed. */
#define PS_PUB_SMALL 16

apr_array_header_t *ps_pub_parse_channels(apr_pool_t *p, const char *path)
{
    apr_size_t len;
    char *raw = ps_path_unescape(p, path ? path : "", path ? strlen(path) : 0,
                                 &len);

    /* One channel named twice ("a/a", "a.b1/a", "a%41/aA") is one channel:
     * every operation (publish, delete, info, subscribe, stats) sees it
     * once, so the store never deletes or subscribes it twice. */
    return ps_path_dedupe(p, ps_path_parse(p, raw, len));
}

static int ps_pub_has_events_channel(const ps_srv_conf_t *sc,
                                     const apr_array_header_t *chans)
{
    int i;

    for (i = 0; sc->events_channel && i < chans->nelts; i++) {
        const ps_path_channel_t *pc = &APR_ARRAY_IDX(chans, i,
                                                     ps_path_channel_t);
        if (!strcmp(pc->id, sc->events_channel)) {
            return 1;
        }
    }
    return 0;
}

static int ps_pub_op(const ps_dir_conf_t *d, const char *method)
{
    if (!strcmp(method, "GET")) {
        return PS_PUB_GET;
    }
    if (!strcmp(method, "POST") || !strcmp(method, "PUT")) {
        return PS_PUB_POST;
    }
    if (!strcmp(method, "OPTIONS")) {
        return PS_PUB_OPTIONS;
    }
    if (!strcmp(method, "DELETE") && d->publisher_admin) {
        return PS_PUB_DELETE;
    }
    return 0;
}

int ps_pub_prepare(const ps_dir_conf_t *d, const ps_srv_conf_t *sc,
                   const char *method, const apr_array_header_t *chans,
                   ps_answer_t *a)
{
    int op = ps_pub_op(d, method);

    if (op == PS_PUB_OPTIONS) {
        ps_answer_set(a, 200, NULL);
        return 0;
    }
    if (!op) {
        ps_answer_set(a, 405, NULL);
        a->allow = d->publisher_admin ? PS_PUB_ALLOW_ADMIN : PS_PUB_ALLOW;
        return 0;
    }
    if (!chans->nelts) {
        ps_answer_set(a, 400, "No channel id provided.");
        return 0;
    }
    if (!ps_pub_check_ids(sc, chans, a)) {
        return 0;
    }
    if (op != PS_PUB_GET && ps_pub_has_events_channel(sc, chans)) {
        ps_answer_set(a, 403, "Only internal routines can change events "
                              "channel.");
        return 0;
    }
    return op;
}

int ps_pub_check_ids(const ps_srv_conf_t *sc, const apr_array_header_t *chans,
                     ps_answer_t *a)
{
    int i;

    for (i = 0; i < chans->nelts; i++) {
        const ps_path_channel_t *ch = &APR_ARRAY_IDX(chans, i,
                                                     ps_path_channel_t);
        apr_size_t k;

        if (ps_path_is_restricted(ch->id, ch->len)) {
            ps_answer_set(a, 403, "Channel id not authorized for this method.");
            return 0;
        }
        if (sc->max_channel_id_length > 0
            && (apr_int64_t)ch->len > sc->max_channel_id_length) {
            ps_answer_set(a, 400, "Channel id is too large.");
            return 0;
        }
        /* Control bytes (NUL, CR, LF ... DEL) never name a channel: they
         * would reach logs, stats and templates raw (new, not in nginx). */
        for (k = 0; k < ch->len; k++) {
            unsigned char c = (unsigned char)ch->id[k];
            if (c < 0x20 || c == 0x7f) {
                ps_answer_set(a, 400, "Channel id is invalid.");
                a->log = PS_ANS_LOG_CTRL_ID;
                a->ctrl = c;
                return 0;
            }
        }
    }
    return 1;
}

static void ps_pub_full(ps_answer_t *a)
{
    ps_answer_set(a, 500, PS_EXPLAIN_FULL);
    a->log = PS_ANS_LOG_FULL;
}

/* Under the lock: find or create every channel first, so that a limit
 * (403) or a full segment leaves no message half published. */
static int ps_pub_channels_locked(ps_store_t *st, const ps_srv_conf_t *sc,
                                  const apr_array_header_t *chans,
                                  apr_int64_t now, ps_channel_t **chs,
                                  ps_answer_t *a)
{
    int i;

    for (i = 0; i < chans->nelts; i++) {
        const ps_path_channel_t *pc = &APR_ARRAY_IDX(chans, i,
                                                     ps_path_channel_t);
        apr_status_t rv = ps_store_get_or_create_locked(st, pc->id, pc->len,
                                                        ps_is_wildcard(sc, pc),
                                                        &sc->limits, now,
                                                        &chs[i]);
        if (rv != APR_SUCCESS) {
            if (rv == PS_E_LIMIT) {
                ps_answer_set(a, 403, "Number of channels were exceeded.");
            }
            else {
                ps_pub_full(a);
            }
            return 0;
        }
    }
    return 1;
}

/* Several servers: make the local channels (a limit or a full segment
 * refuses here, before Redis), then the list to publish in Redis: chans
 * but the events channel, in p (ids copied into p when copy).  NULL with
 * *a the answer. */
static apr_array_header_t *ps_pub_redis_targets(apr_pool_t *p, ps_store_t *st,
                                                const ps_srv_conf_t *sc,
                                                const apr_array_header_t *chans,
                                                int copy, ps_answer_t *a)
{
    ps_channel_t **chs = apr_pcalloc(p, chans->nelts * sizeof(*chs));
    apr_array_header_t *to = apr_array_make(p, chans->nelts,
                                            sizeof(ps_path_channel_t));
    int i;

    if (ps_store_lock(st, NULL) != APR_SUCCESS) {
        ps_answer_set(a, 500, NULL);
        return NULL;
    }
    if (!ps_pub_channels_locked(st, sc, chans, ps_now_sec(), chs, a)) {
        ps_store_unlock(st);
        return NULL;
    }
    for (i = 0; i < chans->nelts; i++) {
        if (!ps_store_channel_is_events(chs[i])) {
            ps_path_channel_t *pc = apr_array_push(to);
            *pc = APR_ARRAY_IDX(chans, i, ps_path_channel_t);
            if (copy) {
                pc->id = apr_pstrmemdup(p, pc->id, pc->len);
            }
        }
    }
    ps_store_unlock(st);
    return to;
}

/* Several servers (PushStreamRedis): the channels are made here (their
 * subscribers are here), then Redis assigns the id, stores and announces;
 * this node's pub/sub side (on each child's loop) brings the message into
 * the segment (ps_redis.h).  The events channel is written by the store
 * only. */
static int ps_pub_store_redis(apr_pool_t *ip, ps_store_t *st,
                              const ps_dir_conf_t *d,
                              const ps_srv_conf_t *sc,
                              const apr_array_header_t *chans,
                              const char *body, apr_size_t len,
                              const char *event_id, const char *event_type,
                              ps_chinfo_t *infos, ps_answer_t *a)
{
    apr_array_header_t *to;
    ps_chinfo_t *ri;
    apr_pool_t *p;
    int i, ok = 0, wake;

    if (apr_pool_create(&p, NULL) != APR_SUCCESS) {
        ps_answer_set(a, 500, NULL);
        return 0;
    }
    if (!(to = ps_pub_redis_targets(p, st, sc, chans, 0, a))) {
        goto done;
    }
    /* the caller's infos only when they match the list one to one */
    ri = infos && to->nelts == chans->nelts
         ? infos : apr_pcalloc(p, (to->nelts + 1) * sizeof(*ri));
    /* ip: the cluster-wide subscriber counts of the answer come with the
     * publish (one script, one round trip), their node names in ip */
    ip = ip && ri == infos ? ip : NULL;
    ok = !to->nelts
         || ps_redis_publish(ip ? ip : p, st, sc, to, body, len, event_id,
                             event_type, ps_dir_store(d), ip != NULL, ri, a);
    if (ok) {
        wake = sc->events_channel != NULL;
        for (i = 0; !wake && i < to->nelts; i++) {
            wake = ri[i].subscribers > 0;
        }
        if (wake) {
            ps_store_notify(st);
        }
    }
done:
    apr_pool_destroy(p);
    return ok;
}

int ps_pub_store(ps_store_t *st, const ps_dir_conf_t *d,
                 const ps_srv_conf_t *sc, const apr_array_header_t *chans,
                 const char *body, apr_size_t len, const char *event_id,
                 const char *event_type, ps_chinfo_t *infos, ps_answer_t *a)
{
    ps_channel_t *small[2 * PS_PUB_SMALL], **chs = small, **to;
    apr_int64_t now = ps_now_sec();
    apr_status_t rv;
    int i, n = 0, wake;

    if (ps_redis_enabled()) {
        return ps_pub_store_redis(NULL, st, d, sc, chans, body, len,
                                  event_id, event_type, infos, a);
    }
    if (chans->nelts > PS_PUB_SMALL
        && !(chs = malloc(2 * (size_t)chans->nelts * sizeof(*chs)))) {
        ps_pub_full(a);
        return 0;
    }
    to = chs + chans->nelts;
    if (ps_store_lock(st, NULL) != APR_SUCCESS) {
        ps_answer_set(a, 500, NULL);
        rv = APR_EGENERAL;
        goto done;
    }
    if (!ps_pub_channels_locked(st, sc, chans, now, chs, a)) {
        ps_store_unlock(st);
        rv = APR_EGENERAL;
        goto done;
    }
    /* only the store writes to the events channel (a WebSocket subscriber
     * of it may publish; the publisher location refused it already) */
    for (i = 0; i < chans->nelts; i++) {
        if (!ps_store_channel_is_events(chs[i])) {
            to[n++] = chs[i];
        }
    }
    rv = ps_store_publish_all_locked(st, to, n, body, len, event_id,
                                     event_id ? strlen(event_id) : 0,
                                     event_type,
                                     event_type ? strlen(event_type) : 0,
                                     ps_dir_store(d), &sc->limits, now);
    for (i = 0; rv == APR_SUCCESS && infos && i < chans->nelts; i++) {
        ps_store_channel_info_locked(st, chs[i], &infos[i]);
        infos[i].id = APR_ARRAY_IDX(chans, i, ps_path_channel_t).id;
    }
    /* Wake the children's loops only when a channel has subscribers (or an
     * events channel may have got a channel_created): a publish to a
     * channel nobody listens to costs 2 wake-ups and a lock per child.
     * (A loop also reads the log every 500 ms anyway.) */
    wake = sc->events_channel != NULL;
    for (i = 0; !wake && i < n; i++) {
        wake = ps_store_channel_subscribers(to[i]) > 0;
    }
    ps_store_unlock(st);
    if (wake) {
        ps_store_notify(st);
    }
    if (rv != APR_SUCCESS) {
        ps_pub_full(a);
    }
done:
    if (chs != small) {
        free(chs);
    }
    return rv == APR_SUCCESS;
}

void ps_pub_publish(apr_pool_t *p, ps_store_t *st, const ps_dir_conf_t *d,
                    const ps_srv_conf_t *sc, const apr_array_header_t *chans,
                    const char *body, apr_size_t len, const char *event_id,
                    const char *event_type, const char *accept,
                    ps_answer_t *a)
{
    ps_chinfo_t *infos = apr_pcalloc(p, chans->nelts * sizeof(*infos));

    if (!len) {
        ps_answer_set(a, 400, "Empty post requests are not allowed.");
        return;
    }
    if (ps_redis_enabled()
        ? !ps_pub_store_redis(ps_dir_info_on_publish(d) ? p : NULL, st, d, sc,
                              chans, body, len, event_id, event_type, infos,
                              a)
        : !ps_pub_store(st, d, sc, chans, body, len, event_id, event_type,
                        infos, a)) {
        return;
    }
    if (!ps_dir_info_on_publish(d)) {
        ps_answer_set(a, 200, NULL);
        return;
    }
    ps_redis_subscribers(p, infos, chans->nelts);   /* several servers */
    ps_pub_info(p, st, infos, chans->nelts, accept, 0, a);
}

/* ---- from the child's loop ----------------------------------------------- */

struct ps_pub_async_t {
    apr_pool_t *p;                 /* this publish's own */
    ps_store_t *st;
    const ps_dir_conf_t *d;
    const ps_srv_conf_t *sc;
    apr_array_header_t *to;        /* the channels but the events channel
                                    * (a GET's: all) */
    ps_chinfo_t *infos;            /* to's (a GET's: the ones found) */
    const char *accept;
    ps_answer_t a;
    ps_pub_done_fn *done;          /* NULL: cancelled, or a WebSocket's */
    void *baton;
    server_rec *log_s;             /* a WebSocket's: refusals logged here */
    const char *text;              /* a delete's */
    apr_size_t text_len;
    int existed;                   /* a delete's: channels Redis had; a
                                    * GET's: channels found */
};

apr_pool_t *ps_pub_loop_pool(void)
{
    static apr_pool_t *pool;               /* the loop thread's only */
    apr_allocator_t *al;

    if (!pool && apr_allocator_create(&al) == APR_SUCCESS) {
        if (apr_pool_create_unmanaged_ex(&pool, NULL, al) == APR_SUCCESS) {
            apr_allocator_owner_set(al, pool);
        }
        else {
            apr_allocator_destroy(al);
            pool = NULL;
        }
    }
    return pool;
}

static void ps_pub_async_done(void *baton, int ok)
{
    ps_pub_async_t *x = baton;
    int i, n = x->to->nelts, wake = x->sc->events_channel != NULL;

    if (ok) {
        for (i = 0; !wake && i < n; i++) {
            wake = x->infos[i].subscribers > 0;
        }
        if (wake) {
            ps_store_notify(x->st);
        }
        if (!x->done) {
            /* cancelled, or a WebSocket's: nobody reads an answer */
        }
        else if (!ps_dir_info_on_publish(x->d)) {
            ps_answer_set(&x->a, 200, NULL);
        }
        else {
            ps_pub_info(x->p, x->st, x->infos, n, x->accept, 0, &x->a);
        }
    }
    if (x->done) {
        x->done(x->baton, &x->a);
    }
    else if (!ok && x->log_s) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, x->log_s, "PS0177: WebSocket "
                     "message not published: %d %s", x->a.status,
                     x->a.explain ? x->a.explain : "");
    }
    apr_pool_destroy(x->p);
}

/* Start an asynchronous publish: 1 under way (*out), 0 refused now (*a),
 * -1 not for this path (the blocking one answers). */
static int ps_pub_async_begin(ps_store_t *st, const ps_dir_conf_t *d,
                              const ps_srv_conf_t *sc,
                              const apr_array_header_t *chans,
                              const char *body, apr_size_t len,
                              const char *event_id, const char *event_type,
                              const char *accept, int subs, ps_answer_t *a,
                              ps_pub_async_t **out)
{
    ps_pub_async_t *x;
    apr_pool_t *p;

    if (!ps_redis_async_ready()
        || apr_pool_create(&p, ps_pub_loop_pool()) != APR_SUCCESS) {
        return -1;
    }
    x = apr_pcalloc(p, sizeof(*x));
    x->p = p;
    x->st = st;
    x->d = d;
    x->sc = sc;
    x->accept = accept ? apr_pstrdup(p, accept) : NULL;
    if (!(x->to = ps_pub_redis_targets(p, st, sc, chans, 1, a))) {
        apr_pool_destroy(p);
        return 0;
    }
    if (!x->to->nelts) {
        apr_pool_destroy(p);               /* the events channel only */
        return -1;
    }
    x->infos = apr_pcalloc(p, x->to->nelts * sizeof(*x->infos));
    if (!ps_redis_publish_async(p, st, sc, x->to, apr_pmemdup(p, body, len),
                                len, event_id ? apr_pstrdup(p, event_id) : NULL,
                                event_type ? apr_pstrdup(p, event_type) : NULL,
                                ps_dir_store(d), subs, x->infos, &x->a,
                                ps_pub_async_done, x)) {
        *a = x->a;                         /* static texts only */
        apr_pool_destroy(p);
        return 0;
    }
    *out = x;
    return 1;
}

ps_pub_async_t *ps_pub_publish_async(apr_pool_t *p, ps_store_t *st,
                                     const ps_dir_conf_t *d,
                                     const ps_srv_conf_t *sc,
                                     const apr_array_header_t *chans,
                                     const char *body, apr_size_t len,
                                     const char *event_id,
                                     const char *event_type,
                                     const char *accept, ps_answer_t *a,
                                     ps_pub_done_fn *done, void *baton)
{
    ps_pub_async_t *x = NULL;

    if (!len) {
        ps_answer_set(a, 400, "Empty post requests are not allowed.");
        return NULL;
    }
    switch (ps_pub_async_begin(st, d, sc, chans, body, len, event_id,
                               event_type, accept, ps_dir_info_on_publish(d),
                               a, &x)) {
    case 1:
        x->done = done;
        x->baton = baton;
        return x;
    case 0:
        return NULL;
    default:
        ps_pub_publish(p, st, d, sc, chans, body, len, event_id, event_type,
                       accept, a);
        return NULL;
    }
}

void ps_pub_async_cancel(ps_pub_async_t *x)
{
    x->done = NULL;
}

int ps_pub_store_nowait(ps_store_t *st, const ps_dir_conf_t *d,
                        const ps_srv_conf_t *sc,
                        const apr_array_header_t *chans, const char *body,
                        apr_size_t len, server_rec *s, ps_answer_t *a)
{
    ps_pub_async_t *x = NULL;

    switch (ps_pub_async_begin(st, d, sc, chans, body, len, NULL, NULL, NULL,
                               0, a, &x)) {
    case 1:
        x->log_s = s;
        return 1;
    case 0:
        return 0;
    default:
        return ps_pub_store(st, d, sc, chans, body, len, NULL, NULL, NULL, a);
    }
}

/* Under the lock: the channels of the list that exist, in list order;
 * their number. */
static int ps_pub_existing_locked(ps_store_t *st,
                                  const apr_array_header_t *chans,
                                  ps_channel_t **found, const char **ids)
{
    int i, n = 0;

    for (i = 0; i < chans->nelts; i++) {
        const ps_path_channel_t *pc = &APR_ARRAY_IDX(chans, i,
                                                     ps_path_channel_t);
        ps_channel_t *ch = ps_store_find_locked(st, pc->id, pc->len);
        if (ch) {
            found[n] = ch;
            ids[n++] = pc->id;
        }
    }
    return n;
}

/* The local part of a delete; remote: channels Redis said existed. */
static void ps_pub_delete_local(apr_pool_t *p, ps_store_t *st,
                                const apr_array_header_t *chans,
                                const char *text, apr_size_t len, int remote,
                                ps_answer_t *a)
{
    ps_channel_t **found = apr_pcalloc(p, chans->nelts * sizeof(*found));
    const char **ids = apr_pcalloc(p, chans->nelts * sizeof(*ids));
    apr_int64_t now = ps_now_sec();
    int i, n;

    if (ps_store_lock(st, NULL) != APR_SUCCESS) {
        ps_answer_set(a, 500, NULL);
        return;
    }
    n = ps_pub_existing_locked(st, chans, found, ids);
    for (i = 0; i < n; i++) {
        ps_store_delete_locked(st, found[i], text, len, now);
    }
    ps_store_unlock(st);
    if (!n && !remote) {
        ps_answer_set(a, 404, NULL);
        return;
    }
    ps_store_notify(st);
    ps_answer_set(a, 200, "Channel deleted.");
}

void ps_pub_delete(apr_pool_t *p, ps_store_t *st, const ps_srv_conf_t *sc,
                   const apr_array_header_t *chans, const char *text,
                   apr_size_t len, ps_answer_t *a)
{
    int remote = 0;

    if (!len) {
        text = sc->deleted_text;
        len = strlen(text);
    }
    if (ps_redis_enabled()) {
        /* every node deletes on the announcement (this one may have by the
         * time it locks below): Redis says whether a channel existed */
        if (!ps_redis_delete(p, chans, text, len, &remote, a)) {
            return;
        }
    }
    ps_pub_delete_local(p, st, chans, text, len, remote, a);
}

static void ps_pub_deleted(void *baton, int ok)
{
    ps_pub_async_t *x = baton;

    if (ok) {
        ps_pub_delete_local(x->p, x->st, x->to, x->text, x->text_len,
                            x->existed, &x->a);
    }
    if (x->done) {
        x->done(x->baton, &x->a);
    }
    apr_pool_destroy(x->p);
}

/* chans with their ids, in p. */
static apr_array_header_t *ps_pub_copy_channels(apr_pool_t *p,
                                               const apr_array_header_t *chans)
{
    apr_array_header_t *to = apr_array_make(p, chans->nelts,
                                            sizeof(ps_path_channel_t));
    int i;

    for (i = 0; i < chans->nelts; i++) {
        ps_path_channel_t *pc = apr_array_push(to);
        *pc = APR_ARRAY_IDX(chans, i, ps_path_channel_t);
        pc->id = apr_pstrmemdup(p, pc->id, pc->len);
    }
    return to;
}

ps_pub_async_t *ps_pub_delete_async(apr_pool_t *p, ps_store_t *st,
                                    const ps_srv_conf_t *sc,
                                    const apr_array_header_t *chans,
                                    const char *text, apr_size_t len,
                                    ps_answer_t *a, ps_pub_done_fn *done,
                                    void *baton)
{
    ps_pub_async_t *x;
    apr_pool_t *xp;

    if (!ps_redis_async_ready()
        || apr_pool_create(&xp, ps_pub_loop_pool()) != APR_SUCCESS) {
        ps_pub_delete(p, st, sc, chans, text, len, a);
        return NULL;
    }
    if (!len) {
        text = sc->deleted_text;
        len = strlen(text);
    }
    x = apr_pcalloc(xp, sizeof(*x));
    x->p = xp;
    x->st = st;
    x->sc = sc;
    x->text = apr_pmemdup(xp, text, len);
    x->text_len = len;
    x->to = ps_pub_copy_channels(xp, chans);
    if (!ps_redis_delete_async(xp, x->to, x->text, len, &x->existed, &x->a,
                               ps_pub_deleted, x)) {
        *a = x->a;                         /* static texts only */
        apr_pool_destroy(xp);
        return NULL;
    }
    x->done = done;
    x->baton = baton;
    return x;
}

static char *ps_pub_group(apr_pool_t *p, ps_store_t *st, ps_fmt_e fmt,
                          const ps_chinfo_t *infos, int n, apr_size_t *len)
{
    ps_info_header_t h;
    ps_store_stats_t s;
    char host[256];

    memset(&s, 0, sizeof(s));
    if (apr_gethostname(host, sizeof(host), p) != APR_SUCCESS) {
        apr_cpystrn(host, "localhost", sizeof(host));
    }
    if (ps_store_lock(st, NULL) == APR_SUCCESS) {
        ps_store_stats_locked(st, &s);
        ps_store_unlock(st);
    }
    h.hostname = apr_pstrdup(p, host);
    h.now = ps_now_sec();
    h.channels = s.channels;
    h.wildcard_channels = s.wildcard_channels;
    h.uptime = (apr_uint64_t)(h.now - s.created);
    return ps_info_group(p, fmt, &h, infos, n, len);
}

void ps_pub_info(apr_pool_t *p, ps_store_t *st, const ps_chinfo_t *infos,
                 int n, const char *accept, int group, ps_answer_t *a)
{
    const char *ctype;
    ps_fmt_e fmt = ps_info_format_from_accept(accept, &ctype);
    int single = n == 1 && !group;

    ps_answer_set(a, 200, NULL);
    a->ctype = ctype;
    a->body = single ? ps_info_single(p, fmt, infos, &a->len)
                     : ps_pub_group(p, st, fmt, infos, n, &a->len);
}

/* The info of the listed channels that exist, in request order: their
 * number, else 0 with *a the answer (404 none). */
static int ps_pub_existing_infos(apr_pool_t *p, ps_store_t *st,
                                 const apr_array_header_t *chans,
                                 ps_chinfo_t *infos, ps_answer_t *a)
{
    ps_channel_t **found = apr_pcalloc(p, chans->nelts * sizeof(*found));
    const char **ids = apr_pcalloc(p, chans->nelts * sizeof(*ids));
    int i, n;

    if (ps_store_lock(st, NULL) != APR_SUCCESS) {
        ps_answer_set(a, 500, NULL);
        return 0;
    }
    n = ps_pub_existing_locked(st, chans, found, ids);
    for (i = 0; i < n; i++) {
        ps_store_channel_info_locked(st, found[i], &infos[i]);
        infos[i].id = ids[i];
    }
    ps_store_unlock(st);
    if (!n) {
        ps_answer_set(a, 404, NULL);
    }
    return n;
}

void ps_pub_existing_info(apr_pool_t *p, ps_store_t *st,
                          const apr_array_header_t *chans, const char *accept,
                          ps_answer_t *a)
{
    ps_chinfo_t *infos = apr_pcalloc(p, chans->nelts * sizeof(*infos));
    int n;

    ps_redis_sync(p, st, chans, 0);       /* several servers: Redis first */
    if ((n = ps_pub_existing_infos(p, st, chans, infos, a))) {
        ps_redis_subscribers(p, infos, n);    /* several servers: every node */
        ps_pub_info(p, st, infos, n, accept, 0, a);
    }
}

/* The end of an asynchronous GET (x->existed: the channels found). */
static void ps_pub_info_counted(void *baton, int ok)
{
    ps_pub_async_t *x = baton;

    if (x->done) {
        ps_pub_info(x->p, x->st, x->infos, x->existed, x->accept, 0, &x->a);
        x->done(x->baton, &x->a);
    }
    apr_pool_destroy(x->p);
}

static void ps_pub_info_synced(void *baton, int ok)
{
    ps_pub_async_t *x = baton;

    if (ok && x->done && (x->existed = ps_pub_existing_infos(x->p, x->st,
                                           x->to, x->infos, &x->a))) {
        if (!ps_redis_subscribers_async(x->p, x->infos, x->existed,
                                        ps_pub_info_counted, x)) {
            ps_pub_info_counted(x, 1);
        }
        return;
    }
    if (x->done) {
        x->done(x->baton, &x->a);          /* 503, 404 */
    }
    apr_pool_destroy(x->p);
}

ps_pub_async_t *ps_pub_existing_info_async(apr_pool_t *p, ps_store_t *st,
                                           const apr_array_header_t *chans,
                                           const char *accept, ps_answer_t *a,
                                           ps_pub_done_fn *done, void *baton)
{
    ps_pub_async_t *x;
    apr_pool_t *xp;

    if (!chans->nelts || !ps_redis_async_ready()
        || apr_pool_create(&xp, ps_pub_loop_pool()) != APR_SUCCESS) {
        ps_pub_existing_info(p, st, chans, accept, a);
        return NULL;
    }
    x = apr_pcalloc(xp, sizeof(*x));
    x->p = xp;
    x->st = st;
    x->accept = accept ? apr_pstrdup(xp, accept) : NULL;
    x->to = ps_pub_copy_channels(xp, chans);
    x->infos = apr_pcalloc(xp, chans->nelts * sizeof(*x->infos));
    if (!ps_redis_sync_async(xp, x->to, &x->a, ps_pub_info_synced, x)) {
        *a = x->a;                         /* static texts only */
        apr_pool_destroy(xp);
        return NULL;
    }
    x->done = done;
    x->baton = baton;
    return x;
}
