/* ps_encode.c - a message in a subscriber's transport (see ps_encode.h). */

#include <string.h>

#include <apr_strings.h>

#include "ps_encode.h"
#include "ps_eventsource.h"
#include "ps_util.h"
#include "ps_websocket.h"

apr_size_t ps_enc_pad_len(const ps_enc_t *e, apr_size_t len, apr_size_t min)
{
    return e->kind == PS_ENC_WS ? 0 : ps_padding_len(len, min, e->pad_max);
}

void ps_enc_pad_fill(const ps_enc_t *e, char *buf, apr_size_t n)
{
    ps_padding_fill(buf, n, e->kind == PS_ENC_ES);
}

/* The message itself, without padding / frame header. */
static apr_size_t ps_enc_core_len(const ps_enc_t *e, const ps_msgview_t *m)
{
    return e->kind == PS_ENC_ES ? ps_es_message_measure(e->tpl, m)
                                : ps_template_measure(e->tpl, m);
}

apr_size_t ps_enc_measure(const ps_enc_t *e, const ps_msgview_t *m)
{
    apr_size_t len = ps_enc_core_len(e, m);
    unsigned char hdr[PS_WS_MAX_HEADER];

    if (e->kind == PS_ENC_WS) {
        return ps_ws_frame_header(hdr, PS_WS_OP_TEXT, len) + len;
    }
    return len + ps_enc_pad_len(e, len, e->pad_min);
}

apr_size_t ps_enc_render_to(const ps_enc_t *e, const ps_msgview_t *m,
                            char *buf)
{
    apr_size_t len = ps_enc_core_len(e, m), at = 0, pad;
    unsigned char hdr[PS_WS_MAX_HEADER];

    switch (e->kind) {
    case PS_ENC_WS:
        at = ps_ws_frame_header(hdr, PS_WS_OP_TEXT, len);
        memcpy(buf, hdr, at);
        return at + ps_template_render_to(e->tpl, m, buf + at);
    case PS_ENC_ES:
        at = ps_es_message_render_to(e->tpl, m, buf);
        break;
    default:
        at = ps_template_render_to(e->tpl, m, buf);
        break;
    }
    pad = ps_enc_pad_len(e, len, e->pad_min);
    ps_enc_pad_fill(e, buf + at, pad);
    return at + pad;
}

char *ps_enc_intro(apr_pool_t *p, const ps_enc_t *e, const char *hdr,
                   apr_size_t hlen, apr_size_t pad_header,
                   const ps_msgview_t *msgs, int n, apr_size_t *len)
{
    unsigned char fh[PS_WS_MAX_HEADER];
    const char *head = hdr;
    apr_size_t headlen = hlen, fhlen = 0, pad = 0, total;
    char *out, *at;
    int i;

    if (e->kind == PS_ENC_ES) {
        head = ps_es_header(p, hdr, hlen, &headlen);
    }
    else if (e->kind == PS_ENC_WS && hlen) {
        fhlen = ps_ws_frame_header(fh, PS_WS_OP_TEXT, hlen);
    }
    if (hlen) {
        pad = ps_enc_pad_len(e, hlen, pad_header);
    }
    total = fhlen + headlen + pad;
    for (i = 0; i < n; i++) {
        total += ps_enc_measure(e, &msgs[i]);
    }
    at = out = apr_palloc(p, total + 1);
    memcpy(at, fh, fhlen);
    at += fhlen;
    if (headlen) {
        memcpy(at, head, headlen);
        at += headlen;
    }
    ps_enc_pad_fill(e, at, pad);
    at += pad;
    for (i = 0; i < n; i++) {
        at += ps_enc_render_to(e, &msgs[i], at);
    }
    *at = '\0';
    *len = (apr_size_t)(at - out);
    return out;
}

apr_size_t ps_enc_body_measure(const ps_enc_t *e, const ps_enc_body_t *b,
                               const ps_msgview_t *msgs, int n)
{
    apr_size_t total = b->hlen + b->flen;
    int i;

    if (b->callback) {
        total += strlen(b->callback) + 2 + 3 + (n > 1 ? n - 1 : 0);
    }
    for (i = 0; i < n; i++) {
        total += ps_enc_measure(e, &msgs[i]);
    }
    return total;
}

apr_size_t ps_enc_body_render_to(const ps_enc_t *e, const ps_enc_body_t *b,
                                 const ps_msgview_t *msgs, int n, char *buf)
{
    char *at = buf;
    int i;

    if (b->hlen) {
        memcpy(at, b->hdr, b->hlen);
        at += b->hlen;
    }
    if (b->callback) {
        apr_size_t cl = strlen(b->callback);
        memcpy(at, b->callback, cl);
        memcpy(at + cl, "([", 2);
        at += cl + 2;
    }
    for (i = 0; i < n; i++) {
        if (i && b->callback) {
            *at++ = ',';
        }
        at += ps_enc_render_to(e, &msgs[i], at);
    }
    if (b->callback) {
        memcpy(at, "]);", 3);
        at += 3;
    }
    if (b->flen) {
        memcpy(at, b->ftr, b->flen);
        at += b->flen;
    }
    return (apr_size_t)(at - buf);
}

apr_size_t ps_enc_chunk_head(char *buf, apr_uint64_t n)
{
    return (apr_size_t)apr_snprintf(buf, PS_ENC_CHUNK_HEAD,
                                    "%" APR_UINT64_T_HEX_FMT "\r\n", n);
}
