/* fuzz_websocket.c - the RFC 6455 client-frame parser and UTF-8 validator
 * (ps_websocket.c).
 *
 * Input: byte 0 picks the limits (max_frame, max_message) and the split
 * style, bytes 1-2 seed the split points, the rest is the client byte
 * stream.  Invariants:
 *   - feeding the stream whole or cut at data-driven points gives the same
 *     events (type, payload, close code);
 *   - every event respects the documented contract (valid UTF-8 text,
 *     control payloads <= 125 bytes, limits, close codes);
 *   - each message re-encoded as a masked client frame (also fragmented)
 *     parses back to itself; masking twice is the identity;
 *   - the incremental UTF-8 validator agrees with a reference decoder,
 *     however the input is split;
 *   - close payloads stay <= 125 bytes and keep a valid reason valid.
 */
#include "ps_fuzz.h"
#include "ps_websocket.h"

typedef struct ps_fz_event_t {
    ps_ws_event_e type;
    int code;
    char *data;
    size_t len;
} ps_fz_event_t;

typedef struct ps_fz_log_t {
    ps_fz_event_t *ev;
    size_t n, cap;
} ps_fz_log_t;

static const apr_size_t ps_fz_frames[4] = { 0, 16, 125, 1000 };
static const apr_size_t ps_fz_messages[4] = { 0, 32, 300, 70000 };

static void ps_fz_log_add(ps_fz_log_t *log, const ps_ws_event_t *ev)
{
    ps_fz_event_t *e;

    if (log->n == log->cap) {
        log->cap = log->cap ? log->cap * 2 : 16;
        log->ev = realloc(log->ev, log->cap * sizeof(*log->ev));
        ps_fuzz_assert(log->ev != NULL);
    }
    e = &log->ev[log->n++];
    e->type = ev->type;
    e->code = ev->close_code;
    e->len = ev->len;
    e->data = ps_fuzz_dup(ev->data, ev->len);
}

static void ps_fz_log_free(ps_fz_log_t *log)
{
    size_t i;

    for (i = 0; i < log->n; i++)
        free(log->ev[i].data);
    free(log->ev);
}

/* The contract of one event (ps_websocket.h). */
static void ps_fz_check_event(const ps_ws_event_t *ev, apr_size_t max_frame,
                              apr_size_t max_message)
{
    ps_fuzz_assert(ev->data != NULL);
    switch (ev->type) {
    case PS_WS_TEXT:
        ps_fuzz_assert(ps_utf8_valid(ev->data, ev->len));
        /* fall through */
    case PS_WS_BINARY:
        ps_fuzz_assert(!max_message || ev->len <= max_message);
        ps_fuzz_assert(ev->close_code == 0);
        break;
    case PS_WS_PING:
    case PS_WS_PONG:
        ps_fuzz_assert(ev->len <= PS_WS_MAX_CONTROL);
        ps_fuzz_assert(!max_frame || ev->len <= max_frame);
        break;
    case PS_WS_CLOSE:
        ps_fuzz_assert(ev->len <= PS_WS_MAX_REASON);
        ps_fuzz_assert(ev->close_code == PS_WS_CLOSE_NO_STATUS
                       || ps_ws_close_code_valid(ev->close_code));
        ps_fuzz_assert(ps_utf8_valid(ev->data, ev->len));
        break;
    case PS_WS_ERROR:
        ps_fuzz_assert(ev->close_code == PS_WS_CLOSE_PROTOCOL
                       || ev->close_code == PS_WS_CLOSE_INVALID_DATA
                       || ev->close_code == PS_WS_CLOSE_TOO_BIG
                       || ev->close_code == PS_WS_CLOSE_INTERNAL);
        ps_fuzz_assert(ev->len > 0);
        break;
    default:
        ps_fuzz_assert(0);
    }
}

/* Feed s[0..n) in chunks (chunk_max 0 = whole) and log every event until
 * the parser is finished. */
static void ps_fz_run(apr_pool_t *p, const char *s, size_t n,
                      apr_size_t max_frame, apr_size_t max_message,
                      uint32_t seed, size_t chunk_max, ps_fz_log_t *log)
{
    ps_ws_parser_t *ps = ps_ws_parser_create(p, max_frame, max_message);
    size_t off = 0;
    ps_ws_event_t ev;
    apr_size_t used;

    while (off < n) {
        size_t chunk = chunk_max ? 1 + ps_fuzz_rand(&seed) % chunk_max : n;
        /* a heap copy of exactly the chunk: reads past it are caught */
        char *buf = ps_fuzz_dup(s + off, chunk = chunk > n - off ? n - off : chunk);
        size_t pos = 0;

        while (pos < chunk) {
            ps_ws_event_e rc = ps_ws_feed(ps, buf + pos, chunk - pos, &used,
                                          &ev);
            ps_fuzz_assert(rc == ev.type);
            ps_fuzz_assert(used <= chunk - pos);
            if (rc == PS_WS_NEED_MORE) {
                ps_fuzz_assert(used == chunk - pos);
                ps_fuzz_assert(ev.data == NULL && ev.len == 0);
            }
            else {
                ps_fuzz_assert(used > 0);
                ps_fz_check_event(&ev, max_frame, max_message);
                ps_fz_log_add(log, &ev);
                if (rc == PS_WS_CLOSE || rc == PS_WS_ERROR) {
                    ps_ws_event_t again;
                    /* finished: the same event again, all input eaten */
                    ps_fuzz_assert(ps_ws_feed(ps, "x", 1, &used, &again) == rc);
                    ps_fuzz_assert(used == 1 && again.close_code == ev.close_code);
                    free(buf);
                    return;
                }
            }
            pos += used;
        }
        free(buf);
        off += chunk;
    }
}

static void ps_fz_same_logs(const ps_fz_log_t *a, const ps_fz_log_t *b)
{
    size_t i;

    ps_fuzz_assert(a->n == b->n);
    for (i = 0; i < a->n; i++) {
        ps_fuzz_assert(a->ev[i].type == b->ev[i].type);
        ps_fuzz_assert(a->ev[i].code == b->ev[i].code);
        ps_fuzz_assert(a->ev[i].len == b->ev[i].len);
        ps_fuzz_assert(a->ev[i].type == PS_WS_ERROR
                       || memcmp(a->ev[i].data, b->ev[i].data, a->ev[i].len) == 0);
    }
}

/* Append one masked client frame (fin / opcode) for payload[0..n). */
static size_t ps_fz_frame(char *out, int fin, int opcode, const char *payload,
                          size_t n, const unsigned char key[4])
{
    unsigned char hdr[PS_WS_MAX_HEADER];
    size_t h = ps_ws_frame_header(hdr, opcode, n);

    if (!fin)
        hdr[0] &= 0x7F;
    hdr[1] |= 0x80;
    memcpy(out, hdr, h);
    memcpy(out + h, key, 4);
    ps_ws_mask(out + h + 4, payload, n, key, 0);
    return h + 4 + n;
}

/* A message re-encoded (whole and as two fragments) parses back to itself. */
static void ps_fz_roundtrip(apr_pool_t *p, const ps_fz_event_t *e,
                            apr_size_t max_frame, apr_size_t max_message,
                            uint32_t seed)
{
    unsigned char key[4];
    int op = e->type == PS_WS_TEXT ? PS_WS_OP_TEXT : PS_WS_OP_BINARY;
    size_t cut = e->len ? ps_fuzz_rand(&seed) % (e->len + 1) : 0, n;
    char *wire = malloc(2 * (PS_WS_MAX_HEADER + 4) + e->len + 1);
    ps_fz_log_t log = { 0 };
    int frag;

    ps_fuzz_assert(wire != NULL);
    memcpy(key, &seed, 4);
    for (frag = 0; frag < 2; frag++) {
        if (frag && max_frame && (cut > max_frame || e->len - cut > max_frame))
            break;
        n = frag ? ps_fz_frame(wire, 0, op, e->data, cut, key)
                 : ps_fz_frame(wire, 1, op, e->data, e->len, key);
        if (frag)
            n += ps_fz_frame(wire + n, 1, PS_WS_OP_CONT, e->data + cut,
                             e->len - cut, key);
        ps_fz_run(p, wire, n, frag ? max_frame : 0, max_message, seed, 7, &log);
        ps_fuzz_assert(log.n == 1 && log.ev[0].type == e->type);
        ps_fuzz_assert(log.ev[0].len == e->len);
        ps_fuzz_assert(memcmp(log.ev[0].data, e->data, e->len) == 0);
        ps_fz_log_free(&log);
        memset(&log, 0, sizeof(log));
    }
    free(wire);
}

/* ---- UTF-8 --------------------------------------------------------------- */

/* 1 when some code point in [cp << rest, (cp << rest) | ones] is a valid
 * scalar value of the sequence length (not overlong, not above U+10FFFF,
 * not entirely surrogates). */
static int ps_fz_utf8_possible(unsigned cp, unsigned rest, unsigned min)
{
    unsigned lo = cp << rest, hi = lo | ((1u << rest) - 1);

    return hi >= min && lo <= 0x10FFFF && !(lo >= 0xD800 && hi <= 0xDFFF);
}

/* Reference decoder: offset of the first byte that makes the input
 * invalid (as early as the prefix rules every completion out), or n when
 * valid so far; *partial says whether it ends inside a character. */
static size_t ps_fz_utf8_ref(const unsigned char *s, size_t n, int *partial)
{
    size_t i = 0, k;

    *partial = 0;
    while (i < n) {
        unsigned c = s[i], need, cp, min;

        if (c < 0x80) { i++; continue; }
        if (c >= 0xC0 && c < 0xE0)      need = 1, cp = c & 0x1F, min = 0x80;
        else if (c >= 0xE0 && c < 0xF0) need = 2, cp = c & 0x0F, min = 0x800;
        else if (c >= 0xF0 && c < 0xF8) need = 3, cp = c & 0x07, min = 0x10000;
        else return i;
        if (!ps_fz_utf8_possible(cp, 6 * need, min))
            return i;
        for (k = 1; k <= need; k++) {
            if (i + k == n) {
                *partial = 1;
                return n;
            }
            if ((s[i + k] & 0xC0) != 0x80)
                return i + k;
            cp = (cp << 6) | (s[i + k] & 0x3F);
            if (!ps_fz_utf8_possible(cp, 6 * (need - k), min))
                return i + k;
        }
        i += need + 1;
    }
    return n;
}

static void ps_fz_utf8(const char *s, size_t n, uint32_t seed)
{
    int partial;
    size_t ref = ps_fz_utf8_ref((const unsigned char *)s, n, &partial);
    ps_utf8_state_t st;
    apr_size_t bad = 0;
    size_t off = 0;
    int ok = 1;

    ps_utf8_init(&st);
    while (off < n && ok) {
        size_t chunk = 1 + ps_fuzz_rand(&seed) % 9;
        char *buf = ps_fuzz_dup(s + off, chunk = chunk > n - off ? n - off : chunk);

        ok = ps_utf8_feed(&st, buf, chunk, &bad);
        free(buf);
        if (!ok)
            bad += off;
        else
            off += chunk;
    }
    ps_fuzz_assert(ok == (ref == n));
    ps_fuzz_assert(ok || bad == ref);
    ps_fuzz_assert(ps_utf8_complete(&st) == (ok && !partial));
    ps_fuzz_assert(ps_utf8_valid(s, n) == (ok && !partial));
}

/* ---- close payloads -------------------------------------------------------- */

static void ps_fz_close(apr_pool_t *p, const char *s, size_t n, uint32_t seed)
{
    char out[PS_WS_MAX_CLOSE_FRAME];
    int code = 1000 + (int)(ps_fuzz_rand(&seed) % 4100);
    apr_size_t len = ps_ws_close_frame(out, code, s, n);
    ps_fz_log_t log = { 0 };
    char wire[PS_WS_MAX_CLOSE_FRAME + 4];
    unsigned char key[4];

    ps_fuzz_assert(len >= 4 && len <= PS_WS_MAX_CLOSE_FRAME);
    ps_fuzz_assert((size_t)(unsigned char)out[1] == len - 2);
    ps_fuzz_assert(len - 4 <= n && memcmp(out + 4, s, len - 4) == 0);
    if (!ps_utf8_valid(s, n))
        return;
    ps_fuzz_assert(ps_utf8_valid(out + 4, len - 4));
    ps_fuzz_assert(n <= PS_WS_MAX_REASON || len - 4 + 3 >= PS_WS_MAX_REASON);
    /* what a peer would send: the same frame, masked */
    memcpy(key, &seed, 4);
    len = ps_fz_frame(wire, 1, PS_WS_OP_CLOSE, out + 2, len - 2, key);
    ps_fz_run(p, wire, len, 0, 0, seed, 3, &log);
    ps_fuzz_assert(log.n == 1);
    ps_fuzz_assert(ps_ws_close_code_valid(code)
                   ? log.ev[0].type == PS_WS_CLOSE && log.ev[0].code == code
                   : log.ev[0].type == PS_WS_ERROR);
    ps_fz_log_free(&log);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    const char *s = (const char *)data + 3;
    size_t n = size - 3, i, chunk_max;
    apr_size_t max_frame, max_message;
    ps_fz_log_t whole = { 0 }, split = { 0 };
    uint32_t seed;
    char *masked, *back;
    unsigned char key[4];

    if (size < 3)
        return 0;
    max_frame = ps_fz_frames[data[0] & 3];
    max_message = ps_fz_messages[(data[0] >> 2) & 3];
    chunk_max = (data[0] >> 4) == 0 ? 1 : (data[0] >> 4) * 5;
    seed = ((uint32_t)data[1] << 8 | data[2]) * 2654435761u + 1;
    p = ps_fuzz_pool();

    ps_fz_run(p, s, n, max_frame, max_message, seed, 0, &whole);
    ps_fz_run(p, s, n, max_frame, max_message, seed, chunk_max, &split);
    ps_fz_same_logs(&whole, &split);
    for (i = 0; i < whole.n && i < 8; i++)
        if (whole.ev[i].type == PS_WS_TEXT || whole.ev[i].type == PS_WS_BINARY)
            ps_fz_roundtrip(p, &whole.ev[i], max_frame, max_message, seed + (uint32_t)i);
    ps_fz_log_free(&whole);
    ps_fz_log_free(&split);

    /* masking is an involution, from any key offset */
    memcpy(key, data, 3);
    key[3] = (unsigned char)n;
    masked = ps_fuzz_dup(s, n);
    back = ps_fuzz_dup(s, n);
    ps_ws_mask(masked, s, n, key, seed & 7);
    ps_ws_mask(back, masked, n, key, seed & 7);
    ps_fuzz_assert(memcmp(back, s, n) == 0);
    free(masked);
    free(back);

    ps_fz_utf8(s, n, seed);
    ps_fz_close(p, s, n, seed);
    apr_pool_destroy(p);
    return 0;
}
