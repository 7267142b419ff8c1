/* ps_redis.c - several servers on one Redis (see ps_redis.h).
 *
 * Connections: hiredis 0.14's blocking API only.  Every thread that
 * publishes or syncs keeps one connection of its own (a thread-local
 * pointer; every one is in a registry freed at child exit), with
 * connect, send and receive timeouts of PushStreamRedisTimeout, so no call
 * here holds a thread longer than about that; after any error the
 * connection is dropped and the next call connects again.  On the child's
 * event loop (no thread of the Redis code's own): its pub/sub connection
 * in ps_redis_sub.c, its command connection in ps_redis_async.c (both
 * hiredis async contexts hooked into the loop by ps_redis_ae.c); the
 * figures over every node in ps_redis_stats.c, the node's copy of the
 * messages (and gap filling) in ps_redis_copy.c.
 *
 * Log tags: PS0170 (configuration at start), PS0171 (pub/sub connected),
 * PS0172 (Redis unreachable / connection lost), PS0173 (Redis lost its
 * data: new epoch), PS0174 (publish refused: 503), PS0175 (bad reply). */

#include <errno.h>
#include <sys/mman.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include <apr_atomic.h>
#include <apr_strings.h>
#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <ap_listen.h>

#include "ps_redis_int.h"
#include "ps_redis_lua.h"
#include "ps_child.h"

APLOG_USE_MODULE(pushstream);

ps_rd_t *ps_rd;                          /* NULL: no PushStreamRedis */

int ps_redis_enabled(void)
{
    return ps_rd != NULL;
}

void ps_redis_kick(void)
{
    ps_rd_sub_kick();
}

/* ---- connections ------------------------------------------------------- */

redisContext *ps_rd_connect(ps_rd_t *rd, const char **why)
{
    redisContext *c = rd->url.path
        ? redisConnectUnixWithTimeout(rd->url.path, rd->tv)
        : redisConnectWithTimeout(rd->url.host, rd->url.port, rd->tv);
    redisReply *r = NULL;

    static __thread char buf[128];

    if (!c || c->err) {
        apr_cpystrn(buf, c ? c->errstr : "out of memory", sizeof(buf));
        *why = buf;
        if (c) {
            redisFree(c);
        }
        return NULL;
    }
    if (redisSetTimeout(c, rd->tv) != REDIS_OK) {
        *why = "cannot set the timeout";
        redisFree(c);
        return NULL;
    }
    if (rd->url.password) {
        r = redisCommand(c, "AUTH %s", rd->url.password);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            *why = "AUTH refused";
            goto fail;
        }
        freeReplyObject(r);
    }
    if (rd->url.db > 0) {
        r = redisCommand(c, "SELECT %d", rd->url.db);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            *why = "SELECT refused";
            goto fail;
        }
        freeReplyObject(r);
    }
    return c;
fail:
    if (r) {
        freeReplyObject(r);
    }
    redisFree(c);
    return NULL;
}

/* Why this thread's last connect failed (a thread-local buffer). */
static __thread const char *ps_rd_last_error = "";

/* This thread's command connection.  Every one is also in ps_rd_all (no
 * pthread key destructor: contexts are freed at child exit). */
static __thread redisContext *ps_rd_tls;
static pthread_mutex_t ps_rd_all_mu = PTHREAD_MUTEX_INITIALIZER;
static redisContext **ps_rd_all;                 /* malloc'ed: any thread */
static int ps_rd_all_n, ps_rd_all_cap, ps_rd_all_on;

/* Replace old by c in the registry (old NULL: add c). */
static void ps_rd_all_set(redisContext *old, redisContext *c)
{
    int i;

    pthread_mutex_lock(&ps_rd_all_mu);
    for (i = 0; i < ps_rd_all_n; i++) {
        if (ps_rd_all[i] == old) {
            ps_rd_all[i] = c;
            pthread_mutex_unlock(&ps_rd_all_mu);
            return;
        }
    }
    if (c && ps_rd_all_on) {
        if (ps_rd_all_n == ps_rd_all_cap) {
            int cap = ps_rd_all_cap ? 2 * ps_rd_all_cap : 64;
            redisContext **n = realloc(ps_rd_all, cap * sizeof(*n));
            if (!n) {
                pthread_mutex_unlock(&ps_rd_all_mu);
                return;                  /* not freed at exit: harmless */
            }
            ps_rd_all = n;
            ps_rd_all_cap = cap;
        }
        ps_rd_all[ps_rd_all_n++] = c;
    }
    pthread_mutex_unlock(&ps_rd_all_mu);
}

/* This thread's command connection (connected on demand). */
redisContext *ps_rd_conn(ps_rd_t *rd)
{
    const char *why = "";

    if (!ps_rd_tls) {
        ps_rd_tls = ps_rd_connect(rd, &why);
        if (ps_rd_tls) {
            ps_rd_all_set(NULL, ps_rd_tls);
        }
        else {
            ps_rd_last_error = why;
        }
    }
    return ps_rd_tls;
}

void ps_rd_conn_drop(ps_rd_t *rd)
{
    if (ps_rd_tls) {
        ps_rd_all_set(ps_rd_tls, NULL);
        redisFree(ps_rd_tls);
        ps_rd_tls = NULL;
    }
}

/* EVALSHA, or EVAL when Redis does not know the script (restarted,
 * SCRIPT FLUSH).  argv[0..2] are filled here. */
redisReply *ps_rd_eval(redisContext *c, ps_redis_lua_e which, int nkeys,
                       int argc, const char **argv, size_t *lens)
{
    const ps_redis_lua_t *l = ps_redis_lua(which);
    char nk[16];
    redisReply *r;

    apr_snprintf(nk, sizeof(nk), "%d", nkeys);
    argv[0] = "EVALSHA";
    argv[1] = l->sha;
    argv[2] = nk;
    lens[0] = 7;
    lens[1] = 40;
    lens[2] = strlen(nk);
    r = redisCommandArgv(c, argc, argv, lens);
    if (r && r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "NOSCRIPT", 8)) {
        freeReplyObject(r);
        argv[0] = "EVAL";
        argv[1] = l->body;
        lens[0] = 4;
        lens[1] = strlen(l->body);
        r = redisCommandArgv(c, argc, argv, lens);
    }
    return r;
}

/* ---- epoch ----------------------------------------------------------- */

/* Note the epoch Redis reported; a change means Redis lost its data. */
void ps_rd_epoch(ps_rd_t *rd, const char *e, apr_size_t len)
{
    int changed = 0;

    if (len >= sizeof(rd->epoch)) {
        len = sizeof(rd->epoch) - 1;
    }
    pthread_mutex_lock(&rd->mu);
    if (strlen(rd->epoch) != len || memcmp(rd->epoch, e, len)) {
        changed = rd->epoch[0] != '\0';
        memcpy(rd->epoch, e, len);
        rd->epoch[len] = '\0';
    }
    pthread_mutex_unlock(&rd->mu);
    if (changed) {
        apr_uint32_t h = 2166136261u, old;
        apr_size_t i;
        for (i = 0; i < len; i++) {
            h = (h ^ (unsigned char)e[i]) * 16777619u;
        }
        apr_atomic_set32(&rd->resync, 1);
        old = apr_atomic_read32(&rd->node->epoch_hash);
        if (old == h || apr_atomic_cas32(&rd->node->epoch_hash, h, old) != old) {
            return;                      /* another child logged it */
        }
        apr_atomic_inc32(&rd->node->data_lost);
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, rd->s, "PS0173: Redis lost "
                     "its data (new epoch %.*s); channel ids continue after "
                     "the ones this node has", (int)len, e);
    }
}

/* ---- publish / delete / sync (any thread) ------------------------------ */

/* A publish refused: 503; PS0174 once per outage and node. */
void ps_rd_unreachable(ps_answer_t *a, const char *what, const char *why)
{
    ps_answer_set(a, 503, PS_REDIS_EXPLAIN);
    a->retry_after = PS_REDIS_RETRY_AFTER;
    apr_atomic_inc32(&ps_rd->node->publish_failures);
    if (!apr_atomic_xchg32(&ps_rd->node->pub_failing, 1)) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, ps_rd->s, "PS0174: %s refused "
                     "with 503 (and until Redis answers again): Redis %s",
                     what, why);
    }
}

/* A publish went through: the next outage is logged again. */
void ps_rd_reachable(void)
{
    if (apr_atomic_read32(&ps_rd->node->pub_failing)) {
        apr_atomic_set32(&ps_rd->node->pub_failing, 0);
    }
}

/* argv slots for the keys of n channels: "ps:{id}:meta", "ps:{id}:msgs". */
static void ps_rd_keys(apr_pool_t *p, const apr_array_header_t *chans,
                       const char **argv, size_t *lens)
{
    int i;

    for (i = 0; i < chans->nelts; i++) {
        const ps_path_channel_t *pc = &APR_ARRAY_IDX(chans, i,
                                                     ps_path_channel_t);
        char *k = apr_palloc(p, 2 * (pc->len + 10));
        ps_rd_key_pair(k, pc->id, pc->len);
        argv[2 * i] = k;
        lens[2 * i] = pc->len + 10;
        argv[2 * i + 1] = k + pc->len + 10;
        lens[2 * i + 1] = pc->len + 10;
    }
}

const char **ps_rd_pub_args(apr_pool_t *p, ps_store_t *st,
                            const ps_srv_conf_t *sc,
                            const apr_array_header_t *chans, const char *body,
                            apr_size_t len, const char *event_id,
                            const char *event_type, int store, int subs,
                            int *argc_out, int *nkeys_out, size_t **lens_out)
{
    int n = chans->nelts, nkeys = 1 + 2 * n,
        argc = 3 + nkeys + 7 + 2 * n + 4;
    const char **argv = apr_pcalloc(p, argc * sizeof(*argv));
    size_t *lens = apr_pcalloc(p, argc * sizeof(*lens));
    const ps_limits_t *lim = &sc->limits;
    int i, k;

    argv[3] = PS_RD_EPOCH_KEY;
    lens[3] = strlen(PS_RD_EPOCH_KEY);
    ps_rd_keys(p, chans, argv + 4, lens + 4);
    k = 3 + nkeys;
    argv[k] = body;
    lens[k++] = len;
    argv[k] = event_id ? event_id : "";
    lens[k] = strlen(argv[k]);
    k++;
    argv[k] = event_type ? event_type : "";
    lens[k] = strlen(argv[k]);
    k++;
    argv[k++] = store ? "1" : "0";
    argv[k++] = apr_psprintf(p, "%" APR_UINT64_T_FMT,
                             lim->max_stored_per_channel);
    argv[k++] = apr_psprintf(p, "%" APR_INT64_T_FMT, lim->message_ttl);
    argv[k++] = apr_psprintf(p, "%" APR_INT64_T_FMT,
                             (lim->message_ttl > lim->channel_inactivity
                              ? lim->message_ttl : lim->channel_inactivity)
                             + 3600);
    for (i = 3 + nkeys + 3; i < k; i++) {
        lens[i] = strlen(argv[i]);
    }
    for (i = 0; i < n; i++) {
        const ps_path_channel_t *pc = &APR_ARRAY_IDX(chans, i,
                                                     ps_path_channel_t);
        argv[k] = pc->id;
        lens[k++] = pc->len;
        argv[k] = apr_psprintf(p, "%" APR_UINT64_T_FMT,
                               ps_rd_local_last(st, pc->id, pc->len));
        lens[k] = strlen(argv[k]);
        k++;
    }
    argv[k++] = subs ? ps_rd->node_id : "";
    argv[k++] = apr_psprintf(p, "%" APR_UINT64_T_FMT, lim->max_channels);
    argv[k++] = apr_psprintf(p, "%" APR_UINT64_T_FMT,
                             lim->max_wildcard_channels);
    argv[k++] = sc->wildcard_prefix ? sc->wildcard_prefix : "";
    for (i = k - 4; i < k; i++) {
        lens[i] = strlen(argv[i]);
    }
    *argc_out = argc;
    *nkeys_out = nkeys;
    *lens_out = lens;
    return argv;
}

int ps_rd_pub_reply(apr_pool_t *p, redisContext *c, ps_store_t *st,
                    const ps_srv_conf_t *sc,
                    const apr_array_header_t *chans, const redisReply *r,
                    const char *body, apr_size_t len, const char *event_id,
                    const char *event_type, int store, ps_chinfo_t *infos)
{
    const ps_limits_t *lim = &sc->limits;
    int i, n = chans->nelts;

    if (r && r->type == REDIS_REPLY_STRING && !strcmp(r->str, "LIMIT")) {
        ps_rd_reachable();
        return -1;
    }
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != (size_t)n + 1
        || r->element[0]->type != REDIS_REPLY_STRING) {
        return 0;
    }
    ps_rd_reachable();
    ps_rd_epoch(ps_rd, r->element[0]->str, r->element[0]->len);
    for (i = 0; i < n; i++) {
        const ps_path_channel_t *pc = &APR_ARRAY_IDX(chans, i,
                                                     ps_path_channel_t);
        redisReply *e = r->element[i + 1];
        ps_redis_rec_t rec;
        ps_channel_t *lch;

        memset(&rec, 0, sizeof(rec));
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 4) {
            continue;
        }
        rec.id = e->element[0]->integer;
        rec.time = e->element[1]->integer;
        rec.tag = e->element[2]->integer;
        rec.expires = rec.time + lim->message_ttl;
        rec.stored = store;
        rec.text = body;
        rec.text_len = len;
        rec.event_id = event_id;
        rec.event_id_len = event_id ? strlen(event_id) : 0;
        rec.event_type = event_type;
        rec.event_type_len = event_type ? strlen(event_type) : 0;
        ps_rd_deliver_ex(ps_rd, c, st, sc, pc->id, pc->len, &rec, !c);
        memset(&infos[i], 0, sizeof(infos[i]));
        if (ps_store_lock(st, NULL) == APR_SUCCESS) {
            lch = ps_store_find_locked(st, pc->id, pc->len);
            if (lch) {
                ps_store_channel_info_locked(st, lch, &infos[i]);
            }
            ps_store_unlock(st);
        }
        infos[i].id = pc->id;
        infos[i].id_len = pc->len;
        infos[i].published_messages = (apr_uint64_t)rec.id;
        infos[i].stored_messages = (apr_uint64_t)e->element[3]->integer;
        if (e->elements > 4) {
            ps_rd_subs_one(p, &infos[i], e->element[4]);
        }
    }
    return 1;
}

int ps_redis_publish(apr_pool_t *p, ps_store_t *st, const ps_srv_conf_t *sc,
                     const apr_array_header_t *chans, const char *body,
                     apr_size_t len, const char *event_id,
                     const char *event_type, int store, int subs,
                     ps_chinfo_t *infos, ps_answer_t *a)
{
    redisContext *c = ps_rd_conn(ps_rd);
    const char **argv;
    size_t *lens;
    redisReply *r;
    int argc, nkeys;

    if (!c) {
        ps_rd_unreachable(a, "publish", ps_rd_last_error);
        return 0;
    }
    argv = ps_rd_pub_args(p, st, sc, chans, body, len, event_id, event_type,
                          store, subs, &argc, &nkeys, &lens);
    r = ps_rd_eval(c, PS_LUA_PUBLISH, nkeys, argc, argv, lens);
    switch (ps_rd_pub_reply(p, c, st, sc, chans, r, body, len, event_id,
                            event_type, store, infos)) {
    case 1:
        freeReplyObject(r);
        return 1;
    case -1:
        ps_answer_set(a, 403, PS_REDIS_EXPLAIN_LIMIT);
        freeReplyObject(r);
        return 0;
    default:
        ps_rd_unreachable(a, "publish", !r ? c->errstr
                          : r->type == REDIS_REPLY_ERROR ? r->str
                          : "answered something unexpected");
        if (r) {
            freeReplyObject(r);
        }
        ps_rd_conn_drop(ps_rd);
        return 0;
    }
}

const char **ps_rd_del_args(apr_pool_t *p, const apr_array_header_t *chans,
                            const char *text, apr_size_t len, int *argc_out,
                            int *nkeys_out, size_t **lens_out)
{
    int n = chans->nelts, nkeys = 1 + 2 * n, argc = 3 + nkeys + 1 + n, i;
    const char **argv = apr_pcalloc(p, argc * sizeof(*argv));
    size_t *lens = apr_pcalloc(p, argc * sizeof(*lens));

    argv[3] = PS_RD_EPOCH_KEY;
    lens[3] = strlen(PS_RD_EPOCH_KEY);
    ps_rd_keys(p, chans, argv + 4, lens + 4);
    argv[3 + nkeys] = text;
    lens[3 + nkeys] = len;
    for (i = 0; i < n; i++) {
        const ps_path_channel_t *pc = &APR_ARRAY_IDX(chans, i,
                                                     ps_path_channel_t);
        argv[4 + nkeys + i] = pc->id;
        lens[4 + nkeys + i] = pc->len;
    }
    *argc_out = argc;
    *nkeys_out = nkeys;
    *lens_out = lens;
    return argv;
}

int ps_redis_delete(apr_pool_t *p, const apr_array_header_t *chans,
                    const char *text, apr_size_t len, int *existed,
                    ps_answer_t *a)
{
    redisContext *c = ps_rd_conn(ps_rd);
    const char **argv;
    size_t *lens;
    redisReply *r;
    int argc, nkeys;

    if (!c) {
        ps_rd_unreachable(a, "publish", ps_rd_last_error);
        return 0;
    }
    argv = ps_rd_del_args(p, chans, text, len, &argc, &nkeys, &lens);
    r = ps_rd_eval(c, PS_LUA_DELETE, nkeys, argc, argv, lens);
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        ps_rd_unreachable(a, "delete", !r ? c->errstr
                          : r->type == REDIS_REPLY_ERROR ? r->str
                          : "answered something unexpected");
        if (r) {
            freeReplyObject(r);
        }
        ps_rd_conn_drop(ps_rd);
        return 0;
    }
    *existed = (int)r->integer;
    freeReplyObject(r);
    return 1;
}

void ps_redis_sync(apr_pool_t *p, ps_store_t *st,
                   const apr_array_header_t *chans, int create)
{
    redisContext *c;
    int i;

    if (!ps_rd || !(c = ps_rd_conn(ps_rd))) {
        return;
    }
    for (i = 0; i < chans->nelts; i++) {
        const ps_path_channel_t *pc = &APR_ARRAY_IDX(chans, i,
                                                     ps_path_channel_t);
        if (ps_rd_sync_one(ps_rd, c, st, ps_rd->sc, pc->id, pc->len,
                           create) != 0) {
            ps_rd_conn_drop(ps_rd);
            return;
        }
    }
}

static apr_status_t ps_rd_child_cleanup(void *data)
{
    int i;

    pthread_mutex_lock(&ps_rd_all_mu);
    for (i = 0; i < ps_rd_all_n; i++) {
        if (ps_rd_all[i]) {
            redisFree(ps_rd_all[i]);
        }
    }
    free(ps_rd_all);
    ps_rd_all = NULL;
    ps_rd_all_n = ps_rd_all_cap = ps_rd_all_on = 0;
    pthread_mutex_unlock(&ps_rd_all_mu);
    return APR_SUCCESS;
}

/* The node page, mapped once by the parent (kept in retained data). */
static ps_rd_node_t *ps_rd_node_page(void)
{
    ps_rd_node_t **slot = ap_retained_data_get(PS_RD_RETAINED_KEY);
    return slot ? *slot : NULL;
}

int ps_redis_post_config(server_rec *s)
{
    ps_rd_node_t **slot;
    void *m;

    if (!ps_srv(s)->redis) {
        return OK;
    }
    slot = ap_retained_data_get(PS_RD_RETAINED_KEY);
    if (!slot) {
        slot = ap_retained_data_create(PS_RD_RETAINED_KEY, sizeof(*slot));
        *slot = NULL;
    }
    if (!*slot) {
        m = mmap(NULL, sizeof(ps_rd_node_t), PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, errno, s, "PS0170: cannot "
                         "map the shared Redis state page");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        memset(m, 0, sizeof(ps_rd_node_t));
        apr_snprintf(((ps_rd_node_t *)m)->start,
                     sizeof(((ps_rd_node_t *)m)->start),
                     "%" APR_TIME_T_FMT ".%ld", apr_time_now(),
                     (long)getpid());
        *slot = m;
    }
    return OK;
}

void ps_redis_child_init(apr_pool_t *pchild, server_rec *s, ps_store_t *st)
{
    ps_srv_conf_t *sc = ps_srv(s);
    ps_rd_t *rd;
    int i;

    if (!sc->redis) {
        return;
    }
    rd = apr_pcalloc(pchild, sizeof(*rd));
    rd->url = *sc->redis;
    rd->tv.tv_sec = (long)apr_time_sec(sc->redis_timeout);
    rd->tv.tv_usec = (long)apr_time_usec(sc->redis_timeout);
    rd->s = s;
    rd->st = st;
    rd->sc = sc;
    {
        char host[256];
        apr_port_t port = ap_listeners && ap_listeners->bind_addr
                          ? ap_listeners->bind_addr->port : s->port;
        if (apr_gethostname(host, sizeof(host), pchild) != APR_SUCCESS) {
            apr_cpystrn(host, "localhost", sizeof(host));
        }
        apr_snprintf(rd->node_id, sizeof(rd->node_id), "%s:%u", host,
                     (unsigned)port);
    }
    rd->node = ps_rd_node_page();
    if (!rd->node) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "PS0170: no shared Redis "
                     "state page; PushStreamRedis not used by this child");
        return;
    }
    pthread_mutex_init(&rd->mu, NULL);
    for (i = 0; i < PS_LUA_COUNT; i++) {
        ps_redis_lua((ps_redis_lua_e)i);     /* SHA-1s before any thread */
    }
    ps_rd_all_on = 1;
    ps_rd = rd;          /* the loop's attach hook starts its connections */
    apr_pool_pre_cleanup_register(pchild, rd, ps_rd_child_cleanup);
}
