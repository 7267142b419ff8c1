/* ps_sub.c - a waiting subscriber, driven by the reactor thread: its
 * queue of rendered bytes, its deadlines (TTL, ping, ending the request,
 * leaving httpd, linger), the state machine that advances it (ACTIVE,
 * ENDING, FLUSHING, LINGER, DONE), and the events it gets (messages,
 * batches, timers, socket readiness).
 *
 * Writing without blocking (ps_sub_conn.c): rendered messages wait in
 * sub->pending and are handed to the filters at most PS_SUB_CHUNK bytes at
 * a time and never with a FLUSH bucket (a FLUSH makes the core filter block
 * for up to Timeout); the core filter is then asked to write what it holds
 * with a NULL brigade, and if the socket is full we wait for POLLOUT.
 *
 * Ending (ps_sub_conn.c): EOS through the request filters, the EOR bucket
 * (logs the request, frees r), EOC (TLS close_notify), shutdown of the
 * write side, a short drain of what the client still sends, close, and
 * destruction of c->pool with the state set back to SUSPENDED so the event
 * MPM decrements its connection counters (see
 * shared/spec/httpd-async-notes.md 1.6).
 *
 * Leaving httpd (ps_sub_detach.c): a stream's request ends soon after it
 * starts (ps_sub_end_request); on plain TCP, once idle, the subscriber then
 * leaves httpd altogether (ps_sub_detach): a dup() of the socket, its state
 * in one malloc()ed block, its connection released to the MPM.  From then
 * on sub->c is NULL and the loop reads and writes the socket itself.  On
 * TLS the loop also takes mod_ssl's session (ps_tls.h) and reads / writes
 * through it (sub->tls).  A waiting long-poll leaves the same way: its
 * request ends first (ps_sub_lp_end_request), its answer's head is then
 * the loop's to write (ps_lphead.h).
 *
 * On the loop and in the reactor's registry: ps_sub_loop.c.  What differs
 * per transport (message form, ping, end, client input) is the
 * transport's (sub->tp, ps_transport.h; ps_sub_stream.c, ps_sub_es.c,
 * ps_sub_ws.c, ps_sub_lp.c); these files never ask which one they serve. */

#include <stdarg.h>
#include <string.h>

#include <httpd.h>
#include <http_log.h>
#include <http_request.h>
#include <apr_strings.h>

#include "ps_sub_int.h"

APLOG_USE_MODULE(pushstream);

static void ps_sub_advance(ps_sub_t *sub, apr_time_t now);
static int ps_sub_batch_add(ps_sub_batch_t *b, ps_sub_t *sub);

/* Log about a subscriber: on its connection while httpd has one, else on
 * its server with the client's address (a detached subscriber). */
void ps_sub_log(const ps_sub_t *sub, int level, apr_status_t rv,
                const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (!APLOG_MODULE_IS_LEVEL(sub->s, APLOG_MODULE_INDEX, level)) {
        return;
    }
    va_start(ap, fmt);
    apr_vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (sub->c) {
        ap_log_cerror(APLOG_MARK, level, rv, sub->c, "%s", msg);
    }
    else {
        ap_log_error(APLOG_MARK, level, rv, sub->s, "[client %s] %s",
                     sub->client_ip, msg);
    }
}

void ps_sub_queue(ps_sub_t *sub, const char *data, apr_size_t len)
{
    apr_bucket *b;

    if (!len) {
        return;
    }
    b = apr_bucket_heap_create(data, len, NULL, sub->ba);
    APR_BRIGADE_INSERT_TAIL(sub->pending, b);
    sub->pending_bytes += len;
}

/* Padding of sub's form (ps_enc_pad_len) after a piece of len bytes. */
void ps_sub_queue_padding(ps_sub_t *sub, apr_size_t len)
{
    apr_size_t n = ps_enc_pad_len(&sub->enc, len, sub->enc.pad_min);
    char *buf;

    if (n) {
        buf = apr_bucket_alloc(n, sub->ba);
        ps_enc_pad_fill(&sub->enc, buf, n);
        APR_BRIGADE_INSERT_TAIL(sub->pending, apr_bucket_heap_create(
            buf, n, apr_bucket_free, sub->ba));
        sub->pending_bytes += n;
    }
}

int ps_sub_is_stream(const ps_sub_t *sub)
{
    return sub->tp->stream;
}

/* One message in sub's form (ps_encode.h: the replay's encoder too), in
 * one heap bucket. */
void ps_sub_queue_encoded(ps_sub_t *sub, const ps_msgview_t *m)
{
    apr_size_t len = ps_enc_measure(&sub->enc, m);
    char *buf = apr_bucket_alloc(len ? len : 1, sub->ba);

    ps_enc_render_to(&sub->enc, m, buf);
    APR_BRIGADE_INSERT_TAIL(sub->pending, apr_bucket_heap_create(
        buf, len, apr_bucket_free, sub->ba));
    sub->pending_bytes += len;
    sub->last_item = len;
}

void ps_sub_stream_message(ps_sub_t *sub, const ps_msgview_t *m, int deleted,
                           apr_time_t now)
{
    ps_sub_queue_encoded(sub, m);
}

void ps_sub_queue_tpl(ps_sub_t *sub, const ps_template_t *t)
{
    apr_size_t len;
    const char *src;

    if (t) {
        src = ps_template_source(t, &len);
        ps_sub_queue(sub, src, len);
    }
}

static apr_size_t ps_sub_max_buffer(const ps_sub_t *sub)
{
    return sub->d->max_buffer != PS_UNSET ? (apr_size_t)sub->d->max_buffer
                                          : PS_DEFAULT_MAX_BUFFER;
}

/* ---- timers ---------------------------------------------------------------- */

void ps_sub_set_deadline(ps_sub_t *sub)
{
    apr_time_t d = 0;

    if (sub->state == PS_SUBST_LINGER) {
        d = sub->linger_at;
    }
    else if (sub->state == PS_SUBST_ACTIVE) {
        d = sub->ttl_at;
        if (sub->ping_at && (!d || sub->ping_at < d)) {
            d = sub->ping_at;
        }
        if (sub->end_req_at && (!d || sub->end_req_at < d)) {
            d = sub->end_req_at;
        }
        if (sub->detach_at && (!d || sub->detach_at < d)) {
            d = sub->detach_at;
        }
    }
    else {
        d = sub->linger_at;           /* flush deadline for slow clients */
    }
    sub->deadline = d;
    ps_sub_reschedule(sub);
}

static void ps_sub_restart_ping(ps_sub_t *sub, apr_time_t now)
{
    if (ps_sub_is_stream(sub) && sub->d->ping_interval > 0) {
        sub->ping_at = now + sub->d->ping_interval;
    }
}

void ps_sub_started(ps_sub_t *sub, apr_time_t now)
{
    apr_interval_time_t ttl = sub->tp->stream ? sub->d->subscriber_ttl
                                              : ps_dir_longpoll_ttl(sub->d);

    sub->ttl_at = ttl > 0 ? now + ttl : 0;
    if (sub->auth_exp) {              /* PushStreamAuth: closed at exp */
        apr_time_t exp = apr_time_from_sec(sub->auth_exp);
        if (!sub->ttl_at || exp <= sub->ttl_at) {
            sub->ttl_at = exp;
            sub->auth_ttl = 1;
        }
    }
    ps_sub_restart_ping(sub, now);
    if (ps_sub_is_stream(sub) && !sub->fallback) {
        sub->end_req_at = now + PS_SUB_END_REQ;
    }
    else if (!sub->fallback) {          /* a long-poll */
        sub->detach_at = now + PS_SUB_END_REQ;
    }
    sub->state = PS_SUBST_ACTIVE;
    ps_sub_set_deadline(sub);
    ps_sub_advance(sub, now);
}

/* ---- ending ------------------------------------------------------------------ */

/* The connection is gone or broke: log the request and retire at once. */
void ps_sub_fail(ps_sub_t *sub)
{
    sub->aborted = 1;
    if (sub->c && !sub->relay) {        /* an h2 stream is its worker's */
        sub->c->aborted = 1;
    }
    if (sub->fallback) {
        ps_sub_retire(sub);
        return;
    }
    if (sub->r) {
        ap_process_request_after_handler(sub->r);
        sub->r = NULL;
    }
    ps_sub_retire(sub);
}

/* Start ending: whatever is queued goes out, then the response ends. */
void ps_sub_end(ps_sub_t *sub, apr_time_t now)
{
    if (sub->state != PS_SUBST_ACTIVE) {
        return;
    }
    sub->state = PS_SUBST_ENDING;
    /* a client that does not take its last bytes within Timeout is dropped */
    sub->linger_at = now + sub->s->timeout;
    ps_sub_set_deadline(sub);
}

void ps_sub_shutdown(ps_sub_t *sub)
{
    apr_time_t now = apr_time_now();

    if (sub->state != PS_SUBST_ACTIVE) {
        return;
    }
    sub->ws_close_code = PS_WS_CLOSE_GOING_AWAY;
    sub->tp->end(sub, now);
    ps_sub_advance(sub, now);
}

void ps_sub_abort(ps_sub_t *sub)
{
    if (sub->state != PS_SUBST_DONE) {
        sub->aborted = 1;
        if (sub->c && !sub->relay) {
            sub->c->aborted = 1;
        }
        ps_sub_retire(sub);
    }
}

static void ps_sub_advance(ps_sub_t *sub, apr_time_t now)
{
    for (;;) {
        switch (sub->state) {
        case PS_SUBST_ACTIVE:
            if (ps_sub_pump(sub) < 0) {
                ps_sub_fail(sub);
            }
            /* a backlog, not one big message, is what gets a client dropped */
            else if (sub->pending_bytes > ps_sub_max_buffer(sub) + sub->last_item) {
                ps_sub_log(sub, APLOG_NOTICE, 0, "PS0020: subscriber "
                           "dropped: it does not read (%" APR_SIZE_T_FMT
                           " bytes waiting, PushStreamSubscriberMaxBuffer %"
                           APR_SIZE_T_FMT ")", sub->pending_bytes,
                           ps_sub_max_buffer(sub));
                ps_sub_fail(sub);
            }
            return;
        case PS_SUBST_ENDING:
            if (ps_sub_pump(sub) < 0) {
                ps_sub_fail(sub);
                return;
            }
            if (!APR_BRIGADE_EMPTY(sub->pending)) {
                return;
            }
            if (sub->fallback) {
                ps_sub_retire(sub);
                return;
            }
            if (!sub->r) {
                /* request ended early: the last chunk is ours to write */
                if (sub->self_chunked) {
                    sub->self_chunked = 0;
                    ps_sub_queue(sub, PS_ENC_LAST_CHUNK,
                                 sizeof(PS_ENC_LAST_CHUNK) - 1);
                    continue;
                }
                sub->state = PS_SUBST_FLUSHING;
                continue;
            }
            ps_sub_finish_response(sub);
            continue;
        case PS_SUBST_FLUSHING:
            if (ps_sub_pump(sub) < 0) {
                ps_sub_fail(sub);
                return;
            }
            if (sub->c ? sub->c->data_in_output_filters
                       : !APR_BRIGADE_EMPTY(sub->out)) {
                return;
            }
            ps_sub_start_linger(sub, now);
            return;
        default:
            return;
        }
    }
}

/* ---- events ------------------------------------------------------------------- */

void ps_sub_message(ps_sub_t *sub, int ci, const ps_msgview_t *m, int deleted)
{
    apr_time_t now = apr_time_now();
    int i, left = 0;

    if (sub->state != PS_SUBST_ACTIVE) {
        return;
    }
    sub->tp->message(sub, m, deleted, now);
    if (!sub->tp->stream) {             /* answered: the response ends */
        ps_sub_advance(sub, now);
        return;
    }
    if (deleted) {
        sub->chans[ci].deleted = 1;           /* the reactor unlinks it */
        for (i = 0; i < sub->nchan; i++) {
            left += !sub->chans[i].deleted;
        }
        if (!left) {
            sub->tp->end(sub, now);
        }
    }
    ps_sub_restart_ping(sub, now);
    ps_sub_set_deadline(sub);
    if (sub->state == PS_SUBST_ACTIVE
        && ps_sub_batch_add(ps_reactor_subs_baton(sub->child->reactor),
                            sub)) {
        return;
    }
    ps_sub_advance(sub, now);
}

/* 1: sub is (or already was) queued in the open batch b. */
static int ps_sub_batch_add(ps_sub_batch_t *b, ps_sub_t *sub)
{
    if (!b->on) {
        return 0;
    }
    if (sub->batched) {
        return 1;
    }
    if (b->n == b->cap) {
        /* from the reactor's pool: the array only grows (to the child's
         * largest fan-out), so the old copies cost at most as much again */
        int cap = b->cap ? b->cap * 2 : 1024;
        ps_sub_t **nb = apr_palloc(b->pool, cap * sizeof(*nb));
        if (b->n) {
            memcpy(nb, b->subs, b->n * sizeof(*nb));
        }
        b->subs = nb;
        b->cap = cap;
    }
    b->subs[b->n++] = sub;
    sub->batched = 1;
    return 1;
}

void ps_sub_batch_begin(ps_sub_batch_t *b)
{
    b->on = 1;
}

void ps_sub_batch_end(ps_sub_batch_t *b)
{
    apr_time_t now = apr_time_now();
    int i;

    b->on = 0;
    for (i = 0; i < b->n; i++) {
        ps_sub_t *sub = b->subs[i];     /* retired subs are freed later */
        sub->batched = 0;
        if (sub->state != PS_SUBST_DONE) {
            ps_sub_advance(sub, now);
        }
    }
    b->n = 0;
}

void ps_sub_timer(ps_sub_t *sub, apr_time_t now)
{
    switch (sub->state) {
    case PS_SUBST_ACTIVE:
        if (sub->end_req_at && now >= sub->end_req_at) {
            ps_sub_end_request(sub, now);
        }
        if (sub->detach_at && now >= sub->detach_at) {
            sub = ps_sub_detach(sub, now);
        }
        if (sub->ttl_at && now >= sub->ttl_at) {
            if (sub->auth_ttl) {
                ps_sub_log(sub, APLOG_INFO, 0, "PS0124: subscriber closed: "
                           "its token expired");
                sub->ws_close_code = PS_WS_CLOSE_POLICY;
            }
            sub->tp->end(sub, now);
        }
        else if (sub->ping_at && now >= sub->ping_at) {
            sub->tp->ping(sub);
            ps_sub_restart_ping(sub, now);
        }
        ps_sub_set_deadline(sub);
        ps_sub_advance(sub, now);
        break;
    case PS_SUBST_ENDING:
    case PS_SUBST_FLUSHING:
        if (sub->linger_at && now >= sub->linger_at) {
            ps_sub_log(sub, APLOG_DEBUG, 0, "PS0021: subscriber did not "
                       "take its last bytes in time");
            ps_sub_fail(sub);
        }
        break;
    case PS_SUBST_LINGER:
        if (now >= sub->linger_at) {
            ps_sub_retire(sub);
        }
        break;
    default:
        break;
    }
}

void ps_sub_io(ps_sub_t *sub, apr_int16_t rtnevents, apr_time_t now)
{
    if (sub->relay) {                   /* its h2 worker saw the client go */
        ps_sub_log(sub, APLOG_DEBUG, 0, "PS0101: HTTP/2 subscriber gone "
                   "(stream reset or connection closed)");
        ps_sub_fail(sub);
        return;
    }
    if (sub->state == PS_SUBST_LINGER) {
        ps_sub_drain(sub);
        return;
    }
    if (rtnevents & (APR_POLLERR | APR_POLLNVAL)) {
        ps_sub_fail(sub);
        return;
    }
    if (rtnevents & (APR_POLLIN | APR_POLLHUP)) {
        ps_sub_read(sub, now);
        if (sub->state == PS_SUBST_DONE) {
            return;
        }
    }
    ps_sub_advance(sub, now);
}

