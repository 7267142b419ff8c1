/* ps_sub_ws.c - the WebSocket transport (ps_transport.h).
 *
 * Handshake (B10) on the worker thread: the exact 400s, else the 101; a
 * refusal after it is a close frame 1008.  Messages are text frames
 * (ps_encode.h); pings are ping frames; the end is the footer as a text
 * frame and a close frame.  The client's frames are parsed in the loop
 * (ps_websocket.h): text is published to the subscriber's channels when
 * PushStreamWebsocketAllowPublish is on (ps_ws_publish, the one publish
 * path ps_pub_store), pings answered, a close echoed. */

#include <string.h>
#include <stdlib.h>

#include <httpd.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <apr_strings.h>

#include "ps_sub.h"
#include "ps_transport.h"
#include "ps_encode.h"
#include "ps_websocket.h"
#include "ps_http.h"
#include "ps_h2.h"
#include "ps_publish.h"

APLOG_USE_MODULE(pushstream);

/* Largest WebSocket frame/message when PushStreamWebsocketMaxFrameSize is
 * not set. */
#define PS_WS_DEFAULT_MAX (1024 * 1024)

/* A WebSocket frame with this payload. */
static void ps_ws_queue_frame(ps_sub_t *sub, int opcode, const char *data,
                              apr_size_t len)
{
    unsigned char hdr[PS_WS_MAX_HEADER];
    apr_size_t hlen = ps_ws_frame_header(hdr, opcode, len);
    char *buf = apr_bucket_alloc(hlen + len, sub->ba);

    memcpy(buf, hdr, hlen);
    if (len) {
        memcpy(buf + hlen, data, len);
    }
    APR_BRIGADE_INSERT_TAIL(sub->pending, apr_bucket_heap_create(
        buf, hlen + len, apr_bucket_free, sub->ba));
    sub->pending_bytes += hlen + len;
}

/* WebSocket handshake (B10): the exact 400s, else the 101 goes out now and
 * the request's filters become the connection's (no HTTP framing). */
static int ps_ws_upgrade(request_rec *r)
{
    conn_rec *c = r->connection;
    const char *key = apr_table_get(r->headers_in, "Sec-WebSocket-Key");
    const char *ver = apr_table_get(r->headers_in, "Sec-WebSocket-Version");

    if (!apr_table_get(r->headers_in, "Upgrade")
        || !apr_table_get(r->headers_in, "Connection") || !key || !ver) {
        return ps_http_explain(r, HTTP_BAD_REQUEST, "Don't have at least one of "
                               "the mandatory headers: Connection, Upgrade, "
                               "Sec-WebSocket-Key and Sec-WebSocket-Version");
    }
    if (strcmp(ver, "8") && strcmp(ver, "13")) {
        apr_table_setn(r->headers_out, "Sec-WebSocket-Version", "8, 13");
        return ps_http_explain(r, HTTP_BAD_REQUEST, "Version not supported. "
                               "Supported versions: 8, 13");
    }
    r->status = HTTP_SWITCHING_PROTOCOLS;
    r->status_line = ap_get_status_line(HTTP_SWITCHING_PROTOCOLS);
    apr_table_setn(r->headers_out, "Upgrade", "WebSocket");
    apr_table_setn(r->headers_out, "Connection", "Upgrade");
    apr_table_setn(r->headers_out, "Sec-WebSocket-Accept",
                   ps_ws_accept(r->pool, key));
    ap_send_interim_response(r, 1);
    r->output_filters = r->proto_output_filters = c->output_filters;
    r->input_filters = r->proto_input_filters = c->input_filters;
    c->keepalive = AP_CONN_CLOSE;
    return OK;
}

/* After the 101 a refusal is a close frame 1008 carrying the would-be
 * status and explain text as JSON (what push-stream sends). */
static int ps_ws_refuse(request_rec *r)
{
    const char *explain = apr_table_get(r->headers_out, PS_EXPLAIN_HEADER);
    char *reason = apr_psprintf(r->pool, "{\"http_status\": %d, \"explain\":"
                                "\"%s\"}", r->status, explain ? explain : "");
    char frame[PS_WS_MAX_CLOSE_FRAME];
    apr_size_t len = ps_ws_close_frame(frame, PS_WS_CLOSE_POLICY, reason,
                                       strlen(reason));
    apr_bucket_brigade *bb = apr_brigade_create(r->pool,
                                                r->connection->bucket_alloc);

    apr_brigade_write(bb, NULL, NULL, frame, len);
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_flush_create(bb->bucket_alloc));
    ap_pass_brigade(r->connection->output_filters, bb);
    r->status = HTTP_SWITCHING_PROTOCOLS;
    return DONE;
}

/* GET over HTTP/1.1 only, then the handshake. */
static int ps_ws_handshake(request_rec *r)
{
    if (r->method_number != M_GET || r->header_only) {
        return ps_http_not_allowed(r, "GET");
    }
    if (ps_h2_is_stream(r->connection)) {
        /* RFC 8441 (H2WebSockets on): the frames would need the h2
         * worker's reads; refused plainly, the client can use 1.1 */
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "PS0103: WebSocket "
                      "over HTTP/2 refused (501)");
        return ps_http_explain(r, HTTP_NOT_IMPLEMENTED, "WebSocket over "
                               "HTTP/2 is not supported: connect over "
                               "HTTP/1.1.");
    }
    ps_http_nocache(r);
    return ps_ws_upgrade(r);
}

static void ps_ws_setup(ps_sub_t *sub, apr_pool_t *p)
{
    apr_size_t max = sub->d->ws_max_frame != PS_UNSET
                     ? (apr_size_t)sub->d->ws_max_frame : PS_WS_DEFAULT_MAX;

    if ((apr_off_t)max > sub->sc->max_message_size) {
        max = (apr_size_t)sub->sc->max_message_size;
    }
    sub->ws = ps_ws_parser_create(p, max, max);
}

/* WebSocket: a text message is published to the subscriber's channels
 * (PushStreamWebsocketAllowPublish), like a POST to a publisher: through
 * the one publish path, all channels or none. */
static void ps_ws_publish(ps_sub_t *sub, const char *text, apr_size_t len)
{
    ps_path_channel_t small[8], *pc = small;
    apr_array_header_t chans;
    ps_answer_t a;
    int i;

    if (sub->nchan > 8 && !(pc = malloc(sub->nchan * sizeof(*pc)))) {
        return;
    }
    memset(&chans, 0, sizeof(chans));
    chans.elt_size = sizeof(*pc);
    chans.elts = (char *)pc;
    for (i = 0; i < sub->nchan; i++) {
        if (!sub->chans[i].deleted) {
            pc[chans.nelts].id = sub->chans[i].id;
            pc[chans.nelts].len = sub->chans[i].len;
            pc[chans.nelts++].backtrack = 0;
        }
    }
    chans.nalloc = chans.nelts;
    if (chans.nelts && !ps_pub_store_nowait(sub->child->store, sub->d,
                                            sub->sc, &chans, text, len,
                                            sub->child->s, &a)) {
        ps_sub_log(sub, APLOG_ERR, 0, "PS0022: WebSocket message not "
                   "published: %d %s%s", a.status, a.explain ? a.explain : "",
                   a.log == PS_ANS_LOG_FULL ? " (raise "
                   "PushStreamSharedMemorySize)" : "");
    }
    if (pc != small) {
        free(pc);
    }
}

/* Close the WebSocket with code (0: no code) and end. */
static void ps_ws_close(ps_sub_t *sub, int code, apr_time_t now)
{
    char frame[PS_WS_MAX_CLOSE_FRAME];
    apr_size_t len = ps_ws_close_frame(frame, code, NULL, 0);

    ps_sub_queue(sub, frame, len);
    ps_sub_end(sub, now);
}

static void ps_ws_event(ps_sub_t *sub, const ps_ws_event_t *ev,
                            apr_time_t now)
{
    switch (ev->type) {
    case PS_WS_TEXT:
        if (sub->d->ws_allow_publish == 1 && sub->auth_nopub) {
            /* PushStreamAuth: publishing needs a publish grant */
            ps_sub_log(sub, APLOG_INFO, 0, "PS0122: WebSocket message not "
                       "published: the token does not grant publish to "
                       "every channel; closed with 1008");
            ps_store_count_auth(sub->child->store, 1);
            ps_ws_close(sub, PS_WS_CLOSE_POLICY, now);
        }
        else if (sub->d->ws_allow_publish == 1) {
            ps_ws_publish(sub, ev->data, ev->len);
        }
        break;
    case PS_WS_BINARY:
        ps_ws_close(sub, PS_WS_CLOSE_UNSUPPORTED, now);
        break;
    case PS_WS_PING:
        ps_ws_queue_frame(sub, PS_WS_OP_PONG, ev->data, ev->len);
        break;
    case PS_WS_CLOSE:
        /* echo the peer's code; none given (1005) means an empty close */
        ps_ws_close(sub, ev->close_code == PS_WS_CLOSE_NO_STATUS
                             ? 0 : ev->close_code, now);
        break;
    case PS_WS_ERROR:
        ps_sub_log(sub, APLOG_DEBUG, 0, "PS0023: WebSocket closed with %d: "
                   "%s", ev->close_code, ev->data ? ev->data : "");
        ps_ws_close(sub, ev->close_code, now);
        break;
    default:
        break;
    }
}

/* Feed client bytes to the frame parser while the subscriber is active. */
static void ps_ws_input(ps_sub_t *sub, const char *data, apr_size_t len,
                            apr_time_t now)
{
    apr_size_t used;
    ps_ws_event_t ev;

    while (len && sub->state == PS_SUBST_ACTIVE) {
        if (ps_ws_feed(sub->ws, data, len, &used, &ev) == PS_WS_NEED_MORE) {
            break;
        }
        data += used;
        len -= used;
        ps_ws_event(sub, &ev, now);
    }
}

static void ps_ws_ping(ps_sub_t *sub)
{
    ps_ws_queue_frame(sub, PS_WS_OP_PING, NULL, 0);
}

/* The footer as a text frame, then a close frame (sub->ws_close_code). */
static void ps_ws_end(ps_sub_t *sub, apr_time_t now)
{
    apr_size_t len;
    const char *f = sub->d->footer_tpl
                    ? ps_template_source(sub->d->footer_tpl, &len) : NULL;
    char frame[PS_WS_MAX_CLOSE_FRAME];

    if (f && len) {
        ps_ws_queue_frame(sub, PS_WS_OP_TEXT, f, len);
    }
    len = ps_ws_close_frame(frame, sub->ws_close_code, NULL, 0);
    ps_sub_queue(sub, frame, len);
    ps_sub_end(sub, now);
}

const ps_transport_t ps_transport_ws = {
    .name = "websocket",
    .enc_kind = PS_ENC_WS,
    .stream = 1,
    .waits = 1,
    .padded = 0,
    .jsonp = 0,
    .http_body = 0,
    .ctype = NULL,
    .handshake = ps_ws_handshake,
    .refuse = ps_ws_refuse,
    .setup = ps_ws_setup,
    .message = ps_sub_stream_message,
    .ping = ps_ws_ping,
    .end = ps_ws_end,
    .input = ps_ws_input,
};
