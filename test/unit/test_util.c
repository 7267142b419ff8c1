/* test_util.c - time strings, sizes, integers, tags, HTTP dates. */
#include "ps_test.h"
#include "ps_util.h"

#define SEC APR_INT64_C(1000000)

static void ps_check_time(const char *s, apr_interval_time_t want)
{
    apr_interval_time_t t = -12345;

    assert_int_equal(psc_parse_time(s, &t), APR_SUCCESS);
    assert_int_equal(t, want);
}

static void ps_check_time_bad(const char *s)
{
    apr_interval_time_t t = -12345;

    assert_int_equal(psc_parse_time(s, &t), APR_EINVAL);
    assert_int_equal(t, -12345);     /* untouched on error */
}

static void test_time_units(void **state)
{
    ps_check_time("30s", 30 * SEC);
    ps_check_time("5m", 300 * SEC);
    ps_check_time("1h", 3600 * SEC);
    ps_check_time("1d", 86400 * SEC);
    ps_check_time("1w", 7 * 86400 * SEC);
    ps_check_time("1M", 30 * 86400 * SEC);
    ps_check_time("1y", 365 * 86400 * SEC);
    ps_check_time("500ms", 500000);
    ps_check_time("0", 0);
    ps_check_time("0s", 0);
    ps_check_time("30", 30 * SEC);
    ps_check_time("007s", 7 * SEC);
}

static void test_time_combinations(void **state)
{
    ps_check_time("1h 30m", 5400 * SEC);
    ps_check_time("1h30m", 5400 * SEC);
    ps_check_time("1h  30m  ", 5400 * SEC);
    ps_check_time("1d 2h 3m 4s 5ms", (86400 + 7200 + 180 + 4) * SEC + 5000);
    ps_check_time("1m 30", 90 * SEC);
    ps_check_time("1s500ms", SEC + 500000);
    ps_check_time("1y 1M 1w", (365 + 30 + 7) * 86400 * SEC);
}

static void test_time_bad(void **state)
{
    ps_check_time_bad("abc");
    ps_check_time_bad("");
    ps_check_time_bad("   ");
    ps_check_time_bad(NULL);
    ps_check_time_bad("-1s");
    ps_check_time_bad("-5");
    ps_check_time_bad("s");
    ps_check_time_bad("5x");
    ps_check_time_bad("5S");
    ps_check_time_bad("30m 1h");      /* units must fall */
    ps_check_time_bad("1m 1m");       /* each once */
    ps_check_time_bad("1ms 1s");
    ps_check_time_bad("30 5");        /* a bare number ends the value */
    ps_check_time_bad("30 s");
    ps_check_time_bad("1.5s");
    ps_check_time_bad("99999999999999999999s");
    ps_check_time_bad("9999999999999y");          /* overflows on scaling */
    ps_check_time_bad("292471y 300000000d");      /* overflows on adding */
}

static void ps_check_size(const char *s, apr_off_t want)
{
    apr_off_t v = -7;

    assert_int_equal(psc_parse_size(s, &v), APR_SUCCESS);
    assert_int_equal(v, want);
}

static void ps_check_size_bad(const char *s)
{
    apr_off_t v = -7;

    assert_int_equal(psc_parse_size(s, &v), APR_EINVAL);
    assert_int_equal(v, -7);
}

/* httpd's time strings (PushStreamWstunnelIdleTimeout). */
static void ps_check_timeout(const char *s, apr_interval_time_t want)
{
    apr_interval_time_t t = -3;

    assert_int_equal(psc_parse_timeout(s, &t), APR_SUCCESS);
    assert_int_equal(t, want);
}

static void test_timeout(void **state)
{
    apr_interval_time_t t = -3;
    static const char *const bad[] = {
        "", "soon", "-1", "5 s", " 5", "5sec", "1.5s", "5d", "5M0",
        "9223372036854775808", "9223372036855s", "153722867281m",
        "2562047789h",
    };
    size_t i;

    ps_check_timeout("0", 0);
    ps_check_timeout("30", 30 * SEC);
    ps_check_timeout("30s", 30 * SEC);
    ps_check_timeout("30S", 30 * SEC);
    ps_check_timeout("500ms", 500000);
    ps_check_timeout("500MS", 500000);
    ps_check_timeout("2m", 120 * SEC);
    ps_check_timeout("2mi", 120 * SEC);
    ps_check_timeout("2M", 120 * SEC);
    ps_check_timeout("1h", 3600 * SEC);
    ps_check_timeout("9223372036854s", APR_INT64_C(9223372036854) * SEC);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(psc_parse_timeout(bad[i], &t), APR_EINVAL);
        assert_int_equal(t, -3);
    }
    assert_int_equal(psc_parse_timeout(NULL, &t), APR_EINVAL);
}

static void test_size(void **state)
{
    ps_check_size("1024", 1024);
    ps_check_size("0", 0);
    ps_check_size("128k", 128 * 1024);
    ps_check_size("128K", 128 * 1024);
    ps_check_size("32M", APR_INT64_C(32) << 20);
    ps_check_size("256m", APR_INT64_C(256) << 20);
    ps_check_size("1G", APR_INT64_C(1) << 30);
    ps_check_size("2g", APR_INT64_C(2) << 30);
    ps_check_size("9007199254740991k", APR_INT64_C(9007199254740991) << 10);
}

static void test_size_bad(void **state)
{
    ps_check_size_bad("x");
    ps_check_size_bad("99999999999g");        /* overflows 64 bits */
    ps_check_size_bad("9007199254740992k");
    ps_check_size_bad("");
    ps_check_size_bad(NULL);
    ps_check_size_bad("k");
    ps_check_size_bad("M");
    ps_check_size_bad("-1");
    ps_check_size_bad("1T");
    ps_check_size_bad("1kb");
    ps_check_size_bad("1 k");
    ps_check_size_bad(" 1k");
    ps_check_size_bad("1.5M");
    ps_check_size_bad("9007199254740992k");  /* 2^63: overflow */
    ps_check_size_bad("99999999999999999999");
}

static void test_uint(void **state)
{
    apr_uint64_t v = 7;

    assert_int_equal(ps_parse_uint("0", &v), APR_SUCCESS);
    assert_int_equal(v, 0);
    assert_int_equal(ps_parse_uint("42", &v), APR_SUCCESS);
    assert_int_equal(v, 42);
    assert_int_equal(ps_parse_uint("18446744073709551615", &v), APR_SUCCESS);
    assert_true(v == APR_UINT64_C(18446744073709551615));
    v = 7;
    assert_int_equal(ps_parse_uint("18446744073709551616", &v), APR_EINVAL);
    assert_int_equal(ps_parse_uint("", &v), APR_EINVAL);
    assert_int_equal(ps_parse_uint(NULL, &v), APR_EINVAL);
    assert_int_equal(ps_parse_uint("-1", &v), APR_EINVAL);
    assert_int_equal(ps_parse_uint("+1", &v), APR_EINVAL);
    assert_int_equal(ps_parse_uint("1a", &v), APR_EINVAL);
    assert_int_equal(ps_parse_uint(" 1", &v), APR_EINVAL);
    assert_int_equal(ps_parse_uint("1 ", &v), APR_EINVAL);
    assert_int_equal(v, 7);
}

static void test_tag(void **state)
{
    assert_int_equal(ps_parse_tag("W/3"), 3);
    assert_int_equal(ps_parse_tag("3"), 3);
    assert_int_equal(ps_parse_tag("-3"), 3);
    assert_int_equal(ps_parse_tag("W/-3"), 3);
    assert_int_equal(ps_parse_tag("+3"), 3);
    assert_int_equal(ps_parse_tag("0"), 0);
    assert_int_equal(ps_parse_tag("W/0"), 0);
    assert_int_equal(ps_parse_tag("W/12345"), 12345);
    assert_int_equal(ps_parse_tag("W/"), -1);
    assert_int_equal(ps_parse_tag("abc"), -1);
    assert_int_equal(ps_parse_tag(""), -1);
    assert_int_equal(ps_parse_tag(NULL), -1);
    assert_int_equal(ps_parse_tag("-"), -1);
    assert_int_equal(ps_parse_tag("3a"), -1);
    assert_int_equal(ps_parse_tag("W3"), -1);
    assert_int_equal(ps_parse_tag("w/3"), -1);          /* 'W' only */
    assert_int_equal(ps_parse_tag("W/W/3"), -1);
    assert_int_equal(ps_parse_tag("\"3\""), -1);
    assert_int_equal(ps_parse_tag("99999999999999999999"), -1);
}

static void test_http_time(void **state)
{
    /* 784111777 = 1994-11-06 08:49:37 in the three RFC 7231 spellings */
    assert_int_equal(ps_parse_http_time("Sun, 06 Nov 1994 08:49:37 GMT"),
                     784111777);
    assert_int_equal(ps_parse_http_time("Sunday, 06-Nov-94 08:49:37 GMT"),
                     784111777);
    assert_int_equal(ps_parse_http_time("Sun Nov  6 08:49:37 1994"),
                     784111777);
    assert_int_equal(ps_parse_http_time("Sun, 22 Nov 2026 20:09:01 GMT"),
                     1795378141);
    assert_int_equal(ps_parse_http_time("Thu, 01 Jan 1970 00:00:01 GMT"), 1);
}

static void test_http_time_epoch(void **state)
{
    assert_int_equal(ps_parse_http_time("Thu, 01 Jan 1970 00:00:00 GMT"), 0);
    assert_int_equal(ps_parse_http_time("Thursday, 01-Jan-70 00:00:00 GMT"),
                     0);
    assert_int_equal(ps_parse_http_time("Thu Jan  1 00:00:00 1970"), 0);
}

static void test_http_time_bad(void **state)
{
    assert_int_equal(ps_parse_http_time(NULL), -1);
    assert_int_equal(ps_parse_http_time(""), -1);
    assert_int_equal(ps_parse_http_time("yesterday"), -1);
    assert_int_equal(ps_parse_http_time("1234"), -1);
    assert_int_equal(ps_parse_http_time("Sun, 32 Nov 1994 08:49:37 GMT"), -1);
    assert_int_equal(ps_parse_http_time("Sun, 06 Foo 1994 08:49:37 GMT"), -1);
}

static void test_format_http_time(void **state)
{
    char buf[PS_HTTP_TIME_LEN + 1];

    ps_format_http_time(buf, 0);
    assert_string_equal(buf, "Thu, 01 Jan 1970 00:00:00 GMT");
    ps_format_http_time(buf, 1);
    assert_string_equal(buf, "Thu, 01 Jan 1970 00:00:01 GMT");
    ps_format_http_time(buf, 1795378141);
    assert_string_equal(buf, "Sun, 22 Nov 2026 20:09:01 GMT");
    assert_int_equal(strlen(buf), PS_HTTP_TIME_LEN);
    ps_format_http_time(buf, 784111777);
    assert_string_equal(buf, "Sun, 06 Nov 1994 08:49:37 GMT");
    /* out of range values clamp instead of overflowing the buffer */
    ps_format_http_time(buf, -5);
    assert_string_equal(buf, "Thu, 01 Jan 1970 00:00:00 GMT");
    ps_format_http_time(buf, APR_INT64_C(0x7fffffffffffffff));
    assert_string_equal(buf, "Fri, 31 Dec 9999 23:59:59 GMT");
}

static void test_format_roundtrip(void **state)
{
    char buf[PS_HTTP_TIME_LEN + 1];
    apr_int64_t t;

    for (t = 0; t < APR_INT64_C(4000000000); t += 86399 * 37 + 11) {
        ps_format_http_time(buf, t);
        assert_int_equal(ps_parse_http_time(buf), t);
    }
}

static void test_format_iso(void **state)
{
    char buf[PS_ISO_TIME_LEN + 1];

    ps_format_iso_time(buf, 0);
    assert_string_equal(buf, "1970-01-01T00:00:00");
    ps_format_iso_time(buf, 1795378147);
    assert_string_equal(buf, "2026-11-22T20:09:07");
    assert_int_equal(strlen(buf), PS_ISO_TIME_LEN);
    ps_format_iso_time(buf, 951782400);               /* leap day */
    assert_string_equal(buf, "2000-02-29T00:00:00");
    ps_format_iso_time(buf, -1);
    assert_string_equal(buf, "1970-01-01T00:00:00");
    ps_format_iso_time(buf, APR_INT64_C(0x7fffffffffffffff));
    assert_string_equal(buf, "9999-12-31T23:59:59");
}

static void test_padding_len(void **state)
{
    assert_int_equal(ps_padding_len(0, 0, 1000), 0);      /* no rule */
    assert_int_equal(ps_padding_len(10, 5, 1000), 0);     /* long enough */
    assert_int_equal(ps_padding_len(5, 5, 1000), 0);
    assert_int_equal(ps_padding_len(0, 1, 1000), 100);
    assert_int_equal(ps_padding_len(0, 100, 1000), 200);
    assert_int_equal(ps_padding_len(50, 1024, 4096), 1000);
    assert_int_equal(ps_padding_len(0, 1024, 1000), 1000); /* capped */
    assert_int_equal(ps_padding_len(0, 1024, 0), 0);
}

/* Regression (found by fuzz_headers): rounding a gap near SIZE_MAX up to
 * the next 100 wrapped around to a tiny pad instead of max. */
static void test_padding_len_huge(void **state)
{
    assert_int_equal(ps_padding_len(0, APR_SIZE_MAX - 5, APR_SIZE_MAX),
                     APR_SIZE_MAX);
    assert_int_equal(ps_padding_len(0, APR_SIZE_MAX, 4096), 4096);
    assert_int_equal(ps_padding_len(APR_SIZE_MAX - 1, APR_SIZE_MAX, 4096),
                     100);
}

static void test_padding_fill(void **state)
{
    char buf[8];

    memset(buf, 'x', sizeof(buf));
    ps_padding_fill(buf, 4, 0);
    assert_memory_equal(buf, "\r\n\r\nx", 5);
    memset(buf, 'x', sizeof(buf));
    ps_padding_fill(buf, 3, 0);
    assert_memory_equal(buf, "\n\r\nx", 4);
    ps_padding_fill(buf, 4, 1);
    assert_memory_equal(buf, ":::\nx", 5);
    ps_padding_fill(buf, 0, 1);
    assert_int_equal(buf[0], ':');
}

static int ps_split_ok(const char *rule, int c1, int c2)
{
    char buf[64], *a = NULL, *b = NULL;
    int ok;

    strcpy(buf, rule);
    ok = ps_padding_rule_split(buf, &a, &b);
    assert_string_equal(buf, rule);              /* never modified */
    if (ok) {
        assert_int_equal(a - buf, c1);
        assert_int_equal(b - buf, c2);
    }
    return ok;
}

static void test_padding_rule_split(void **state)
{
    assert_true(ps_split_ok("MSIE 6,1024,2048", 6, 11));
    assert_true(ps_split_ok("a,b{1,2},10,20", 8, 11));  /* commas in regex */
    assert_true(ps_split_ok("x,0,0", 1, 3));
    assert_false(ps_split_ok(",1,2", 0, 0));            /* empty regex */
    assert_false(ps_split_ok("1,2", 0, 0));
    assert_false(ps_split_ok("x,,2", 0, 0));
    assert_false(ps_split_ok("x,1,", 0, 0));
    assert_false(ps_split_ok("x,1a,2", 0, 0));
    assert_false(ps_split_ok("x,1,2b", 0, 0));
    assert_false(ps_split_ok("x,-1,2", 0, 0));
    assert_false(ps_split_ok("x", 0, 0));
    assert_false(ps_split_ok("", 0, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        PS_TEST(test_time_units),
        PS_TEST(test_time_combinations),
        PS_TEST(test_time_bad),
        PS_TEST(test_size),
        PS_TEST(test_timeout),
        PS_TEST(test_size_bad),
        PS_TEST(test_uint),
        PS_TEST(test_tag),
        PS_TEST(test_http_time),
        PS_TEST(test_http_time_epoch),
        PS_TEST(test_http_time_bad),
        PS_TEST(test_format_http_time),
        PS_TEST(test_format_roundtrip),
        PS_TEST(test_format_iso),
        PS_TEST(test_padding_len),
        PS_TEST(test_padding_len_huge),
        PS_TEST(test_padding_fill),
        PS_TEST(test_padding_rule_split),
    };

    PS_TEST_RUN(tests);
}
