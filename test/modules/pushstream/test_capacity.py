"""The brief's bar: 10 000 idle subscribers with the stock MaxRequestWorkers 150
(6 children x 25 threads), a static GET still fast, one publish reaches all."""
import json
import os
import resource
import socket
import time
import urllib.request

import pytest

from pyhttpd.client import gather
from pyhttpd.conf import pub_location, sub_location

CONF = ("PushStreamSharedMemorySize 64M\n" + pub_location(store=None)
        + sub_location("sub", "", 'PushStreamMessageTemplate "~text~|"')
        + sub_location("ev", "eventsource"))
# PS_CAPACITY_N: smaller only in the sanitizer pass (test/run-all.sh)
N = int(os.environ.get("PS_CAPACITY_N") or 10000)


def _subscribers(srv):
    with urllib.request.urlopen(srv.url("/pub?id=cap"), timeout=10) as r:
        return json.loads(r.read())["subscribers"]


def test_10000_idle_subscribers_with_150_workers(httpd):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < N + 1000:
        pytest.fail(f"RLIMIT_NOFILE hard limit {hard} is below {N + 1000}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    srv = httpd(CONF, servers=6, threads=25)
    socks = []
    try:
        for i in range(N):
            s = socket.create_connection(("127.0.0.1", srv.port))
            path = "/sub/cap" if i % 2 else "/ev/cap"
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            socks.append(s)
        deadline = time.time() + 60
        while _subscribers(srv) < N:
            assert time.time() < deadline, f"only {_subscribers(srv)} of {N} subscribed"
            time.sleep(0.5)
        t0 = time.time()
        with urllib.request.urlopen(srv.url("/static.txt"), timeout=5) as r:
            assert r.read() == b"hello\n"
        assert time.time() - t0 < 0.2
        req = urllib.request.Request(srv.url("/pub?id=cap"), data=b"CAPMSG", method="POST")
        urllib.request.urlopen(req, timeout=10).read()
        got = gather(socks, b"CAPMSG", 60)
        assert len(got) == N, f"{len(got)} of {N} received the message"
    finally:
        for s in socks:
            s.close()
