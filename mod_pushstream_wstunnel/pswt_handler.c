/* pswt_handler.c - ws:// and wss:// requests, on a worker thread.
 *
 * The handshake is synchronous: connect to the back end (mod_proxy's
 * worker settings: connectiontimeout=, timeout=, SSLProxy*), forward the
 * client's upgrade request, read the back end's answer.  Anything but 101
 * is relayed to the client as a normal response.  After a 101 the client
 * gets its 101 and the tunnel is handed to the child's loop: the handler
 * returns SUSPENDED and the suspend_connection hook does the hand-off,
 * once the event MPM is done with the connection.
 *
 * The back end connection is ours alone, not one of the worker's pooled
 * connections: those are limited to ThreadsPerChild per worker (the
 * reslist's hmax), and an idle tunnel must not hold one. */

#include <string.h>

#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <mpm_common.h>
#include <util_filter.h>
#include <apr_allocator.h>
#include <apr_lib.h>
#include <apr_strings.h>

#include "pswt_config.h"
#include "pswt_handler_int.h"
#include "psc_conn.h"

APLOG_USE_MODULE(pushstream_wstunnel);

pswt_child_t *pswt_child;

typedef struct pswt_local_t {
    psc_loop_t *loop;
    struct pswt_local_t *prev, *next;
} pswt_local_t;

/* ---- canonicalisation --------------------------------------------------- */

int pswt_canon(request_rec *r, char *url)
{
    const char *scheme, *search = NULL, *path;
    char *host, sport[8];
    const char *err;
    apr_port_t port, def_port;

    if (!ap_cstr_casecmpn(url, "ws:", 3)) {
        url += 3;
        scheme = "ws:";
        def_port = 80;
    }
    else if (!ap_cstr_casecmpn(url, "wss:", 4)) {
        url += 4;
        scheme = "wss:";
        def_port = 443;
    }
    else {
        return DECLINED;
    }
    port = def_port;
    err = ap_proxy_canon_netloc(r->pool, &url, NULL, NULL, &host, &port);
    if (err) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "PSWT0100: bad URL %s: %s",
                      url, err);
        return HTTP_BAD_REQUEST;
    }
    if (apr_table_get(r->notes, "proxy-nocanon")) {
        path = url;                     /* raw, as the client sent it */
    }
    else if (apr_table_get(r->notes, "proxy-noencode")) {
        path = url;
        search = r->args;
    }
    else {
        core_dir_config *cd = ap_get_core_module_config(r->per_dir_config);
        int flags = cd->allow_encoded_slashes && !cd->decode_encoded_slashes
                    ? PROXY_CANONENC_NOENCODEDSLASHENCODING : 0;
        path = ap_proxy_canonenc_ex(r->pool, url, (int)strlen(url), enc_path,
                                    flags, r->proxyreq);
        if (!path) {
            return HTTP_BAD_REQUEST;
        }
        search = r->args;
    }
    if ((path == url && *ap_scan_vchar_obstext(path))
        || (search && *ap_scan_vchar_obstext(search))) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "PSWT0101: the path or "
                      "query to forward holds control characters or spaces");
        return HTTP_FORBIDDEN;
    }
    sport[0] = '\0';
    if (port != def_port) {
        apr_snprintf(sport, sizeof(sport), ":%d", (int)port);
    }
    if (ap_strchr_c(host, ':')) {
        host = apr_pstrcat(r->pool, "[", host, "]", NULL);
    }
    r->filename = apr_pstrcat(r->pool, "proxy:", scheme, "//", host, sport,
                              "/", path, search ? "?" : "",
                              search ? search : "", NULL);
    return OK;
}

/* ---- the upgrade request ---------------------------------------------------- */

/* The worker's upgrade= (if any) admits websocket. */
static int pswt_worker_allows(request_rec *r, proxy_worker *worker,
                              int need_explicit)
{
    const char *allowed = worker->s->upgrade;

    if (!*allowed) {
        return !need_explicit;
    }
    return !strcmp(allowed, "*") || !ap_cstr_casecmp(allowed, "ANY")
           || ap_find_token(r->pool, allowed, "websocket");
}

/* A WebSocket handshake: Upgrade names websocket and Connection names
 * upgrade (tokens, any case). */
static int pswt_is_ws_upgrade(request_rec *r)
{
    const char *up = apr_table_get(r->headers_in, "Upgrade");
    const char *conn = apr_table_get(r->headers_in, "Connection");

    return up && conn && ap_find_token(r->pool, up, "websocket")
           && ap_find_token(r->pool, conn, "upgrade");
}

static int pswt_refuse(request_rec *r, const char *url)
{
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "PSWT0102: %s is a WebSocket "
                  "route; refused a request without Upgrade: websocket and "
                  "Connection: upgrade (426)", url);
    pswt_stats_add(PSWT_C_NO_UPGRADE, 1);
    apr_table_setn(r->err_headers_out, "Upgrade", "websocket");
    apr_table_setn(r->err_headers_out, "Connection", "Upgrade");
    /* httpd's own 426 text speaks of TLS */
    ap_custom_response(r, HTTP_UPGRADE_REQUIRED, "This resource is a "
                       "WebSocket endpoint: the request must be a WebSocket "
                       "handshake (Upgrade: websocket, Connection: Upgrade).\n");
    return HTTP_UPGRADE_REQUIRED;
}

int pswt_bad_gateway(request_rec *r, int status, const char *msg)
{
    pswt_stats_add(PSWT_C_BACKEND_FAIL, 1);
    return ap_proxyerror(r, status, msg);
}

static int pswt_send_request(request_rec *r, proxy_conn_rec *be,
                             proxy_worker *worker, proxy_server_conf *conf,
                             apr_uri_t *uri, char *locurl, char *portstr)
{
    conn_rec *bc = be->connection;
    apr_bucket_brigade *bb = apr_brigade_create(r->pool,
                                                r->connection->bucket_alloc);
    char *old_cl = NULL, *old_te = NULL;
    const char *up = apr_table_get(r->headers_in, "Upgrade");
    apr_status_t rv;
    int rc;

    /* a list ("websocket, h2c") would invite another protocol */
    if (ap_cstr_casecmp(up, "websocket")) {
        up = "websocket";
    }

    rc = ap_proxy_create_hdrbrgd(r->pool, bb, r, be, worker, conf, uri,
                                 locurl, portstr, &old_cl, &old_te);
    if (rc != OK) {
        return rc;
    }
    apr_brigade_printf(bb, NULL, NULL, "Upgrade: %s\r\nConnection: Upgrade"
                       "\r\n\r\n", up);
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_flush_create(bb->bucket_alloc));
    rv = ap_pass_brigade(bc->output_filters, bb);
    apr_brigade_cleanup(bb);
    if (rv != APR_SUCCESS || bc->aborted) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "PSWT0103: cannot send the "
                      "upgrade request to the back end %s:%d", be->hostname,
                      (int)be->port);
        return pswt_bad_gateway(r, HTTP_BAD_GATEWAY, "Error sending the "
                                "WebSocket handshake to the back end");
    }
    return OK;
}

/* ---- after the 101 --------------------------------------------------------------- */

static int pswt_send_101(request_rec *r, pswt_resp_t *resp)
{
    const char *up = apr_table_get(resp->headers, "Upgrade");

    if (!up || !ap_find_token(r->pool, up, "websocket")) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "PSWT0112: the back end "
                      "switched to \"%s\", not to websocket",
                      up ? up : "(no Upgrade header)");
        return pswt_bad_gateway(r, HTTP_BAD_GATEWAY, apr_pstrcat(r->pool,
                                "Unexpected Upgrade: ", up ? up : "n/a",
                                " (expecting websocket)", NULL));
    }
    r->status = HTTP_SWITCHING_PROTOCOLS;
    r->status_line = ap_get_status_line(HTTP_SWITCHING_PROTOCOLS);
    pswt_copy_headers(r, resp->headers, 0);
    apr_table_setn(r->headers_out, "Upgrade", up);
    apr_table_setn(r->headers_out, "Connection", "Upgrade");
    ap_send_interim_response(r, 1);
    return OK;
}

static apr_interval_time_t pswt_idle_of(request_rec *r, pswt_dir_conf_t *d,
                                        proxy_worker *worker,
                                        proxy_server_conf *conf)
{
    apr_interval_time_t t = r->server->timeout, b = 0;

    if (d && d->idle_timeout != PSWT_UNSET) {
        return d->idle_timeout;
    }
    /* as mod_proxy_wstunnel in 2.4.53+: the larger of both sides' timeouts */
    if (worker->s->timeout_set) {
        b = worker->s->timeout;
    }
    else if (conf->timeout_set) {
        b = conf->timeout;
    }
    return b > t ? b : t;
}

/* Free memory a suspended tunnel's allocator keeps for reuse: the read
 * buffers (8 KB heap buckets) of a few passes of both sides. */
#define PSWT_MAX_FREE (32 * 1024)

static int pswt_can_suspend(conn_rec *c)
{
    return pswt_child && pswt_child->async && pswt_child->loop
           && psc_conn_can_suspend(c);
}

/* Worker/prefork: the tunnel runs here, on this thread, to its end. */
static void pswt_run_here(pswt_tunnel_t *t, request_rec *r)
{
    static volatile int said;
    pswt_local_t node;
    psc_loop_t *loop;

    if (!said) {
        said = 1;
        ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, "PSWT0120: WebSocket "
                      "tunnels hold a worker thread here (%s MPM or a "
                      "connection that cannot be suspended); the event MPM "
                      "frees it", ap_show_mpm());
    }
    pswt_stats_add(PSWT_C_BLOCKING, 1);
    t->local = 1;
    if (psc_loop_create(r->pool, 1, 4, NULL, &loop) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "PSWT0121: cannot create "
                      "a poll set for the tunnel");
        return;
    }
    node.loop = loop;
    node.prev = NULL;
    if (pswt_child) {
        apr_thread_mutex_lock(pswt_child->mtx);
        node.next = pswt_child->locals;
        if (node.next) {
            node.next->prev = &node;
        }
        pswt_child->locals = &node;
        if (pswt_child->stopping) {
            psc_loop_shutdown(loop);
        }
        apr_thread_mutex_unlock(pswt_child->mtx);
    }
    pswt_loop_adopt(loop, t);
    psc_loop_run_local(loop);
    if (pswt_child) {
        apr_thread_mutex_lock(pswt_child->mtx);
        if (node.prev) {
            node.prev->next = node.next;
        }
        else {
            pswt_child->locals = node.next;
        }
        if (node.next) {
            node.next->prev = node.prev;
        }
        apr_thread_mutex_unlock(pswt_child->mtx);
    }
}

void pswt_stop_locals(pswt_child_t *child)
{
    pswt_local_t *n;

    apr_thread_mutex_lock(child->mtx);
    child->stopping = 1;
    for (n = child->locals; n; n = n->next) {
        psc_loop_shutdown(n->loop);
    }
    apr_thread_mutex_unlock(child->mtx);
}

/* ---- the scheme handler ------------------------------------------------------------- */

int pswt_scheme_handler(request_rec *r, proxy_worker *worker,
                        proxy_server_conf *conf, char *url,
                        const char *proxyname, apr_port_t proxyport)
{
    conn_rec *c = r->connection;
    pswt_dir_conf_t *d = pswt_dir(r);
    const char *scheme;
    int is_ssl, status;
    char portstr[32];
    char *locurl = url;
    apr_uri_t *uri;
    apr_pool_t *be_pool;
    proxy_conn_rec *be;
    pswt_resp_t resp = { 0, "", NULL };
    pswt_tunnel_t *t;

    if (!ap_cstr_casecmpn(url, "wss:", 4)) {
        scheme = "WSS";
        is_ssl = 1;
    }
    else if (!ap_cstr_casecmpn(url, "ws:", 3)) {
        scheme = "WS";
        is_ssl = 0;
    }
    else if (!ap_cstr_casecmpn(url, "http:", 5)
             || !ap_cstr_casecmpn(url, "https:", 6)) {
        /* ProxyPass ... http://... upgrade=websocket (httpd 2.4.47+): the
         * WebSocket handshakes are ours, the rest is mod_proxy_http's */
        if (!pswt_dir_http_upgrade(d) || !pswt_worker_allows(r, worker, 1)
            || !pswt_is_ws_upgrade(r) || c->master) {
            return DECLINED;
        }
        is_ssl = url[4] == 's' || url[4] == 'S';
        scheme = is_ssl ? "HTTPS" : "HTTP";
    }
    else {
        return DECLINED;
    }
    if (!pswt_is_ws_upgrade(r) || !pswt_worker_allows(r, worker, 0)) {
        if (pswt_dir_fallback_http(d)) {
            ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r, "not a WebSocket "
                          "handshake: left to mod_proxy_http");
            return DECLINED;
        }
        return pswt_refuse(r, url);
    }
    if (c->master) {
        /* HTTP/2 stream (RFC 8441): its "socket" is a pipe of mod_http2;
         * mod_proxy_http knows how to tunnel those */
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "PSWT0113: WebSocket over "
                      "HTTP/2 is left to mod_proxy_http");
        return DECLINED;
    }
    if (r->method_number != M_GET || r->proto_num < HTTP_VERSION(1, 1)
        || r->main || apr_table_get(r->headers_in, "Transfer-Encoding")
        || (apr_table_get(r->headers_in, "Content-Length")
            && strcmp(apr_table_get(r->headers_in, "Content-Length"), "0"))) {
        /* (a body would be taken for WebSocket frames) */
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "PSWT0114: a WebSocket "
                      "handshake must be an HTTP/1.1 GET without a body");
        return HTTP_BAD_REQUEST;
    }

    if (!PROXY_WORKER_IS_USABLE(worker)) {
        APR_OPTIONAL_FN_TYPE(ap_proxy_retry_worker) *retry =
            APR_RETRIEVE_OPTIONAL_FN(ap_proxy_retry_worker);
        if (retry) {
            retry(scheme, worker, r->server);
        }
        if (!PROXY_WORKER_IS_USABLE(worker)) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "PSWT0115: back end %s "
                          "is disabled after an earlier error (worker "
                          "retry=)", ap_proxy_worker_name(r->pool, worker));
            pswt_stats_add(PSWT_C_BACKEND_FAIL, 1);
            return HTTP_SERVICE_UNAVAILABLE;
        }
    }

    /* A suspended tunnel lives on c->pool's allocator (the event MPM gives
     * each connection its own), which would keep every block freed during
     * the handshake (8 KB read buffers of both sides...) for the tunnel's
     * whole life.  Give them back at once; the allocator ends with c->pool
     * (pswt_tunnel_release() destroys it).  pswt_suspended() sets a modest
     * cache again: with none, every 8 KB read buffer of a busy tunnel is a
     * malloc() + free() that trims the heap (4x the CPU per message). */
    if (pswt_can_suspend(c)) {
        psc_conn_max_free(c, 1);
    }

    /* our own connection record, on a pool the tunnel owns */
    apr_pool_create(&be_pool, c->pool);
    apr_pool_tag(be_pool, "pswt_backend");
    be = apr_pcalloc(be_pool, sizeof(*be));
    be->pool = be_pool;
    be->worker = worker;
    apr_pool_create(&be->scpool, be_pool);
    be->is_ssl = is_ssl;

    uri = apr_pcalloc(r->pool, sizeof(*uri));
    status = ap_proxy_determine_connection(r->pool, r, conf, worker, be, uri,
                                           &locurl, proxyname, proxyport,
                                           portstr, sizeof(portstr));
    if (status != OK) {
        goto fail;
    }
    if (ap_proxy_connect_backend(scheme, be, worker, r->server)) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "PSWT0116: cannot connect "
                      "to the back end %s:%d", be->hostname, (int)be->port);
        /* a balancer tries its next member on 503 */
        status = pswt_bad_gateway(r, worker->balancer ? HTTP_SERVICE_UNAVAILABLE
                                                      : HTTP_BAD_GATEWAY,
                                  "Cannot connect to the WebSocket back end");
        goto fail;
    }
    status = ap_proxy_connection_create_ex(scheme, be, r);
    if (status != OK) {
        goto fail;
    }
    ap_remove_input_filter_byhandle(be->connection->input_filters,
                                    "reqtimeout");
    if ((status = pswt_send_request(r, be, worker, conf, uri, locurl, portstr))
        != OK || (status = pswt_read_head(r, be, &resp)) != OK) {
        goto fail;
    }
    if (resp.status != HTTP_SWITCHING_PROTOCOLS) {
        status = pswt_relay_answer(r, be, &resp);
        goto fail;
    }
    if ((status = pswt_send_101(r, &resp)) != OK) {
        goto fail;
    }
    if (c->aborted) {
        status = DONE;
        goto fail;
    }

    t = apr_pcalloc(c->pool, sizeof(*t));
    pswt_tunnel_init(t, r, be_pool, be);
    {
        char *lower = apr_pstrdup(c->pool, scheme);
        ap_str_tolower(lower);
        t->target = apr_psprintf(c->pool, "%s://%s:%d%s", lower,
                                 be->hostname, (int)be->port, locurl);
    }
    t->idle = pswt_idle_of(r, d, worker, conf);
    t->frame_aware = pswt_dir_frame_aware(d);
    t->max_message = t->frame_aware && d->max_message > 0
                     ? (apr_uint64_t)d->max_message : 0;
    pswt_stats_add(PSWT_C_OPENED, 1);
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "PSWT0117: tunnel to %s "
                  "open", t->target);
    if (pswt_can_suspend(c)) {
        ap_set_module_config(r->request_config, &pushstream_wstunnel_module, t);
        return SUSPENDED;
    }
    pswt_run_here(t, r);
    return OK;

fail:
    apr_pool_destroy(be_pool);
    if (pswt_can_suspend(c)) {
        /* the connection may go on (keep-alive) in the MPM's pool cache */
        psc_conn_max_free(c, ap_max_mem_free);
    }
    return status;
}

/* The event MPM is done with the connection: the loop takes it. */
void pswt_suspended(conn_rec *c, request_rec *r)
{
    pswt_tunnel_t *t = psc_conn_take_suspended(c, r,
                                               &pushstream_wstunnel_module);

    if (t && t->c == c) {
        psc_conn_max_free(c, PSWT_MAX_FREE);
        pswt_loop_adopt(pswt_child->loop, t);
    }
}
