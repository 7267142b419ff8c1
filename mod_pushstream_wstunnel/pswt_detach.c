/* pswt_detach.c - idle tunnels leave httpd (see pswt_tunnel.h).
 *
 * Once a tunnel has carried nothing for PSWT_DETACH_IDLE and nothing is in
 * flight, the loop dup()s both sockets, takes the TLS session of either
 * side from mod_ssl (ps_tls.h: the client's, and mod_proxy's to a wss://
 * back end), moves the tunnel into one malloc()ed block, ends the request
 * (the access log gets the bytes sent so far), destroys the back end's
 * pool and releases the client's connection the way the event MPM would
 * have.  What is left per idle tunnel is the block (~1 KB), two sockets
 * and, on TLS, the sessions without their buffers. */

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <httpd.h>
#include <http_connection.h>
#include <http_log.h>
#include <http_request.h>
#include <util_filter.h>
#include <apr_portable.h>
#include <apr_strings.h>

#include "pswt_tunnel.h"
#include "ps_tls.h"
#include "psc_conn.h"

APLOG_USE_MODULE(pushstream_wstunnel);

#define PSWT_DETACH_RETRY  apr_time_from_sec(1)
#define PSWT_DETACH_TRIES  30

/* One side: 1 may go, 0 not yet, -1 never. */
static int pswt_side_can_go(pswt_side_t *s, int *tls, const char **why)
{
    conn_rec *c = s->c;

    *why = "";
    if (!psc_conn_plain_filters(c, ps_tls_conn_is_tls(c), tls)) {
        *why = "connection filters";
        return -1;
    }
    if (c->aborted || s->eof || s->dead || s->again || s->starved
        || c->data_in_output_filters || c->data_in_input_filters) {
        return 0;
    }
    if (*tls) {
        switch (ps_tls_check(c, why)) {
        case PS_TLS_OK:
            break;
        case PS_TLS_BUSY:
            return 0;
        default:
            return -1;
        }
    }
    return 1;
}

static void pswt_side_move(pswt_tunnel_t *n, pswt_side_t *s, apr_socket_t *ns)
{
    s->t = n;
    s->c = NULL;
    s->sock = ns;
    s->in = s->out = NULL;
    s->pfd.desc.s = ns;
    s->pfd.client_data = s;
    s->pend = NULL;
    s->pend_len = s->pend_off = 0;
}

/* t moved to n: its pollset entries (the dup()s for the originals, which
 * close later), its timer and links; no worker to wait for any more. */
static void pswt_replace(pswt_tunnel_t *t, pswt_tunnel_t *n)
{
    apr_int16_t ecl = t->cl.events, ebk = t->bk.events;

    pswt_poll(t, &t->cl, 0);
    pswt_poll(t, &t->bk, 0);
    n->cl.events = n->bk.events = 0;
    pswt_poll(n, &n->cl, ecl);
    pswt_poll(n, &n->bk, ebk);
    n->item.worker_mark = NULL;
    psc_loop_replace(t->loop, &t->item, &n->item);
}

pswt_tunnel_t *pswt_detach(pswt_tunnel_t *t, apr_time_t now)
{
    psc_loop_t *l = t->loop;
    conn_rec *c = t->c;
    int tls_cl, tls_bk, ok_cl, ok_bk, fd_cl = -1, fd_bk = -1;
    const char *why_cl, *why_bk;
    apr_socket_t *ns_cl = NULL, *ns_bk = NULL;
    apr_size_t tlen, ilen;
    pswt_tunnel_t *n;
    char *p;

    t->detach_at = 0;
    if (t->local || t->detached || !t->r || t->state != PSWT_ST_OPEN
        || t->bk.gone) {
        return t;
    }
    if (now - t->last_io < PSWT_DETACH_IDLE) {
        t->detach_at = t->last_io + PSWT_DETACH_IDLE;   /* not idle yet */
        return t;
    }
    ok_cl = pswt_side_can_go(&t->cl, &tls_cl, &why_cl);
    ok_bk = pswt_side_can_go(&t->bk, &tls_bk, &why_bk);
    if (ok_cl < 0 || ok_bk < 0) {
        ap_log_cerror(APLOG_MARK, APLOG_DEBUG, 0, c, "PSWT0130: tunnel to %s "
                      "stays in httpd: %s", t->target,
                      ok_cl < 0 ? why_cl : why_bk);
        return t;
    }
    if (!ok_cl || !ok_bk || t->item.ready
        || !psc_item_worker_gone(&t->item, now)) {
        if (++t->detach_tries < PSWT_DETACH_TRIES) {
            t->detach_at = now + PSWT_DETACH_RETRY;
        }
        return t;
    }
    ns_cl = psc_loop_socket_dup(l, t->cl.sock, &fd_cl);
    ns_bk = ns_cl ? psc_loop_socket_dup(l, t->bk.sock, &fd_bk) : NULL;
    tlen = strlen(t->target) + 1;
    ilen = strlen(t->client_ip) + 1;
    n = ns_bk ? malloc(sizeof(*n) + tlen + ilen) : NULL;
    if (n) {
        *n = *t;
        n->cl.tls = tls_cl ? ps_tls_take(c, fd_cl) : NULL;
        n->bk.tls = tls_bk && (!tls_cl || n->cl.tls)
                    ? ps_tls_take(t->bk.c, fd_bk) : NULL;
        if ((tls_cl && !n->cl.tls) || (tls_bk && !n->bk.tls)) {
            /* (out of memory) a session taken already cannot go back */
            int lost = n->cl.tls != NULL;
            ps_tls_free(n->cl.tls);
            free(n);
            n = NULL;
            if (lost) {
                t->cl.dead = 1;
                c->aborted = 1;
            }
        }
    }
    if (!n) {
        if (ns_bk) {
            psc_loop_socket_close(l, ns_bk);
        }
        if (ns_cl) {
            psc_loop_socket_close(l, ns_cl);
        }
        return t;
    }
    p = (char *)(n + 1);
    memcpy(p, t->target, tlen);
    n->target = p;
    memcpy(p + tlen, t->client_ip, ilen);
    n->client_ip = p + tlen;
    n->detached = 1;
    n->c = NULL;
    n->r = NULL;
    n->be = NULL;
    n->be_pool = NULL;
    pswt_side_move(n, &n->cl, ns_cl);
    pswt_side_move(n, &n->bk, ns_bk);
    n->cl.peer = &n->bk;
    n->bk.peer = &n->cl;
    pswt_replace(t, n);

    ap_log_cerror(APLOG_MARK, APLOG_TRACE1, 0, c, "PSWT0131: tunnel to %s "
                  "detached from httpd%s%s", t->target,
                  tls_cl ? " (client TLS session taken over)" : "",
                  tls_bk ? " (back end TLS session taken over)" : "");
    /* the request ends now: logged with the bytes sent so far */
    t->r->bytes_sent = (apr_off_t)t->bk.bytes;
    t->r->sent_bodyct = 1;
    psc_conn_end_request(t->r);                  /* EOR: logs, frees r */
    t->r = NULL;
    apr_pool_destroy(t->be_pool);                /* the back end's original */
    psc_conn_release(c, t->cl.sock);             /* t with it (the dup stays) */
    return n;
}

/* ---- raw I/O of detached sides --------------------------------------------- */

apr_status_t pswt_raw_read(pswt_side_t *s, char *buf, apr_size_t *len)
{
    if (s->tls) {
        int ww = 0;
        return ps_tls_read(s->tls, buf, len, &ww);
    }
    return apr_socket_recv(s->sock, buf, len);
}

/* One write: *len in, taken out.  -1: broken. */
static int pswt_raw_write(pswt_side_t *s, const char *buf, apr_size_t *len)
{
    apr_status_t rv;

    if (s->tls) {
        int ww = 0;
        rv = ps_tls_write(s->tls, buf, len, &ww);
    }
    else {
        rv = apr_socket_send(s->sock, buf, len);
    }
    if (APR_STATUS_IS_EAGAIN(rv)) {
        *len = 0;
        return 0;
    }
    if (rv != APR_SUCCESS) {
        s->dead = 1;
        return -1;
    }
    return 0;
}

int pswt_raw_flush(pswt_side_t *s)
{
    while (s->pend_off < s->pend_len) {
        apr_size_t n = s->pend_len - s->pend_off;
        if (pswt_raw_write(s, s->pend + s->pend_off, &n) < 0) {
            return -1;
        }
        if (!n) {
            return 0;                   /* full: POLLOUT (pswt_update) */
        }
        s->pend_off += n;
    }
    free(s->pend);
    s->pend = NULL;
    s->pend_len = s->pend_off = 0;
    return 0;
}

int pswt_raw_send(pswt_side_t *s, const char *buf, apr_size_t len)
{
    apr_size_t n = len;
    char *np;

    if (s->dead || s->gone) {
        return -1;
    }
    if (!s->pend_len) {
        if (pswt_raw_write(s, buf, &n) < 0) {
            return -1;
        }
        buf += n;
        len -= n;
        if (!len) {
            return 0;
        }
    }
    /* the rest waits, after what already waits (in order: a TLS retry
     * must offer the same bytes first) */
    np = realloc(s->pend, s->pend_len + len);
    if (!np) {
        s->dead = 1;
        return -1;
    }
    memcpy(np + s->pend_len, buf, len);
    s->pend = np;
    s->pend_len += len;
    return pswt_raw_flush(s);
}

apr_status_t pswt_raw_close_notify(pswt_side_t *s)
{
    return s->tls ? ps_tls_close_notify(s->tls) : APR_SUCCESS;
}

void pswt_raw_close(pswt_tunnel_t *t, pswt_side_t *s, int notify)
{
    if (!s->sock) {
        return;
    }
    if (s->tls) {
        if (notify) {
            ps_tls_close_notify(s->tls);
        }
        ps_tls_free(s->tls);
        s->tls = NULL;
    }
    free(s->pend);
    s->pend = NULL;
    s->pend_len = s->pend_off = 0;
    psc_loop_socket_close(t->loop, s->sock);
    s->sock = NULL;
}

void pswt_detached_release(pswt_tunnel_t *t)
{
    pswt_raw_close(t, &t->bk, 0);
    pswt_raw_close(t, &t->cl, 0);
    free(t);
}
