"""Subscribers over real HTTP/2 (mod_http2 on the same httpd): curl
--http2-prior-knowledge (h2c) and --http2 over TLS receive what is published in
every HTTP mode (streaming, EventSource with replay by Last-Event-ID and pings,
long-polling and its timeout, polling, JSONP), headless Chromium's EventSource
over TLS h2, 200 concurrent h2 EventSource subscribers on one child, a reset
stream gives its h2 worker back within a second, the cap (503 + Retry-After),
a WebSocket over h2 (RFC 8441) gets a plain 501, and a graceful restart ends
h2 subscribers cleanly."""
import os
import time

import pytest

from pyhttpd import httpd as pshttpd
from pyhttpd.h2client import H2Conn, pump
from pyhttpd.conf import conf, sub_location
from pyhttpd.client import (Subscriber as Stream, h2_curl, publish, wait_for,
                            wait_subscribers)

from .test_tls import TTL_AND_EV

SLOW = float(os.environ.get("PS_SLOW") or 1)

BODY = conf(shm="", sub='PushStreamMessageTemplate "~text~|"',
            poll='PushStreamMessageTemplate "~text~|"',
            lp='PushStreamMessageTemplate "~text~|"',
            extra=TTL_AND_EV
            + sub_location("lpttl", "long-polling", "PushStreamLongPollingConnectionTtl 1s")
            + sub_location("ws", "websocket"))

H2_GLOBAL = "Protocols h2 h2c http/1.1\nPushStreamSharedMemorySize 32M\n"


def h2_server(httpd, servers=1, threads=25, extra="", **kw):
    return httpd(BODY, servers=servers, threads=threads, modules=["http2"],
                 ssl_port=pshttpd.free_port(), extra_global=H2_GLOBAL + extra, **kw)


def curl(srv, tls, path, *args):
    return h2_curl(srv, path, "-i", *args, tls=tls)


def head_and_body(out):
    head, _, body = out.partition(b"\r\n\r\n")
    return head.decode(), body


# ================================================================ curl, every mode
@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2-tls"])
def test_every_mode_over_h2(httpd, tls):
    srv = h2_server(httpd)
    # streaming: no chunked framing in an h2 body
    with curl(srv, tls, "/sub/st") as c:
        wait_subscribers(srv, "st", 1)
        publish(srv, "st", "one")
        publish(srv, "st", "two")
        head, body = head_and_body(c.wait_for(b"one|two|", timeout=5))
        assert head.startswith("HTTP/2 200") and body == b"one|two|", (head, body)
    # EventSource: the first DATA frame at once, replay by Last-Event-ID, live, pings
    publish(srv, "es", "first", {"Event-Id": "e1"})
    publish(srv, "es", "second", {"Event-Id": "e2"})
    with curl(srv, tls, "/evping/es", "-H", "Last-Event-ID: e1") as c:
        c.wait_for(b": \nid: e2\ndata: second\n\n", timeout=5)
        wait_subscribers(srv, "es", 1)
        publish(srv, "es", "third", {"Event-Id": "e3"})
        c.wait_for(b"id: e3\ndata: third\n\n", timeout=5)
        head, body = head_and_body(c.wait_for(b": -1\n", timeout=3 * SLOW))
        assert head.startswith("HTTP/2 200"), head
        assert "content-type: text/event-stream; charset=utf-8" in head
        assert body.startswith(b": \nid: e2\ndata: second\n\nid: e3\ndata: third\n\n"), body
    # TTL: header, message, footer, then the stream ends cleanly
    with curl(srv, tls, "/subttl/ttl") as c:
        wait_subscribers(srv, "ttl", 1)
        publish(srv, "ttl", "in ttl")
        assert c.wait_exit(timeout=6 * SLOW) == 0
        assert head_and_body(c.output())[1] == b"H|in ttl|FOOTER"
    # long-polling: waits, then the message
    with curl(srv, tls, "/lp/lp") as c:
        wait_subscribers(srv, "lp", 1)
        publish(srv, "lp", "polled")
        assert c.wait_exit(timeout=5) == 0
        head, body = head_and_body(c.output())
        assert head.startswith("HTTP/2 200") and body == b"polled|", (head, body)
        assert "etag: W/" in head and "last-modified: " in head, head
    # long-polling JSONP
    with curl(srv, tls, "/lp/lpj?callback=cb") as c:
        wait_subscribers(srv, "lpj", 1)
        publish(srv, "lpj", "jp")
        assert c.wait_exit(timeout=5) == 0
        head, body = head_and_body(c.output())
        assert "content-type: application/javascript" in head and body == b"cb([jp|]);", body
    # long-poll timeout: 304
    with curl(srv, tls, "/lpttl/none") as c:
        assert c.wait_exit(timeout=5 * SLOW) == 0
        assert c.output().startswith(b"HTTP/2 304"), c.output()
    # polling and polling JSONP: stored messages at once
    with curl(srv, tls, "/poll/st.b2") as c:
        assert c.wait_exit(timeout=5) == 0
        head, body = head_and_body(c.output())
        assert head.startswith("HTTP/2 200") and body == b"one|two|", body
    with curl(srv, tls, "/poll/st.b2?callback=f") as c:
        assert c.wait_exit(timeout=5) == 0
        assert head_and_body(c.output())[1] == b"f([one|,two|]);", c.output()
    assert "PS0100: HTTP/2 subscribers are served each on its h2 worker" in srv.error_log()


# ================================================================ Chromium
def test_chromium_eventsource_over_tls_h2(httpd, workbase):
    from .test_clients_js import CHROMIUM, Chromium
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail("chromium missing: run build/deps.sh")
    srv = h2_server(httpd)
    with open(os.path.join(srv.workdir, "htdocs", "es.html"), "w") as f:
        f.write("<!doctype html><script>window.got = []; window.errors = 0;"
                "var es = new EventSource('/ev/chrome');"
                "es.onmessage = function (e) { got.push(e.lastEventId + ':' + e.data); };"
                "es.onerror = function () { errors++; };"
                "window.harnessReady = true;</script>")
    os.chmod(os.path.join(srv.workdir, "htdocs", "es.html"), 0o644)
    from . import test_clients_js
    flags = test_clients_js.CHROMIUM_FLAGS
    test_clients_js.CHROMIUM_FLAGS = flags + ["--ignore-certificate-errors"]
    try:
        browser = Chromium(srv.workdir)
    finally:
        test_clients_js.CHROMIUM_FLAGS = flags
    try:
        page = browser.new_page(srv.ssl_url("/es.html"))
        wait_subscribers(srv, "chrome", 1, timeout=10)
        publish(srv, "chrome", "hello h2", {"Event-Id": "c1"})
        publish(srv, "chrome", "again", {"Event-Id": "c2"})
        page.wait("got.length == 2", timeout=5, what="2 EventSource messages")
        assert page.eval("got") == ["c1:hello h2", "c2:again"]
        assert page.eval("errors") == 0
        page.close()
        # its stream ends with the page: logged (written at the end) as h2
        wait_for(lambda: '"GET /ev/chrome HTTP/2.0"' in srv.access_log(), 5 * SLOW,
                 what="the EventSource request in the access log")
        wait_subscribers(srv, "chrome", 0)
    finally:
        browser.close()


# ================================================================ 200 on one child
def test_200_h2_eventsource_subscribers_on_one_child(httpd):
    """40 connections x 5 streams (mod_http2 processes 6 streams per connection
    at first): all 200 get the first DATA frame, then one publish each."""
    n_conn, per_conn = 40, 5
    srv = h2_server(httpd, servers=1, threads=64,
                    extra="H2MinWorkers 32\nH2MaxWorkers 256\n")
    child = srv.child_pids()[0]
    rss0 = srv.rss_kb()[child]
    conns = [H2Conn(srv) for _ in range(n_conn)]
    try:
        streams = [(c, c.get("/ev/many")) for c in conns for _ in range(per_conn)]
        pump(conns, lambda: all(c.streams[s].body.startswith(b": \n") for c, s in streams),
             30 * SLOW, "the first DATA frame of 200 streams")
        wait_subscribers(srv, "many", n_conn * per_conn, timeout=10 * SLOW)
        rss1 = srv.rss_kb()[child]
        publish(srv, "many", "to all", {"Event-Id": "m1"})
        pump(conns, lambda: all(c.streams[s].body.endswith(b"id: m1\ndata: to all\n\n")
                                for c, s in streams), 10 * SLOW, "200 deliveries")
        assert all(c.streams[s].status == 200 for c, s in streams)
        print(f"\nh2 subscribers: {len(streams)} on one child, RSS {rss0} -> {rss1} kB, "
              f"{(rss1 - rss0) / len(streams):.1f} kB each")
    finally:
        for c in conns:
            c.close()
    wait_subscribers(srv, "many", 0, timeout=10 * SLOW)


# ================================================================ reset, cap
def test_reset_frees_the_worker_and_the_cap_answers_503(httpd):
    """H2MaxWorkers 4: 2 h2 subscribers at most (2 workers kept for other
    requests); the third gets 503 + Retry-After; a client resetting its stream
    makes room within a second."""
    srv = h2_server(httpd, extra="H2MinWorkers 1\nH2MaxWorkers 4\n")
    with H2Conn(srv) as a, H2Conn(srv) as b:
        s1, s2 = a.get("/ev/cap"), b.get("/ev/cap")
        pump([a, b], lambda: a.streams[s1].body and b.streams[s2].body, 10 * SLOW,
             "2 subscribers")
        wait_subscribers(srv, "cap", 2)
        with Stream(srv, "/ev/cap") as h1, H2Conn(srv) as c:    # HTTP/1.1: no cap
            assert h1.status == 200
            s3 = c.get("/ev/cap")
            c.pump_until(lambda: c.streams[s3].ended, 5 * SLOW, "the refusal")
            st = c.streams[s3]
            assert st.status == 503, st.headers
            assert st.header("retry-after") == "5"
            assert "HTTP/2 subscribers" in st.header("x-nginx-pushstream-explain")
            assert "PS0102: HTTP/2 subscriber refused" in srv.error_log()
            # a reset stream frees its worker: the next one is admitted within 1 s
            t0 = time.time()
            a.reset(s1)

            def admitted():
                sid = c.get("/ev/cap")
                c.pump_until(lambda: c.streams[sid].status, 5, "an answer")
                if c.streams[sid].status == 200:
                    return True
                c.pump_until(lambda: c.streams[sid].ended, 5, "the end")
                return False
            wait_for(admitted, timeout=3 * SLOW, interval=0.05, what="room again")
            took = time.time() - t0
            assert took < 1.0 * max(1, SLOW / 2), f"worker freed after {took:.2f}s"
            wait_subscribers(srv, "cap", 3)        # b's, c's and the HTTP/1.1 one


def test_websocket_over_h2_gets_a_plain_refusal(httpd):
    srv = h2_server(httpd, extra="H2WebSockets on\n")
    with H2Conn(srv) as c:
        c.pump_until(lambda: c.remote_settings.get(8) == 1, 5,
                     "SETTINGS_ENABLE_CONNECT_PROTOCOL")
        sid = c.request("/ws/h2ws", method="CONNECT", end=False,
                        extra_pseudo=[(":protocol", "websocket")],
                        headers=[("sec-websocket-version", "13")])
        c.pump_until(lambda: c.streams[sid].headers, 5, "the answer")
        st = c.streams[sid]
        assert st.status == 501, st.headers
        assert "WebSocket over HTTP/2" in st.header("x-nginx-pushstream-explain")
    assert "PS0103: WebSocket over HTTP/2 refused" in srv.error_log()


# ================================================================ graceful restart
def test_graceful_restart_ends_h2_subscribers_cleanly(httpd):
    """A stopping child ends its h2 subscribers as it does HTTP/1.1 ones (footer,
    long-poll 304) instead of holding the restart; new ones work at once."""
    srv = h2_server(httpd)
    with curl(srv, False, "/subttl/gr") as st, curl(srv, True, "/lp/gr") as lp:
        wait_subscribers(srv, "gr", 2)
        srv.graceful()
        assert st.wait_exit(timeout=10) == 0 and lp.wait_exit(timeout=10) == 0
        assert head_and_body(st.output())[1] == b"H|FOOTER", st.output()
        assert lp.output().startswith(b"HTTP/2 304"), lp.output()
    with curl(srv, False, "/ev/gr2") as c:
        wait_subscribers(srv, "gr2", 1)
        publish(srv, "gr2", "after restart")
        c.wait_for(b"data: after restart\n\n", timeout=5)
