/* test_escape.c - ids in documents (ps_esc_*) and the JSON check of the
 * tests themselves (test/fuzz/ps_json_check.h). */

#include "ps_test.h"
#include "ps_escape.h"
#include "ps_info.h"
#include "../fuzz/ps_json_check.h"

#define ESC(p, how, lit) ps_esc((p), (how), (lit), sizeof(lit) - 1, NULL)

static void test_json(void **state)
{
    apr_pool_t *p = *state;

    assert_string_equal(ESC(p, PS_ESC_JSON, "plain-id_1.x"), "plain-id_1.x");
    assert_string_equal(ESC(p, PS_ESC_JSON, "a\"b\\c/d"), "a\\\"b\\\\c/d");
    assert_string_equal(ESC(p, PS_ESC_JSON, "\x01\b\f\n\r\t\x1f\x7f"),
                        "\\u0001\\b\\f\\n\\r\\t\\u001f\\u007f");
    assert_string_equal(ESC(p, PS_ESC_JSON, "\0"), "\\u0000");
    /* valid UTF-8 stays; U+2028/9 are hidden for JSONP */
    assert_string_equal(ESC(p, PS_ESC_JSON, "caf\xc3\xa9 \xf0\x9f\x98\x80"),
                        "caf\xc3\xa9 \xf0\x9f\x98\x80");
    assert_string_equal(ESC(p, PS_ESC_JSON, "\xe2\x80\xa8\xe2\x80\xa9"),
                        "\\u2028\\u2029");
    /* each byte that is not part of valid UTF-8: U+FFFD */
    assert_string_equal(ESC(p, PS_ESC_JSON, "\xff\xc3(\xed\xa0\x80\xc0\xaf"
                                            "\xf4\x90\x80\x80\xe2\x82"),
                        "\\ufffd\\ufffd(\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd"
                        "\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd");
}

static void test_xml(void **state)
{
    apr_pool_t *p = *state;

    assert_string_equal(ESC(p, PS_ESC_XML, "a&b<c>\"d'"),
                        "a&amp;b&lt;c&gt;&quot;d&apos;");
    assert_string_equal(ESC(p, PS_ESC_XML, "\t\n\r\x01\xff\xef\xbf\xbf"),
                        "&#9;&#10;&#13;\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    assert_string_equal(ESC(p, PS_ESC_XML, "caf\xc3\xa9\\"), "caf\xc3\xa9\\");
}

static void test_yaml(void **state)
{
    apr_pool_t *p = *state;

    /* plain when a reader gets this very string back */
    assert_string_equal(ESC(p, PS_ESC_YAML, "ch1"), "ch1");
    assert_string_equal(ESC(p, PS_ESC_YAML, "_a-b.c"), "_a-b.c");
    assert_string_equal(ESC(p, PS_ESC_YAML, "caf\xc3\xa9"), "caf\xc3\xa9");
    /* quoted otherwise: empty, numbers, keywords, indicators, odd bytes */
    assert_string_equal(ESC(p, PS_ESC_YAML, ""), "\"\"");
    assert_string_equal(ESC(p, PS_ESC_YAML, "123"), "\"123\"");
    assert_string_equal(ESC(p, PS_ESC_YAML, "Yes"), "\"Yes\"");
    assert_string_equal(ESC(p, PS_ESC_YAML, "null"), "\"null\"");
    assert_string_equal(ESC(p, PS_ESC_YAML, "-a"), "\"-a\"");
    assert_string_equal(ESC(p, PS_ESC_YAML, "a: b"), "\"a: b\"");
    assert_string_equal(ESC(p, PS_ESC_YAML, "a#b"), "\"a#b\"");
    assert_string_equal(ESC(p, PS_ESC_YAML, "a\"b\\c"), "\"a\\\"b\\\\c\"");
    assert_string_equal(ESC(p, PS_ESC_YAML, "\x01\t\x7f\xff\xc2\x85"),
                        "\"\\x01\\t\\x7f\\uFFFD\\u0085\"");
}

static void test_plain_and_prometheus(void **state)
{
    apr_pool_t *p = *state;

    /* plain: bytes as they are, a control byte as \xHH */
    assert_string_equal(ESC(p, PS_ESC_PLAIN, "a\"b\\c\xff"), "a\"b\\c\xff");
    assert_string_equal(ESC(p, PS_ESC_PLAIN, "a\r\nb"), "a\\x0d\\x0ab");
    assert_string_equal(ESC(p, PS_ESC_PROM, "a\"b\\c\nd\xff"),
                        "a\\\"b\\\\c\\nd\xef\xbf\xbd");
    assert_string_equal(ESC(p, PS_ESC_PROM, "\x01\t\x7f"),
                        "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
}

/* Measuring and writing agree, for every single byte and pairs. */
static void test_measure_matches(void **state)
{
    apr_pool_t *p = *state;
    int how, a, b;
    char in[2], out[64];

    for (how = PS_ESC_JSON; how <= PS_ESC_PROM; how++) {
        for (a = 0; a < 256; a++) {
            for (b = 0; b < 256; b += 17) {
                apr_size_t n, olen;
                in[0] = (char)a;
                in[1] = (char)b;
                n = ps_esc_to(NULL, (ps_esc_e)how, in, 2);
                assert_true(n < sizeof(out));
                assert_int_equal(ps_esc_to(out, (ps_esc_e)how, in, 2), n);
                ps_esc(p, (ps_esc_e)how, in, 2, &olen);
                assert_int_equal(olen, n);
            }
        }
    }
}

/* Every id of two arbitrary bytes gives info documents that parse. */
static void test_json_documents_parse(void **state)
{
    apr_pool_t *p = *state;
    ps_chinfo_t ch[2] = { { NULL, 2, 1, 2, 3 }, { "\"\\", 2, 0, 0, 0 } };
    ps_info_header_t h = { "h\"ost\xff", 1700000000, 2, 0, 5 };
    char id[2];
    int a, b;

    ch[0].id = id;
    for (a = 0; a < 256; a++) {
        for (b = 0; b < 256; b += 3) {
            apr_size_t len, at = 0;
            char *doc;
            id[0] = (char)a;
            id[1] = (char)b;
            doc = ps_info_single(p, PS_FMT_JSON, &ch[0], &len);
            if (!ps_json_valid(doc, len, &at))
                fail_msg("invalid JSON at %zu: %s", at, doc);
            doc = ps_info_group(p, PS_FMT_JSON, &h, ch, 2, &len);
            if (!ps_json_valid(doc, len, &at))
                fail_msg("invalid JSON at %zu: %s", at, doc);
        }
    }
}

static void test_json_check(void **state)
{
    static const char *const good[] = {
        "{}", " [1, -0.5e+3, \"a\\u00e9\\ud83d\\ude00\", true, false, null] ",
        "{\"a\": {\"b\": []}}", "\"caf\xc3\xa9\"", "0",
    };
    static const char *const bad[] = {
        "", "{", "{\"a\" 1}", "[1,]", "\"a\"b\"", "\"\\x41\"", "\"\x01\"",
        "\"\xff\"", "\"\\ud800\"", "\"\\udc00\"", "01", "1.", "-", "[1] 2",
        "{\"a\": 1,}", "tru", "\"\xed\xa0\x80\"",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(ps_json_valid(good[i], strlen(good[i]), NULL));
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (ps_json_valid(bad[i], strlen(bad[i]), NULL))
            fail_msg("accepted: %s", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        PS_TEST(test_json),
        PS_TEST(test_xml),
        PS_TEST(test_yaml),
        PS_TEST(test_plain_and_prometheus),
        PS_TEST(test_measure_matches),
        PS_TEST(test_json_documents_parse),
        PS_TEST(test_json_check),
    };

    PS_TEST_RUN(tests);
}
