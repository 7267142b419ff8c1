"""EventSource subscribers (protocol B9, B5, B11, B13, B4 mode switch): content type,
header/footer templates as comment lines, id:/event:/data: lines with CR/LF/CRLF
splitting, message templates, ": -1" pings, TTL, channel delete, Last-Event-Id replay and
a browser-like reconnect that gets exactly the missed messages; clients: a raw-socket
reader that de-chunks, and curl."""
import time

import pytest

from pyhttpd.client import (CACHE_CONTROL, EXPIRES, Curl, Subscriber as Stream, http, parse_sse,
                            publish, wait_subscribers)
from pyhttpd.conf import pub_location, sub_location


def es_loc(prefix, *lines):
    return sub_location(prefix, "eventsource", list(lines))


CONF = "PushStreamSharedMemorySize 32M\n" + pub_location() + es_loc("ev") \
    + es_loc("evh", r'PushStreamHeaderTemplate "header line 1\nheader line 2\rheader line 3\r\nheader line 4"') \
    + es_loc("evcom", r'PushStreamHeaderTemplate ": already a comment\n"') \
    + es_loc("evj", r'PushStreamMessageTemplate "{\"id\":\"~id~\", \"message\":\"~text~\"}"') \
    + es_loc("evd", r'PushStreamMessageTemplate "data: ~text~ (~size~)"') \
    + es_loc("evt", r'PushStreamMessageTemplate "~event-id~|~event-type~|~channel~|~text~"') \
    + es_loc("evping", "PushStreamPingMessageInterval 1s",
             r'PushStreamMessageTemplate "~id~:~text~"') \
    + es_loc("evttl", "PushStreamSubscriberConnectionTtl 1s",
             r'PushStreamFooterTemplate "footer line 1\nfooter line 2\rfooter line 3\r\nfooter line 4"') \
    + es_loc("evf", r'PushStreamFooterTemplate "bye"') \
    + es_loc("evarg", 'PushStreamLastEventId "%{arg:eventid}"')

CT = "text/event-stream; charset=utf-8"


def assert_es_headers(s):
    assert s.status == 200, s.resp
    assert s.header("Content-Type") == CT, s.resp
    assert s.header("Transfer-Encoding") == "chunked", s.resp
    assert s.header("Expires") == EXPIRES, s.resp
    assert s.header("Cache-Control") == CACHE_CONTROL, s.resp
    assert (s.header("Connection") or "").lower() == "close", s.resp


def test_content_type_empty_header_and_message(httpd):
    srv = httpd(CONF, servers=1)
    with Stream(srv, "/ev/ch1") as s:
        assert_es_headers(s)
        assert s.wait_len(3) == b": \n"
        wait_subscribers(srv, "ch1", 1)
        publish(srv, "ch1", "hello")
        assert s.wait_for(b"\n\n") == b": \ndata: hello\n\n"
        publish(srv, "ch1", "second")
        assert s.wait_for(b"second\n\n") == b": \ndata: hello\n\ndata: second\n\n"
        assert s.idle(0.3) == b": \ndata: hello\n\ndata: second\n\n"


def test_header_template_lines_as_comments(httpd):
    srv = httpd(CONF, servers=1)
    with Stream(srv, "/evh/h") as s:
        assert_es_headers(s)
        want = b": header line 1\n: header line 2\n: header line 3\n: header line 4\n"
        assert s.wait_len(len(want)) == want
        wait_subscribers(srv, "h", 1)
        publish(srv, "h", "x")
        assert s.wait_for(b"data: x\n\n") == want + b"data: x\n\n"
    with Stream(srv, "/evcom/h") as s:
        assert s.wait_for(b"\n") == b": already a comment\n"   # not prefixed again


def test_event_id_type_and_line_splitting(httpd):
    srv = httpd(CONF, servers=1)
    with Stream(srv, "/ev/lines") as s:
        s.wait_len(3)
        wait_subscribers(srv, "lines", 1)
        publish(srv, "lines", "line1\nline2", {"Event-Id": "evt1", "Event-Type": "mytype"})
        assert s.wait_for(b"line2\n\n") == \
            b": \nid: evt1\nevent: mytype\ndata: line1\ndata: line2\n\n"
        n = len(s.body)
        publish(srv, "lines", "a\r\nb\rc\n\n\r\nd\n")
        assert s.wait_for(b"d\n\n")[n:] == b"data: a\ndata: b\ndata: c\ndata: d\n\n"
        n = len(s.body)
        publish(srv, "lines", "only id", {"Event-Id": "42"})
        assert s.wait_for(b"only id\n\n")[n:] == b"id: 42\ndata: only id\n\n"
        n = len(s.body)
        publish(srv, "lines", "only type", {"Event-Type": "t"})
        assert s.wait_for(b"only type\n\n")[n:] == b"event: t\ndata: only type\n\n"
        n = len(s.body)
        # header names are exact: Event-Ids / Event-I are not Event-Id
        publish(srv, "lines", "no id", {"Event-Ids": "x", "Event-I": "y"})
        assert s.wait_for(b"no id\n\n")[n:] == b"data: no id\n\n"
        events, comments = parse_sse(s.body)
        assert comments == [": "]
        assert [e.get("id") for e in events] == ["evt1", None, "42", None, None]


def test_message_templates(httpd):
    srv = httpd(CONF, servers=1)
    with Stream(srv, "/evj/t") as j, Stream(srv, "/evd/t") as d, Stream(srv, "/evt/t") as t:
        for s in (j, d, t):
            s.wait_len(3)
        wait_subscribers(srv, "t", 3)
        publish(srv, "t", "test message")
        assert j.wait_for(b"\n\n") == b': \ndata: {"id":"1", "message":"test message"}\n\n'
        assert d.wait_for(b"\n\n") == b": \ndata: test message (12)\n\n"     # no 2nd prefix
        assert t.wait_for(b"\n\n") == b": \ndata: ||t|test message\n\n"
        n = (len(j.body), len(d.body), len(t.body))
        publish(srv, "t", "line1\nab", {"Event-Id": "E", "Event-Type": "T"})
        assert j.wait_for(b'"ab"}\n\n')[n[0]:] == \
            b'id: E\nevent: T\ndata: {"id":"2", "message":"line1"}\ndata: {"id":"2", "message":"ab"}\n\n'
        # ~size~ is per line
        assert d.wait_for(b"ab (2)\n\n")[n[1]:] == \
            b"id: E\nevent: T\ndata: line1 (5)\ndata: ab (2)\n\n"
        assert t.wait_for(b"|ab\n\n")[n[2]:] == \
            b"id: E\nevent: T\ndata: E|T|t|line1\ndata: E|T|t|ab\n\n"


def test_ping_comment(httpd):
    srv = httpd(CONF, servers=1)
    with Stream(srv, "/evping/p") as s:
        t0 = time.time()
        assert s.wait_for(b": \n: -1\n: -1\n", timeout=6) == b": \n: -1\n: -1\n"
        assert time.time() - t0 >= 1.5
        publish(srv, "p", "msg")
        got = s.wait_for(b"msg\n\n")
        assert got.endswith(b"data: 1:msg\n\n"), got        # the template is used for messages
        events, comments = parse_sse(s.wait_for(b"msg\n\n: -1\n", timeout=4))
        assert set(comments) == {": ", ": -1"}


def test_ttl_footer_as_comments(httpd):
    srv = httpd(CONF, servers=1)
    with Stream(srv, "/evttl/f") as s:
        t0 = time.time()
        body = s.wait_end(timeout=6)
        assert 0.8 <= time.time() - t0 < 4
        assert body == b": \n: footer line 1\n: footer line 2\n: footer line 3\n: footer line 4\n"
        assert s.ended
        s.wait_eof(5)
    wait_subscribers(srv, "f", 0)


def test_channel_deleted(httpd):
    srv = httpd(CONF, servers=1)
    with Stream(srv, "/evf/gone") as one, Stream(srv, "/evf/gone/stay") as two:
        one.wait_len(3)
        two.wait_len(3)
        wait_subscribers(srv, "gone", 2)
        assert http(srv, "DELETE", "/pub?id=gone").status == 200
        assert one.wait_end() == b": \ndata: Channel deleted\n\n: bye\n"
        one.wait_eof(5)
        # subscribed to another channel too: the message, and it stays
        assert two.wait_for(b"deleted\n\n") == b": \ndata: Channel deleted\n\n"
        wait_subscribers(srv, "stay", 1)
        publish(srv, "stay", "still")
        assert two.wait_for(b"still\n\n") == b": \ndata: Channel deleted\n\ndata: still\n\n"
        assert not two.ended


def _publish_ids(srv, ch, ids):
    for i in ids:
        publish(srv, ch, f"m{i}", {"Event-Id": f"id{i}"})


def test_last_event_id_replay(httpd):
    srv = httpd(CONF, servers=1)
    _publish_ids(srv, "le", range(1, 4))
    with Stream(srv, "/ev/le", {"Last-Event-Id": "id1"}) as s:
        assert s.wait_for(b"m3\n\n") == b": \nid: id2\ndata: m2\n\nid: id3\ndata: m3\n\n"
        assert s.idle(0.3) == b": \nid: id2\ndata: m2\n\nid: id3\ndata: m3\n\n"
    with Stream(srv, "/ev/le", {"Last-Event-Id": "id3"}) as s:
        assert s.idle(0.5) == b": \n"          # the newest one: nothing missed
    with Stream(srv, "/ev/le", {"Last-Event-Id": "unknown"}) as s:
        assert s.idle(0.5) == b": \n"          # not in the queue: nothing, it just waits
        wait_subscribers(srv, "le", 1)
        publish(srv, "le", "live")
        assert s.wait_for(b"live\n\n") == b": \ndata: live\n\n"
    # no Last-Event-Id at all: no replay
    with Stream(srv, "/ev/le") as s:
        assert s.idle(0.5) == b": \n"
    # backtrack still works and wins
    with Stream(srv, "/ev/le.b1", {"Last-Event-Id": "id1"}) as s:
        assert s.wait_for(b"live\n\n") == b": \ndata: live\n\n"
    # PushStreamLastEventId "%{arg:eventid}" replaces the header (even when absent)
    with Stream(srv, "/evarg/le?eventid=id2", {"Last-Event-Id": "id1"}) as s:
        assert s.wait_for(b"m3\n\n") == b": \nid: id3\ndata: m3\n\ndata: live\n\n"
    with Stream(srv, "/evarg/le", {"Last-Event-Id": "id1"}) as s:
        assert s.idle(0.5) == b": \n"


def _read_events(s, n, timeout=10):
    s.wait(lambda st: st.body.count(b"\n\n") >= n, timeout, f"{n} events")
    return parse_sse(s.body)[0]


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_reconnect_with_last_event_id_gets_exactly_the_missed(httpd, tls):
    """A browser: reads events, loses the connection, messages are published meanwhile,
    reconnects with the id of the last event it saw."""
    from pyhttpd import httpd as pshttpd
    kw = {"ssl_port": pshttpd.free_port(), "extra_global": "PushStreamSharedMemorySize 32M"} \
        if tls else {}
    conf = CONF.replace("PushStreamSharedMemorySize 32M\n", "") if tls else CONF
    srv = httpd(conf, servers=2, **kw)
    seen = []
    last = None
    next_id = 1
    for round_ in range(4):
        hdrs = {"Last-Event-Id": last} if last else {}
        with Stream(srv, "/ev/rc", hdrs, tls=tls) as s:
            # first the ones published while we were away
            missed = list(range(next_id - 3, next_id)) if last else []
            if missed:
                evs = _read_events(s, len(missed))
                assert [e["id"] for e in evs] == [f"id{i}" for i in missed], s.body
            wait_subscribers(srv, "rc", 1)
            _publish_ids(srv, "rc", range(next_id, next_id + 2))    # live ones
            evs = _read_events(s, len(missed) + 2)
            assert len(evs) == len(missed) + 2, s.body
            s.idle(0.2)
            assert len(parse_sse(s.body)[0]) == len(missed) + 2, s.body
            for e in evs:
                assert e["data"] == ["m" + e["id"][2:]], e
                seen.append(e["id"])
            last = evs[-1]["id"]
            next_id += 2
        wait_subscribers(srv, "rc", 0)
        _publish_ids(srv, "rc", range(next_id, next_id + 3))         # while disconnected
        next_id += 3
    assert seen == [f"id{i}" for i in range(1, next_id - 3)], seen
    assert len(seen) == len(set(seen))


def test_curl_reads_the_stream(httpd):
    srv = httpd(CONF, servers=1)
    _publish_ids(srv, "cu", range(1, 3))
    with Curl(["-N", "-H", "Last-Event-Id: id1", srv.url("/ev/cu")]) as c:
        assert c.wait_for(b"m2\n\n") == b": \nid: id2\ndata: m2\n\n"
        wait_subscribers(srv, "cu", 1)
        publish(srv, "cu", "a\nb", {"Event-Type": "two"})
        assert c.wait_for(b"b\n\n") == b": \nid: id2\ndata: m2\n\nevent: two\ndata: a\ndata: b\n\n"
    with Curl(["-N", "-i", srv.url("/evttl/cu")]) as c:
        assert c.wait_exit(10) == 0
        out = c.output()
        head, _, body = out.partition(b"\r\n\r\n")
        assert b"\r\nContent-Type: text/event-stream; charset=utf-8" in head + b"\r\n", head
        assert body.startswith(b": \n: footer line 1\n"), body


def test_several_channels_and_backtrack(httpd):
    srv = httpd(CONF, servers=2)
    publish(srv, "c1", "a1")
    publish(srv, "c2", "b1")
    publish(srv, "c1", "a2")
    with Stream(srv, "/evt/c1.b2/c2.b1") as s:
        assert s.wait_for(b"b1\n\n") == \
            b": \ndata: ||c1|a1\n\ndata: ||c1|a2\n\ndata: ||c2|b1\n\n"
        wait_subscribers(srv, "c2", 1)
        publish(srv, "c2", "b2")
        assert s.wait_for(b"b2\n\n").endswith(b"data: ||c2|b2\n\n")


def test_mode_header_switches_to_polling(httpd):
    srv = httpd(CONF, servers=1)
    publish(srv, "md", "stored")
    r = http(srv, "GET", "/ev/md", {"X-Nginx-PushStream-Mode": "polling"})
    assert r.status == 304 and r.body == b"", r
    r = http(srv, "GET", "/ev/md.b1", {"X-Nginx-PushStream-Mode": "POLLING"})
    assert r.status == 200, r
    assert b"stored" in r.body, r
    assert r.header("Etag") is not None and r.header("Last-Modified") is not None, r
    # long-polling: waits for the next message, then ends
    s = Stream(srv, "/ev/md", {"X-Nginx-PushStream-Mode": "Long-Polling"}, read_headers=False)
    try:
        wait_subscribers(srv, "md", 1)
        assert s.status is None
        publish(srv, "md", "next")
        body = s.wait_end()
        assert s.status == 200 and b"next" in body and b"stored" not in body, s.resp
        assert s.header("Etag") is not None
    finally:
        s.close()
