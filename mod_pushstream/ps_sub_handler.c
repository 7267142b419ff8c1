/* ps_sub_handler.c - the subscriber location, request side (B4-B8).
 *
 * Validates the request, creates missing channels, replays stored
 * messages and, for a subscriber that has to wait, subscribes it and hands
 * the connection to the child's reactor: under the event MPM by returning
 * SUSPENDED (the suspend_connection hook does the hand-off once the MPM is
 * done with the connection), elsewhere by waiting for the reactor to finish
 * on this worker thread (blocking fallback). */

#include <string.h>

#include <httpd.h>
#include <http_connection.h>
#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>
#include <mpm_common.h>
#include <http_log.h>
#include <util_filter.h>
#include <apr_strings.h>
#include <apr_allocator.h>

#include "ps_redis.h"
#include "ps_config.h"
#include "ps_expr.h"
#include "ps_child.h"
#include "ps_http.h"
#include "ps_handlers.h"
#include "ps_reactor.h"
#include "ps_sub.h"
#include "ps_util.h"
#include "ps_auth.h"
#include "ps_h2.h"
#include "psc_conn.h"
#include "ps_transport.h"
#include "ps_encode.h"

APLOG_USE_MODULE(pushstream);

/* What one subscribe request found in the store. */
typedef struct ps_subreq_t {
    request_rec *r;
    ps_child_t *child;
    const ps_dir_conf_t *d;
    const ps_srv_conf_t *sc;
    const ps_transport_t *tp;
    apr_array_header_t *chans;       /* ps_path_channel_t */
    ps_sub_chan_t *subs;             /* per channel, once subscribed */
    ps_replay_t q;
    const char *callback;            /* JSONP (polling, long-polling) */
    apr_size_t pad_header, pad_message;  /* padding for old browsers */
    apr_array_header_t *replayed;    /* ps_msgview_t, copies */
    apr_uint64_t start_seq;
    int counted;
} ps_subreq_t;

static void ps_replay_cb(void *baton, const ps_logmsg_t *m)
{
    apr_array_header_t *a = baton;
    ps_msgview_t *v = apr_array_push(a);

    *v = m->view;
    v->text = apr_pmemdup(a->pool, m->view.text, m->view.text_len);
    v->channel = apr_pmemdup(a->pool, m->view.channel, m->view.channel_len);
    v->event_id = apr_pmemdup(a->pool, m->view.event_id, m->view.event_id_len);
    v->event_type = apr_pmemdup(a->pool, m->view.event_type,
                                m->view.event_type_len);
}

/* The first PushStreamPaddingByUserAgent rule matching the user agent. */
static void ps_pick_padding(ps_subreq_t *sr)
{
    const ps_dir_conf_t *d = sr->d;
    const char *ua;
    int i;

    if (!d->padding || !sr->tp->padded) {
        return;
    }
    ua = ps_http_value(sr->r, d->user_agent, "User-Agent");
    for (i = 0; ua && i < d->padding->nelts; i++) {
        const ps_padding_t *p = &APR_ARRAY_IDX(d->padding, i, ps_padding_t);
        if (!ap_regexec(p->ua, ua, 0, NULL, 0)) {
            sr->pad_header = p->header_min;
            sr->pad_message = p->message_min;
            return;
        }
    }
}

const ps_transport_t *ps_transport_of(int mode)
{
    static const ps_transport_t *const by_mode[] = {
        [PS_SUB_STREAMING] = &ps_transport_stream,
        [PS_SUB_POLLING] = &ps_transport_poll,
        [PS_SUB_LONGPOLLING] = &ps_transport_lp,
        [PS_SUB_EVENTSOURCE] = &ps_transport_es,
        [PS_SUB_WEBSOCKET] = &ps_transport_ws,
    };

    return mode >= 0 && mode < (int)(sizeof(by_mode) / sizeof(by_mode[0]))
           && by_mode[mode] ? by_mode[mode] : &ps_transport_stream;
}

static int ps_mode_of(request_rec *r, const ps_dir_conf_t *d)
{
    const char *h = apr_table_get(r->headers_in, "X-Nginx-PushStream-Mode");

    if (h && d->sub_mode != PS_SUB_WEBSOCKET) {
        if (!strcasecmp(h, "polling")) {
            return PS_SUB_POLLING;
        }
        if (!strcasecmp(h, "long-polling")) {
            return PS_SUB_LONGPOLLING;
        }
    }
    return d->sub_mode;
}

static void ps_query_of(ps_subreq_t *sr)
{
    request_rec *r = sr->r;
    const char *v;

    memset(&sr->q, 0, sizeof(sr->q));
    sr->q.since = ps_parse_http_time(ps_http_value(r, sr->d->last_time,
                                                   "If-Modified-Since"));
    sr->q.tag = ps_parse_tag(ps_http_value(r, sr->d->last_tag,
                                           "If-None-Match"));
    v = ps_http_value(r, sr->d->last_event_id, "Last-Event-Id");
    if (v) {
        sr->q.last_event_id = v;
        sr->q.last_event_id_len = strlen(v);
    }
}

/* Undo the subscriptions of a request that will not wait after all. */
static void ps_unsubscribe_all(ps_subreq_t *sr)
{
    ps_store_t *st = sr->child->store;
    apr_int64_t now = ps_now_sec();
    int i;

    if (ps_store_lock(st, NULL) != APR_SUCCESS) {
        return;
    }
    for (i = 0; sr->subs && i < sr->chans->nelts; i++) {
        if (sr->subs[i].subscribed) {
            ps_store_unsubscribe_locked(st, sr->subs[i].ref, sr->subs[i].serial,
                                        sr->child->slot, &sr->sc->limits, now);
            sr->subs[i].subscribed = 0;
        }
    }
    if (sr->counted) {
        ps_store_worker_conn_locked(st, sr->child->slot, -1);
        sr->counted = 0;
    }
    ps_store_unlock(st);
}

/* Subscribe every channel (locked).  APR_SUCCESS, PS_E_LIMIT or ENOMEM. */
static apr_status_t ps_subscribe_locked(ps_subreq_t *sr, ps_channel_t **chs,
                                        apr_int64_t now)
{
    conn_rec *c = sr->r->connection;
    ps_store_t *st = sr->child->store;
    int i;

    sr->subs = apr_pcalloc(c->pool, sr->chans->nelts * sizeof(*sr->subs));
    for (i = 0; i < sr->chans->nelts; i++) {
        ps_path_channel_t *pc = &APR_ARRAY_IDX(sr->chans, i, ps_path_channel_t);
        ps_sub_chan_t *s = &sr->subs[i];
        apr_status_t rv = ps_store_subscribe_locked(st, chs[i], sr->child->slot,
                                                    &sr->sc->limits, now);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        s->id = apr_pstrmemdup(c->pool, pc->id, pc->len);
        s->len = pc->len;
        s->serial = ps_store_channel_serial(chs[i]);
        s->ref = ps_store_channel_ref(st, chs[i]);
        s->subscribed = 1;
    }
    ps_store_worker_conn_locked(st, sr->child->slot, 1);
    sr->counted = 1;
    sr->start_seq = ps_store_seq_locked(st);
    return APR_SUCCESS;
}

/* Checks of protocol B4, per channel in request order, then the wildcard
 * count; NULL when the request may go on, else the 403 explain text. */
static const char *ps_check_channels_locked(ps_subreq_t *sr)
{
    ps_store_t *st = sr->child->store;
    const ps_srv_conf_t *sc = sr->sc;
    apr_int64_t wmax = ps_dir_wildcard_max(sr->d, sc);
    int i, nwild = 0;

    for (i = 0; i < sr->chans->nelts; i++) {
        ps_path_channel_t *pc = &APR_ARRAY_IDX(sr->chans, i, ps_path_channel_t);
        ps_channel_t *ch = ps_store_find_locked(st, pc->id, pc->len);
        int wildcard = ps_is_wildcard(sc, pc);
        if (sr->d->authorized_only == 1 && !wildcard
            && (!ch || !ps_store_channel_stored(ch))) {
            return "Subscriber could not create channels.";
        }
        if (ch && sc->limits.max_subscribers_per_channel
            && ps_store_channel_subscribers(ch)
               >= sc->limits.max_subscribers_per_channel) {
            return "Subscribers limit per channel has been exceeded.";
        }
        if (sc->events_channel && !strcmp(pc->id, sc->events_channel)
            && sr->d->allow_events_channel != 1) {
            return "Subscription to events channel is not allowed.";
        }
        nwild += wildcard;
    }
    if (wmax != PS_UNSET && (nwild > wmax || nwild == sr->chans->nelts)) {
        return "Subscribed too much wildcard channels.";
    }
    return NULL;
}

/* The store part of a subscribe, under one lock so that no message falls
 * between the replay and the subscription.  OK or an answer made. */
static int ps_store_part(ps_subreq_t *sr)
{
    request_rec *r = sr->r;
    ps_store_t *st = sr->child->store;
    const ps_limits_t *lim = &sr->sc->limits;
    ps_channel_t **chs = apr_pcalloc(r->pool, sr->chans->nelts * sizeof(*chs));
    apr_int64_t now = ps_now_sec();
    apr_status_t rv = APR_SUCCESS;
    const char *explain;
    int i, wait;

    ps_redis_sync(r->pool, st, sr->chans, 0);   /* several servers */
    if (ps_store_lock(st, NULL) != APR_SUCCESS) {
        return ps_http_explain(r, HTTP_INTERNAL_SERVER_ERROR, NULL);
    }
    ps_store_cleanup_locked(st, now);     /* expired messages count as none */
    explain = ps_check_channels_locked(sr);
    if (explain) {
        ps_store_unlock(st);
        return ps_http_explain(r, HTTP_FORBIDDEN, explain);
    }
    for (i = 0; i < sr->chans->nelts && rv == APR_SUCCESS; i++) {
        ps_path_channel_t *pc = &APR_ARRAY_IDX(sr->chans, i, ps_path_channel_t);
        rv = ps_store_get_or_create_locked(st, pc->id, pc->len,
                                           ps_is_wildcard(sr->sc, pc), lim,
                                           now, &chs[i]);
    }
    if (rv == APR_SUCCESS) {
        for (i = 0; i < sr->chans->nelts; i++) {
            ps_path_channel_t *pc = &APR_ARRAY_IDX(sr->chans, i,
                                                   ps_path_channel_t);
            sr->q.backtrack = pc->backtrack;
            if (ps_replay_wanted(&sr->q)) {
                ps_store_replay_locked(st, chs[i], &sr->q, now, ps_replay_cb,
                                       sr->replayed);
            }
        }
        wait = sr->tp->waits && (sr->tp->stream || !sr->replayed->nelts);
        if (wait) {
            rv = ps_subscribe_locked(sr, chs, now);
        }
    }
    ps_store_unlock(st);
    if (wait && rv == APR_SUCCESS) {
        ps_redis_kick();        /* several servers: subscribe in Redis now */
    }
    if (rv == PS_E_LIMIT) {
        ps_unsubscribe_all(sr);
        return ps_http_explain(r, HTTP_FORBIDDEN, sr->subs
                               ? "Subscribers limit per channel has been exceeded."
                               : "Number of channels were exceeded.");
    }
    if (rv != APR_SUCCESS) {
        ps_unsubscribe_all(sr);
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "PS0051: shared memory is "
                      "full: cannot create channel or subscription; raise "
                      "PushStreamSharedMemorySize");
        /* the publisher's answer for a full segment (ps_pub_full) */
        return ps_http_explain(r, HTTP_INTERNAL_SERVER_ERROR, PS_EXPLAIN_FULL);
    }
    return OK;
}

static const ps_template_t *ps_msg_tpl(ps_subreq_t *sr)
{
    return sr->d->message_tpl ? sr->d->message_tpl : sr->child->default_tpl;
}

/* The form of sr's messages (ps_encode.h): the one encoder of the replay
 * here and of live delivery in the loop. */
static void ps_subreq_enc(ps_subreq_t *sr, ps_enc_t *e)
{
    e->kind = sr->tp->enc_kind;
    e->tpl = ps_msg_tpl(sr);
    e->pad_min = sr->pad_message;
    e->pad_max = sr->sc->padding_max;
}

/* The first bytes of a stream, in its transport: header template (with
 * padding) and the replayed messages. */
static void ps_stream_intro(ps_subreq_t *sr, apr_bucket_brigade *bb)
{
    ps_enc_t e;
    apr_size_t hlen = 0, len;
    const char *h = sr->d->header_tpl
                    ? ps_template_source(sr->d->header_tpl, &hlen) : NULL;
    char *out;

    ps_subreq_enc(sr, &e);
    out = ps_enc_intro(sr->r->pool, &e, h, hlen, sr->pad_header,
                       (const ps_msgview_t *)sr->replayed->elts,
                       sr->replayed->nelts, &len);
    if (len) {
        APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_pool_create(out, len, sr->r->pool,
                                                           bb->bucket_alloc));
    }
}

/* Streaming kinds: headers (not for WebSocket: its 101 is out already) and
 * the intro go out now, on this worker thread (it may block; the reactor
 * must not). */
static int ps_stream_start(ps_subreq_t *sr)
{
    request_rec *r = sr->r;
    apr_bucket_brigade *bb = apr_brigade_create(r->pool,
                                                r->connection->bucket_alloc);

    if (sr->tp->http_body) {
        r->status = HTTP_OK;
        if (sr->tp->ctype) {
            ap_set_content_type(r, sr->tp->ctype);
        }
        else if (!r->content_type) {
            ap_set_content_type(r, "text/plain");
        }
        /* Chunked like nginx, although the connection closes at the end (a
         * closing connection would otherwise get no transfer coding).  Not
         * on an h2 stream: HTTP/2 frames the body itself. */
        if (r->proto_num >= HTTP_VERSION(1, 1)
            && !ps_h2_is_stream(r->connection)) {
            r->chunked = 1;
        }
    }
    ps_stream_intro(sr, bb);
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_flush_create(bb->bucket_alloc));
    if (ap_pass_brigade(r->output_filters, bb) != APR_SUCCESS
        || r->connection->aborted) {
        return -1;
    }
    return 0;
}

static ps_sub_t *ps_sub_make(ps_subreq_t *sr)
{
    conn_rec *c = sr->r->connection;
    ps_sub_t *sub = apr_pcalloc(c->pool, sizeof(*sub));

    sub->r = sr->r;
    sub->c = c;
    sub->sock = ap_get_conn_socket(c);
    /* h2: the stream's bucket allocator is its worker's, busy writing while
     * the loop renders; the loop renders with its own (ps_h2.h) */
    sub->ba = ps_h2_is_stream(c) ? ps_reactor_bucket_alloc(sr->child->reactor)
                                 : c->bucket_alloc;
    sub->s = c->base_server;
    sub->client_ip = c->client_ip;
    sub->child = sr->child;
    sub->d = sr->d;
    sub->sc = sr->sc;
    sub->tp = sr->tp;
    ps_subreq_enc(sr, &sub->enc);
    sub->callback = sr->callback ? apr_pstrdup(c->pool, sr->callback) : NULL;
    if (sr->tp->setup) {
        sr->tp->setup(sub, c->pool);
    }
    if (sr->d->auth_mode > 0) {
        const ps_auth_result_t *ar = ps_auth_result(sr->r);
        sub->auth_exp = ar ? ar->exp : 0;
        sub->auth_nopub = !ar || !ar->may_publish;
    }
    sub->nchan = sr->chans->nelts;
    sub->chans = sr->subs;
    sub->start_seq = sr->start_seq;
    sub->counted = sr->counted;
    sub->pending = apr_brigade_create(c->pool, sub->ba);
    sub->tmp = apr_brigade_create(c->pool, sub->ba);
    return sub;
}

/* mod_ssl's coalescing filter holds small writes until a FLUSH, which the
 * loop never sends: take it out.  ap_remove_output_filter() relinks only
 * the connection's list; the request's filters still point at it, so they
 * are relinked here too. */
static void ps_remove_coalescing(request_rec *r)
{
    conn_rec *c = r->connection;
    ap_filter_t *f, *co = NULL;

    for (f = c->output_filters; f; f = f->next) {
        if (!strcasecmp(f->frec->name, "SSL/TLS Coalescing Filter")) {
            co = f;
            break;
        }
    }
    if (!co) {
        return;
    }
    ap_remove_output_filter(co);
    for (f = r->output_filters; f; f = f->next) {
        if (f->next == co) {
            f->next = co->next;
        }
    }
    if (r->output_filters == co) {
        r->output_filters = co->next;
    }
    if (r->proto_output_filters == co) {
        r->proto_output_filters = co->next;
    }
}

static int ps_can_suspend(ps_child_t *child, conn_rec *c)
{
    return child->async && psc_conn_can_suspend(c);
}

/* Worker/prefork MPM or HTTP/2: this thread waits while the reactor
 * serves the subscriber, then returns to httpd as a normal handler. */
static int ps_wait_here(ps_subreq_t *sr, ps_sub_t *sub)
{
    request_rec *r = sub->r;
    char byte;
    apr_size_t n = 1;

    sub->fallback = 1;
    if (apr_file_pipe_create_ex(&sub->done_in, &sub->done_out,
                                APR_FULL_BLOCK, r->pool) != APR_SUCCESS) {
        ps_unsubscribe_all(sr);
        return ps_http_explain(r, HTTP_INTERNAL_SERVER_ERROR, NULL);
    }
    ps_sub_adopt(sub);
    apr_file_read(sub->done_in, &byte, &n);     /* APR retries on EINTR */
    return DONE;
}

/* HTTP/2: the fallback's wait, but the bytes are written here, by the
 * stream's own h2 worker (ps_h2.h). */
static int ps_wait_h2(ps_subreq_t *sr, ps_sub_t *sub)
{
    request_rec *r = sub->r;
    ps_h2relay_t *rl;
    int rc;

    if (ps_h2_relay_create(r, &rl) != APR_SUCCESS) {
        ps_unsubscribe_all(sr);
        ps_h2_leave(sr->child);
        return ps_http_explain(r, HTTP_INTERNAL_SERVER_ERROR, NULL);
    }
    sub->fallback = 1;
    sub->relay = rl;
    sub->done_out = ps_h2_relay_done_out(rl);
    ps_sub_adopt(sub);
    rc = ps_h2_serve(r, rl);
    ps_h2_leave(sr->child);
    return rc;
}

/* HTTP/2 over the cap (ps_h2_admit): 503, the client retries later, or on
 * another connection that may reach another child. */
static int ps_h2_refuse(request_rec *r)
{
    apr_table_setn(r->err_headers_out, "Retry-After", "5");
    return ps_http_explain(r, HTTP_SERVICE_UNAVAILABLE, "Too many HTTP/2 "
                           "subscribers on this server process (each holds "
                           "an h2 worker): retry later or over HTTP/1.1.");
}

static int ps_sub_validate(ps_subreq_t *sr);
static int ps_sub_wait(ps_subreq_t *sr);

static int ps_sub_handle_req(request_rec *r, ps_child_t *child,
                             const ps_dir_conf_t *d, const ps_srv_conf_t *sc);

int ps_sub_handle(request_rec *r, ps_child_t *child, const ps_dir_conf_t *d,
                  const ps_srv_conf_t *sc)
{
    /* The event MPM gives each connection its own allocator, which keeps
     * the blocks freed on it for reuse: for a waiting subscriber, the
     * request's read buffer, the head's buckets and, once
     * ps_sub_end_request() ends the request, all of r->pool, for as long as
     * it lives (~4 KB RSS each measured for the first alone).  Give them
     * to malloc instead (ps_sub_end_request() allows a small cache again);
     * the allocator ends with c->pool, which ps_sub_release() destroys.  A
     * request answered at once restores the MPM's setting: its connection
     * goes on (keep-alive, then the MPM's pool cache). */
    int susp = ps_can_suspend(child, r->connection), rc;

    if (susp) {
        psc_conn_max_free(r->connection, 1);
    }
    rc = ps_sub_handle_req(r, child, d, sc);
    if (susp && rc != SUSPENDED) {
        psc_conn_max_free(r->connection, ap_max_mem_free);
    }
    return rc;
}

static int ps_sub_handle_req(request_rec *r, ps_child_t *child,
                             const ps_dir_conf_t *d, const ps_srv_conf_t *sc)
{
    ps_subreq_t sr;
    int rc;

    memset(&sr, 0, sizeof(sr));
    sr.r = r;
    sr.child = child;
    sr.d = d;
    sr.sc = sc;
    sr.tp = ps_transport_of(ps_mode_of(r, d));
    if (sr.tp->handshake) {
        if ((rc = sr.tp->handshake(r)) != OK) {
            return rc;
        }
        rc = ps_sub_validate(&sr);
        return rc == OK ? ps_sub_wait(&sr)
               : sr.tp->refuse ? sr.tp->refuse(r) : rc;
    }
    ps_http_cors(r, d, "GET");
    if (r->method_number == M_OPTIONS) {
        return ps_http_explain(r, HTTP_OK, NULL);
    }
    ps_http_nocache(r);
    if (r->method_number != M_GET || r->header_only) {
        return ps_http_not_allowed(r, "GET");
    }
    if ((rc = ps_sub_validate(&sr)) != OK) {
        return rc;
    }
    if (!sr.tp->stream && (!sr.tp->waits || sr.replayed->nelts)) {
        /* polling, or a long-poll that has messages already */
        ps_enc_t e;
        ps_subreq_enc(&sr, &e);
        return ps_sub_answer_now(r, d, &e, sr.callback, sr.replayed,
                                 sr.q.since, sr.q.tag);
    }
    return ps_sub_wait(&sr);
}

/* Channels, checks, store: OK when the subscriber may go on, else the
 * answer made (DONE). */
static int ps_sub_validate(ps_subreq_t *sr)
{
    request_rec *r = sr->r;
    int rc;

    if ((rc = ps_http_channels(r, sr->d, &sr->chans)) != OK
        || (rc = ps_http_check_ids(r, sr->sc, sr->chans)) != OK) {
        return rc;
    }
    ps_query_of(sr);
    if (sr->tp->jsonp) {
        const char *cb = ps_query_arg(r, "callback");
        sr->callback = *cb ? cb : NULL;
    }
    ps_pick_padding(sr);
    sr->replayed = apr_array_make(r->pool, 8, sizeof(ps_msgview_t));
    return ps_store_part(sr);
}

/* The subscriber waits: first bytes now, then the reactor owns it. */
static int ps_sub_wait(ps_subreq_t *sr)
{
    request_rec *r = sr->r;
    conn_rec *c = r->connection;
    ps_sub_t *sub;
    int h2 = ps_h2_is_stream(c);

    /* h2: served on its worker, if the child has one to spare (ps_h2.h) */
    if (h2 && !ps_h2_admit(r, sr->child)) {
        ps_unsubscribe_all(sr);
        return ps_h2_refuse(r);
    }
    /* From here the subscriber waits: no keep-alive afterwards (a suspended
     * connection cannot be given back to the MPM in httpd 2.4). */
    c->keepalive = AP_CONN_CLOSE;
    if (sr->tp->stream && ps_stream_start(sr) < 0) {
        ps_unsubscribe_all(sr);
        if (h2) {
            ps_h2_leave(sr->child);
        }
        return DONE;
    }
    sub = ps_sub_make(sr);
    if (h2) {
        return ps_wait_h2(sr, sub);
    }
    ps_remove_coalescing(r);
    /* we keep reading (client close, WebSocket frames): no read timeout */
    ap_remove_input_filter_byhandle(c->input_filters, "reqtimeout");
    if (!ps_can_suspend(sr->child, c)) {
        return ps_wait_here(sr, sub);
    }
    ap_set_module_config(r->request_config, &pushstream_module, sub);
    return SUSPENDED;
}

void ps_sub_suspended(conn_rec *c, request_rec *r)
{
    ps_sub_t *sub = psc_conn_take_suspended(c, r, &pushstream_module);

    if (sub && sub->c == c) {
        ps_sub_adopt(sub);
    }
}
