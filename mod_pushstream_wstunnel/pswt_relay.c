/* pswt_relay.c - a tunnel's bytes from one side to the other (see
 * pswt_tunnel.c): nonblocking reads through the input filters (or the
 * detached socket / TLS session), frames tracked (pswt_ws.h), whole frames
 * forwarded with back-pressure, a partial header held back, close frames
 * of our own; the tunnel's lifecycle is pswt_tunnel.c's. */

#include <string.h>

#include <httpd.h>
#include <http_log.h>
#include <util_filter.h>
#include <apr_strings.h>

#include "pswt_tunnel_int.h"
#include "psc_conn.h"

APLOG_USE_MODULE(pushstream_wstunnel);

#define PSWT_READ_SIZE       (16 * 1024)
#define PSWT_READS_PER_PASS  8

/* ---- output ------------------------------------------------------------------ */

int pswt_pending(const pswt_side_t *s)
{
    return !s->gone && !s->dead
           && (s->c ? s->c->data_in_output_filters : s->pend_len > 0);
}

/* Let the core filter write what it holds, without blocking.  -1: the
 * connection broke. */
int pswt_flush(pswt_side_t *s)
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
void pswt_close_to(pswt_tunnel_t *t, pswt_side_t *to, int code,
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

int pswt_end_for(const pswt_side_t *s, int error)
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
void pswt_pump(pswt_tunnel_t *t, pswt_side_t *a, apr_time_t now)
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
