/* ps_transport.h - one subscriber transport behind one interface.
 *
 * Stream (ps_sub_stream.c), EventSource (ps_sub_es.c), WebSocket
 * (ps_sub_ws.c), long-poll (ps_sub_lp.c) and polling (ps_sub_poll.c) each
 * fill one ps_transport_t; the generic subscriber code (ps_sub_handler.c on
 * the worker thread, ps_sub.c in the loop) calls it and never asks which
 * transport it serves.  Messages are encoded by ps_encode.h in the form
 * the transport names (enc_kind), the same bytes for the replay on the
 * worker thread and live delivery in the loop. */
#ifndef PS_TRANSPORT_H
#define PS_TRANSPORT_H

#include <httpd.h>

#include "ps_msgview.h"
#include "ps_encode.h"

struct ps_sub_t;

typedef struct ps_transport_t {
    const char *name;
    int enc_kind;                  /* ps_enc_kind_e of its messages */
    int stream;                    /* stays connected: replay in the intro,
                                      pings, PushStreamSubscriberConnectionTTL */
    int waits;                     /* waits for messages (not polling) */
    int padded;                    /* PushStreamPaddingByUserAgent applies */
    int jsonp;                     /* ?callback= wraps the answer */
    int http_body;                 /* an HTTP body (EOS ends it), not frames */
    const char *ctype;             /* Content-Type of a stream (NULL: none
                                      set here, "text/plain" by default) */

    /* Worker thread.  Before the checks: the handshake (WebSocket 101);
     * OK to go on, else the answer made.  NULL: none. */
    int (*handshake)(request_rec *r);
    /* Worker thread.  A refusal after the handshake (r->status and the
     * explain header say why); NULL: the HTTP answer as made. */
    int (*refuse)(request_rec *r);
    /* Worker thread.  Transport state of a new subscriber, from p. */
    void (*setup)(struct ps_sub_t *sub, apr_pool_t *p);

    /* Loop thread.  A live message (deleted: its channel's last). */
    void (*message)(struct ps_sub_t *sub, const ps_msgview_t *m, int deleted,
                    apr_time_t now);
    /* Loop thread.  Keep-alive ping (stream kinds). */
    void (*ping)(struct ps_sub_t *sub);
    /* Loop thread.  The end: TTL, token expiry, channels gone, stopping
     * child: footer / close frame / long-poll timeout answer. */
    void (*end)(struct ps_sub_t *sub, apr_time_t now);
    /* Loop thread.  Bytes the client sent (WebSocket frames); NULL:
     * nothing is expected. */
    void (*input)(struct ps_sub_t *sub, const char *data, apr_size_t len,
                  apr_time_t now);
} ps_transport_t;

extern const ps_transport_t ps_transport_stream;
extern const ps_transport_t ps_transport_es;
extern const ps_transport_t ps_transport_ws;
extern const ps_transport_t ps_transport_lp;
extern const ps_transport_t ps_transport_poll;

/* The transport of a PushStreamSubscriber mode (PS_SUB_*). */
const ps_transport_t *ps_transport_of(int mode);

#endif
