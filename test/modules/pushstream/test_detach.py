"""Idle streams leave httpd (issue 7, idle RSS): once a streaming, EventSource or
WebSocket subscriber on plain TCP has been idle a moment, the loop keeps a dup() of
its socket and a small block of its own, and httpd's connection (c->pool, the MPM's
counters) is released.  These tests check that httpd no longer counts such
connections and that everything a subscriber does afterwards still works: messages
of any size (partial writes, chunk framing kept across them), client frames
(ping, close), the client going away, TTL footers and graceful restarts."""
import os
import struct
import time

from pyhttpd.client import Swarm, wait_for
from pyhttpd.conf import pub_location, sub_location
from pyhttpd.client import Subscriber as Stream, publish, wait_subscribers
from pyhttpd.ws import OP_CLOSE, OP_PING, Ws

CONF = "\n".join([
    "LogLevel info pushstream:trace1",
    "PushStreamSharedMemorySize 32M",
    "PushStreamMaxMessageSize 4M",
    pub_location(),
    sub_location("sub", extra=['PushStreamMessageTemplate "~text~|"',
                               "PushStreamSubscriberMaxBuffer 16M"]),
    sub_location("ev", "eventsource", 'PushStreamFooterTemplate "END"'),
    sub_location("ttl", extra=["PushStreamSubscriberConnectionTtl 2s",
                               'PushStreamFooterTemplate "TTL-FOOTER"']),
    sub_location("ws", "websocket", 'PushStreamFooterTemplate "WS-FOOTER"'),
])


def wait_detached(srv, n, timeout=10):
    """Until n subscribers have left httpd (PS0081 at trace1 in the error log).
    httpd's server-status cannot tell: it does not count suspended connections."""
    deadline = time.time() + timeout
    while True:
        seen = srv.error_log().count("PS0081: stream detached")
        if seen >= n:
            assert seen == n, f"{seen} detached, expected {n}"
            return
        if time.time() > deadline:
            raise AssertionError(f"{seen} subscribers detached, expected {n}")
        time.sleep(0.1)


def test_idle_streams_leave_httpd_and_still_work(httpd):
    srv = httpd(CONF, servers=1, threads=10)
    streams = [Stream(srv, "/sub/d") for _ in range(10)]
    events = [Stream(srv, "/ev/d", headers={"Accept": "text/event-stream"})
              for _ in range(10)]
    sockets = [Ws(srv, "/ws/d") for _ in range(10)]
    try:
        wait_subscribers(srv, "d", 30)
        wait_detached(srv, 30)

        small, big = b"small", bytes(range(256)) * 4096            # 1 MiB
        publish(srv, "d", small)
        publish(srv, "d", big)
        for s in streams:
            s.wait_len(len(small) + len(big) + 2, timeout=20)
            assert s.body == small + b"|" + big + b"|"
        for e in events:
            e.wait_for(b"data: small\n\n", timeout=20)
        for w in sockets:
            assert w.read_text(timeout=20) == small
            assert w.read_text(timeout=20) == big

        # client frames reach the loop on its own socket
        sockets[0].send_frame(OP_PING, b"are you there")
        assert sockets[0].read_frame().raw == b"\x8a\x0dare you there"
        sockets[1].send_frame(OP_CLOSE, struct.pack("!H", 4001) + b"bye")
        sockets[1].expect_close(4001)
        # clients that go away are noticed
        streams[0].close()
        events[0].close()
        sockets[2].close()
        wait_subscribers(srv, "d", 26)
    finally:
        for c in streams + events + sockets:
            c.close()
    wait_subscribers(srv, "d", 0)


def test_detached_slow_reader_gets_every_byte_in_order(httpd):
    """A subscriber that does not read while 4 MiB pile up: the socket takes part
    of each write, the loop keeps the framed rest, and the body arrives whole."""
    srv = httpd(CONF, servers=1, threads=10)
    s = Stream(srv, "/sub/slow")
    wait_subscribers(srv, "slow", 1)
    wait_detached(srv, 1)
    msgs = [bytes([65 + i]) * (256 * 1024 + i) for i in range(16)]
    for m in msgs:
        publish(srv, "slow", m)
    time.sleep(0.5)
    want = b"".join(m + b"|" for m in msgs)
    s.wait_len(len(want), timeout=30)
    assert s.body == want
    publish(srv, "slow", b"last")
    s.wait_len(len(want) + 5)
    assert s.body.endswith(b"last|")
    s.close()
    wait_subscribers(srv, "slow", 0)


def test_detached_ttl_footer_and_graceful_restart(httpd):
    srv = httpd(CONF, servers=1, threads=10)
    ttl = Stream(srv, "/ttl/t")
    ev = Stream(srv, "/ev/g", headers={"Accept": "text/event-stream"})
    ws = Ws(srv, "/ws/g")
    try:
        wait_subscribers(srv, "t", 1)
        wait_subscribers(srv, "g", 2)
        wait_detached(srv, 3)
        # the TTL ends the detached stream with its footer and the last chunk
        ttl.wait_end(timeout=10)
        assert ttl.body.endswith(b"TTL-FOOTER")
        # a graceful restart still ends every detached subscriber properly
        srv.graceful()
        ev.wait_end(timeout=15)
        assert b"END" in ev.body
        ws.expect_bytes(b"\x81\x09WS-FOOTER", timeout=15)
        ws.expect_close(exact=b"\x88\x02\x03\xe9", timeout=10)
    finally:
        for c in (ttl, ev, ws):
            c.close()


def test_detached_subscribers_leave_no_memory_behind(httpd, monkeypatch):
    """Rounds of 1 500 subscribers that all leave httpd, then all go away: after a
    warm-up round the children's RSS stays flat.  A detached subscriber's block
    or socket not given back would add ~0.8 KB each, ~5 MB over the rounds."""
    if os.environ.get("PS_SAN_PRELOAD"):
        # ASan's quarantine keeps freed blocks resident (test_engine's note)
        monkeypatch.setenv("ASAN_OPTIONS", "quarantine_size_mb=0")
    srv = httpd(CONF, servers=1, threads=10)
    kid = srv.child_pids()[0]
    n, detached = 1500, 0

    def round_trip():
        nonlocal detached
        swarm = Swarm(srv.port)
        try:
            for i in range(n):
                swarm.open(f"/sub/m{i % 20}", "stream")
            swarm.run_until(lambda: all(c.connected and not c.out for c in swarm.conns), 30,
                            "requests sent")
            detached += n

            def all_detached():
                swarm.pump(0.05)
                return srv.error_log().count("PS0081: stream detached") >= detached
            wait_for(all_detached, timeout=30, interval=0.1, what=f"{detached} detached")
        finally:
            swarm.close_all()
        for i in range(20):
            wait_subscribers(srv, f"m{i}", 0, timeout=20)

    round_trip()
    base = srv.rss_kb()[kid]
    for _ in range(4):
        round_trip()
    # freed memory goes back with the loop's malloc_trim() once the last
    # subscriber left; allow it a moment
    growth = srv.rss_growth_kb(kid, base, 2 * 1024)
    assert srv.error_log().count("PS0081: stream detached") == 5 * n
    assert growth < 2 * 1024, f"RSS grew by {growth} kB over 4 rounds of {n}"
