/* test_redis_url.c - the PushStreamRedis address parser. */
#include "ps_test.h"
#include "ps_redis_url.h"
#include "ps_redis_rec.h"

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

static void test_rec(void **state)
{
    ps_redis_rec_t r;
    static const char m[] = "7 1700000000 3 1700001800 2 4\nidtypehello";
    static const char a[] = "e1 1 12 5 1 9 0 0\n\0bin";
    static const char d[] = "e1 D\nbye";
    static const char *const bad[] = {
        "", "7 1 1 1 1 1", "0 1 1 1 0 0\n", "7 1 1 1 5 0\nab", "x 1 1 1 0 0\n",
        "7 1 1 1 0 0 \n", "-1 1 1 1 0 0\n", "7 1 1 1 0 99999999999999999999\n",
    };
    apr_size_t i;

    assert_int_equal(ps_redis_rec_parse(m, sizeof(m) - 1, &r), 0);
    assert_int_equal(r.id, 7);
    assert_int_equal(r.time, 1700000000);
    assert_int_equal(r.tag, 3);
    assert_int_equal(r.expires, 1700001800);
    assert_int_equal(r.event_id_len, 2);
    assert_memory_equal(r.event_id, "id", 2);
    assert_int_equal(r.event_type_len, 4);
    assert_memory_equal(r.event_type, "type", 4);
    assert_int_equal(r.text_len, 5);
    assert_memory_equal(r.text, "hello", 5);

    assert_int_equal(ps_redis_announce_parse(a, sizeof(a) - 1, &r), 0);
    assert_int_equal(r.epoch_len, 2);
    assert_int_equal(r.stored, 1);
    assert_int_equal(r.id, 12);
    assert_int_equal(r.deleted, 0);
    assert_int_equal(r.text_len, 4);
    assert_memory_equal(r.text, "\0bin", 4);

    assert_int_equal(ps_redis_announce_parse(d, sizeof(d) - 1, &r), 0);
    assert_int_equal(r.deleted, 1);
    assert_int_equal(r.text_len, 3);

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (!ps_redis_rec_parse(bad[i], strlen(bad[i]), &r)) {
            fail_msg("accepted \"%s\"", bad[i]);
        }
    }
    assert_int_equal(ps_redis_announce_parse("e", 1, &r), -1);
    assert_int_equal(ps_redis_announce_parse("e 2 1 1 1 1 0 0\n", 16, &r), -1);
    assert_int_equal(ps_redis_announce_parse(" 1 1 1 1 1 0 0\n", 15, &r), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        PS_TEST(test_tcp),
        PS_TEST(test_unix),
        PS_TEST(test_bad),
        PS_TEST(test_rec),
    };

    PS_TEST_RUN(tests);
}
