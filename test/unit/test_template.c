/* test_template.c - message templates: tokens, escaping, binary safety. */
#include <stdlib.h>

#include "ps_test.h"
#include "ps_test_render.h"
#include "ps_template.h"

/* A typical message: id 7, tag 2, channel "ch1", published at
 * Sun, 22 Nov 2026 20:09:01 GMT. */
static ps_msgview_t ps_msg(const char *text, apr_size_t len)
{
    ps_msgview_t m = ps_test_msg(7, text, len);

    ps_test_msg_event(&m, "ev-1", "update");
    return m;
}

/* Compile tpl (tlen bytes), render m, check measure == render_to == the
 * convenience render, return the output. */
static char *ps_run(apr_pool_t *p, const char *tpl, apr_size_t tlen,
                    const ps_msgview_t *m, apr_size_t *out_len)
{
    return ps_test_render(p, ps_template_measure, ps_template_render_to, ps_template_render,
                          ps_template_compile(p, tpl, tlen), m, out_len);
}

/* Render a NUL-free template against m and compare with want. */
static void ps_expect(apr_pool_t *p, const char *tpl, const ps_msgview_t *m,
                      const char *want)
{
    apr_size_t n;
    char *out = ps_run(p, tpl, strlen(tpl), m, &n);

    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
}

static void test_default_text(void **state)
{
    ps_msgview_t m = ps_msg("hello", 5);

    ps_expect(*state, "~text~", &m, "hello");
}

static void test_every_token(void **state)
{
    ps_msgview_t m = ps_msg("hi", 2);

    ps_expect(*state, "~id~", &m, "7");
    ps_expect(*state, "~text~", &m, "hi");
    ps_expect(*state, "~size~", &m, "2");
    ps_expect(*state, "~channel~", &m, "ch1");
    ps_expect(*state, "~time~", &m, "Sun, 22 Nov 2026 20:09:01 GMT");
    ps_expect(*state, "~tag~", &m, "2");
    ps_expect(*state, "~event-id~", &m, "ev-1");
    ps_expect(*state, "~event-type~", &m, "update");
    ps_expect(*state,
              "{\"id\":~id~,\"channel\":\"~channel~\",\"text\":\"~text~\","
              "\"tag\":~tag~,\"time\":\"~time~\",\"size\":~size~,"
              "\"eid\":\"~event-id~\",\"et\":\"~event-type~\"}", &m,
              "{\"id\":7,\"channel\":\"ch1\",\"text\":\"hi\",\"tag\":2,"
              "\"time\":\"Sun, 22 Nov 2026 20:09:01 GMT\",\"size\":2,"
              "\"eid\":\"ev-1\",\"et\":\"update\"}");
}

static void test_repeated_and_adjacent(void **state)
{
    ps_msgview_t m = ps_msg("x", 1);

    ps_expect(*state, "~id~~id~~text~~text~", &m, "77xx");
    ps_expect(*state, "a~id~b~id~c", &m, "a7b7c");
}

static void test_case_insensitive(void **state)
{
    ps_msgview_t m = ps_msg("hi", 2);

    ps_expect(*state, "~TEXT~", &m, "hi");
    ps_expect(*state, "~Text~/~ID~/~ChAnNeL~/~SIZE~/~TAG~", &m, "hi/7/ch1/2/2");
    ps_expect(*state, "~EVENT-ID~ ~Event-Type~ ~TiMe~", &m,
              "ev-1 update Sun, 22 Nov 2026 20:09:01 GMT");
    ps_expect(*state, "~TEXT|JSON~ ~text|Html~ ~Text|JS~", &m, "hi hi hi");
}

static void test_special_messages(void **state)
{
    ps_msgview_t m;

    memset(&m, 0, sizeof(m));
    m.id = PS_MSG_ID_PING;
    m.text = " ";
    m.text_len = 1;
    m.channel = "";
    ps_expect(*state, "~id~|~text~|~channel~|~time~|~tag~|~event-id~|"
              "~event-type~|~size~", &m,
              "-1| ||Thu, 01 Jan 1970 00:00:00 GMT|0|||1");
    m.id = PS_MSG_ID_DELETED;
    ps_expect(*state, "~id~", &m, "-2");
    m.id = PS_MSG_ID_TIMEDOUT;
    ps_expect(*state, "~id~", &m, "-3");
}

static void test_null_fields(void **state)
{
    ps_msgview_t m;

    memset(&m, 0, sizeof(m));
    ps_expect(*state, "[~text~][~channel~][~event-id~][~event-type~][~size~]",
              &m, "[][][][][0]");
    ps_expect(*state, "[~text|json~][~event-id|html~]", &m, "[][]");
}

static void test_null_message(void **state)
{
    ps_template_t *t = ps_template_compile(*state, "a~text~b~id~", 12);
    apr_size_t n;
    char *out = ps_template_render(*state, t, NULL, &n);

    assert_string_equal(out, "ab0");
}

static void test_big_numbers(void **state)
{
    ps_msgview_t m = ps_msg("", 0);

    m.id = APR_INT64_C(-9223372036854775807) - 1;
    m.tag = APR_INT64_C(9223372036854775807);
    ps_expect(*state, "~id~ ~tag~", &m,
              "-9223372036854775808 9223372036854775807");
}

static void test_unknown_tokens_literal(void **state)
{
    ps_msgview_t m = ps_msg("T", 1);

    ps_expect(*state, "~foo~", &m, "~foo~");
    ps_expect(*state, "~foo~text~", &m, "~fooT");
    ps_expect(*state, "~~text~~", &m, "~T~");
    ps_expect(*state, "~text|foo~", &m, "~text|foo~");
    ps_expect(*state, "~text|~", &m, "~text|~");
    ps_expect(*state, "~|json~", &m, "~|json~");
    ps_expect(*state, "~text|json|html~", &m, "~text|json|html~");
    ps_expect(*state, "~ text~", &m, "~ text~");
    ps_expect(*state, "~texts~", &m, "~texts~");
    ps_expect(*state, "~tex~", &m, "~tex~");
    ps_expect(*state, "~event~", &m, "~event~");
}

static void test_lone_tilde(void **state)
{
    ps_msgview_t m = ps_msg("T", 1);
    ps_template_t *t;

    ps_expect(*state, "~", &m, "~");
    ps_expect(*state, "a~b", &m, "a~b");
    ps_expect(*state, "~text", &m, "~text");
    ps_expect(*state, "text~", &m, "text~");
    ps_expect(*state, "~~~", &m, "~~~");
    ps_expect(*state, "~text~~", &m, "T~");
    t = ps_template_compile(*state, "a~b", 3);
    assert_true(ps_template_is_literal(t));
}

static void test_no_reexpansion(void **state)
{
    ps_msgview_t m = ps_msg("~channel~~text~~id~", 19);

    m.channel = "~text~";
    m.channel_len = 6;
    ps_expect(*state, "~channel~:~text~", &m, "~text~:~channel~~text~~id~");
    ps_expect(*state, "~text|json~", &m, "~channel~~text~~id~");
}

static void test_literal_and_source(void **state)
{
    ps_template_t *t = ps_template_compile(*state, "plain text", 10);
    apr_size_t n;
    const char *src;

    assert_true(ps_template_is_literal(t));
    src = ps_template_source(t, &n);
    assert_int_equal(n, 10);
    assert_string_equal(src, "plain text");

    t = ps_template_compile(*state, "x~text~y", 8);
    assert_false(ps_template_is_literal(t));
    src = ps_template_source(t, &n);
    assert_int_equal(n, 8);
    assert_memory_equal(src, "x~text~y", 8);
    assert_ptr_equal(ps_template_source(t, NULL), src);
}

static void test_empty_and_null_template(void **state)
{
    ps_msgview_t m = ps_msg("T", 1);
    ps_template_t *t = ps_template_compile(*state, NULL, 5);
    apr_size_t n = 9;

    assert_true(ps_template_is_literal(t));
    assert_int_equal(ps_template_measure(t, &m), 0);
    assert_string_equal(ps_template_render(*state, t, &m, &n), "");
    assert_int_equal(n, 0);
    assert_string_equal(ps_template_source(t, &n), "");
    assert_int_equal(n, 0);

    t = ps_template_compile(*state, "", 0);
    assert_true(ps_template_is_literal(t));
    assert_int_equal(ps_template_measure(t, &m), 0);
}

static void test_source_is_copied(void **state)
{
    ps_msgview_t m = ps_msg("T", 1);
    char buf[] = "<~text~>";
    ps_template_t *t = ps_template_compile(*state, buf, 8);
    apr_size_t n;

    memset(buf, 'X', 8);
    assert_string_equal(ps_template_render(*state, t, &m, &n), "<T>");
}

static void test_binary_template(void **state)
{
    static const char tpl[] = "\0a~text~\0~id~\0";
    ps_msgview_t m = ps_msg("b\0c", 3);
    apr_size_t n;
    char *out = ps_run(*state, tpl, sizeof(tpl) - 1, &m, &n);

    assert_int_equal(n, 8);
    assert_memory_equal(out, "\0ab\0c\0" "7\0", 8);
}

static void test_nul_inside_token_is_literal(void **state)
{
    static const char tpl[] = "~te\0xt~";
    ps_msgview_t m = ps_msg("T", 1);
    apr_size_t n;
    char *out = ps_run(*state, tpl, sizeof(tpl) - 1, &m, &n);

    assert_int_equal(n, sizeof(tpl) - 1);
    assert_memory_equal(out, tpl, n);
}

static void test_len_respected(void **state)
{
    ps_msgview_t m = ps_msg("T", 1);
    apr_size_t n;
    /* the template is only "~tex": no token, and nothing read beyond */
    char *out = ps_run(*state, "~text~", 4, &m, &n);

    assert_int_equal(n, 4);
    assert_memory_equal(out, "~tex", 4);
}

static void test_binary_text_roundtrip(void **state)
{
    /* default template: every two-byte combination comes out unchanged */
    ps_template_t *t = ps_template_compile(*state, "~text~", 6);
    char in[2], out[2];
    unsigned v;

    for (v = 0; v < 65536; v++) {
        ps_msgview_t m = ps_msg(in, 2);

        in[0] = (char)(v >> 8);
        in[1] = (char)(v & 0xff);
        assert_int_equal(ps_template_measure(t, &m), 2);
        assert_int_equal(ps_template_render_to(t, &m, out), 2);
        assert_memory_equal(in, out, 2);
    }
}

static void test_large_text(void **state)
{
    apr_size_t len = 65536, n;
    char *text = malloc(len);
    ps_msgview_t m;
    char *out;
    apr_size_t i;

    assert_non_null(text);
    for (i = 0; i < len; i++)
        text[i] = (char)(i * 7 + 3);
    m = ps_msg(text, len);
    out = ps_run(*state, "<~text~|~size~>", 15, &m, &n);
    assert_int_equal(n, 1 + len + 1 + 5 + 1);
    assert_int_equal(out[0], '<');
    assert_memory_equal(out + 1, text, len);
    assert_memory_equal(out + 1 + len, "|65536>", 7);
    free(text);
}

/* ---- escaping ------------------------------------------------------------ */

static void test_json_escape(void **state)
{
    static const char text[] = "a\"b\\c\nd\re\tf\bg\fh\x01i\x1fj\x7fk/l\xc3\xa9m";
    ps_msgview_t m = ps_msg(text, sizeof(text) - 1);

    ps_expect(*state, "~text|json~", &m,
              "a\\\"b\\\\c\\nd\\re\\tf\\bg\\fh\\u0001i\\u001fj\x7fk/l\xc3\xa9m");
}

static void test_json_escape_nul(void **state)
{
    ps_msgview_t m = ps_msg("a\0b", 3);

    ps_expect(*state, "~text|json~", &m, "a\\u0000b");
}

static void test_json_escape_other_tokens(void **state)
{
    ps_msgview_t m = ps_msg("t", 1);

    m.channel = "c\"h";
    m.channel_len = 3;
    ps_test_msg_event(&m, "e\\i", "a\nb");
    ps_expect(*state, "~channel|json~ ~event-id|json~ ~event-type|json~ "
              "~id|json~ ~time|json~", &m,
              "c\\\"h e\\\\i a\\nb 7 Sun, 22 Nov 2026 20:09:01 GMT");
    /* unescaped variants stay raw */
    ps_expect(*state, "~channel~", &m, "c\"h");
}

static void test_html_escape(void **state)
{
    static const char text[] = "<a href=\"x\">Tom & Jerry's</a>\n\xc3\xa9";
    ps_msgview_t m = ps_msg(text, sizeof(text) - 1);

    ps_expect(*state, "~text|html~", &m,
              "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;\n"
              "\xc3\xa9");
}

static void test_js_escape(void **state)
{
    static const char text[] =
        "</script><b>&\"\\\n\xe2\x80\xa8x\xe2\x80\xa9y\xe2\x80\xaaz\xe2\x80";
    ps_msgview_t m = ps_msg(text, sizeof(text) - 1);

    ps_expect(*state, "~text|js~", &m,
              "\\u003c/script\\u003e\\u003cb\\u003e\\u0026\\\"\\\\\\n"
              "\\u2028x\\u2029y\xe2\x80\xaaz\xe2\x80");
}

/* Decode a JSON document of the form {"t":"<string>"} and return the
 * string's bytes; fails the test on any invalid JSON syntax. */
static apr_size_t ps_json_decode(const char *s, apr_size_t n, char *out)
{
    apr_size_t i = 6, o = 0;

    assert_true(n >= 8);
    assert_memory_equal(s, "{\"t\":\"", 6);
    assert_memory_equal(s + n - 2, "\"}", 2);
    n -= 2;
    while (i < n) {
        unsigned char c = (unsigned char)s[i++];

        assert_true(c >= 0x20);          /* raw control chars are invalid */
        assert_true(c != '"');           /* unescaped quote ends too early */
        if (c != '\\') {
            out[o++] = (char)c;
            continue;
        }
        assert_true(i < n);
        c = (unsigned char)s[i++];
        switch (c) {
        case '"': case '\\': case '/': out[o++] = (char)c; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'u': {
            char hex[5] = { 0 };
            unsigned long cp;

            assert_true(i + 4 <= n);
            memcpy(hex, s + i, 4);
            i += 4;
            cp = strtoul(hex, NULL, 16);
            if (cp < 0x80) {
                out[o++] = (char)cp;
            }
            else {              /* only U+2028/9 are produced (js) */
                assert_true(cp == 0x2028 || cp == 0x2029);
                out[o++] = '\xe2';
                out[o++] = '\x80';
                out[o++] = (char)(cp == 0x2028 ? 0xa8 : 0xa9);
            }
            break;
        }
        default:
            fail_msg("invalid escape \\%c", c);
        }
    }
    return o;
}

static void ps_check_json_roundtrip(apr_pool_t *p, const char *tpl,
                                    const char *text, apr_size_t len)
{
    ps_msgview_t m = ps_msg(text, len);
    apr_size_t n, dn;
    char *out = ps_run(p, tpl, strlen(tpl), &m, &n);
    char *dec = malloc(n + 1);

    assert_non_null(dec);
    dn = ps_json_decode(out, n, dec);
    assert_int_equal(dn, len);
    assert_memory_equal(dec, text, len);
    free(dec);
}

static void test_json_valid_for_any_byte(void **state)
{
    char text[256 * 3];
    unsigned v;

    for (v = 0; v < 256; v++) {
        text[v * 3] = (char)v;
        text[v * 3 + 1] = 'x';
        text[v * 3 + 2] = (char)(255 - v);
    }
    ps_check_json_roundtrip(*state, "{\"t\":\"~text|json~\"}", text,
                            sizeof(text));
    ps_check_json_roundtrip(*state, "{\"t\":\"~text|js~\"}", text,
                            sizeof(text));
}

static void test_json_valid_random(void **state)
{
    char text[64];
    unsigned seed = 12345;
    int round;

    for (round = 0; round < 2000; round++) {
        apr_size_t len = (apr_size_t)(round % 64), i;

        for (i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            /* bias towards the interesting characters */
            text[i] = (seed >> 16) % 3 ? "\"\\\n\r\t~<>&'\x01\xe2\x80\xa8"[(seed >> 8) % 15]
                                       : (char)(seed >> 20);
        }
        ps_check_json_roundtrip(*state, "{\"t\":\"~text|json~\"}", text, len);
        ps_check_json_roundtrip(*state, "{\"t\":\"~TEXT|JS~\"}", text, len);
    }
}

static void test_id_text_json_example(void **state)
{
    static const char text[] = "say \"hi\"\nC:\\path";
    ps_msgview_t m = ps_msg(text, sizeof(text) - 1);

    ps_expect(*state, "{\"id\":\"~id~\",\"text\":\"~text|json~\"}", &m,
              "{\"id\":\"7\",\"text\":\"say \\\"hi\\\"\\nC:\\\\path\"}");
}

static void test_large_text_escaped(void **state)
{
    apr_size_t len = 65536, n;
    char *text = malloc(len);
    ps_msgview_t m;
    char *out;

    assert_non_null(text);
    memset(text, '"', len);
    m = ps_msg(text, len);
    out = ps_run(*state, "~text|json~", 11, &m, &n);
    assert_int_equal(n, 2 * len);
    assert_memory_equal(out, "\\\"\\\"", 4);
    memset(text, '\x01', len);
    out = ps_run(*state, "~text|html~~text|js~", 20, &m, &n);
    assert_int_equal(n, len + 6 * len);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        PS_TEST(test_default_text),
        PS_TEST(test_every_token),
        PS_TEST(test_repeated_and_adjacent),
        PS_TEST(test_case_insensitive),
        PS_TEST(test_special_messages),
        PS_TEST(test_null_fields),
        PS_TEST(test_null_message),
        PS_TEST(test_big_numbers),
        PS_TEST(test_unknown_tokens_literal),
        PS_TEST(test_lone_tilde),
        PS_TEST(test_no_reexpansion),
        PS_TEST(test_literal_and_source),
        PS_TEST(test_empty_and_null_template),
        PS_TEST(test_source_is_copied),
        PS_TEST(test_binary_template),
        PS_TEST(test_nul_inside_token_is_literal),
        PS_TEST(test_len_respected),
        PS_TEST(test_binary_text_roundtrip),
        PS_TEST(test_large_text),
        PS_TEST(test_json_escape),
        PS_TEST(test_json_escape_nul),
        PS_TEST(test_json_escape_other_tokens),
        PS_TEST(test_html_escape),
        PS_TEST(test_js_escape),
        PS_TEST(test_json_valid_for_any_byte),
        PS_TEST(test_json_valid_random),
        PS_TEST(test_id_text_json_example),
        PS_TEST(test_large_text_escaped),
    };

    PS_TEST_RUN(tests);
}
