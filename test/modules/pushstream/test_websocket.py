"""WebSocket subscribers (protocol B10, B4, B5, B11; RFC 6455): the handshake and its
400/405 answers, refusals after the 101 as 1008 close frames, server frames (7/16/64-bit
lengths, header/footer templates, pings, TTL, channel delete, graceful restart), client
frames (masking, fragmentation, ping/pong, close echo, 1002/1003/1007/1009), publishing
over the socket, 2 000 idle subscribers without a thread each, and the `websockets`
library as a strict client."""
import asyncio
import struct
import time
import urllib.request

import pytest
import websockets

from pyhttpd.client import (CACHE_CONTROL, EXPIRES, Subscriber as Stream, http, info, publish,
                            wait_subscribers)
from pyhttpd.conf import location, pub_location, sub_location
from pyhttpd.ws import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, Ws, WsSwarm,
                        accept_of, close_frame_bytes, frame, server_frame)


def ws_loc(prefix, *lines):
    return sub_location(prefix, "websocket", list(lines))


SERVER = '''
PushStreamSharedMemorySize 32M
PushStreamMaxChannelIdLength 40
'''

LOCATIONS = pub_location() + sub_location("sub", "", 'PushStreamMessageTemplate "~text~|"') \
    + sub_location("lp", "long-polling") \
    + location("/wsq", 'PushStreamSubscriber websocket\nPushStreamChannelsPath "%{arg:id}"') \
    + ws_loc("ws", "PushStreamWebsocketAllowPublish on", "PushStreamStoreMessages on") \
    + ws_loc("wsh", 'PushStreamHeaderTemplate "HEADER"', 'PushStreamFooterTemplate "FOOTER"',
             'PushStreamMessageTemplate "<~id~:~channel~:~text~>"') \
    + ws_loc("wsping", "PushStreamPingMessageInterval 1s") \
    + ws_loc("wsttl", "PushStreamSubscriberConnectionTtl 1s", 'PushStreamFooterTemplate "FOOTER"') \
    + ws_loc("wsttl0", "PushStreamSubscriberConnectionTtl 1s") \
    + ws_loc("wsro") \
    + ws_loc("wsns", "PushStreamWebsocketAllowPublish on", "PushStreamStoreMessages off") \
    + ws_loc("wssmall", "PushStreamWebsocketAllowPublish on", "PushStreamWebsocketMaxFrameSize 1k") \
    + ws_loc("wsauth", "PushStreamAuthorizedChannelsOnly on") \
    + ws_loc("wsev", 'PushStreamLastEventId "%{arg:eventid}"')

CONF = SERVER + LOCATIONS

ACCEPT_HEADERS = {"Expires", "Cache-Control", "Upgrade", "Connection", "Sec-WebSocket-Accept"}


def refusal(status, explain):
    """The exact close frame of a refusal after the 101."""
    return close_frame_bytes(1008, f'{{"http_status": {status}, "explain":"{explain}"}}'.encode())


def run(coro, timeout=40):
    return asyncio.run(asyncio.wait_for(coro, timeout))


# ================================================================ handshake
@pytest.mark.parametrize("version", ["13", "8"])
def test_handshake_101_exact(httpd, version):
    srv = httpd(CONF, servers=1)
    with Ws(srv, "/ws/hs", key="/mQoZf6pRiv8+6o72GncLQ==", version=version) as ws:
        r = ws.resp
        assert r.status_line == "HTTP/1.1 101 Switching Protocols", r
        assert set(r.names()) == ACCEPT_HEADERS, r
        assert len(r.names()) == 5, r
        assert r.header("Sec-WebSocket-Accept") == "RaIOIcQ6CBoc74B9EKdH0avYZnw=", r
        assert r.header("Upgrade") == "WebSocket", r
        assert r.header("Connection") == "Upgrade", r
        assert r.header("Expires") == EXPIRES, r
        assert r.header("Cache-Control") == CACHE_CONTROL, r
        wait_subscribers(srv, "hs", 1)
        publish(srv, "hs", "hello")
        ws.expect_bytes(b"\x81\x05hello")


@pytest.mark.parametrize("missing", ["Upgrade", "Connection", "Sec-WebSocket-Key",
                                     "Sec-WebSocket-Version"])
def test_handshake_missing_header_400(httpd, missing):
    srv = httpd(CONF, servers=1)
    with Ws(srv, "/ws/hs", omit=(missing,), expect101=False) as ws:
        r = ws.resp
        assert r.status == 400, r
        assert r.header("X-Nginx-PushStream-Explain") == (
            "Don't have at least one of the mandatory headers: Connection, Upgrade, "
            "Sec-WebSocket-Key and Sec-WebSocket-Version"), r
        assert r.header("Content-Length") == "0", r
        assert r.header("Expires") == EXPIRES and r.header("Cache-Control") == CACHE_CONTROL, r
        assert r.header("Sec-WebSocket-Accept") is None, r
    assert info(srv, "hs") is None


@pytest.mark.parametrize("version", ["7", "12", "14", "abc", "13, 8"])
def test_handshake_unsupported_version_400(httpd, version):
    srv = httpd(CONF, servers=1)
    with Ws(srv, "/ws/hs", version=version, expect101=False) as ws:
        r = ws.resp
        assert r.status == 400, r
        assert r.header("Sec-WebSocket-Version") == "8, 13", r
        assert r.header("X-Nginx-PushStream-Explain") == \
            "Version not supported. Supported versions: 8, 13", r
        assert r.header("Content-Length") == "0", r
        assert r.header("Expires") == EXPIRES, r
    assert info(srv, "hs") is None


@pytest.mark.parametrize("method", ["POST", "HEAD", "OPTIONS", "DELETE"])
def test_handshake_non_get_405(httpd, method):
    srv = httpd(CONF, servers=1)
    with Ws(srv, "/ws/hs", method=method, expect101=False) as ws:
        r = ws.resp
        assert r.status == 405, r
        assert r.header("Allow") == "GET", r
        assert r.header("Expires") is None, r      # B1: the websocket 405 has none


def test_handshake_values_not_checked(httpd):
    """Only presence of Upgrade/Connection is required (B10); the key is used verbatim."""
    srv = httpd(CONF, servers=1)
    with Ws(srv, "/ws/hs", key="some key", extra={"Upgrade": "x", "Connection": "y"}) as ws:
        assert ws.resp.header("Sec-WebSocket-Accept") == accept_of("some key")


# ================================================================ refusals after the 101
def test_refusals_after_101_are_1008_close_frames(httpd):
    srv = httpd(CONF, servers=1)
    cases = [
        ("/ws/ALL", refusal(403, "Channel id not authorized for this method.")),
        ("/ws/ok/ALL", refusal(403, "Channel id not authorized for this method.")),
        ("/ws/ch*", refusal(403, "Channel id not authorized for this method.")),
        ("/ws/" + "x" * 41, refusal(400, "Channel id is too large.")),
        ("/wsq", refusal(400, "No channel id provided.")),
        ("/wsauth/nochan", refusal(403, "Subscriber could not create channels.")),
    ]
    for path, expected in cases:
        with Ws(srv, path) as ws:
            assert ws.resp.status_line == "HTTP/1.1 101 Switching Protocols", ws.resp
            ws.expect_close(1008, exact=expected)
    # the spec's literal bytes
    assert refusal(403, "Subscriber could not create channels.") == \
        b"\x88I\x03\xF0{\"http_status\": 403, \"explain\":\"Subscriber could not create channels.\"}"
    assert info(srv, "ok") is None or info(srv, "ok")["subscribers"] == 0
    # a channel id of exactly the maximum length is fine
    with Ws(srv, "/ws/" + "y" * 40) as ws:
        wait_subscribers(srv, "y" * 40, 1)
        publish(srv, "y" * 40, "fits")
        assert ws.read_text() == b"fits"


def test_refusals_limits_and_events_channel(httpd):
    conf = SERVER + '''
PushStreamMaxSubscribersPerChannel 1
PushStreamEventsChannelId events
PushStreamWildcardChannelPrefix bd_
PushStreamMaxNumberOfWildcardChannels 2
''' + LOCATIONS
    srv = httpd(conf, servers=1)
    with Ws(srv, "/ws/lim") as first:
        wait_subscribers(srv, "lim", 1)
        with Ws(srv, "/ws/lim") as second:
            second.expect_close(1008, exact=refusal(
                403, "Subscribers limit per channel has been exceeded."))
        publish(srv, "lim", "still here")
        assert first.read_text() == b"still here"
    with Ws(srv, "/ws/events") as ws:
        ws.expect_close(1008, exact=refusal(403, "Subscription to events channel is not allowed."))
    for path in ("/ws/bd_1", "/ws/ch/bd_1/bd_2/bd_3"):
        with Ws(srv, path) as ws:
            ws.expect_close(1008, exact=refusal(403, "Subscribed too much wildcard channels."))


# ================================================================ server frames
def test_frame_lengths_7_16_64_bit(httpd):
    srv = httpd(CONF, servers=1)
    with Ws(srv, "/ws/len") as ws:
        wait_subscribers(srv, "len", 1)
        for n, head in ((1, b"\x81\x01"), (125, b"\x81\x7d"), (126, b"\x81\x7e\x00\x7e"),
                        (65535, b"\x81\x7e\xff\xff"),
                        (65536, b"\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
                        (200000, b"\x81\x7f" + struct.pack("!Q", 200000))):
            body = bytes((0x61 + i % 26) for i in range(n))
            publish(srv, "len", body)
            ws.expect_bytes(head + body, timeout=15)


def test_header_message_footer_templates(httpd):
    srv = httpd(CONF, servers=1)
    with Ws(srv, "/wsh/tpl") as ws:
        ws.expect_bytes(b"\x81\x06HEADER")
        wait_subscribers(srv, "tpl", 1)
        publish(srv, "tpl", "one")
        publish(srv, "tpl", 'two "quoted"\nline')
        ws.expect_bytes(server_frame(OP_TEXT, b"<1:tpl:one>"))
        ws.expect_bytes(server_frame(OP_TEXT, b'<2:tpl:two "quoted"\nline>'))
    # no header template: the first frame is the first message
    with Ws(srv, "/ws/tpl2") as ws:
        wait_subscribers(srv, "tpl2", 1)
        publish(srv, "tpl2", "first")
        ws.expect_bytes(b"\x81\x05first")


def test_old_messages_after_101_backtrack_and_last_event_id(httpd):
    srv = httpd(CONF, servers=1)
    for i in range(1, 4):
        publish(srv, "old", f"m{i}", headers={"Event-Id": f"e{i}"})
    with Ws(srv, "/wsh/old.b2") as ws:
        ws.expect_bytes(b"\x81\x06HEADER")
        assert ws.read_text() == b"<2:old:m2>"
        assert ws.read_text() == b"<3:old:m3>"
        ws.nothing_for(0.5)
    with Ws(srv, "/ws/old", extra={"Last-Event-Id": "e1"}) as ws:
        assert ws.read_text() == b"m2"
        assert ws.read_text() == b"m3"
        ws.nothing_for(0.5)
    # PushStreamLastEventId replaces the header
    with Ws(srv, "/wsev/old?eventid=e2", extra={"Last-Event-Id": "e1"}) as ws:
        assert ws.read_text() == b"m3"
        ws.nothing_for(0.5)


def test_server_ping_frames(httpd):
    srv = httpd(CONF, servers=1)
    with Ws(srv, "/wsping/pg") as ws:
        t0 = time.time()
        for _ in range(2):
            f = ws.read_frame(timeout=5)
            assert f.raw == b"\x89\x00", f
        assert time.time() - t0 >= 1.5
        publish(srv, "pg", "msg")
        assert ws.read_data_frame(5).raw == b"\x81\x03msg"


def test_ttl_footer_then_close(httpd):
    srv = httpd(CONF, servers=1)
    with Ws(srv, "/wsttl/ttlch") as ws:
        t0 = time.time()
        ws.expect_bytes(b"\x81\x06FOOTER", timeout=5)
        ws.expect_close(exact=b"\x88\x00")
        assert 0.8 <= time.time() - t0 < 4
    with Ws(srv, "/wsttl0/ttlch") as ws:
        ws.expect_close(exact=b"\x88\x00", timeout=5)     # empty footer: no text frame
    wait_subscribers(srv, "ttlch", 0)


def test_channel_deleted(httpd):
    srv = httpd(CONF, servers=1)
    with Ws(srv, "/wsh/only") as only, Ws(srv, "/wsh/d1/d2") as both:
        only.expect_bytes(b"\x81\x06HEADER")
        both.expect_bytes(b"\x81\x06HEADER")
        wait_subscribers(srv, "only", 1)
        wait_subscribers(srv, "d1", 1)
        r = http(srv, "DELETE", "/pub?id=only")
        assert r.status == 200, r
        only.expect_bytes(server_frame(OP_TEXT, b"<-2:only:Channel deleted>"))
        only.expect_bytes(b"\x81\x06FOOTER")
        only.expect_close(exact=b"\x88\x00")
        # several channels: the message, and the connection stays for the others
        assert http(srv, "DELETE", "/pub?id=d1").status == 200
        assert both.read_text() == b"<-2:d1:Channel deleted>"
        publish(srv, "d2", "alive")
        assert both.read_text() == b"<1:d2:alive>"


def test_graceful_restart_footer_and_1001(httpd):
    srv = httpd(CONF, servers=1)
    with Ws(srv, "/wsh/gr") as ws:
        ws.expect_bytes(b"\x81\x06HEADER")
        wait_subscribers(srv, "gr", 1)
        srv.graceful()
        ws.expect_bytes(b"\x81\x06FOOTER", timeout=15)
        ws.expect_close(exact=b"\x88\x02\x03\xe9", timeout=10)


# ================================================================ client frames
def test_client_ping_pong_echoes_payload(httpd):
    srv = httpd(CONF, servers=1)
    with Ws(srv, "/ws/pp") as ws:
        ws.send_frame(OP_PING, b"")
        assert ws.read_frame().raw == b"\x8a\x00"
        ws.send_frame(OP_PING, b"ping-data")
        assert ws.read_frame().raw == b"\x8a\x09ping-data"
        ws.send_frame(OP_PING, b"x" * 125)
        assert ws.read_frame().raw == b"\x8a\x7d" + b"x" * 125
        # an unsolicited pong is ignored
        ws.send_frame(OP_PONG, b"whatever")
        ws.nothing_for(0.3)
        wait_subscribers(srv, "pp", 1)
        publish(srv, "pp", "after")
        assert ws.read_text() == b"after"


@pytest.mark.parametrize("code", [1000, 1001, 1003, 1011, 3000, 4001, 4999])
def test_client_close_code_is_echoed(httpd, code):
    srv = httpd(CONF, servers=1)
    with Ws(srv, "/ws/cl") as ws:
        wait_subscribers(srv, "cl", 1)
        ws.send_frame(OP_CLOSE, struct.pack("!H", code) + b"bye")
        f = ws.expect_close(code)
        assert f.raw[:4] == b"\x88" + bytes([len(f.payload)]) + struct.pack("!H", code), f
    wait_subscribers(srv, "cl", 0)


def test_client_empty_close(httpd):
    srv = httpd(CONF, servers=1)
    with Ws(srv, "/ws/cl") as ws:
        wait_subscribers(srv, "cl", 1)
        ws.send_frame(OP_CLOSE, b"")
        ws.expect_close(exact=b"\x88\x00")
    wait_subscribers(srv, "cl", 0)


def test_client_disconnect_without_close(httpd):
    srv = httpd(CONF, servers=1)
    ws = Ws(srv, "/ws/gone")
    wait_subscribers(srv, "gone", 1)
    ws.close()
    wait_subscribers(srv, "gone", 0)


PROTOCOL_ERRORS = {
    "unmasked text": frame(OP_TEXT, b"hello", mask=False),
    "unmasked ping": frame(OP_PING, b"", mask=False),
    "rsv1": frame(OP_TEXT, b"hello", rsv=4),
    "rsv2": frame(OP_TEXT, b"hello", rsv=2),
    "rsv3 on ping": frame(OP_PING, b"", rsv=1),
    "opcode 3": frame(0x3, b"x"),
    "opcode 7": frame(0x7, b""),
    "opcode 0xB": frame(0xB, b"x"),
    "opcode 0xF": frame(0xF, b""),
    "fragmented ping": frame(OP_PING, b"p", fin=False),
    "ping over 125": frame(OP_PING, b"p" * 126),
    "close over 125": frame(OP_CLOSE, b"\x03\xe8" + b"r" * 124),
    "continuation first": frame(OP_CONT, b"lo"),
    "text inside fragments": frame(OP_TEXT, b"hel", fin=False) + frame(OP_TEXT, b"lo"),
    "close 1 byte": frame(OP_CLOSE, b"\x03"),
    "close code 999": frame(OP_CLOSE, struct.pack("!H", 999)),
    "close code 1004": frame(OP_CLOSE, struct.pack("!H", 1004)),
    "close code 1005": frame(OP_CLOSE, struct.pack("!H", 1005)),
    "close code 1006": frame(OP_CLOSE, struct.pack("!H", 1006)),
    "close code 1015": frame(OP_CLOSE, struct.pack("!H", 1015)),
    "close code 5000": frame(OP_CLOSE, struct.pack("!H", 5000)),
    "64-bit length top bit": bytes([0x81, 0xFF]) + struct.pack("!Q", 1 << 63) + b"\0" * 4,
}


@pytest.mark.parametrize("case", list(PROTOCOL_ERRORS))
def test_protocol_errors_close_1002(httpd, case):
    srv = httpd(CONF, servers=1)
    with Ws(srv, "/ws/perr") as ws:
        wait_subscribers(srv, "perr", 1)
        ws.send(PROTOCOL_ERRORS[case])
        ws.expect_close(1002, exact=b"\x88\x02\x03\xea")
    wait_subscribers(srv, "perr", 0)
    assert info(srv, "perr")["published_messages"] == 0


@pytest.mark.parametrize("case", ["single", "fragmented", "after text"])
def test_binary_frames_close_1003(httpd, case):
    srv = httpd(CONF, servers=1)
    data = {"single": frame(OP_BINARY, b"\x00\x01\x02"),
            "fragmented": frame(OP_BINARY, b"\x00", fin=False) + frame(OP_CONT, b"\x01"),
            "after text": frame(OP_TEXT, b"ok") + frame(OP_BINARY, b"")}[case]
    with Ws(srv, "/ws/bin") as ws:
        wait_subscribers(srv, "bin", 1)
        ws.send(data)
        if case == "after text":
            # "ok" is published; its copy to the sender may or may not beat the close
            f = ws.read_frame()
            if f.opcode == OP_TEXT:
                assert f.raw == b"\x81\x02ok", f
            else:
                ws.rd.buf = f.raw + ws.rd.buf
        ws.expect_close(1003, exact=b"\x88\x02\x03\xeb")
    wait_subscribers(srv, "bin", 0)
    assert info(srv, "bin")["published_messages"] == (1 if case == "after text" else 0)


INVALID_UTF8 = {
    "ff": b"\xff",
    "bad continuation": b"\xc3\x28",
    "overlong slash": b"\xc0\xaf",
    "overlong 3-byte": b"\xe0\x80\xaf",
    "surrogate": b"\xed\xa0\x80",
    "above 10FFFF": b"\xf4\x90\x80\x80",
    "stray continuation": b"ab\x80cd",
    "truncated at end": b"abc\xe2\x82",
}


@pytest.mark.parametrize("case", list(INVALID_UTF8))
def test_invalid_utf8_text_closes_1007(httpd, case):
    srv = httpd(CONF, servers=1)
    with Ws(srv, "/ws/u8") as ws:
        wait_subscribers(srv, "u8", 1)
        ws.send_frame(OP_TEXT, INVALID_UTF8[case])
        ws.expect_close(1007, exact=b"\x88\x02\x03\xef")
    assert info(srv, "u8")["published_messages"] == 0


def test_invalid_utf8_across_fragments_and_in_close_reason(httpd):
    srv = httpd(CONF, servers=1)
    with Ws(srv, "/ws/u8f") as ws:
        wait_subscribers(srv, "u8f", 1)
        ws.send_frame(OP_TEXT, b"ok\xe2\x82", fin=False)
        ws.send_frame(OP_CONT, b"(", fin=True)          # E2 82 28: bad continuation
        ws.expect_close(1007, exact=b"\x88\x02\x03\xef")
    with Ws(srv, "/ws/u8f") as ws:
        ws.send_frame(OP_CLOSE, b"\x03\xe8\xff\xfe")
        ws.expect_close(1007, exact=b"\x88\x02\x03\xef")
    assert info(srv, "u8f")["published_messages"] == 0


def test_valid_utf8_split_across_fragments(httpd):
    srv = httpd(CONF, servers=1)
    text = "é€😀".encode()
    with Ws(srv, "/ws/u8ok") as ws:
        wait_subscribers(srv, "u8ok", 1)
        # every character cut between two fragments
        ws.send_frame(OP_TEXT, text[:1], fin=False)
        ws.send_frame(OP_CONT, text[1:3], fin=False)
        ws.send_frame(OP_CONT, text[3:7], fin=False)
        ws.send_frame(OP_CONT, text[7:], fin=True)
        assert ws.read_text() == text


def test_fragmented_message_reassembled_with_ping_inside(httpd):
    srv = httpd(CONF, servers=1)
    with Ws(srv, "/ws/frag") as ws, Stream(srv, "/sub/frag") as st:
        wait_subscribers(srv, "frag", 2)
        ws.send_frame(OP_TEXT, b"hel", fin=False)
        ws.send_frame(OP_PING, b"in-between")
        ws.send_frame(OP_CONT, b"", fin=False)
        ws.send_frame(OP_CONT, b"lo", fin=True)
        assert ws.read_frame().raw == b"\x8a\x0ain-between"
        assert ws.read_frame().raw == b"\x81\x05hello"
        st.wait_for(b"hello|")
        # a frame split over many TCP segments
        data = frame(OP_TEXT, b"byte by byte")
        for i in range(len(data)):
            ws.send(data[i:i + 1])
            time.sleep(0.005)
        assert ws.read_text() == b"byte by byte"
        # a 16-bit and a 64-bit length client frame
        ws.send_frame(OP_TEXT, b"m" * 300)
        assert ws.read_text() == b"m" * 300
        ws.send_frame(OP_TEXT, b"n" * 70000)
        assert ws.read_text(15) == b"n" * 70000
        assert st.wait_for(b"n" * 70000 + b"|", 15)
    assert info(srv, "frag")["published_messages"] == 4


# ================================================================ sizes (1009)
def test_max_frame_size_1009(httpd):
    srv = httpd(CONF, servers=1)
    with Ws(srv, "/wssmall/big") as ws:
        wait_subscribers(srv, "big", 1)
        ws.send_frame(OP_TEXT, b"a" * 1024)                  # exactly the limit
        assert ws.read_text() == b"a" * 1024
        ws.send_frame(OP_TEXT, b"b" * 1025)
        ws.expect_close(1009, exact=b"\x88\x02\x03\xf1")
    with Ws(srv, "/wssmall/big") as ws:
        # the whole message counts: two fragments of 600 bytes
        ws.send_frame(OP_TEXT, b"c" * 600, fin=False)
        ws.send_frame(OP_CONT, b"c" * 600)
        ws.expect_close(1009, exact=b"\x88\x02\x03\xf1")
    with Ws(srv, "/wssmall/big") as ws:
        # a header that claims too much is enough
        ws.send(frame(OP_TEXT, b"x" * 100, length=1 << 40))
        ws.expect_close(1009, exact=b"\x88\x02\x03\xf1")
    assert info(srv, "big")["published_messages"] == 1


def test_default_max_frame_size_is_1m(httpd):
    srv = httpd(CONF, servers=1)
    with Ws(srv, "/ws/dflt") as ws:
        wait_subscribers(srv, "dflt", 1)
        ws.send_frame(OP_TEXT, b"z" * (1 << 20))
        assert ws.read_text(20) == b"z" * (1 << 20)
        ws.send(frame(OP_TEXT, b"z" * 1000, length=(1 << 20) + 1))
        ws.expect_close(1009, exact=b"\x88\x02\x03\xf1")
    assert info(srv, "dflt")["published_messages"] == 1


def test_max_frame_size_capped_by_max_message_size(httpd):
    conf = SERVER + "PushStreamMaxMessageSize 2k\n" + LOCATIONS
    srv = httpd(conf, servers=1)
    with Ws(srv, "/ws/cap") as ws:
        wait_subscribers(srv, "cap", 1)
        ws.send_frame(OP_TEXT, b"a" * 2048)
        assert ws.read_text() == b"a" * 2048
        ws.send_frame(OP_TEXT, b"a" * 2049)
        ws.expect_close(1009, exact=b"\x88\x02\x03\xf1")
    assert info(srv, "cap")["published_messages"] == 1


# ================================================================ publishing over the socket
def test_publish_over_websocket_fans_out_and_stores(httpd):
    srv = httpd(CONF, servers=2)
    with Ws(srv, "/ws/wsch1/wsch2") as ws, Stream(srv, "/sub/wsch1") as st:
        lp = Stream(srv, "/lp/wsch2", read_headers=False)
        wait_subscribers(srv, "wsch1", 2)
        wait_subscribers(srv, "wsch2", 2)
        ws.send_text("hello")
        # published to both channels; the sender gets it once per channel
        ws.expect_bytes(b"\x81\x05hello\x81\x05hello")
        st.wait_for(b"hello|")
        assert lp.wait_end() == b"hello"
        assert lp.status == 200
        lp.close()
        for ch in ("wsch1", "wsch2"):
            i = info(srv, ch)
            assert (i["published_messages"], i["stored_messages"]) == (1, 1), i
        ws.nothing_for(0.3)
        assert st.idle(0.2) == b"hello|"
    # stored: a later subscriber gets it, without event id
    r = http(srv, "GET", "/lp/wsch1.b1")
    assert r.status == 200 and r.body == b"hello", r
    with Ws(srv, "/ws/wsch2.b5") as ws:
        assert ws.read_text() == b"hello"


def test_publish_over_websocket_store_off_and_not_allowed(httpd):
    srv = httpd(CONF, servers=1)
    with Ws(srv, "/wsns/nostore") as ws:
        wait_subscribers(srv, "nostore", 1)
        ws.send_text("not kept")
        assert ws.read_text() == b"not kept"
        i = info(srv, "nostore")
        assert (i["published_messages"], i["stored_messages"]) == (1, 0), i
    with Ws(srv, "/wsro/ro") as ws:
        wait_subscribers(srv, "ro", 1)
        ws.send_text("ignored")
        ws.send_frame(OP_TEXT, b"ignored too", fin=False)
        ws.send_frame(OP_CONT, b"!")
        ws.nothing_for(0.5)
        assert info(srv, "ro")["published_messages"] == 0
        publish(srv, "ro", "from http")
        assert ws.read_text() == b"from http"


def test_publish_over_websocket_skips_the_events_channel(httpd):
    conf = SERVER + "PushStreamEventsChannelId events\n" + LOCATIONS + ws_loc(
        "wsevall", "PushStreamWebsocketAllowPublish on",
        "PushStreamAllowConnectionsToEventsChannel on")
    srv = httpd(conf, servers=1)
    with Ws(srv, "/wsevall/wch/events") as ws:
        wait_subscribers(srv, "wch", 1)
        wait_subscribers(srv, "events", 1)
        time.sleep(0.3)
        before = info(srv, "events")["published_messages"]
        ws.send_text("hi")
        frames = []
        deadline = time.time() + 1.0
        while time.time() < deadline:
            try:
                frames.append(ws.read_frame(max(0.01, deadline - time.time())).raw)
            except AssertionError:
                break
        assert frames.count(b"\x81\x02hi") == 1, frames     # from wch only
        assert info(srv, "events")["published_messages"] == before
        assert info(srv, "wch")["published_messages"] == 1


# ================================================================ many idle subscribers
def test_2000_idle_websocket_subscribers(httpd):
    srv = httpd(CONF, servers=2, threads=25)
    swarm = WsSwarm(srv.port)
    try:
        for batch in range(20):
            for _ in range(100):
                swarm.open("/ws/crowd")
            swarm.run_until(lambda: all(c.status == 101 for c in swarm.conns), 30,
                            f"handshakes of batch {batch}")
        assert len(swarm.conns) == 2000
        assert not [c for c in swarm.conns if c.closed], swarm.summary()

        def counted():
            swarm.pump(0.05)
            return info(srv, "crowd")["subscribers"] == 2000
        try:
            deadline = time.time() + 20
            while not counted():
                assert time.time() < deadline
        except AssertionError:
            raise AssertionError(f"subscribers {info(srv, 'crowd')}; {swarm.summary()}")

        for _ in range(5):
            t0 = time.time()
            with urllib.request.urlopen(srv.url("/static.txt"), timeout=5) as r:
                assert r.read() == b"hello\n"
            assert time.time() - t0 < 0.2

        publish(srv, "crowd", "to the crowd")
        swarm.run_until(lambda: all(c.frames for c in swarm.conns), 30, "delivery to all")
        assert all(c.frames == [(0x81, b"to the crowd")] for c in swarm.conns), swarm.summary()
        assert not [c for c in swarm.conns if c.closed], swarm.summary()
        assert info(srv, "crowd")["subscribers"] == 2000
    finally:
        swarm.close_all()
    wait_subscribers(srv, "crowd", 0, timeout=20)


# ================================================================ the websockets library
async def _library_roundtrip(srv, uri, ssl_ctx=None, http_tls=False):
    async with websockets.connect(uri, ssl=ssl_ctx, ping_interval=None, open_timeout=10,
                                  close_timeout=5) as ws:
        await asyncio.to_thread(wait_subscribers, srv, "lib", 1)
        await asyncio.to_thread(publish, srv, "lib", "from http", None, http_tls)
        assert await asyncio.wait_for(ws.recv(), 10) == "from http"
        big = "".join(chr(0x61 + i % 26) for i in range(70000))
        await asyncio.to_thread(publish, srv, "lib", big, None, http_tls)
        assert await asyncio.wait_for(ws.recv(), 10) == big
        await ws.send("from the socket ✓")
        assert await asyncio.wait_for(ws.recv(), 10) == "from the socket ✓"
        pong = await ws.ping(b"library ping")
        await asyncio.wait_for(pong, 10)          # resolves only on the echoed payload
        await ws.close(code=4001, reason="done")
        assert ws.close_code == 4001
    i = await asyncio.to_thread(info, srv, "lib")
    assert i["published_messages"] == 3 and i["stored_messages"] == 3, i


def test_websockets_library_roundtrip(httpd):
    srv = httpd(CONF, servers=2)
    run(_library_roundtrip(srv, f"ws://127.0.0.1:{srv.port}/ws/lib"))
    wait_subscribers(srv, "lib", 0)


async def _library_error(uri, send, code):
    async with websockets.connect(uri, ping_interval=None, close_timeout=5) as ws:
        await ws.send(send)
        with pytest.raises(websockets.exceptions.ConnectionClosed) as ei:
            await asyncio.wait_for(ws.recv(), 10)
        assert ei.value.rcvd is not None and ei.value.rcvd.code == code, ei.value


def test_websockets_library_close_codes(httpd):
    srv = httpd(CONF, servers=1)
    run(_library_error(f"ws://127.0.0.1:{srv.port}/ws/libe", b"\x00binary", 1003))
    run(_library_error(f"ws://127.0.0.1:{srv.port}/wssmall/libe", "x" * 2000, 1009))

    async def refused():
        async with websockets.connect(f"ws://127.0.0.1:{srv.port}/ws/ALL",
                                      ping_interval=None) as ws:
            with pytest.raises(websockets.exceptions.ConnectionClosed) as ei:
                await asyncio.wait_for(ws.recv(), 10)
            assert ei.value.rcvd.code == 1008
            assert ei.value.rcvd.reason == \
                '{"http_status": 403, "explain":"Channel id not authorized for this method."}'
    run(refused())

    async def ttl():
        async with websockets.connect(f"ws://127.0.0.1:{srv.port}/wsttl/libt",
                                      ping_interval=None) as ws:
            assert await asyncio.wait_for(ws.recv(), 10) == "FOOTER"
            with pytest.raises(websockets.exceptions.ConnectionClosed) as ei:
                await asyncio.wait_for(ws.recv(), 10)
            assert ei.value.rcvd is not None and ei.value.rcvd.code == 1005   # "\x88\x00"
    run(ttl())
