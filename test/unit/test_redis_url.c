/* test_redis_url.c - the PushStreamRedis address parser. */
#include "ps_test.h"
#include "ps_redis_url.h"

static void test_tcp(void **state)
{
    apr_pool_t *p = *state;
    ps_redis_url_t u;

    assert_null(ps_redis_url_parse(p, "redis://127.0.0.1:6380", &u));
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6380);
    assert_null(u.password);
    assert_null(u.path);
    assert_int_equal(u.db, 0);

    assert_null(ps_redis_url_parse(p, "redis://localhost", &u));
    assert_string_equal(u.host, "localhost");
    assert_int_equal(u.port, 6379);

    assert_null(ps_redis_url_parse(p, "redis://:s3:c@r@et@h:1/7", &u));
    assert_string_equal(u.password, "s3:c@r@et");
    assert_string_equal(u.host, "h");
    assert_int_equal(u.port, 1);
    assert_int_equal(u.db, 7);

    assert_null(ps_redis_url_parse(p, "redis://[::1]:6379/", &u));
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.db, 0);
}

static void test_unix(void **state)
{
    apr_pool_t *p = *state;
    ps_redis_url_t u;

    assert_null(ps_redis_url_parse(p, "unix:/run/redis.sock", &u));
    assert_string_equal(u.path, "/run/redis.sock");
    assert_null(u.host);
    assert_null(ps_redis_url_parse(p, "unix:/r.sock?db=3", &u));
    assert_string_equal(u.path, "/r.sock");
    assert_int_equal(u.db, 3);
}

static void test_bad(void **state)
{
    apr_pool_t *p = *state;
    ps_redis_url_t u;
    static const char *const bad[] = {
        "", "127.0.0.1:6379", "http://h:1", "redis://", "redis://:6379",
        "redis://h:0", "redis://h:65536", "redis://h:x", "redis://h:",
        "redis://h/x", "redis://pw@h", "redis://:@h", "redis://[::1",
        "redis://[]:1", "redis://[::1]x", "redis://h 1", "unix:", "unix:rel",
        "unix:/", "unix:/s?x=1", "unix:/s?db=", "redis://h:99999999999",
        "redis://h/1x", "redis://h\n",
    };
    apr_size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *err = ps_redis_url_parse(p, bad[i], &u);
        if (!err) {
            fail_msg("accepted \"%s\"", bad[i]);
        }
    }
    assert_non_null(ps_redis_url_parse(p, NULL, &u));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        PS_TEST(test_tcp),
        PS_TEST(test_unix),
        PS_TEST(test_bad),
    };

    PS_TEST_RUN(tests);
}
