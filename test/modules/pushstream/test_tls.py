"""Every transport over TLS (mod_ssl on the same httpd, the harness's self-signed
certificate, verified): streaming, EventSource, WebSocket (hand-made frames and the
`websockets` library over wss://), long-polling, polling, JSONP, publishing over https.
A single message must reach a waiting TLS subscriber within 2 s without any further
traffic: nothing may stay buffered inside mod_ssl."""
import asyncio
import struct
import time

import pytest
import websockets

from pyhttpd import httpd as pshttpd
from pyhttpd.conf import conf, sub_location
from pyhttpd.client import (Curl, HttpConn, Subscriber as Stream, assert_close_notify, cert_path,
                            http, info, parse_sse, publish, read_response, request, ssl_context,
                            strict, wait_subscribers)
from pyhttpd.client import Stream as RawStream
from pyhttpd.ws import OP_CLOSE, OP_PING, OP_TEXT, Ws, close_frame_bytes

# /subttl (header, footer, a 2 s TTL), /ev, /evping (1 s pings): test_http2.py too
TTL_AND_EV = (sub_location("subttl", "", ['PushStreamHeaderTemplate "H|"',
                                          'PushStreamMessageTemplate "~text~|"',
                                          'PushStreamFooterTemplate "FOOTER"',
                                          "PushStreamSubscriberConnectionTtl 2s"])
              + sub_location("ev", "eventsource")
              + sub_location("evping", "eventsource", "PushStreamPingMessageInterval 1s"))

# /pub, /sub, /lp, /poll as usual (the segment size is set by tls_server)
BODY = conf(shm="", sub='PushStreamMessageTemplate "~text~|"',
            poll='PushStreamMessageTemplate "~text~|"',
            extra=TTL_AND_EV
            + sub_location("ws", "websocket", ["PushStreamWebsocketAllowPublish on",
                                               "PushStreamStoreMessages on"])
            + sub_location("wsh", "websocket", ['PushStreamHeaderTemplate "HEADER"',
                                                'PushStreamFooterTemplate "FOOTER"',
                                                "PushStreamSubscriberConnectionTtl 2s",
                                                "PushStreamPingMessageInterval 1s"]))


def tls_server(httpd, servers=2, **kw):
    return httpd(BODY, servers=servers, ssl_port=pshttpd.free_port(),
                 extra_global="PushStreamSharedMemorySize 32M", **kw)


def run(coro, timeout=40):
    return asyncio.run(asyncio.wait_for(coro, timeout))


# ================================================================ one message, no more traffic
@pytest.mark.parametrize("pub_tls", [False, True], ids=["pub-http", "pub-https"])
def test_single_message_is_not_held_in_mod_ssl_streaming(httpd, pub_tls):
    srv = tls_server(httpd)
    with Stream(srv, "/sub/one", tls=True) as s:
        assert s.status == 200
        wait_subscribers(srv, "one", 1)
        t0 = time.time()
        publish(srv, "one", "only one", tls=pub_tls)
        assert s.wait_for(b"only one|", timeout=2) == b"only one|"
        assert time.time() - t0 < 2


@pytest.mark.parametrize("pub_tls", [False, True], ids=["pub-http", "pub-https"])
def test_single_message_is_not_held_in_mod_ssl_eventsource(httpd, pub_tls):
    srv = tls_server(httpd)
    with Stream(srv, "/ev/one", tls=True) as s:
        assert s.header("Content-Type") == "text/event-stream; charset=utf-8"
        assert s.wait_len(3, timeout=2) == b": \n"
        wait_subscribers(srv, "one", 1)
        publish(srv, "one", "only one", {"Event-Id": "x1"}, tls=pub_tls)
        assert s.wait_for(b"\n\n", timeout=2) == b": \nid: x1\ndata: only one\n\n"


@pytest.mark.parametrize("pub_tls", [False, True], ids=["pub-http", "pub-https"])
def test_single_message_is_not_held_in_mod_ssl_websocket(httpd, pub_tls):
    srv = tls_server(httpd)
    with Ws(srv, "/ws/one", tls=True) as ws:
        wait_subscribers(srv, "one", 1)
        publish(srv, "one", "only one", tls=pub_tls)
        ws.expect_bytes(b"\x81\x08only one", timeout=2)


def test_single_message_is_not_held_in_mod_ssl_long_polling(httpd):
    srv = tls_server(httpd)
    s = Stream(srv, "/lp/one", tls=True, read_headers=False)
    with s:
        wait_subscribers(srv, "one", 1)
        publish(srv, "one", "only one")
        assert s.wait_end(timeout=2) == b"only one"
        assert s.status == 200


def test_header_template_and_ping_not_held(httpd):
    """The first bytes and each ping must also go out at once."""
    srv = tls_server(httpd)
    with Stream(srv, "/subttl/hdr", tls=True) as s:
        assert s.wait_for(b"H|", timeout=2) == b"H|"
    with Stream(srv, "/evping/p", tls=True) as s:
        assert s.wait_for(b": \n: -1\n", timeout=3) == b": \n: -1\n"
    with Ws(srv, "/wsh/p", tls=True) as ws:
        ws.expect_bytes(b"\x81\x06HEADER", timeout=2)
        assert ws.read_frame(timeout=3).raw == b"\x89\x00"


# ================================================================ transports
def test_streaming_over_https(httpd):
    srv = tls_server(httpd)
    with Stream(srv, "/sub/st", tls=True) as s:
        assert s.status == 200 and s.header("Transfer-Encoding") == "chunked", s.resp
        wait_subscribers(srv, "st", 1)
        for i in range(5):
            publish(srv, "st", f"m{i}", tls=True)
            s.wait_for(f"m{i}|".encode(), timeout=2)
        assert s.body == b"m0|m1|m2|m3|m4|"
        big = b"x" * 100000
        publish(srv, "st", big)
        s.wait_for(big + b"|", timeout=10)
    # TTL: header, message, footer, end of the chunked body
    with Stream(srv, "/subttl/st", tls=True) as s:
        wait_subscribers(srv, "st", 1)
        publish(srv, "st", "in ttl")
        assert s.wait_end(timeout=6) == b"H|in ttl|FOOTER"
    # curl
    with Curl(["-N", "--cacert", cert_path(srv), srv.ssl_url("/sub/curl")]) as c:
        wait_subscribers(srv, "curl", 1)
        publish(srv, "curl", "to curl")
        assert c.wait_for(b"to curl|", timeout=2) == b"to curl|"


def test_eventsource_over_https(httpd):
    srv = tls_server(httpd)
    for i in (1, 2, 3):
        publish(srv, "es", f"m{i}", {"Event-Id": f"e{i}"}, tls=True)
    with Stream(srv, "/ev/es", {"Last-Event-Id": "e1"}, tls=True) as s:
        assert s.wait_for(b"m3\n\n", timeout=5) == b": \nid: e2\ndata: m2\n\nid: e3\ndata: m3\n\n"
        wait_subscribers(srv, "es", 1)
        publish(srv, "es", "l1\r\nl2", {"Event-Type": "t"})
        body = s.wait_for(b"l2\n\n", timeout=2)
        assert body.endswith(b"event: t\ndata: l1\ndata: l2\n\n"), body
        events, comments = parse_sse(body)
        assert [e.get("id") for e in events] == ["e2", "e3", None] and comments == [": "]
    with Curl(["-N", "--cacert", cert_path(srv), "-H", "Last-Event-Id: e2",
               srv.ssl_url("/ev/es")]) as c:
        assert c.wait_for(b"l2\n\n", timeout=5) == \
            b": \nid: e3\ndata: m3\n\nevent: t\ndata: l1\ndata: l2\n\n"


def test_websocket_over_wss_raw(httpd):
    srv = tls_server(httpd)
    with Ws(srv, "/ws/w1/w2", tls=True, key="/mQoZf6pRiv8+6o72GncLQ==") as ws:
        assert ws.resp.status_line == "HTTP/1.1 101 Switching Protocols"
        assert ws.resp.header("Sec-WebSocket-Accept") == "RaIOIcQ6CBoc74B9EKdH0avYZnw="
        assert set(ws.resp.names()) == {"Expires", "Cache-Control", "Upgrade", "Connection",
                                        "Sec-WebSocket-Accept"}, ws.resp
        wait_subscribers(srv, "w1", 1)
        # 7/16/64-bit lengths
        for n, head in ((5, b"\x81\x05"), (300, b"\x81\x7e\x01\x2c"),
                        (70000, b"\x81\x7f" + struct.pack("!Q", 70000))):
            publish(srv, "w1", b"a" * n)
            ws.expect_bytes(head + b"a" * n, timeout=5)
        ws.send_frame(OP_PING, b"tls ping")
        assert ws.read_frame(timeout=2).raw == b"\x8a\x08tls ping"
        # publish over the socket: both channels, the sender too
        ws.send_frame(OP_TEXT, b"hel", fin=False)
        ws.send_frame(0x0, b"lo")
        ws.expect_bytes(b"\x81\x05hello\x81\x05hello", timeout=2)
        ws.send_frame(OP_CLOSE, struct.pack("!H", 4002))
        ws.expect_close(4002, timeout=2)
    assert info(srv, "w2")["stored_messages"] == 1
    # the RFC errors over TLS too
    with Ws(srv, "/ws/err", tls=True) as ws:
        ws.send_frame(OP_TEXT, b"x", mask=False)
        ws.expect_close(1002, exact=b"\x88\x02\x03\xea", timeout=2)
    with Ws(srv, "/ws/err", tls=True) as ws:
        ws.send_frame(0x2, b"x")
        ws.expect_close(1003, exact=b"\x88\x02\x03\xeb", timeout=2)
    with Ws(srv, "/ws/err", tls=True) as ws:
        ws.send_frame(OP_TEXT, b"\xff")
        ws.expect_close(1007, exact=b"\x88\x02\x03\xef", timeout=2)
    # refusal after the 101, TTL with footer
    with Ws(srv, "/ws/ALL", tls=True) as ws:
        ws.expect_close(1008, exact=close_frame_bytes(
            1008, b'{"http_status": 403, "explain":"Channel id not authorized for this method."}'),
            timeout=2)
    with Ws(srv, "/wsh/ttl", tls=True) as ws:
        ws.expect_bytes(b"\x81\x06HEADER", timeout=2)
        f = ws.read_data_frame(timeout=5)
        assert f.raw == b"\x81\x06FOOTER", f
        ws.expect_close(exact=b"\x88\x00", timeout=2)


def test_websocket_over_wss_library(httpd):
    srv = tls_server(httpd)

    async def main():
        uri = f"wss://127.0.0.1:{srv.ssl_port}/ws/lib"
        async with websockets.connect(uri, ssl=ssl_context(srv), ping_interval=None,
                                      close_timeout=5) as ws:
            await asyncio.to_thread(wait_subscribers, srv, "lib", 1)
            await asyncio.to_thread(publish, srv, "lib", "over wss", None, True)
            assert await asyncio.wait_for(ws.recv(), 2) == "over wss"
            await ws.send("ü from client")
            assert await asyncio.wait_for(ws.recv(), 2) == "ü from client"
            big = "b" * 200000
            await asyncio.to_thread(publish, srv, "lib", big)
            assert await asyncio.wait_for(ws.recv(), 10) == big
            await asyncio.wait_for(await ws.ping(b"echo me"), 2)
            await ws.close(code=1000)
            assert ws.close_code == 1000
    run(main())
    wait_subscribers(srv, "lib", 0)


def test_polling_long_polling_jsonp_over_https(httpd):
    srv = tls_server(httpd)
    publish(srv, "pl", "m1", tls=True)
    publish(srv, "pl", "m2", tls=True)
    with HttpConn(srv, tls=True) as c:
        r = c.request("GET", "/poll/pl")
        assert r.status == 304, r
        r = c.request("GET", "/poll/pl.b2")
        assert r.status == 200 and r.body == b"m1|m2|", r
        r2 = c.request("GET", "/poll/pl", {"If-Modified-Since": r.header("Last-Modified"),
                                           "If-None-Match": r.header("Etag")})
        assert r2.status == 304, r2
        r = c.request("GET", "/poll/pl.b2?callback=cb")
        assert r.header("Content-Type") == "application/javascript", r
        assert r.body == b"cb([m1|,m2|]);", r
        r = c.request("GET", "/lp/pl.b1?callback=f")
        assert r.status == 200 and r.body == b"f([m2]);", r
        r = c.request("GET", "/sub/pl.b1", {"X-Nginx-PushStream-Mode": "polling"})
        assert r.status == 200 and r.body == b"m2|", r
        assert not c.closed_by_server(0.3)
        # then a long-poll that waits, on the same TLS connection
        c.sock.sendall(b"GET /lp/pl?callback=w HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        wait_subscribers(srv, "pl", 1)
        publish(srv, "pl", "m3", tls=True)
        r = read_response(c.rd, timeout=2)
        assert r.status == 200 and r.body == b"w([m3]);", r
        assert r.header("Connection").lower() == "close", r
        assert c.closed_by_server(5)
    r = http(srv, "GET", "/pub?id=pl", tls=True)
    assert r.status == 200 and b'"published_messages": 3' in r.body, r


def test_plain_and_tls_subscribers_share_channels(httpd):
    srv = tls_server(httpd)
    plain = Stream(srv, "/sub/both")
    tls = Stream(srv, "/sub/both", tls=True)
    ws = Ws(srv, "/ws/both", tls=True)
    try:
        wait_subscribers(srv, "both", 3)
        publish(srv, "both", "to all", tls=True)
        plain.wait_for(b"to all|", timeout=2)
        tls.wait_for(b"to all|", timeout=2)
        ws.expect_bytes(b"\x81\x06to all", timeout=2)
        ws.send_frame(OP_TEXT, b"from wss")
        ws.expect_bytes(b"\x81\x08from wss", timeout=2)
        plain.wait_for(b"from wss|", timeout=2)
        tls.wait_for(b"from wss|", timeout=2)
    finally:
        for x in (plain, tls, ws):
            x.close()
    wait_subscribers(srv, "both", 0)


# ================================================================ every server-side end: close_notify
# subscribers that stay in httpd (worker / prefork serve them on their thread or
# process; under event with client certificates asked for, PS0160, the session is
# not taken over): the module's ends must reach mod_ssl, which sends close_notify
ENDS = conf(shm="", sub=['PushStreamMessageTemplate "~text~|"', 'PushStreamFooterTemplate "F"'],
            lp="PushStreamLongpollingConnectionTtl 2s",
            extra=TTL_AND_EV
            + sub_location("evttl", "eventsource", "PushStreamSubscriberConnectionTtl 2s")
            + sub_location("wsh", "websocket", ['PushStreamFooterTemplate "FOOTER"',
                                                "PushStreamSubscriberConnectionTtl 2s"])
            + sub_location("ws", "websocket"))


@pytest.mark.parametrize("mpm", ["worker", "prefork", "event-verify"])
def test_server_side_ends_in_httpd_send_close_notify(httpd, mpm):
    """Every end the server gives a TLS subscriber served inside httpd: a
    long-poll's answer and its timeout (304), a WebSocket's close echoed and its
    protocol error (1002), a channel's DELETE, the TTL (stream, EventSource,
    WebSocket) and a graceful restart: the footer / close frame / answer, then a
    TLS close_notify.  A cut TCP connection (a truncation error in browsers and
    PHP) fails."""
    kw = {"servers": 12} if mpm == "prefork" else {"servers": 1, "threads": 16}
    body = ENDS + ("\nSSLVerifyClient optional_no_ca\n" if mpm == "event-verify" else "")
    srv = httpd(body, ssl_port=pshttpd.free_port(), mpm=mpm.split("-")[0],
                log_level="info pushstream:debug",
                extra_global="PushStreamSharedMemorySize 32M", **kw)
    ttl = strict(Stream(srv, "/subttl/t", tls=True))
    ev = strict(Stream(srv, "/evttl/t", tls=True))
    ws = strict(Ws(srv, "/wsh/t", tls=True))
    lp = strict(RawStream(srv, "/lp/t", headers={"Connection": "close"}, tls=True))
    dels = [strict(Stream(srv, "/sub/d", tls=True)),
            strict(Stream(srv, "/ev/d", tls=True)), strict(Ws(srv, "/ws/d", tls=True))]
    lpm = strict(RawStream(srv, "/lp/m", headers={"Connection": "close"}, tls=True))
    wsc = strict(Ws(srv, "/ws/m", tls=True))
    wse = strict(Ws(srv, "/ws/m", tls=True))
    extra = [lpm, wsc, wse]
    try:
        wait_subscribers(srv, "t", 4)
        wait_subscribers(srv, "d", 3)
        wait_subscribers(srv, "m", 3)
        # a long-poll's answer; a WebSocket's close echoed; a protocol error's 1002
        publish(srv, "m", b"msg")
        lpm.wait_end(timeout=5)
        assert lpm.status == 200 and lpm.body == b"msg", (lpm.resp, lpm.body)
        assert_close_notify(lpm, timeout=5)
        wsc.send_frame(OP_CLOSE, struct.pack("!H", 4001))
        wse.send_frame(OP_TEXT, b"x", mask=False)
        for w, code in ((wsc, 4001), (wse, 1002)):
            f = w.read_data_frame(timeout=5)
            while f.opcode == OP_TEXT:
                f = w.read_data_frame(timeout=5)
            assert f.opcode == OP_CLOSE and f.code == code, f
            assert_close_notify(w, timeout=5)
        assert request(srv, "DELETE", "/pub?id=d").status == 200
        for c in dels[:2]:
            c.wait_end(timeout=5)
            assert b"Channel deleted" in c.body, c.body
            assert_close_notify(c, timeout=5)
        assert dels[2].read_data_frame(timeout=5).payload == b"Channel deleted"
        assert dels[2].read_data_frame(timeout=5).opcode == OP_CLOSE
        assert_close_notify(dels[2], timeout=5)
        ttl.wait_end(timeout=5)
        assert ttl.body.endswith(b"FOOTER") and ttl.complete, ttl.body
        assert_close_notify(ttl, timeout=5)
        ev.wait_end(timeout=5)
        assert_close_notify(ev, timeout=5)
        assert ws.read_data_frame(timeout=5).raw == b"\x81\x06FOOTER"
        assert ws.read_data_frame(timeout=5).opcode == OP_CLOSE
        assert_close_notify(ws, timeout=5)
        lp.wait_headers(timeout=5)
        assert lp.status == 304, lp.resp
        assert_close_notify(lp, timeout=5)
        if mpm != "prefork":    # prefork: a child ends its request before it stops
            # a graceful restart ends the rest
            st = strict(Stream(srv, "/sub/g", tls=True))
            wg = strict(Ws(srv, "/ws/g", tls=True))
            extra += [st, wg]
            wait_subscribers(srv, "g", 2)
            srv.graceful()
            st.wait_end(timeout=10)
            assert st.body.endswith(b"F"), st.body
            assert_close_notify(st, timeout=5)
            assert wg.read_data_frame(timeout=10).opcode == OP_CLOSE
            assert_close_notify(wg, timeout=5)
    finally:
        for c in [ttl, ev, ws, lp] + dels + extra:
            c.close()
    log = srv.error_log()
    if mpm == "event-verify":
        assert "PS0160" in log and "PS0081" not in log
