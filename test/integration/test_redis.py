"""Several servers on one Redis (PushStreamRedis, issue 17).

A real redis-server on a free loopback port (`--save ''`, never the system
service) and two real httpd instances A and B with the same PushStreamRedis.
"""
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

import pshttpd
from psclient import Stream, publish, request, wait_for
from psconf import conf, location_match

REDIS_SERVER = "/usr/bin/redis-server"
TIMEOUT_MS = 1000                   # PushStreamRedisTimeout of the tests (ms)
TIMEOUT = TIMEOUT_MS / 1000


class Redis:
    """redis-server on 127.0.0.1:port, data in memory only."""

    def __init__(self, workdir, port=None):
        self.dir = workdir
        self.port = port or pshttpd.free_port()
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self.dir,
             "--logfile", os.path.join(self.dir, "redis.log"),
             "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: self._ping(), timeout=10, what="redis-server up")
        return self

    def _ping(self):
        try:
            return self.cmd("PING") == "PONG"
        except OSError:
            return False

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

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


def node_conf(redis, extra_server="", extra=""):
    return conf(server=SRV.format(port=redis.port, timeout=TIMEOUT_MS) + extra_server,
                sub=SUB_TPL, lp=SUB_TPL, poll=SUB_TPL, extra=extra
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


def wait_subscribed(redis, channel, n=1, timeout=10):
    """Until n node processes subscribe the channel in Redis."""
    def check():
        r = redis.cmd("PUBSUB", "NUMSUB", "ps:" + channel)
        return r[1] >= n
    wait_for(check, timeout=timeout, what=f"{channel} subscribed in Redis")


# ====================================================================== delivery
def test_publish_on_a_reaches_stream_on_b_and_a(nodes, redis):
    a, b = nodes
    sb = Stream(b, "/sub/ch1")
    sa = Stream(a, "/sub/ch1")
    wait_subscribed(redis, "ch1", 2)
    r = publish(a, "ch1", "hello", headers={"Accept": "application/json"})
    info = json.loads(r.body)
    assert info["channel"] == "ch1" and info["published_messages"] == 1
    assert info["stored_messages"] == 1
    sb.wait_for(b"1:hello|")
    sa.wait_for(b"1:hello|")
    publish(b, "ch1", "again")
    sa.wait_for(b"2:again|")
    sb.wait_for(b"2:again|")
