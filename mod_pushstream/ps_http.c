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

void ps_http_nocache(request_rec *r)
{
    apr_table_setn(r->headers_out, "Expires", "Thu, 01 Jan 1970 00:00:01 GMT");
    apr_table_setn(r->headers_out, "Cache-Control",
                   "no-cache, no-store, must-revalidate");
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
    apr_table_setn(r->headers_out, "Access-Control-Allow-Headers",
                   "If-Modified-Since,If-None-Match,Etag,Event-Id,Event-Type,"
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
    apr_size_t len;
    char *raw;

    if (d->channels_path) {
        path = ap_expr_str_exec(r, d->channels_path, &err);
        if (err) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "PS0040: cannot "
                          "evaluate PushStreamChannelsPath: %s", err);
            return ps_http_explain(r, HTTP_INTERNAL_SERVER_ERROR, NULL);
        }
    }
    raw = ps_path_unescape(r->pool, path ? path : "", path ? strlen(path) : 0,
                           &len);
    *out = ps_path_parse(r->pool, raw, len);
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
    int i;

    for (i = 0; i < chans->nelts; i++) {
        const ps_path_channel_t *ch = &APR_ARRAY_IDX(chans, i,
                                                     ps_path_channel_t);
        if (ps_path_is_restricted(ch->id, ch->len)) {
            return ps_http_explain(r, HTTP_FORBIDDEN,
                                   "Channel id not authorized for this method.");
        }
        if (sc->max_channel_id_length > 0
            && (apr_int64_t)ch->len > sc->max_channel_id_length) {
            return ps_http_explain(r, HTTP_BAD_REQUEST,
                                   "Channel id is too large.");
        }
        /* Control bytes (NUL, CR, LF ... DEL) never name a channel: they
         * would reach logs, stats and templates raw (new, not in nginx). */
        {
            apr_size_t k;
            for (k = 0; k < ch->len; k++) {
                unsigned char c = (unsigned char)ch->id[k];
                if (c < 0x20 || c == 0x7f) {
                    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "PS0070: "
                                  "channel id with control byte 0x%02x "
                                  "refused", c);
                    return ps_http_explain(r, HTTP_BAD_REQUEST,
                                           "Channel id is invalid.");
                }
            }
        }
    }
    return OK;
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

int ps_http_info(request_rec *r, ps_store_t *st, const ps_chinfo_t *infos,
                 int n)
{
    return n == 1 ? ps_http_info_single(r, infos)
                  : ps_http_info_group(r, st, infos, n);
}

int ps_http_info_single(request_rec *r, const ps_chinfo_t *info)
{
    const char *ctype;
    ps_fmt_e fmt = ps_info_format_from_accept(apr_table_get(r->headers_in,
                                                            "Accept"), &ctype);
    apr_size_t len;
    char *doc = ps_info_single(r->pool, fmt, info, &len);

    return ps_http_body(r, ctype, doc, len);
}

int ps_http_info_group(request_rec *r, ps_store_t *st,
                       const ps_chinfo_t *infos, int n)
{
    const char *ctype;
    ps_fmt_e fmt = ps_info_format_from_accept(apr_table_get(r->headers_in,
                                                            "Accept"), &ctype);
    ps_info_header_t h;
    ps_store_stats_t s;
    char host[256];
    apr_size_t len;
    char *doc;

    memset(&s, 0, sizeof(s));
    if (apr_gethostname(host, sizeof(host), r->pool) != APR_SUCCESS) {
        apr_cpystrn(host, "localhost", sizeof(host));
    }
    if (ps_store_lock(st, NULL) == APR_SUCCESS) {
        ps_store_stats_locked(st, &s);
        ps_store_unlock(st);
    }
    h.hostname = apr_pstrdup(r->pool, host);
    h.now = ps_now_sec();
    h.channels = s.channels;
    h.wildcard_channels = s.wildcard_channels;
    h.uptime = (apr_uint64_t)(h.now - s.created);
    doc = ps_info_group(r->pool, fmt, &h, infos, n, &len);
    return ps_http_body(r, ctype, doc, len);
}

int ps_http_existing_info(request_rec *r, ps_store_t *st,
                          const apr_array_header_t *chans)
{
    ps_chinfo_t *infos = apr_pcalloc(r->pool, chans->nelts * sizeof(*infos));
    int i, n = 0;

    if (ps_store_lock(st, NULL) != APR_SUCCESS) {
        return ps_http_explain(r, HTTP_INTERNAL_SERVER_ERROR, NULL);
    }
    for (i = 0; i < chans->nelts; i++) {
        const ps_path_channel_t *pc = &APR_ARRAY_IDX(chans, i,
                                                     ps_path_channel_t);
        ps_channel_t *ch = ps_store_find_locked(st, pc->id, pc->len);
        if (ch) {
            ps_store_channel_info_locked(st, ch, &infos[n]);
            infos[n++].id = pc->id;
        }
    }
    ps_store_unlock(st);
    if (!n) {
        return ps_http_explain(r, HTTP_NOT_FOUND, NULL);
    }
    return ps_http_info(r, st, infos, n);
}
