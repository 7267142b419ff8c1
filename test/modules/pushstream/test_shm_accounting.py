"""Shared-segment accounting: after publish/subscribe/delete workloads over
several transports, once every message and channel has expired, the stats
counters are back at their start values.  The teardown of the `httpd`
fixture then stops the server, whose parent runs the segment leak check
(PS0060, "leaked") that fails the test on any unreachable block."""
import json
import os
import time

from pyhttpd.client import Stream, long_poll, publish, request, wait_for, wait_subscribers
from pyhttpd import conf as psconf
from pyhttpd.ws import Ws

SLOW = float(os.environ.get("PS_SLOW") or 1)

CONF = psconf.conf(
    server="PushStreamMessageTtl 2s\nPushStreamChannelInactivityTime 2s",
    sub='PushStreamMessageTemplate "~text~|"',
    extra=psconf.sub_location("ev", "eventsource")
    + psconf.sub_location("ws", "websocket")
    + psconf.location("/channels-stats", "PushStreamChannelsStatistics\n"
                                  'PushStreamChannelsPath "%{arg:id}"'))

KEYS = ("channels", "wildcard_channels", "stored_messages", "messages_in_trash",
        "channels_in_delete", "channels_in_trash", "subscribers")


def _stats(srv):
    r = request(srv, "GET", "/channels-stats", headers={"Accept": "application/json"})
    assert r.status == 200, r
    d = json.loads(r.body)
    return {k: d[k] for k in KEYS}


def _workload(srv, n):
    subs = []
    for i in range(n):
        subs.append(Stream(srv, f"/sub/s{i}"))
        subs.append(Stream(srv, f"/ev/e{i}"))
        subs.append(Ws(srv, f"/ws/w{i}"))
    for i in range(n):
        wait_subscribers(srv, f"s{i}", 1, timeout=10 * SLOW)
        wait_subscribers(srv, f"e{i}", 1, timeout=10 * SLOW)
        wait_subscribers(srv, f"w{i}", 1, timeout=10 * SLOW)
    for i in range(n):
        for ch in (f"s{i}", f"e{i}", f"w{i}", f"p{i}"):
            publish(srv, ch, f"m{i}-1")
            publish(srv, ch, f"m{i}-2")
        # a long poll that gets a stored message at once, one that times out
        assert long_poll(srv, f"/lp/p{i}.b1", timeout=10 * SLOW).status == 200
    # delete half of the channels while subscribers still hold them
    for i in range(0, n, 2):
        request(srv, "DELETE", f"/pub?id=s{i}")
        request(srv, "DELETE", f"/pub?id=p{i}")
    for s in subs:
        s.sock.close()


def test_counters_return_to_start_after_expiry(httpd):
    srv = httpd(CONF, servers=2)
    start = _stats(srv)
    for _round in range(2):
        _workload(srv, 6)
        busy = _stats(srv)
        assert busy["channels"] > start["channels"], busy
        # messages live 2 s, channels go inactive after 2 s, the trash is
        # emptied a few seconds later: allow generous time (and ASan's pace)
        wait_for(lambda: _stats(srv) == start, timeout=60 * SLOW, interval=0.5,
                 what=f"stats back to {start}")
    time.sleep(0.5)
    assert _stats(srv) == start
