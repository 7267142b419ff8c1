/* ps_sub.c - a waiting subscriber, driven by the reactor thread.
 *
 * Writing without blocking: rendered messages wait in sub->pending and are
 * handed to the filters at most PS_SUB_CHUNK bytes at a time and never with
 * a FLUSH bucket (a FLUSH makes the core filter block for up to Timeout);
 * the core filter is then asked to write what it holds with a NULL brigade,
 * and if the socket is full we wait for POLLOUT.
 *
 * Ending: EOS through the request filters, the EOR bucket (logs the
 * request, frees r), EOC (TLS close_notify), shutdown of the write side, a
 * short drain of what the client still sends, close, and destruction of
 * c->pool with the state set back to SUSPENDED so the event MPM decrements
 * its connection counters (see shared/spec/httpd-async-notes.md 1.6).
 *
 * Leaving httpd: a stream's request ends soon after it starts
 * (ps_sub_end_request); on plain TCP, once idle, the subscriber then
 * leaves httpd altogether (ps_sub_detach): a dup() of the socket, its state
 * in one malloc()ed block, its connection released to the MPM.  From then
 * on sub->c is NULL and the loop reads and writes the socket itself.  On
 * TLS the loop also takes mod_ssl's session (ps_tls.h) and reads / writes
 * through it (sub->tls).  A waiting long-poll leaves the same way: its
 * request ends first (ps_sub_lp_end_request), its answer's head is then
 * the loop's to write (ps_lphead.h).
 *
 * What differs per transport (message form, ping, end, client input) is
 * the transport's (sub->tp, ps_transport.h; ps_sub_stream.c, ps_sub_es.c,
 * ps_sub_ws.c, ps_sub_lp.c); this file never asks which one it serves. */

#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/uio.h>

#include <httpd.h>
#include <http_connection.h>
#include <http_protocol.h>
#include <http_request.h>
#include <http_log.h>
#include <util_filter.h>
#include <apr_strings.h>
#include <apr_date.h>
#include <apr_allocator.h>

#include "ps_redis.h"
#include "ps_sub.h"
#include "ps_reactor.h"
#include "ps_util.h"
#include "ps_websocket.h"
#include "ps_handlers.h"
#include "ps_h2.h"
#include "ps_tls.h"
#include "ps_lphead.h"
#include "psc_conn.h"

APLOG_USE_MODULE(pushstream);

#define PS_SUB_CHUNK        (16 * 1024)
#define PS_SUB_LINGER       apr_time_from_sec(2)
/* How soon after adoption a stream's request is ended (see ps_sub_end_request). */
#define PS_SUB_END_REQ      apr_time_from_msec(100)
/* Free memory a stream's allocator may keep once its request has ended:
 * a node or two for the heap buckets of rendered messages (with none,
 * each would be a malloc() + free() that may trim the heap). */
#define PS_SUB_MAX_FREE     (16 * 1024)

/* How soon after its request ended a stream leaves httpd (ps_sub_detach),
 * and how often, how long apart, it tries again while it is busy. */
#define PS_SUB_DETACH_AFTER apr_time_from_msec(100)
#define PS_SUB_DETACH_RETRY apr_time_from_sec(1)
#define PS_SUB_DETACH_TRIES 30

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

/* Ask the last output filter (core) to write what it holds, without
 * blocking: what proxy_util.c calls ap_filter_output_pending(). */
static apr_status_t ps_conn_write_pending(conn_rec *c)
{
    return psc_conn_write_pending(c);
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

#define PS_SUB_IOV          64

/* writev without blocking (the socket keeps its timeout for httpd). */
static apr_status_t ps_sub_sendv(ps_sub_t *sub, const struct iovec *vec,
                                 int n, apr_size_t *written)
{
    apr_interval_time_t tmo;
    apr_status_t rv;

    if (!sub->c) {                      /* ours: timeout 0 already */
        return apr_socket_sendv(sub->sock, vec, n, written);
    }
    apr_socket_timeout_get(sub->sock, &tmo);
    apr_socket_timeout_set(sub->sock, 0);
    rv = apr_socket_sendv(sub->sock, vec, n, written);
    apr_socket_timeout_set(sub->sock, tmo);
    return rv;
}

/* Once the request has ended (ps_sub_end_request) on plain TCP (the core
 * filter is the only one left) and the core filter holds nothing: write
 * pending bytes with one writev straight to the socket, framing included.
 * perf of a fan-out showed the brigade partition, the framing buckets and
 * the core filter's bookkeeping as the largest costs of ours per delivery.
 * What the socket does not take is copied, framed, to the core filter,
 * which then owns it (c->data_in_output_filters), or once detached to
 * sub->out.  -1: failure. */
static int ps_sub_write_direct(ps_sub_t *sub)
{
    struct iovec vec[PS_SUB_IOV + 2];
    char hex[PS_ENC_CHUNK_HEAD];
    apr_size_t total = 0, written = 0, left;
    apr_bucket_brigade *rest = sub->c ? sub->tmp : sub->out;
    apr_status_t rv;
    apr_bucket *e;
    int n = sub->self_chunked ? 1 : 0, first = n, i;

    for (e = APR_BRIGADE_FIRST(sub->pending);
         e != APR_BRIGADE_SENTINEL(sub->pending) && n - first < PS_SUB_IOV
         && total < PS_SUB_CHUNK; e = APR_BUCKET_NEXT(e)) {
        const char *data;
        apr_size_t len;
        if (apr_bucket_read(e, &data, &len, APR_NONBLOCK_READ) != APR_SUCCESS) {
            return -1;                  /* (only memory buckets are queued) */
        }
        vec[n].iov_base = (void *)data;
        vec[n].iov_len = len;
        n++;
        total += len;
    }
    if (!total) {                       /* (a 0 chunk would end the body) */
        while (first < n--) {
            apr_bucket_delete(APR_BRIGADE_FIRST(sub->pending));
        }
        return 0;
    }
    if (sub->self_chunked) {
        vec[0].iov_base = hex;
        vec[0].iov_len = ps_enc_chunk_head(hex, (apr_uint64_t)total);
        vec[n].iov_base = "\r\n";
        vec[n].iov_len = 2;
        n++;
    }
    rv = ps_sub_sendv(sub, vec, n, &written);
    if (rv != APR_SUCCESS && !APR_STATUS_IS_EAGAIN(rv)) {
        return -1;
    }
    /* the unwritten tail, framing included, is kept framed */
    for (i = 0; i < n; i++) {
        if (written >= vec[i].iov_len) {
            written -= vec[i].iov_len;
            continue;
        }
        left = vec[i].iov_len - written;
        APR_BRIGADE_INSERT_TAIL(rest, apr_bucket_heap_create(
            (const char *)vec[i].iov_base + written, left, NULL, sub->ba));
        written = 0;
    }
    for (i = first; i < n - (sub->self_chunked ? 1 : 0); i++) {
        apr_bucket_delete(APR_BRIGADE_FIRST(sub->pending));
    }
    sub->pending_bytes -= total;
    if (sub->c && !APR_BRIGADE_EMPTY(rest)) {
        rv = ap_pass_brigade(sub->c->output_filters, rest);
        apr_brigade_cleanup(rest);
        if (rv != APR_SUCCESS) {
            return -1;
        }
    }
    return 0;
}

/* Detached: write framed bytes the socket left last time (sub->out). */
static int ps_sub_write_out(ps_sub_t *sub)
{
    struct iovec vec[PS_SUB_IOV];
    apr_size_t written = 0;
    apr_status_t rv;
    apr_bucket *e;
    int n = 0;

    for (e = APR_BRIGADE_FIRST(sub->out);
         e != APR_BRIGADE_SENTINEL(sub->out) && n < PS_SUB_IOV;
         e = APR_BUCKET_NEXT(e)) {
        const char *data;
        apr_size_t len;
        if (apr_bucket_read(e, &data, &len, APR_NONBLOCK_READ) != APR_SUCCESS) {
            return -1;
        }
        vec[n].iov_base = (void *)data;
        vec[n].iov_len = len;
        n++;
    }
    rv = ps_sub_sendv(sub, vec, n, &written);
    if (rv != APR_SUCCESS && !APR_STATUS_IS_EAGAIN(rv)) {
        return -1;
    }
    while (written) {
        e = APR_BRIGADE_FIRST(sub->out);
        if (e->length > written) {
            apr_bucket_split(e, written);       /* e: the written part */
        }
        written -= e->length;
        apr_bucket_delete(e);
    }
    return 0;
}

/* Detached TLS: one record's worth of the framed bytes in sub->out,
 * always from its head: after a write that wanted to wait, OpenSSL holds
 * the record it made and wants at least the same bytes offered again. */
#define PS_SUB_TLS_RECORD   (16 * 1024)

static int ps_sub_write_tls(ps_sub_t *sub)
{
    char buf[PS_SUB_TLS_RECORD];

    while (!APR_BRIGADE_EMPTY(sub->out)) {
        apr_size_t len = 0, done;
        apr_status_t rv;
        apr_bucket *e;
        int ww = 0;

        for (e = APR_BRIGADE_FIRST(sub->out);
             e != APR_BRIGADE_SENTINEL(sub->out) && len < sizeof(buf);
             e = APR_BUCKET_NEXT(e)) {
            const char *data;
            apr_size_t n;
            if (apr_bucket_read(e, &data, &n, APR_NONBLOCK_READ) != APR_SUCCESS) {
                return -1;
            }
            n = n < sizeof(buf) - len ? n : sizeof(buf) - len;
            memcpy(buf + len, data, n);
            len += n;
        }
        done = len;
        rv = ps_tls_write(sub->tls, buf, &done, &ww);
        if (APR_STATUS_IS_EAGAIN(rv)) {
            return 0;
        }
        if (rv != APR_SUCCESS) {
            return -1;
        }
        while (done) {
            e = APR_BRIGADE_FIRST(sub->out);
            if (e->length > done) {
                apr_bucket_split(e, done);
            }
            done -= e->length;
            apr_bucket_delete(e);
        }
    }
    return 0;
}

/* Detached TLS: up to PS_SUB_CHUNK pending bytes move to sub->out, framed. */
static void ps_sub_frame_out(ps_sub_t *sub)
{
    apr_bucket *after, *e;
    apr_size_t moved = 0;
    char hex[PS_ENC_CHUNK_HEAD];

    apr_brigade_partition(sub->pending, PS_SUB_CHUNK, &after);
    while ((e = APR_BRIGADE_FIRST(sub->pending)) != after) {
        APR_BUCKET_REMOVE(e);
        moved += e->length;
        APR_BRIGADE_INSERT_TAIL(sub->tmp, e);
    }
    sub->pending_bytes -= moved;
    if (sub->self_chunked && moved) {
        apr_size_t n = ps_enc_chunk_head(hex, (apr_uint64_t)moved);
        APR_BRIGADE_INSERT_TAIL(sub->out, apr_bucket_heap_create(
            hex, n, NULL, sub->ba));
    }
    APR_BRIGADE_CONCAT(sub->out, sub->tmp);
    if (sub->self_chunked && moved) {
        APR_BRIGADE_INSERT_TAIL(sub->out, apr_bucket_immortal_create(
            "\r\n", 2, sub->ba));
    }
}

/* Detached: what ps_sub_pump() does, with sub->out for the core filter. */
static int ps_sub_pump_detached(ps_sub_t *sub)
{
    for (;;) {
        if (sub->aborted) {
            return -1;
        }
        if (!APR_BRIGADE_EMPTY(sub->out)) {
            if ((sub->tls ? ps_sub_write_tls(sub) : ps_sub_write_out(sub)) < 0) {
                return -1;
            }
            if (!APR_BRIGADE_EMPTY(sub->out)) {
                ps_sub_want_write(sub, 1);
                return 0;
            }
        }
        if (APR_BRIGADE_EMPTY(sub->pending)) {
            ps_sub_want_write(sub, 0);
            return 0;
        }
        if (sub->tls) {
            ps_sub_frame_out(sub);
        }
        else if (ps_sub_write_direct(sub) < 0) {
            return -1;
        }
    }
}

/* HTTP/2: pending bytes go to the relay, the h2 worker writes them;
 * pending_bytes becomes what it has not taken yet (its backlog). */
static int ps_sub_pump_h2(ps_sub_t *sub)
{
    apr_bucket *e;
    apr_size_t backlog = ps_h2_relay_backlog(sub->relay);

    while ((e = APR_BRIGADE_FIRST(sub->pending))
           != APR_BRIGADE_SENTINEL(sub->pending)) {
        const char *data;
        apr_size_t len;
        if (apr_bucket_read(e, &data, &len, APR_NONBLOCK_READ) != APR_SUCCESS
            || (backlog = ps_h2_relay_push(sub->relay, data, len))
               == (apr_size_t)-1) {
            return -1;
        }
        apr_bucket_delete(e);
    }
    sub->pending_bytes = backlog;
    return 0;
}

/* Hand pending bytes to the filters until done or the socket is full.
 * Returns -1 when the connection failed. */
static int ps_sub_pump(ps_sub_t *sub)
{
    conn_rec *c = sub->c;

    if (sub->relay) {
        return ps_sub_pump_h2(sub);
    }
    if (!c) {
        return ps_sub_pump_detached(sub);
    }
    for (;;) {
        apr_bucket *after, *e;
        apr_size_t moved = 0;
        apr_status_t rv;

        if (c->aborted) {
            return -1;
        }
        if (c->data_in_output_filters) {
            if (ps_conn_write_pending(c) != APR_SUCCESS || c->aborted) {
                return -1;
            }
            if (c->data_in_output_filters) {
                ps_sub_want_write(sub, 1);
                return 0;
            }
        }
        if (APR_BRIGADE_EMPTY(sub->pending)) {
            ps_sub_want_write(sub, 0);
            return 0;
        }
        if (!sub->r && !c->output_filters->next) {
            if (ps_sub_write_direct(sub) < 0) {
                return -1;
            }
            continue;
        }
        apr_brigade_partition(sub->pending, PS_SUB_CHUNK, &after);
        while ((e = APR_BRIGADE_FIRST(sub->pending)) != after) {
            APR_BUCKET_REMOVE(e);
            moved += e->length;
            APR_BRIGADE_INSERT_TAIL(sub->tmp, e);
        }
        sub->pending_bytes -= moved;
        if (sub->self_chunked && moved) {
            /* the request (and its CHUNK filter) is gone: frame it here */
            char hex[PS_ENC_CHUNK_HEAD];
            apr_size_t n = ps_enc_chunk_head(hex, (apr_uint64_t)moved);
            APR_BRIGADE_INSERT_HEAD(sub->tmp, apr_bucket_heap_create(
                hex, n, NULL, sub->ba));
            APR_BRIGADE_INSERT_TAIL(sub->tmp, apr_bucket_immortal_create(
                "\r\n", 2, sub->ba));
        }
        rv = ap_pass_brigade(sub->r ? sub->r->output_filters
                                    : c->output_filters, sub->tmp);
        apr_brigade_cleanup(sub->tmp);
        if (rv != APR_SUCCESS) {
            return -1;
        }
    }
}

/* ---- timers ---------------------------------------------------------------- */

static void ps_sub_set_deadline(ps_sub_t *sub)
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
static void ps_sub_fail(ps_sub_t *sub)
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

/* ENDING with nothing left to pass: close the response. */
static void ps_sub_finish_response(ps_sub_t *sub)
{
    request_rec *r = sub->r;

    if (sub->tp->http_body && !sub->raw_head) {
        ap_finalize_request_protocol(r);      /* EOS: last chunk */
    }
    psc_conn_end_request(r);                  /* EOR: logs, frees r */
    sub->r = NULL;
    sub->state = PS_SUBST_FLUSHING;
}

static void ps_sub_start_linger(ps_sub_t *sub, apr_time_t now)
{
    /* detached TLS: close_notify first (the loop owns the session) */
    if (sub->tls && APR_STATUS_IS_EAGAIN(ps_tls_close_notify(sub->tls))) {
        ps_sub_want_write(sub, 1);
        return;
    }
    psc_conn_linger(sub->sock);
    sub->state = PS_SUBST_LINGER;
    sub->linger_at = now + PS_SUB_LINGER;
    ps_sub_want_write(sub, 0);
    ps_sub_set_deadline(sub);
}

/* 1 when only httpd's HTTP protocol filters stand between the stream's
 * request and its connection (*chunked: CHUNK is one of them): they have
 * nothing left to do once the head is out, so the request may end.  A
 * content filter (DEFLATE, ...) or a head not written yet keeps it. */
static int ps_sub_plain_filters(const ps_sub_t *sub, int *chunked)
{
    ap_filter_t *f;

    *chunked = 0;
    for (f = sub->r->output_filters; f && f != sub->c->output_filters;
         f = f->next) {
        const char *name = f->frec->name;
        if (!strcasecmp(name, "CHUNK")) {
            *chunked = 1;
        }
        else if (strcasecmp(name, "HTTP_OUTERROR")
                 && strcasecmp(name, "CONTENT_LENGTH")
                 && strcasecmp(name, "BYTERANGE")) {
            return 0;
        }
    }
    return f != NULL;
}

/* Streaming kinds: end the request while the stream goes on.  An idle
 * subscriber then holds c->pool and its bucket allocator only: r->pool
 * (request_rec, header tables, merged configs: 8-16 KB per subscriber)
 * goes back with the EOR bucket, the access log line is written now (the
 * status and head of the stream), and the body's chunked framing is done
 * by ps_sub_pump().  Only once the worker has left the connection
 * (c->sbh NULL, psc_item_worker_left()): ap_process_request_after_handler()
 * touches c->sbh. */
static void ps_sub_end_request(ps_sub_t *sub, apr_time_t now)
{
    conn_rec *c = sub->c;
    int chunked;

    if (!psc_item_worker_left(&sub->item, now)) {
        sub->end_req_at = now + PS_SUB_END_REQ;
        return;
    }
    sub->end_req_at = 0;
    if (!sub->r || c->aborted || !ps_sub_plain_filters(sub, &chunked)) {
        if (sub->r) {
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, sub->r, "PS0080: "
                          "stream keeps its request (content filters)");
        }
        return;
    }
    /* the merged per-directory config lives in r->pool: keep a copy */
    sub->d = apr_pmemdup(c->pool, sub->d, sizeof(*sub->d));
    psc_conn_end_request(sub->r);
    sub->r = NULL;
    sub->self_chunked = chunked;
    /* The core filter may still hold the EOR bucket (r->pool goes when it
     * is destroyed): have it written now.  Only then may the allocator keep
     * free blocks again (ps_sub_wait() set none, so that r->pool goes to
     * malloc rather than into the connection's cache). */
    if (c->data_in_output_filters) {
        ps_conn_write_pending(c);
    }
    if (!c->data_in_output_filters) {
        psc_conn_max_free(c, PS_SUB_MAX_FREE);
    }
    ps_reactor_freed(sub->child->reactor);
    if (c->data_in_input_filters) {
        ps_sub_read_again(sub);
    }
    sub->detach_at = now + PS_SUB_DETACH_AFTER;
}

/* A waiting long-poll ends its request so that it may leave httpd: the
 * headers its answer needs are kept as text, the request is logged (200,
 * no body yet) and freed.  1: done; 0: not yet (the worker has not left
 * the connection); -1: never (a content filter would be skipped). */
static int ps_sub_lp_end_request(ps_sub_t *sub, apr_time_t now)
{
    conn_rec *c = sub->c;
    request_rec *r = sub->r;

    if (!psc_item_worker_left(&sub->item, now)) {
        return 0;
    }
    if (sub->fallback || sub->relay || c->aborted || sub->state != PS_SUBST_ACTIVE
        || !APR_BRIGADE_EMPTY(sub->pending) || !ps_lphead_plain_filters(r)) {
        return -1;
    }
    sub->d = apr_pmemdup(c->pool, sub->d, sizeof(*sub->d));
    sub->lp_head = ps_lphead_snapshot(r, c->pool);
    sub->lp_ctype = sub->callback ? "application/javascript"
                    : r->content_type ? apr_pstrdup(c->pool, r->content_type)
                    : "text/plain";
    if (sub->callback) {
        sub->callback = apr_pstrdup(c->pool, sub->callback);
    }
    psc_conn_end_request(r);                  /* EOR: logs, frees r */
    sub->r = NULL;
    if (c->data_in_output_filters) {
        ps_conn_write_pending(c);
    }
    ps_reactor_freed(sub->child->reactor);
    return 1;
}

/* 1: sub may leave httpd now; 0: not yet (bytes or events in flight);
 * -1: never (other connection filters, TLS that cannot be taken over, a
 * request still open).  On TLS, *tls is set: mod_ssl's filters are the
 * only ones allowed besides core's, and its session must be free to go. */
static int ps_sub_can_detach(ps_sub_t *sub, apr_time_t now, int *tls)
{
    conn_rec *c = sub->c;
    const char *why = "";

    *tls = 0;
    if (!c || sub->fallback || sub->r
        || !sub->tp->waits
        || sub->state != PS_SUBST_ACTIVE || c->aborted
        || !psc_conn_plain_filters(c, ps_tls_conn_is_tls(c), tls)) {
        return -1;
    }
    if (*tls) {
        switch (ps_tls_check(c, &why)) {
        case PS_TLS_OK:
            break;
        case PS_TLS_BUSY:
            return 0;
        default:
            if (sub->detach_tries == 0) {
                ps_sub_log(sub, APLOG_DEBUG, 0, "PS0160: TLS stream stays in "
                           "httpd: %s", why);
            }
            return -1;
        }
    }
    if (c->data_in_output_filters || c->data_in_input_filters
        || !APR_BRIGADE_EMPTY(sub->pending) || !APR_BRIGADE_EMPTY(sub->tmp)
        || sub->read_again || sub->batched || sub->want_write
        || !psc_item_worker_gone(&sub->item, now)) {
        return 0;
    }
    return 1;
}

/* Where the copies of ps_sub_detach() go, in one block after the struct. */
typedef struct ps_sub_block_t {
    char *p;
} ps_sub_block_t;

static void *ps_block_take(ps_sub_block_t *b, apr_size_t len)
{
    void *at = b->p;

    b->p += APR_ALIGN(len, 16);
    return at;
}

static const char *ps_block_copy(ps_sub_block_t *b, const char *src,
                                 apr_size_t len)
{
    char *at = ps_block_take(b, len + 1);

    memcpy(at, src, len);
    at[len] = '\0';
    return at;
}

static apr_bucket_brigade *ps_block_brigade(ps_sub_block_t *b, apr_pool_t *p,
                                            apr_bucket_alloc_t *ba)
{
    apr_bucket_brigade *bb = ps_block_take(b, sizeof(*bb));

    /* no apr_brigade_create(): that allocates from p for good; this one
     * lives and dies with the block (ps_sub_release empties it) */
    bb->p = p;
    bb->bucket_alloc = ba;
    APR_RING_INIT(&bb->list, apr_bucket, link);
    return bb;
}

static apr_size_t ps_sub_block_size(const ps_sub_t *sub)
{
    apr_size_t n = APR_ALIGN(sizeof(*sub), 16)
                   + APR_ALIGN(sizeof(*sub->d), 16)
                   + 3 * APR_ALIGN(sizeof(apr_bucket_brigade), 16)
                   + APR_ALIGN(sub->nchan * sizeof(*sub->chans), 16)
                   + APR_ALIGN(strlen(sub->client_ip) + 1, 16);
    int i;

    for (i = 0; i < sub->nchan; i++) {
        n += APR_ALIGN(sub->chans[i].len + 1, 16);
    }
    if (sub->ws) {
        n += APR_ALIGN(ps_ws_parser_size(), 16);
    }
    if (sub->es_footer) {
        n += APR_ALIGN(sub->es_footer_len + 1, 16);
    }
    if (sub->callback) {
        n += APR_ALIGN(strlen(sub->callback) + 1, 16);
    }
    if (sub->lp_head) {
        n += APR_ALIGN(strlen(sub->lp_head) + 1, 16)
             + APR_ALIGN(strlen(sub->lp_ctype) + 1, 16);
    }
    return n;
}

/* The copy of sub in one malloc()ed block, on the socket ns. */
static ps_sub_t *ps_sub_copy_out(ps_sub_t *sub, apr_socket_t *ns)
{
    ps_reactor_t *re = sub->child->reactor;
    ps_sub_block_t b;
    ps_sub_t *n;
    ps_dir_conf_t *d;
    int i;

    b.p = malloc(ps_sub_block_size(sub));
    if (!b.p) {
        return NULL;
    }
    n = ps_block_take(&b, sizeof(*n));
    *n = *sub;
    n->c = NULL;
    n->sock = ns;
    n->ba = ps_reactor_bucket_alloc(re);
    d = ps_block_take(&b, sizeof(*d));
    *d = *sub->d;
    n->d = d;
    n->pending = ps_block_brigade(&b, sub->child->pool, n->ba);
    n->tmp = ps_block_brigade(&b, sub->child->pool, n->ba);
    n->out = ps_block_brigade(&b, sub->child->pool, n->ba);
    n->chans = ps_block_take(&b, sub->nchan * sizeof(*n->chans));
    for (i = 0; i < sub->nchan; i++) {
        n->chans[i] = sub->chans[i];
        n->chans[i].id = ps_block_copy(&b, sub->chans[i].id, sub->chans[i].len);
    }
    n->client_ip = ps_block_copy(&b, sub->client_ip, strlen(sub->client_ip));
    if (sub->ws) {
        n->ws = ps_block_take(&b, ps_ws_parser_size());
        ps_ws_parser_move(n->ws, sub->ws);
    }
    if (sub->es_footer) {
        n->es_footer = ps_block_copy(&b, sub->es_footer, sub->es_footer_len);
    }
    if (sub->callback) {
        n->callback = ps_block_copy(&b, sub->callback, strlen(sub->callback));
    }
    if (sub->lp_head) {
        n->lp_head = ps_block_copy(&b, sub->lp_head, strlen(sub->lp_head));
        n->lp_ctype = ps_block_copy(&b, sub->lp_ctype, strlen(sub->lp_ctype));
    }
    n->pfd.desc.s = ns;
    n->pfd.p = sub->child->pool;
    n->pfd.client_data = n;
    return n;
}

/* An idle stream on plain TCP leaves httpd for good: the loop keeps a
 * dup() of the socket and the subscriber in one block of its own, and
 * the connection is given back to the MPM as ps_sub_release() does, with
 * the socket closed (not shut down: the dup keeps it open).  What is left
 * per subscriber is ~1 KB instead of c->pool and its bucket allocator.
 * Returns the subscriber as it now is (sub itself is gone when moved). */
static ps_sub_t *ps_sub_detach(ps_sub_t *sub, apr_time_t now)
{
    ps_reactor_t *re = sub->child->reactor;
    conn_rec *c = sub->c;
    apr_os_sock_t nfd;
    apr_socket_t *ns;
    ps_sub_t *n;
    int tls, ok;

    if (sub->r && !sub->tp->stream) {   /* a long-poll */
        ok = ps_sub_lp_end_request(sub, now);
        sub->detach_at = ok < 0 ? 0 : now + PS_SUB_END_REQ;
        return sub;                     /* leaves on the next turn */
    }
    ok = ps_sub_can_detach(sub, now, &tls);

    sub->detach_at = 0;
    if (ok <= 0) {
        if (!ok && ++sub->detach_tries < PS_SUB_DETACH_TRIES) {
            sub->detach_at = now + PS_SUB_DETACH_RETRY;
        }
        return sub;
    }
    ns = ps_reactor_socket_dup(re, sub->sock, &nfd);
    n = ns ? ps_sub_copy_out(sub, ns) : NULL;
    if (n && tls) {
        /* the last step that may fail: after it, mod_ssl has let go */
        n->tls = ps_tls_take(c, nfd);
        if (!n->tls) {
            if (sub->ws) {
                ps_ws_parser_move(sub->ws, n->ws);
            }
            free(n);
            n = NULL;
        }
    }
    if (!n) {                           /* (EMFILE) it stays with httpd */
        if (ns) {
            ps_reactor_socket_close(re, ns);
        }
        return sub;
    }
    ps_sub_moved(sub, n);
    ap_log_cerror(APLOG_MARK, APLOG_TRACE1, 0, c, "PS0081: stream detached "
                  "from httpd%s", tls ? " (TLS session taken over)" : "");
    psc_conn_release(c, sub->sock);              /* sub with it */
    ps_reactor_freed(re);
    return n;
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

/* Client bytes in a brigade, to the transport's input. */
static void ps_sub_input(ps_sub_t *sub, apr_bucket_brigade *bb, apr_time_t now)
{
    apr_bucket *b;

    for (b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb)
         && sub->state == PS_SUBST_ACTIVE; b = APR_BUCKET_NEXT(b)) {
        const char *data;
        apr_size_t len;
        if (!APR_BUCKET_IS_METADATA(b)
            && apr_bucket_read(b, &data, &len, APR_BLOCK_READ) == APR_SUCCESS) {
            sub->tp->input(sub, data, len, now);
        }
    }
}

/* Bytes read from one subscriber per loop turn before others get a go. */
#define PS_SUB_READ_BUDGET (256 * 1024)

static void ps_sub_closed_by_client(ps_sub_t *sub, apr_status_t rv)
{
    ps_sub_log(sub, APLOG_DEBUG, rv, "PS0024: subscriber connection closed "
               "by the client");
    ps_sub_fail(sub);
}

/* Detached: the socket itself, no filters in between. */
static void ps_sub_read_detached(ps_sub_t *sub, apr_time_t now)
{
    char buf[8192];
    apr_size_t total = 0;

    for (;;) {
        apr_size_t len = sizeof(buf);
        int ww = 0;
        apr_status_t rv = sub->tls ? ps_tls_read(sub->tls, buf, &len, &ww)
                                   : apr_socket_recv(sub->sock, buf, &len);
        if (APR_STATUS_IS_EAGAIN(rv)) {
            return;
        }
        if (rv != APR_SUCCESS || !len) {
            ps_sub_closed_by_client(sub, rv);
            return;
        }
        if (sub->tp->input && sub->state == PS_SUBST_ACTIVE) {
            sub->tp->input(sub, buf, len, now);
        }
        total += len;
        if (total >= PS_SUB_READ_BUDGET && sub->state != PS_SUBST_DONE) {
            ps_sub_read_again(sub);
            return;
        }
    }
}

/* Read what the client sends while we wait: WebSocket frames, otherwise
 * nothing is expected.  EOF or an error means it went away. */
static void ps_sub_read(ps_sub_t *sub, apr_time_t now)
{
    conn_rec *c = sub->c;
    apr_off_t total = 0;

    if (!c) {
        ps_sub_read_detached(sub, now);
        return;
    }

    /* Read until the filters have nothing more: the core filter (and
     * mod_ssl) keep bytes they already took from the socket, which no
     * POLLIN would announce again.  A non-blocking read with nothing there
     * gives success and an empty brigade; the end comes as APR_EOF. */
    for (;;) {
        apr_off_t len = 0;
        apr_status_t rv = ap_get_brigade(c->input_filters, sub->tmp,
                                         AP_MODE_READBYTES, APR_NONBLOCK_READ,
                                         8192);
        if (APR_STATUS_IS_EAGAIN(rv)) {
            break;
        }
        if (rv != APR_SUCCESS) {
            apr_brigade_cleanup(sub->tmp);
            ps_sub_closed_by_client(sub, rv);
            return;
        }
        apr_brigade_length(sub->tmp, 0, &len);
        if (APR_BRIGADE_EMPTY(sub->tmp)) {
            break;
        }
        if (sub->tp->input && sub->state == PS_SUBST_ACTIVE) {
            ps_sub_input(sub, sub->tmp, now);
        }
        apr_brigade_cleanup(sub->tmp);
        total += len;
        if (total >= PS_SUB_READ_BUDGET && sub->state != PS_SUBST_DONE) {
            ps_sub_read_again(sub);
            break;
        }
    }
    apr_brigade_cleanup(sub->tmp);
}

/* Lingering: the write side is shut, read until EOF or the deadline. */
static void ps_sub_drain(ps_sub_t *sub)
{
    if (psc_conn_drain(sub->sock)) {
        ps_sub_retire(sub);
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

/* A detached subscriber: its block, its socket (back to the loop's spares). */
static void ps_sub_release_detached(ps_sub_t *sub)
{
    ps_tls_free(sub->tls);
    apr_brigade_cleanup(sub->pending);
    apr_brigade_cleanup(sub->tmp);
    apr_brigade_cleanup(sub->out);
    ps_reactor_socket_close(sub->child->reactor, sub->sock);
    if (sub->ws) {
        ps_ws_parser_release(sub->ws);
    }
    free(sub);
}

void ps_sub_release(ps_sub_t *sub)
{
    conn_rec *c = sub->c;

    if (!c) {
        ps_sub_release_detached(sub);
        return;
    }
    if (sub->fallback) {
        apr_size_t one = 1;
        if (sub->relay) {               /* the loop's bucket allocator */
            apr_brigade_cleanup(sub->pending);
            apr_brigade_cleanup(sub->tmp);
        }
        apr_file_write(sub->done_out, "x", &one);  /* last touch of sub */
        return;
    }
    if (sub->r) {
        psc_conn_end_request(sub->r);
        sub->r = NULL;
    }
    psc_conn_release(c, sub->sock);
}
