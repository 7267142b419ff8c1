"""Waiting long-polls leave httpd (issue 16): ~100 ms after a long-poll started
waiting, its request ends (logged as 200 with no body: the answer is not known
yet) and the loop keeps a dup() of its socket (on TLS: mod_ssl's session) and a
small block; httpd's connection is released.  The answer (message, JSONP,
timeout 304, a stopping child's 304) is then written by the loop with
`Connection: close`, as httpd sends it for every long-poll.  With
MaxRequestWorkers 50, thousands of waiting long-polls leave the event MPM
counting no connection at all."""
import os
import re
import time

from pyhttpd import httpd as pshttpd
from pyhttpd.client import Swarm
from pyhttpd.conf import pub_location, sub_location
from pyhttpd.client import Subscriber as Stream, assert_close_notify, publish, wait_subscribers

N = min(5000, int(os.environ.get("PS_CAPACITY_N") or 5000))
SLOW = float(os.environ.get("PS_SLOW") or 1)

CONF = "\n".join([
    "LogLevel info pushstream:trace1 mpm_event:trace6",
    pub_location(),
    sub_location("lp", "long-polling"),
    sub_location("lpt", "long-polling", ["PushStreamLongpollingConnectionTtl 2s"]),
    sub_location("lpj", "long-polling", 'PushStreamAllowedOrigins "*"'),
])
LEFT = "PS0081: stream detached from httpd"


def wait_left(srv, n, timeout=20):
    deadline = time.time() + timeout
    while True:
        seen = srv.error_log().count(LEFT)
        if seen >= n:
            return seen
        if time.time() > deadline:
            raise AssertionError(f"{seen} long-polls left httpd, expected {n}")
        time.sleep(0.1)


def wait_mpm_idle(srv, kids, timeout=15):
    """Every child's event MPM counts 0 connections and 0 suspended ones."""
    deadline = time.time() + timeout
    while True:
        c = srv.mpm_idle(kids)
        if c:
            return c
        if time.time() > deadline:
            raise AssertionError(f"MPM counters not idle: {srv.mpm_counts()}")
        time.sleep(0.3)


def test_thousands_of_waiting_long_polls_hold_no_connection_of_httpd(httpd):
    srv = httpd(CONF, servers=2, threads=25,            # MaxRequestWorkers 50
                extra_global="PushStreamSharedMemorySize 32M")
    kids = srv.child_pids()
    swarm = Swarm(srv.port)
    try:
        for i in range(N):
            swarm.open(f"/lp/w{i % 50}", "lp")
        swarm.run_until(lambda: all(c.connected and not c.out for c in swarm.conns),
                        60 * SLOW, "requests sent")
        for i in range(50):
            wait_subscribers(srv, f"w{i}", N // 50, timeout=60 * SLOW)
        t0 = time.time()
        wait_left(srv, N, timeout=60 * SLOW)
        counts = wait_mpm_idle(srv, kids, timeout=15 * SLOW)
        # the server still serves everything else at once
        r = Stream(srv, "/lp/other", read_headers=False)
        wait_subscribers(srv, "other", 1, timeout=10 * SLOW)   # else the publish may come first
        publish(srv, "other", b"hello")
        assert r.wait_end(timeout=5 * SLOW) == b"hello"
        print(f"\n{N} waiting long-polls, MaxRequestWorkers 50: all left httpd "
              f"{time.time() - t0:.1f} s after subscribing; MPM {counts}")
        for i in range(50):
            publish(srv, f"w{i}", f"msg{i}".encode())
        swarm.run_until(lambda: all(c.p.complete or c.closed for c in swarm.conns),
                        60 * SLOW, "every answer")
        for c in swarm.conns:
            i = int(c.path.rsplit("w", 1)[1])
            assert c.p.status == 200 and bytes(c.p.body) == f"msg{i}".encode(), \
                (c.path, c.p.status, bytes(c.p.body), c.p.error)
            assert c.p.header("Connection") == "close"
    finally:
        swarm.close_all()
    for i in range(50):
        wait_subscribers(srv, f"w{i}", 0)
    wait_mpm_idle(srv, kids)
    assert "AH00052" not in srv.error_log()


def check_answer(s, status, body, etag=None):
    assert s.status == status, (s.status, s.body)
    assert s.body == body
    assert s.header("Connection") == "close"
    assert s.header("Cache-Control") and s.header("Expires")   # kept from httpd's headers
    assert s.header("Last-Modified")
    if etag is not None:
        assert s.header("Etag") == etag


def test_detached_long_poll_answers(httpd):
    """Every kind of answer after leaving httpd: message (+Etag of its tag), JSONP,
    CORS headers kept, 304 timeout, a graceful restart's 304; plain and TLS (with a
    close_notify after the answer)."""
    srv = httpd(CONF, servers=1, threads=10, ssl_port=pshttpd.free_port(),
                extra_global="PushStreamSharedMemorySize 32M")
    msg = Stream(srv, "/lp/a", read_headers=False)
    tls = Stream(srv, "/lp/a", read_headers=False, tls=True)
    jsonp = Stream(srv, "/lpj/b?callback=cb", read_headers=False,
                   headers={"Origin": "http://example.com"})
    t304 = Stream(srv, "/lpt/c", read_headers=False)
    wait_subscribers(srv, "a", 2)
    wait_left(srv, 4)
    publish(srv, "a", b"to a")
    publish(srv, "b", b"to b")
    for s in (msg, tls):
        s.wait_end(timeout=5)
        check_answer(s, 200, b"to a")
        assert re.fullmatch(r"W/\d+", s.header("Etag"))
        assert s.header("Content-Type").startswith("text/plain")
    assert_close_notify(tls, timeout=5)
    jsonp.wait_end(timeout=5)
    check_answer(jsonp, 200, b"cb([to b]);")
    assert jsonp.header("Content-Type").startswith("application/javascript")
    assert jsonp.header("Access-Control-Allow-Origin") == "*"
    t304.wait_headers(timeout=5 * SLOW)
    t304.wait_end(timeout=5)
    check_answer(t304, 304, b"", etag="W/0")
    assert t304.header("Content-Length") == "0"
    # a stopping child answers its detached long-polls with 304 too
    g = Stream(srv, "/lp/g", read_headers=False, tls=True)
    wait_subscribers(srv, "g", 1)
    wait_left(srv, 5)
    srv.graceful()
    g.wait_end(timeout=15)
    check_answer(g, 304, b"")
    assert_close_notify(g, timeout=5)
    for s in (msg, tls, jsonp, t304, g):
        s.close()
    # the access log has each long-poll once, when it left httpd
    assert srv.access_log().count('"GET /lp/a HTTP/1.1"') == 2
    assert "AH00052" not in srv.error_log()
