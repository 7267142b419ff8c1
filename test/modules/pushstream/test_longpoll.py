"""Long-polling subscribers (protocol B5, B8, B11, B14): answered at once when
messages match, else held until the first message, the channel's deletion or
the timeout (304, or 200 "Timed out" with PushStreamTimeoutWithBody on)."""
import http.client
import re
import time
import urllib.parse

from pyhttpd.client import (Stream, assert_no_cache, http_date, publish, request, request_on,
                            wait_subscribers)
from pyhttpd.conf import conf, sub_location

EPOCH = "Thu, 01 Jan 1970 00:00:00 GMT"
TEMPLATE = "~id~:~channel~:~text~:~tag~:~time~|"
LP = ['PushStreamHeaderTemplate "H|"', f'PushStreamMessageTemplate "{TEMPLATE}"',
      'PushStreamFooterTemplate "|F"', "PushStreamLongpollingConnectionTtl 2s"]


def make_conf(server=""):
    return conf(server=server, lp=LP, poll=f'PushStreamMessageTemplate "{TEMPLATE}\\n"',
                extra=sub_location("lpa", "long-polling",
                                   ['PushStreamMessageTemplate "~text~|"',
                                    'PushStreamLastReceivedMessageTime "%{arg:time}"',
                                    'PushStreamLastReceivedMessageTag "%{arg:tag}"',
                                    "PushStreamLongpollingConnectionTtl 2s"])
                + sub_location("lpttl", "long-polling", "PushStreamSubscriberConnectionTtl 2s")
                + sub_location("lpj", "long-polling", "PushStreamLongpollingConnectionTtl 2s"))


def stored(srv, ch):
    """[(id, channel, text, tag, time)] of the stored messages of ch."""
    r = request(srv, "GET", f"/poll/{ch}.b100")
    assert r.status == 200, r
    return [tuple(line.split(":", 4)) for line in r.body.decode().split("|\n")[:-1]]


def fmt(m):
    return ":".join(m).encode() + b"|"


def http_time(value):
    return time.mktime(time.strptime(value, "%a, %d %b %Y %H:%M:%S GMT")) - time.timezone


def waiting_long_poll(srv, path, ch, n=1, headers=None):
    """A long-poll sent on a raw socket, returned once it is counted as subscriber."""
    s = Stream(srv, path, headers=headers)
    wait_subscribers(srv, ch, n)
    return s


def test_answered_at_once_when_messages_match(httpd):
    srv = httpd(make_conf())
    publish(srv, "now", b"m1")
    publish(srv, "now", b"m2")
    m1, m2 = stored(srv, "now")
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    t0 = time.time()
    r = request_on(c, "GET", "/lp/now.b1")
    assert time.time() - t0 < 1.5
    assert r.status == 200, r
    assert r.body == b"H|" + fmt(m2) + b"|F"
    assert r.header("Last-Modified") == m2[4]
    assert r.header("Etag") == f"W/{m2[3]}"
    assert_no_cache(r)
    assert (r.header("Connection") or "").lower() != "close", r
    # all matching messages of all channels in one answer
    publish(srv, "now2", b"x1")
    r = request_on(c, "GET", "/lp/now.b2/now2.b1")
    x1 = stored(srv, "now2")[0]
    assert r.status == 200 and r.body == b"H|" + fmt(m1) + fmt(m2) + fmt(x1) + b"|F", r
    # many long-polls in a row on the same keep-alive connection
    for i in range(30):
        r = request_on(c, "GET", "/lp/now.b1")
        assert r.status == 200 and r.body == b"H|" + fmt(m2) + b"|F", (i, r)
    c.close()


def test_waits_for_the_first_message(httpd):
    srv = httpd(make_conf())
    s = waiting_long_poll(srv, "/lp/w", "w")
    publish(srv, "w", b"hello")
    publish(srv, "w", b"second")
    s.wait_complete()
    first, second = stored(srv, "w")
    r = s.p.response()
    assert r.status == 200, r
    assert r.body == b"H|" + fmt(first) + b"|F"
    assert r.header("Etag") == f"W/{first[3]}"
    assert r.header("Last-Modified") == first[4]
    assert_no_cache(r)
    # a subscriber that waited is answered with Connection: close (httpd cannot keep
    # a suspended connection alive)
    assert (r.header("Connection") or "").lower() == "close", r
    s.close()
    # the client continues with Last-Modified / Etag: gets what came after
    headers = {"If-Modified-Since": r.header("Last-Modified"), "If-None-Match": r.header("Etag")}
    r = request(srv, "GET", "/lp/w", headers=headers)
    assert r.status == 200 and r.body == b"H|" + fmt(second) + b"|F", r
    assert r.header("Etag") == f"W/{second[3]}"
    # and from there on it waits again
    headers = {"If-Modified-Since": r.header("Last-Modified"), "If-None-Match": r.header("Etag")}
    s = waiting_long_poll(srv, "/lp/w", "w", headers=headers)
    publish(srv, "w", b"third")
    s.wait_complete()
    assert s.p.status == 200 and s.body == b"H|" + fmt(stored(srv, "w")[2]) + b"|F"
    s.close()


def test_arguments_replace_if_modified_since(httpd):
    srv = httpd(make_conf())
    publish(srv, "arg", b"a1")
    r = request(srv, "GET", "/lpa/arg.b1")
    assert r.status == 200 and r.body == b"a1|"
    lm, etag = r.header("Last-Modified"), r.header("Etag")
    publish(srv, "arg", b"a2")
    q = urllib.parse.urlencode({"time": lm, "tag": etag}, quote_via=urllib.parse.quote)
    r = request(srv, "GET", f"/lpa/arg?{q}")
    assert r.status == 200 and r.body == b"a2|", r
    # the headers are ignored there: without the arguments it waits (then 304)
    t0 = time.time()
    r = request(srv, "GET", "/lpa/arg",
                headers={"If-Modified-Since": http_date(0), "If-None-Match": "0"})
    assert r.status == 304 and time.time() - t0 >= 1.5, r


def test_several_channels(httpd):
    srv = httpd(make_conf())
    s = Stream(srv, "/lp/la/lb")
    wait_subscribers(srv, "la", 1)
    wait_subscribers(srv, "lb", 1)
    publish(srv, "lb", b"from b")
    s.wait_complete()
    assert s.p.status == 200 and s.body == b"H|" + fmt(stored(srv, "lb")[0]) + b"|F"
    s.close()
    wait_subscribers(srv, "la", 0)


def test_timeout_is_304(httpd):
    srv = httpd(make_conf())
    t0 = time.time()
    s = waiting_long_poll(srv, "/lp/quiet", "quiet")
    s.wait_complete(timeout=6)
    t1 = time.time()
    r = s.p.response()
    assert r.status == 304, r
    assert 1.5 <= t1 - t0 <= 4.5, t1 - t0
    assert r.header("Etag") == "W/0", r
    assert r.body == b""                      # no header template either
    assert int(t0) - 1 <= http_time(r.header("Last-Modified")) <= t1 + 1, r
    assert_no_cache(r)
    s.close()
    wait_subscribers(srv, "quiet", 0)
    # PushStreamLongpollingConnectionTtl defaults to PushStreamSubscriberConnectionTtl
    t0 = time.time()
    r2 = request(srv, "GET", "/lpttl/quiet2")
    assert r2.status == 304 and r2.header("Etag") == "W/0", r2
    assert 1.5 <= time.time() - t0 <= 4.5
    # nginx [verified]: the timeout 304 carries Content-Length: 0
    assert r.header("Content-Length") == "0", r


def test_timeout_with_body(httpd):
    srv = httpd(make_conf(server="PushStreamTimeoutWithBody on"))
    t0 = time.time()
    r = request(srv, "GET", "/lp/quiet")
    t1 = time.time()
    assert r.status == 200, r
    assert 1.5 <= t1 - t0 <= 4.5, t1 - t0
    assert r.body == f"H|-3::Timed out:0:{EPOCH}||F".encode()
    assert r.header("Etag") == "W/0", r
    assert int(t0) - 1 <= http_time(r.header("Last-Modified")) <= t1 + 1, r
    assert_no_cache(r)


def test_channel_deleted_while_waiting(httpd):
    srv = httpd(make_conf(server='PushStreamChannelDeletedMessageText "adieu"'))
    publish(srv, "del", b"x")
    s = waiting_long_poll(srv, "/lp/del", "del")
    t0 = time.time()
    assert request(srv, "DELETE", "/pub?id=del").status == 200
    s.wait_complete()
    r = s.p.response()
    assert r.status == 200, r
    assert r.body == f"H|-2:del:adieu:0:{EPOCH}||F".encode()
    assert r.header("Etag") == "W/0", r
    assert int(t0) - 1 <= http_time(r.header("Last-Modified")) <= time.time() + 1, r
    s.close()


def test_jsonp(httpd):
    srv = httpd(make_conf(server="PushStreamTimeoutWithBody on"))
    publish(srv, "js", b"one")
    publish(srv, "js", b'"two"')
    r = request(srv, "GET", "/lpj/js.b2?callback=my%5Ffn")
    assert r.status == 200, r
    assert r.header("Content-Type") == "application/javascript", r
    assert r.body == b'my_fn([one,"two"]);', r
    s = waiting_long_poll(srv, "/lpj/js?callback=cb", "js")
    publish(srv, "js", b"three")
    s.wait_complete()
    assert s.p.status == 200 and s.body == b"cb([three]);"
    s.close()


def test_disconnected_long_poll_leaves_the_channel(httpd):
    srv = httpd(make_conf())
    polls = [Stream(srv, "/lpj/bye") for _ in range(5)]
    wait_subscribers(srv, "bye", 5)
    for p in polls[:3]:
        p.close()
    wait_subscribers(srv, "bye", 2, timeout=2)
    publish(srv, "bye", b"rest")
    for p in polls[3:]:
        p.wait_complete()
        assert p.p.status == 200 and p.body == b"rest"
        p.close()
    wait_subscribers(srv, "bye", 0, timeout=2)


def test_etag_tags_follow_the_zone(httpd):
    """Tags increase within one second across channels; an Etag names the message's tag."""
    srv = httpd(make_conf())
    publish(srv, "t1", b"a")
    publish(srv, "t2", b"b")
    (a,), (b,) = stored(srv, "t1"), stored(srv, "t2")
    if a[4] == b[4]:
        assert int(b[3]) == int(a[3]) + 1
    else:
        assert b[3] == "1"
    r = request(srv, "GET", "/lp/t2.b1")
    assert r.header("Etag") == f"W/{b[3]}" and re.fullmatch(r"W/\d+", r.header("Etag"))
