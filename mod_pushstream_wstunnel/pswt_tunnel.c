/* pswt_tunnel.c - forwarding bytes both ways without blocking.
 *
 * Reading: nonblocking reads through the connection's input filters (so
 * mod_ssl decrypts), repeated until the filters have nothing more, since
 * mod_ssl may hold decrypted bytes the socket no longer signals.
 *
 * Writing: what is read is copied into a bucket of the other connection's
 * allocator (the two connections end at different times) and passed to its
 * output filters without a FLUSH bucket (a FLUSH makes the core filter
 * block); the core filter is then asked to write what it holds with a NULL
 * brigade.  While a side still holds output, the other side is not read:
 * back-pressure goes to the sender through TCP, and no tunnel ever buffers
 * more than one read.
 *
 * Ending: when either side closes, fails or the tunnel idles out, reading
 * stops, a WebSocket close frame is sent to whoever did not see one (if the
 * stream is between frames), the last bytes are written, the back end
 * connection is destroyed, the request is finished (logged), the client
 * gets TLS close_notify and FIN, is drained briefly, and its connection is
 * released on a later turn of the loop.
 *
 * Detached (pswt_detach.c, side->c NULL): the same steps on raw sockets
 * (or the TLS sessions taken from mod_ssl); the request was ended when the
 * tunnel left httpd. */

#include <stdarg.h>
#include <string.h>

#include <httpd.h>
#include <http_connection.h>
#include <http_core.h>
#include <http_log.h>
#include <http_request.h>
#include <util_filter.h>
#include <apr_strings.h>

#include "pswt_tunnel.h"
#include "psc_conn.h"

APLOG_USE_MODULE(pushstream_wstunnel);

#define PSWT_READ_SIZE       (16 * 1024)
#define PSWT_READS_PER_PASS  8
#define PSWT_CLOSE_FLUSH     apr_time_from_sec(5)
#define PSWT_LINGER          apr_time_from_sec(2)

static void pswt_begin_close(pswt_tunnel_t *t, int end, apr_time_t now);
static void pswt_update(pswt_tunnel_t *t);
static void pswt_open_deadline(pswt_tunnel_t *t);
static void pswt_side_on_io(psc_pollee_t *pe, apr_int16_t ev, apr_time_t now);
static void pswt_tunnel_again(pswt_tunnel_t *t, apr_time_t now);

const char *pswt_end_name(int end)
{
    switch (end) {
    case PSWT_END_CLIENT_CLOSED:  return "client closed";
    case PSWT_END_CLIENT_ERROR:   return "client connection error";
    case PSWT_END_BACKEND_CLOSED: return "back end closed";
    case PSWT_END_BACKEND_ERROR:  return "back end connection error";
    case PSWT_END_IDLE:           return "idle timeout";
    case PSWT_END_SHUTDOWN:       return "server stopping";
    case PSWT_END_TOO_BIG:        return "message too big";
    case PSWT_END_PROTOCOL:       return "WebSocket protocol error";
    default:                      return "open";
    }
}

/* Log about a tunnel: on its connection while httpd has one, else on its
 * server with the client's address. */
static void pswt_tlog(const pswt_tunnel_t *t, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void pswt_tlog(const pswt_tunnel_t *t, int level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    server_rec *s = t->c ? t->c->base_server : t->s;

    if (!APLOG_MODULE_IS_LEVEL(s, APLOG_MODULE_INDEX, level)) {
        return;
    }
    va_start(ap, fmt);
    apr_vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (t->c) {
        ap_log_cerror(APLOG_MARK, level, 0, t->c, "%s", msg);
    }
    else {
        ap_log_error(APLOG_MARK, level, 0, s, "[client %s] %s", t->client_ip,
                     msg);
    }
}

/* ---- setup (handler thread) ------------------------------------------------ */

static void pswt_side_init(pswt_side_t *s, pswt_tunnel_t *t, conn_rec *c,
                           apr_socket_t *sock, apr_pool_t *p, int is_client)
{
    s->t = t;
    s->c = c;
    s->sock = sock;
    s->is_client = is_client;
    s->in = apr_brigade_create(p, c->bucket_alloc);
    s->out = apr_brigade_create(p, c->bucket_alloc);
    pswt_ws_track_init(&s->tr);
    s->pfd.desc_type = APR_POLL_SOCKET;
    s->pfd.desc.s = sock;
    s->pfd.client_data = s;
    s->pfd.p = p;
    s->pollee.on_io = pswt_side_on_io;
}

void pswt_tunnel_init(pswt_tunnel_t *t, request_rec *r, apr_pool_t *be_pool,
                      proxy_conn_rec *be)
{
    conn_rec *c = r->connection, *bc = be->connection;

    t->r = r;
    t->c = c;
    t->be_pool = be_pool;
    t->be = be;
    t->started = apr_time_now();
    t->sent_cl = t->sent_bk = -1;
    t->s = c->base_server;
    t->client_ip = c->client_ip;
    pswt_side_init(&t->cl, t, c, ap_get_conn_socket(c), c->pool, 1);
    pswt_side_init(&t->bk, t, bc, be->sock, be_pool, 0);
    t->cl.peer = &t->bk;
    t->bk.peer = &t->cl;

    /* from now on only the connections' own filters: no HTTP framing */
    r->output_filters = r->proto_output_filters = c->output_filters;
    r->input_filters = r->proto_input_filters = c->input_filters;
    ap_remove_input_filter_byhandle(c->input_filters, "reqtimeout");
    ap_remove_input_filter_byhandle(bc->input_filters, "reqtimeout");
    /* it would hold small writes until a FLUSH, which never comes */
    ap_remove_output_filter_byhandle(c->output_filters,
                                     "SSL/TLS Coalescing Filter");
    ap_remove_output_filter_byhandle(bc->output_filters,
                                     "SSL/TLS Coalescing Filter");
    c->keepalive = AP_CONN_CLOSE;
    bc->keepalive = AP_CONN_CLOSE;
    apr_socket_timeout_set(t->cl.sock, 0);
    apr_socket_timeout_set(t->bk.sock, 0);
}

/* ---- output ------------------------------------------------------------------ */

static int pswt_pending(const pswt_side_t *s)
{
    return !s->gone && !s->dead
           && (s->c ? s->c->data_in_output_filters : s->pend_len > 0);
}

/* Let the core filter write what it holds, without blocking.  -1: the
 * connection broke. */
static int pswt_flush(pswt_side_t *s)
{
    if (s->gone || s->dead) {
        return -1;
    }
    if (!s->c) {
        return pswt_raw_flush(s);
    }
    if (!s->c->data_in_output_filters) {
        return 0;
    }
    if (psc_conn_write_pending(s->c) != APR_SUCCESS || s->c->aborted) {
        s->dead = 1;
        s->c->aborted = 1;
        return -1;
    }
    return 0;
}

/* Pass len bytes (buf from s's bucket allocator, owned: it is freed with
 * the bucket; otherwise copied). */
static int pswt_send(pswt_side_t *s, char *buf, apr_size_t len, int owned)
{
    apr_bucket_alloc_t *ba;
    apr_status_t rv;

    if (!s->c) {                        /* detached: never owned */
        return pswt_raw_send(s, buf, len);
    }
    ba = s->c->bucket_alloc;
    APR_BRIGADE_INSERT_TAIL(s->out, apr_bucket_heap_create(
        buf, len, owned ? apr_bucket_free : NULL, ba));
    rv = ap_pass_brigade(s->c->output_filters, s->out);
    apr_brigade_cleanup(s->out);
    if (rv != APR_SUCCESS || s->c->aborted) {
        s->dead = 1;
        s->c->aborted = 1;
        return -1;
    }
    return pswt_flush(s);
}

/* A close frame of our own to side to, if the frames it receives are
 * between two frames and it has not been sent a close yet. */
static void pswt_close_to(pswt_tunnel_t *t, pswt_side_t *to, int code,
                          const char *reason)
{
    pswt_side_t *from = to->peer;
    unsigned char key[4];
    char frame[PS_WS_MAX_CLOSE_FRAME + 4];
    apr_size_t len;

    if (to->dead || to->gone || !pswt_ws_at_boundary(&from->tr)
        || from->tr.close_code >= 0) {
        return;
    }
    from->hold_len = 0;           /* a partial header never goes out now */
    if (!to->is_client) {
        /* frames to the back end are a client's: masked */
        apr_generate_random_bytes(key, sizeof(key));
    }
    len = ps_ws_close_frame_masked(frame, code, reason,
                                   reason ? strlen(reason) : 0,
                                   to->is_client ? NULL : key);
    if (pswt_send(to, frame, len, 0) == 0) {
        if (to->is_client) {
            t->sent_cl = code;
        }
        else {
            t->sent_bk = code;
        }
    }
}

/* ---- input ------------------------------------------------------------------- */

static int pswt_end_for(pswt_side_t *s, int error)
{
    if (s->is_client) {
        return error ? PSWT_END_CLIENT_ERROR : PSWT_END_CLIENT_CLOSED;
    }
    return error ? PSWT_END_BACKEND_ERROR : PSWT_END_BACKEND_CLOSED;
}

static int pswt_forward_buf(pswt_tunnel_t *t, pswt_side_t *a, char *buf,
                            apr_size_t total, int owned, apr_time_t now);

/* What a's input brigade holds (len bytes) goes to a's peer. */
static int pswt_forward(pswt_tunnel_t *t, pswt_side_t *a, apr_size_t len,
                        apr_time_t now)
{
    pswt_side_t *b = a->peer;
    apr_size_t got = len;
    char *buf = apr_bucket_alloc(a->hold_len + len, b->c->bucket_alloc);

    memcpy(buf, a->hold, a->hold_len);
    apr_brigade_flatten(a->in, buf + a->hold_len, &got);
    apr_brigade_cleanup(a->in);
    return pswt_forward_buf(t, a, buf, a->hold_len + got, 1, now);
}

/* buf: what a held back plus what was read (total bytes): the whole
 * frames go to a's peer, a partial header is held back again.  owned: buf
 * is from the peer's bucket allocator and goes with the write. */
static int pswt_forward_buf(pswt_tunnel_t *t, pswt_side_t *a, char *buf,
                            apr_size_t total, int owned, apr_time_t now)
{
    pswt_side_t *b = a->peer;
    apr_size_t fwd;
    pswt_ws_verdict_e verdict;

    a->hold_len = 0;
    fwd = pswt_ws_track(&a->tr, (const unsigned char *)buf, total,
                        t->max_message, t->frame_aware, &verdict);
    if (verdict == PSWT_WS_PARTIAL) {
        a->hold_len = total - fwd;
        memcpy(a->hold, buf + fwd, a->hold_len);
    }
    a->bytes += fwd;
    pswt_stats_add(a->is_client ? PSWT_C_BYTES_C2B : PSWT_C_BYTES_B2C, fwd);
    if (fwd) {
        if (pswt_send(b, buf, fwd, owned) < 0) {
            pswt_begin_close(t, pswt_end_for(b, 1), now);
            return -1;
        }
    }
    else if (owned) {
        apr_bucket_free(buf);
    }
    if (verdict == PSWT_WS_TOO_BIG || verdict == PSWT_WS_BROKEN) {
        char what[64];
        if (verdict == PSWT_WS_TOO_BIG) {
            apr_snprintf(what, sizeof(what), "a message over %"
                         APR_UINT64_T_FMT " bytes", t->max_message);
        }
        else {
            apr_cpystrn(what, "a frame that is not WebSocket", sizeof(what));
        }
        pswt_tlog(t, APLOG_INFO, "PSWT0030: tunnel to %s: %s from the %s",
                  t->target, what, a->is_client ? "client" : "back end");
        pswt_begin_close(t, verdict == PSWT_WS_TOO_BIG ? PSWT_END_TOO_BIG
                                                       : PSWT_END_PROTOCOL,
                         now);
        return -1;
    }
    return 0;
}

/* Before each read from a: still open, and its peer took what it had
 * (else a waits: back-pressure). */
static int pswt_may_read(pswt_tunnel_t *t, pswt_side_t *a, apr_time_t now)
{
    pswt_side_t *b = a->peer;

    if (t->state != PSWT_ST_OPEN || a->eof) {
        return 0;
    }
    if (pswt_flush(b) < 0) {
        pswt_begin_close(t, pswt_end_for(b, 1), now);
        return 0;
    }
    if (pswt_pending(b)) {
        a->starved = 1;
        return 0;
    }
    return 1;
}

/* Detached: what pswt_pump() does, on the socket (or TLS session). */
static void pswt_pump_raw(pswt_tunnel_t *t, pswt_side_t *a, apr_time_t now)
{
    char buf[PS_WS_MAX_FRAME_HEADER + PSWT_READ_SIZE];
    int i;

    for (i = 0; i < PSWT_READS_PER_PASS; i++) {
        apr_size_t len = PSWT_READ_SIZE, held = a->hold_len;
        apr_status_t rv;

        if (!pswt_may_read(t, a, now)) {
            return;
        }
        rv = pswt_raw_read(a, buf + held, &len);
        if (APR_STATUS_IS_EAGAIN(rv)) {
            return;
        }
        if (rv != APR_SUCCESS || !len) {
            a->eof = 1;
            pswt_begin_close(t, pswt_end_for(a, !APR_STATUS_IS_EOF(rv)), now);
            return;
        }
        t->last_io = now;
        memcpy(buf, a->hold, held);
        if (pswt_forward_buf(t, a, buf, held + len, 0, now) < 0) {
            return;
        }
    }
    a->again = 1;
    psc_loop_ready(t->loop, &t->item);
}

/* Read from a and forward to its peer until a has nothing more, the peer
 * holds output (back-pressure) or the budget of this turn is used. */
static void pswt_pump(pswt_tunnel_t *t, pswt_side_t *a, apr_time_t now)
{
    int i, empties = 0;

    a->again = 0;
    a->starved = 0;
    if (!a->c) {
        pswt_pump_raw(t, a, now);
        return;
    }
    for (i = 0; i < PSWT_READS_PER_PASS; i++) {
        apr_status_t rv;
        apr_off_t len = 0;
        int eos;

        if (!pswt_may_read(t, a, now)) {
            return;
        }
        rv = ap_get_brigade(a->c->input_filters, a->in, AP_MODE_READBYTES,
                            APR_NONBLOCK_READ, PSWT_READ_SIZE);
        if (APR_STATUS_IS_EAGAIN(rv)) {
            apr_brigade_cleanup(a->in);
            return;
        }
        if (rv != APR_SUCCESS) {
            apr_brigade_cleanup(a->in);
            a->eof = 1;
            pswt_tlog(t, APLOG_TRACE1, "tunnel: read from the %s ended (%d)",
                      a->is_client ? "client" : "back end", rv);
            pswt_begin_close(t, pswt_end_for(a, !APR_STATUS_IS_EOF(rv)), now);
            return;
        }
        eos = !APR_BRIGADE_EMPTY(a->in)
              && APR_BUCKET_IS_EOS(APR_BRIGADE_LAST(a->in));
        apr_brigade_length(a->in, 1, &len);
        if (len > 0) {
            empties = 0;
            t->last_io = now;
            if (pswt_forward(t, a, (apr_size_t)len, now) < 0) {
                return;
            }
        }
        else {
            apr_brigade_cleanup(a->in);
            /* the core filter reports "would block" as an empty brigade,
             * and EOF as APR_EOF one read later: look once more */
            if (!eos && ++empties >= 2) {
                return;
            }
        }
        if (eos) {
            a->eof = 1;
            pswt_begin_close(t, pswt_end_for(a, 0), now);
            return;
        }
    }
    a->again = 1;
    psc_loop_ready(t->loop, &t->item);
}

/* ---- the loop's links ------------------------------------------------------------ */

void pswt_poll(pswt_tunnel_t *t, pswt_side_t *side, apr_int16_t ev)
{
    if (psc_loop_watch(t->loop, &side->pfd, &side->events, ev)
        != APR_SUCCESS) {
        pswt_tlog(t, APLOG_ERR, "PSWT0010: cannot watch a tunnel socket");
    }
}

static void pswt_schedule(pswt_tunnel_t *t)
{
    /* out of memory: no timer, the tunnel ends by I/O */
    (void)psc_loop_schedule(t->loop, &t->item);
}

static void pswt_retire(pswt_tunnel_t *t)
{
    if (t->state == PSWT_ST_DONE) {
        return;
    }
    t->state = PSWT_ST_DONE;
    pswt_poll(t, &t->cl, 0);
    if (!t->bk.gone) {
        pswt_poll(t, &t->bk, 0);
    }
    psc_loop_retire(t->loop, &t->item);
}

/* ---- ending -------------------------------------------------------------------- */

static void pswt_close_backend(pswt_tunnel_t *t)
{
    if (t->bk.gone) {
        return;
    }
    pswt_poll(t, &t->bk, 0);
    if (t->detached) {
        pswt_raw_close(t, &t->bk, !t->bk.dead);
        t->bk.gone = 1;
        return;
    }
    if (t->bk.dead) {
        t->bk.c->aborted = 1;     /* no close_notify attempt */
    }
    t->bk.gone = 1;
    t->bk.c = NULL;
    t->be = NULL;
    apr_pool_destroy(t->be_pool);
    t->be_pool = NULL;
}

static const char *pswt_code_str(char buf[16], int code)
{
    if (code < 0) {
        return "none";
    }
    apr_snprintf(buf, 16, "%d", code);
    return buf;
}

static void pswt_log_end(pswt_tunnel_t *t, apr_time_t now)
{
    int level = t->frame_aware ? APLOG_INFO : APLOG_DEBUG;
    char c1[16], c2[16], c3[16], c4[16];

    pswt_tlog(t, level, "PSWT0020: tunnel to %s closed "
                  "(%s) after %.3f s; client close code %s, back end close "
                  "code %s, proxy sent close %s to the client and %s to the "
                  "back end; client->back end %" APR_UINT64_T_FMT " bytes, %"
                  APR_UINT64_T_FMT " frames, %" APR_UINT64_T_FMT " messages; "
                  "back end->client %" APR_UINT64_T_FMT " bytes, %"
                  APR_UINT64_T_FMT " frames, %" APR_UINT64_T_FMT " messages",
                  t->target, pswt_end_name(t->end),
                  (double)(now - t->started) / APR_USEC_PER_SEC,
                  pswt_code_str(c1, t->cl.tr.close_code),
                  pswt_code_str(c2, t->bk.tr.close_code),
                  pswt_code_str(c3, t->sent_cl), pswt_code_str(c4, t->sent_bk),
                  t->cl.bytes, t->cl.tr.frames, t->cl.tr.messages,
                  t->bk.bytes, t->bk.tr.frames, t->bk.tr.messages);
}

static void pswt_linger(pswt_tunnel_t *t, apr_time_t now)
{
    psc_conn_linger(t->cl.sock);
    t->state = PSWT_ST_LINGER;
    t->item.deadline = now + PSWT_LINGER;
    pswt_schedule(t);
}

static void pswt_flushing(pswt_tunnel_t *t, apr_time_t now)
{
    if (pswt_flush(&t->cl) < 0) {
        pswt_retire(t);
        return;
    }
    if (!pswt_pending(&t->cl)) {
        pswt_linger(t, now);
    }
}

/* Both sides have their last bytes: close the back end, end the request. */
static void pswt_finish(pswt_tunnel_t *t, apr_time_t now)
{
    pswt_close_backend(t);
    pswt_log_end(t, now);
    pswt_stats_add(PSWT_C_CLOSED, 1);
    pswt_stats_add(PSWT_C_END_BASE + t->end, 1);
    pswt_stats_open(-1);
    if (t->local) {
        /* the handler's thread returns to httpd, which ends it */
        t->r->bytes_sent = (apr_off_t)t->bk.bytes;
        t->r->sent_bodyct = 1;
        apr_socket_timeout_set(t->cl.sock, t->c->base_server->timeout);
        pswt_retire(t);
        return;
    }
    if (t->detached) {                           /* logged when it left */
        if (t->cl.dead) {
            pswt_retire(t);
            return;
        }
        pswt_raw_close_notify(&t->cl);
    }
    else {
        t->r->bytes_sent = (apr_off_t)t->bk.bytes;  /* %B: bytes to the client */
        t->r->sent_bodyct = 1;
        psc_conn_end_request(t->r);                  /* EOR: logs, frees r */
        t->r = NULL;
        if (t->cl.dead || t->c->aborted) {
            pswt_retire(t);
            return;
        }
        ap_shutdown_conn(t->c, 0);                   /* EOC: TLS close_notify */
    }
    t->state = PSWT_ST_FLUSHING;
    t->item.deadline = now + PSWT_CLOSE_FLUSH;
    pswt_schedule(t);
    pswt_flushing(t, now);
}

static void pswt_closing(pswt_tunnel_t *t, apr_time_t now)
{
    pswt_flush(&t->cl);
    pswt_flush(&t->bk);
    if (!pswt_pending(&t->cl) && !pswt_pending(&t->bk)) {
        pswt_finish(t, now);
    }
}

static void pswt_begin_close(pswt_tunnel_t *t, int end, apr_time_t now)
{
    int code_cl = 0, code_bk = 0;
    const char *why = NULL;

    if (t->state != PSWT_ST_OPEN) {
        return;
    }
    t->state = PSWT_ST_CLOSING;
    t->end = end;
    switch (end) {
    case PSWT_END_CLIENT_CLOSED:
    case PSWT_END_CLIENT_ERROR:
        code_bk = PS_WS_CLOSE_GOING_AWAY;
        why = "client went away";
        break;
    case PSWT_END_BACKEND_CLOSED:
    case PSWT_END_BACKEND_ERROR:
        code_cl = PS_WS_CLOSE_INTERNAL;
        why = "back end went away";
        break;
    case PSWT_END_IDLE:
        code_cl = code_bk = PS_WS_CLOSE_GOING_AWAY;
        why = "idle timeout";
        break;
    case PSWT_END_SHUTDOWN:
        code_cl = code_bk = PS_WS_CLOSE_GOING_AWAY;
        why = "server stopping";
        break;
    case PSWT_END_TOO_BIG:
        code_cl = code_bk = PS_WS_CLOSE_TOO_BIG;
        why = "message too big";
        break;
    case PSWT_END_PROTOCOL:
        code_cl = code_bk = PS_WS_CLOSE_PROTOCOL;
        why = "protocol error";
        break;
    default:
        break;
    }
    if (code_cl) {
        pswt_close_to(t, &t->cl, code_cl, why);
    }
    if (code_bk) {
        pswt_close_to(t, &t->bk, code_bk, why);
    }
    t->item.deadline = now + PSWT_CLOSE_FLUSH;
    pswt_schedule(t);
    pswt_closing(t, now);
}

/* ---- events --------------------------------------------------------------------- */

/* Which events each socket waits for, from the state. */
static void pswt_update(pswt_tunnel_t *t)
{
    apr_int16_t ecl = 0, ebk = 0;

    switch (t->state) {
    case PSWT_ST_OPEN:
        if (!t->cl.eof && !pswt_pending(&t->bk)) {
            ecl |= APR_POLLIN;
        }
        if (!t->bk.eof && !pswt_pending(&t->cl)) {
            ebk |= APR_POLLIN;
        }
        /* fall through */
    case PSWT_ST_CLOSING:
    case PSWT_ST_FLUSHING:
        if (pswt_pending(&t->cl)) {
            ecl |= APR_POLLOUT;
        }
        if (pswt_pending(&t->bk)) {
            ebk |= APR_POLLOUT;
        }
        break;
    case PSWT_ST_LINGER:
        ecl = APR_POLLIN;
        break;
    default:
        return;
    }
    pswt_poll(t, &t->cl, ecl);
    if (!t->bk.gone) {
        pswt_poll(t, &t->bk, ebk);
    }
}

static void pswt_tunnel_start(psc_item_t *it, apr_time_t now)
{
    pswt_tunnel_t *t = (pswt_tunnel_t *)it;

    t->state = PSWT_ST_OPEN;
    t->last_io = now;
    pswt_stats_open(1);
    if (!t->local) {
        t->detach_at = now + PSWT_DETACH_IDLE;
    }
    pswt_open_deadline(t);
    /* bytes may wait in the filters already (sent right after the
     * handshake): read both sides once without waiting for the sockets */
    t->cl.again = t->bk.again = 1;
    pswt_tunnel_again(t, now);
}

static void pswt_tunnel_again(pswt_tunnel_t *t, apr_time_t now)
{
    if (t->state == PSWT_ST_OPEN && t->cl.again) {
        pswt_pump(t, &t->cl, now);
    }
    if (t->state == PSWT_ST_OPEN && t->bk.again) {
        pswt_pump(t, &t->bk, now);
    }
    pswt_update(t);
}

/* Lingering: the write side is shut, read until EOF or the deadline. */
static void pswt_drain(pswt_tunnel_t *t)
{
    if (psc_conn_drain(t->cl.sock)) {
        pswt_retire(t);
    }
}

static void pswt_tunnel_io(pswt_side_t *s, apr_int16_t ev, apr_time_t now)
{
    pswt_tunnel_t *t = s->t;

    switch (t->state) {
    case PSWT_ST_OPEN:
        if ((ev & APR_POLLOUT)
            || ((ev & (APR_POLLERR | APR_POLLHUP)) && pswt_pending(s))) {
            if (pswt_flush(s) < 0) {
                pswt_begin_close(t, pswt_end_for(s, 1), now);
                break;
            }
        }
        if (ev & (APR_POLLIN | APR_POLLHUP | APR_POLLERR)) {
            pswt_pump(t, s, now);
        }
        /* s took its output: what its peer sends can flow again */
        if (t->state == PSWT_ST_OPEN && s->peer->starved && !pswt_pending(s)) {
            pswt_pump(t, s->peer, now);
        }
        break;
    case PSWT_ST_CLOSING:
        if (pswt_flush(s) < 0 && (ev & (APR_POLLERR | APR_POLLHUP))) {
            s->dead = 1;
        }
        pswt_closing(t, now);
        break;
    case PSWT_ST_FLUSHING:
        pswt_flushing(t, now);
        break;
    case PSWT_ST_LINGER:
        pswt_drain(t);
        break;
    default:
        break;
    }
    pswt_update(t);
}

/* OPEN: the next deadline (idle timeout, leaving httpd). */
static void pswt_open_deadline(pswt_tunnel_t *t)
{
    apr_time_t d = t->idle > 0 ? t->last_io + t->idle : 0;

    if (t->detach_at && (!d || t->detach_at < d)) {
        d = t->detach_at;
    }
    t->item.deadline = d;
    pswt_schedule(t);
}

static void pswt_tunnel_timer(psc_item_t *it, apr_time_t now)
{
    pswt_tunnel_t *t = (pswt_tunnel_t *)it;

    switch (t->state) {
    case PSWT_ST_OPEN:
        if (t->detach_at && now >= t->detach_at) {
            t = pswt_detach(t, now);
        }
        if (t->idle > 0 && now >= t->last_io + t->idle) {
            pswt_begin_close(t, PSWT_END_IDLE, now);
        }
        else {
            pswt_open_deadline(t);
        }
        break;
    case PSWT_ST_CLOSING:
        /* whoever does not take its last bytes in time is dropped */
        if (pswt_pending(&t->cl)) {
            t->cl.dead = 1;
            if (t->c) {
                t->c->aborted = 1;
            }
        }
        if (pswt_pending(&t->bk)) {
            t->bk.dead = 1;
        }
        pswt_finish(t, now);
        break;
    case PSWT_ST_FLUSHING:
        t->cl.dead = 1;
        if (t->c) {
            t->c->aborted = 1;
        }
        pswt_retire(t);
        break;
    case PSWT_ST_LINGER:
        pswt_retire(t);
        break;
    default:
        break;
    }
    pswt_update(t);
}

static void pswt_tunnel_shutdown(psc_item_t *it, apr_time_t now)
{
    pswt_tunnel_t *t = (pswt_tunnel_t *)it;

    if (t->state == PSWT_ST_OPEN) {
        pswt_begin_close(t, PSWT_END_SHUTDOWN, now);
        pswt_update(t);
    }
}

static void pswt_tunnel_abort(psc_item_t *it)
{
    pswt_tunnel_t *t = (pswt_tunnel_t *)it;

    if (t->state == PSWT_ST_OPEN || t->state == PSWT_ST_CLOSING) {
        pswt_stats_open(-1);
    }
    if (t->detached) {
        pswt_poll(t, &t->bk, 0);
        pswt_poll(t, &t->cl, 0);
        pswt_raw_close(t, &t->bk, 0);
        pswt_raw_close(t, &t->cl, 0);
        t->bk.gone = 1;
        pswt_retire(t);
        return;
    }
    if (!t->bk.gone) {
        pswt_poll(t, &t->bk, 0);
        apr_socket_close(t->bk.sock);
        t->bk.gone = 1;
    }
    pswt_poll(t, &t->cl, 0);
    apr_socket_close(t->cl.sock);
    pswt_retire(t);
}

static void pswt_tunnel_release(psc_item_t *it)
{
    pswt_tunnel_t *t = (pswt_tunnel_t *)it;
    conn_rec *c = t->c;

    if (t->detached) {
        pswt_detached_release(t);
        return;
    }
    if (t->local) {
        return;
    }
    if (t->r) {
        psc_conn_end_request(t->r);
        t->r = NULL;
    }
    psc_conn_release(c, t->cl.sock);
}

/* ---- the loop's callbacks --------------------------------------------------------- */

static void pswt_side_on_io(psc_pollee_t *pe, apr_int16_t ev, apr_time_t now)
{
    pswt_side_t *side = (pswt_side_t *)pe;

    /* an earlier event of this batch may have ended the tunnel */
    if (side->t->state != PSWT_ST_DONE && !side->gone && side->events) {
        pswt_tunnel_io(side, ev, now);
    }
}

static void pswt_on_again(psc_item_t *it, apr_time_t now)
{
    pswt_tunnel_again((pswt_tunnel_t *)it, now);
}

static const psc_item_ops_t pswt_tunnel_ops = {
    pswt_tunnel_start, pswt_tunnel_timer, pswt_on_again, pswt_tunnel_shutdown,
    pswt_tunnel_abort, pswt_tunnel_release, NULL
};

void pswt_loop_adopt(psc_loop_t *loop, pswt_tunnel_t *t)
{
    t->loop = loop;
    /* a tunnel run on the handler's thread has no worker to wait for */
    psc_loop_adopt(loop, &t->item, &pswt_tunnel_ops,
                   t->local ? NULL : (void *const *)&t->c->sbh);
}
