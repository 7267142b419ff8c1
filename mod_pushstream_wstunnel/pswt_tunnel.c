/* pswt_tunnel.c - a tunnel on the loop: its setup, poll events, timers,
 * ending and release; the forwarding of bytes both ways without blocking
 * is pswt_relay.c's.
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

#include "pswt_tunnel_int.h"
#include "psc_conn.h"

APLOG_USE_MODULE(pushstream_wstunnel);

#define PSWT_CLOSE_FLUSH     apr_time_from_sec(5)
#define PSWT_LINGER          apr_time_from_sec(2)

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
void pswt_tlog(const pswt_tunnel_t *t, int level, const char *fmt, ...)
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
        (void)psc_conn_end(t->c);                    /* EOC: TLS close_notify */
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

/* The close frames an end sends to the sides that did not end it: code to
 * the client, to the back end (0: none), reason. */
static const struct {
    int end, to_cl, to_bk;
    const char *why;
} pswt_close_plan[] = {
    { PSWT_END_CLIENT_CLOSED,  0, PS_WS_CLOSE_GOING_AWAY, "client went away" },
    { PSWT_END_CLIENT_ERROR,   0, PS_WS_CLOSE_GOING_AWAY, "client went away" },
    { PSWT_END_BACKEND_CLOSED, PS_WS_CLOSE_INTERNAL, 0, "back end went away" },
    { PSWT_END_BACKEND_ERROR,  PS_WS_CLOSE_INTERNAL, 0, "back end went away" },
    { PSWT_END_IDLE, PS_WS_CLOSE_GOING_AWAY, PS_WS_CLOSE_GOING_AWAY,
      "idle timeout" },
    { PSWT_END_SHUTDOWN, PS_WS_CLOSE_GOING_AWAY, PS_WS_CLOSE_GOING_AWAY,
      "server stopping" },
    { PSWT_END_TOO_BIG, PS_WS_CLOSE_TOO_BIG, PS_WS_CLOSE_TOO_BIG,
      "message too big" },
    { PSWT_END_PROTOCOL, PS_WS_CLOSE_PROTOCOL, PS_WS_CLOSE_PROTOCOL,
      "protocol error" },
};

void pswt_begin_close(pswt_tunnel_t *t, int end, apr_time_t now)
{
    int code_cl = 0, code_bk = 0;
    const char *why = NULL;
    apr_size_t i;

    if (t->state != PSWT_ST_OPEN) {
        return;
    }
    t->state = PSWT_ST_CLOSING;
    t->end = end;
    for (i = 0; i < sizeof(pswt_close_plan) / sizeof(pswt_close_plan[0]); i++) {
        if (pswt_close_plan[i].end == end) {
            code_cl = pswt_close_plan[i].to_cl;
            code_bk = pswt_close_plan[i].to_bk;
            why = pswt_close_plan[i].why;
        }
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
