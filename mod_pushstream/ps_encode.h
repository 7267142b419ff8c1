/* ps_encode.h - a message in a subscriber's transport, encoded once for
 * both paths that send it: the replay on the worker thread (a stream's
 * first bytes, a polling / long-poll answer at once) and live delivery in
 * the loop.  Core: no httpd types (unit-tested in test/unit/test_encode.c).
 *
 * Forms (ps_enc_kind_e):
 *   PS_ENC_PLAIN  the message template, then padding (streaming; long-poll
 *                 and polling bodies, which are never padded)
 *   PS_ENC_ES     an EventSource event (id:/event:/data: lines, see
 *                 ps_eventsource.h), then padding of EventSource form
 *   PS_ENC_WS     a WebSocket text frame of the rendered template
 * Padding (PushStreamPaddingByUserAgent) follows each piece of len bytes:
 * ps_padding_len(len, pad_min, pad_max) bytes. */
#ifndef PS_ENCODE_H
#define PS_ENCODE_H

#include <apr_pools.h>

#include "ps_msgview.h"
#include "ps_template.h"

typedef enum {
    PS_ENC_PLAIN = 0,
    PS_ENC_ES,
    PS_ENC_WS
} ps_enc_kind_e;

typedef struct ps_enc_t {
    int kind;                      /* ps_enc_kind_e */
    const ps_template_t *tpl;      /* message template (NULL = "~text~") */
    apr_size_t pad_min, pad_max;   /* padding after each message; 0 = none */
} ps_enc_t;

/* Exact bytes ps_enc_render_to() writes for m (padding / frame included). */
apr_size_t ps_enc_measure(const ps_enc_t *e, const ps_msgview_t *m);

/* m into buf (ps_enc_measure() bytes); returns the bytes written. */
apr_size_t ps_enc_render_to(const ps_enc_t *e, const ps_msgview_t *m,
                            char *buf);

/* Padding of e's form after a piece of len bytes with minimum min: its
 * length, and the bytes into buf (that many). */
apr_size_t ps_enc_pad_len(const ps_enc_t *e, apr_size_t len, apr_size_t min);
void ps_enc_pad_fill(const ps_enc_t *e, char *buf, apr_size_t n);

/* The first bytes of a stream: the header template hdr[0..hlen) in e's
 * form (EventSource comment lines, a WebSocket frame, as-is), padded with
 * minimum pad_header, then each of msgs[0..n) as ps_enc_render_to() gives
 * it.  A pool string (NUL not counted in *len). */
char *ps_enc_intro(apr_pool_t *p, const ps_enc_t *e, const char *hdr,
                   apr_size_t hlen, apr_size_t pad_header,
                   const ps_msgview_t *msgs, int n, apr_size_t *len);

/* The body of a long-poll or polling answer: hdr, then with a JSONP
 * callback "callback([" m1 "," m2 ... "]);", else the messages one after
 * the other, then ftr.  measure / render_to as above. */
typedef struct ps_enc_body_t {
    const char *hdr, *ftr;         /* header / footer template sources */
    apr_size_t hlen, flen;
    const char *callback;          /* JSONP function name, NULL = none */
} ps_enc_body_t;

apr_size_t ps_enc_body_measure(const ps_enc_t *e, const ps_enc_body_t *b,
                               const ps_msgview_t *msgs, int n);
apr_size_t ps_enc_body_render_to(const ps_enc_t *e, const ps_enc_body_t *b,
                                 const ps_msgview_t *msgs, int n, char *buf);

/* The size line of one HTTP/1.1 chunk of n bytes ("<hex>\r\n") into buf
 * (PS_ENC_CHUNK_HEAD bytes at least); returns its length.  The chunk ends
 * in "\r\n", the body in PS_ENC_LAST_CHUNK. */
#define PS_ENC_CHUNK_HEAD   24
#define PS_ENC_LAST_CHUNK   "0\r\n\r\n"
apr_size_t ps_enc_chunk_head(char *buf, apr_uint64_t n);

#endif
