/* test_path.c - channel path parsing, unescaping, restricted ids, lists
 * without duplicates. */
#include <stdio.h>
#include <stdlib.h>

#include "ps_test.h"
#include <apr_strings.h>
#include "ps_path.h"

/* Parse path[0..len) and check the n ids and backtracks. */
static void ps_check_parse(apr_pool_t *p, const char *path, apr_size_t len,
                           int n, const char *const *ids, const int *bts)
{
    apr_array_header_t *a = ps_path_parse(p, path, len);
    int i;

    assert_non_null(a);
    assert_int_equal(a->nelts, n);
    for (i = 0; i < n; i++) {
        const ps_path_channel_t *ch = &APR_ARRAY_IDX(a, i, ps_path_channel_t);

        assert_int_equal(ch->len, strlen(ids[i]));
        assert_string_equal(ch->id, ids[i]);
        assert_int_equal(ch->backtrack, bts[i]);
    }
}

#define CHECK(p, path, ...)                                                \
    do {                                                                   \
        static const char *const ids_[] = { __VA_ARGS__ };                 \
        ps_check_parse_bt(p, path, ids_,                                   \
                          (int)(sizeof(ids_) / sizeof(ids_[0])));          \
    } while (0)

/* ids given as "name" or "name#bt" (backtrack after '#'). */
static void ps_check_parse_bt(apr_pool_t *p, const char *path,
                              const char *const *spec, int n)
{
    const char *ids[16];
    int bts[16], i;

    assert_true(n <= 16);
    for (i = 0; i < n; i++) {
        const char *h = strchr(spec[i], '#');

        ids[i] = h ? apr_pstrmemdup(p, spec[i], (apr_size_t)(h - spec[i]))
                   : spec[i];
        bts[i] = h ? atoi(h + 1) : 0;
    }
    ps_check_parse(p, path, strlen(path), n, ids, bts);
}

static void test_spec_multi(void **state)
{
    CHECK(*state, "ch1/ch2.b5/ch3.b2", "ch1", "ch2#5", "ch3#2");
}

static void test_spec_inner_b(void **state)
{
    CHECK(*state, "room.b18.beautiful.b3", "room.b18.beautiful#3");
}

static void test_spec_b_without_digits(void **state)
{
    CHECK(*state, "ch.b", "ch.b");
    CHECK(*state, "ch.b/x", "ch.b", "x");
    CHECK(*state, "ch.bx", "ch.bx");
}

static void test_trailing_slash(void **state)
{
    CHECK(*state, "ch1/", "ch1");
    CHECK(*state, "ch1.b3/", "ch1#3");
    CHECK(*state, "a/b/", "a", "b");
}

static void test_double_slash(void **state)
{
    CHECK(*state, "a//b", "a", "", "b");
    CHECK(*state, "a//", "a", "");
}

static void test_lone_slash(void **state)
{
    /* as the push-stream regex: "/" is one empty-named channel */
    CHECK(*state, "/", "");
    CHECK(*state, "/a", "", "a");
}

static void test_empty(void **state)
{
    apr_array_header_t *a = ps_path_parse(*state, "", 0);

    assert_int_equal(a->nelts, 0);
    a = ps_path_parse(*state, NULL, 0);
    assert_int_equal(a->nelts, 0);
}

static void test_single(void **state)
{
    CHECK(*state, "ch1", "ch1");
    CHECK(*state, "ch1.b0", "ch1#0");
    CHECK(*state, "ch1.b10", "ch1#10");
    CHECK(*state, ".b1", "#1");
}

static void test_backtrack_edge(void **state)
{
    CHECK(*state, "a.b5.b6", "a.b5#6");
    CHECK(*state, "a.b5x/b", "a.b5x", "b");
    CHECK(*state, "a.B5", "a.B5");              /* 'b' is lowercase only */
    CHECK(*state, "a..b2", "a.#2");
    CHECK(*state, "a.b12.b/c.b1", "a.b12.b", "c#1");
}

static void test_backtrack_overflow(void **state)
{
    apr_array_header_t *a = ps_path_parse(*state, "a.b99999999999999999999",
                                          23);

    assert_int_equal(a->nelts, 1);
    assert_string_equal(APR_ARRAY_IDX(a, 0, ps_path_channel_t).id, "a");
    assert_int_equal(APR_ARRAY_IDX(a, 0, ps_path_channel_t).backtrack,
                     2147483647);
}

static void test_len_respected(void **state)
{
    /* only the first 6 bytes are the path */
    {
        const char *ids[] = { "ch1", "ch" };
        int bts[] = { 0, 0 };

        ps_check_parse(*state, "ch1/ch2/ignored", 6, 2, ids, bts);
    }
}

static void test_ids_are_copies(void **state)
{
    char buf[] = "x/y";
    apr_array_header_t *a = ps_path_parse(*state, buf, 3);

    buf[0] = 'Z';
    assert_string_equal(APR_ARRAY_IDX(a, 0, ps_path_channel_t).id, "x");
}

static void test_binary_id(void **state)
{
    apr_array_header_t *a = ps_path_parse(*state, "a\0b/c", 5);
    const ps_path_channel_t *ch = &APR_ARRAY_IDX(a, 0, ps_path_channel_t);

    assert_int_equal(a->nelts, 2);
    assert_int_equal(ch->len, 3);
    assert_memory_equal(ch->id, "a\0b", 4);
}

static void test_unescape(void **state)
{
    apr_size_t n;
    char *s = ps_path_unescape(*state, "sp%20ace", 8, &n);

    assert_string_equal(s, "sp ace");
    assert_int_equal(n, 6);

    s = ps_path_unescape(*state, "a+b%2Fc%2fd", 11, &n);
    assert_string_equal(s, "a+b/c/d");
    assert_int_equal(n, 7);

    s = ps_path_unescape(*state, "%41%4a%4A", 9, &n);
    assert_string_equal(s, "AJJ");
}

static void test_unescape_malformed(void **state)
{
    apr_size_t n;

    assert_string_equal(ps_path_unescape(*state, "%zz", 3, &n), "%zz");
    assert_string_equal(ps_path_unescape(*state, "a%4", 3, &n), "a%4");
    assert_string_equal(ps_path_unescape(*state, "a%", 2, &n), "a%");
    assert_string_equal(ps_path_unescape(*state, "%4g1", 4, &n), "%4g1");
    assert_string_equal(ps_path_unescape(*state, "%%41", 4, &n), "%A");
    assert_int_equal(n, 2);
}

static void test_unescape_nul(void **state)
{
    apr_size_t n;
    char *s = ps_path_unescape(*state, "a%00b", 5, &n);

    assert_int_equal(n, 3);
    assert_memory_equal(s, "a\0b", 4);
}

static void test_unescape_len_and_empty(void **state)
{
    apr_size_t n = 99;
    char *s = ps_path_unescape(*state, "", 0, &n);

    assert_string_equal(s, "");
    assert_int_equal(n, 0);
    /* the escape straddles the end of the given length: not decoded */
    s = ps_path_unescape(*state, "ab%2041", 4, &n);
    assert_string_equal(s, "ab%2");
    s = ps_path_unescape(*state, "%41", 3, NULL);
    assert_string_equal(s, "A");
}

static void test_restricted(void **state)
{
    assert_true(ps_path_is_restricted("ALL", 3));
    assert_false(ps_path_is_restricted("all", 3));
    assert_false(ps_path_is_restricted("ALLx", 4));
    assert_false(ps_path_is_restricted("ALLx", 2));
    assert_true(ps_path_is_restricted("*", 1));
    assert_true(ps_path_is_restricted("pre*", 4));
    assert_true(ps_path_is_restricted("a*b", 3));
    assert_false(ps_path_is_restricted("ab*", 2));
    assert_false(ps_path_is_restricted("", 0));
    assert_false(ps_path_is_restricted("ch1", 3));
    assert_false(ps_path_is_restricted(NULL, 0));
}

/* The statistics location's choice for the raw path (unescaped first). */
static ps_stats_sel_e ps_sel(apr_pool_t *p, const char *raw, apr_int64_t max,
                             const char **prefix, apr_size_t *plen)
{
    apr_size_t len;
    char *path = ps_path_unescape(p, raw, strlen(raw), &len);

    return ps_path_stats_select(ps_path_parse(p, path, len), max, prefix,
                                plen);
}

static void test_stats_select(void **state)
{
    apr_pool_t *p = *state;
    const char *pre = "x";
    apr_size_t plen = 9;

    assert_int_equal(ps_sel(p, "", 0, &pre, &plen), PS_STATS_SUMMARY);
    assert_null(pre);
    assert_int_equal(plen, 0);
    assert_int_equal(ps_path_stats_select(NULL, 0, &pre, &plen),
                     PS_STATS_SUMMARY);
    assert_int_equal(ps_sel(p, "ch1/ch2", 0, &pre, &plen), PS_STATS_LIST);
    assert_null(pre);
    assert_int_equal(ps_sel(p, "ALL", 0, &pre, &plen), PS_STATS_ALL);
    assert_null(pre);
    assert_int_equal(ps_sel(p, "ch1/pre*", 3, &pre, &plen), PS_STATS_ALL);
    ps_assert_mem(pre, plen, "pre");
    assert_int_equal(ps_sel(p, "*", 0, &pre, &plen), PS_STATS_ALL);
    assert_non_null(pre);
    assert_int_equal(plen, 0);
    /* too long before the wildcard: 400; after it: the wildcard wins */
    assert_int_equal(ps_sel(p, "long1/ab*", 4, &pre, &plen),
                     PS_STATS_TOO_LONG);
    assert_null(pre);
    assert_int_equal(ps_sel(p, "ab*/long1", 4, &pre, &plen), PS_STATS_ALL);
    assert_int_equal(ps_sel(p, "long1", 5, &pre, &plen), PS_STATS_LIST);
    assert_int_equal(ps_sel(p, "long1", 0, &pre, &plen), PS_STATS_LIST);
}

/* Regression (found while extracting the selection for fuzz_stats): the
 * handler's strchr() stopped at a NUL byte before the '*' ("a%00*"), so
 * the prefix was lost and every channel was listed. */
static void test_stats_select_nul_prefix(void **state)
{
    apr_pool_t *p = *state;
    const char *pre = NULL;
    apr_size_t plen = 0;

    assert_int_equal(ps_sel(p, "a%00*", 0, &pre, &plen), PS_STATS_ALL);
    assert_non_null(pre);
    ps_assert_mem(pre, plen, "a\0");
    assert_true(ps_path_has_prefix("a\0b", 3, pre, plen));
    assert_false(ps_path_has_prefix("ab", 2, pre, plen));
}

static void test_has_prefix(void **state)
{
    assert_true(ps_path_has_prefix("abc", 3, NULL, 0));
    assert_true(ps_path_has_prefix("abc", 3, "", 0));
    assert_true(ps_path_has_prefix("", 0, "", 0));
    assert_true(ps_path_has_prefix("abc", 3, "ab", 2));
    assert_true(ps_path_has_prefix("abc", 3, "abc", 3));
    assert_false(ps_path_has_prefix("abc", 3, "abcd", 4));
    assert_false(ps_path_has_prefix("abc", 3, "b", 1));
}

static void test_query_arg(void **state)
{
    apr_pool_t *p = *state;

    assert_string_equal(ps_path_query_arg(p, NULL, "id"), "");
    assert_string_equal(ps_path_query_arg(p, "", "id"), "");
    assert_string_equal(ps_path_query_arg(p, "id=a%2Fb", "id"), "a/b");
    assert_string_equal(ps_path_query_arg(p, "x=1&id=c+d&id=2", "id"), "c+d");
    assert_string_equal(ps_path_query_arg(p, "idx=1&id", "id"), "");
    assert_string_equal(ps_path_query_arg(p, "idx=1", "id"), "");
    assert_string_equal(ps_path_query_arg(p, "i=1", "id"), "");
    assert_string_equal(ps_path_query_arg(p, "&&id=%zz&", "id"), "%zz");
    assert_string_equal(ps_path_query_arg(p, "tag=5&time=x", "time"), "x");
    assert_string_equal(ps_path_query_arg(p, "=v", ""), "v");
    /* a decoded NUL would cut the string: the raw value instead */
    assert_string_equal(ps_path_query_arg(p, "id=a%00b", "id"), "a%00b");
}

/* ---- dedupe (issue 20) ------------------------------------------------------ */

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
        PS_TEST(test_spec_multi),
        PS_TEST(test_spec_inner_b),
        PS_TEST(test_spec_b_without_digits),
        PS_TEST(test_trailing_slash),
        PS_TEST(test_double_slash),
        PS_TEST(test_lone_slash),
        PS_TEST(test_empty),
        PS_TEST(test_single),
        PS_TEST(test_backtrack_edge),
        PS_TEST(test_backtrack_overflow),
        PS_TEST(test_len_respected),
        PS_TEST(test_ids_are_copies),
        PS_TEST(test_binary_id),
        PS_TEST(test_unescape),
        PS_TEST(test_unescape_malformed),
        PS_TEST(test_unescape_nul),
        PS_TEST(test_unescape_len_and_empty),
        PS_TEST(test_restricted),
        PS_TEST(test_stats_select),
        PS_TEST(test_stats_select_nul_prefix),
        PS_TEST(test_has_prefix),
        PS_TEST(test_query_arg),
        PS_TEST(test_dedupe),
        PS_TEST(test_dedupe_many),
    };

    PS_TEST_RUN(tests);
}
