"""Polling (protocol B7), the X-Nginx-PushStream-Mode header (B4), JSONP on polling and
long-polling (B8) incl. the long-poll timeout with PushStreamTimeoutWithBody and channel
deletion, and keep-alive after answers given at once vs. Connection: close after a wait."""
import json
import re
import time

from pyhttpd.client import (HttpConn, Subscriber as Stream, http, info,
                            assert_no_cache, publish, wait_subscribers)

RFC1123 = r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT"
LPJ_TPL = r'{\"id\":\"~id~\", \"message\":\"~text~\", \"channel\":\"~channel~\"}'


def sub_loc(prefix, mode, *lines):
    body = "\n    ".join((f"PushStreamSubscriber {mode}".rstrip(),
                          'PushStreamChannelsPath "%{env:MATCH_CH}"') + lines)
    return f'<LocationMatch "^/{prefix}/(?<ch>.+)$">\n    {body}\n</LocationMatch>\n'


def make_conf(server=""):
    return "PushStreamSharedMemorySize 32M\n" + server + "\n" + r'''
<Location /pub>
    PushStreamPublisher admin
    PushStreamChannelsPath "%{arg:id}"
    PushStreamStoreMessages on
</Location>
''' + sub_loc("poll", "polling", r'PushStreamHeaderTemplate "H|"',
              r'PushStreamMessageTemplate "~text~|"', r'PushStreamFooterTemplate "|F"') \
        + sub_loc("pollt", "polling", r'PushStreamMessageTemplate "~text~:~tag~:~time~|"') \
        + sub_loc("pollj", "polling", r'PushStreamMessageTemplate "{\"id\":\"~id~\",\"text\":\"~text~\"}"') \
        + sub_loc("pollarg", "polling", r'PushStreamMessageTemplate "~text~|"',
                  'PushStreamLastEventId "%{arg:eventid}"') \
        + sub_loc("lp", "long-polling", f'PushStreamMessageTemplate "{LPJ_TPL}"',
                  "PushStreamLongpollingConnectionTtl 2s") \
        + sub_loc("lph", "long-polling", r'PushStreamHeaderTemplate "H|"',
                  r'PushStreamFooterTemplate "|F"') \
        + sub_loc("sub", "", r'PushStreamMessageTemplate "~text~|"')


CONF = make_conf()


def jsonp_items(body, name):
    m = re.fullmatch(re.escape(name).encode() + rb"\((\[.*\])\);", body, re.S)
    assert m, body
    return json.loads(m.group(1))


# ================================================================ polling
def test_polling_without_criteria_is_304_even_with_messages(httpd):
    srv = httpd(CONF, servers=1)
    publish(srv, "p1", "stored")
    with HttpConn(srv) as c:
        for _ in range(3):                       # keep-alive: one connection
            r = c.request("GET", "/poll/p1")
            assert r.status == 304, r
            assert r.body == b"", r
            assert r.header("Last-Modified") is None and r.header("Etag") is None, r
            assert_no_cache(r)
            assert (r.header("Connection") or "").lower() != "close", r
        assert not c.closed_by_server(0.3)
    assert info(srv, "p1")["subscribers"] == 0


def test_polling_backtrack_200_with_last_modified_and_etag(httpd):
    srv = httpd(CONF, servers=1)
    for m in ("m1", "m2", "m3"):
        publish(srv, "p2", m)
    with HttpConn(srv) as c:
        r = c.request("GET", "/poll/p2.b2")
        assert r.status == 200, r
        assert r.body == b"H|m2|m3||F", r
        assert_no_cache(r)
        r = c.request("GET", "/pollt/p2.b3")
        assert r.status == 200, r
        parts = [p.split(b":", 2) for p in r.body.split(b"|") if p]
        assert [p[0] for p in parts] == [b"m1", b"m2", b"m3"], r
        last_tag, last_time = parts[-1][1].decode(), parts[-1][2].decode()
        assert re.fullmatch(RFC1123, last_time), r
        assert r.header("Last-Modified") == last_time, r
        assert r.header("Etag") == f"W/{last_tag}", r
        assert (r.header("Connection") or "").lower() != "close", r
        # more backtrack than stored: all of them
        r = c.request("GET", "/poll/p2.b10")
        assert r.status == 200 and r.body == b"H|m1|m2|m3||F", r
        # a channel without messages
        r = c.request("GET", "/poll/empty.b5")
        assert r.status == 304, r
        assert not c.closed_by_server(0.3)


def test_polling_with_if_modified_since_and_etag_chain(httpd):
    """A polling client: each poll sends the previous Last-Modified/Etag and gets exactly
    the messages published since, never one twice."""
    srv = httpd(CONF, servers=2)
    got = []
    ims, tag = "Thu, 01 Jan 1970 00:00:01 GMT", "0"
    sent = 0
    with HttpConn(srv) as c:
        for round_ in range(6):
            for _ in range(round_ % 3):          # 0, 1 or 2 new messages per round
                sent += 1
                publish(srv, "chain", f"m{sent}")
            r = c.request("GET", "/poll/chain", {"If-Modified-Since": ims,
                                                 "If-None-Match": tag})
            if r.status == 304:
                assert r.body == b"", r
                # echoes: Last-Modified only if > 0, Etag as given
                assert r.header("Last-Modified") == ims, r
                assert r.header("Etag") == f"W/{tag.removeprefix('W/')}", r
                continue
            assert r.status == 200, r
            assert r.body.startswith(b"H|") and r.body.endswith(b"|F"), r
            got += [m.decode() for m in r.body[2:-2].split(b"|") if m]
            ims, tag = r.header("Last-Modified"), r.header("Etag")
            assert re.fullmatch(RFC1123, ims) and re.fullmatch(r"W/\d+", tag), r
        r = c.request("GET", "/poll/chain", {"If-Modified-Since": ims, "If-None-Match": tag})
        assert r.status == 304, r
    assert got == [f"m{i}" for i in range(1, sent + 1)], got


def test_polling_304_echoes_ims_and_tag(httpd):
    srv = httpd(CONF, servers=1)
    publish(srv, "echo", "old")
    future = "Sun, 22 Nov 2099 20:00:00 GMT"
    r = http(srv, "GET", "/poll/echo", {"If-Modified-Since": future, "If-None-Match": "W/3"})
    assert r.status == 304, r
    assert r.header("Last-Modified") == future and r.header("Etag") == "W/3", r
    r = http(srv, "GET", "/poll/echo", {"If-Modified-Since": future})
    assert r.status == 304 and r.header("Last-Modified") == future, r
    assert r.header("Etag") is None, r
    r = http(srv, "GET", "/poll/echo", {"If-None-Match": "7"})
    assert r.header("Last-Modified") is None and r.header("Etag") == "W/7", r


def test_polling_last_event_id(httpd):
    srv = httpd(CONF, servers=1)
    for i in (1, 2, 3):
        publish(srv, "le", f"m{i}", {"Event-Id": f"e{i}"})
    r = http(srv, "GET", "/poll/le", {"Last-Event-Id": "e1"})
    assert r.status == 200 and r.body == b"H|m2|m3||F", r
    r = http(srv, "GET", "/poll/le", {"Last-Event-Id": "e3"})
    assert r.status == 304, r
    r = http(srv, "GET", "/poll/le", {"Last-Event-Id": "nope"})
    assert r.status == 304, r
    r = http(srv, "GET", "/pollarg/le?eventid=e2", {"Last-Event-Id": "e1"})
    assert r.status == 200 and r.body == b"m3|", r
    r = http(srv, "GET", "/pollarg/le", {"Last-Event-Id": "e1"})
    assert r.status == 304, r


def test_polling_creates_channel_without_subscribing(httpd):
    srv = httpd(CONF, servers=1)
    r = http(srv, "GET", "/poll/newch")
    assert r.status == 304, r
    i = info(srv, "newch")
    assert i is not None and i["subscribers"] == 0 and i["published_messages"] == 0, i


# ================================================================ X-Nginx-PushStream-Mode
def test_mode_header_on_streaming_location(httpd):
    srv = httpd(CONF, servers=1)
    publish(srv, "md", "first")
    with HttpConn(srv) as c:
        for mode in ("polling", "Polling", "POLLING"):
            r = c.request("GET", "/sub/md", {"X-Nginx-PushStream-Mode": mode})
            assert r.status == 304 and r.body == b"", r
        r = c.request("GET", "/sub/md.b1", {"X-Nginx-PushStream-Mode": "polling"})
        assert r.status == 200 and r.body == b"first|", r
        assert r.header("Etag") is not None, r
        # long-polling with an old message: answered at once, keep-alive
        r = c.request("GET", "/sub/md.b1", {"X-Nginx-PushStream-Mode": "long-polling"})
        assert r.status == 200 and r.body == b"first|", r
        assert (r.header("Connection") or "").lower() != "close", r
        assert not c.closed_by_server(0.3)
    # long-polling that waits
    s = Stream(srv, "/sub/md", {"X-Nginx-PushStream-Mode": "LONG-POLLING"}, read_headers=False)
    with s:
        wait_subscribers(srv, "md", 1)
        s.idle(0.3)
        assert s.status is None, s.resp
        publish(srv, "md", "second")
        assert s.wait_end() == b"second|"
        assert s.status == 200
        assert (s.header("Connection") or "").lower() == "close", s.resp
        s.wait_eof(5)
    # an unknown mode value is ignored: a normal stream
    with Stream(srv, "/sub/md", {"X-Nginx-PushStream-Mode": "bogus"}) as s:
        assert s.status == 200
        wait_subscribers(srv, "md", 1)
        publish(srv, "md", "third")
        s.wait_for(b"third|")
        assert not s.ended


# ================================================================ JSONP
def test_jsonp_on_polling(httpd):
    srv = httpd(CONF, servers=1)
    for i in (1, 2, 3):
        publish(srv, "jp", f"m{i}")
    with HttpConn(srv) as c:
        r = c.request("GET", "/pollj/jp.b2?callback=myfn")
        assert r.status == 200, r
        assert r.header("Content-Type") == "application/javascript", r
        assert r.body == b'myfn([{"id":"2","text":"m2"},{"id":"3","text":"m3"}]);', r
        assert jsonp_items(r.body, "myfn") == [{"id": "2", "text": "m2"},
                                               {"id": "3", "text": "m3"}]
        assert r.header("Etag") is not None and r.header("Last-Modified") is not None, r
        # header/footer templates around the call, callback unescaped
        r = c.request("GET", "/poll/jp.b1?callback=my%5Ffn")
        assert r.body == b"H|my_fn([m3|]);|F", r
        assert r.header("Content-Type") == "application/javascript", r
        # one message
        r = c.request("GET", "/pollj/jp.b1?callback=cb")
        assert r.body == b'cb([{"id":"3","text":"m3"}]);', r
        # no callback: plain
        r = c.request("GET", "/pollj/jp.b1")
        assert r.body == b'{"id":"3","text":"m3"}', r
        assert r.header("Content-Type") != "application/javascript", r
        # nothing new: 304 without body
        r = c.request("GET", "/pollj/jp?callback=cb")
        assert r.status == 304 and r.body == b"", r
        assert not c.closed_by_server(0.3)


def test_jsonp_on_long_polling(httpd):
    srv = httpd(CONF, servers=2)
    publish(srv, "j1", "a1")
    publish(srv, "j2", "b1")
    publish(srv, "j1", "a2")
    publish(srv, "j2", "b2")
    # old messages of several channels, in request order, at once (keep-alive)
    with HttpConn(srv) as c:
        r = c.request("GET", "/lp/j2.b2/j1.b2?callback=cb")
        assert r.status == 200, r
        assert r.header("Content-Type") == "application/javascript", r
        assert [(m["channel"], m["message"]) for m in jsonp_items(r.body, "cb")] == \
            [("j2", "b1"), ("j2", "b2"), ("j1", "a1"), ("j1", "a2")], r
        assert (r.header("Connection") or "").lower() != "close", r
        r = c.request("GET", "/lph/j1.b2?callback=f")
        assert r.body == b"H|f([a1,a2]);|F", r
        assert not c.closed_by_server(0.3)
    # waiting: the next message, as a one-element array
    s = Stream(srv, "/lp/j1?callback=waiter", read_headers=False)
    with s:
        wait_subscribers(srv, "j1", 1)
        publish(srv, "j1", "live")
        body = s.wait_end()
        assert s.status == 200, s.resp
        assert s.header("Content-Type") == "application/javascript", s.resp
        assert body == b'waiter([{"id":"3", "message":"live", "channel":"j1"}]);', body
        assert (s.header("Connection") or "").lower() == "close", s.resp
        s.wait_eof(5)


def test_jsonp_long_poll_timeout_with_body(httpd):
    srv = httpd(make_conf(server="PushStreamTimeoutWithBody on"), servers=1)
    t0 = time.time()
    r = http(srv, "GET", "/lp/to?callback=cb", timeout=15)
    assert 1.5 <= time.time() - t0 < 6, r
    assert r.status == 200, r
    assert r.header("Content-Type") == "application/javascript", r
    assert r.body == b'cb([{"id":"-3", "message":"Timed out", "channel":""}]);', r
    assert r.header("Etag") == "W/0", r
    assert re.fullmatch(RFC1123, r.header("Last-Modified") or ""), r
    r = http(srv, "GET", "/lp/to", timeout=15)
    assert r.status == 200 and r.body == b'{"id":"-3", "message":"Timed out", "channel":""}', r


def test_jsonp_long_poll_timeout_without_body(httpd):
    srv = httpd(CONF, servers=1)
    r = http(srv, "GET", "/lp/to?callback=cb", timeout=15)
    assert r.status == 304, r
    assert r.body == b"" and r.header("Content-Length") in ("0", None), r
    assert r.header("Etag") == "W/0", r


def test_jsonp_long_poll_channel_deleted(httpd):
    srv = httpd(CONF, servers=1)
    s = Stream(srv, "/lp/del?callback=cb", read_headers=False)
    with s:
        wait_subscribers(srv, "del", 1)
        assert http(srv, "DELETE", "/pub?id=del").status == 200
        body = s.wait_end()
        assert s.status == 200, s.resp
        assert s.header("Etag") == "W/0", s.resp
        assert body == b'cb([{"id":"-2", "message":"Channel deleted", "channel":"del"}]);', body


def test_long_poll_keepalive_then_wait_closes(httpd):
    srv = httpd(CONF, servers=1)
    publish(srv, "ka", "one")
    with HttpConn(srv) as c:
        for _ in range(3):
            r = c.request("GET", "/lph/ka.b1")
            assert r.status == 200 and r.body == b"H|one|F", r
            assert (r.header("Connection") or "").lower() != "close", r
        # the same connection now waits
        c.sock.sendall(b"GET /lph/ka HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        wait_subscribers(srv, "ka", 1)
        publish(srv, "ka", "two")
        from pyhttpd.client import read_response
        r = read_response(c.rd)
        assert r.status == 200 and r.body == b"H|two|F", r
        assert (r.header("Connection") or "").lower() == "close", r
        assert c.closed_by_server(5)
