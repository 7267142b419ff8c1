/* test_info.c - channel info documents, byte-exact (spec B12 and the
 * push-stream 0.6.0 format strings). */
#include "ps_test.h"
#include "ps_info.h"

/* 2026-11-22T20:09:07 */
#define NOW 1795378147

static const ps_chinfo_t ps_ch1 = { "ch1", 3, 1, 1, 0 };
static const ps_chinfo_t ps_ch2 = { "ch2", 3, 1, 1, 0 };
static const ps_chinfo_t ps_ch3 = { "ch3", 3, 5, 2, 3 };

static const ps_info_header_t ps_head = { "vm", NOW, 4, 0, 67 };

static void ps_expect_doc(const char *doc, apr_size_t len, const char *want)
{
    assert_string_equal(doc, want);
    assert_int_equal(len, strlen(want));
}

static void ps_single(apr_pool_t *p, ps_fmt_e fmt, const ps_chinfo_t *ch,
                      const char *want)
{
    apr_size_t len = 0;
    char *doc = ps_info_single(p, fmt, ch, &len);

    ps_expect_doc(doc, len, want);
}

static void ps_group(apr_pool_t *p, ps_fmt_e fmt, const ps_chinfo_t *items,
                     int n, const char *want)
{
    apr_size_t len = 0;
    char *doc = ps_info_group(p, fmt, &ps_head, items, n, &len);

    ps_expect_doc(doc, len, want);
}

/* ---- Accept -------------------------------------------------------------- */

static void ps_accept(const char *accept, ps_fmt_e want, const char *ctype)
{
    const char *ct = NULL;

    assert_int_equal(ps_info_format_from_accept(accept, &ct), want);
    assert_string_equal(ct, ctype);
}

static void test_accept(void **state)
{
    ps_accept(NULL, PS_FMT_JSON, "application/json");
    ps_accept("", PS_FMT_JSON, "application/json");
    ps_accept("text/plain", PS_FMT_PLAIN, "text/plain");
    ps_accept("application/json", PS_FMT_JSON, "application/json");
    ps_accept("application/yaml", PS_FMT_YAML, "application/yaml");
    ps_accept("application/xml", PS_FMT_XML, "application/xml");
    ps_accept("text/x-json", PS_FMT_XJSON, "text/x-json");
    ps_accept("text/x-yaml", PS_FMT_XYAML, "text/x-yaml");
    ps_accept("text/html", PS_FMT_JSON, "application/json");
    ps_accept("*/*", PS_FMT_JSON, "application/json");
    ps_accept("plain", PS_FMT_JSON, "application/json");    /* no '/' */
    ps_accept("application/", PS_FMT_JSON, "application/json");
    ps_accept("text/PLAIN", PS_FMT_JSON, "application/json"); /* exact case */
}

static void test_accept_prefix(void **state)
{
    /* prefix compare: the subtype may continue */
    ps_accept("text/plainfoo", PS_FMT_PLAIN, "text/plain");
    ps_accept("text/plain; charset=utf-8", PS_FMT_PLAIN, "text/plain");
    ps_accept("application/xml;q=0.9", PS_FMT_XML, "application/xml");
    ps_accept("text/jsonx", PS_FMT_JSON, "application/json");
    ps_accept("text/js", PS_FMT_JSON, "application/json");
    ps_accept("text/pla", PS_FMT_JSON, "application/json");
}

static void test_accept_later_slash(void **state)
{
    /* upstream walks every '/' until a subtype matches */
    ps_accept("text/html, text/plain", PS_FMT_PLAIN, "text/plain");
    ps_accept("text/html,application/xhtml+xml,application/xml;q=0.9,"
              "*/*;q=0.8", PS_FMT_XML, "application/xml");
    ps_accept("text/yaml, text/plain", PS_FMT_YAML, "application/yaml");
    ps_accept("a/b/c/x-yaml", PS_FMT_XYAML, "text/x-yaml");
}

static void test_accept_null_ctype(void **state)
{
    assert_int_equal(ps_info_format_from_accept("text/plain", NULL),
                     PS_FMT_PLAIN);
}

/* ---- single -------------------------------------------------------------- */

static void test_single_json(void **state)
{
    ps_single(*state, PS_FMT_JSON, &ps_ch1,
              "{\"channel\": \"ch1\", \"published_messages\": 1, "
              "\"stored_messages\": 1, \"subscribers\": 0}\r\n");
    ps_single(*state, PS_FMT_XJSON, &ps_ch3,
              "{\"channel\": \"ch3\", \"published_messages\": 5, "
              "\"stored_messages\": 2, \"subscribers\": 3}\r\n");
}

static void test_single_plain(void **state)
{
    ps_single(*state, PS_FMT_PLAIN, &ps_ch1,
              "channel: ch1\r\npublished_messages: 1\r\nstored_messages: 1\r\n"
              "active_subscribers: 0\r\n");
}

static void test_single_yaml(void **state)
{
    static const char want[] =
        "  channel: ch1\r\n  published_messages: 1\r\n"
        "  stored_messages: 1\r\n  subscribers: 0\r\n";

    ps_single(*state, PS_FMT_YAML, &ps_ch1, want);
    ps_single(*state, PS_FMT_XYAML, &ps_ch1, want);
}

static void test_single_xml(void **state)
{
    ps_single(*state, PS_FMT_XML, &ps_ch1,
              "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\r\n<channel>\r\n"
              "  <name>ch1</name>\r\n"
              "  <published_messages>1</published_messages>\r\n"
              "  <stored_messages>1</stored_messages>\r\n"
              "  <subscribers>0</subscribers>\r\n</channel>\r\n\r\n");
}

/* Ids are escaped for each format (upstream printed them raw). */
static void test_single_id_escaped(void **state)
{
    ps_chinfo_t ch = { "a\"b<c>\\\xff", 8, 0, 0, 0 };

    ps_single(*state, PS_FMT_JSON, &ch,
              "{\"channel\": \"a\\\"b<c>\\\\\\ufffd\", \"published_messages\": 0, "
              "\"stored_messages\": 0, \"subscribers\": 0}\r\n");
    ps_single(*state, PS_FMT_XML, &ch,
              "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\r\n<channel>\r\n"
              "  <name>a&quot;b&lt;c&gt;\\\xef\xbf\xbd</name>\r\n"
              "  <published_messages>0</published_messages>\r\n"
              "  <stored_messages>0</stored_messages>\r\n"
              "  <subscribers>0</subscribers>\r\n</channel>\r\n\r\n");
    ps_single(*state, PS_FMT_YAML, &ch,
              "  channel: \"a\\\"b<c>\\\\\\uFFFD\"\r\n  published_messages: 0\r\n"
              "  stored_messages: 0\r\n  subscribers: 0\r\n");
    /* plain: bytes as they are (nginx) */
    ps_single(*state, PS_FMT_PLAIN, &ch,
              "channel: a\"b<c>\\\xff\r\npublished_messages: 0\r\n"
              "stored_messages: 0\r\nactive_subscribers: 0\r\n");
}

/* Per-channel Prometheus text: the label escaped (issue 20). */
static void test_prometheus_channels(void **state)
{
    ps_chinfo_t ch[2] = { { "a", 1, 1, 2, 3 }, { "q\"b\\\n\xff", 6, 4, 5, 6 } };
    apr_size_t len;
    char *doc = ps_info_prometheus(*state, ch, 2, &len);

    assert_int_equal(strlen(doc), len);
    assert_string_equal(doc,
        "# HELP pushstream_channel_published_messages_total Messages "
        "published to the channel.\n"
        "# TYPE pushstream_channel_published_messages_total counter\n"
        "pushstream_channel_published_messages_total{channel=\"a\"} 1\n"
        "pushstream_channel_published_messages_total"
        "{channel=\"q\\\"b\\\\\\n\xef\xbf\xbd\"} 4\n"
        "# HELP pushstream_channel_stored_messages Messages the channel "
        "stores.\n"
        "# TYPE pushstream_channel_stored_messages gauge\n"
        "pushstream_channel_stored_messages{channel=\"a\"} 2\n"
        "pushstream_channel_stored_messages"
        "{channel=\"q\\\"b\\\\\\n\xef\xbf\xbd\"} 5\n"
        "# HELP pushstream_channel_subscribers Subscribers of the channel.\n"
        "# TYPE pushstream_channel_subscribers gauge\n"
        "pushstream_channel_subscribers{channel=\"a\"} 3\n"
        "pushstream_channel_subscribers"
        "{channel=\"q\\\"b\\\\\\n\xef\xbf\xbd\"} 6\n");
}

static void test_single_id_len(void **state)
{
    /* id need not be NUL-terminated; only id_len bytes are used */
    ps_chinfo_t ch = { "ch1/ch2", 3, 0, 0, 0 };
    ps_chinfo_t empty = { "", 0, 0, 0, 0 };
    ps_chinfo_t nul = { "a\0b", 3, 0, 0, 0 };

    ps_single(*state, PS_FMT_PLAIN, &ch,
              "channel: ch1\r\npublished_messages: 0\r\nstored_messages: 0\r\n"
              "active_subscribers: 0\r\n");
    ps_single(*state, PS_FMT_JSON, &empty,
              "{\"channel\": \"\", \"published_messages\": 0, "
              "\"stored_messages\": 0, \"subscribers\": 0}\r\n");
    /* upstream's "%s" cut at the NUL; every byte is shown now */
    ps_single(*state, PS_FMT_JSON, &nul,
              "{\"channel\": \"a\\u0000b\", \"published_messages\": 0, "
              "\"stored_messages\": 0, \"subscribers\": 0}\r\n");
}

static void test_single_big_numbers(void **state)
{
    ps_chinfo_t ch = { "x", 1, APR_UINT64_C(18446744073709551615),
                       APR_UINT64_C(4294967296), 12345 };

    ps_single(*state, PS_FMT_JSON, &ch,
              "{\"channel\": \"x\", \"published_messages\": "
              "18446744073709551615, \"stored_messages\": 4294967296, "
              "\"subscribers\": 12345}\r\n");
}

/* ---- group --------------------------------------------------------------- */

#define JSON_HEAD "{\"hostname\": \"vm\", \"time\": \"2026-11-22T20:09:07\", " \
    "\"channels\": 4, \"wildcard_channels\": 0, \"uptime\": 67, \"infos\": [\r\n"

static void test_group_json(void **state)
{
    const ps_chinfo_t items[] = { ps_ch1, ps_ch2 };

    ps_group(*state, PS_FMT_JSON, items, 2, JSON_HEAD
             "{\"channel\": \"ch1\", \"published_messages\": 1, "
             "\"stored_messages\": 1, \"subscribers\": 0},\r\n"
             "{\"channel\": \"ch2\", \"published_messages\": 1, "
             "\"stored_messages\": 1, \"subscribers\": 0}\r\n"
             "]}\r\n");
}

static void test_group_json_one_and_empty(void **state)
{
    ps_group(*state, PS_FMT_JSON, &ps_ch3, 1, JSON_HEAD
             "{\"channel\": \"ch3\", \"published_messages\": 5, "
             "\"stored_messages\": 2, \"subscribers\": 3}\r\n]}\r\n");
    ps_group(*state, PS_FMT_JSON, NULL, 0, JSON_HEAD "]}\r\n");
    ps_group(*state, PS_FMT_XJSON, NULL, 0, JSON_HEAD "]}\r\n");
}

static void test_group_json_header_values(void **state)
{
    ps_info_header_t h = { NULL, 0, 12, 3, 0 };
    apr_size_t len;
    char *doc = ps_info_group(*state, PS_FMT_JSON, &h, NULL, 0, &len);

    ps_expect_doc(doc, len,
                  "{\"hostname\": \"\", \"time\": \"1970-01-01T00:00:00\", "
                  "\"channels\": 12, \"wildcard_channels\": 3, \"uptime\": 0, "
                  "\"infos\": [\r\n]}\r\n");
}

#define PLAIN_HEAD "hostname: vm, time: 2026-11-22T20:09:07, channels: 4, " \
    "wildcard_channels: 0, uptime: 67, infos: \r\n"

static void test_group_plain(void **state)
{
    const ps_chinfo_t items[] = { ps_ch1, ps_ch3 };

    ps_group(*state, PS_FMT_PLAIN, items, 2, PLAIN_HEAD
             "channel: ch1\r\npublished_messages: 1\r\nstored_messages: 1\r\n"
             "active_subscribers: 0,\r\n"
             "channel: ch3\r\npublished_messages: 5\r\nstored_messages: 2\r\n"
             "active_subscribers: 3\r\n");
    ps_group(*state, PS_FMT_PLAIN, NULL, 0, PLAIN_HEAD "\r\n");
}

#define YAML_HEAD "hostname: vm\r\ntime: 2026-11-22T20:09:07\r\nchannels: 4\r\n" \
    "wildcard_channels: 0\r\nuptime: 67\r\ninfos: \r\n"

static void test_group_yaml(void **state)
{
    const ps_chinfo_t items[] = { ps_ch1, ps_ch3 };
    static const char want[] = YAML_HEAD
        " -\r\n  channel: ch1\r\n  published_messages: 1\r\n"
        "  stored_messages: 1\r\n  subscribers: 0\r\n"
        " -\r\n  channel: ch3\r\n  published_messages: 5\r\n"
        "  stored_messages: 2\r\n  subscribers: 3\r\n";

    ps_group(*state, PS_FMT_YAML, items, 2, want);
    ps_group(*state, PS_FMT_XYAML, items, 2, want);
    ps_group(*state, PS_FMT_YAML, NULL, 0, YAML_HEAD "\r\n");
}

#define XML_HEAD "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\r\n<root>\r\n" \
    "  <hostname>vm</hostname>\r\n  <time>2026-11-22T20:09:07</time>\r\n" \
    "  <channels>4</channels>\r\n  <wildcard_channels>0</wildcard_channels>\r\n" \
    "  <uptime>67</uptime>\r\n  <infos>\r\n"
#define XML_TAIL "  </infos>\r\n</root>\r\n"

static void test_group_xml(void **state)
{
    const ps_chinfo_t items[] = { ps_ch1, ps_ch3 };

    ps_group(*state, PS_FMT_XML, items, 2, XML_HEAD
             "<channel>\r\n  <name>ch1</name>\r\n"
             "  <published_messages>1</published_messages>\r\n"
             "  <stored_messages>1</stored_messages>\r\n"
             "  <subscribers>0</subscribers>\r\n</channel>\r\n"
             "<channel>\r\n  <name>ch3</name>\r\n"
             "  <published_messages>5</published_messages>\r\n"
             "  <stored_messages>2</stored_messages>\r\n"
             "  <subscribers>3</subscribers>\r\n</channel>\r\n"
             XML_TAIL);
    ps_group(*state, PS_FMT_XML, NULL, 0, XML_HEAD XML_TAIL);
}

static void test_group_many(void **state)
{
    enum { N = 1000 };
    ps_chinfo_t *items = apr_pcalloc(*state, N * sizeof(*items));
    apr_size_t len, per;
    char *doc;
    int i;

    for (i = 0; i < N; i++) {
        items[i].id = "ch1";
        items[i].id_len = 3;
        items[i].published_messages = 1;
        items[i].stored_messages = 1;
    }
    doc = ps_info_group(*state, PS_FMT_JSON, &ps_head, items, N, &len);
    per = strlen("{\"channel\": \"ch1\", \"published_messages\": 1, "
                 "\"stored_messages\": 1, \"subscribers\": 0},\r\n");
    assert_int_equal(len, strlen(JSON_HEAD) + N * per - 1 + strlen("]}\r\n"));
    assert_int_equal(strlen(doc), len);
}

static void test_group_negative_n(void **state)
{
    ps_group(*state, PS_FMT_JSON, NULL, -1, JSON_HEAD "]}\r\n");
}

/* ---- summarized ---------------------------------------------------------- */

static const ps_info_summary_t ps_sum = {
    "vm", NOW, 4, 0, 2, 2, 0, 0, 0, 0, 67
};
static const ps_info_worker_t ps_workers[] = {
    { 12536, 0, 67 }, { 12537, 1, 66 }
};

static void ps_summarized(apr_pool_t *p, ps_fmt_e fmt, int n, const char *want)
{
    apr_size_t len = 0;
    char *doc = ps_info_summarized(p, fmt, &ps_sum, ps_workers, n, &len);

    ps_expect_doc(doc, len, want);
}

/* PushStreamAuth counters: after uptime, before by_worker, only when on. */
static void test_summarized_auth(void **state)
{
    static const struct { ps_fmt_e fmt; const char *want; } cases[] = {
        { PS_FMT_JSON, "\"uptime\": 67, \"auth_invalid_token\": 5, "
                       "\"auth_insufficient_scope\": 3, \"by_worker\": [" },
        { PS_FMT_PLAIN, "uptime: 67\r\nauth_invalid_token: 5\r\n"
                        "auth_insufficient_scope: 3\r\nby_worker:\r\n" },
        { PS_FMT_YAML, "  uptime: 67\r\n  auth_invalid_token: 5\r\n"
                       "  auth_insufficient_scope: 3\r\n  by_worker:\r\n" },
        { PS_FMT_XML, "  <uptime>67</uptime>\r\n"
                      "  <auth_invalid_token>5</auth_invalid_token>\r\n"
                      "  <auth_insufficient_scope>3</auth_insufficient_scope>\r\n"
                      "  <by_worker>" },
    };
    ps_info_summary_t sum = ps_sum;
    apr_size_t len = 0;
    unsigned i;

    sum.auth = 1;
    sum.auth_invalid_token = 5;
    sum.auth_insufficient_scope = 3;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *doc = ps_info_summarized(*state, cases[i].fmt, &sum, ps_workers,
                                       1, &len);
        assert_non_null(strstr(doc, cases[i].want));
        assert_int_equal(strlen(doc), len);
    }
}

static void test_summarized_json(void **state)
{
    ps_summarized(*state, PS_FMT_JSON, 2,
                  "{\"hostname\": \"vm\", \"time\": \"2026-11-22T20:09:07\", "
                  "\"channels\": 4, \"wildcard_channels\": 0, "
                  "\"published_messages\": 2, \"stored_messages\": 2, "
                  "\"messages_in_trash\": 0, \"channels_in_delete\": 0, "
                  "\"channels_in_trash\": 0, \"subscribers\": 0, "
                  "\"uptime\": 67, \"by_worker\": [\r\n"
                  "{\"pid\": \"12536\", \"subscribers\": 0, \"uptime\": 67},\r\n"
                  "{\"pid\": \"12537\", \"subscribers\": 1, \"uptime\": 66}\r\n"
                  "]}\r\n");
}

static void test_summarized_plain(void **state)
{
    ps_summarized(*state, PS_FMT_PLAIN, 2,
                  "hostname: vm\r\ntime: 2026-11-22T20:09:07\r\nchannels: 4\r\n"
                  "wildcard_channels: 0\r\npublished_messages: 2\r\n"
                  "stored_messages: 2\r\nmessages_in_trash: 0\r\n"
                  "channels_in_delete: 0\r\nchannels_in_trash: 0\r\n"
                  "subscribers: 0\r\nuptime: 67\r\nby_worker:\r\n"
                  "  pid: 12536\r\n  subscribers: 0\r\n  uptime: 67,\r\n"
                  "  pid: 12537\r\n  subscribers: 1\r\n  uptime: 66\r\n");
}

static void test_summarized_yaml(void **state)
{
    ps_summarized(*state, PS_FMT_YAML, 2,
                  "  hostname: vm\r\n  time: 2026-11-22T20:09:07\r\n"
                  "  channels: 4\r\n  wildcard_channels: 0\r\n"
                  "  published_messages: 2\r\n  stored_messages: 2\r\n"
                  "  messages_in_trash: 0\r\n  channels_in_delete: 0\r\n"
                  "  channels_in_trash: 0\r\n  subscribers: 0\r\n"
                  "  uptime: 67\r\n  by_worker:\r\n"
                  "   -\r\n    pid: 12536\r\n    subscribers: 0\r\n"
                  "    uptime: 67\r\n"
                  "   -\r\n    pid: 12537\r\n    subscribers: 1\r\n"
                  "    uptime: 66\r\n");
}

static void test_summarized_xml(void **state)
{
    ps_summarized(*state, PS_FMT_XML, 1,
                  "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\r\n<infos>\r\n"
                  "  <hostname>vm</hostname>\r\n"
                  "  <time>2026-11-22T20:09:07</time>\r\n"
                  "  <channels>4</channels>\r\n"
                  "  <wildcard_channels>0</wildcard_channels>\r\n"
                  "  <published_messages>2</published_messages>\r\n"
                  "  <stored_messages>2</stored_messages>\r\n"
                  "  <messages_in_trash>0</messages_in_trash>\r\n"
                  "  <channels_in_delete>0</channels_in_delete>\r\n"
                  "  <channels_in_trash>0</channels_in_trash>\r\n"
                  "  <subscribers>0</subscribers>\r\n"
                  "  <uptime>67</uptime>\r\n"
                  "  <by_worker><worker>\r\n  <pid>12536</pid>\r\n"
                  "  <subscribers>0</subscribers>\r\n"
                  "  <uptime>67</uptime>\r\n</worker>\r\n</by_worker>\r\n"
                  "</infos>\r\n");
}

static void test_summarized_no_workers(void **state)
{
    apr_size_t len;
    char *doc = ps_info_summarized(*state, PS_FMT_XJSON, &ps_sum, NULL, 0,
                                   &len);

    assert_int_equal(strlen(doc), len);
    assert_non_null(strstr(doc, "\"by_worker\": [\r\n\r\n]}\r\n"));
}

/* Several servers: by_node in every format (exact bytes). */
static void test_by_node_every_format(void **state)
{
    static const ps_chinfo_node_t bn[2] = { { "a:1", 1 }, { "b:2", 2 } };
    ps_chinfo_t ch = { "c", 1, 4, 2, 3, 2, bn };
    apr_size_t len;
    char *doc;

    ps_single(*state, PS_FMT_JSON, &ch,
              "{\"channel\": \"c\", \"published_messages\": 4, "
              "\"stored_messages\": 2, \"subscribers\": 3, \"by_node\": "
              "{\"a:1\": 1, \"b:2\": 2}}\r\n");
    ps_single(*state, PS_FMT_PLAIN, &ch,
              "channel: c\r\npublished_messages: 4\r\nstored_messages: 2\r\n"
              "active_subscribers: 3\r\nby_node: a:1=1, b:2=2\r\n");
    ps_single(*state, PS_FMT_XML, &ch,
              "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\r\n<channel>\r\n"
              "  <name>c</name>\r\n  <published_messages>4"
              "</published_messages>\r\n  <stored_messages>2"
              "</stored_messages>\r\n  <subscribers>3</subscribers>\r\n"
              "  <by_node>\r\n    <node><name>a:1</name><subscribers>1"
              "</subscribers></node>\r\n    <node><name>b:2</name>"
              "<subscribers>2</subscribers></node>\r\n  </by_node>\r\n"
              "</channel>\r\n\r\n");
    doc = ps_info_single(*state, PS_FMT_YAML, &ch, &len);
    assert_int_equal(strlen(doc), len);
    assert_non_null(strstr(doc, "  subscribers: 3\r\n  by_node:\r\n    - node: "));
    doc = ps_info_prometheus(*state, &ch, 1, &len);
    assert_non_null(strstr(doc, "pushstream_channel_subscribers{channel=\"c\"} 3\n"));
    assert_non_null(strstr(doc, "pushstream_channel_node_subscribers"
                                "{channel=\"c\",node=\"b:2\"} 2\n"));
    ch.nodes = 0;                  /* single server: nothing more */
    doc = ps_info_prometheus(*state, &ch, 1, &len);
    assert_null(strstr(doc, "node_subscribers"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        PS_TEST(test_accept),
        PS_TEST(test_by_node_every_format),
        PS_TEST(test_accept_prefix),
        PS_TEST(test_accept_later_slash),
        PS_TEST(test_accept_null_ctype),
        PS_TEST(test_single_json),
        PS_TEST(test_single_plain),
        PS_TEST(test_single_yaml),
        PS_TEST(test_single_xml),
        PS_TEST(test_single_id_escaped),
        PS_TEST(test_prometheus_channels),
        PS_TEST(test_single_id_len),
        PS_TEST(test_single_big_numbers),
        PS_TEST(test_group_json),
        PS_TEST(test_group_json_one_and_empty),
        PS_TEST(test_group_json_header_values),
        PS_TEST(test_group_plain),
        PS_TEST(test_group_yaml),
        PS_TEST(test_group_xml),
        PS_TEST(test_group_many),
        PS_TEST(test_group_negative_n),
        PS_TEST(test_summarized_json),
        PS_TEST(test_summarized_auth),
        PS_TEST(test_summarized_plain),
        PS_TEST(test_summarized_yaml),
        PS_TEST(test_summarized_xml),
        PS_TEST(test_summarized_no_workers),
    };

    PS_TEST_RUN(tests);
}
