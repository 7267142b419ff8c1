/* test_websocket.c - RFC 6455 server side: accept value, frame headers,
 * close payloads, the client frame parser, the UTF-8 validator. */
#include <stdlib.h>

#include "ps_test.h"
#include "ps_websocket.h"

/* ---- helpers ------------------------------------------------------------ */

static const unsigned char ps_key[4] = { 0x37, 0xfa, 0x21, 0x3d };

/* A client frame: first byte b0 as given (FIN/RSV/opcode), payload masked
 * with key (NULL = unmasked), length encoded with enc bytes (0 = minimal,
 * else 1, 2 or 8 forced).  Returns the frame length. */
static apr_size_t ps_frame_ex(unsigned char *out, int b0,
                              const unsigned char *key, const char *payload,
                              apr_size_t len, int enc)
{
    apr_size_t o = 0;
    int i;

    if (!enc)
        enc = len <= 125 ? 1 : len <= 0xFFFF ? 2 : 8;
    out[o++] = (unsigned char)b0;
    if (enc == 1) {
        out[o++] = (unsigned char)len;
    }
    else if (enc == 2) {
        out[o++] = 126;
        out[o++] = (unsigned char)(len >> 8);
        out[o++] = (unsigned char)len;
    }
    else {
        out[o++] = 127;
        for (i = 0; i < 8; i++)
            out[o++] = (unsigned char)((apr_uint64_t)len >> (56 - 8 * i));
    }
    if (key) {
        out[1] |= 0x80;
        memcpy(out + o, key, 4);
        o += 4;
    }
    for (apr_size_t j = 0; j < len; j++)
        out[o + j] = (unsigned char)(payload[j] ^ (key ? key[j & 3] : 0));
    return o + len;
}

static apr_size_t ps_frame(unsigned char *out, int b0, const char *payload,
                           apr_size_t len)
{
    return ps_frame_ex(out, b0, ps_key, payload, len, 0);
}

/* Events seen while feeding a stream, with copies of their data. */
#define PS_MAX_EVENTS 64

typedef struct {
    int n;
    ps_ws_event_e type[PS_MAX_EVENTS];
    int code[PS_MAX_EVENTS];
    char *data[PS_MAX_EVENTS];
    apr_size_t len[PS_MAX_EVENTS];
} ps_events_t;

static void ps_events_free(ps_events_t *e)
{
    for (int i = 0; i < e->n; i++)
        free(e->data[i]);
    e->n = 0;
}

static void ps_events_add(ps_events_t *e, const ps_ws_event_t *ev)
{
    int i = e->n++;

    assert_true(i < PS_MAX_EVENTS);
    assert_non_null(ev->data);
    e->type[i] = ev->type;
    e->code[i] = ev->close_code;
    e->len[i] = ev->len;
    e->data[i] = malloc(ev->len + 1);
    assert_non_null(e->data[i]);
    memcpy(e->data[i], ev->data, ev->len);
    e->data[i][ev->len] = '\0';
}

/* A tiny deterministic generator (no global state). */
static apr_uint32_t ps_rand(apr_uint32_t *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return (*seed >> 8) & 0xFFFFFF;
}

/* Feed buf through a new parser in chunks: chunk 0 = all at once, 1 = byte
 * by byte, else random sizes 1..chunk from seed.  Records every event and
 * stops at CLOSE/ERROR. */
static void ps_run(apr_pool_t *p, const unsigned char *buf, apr_size_t len,
                   apr_size_t chunk, apr_uint32_t seed, apr_size_t max_frame,
                   apr_size_t max_message, ps_events_t *e)
{
    ps_ws_parser_t *ps = ps_ws_parser_create(p, max_frame, max_message);
    apr_size_t off = 0;

    e->n = 0;
    while (off < len) {
        apr_size_t n = len - off, c = 0;

        if (chunk == 1)
            n = 1;
        else if (chunk > 1 && n > 1)
            n = 1 + ps_rand(&seed) % (n < chunk ? n : chunk);
        while (c < n) {
            ps_ws_event_t ev;
            apr_size_t used = 0;
            ps_ws_event_e t = ps_ws_feed(ps, (const char *)buf + off + c,
                                         n - c, &used, &ev);

            assert_int_equal(ev.type, t);
            assert_true(used <= n - c);
            c += used;
            if (t == PS_WS_NEED_MORE) {
                assert_int_equal(c, n);
                break;
            }
            ps_events_add(e, &ev);
            if (t == PS_WS_CLOSE || t == PS_WS_ERROR)
                return;
        }
        off += n;
    }
}

/* Feed buf whole and expect exactly one event of type t / code. */
static void ps_expect_one(apr_pool_t *p, const unsigned char *buf,
                          apr_size_t len, ps_ws_event_e t, int code)
{
    ps_events_t e;

    ps_run(p, buf, len, 0, 0, 0, 0, &e);
    assert_int_equal(e.n, 1);
    assert_int_equal(e.type[0], t);
    assert_int_equal(e.code[0], code);
    ps_events_free(&e);
}

static void ps_expect_error(apr_pool_t *p, const unsigned char *buf,
                            apr_size_t len, int code)
{
    ps_expect_one(p, buf, len, PS_WS_ERROR, code);
}

/* One frame (b0, payload of len <= 256 bytes) must fail with code. */
static void ps_expect_frame_error(apr_pool_t *p, int b0, const char *payload,
                                  apr_size_t len, int code)
{
    unsigned char buf[14 + 256];

    assert_true(len <= 256);
    ps_expect_error(p, buf, ps_frame(buf, b0, payload, len), code);
}

/* ---- handshake and server frames --------------------------------------- */

static void test_accept(void **state)
{
    assert_string_equal(ps_ws_accept(*state, "/mQoZf6pRiv8+6o72GncLQ=="),
                        "RaIOIcQ6CBoc74B9EKdH0avYZnw=");
    /* RFC 6455 section 1.3 */
    assert_string_equal(ps_ws_accept(*state, "dGhlIHNhbXBsZSBub25jZQ=="),
                        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_int_equal(strlen(ps_ws_accept(*state, "")), PS_WS_ACCEPT_LEN);
}

static void test_frame_header(void **state)
{
    unsigned char h[PS_WS_MAX_HEADER];

    ps_assert_mem(h, ps_ws_frame_header(h, PS_WS_OP_TEXT, 0), "\x81\x00");
    ps_assert_mem(h, ps_ws_frame_header(h, PS_WS_OP_TEXT, 5), "\x81\x05");
    ps_assert_mem(h, ps_ws_frame_header(h, PS_WS_OP_TEXT, 125), "\x81\x7D");
    ps_assert_mem(h, ps_ws_frame_header(h, PS_WS_OP_TEXT, 126),
                  "\x81\x7E\x00\x7E");
    ps_assert_mem(h, ps_ws_frame_header(h, PS_WS_OP_TEXT, 65535),
                  "\x81\x7E\xFF\xFF");
    ps_assert_mem(h, ps_ws_frame_header(h, PS_WS_OP_TEXT, 65536),
                  "\x81\x7F\x00\x00\x00\x00\x00\x01\x00\x00");
    ps_assert_mem(h, ps_ws_frame_header(h, PS_WS_OP_BINARY,
                                        APR_UINT64_C(0x0102030405060708)),
                  "\x82\x7F\x01\x02\x03\x04\x05\x06\x07\x08");
    ps_assert_mem(h, ps_ws_frame_header(h, PS_WS_OP_PING, 0), "\x89\x00");
    ps_assert_mem(h, ps_ws_frame_header(h, PS_WS_OP_PONG, 0), "\x8A\x00");
    ps_assert_mem(h, ps_ws_frame_header(h, PS_WS_OP_CLOSE, 2), "\x88\x02");
    /* only the low 4 bits of the opcode are used */
    ps_assert_mem(h, ps_ws_frame_header(h, 0xF1, 1), "\x81\x01");
}

static void test_close_payload(void **state)
{
    char out[PS_WS_MAX_CONTROL], reason[200];
    apr_size_t n;

    ps_assert_mem(out, ps_ws_close_payload(out, 1000, "bye", 3), "\x03\xE8" "bye");
    ps_assert_mem(out, ps_ws_close_payload(out, 1008, NULL, 5), "\x03\xF0");
    assert_int_equal(ps_ws_close_payload(out, 0, "ignored", 7), 0);

    /* plain ASCII: cut at 123 */
    memset(reason, 'a', sizeof(reason));
    n = ps_ws_close_payload(out, 1001, reason, sizeof(reason));
    assert_int_equal(n, 125);
    assert_memory_equal(out + 2, reason, 123);

    /* exactly 123 bytes: untouched, even if it ends with a sequence */
    memcpy(reason + 121, "\xC3\xA9", 2);
    n = ps_ws_close_payload(out, 1001, reason, 123);
    assert_int_equal(n, 125);

    /* a 2-byte character across the cut: 122 + 2 bytes */
    memset(reason, 'a', sizeof(reason));
    memcpy(reason + 122, "\xC3\xA9zz", 4);
    n = ps_ws_close_payload(out, 1001, reason, 126);
    assert_int_equal(n, 2 + 122);
    assert_true(ps_utf8_valid(out + 2, n - 2));

    /* a 3-byte character at 121..123 */
    memset(reason, 'a', sizeof(reason));
    memcpy(reason + 121, "\xE2\x82\xAC", 3);
    n = ps_ws_close_payload(out, 1001, reason, 130);
    assert_int_equal(n, 2 + 121);

    /* a 4-byte character at 120..123 */
    memset(reason, 'a', sizeof(reason));
    memcpy(reason + 120, "\xF0\x9F\x98\x80", 4);
    n = ps_ws_close_payload(out, 1001, reason, 130);
    assert_int_equal(n, 2 + 120);

    /* a 4-byte character ending exactly at 123 is kept */
    memset(reason, 'a', sizeof(reason));
    memcpy(reason + 119, "\xF0\x9F\x98\x80", 4);
    n = ps_ws_close_payload(out, 1001, reason, 130);
    assert_int_equal(n, 2 + 123);
    assert_true(ps_utf8_valid(out + 2, n - 2));
}

static void test_close_frame(void **state)
{
    static const char json[] =
        "{\"http_status\": 403, \"explain\":\"Subscriber could not create channels.\"}";
    char out[PS_WS_MAX_CLOSE_FRAME];
    apr_size_t n;

    ps_assert_mem(out, ps_ws_close_frame(out, 0, NULL, 0), "\x88\x00");
    ps_assert_mem(out, ps_ws_close_frame(out, 1000, NULL, 0), "\x88\x02\x03\xE8");
    n = ps_ws_close_frame(out, PS_WS_CLOSE_POLICY, json, strlen(json));
    ps_assert_mem(out, n,
                  "\x88I\x03\xF0{\"http_status\": 403, \"explain\":\"Subscriber could not create channels.\"}");
}

/* Masked headers and close frames (the tunnel's close towards its back
 * end, the load generator's frames) decode back with ps_ws_header_parse;
 * a cut close reason stays valid UTF-8 in the masked frame too. */
static void test_masked_header_roundtrip(void **state)
{
    static const apr_uint64_t lens[] = { 0, 1, 125, 126, 65535, 65536,
                                         APR_UINT64_C(0x7FFFFFFFFFFFFFFF) };
    static const unsigned char key[4] = { 0xA1, 0xB2, 0xC3, 0xD4 };
    unsigned char h[PS_WS_MAX_FRAME_HEADER];
    char f[PS_WS_MAX_CLOSE_FRAME + 4], reason[200], plain[PS_WS_MAX_CONTROL];
    ps_ws_header_t d;
    apr_size_t i, n;

    for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        n = ps_ws_frame_header_masked(h, PS_WS_OP_BINARY, lens[i], key);
        assert_int_equal(n, (lens[i] <= 125 ? 2 : lens[i] <= 0xFFFF ? 4 : 10) + 4);
        assert_int_equal(ps_ws_header_parse(h, n - 1, &d), 0);   /* incomplete */
        assert_int_equal(ps_ws_header_parse(h, n, &d), (int)n);
        assert_true(d.fin && d.masked && d.rsv == 0);
        assert_int_equal(d.opcode, PS_WS_OP_BINARY);
        assert_true(d.len == lens[i]);
        assert_memory_equal(d.key, key, 4);
        n = ps_ws_frame_header_masked(h, PS_WS_OP_TEXT, lens[i], NULL);
        assert_int_equal(ps_ws_header_parse(h, n, &d), (int)n);
        assert_false(d.masked);
    }
    h[0] = 0x82; h[1] = 127; h[2] = 0x80;                        /* top bit */
    memset(h + 3, 0, 7);
    assert_int_equal(ps_ws_header_parse(h, 10, &d), -1);
    /* 122 'a' + "é" x 2: cut at 123 bytes would split the first "é" */
    memset(reason, 'a', 122);
    memcpy(reason + 122, "\xc3\xa9\xc3\xa9", 4);
    n = ps_ws_close_frame_masked(f, 1001, reason, 126, key);
    assert_int_equal(n, 2 + 4 + 2 + 122);
    assert_int_equal(ps_ws_header_parse((unsigned char *)f, n, &d), 6);
    assert_int_equal(d.opcode, PS_WS_OP_CLOSE);
    ps_ws_mask(plain, f + 6, (apr_size_t)d.len, d.key, 0);
    assert_int_equal((unsigned char)plain[0] << 8 | (unsigned char)plain[1], 1001);
    assert_true(ps_utf8_valid(plain + 2, (apr_size_t)d.len - 2));
    /* unmasked: the same bytes as ps_ws_close_frame */
    n = ps_ws_close_frame_masked(f, 1000, "ok", 2, NULL);
    assert_int_equal(n, 6);
    assert_memory_equal(f, "\x88\x04\x03\xe8ok", 6);
}

static void test_close_code_valid(void **state)
{
    static const int ok[] = { 1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
                              1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999 };
    static const int bad[] = { -1, 0, 1, 999, 1004, 1005, 1006, 1015, 1016,
                               1100, 2000, 2999, 5000, 65535 };
    size_t i;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        assert_true(ps_ws_close_code_valid(ok[i]));
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(ps_ws_close_code_valid(bad[i]));
}

static void test_mask(void **state)
{
    static const unsigned char key[4] = { 0x01, 0x80, 0x7F, 0xFF };
    char src[64], dst[64], want[64];

    for (int i = 0; i < 64; i++)
        src[i] = (char)(i * 37 + 5);
    for (apr_size_t off = 0; off < 8; off++) {
        for (apr_size_t n = 0; n <= 40; n++) {
            for (apr_size_t i = 0; i < n; i++)
                want[i] = (char)(src[i] ^ key[(off + i) & 3]);
            ps_ws_mask(dst, src, n, key, off);
            assert_memory_equal(dst, want, n);
            /* in place, and masking twice is the identity */
            memcpy(dst, src, n);
            ps_ws_mask(dst, dst, n, key, off);
            assert_memory_equal(dst, want, n);
            ps_ws_mask(dst, dst, n, key, off);
            assert_memory_equal(dst, src, n);
        }
    }
}

/* ---- parser: valid streams ---------------------------------------------- */

static void test_rfc_examples(void **state)
{
    /* RFC 6455 5.7: a single-frame masked text message and masked ping */
    static const unsigned char text[] =
        "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
    static const unsigned char ping[] =
        "\x89\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
    ps_events_t e;

    ps_run(*state, text, sizeof(text) - 1, 0, 0, 0, 0, &e);
    assert_int_equal(e.n, 1);
    assert_int_equal(e.type[0], PS_WS_TEXT);
    ps_assert_mem(e.data[0], e.len[0], "Hello");
    ps_events_free(&e);

    ps_run(*state, ping, sizeof(ping) - 1, 0, 0, 0, 0, &e);
    assert_int_equal(e.n, 1);
    assert_int_equal(e.type[0], PS_WS_PING);
    ps_assert_mem(e.data[0], e.len[0], "Hello");
    ps_events_free(&e);

    /* the RFC's unmasked example is a client error */
    ps_expect_error(*state, (const unsigned char *)"\x81\x05Hello", 7,
                    PS_WS_CLOSE_PROTOCOL);
}

static void test_fragmented_with_ping(void **state)
{
    unsigned char buf[256];
    apr_size_t n = 0;
    ps_events_t e;

    n += ps_frame(buf + n, 0x01, "Hel", 3);            /* text, FIN=0 */
    n += ps_frame(buf + n, 0x89, "p1", 2);             /* ping in between */
    n += ps_frame(buf + n, 0x00, "", 0);               /* empty continuation */
    n += ps_frame(buf + n, 0x8A, "", 0);               /* unsolicited pong */
    n += ps_frame(buf + n, 0x80, "lo", 2);             /* final */
    n += ps_frame(buf + n, 0x82, "\x00\xFF", 2);       /* binary */
    ps_run(*state, buf, n, 0, 0, 0, 0, &e);
    assert_int_equal(e.n, 4);
    assert_int_equal(e.type[0], PS_WS_PING);
    ps_assert_mem(e.data[0], e.len[0], "p1");
    assert_int_equal(e.type[1], PS_WS_PONG);
    assert_int_equal(e.len[1], 0);
    assert_int_equal(e.type[2], PS_WS_TEXT);
    ps_assert_mem(e.data[2], e.len[2], "Hello");
    assert_int_equal(e.type[3], PS_WS_BINARY);
    ps_assert_mem(e.data[3], e.len[3], "\x00\xFF");
    ps_events_free(&e);
}

static void test_empty_messages(void **state)
{
    unsigned char buf[64];
    apr_size_t n = 0;
    ps_events_t e;

    n += ps_frame(buf + n, 0x81, "", 0);
    n += ps_frame(buf + n, 0x82, "", 0);
    n += ps_frame(buf + n, 0x01, "", 0);
    n += ps_frame(buf + n, 0x80, "", 0);
    ps_run(*state, buf, n, 0, 0, 0, 0, &e);
    assert_int_equal(e.n, 3);
    assert_int_equal(e.type[0], PS_WS_TEXT);
    assert_int_equal(e.type[1], PS_WS_BINARY);
    assert_int_equal(e.type[2], PS_WS_TEXT);
    for (int i = 0; i < 3; i++)
        assert_int_equal(e.len[i], 0);
    ps_events_free(&e);
}

/* Text and binary payloads around every length-encoding boundary. */
static void test_payload_sizes(void **state)
{
    static const apr_size_t sizes[] = { 0, 1, 3, 4, 7, 8, 9, 125, 126, 127,
                                        65535, 65536, 65537, 200000 };
    apr_size_t max = 200000;
    char *payload = malloc(max);
    unsigned char *buf = malloc(max + 14);
    ps_events_t e;

    assert_non_null(payload);
    assert_non_null(buf);
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        apr_size_t len = sizes[s], n;

        for (apr_size_t i = 0; i < len; i++)
            payload[i] = (char)('a' + i % 26);
        n = ps_frame(buf, 0x81, payload, len);
        assert_int_equal(n, len + 2 + (len > 125 ? (len > 65535 ? 8 : 2) : 0) + 4);
        ps_run(*state, buf, n, 0, 0, 0, 0, &e);
        assert_int_equal(e.n, 1);
        assert_int_equal(e.type[0], PS_WS_TEXT);
        assert_int_equal(e.len[0], len);
        assert_memory_equal(e.data[0], payload, len);
        ps_events_free(&e);

        for (apr_size_t i = 0; i < len; i++)
            payload[i] = (char)(i * 7);
        n = ps_frame(buf, 0x82, payload, len);
        ps_run(*state, buf, n, 4093, 7, 0, 0, &e);
        assert_int_equal(e.n, 1);
        assert_int_equal(e.type[0], PS_WS_BINARY);
        assert_int_equal(e.len[0], len);
        assert_memory_equal(e.data[0], payload, len);
        ps_events_free(&e);
    }
    free(payload);
    free(buf);
}

/* Every byte of every mask-key position gets exercised. */
static void test_mask_keys(void **state)
{
    static const unsigned char keys[][4] = {
        { 0, 0, 0, 0 }, { 0xFF, 0xFF, 0xFF, 0xFF }, { 0x01, 0x02, 0x04, 0x08 },
        { 0x80, 0x40, 0x20, 0x10 }, { 0xDE, 0xAD, 0xBE, 0xEF },
    };
    char payload[300];
    unsigned char buf[320];
    ps_events_t e;

    for (int i = 0; i < 300; i++)
        payload[i] = (char)i;
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        for (apr_size_t len = 0; len <= 300; len += 13) {
            apr_size_t n = ps_frame_ex(buf, 0x82, keys[k], payload, len, 0);

            ps_run(*state, buf, n, 1, 0, 0, 0, &e);
            assert_int_equal(e.n, 1);
            assert_int_equal(e.len[0], len);
            assert_memory_equal(e.data[0], payload, len);
            ps_events_free(&e);
        }
    }
}

static void test_non_minimal_length(void **state)
{
    unsigned char buf[64];
    apr_size_t n;
    ps_events_t e;

    n = ps_frame_ex(buf, 0x81, ps_key, "abc", 3, 2);
    n += ps_frame_ex(buf + n, 0x81, ps_key, "def", 3, 8);
    n += ps_frame_ex(buf + n, 0x89, ps_key, "p", 1, 1);
    ps_run(*state, buf, n, 0, 0, 0, 0, &e);
    assert_int_equal(e.n, 3);
    ps_assert_mem(e.data[0], e.len[0], "abc");
    ps_assert_mem(e.data[1], e.len[1], "def");
    assert_int_equal(e.type[2], PS_WS_PING);
    ps_events_free(&e);

    /* a control frame must use the 7-bit length (RFC 6455 5.5): an
     * extended length is refused as soon as the second byte arrives */
    n = ps_frame_ex(buf, 0x89, ps_key, "p", 1, 2);
    ps_expect_error(*state, buf, n, PS_WS_CLOSE_PROTOCOL);
}

static void test_close_events(void **state)
{
    unsigned char buf[160];
    apr_size_t n;
    ps_events_t e;
    char reason[125], text[129];

    n = ps_frame(buf, 0x88, "", 0);
    ps_run(*state, buf, n, 0, 0, 0, 0, &e);
    assert_int_equal(e.n, 1);
    assert_int_equal(e.type[0], PS_WS_CLOSE);
    assert_int_equal(e.code[0], PS_WS_CLOSE_NO_STATUS);
    assert_int_equal(e.len[0], 0);
    ps_events_free(&e);

    n = ps_frame(buf, 0x88, "\x03\xE8" "bye \xC3\xA9", 8);
    ps_run(*state, buf, n, 0, 0, 0, 0, &e);
    assert_int_equal(e.type[0], PS_WS_CLOSE);
    assert_int_equal(e.code[0], 1000);
    ps_assert_mem(e.data[0], e.len[0], "bye \xC3\xA9");
    ps_events_free(&e);

    /* longest close: code + 123 bytes of reason */
    memset(text, 'x', sizeof(text));
    n = ps_ws_close_payload(reason, 4999, text, sizeof(text));
    assert_int_equal(n, 125);
    n = ps_frame(buf, 0x88, reason, n);
    ps_run(*state, buf, n, 1, 0, 0, 0, &e);
    assert_int_equal(e.type[0], PS_WS_CLOSE);
    assert_int_equal(e.code[0], 4999);
    assert_int_equal(e.len[0], 123);
    ps_events_free(&e);

    for (int code = 1012; code <= 1014; code++) {
        char p[2] = { (char)(code >> 8), (char)code };

        n = ps_frame(buf, 0x88, p, 2);
        ps_expect_one(*state, buf, n, PS_WS_CLOSE, code);
    }
    n = ps_frame(buf, 0x88, "\x0B\xB8", 2);           /* 3000 */
    ps_expect_one(*state, buf, n, PS_WS_CLOSE, 3000);
}

/* After CLOSE or ERROR the parser repeats itself and swallows input. */
static void test_final_state_sticky(void **state)
{
    ps_ws_parser_t *ps = ps_ws_parser_create(*state, 0, 0);
    unsigned char buf[64];
    apr_size_t n, used;
    ps_ws_event_t ev;

    n = ps_frame(buf, 0x88, "\x03\xE9", 2);
    n += ps_frame(buf + n, 0x81, "after", 5);
    assert_int_equal(ps_ws_feed(ps, (char *)buf, n, &used, &ev), PS_WS_CLOSE);
    assert_int_equal(used, 8);
    assert_int_equal(ev.close_code, 1001);
    assert_int_equal(ps_ws_feed(ps, (char *)buf + used, n - used, &used, &ev),
                     PS_WS_CLOSE);
    assert_int_equal(used, n - 8);
    assert_int_equal(ev.close_code, 1001);
    assert_int_equal(ev.len, 0);

    ps = ps_ws_parser_create(*state, 0, 0);
    assert_int_equal(ps_ws_feed(ps, "\x81\x05", 2, &used, &ev), PS_WS_ERROR);
    assert_int_equal(ev.close_code, PS_WS_CLOSE_PROTOCOL);
    assert_non_null(ev.data);
    assert_true(ev.len > 0);
    n = ps_frame(buf, 0x81, "ok", 2);
    assert_int_equal(ps_ws_feed(ps, (char *)buf, n, &used, &ev), PS_WS_ERROR);
    assert_int_equal(used, n);
    assert_int_equal(ev.close_code, PS_WS_CLOSE_PROTOCOL);
}

/* A parser moved into other memory mid-message (what a subscriber's
 * detaching from httpd does) goes on where it stopped; the old one keeps
 * no buffer. */
static void test_parser_move(void **state)
{
    ps_ws_parser_t *src = ps_ws_parser_create(*state, 0, 0);
    ps_ws_parser_t *dst = malloc(ps_ws_parser_size());
    unsigned char buf[256];
    apr_size_t n, used;
    ps_ws_event_t ev;

    assert_non_null(dst);
    n = ps_frame(buf, 0x01, "frag", 4);                /* first fragment */
    n += ps_frame(buf + n, 0x80, "ment", 4);           /* final, split below */
    assert_int_equal(ps_ws_feed(src, (char *)buf, n - 3, &used, &ev),
                     PS_WS_NEED_MORE);
    ps_ws_parser_move(dst, src);
    assert_int_equal(ps_ws_feed(dst, (char *)buf + n - 3, 3, &used, &ev),
                     PS_WS_TEXT);
    ps_assert_mem(ev.data, ev.len, "fragment");
    /* the old parser starts from its moved state but owns no buffer */
    assert_int_equal(ps_ws_feed(src, "", 0, &used, &ev), PS_WS_NEED_MORE);

    /* a close reason kept in the parser's own control buffer moves too */
    n = ps_frame(buf, 0x88, "\x03\xE9" "bye", 5);
    assert_int_equal(ps_ws_feed(dst, (char *)buf, n, &used, &ev), PS_WS_CLOSE);
    src = ps_ws_parser_create(*state, 0, 0);
    ps_ws_parser_move(src, dst);
    assert_int_equal(ps_ws_feed(src, "x", 1, &used, &ev), PS_WS_CLOSE);
    ps_assert_mem(ev.data, ev.len, "bye");
    assert_int_equal(ev.close_code, 1001);
    ps_ws_parser_release(dst);
    free(dst);
}

/* Several events in one buffer: one per call, consumed up to each. */
static void test_consumed(void **state)
{
    ps_ws_parser_t *ps = ps_ws_parser_create(*state, 0, 0);
    unsigned char buf[64];
    apr_size_t n1, n2, n3, used, off = 0;
    ps_ws_event_t ev;

    n1 = ps_frame(buf, 0x81, "one", 3);
    n2 = ps_frame(buf + n1, 0x89, "", 0);
    n3 = ps_frame(buf + n1 + n2, 0x01, "tw", 2);
    assert_int_equal(ps_ws_feed(ps, (char *)buf, n1 + n2 + n3, &used, &ev),
                     PS_WS_TEXT);
    assert_int_equal(used, n1);
    ps_assert_mem(ev.data, ev.len, "one");
    off += used;
    assert_int_equal(ps_ws_feed(ps, (char *)buf + off, n2 + n3, &used, &ev),
                     PS_WS_PING);
    assert_int_equal(used, n2);
    off += used;
    assert_int_equal(ps_ws_feed(ps, (char *)buf + off, n3, &used, &ev),
                     PS_WS_NEED_MORE);
    assert_int_equal(used, n3);
    assert_null(ev.data);
    n1 = ps_frame(buf, 0x80, "o", 1);
    assert_int_equal(ps_ws_feed(ps, (char *)buf, n1, &used, &ev), PS_WS_TEXT);
    ps_assert_mem(ev.data, ev.len, "two");
    assert_int_equal(ps_ws_feed(ps, "", 0, &used, &ev), PS_WS_NEED_MORE);
    assert_int_equal(used, 0);
}

/* A big message (buffer released afterwards), then small ones. */
static void test_buffer_reuse(void **state)
{
    ps_ws_parser_t *ps = ps_ws_parser_create(*state, 0, 0);
    apr_size_t big = 300000, n, used;
    char *payload = malloc(big);
    unsigned char *buf = malloc(big + 14);
    ps_ws_event_t ev;

    assert_non_null(payload);
    assert_non_null(buf);
    memset(payload, 'z', big);
    for (int round = 0; round < 3; round++) {
        n = ps_frame(buf, 0x82, payload, big);
        assert_int_equal(ps_ws_feed(ps, (char *)buf, n, &used, &ev),
                         PS_WS_BINARY);
        assert_int_equal(ev.len, big);
        assert_memory_equal(ev.data, payload, big);
        n = ps_frame(buf, 0x81, "small", 5);
        assert_int_equal(ps_ws_feed(ps, (char *)buf, n, &used, &ev),
                         PS_WS_TEXT);
        ps_assert_mem(ev.data, ev.len, "small");
    }
    free(payload);
    free(buf);
}

/* ---- parser: errors ----------------------------------------------------- */

static void test_error_header_bits(void **state)
{
    unsigned char buf[64];
    apr_size_t n;
    int op;

    /* RSV1, RSV2, RSV3 (no extensions negotiated) */
    ps_expect_frame_error(*state, 0xC1, "x", 1, PS_WS_CLOSE_PROTOCOL);
    ps_expect_frame_error(*state, 0xA1, "x", 1, PS_WS_CLOSE_PROTOCOL);
    ps_expect_frame_error(*state, 0x91, "x", 1, PS_WS_CLOSE_PROTOCOL);
    /* on a control frame */
    ps_expect_frame_error(*state, 0xC9, "", 0, PS_WS_CLOSE_PROTOCOL);
    /* reserved opcodes */
    for (op = 3; op <= 0xF; op++) {
        if (op >= 8 && op <= 0xA)
            continue;
        ps_expect_frame_error(*state, 0x80 | op, "x", 1, PS_WS_CLOSE_PROTOCOL);
        ps_expect_frame_error(*state, op, "", 0, PS_WS_CLOSE_PROTOCOL);
    }
    /* unmasked text, ping, close */
    n = ps_frame_ex(buf, 0x81, NULL, "x", 1, 0);
    ps_expect_error(*state, buf, n, PS_WS_CLOSE_PROTOCOL);
    n = ps_frame_ex(buf, 0x89, NULL, "", 0, 0);
    ps_expect_error(*state, buf, n, PS_WS_CLOSE_PROTOCOL);
    n = ps_frame_ex(buf, 0x88, NULL, "", 0, 0);
    ps_expect_error(*state, buf, n, PS_WS_CLOSE_PROTOCOL);
}

static void test_error_control_frames(void **state)
{
    char payload[126];
    unsigned char buf[160];
    apr_size_t n;

    memset(payload, 'p', sizeof(payload));
    /* 125 is fine, 126 is not (in either length encoding) */
    n = ps_frame(buf, 0x89, payload, 125);
    ps_expect_one(*state, buf, n, PS_WS_PING, 0);
    ps_expect_frame_error(*state, 0x89, payload, 126, PS_WS_CLOSE_PROTOCOL);
    n = ps_frame_ex(buf, 0x8A, ps_key, payload, 126, 8);
    ps_expect_error(*state, buf, n, PS_WS_CLOSE_PROTOCOL);
    ps_expect_frame_error(*state, 0x88, payload, 126, PS_WS_CLOSE_PROTOCOL);
    /* fragmented control frames */
    ps_expect_frame_error(*state, 0x09, "", 0, PS_WS_CLOSE_PROTOCOL);
    ps_expect_frame_error(*state, 0x0A, "x", 1, PS_WS_CLOSE_PROTOCOL);
    ps_expect_frame_error(*state, 0x08, "", 0, PS_WS_CLOSE_PROTOCOL);
    /* a 1-byte close payload */
    ps_expect_frame_error(*state, 0x88, "\x03", 1, PS_WS_CLOSE_PROTOCOL);
}

static void test_error_close_codes(void **state)
{
    static const int bad[] = { 0, 999, 1004, 1005, 1006, 1015, 1016, 1100,
                               2000, 2999, 5000, 65535 };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char p[2] = { (char)(bad[i] >> 8), (char)bad[i] };

        ps_expect_frame_error(*state, 0x88, p, 2, PS_WS_CLOSE_PROTOCOL);
    }
    /* invalid UTF-8 reason */
    ps_expect_frame_error(*state, 0x88, "\x03\xE8\xC0\xAF", 4,
                          PS_WS_CLOSE_INVALID_DATA);
    /* truncated UTF-8 at the end of the reason */
    ps_expect_frame_error(*state, 0x88, "\x03\xE8" "ab\xE2\x82", 6,
                          PS_WS_CLOSE_INVALID_DATA);
}

static void test_error_fragmentation(void **state)
{
    unsigned char buf[64];
    apr_size_t n;

    /* continuation without a started message (also after a complete one) */
    ps_expect_frame_error(*state, 0x80, "x", 1, PS_WS_CLOSE_PROTOCOL);
    ps_expect_frame_error(*state, 0x00, "x", 1, PS_WS_CLOSE_PROTOCOL);
    n = ps_frame(buf, 0x81, "a", 1);
    n += ps_frame(buf + n, 0x80, "b", 1);
    {
        ps_events_t e;

        ps_run(*state, buf, n, 0, 0, 0, 0, &e);
        assert_int_equal(e.n, 2);
        assert_int_equal(e.type[0], PS_WS_TEXT);
        assert_int_equal(e.type[1], PS_WS_ERROR);
        assert_int_equal(e.code[1], PS_WS_CLOSE_PROTOCOL);
        ps_events_free(&e);
    }
    /* a new data frame inside a fragmented message */
    n = ps_frame(buf, 0x01, "a", 1);
    n += ps_frame(buf + n, 0x81, "b", 1);
    ps_expect_error(*state, buf, n, PS_WS_CLOSE_PROTOCOL);
    n = ps_frame(buf, 0x02, "a", 1);
    n += ps_frame(buf + n, 0x01, "b", 1);
    ps_expect_error(*state, buf, n, PS_WS_CLOSE_PROTOCOL);
}

static void test_error_64bit_length(void **state)
{
    static const unsigned char msb[] =
        "\x82\xFF\x80\x00\x00\x00\x00\x00\x00\x01\x37\xfa\x21\x3d";
    static const unsigned char huge[] =
        "\x82\xFF\x7F\xFF\xFF\xFF\xFF\xFF\xFF\xFF\x37\xfa\x21\x3d";
    ps_ws_parser_t *ps;
    ps_ws_event_t ev;
    apr_size_t used;

    ps_expect_error(*state, msb, sizeof(msb) - 1, PS_WS_CLOSE_PROTOCOL);
    /* the largest legal length: too big with limits, otherwise the parser
     * just waits for the payload (nothing is allocated up front) */
    ps = ps_ws_parser_create(*state, 0, 0);
    assert_int_equal(ps_ws_feed(ps, (const char *)huge, sizeof(huge) - 1,
                                &used, &ev),
                     sizeof(apr_size_t) >= 8 ? PS_WS_NEED_MORE : PS_WS_ERROR);
    ps = ps_ws_parser_create(*state, 1 << 20, 1 << 20);
    assert_int_equal(ps_ws_feed(ps, (const char *)huge, sizeof(huge) - 1,
                                &used, &ev), PS_WS_ERROR);
    assert_int_equal(ev.close_code, PS_WS_CLOSE_TOO_BIG);
}

static void test_error_limits(void **state)
{
    char payload[64];
    unsigned char buf[128];
    apr_size_t n, used;
    ps_events_t e;
    ps_ws_parser_t *ps;
    ps_ws_event_t ev;

    memset(payload, 'm', sizeof(payload));
    /* max_frame 10: 10 ok, 11 refused */
    n = ps_frame(buf, 0x81, payload, 10);
    ps_run(*state, buf, n, 0, 0, 10, 0, &e);
    assert_int_equal(e.type[0], PS_WS_TEXT);
    ps_events_free(&e);
    n = ps_frame(buf, 0x81, payload, 11);
    ps_run(*state, buf, n, 0, 0, 10, 0, &e);
    assert_int_equal(e.type[0], PS_WS_ERROR);
    assert_int_equal(e.code[0], PS_WS_CLOSE_TOO_BIG);
    ps_events_free(&e);

    /* ... refused from the header alone, before the payload arrives */
    ps = ps_ws_parser_create(*state, 10, 0);
    assert_int_equal(ps_ws_feed(ps, (char *)buf, 6, &used, &ev), PS_WS_ERROR);
    assert_int_equal(ev.close_code, PS_WS_CLOSE_TOO_BIG);

    /* max_message 10 over fragments: 5 + 5 ok, 5 + 6 refused */
    n = ps_frame(buf, 0x01, payload, 5);
    n += ps_frame(buf + n, 0x89, payload, 20);   /* control: not counted */
    n += ps_frame(buf + n, 0x80, payload, 5);
    ps_run(*state, buf, n, 0, 0, 0, 10, &e);
    assert_int_equal(e.n, 2);
    assert_int_equal(e.type[1], PS_WS_TEXT);
    assert_int_equal(e.len[1], 10);
    ps_events_free(&e);
    n = ps_frame(buf, 0x02, payload, 5);
    n += ps_frame(buf + n, 0x80, payload, 6);
    ps_run(*state, buf, n, 1, 0, 0, 10, &e);
    assert_int_equal(e.n, 1);
    assert_int_equal(e.type[0], PS_WS_ERROR);
    assert_int_equal(e.code[0], PS_WS_CLOSE_TOO_BIG);
    ps_events_free(&e);

    /* the limit applies per message: two 10-byte messages are fine */
    n = ps_frame(buf, 0x81, payload, 10);
    n += ps_frame(buf + n, 0x81, payload, 10);
    ps_run(*state, buf, n, 3, 1, 0, 10, &e);
    assert_int_equal(e.n, 2);
    assert_int_equal(e.type[1], PS_WS_TEXT);
    ps_events_free(&e);
}

static void test_error_utf8(void **state)
{
    unsigned char buf[256];
    apr_size_t n, used;
    ps_events_t e;
    ps_ws_parser_t *ps;
    ps_ws_event_t ev;

    ps_expect_frame_error(*state, 0x81, "ab\xC0\xAF", 4, PS_WS_CLOSE_INVALID_DATA);
    ps_expect_frame_error(*state, 0x81, "\xED\xA0\x80", 3, PS_WS_CLOSE_INVALID_DATA);
    ps_expect_frame_error(*state, 0x81, "\xF4\x90\x80\x80", 4, PS_WS_CLOSE_INVALID_DATA);
    /* truncated at the end of a message */
    ps_expect_frame_error(*state, 0x81, "ok\xE2\x82", 4, PS_WS_CLOSE_INVALID_DATA);
    /* binary is not checked */
    n = ps_frame(buf, 0x82, "ok\xE2\x82\xC0", 5);
    ps_expect_one(*state, buf, n, PS_WS_BINARY, 0);

    /* a character split across fragments is fine (with a ping between) */
    n = ps_frame(buf, 0x01, "\xCE", 1);
    n += ps_frame(buf + n, 0x89, "", 0);
    n += ps_frame(buf + n, 0x00, "\xBA\xE1\xBD", 3);
    n += ps_frame(buf + n, 0x80, "\xB9\xF0\x9F\x98\x80", 5);
    ps_run(*state, buf, n, 0, 0, 0, 0, &e);
    assert_int_equal(e.n, 2);
    assert_int_equal(e.type[1], PS_WS_TEXT);
    ps_assert_mem(e.data[1], e.len[1], "\xCE\xBA\xE1\xBD\xB9\xF0\x9F\x98\x80");
    ps_events_free(&e);

    /* ... but a truncated sequence in the final fragment is not */
    n = ps_frame(buf, 0x01, "\xCE\xBA", 2);
    n += ps_frame(buf + n, 0x80, "\xF0\x9F", 2);
    ps_expect_error(*state, buf, n, PS_WS_CLOSE_INVALID_DATA);

    /* fail fast: an invalid byte in the first fragment, before the rest */
    n = ps_frame(buf, 0x01, "a\xFF", 2);
    n += ps_frame(buf + n, 0x80, "b", 1);
    ps = ps_ws_parser_create(*state, 0, 0);
    assert_int_equal(ps_ws_feed(ps, (char *)buf, 8, &used, &ev), PS_WS_ERROR);
    assert_int_equal(ev.close_code, PS_WS_CLOSE_INVALID_DATA);

    /* fail fast inside one frame: 100 bytes announced, bad byte at 3 */
    {
        char payload[100];

        memset(payload, 'x', sizeof(payload));
        payload[3] = (char)0xC1;
        n = ps_frame(buf, 0x81, payload, sizeof(payload));
        ps = ps_ws_parser_create(*state, 0, 0);
        assert_int_equal(ps_ws_feed(ps, (char *)buf, 6 + 4, &used, &ev),
                         PS_WS_ERROR);
        assert_int_equal(ev.close_code, PS_WS_CLOSE_INVALID_DATA);
    }
}

/* ---- parser: splitting -------------------------------------------------- */

/* A mixed stream, parsed whole, byte by byte and in random chunks, must
 * give the same events. */
static void test_any_split(void **state)
{
    static const unsigned char key2[4] = { 0x00, 0xFF, 0x5A, 0xA5 };
    apr_size_t cap = 200000, n = 0;
    unsigned char *buf = malloc(cap);
    char big[70000];
    ps_events_t whole, other;

    assert_non_null(buf);
    for (apr_size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)('A' + i % 23);
    n += ps_frame(buf + n, 0x81, "Hello", 5);
    n += ps_frame(buf + n, 0x01, "fr\xC3", 3);
    n += ps_frame(buf + n, 0x89, "ping!", 5);
    n += ps_frame_ex(buf + n, 0x00, key2, "\xA9" "ag", 3, 0);
    n += ps_frame(buf + n, 0x8A, "pong", 4);
    n += ps_frame(buf + n, 0x80, "ment", 4);
    n += ps_frame(buf + n, 0x82, big, 200);
    n += ps_frame(buf + n, 0x81, big, sizeof(big));
    n += ps_frame_ex(buf + n, 0x81, key2, "non-minimal", 11, 8);
    n += ps_frame(buf + n, 0x81, "", 0);
    n += ps_frame(buf + n, 0x88, "\x03\xE8" "done", 6);
    assert_true(n <= cap);

    ps_run(*state, buf, n, 0, 0, 0, 0, &whole);
    assert_int_equal(whole.n, 9);
    assert_int_equal(whole.type[8], PS_WS_CLOSE);
    ps_assert_mem(whole.data[3], whole.len[3], "fr\xC3\xA9" "agment");
    for (int mode = 1; mode < 12; mode++) {
        apr_size_t chunk = mode == 1 ? 1 : (apr_size_t)1 << mode;

        ps_run(*state, buf, n, chunk, (apr_uint32_t)mode * 7919, 0, 0, &other);
        assert_int_equal(other.n, whole.n);
        for (int i = 0; i < whole.n; i++) {
            assert_int_equal(other.type[i], whole.type[i]);
            assert_int_equal(other.code[i], whole.code[i]);
            assert_int_equal(other.len[i], whole.len[i]);
            assert_memory_equal(other.data[i], whole.data[i], whole.len[i]);
        }
        ps_events_free(&other);
    }
    ps_events_free(&whole);
    free(buf);
}

/* ---- UTF-8 validator ---------------------------------------------------- */

#define PS_OK(s)  assert_true(ps_utf8_valid((s), sizeof(s) - 1))
#define PS_BAD(s) assert_false(ps_utf8_valid((s), sizeof(s) - 1))

static void test_utf8_valid(void **state)
{
    PS_OK("");
    PS_OK("plain ASCII, long enough for the 8-byte path");
    PS_OK("\x00\x7F");
    PS_OK("\xC2\x80");                   /* U+0080 */
    PS_OK("\xDF\xBF");                   /* U+07FF */
    PS_OK("\xE0\xA0\x80");               /* U+0800 */
    PS_OK("\xED\x9F\xBF");               /* U+D7FF */
    PS_OK("\xEE\x80\x80");               /* U+E000 */
    PS_OK("\xEF\xBF\xBD");               /* U+FFFD */
    PS_OK("\xEF\xBF\xBF");               /* U+FFFF (noncharacter, allowed) */
    PS_OK("\xF0\x90\x80\x80");           /* U+10000 */
    PS_OK("\xF4\x8F\xBF\xBF");           /* U+10FFFF */
    PS_OK("\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5");   /* kosme */
    PS_OK("1234567\xC3\xA9" "12345678\xF0\x9F\x98\x80");
}

static void test_utf8_invalid(void **state)
{
    /* overlong forms */
    PS_BAD("\xC0\xAF");
    PS_BAD("\xC1\xBF");
    PS_BAD("\xE0\x80\xAF");
    PS_BAD("\xE0\x9F\xBF");
    PS_BAD("\xF0\x80\x80\xAF");
    PS_BAD("\xF0\x8F\xBF\xBF");
    PS_BAD("\xC0\x80");                  /* overlong NUL */
    /* 5- and 6-byte forms, bytes never in UTF-8 */
    PS_BAD("\xF8\x88\x80\x80\x80");
    PS_BAD("\xFC\x84\x80\x80\x80\x80");
    PS_BAD("\xFE");
    PS_BAD("\xFF");
    PS_BAD("\xF5\x80\x80\x80");
    /* surrogates, single and paired */
    PS_BAD("\xED\xA0\x80");
    PS_BAD("\xED\xAD\xBF");
    PS_BAD("\xED\xBF\xBF");
    PS_BAD("\xED\xA0\x80\xED\xB0\x80");
    /* above U+10FFFF */
    PS_BAD("\xF4\x90\x80\x80");
    PS_BAD("\xF7\xBF\xBF\xBF");
    /* lone / unexpected continuation bytes */
    PS_BAD("\x80");
    PS_BAD("\xBF");
    PS_BAD("a\x80" "b");
    PS_BAD("\xC3\xA9\xA9");
    /* a lead byte followed by a non-continuation */
    PS_BAD("\xC2" "A");
    PS_BAD("\xE2\x82" "A");
    PS_BAD("\xF0\x9F\x98" "A");
    PS_BAD("\xC2\xC2\x80");
    /* truncated at the end */
    PS_BAD("\xC2");
    PS_BAD("\xE2\x82");
    PS_BAD("\xF0\x9F\x98");
    PS_BAD("abcdefgh\xF4");
}

static void test_utf8_incremental(void **state)
{
    static const char s[] = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80z";
    ps_utf8_state_t st;
    apr_size_t bad = 99;

    /* byte by byte: incomplete in the middle of characters, complete at
     * the boundaries */
    ps_utf8_init(&st);
    for (apr_size_t i = 0; i < sizeof(s) - 1; i++) {
        assert_true(ps_utf8_feed(&st, s + i, 1, NULL));
        assert_int_equal(ps_utf8_complete(&st),
                         i == 0 || i == 2 || i == 5 || i == 9 || i == 10);
    }

    /* the offending offset, past the 8-byte ASCII path */
    ps_utf8_init(&st);
    assert_false(ps_utf8_feed(&st, "0123456789abcdefg\xC0\xAF", 19, &bad));
    assert_int_equal(bad, 17);
    assert_false(ps_utf8_complete(&st));
    /* invalid is sticky */
    assert_false(ps_utf8_feed(&st, "ok", 2, &bad));
    assert_int_equal(bad, 0);

    /* an overlong detected on the second byte, split across feeds */
    ps_utf8_init(&st);
    assert_true(ps_utf8_feed(&st, "\xE0", 1, NULL));
    assert_false(ps_utf8_feed(&st, "\x9F", 1, &bad));
    assert_int_equal(bad, 0);

    /* a surrogate split across feeds */
    ps_utf8_init(&st);
    assert_true(ps_utf8_feed(&st, "x\xED", 2, NULL));
    assert_false(ps_utf8_feed(&st, "\xA0\x80", 2, &bad));

    /* empty feed changes nothing */
    ps_utf8_init(&st);
    assert_true(ps_utf8_feed(&st, "\xF0\x9F", 2, NULL));
    assert_true(ps_utf8_feed(&st, "", 0, NULL));
    assert_false(ps_utf8_complete(&st));
    assert_true(ps_utf8_feed(&st, "\x98\x80", 2, NULL));
    assert_true(ps_utf8_complete(&st));
}

/* Every 1-, 2- and 3-byte sequence agrees with a reference decoder. */
static int ps_ref_valid(const unsigned char *u, apr_size_t n)
{
    apr_size_t i = 0;

    while (i < n) {
        unsigned c = u[i], need, cp, min;

        if (c < 0x80) { i++; continue; }
        if ((c & 0xE0) == 0xC0)      need = 1, cp = c & 0x1F, min = 0x80;
        else if ((c & 0xF0) == 0xE0) need = 2, cp = c & 0x0F, min = 0x800;
        else if ((c & 0xF8) == 0xF0) need = 3, cp = c & 0x07, min = 0x10000;
        else return 0;
        if (i + need >= n)             /* truncated */
            return 0;
        for (unsigned k = 1; k <= need; k++) {
            if ((u[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (u[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += need + 1;
    }
    return 1;
}

static void test_utf8_exhaustive(void **state)
{
    unsigned char b[4];

    for (unsigned a = 0; a < 256; a++) {
        b[0] = (unsigned char)a;
        assert_int_equal(ps_utf8_valid((char *)b, 1), ps_ref_valid(b, 1));
        for (unsigned c = 0; c < 256; c++) {
            b[1] = (unsigned char)c;
            assert_int_equal(ps_utf8_valid((char *)b, 2), ps_ref_valid(b, 2));
        }
    }
    /* 3 bytes: leads E0..F4 with every second/third byte */
    for (unsigned a = 0xE0; a <= 0xF4; a++) {
        for (unsigned c = 0x70; c < 0xD0; c++) {
            for (unsigned d = 0x70; d < 0xD0; d++) {
                b[0] = (unsigned char)a;
                b[1] = (unsigned char)c;
                b[2] = (unsigned char)d;
                assert_int_equal(ps_utf8_valid((char *)b, 3),
                                 ps_ref_valid(b, 3));
            }
        }
    }
    /* 4 bytes around the F0/F4 edges */
    for (unsigned a = 0xF0; a <= 0xF5; a++) {
        for (unsigned c = 0x7F; c <= 0xC0; c++) {
            b[0] = (unsigned char)a;
            b[1] = (unsigned char)c;
            b[2] = 0x80;
            b[3] = 0xBF;
            assert_int_equal(ps_utf8_valid((char *)b, 4), ps_ref_valid(b, 4));
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        PS_TEST(test_accept),
        PS_TEST(test_frame_header),
        PS_TEST(test_close_payload),
        PS_TEST(test_close_frame),
        PS_TEST(test_close_code_valid),
        PS_TEST(test_masked_header_roundtrip),
        PS_TEST(test_mask),
        PS_TEST(test_rfc_examples),
        PS_TEST(test_fragmented_with_ping),
        PS_TEST(test_empty_messages),
        PS_TEST(test_payload_sizes),
        PS_TEST(test_mask_keys),
        PS_TEST(test_non_minimal_length),
        PS_TEST(test_close_events),
        PS_TEST(test_final_state_sticky),
        PS_TEST(test_consumed),
        PS_TEST(test_buffer_reuse),
        PS_TEST(test_parser_move),
        PS_TEST(test_error_header_bits),
        PS_TEST(test_error_control_frames),
        PS_TEST(test_error_close_codes),
        PS_TEST(test_error_fragmentation),
        PS_TEST(test_error_64bit_length),
        PS_TEST(test_error_limits),
        PS_TEST(test_error_utf8),
        PS_TEST(test_any_split),
        PS_TEST(test_utf8_valid),
        PS_TEST(test_utf8_invalid),
        PS_TEST(test_utf8_incremental),
        PS_TEST(test_utf8_exhaustive),
    };

    PS_TEST_RUN(tests);
}
