/* ps_http.c - response helpers (see ps_http.h). */

#include <string.h>

#include <httpd.h>
#include <http_protocol.h>
#include <http_log.h>
#include <apr_strings.h>
#include <apr_network_io.h>

#include "ps_http.h"
#include "ps_child.h"
#include "ps_util.h"

APLOG_USE_MODULE(pushstream);

#define PS_FULL_LOG "PS0050: shared memory is full: unable to allocate " \
    "message in shared memory; raise PushStreamSharedMemorySize (or lower " \
    "PushStreamMessageTtl / PushStreamMaxMessagesStoredPerChannel)"

void ps_http_nocache(request_rec *r)
{
    apr_table_setn(r->headers_out, "Expires", PS_NOCACHE_EXPIRES);
    apr_table_setn(r->headers_out, "Cache-Control", PS_NOCACHE_CONTROL);
}

int ps_http_explain(request_rec *r, int status, const char *explain)
{
    r->status = status;
    if (explain) {
        apr_table_setn(r->headers_out, PS_EXPLAIN_HEADER, explain);
    }
    ap_set_content_length(r, 0);
    return DONE;
}

void ps_http_cors(request_rec *r, const ps_dir_conf_t *d, const char *methods)
{
    const char *origin;

    if (!d->allowed_origins || !(origin = ps_http_value(r, d->allowed_origins,
                                                        NULL))) {
        return;
    }
    {
        /* A CR/LF from the request (e.g. "%{arg:origin}") never reaches a
         * response header (httpd would answer 500): no CORS headers then. */
        const char *c;
        for (c = origin; *c; c++) {
            if ((unsigned char)*c < 0x20 || *c == 0x7f) {
                ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "PS0071: "
                              "PushStreamAllowedOrigins value with a control "
                              "byte ignored");
                return;
            }
        }
    }
    apr_table_setn(r->headers_out, "Access-Control-Allow-Origin", origin);
    apr_table_setn(r->headers_out, "Access-Control-Allow-Methods", methods);
    /* PushStreamAuth: a cross-origin long-poll sends its token in
     * Authorization, which needs the preflight's consent */
    apr_table_setn(r->headers_out, "Access-Control-Allow-Headers",
                   d->auth_mode > 0
                   ? "If-Modified-Since,If-None-Match,Etag,Event-Id,Event-Type,"
                     "Last-Event-Id,Authorization"
                   : "If-Modified-Since,If-None-Match,Etag,Event-Id,Event-Type,"
                     "Last-Event-Id");
    /* Not in nginx: lets cross-origin scripts read what they resume from. */
    apr_table_setn(r->headers_out, "Access-Control-Expose-Headers",
                   "Etag,Last-Modified");
}

int ps_http_not_allowed(request_rec *r, const char *allow)
{
    /* httpd drops "Content-Length: 0" from HEAD answers; ours has no body
     * either way, so answer it as the GET-like header-only error it is. */
    r->header_only = 0;
    apr_table_setn(r->headers_out, "Allow", allow);
    return ps_http_explain(r, HTTP_METHOD_NOT_ALLOWED, NULL);
}

int ps_http_body(request_rec *r, const char *ctype, const char *data,
                 apr_size_t len)
{
    r->status = HTTP_OK;
    ap_set_content_type(r, ctype);
    ap_set_content_length(r, (apr_off_t)len);
    if (len) {
        ap_rwrite(data, (int)len, r);
    }
    return DONE;
}

int ps_http_parse_path(request_rec *r, const ps_dir_conf_t *d,
                       apr_array_header_t **out)
{
    const char *err = NULL, *path = "";

    if (d->channels_path) {
        path = ap_expr_str_exec(r, d->channels_path, &err);
        if (err) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "PS0040: cannot "
                          "evaluate PushStreamChannelsPath: %s", err);
            return ps_http_explain(r, HTTP_INTERNAL_SERVER_ERROR, NULL);
        }
    }
    *out = ps_pub_parse_channels(r->pool, path);
    return OK;
}

int ps_http_channels(request_rec *r, const ps_dir_conf_t *d,
                     apr_array_header_t **out)
{
    int rc = ps_http_parse_path(r, d, out);

    if (rc == OK && (*out)->nelts == 0) {
        return ps_http_explain(r, HTTP_BAD_REQUEST, "No channel id provided.");
    }
    return rc;
}

int ps_http_check_ids(request_rec *r, const ps_srv_conf_t *sc,
                      const apr_array_header_t *chans)
{
    ps_answer_t a;

    return ps_pub_check_ids(sc, chans, &a) ? OK : ps_http_answer(r, &a);
}

void ps_http_answer_log(server_rec *s, request_rec *r, const ps_answer_t *a)
{
    char msg[64];
    int level = APLOG_INFO;

    switch (a->log) {
    case PS_ANS_LOG_FULL:
        level = APLOG_ERR;
        break;
    case PS_ANS_LOG_CTRL_ID:
        apr_snprintf(msg, sizeof(msg), "PS0070: channel id with control byte "
                     "0x%02x refused", a->ctrl);
        break;
    default:
        return;
    }
    /* r gives the client's address; the publisher port has no request */
    if (r) {
        ap_log_rerror(APLOG_MARK, level, 0, r, "%s", a->log == PS_ANS_LOG_FULL
                      ? PS_FULL_LOG : msg);
    }
    else {
        ap_log_error(APLOG_MARK, level, 0, s, "%s", a->log == PS_ANS_LOG_FULL
                     ? PS_FULL_LOG : msg);
    }
}

int ps_http_answer(request_rec *r, const ps_answer_t *a)
{
    ps_http_answer_log(r->server, r, a);
    if (a->retry_after) {
        apr_table_setn(r->headers_out, "Retry-After", a->retry_after);
    }
    if (a->allow) {
        return ps_http_not_allowed(r, a->allow);
    }
    if (a->ctype) {
        ps_http_body(r, a->ctype, a->body, a->len);
        r->status = a->status;
        return DONE;
    }
    return ps_http_explain(r, a->status, a->explain);
}

const char *ps_http_value(request_rec *r, ap_expr_info_t *expr,
                          const char *header)
{
    const char *err = NULL, *v;

    if (!expr) {
        return apr_table_get(r->headers_in, header);
    }
    v = ap_expr_str_exec(r, expr, &err);
    if (err) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "PS0041: cannot "
                      "evaluate expression: %s", err);
        return NULL;
    }
    return v && *v ? v : NULL;
}

int ps_http_info_group(request_rec *r, ps_store_t *st,
                       const ps_chinfo_t *infos, int n)
{
    ps_answer_t a;

    ps_pub_info(r->pool, st, infos, n, apr_table_get(r->headers_in, "Accept"),
                1, &a);
    return ps_http_answer(r, &a);
}

int ps_http_existing_info(request_rec *r, ps_store_t *st,
                          const apr_array_header_t *chans)
{
    ps_answer_t a;

    ps_pub_existing_info(r->pool, st, chans,
                         apr_table_get(r->headers_in, "Accept"), &a);
    return ps_http_answer(r, &a);
}
