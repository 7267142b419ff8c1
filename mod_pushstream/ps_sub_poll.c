/* ps_sub_poll.c - the polling transport (ps_transport.h): answered at once
 * on the worker thread with what the store has (ps_sub_answer_now, shared
 * with a long-poll that finds messages), 304 when nothing is new; it never
 * waits, so the loop never sees it. */

#include "ps_transport.h"
#include "ps_encode.h"

const ps_transport_t ps_transport_poll = {
    .name = "polling",
    .enc_kind = PS_ENC_PLAIN,
    .stream = 0,
    .waits = 0,
    .padded = 0,
    .jsonp = 1,
    .http_body = 1,
};
