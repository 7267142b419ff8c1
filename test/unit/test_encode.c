/* test_encode.c - the one encoder of a subscriber's messages (ps_encode.h):
 * for each transport, the replay (ps_enc_intro, ps_enc_body of the stored
 * messages, on the worker thread) gives byte for byte what live delivery
 * (ps_enc_render_to per message, in the loop) gives, JSONP and EventSource
 * included; and the bytes are the protocol's. */
#include <stdlib.h>

#include "ps_test.h"
#include "ps_test_render.h"
#include "ps_encode.h"
#include "ps_util.h"

static ps_msgview_t ps_msg(const char *text, const char *eid, const char *etype)
{
    ps_msgview_t m = ps_test_msg(1, text, strlen(text));

    ps_test_msg_event(&m, eid, etype);
    return m;
}

/* What live delivery sends for m: one ps_enc_render_to() of measured size. */
static char *ps_live(apr_pool_t *p, const ps_enc_t *e, const ps_msgview_t *m,
                     apr_size_t *len)
{
    apr_size_t n = ps_enc_measure(e, m);
    char *buf = apr_palloc(p, n + 1);

    *len = ps_enc_render_to(e, m, buf);
    assert_int_equal(*len, n);
    return buf;
}

/* The replay of msgs after header hdr (worker thread) equals the intro
 * alone followed by each message as the loop sends it. */
static void ps_expect_replay_is_live(apr_pool_t *p, const ps_enc_t *e,
                                     const char *hdr, apr_size_t pad_header,
                                     const ps_msgview_t *msgs, int n)
{
    apr_size_t rlen, ilen, len, at;
    const char *replay = ps_enc_intro(p, e, hdr, hdr ? strlen(hdr) : 0,
                                      pad_header, msgs, n, &rlen);
    const char *intro = ps_enc_intro(p, e, hdr, hdr ? strlen(hdr) : 0,
                                     pad_header, NULL, 0, &ilen);
    int i;

    assert_true(rlen >= ilen);
    assert_memory_equal(replay, intro, ilen);
    at = ilen;
    for (i = 0; i < n; i++) {
        const char *live = ps_live(p, e, &msgs[i], &len);
        assert_true(at + len <= rlen);
        assert_memory_equal(replay + at, live, len);
        at += len;
    }
    assert_int_equal(at, rlen);
}

static void test_stream_plain(void **state)
{
    apr_pool_t *p = *state;
    ps_enc_t e = { PS_ENC_PLAIN, ps_template_compile(p, "<~id~:~text~>", 13),
                   0, 0 };
    ps_msgview_t msgs[2] = { ps_msg("hello", NULL, NULL),
                             ps_msg("world", NULL, NULL) };
    apr_size_t len;
    const char *out = ps_live(p, &e, &msgs[0], &len);

    ps_assert_mem(out, len, "<1:hello>");
    out = ps_enc_intro(p, &e, "HEAD", 4, 0, msgs, 2, &len);
    ps_assert_mem(out, len, "HEAD<1:hello><1:world>");
    ps_expect_replay_is_live(p, &e, "HEAD", 0, msgs, 2);
    ps_expect_replay_is_live(p, &e, NULL, 0, msgs, 2);
}

static void test_stream_padding(void **state)
{
    apr_pool_t *p = *state;
    ps_enc_t e = { PS_ENC_PLAIN, ps_template_compile(p, "~text~", 6),
                   300, 1024 };
    ps_msgview_t m = ps_msg("abcde", NULL, NULL);
    apr_size_t len, pad = ps_padding_len(5, 300, 1024), i;
    const char *out = ps_live(p, &e, &m, &len);

    assert_true(pad > 0);
    assert_int_equal(len, 5 + pad);
    assert_memory_equal(out, "abcde", 5);
    for (i = 5; i < len; i++) {
        assert_true(out[i] == '\r' || out[i] == '\n');
    }
    ps_expect_replay_is_live(p, &e, "HEADER", 2000, &m, 1);
}

static void test_eventsource(void **state)
{
    apr_pool_t *p = *state;
    ps_enc_t e = { PS_ENC_ES, ps_template_compile(p, "~text~", 6), 0, 0 };
    ps_msgview_t msgs[2] = { ps_msg("a\nb", "7", "news"),
                             ps_msg("plain", NULL, NULL) };
    apr_size_t len, pad, i;
    const char *out = ps_live(p, &e, &msgs[0], &len);

    ps_assert_mem(out, len, "id: 7\nevent: news\ndata: a\ndata: b\n\n");
    out = ps_enc_intro(p, &e, "hi", 2, 0, msgs, 2, &len);
    ps_assert_mem(out, len, ": hi\nid: 7\nevent: news\ndata: a\ndata: b\n\n"
                  "data: plain\n\n");
    ps_expect_replay_is_live(p, &e, "hi", 0, msgs, 2);
    ps_expect_replay_is_live(p, &e, NULL, 0, msgs, 2);

    /* padded: EventSource comment form */
    e.pad_min = 400;
    e.pad_max = 1024;
    out = ps_live(p, &e, &msgs[1], &len);
    pad = ps_padding_len(13, 400, 1024);
    assert_int_equal(len, 13 + pad);
    for (i = 13; i < len - 1; i++) {
        assert_int_equal(out[i], ':');
    }
    assert_int_equal(out[len - 1], '\n');
    ps_expect_replay_is_live(p, &e, "hi", 3000, msgs, 2);
}

static void test_websocket(void **state)
{
    apr_pool_t *p = *state;
    ps_enc_t e = { PS_ENC_WS, ps_template_compile(p, "~text~", 6), 500, 1024 };
    char *big = apr_palloc(p, 301);
    ps_msgview_t msgs[2];
    apr_size_t len;
    const char *out;

    memset(big, 'x', 300);
    big[300] = '\0';
    msgs[0] = ps_msg("hey", NULL, NULL);
    msgs[1] = ps_msg(big, NULL, NULL);
    out = ps_live(p, &e, &msgs[0], &len);
    ps_assert_mem(out, len, "\x81\x03hey");      /* never padded */
    out = ps_live(p, &e, &msgs[1], &len);
    assert_int_equal(len, 4 + 300);
    assert_memory_equal(out, "\x81\x7e\x01\x2c", 4);
    out = ps_enc_intro(p, &e, "HD", 2, 900, msgs, 1, &len);
    ps_assert_mem(out, len, "\x81\x02HD\x81\x03hey");
    ps_expect_replay_is_live(p, &e, "HD", 900, msgs, 2);
    ps_expect_replay_is_live(p, &e, NULL, 0, msgs, 2);
}

/* A long-poll's live answer (one message) is the poll's answer at once
 * for that message: header, JSONP wrapping, footer alike. */
static void test_body_jsonp(void **state)
{
    apr_pool_t *p = *state;
    ps_enc_t e = { PS_ENC_PLAIN, ps_template_compile(p, "{\"t\":\"~text~\"}",
                                                     14), 0, 0 };
    ps_enc_body_t b = { "H", "F", 1, 1, "cb" };
    ps_msgview_t msgs[2] = { ps_msg("a", NULL, NULL), ps_msg("b", NULL, NULL) };
    char buf[128];
    apr_size_t len, n;

    n = ps_enc_body_measure(&e, &b, msgs, 2);
    len = ps_enc_body_render_to(&e, &b, msgs, 2, buf);
    assert_int_equal(len, n);
    ps_assert_mem(buf, len, "Hcb([{\"t\":\"a\"},{\"t\":\"b\"}]);F");
    n = ps_enc_body_measure(&e, &b, msgs, 1);
    len = ps_enc_body_render_to(&e, &b, msgs, 1, buf);
    assert_int_equal(len, n);
    ps_assert_mem(buf, len, "Hcb([{\"t\":\"a\"}]);F");
    b.callback = NULL;
    b.hlen = b.flen = 0;
    n = ps_enc_body_measure(&e, &b, msgs, 2);
    len = ps_enc_body_render_to(&e, &b, msgs, 2, buf);
    assert_int_equal(len, n);
    ps_assert_mem(buf, len, "{\"t\":\"a\"}{\"t\":\"b\"}");
}

static void test_chunk_head(void **state)
{
    char buf[PS_ENC_CHUNK_HEAD];
    apr_size_t n = ps_enc_chunk_head(buf, 26);

    (void)state;
    ps_assert_mem(buf, n, "1a\r\n");
    n = ps_enc_chunk_head(buf, APR_UINT64_C(0xffffffffffffffff));
    ps_assert_mem(buf, n, "ffffffffffffffff\r\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        PS_TEST(test_stream_plain),
        PS_TEST(test_stream_padding),
        PS_TEST(test_eventsource),
        PS_TEST(test_websocket),
        PS_TEST(test_body_jsonp),
        PS_TEST(test_chunk_head),
    };

    PS_TEST_RUN(tests);
}
