/* ps_sub_stream.c - the streaming transport (ps_transport.h): a chunked
 * text/plain body (by default) of messages rendered with the message
 * template, padded for old browsers (ps_encode.h); pings are the ping
 * message through the template; the end is the footer template. */

#include <string.h>

#include "ps_sub.h"
#include "ps_transport.h"
#include "ps_encode.h"

static void ps_stream_ping(ps_sub_t *sub)
{
    ps_msgview_t m = { PS_MSG_ID_PING, sub->sc->ping_text,
                       strlen(sub->sc->ping_text), "", 0, 0, 0, NULL, 0,
                       NULL, 0 };

    ps_sub_queue_encoded(sub, &m);
}

static void ps_stream_end(ps_sub_t *sub, apr_time_t now)
{
    ps_sub_queue_tpl(sub, sub->d->footer_tpl);
    ps_sub_end(sub, now);
}

const ps_transport_t ps_transport_stream = {
    .name = "streaming",
    .enc_kind = PS_ENC_PLAIN,
    .stream = 1,
    .waits = 1,
    .padded = 1,
    .jsonp = 0,
    .http_body = 1,
    .ctype = NULL,
    .message = ps_sub_stream_message,
    .ping = ps_stream_ping,
    .end = ps_stream_end,
};
