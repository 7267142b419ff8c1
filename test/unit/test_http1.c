/* test_http1.c - request heads of the publisher port (ps_http1.c). */
#include "ps_test.h"
#include <apr_strings.h>
#include "ps_http1.h"

#define MAX 16384

static long ps_parse(apr_pool_t *p, const char *s, ps_h1_req_t *req)
{
    return ps_h1_parse(p, s, strlen(s), MAX, req);
}

static void test_simple_post(void **state)
{
    static const char s[] = "POST /pub?id=a/b HTTP/1.1\r\nHost: x\r\n"
                            "Content-Length: 5\r\nEvent-Id: e1\r\n"
                            "Event-Type:  t  \r\nAccept: text/plain\r\n\r\nhello";
    ps_h1_req_t req;
    long rc = ps_parse(*state, s, &req);

    assert_int_equal(rc, (long)(strlen(s) - 5));
    assert_string_equal(req.method, "POST");
    assert_string_equal(req.path, "/pub");
    assert_string_equal(req.args, "id=a/b");
    assert_int_equal(req.minor, 1);
    assert_int_equal(req.content_length, 5);
    assert_string_equal(req.event_id, "e1");
    assert_string_equal(req.event_type, "t");
    assert_string_equal(req.accept, "text/plain");
    assert_false(req.transfer_encoding);
    assert_true(ps_h1_keepalive(&req));
}

static void test_incomplete_needs_more(void **state)
{
    static const char s[] = "GET /pub?id=a HTTP/1.1\r\nHost: x\r\n\r\n";
    ps_h1_req_t req;
    apr_size_t n;

    for (n = 0; n < strlen(s); n++) {
        assert_int_equal(ps_h1_parse(*state, s, n, MAX, &req), 0);
    }
    assert_int_equal(ps_h1_parse(*state, s, n, MAX, &req), (long)n);
    assert_string_equal(req.args, "id=a");
}

static void test_bare_lf_and_leading_empty_lines(void **state)
{
    static const char s[] = "\r\n\nGET /x HTTP/1.0\nX-A: 1\n\n";
    ps_h1_req_t req;

    assert_int_equal(ps_parse(*state, s, &req), (long)strlen(s));
    assert_string_equal(req.path, "/x");
    assert_null(req.args);
    assert_int_equal(req.minor, 0);
    assert_int_equal(req.content_length, -1);
    assert_false(ps_h1_keepalive(&req));      /* 1.0 without keep-alive */
}

static void test_connection_tokens(void **state)
{
    ps_h1_req_t req;

    ps_parse(*state, "GET / HTTP/1.1\r\nHost: x\r\nConnection: TE, Close\r\n\r\n",
             &req);
    assert_true(req.conn_close);
    assert_false(ps_h1_keepalive(&req));
    ps_parse(*state, "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &req);
    assert_true(ps_h1_keepalive(&req));
    ps_parse(*state, "GET / HTTP/1.1\r\nHost: x\r\nConnection: closed\r\n\r\n",
             &req);
    assert_true(ps_h1_keepalive(&req));       /* not the token "close" */
}

static void test_expect(void **state)
{
    ps_h1_req_t req;

    ps_parse(*state, "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\n\r\n",
             &req);
    assert_true(req.expect_continue);
    assert_false(req.expect_other);
    ps_parse(*state, "POST / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n", &req);
    assert_false(req.expect_continue);
    assert_true(req.expect_other);
}

static void test_errors(void **state)
{
    static const struct { const char *s; long rc; } cases[] = {
        { "garbage\r\n\r\n", -400 },
        { " GET / HTTP/1.1\r\nHost: x\r\n\r\n", -400 },
        { "GET  / HTTP/1.1\r\nHost: x\r\n\r\n", -400 },
        { "GET / HTTP/1.1 \r\nHost: x\r\n\r\n", -400 },
        { "G(T / HTTP/1.1\r\nHost: x\r\n\r\n", -400 },
        { "GET * HTTP/1.1\r\nHost: x\r\n\r\n", -400 },
        { "GET http://h/ HTTP/1.1\r\nHost: x\r\n\r\n", -400 },
        { "GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n", -400 },
        { "GET / HTTP/2.0\r\nHost: x\r\n\r\n", -505 },
        { "GET / HTTP/1.2\r\nHost: x\r\n\r\n", -505 },
        { "GET / HTTPS/1.1\r\nHost: x\r\n\r\n", -400 },
        { "GET / HTTP/1.1\r\n\r\n", -400 },                     /* no Host */
        { "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", -400 },
        { "GET / HTTP/1.1\r\nHost : x\r\n\r\n", -400 },
        { "GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", -400 },
        { "GET / HTTP/1.1\r\nHost: x\r\nA: b\x7f\r\n\r\n", -400 },
        { "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", -400 },
        { "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n", -400 },
        { "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n", -400 },
        { "GET / HTTP/1.1\r\nHost: x\r\n"
          "Content-Length: 99999999999999999999\r\n\r\n", -400 },
        { "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
          "Content-Length: 2\r\n\r\n", -400 },
    };
    apr_size_t i;
    ps_h1_req_t req;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        long rc = ps_h1_parse(*state, cases[i].s, strlen(cases[i].s), MAX, &req);
        if (rc != cases[i].rc) {
            fail_msg("case %u (%s): %ld, not %ld", (unsigned)i, cases[i].s, rc,
                     cases[i].rc);
        }
    }
}

static void test_same_content_length_twice_is_fine(void **state)
{
    ps_h1_req_t req;

    assert_true(ps_parse(*state, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2"
                         "\r\ncontent-length: 2\r\n\r\n", &req) > 0);
    assert_int_equal(req.content_length, 2);
}

static void test_head_limits(void **state)
{
    apr_pool_t *p = *state;
    char *big = apr_palloc(p, MAX + 64);
    ps_h1_req_t req;
    apr_size_t n;
    int i;

    /* no end of head within max: 431; within it but unfinished: 0 */
    memset(big, 'a', MAX + 64);
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    assert_int_equal(ps_h1_parse(p, big, MAX + 64, MAX, &req), -431);
    assert_int_equal(ps_h1_parse(p, big, MAX - 1, MAX, &req), 0);
    /* too many header lines */
    n = (apr_size_t)apr_snprintf(big, MAX, "GET / HTTP/1.1\r\nHost: x\r\n");
    for (i = 0; i < PS_H1_MAX_HEADERS; i++) {
        n += (apr_size_t)apr_snprintf(big + n, MAX - n, "A: b\r\n");
    }
    n += (apr_size_t)apr_snprintf(big + n, MAX - n, "\r\n");
    assert_int_equal(ps_h1_parse(p, big, n, MAX, &req), -431);
    /* a head ending exactly at max is complete */
    n = (apr_size_t)apr_snprintf(big, MAX, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(ps_h1_parse(p, big, n, n, &req), (long)n);
}

static void test_head_end_resumes(void **state)
{
    static const char s[] = "\r\nPOST /p HTTP/1.1\r\nHost: x\r\n\r\nbody";
    apr_size_t head = strlen(s) - 4, n;
    ps_h1_scan_t sc = { 0, 0 };

    (void)state;
    for (n = 0; n < head; n++) {            /* a byte at a time */
        assert_int_equal(ps_h1_head_end(&sc, s, n), 0);
        assert_true(sc.pos <= n);
    }
    assert_int_equal(ps_h1_head_end(&sc, s, head), head);
    memset(&sc, 0, sizeof(sc));
    assert_int_equal(ps_h1_head_end(&sc, s, strlen(s)), head);
    memset(&sc, 0, sizeof(sc));
    assert_int_equal(ps_h1_head_end(&sc, "\r\n\n\r\n", 5), 0);   /* only empty */
}

static void test_reasons(void **state)
{
    (void)state;
    assert_string_equal(ps_h1_reason(200), "OK");
    assert_string_equal(ps_h1_reason(411), "Length Required");
    assert_string_equal(ps_h1_reason(431), "Request Header Fields Too Large");
    assert_string_equal(ps_h1_reason(599), "Unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        PS_TEST(test_simple_post),
        PS_TEST(test_incomplete_needs_more),
        PS_TEST(test_bare_lf_and_leading_empty_lines),
        PS_TEST(test_connection_tokens),
        PS_TEST(test_expect),
        PS_TEST(test_errors),
        PS_TEST(test_same_content_length_twice_is_fine),
        PS_TEST(test_head_limits),
        PS_TEST(test_head_end_resumes),
        PS_TEST(test_reasons),
    };

    PS_TEST_RUN(tests);
}
