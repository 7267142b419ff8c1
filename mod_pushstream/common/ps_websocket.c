/* ps_websocket.c - RFC 6455 server side.  Core: no httpd types.
 *
 * The parser is a small state machine (frame header -> payload -> header
 * ...) that may be fed input split at any byte.  Client payloads are
 * always masked, so they cannot be handed out in place from the caller's
 * (const) input: each payload byte is unmasked exactly once, while being
 * copied into the message buffer (data frames, reassembled across
 * fragments) or the 125-byte control buffer (so a ping between fragments
 * leaves the message alone).  Text is UTF-8-checked on the same pass, so
 * a bad byte fails the connection as soon as it arrives.
 */
#include <stdlib.h>
#include <string.h>

#include <apr_base64.h>
#include <apr_sha1.h>

#include "ps_websocket.h"

/* ---- UTF-8 ------------------------------------------------------------- */

void ps_utf8_init(ps_utf8_state_t *st)
{
    memset(st, 0, sizeof(*st));
}

/* Index of the first non-ASCII byte in u[i..len), or len. */
static apr_size_t ps_utf8_skip_ascii(const unsigned char *u, apr_size_t i,
                                     apr_size_t len)
{
    apr_uint64_t w;

    while (len - i >= 8) {
        memcpy(&w, u + i, 8);
        if (w & APR_UINT64_C(0x8080808080808080))
            break;
        i += 8;
    }
    while (i < len && u[i] < 0x80)
        i++;
    return i;
}

/* A lead byte: how many continuation bytes follow and the range allowed
 * for the first one (the narrowed ranges exclude overlong forms,
 * surrogates and code points above U+10FFFF).  0 when c cannot start a
 * character. */
static int ps_utf8_lead(ps_utf8_state_t *st, unsigned char c)
{
    st->lo = 0x80;
    st->hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        st->need = 1;
    else if (c == 0xE0)
        st->need = 2, st->lo = 0xA0;
    else if (c == 0xED)
        st->need = 2, st->hi = 0x9F;
    else if (c >= 0xE1 && c <= 0xEF)
        st->need = 2;
    else if (c == 0xF0)
        st->need = 3, st->lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3)
        st->need = 3;
    else if (c == 0xF4)
        st->need = 3, st->hi = 0x8F;
    else
        return 0;
    return 1;
}

static int ps_utf8_cont(ps_utf8_state_t *st, unsigned char c)
{
    if (c < st->lo || c > st->hi)
        return 0;
    st->need--;
    st->lo = 0x80;
    st->hi = 0xBF;
    return 1;
}

int ps_utf8_feed(ps_utf8_state_t *st, const char *s, apr_size_t len,
                 apr_size_t *bad_off)
{
    const unsigned char *u = (const unsigned char *)s;
    apr_size_t i = 0;

    if (st->bad) {
        if (bad_off)
            *bad_off = 0;
        return 0;
    }
    while (i < len) {
        if (st->need == 0) {
            i = ps_utf8_skip_ascii(u, i, len);
            if (i == len)
                break;
            if (!ps_utf8_lead(st, u[i]))
                goto bad;
        }
        else if (!ps_utf8_cont(st, u[i])) {
            goto bad;
        }
        i++;
    }
    return 1;

bad:
    st->bad = 1;
    if (bad_off)
        *bad_off = i;
    return 0;
}

int ps_utf8_complete(const ps_utf8_state_t *st)
{
    return !st->bad && st->need == 0;
}

int ps_utf8_valid(const char *s, apr_size_t len)
{
    ps_utf8_state_t st;

    ps_utf8_init(&st);
    return ps_utf8_feed(&st, s, len, NULL) && ps_utf8_complete(&st);
}

/* ---- handshake and server frames --------------------------------------- */

const char *ps_ws_accept(apr_pool_t *p, const char *key)
{
    apr_sha1_ctx_t ctx;
    unsigned char digest[APR_SHA1_DIGESTSIZE];
    char *out = apr_palloc(p, apr_base64_encode_len(APR_SHA1_DIGESTSIZE));

    apr_sha1_init(&ctx);
    apr_sha1_update(&ctx, key, (unsigned int)strlen(key));
    apr_sha1_update(&ctx, PS_WS_GUID, (unsigned int)strlen(PS_WS_GUID));
    apr_sha1_final(digest, &ctx);
    apr_base64_encode_binary(out, digest, APR_SHA1_DIGESTSIZE);
    return out;
}

apr_size_t ps_ws_frame_header_masked(unsigned char out[PS_WS_MAX_FRAME_HEADER],
                                     int opcode, apr_uint64_t len,
                                     const unsigned char *key)
{
    unsigned char mbit = key ? 0x80 : 0;
    apr_size_t n;
    int i;

    out[0] = (unsigned char)(0x80 | (opcode & 0x0F));
    if (len <= 125) {
        out[1] = (unsigned char)(mbit | len);
        n = 2;
    }
    else if (len <= 0xFFFF) {
        out[1] = mbit | 126;
        out[2] = (unsigned char)(len >> 8);
        out[3] = (unsigned char)len;
        n = 4;
    }
    else {
        out[1] = mbit | 127;
        for (i = 0; i < 8; i++)
            out[2 + i] = (unsigned char)(len >> (56 - 8 * i));
        n = 10;
    }
    if (key) {
        memcpy(out + n, key, 4);
        n += 4;
    }
    return n;
}

apr_size_t ps_ws_frame_header(unsigned char out[PS_WS_MAX_HEADER], int opcode,
                              apr_uint64_t len)
{
    unsigned char h[PS_WS_MAX_FRAME_HEADER];
    apr_size_t n = ps_ws_frame_header_masked(h, opcode, len, NULL);

    memcpy(out, h, n);
    return n;
}

static apr_uint64_t ps_ws_be(const unsigned char *p, int n)
{
    apr_uint64_t v = 0;
    int i;

    for (i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

int ps_ws_header_parse(const unsigned char *buf, apr_size_t avail,
                       ps_ws_header_t *h)
{
    unsigned len7;
    int ext, hlen;

    if (avail < 2)
        return 0;
    len7 = buf[1] & 0x7F;
    ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
    h->masked = (buf[1] & 0x80) != 0;
    hlen = 2 + ext + (h->masked ? 4 : 0);
    if (avail < (apr_size_t)hlen)
        return 0;
    h->fin = (buf[0] & 0x80) != 0;
    h->rsv = (buf[0] >> 4) & 0x07;
    h->opcode = buf[0] & 0x0F;
    h->len = ext ? ps_ws_be(buf + 2, ext) : (apr_uint64_t)len7;
    if (h->len >> 63)
        return -1;
    if (h->masked)
        memcpy(h->key, buf + 2 + ext, 4);
    return hlen;
}

apr_size_t ps_ws_close_payload(char out[PS_WS_MAX_CONTROL], int code,
                               const char *reason, apr_size_t len)
{
    int back = 0;

    if (code <= 0)
        return 0;
    out[0] = (char)((code >> 8) & 0xFF);
    out[1] = (char)(code & 0xFF);
    if (!reason)
        len = 0;
    if (len > PS_WS_MAX_REASON) {
        len = PS_WS_MAX_REASON;
        /* reason[len] is the first byte dropped: while it continues a
         * sequence, that sequence would be cut, so drop it whole (at most
         * 3 steps: longer runs are not UTF-8 anyway). */
        while (back < 3 && len > 0 && ((unsigned char)reason[len] & 0xC0) == 0x80)
            len--, back++;
    }
    if (len)
        memcpy(out + 2, reason, len);
    return 2 + len;
}

apr_size_t ps_ws_close_frame_masked(char out[PS_WS_MAX_CLOSE_FRAME + 4],
                                    int code, const char *reason,
                                    apr_size_t len, const unsigned char *key)
{
    char payload[PS_WS_MAX_CONTROL];
    apr_size_t n = ps_ws_close_payload(payload, code, reason, len);
    apr_size_t h = ps_ws_frame_header_masked((unsigned char *)out,
                                             PS_WS_OP_CLOSE, n, key);

    if (key)
        ps_ws_mask(out + h, payload, n, key, 0);
    else if (n)
        memcpy(out + h, payload, n);
    return h + n;
}

apr_size_t ps_ws_close_frame(char out[PS_WS_MAX_CLOSE_FRAME], int code,
                             const char *reason, apr_size_t len)
{
    char f[PS_WS_MAX_CLOSE_FRAME + 4];
    apr_size_t n = ps_ws_close_frame_masked(f, code, reason, len, NULL);

    memcpy(out, f, n);
    return n;
}

int ps_ws_close_code_valid(int code)
{
    return (code >= 1000 && code <= 1003)
        || (code >= 1007 && code <= 1014)
        || (code >= 3000 && code <= 4999);
}

void ps_ws_mask(char *dst, const char *src, apr_size_t n,
                const unsigned char key[4], apr_size_t off)
{
    unsigned char k[8];
    apr_uint64_t k64, w;
    apr_size_t i;

    /* The key rotated to off, twice: XOR 8 bytes per step. */
    for (i = 0; i < 8; i++)
        k[i] = key[(off + i) & 3];
    memcpy(&k64, k, 8);
    for (i = 0; n - i >= 8; i += 8) {
        memcpy(&w, src + i, 8);
        w ^= k64;
        memcpy(dst + i, &w, 8);
    }
    for (; i < n; i++)
        dst[i] = (char)(src[i] ^ k[i & 7]);
}

/* ---- client frame parser ----------------------------------------------- */

typedef enum {
    PS_WSP_HEADER = 0,
    PS_WSP_PAYLOAD,
    PS_WSP_DONE            /* closed or failed: final is repeated */
} ps_wsp_state_e;

/* A message buffer larger than this is freed after delivery, so an idle
 * connection does not keep its largest message's memory. */
#define PS_WS_KEEP_BUFFER (64 * 1024)
#define PS_WS_MIN_BUFFER  256

struct ps_ws_parser_t {
    apr_size_t max_frame;
    apr_size_t max_message;
    ps_wsp_state_e state;

    /* Current frame header: 2 bytes + 0/2/8 length + 4 mask key. */
    unsigned char hdr[14];
    apr_size_t hdr_have;
    apr_size_t hdr_need;
    int opcode;
    int fin;
    unsigned char key[4];
    apr_uint64_t frame_len;
    apr_uint64_t frame_done;

    /* Data message being reassembled (msg_opcode 0 = none). */
    int msg_opcode;
    char *msg;
    apr_size_t msg_len;
    apr_size_t msg_cap;
    ps_utf8_state_t utf8;
    int msg_delivered;     /* last event pointed into msg: reset next feed */

    char ctrl[PS_WS_MAX_CONTROL];
    ps_ws_event_t final;
};

static apr_status_t ps_ws_parser_cleanup(void *data)
{
    ps_ws_parser_t *ps = data;

    free(ps->msg);
    ps->msg = NULL;
    ps->msg_cap = 0;
    return APR_SUCCESS;
}

ps_ws_parser_t *ps_ws_parser_create(apr_pool_t *p, apr_size_t max_frame,
                                    apr_size_t max_message)
{
    ps_ws_parser_t *ps = apr_pcalloc(p, sizeof(*ps));

    ps->max_frame = max_frame;
    ps->max_message = max_message;
    ps->state = PS_WSP_HEADER;
    ps->hdr_need = 2;
    apr_pool_cleanup_register(p, ps, ps_ws_parser_cleanup,
                              apr_pool_cleanup_null);
    return ps;
}

apr_size_t ps_ws_parser_size(void)
{
    return sizeof(ps_ws_parser_t);
}

void ps_ws_parser_move(ps_ws_parser_t *dst, ps_ws_parser_t *src)
{
    const char *d = src->final.data;

    *dst = *src;
    /* the final event may point into src's own control buffer */
    if (d && d >= src->ctrl && d < src->ctrl + sizeof(src->ctrl)) {
        dst->final.data = dst->ctrl + (d - src->ctrl);
    }
    src->msg = NULL;
    src->msg_cap = 0;
    src->msg_len = 0;
}

void ps_ws_parser_release(ps_ws_parser_t *ps)
{
    ps_ws_parser_cleanup(ps);
}

static int ps_ws_is_control(int opcode)
{
    return opcode >= 0x8;
}

/* Finish for good: ev (and every later call) reports type/code/why. */
static ps_ws_event_e ps_ws_finish(ps_ws_parser_t *ps, ps_ws_event_t *ev,
                                  ps_ws_event_e type, int code,
                                  const char *data, apr_size_t len)
{
    ps->state = PS_WSP_DONE;
    ps->final.type = type;
    ps->final.close_code = code;
    ps->final.data = data;
    ps->final.len = len;
    *ev = ps->final;
    return type;
}

static ps_ws_event_e ps_ws_fail(ps_ws_parser_t *ps, ps_ws_event_t *ev,
                                int code, const char *why)
{
    return ps_ws_finish(ps, ev, PS_WS_ERROR, code, why, strlen(why));
}

static ps_ws_event_e ps_ws_emit(ps_ws_event_t *ev, ps_ws_event_e type,
                                const char *data, apr_size_t len)
{
    ev->type = type;
    ev->data = data;
    ev->len = len;
    ev->close_code = 0;
    return type;
}

/* The message handed out by the previous call is no longer needed. */
static void ps_ws_recycle(ps_ws_parser_t *ps)
{
    if (!ps->msg_delivered)
        return;
    ps->msg_delivered = 0;
    ps->msg_len = 0;
    if (ps->msg_cap > PS_WS_KEEP_BUFFER) {
        free(ps->msg);
        ps->msg = NULL;
        ps->msg_cap = 0;
    }
}

/* Room for need bytes in the message buffer; 0 when out of memory.  The
 * caller has checked need against max_message. */
static int ps_ws_reserve(ps_ws_parser_t *ps, apr_size_t need)
{
    apr_size_t cap = ps->msg_cap ? ps->msg_cap : PS_WS_MIN_BUFFER;
    char *m;

    if (need <= ps->msg_cap)
        return 1;
    while (cap < need)
        cap = cap > APR_SIZE_MAX / 2 ? need : cap * 2;
    if (ps->max_message && cap > ps->max_message)
        cap = ps->max_message;
    m = realloc(ps->msg, cap);
    if (!m)
        return 0;
    ps->msg = m;
    ps->msg_cap = cap;
    return 1;
}

/* First header byte: FIN, RSV, opcode, and whether the opcode fits the
 * fragmentation state. */
static ps_ws_event_e ps_ws_check_byte0(ps_ws_parser_t *ps, ps_ws_event_t *ev)
{
    unsigned char c = ps->hdr[0];
    int op = c & 0x0F;

    ps->fin = (c & 0x80) != 0;
    ps->opcode = op;
    if (c & 0x70)
        return ps_ws_fail(ps, ev, PS_WS_CLOSE_PROTOCOL, "RSV bits set");
    if ((op > PS_WS_OP_BINARY && op < PS_WS_OP_CLOSE) || op > PS_WS_OP_PONG)
        return ps_ws_fail(ps, ev, PS_WS_CLOSE_PROTOCOL, "reserved opcode");
    if (ps_ws_is_control(op) && !ps->fin)
        return ps_ws_fail(ps, ev, PS_WS_CLOSE_PROTOCOL,
                          "fragmented control frame");
    if (op == PS_WS_OP_CONT && !ps->msg_opcode)
        return ps_ws_fail(ps, ev, PS_WS_CLOSE_PROTOCOL,
                          "continuation frame without a message");
    if ((op == PS_WS_OP_TEXT || op == PS_WS_OP_BINARY) && ps->msg_opcode)
        return ps_ws_fail(ps, ev, PS_WS_CLOSE_PROTOCOL,
                          "data frame inside a fragmented message");
    return PS_WS_NEED_MORE;
}

/* Second header byte: mask bit and the 7-bit length, which tells how long
 * the whole header is. */
static ps_ws_event_e ps_ws_check_byte1(ps_ws_parser_t *ps, ps_ws_event_t *ev)
{
    unsigned char c = ps->hdr[1];
    unsigned len7 = c & 0x7F;

    if (!(c & 0x80))
        return ps_ws_fail(ps, ev, PS_WS_CLOSE_PROTOCOL, "unmasked client frame");
    if (ps_ws_is_control(ps->opcode) && len7 > PS_WS_MAX_CONTROL)
        return ps_ws_fail(ps, ev, PS_WS_CLOSE_PROTOCOL,
                          "control frame over 125 bytes");
    ps->hdr_need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4;
    return PS_WS_NEED_MORE;
}

/* Frame length against max_frame / max_message. */
static ps_ws_event_e ps_ws_check_len(ps_ws_parser_t *ps, ps_ws_event_t *ev)
{
    apr_uint64_t len = ps->frame_len;

    if (len >> 63)
        return ps_ws_fail(ps, ev, PS_WS_CLOSE_PROTOCOL,
                          "64-bit length with the top bit set");
    if (ps->max_frame && len > ps->max_frame)
        return ps_ws_fail(ps, ev, PS_WS_CLOSE_TOO_BIG, "frame too big");
    if (ps_ws_is_control(ps->opcode))
        return PS_WS_NEED_MORE;
    if (len > (apr_uint64_t)(APR_SIZE_MAX - ps->msg_len)
        || (ps->max_message && len > ps->max_message - ps->msg_len))
        return ps_ws_fail(ps, ev, PS_WS_CLOSE_TOO_BIG, "message too big");
    return PS_WS_NEED_MORE;
}

static ps_ws_event_e ps_ws_frame_end(ps_ws_parser_t *ps, ps_ws_event_t *ev);

/* The header is complete: decode, check, start the payload. */
static ps_ws_event_e ps_ws_frame_begin(ps_ws_parser_t *ps, ps_ws_event_t *ev)
{
    ps_ws_header_t h;
    ps_ws_event_e rc;

    memset(&h, 0, sizeof(h));
    (void)ps_ws_header_parse(ps->hdr, ps->hdr_have, &h);   /* -1: check_len */
    ps->frame_len = h.len;
    memcpy(ps->key, h.key, 4);
    ps->frame_done = 0;
    rc = ps_ws_check_len(ps, ev);
    if (rc != PS_WS_NEED_MORE)
        return rc;
    if (ps->opcode == PS_WS_OP_TEXT || ps->opcode == PS_WS_OP_BINARY) {
        ps->msg_opcode = ps->opcode;
        ps_utf8_init(&ps->utf8);
    }
    ps->state = PS_WSP_PAYLOAD;
    return ps->frame_len ? PS_WS_NEED_MORE : ps_ws_frame_end(ps, ev);
}

static ps_ws_event_e ps_ws_header_step(ps_ws_parser_t *ps, const char *data,
                                       apr_size_t len, apr_size_t *pos,
                                       ps_ws_event_t *ev)
{
    ps_ws_event_e rc = PS_WS_NEED_MORE;

    while (*pos < len && ps->hdr_have < ps->hdr_need) {
        ps->hdr[ps->hdr_have++] = (unsigned char)data[(*pos)++];
        if (ps->hdr_have == 1)
            rc = ps_ws_check_byte0(ps, ev);
        else if (ps->hdr_have == 2)
            rc = ps_ws_check_byte1(ps, ev);
        if (rc != PS_WS_NEED_MORE)
            return rc;
    }
    if (ps->hdr_have < ps->hdr_need)
        return PS_WS_NEED_MORE;
    return ps_ws_frame_begin(ps, ev);
}

/* Unmask the next slice of payload into its buffer (and check text). */
static ps_ws_event_e ps_ws_payload_step(ps_ws_parser_t *ps, const char *data,
                                        apr_size_t len, apr_size_t *pos,
                                        ps_ws_event_t *ev)
{
    apr_uint64_t left = ps->frame_len - ps->frame_done;
    apr_size_t n = len - *pos;
    char *dst;

    if ((apr_uint64_t)n > left)
        n = (apr_size_t)left;
    if (ps_ws_is_control(ps->opcode)) {
        dst = ps->ctrl + ps->frame_done;
    }
    else {
        if (!ps_ws_reserve(ps, ps->msg_len + n))
            return ps_ws_fail(ps, ev, PS_WS_CLOSE_INTERNAL, "out of memory");
        dst = ps->msg + ps->msg_len;
    }
    ps_ws_mask(dst, data + *pos, n, ps->key, (apr_size_t)(ps->frame_done & 3));
    *pos += n;
    ps->frame_done += n;
    if (!ps_ws_is_control(ps->opcode)) {
        ps->msg_len += n;
        if (ps->msg_opcode == PS_WS_OP_TEXT
            && !ps_utf8_feed(&ps->utf8, dst, n, NULL))
            return ps_ws_fail(ps, ev, PS_WS_CLOSE_INVALID_DATA,
                              "invalid UTF-8 in a text message");
    }
    return ps->frame_done == ps->frame_len ? ps_ws_frame_end(ps, ev)
                                           : PS_WS_NEED_MORE;
}

static ps_ws_event_e ps_ws_close_event(ps_ws_parser_t *ps, ps_ws_event_t *ev)
{
    apr_size_t n = (apr_size_t)ps->frame_len;
    int code;

    if (n == 0)
        return ps_ws_finish(ps, ev, PS_WS_CLOSE, PS_WS_CLOSE_NO_STATUS, "", 0);
    if (n == 1)
        return ps_ws_fail(ps, ev, PS_WS_CLOSE_PROTOCOL, "1-byte close payload");
    code = (int)ps_ws_be((const unsigned char *)ps->ctrl, 2);
    if (!ps_ws_close_code_valid(code))
        return ps_ws_fail(ps, ev, PS_WS_CLOSE_PROTOCOL, "invalid close code");
    if (!ps_utf8_valid(ps->ctrl + 2, n - 2))
        return ps_ws_fail(ps, ev, PS_WS_CLOSE_INVALID_DATA,
                          "invalid UTF-8 in the close reason");
    return ps_ws_finish(ps, ev, PS_WS_CLOSE, code, ps->ctrl + 2, n - 2);
}

/* A data message is complete: hand it out (kept until the next feed). */
static ps_ws_event_e ps_ws_message_event(ps_ws_parser_t *ps, ps_ws_event_t *ev)
{
    int text = ps->msg_opcode == PS_WS_OP_TEXT;

    if (text && !ps_utf8_complete(&ps->utf8))
        return ps_ws_fail(ps, ev, PS_WS_CLOSE_INVALID_DATA,
                          "text message ends inside a UTF-8 sequence");
    ps->msg_opcode = 0;
    ps->msg_delivered = 1;
    return ps_ws_emit(ev, text ? PS_WS_TEXT : PS_WS_BINARY,
                      ps->msg ? ps->msg : "", ps->msg_len);
}

static ps_ws_event_e ps_ws_frame_end(ps_ws_parser_t *ps, ps_ws_event_t *ev)
{
    ps->state = PS_WSP_HEADER;
    ps->hdr_have = 0;
    ps->hdr_need = 2;
    switch (ps->opcode) {
    case PS_WS_OP_PING:
        return ps_ws_emit(ev, PS_WS_PING, ps->ctrl, (apr_size_t)ps->frame_len);
    case PS_WS_OP_PONG:
        return ps_ws_emit(ev, PS_WS_PONG, ps->ctrl, (apr_size_t)ps->frame_len);
    case PS_WS_OP_CLOSE:
        return ps_ws_close_event(ps, ev);
    default:
        return ps->fin ? ps_ws_message_event(ps, ev) : PS_WS_NEED_MORE;
    }
}

ps_ws_event_e ps_ws_feed(ps_ws_parser_t *ps, const char *data, apr_size_t len,
                         apr_size_t *consumed, ps_ws_event_t *ev)
{
    ps_ws_event_e rc = PS_WS_NEED_MORE;
    apr_size_t pos = 0;

    if (ps->state == PS_WSP_DONE) {
        *ev = ps->final;
        *consumed = len;
        return ev->type;
    }
    ps_ws_recycle(ps);
    while (pos < len && rc == PS_WS_NEED_MORE) {
        if (ps->state == PS_WSP_HEADER)
            rc = ps_ws_header_step(ps, data, len, &pos, ev);
        else
            rc = ps_ws_payload_step(ps, data, len, &pos, ev);
    }
    if (rc == PS_WS_NEED_MORE)
        ps_ws_emit(ev, PS_WS_NEED_MORE, NULL, 0);
    *consumed = pos;
    return rc;
}
