/* pswt_ws.h - follows the WebSocket frames of one direction of a tunnel
 * (mod_pushstream_wstunnel; shared core: httpd-free, unit-tested in
 * test/unit/test_wstrack.c, fuzzed by test/fuzz/fuzz_wstrack.c).
 *
 * The tunnel forwards bytes unchanged; this only reads frame headers as
 * they pass, so that the proxy knows where frames begin (it may then add a
 * close frame of its own without corrupting the stream), which close code
 * each side sent, how large messages get, and how many frames went by.
 * Payload bytes are never copied or unmasked, except the two bytes of a
 * close code. */
#ifndef PSWT_WS_H
#define PSWT_WS_H

#include <apr.h>

#include "ps_websocket.h"      /* the RFC 6455 codec: opcodes, codes, headers */

typedef enum {
    PSWT_WS_OK = 0,          /* everything may be forwarded */
    PSWT_WS_PARTIAL,         /* a frame header is incomplete: hold it back */
    PSWT_WS_TOO_BIG,         /* a message would exceed the limit */
    PSWT_WS_BROKEN           /* not a WebSocket stream */
} pswt_ws_verdict_e;

typedef struct pswt_ws_track_t {
    apr_uint64_t remaining;      /* payload bytes left in the current frame */
    apr_uint64_t pos;            /* payload bytes seen of the current frame */
    apr_uint64_t msg_size;       /* data message so far (all fragments) */
    apr_uint64_t frames;
    apr_uint64_t messages;       /* complete data messages */
    int opcode;                  /* of the current frame */
    int fin;
    int masked;
    unsigned char mask[4];
    unsigned char code[2];       /* close frame: its status code */
    int close_code;              /* -1: no close frame seen (yet) */
    int broken;                  /* gave up (passive) / protocol error */
} pswt_ws_track_t;

void pswt_ws_track_init(pswt_ws_track_t *t);

/* Feed len bytes that follow what was fed before.  Returns how many may be
 * forwarded; *verdict says why the rest may not (PARTIAL: it starts an
 * incomplete header, feed it again with more bytes; TOO_BIG / BROKEN: the
 * rest starts with the offending frame header).  max_message: 0 = no
 * limit.  strict: BROKEN is reported (frame-aware); otherwise the tracker
 * just stops following a stream it cannot parse and forwards everything. */
apr_size_t pswt_ws_track(pswt_ws_track_t *t, const unsigned char *buf,
                         apr_size_t len, apr_uint64_t max_message, int strict,
                         pswt_ws_verdict_e *verdict);

/* Between frames: a frame of our own may be inserted here. */
int pswt_ws_at_boundary(const pswt_ws_track_t *t);

#endif
