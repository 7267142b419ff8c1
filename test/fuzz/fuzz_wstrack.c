/* fuzz_wstrack.c - the tunnel's frame tracker (common/pswt_ws.c) and the
 * shared frame-header codec (common/ps_websocket.c).
 *
 * Input: byte 0 picks strict/passive and the message limit, bytes 1-2 seed
 * the split points, the rest is one direction's byte stream.  Invariants:
 *   - fed whole or cut at data-driven points (a PARTIAL remainder held and
 *     fed again in front of the next bytes, as pswt_forward() does), the
 *     tracker forwards the same bytes, stops at the same place for the same
 *     reason and counts the same frames, messages and close code;
 *   - what is held back is an incomplete header (< 14 bytes); a message
 *     never passes the limit;
 *   - frames built from the input with ps_ws_frame_header_masked() (masked
 *     or not, fragmented or not, close frames with the input as reason)
 *     decode back with ps_ws_header_parse() and are counted exactly. */
#include "ps_fuzz.h"
#include "pswt_ws.h"

static const apr_uint64_t ps_fz_limits[4] = { 0, 1, 64, 1000 };

typedef struct ps_fz_run_t {
    apr_size_t forwarded;
    pswt_ws_verdict_e stop;        /* TOO_BIG / BROKEN, or OK */
    pswt_ws_track_t t;
} ps_fz_run_t;

/* Feed in pieces: cut[] lists the piece lengths (0 = the rest). */
static void ps_fz_feed(ps_fz_run_t *r, const unsigned char *s, size_t n,
                       const size_t *cut, size_t ncut, apr_uint64_t max,
                       int strict)
{
    unsigned char *buf = malloc(n + PS_WS_MAX_FRAME_HEADER + 1);
    size_t pos = 0, hold = 0, k = 0;

    ps_fuzz_assert(buf != NULL);
    pswt_ws_track_init(&r->t);
    r->forwarded = 0;
    r->stop = PSWT_WS_OK;
    while (pos < n) {
        size_t piece = k < ncut && cut[k] ? cut[k] : n - pos, fwd;
        pswt_ws_verdict_e v;

        k++;
        if (piece > n - pos)
            piece = n - pos;
        memcpy(buf + hold, s + pos, piece);
        pos += piece;
        piece += hold;
        fwd = pswt_ws_track(&r->t, buf, piece, max, strict, &v);
        ps_fuzz_assert(fwd <= piece);
        r->forwarded += fwd;
        if (max)
            ps_fuzz_assert(r->t.msg_size <= max);
        if (v == PSWT_WS_PARTIAL) {
            hold = piece - fwd;
            ps_fuzz_assert(hold > 0 && hold < PS_WS_MAX_FRAME_HEADER);
            memmove(buf, buf + fwd, hold);
            continue;
        }
        hold = 0;
        if (v != PSWT_WS_OK) {
            ps_fuzz_assert(strict || v == PSWT_WS_TOO_BIG);
            r->stop = v;
            break;
        }
        ps_fuzz_assert(fwd == piece);
    }
    free(buf);
}

static void ps_fz_same(const ps_fz_run_t *a, const ps_fz_run_t *b)
{
    ps_fuzz_assert(a->forwarded == b->forwarded);
    ps_fuzz_assert(a->stop == b->stop);
    ps_fuzz_assert(a->t.frames == b->t.frames);
    ps_fuzz_assert(a->t.messages == b->t.messages);
    ps_fuzz_assert(a->t.close_code == b->t.close_code);
    ps_fuzz_assert(a->t.broken == b->t.broken);
    ps_fuzz_assert(a->t.msg_size == b->t.msg_size);
    ps_fuzz_assert(a->t.remaining == b->t.remaining);
}

/* Frames built with the shared codec from the input's bytes. */
static void ps_fz_built(const unsigned char *s, size_t n)
{
    unsigned char *out = malloc(n * 2 + 64 * (PS_WS_MAX_CLOSE_FRAME + 4));
    size_t pos = 0, len = 0, frames = 0, messages = 0, i = 0;
    int open_msg = 0, close_code = -1;
    pswt_ws_track_t t;
    pswt_ws_verdict_e v;

    ps_fuzz_assert(out != NULL);
    while (pos < n && i++ < 64) {
        unsigned char c = s[pos++];
        size_t plen = (size_t)(c & 0x1F) * 9;     /* 0..279: 7- and 16-bit lengths */
        const unsigned char *key = (c & 0x40) && n - pos >= 4 ? s + pos : NULL;
        int fin = !(c & 0x80), op;
        ps_ws_header_t h;
        int hl;

        if (key)
            pos += 4;
        if (plen > n - pos)
            plen = n - pos;
        if (c == 0xFF) {                /* a close frame, the rest its reason */
            size_t fl = ps_ws_close_frame_masked((char *)out + len, 1000 + (int)plen,
                                                 (const char *)s + pos, n - pos, key);
            hl = ps_ws_header_parse(out + len, fl, &h);
            ps_fuzz_assert(hl > 0 && h.opcode == PS_WS_OP_CLOSE && h.fin);
            ps_fuzz_assert((size_t)hl + h.len == fl && h.len <= PS_WS_MAX_CONTROL);
            len += fl;
            frames++;
            if (close_code < 0)
                close_code = 1000 + (int)plen;
            break;
        }
        op = open_msg ? PS_WS_OP_CONT : (c & 0x20) ? PS_WS_OP_BINARY : PS_WS_OP_TEXT;
        hl = (int)ps_ws_frame_header_masked(out + len, op, plen, key);
        if (!fin)
            out[len] &= 0x7F;
        ps_fuzz_assert(ps_ws_header_parse(out + len, (size_t)hl - 1, &h) == 0);
        ps_fuzz_assert(ps_ws_header_parse(out + len, (size_t)hl, &h) == hl);
        ps_fuzz_assert(h.opcode == op && h.fin == fin && h.len == plen);
        ps_fuzz_assert(h.masked == (key != NULL) && h.rsv == 0);
        if (key)
            ps_fuzz_assert(!memcmp(h.key, key, 4));
        memcpy(out + len + hl, s + pos, plen);
        len += (size_t)hl + plen;
        pos += plen;
        frames++;
        open_msg = !fin;
        messages += fin;
    }
    pswt_ws_track_init(&t);
    ps_fuzz_assert(pswt_ws_track(&t, out, len, 0, 1, &v) == len);
    ps_fuzz_assert(v == PSWT_WS_OK && !t.broken);
    ps_fuzz_assert(t.frames == frames && t.messages == messages);
    ps_fuzz_assert(t.close_code == close_code);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const unsigned char *s;
    size_t n, cut[16], i;
    unsigned seed;
    apr_uint64_t max;
    int strict;
    ps_fz_run_t whole, split;

    if (size < 3)
        return 0;
    strict = data[0] & 1;
    max = ps_fz_limits[(data[0] >> 1) & 3];
    seed = (unsigned)data[1] << 8 | data[2];
    s = data + 3;
    n = size - 3;
    for (i = 0; i < 16; i++) {
        seed = seed * 1103515245u + 12345u;
        cut[i] = (data[0] & 0x08) ? 1 : (seed >> 16) % 17;
    }
    ps_fz_feed(&whole, s, n, NULL, 0, max, strict);
    ps_fz_feed(&split, s, n, cut, 16, max, strict);
    ps_fz_same(&whole, &split);
    ps_fz_built(s, n);
    return 0;
}
