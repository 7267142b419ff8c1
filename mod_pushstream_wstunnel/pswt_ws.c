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
    if (t->opcode == PSWT_WS_OP_CLOSE) {
        if (t->close_code < 0) {
            t->close_code = t->pos >= 2 ? (t->code[0] << 8) | t->code[1]
                                        : PSWT_WS_CLOSE_NO_STATUS;
        }
    }
    else if (!(t->opcode & 0x8) && t->fin) {
        t->messages++;
        t->msg_size = 0;
    }
}

/* Header at buf (avail bytes): its length, 0 if incomplete, -1 if bad. */
static int pswt_ws_header(pswt_ws_track_t *t, const unsigned char *buf,
                          apr_size_t avail, apr_uint64_t *plen)
{
    int len7, hlen, masked, i;
    apr_uint64_t n;

    if (avail < 2) {
        return 0;
    }
    len7 = buf[1] & 0x7F;
    masked = (buf[1] & 0x80) != 0;
    hlen = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + (masked ? 4 : 0);
    if (avail < (apr_size_t)hlen) {
        return 0;
    }
    if (len7 == 126) {
        n = ((apr_uint64_t)buf[2] << 8) | buf[3];
    }
    else if (len7 == 127) {
        if (buf[2] & 0x80) {
            return -1;
        }
        for (n = 0, i = 2; i < 10; i++) {
            n = (n << 8) | buf[i];
        }
    }
    else {
        n = (apr_uint64_t)len7;
    }
    if (masked) {
        memcpy(t->mask, buf + hlen - 4, 4);
    }
    t->masked = masked;
    *plen = n;
    return hlen;
}

apr_size_t pswt_ws_track(pswt_ws_track_t *t, const unsigned char *buf,
                         apr_size_t len, apr_uint64_t max_message, int strict,
                         pswt_ws_verdict_e *verdict)
{
    apr_size_t pos = 0;

    *verdict = PSWT_WS_OK;
    while (pos < len) {
        apr_uint64_t plen = 0;
        int hlen, op, fin;

        if (t->broken) {
            return len;
        }
        if (t->remaining) {
            apr_size_t n = len - pos;
            if ((apr_uint64_t)n > t->remaining) {
                n = (apr_size_t)t->remaining;
            }
            if (t->opcode == PSWT_WS_OP_CLOSE && t->pos < 2) {
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
        hlen = pswt_ws_header(t, buf + pos, len - pos, &plen);
        if (hlen == 0) {
            *verdict = PSWT_WS_PARTIAL;
            return pos;
        }
        op = buf[pos] & 0x0F;
        fin = (buf[pos] & 0x80) != 0;
        if (hlen < 0 || (op & 0x8 && (plen > 125 || !fin))
            || (op > PSWT_WS_OP_BINARY && op < PSWT_WS_OP_CLOSE) || op > 0xA) {
            t->broken = 1;
            if (strict) {
                *verdict = PSWT_WS_BROKEN;
                return pos;
            }
            return len;
        }
        if (!(op & 0x8)) {
            apr_uint64_t size = op == PSWT_WS_OP_CONT ? t->msg_size + plen
                                                      : plen;
            if (max_message && size > max_message) {
                *verdict = PSWT_WS_TOO_BIG;
                return pos;
            }
            t->msg_size = size;
        }
        t->opcode = op;
        t->fin = fin;
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

apr_size_t pswt_ws_close_frame(unsigned char *buf, int code,
                               const char *reason, const unsigned char *key)
{
    apr_size_t rlen = reason ? strlen(reason) : 0, plen, i;
    unsigned char *p;

    if (rlen > 123) {
        rlen = 123;
    }
    plen = code ? 2 + rlen : 0;
    buf[0] = 0x80 | PSWT_WS_OP_CLOSE;
    buf[1] = (unsigned char)plen | (key ? 0x80 : 0);
    p = buf + 2;
    if (key) {
        memcpy(p, key, 4);
        p += 4;
    }
    if (code) {
        p[0] = (unsigned char)(code >> 8);
        p[1] = (unsigned char)(code & 0xFF);
        memcpy(p + 2, reason, rlen);
    }
    if (key) {
        for (i = 0; i < plen; i++) {
            p[i] ^= key[i & 3];
        }
    }
    return (apr_size_t)(p - buf) + plen;
}
