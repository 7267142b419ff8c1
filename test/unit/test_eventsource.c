/* test_eventsource.c - EventSource header, footer, messages, ping. */
#include <stdlib.h>

#include "ps_test.h"
#include "ps_test_render.h"
#include "ps_eventsource.h"

static void ps_expect_header(apr_pool_t *p, const char *tpl, const char *want)
{
    apr_size_t n = 99;
    const char *out = ps_es_header(p, tpl, tpl ? strlen(tpl) : 0, &n);

    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
}

static void ps_expect_footer(apr_pool_t *p, const char *tpl, const char *want)
{
    apr_size_t n = 99;
    const char *out = ps_es_footer(p, tpl, tpl ? strlen(tpl) : 0, &n);

    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
}

static ps_msgview_t ps_msg(const char *text, apr_size_t len)
{
    return ps_test_msg(1, text, len);
}

/* Render m with template tpl (NULL = no template) and check that measure,
 * render_to (guard byte intact) and the pool convenience agree. */
static char *ps_render(apr_pool_t *p, const char *tpl, const ps_msgview_t *m,
                       apr_size_t *out_len)
{
    const ps_template_t *t = tpl ? ps_template_compile(p, tpl, strlen(tpl)) : NULL;

    return ps_test_render(p, ps_es_message_measure, ps_es_message_render_to,
                          ps_es_message_render, t, m, out_len);
}

static void ps_expect_msg(apr_pool_t *p, const char *tpl, const ps_msgview_t *m,
                          const char *want)
{
    apr_size_t n;
    char *out = ps_render(p, tpl, m, &n);

    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
}

static void test_header(void **state)
{
    apr_pool_t *p = *state;

    ps_expect_header(p, NULL, ": \n");
    ps_expect_header(p, "", ": \n");
    ps_expect_header(p, "header line 1\nheader line 2\rheader line 3\r\nheader line 4",
                     ": header line 1\n: header line 2\n: header line 3\n: header line 4\n");
    ps_expect_header(p, "one line", ": one line\n");
    ps_expect_header(p, "trailing\n", ": trailing\n");
    ps_expect_header(p, "\n\na\r\r\n\rb\n\n", ": a\n: b\n");
    /* a literal backslash-n is not a line break */
    ps_expect_header(p, "a\\nb", ": a\\nb\n");
    /* already a comment: as-is */
    ps_expect_header(p, ": mine\n", ": mine\n");
    ps_expect_header(p, ": x\ny", ": x\ny");
    /* only a colon without the space is not the prefix */
    ps_expect_header(p, ":x", ": :x\n");
    /* nothing but line breaks: the default */
    ps_expect_header(p, "\r\n\n", ": \n");
}

static void test_footer(void **state)
{
    apr_pool_t *p = *state;

    ps_expect_footer(p, "footer line 1\nfooter line 2",
                     ": footer line 1\n: footer line 2\n");
    ps_expect_footer(p, "footer line 1\nfooter line 2\n",
                     ": footer line 1\n: footer line 2\n");
    ps_expect_footer(p, NULL, "");
    ps_expect_footer(p, "", "");
    ps_expect_footer(p, "\n", "");
    ps_expect_footer(p, ": bye\n", ": bye\n");
}

static void test_ping(void **state)
{
    ps_assert_mem(PS_ES_PING, PS_ES_PING_LEN, ": -1\n");
}

static void test_message_event_fields(void **state)
{
    ps_msgview_t m = ps_msg("line1\nline2", 11);

    ps_test_msg_event(&m, "evt1", "mytype");
    ps_expect_msg(*state, "~text~", &m,
                  "id: evt1\nevent: mytype\ndata: line1\ndata: line2\n\n");
    /* each field on its own */
    ps_test_msg_event(&m, "evt1", NULL);
    ps_expect_msg(*state, "~text~", &m, "id: evt1\ndata: line1\ndata: line2\n\n");
    ps_test_msg_event(&m, "", "t");
    ps_expect_msg(*state, "~text~", &m, "event: t\ndata: line1\ndata: line2\n\n");
}

static void test_message_json_template(void **state)
{
    ps_msgview_t m = ps_msg("test message", 12);

    ps_expect_msg(*state, "{\"id\":\"~id~\", \"message\":\"~text~\"}", &m,
                  "data: {\"id\":\"1\", \"message\":\"test message\"}\n\n");
}

static void test_message_lines(void **state)
{
    ps_msgview_t m = ps_msg("ab\r\ncde\rf\n\ng\r", 13);

    /* ~size~ is the line's length; every line gets the template */
    ps_expect_msg(*state, "~size~:~text~", &m,
                  "data: 2:ab\ndata: 3:cde\ndata: 1:f\ndata: 1:g\n\n");
    ps_expect_msg(*state, "[~id~ ~channel~] ~text~", &m,
                  "data: [1 ch1] ab\ndata: [1 ch1] cde\ndata: [1 ch1] f\n"
                  "data: [1 ch1] g\n\n");
    /* no template = ~text~ */
    ps_expect_msg(*state, NULL, &m, "data: ab\ndata: cde\ndata: f\ndata: g\n\n");
}

static void test_message_data_prefix(void **state)
{
    ps_msgview_t m = ps_msg("x\ny", 3);

    /* a template that already starts with "data: " is not prefixed again */
    ps_expect_msg(*state, "data: ~text~", &m, "data: x\ndata: y\n\n");
    /* ... but published text starting with "data: " is delivered as is */
    m = ps_msg("data: x", 7);
    ps_expect_msg(*state, "~text~", &m, "data: data: x\n\n");
    /* "data:" without the space is no prefix */
    m = ps_msg("x", 1);
    ps_expect_msg(*state, "data:~text~", &m, "data: data:x\n\n");
}

static void test_message_empty_text(void **state)
{
    ps_msgview_t m = ps_msg("", 0);

    ps_expect_msg(*state, "~text~", &m, "data: \n\n");
    ps_expect_msg(*state, "{\"m\":\"~text~\",\"s\":~size~}", &m,
                  "data: {\"m\":\"\",\"s\":0}\n\n");
    m = ps_msg("\r\n\n\r", 4);
    ps_expect_msg(*state, "~text~", &m, "data: \n\n");
    m = ps_msg(NULL, 0);
    ps_test_msg_event(&m, "7", NULL);
    ps_expect_msg(*state, "~text~", &m, "id: 7\ndata: \n\n");
}

static void test_message_binary(void **state)
{
    static const char text[] = "a\0b\nc\xFF";
    ps_msgview_t m = ps_msg(text, sizeof(text) - 1);
    apr_size_t n;
    char *out = ps_render(*state, "~text~", &m, &n);

    ps_assert_mem(out, n, "data: a\0b\ndata: c\xFF\n\n");
}

static void test_message_large(void **state)
{
    apr_size_t lines = 1000, len = lines * 10, n;
    char *text = malloc(len);
    ps_msgview_t m;
    char *out;

    assert_non_null(text);
    for (apr_size_t i = 0; i < lines; i++) {
        memcpy(text + i * 10, "012345678", 9);
        text[i * 10 + 9] = (i & 1) ? '\n' : '\r';
    }
    m = ps_msg(text, len);
    out = ps_render(*state, "~text~", &m, &n);
    assert_int_equal(n, lines * (6 + 9 + 1) + 1);
    free(text);
    (void)out;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        PS_TEST(test_header),
        PS_TEST(test_footer),
        PS_TEST(test_ping),
        PS_TEST(test_message_event_fields),
        PS_TEST(test_message_json_template),
        PS_TEST(test_message_lines),
        PS_TEST(test_message_data_prefix),
        PS_TEST(test_message_empty_text),
        PS_TEST(test_message_binary),
        PS_TEST(test_message_large),
    };

    PS_TEST_RUN(tests);
}
