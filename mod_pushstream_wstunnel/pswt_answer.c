/* pswt_answer.c - the back end's answer to the upgrade request (see
 * pswt_handler.c), on the worker thread: its head read line by line with
 * limits, and, when it is not a 101, relayed to the client as a normal
 * response (hop-by-hop fields dropped, body as it comes or chunked). */

#include <string.h>

#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <util_filter.h>
#include <apr_lib.h>
#include <apr_strings.h>

#include "pswt_handler_int.h"

APLOG_USE_MODULE(pushstream_wstunnel);

#define PSWT_MAX_LINE      (16 * 1024)
#define PSWT_MAX_FIELDS    100
#define PSWT_RELAY_CHUNK   8192

/* One line (CRLF stripped) from the back end, blocking with the socket's
 * timeout. */
static apr_status_t pswt_getline(conn_rec *bc, apr_bucket_brigade *bb,
                                 apr_pool_t *p, char **line)
{
    char *acc = NULL;
    apr_size_t acc_len = 0;

    for (;;) {
        char *piece;
        apr_size_t len;
        apr_status_t rv = ap_get_brigade(bc->input_filters, bb,
                                         AP_MODE_GETLINE, APR_BLOCK_READ, 0);
        if (rv != APR_SUCCESS) {
            apr_brigade_cleanup(bb);
            return rv;
        }
        if (APR_BRIGADE_EMPTY(bb)) {
            return APR_EOF;
        }
        rv = apr_brigade_pflatten(bb, &piece, &len, p);
        apr_brigade_cleanup(bb);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        if (!len) {
            return APR_EOF;
        }
        if (acc_len + len > PSWT_MAX_LINE) {
            return APR_ENOSPC;
        }
        {
            char *grown = apr_palloc(p, acc_len + len + 1);
            if (acc_len) {
                memcpy(grown, acc, acc_len);
            }
            memcpy(grown + acc_len, piece, len);
            grown[acc_len + len] = '\0';
            acc = grown;
        }
        acc_len += len;
        if (acc[acc_len - 1] == '\n') {
            break;
        }
    }
    while (acc_len && (acc[acc_len - 1] == '\n' || acc[acc_len - 1] == '\r')) {
        acc[--acc_len] = '\0';
    }
    *line = acc;
    return APR_SUCCESS;
}

/* Status line and fields; interim answers (100, 102, 103) are skipped.
 * Returns OK or an HTTP status for the client. */
int pswt_read_head(request_rec *r, proxy_conn_rec *be, pswt_resp_t *resp)
{
    conn_rec *bc = be->connection;
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, bc->bucket_alloc);
    int interim;

    for (interim = 0; interim < 8; interim++) {
        char *line, *last = NULL;
        apr_status_t rv = pswt_getline(bc, bb, r->pool, &line);
        int fields = 0;

        if (rv != APR_SUCCESS) {
            if (APR_STATUS_IS_TIMEUP(rv)) {
                ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "PSWT0104: the back "
                              "end %s:%d did not answer the handshake in time",
                              be->hostname, (int)be->port);
                apr_table_setn(r->notes, "proxy_timedout", "1");
                return pswt_bad_gateway(r, HTTP_GATEWAY_TIME_OUT, "The back "
                                        "end did not answer in time");
            }
            ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "PSWT0105: the back end "
                          "%s:%d closed the connection without answering the "
                          "handshake", be->hostname, (int)be->port);
            return pswt_bad_gateway(r, HTTP_BAD_GATEWAY, "The back end closed "
                                    "the connection without an answer");
        }
        if (strlen(line) < 12 || strncmp(line, "HTTP/1.", 7)
            || line[8] != ' ' || !apr_isdigit(line[9])
            || !apr_isdigit(line[10]) || !apr_isdigit(line[11])
            || (line[12] && line[12] != ' ')) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "PSWT0106: the back end "
                          "%s:%d answered the handshake with \"%.80s\"",
                          be->hostname, (int)be->port, line);
            return pswt_bad_gateway(r, HTTP_BAD_GATEWAY, "The back end's answer "
                                    "is not HTTP");
        }
        resp->status = atoi(line + 9);
        resp->reason = line[12] ? line + 13 : "";
        resp->headers = apr_table_make(r->pool, 16);
        for (;;) {
            char *colon, *val;
            rv = pswt_getline(bc, bb, r->pool, &line);
            if (rv != APR_SUCCESS) {
                ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "PSWT0107: the back "
                              "end %s:%d broke off its answer's header",
                              be->hostname, (int)be->port);
                return pswt_bad_gateway(r, APR_STATUS_IS_TIMEUP(rv)
                                        ? HTTP_GATEWAY_TIME_OUT
                                        : HTTP_BAD_GATEWAY,
                                        "Incomplete answer from the back end");
            }
            if (!*line) {
                break;
            }
            if ((*line == ' ' || *line == '\t') && last) {
                /* obsolete line folding: continues the previous field */
                apr_table_t *h = resp->headers;
                const apr_array_header_t *a = apr_table_elts(h);
                apr_table_entry_t *e = &((apr_table_entry_t *)a->elts)[a->nelts - 1];
                e->val = apr_pstrcat(r->pool, e->val, " ",
                                     apr_pstrdup(r->pool, line + strspn(line, " \t")),
                                     NULL);
                continue;
            }
            colon = strchr(line, ':');
            if (!colon || colon == line || ++fields > PSWT_MAX_FIELDS) {
                ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "PSWT0108: bad "
                              "header line from the back end %s:%d: \"%.80s\"",
                              be->hostname, (int)be->port, line);
                return pswt_bad_gateway(r, HTTP_BAD_GATEWAY, "Bad header in "
                                        "the back end's answer");
            }
            *colon = '\0';
            val = colon + 1;
            val += strspn(val, " \t");
            last = apr_pstrdup(r->pool, val);
            {
                apr_size_t n = strlen(last);
                while (n && (last[n - 1] == ' ' || last[n - 1] == '\t')) {
                    last[--n] = '\0';
                }
            }
            apr_table_addn(resp->headers, line, last);
        }
        if (resp->status >= 200 || resp->status == HTTP_SWITCHING_PROTOCOLS) {
            return OK;
        }
        /* 100 Continue, 102, 103: not for us, the real answer follows */
    }
    return pswt_bad_gateway(r, HTTP_BAD_GATEWAY, "Too many interim answers "
                            "from the back end");
}

/* Hop-by-hop fields, and those the back end lists in Connection. */
static int pswt_hop_by_hop(const char *name, const char *conn_list,
                           apr_pool_t *p)
{
    static const char *const hop[] = {
        "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
        "TE", "Trailer", "Trailers", "Transfer-Encoding", "Upgrade", NULL
    };
    int i;

    for (i = 0; hop[i]; i++) {
        if (!ap_cstr_casecmp(name, hop[i])) {
            return 1;
        }
    }
    return conn_list && ap_find_token(p, conn_list, name);
}

typedef struct pswt_copy_t {
    request_rec *r;
    proxy_dir_conf *pd;
    const char *conn_list;
    int final;                 /* not a 101: Content-* handled by httpd */
} pswt_copy_t;

static int pswt_copy_one(void *data, const char *key, const char *val)
{
    pswt_copy_t *cp = data;
    request_rec *r = cp->r;

    if (pswt_hop_by_hop(key, cp->conn_list, r->pool)) {
        return 1;
    }
    if (!ap_cstr_casecmp(key, "Location")
        || !ap_cstr_casecmp(key, "Content-Location")
        || !ap_cstr_casecmp(key, "URI")) {
        val = ap_proxy_location_reverse_map(r, cp->pd, val);
    }
    else if (!ap_cstr_casecmp(key, "Set-Cookie")) {
        val = ap_proxy_cookie_reverse_map(r, cp->pd, val);
    }
    else if (cp->final && !ap_cstr_casecmp(key, "Content-Type")) {
        ap_set_content_type(r, apr_pstrdup(r->pool, val));
        return 1;
    }
    else if (!ap_cstr_casecmp(key, "Content-Length")) {
        return 1;                   /* from what is actually relayed */
    }
    apr_table_add(r->headers_out, key, val);
    return 1;
}

void pswt_copy_headers(request_rec *r, apr_table_t *from, int final)
{
    pswt_copy_t cp;

    cp.r = r;
    cp.pd = ap_get_module_config(r->per_dir_config, &proxy_module);
    cp.conn_list = apr_table_get(from, "Connection");
    cp.final = final;
    apr_table_clear(r->headers_out);
    apr_table_do(pswt_copy_one, &cp, from, NULL);
}

/* Pass n bytes read from the back end to the client, copied into the
 * client's allocator (the back end connection goes away first). */
static apr_status_t pswt_relay_bytes(request_rec *r, conn_rec *bc,
                                     apr_bucket_brigade *in,
                                     apr_bucket_brigade *out, apr_off_t n,
                                     int until_eof)
{
    while (until_eof || n > 0) {
        apr_off_t want = until_eof || n > PSWT_RELAY_CHUNK ? PSWT_RELAY_CHUNK
                                                             : n;
        apr_off_t got = 0;
        apr_size_t len;
        char *buf;
        apr_status_t rv = ap_get_brigade(bc->input_filters, in,
                                         AP_MODE_READBYTES, APR_BLOCK_READ,
                                         want);
        if (rv != APR_SUCCESS) {
            apr_brigade_cleanup(in);
            return until_eof && APR_STATUS_IS_EOF(rv) ? APR_SUCCESS : rv;
        }
        apr_brigade_length(in, 1, &got);
        if (!got) {
            int eos = !APR_BRIGADE_EMPTY(in)
                      && APR_BUCKET_IS_EOS(APR_BRIGADE_LAST(in));
            apr_brigade_cleanup(in);
            if (eos || until_eof) {
                return until_eof ? APR_SUCCESS : APR_EOF;
            }
            continue;
        }
        len = (apr_size_t)got;
        buf = apr_bucket_alloc(len, r->connection->bucket_alloc);
        apr_brigade_flatten(in, buf, &len);
        apr_brigade_cleanup(in);
        APR_BRIGADE_INSERT_TAIL(out, apr_bucket_heap_create(
            buf, len, apr_bucket_free, r->connection->bucket_alloc));
        rv = ap_pass_brigade(r->output_filters, out);
        apr_brigade_cleanup(out);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        n -= (apr_off_t)len;
    }
    return APR_SUCCESS;
}

static apr_status_t pswt_relay_chunked(request_rec *r, conn_rec *bc,
                                       apr_bucket_brigade *in,
                                       apr_bucket_brigade *out)
{
    for (;;) {
        char *line, *end;
        apr_int64_t size;
        apr_status_t rv = pswt_getline(bc, in, r->pool, &line);

        if (rv != APR_SUCCESS) {
            return rv;
        }
        size = apr_strtoi64(line, &end, 16);
        if (end == line || size < 0 || (*end && *end != ';' && *end != ' '
                                        && *end != '\t')) {
            return APR_EGENERAL;
        }
        if (!size) {
            do {                        /* trailers: dropped */
                rv = pswt_getline(bc, in, r->pool, &line);
            } while (rv == APR_SUCCESS && *line);
            return rv;
        }
        rv = pswt_relay_bytes(r, bc, in, out, (apr_off_t)size, 0);
        if (rv == APR_SUCCESS) {
            rv = pswt_getline(bc, in, r->pool, &line);
        }
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }
}

/* The back end did not switch protocols: its answer is the client's. */
int pswt_relay_answer(request_rec *r, proxy_conn_rec *be,
                      pswt_resp_t *resp)
{
    conn_rec *c = r->connection, *bc = be->connection;
    proxy_dir_conf *pd = ap_get_module_config(r->per_dir_config, &proxy_module);
    const char *te = apr_table_get(resp->headers, "Transfer-Encoding");
    const char *cl = apr_table_get(resp->headers, "Content-Length");
    apr_bucket_brigade *in = apr_brigade_create(r->pool, bc->bucket_alloc);
    apr_bucket_brigade *out = apr_brigade_create(r->pool, c->bucket_alloc);
    apr_off_t len = 0;
    apr_status_t rv = APR_SUCCESS;

    pswt_stats_add(PSWT_C_NOT_101, 1);
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "PSWT0110: the back end %s:%d "
                  "answered the WebSocket handshake with %d; relayed",
                  be->hostname, (int)be->port, resp->status);
    if (ap_proxy_should_override(pd, resp->status)) {
        apr_table_clear(r->headers_out);
        r->status = HTTP_OK;       /* so that ErrorDocument is not recursive */
        return resp->status;
    }
    r->status = resp->status;
    r->status_line = *resp->reason
                     ? apr_psprintf(r->pool, "%d %s", resp->status, resp->reason)
                     : NULL;
    pswt_copy_headers(r, resp->headers, 1);
    if (resp->status == HTTP_NO_CONTENT || resp->status == HTTP_NOT_MODIFIED) {
        /* no body */
    }
    else if (te && ap_find_last_token(r->pool, te, "chunked")) {
        rv = pswt_relay_chunked(r, bc, in, out);
    }
    else if (cl) {
        if (!ap_parse_strict_length(&len, cl)) {
            return pswt_bad_gateway(r, HTTP_BAD_GATEWAY, "Bad Content-Length "
                                    "from the back end");
        }
        ap_set_content_length(r, len);
        rv = pswt_relay_bytes(r, bc, in, out, len, 0);
    }
    else {
        rv = pswt_relay_bytes(r, bc, in, out, 0, 1);
    }
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "PSWT0111: error relaying "
                      "the back end's answer");
        c->keepalive = AP_CONN_CLOSE;
        c->aborted = 1;
        return DONE;
    }
    APR_BRIGADE_INSERT_TAIL(out, apr_bucket_eos_create(c->bucket_alloc));
    ap_pass_brigade(r->output_filters, out);
    apr_brigade_cleanup(out);
    return OK;
}
