"""The one publish path (ps_pub_store) behind the publisher location and WebSocket
publishing: a message is on all of its channels or on none when the shared segment has
room for only some of its copies (a WebSocket-published message used to stay on the
first channels), and a channel a WebSocket publish creates is a wildcard channel when its
id says so (the WebSocket path used to create every channel as an ordinary one)."""
import json
import os
import time

from pyhttpd import conf as psconf
from pyhttpd.client import http, info, publish, wait_for, wait_subscribers
from pyhttpd.ws import Ws

SLOW = float(os.environ.get("PS_SLOW") or 1)
EXPLAIN = "X-Nginx-PushStream-Explain"

# 128K (the least allowed), nothing expires during the test; /pubns keeps nothing:
# its message goes to the trash at once, and a full segment reclaims it after 2 s.
CONF = psconf.conf(
    shm="128K", server="PushStreamMessageTtl 60s\nPushStreamChannelInactivityTime 60s\n"
                       'PushStreamWildcardChannelPrefix "b_"\n'
                       "PushStreamMaxNumberOfWildcardChannels 10",
    extra=psconf.location("/pubns", "PushStreamPublisher\n"
                                    'PushStreamChannelsPath "%{arg:id}"\n'
                                    "PushStreamStoreMessages off")
    + psconf.sub_location("ws", "websocket", "PushStreamWebsocketAllowPublish on\n"
                                             "PushStreamStoreMessages on\n"
                                             "PushStreamWildcardChannelMaxQtd 2")
    + psconf.location("/channels-stats", "PushStreamChannelsStatistics\n"
                                        'PushStreamChannelsPath "%{arg:id}"'))

M = 3000          # the probe's size; every channel id has 2 bytes, so copies are equal


def _fill(srv, size):
    """Publish stored messages of `size` bytes to channel `fl` until the segment is full."""
    for i in range(2000):
        r = http(srv, "POST", "/pub?id=fl", body=b"f" * size)
        if r.status == 500:
            assert r.header(EXPLAIN) == "Shared memory is full.", r
            return i
        assert r.status == 200, r
    raise AssertionError("the segment never filled")


def _room_for_one_copy(srv):
    """Leave the segment with room for exactly one message of M bytes: a message of M
    bytes goes to the trash (no store), the rest is filled with stored messages (big,
    then of M bytes) before a reclaim may free it (it is younger than 2 s), then it
    ages past the reclaim age: the next publish that finds the segment full frees it."""
    time.sleep(1.02 - time.time() % 1)      # the trashed message is born early in a second
    t0 = time.time()
    r = http(srv, "POST", "/pubns?id=sp", body=b"s" * M)
    assert r.status == 200, r
    _fill(srv, 20000)
    _fill(srv, M)
    assert time.time() - t0 < 1.9, "filling took longer than the reclaim age"
    time.sleep(max(0, t0 + 3.1 - time.time()))


def _stored(srv, ch):
    i = info(srv, ch)
    return (i["published_messages"], i["stored_messages"]) if i else (0, 0)


def test_websocket_publish_is_all_or_nothing_on_a_full_segment(httpd):
    srv = httpd(CONF, servers=1)
    with Ws(srv, "/ws/wa/wb") as ws:
        wait_subscribers(srv, "wa", 1, timeout=10 * SLOW)
        wait_subscribers(srv, "wb", 1, timeout=10 * SLOW)
        _room_for_one_copy(srv)
        ws.send_text("p" * M)
        # room for one copy, two channels: neither gets it, the sender gets nothing
        ws.nothing_for(0.5 * SLOW)
        assert _stored(srv, "wa") == _stored(srv, "wb") == (0, 0)
        # the error log names it
        assert "PS0022" in srv.error_log() and "Shared memory is full." in srv.error_log()
        # the connection still works: a small message fits on both channels
        ws.send_text("ok")
        assert ws.read_text() == b"ok"
        assert ws.read_text() == b"ok"
        assert _stored(srv, "wa") == _stored(srv, "wb") == (1, 1)


def test_publisher_location_is_all_or_nothing_on_a_full_segment(httpd):
    srv = httpd(CONF, servers=1)
    publish(srv, "pa", b"x")
    publish(srv, "pb", b"x")
    _room_for_one_copy(srv)
    r = http(srv, "POST", "/pub?id=pa/pb", body=b"p" * M)
    assert (r.status, r.header(EXPLAIN)) == (500, "Shared memory is full."), r
    assert _stored(srv, "pa") == _stored(srv, "pb") == (1, 1)
    # the one copy there is room for still goes to a single channel
    r = http(srv, "POST", "/pub?id=pa", body=b"p" * M)
    assert r.status == 200, r
    assert _stored(srv, "pa") == (2, 2) and _stored(srv, "pb") == (1, 1)


def _summary(srv):
    r = http(srv, "GET", "/channels-stats", {"Accept": "application/json"})
    assert r.status == 200, r
    return json.loads(r.body)


def test_websocket_publish_creates_a_wildcard_channel_as_one(httpd):
    """A DELETE on a full segment has no room for its notice: the WebSocket subscriber of
    the deleted channel is not told, and its next text message creates the channel anew."""
    srv = httpd(CONF, servers=1)
    with Ws(srv, "/ws/nn/b_x") as ws:    # wildcard channels only with a normal one
        wait_subscribers(srv, "b_x", 1, timeout=10 * SLOW)
        assert _summary(srv)["wildcard_channels"] == 1
        time.sleep(1.02 - time.time() % 1)
        t0 = time.time()
        # fill with messages kept for delivery only: reclaimable once 2 s old
        for size in (20000, 1000, 1):
            for _ in range(2000):
                r = http(srv, "POST", "/pubns?id=fl", body=b"f" * size)
                if r.status == 500:
                    break
                assert r.status == 200, r
        r = http(srv, "DELETE", "/pub?id=b_x")
        assert r.status == 200, r
        assert time.time() - t0 < 1.9, "filling took longer than the reclaim age"
        before = _summary(srv)
        assert before["wildcard_channels"] == 0, before
        time.sleep(max(0, t0 + 3.1 - time.time()))
        ws.send_text("again")
        assert ws.read_text() == b"again"            # from nn (the old b_x is not told)
        s = _summary(srv)
        assert s["channels"] == before["channels"] + 1, s
        assert s["wildcard_channels"] == 1, s
        assert _stored(srv, "b_x") == _stored(srv, "nn") == (1, 1)
