/* ps_sub_es.c - the EventSource transport (ps_transport.h): a chunked
 * text/event-stream body; messages as events with id: / event: / data:
 * lines (ps_eventsource.h through ps_encode.h), padded for old browsers;
 * pings are comment lines; the footer is comment lines, computed once per
 * subscriber. */

#include "ps_sub.h"
#include "ps_transport.h"
#include "ps_encode.h"
#include "ps_eventsource.h"

static void ps_es_setup(ps_sub_t *sub, apr_pool_t *p)
{
    apr_size_t flen = 0;
    const char *f = sub->d->footer_tpl
                    ? ps_template_source(sub->d->footer_tpl, &flen) : NULL;

    sub->es_footer = ps_es_footer(p, f, flen, &sub->es_footer_len);
}

static void ps_es_ping(ps_sub_t *sub)
{
    ps_sub_queue(sub, PS_ES_PING, PS_ES_PING_LEN);
    ps_sub_queue_padding(sub, PS_ES_PING_LEN);
}

static void ps_es_end(ps_sub_t *sub, apr_time_t now)
{
    ps_sub_queue(sub, sub->es_footer, sub->es_footer_len);
    ps_sub_end(sub, now);
}

const ps_transport_t ps_transport_es = {
    .name = "eventsource",
    .enc_kind = PS_ENC_ES,
    .stream = 1,
    .waits = 1,
    .padded = 1,
    .jsonp = 0,
    .http_body = 1,
    .ctype = "text/event-stream; charset=utf-8",
    .setup = ps_es_setup,
    .message = ps_sub_stream_message,
    .ping = ps_es_ping,
    .end = ps_es_end,
};
