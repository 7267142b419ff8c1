"""Wildcard channels, authorized-channels-only, the events channel, CORS and
padding by user agent (protocol B4, B16, B17, B18)."""
import http.client
import json
import time

CONF = r'''
PushStreamSharedMemorySize 32M
PushStreamEventsChannelId events
PushStreamWildcardChannelPrefix bd_
PushStreamMaxNumberOfWildcardChannels 3
<Location /pub>
    PushStreamPublisher admin
    PushStreamChannelsPath "%{arg:id}"
    PushStreamStoreMessages on
    PushStreamAllowedOrigins "%{arg:domain}"
</Location>
<LocationMatch "^/sub/(?<ch>.+)$">
    PushStreamSubscriber
    PushStreamChannelsPath "%{env:MATCH_CH}"
    PushStreamWildcardChannelMaxQtd 2
    PushStreamHeaderTemplate "0123456789"
    PushStreamPaddingByUserAgent "[T|t]est 1,1024,508:[T|t]est 2,4097,0"
    PushStreamSubscriberConnectionTtl 1s
</LocationMatch>
<LocationMatch "^/auth/(?<ch>.+)$">
    PushStreamSubscriber long-polling
    PushStreamChannelsPath "%{env:MATCH_CH}"
    PushStreamAuthorizedChannelsOnly on
    PushStreamLongpollingConnectionTtl 1s
</LocationMatch>
<LocationMatch "^/ev/(?<ch>.+)$">
    PushStreamSubscriber long-polling
    PushStreamChannelsPath "%{env:MATCH_CH}"
    PushStreamAllowConnectionsToEventsChannel on
    PushStreamMessageTemplate "~text~|~event-type~\n"
</LocationMatch>
'''


def req(srv, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=15)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r, data


def test_cors_on_publisher(httpd):
    srv = httpd(CONF)
    r, _ = req(srv, "OPTIONS", "/pub?id=x&domain=example.com")
    assert r.status == 200
    assert r.getheader("Access-Control-Allow-Origin") == "example.com"
    assert r.getheader("Access-Control-Allow-Methods") == "GET, POST, PUT, DELETE"
    assert r.getheader("Access-Control-Allow-Headers") == \
        "If-Modified-Since,If-None-Match,Etag,Event-Id,Event-Type,Last-Event-Id"
    r, _ = req(srv, "OPTIONS", "/pub?id=x")
    assert r.getheader("Access-Control-Allow-Origin") is None


def test_authorized_channels_only(httpd):
    srv = httpd(CONF)
    r, _ = req(srv, "GET", "/auth/nochan")
    assert r.status == 403
    assert r.getheader("X-Nginx-PushStream-Explain") == "Subscriber could not create channels."
    req(srv, "POST", "/pub?id=ch1", b"m")
    r, body = req(srv, "GET", "/auth/ch1.b1")
    assert r.status == 200 and body == b"m"
    r, _ = req(srv, "GET", "/auth/ch1/bd_wild", headers={})   # wildcard exempt
    assert r.status in (200, 304)


def test_wildcard_limits(httpd):
    srv = httpd(CONF)
    for path in ("/sub/bd_1", "/sub/ch1/bd_1/bd_2/bd_3"):
        r, _ = req(srv, "GET", path)
        assert r.status == 403
        assert r.getheader("X-Nginx-PushStream-Explain") == "Subscribed too much wildcard channels."
    r, _ = req(srv, "GET", "/sub/ch1/bd_1")
    assert r.status == 200


def test_events_channel(httpd):
    srv = httpd(CONF)
    r, _ = req(srv, "POST", "/pub?id=events", b"x")
    assert r.status == 403
    assert r.getheader("X-Nginx-PushStream-Explain") == \
        "Only internal routines can change events channel."
    r, _ = req(srv, "GET", "/sub/events")
    assert r.getheader("X-Nginx-PushStream-Explain") == \
        "Subscription to events channel is not allowed."
    req(srv, "POST", "/pub?id=evch", b"m")
    req(srv, "DELETE", "/pub?id=evch")
    r, body = req(srv, "GET", "/ev/events.b10")
    assert body.split(b"\n")[:2] == [
        b'{"type": "channel_created", "channel": "evch"}|channel_created',
        b'{"type": "channel_destroyed", "channel": "evch"}|channel_destroyed']
    r, body = req(srv, "GET", "/pub?id=events")
    assert r.status == 200


def test_padding_by_user_agent(httpd):
    srv = httpd(CONF)
    for ua, total in (("Test 1", 1110), ("Test 2", 4107), ("other", 10)):
        r, body = req(srv, "GET", "/sub/padch", headers={"User-Agent": ua})
        assert len(body) == total, ua
