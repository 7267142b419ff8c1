/* ps_sub_lp.c - the long-polling transport (ps_transport.h), and the
 * answer of a long-poll or a poll that has messages at once.
 *
 * A long-poll waits in the loop for one message, answers it with the body
 * "header, [callback(] message [)], footer" (ps_encode.h: the same bytes
 * as a poll's answer at once) and ends.  At its TTL it answers 304 (or the
 * timed-out message, PushStreamTimeoutWithBody).  Its head: httpd's while
 * the request lives, else written here (ps_lphead.h): a waiting long-poll
 * ends its request early to leave httpd (ps_sub_lp_end_request). */

#include <string.h>

#include <httpd.h>
#include <http_protocol.h>
#include <apr_strings.h>

#include "ps_sub.h"
#include "ps_transport.h"
#include "ps_encode.h"
#include "ps_lphead.h"
#include "ps_util.h"

void ps_sub_lp_headers(request_rec *r, apr_int64_t time, apr_int64_t tag)
{
    char date[PS_HTTP_TIME_LEN + 1];

    ps_format_http_time(date, time);
    apr_table_set(r->headers_out, "Last-Modified", date);
    apr_table_set(r->headers_out, "Etag",
                  apr_psprintf(r->pool, "W/%" APR_INT64_T_FMT, tag));
}

static void ps_lp_body_of(const ps_dir_conf_t *d, const char *callback,
                          ps_enc_body_t *b)
{
    memset(b, 0, sizeof(*b));
    if (d->header_tpl) {
        b->hdr = ps_template_source(d->header_tpl, &b->hlen);
    }
    if (d->footer_tpl) {
        b->ftr = ps_template_source(d->footer_tpl, &b->flen);
    }
    b->callback = callback;
}

static void ps_lp_content_type(request_rec *r, const char *callback)
{
    if (callback) {
        ap_set_content_type(r, "application/javascript");
    }
    else if (!r->content_type) {
        ap_set_content_type(r, "text/plain");
    }
}

int ps_sub_answer_now(request_rec *r, const ps_dir_conf_t *d,
                      const ps_enc_t *e, const char *callback,
                      const apr_array_header_t *msgs, apr_int64_t since,
                      apr_int64_t tag)
{
    const ps_msgview_t *all = (const ps_msgview_t *)msgs->elts, *newest = NULL;
    apr_bucket_brigade *bb;
    ps_enc_body_t b;
    apr_size_t len;
    char *buf;
    int i;

    if (!msgs->nelts) {
        r->status = HTTP_NOT_MODIFIED;
        if (since > 0) {
            char date[PS_HTTP_TIME_LEN + 1];
            ps_format_http_time(date, since);
            apr_table_set(r->headers_out, "Last-Modified", date);
        }
        if (tag >= 0) {
            apr_table_set(r->headers_out, "Etag", apr_psprintf(r->pool,
                          "W/%" APR_INT64_T_FMT, tag));
        }
        return DONE;
    }
    for (i = 0; i < msgs->nelts; i++) {
        const ps_msgview_t *m = &all[i];
        if (!newest || m->time > newest->time
            || (m->time == newest->time && m->tag > newest->tag)) {
            newest = m;
        }
    }
    ps_lp_body_of(d, callback, &b);
    len = ps_enc_body_measure(e, &b, all, msgs->nelts);
    buf = apr_palloc(r->pool, len + 1);
    ps_enc_body_render_to(e, &b, all, msgs->nelts, buf);
    bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_pool_create(buf, len, r->pool,
                                                       bb->bucket_alloc));
    r->status = HTTP_OK;
    ps_lp_content_type(r, callback);
    ps_sub_lp_headers(r, newest->time, newest->tag);
    ap_set_content_length(r, (apr_off_t)len);
    ap_pass_brigade(r->output_filters, bb);
    return DONE;
}

/* A long-poll whose request has ended: the head of its answer, before
 * what is queued (the body, or nothing for a 304). */
static void ps_lp_raw_head(ps_sub_t *sub, int not_modified,
                           apr_int64_t time, apr_int64_t tag)
{
    apr_size_t cap = ps_lphead_size(strlen(sub->lp_head), strlen(sub->lp_ctype));
    char *buf = apr_bucket_alloc(cap, sub->ba);
    apr_size_t len = ps_lphead_render(buf, cap, not_modified, sub->lp_head,
                                      sub->lp_ctype, time, tag,
                                      sub->pending_bytes);

    APR_BRIGADE_INSERT_HEAD(sub->pending, apr_bucket_heap_create(
        buf, len, apr_bucket_free, sub->ba));
    sub->pending_bytes += len;
}

/* Long-poll answer with body (a message or the timed-out message). */
static void ps_lp_answer(ps_sub_t *sub, const ps_msgview_t *m,
                         apr_int64_t time, apr_int64_t tag)
{
    request_rec *r = sub->r;
    ps_enc_body_t b;
    apr_size_t len;
    char *buf;

    ps_lp_body_of(sub->d, sub->callback, &b);
    len = ps_enc_body_measure(&sub->enc, &b, m, 1);
    buf = apr_bucket_alloc(len ? len : 1, sub->ba);
    ps_enc_body_render_to(&sub->enc, &b, m, 1, buf);
    APR_BRIGADE_INSERT_TAIL(sub->pending, apr_bucket_heap_create(
        buf, len, apr_bucket_free, sub->ba));
    sub->pending_bytes += len;
    if (!r) {
        ps_lp_raw_head(sub, 0, time, tag);
        return;
    }
    r->status = HTTP_OK;
    ps_lp_content_type(r, sub->callback);
    ps_sub_lp_headers(r, time, tag);
    ap_set_content_length(r, (apr_off_t)sub->pending_bytes);
}

/* The long-poll timeout as push-stream sends it: 304 with Last-Modified,
 * Etag: W/0 and Content-Length: 0.  httpd's header filter drops the last
 * one from any 304, so the head (ps_lphead.h) goes past the HTTP filters. */
static void ps_lp_raw_304(ps_sub_t *sub, apr_int64_t secs)
{
    request_rec *r = sub->r;
    const char *snap;
    apr_size_t cap;
    char *buf;

    ps_sub_lp_headers(r, secs, 0);               /* (for the log) */
    snap = ps_lphead_snapshot(r, r->pool);
    cap = ps_lphead_size(strlen(snap), 0);
    buf = apr_palloc(r->pool, cap);
    ps_sub_queue(sub, buf, ps_lphead_render(buf, cap, 1, snap, "", secs, 0, 0));
    r->status = HTTP_NOT_MODIFIED;
    r->output_filters = r->proto_output_filters = sub->c->output_filters;
    sub->raw_head = 1;
}

static void ps_lp_end(ps_sub_t *sub, apr_time_t now)
{
    apr_int64_t secs = (apr_int64_t)apr_time_sec(now);

    if (sub->sc->timeout_with_body) {
        ps_msgview_t m = { PS_MSG_ID_TIMEDOUT, "Timed out", 9, "", 0, 0, 0,
                           NULL, 0, NULL, 0 };
        ps_lp_answer(sub, &m, secs, 0);
    }
    else if (!sub->r) {
        ps_lp_raw_head(sub, 1, secs, 0);
    }
    else if (!sub->fallback && sub->r->proto_num >= HTTP_VERSION(1, 1)) {
        ps_lp_raw_304(sub, secs);
    }
    else {
        /* the handler's thread finishes this one through httpd's filters */
        sub->r->status = HTTP_NOT_MODIFIED;
        ps_sub_lp_headers(sub->r, secs, 0);
    }
    ps_sub_end(sub, now);
}

/* One message answers the long-poll, which then ends. */
static void ps_lp_message(ps_sub_t *sub, const ps_msgview_t *m, int deleted,
                          apr_time_t now)
{
    apr_int64_t secs = (apr_int64_t)apr_time_sec(now);

    ps_lp_answer(sub, m, deleted ? secs : m->time, deleted ? 0 : m->tag);
    ps_sub_end(sub, now);
}

const ps_transport_t ps_transport_lp = {
    .name = "long-polling",
    .enc_kind = PS_ENC_PLAIN,
    .stream = 0,
    .waits = 1,
    .padded = 0,
    .jsonp = 1,
    .http_body = 1,
    .message = ps_lp_message,
    .end = ps_lp_end,
};
