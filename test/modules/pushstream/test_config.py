"""Configuration errors (protocol 1a): `apache2 -t` fails, the message names the
directive and the file:line of the offending line of the generated httpd.conf."""
import re

import pytest

from pyhttpd.conf import conf, location, sub_location

CONF_RE = r"(/\S+/conf/httpd\.conf)"


def _conf_line(path, n):
    with open(path) as f:
        return f.read().splitlines()[n - 1].strip()


def assert_syntax_error(rc, out, text, line):
    """A directive handler's error: httpd's 'Syntax error on line N of FILE:' + text,
    and line N of FILE is `line`."""
    assert rc != 0, out
    assert text in out, out
    m = re.search(r"Syntax error on line (\d+) of " + CONF_RE + ":", out)
    assert m, out
    assert _conf_line(m.group(2), int(m.group(1))) == line, out


def assert_post_read_error(rc, out, text, lines):
    """An error found after all directives were read: the text plus FILE:LINE of the
    location, LINE being one of `lines` (the section's opening line or the directive
    that made it a PushStream location)."""
    assert rc != 0, out
    assert text in out, out
    m = re.search(CONF_RE + r":(\d+)", out)
    assert m, f"no FILE:LINE in {out!r}"
    assert _conf_line(m.group(1), int(m.group(2))) in lines, out


# ---------------------------------------------------------------- good configs
def test_typical_config_is_ok(configtest):
    rc, out = configtest(conf())
    assert (rc, out) == (0, "Syntax OK\n")


def test_every_directive_with_valid_values(configtest):
    server = """
        PushStreamChannelDeletedMessageText "bye bye"
        PushStreamChannelInactivityTime 5m
        PushStreamPingMessageText "pinging you"
        PushStreamTimeoutWithBody on
        PushStreamMessageTtl 30s
        PushStreamMaxSubscribersPerChannel 100
        PushStreamMaxMessagesStoredPerChannel 10
        PushStreamMaxChannelIdLength 64
        PushStreamMaxNumberOfChannels 1000
        PushStreamMaxMessageSize 64k
    """
    sub = r"""
        PushStreamStoreMessages off
        PushStreamChannelInfoOnPublish off
        PushStreamHeaderTemplate "<header>\r\n"
        PushStreamMessageTemplate "~id~:~channel~:~text~\n"
        PushStreamFooterTemplate "\t<footer>\\"
        PushStreamPingMessageInterval 500ms
        PushStreamSubscriberConnectionTtl 5m
        PushStreamLongpollingConnectionTtl 30s
        PushStreamLastReceivedMessageTime "%{arg:time}"
        PushStreamLastReceivedMessageTag "%{arg:tag}"
        PushStreamLastEventId "%{arg:eventid}"
    """
    extra = sub_location("es", "eventsource") + sub_location("ws", "websocket") \
        + sub_location("str", "Streaming") + sub_location("lp2", "LONG-POLLING") \
        + location("/pub2", 'PushStreamPublisher NORMAL\nPushStreamChannelsPath "%{arg:id}"') \
        + location("/pub3", 'PushStreamPublisher\nPushStreamChannelsPath "%{arg:id}"')
    rc, out = configtest(conf(server=server, sub=sub, lp=sub, extra=extra))
    assert (rc, out) == (0, "Syntax OK\n")


def test_location_directives_allowed_at_server_level(configtest):
    server = r"""
        PushStreamChannelsPath "%{arg:id}"
        PushStreamStoreMessages on
        PushStreamMessageTemplate "~text~\n"
        PushStreamPingMessageInterval 10s
        PushStreamSubscriberConnectionTtl 1m
    """
    # the locations inherit PushStreamChannelsPath from the server level
    body = "PushStreamSharedMemorySize 32M\n" + server \
        + location("/pub", "PushStreamPublisher") + location("/sub", "PushStreamSubscriber")
    rc, out = configtest(body)
    assert (rc, out) == (0, "Syntax OK\n")


def test_directives_in_virtual_host(configtest, workbase):
    body = "PushStreamSharedMemorySize 32M\n<VirtualHost 127.0.0.1:*>\n" \
        "PushStreamMessageTtl 1m\nPushStreamPingMessageText x\n" \
        + location("/pub", 'PushStreamPublisher\nPushStreamChannelsPath "%{arg:id}"') \
        + "</VirtualHost>\n"
    rc, out = configtest(body)
    assert (rc, out) == (0, "Syntax OK\n")


def test_no_pushstream_location_needs_no_shm(configtest):
    rc, out = configtest("PushStreamMessageTtl 1m\n")
    assert rc == 0 and out.endswith("Syntax OK\n"), out
    # nginx: "ngx_http_push_stream_module will not be used with this configuration."
    assert "will not be used with this configuration" in out


def test_shm_size_128k_is_enough(configtest):
    rc, out = configtest(conf(shm="128K"))
    assert (rc, out) == (0, "Syntax OK\n")


# ---------------------------------------------------------------- errors after reading
def test_shared_memory_size_must_be_set(configtest):
    rc, out = configtest(conf(shm=None))
    assert_post_read_error(rc, out, "PushStreamSharedMemorySize must be set.",
                           ("<Location /pub>", "PushStreamPublisher admin"))


def test_channels_path_must_be_set(configtest):
    rc, out = configtest(conf() + location("/nopath", "PushStreamSubscriber long-polling"))
    assert_post_read_error(rc, out, "PushStreamChannelsPath must be set.",
                           ("<Location /nopath>", "PushStreamSubscriber long-polling"))


def test_shared_memory_size_in_virtual_host_is_refused(configtest):
    body = conf() + "<VirtualHost 127.0.0.1:*>\nPushStreamSharedMemorySize 16M\n</VirtualHost>\n"
    rc, out = configtest(body)
    assert_syntax_error(rc, out, "PushStreamSharedMemorySize", "PushStreamSharedMemorySize 16M")


# ---------------------------------------------------------------- directive errors
@pytest.mark.parametrize("name", ["MessageTtl", "MaxSubscribersPerChannel",
                                  "MaxMessagesStoredPerChannel", "MaxChannelIdLength",
                                  "MaxNumberOfChannels"])
def test_server_value_cannot_be_zero(configtest, name):
    rc, out = configtest(conf(server=f"PushStream{name} 0"))
    assert_syntax_error(rc, out, f"PushStream{name} cannot be zero.", f"PushStream{name} 0")


@pytest.mark.parametrize("name", ["PingMessageInterval", "SubscriberConnectionTtl",
                                  "LongpollingConnectionTtl"])
def test_location_value_cannot_be_zero(configtest, name):
    rc, out = configtest(conf(sub=f"PushStream{name} 0"))
    assert_syntax_error(rc, out, f"PushStream{name} cannot be zero.", f"PushStream{name} 0")


@pytest.mark.parametrize("value,shown", [("unknown", "unknown"), ('""', "")])
def test_invalid_subscriber_mode(configtest, value, shown):
    rc, out = configtest(conf(extra=location("/x", f"PushStreamSubscriber {value}\n"
                                                   'PushStreamChannelsPath "%{arg:id}"')))
    assert_syntax_error(rc, out, f"invalid PushStreamSubscriber mode value: {shown}, accepted "
                        "values (streaming, polling, long-polling, eventsource, websocket)",
                        f"PushStreamSubscriber {value}")


def test_invalid_publisher_mode(configtest):
    rc, out = configtest(conf(publisher="unknown"))
    assert_syntax_error(rc, out, "invalid PushStreamPublisher mode value: unknown, accepted "
                        "values (normal, admin)", "PushStreamPublisher unknown")


def test_message_template_cannot_be_blank(configtest):
    rc, out = configtest(conf(sub='PushStreamMessageTemplate ""'))
    assert_syntax_error(rc, out, "PushStreamMessageTemplate cannot be blank.",
                        'PushStreamMessageTemplate ""')


@pytest.mark.parametrize("size", ["64K", "124k"])
def test_shared_memory_size_minimum(configtest, size):
    rc, out = configtest(conf(shm=size))
    assert_syntax_error(rc, out, "PushStreamSharedMemorySize value must be at least 128KiB",
                        f"PushStreamSharedMemorySize {size}")


def test_publisher_directive_is_duplicate(configtest):
    rc, out = configtest(conf(pub="PushStreamPublisher normal"))
    assert_syntax_error(rc, out, "PushStreamPublisher directive is duplicate",
                        "PushStreamPublisher normal")


def test_subscriber_directive_is_duplicate(configtest):
    rc, out = configtest(conf(lp="PushStreamSubscriber polling"))
    assert_syntax_error(rc, out, "PushStreamSubscriber directive is duplicate",
                        "PushStreamSubscriber polling")
