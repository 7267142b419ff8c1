"""Streaming and polling subscribers (protocol B1, B2, B4, B5, B6, B7, B11, B13, B14):
templates and every token, replay of stored messages (backtrack, If-Modified-Since /
If-None-Match, Last-Event-Id and their PushStream* expressions), pings, connection TTL,
channel deletion, validation errors."""
import http.client
import itertools
import re
import time
import urllib.parse

from pyhttpd.client import (Stream, assert_header_only, assert_no_cache, http_date, info, publish,
                            request, request_on, wait_subscribers)
from pyhttpd.conf import conf, location, sub_location

EPOCH = "Thu, 01 Jan 1970 00:00:00 GMT"
RFC1123 = r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT"

TOKENS = "<~id~|~channel~|~text~|~size~|~time~|~tag~|~event-id~|~event-type~>"

CONF = conf(
    server="PushStreamChannelDeletedMessageText \"bye bye\"",
    sub=[r'PushStreamHeaderTemplate "HEAD\tER\r\n"',
         f'PushStreamMessageTemplate "{TOKENS}\\n"',
         r'PushStreamFooterTemplate "FOOT\\ER"'],
    poll=[r'PushStreamHeaderTemplate "H|"', f'PushStreamMessageTemplate "{TOKENS}\\n"',
          r'PushStreamFooterTemplate "|F"'],
    extra=sub_location("s", "", 'PushStreamMessageTemplate "~text~|"')
    + sub_location("raw", "")
    + sub_location("ci", "", r'PushStreamMessageTemplate "~ID~:~Text~:~tExT~:~SIZE~\\|"')
    + sub_location("arg", "", ['PushStreamMessageTemplate "~text~|"',
                               'PushStreamLastReceivedMessageTime "%{arg:time}"',
                               'PushStreamLastReceivedMessageTag "%{arg:tag}"',
                               'PushStreamLastEventId "%{arg:eventid}"'])
    + sub_location("ping", "", ['PushStreamMessageTemplate "~id~:~text~:~channel~:~tag~:~time~|"',
                                "PushStreamPingMessageInterval 1s"])
    + sub_location("ttl", "", ['PushStreamHeaderTemplate "H|"', 'PushStreamFooterTemplate "|F"',
                               'PushStreamMessageTemplate "~text~|"',
                               "PushStreamSubscriberConnectionTtl 2s"])
    + sub_location("del", "", ['PushStreamMessageTemplate "~id~:~channel~:~text~:~tag~:~time~|"',
                               'PushStreamFooterTemplate "FOOTER"'])
    + location("/subq", 'PushStreamSubscriber\nPushStreamChannelsPath "%{arg:id}"'))


def parse_tokens(body):
    """[{id, channel, text, size, time, tag, event-id, event-type}] of TOKENS lines."""
    out = []
    for m in re.finditer(rb"<([^|>]*)\|([^|>]*)\|([^|>]*)\|([^|>]*)\|([^|>]*)\|([^|>]*)\|"
                         rb"([^|>]*)\|([^|>]*)>\n", body):
        out.append(dict(zip(("id", "channel", "text", "size", "time", "tag", "event-id",
                             "event-type"), (g.decode() for g in m.groups()))))
    return out


def stored(srv, ch, n=100):
    """The stored messages of ch (oldest first) with their time and tag, via polling."""
    r = request(srv, "GET", f"/poll/{ch}.b{n}")
    assert r.status == 200, r
    return parse_tokens(r.body)


def expected_after(msgs, ims=None, tag=None, event_id=None):
    """Protocol B5: which stored messages a subscriber with these inputs gets."""
    def t(m):
        return time.mktime(time.strptime(m["time"], "%a, %d %b %Y %H:%M:%S GMT")) \
            - time.timezone
    for i, m in enumerate(msgs):
        if event_id is not None and m["event-id"] == event_id:
            return msgs[i + 1:]
        if ims is not None:
            if t(m) > ims:
                return msgs[i:]
            if t(m) == ims and tag is not None and int(m["tag"]) >= tag:
                return msgs[i + 1:] if int(m["tag"]) == tag else msgs[i:]
    return []


def texts(msgs):
    return b"".join(m["text"].encode() + b"|" for m in msgs)


def open_stream(srv, path, ch, n=1, headers=None):
    """A streaming subscriber, returned once the channel counts it."""
    s = Stream(srv, path, headers=headers)
    wait_subscribers(srv, ch, n)
    return s


# ---------------------------------------------------------------- streaming
def test_streaming_live_message_with_every_token(httpd):
    srv = httpd(CONF)
    with open_stream(srv, "/sub/live", "live") as s:
        s.wait_for(b"HEAD\tER\r\n")
        assert s.status == 200
        assert s.header("Transfer-Encoding") == "chunked"
        assert_no_cache(s.p.response())
        t0 = int(time.time())
        publish(srv, "live", b"hello ~channel~ ~text~",
                headers={"Event-Id": "ev1", "Event-Type": "greeting"})
        t1 = int(time.time())
        body = s.wait_for(b">\n")
        assert body.startswith(b"HEAD\tER\r\n<1|live|hello ~channel~ ~text~|22|"), body
        [m] = parse_tokens(body)
        assert re.fullmatch(RFC1123, m["time"]), m
        assert t0 <= _t(m) <= t1, (m, t0, t1)
        assert int(m["tag"]) >= 1
        assert (m["event-id"], m["event-type"]) == ("ev1", "greeting")
        # the stored copy, formatted by the polling location, has the same time and tag
        assert stored(srv, "live") == [m]
        assert request(srv, "GET", "/poll/live.b1").body == b"H|" + body[9:] + b"|F"


def test_tokens_are_case_insensitive_and_repeatable(httpd):
    srv = httpd(CONF)
    with open_stream(srv, "/ci/ci", "ci") as s:
        publish(srv, "ci", b"abc")
        # `\\` in the config is one backslash (httpd and nginx agree on that one)
        assert s.wait_for(b"|") == b"1:abc:abc:3\\|"


def test_default_template_is_binary_safe(httpd):
    srv = httpd(CONF)
    data = bytes(range(256)) * 4 + b"~text~\r\n0\r\n\r\n"
    with open_stream(srv, "/raw/bin", "bin") as s:
        publish(srv, "bin", data)
        assert s.wait_len(len(data)) == data
        publish(srv, "bin", b"next")
        assert s.wait_len(len(data) + 4) == data + b"next"


def test_several_channels_in_one_subscription(httpd):
    srv = httpd(CONF)
    with Stream(srv, "/sub/c1/c2") as s:
        wait_subscribers(srv, "c1", 1)
        wait_subscribers(srv, "c2", 1)
        publish(srv, "c2", b"two")
        publish(srv, "c1", b"one")
        msgs = parse_tokens(s.wait_for(b"|one|"))
        assert [(m["channel"], m["text"]) for m in msgs] == [("c2", "two"), ("c1", "one")]


def test_backtrack_replays_in_channel_order(httpd):
    srv = httpd(CONF)
    for i in range(1, 4):
        publish(srv, "bt1", f"a{i}")
        publish(srv, "bt2", f"b{i}")
    publish(srv, "room.b18.beautiful", b"room")
    publish(srv, "ch.b", b"chb")
    with Stream(srv, "/s/bt2.b2/bt1.b5/nope.b3") as s:
        assert s.wait_for(b"a3|") == b"b2|b3|a1|a2|a3|"
        publish(srv, "bt1", b"live")
        assert s.wait_for(b"live|") == b"b2|b3|a1|a2|a3|live|"
    with Stream(srv, "/s/room.b18.beautiful.b3") as s:
        assert s.wait_for(b"|") == b"room|"
    with Stream(srv, "/s/ch.b") as s:     # no digits: not a backtrack, nothing replayed
        wait_subscribers(srv, "ch.b", 1)
        publish(srv, "ch.b", b"live")
        assert s.wait_for(b"|") == b"live|"


def _three_messages(srv, ch, with_ids=False):
    for i, text in enumerate(("m1", "m2", "m3"), 1):
        publish(srv, ch, text, headers={"Event-Id": f"e{i}"} if with_ids else None)
    msgs = stored(srv, ch)
    assert [m["text"] for m in msgs] == ["m1", "m2", "m3"]
    return msgs


def _t(m):
    return time.mktime(time.strptime(m["time"], "%a, %d %b %Y %H:%M:%S GMT")) - time.timezone


_markers = itertools.count(1)


def _replay(srv, path, ch, headers=None):
    """What a streaming subscriber gets replayed: everything before a new live
    message (which is stored too, as `LIVEn`)."""
    marker = f"LIVE{next(_markers)}|".encode()
    s = Stream(srv, path, headers=headers)
    try:
        wait_subscribers(srv, ch, 1)
        publish(srv, ch, marker[:-1], headers={"Event-Id": "live"})
        body = s.wait_for(marker)
    finally:
        s.close()
    wait_subscribers(srv, ch, 0)
    assert body.endswith(marker), body
    return body[:-len(marker)]


def test_if_modified_since_and_if_none_match(httpd):
    srv = httpd(CONF)
    msgs = _three_messages(srv, "ims")
    m1, m2, m3 = msgs
    cases = [
        (_t(m1) - 1, None),            # before everything: all
        (_t(m2), int(m2["tag"])),      # m2 itself is skipped
        (_t(m1), int(m1["tag"])),
        (_t(m3), None),                # IMS alone excludes its own second
        (_t(m3), int(m3["tag"])),      # nothing after m3
        (_t(m1), 0),
    ]
    for ims, tag in cases:
        want = texts(expected_after(msgs, ims, tag))
        headers = {"If-Modified-Since": http_date(ims)}
        if tag is not None:
            headers["If-None-Match"] = str(tag)
        assert _replay(srv, "/s/ims", "ims", headers) == want, (ims, tag)
        msgs = stored(srv, "ims")   # the LIVE markers are stored too
        if tag is not None:   # W/n is the same as n
            headers["If-None-Match"] = f"W/{tag}"
            want = texts(expected_after(msgs, ims, tag))
            assert _replay(srv, "/s/ims", "ims", headers) == want, (ims, tag)
            msgs = stored(srv, "ims")


def test_last_received_message_time_and_tag_expressions(httpd):
    srv = httpd(CONF)
    msgs = _three_messages(srv, "arg")
    m2 = msgs[1]
    q = urllib.parse.urlencode({"time": m2["time"], "tag": m2["tag"]},
                               quote_via=urllib.parse.quote)
    want = texts(expected_after(msgs, _t(m2), int(m2["tag"])))
    assert _replay(srv, f"/arg/arg?{q}", "arg") == want
    # configured expressions replace the headers, even when they give nothing
    msgs = stored(srv, "arg")
    old = {"If-Modified-Since": http_date(_t(msgs[0]) - 10), "If-None-Match": "0"}
    assert _replay(srv, "/arg/arg", "arg", old) == b""
    # while the plain location does use the headers
    want = texts(stored(srv, "arg"))
    assert _replay(srv, "/s/arg", "arg", old) == want


def test_last_event_id(httpd):
    srv = httpd(CONF)
    _three_messages(srv, "eid", with_ids=True)
    assert _replay(srv, "/s/eid", "eid", {"Last-Event-Id": "e1"}) == b"m2|m3|"
    # from here on the LIVE markers of _replay are stored too
    for path, hdr, ev in (("/s/eid", "e3", "e3"),
                          ("/s/eid", "unknown", "unknown"),
                          # PushStreamLastEventId "%{arg:eventid}": the header is ignored
                          ("/arg/eid?eventid=e2", "e1", "e2"),
                          ("/arg/eid", "e1", None)):
        want = texts(expected_after(stored(srv, "eid"), event_id=ev))
        assert _replay(srv, path, "eid", {"Last-Event-Id": hdr}) == want, (path, hdr)
    assert _replay(srv, "/s/eid", "eid", {"Last-Event-Id": "unknown"}) == b""
    # backtrack wins over the event id
    last = stored(srv, "eid")[-1]["text"].encode()
    assert _replay(srv, "/s/eid.b1", "eid", {"Last-Event-Id": "e1"}) == last + b"|"


def test_ping(httpd):
    srv = httpd(CONF)
    with Stream(srv, "/ping/pch") as s:
        t0 = time.time()
        s.wait_for(b"|", timeout=5)
        assert s.body == b"-1: ::0:" + EPOCH.encode() + b"|"
        s.wait_for(b"|-1: ::0:", timeout=5)
        assert time.time() - t0 >= 1.0
        publish(srv, "pch", b"msg")
        s.wait_for(b"|1:msg:pch:", timeout=5)
    srv.stop()
    srv = httpd(conf(server='PushStreamPingMessageText "pinging you!!!"',
                     sub=['PushStreamMessageTemplate "~id~:~text~|"',
                          "PushStreamPingMessageInterval 1s"]))
    with Stream(srv, "/sub/p") as s:
        assert s.wait_for(b"|", timeout=5) == b"-1:pinging you!!!|"


def test_subscriber_connection_ttl(httpd):
    srv = httpd(CONF)
    s1 = Stream(srv, "/ttl/t")
    wait_subscribers(srv, "t", 1)
    publish(srv, "t", b"m")
    s1.wait_for(b"m|")
    time.sleep(1)   # the second subscriber starts a second later
    s2 = Stream(srv, "/ttl/t")
    s1.wait_closed(timeout=5)
    t1 = time.time() - s1.t0
    assert s1.complete, "chunked body not terminated"
    assert s1.body == b"H|m||F"
    assert not s2.eof
    s2.wait_closed(timeout=5)
    t2 = time.time() - s2.t0
    assert s2.complete and s2.body == b"H||F"
    assert 1.5 <= t1 <= 3.5 and 1.5 <= t2 <= 3.5, (t1, t2)
    s1.close()
    s2.close()
    wait_subscribers(srv, "t", 0, timeout=3)


def test_channel_delete_ends_streaming_subscribers(httpd):
    srv = httpd(CONF)
    publish(srv, "gone", b"x")
    only = Stream(srv, "/del/gone")
    both = Stream(srv, "/del/gone/stays")
    wait_subscribers(srv, "gone", 2)
    wait_subscribers(srv, "stays", 1)
    r = request(srv, "DELETE", "/pub?id=gone")
    assert r.status == 200, r
    deleted = f"-2:gone:bye bye:0:{EPOCH}|".encode()
    only.wait_closed()
    assert only.body == deleted + b"FOOTER"
    assert only.complete
    # subscribed to another channel too: gets the message and stays
    both.wait_for(deleted)
    publish(srv, "stays", b"still here")
    assert both.wait_for(b"still here:").startswith(deleted + b"1:stays:still here:")
    assert not both.eof
    # a DELETE body replaces the text
    s = Stream(srv, "/del/gone2")
    wait_subscribers(srv, "gone2", 1)
    assert request(srv, "DELETE", "/pub?id=gone2", body=b"custom bye").status == 200
    assert s.wait_closed() == f"-2:gone2:custom bye:0:{EPOCH}|FOOTER".encode()
    both.close()
    only.close()
    s.close()


# ---------------------------------------------------------------- validation (B4)
def test_subscriber_methods(httpd):
    srv = httpd(CONF)
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        r = request(srv, method, "/sub/ch", body=b"x" if method in ("POST", "PUT") else None)
        assert r.status == 405, (method, r)
        assert r.header("Allow") == "GET", (method, r)
        assert r.header("Content-Length") == "0" and r.body == b"", (method, r)
        assert_no_cache(r)
    r = request(srv, "OPTIONS", "/sub/ch")
    assert r.status == 200, r
    assert r.header("Content-Length") == "0" and r.body == b""
    assert r.header("Expires") is None and r.header("Cache-Control") is None, r
    assert info(srv, "ch") is None


def test_subscriber_channel_errors(httpd):
    srv = httpd(conf(server=["PushStreamMaxChannelIdLength 8",
                             "PushStreamMaxSubscribersPerChannel 2"],
                     extra=location("/subq", 'PushStreamSubscriber\n'
                                             'PushStreamChannelsPath "%{arg:id}"')))
    for path in ("/sub/ALL", "/sub/a*b", "/sub/ok/ALL", "/lp/ALL", "/poll/x*"):
        assert_header_only(request(srv, "GET", path), 403,
                           "Channel id not authorized for this method.")
    for path in ("/sub/123456789", "/lp/ok/123456789", "/poll/123456789.b1"):
        assert_header_only(request(srv, "GET", path), 400, "Channel id is too large.")
    assert_header_only(request(srv, "GET", "/subq"), 400, "No channel id provided.")
    with Stream(srv, "/sub/full"), Stream(srv, "/sub/full"):
        wait_subscribers(srv, "full", 2)
        assert_header_only(request(srv, "GET", "/sub/full"), 403,
                           "Subscribers limit per channel has been exceeded.")
        assert_header_only(request(srv, "GET", "/lp/full"), 403,
                           "Subscribers limit per channel has been exceeded.")
    wait_subscribers(srv, "full", 0)
    with Stream(srv, "/sub/full"):
        wait_subscribers(srv, "full", 1)


def test_subscribe_creates_the_channel(httpd):
    srv = httpd(CONF)
    with Stream(srv, "/s/made"):
        wait_subscribers(srv, "made", 1)
    assert request(srv, "GET", "/poll/made2").status == 304
    assert info(srv, "made2") == {"channel": "made2", "published_messages": 0,
                                  "stored_messages": 0, "subscribers": 0}


def test_mode_header_switches_streaming_location(httpd):
    srv = httpd(CONF)
    publish(srv, "mode", b"m1")
    r = request(srv, "GET", "/s/mode", headers={"X-Nginx-PushStream-Mode": "Polling"})
    assert r.status == 304, r
    r = request(srv, "GET", "/s/mode.b1", headers={"X-Nginx-PushStream-Mode": "polling"})
    assert r.status == 200 and r.body == b"m1|", r
    r = request(srv, "GET", "/s/mode.b1", headers={"X-Nginx-PushStream-Mode": "long-polling"})
    assert r.status == 200 and r.body == b"m1|", r
    assert re.fullmatch(r'W/\d+', r.header("Etag") or ""), r


# ---------------------------------------------------------------- polling (B7)
def test_polling(httpd):
    srv = httpd(CONF)
    msgs = _three_messages(srv, "pl")
    # no criteria: always 304, even with stored messages
    r = request(srv, "GET", "/poll/pl")
    assert r.status == 304, r
    assert r.header("Last-Modified") is None and r.header("Etag") is None, r
    assert r.body == b""
    assert_no_cache(r)
    # backtrack: header template + messages + footer; keep-alive
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    r = request_on(c, "GET", "/poll/pl.b2")
    assert r.status == 200, r
    assert r.body.startswith(b"H|") and r.body.endswith(b"|F"), r
    assert parse_tokens(r.body) == msgs[1:]
    assert r.header("Last-Modified") == msgs[2]["time"]
    assert r.header("Etag") == f"W/{msgs[2]['tag']}"
    assert_no_cache(r)
    assert (r.header("Connection") or "").lower() != "close", r
    # the client continues with what it got: nothing new -> 304 echoing its inputs
    ims, etag = r.header("Last-Modified"), r.header("Etag")
    r = request_on(c, "GET", "/poll/pl", headers={"If-Modified-Since": ims,
                                                  "If-None-Match": etag})
    assert r.status == 304, r
    assert r.header("Last-Modified") == ims and r.header("Etag") == etag, r
    publish(srv, "pl", b"m4")
    r = request_on(c, "GET", "/poll/pl", headers={"If-Modified-Since": ims,
                                                  "If-None-Match": etag})
    assert r.status == 200, r
    assert [m["text"] for m in parse_tokens(r.body)] == ["m4"]
    c.close()
