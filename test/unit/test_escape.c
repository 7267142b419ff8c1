/* test_escape.c - ids in documents (ps_esc_*) and channel lists without
 * duplicates (ps_path_dedupe); the JSON check of the tests itself. */

#include <stdio.h>

#include "ps_test.h"
#include "ps_escape.h"
#include "ps_info.h"
#include "ps_path.h"
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

/* ---- dedupe ---------------------------------------------------------------- */

static apr_array_header_t *parse(apr_pool_t *p, const char *s)
{
    apr_size_t len;
    char *raw = ps_path_unescape(p, s, strlen(s), &len);

    return ps_path_dedupe(p, ps_path_parse(p, raw, len));
}

#define CH(a, i) (&APR_ARRAY_IDX((a), (i), ps_path_channel_t))

static void test_dedupe(void **state)
{
    apr_pool_t *p = *state;
    apr_array_header_t *a;

    a = parse(p, "dupA/dupA");
    assert_int_equal(a->nelts, 1);
    assert_string_equal(CH(a, 0)->id, "dupA");
    /* .bN spellings: the largest backtrack wins, first place kept */
    a = parse(p, "x/dupB.b1/dupB/y/dupB.b5/x.b2");
    assert_int_equal(a->nelts, 3);
    assert_string_equal(CH(a, 0)->id, "x");
    assert_int_equal(CH(a, 0)->backtrack, 2);
    assert_string_equal(CH(a, 1)->id, "dupB");
    assert_int_equal(CH(a, 1)->backtrack, 5);
    assert_string_equal(CH(a, 2)->id, "y");
    /* URL-escaped spellings of one id */
    a = parse(p, "dup%41/dupA/d%75pA");
    assert_int_equal(a->nelts, 1);
    /* bytes, not strings: ids with NULs or empty ones */
    a = parse(p, "a%00b/a%00c/a%00b//");
    assert_int_equal(a->nelts, 3);
    assert_int_equal(CH(a, 0)->len, 3);
    assert_int_equal(CH(a, 1)->len, 3);
    assert_int_equal(CH(a, 2)->len, 0);
    /* no duplicate: the array itself; case matters */
    a = ps_path_parse(p, "a/A", 3);
    assert_ptr_equal(ps_path_dedupe(p, a), a);
    assert_int_equal(ps_path_dedupe(p, ps_path_parse(p, "", 0))->nelts, 0);
}

/* A long list of few ids: each once, in first-seen order. */
static void test_dedupe_many(void **state)
{
    apr_pool_t *p = *state;
    char path[8192];
    apr_array_header_t *a;
    apr_size_t o = 0;
    int i;

    for (i = 0; i < 1000; i++)
        o += (apr_size_t)snprintf(path + o, sizeof(path) - o, "c%d/", (i * 7) % 13);
    a = ps_path_dedupe(p, ps_path_parse(p, path, o));
    assert_int_equal(a->nelts, 13);
    for (i = 0; i < 13; i++) {
        char want[8];
        snprintf(want, sizeof(want), "c%d", (i * 7) % 13);
        assert_string_equal(CH(a, i)->id, want);
    }
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
        PS_TEST(test_dedupe),
        PS_TEST(test_dedupe_many),
    };

    PS_TEST_RUN(tests);
}
