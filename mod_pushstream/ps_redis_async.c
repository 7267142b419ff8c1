/* ps_redis_async.c - the child loop's own Redis command connection (see
 * ps_redis.h, "from the child's loop").
 *
 * Publishes from the publisher port and from WebSockets (and the port's
 * DELETEs and GETs) run on the loop thread: they go out on one hiredis
 * async context (pipelined: every publish of the child's loop shares it),
 * hooked into the loop by ps_redis_ae.c.  hiredis 0.14 has no timeouts, so each command carries a
 * deadline (sent + PushStreamRedisTimeout) and the connect one too; when
 * one passes, the context is freed: every command still waiting gets its
 * callback with no reply and answers 503.  A context that failed or
 * closed is never reused: the next command connects again.
 *
 * Publishes of the publisher location (httpd worker threads) come here
 * too under a threaded MPM: ps_redis_loop_post() hands them to the loop
 * thread (ps_redis_ae.c's job queue), so that they share this one
 * pipelined connection instead of one blocking round trip per worker
 * thread; under prefork (one worker thread per child: nothing to share)
 * they stay on the blocking connection (ps_redis.c).
 *
 * The child's pub/sub side (ps_redis_sub.c) sends its catch-up (SYNC) and
 * its subscriber counts on this connection too (ps_rda_eval, ps_rda_cmd):
 * one command connection per child, pipelined, with the deadlines and the
 * NOSCRIPT retry already here; its own pub/sub context is opened by
 * ps_rda_open() like this one.
 *
 * Log tags: PS0176 (the async connection failed or timed out), PS0178
 * (which connection the publisher locations use; once per node). */

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <apr_atomic.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include <apr_strings.h>
#include <httpd.h>
#include <http_log.h>
#include <ap_mpm.h>

#include "ps_redis_int.h"
#include "ps_redis_lua.h"
#include "ps_redis_ae.h"

APLOG_USE_MODULE(pushstream);

/* One script call waiting for its reply. */
typedef struct ps_rda_op_t {
    ps_redis_lua_e which;
    int argc;
    const char **argv;
    size_t *lens;
    char nk[16];
    int script;                    /* EVALSHA (else a plain command) */
    int retried;                   /* sent again as EVAL (NOSCRIPT) */
    apr_time_t deadline;
    ps_rda_cb *cb;
    void *baton;
    struct ps_rda_op_t *prev, *next;
} ps_rda_op_t;

static struct {
    int attached;
    int user;                      /* ps_rae_wake_at()'s */
    int relay;                     /* worker threads hand publishes over */
    int stopping;
    redisAsyncContext *ac;         /* NULL: none (the next command connects) */
    int connected;
    apr_time_t connect_deadline;
    const char *why;               /* why the context went (static text) */
    char whybuf[128];
    ps_rda_op_t *head, *tail;      /* in deadline order */
} ps_rda;

static void ps_rda_link(ps_rda_op_t *op)
{
    op->next = NULL;
    op->prev = ps_rda.tail;
    if (ps_rda.tail) {
        ps_rda.tail->next = op;
    }
    else {
        ps_rda.head = op;
    }
    ps_rda.tail = op;
}

static void ps_rda_unlink(ps_rda_op_t *op)
{
    if (op->prev) {
        op->prev->next = op->next;
    }
    else if (ps_rda.head == op) {
        ps_rda.head = op->next;
    }
    if (op->next) {
        op->next->prev = op->prev;
    }
    else if (ps_rda.tail == op) {
        ps_rda.tail = op->prev;
    }
    op->prev = op->next = NULL;
}

/* The timer: the earliest deadline (the connect's or the first command's). */
static void ps_rda_rearm(void)
{
    apr_time_t t = ps_rda.head ? ps_rda.head->deadline : 0;

    if (ps_rda.ac && !ps_rda.connected
        && (!t || ps_rda.connect_deadline < t)) {
        t = ps_rda.connect_deadline;
    }
    ps_rae_wake_at(ps_rda.user, t);
}

static void ps_rda_note(const char *why)
{
    apr_cpystrn(ps_rda.whybuf, why, sizeof(ps_rda.whybuf));
    ps_rda.why = ps_rda.whybuf;
}

/* Drop the context: every waiting command gets its callback (no reply). */
static void ps_rda_fail(const char *why)
{
    redisAsyncContext *ac = ps_rda.ac;

    if (!ac) {
        return;
    }
    ps_rda_note(why);
    if (!ps_rda.stopping) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, ps_rd->s, "PS0176: the "
                     "loop's Redis connection is dropped: %s", why);
    }
    ps_rda.ac = NULL;
    ps_rda.connected = 0;
    redisAsyncFree(ac);
    ps_rda_rearm();
}

static void ps_rda_on_connect(const redisAsyncContext *ac, int status)
{
    if (ac != ps_rda.ac) {
        return;
    }
    if (status != REDIS_OK) {
        ps_rda_note(ac->errstr[0] ? ac->errstr : "connect failed");
        ps_rda.ac = NULL;                  /* hiredis frees it */
        ps_rda.connected = 0;
    }
    else {
        ps_rda.connected = 1;
    }
    ps_rda_rearm();
}

static void ps_rda_on_disconnect(const redisAsyncContext *ac, int status)
{
    if (ac == ps_rda.ac) {
        ps_rda_note(ac->err ? ac->errstr : "closed the connection");
        ps_rda.ac = NULL;
        ps_rda.connected = 0;
    }
}

/* AUTH / SELECT: refused, the connection is of no use. */
static void ps_rda_setup_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    redisReply *r = reply;

    if (r && r->type == REDIS_REPLY_ERROR && ac == ps_rda.ac) {
        ps_rda_fail(priv);
    }
}

redisAsyncContext *ps_rda_open(redisConnectCallback *on_connect,
                               redisDisconnectCallback *on_disconnect,
                               redisCallbackFn *on_setup, char *whybuf,
                               apr_size_t whylen, const char **why)
{
    redisAsyncContext *ac;
    ps_rd_t *rd = ps_rd;

    ac = rd->url.path ? redisAsyncConnectUnix(rd->url.path)
                      : redisAsyncConnect(rd->url.host, rd->url.port);
    if (!ac || ac->err) {
        apr_cpystrn(whybuf, ac ? ac->errstr : "out of memory", whylen);
        *why = whybuf;
        if (ac) {
            redisAsyncFree(ac);
        }
        return NULL;
    }
    if (ps_rae_hook(ac) != 0) {
        redisAsyncFree(ac);
        *why = "cannot poll the connection";
        return NULL;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    if (rd->url.password) {
        redisAsyncCommand(ac, on_setup, "AUTH refused", "AUTH %s",
                          rd->url.password);
    }
    if (rd->url.db > 0) {
        redisAsyncCommand(ac, on_setup, "SELECT refused", "SELECT %d",
                          rd->url.db);
    }
    return ac;
}

static redisAsyncContext *ps_rda_conn(const char **why)
{
    redisAsyncContext *ac;

    if (ps_rda.ac) {
        return ps_rda.ac;
    }
    ac = ps_rda_open(ps_rda_on_connect, ps_rda_on_disconnect,
                     ps_rda_setup_reply, ps_rda.whybuf, sizeof(ps_rda.whybuf),
                     why);
    if (!ac) {
        ps_rda.why = *why;
        return NULL;
    }
    ps_rda.ac = ac;
    ps_rda.connected = 0;
    ps_rda.connect_deadline = apr_time_now()
                              + apr_time_from_sec(ps_rd->tv.tv_sec)
                              + ps_rd->tv.tv_usec;
    ps_rda_rearm();
    return ac;
}

static void ps_rda_reply(redisAsyncContext *ac, void *reply, void *priv);

static int ps_rda_send(ps_rda_op_t *op, const char **why)
{
    redisAsyncContext *ac = ps_rda_conn(why);

    if (!ac) {
        return -1;
    }
    if (redisAsyncCommandArgv(ac, ps_rda_reply, op, op->argc, op->argv,
                              op->lens) != REDIS_OK) {
        *why = "cannot queue the command";
        return -1;
    }
    ps_rda_link(op);
    ps_rda_rearm();
    return 0;
}

static void ps_rda_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    ps_rda_op_t *op = priv;
    redisReply *r = reply;
    const char *why = NULL;

    ps_rda_unlink(op);
    if (r && r->type == REDIS_REPLY_ERROR && op->script && !op->retried
        && !strncmp(r->str, "NOSCRIPT", 8)) {
        /* Redis restarted or SCRIPT FLUSH: send the script itself */
        const ps_redis_lua_t *l = ps_redis_lua(op->which);
        op->retried = 1;
        op->deadline = apr_time_now() + apr_time_from_sec(ps_rd->tv.tv_sec)
                       + ps_rd->tv.tv_usec;
        op->argv[0] = "EVAL";
        op->lens[0] = 4;
        op->argv[1] = l->body;
        op->lens[1] = strlen(l->body);
        if (ps_rda_send(op, &why) == 0) {
            return;
        }
        r = NULL;
    }
    if (!r && !why) {
        why = ac && ac->err ? ac->errstr
              : ps_rda.why ? ps_rda.why : "closed the connection";
    }
    ps_rda_rearm();
    op->cb(op->baton, r, why);
}

int ps_rda_eval(apr_pool_t *p, ps_redis_lua_e which, int nkeys,
                       int argc, const char **argv, size_t *lens,
                       ps_rda_cb *cb, void *baton, const char **why)
{
    ps_rda_op_t *op = apr_pcalloc(p, sizeof(*op));
    const ps_redis_lua_t *l = ps_redis_lua(which);

    op->which = which;
    op->script = 1;
    op->argc = argc;
    op->argv = argv;
    op->lens = lens;
    apr_snprintf(op->nk, sizeof(op->nk), "%d", nkeys);
    argv[0] = "EVALSHA";
    lens[0] = 7;
    argv[1] = l->sha;
    lens[1] = 40;
    argv[2] = op->nk;
    lens[2] = strlen(op->nk);
    op->deadline = apr_time_now() + apr_time_from_sec(ps_rd->tv.tv_sec)
                   + ps_rd->tv.tv_usec;
    op->cb = cb;
    op->baton = baton;
    return ps_rda_send(op, why);
}

int ps_rda_cmd(apr_pool_t *p, ps_rda_cb *cb, void *baton, const char **why,
               const char *fmt, ...)
{
    ps_rda_op_t *op = apr_pcalloc(p, sizeof(*op));
    redisAsyncContext *ac = ps_rda_conn(why);
    va_list ap;
    char *cmd = NULL;
    int len;

    if (!ac) {
        return -1;
    }
    va_start(ap, fmt);
    len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    if (len < 0 || redisAsyncFormattedCommand(ac, ps_rda_reply, op, cmd,
                                              (size_t)len) != REDIS_OK) {
        free(cmd);
        *why = "cannot queue the command";
        return -1;
    }
    free(cmd);
    op->deadline = apr_time_now() + apr_time_from_sec(ps_rd->tv.tv_sec)
                   + ps_rd->tv.tv_usec;
    op->cb = cb;
    op->baton = baton;
    ps_rda_link(op);
    ps_rda_rearm();
    return 0;
}

/* ---- the loop ------------------------------------------------------- */

static void ps_rda_timer(void *baton, apr_time_t now)
{
    if (ps_rda.ac && !ps_rda.connected && now >= ps_rda.connect_deadline) {
        ps_rda_fail("did not accept the connection within "
                    "PushStreamRedisTimeout");
    }
    else if (ps_rda.ac && ps_rda.head && now >= ps_rda.head->deadline) {
        ps_rda_fail("did not answer within PushStreamRedisTimeout");
    }
    ps_rda_rearm();
}

static void ps_rda_destroy(void *baton)
{
    ps_rda.stopping = 1;
    ps_rda_fail("the child stops");
    ps_rda.attached = 0;
}

void ps_redis_attach(struct ps_child_t *child, struct ps_reactor_t *re)
{
    ps_rae_user_t u;

    if (!ps_rd) {
        return;
    }
    u.baton = NULL;
    u.on_timer = ps_rda_timer;
    u.on_destroy = ps_rda_destroy;
    ps_rae_attach(re);
    ps_rda.user = ps_rae_user_add(&u);
    ps_rda.attached = 1;
    {
        int threaded = AP_MPMQ_NOT_SUPPORTED;
        if (ap_mpm_query(AP_MPMQ_IS_THREADED, &threaded) != APR_SUCCESS) {
            threaded = AP_MPMQ_NOT_SUPPORTED;
        }
        ps_rda.relay = threaded != AP_MPMQ_NOT_SUPPORTED;
    }
    if (ps_rd->node && apr_atomic_cas32(&ps_rd->node->relay_logged, 1, 0)
                       == 0) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, ps_rd->s, "PS0178: "
                     "PushStreamRedis: publisher locations publish %s",
                     ps_rda.relay ? "through each child's loop, pipelined on "
                     "its one asynchronous Redis connection"
                     : "on a blocking Redis connection per worker thread "
                     "(MPM without threads)");
    }    ps_rd_sub_attach();                    /* the pub/sub side */
}

int ps_redis_loop_post(ps_redis_job_t *job)
{
    if (!ps_rd || !ps_rda.relay || ps_rae_on_loop()) {
        return 0;
    }
    return ps_rae_post(job) == 0;
}

void ps_redis_refuse(ps_answer_t *a, const char *why)
{
    ps_rd_unreachable(a, "publish", why);
}

apr_interval_time_t ps_redis_timeout(void)
{
    return ps_rd ? apr_time_from_sec(ps_rd->tv.tv_sec) + ps_rd->tv.tv_usec
                 : 0;
}

int ps_redis_async_ready(void)
{
    return ps_rd && ps_rda.attached && !ps_rda.stopping && ps_rae_on_loop();
}

/* ---- publish -------------------------------------------------------- */

typedef struct ps_rda_pub_t {
    apr_pool_t *p;
    ps_store_t *st;
    const ps_srv_conf_t *sc;
    const apr_array_header_t *chans;
    const char *body, *event_id, *event_type;
    apr_size_t len;
    int store, subs;
    ps_chinfo_t *infos;
    ps_answer_t *a;
    ps_redis_done_fn *done;
    void *baton;
} ps_rda_pub_t;

static void ps_rda_pub_reply(void *baton, redisReply *r, const char *why)
{
    ps_rda_pub_t *x = baton;
    int n = x->chans->nelts;

    switch (ps_rd_pub_reply(x->p, NULL, x->st, x->sc, x->chans, r, x->body,
                            x->len, x->event_id, x->event_type, x->store,
                            x->infos)) {
    case 1:
        break;
    case -1:
        ps_answer_set(x->a, 403, PS_REDIS_EXPLAIN_LIMIT);
        x->done(x->baton, 0);
        return;
    default:
        ps_rd_unreachable(x->a, "publish", !r ? why
                          : r->type == REDIS_REPLY_ERROR ? r->str
                          : "answered something unexpected");
        if (r) {
            ps_rda_fail("a publish got an unexpected reply");
        }
        x->done(x->baton, 0);
        return;
    }
    /* the counts: by PUBLISH already, else the SUBS script (not sent:
     * they stay this node's) */
    if (!x->subs || !ps_redis_subscribers_async(x->p, x->infos, n, x->done,
                                                x->baton)) {
        x->done(x->baton, 1);
    }
}

int ps_redis_publish_async(apr_pool_t *p, ps_store_t *st,
                           const ps_srv_conf_t *sc,
                           const apr_array_header_t *chans, const char *body,
                           apr_size_t len, const char *event_id,
                           const char *event_type, int store, int subs,
                           ps_chinfo_t *infos, ps_answer_t *a,
                           ps_redis_done_fn *done, void *baton)
{
    ps_rda_pub_t *x = apr_pcalloc(p, sizeof(*x));
    const char **argv, *why = "";
    size_t *lens;
    int argc, nkeys;

    x->p = p;
    x->st = st;
    x->sc = sc;
    x->chans = chans;
    x->body = body;
    x->len = len;
    x->event_id = event_id;
    x->event_type = event_type;
    x->store = store;
    x->subs = subs;
    x->infos = infos;
    x->a = a;
    x->done = done;
    x->baton = baton;
    argv = ps_rd_pub_args(p, st, sc, chans, body, len, event_id, event_type,
                          store, subs, &argc, &nkeys, &lens);
    if (ps_rda_eval(p, PS_LUA_PUBLISH, nkeys, argc, argv, lens,
                    ps_rda_pub_reply, x, &why) != 0) {
        ps_rd_unreachable(a, "publish", why);
        return 0;
    }
    return 1;
}

/* ---- channel info (GET on the publisher port) ------------------------ */

typedef struct ps_rda_batch_t {
    int pending;                   /* replies still to come (+1 while sending) */
    int failed;
    ps_answer_t *a;
    ps_redis_done_fn *done;
    void *baton;
} ps_rda_batch_t;

static void ps_rda_synced(void *baton, int ok)
{
    ps_rda_batch_t *x = baton;

    x->failed |= !ok;
    if (--x->pending) {
        return;
    }
    if (x->failed) {
        ps_rd_unreachable(x->a, "channel info", ps_rda.why ? ps_rda.why
                          : "did not answer the channel catch-up (SYNC)");
    }
    else {
        ps_rd_reachable();
    }
    x->done(x->baton, !x->failed);
}

int ps_redis_sync_async(apr_pool_t *p, const apr_array_header_t *chans,
                        ps_answer_t *a, ps_redis_done_fn *done, void *baton)
{
    ps_rda_batch_t *x = apr_pcalloc(p, sizeof(*x));
    int i;

    x->a = a;
    x->done = done;
    x->baton = baton;
    x->pending = 1;                /* until every SYNC is sent */
    for (i = 0; i < chans->nelts; i++) {
        const ps_path_channel_t *pc = &APR_ARRAY_IDX(chans, i,
                                                     ps_path_channel_t);
        if (ps_rd_sync_async(ps_rd, pc->id, pc->len, 0, ps_rda_synced, x)) {
            x->failed = 1;         /* the ones sent end it (503) */
            break;
        }
        x->pending++;
    }
    if (x->pending == 1) {         /* none sent: refused now */
        ps_rd_unreachable(a, "channel info", ps_rda.why ? ps_rda.why
                          : "cannot queue the command");
        return 0;
    }
    ps_rda_synced(x, 1);           /* sent: the replies call done */
    return 1;
}

/* The cluster-wide subscriber counts (SUBS script): best effort. */
typedef struct ps_rda_count_t {
    apr_pool_t *p;
    ps_chinfo_t *infos;
    int n;
    ps_redis_done_fn *done;
    void *baton;
} ps_rda_count_t;

static void ps_rda_counted(void *baton, redisReply *r, const char *why)
{
    ps_rda_count_t *x = baton;

    ps_rd_subs_apply(x->p, x->infos, x->n, r);     /* else this node's */
    x->done(x->baton, 1);
}

int ps_redis_subscribers_async(apr_pool_t *p, ps_chinfo_t *infos, int n,
                               ps_redis_done_fn *done, void *baton)
{
    ps_rda_count_t *x;
    const char **argv, *why = "";
    size_t *lens;
    int i;

    for (i = 0; i < n && (infos[i].by_node || !infos[i].id); i++) {
    }
    if (!ps_rd || i == n || ps_rda.stopping) {
        return 0;                  /* none to count */
    }
    x = apr_pcalloc(p, sizeof(*x));
    x->p = p;
    x->infos = infos;
    x->n = n;
    x->done = done;
    x->baton = baton;
    argv = ps_rd_subs_args(p, infos, n, &lens);
    return ps_rda_eval(p, PS_LUA_SUBS, n, n + 4, argv, lens, ps_rda_counted,
                       x, &why) == 0;
}

/* ---- delete --------------------------------------------------------- */

typedef struct ps_rda_del_t {
    int *existed;
    ps_answer_t *a;
    ps_redis_done_fn *done;
    void *baton;
} ps_rda_del_t;

static void ps_rda_del_reply(void *baton, redisReply *r, const char *why)
{
    ps_rda_del_t *x = baton;

    if (!r || r->type != REDIS_REPLY_INTEGER) {
        ps_rd_unreachable(x->a, "delete", !r ? why
                          : r->type == REDIS_REPLY_ERROR ? r->str
                          : "answered something unexpected");
        if (r) {
            ps_rda_fail("a delete got an unexpected reply");
        }
        x->done(x->baton, 0);
        return;
    }
    *x->existed = (int)r->integer;
    x->done(x->baton, 1);
}

int ps_redis_delete_async(apr_pool_t *p, const apr_array_header_t *chans,
                          const char *text, apr_size_t len, int *existed,
                          ps_answer_t *a, ps_redis_done_fn *done,
                          void *baton)
{
    ps_rda_del_t *x = apr_pcalloc(p, sizeof(*x));
    const char **argv, *why = "";
    size_t *lens;
    int argc, nkeys;

    x->existed = existed;
    x->a = a;
    x->done = done;
    x->baton = baton;
    argv = ps_rd_del_args(p, chans, text, len, &argc, &nkeys, &lens);
    if (ps_rda_eval(p, PS_LUA_DELETE, nkeys, argc, argv, lens,
                    ps_rda_del_reply, x, &why) != 0) {
        ps_rd_unreachable(a, "delete", why);
        return 0;
    }
    return 1;
}
