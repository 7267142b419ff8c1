/* test_wstrack.c - the tunnel's frame tracker (common/pswt_ws.c) on frames
 * built with the shared codec (common/ps_websocket.c): frame and message
 * counts, close codes, the held-back partial header, the message limit,
 * broken streams (strict and passive), and frames inserted at boundaries. */
#include "ps_test.h"
#include "pswt_ws.h"

static const unsigned char ps_t_key[4] = { 0x12, 0x34, 0x56, 0x78 };

/* Append one frame (masked when key) to buf at *n. */
static void ps_t_frame(unsigned char *buf, apr_size_t *n, int fin, int op,
                       const char *payload, apr_size_t len,
                       const unsigned char *key)
{
    apr_size_t h = ps_ws_frame_header_masked(buf + *n, op, len, key);

    if (!fin)
        buf[*n] &= 0x7F;
    if (key)
        ps_ws_mask((char *)buf + *n + h, payload, len, key, 0);
    else
        memcpy(buf + *n + h, payload, len);
    *n += h + len;
}

/* Feed the whole stream the way pswt_forward() does, cut every `step`
 * bytes: a PARTIAL remainder is held and fed again in front of the next
 * bytes.  Returns the bytes forwarded; *v the last verdict. */
static apr_size_t ps_t_feed(pswt_ws_track_t *t, const unsigned char *buf,
                            apr_size_t len, apr_size_t step,
                            apr_uint64_t max, int strict,
                            pswt_ws_verdict_e *v)
{
    unsigned char tmp[4096 + PS_WS_MAX_FRAME_HEADER];
    apr_size_t pos = 0, hold = 0, fwd_total = 0;

    *v = PSWT_WS_OK;
    while (pos < len) {
        apr_size_t n = len - pos < step ? len - pos : step, fwd;

        memcpy(tmp + hold, buf + pos, n);
        pos += n;
        n += hold;
        fwd = pswt_ws_track(t, tmp, n, max, strict, v);
        fwd_total += fwd;
        if (*v == PSWT_WS_PARTIAL) {
            assert_true(n - fwd < PS_WS_MAX_FRAME_HEADER);
            hold = n - fwd;
            memmove(tmp, tmp + fwd, hold);
        }
        else if (*v != PSWT_WS_OK) {
            return fwd_total;
        }
        else {
            assert_int_equal(fwd, n);
            hold = 0;
        }
    }
    return fwd_total;
}

static void test_counts_and_close_code(void **state)
{
    static const apr_size_t steps[] = { 1, 2, 3, 7, 13, 100, 4096 };
    unsigned char buf[4096];
    char big[300];
    apr_size_t n = 0, i;

    memset(big, 'x', sizeof(big));
    ps_t_frame(buf, &n, 1, PS_WS_OP_TEXT, "hello", 5, ps_t_key);
    ps_t_frame(buf, &n, 0, PS_WS_OP_BINARY, big, 200, ps_t_key);
    ps_t_frame(buf, &n, 1, PS_WS_OP_PING, "p", 1, ps_t_key);    /* between fragments */
    ps_t_frame(buf, &n, 1, PS_WS_OP_CONT, big, 300, ps_t_key);
    ps_t_frame(buf, &n, 1, PS_WS_OP_TEXT, "", 0, NULL);         /* unmasked: a server's */
    n += ps_ws_close_frame_masked((char *)buf + n, 4321, "bye", 3, ps_t_key);
    for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        pswt_ws_track_t t;
        pswt_ws_verdict_e v;

        pswt_ws_track_init(&t);
        assert_int_equal(t.close_code, -1);
        assert_int_equal(ps_t_feed(&t, buf, n, steps[i], 0, 1, &v), n);
        assert_int_equal(v, PSWT_WS_OK);
        assert_int_equal(t.frames, 6);
        assert_int_equal(t.messages, 3);
        assert_int_equal(t.close_code, 4321);
        assert_true(pswt_ws_at_boundary(&t));
    }
}

static void test_close_without_code(void **state)
{
    unsigned char buf[PS_WS_MAX_CLOSE_FRAME + 4];
    apr_size_t n = 0;
    pswt_ws_track_t t;
    pswt_ws_verdict_e v;

    n = ps_ws_close_frame_masked((char *)buf, 0, NULL, 0, NULL);
    assert_int_equal(n, 2);
    pswt_ws_track_init(&t);
    assert_int_equal(pswt_ws_track(&t, buf, n, 0, 1, &v), 2);
    assert_int_equal(t.close_code, PS_WS_CLOSE_NO_STATUS);
}

static void test_partial_header_held(void **state)
{
    unsigned char buf[256];
    char pay[126];
    apr_size_t n = 0, fwd;
    pswt_ws_track_t t;
    pswt_ws_verdict_e v;

    memset(pay, 'a', sizeof(pay));
    ps_t_frame(buf, &n, 1, PS_WS_OP_TEXT, pay, 126, ps_t_key);  /* 16-bit length */
    assert_int_equal(n, 2 + 2 + 4 + 126);
    pswt_ws_track_init(&t);
    /* 7 of the 8 header bytes: nothing may go, the header is held */
    fwd = pswt_ws_track(&t, buf, 7, 0, 1, &v);
    assert_int_equal(fwd, 0);
    assert_int_equal(v, PSWT_WS_PARTIAL);
    assert_int_equal(t.frames, 0);
    fwd = pswt_ws_track(&t, buf, n, 0, 1, &v);
    assert_int_equal(fwd, n);
    assert_int_equal(v, PSWT_WS_OK);
    assert_int_equal(t.messages, 1);
}

static void test_message_limit(void **state)
{
    unsigned char buf[1024];
    char pay[300];
    apr_size_t n = 0, first, fwd;
    pswt_ws_track_t t;
    pswt_ws_verdict_e v;

    memset(pay, 'b', sizeof(pay));
    ps_t_frame(buf, &n, 1, PS_WS_OP_TEXT, pay, 100, ps_t_key);
    first = n;
    ps_t_frame(buf, &n, 0, PS_WS_OP_TEXT, pay, 60, ps_t_key);
    ps_t_frame(buf, &n, 1, PS_WS_OP_CONT, pay, 60, ps_t_key);   /* 120 > 100 */
    pswt_ws_track_init(&t);
    fwd = pswt_ws_track(&t, buf, n, 100, 1, &v);
    assert_int_equal(v, PSWT_WS_TOO_BIG);
    /* everything before the offending header goes out: the first
     * message and the first fragment (60 bytes fit) */
    assert_int_equal(fwd, first + 2 + 4 + 60);
    assert_int_equal(t.messages, 1);
    assert_true(pswt_ws_at_boundary(&t));
}

static void test_broken_streams(void **state)
{
    static const unsigned char bad[][10] = {
        { 0x83, 0x80, 1, 2, 3, 4 },                   /* reserved opcode 3 */
        { 0x8B, 0x80, 1, 2, 3, 4 },                   /* reserved opcode 0xB */
        { 0x09, 0x80, 1, 2, 3, 4 },                   /* fragmented ping */
        { 0x89, 0xFE, 0, 126, 1, 2, 3, 4 },           /* ping over 125 */
        { 0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 1 },    /* 64-bit top bit */
    };
    apr_size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        unsigned char buf[32] = "\x81\x82\0\0\0\0hi";
        pswt_ws_track_t t;
        pswt_ws_verdict_e v;
        apr_size_t fwd;

        memcpy(buf + 8, bad[i], sizeof(bad[i]));
        /* strict: the good frame goes, the bad header is reported */
        pswt_ws_track_init(&t);
        fwd = pswt_ws_track(&t, buf, 8 + 14, 0, 1, &v);
        assert_int_equal(v, PSWT_WS_BROKEN);
        assert_int_equal(fwd, 8);
        assert_int_equal(t.messages, 1);
        assert_false(pswt_ws_at_boundary(&t));
        /* passive: everything goes, the tracker stops following */
        pswt_ws_track_init(&t);
        fwd = pswt_ws_track(&t, buf, 8 + 14, 0, 0, &v);
        assert_int_equal(v, PSWT_WS_OK);
        assert_int_equal(fwd, 8 + 14);
        assert_int_equal(pswt_ws_track(&t, buf, 5, 0, 0, &v), 5);
        assert_false(pswt_ws_at_boundary(&t));
    }
}

/* Inside a frame the tracker is not at a boundary: the proxy's own close
 * may only go between frames. */
static void test_boundary(void **state)
{
    unsigned char buf[64];
    apr_size_t n = 0;
    pswt_ws_track_t t;
    pswt_ws_verdict_e v;

    ps_t_frame(buf, &n, 1, PS_WS_OP_BINARY, "abcdef", 6, ps_t_key);
    pswt_ws_track_init(&t);
    assert_true(pswt_ws_at_boundary(&t));
    assert_int_equal(pswt_ws_track(&t, buf, n - 3, 0, 1, &v), n - 3);
    assert_false(pswt_ws_at_boundary(&t));
    assert_int_equal(pswt_ws_track(&t, buf + n - 3, 3, 0, 1, &v), 3);
    assert_true(pswt_ws_at_boundary(&t));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_and_close_code),
        cmocka_unit_test(test_close_without_code),
        cmocka_unit_test(test_partial_header_held),
        cmocka_unit_test(test_message_limit),
        cmocka_unit_test(test_broken_streams),
        cmocka_unit_test(test_boundary),
    };
    PS_TEST_RUN(tests);
}
