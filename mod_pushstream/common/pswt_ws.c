/* pswt_ws.c - WebSocket frame tracking (see pswt_ws.h). */

#include <string.h>

#include "pswt_ws.h"

void pswt_ws_track_init(pswt_ws_track_t *t)
{
    memset(t, 0, sizeof(*t));
    t->close_code = -1;
}

int pswt_ws_at_boundary(const pswt_ws_track_t *t)
{
    return !t->broken && t->remaining == 0;
}

/* The current frame's payload is complete. */
static void pswt_ws_frame_done(pswt_ws_track_t *t)
{
    if (t->opcode == PS_WS_OP_CLOSE) {
        if (t->close_code < 0) {
            t->close_code = t->pos >= 2 ? (t->code[0] << 8) | t->code[1]
                                        : PS_WS_CLOSE_NO_STATUS;
        }
    }
    else if (!(t->opcode & 0x8) && t->fin) {
        t->messages++;
        t->msg_size = 0;
    }
}

apr_size_t pswt_ws_track(pswt_ws_track_t *t, const unsigned char *buf,
                         apr_size_t len, apr_uint64_t max_message, int strict,
                         pswt_ws_verdict_e *verdict)
{
    apr_size_t pos = 0;

    *verdict = PSWT_WS_OK;
    while (pos < len) {
        ps_ws_header_t h;
        apr_uint64_t plen;
        int hlen, op, fin;

        if (t->broken) {
            return len;
        }
        if (t->remaining) {
            apr_size_t n = len - pos;
            if ((apr_uint64_t)n > t->remaining) {
                n = (apr_size_t)t->remaining;
            }
            if (t->opcode == PS_WS_OP_CLOSE && t->pos < 2) {
                apr_size_t i;
                for (i = 0; i < n && t->pos + i < 2; i++) {
                    unsigned char ch = buf[pos + i];
                    if (t->masked) {
                        ch ^= t->mask[(t->pos + i) & 3];
                    }
                    t->code[t->pos + i] = ch;
                }
            }
            t->pos += n;
            t->remaining -= n;
            pos += n;
            if (!t->remaining) {
                pswt_ws_frame_done(t);
            }
            continue;
        }
        /* a frame starts here */
        hlen = ps_ws_header_parse(buf + pos, len - pos, &h);
        if (hlen == 0) {
            *verdict = PSWT_WS_PARTIAL;
            return pos;
        }
        op = h.opcode;
        fin = h.fin;
        plen = h.len;
        if (hlen < 0 || (op & 0x8 && (plen > 125 || !fin))
            || (op > PS_WS_OP_BINARY && op < PS_WS_OP_CLOSE) || op > 0xA) {
            t->broken = 1;
            if (strict) {
                *verdict = PSWT_WS_BROKEN;
                return pos;
            }
            return len;
        }
        if (!(op & 0x8)) {
            apr_uint64_t size = op == PS_WS_OP_CONT ? t->msg_size + plen
                                                      : plen;
            if (max_message && size > max_message) {
                *verdict = PSWT_WS_TOO_BIG;
                return pos;
            }
            t->msg_size = size;
        }
        t->opcode = op;
        t->fin = fin;
        t->masked = h.masked;
        memcpy(t->mask, h.key, 4);
        t->frames++;
        t->pos = 0;
        t->remaining = plen;
        pos += (apr_size_t)hlen;
        if (!plen) {
            pswt_ws_frame_done(t);
        }
    }
    return pos;
}
