"""Several servers on one Redis (PushStreamRedis, issue 17).

A real redis-server on a free loopback port (`--save ''`, never the system
service) and two real httpd instances A and B with the same PushStreamRedis.
"""
import json
import os
import re
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from pyhttpd import httpd as pshttpd
from pyhttpd.client import (Stream, h2_curl, http, publish, request, ssl_context,
                            wait_for, wait_subscribers)
from pyhttpd.conf import conf, location, location_match
from pyhttpd.proc import Proc, status_field

from .test_detach import wait_detached

REDIS_SERVER = "/usr/bin/redis-server"
TIMEOUT_MS = 1000                   # PushStreamRedisTimeout of the tests (ms)
TIMEOUT = TIMEOUT_MS / 1000
# PS_SLOW (the sanitizer pass): the margin of "answered within the timeout"
# grows with it, and so does a DEBUG SLEEP that must outlast timeout + margin
# (a publish that waited for Redis instead would come 0.8 s after the bound)
SLOW = float(os.environ.get("PS_SLOW") or 1)
BUSY = str(int(2 + SLOW))           # DEBUG SLEEP seconds: 3, 5 under PS_SLOW=3


class Redis(Proc):
    """redis-server on 127.0.0.1:port, data in memory only."""

    def __init__(self, workdir, port=None):
        self.dir = workdir
        self.port = port or pshttpd.free_port()
        super().__init__(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self.dir,
             "--logfile", os.path.join(self.dir, "redis.log"),
             "--protected-mode", "no", "--enable-debug-command", "local"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self):
        super().start()
        wait_for(lambda: self._ping(), timeout=10, what="redis-server up")
        return self

    def _ping(self):
        try:
            return self.cmd("PING") == "PONG"
        except OSError:
            return False

    def cmd(self, *args, timeout=5):
        """One command over RESP; the reply (str, int, list, or an Exception
        instance for an error reply)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            out = b"*%d\r\n" % len(args)
            for a in args:
                a = a if isinstance(a, bytes) else str(a).encode()
                out += b"$%d\r\n%s\r\n" % (len(a), a)
            s.sendall(out)
            f = s.makefile("rb")
            return _resp(f)


def _resp(f):
    line = f.readline()
    if not line:
        raise OSError("redis closed the connection")
    t, rest = line[:1], line[1:-2]
    if t == b"+":
        return rest.decode()
    if t == b"-":
        return RuntimeError(rest.decode())
    if t == b":":
        return int(rest)
    if t == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data.decode("utf-8", "replace")
    if t == b"*":
        n = int(rest)
        return None if n < 0 else [_resp(f) for _ in range(n)]
    raise OSError(f"bad RESP line {line!r}")


@pytest.fixture
def redis(workbase):
    d = tempfile.mkdtemp(prefix="redis-", dir=workbase)
    r = Redis(d).start()
    yield r
    r.stop()


SUB_TPL = 'PushStreamMessageTemplate "~id~:~text~|"'
SRV = """PushStreamRedis redis://127.0.0.1:{port}
PushStreamRedisTimeout {timeout}ms
PushStreamMaxMessagesStoredPerChannel 200
"""


def node_global(redis):
    """The server-level part of node_conf, for a node with an SSL vhost (whose
    body repeats the locations, but may not repeat these)."""
    return "PushStreamSharedMemorySize 32M\n" + SRV.format(port=redis.port, timeout=TIMEOUT_MS)


def node_conf(redis, extra_server="", extra="", locations_only=False):
    if locations_only:
        return conf(shm="", sub=SUB_TPL, lp=SUB_TPL, poll=SUB_TPL, extra=extra + NODE_LOCATIONS)
    return conf(server=SRV.format(port=redis.port, timeout=TIMEOUT_MS) + extra_server,
                sub=SUB_TPL, lp=SUB_TPL, poll=SUB_TPL, extra=extra + NODE_LOCATIONS)


NODE_LOCATIONS = (location("/channels-stats", "PushStreamChannelsStatistics\n"
                                              'PushStreamChannelsPath "%{arg:id}"')
                  + location_match("^/ev/(?<ch>.+)$",
                                   "PushStreamSubscriber eventsource\n"
                                   'PushStreamChannelsPath "%{env:MATCH_CH}"')
                  + location_match("^/ws/(?<ch>.+)$",
                                   "PushStreamSubscriber websocket\n"
                                   'PushStreamChannelsPath "%{env:MATCH_CH}"\n'
                                   "PushStreamWebsocketAllowPublish on\n" + SUB_TPL))


@pytest.fixture
def nodes(httpd, redis):
    """Two httpd nodes (A, B) on the same Redis."""
    a = httpd(node_conf(redis))
    b = httpd(node_conf(redis))
    return a, b


def ids_of(body):
    """[(id, text)] of a "~id~:~text~|" stream."""
    out = []
    for part in body.decode().split("|"):
        if ":" in part:
            i, t = part.split(":", 1)
            out.append((int(i), t))
    return out


def redis_stats(node):
    """The X-PushStream-Redis figures of the statistics, as a dict."""
    r = request(node, "GET", "/channels-stats")
    assert r.status == 200, r
    return dict(kv.split("=") for kv in r.header("X-PushStream-Redis").split())


def prom(node):
    r = request(node, "GET", "/channels-stats?format=prometheus")
    return dict(l.rsplit(" ", 1) for l in r.body.decode().splitlines()
                if l.startswith("pushstream_redis"))


def _hcount(redis, channel, node):
    """The count node wrote for channel in ps:{channel}:subs ("count/start"),
    or None."""
    v = redis.cmd("HGET", f"ps:{{{channel}}}:subs", node)
    return v.split("/")[0] if v is not None else None


def wait_subscribed(redis, channel, n=1, timeout=10):
    """Until n httpd children subscribe the channel in Redis (every child of a
    node with subscribers of the channel subscribes: 2 children per node)."""
    def check():
        r = redis.cmd("PUBSUB", "NUMSUB", "ps:" + channel)
        return r[1] >= n
    wait_for(check, timeout=timeout, what=f"{channel} subscribed in Redis")


# ====================================================================== delivery
def test_publish_on_a_reaches_stream_on_b_and_a(nodes, redis):
    a, b = nodes
    sb = Stream(b, "/sub/ch1")
    sa = Stream(a, "/sub/ch1")
    wait_subscribed(redis, "ch1", 4)
    r = publish(a, "ch1", "hello", headers={"Accept": "application/json"})
    info = json.loads(r.body)
    assert info["channel"] == "ch1" and info["published_messages"] == 1
    assert info["stored_messages"] == 1
    sb.wait_for(b"1:hello|")
    sa.wait_for(b"1:hello|")
    publish(b, "ch1", "again")
    sa.wait_for(b"2:again|")
    sb.wait_for(b"2:again|")


def test_every_transport_on_b_and_a_gets_a_publish_on_a(nodes, redis):
    """Streaming, EventSource, WebSocket and long-polling on both nodes."""
    import asyncio
    import websockets

    a, b = nodes
    streams = [Stream(n, p) for n in (a, b) for p in ("/sub/tr", "/ev/tr")]
    lps = []

    def longpoll(n):
        lps.append(request(n, "GET", "/lp/tr", timeout=15))

    async def run():
        wss = [await websockets.connect(f"ws://127.0.0.1:{n.port}/ws/tr",
                                        ping_interval=None, open_timeout=10)
               for n in (a, b)]
        ths = [threading.Thread(target=longpoll, args=(n,)) for n in (a, b)]
        for t in ths:
            t.start()
        # every child of both nodes: the WebSocket message below is not
        # stored, so a child that subscribes later could not catch it up
        await asyncio.to_thread(wait_subscribed, redis, "tr", 4)
        # 4 waiting connections per node (2 streams, 1 WebSocket, 1 long-poll):
        # channel info counts both nodes
        for n in (a, b):
            await asyncio.to_thread(
                wait_for, lambda n=n: json.loads(request(
                    n, "GET", "/pub?id=tr", headers={"Accept": "application/json"}
                ).body)["subscribers"] == 8, 10, 0.05, "subscribers")
        await asyncio.to_thread(publish, a, "tr", "to all")
        for ws in wss:
            assert await asyncio.wait_for(ws.recv(), 10) == "1:to all|"
        # a WebSocket on B publishes through Redis as well
        await wss[1].send("from ws")
        for ws in wss:
            assert await asyncio.wait_for(ws.recv(), 10) == "2:from ws|"
        for t in ths:
            await asyncio.to_thread(t.join, 15)
        for ws in wss:
            await ws.close()

    asyncio.run(run())
    for s in streams:
        s.wait_for(b"to all")
        s.wait_for(b"from ws")
    assert len(lps) == 2
    for r in lps:
        assert r.status == 200 and r.body == b"1:to all|", r


def test_tls_and_h2_subscribers_on_b_get_a_publish_on_a(httpd, redis):
    """B serves https and HTTP/2 as a user runs it: streaming, EventSource,
    WebSocket (wss) and long-polling over TLS (parked by the loop), streaming,
    EventSource and long-polling over h2 (each on its h2 worker) and h2c; a
    publish on plain A reaches every one, and replay over h2 on B answers
    what A stored."""
    import asyncio
    import websockets

    a = httpd(node_conf(redis))
    b = httpd(node_conf(redis, locations_only=True), servers=1, modules=["http2"],
              ssl_port=pshttpd.free_port(),
              extra_global=node_global(redis) + "Protocols h2 h2c http/1.1\n"
              "LogLevel info pushstream:trace1\n")

    tls_streams = [Stream(b, p, tls=True) for p in ("/sub/sec", "/ev/sec")]
    curls = [h2_curl(b, p) for p in ("/sub/sec", "/ev/sec", "/lp/sec")] + \
        [h2_curl(b, "/sub/sec", tls=False)]
    lps = []
    lp = threading.Thread(target=lambda: lps.append(
        http(b, "GET", "/lp/sec", tls=True, timeout=15)))
    lp.start()

    async def run():
        ws = await websockets.connect(f"wss://127.0.0.1:{b.ssl_port}/ws/sec",
                                      ssl=ssl_context(b), ping_interval=None,
                                      open_timeout=10)
        await asyncio.to_thread(wait_subscribers, b, "sec", 8)
        await asyncio.to_thread(wait_subscribed, redis, "sec", 1)
        # the four over TLS/1.1 wait in the loop, not on a worker
        await asyncio.to_thread(wait_detached, b, 4, tls=True)
        await asyncio.to_thread(publish, a, "sec", "over tls and h2")
        assert await asyncio.wait_for(ws.recv(), 10) == "1:over tls and h2|"
        await ws.close()

    try:
        asyncio.run(run())
        for s in tls_streams:
            s.wait_for(b"over tls and h2")
        for c in (curls[0], curls[2], curls[3]):
            c.wait_for(b"1:over tls and h2|")
        curls[1].wait_for(b"data: over tls and h2\n")
        assert curls[2].wait_exit(timeout=10) == 0      # the h2 long-poll answered
        lp.join(15)
        assert len(lps) == 1 and lps[0].status == 200, lps
        assert lps[0].body == b"1:over tls and h2|", lps[0]
        publish(a, "sec", "second")
        for c in (curls[0], curls[3]):
            c.wait_for(b"2:second|")
        curls[1].wait_for(b"data: second\n")
        # replay on B over h2 of what A stored
        with h2_curl(b, "/poll/sec.b2") as c:
            assert c.wait_exit(timeout=10) == 0
            assert c.output() == b"1:over tls and h2|2:second|", c.output()
    finally:
        for c in curls:
            c.stop()
        for s in tls_streams:
            s.close()
    assert "PS0100: HTTP/2 subscribers are served each on its h2 worker" in b.error_log()


def test_concurrent_publishers_on_both_nodes_one_order_everywhere(nodes, redis):
    """100 messages from 4 publishers (2 on A, 2 on B): every subscriber on
    both nodes gets all of them once, in one order, ids strictly increasing."""
    a, b = nodes
    subs = [Stream(n, "/sub/order") for n in (a, b) for _ in range(2)]
    wait_subscribed(redis, "order", 4)
    errors = []

    def pub(node, k):
        for i in range(25):
            try:
                publish(node, "order", f"p{k}-{i}")
            except Exception as e:  # noqa: BLE001
                errors.append(e)

    ths = [threading.Thread(target=pub, args=(n, k))
           for k, n in enumerate((a, a, b, b))]
    for t in ths:
        t.start()
    for t in ths:
        t.join(60)
    assert not errors, errors
    for s in subs:
        s.wait(lambda s=s: len(ids_of(s.body)) >= 100, timeout=20, what="100 messages")
    seqs = [ids_of(s.body) for s in subs]
    for q in seqs:
        assert len(q) == 100
        assert [i for i, _ in q] == list(range(1, 101))
        assert len({t for _, t in q}) == 100
    assert all(q == seqs[0] for q in seqs)


def test_publisher_port_and_delete_reach_the_other_node(httpd, redis):
    """A publish on A's publisher port reaches B; a DELETE on B ends the
    channel's subscribers on A too.  A GET on A's port of a channel published
    through B only (A has no copy of it) is caught up from Redis on the loop:
    the same document as A's and B's publisher location (by_node aside for
    B's) in every format, 404 for a channel that exists nowhere; pipelined
    GET, POST, GET on one port connection answer in order."""
    import http.client
    port = pshttpd.free_port()
    cfg = conf(server=SRV.format(port=redis.port, timeout=TIMEOUT_MS),
               pub=f"PushStreamPublisherListen 127.0.0.1:{port}", sub=SUB_TPL)
    a, b = httpd(cfg), httpd(node_conf(redis))
    wait_for(lambda: pshttpd.tcp_connects(port), what="publisher port")
    sa, sb = Stream(a, "/sub/pp"), Stream(b, "/sub/pp")
    wait_subscribed(redis, "pp", 4)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("POST", "/pub?id=pp", body=b"via port")
    r = c.getresponse()
    assert r.status == 200 and json.loads(r.read())["published_messages"] == 1
    c.close()
    sb.wait_for(b"1:via port|")
    sa.wait_for(b"1:via port|")
    r = request(b, "DELETE", "/pub?id=pp")
    assert r.status == 200, r
    sa.wait_for(b"Channel deleted")
    sa.wait_closed()
    assert request(a, "GET", "/pub?id=pp").status == 404
    # GET on the port: caught up from Redis (no subscriber of pg on A)
    sg = Stream(b, "/sub/pg")
    wait_subscribed(redis, "pg", 2)
    for i in range(3):
        publish(b, "pg", f"g{i}")
    na, nb = (f"{socket.gethostname()}:{n.port}" for n in (a, b))
    wait_for(lambda: _hcount(redis, "pg", nb) == "1", 5, 0.05,
             "B's subscriber count in Redis")

    def port_get(path, accept):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept: {accept}\r\n"
                  "Connection: close\r\n\r\n".encode())
        with s:
            return _port_read(s.makefile("rb"))

    st, hd, body = port_get("/pub?id=pg", "application/json")
    assert st == 200, (st, body)
    doc = json.loads(body)
    want = json.loads(_info(b, "/pub?id=pg"))
    assert doc.pop("by_node") == {na: 0, nb: 1}, doc
    want.pop("by_node")
    assert doc == want and doc["published_messages"] == 3 \
        and doc["stored_messages"] == 3 and doc["subscribers"] == 1, (doc, want)
    for accept in ("application/json", "text/x-json", "application/xml",
                   "application/yaml", "text/plain"):
        st, hd, body = port_get("/pub?id=pg", accept)
        r = request(a, "GET", "/pub?id=pg", headers={"Accept": accept})
        assert (st, hd["content-type"], body) \
            == (r.status, r.header("Content-Type"), r.body), (accept, body, r)
    assert port_get("/pub?id=nowhere", "application/json")[0] == 404
    # pipelined on one connection: answered in order
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /pub?id=pg HTTP/1.1\r\nHost: x\r\n\r\n"
              b"POST /pub?id=pg HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\ng3"
              b"GET /pub?id=pg/nowhere HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /pub?id=nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
    f = s.makefile("rb")
    got = [_port_read(f) for _ in range(4)]
    s.close()
    assert [g[0] for g in got] == [200, 200, 200, 404], got
    assert [json.loads(g[2])["published_messages"] for g in got[:3]] == [3, 4, 4], got
    sg.wait_for(b"4:g3|")
    sg.close()


# ====================================================================== replay
def _poll(node, path, headers=None):
    r = request(node, "GET", path, headers=headers or {})
    return r.status, r.body, r.header("Last-Modified"), r.header("Etag")


def test_replay_on_b_of_what_a_published(nodes, redis):
    a, b = nodes
    for i in range(1, 4):
        publish(a, "rp", f"m{i}", headers={"Event-Id": f"e{i}"})
    # time/tag of m3 (Last-Modified / Etag of a poll), the same on A and B
    ra, rb = _poll(a, "/poll/rp.b1"), _poll(b, "/poll/rp.b1")
    assert ra == rb and ids_of(ra[1]) == [(3, "m3")], (ra, rb)
    lm, etag = ra[2], ra[3]
    for i in range(4, 6):
        publish(a, "rp", f"m{i}", headers={"Event-Id": f"e{i}"})
    # .bN backtrack on a stream of B
    s = Stream(b, "/sub/rp.b2")
    s.wait_for(b"4:m4|5:m5|")
    # polling / long-polling, backtrack and time+tag: the same on A and B
    since = {"If-Modified-Since": lm, "If-None-Match": etag}
    epoch = {"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"}
    for path, hdr, want in (("/poll/rp.b3", {}, [3, 4, 5]),
                            ("/lp/rp.b1", {}, [5]),
                            ("/poll/rp", since, [4, 5]),
                            ("/lp/rp", since, [4, 5]),
                            ("/poll/rp", epoch, [1, 2, 3, 4, 5])):
        ra, rb = _poll(a, path, hdr), _poll(b, path, hdr)
        assert ra == rb, (path, ra, rb)
        assert ra[0] == 200 and [i for i, _ in ids_of(ra[1])] == want, (path, ra)
    # Last-Event-ID (EventSource) on B
    with Stream(b, "/ev/rp", {"Last-Event-Id": "e3"}) as ev:
        ev.wait_for(b"m5")
        assert b"m3" not in ev.body and b"m4" in ev.body
    # channel info: cluster-wide published / stored
    for n in (a, b):
        i = json.loads(request(n, "GET", "/pub?id=rp",
                               headers={"Accept": "application/json"}).body)
        assert i["published_messages"] == 5 and i["stored_messages"] == 5, i


def test_full_stop_and_start_of_both_nodes_keeps_stored_messages(httpd, redis):
    a = httpd(node_conf(redis))
    b = httpd(node_conf(redis))
    for i in range(1, 4):
        publish(a, "keep", f"k{i}")
    a.stop()
    b.stop()
    a2 = httpd(node_conf(redis))
    b2 = httpd(node_conf(redis))
    for n in (a2, b2):
        st, body, _, _ = _poll(n, "/poll/keep.b10")
        assert st == 200 and ids_of(body) == [(1, "k1"), (2, "k2"), (3, "k3")]
    r = publish(b2, "keep", "k4", headers={"Accept": "application/json"})
    assert json.loads(r.body)["published_messages"] == 4


# ====================================================================== faults
def test_redis_killed_publish_503_subscribers_stay_then_resume(nodes, redis):
    a, b = nodes
    sa, sb = Stream(a, "/sub/kill"), Stream(b, "/sub/kill")
    wait_subscribed(redis, "kill", 4)
    publish(a, "kill", "before")
    sb.wait_for(b"1:before|")
    redis.kill()
    t0 = time.time()
    r = publish(a, "kill", "lost", expect=None)
    took = time.time() - t0
    assert r.status == 503, r
    assert r.header("Retry-After") == "1"
    assert r.header("X-Nginx-PushStream-Explain") == "Redis is unreachable; retry later."
    assert took < TIMEOUT + 1.0 * SLOW, took
    wait_for(lambda: redis_stats(b)["state"] == "down", timeout=5, what="B down")
    st = redis_stats(a)
    assert st["state"] == "down" and int(st["publish_failures"]) >= 1, st
    assert prom(a)["pushstream_redis_up"] == "0"
    # the subscribers stay connected
    time.sleep(0.5)
    assert not sa.eof and not sb.eof
    redis.start()                                   # empty: no persistence
    # published through B while A may not have reconnected yet
    wait_for(lambda: publish(b, "kill", "after", expect=None).status == 200,
             timeout=10, what="publish after restart")
    sa.wait_for(b"2:after|", timeout=15)
    sb.wait_for(b"2:after|", timeout=15)
    assert b"lost" not in sa.body + sb.body
    assert ids_of(sa.body) == ids_of(sb.body) == [(1, "before"), (2, "after")]
    st = redis_stats(a)
    assert st["state"] == "up" and int(st["disconnects"]) >= 1, st
    assert prom(a)["pushstream_redis_up"] == "1"
    log = open(a.error_log_path).read()
    assert log.count("PS0172") == 1, log
    assert log.count("PS0174") == 1, log
    assert "PS0171" in log and "PS0174" in log


def test_pubsub_connections_killed_messages_meanwhile_arrive(nodes, redis):
    a, b = nodes
    sb = Stream(b, "/sub/ck")
    wait_subscribed(redis, "ck", 2)
    publish(a, "ck", "one")
    sb.wait_for(b"1:one|")
    assert redis.cmd("CLIENT", "KILL", "TYPE", "pubsub") >= 1
    publish(a, "ck", "two")                         # maybe nobody subscribed now
    publish(a, "ck", "three")
    sb.wait_for(b"3:three|", timeout=10)
    assert ids_of(sb.body) == [(1, "one"), (2, "two"), (3, "three")]


def test_missed_announcement_gap_filled_before_live_delivery(nodes, redis):
    """A message stored in Redis whose announcement no node got (written
    here without PUBLISH): the next announcement jumps the id, and each
    node's loop fills the gap from the stored messages before it delivers
    the live one, in order."""
    a, b = nodes
    ss = [Stream(a, "/sub/gap"), Stream(b, "/sub/gap")]
    wait_subscribed(redis, "gap", 4)
    publish(a, "gap", "m1")
    for s in ss:
        s.wait_for(b"1:m1|")
    rec = redis.cmd("ZRANGE", "ps:{gap}:msgs", 0, -1)[0]
    head, text = rec.split("\n", 1)
    assert head.startswith("1 ") and text == "m1", rec
    assert redis.cmd("ZADD", "ps:{gap}:msgs", 2, "2" + head[1:] + "\nm2") == 1
    redis.cmd("HSET", "ps:{gap}:meta", "id", 2)
    before = [int(redis_stats(n)["gaps_filled"]) for n in (a, b)]
    publish(a, "gap", "m3")
    for s in ss:
        s.wait_for(b"3:m3|")
        assert ids_of(s.body) == [(1, "m1"), (2, "m2"), (3, "m3")], s.body
    after = [int(redis_stats(n)["gaps_filled"]) for n in (a, b)]
    assert after[0] > before[0] and after[1] > before[1], (before, after)


def test_script_flush_and_debug_sleep(nodes, redis):
    a, b = nodes
    sb = Stream(b, "/sub/sf")
    wait_subscribed(redis, "sf", 2)
    publish(a, "sf", "x1")
    assert redis.cmd("SCRIPT", "FLUSH") == "OK"
    publish(a, "sf", "x2")                          # NOSCRIPT: loaded again
    sb.wait_for(b"2:x2|")
    # Redis busy longer than the timeout: 503 within the timeout
    th = threading.Thread(target=lambda: redis.cmd("DEBUG", "SLEEP", BUSY, timeout=10))
    th.start()
    time.sleep(0.2)
    t0 = time.time()
    r = publish(a, "sf", "x3", expect=None)
    took = time.time() - t0
    th.join(10)
    assert r.status == 503 and took < TIMEOUT + 1.0 * SLOW, (r, took)
    wait_for(lambda: publish(a, "sf", "x4", expect=None).status == 200,
             timeout=10, what="publish after DEBUG SLEEP")
    sb.wait_for(b":x4|", timeout=10)
    got = ids_of(sb.body)
    assert [i for i, _ in got] == sorted({i for i, _ in got})   # no duplicate
    assert got[-1][1] == "x4"


def test_one_megabyte_message(nodes, redis):
    a, b = nodes
    sb = Stream(b, "/sub/big")
    wait_subscribed(redis, "big", 2)
    big = ("0123456789abcdef" * 65536)             # 1 MiB
    publish(a, "big", big)
    sb.wait_len(len(big) + 3, timeout=15)
    assert ids_of(sb.body) == [(1, big)]
    st, body, _, _ = _poll(b, "/poll/big.b1")
    assert ids_of(body) == [(1, big)]


def test_redis_restarted_empty_ids_never_go_back(nodes, redis):
    a, b = nodes
    sb = Stream(b, "/sub/ep")
    wait_subscribed(redis, "ep", 2)
    for i in range(1, 4):
        publish(a, "ep", f"v{i}")
    sb.wait_for(b"3:v3|")
    redis.stop()
    redis.start()                                   # lost everything
    wait_subscribed(redis, "ep", 2, timeout=15)
    # B re-subscribed and told Redis where its ids are: A's next id follows
    wait_for(lambda: publish(a, "ep", "v4", expect=None).status == 200,
             timeout=10, what="publish after restart")
    sb.wait_for(b":v4|", timeout=10)
    got = ids_of(sb.body)
    ids = [i for i, _ in got]
    assert ids == sorted(set(ids)) and ids[-1] > 3, got
    assert "PS0173" in open(b.error_log_path).read() + open(a.error_log_path).read()


# ====================================================================== config
def test_configtest_rejects_a_malformed_url(configtest):
    for bad in ("127.0.0.1:6379", "redis://h:99999", "redis://pw@h", "unix:rel"):
        rc, out = configtest(conf(server=f"PushStreamRedis {bad}"))
        assert rc != 0, out
        assert "PushStreamRedis: invalid address" in out and "httpd.conf:" in out, out
    rc, out = configtest(conf(server="PushStreamRedis redis://127.0.0.1:1/2"))
    assert rc == 0, out


def test_wildcard_and_events_channels_keep_working(httpd, redis):
    extra = ('PushStreamWildcardChannelPrefix "wild_"\n'
             'PushStreamEventsChannelId "events"\n')
    sub_extra = "PushStreamAllowConnectionsToEventsChannel on\n"
    cfg = conf(server=SRV.format(port=redis.port, timeout=TIMEOUT_MS) + extra,
               sub=SUB_TPL + "\n" + sub_extra)
    a, b = httpd(cfg), httpd(cfg)
    ev = Stream(b, "/sub/events")
    sw = Stream(b, "/sub/wch/wild_all")
    wait_subscribed(redis, "wild_all", 2)
    publish(a, "wild_all", "to everybody")
    sw.wait_for(b"1:to everybody|")
    publish(b, "newch", "x")
    ev.wait_for(b'"channel_created"')
    ev.wait_for(b'"newch"')
    # the events channel is this node's: nobody publishes to it
    assert publish(a, "events", "no", expect=None).status == 403


# ====================================================================== conf.d
def test_conf_d_two_nodes_behind_a_balancer(httpd, redis):
    """conf.d/two-nodes.conf: two nodes and the balancer front end, as
    written (addresses replaced by loopback ones)."""
    root = pshttpd.ROOT
    with open(os.path.join(root, "conf.d", "two-nodes.conf")) as f:
        text = f.read()
    with open(os.path.join(root, "conf.d", "pushstream.conf")) as f:
        base = f.read()
    text = text.replace("10.0.0.20:6379", f"127.0.0.1:{redis.port}")
    p1, p2 = pshttpd.free_port(), pshttpd.free_port()
    n1 = httpd(base + "\n" + text, port=p1)
    n2 = httpd(base + "\n" + text, port=p2)
    front = httpd(text.replace("10.0.0.11:80", f"127.0.0.1:{p1}")
                  .replace("10.0.0.12:80", f"127.0.0.1:{p2}"),
                  load_pushstream=False,
                  modules=["proxy", "proxy_http", "proxy_balancer",
                           "lbmethod_byrequests", "slotmem_shm"])
    ev1, ev2 = Stream(n1, "/push/ev/desk"), Stream(n2, "/push/ev/desk")
    wait_subscribed(redis, "desk", 4)
    for i in range(4):                  # each node's application publishes locally
        r = request((n1, n2)[i % 2], "POST", "/push/pub?id=desk", body=f"t{i}".encode())
        assert r.status == 200, r
    r = request(front, "POST", "/push/pub?id=desk", body=b"x")
    assert r.status == 404, r           # the front end does not proxy publishing
    for ev in (ev1, ev2):
        ev.wait_for(b"data: t3")
        assert [l for l in ev.body.split(b"\n") if l.startswith(b"data: ")] == \
            [b"data: t%d" % i for i in range(4)]
    for _ in range(2):                  # either node answers the same replay
        r = request(front, "GET", "/push/lp/desk?time=Thu,%2001%20Jan%201970%2000:00:00%20GMT&tag=0")
        assert r.status == 200 and [json.loads(x)["text"] for x in
                                    r.body.decode().replace("}{", "}\n{").splitlines()] \
            == ["t0", "t1", "t2", "t3"], r


def test_prefork_nodes(httpd, redis):
    """Under prefork (blocking subscribers) every child subscribes for
    itself; delivery and replay are the same."""
    a = httpd(node_conf(redis), mpm="prefork", servers=3)
    b = httpd(node_conf(redis), mpm="prefork", servers=3)
    # logged by the first child that attaches to Redis: wait for it
    wait_for(lambda: "PS0178: PushStreamRedis: publisher locations publish on a "
             "blocking Redis connection per worker thread"
             in open(a.error_log_path).read(), 30, what="PS0178")
    sb = Stream(b, "/sub/pf")
    wait_subscribed(redis, "pf", 1)
    publish(a, "pf", "one")
    publish(a, "pf", "two")
    sb.wait_for(b"1:one|2:two|")
    st, body, _, _ = _poll(b, "/poll/pf.b2")
    assert ids_of(body) == [(1, "one"), (2, "two")]


def test_graceful_restart_of_a_node(nodes, redis):
    """After `graceful` the new children of B start their Redis threads and
    B serves the channel again (state page kept across the restart)."""
    a, b = nodes
    publish(a, "gr", "before")
    b.graceful()
    sb = Stream(b, "/sub/gr.b1")
    sb.wait_for(b"1:before|")
    wait_subscribed(redis, "gr", 1)     # the new children start one by one
    publish(a, "gr", "after")
    sb.wait_for(b"2:after|")
    assert redis_stats(b)["state"] == "up"


def test_per_user_channels_coming_and_going_free_their_names(httpd, redis):
    """Per-user channels come and go for days between two reconnects: the
    names of channels gone leave the child's pub/sub session (PS0180 once
    they outweigh the kept ones), and delivery goes on on a channel kept
    throughout, on a new one and on one that comes back."""
    node = httpd(node_conf(redis), servers=1, threads=25,
                 extra_global="LogLevel info pushstream:debug\n")
    pad = "x" * 140                      # 64 KB of names gone in ~450 channels

    def name(r, i):
        return f"user-{r}-{i}-{pad}"

    def numsub(names):
        r = redis.cmd("PUBSUB", "NUMSUB", *["ps:" + n for n in names])
        return r[1::2]

    keeper = Stream(node, "/sub/keeper")
    wait_subscribed(redis, "keeper", 1)
    rounds = 0
    while "PS0180" not in node.error_log():
        assert rounds < 12, "no PS0180 after 12 rounds of 100 channels gone"
        names = [name(rounds, i) for i in range(100)]
        streams = [Stream(node, f"/sub/{n}") for n in names]
        wait_for(lambda: numsub(names) == [1] * 100, 10 * SLOW, what="a round subscribed")
        for st in streams:
            st.close()
        wait_for(lambda: numsub(names) == [0] * 100, 10 * SLOW, what="a round unsubscribed")
        rounds += 1
    assert rounds >= 4, rounds               # not before 64 KB of names went
    m = re.search(r"PS0180: .* freed \((\d+) bytes; channels subscribed: (\d+)\)",
                  node.error_log())
    assert m and int(m.group(1)) >= 64 * 1024 and m.group(2) == "1", m and m.group(0)
    # delivery goes on: the kept channel, a new one, one that comes back
    again = name(0, 7)
    streams = [Stream(node, "/sub/fresh"), Stream(node, f"/sub/{again}")]
    wait_for(lambda: numsub(["keeper", "fresh", again]) == [1, 1, 1], 10 * SLOW,
             what="the three subscribed")
    for ch, st in (("keeper", keeper), ("fresh", streams[0]), (again, streams[1])):
        publish(node, ch, "after " + ch[:5])
        st.wait_for(f"1:after {ch[:5]}|".encode())
    assert _hcount(redis, "keeper", f"{socket.gethostname()}:{node.port}") == "1"
    for st in [keeper, *streams]:
        st.close()


# ============================================================ statistics
def _info(node, path, accept="application/json"):
    r = request(node, "GET", path, headers={"Accept": accept})
    assert r.status == 200, r
    return r.body.decode()


def test_subscribers_cluster_wide_with_by_node(nodes, redis):
    """Channel info on either node counts the subscribers of every node
    (by_node per node, in every format and Prometheus); a stopped node's
    count disappears within the expiry (3 s)."""
    a, b = nodes
    host = socket.gethostname()
    na, nb = f"{host}:{a.port}", f"{host}:{b.port}"
    ss = [Stream(a, "/sub/cw"), Stream(b, "/sub/cw"), Stream(b, "/sub/cw")]
    publish(a, "cw", "x")
    want = {na: 1, nb: 2}
    for n in (a, b):
        wait_for(lambda n=n: json.loads(_info(n, "/pub?id=cw")).get("by_node")
                 == want, 10, 0.05, "by_node on both nodes")
    for n in (a, b):
        info = json.loads(_info(n, "/pub?id=cw"))
        assert info["subscribers"] == 3 and info["published_messages"] == 1, info
        st = json.loads(_info(n, "/channels-stats?id=cw"))
        assert st["subscribers"] == 3 and st["by_node"] == want, st
        grp = json.loads(_info(n, "/channels-stats?id=ALL"))
        cw = [i for i in grp["infos"] if i["channel"] == "cw"][0]
        assert cw["subscribers"] == 3 and cw["by_node"] == want, grp
    # the answer of a publish too
    info = json.loads(publish(b, "cw", "y", headers={"Accept": "application/json"}).body)
    assert info["subscribers"] == 3 and info["by_node"] == want, info
    # every format
    xml = _info(a, "/pub?id=cw", "application/xml")
    assert "<subscribers>3</subscribers>" in xml
    assert f"<node><name>{nb}</name><subscribers>2</subscribers></node>" in xml
    yml = _info(b, "/pub?id=cw", "application/yaml")
    assert "subscribers: 3" in yml and f"    - node: \"{na}\"\r\n      subscribers: 1" in yml
    txt = _info(a, "/pub?id=cw", "text/plain")
    pairs = ", ".join(f"{k}={v}" for k, v in sorted(want.items()))
    assert "active_subscribers: 3" in txt and f"by_node: {pairs}\r\n" in txt, txt
    xj = json.loads(_info(a, "/pub?id=cw", "text/x-json"))
    assert xj["by_node"] == want
    pm = request(a, "GET", "/channels-stats?id=cw&format=prometheus").body.decode()
    assert 'pushstream_channel_subscribers{channel="cw"} 3' in pm, pm
    assert f'pushstream_channel_node_subscribers{{channel="cw",node="{nb}"}} 2' in pm
    # a subscriber leaves B: promptly counted everywhere
    ss[2].close()
    wait_for(lambda: json.loads(_info(a, "/pub?id=cw"))["subscribers"] == 2,
             5, 0.05, "a subscriber gone")
    # B stopped with its subscriber (its count is not withdrawn): gone from
    # A when B's node key expires (3 s)
    t_stop = time.monotonic()
    b.stop()
    ss[1].close()
    seen = json.loads(_info(a, "/pub?id=cw"))["by_node"]
    # B's key lives 3 s after its children's last refresh, which may be
    # before the stop began: a stop slower than ~2 s (ASan under CI load)
    # may legitimately see it expired already
    if time.monotonic() - t_stop < 2.0:
        assert seen == {na: 1, nb: 1}, seen
    else:
        assert seen in ({na: 1, nb: 1}, {na: 1}), seen
    t0 = time.monotonic()
    wait_for(lambda: json.loads(_info(a, "/pub?id=cw")).get("by_node") == {na: 1},
             6, 0.1, "B's count expired")
    assert time.monotonic() - t0 < 4.5
    assert json.loads(_info(a, "/pub?id=cw"))["subscribers"] == 1
    ss[0].close()


def test_node_started_again_leaves_its_old_counts(nodes, redis):
    """A node stopped with subscribers (its counts are not withdrawn) and
    started again under the same name within the counts' lifetime: its old
    counts do not come back with it (each count carries the start of the
    node that wrote it; ps:node:<node> holds the current one)."""
    a, b = nodes
    host = socket.gethostname()
    na, nb = f"{host}:{a.port}", f"{host}:{b.port}"
    sa, sb = Stream(a, "/sub/rs"), Stream(b, "/sub/rs")
    wait_for(lambda: json.loads(_info(a, "/pub?id=rs")).get("by_node") == {na: 1, nb: 1},
             10, 0.05, "both counted")
    b.stop()
    sb.close()
    b.start()
    wait_for(lambda: redis_stats(b)["state"] == "up", 10, 0.1, "B up again")
    start = redis.cmd("GET", f"ps:node:{nb}")
    assert start and _hcount(redis, "rs", nb) == "1", start   # the old count is there
    wait_for(lambda: json.loads(_info(a, "/pub?id=rs")).get("by_node") == {na: 1},
             2, 0.05, "B's old count not counted")
    for _ in range(10):                   # and stays so (B's key is live)
        assert json.loads(_info(a, "/pub?id=rs"))["by_node"] == {na: 1}
        time.sleep(0.1)
    assert redis.cmd("GET", f"ps:node:{nb}") == start
    sa.close()


def _calls(redis, cmd):
    """How many times Redis ran cmd (INFO commandstats)."""
    m = re.search(rf"^cmdstat_{cmd}:calls=(\d+)", redis.cmd("INFO", "commandstats"), re.M)
    return int(m.group(1)) if m else 0


def test_subscriber_counts_written_when_they_change(nodes, redis):
    """Per-user channels: a node's subscriber counts go to Redis when they
    change and again only every 20 s (ps:{ch}:subs lives 60 s after its last
    write), the node's liveness key every second; the channels are not walked
    while no count changed.  30 channels with steady subscribers: a 2 s window
    without one HSET (the second of two windows, in case the first met the
    20 s rewrite; writing every count every second had 30 per child per
    second), the liveness key written meanwhile, a new subscriber's count
    there at once."""
    a, b = nodes
    na = f"{socket.gethostname()}:{a.port}"
    n = 30
    ss = [Stream(a, f"/sub/pu{i}") for i in range(n)]
    for i in range(n):
        wait_for(lambda i=i: _hcount(redis, f"pu{i}", na) == "1",
                 10, 0.05, f"pu{i}'s count in Redis")
    assert 6000 < redis.cmd("PTTL", "ps:{pu0}:subs") <= 60000
    prev = [-1]

    def settled():                       # no HSET since the previous look
        cur, prev[0] = _calls(redis, "hset"), prev[0]
        same, prev[0] = cur == prev[0], cur
        return same

    wait_for(settled, 10, 0.3, "counts written")
    windows = []
    for _ in range(2):
        h0, s0 = _calls(redis, "hset"), _calls(redis, "set")
        time.sleep(2)
        windows.append((_calls(redis, "hset") - h0, _calls(redis, "set") - s0))
        if windows[-1][0] == 0:
            break
    assert windows[-1][0] == 0, f"HSETs per 2 s window: {windows}"
    assert windows[-1][1] >= 2, f"liveness keys per 2 s window: {windows}"
    extra = Stream(a, "/sub/pu0")
    wait_for(lambda: _hcount(redis, "pu0", na) == "2", 5, 0.05,
             "a new subscriber counted")
    extra.close()
    wait_for(lambda: _hcount(redis, "pu0", na) == "1", 5, 0.05,
             "a subscriber gone")
    for s in ss:
        s.close()
    wait_for(lambda: _hcount(redis, "pu5", na) is None, 5, 0.05,
             "no subscriber: the node's field removed")


def _monitor(redis, seconds):
    """What Redis ran for seconds (MONITOR): [(client address, [args])]."""
    out, buf = [], b""
    with socket.create_connection(("127.0.0.1", redis.port), timeout=5) as s:
        s.sendall(b"MONITOR\r\n")
        s.settimeout(0.2)
        end = time.time() + seconds
        while time.time() < end:
            try:
                data = s.recv(65536)
            except socket.timeout:
                continue
            if not data:
                break
            buf += data
    lines = buf.split(b"\r\n")
    assert lines[0] == b"+OK", lines[:1]
    for line in lines[1:]:
        m = re.match(rb'^\+[\d.]+ \[\d+ ([^\]]+)\] (.*)$', line)
        if m:
            out.append((m.group(1).decode(),
                        re.findall(rb'"((?:[^"\\]|\\.)*)"', m.group(2))))
    return out


def _count_writers(redis, node_name, seconds=2.5):
    """The Redis clients that wrote the node's liveness key meanwhile."""
    return {addr for addr, args in _monitor(redis, seconds)
            if args[:2] == [b"SET", f"ps:node:{node_name}".encode()]}


def test_one_child_writes_the_node_counts_another_takes_over(httpd, redis):
    """The node's counts are the segment's, the same in every child: one
    child writes them (and the liveness key), the holder of a lease shown as
    counts_writer in X-PushStream-Redis.  Killed, another child takes over
    within the lease: with a new stamp (so that counts the dead writer could
    not withdraw no longer count), and the other node's view of every
    channel follows this node's own again."""
    a = httpd(node_conf(redis), servers=3, threads=10)
    b = httpd(node_conf(redis))
    host = socket.gethostname()
    na = f"{host}:{a.port}"
    chans = [f"w{i}" for i in range(6)]
    streams = [Stream(a, f"/sub/{ch}") for ch in chans for _ in range(2)]
    for ch in chans:
        publish(a, ch, "x")                        # B answers for a channel it knows

    def own(ch):                                   # A's own count of ch
        return json.loads(_info(a, f"/pub?id={ch}"))["by_node"][na]

    def seen_by_b(ch):                             # A's count of ch, as B reads it
        return json.loads(_info(b, f"/pub?id={ch}")).get("by_node", {}).get(na, 0)

    for ch in chans:
        wait_for(lambda ch=ch: seen_by_b(ch) == 2, 10 * SLOW, 0.05, f"{ch} counted on B")
    writers = _count_writers(redis, na)
    assert len(writers) == 1, writers              # 3 children, 1 writer
    writer = int(redis_stats(a)["counts_writer"])
    assert writer in a.child_pids(), (writer, a.child_pids())
    stamp = redis.cmd("GET", f"ps:node:{na}")
    assert stamp and stamp.count(".") == 2, stamp  # start.pid.takeover

    os.kill(writer, 9)
    wait_for(lambda: int(redis_stats(a)["counts_writer"]) not in (0, writer),
             5 * SLOW, 0.05, "another child to take the counts over")
    new = int(redis_stats(a)["counts_writer"])
    assert new in a.child_pids(), (new, a.child_pids())
    wait_for(lambda: redis.cmd("GET", f"ps:node:{na}") not in (None, stamp),
             5 * SLOW, 0.05, "the new writer's stamp")
    assert redis.cmd("GET", f"ps:node:{na}").startswith(stamp.rsplit(".", 1)[0])
    # the dead writer's subscribers are gone: B's view follows A's own
    for ch in chans:
        wait_for(lambda ch=ch: seen_by_b(ch) == own(ch), 10 * SLOW, 0.1,
                 f"B's view of {ch} to follow A's")
    extra = Stream(a, "/sub/after-kill")
    publish(a, "after-kill", "x")
    wait_for(lambda: seen_by_b("after-kill") == 1, 10 * SLOW, 0.05,
             "a new subscriber counted by the new writer")
    assert len(_count_writers(redis, na)) == 1
    for st in [*streams, extra]:
        st.close()


# ====================================================================== the loop
def _threads(node):
    """The distinct thread counts of the node's children."""
    return sorted({status_field(p, "Threads") for p in node.child_pids()})


@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_no_redis_thread_in_the_child(httpd, redis, mpm):
    """The pub/sub side runs on each child's event loop: a child subscribed
    in Redis and delivering has as many threads as a child without
    PushStreamRedis (no Redis thread of its own), under event and prefork."""
    with_r = httpd(node_conf(redis), mpm=mpm, servers=2)
    without = httpd(conf(sub=SUB_TPL), mpm=mpm, servers=2)
    ss = [Stream(n, "/sub/thr" + mpm) for n in (with_r, without)]
    wait_subscribed(redis, "thr" + mpm, 1)
    publish(with_r, "thr" + mpm, "one")
    ss[0].wait_for(b"1:one|")
    wait_for(lambda: _threads(with_r) and _threads(with_r) == _threads(without),
             5, 0.1, f"as many threads with Redis as without: "
             f"{_threads(with_r)} vs {_threads(without)}")
    assert redis_stats(with_r)["state"] == "up"
    for s in ss:
        s.close()


def _port_send(port, method, path, body=b""):
    """A request on the publisher port, not waited for; the socket."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}"
              "\r\n\r\n".encode() + body)
    return s


def _port_read(f):
    """(status, headers dict lower-case, body) of one answer read from f."""
    status = int(f.readline().split()[1])
    headers = {}
    while True:
        line = f.readline().decode().strip()
        if not line:
            break
        k, v = line.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    return status, headers, f.read(int(headers.get("content-length", "0")))


def _port_answer(s):
    """(status, headers dict lower-case, seconds waited) of one answer."""
    t0 = time.time()
    status, headers, _ = _port_read(s.makefile("rb"))
    return status, headers, time.time() - t0


def test_port_and_websocket_publishes_never_block_the_loop(httpd, redis):
    """One child: while Redis sleeps (DEBUG SLEEP) with a publisher-port and a
    WebSocket publish and a port GET (channel info) in flight, the same loop
    still answers another port request at once and a stream subscriber keeps
    getting its pings; the port publish and GET answer 503 (Retry-After,
    explain) within PushStreamRedisTimeout, the WebSocket's refusal is logged
    (PS0177); then all work again."""
    import asyncio
    import websockets

    port = pshttpd.free_port()
    cfg = conf(server=SRV.format(port=redis.port, timeout=TIMEOUT_MS)
               + 'PushStreamPingMessageText "p"\n',
               pub=f"PushStreamPublisherListen 127.0.0.1:{port}",
               sub=SUB_TPL + "\nPushStreamPingMessageInterval 1s",
               extra=location_match("^/ws/(?<ch>.+)$",
                                    "PushStreamSubscriber websocket\n"
                                    'PushStreamChannelsPath "%{env:MATCH_CH}"\n'
                                    "PushStreamWebsocketAllowPublish on\n"
                                    # stored: an unstored message published in the
                                    # moment a reconnecting node subscribes may miss
                                    # it (README, "Limits of the delivery")
                                    "PushStreamStoreMessages on\n" + SUB_TPL))
    a = httpd(cfg, servers=1)
    wait_for(lambda: pshttpd.tcp_connects(port), what="publisher port")
    sa = Stream(a, "/sub/nb")
    wait_subscribed(redis, "nb", 1)
    s = _port_send(port, "POST", "/pub?id=nb", b"before")
    assert _port_answer(s)[0] == 200
    sa.wait_for(b"1:before|")

    async def run():
        ws = await websockets.connect(f"ws://127.0.0.1:{a.port}/ws/nbw",
                                      ping_interval=None, open_timeout=10)
        sleeper = asyncio.create_task(asyncio.to_thread(
            redis.cmd, "DEBUG", "SLEEP", BUSY, timeout=10))
        await asyncio.sleep(0.2)
        # the pings read so far (one may have come before "1:before|" when
        # the setup took over the 1 s interval): read what is there first
        sa.idle(0.05)
        pings0 = sa.body.count(b":p|")
        await ws.send("ws while redis sleeps")            # in flight
        slow = _port_send(port, "POST", "/pub?id=nb", b"while redis sleeps")
        t_sent = time.time()
        await asyncio.sleep(0.05)
        slow_get = _port_send(port, "GET", "/pub?id=nb")
        await asyncio.sleep(0.05)
        # the same loop answers another request at once (OPTIONS: no Redis)
        quick = _port_send(port, "OPTIONS", "/pub?id=nb")
        st, _, took = await asyncio.to_thread(_port_answer, quick)
        assert st == 200 and took < 0.5, took
        for sock in (slow, slow_get):
            st, hd, _ = await asyncio.to_thread(_port_answer, sock)
            waited = time.time() - t_sent
            assert st == 503 and waited < TIMEOUT + 0.7 * SLOW, (st, waited)
            assert hd["retry-after"] == "1"
            assert hd["x-nginx-pushstream-explain"] == "Redis is unreachable; retry later."
        # pings went on while the publishes waited (read until a new one:
        # a ping that came before the sleep is no proof)
        await asyncio.to_thread(sa.wait, lambda s: s.body.count(b":p|") > pings0,
                                5, "a ping while Redis sleeps")
        await sleeper
        # Redis is back: both publish paths work
        await asyncio.to_thread(wait_for, lambda: _port_answer(
            _port_send(port, "POST", "/pub?id=nb", b"after"))[0] == 200,
            10, 0.2, "port publish after DEBUG SLEEP")
        assert _port_answer(_port_send(port, "GET", "/pub?id=nb"))[0] == 200
        await ws.send("ws after")
        got = [await asyncio.wait_for(ws.recv(), 10)]
        while "ws after" not in got[-1]:          # the refused one may come first:
            got.append(await asyncio.wait_for(ws.recv(), 10))   # Redis ran it late
        assert len(got) <= 2 and got[-1].endswith(":ws after|"), got
        await ws.close()

    asyncio.run(run())
    sa.wait_for(b":after|")
    wait_for(lambda: "PS0177" in open(a.error_log_path).read(), timeout=5,
             what="PS0177 logged")


def test_port_requests_sent_while_a_publish_waits(httpd, redis):
    """Publisher port: what a client sends while its publish waits for Redis
    (DEBUG SLEEP, shorter than the timeout) is answered after it, in order,
    on the same connection; a client that leaves while its publish waits
    does not stop the publish nor the loop."""
    port = pshttpd.free_port()
    cfg = conf(server=SRV.format(port=redis.port, timeout=8000),
               pub=f"PushStreamPublisherListen 127.0.0.1:{port}", sub=SUB_TPL)
    httpd(cfg, servers=1)
    wait_for(lambda: pshttpd.tcp_connects(port), what="publisher port")
    wait_for(lambda: _port_answer(_port_send(port, "POST", "/pub?id=sw", b"w"))[0]
             == 200, 20, 0.2, "a publish on the port")
    before = json.loads(_port_read(_port_send(port, "GET", "/pub?id=sw")
                                   .makefile("rb"))[2])["published_messages"]
    th = threading.Thread(target=lambda: redis.cmd("DEBUG", "SLEEP", "1.5", timeout=10))
    th.start()
    time.sleep(0.2)
    s = _port_send(port, "POST", "/pub?id=sw", b"one")
    gone = _port_send(port, "POST", "/pub?id=sw", b"gone")
    time.sleep(0.3)                          # both wait for Redis now
    s.sendall(b"POST /pub?id=sw HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\ntwo")
    gone.close()
    f = s.makefile("rb")
    got = [_port_read(f) for _ in range(2)]
    th.join()
    assert [g[0] for g in got] == [200, 200], got
    counts = [json.loads(g[2])["published_messages"] for g in got]
    # one loop connection to Redis: one, gone, two in that order
    assert counts == [before + 1, before + 3], (before, counts)
    s.sendall(b"GET /pub?id=sw HTTP/1.1\r\nHost: x\r\n\r\n")
    st, _, body = _port_read(f)
    assert st == 200 and json.loads(body)["published_messages"] == before + 3, body
    s.close()


def test_location_publishes_share_the_loop_connection(httpd, redis):
    """Event MPM: a publisher location's publish is handed to the child's loop
    (PS0178 says so) and pipelined on its Redis connection with the publisher
    port's.  Location and port publishes issued concurrently on one child all
    succeed, each answer counts its own message, and a subscriber gets every
    one once, ids strictly increasing.  While Redis sleeps (DEBUG SLEEP) longer
    than PushStreamRedisTimeout, location publishes from several worker
    threads at once answer 503 (Retry-After, explain) within the timeout; then
    both paths work again."""
    port = pshttpd.free_port()
    cfg = conf(server=SRV.format(port=redis.port, timeout=TIMEOUT_MS),
               pub=f"PushStreamPublisherListen 127.0.0.1:{port}", sub=SUB_TPL)
    a = httpd(cfg, servers=1)
    wait_for(lambda: pshttpd.tcp_connects(port), what="publisher port")
    # the port's socket is the parent's: the child logs PS0178 when its loop
    # attaches to Redis, which may come a moment after the port connects
    wait_for(lambda: "PS0178: PushStreamRedis: publisher locations publish "
             "through each child's loop" in open(a.error_log_path).read(),
             30, what="PS0178")
    sa = Stream(a, "/sub/lp")
    wait_subscribed(redis, "lp", 1)
    n = 15
    counts, statuses = [], []

    def loc(i):
        r = publish(a, "lp", f"L{i}", expect=None,
                    headers={"Accept": "application/json"})
        statuses.append(r.status)
        if r.status == 200:
            counts.append(json.loads(r.body)["published_messages"])

    def prt(i):
        statuses.append(_port_answer(_port_send(port, "POST", "/pub?id=lp",
                                                f"P{i}".encode()))[0])

    for i in range(n):
        ts = [threading.Thread(target=loc, args=(i,)),
              threading.Thread(target=prt, args=(i,))]
        for t in ts:
            t.start()
        for t in ts:
            t.join(10)
    assert statuses == [200] * (2 * n), statuses
    assert len(set(counts)) == n and max(counts) <= 2 * n, counts
    sa.wait_for(f"L{n - 1}|".encode())
    sa.wait_for(f"P{n - 1}|".encode())
    got = ids_of(sa.body)
    assert [i for i, _ in got] == list(range(1, 2 * n + 1)), got
    assert sorted(t for _, t in got) == sorted([f"L{i}" for i in range(n)]
                                               + [f"P{i}" for i in range(n)])
    # Redis busy longer than the timeout: every waiting worker gets its 503
    th = threading.Thread(target=lambda: redis.cmd("DEBUG", "SLEEP", BUSY, timeout=10))
    th.start()
    time.sleep(0.2)
    late = []

    def slow(i):
        t0 = time.time()
        r = publish(a, "lp", f"S{i}", expect=None)
        late.append((r.status, r.header("Retry-After"),
                     r.header("X-Nginx-PushStream-Explain"), time.time() - t0))

    ts = [threading.Thread(target=slow, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(10)
    th.join(10)
    assert len(late) == 4, late
    for st, ra, ex, took in late:
        assert st == 503 and ra == "1" and "Redis" in ex, late
        assert took < TIMEOUT + 0.7 * SLOW, late
    wait_for(lambda: publish(a, "lp", "after", expect=None).status == 200,
             timeout=10, what="location publish after DEBUG SLEEP")
    assert _port_answer(_port_send(port, "POST", "/pub?id=lp", b"port after"))[0] == 200
    sa.wait_for(b":port after|")
    ids = [i for i, _ in ids_of(sa.body)]
    assert ids == sorted(set(ids)), ids            # no duplicate, no reorder


# ====================================================================== counted in Redis
def test_summary_and_channel_limits_count_every_node(httpd, redis):
    """The statistics summary (channels, published and stored messages, JSON and
    Prometheus) and PushStreamMaxNumberOfChannels count the channels of every
    node, in Redis: a fourth channel is refused with 403 on either node; an
    existing one is not; a deleted one frees its place."""
    cfg = node_conf(redis, extra_server="PushStreamMaxNumberOfChannels 3\n")
    a, b = httpd(cfg), httpd(cfg)
    publish(a, "c1", "m1")
    publish(a, "c1", "m2")
    publish(a, "c2", "m3")
    publish(b, "c3", "m4")
    for n in (a, b):
        r = request(n, "GET", "/channels-stats", headers={"Accept": "application/json"})
        doc = json.loads(r.body)
        assert (doc["channels"], doc["published_messages"], doc["stored_messages"]) \
            == (3, 4, 4), doc
        text = request(n, "GET", "/channels-stats?format=prometheus").body.decode()
        assert "pushstream_published_messages_total 4\n" in text, text
    for n in (a, b):
        r = publish(n, "c4", "over", expect=None)
        assert r.status == 403, r
        assert r.header("X-Nginx-PushStream-Explain") == "Number of channels were exceeded."
    publish(b, "c1", "m5")                       # an existing channel: fine
    assert request(a, "DELETE", "/pub?id=c3").status == 200
    publish(b, "c4", "now fits")
    r = request(b, "GET", "/channels-stats", headers={"Accept": "application/json"})
    doc = json.loads(r.body)
    assert (doc["channels"], doc["published_messages"], doc["stored_messages"]) \
        == (3, 6, 5), doc


def test_port_publish_redis_killed_503_then_reconnects(httpd, redis):
    """kill -9 Redis: a publish (and a DELETE) on the port answers 503 within
    the timeout (Retry-After, explain) and the port stays usable; Redis back:
    the loop's connection is made again, the publish and the DELETE go
    through."""
    port = pshttpd.free_port()
    a = httpd(conf(server=SRV.format(port=redis.port, timeout=TIMEOUT_MS),
                   pub=f"PushStreamPublisherListen 127.0.0.1:{port}", sub=SUB_TPL),
              servers=1)
    wait_for(lambda: pshttpd.tcp_connects(port), what="publisher port")
    s = _port_send(port, "POST", "/pub?id=pk", b"one")
    assert _port_answer(s)[0] == 200
    redis.kill()
    t0 = time.time()
    s = _port_send(port, "POST", "/pub?id=pk", b"lost")
    st, hd, _ = _port_answer(s)
    assert st == 503 and time.time() - t0 < TIMEOUT + 0.7 * SLOW
    assert hd["retry-after"] == "1"
    assert hd["x-nginx-pushstream-explain"] == "Redis is unreachable; retry later."
    s.sendall(b"OPTIONS /pub?id=pk HTTP/1.1\r\nHost: x\r\n\r\n")   # same connection
    assert _port_answer(s)[0] == 200
    st, hd, _ = _port_answer(_port_send(port, "DELETE", "/pub?id=pk"))
    assert st == 503 and hd["retry-after"] == "1"
    redis.start()
    wait_for(lambda: _port_answer(_port_send(port, "POST", "/pub?id=pk", b"two"))[0]
             == 200, timeout=10, what="port publish after restart")
    sa = Stream(a, "/sub/pk.b5")
    sa.wait_for(b":two|")
    assert b"lost" not in sa.body
    # DELETE on the port goes through the loop's connection as well
    assert _port_answer(_port_send(port, "DELETE", "/pub?id=pk"))[0] == 200
    sa.wait_for(b"Channel deleted")
    sa.wait_closed()
