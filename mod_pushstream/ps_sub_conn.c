/* ps_sub_conn.c - a subscriber's connection (see ps_sub.c): writing
 * without blocking (to the filters, straight to the socket once the
 * request has ended, through the loop's TLS session once detached, to the
 * h2 relay), reading what the client sends, ending the request early,
 * ending the response, lingering, and releasing the connection. */

#include <stdlib.h>
#include <sys/uio.h>

#include <httpd.h>
#include <http_connection.h>
#include <http_protocol.h>
#include <http_request.h>
#include <http_log.h>
#include <util_filter.h>
#include <apr_strings.h>

#include "ps_sub_int.h"
#include "ps_h2.h"
#include "ps_tls.h"
#include "psc_conn.h"

APLOG_USE_MODULE(pushstream);

#define PS_SUB_CHUNK        (16 * 1024)
#define PS_SUB_LINGER       apr_time_from_sec(2)
/* Free memory a stream's allocator may keep once its request has ended:
 * a node or two for the heap buckets of rendered messages (with none,
 * each would be a malloc() + free() that may trim the heap). */
#define PS_SUB_MAX_FREE     (16 * 1024)

/* ---- writing ----------------------------------------------------------------- */

#define PS_SUB_IOV          64

/* writev without blocking (the socket keeps its timeout for httpd). */
static apr_status_t ps_sub_sendv(ps_sub_t *sub, const struct iovec *vec,
                                 int n, apr_size_t *written)
{
    apr_interval_time_t tmo;
    apr_status_t rv;

    if (!sub->c) {                      /* ours: timeout 0 already */
        return apr_socket_sendv(ps_sub_sock(sub), vec, n, written);
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

/* Up to PS_SUB_CHUNK pending bytes move to sub->tmp, framed as one chunk
 * when the request (and its CHUNK filter) is gone (sub->self_chunked). */
static void ps_sub_take_chunk(ps_sub_t *sub)
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
        APR_BRIGADE_INSERT_HEAD(sub->tmp, apr_bucket_heap_create(
            hex, n, NULL, sub->ba));
        APR_BRIGADE_INSERT_TAIL(sub->tmp, apr_bucket_immortal_create(
            "\r\n", 2, sub->ba));
    }
}

/* Detached TLS: up to PS_SUB_CHUNK pending bytes move to sub->out, framed. */
static void ps_sub_frame_out(ps_sub_t *sub)
{
    ps_sub_take_chunk(sub);
    APR_BRIGADE_CONCAT(sub->out, sub->tmp);
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
int ps_sub_pump(ps_sub_t *sub)
{
    conn_rec *c = sub->c;

    if (sub->relay) {
        return ps_sub_pump_h2(sub);
    }
    if (!c) {
        return ps_sub_pump_detached(sub);
    }
    for (;;) {
        apr_status_t rv;

        if (c->aborted) {
            return -1;
        }
        if (c->data_in_output_filters) {
            if (psc_conn_write_pending(c) != APR_SUCCESS || c->aborted) {
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
        ps_sub_take_chunk(sub);
        rv = ap_pass_brigade(sub->r ? sub->r->output_filters
                                    : c->output_filters, sub->tmp);
        apr_brigade_cleanup(sub->tmp);
        if (rv != APR_SUCCESS) {
            return -1;
        }
    }
}

/* ---- ending ------------------------------------------------------------------ */

/* ENDING with nothing left to pass: close the response. */
void ps_sub_finish_response(ps_sub_t *sub)
{
    request_rec *r = sub->r;

    if (sub->tp->http_body && !sub->raw_head) {
        ap_finalize_request_protocol(r);      /* EOS: last chunk */
    }
    psc_conn_end_request(r);                  /* EOR: logs, frees r */
    sub->r = NULL;
    sub->state = PS_SUBST_FLUSHING;
}

void ps_sub_start_linger(ps_sub_t *sub, apr_time_t now)
{
    /* detached TLS: close_notify first (the loop owns the session) */
    if (sub->tls && APR_STATUS_IS_EAGAIN(ps_tls_close_notify(sub->tls))) {
        ps_sub_want_write(sub, 1);
        return;
    }
    /* still in httpd: the end through its filters (mod_ssl's close_notify) */
    if (sub->c && !sub->relay && !sub->conn_ended) {
        sub->conn_ended = 1;
        if (psc_conn_end(sub->c)) {
            ps_sub_want_write(sub, 1);      /* FLUSHING until it is out */
            return;
        }
    }
    psc_conn_linger(ps_sub_sock(sub));
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
void ps_sub_end_request(ps_sub_t *sub, apr_time_t now)
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
        psc_conn_write_pending(c);
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

/* ---- reading ---------------------------------------------------------------- */

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
        apr_status_t rv = sub->tls
                          ? ps_tls_read(sub->tls, buf, &len, &ww)
                          : apr_socket_recv(ps_sub_sock(sub), buf, &len);
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
void ps_sub_read(ps_sub_t *sub, apr_time_t now)
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
void ps_sub_drain(ps_sub_t *sub)
{
    if (psc_conn_drain(ps_sub_sock(sub))) {
        ps_sub_retire(sub);
    }
}

/* ---- releasing ---------------------------------------------------------------- */

/* A detached subscriber: its block, its descriptor. */
static void ps_sub_release_detached(ps_sub_t *sub)
{
    ps_tls_free(sub->tls);
    apr_brigade_cleanup(sub->pending);
    apr_brigade_cleanup(sub->tmp);
    apr_brigade_cleanup(sub->out);
    apr_socket_close(ps_sub_sock(sub));
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
