"""Children killed with SIGKILL in the middle of publishing: the shared
segment's lock is not wedged, the segment stays sound (the parent checks it
after every repair and at debug level every second), and the killed
children's subscribers leave the counts."""
import json
import os
import signal
import socket
import threading
import time
import urllib.request

from pyhttpd.client import kill_children_during
from pyhttpd.conf import pub_location, sub_location

CONF = r'''
LogLevel info pushstream:debug
PushStreamSharedMemorySize 8M
PushStreamMaxMessagesStoredPerChannel 20
''' + pub_location() + sub_location("sub")


def _post(srv, channel, body, timeout=5):
    req = urllib.request.Request(srv.url(f"/pub?id={channel}"), data=body, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


def _info(srv, channel):
    with urllib.request.urlopen(srv.url(f"/pub?id={channel}"), timeout=5) as r:
        return json.loads(r.read())


def _storm(srv, stop, errors, n):
    i = 0
    while not stop.is_set():
        try:
            _post(srv, f"storm{n}/shared", b"x" * (i % 700 + 1), timeout=3)
        except Exception as e:  # a killed child drops the request: expected
            errors.append(str(e))
        i += 1


def test_sigkill_during_publish_storm(httpd):
    srv = httpd(CONF, servers=2, threads=10)
    stop = threading.Event()
    errors = []
    threads = [threading.Thread(target=_storm, args=(srv, stop, errors, n)) for n in range(4)]
    kills = kill_children_during(srv, threads, stop, 8, 0.3)
    assert kills >= 10
    # the lock is usable: a publish still goes through, quickly
    t0 = time.time()
    for _ in range(50):
        try:
            status, _ = _post(srv, "after", b"alive")
            break
        except Exception:
            time.sleep(0.2)
    assert status == 200
    assert time.time() - t0 < 15
    info = _info(srv, "shared")
    assert 1 <= info["stored_messages"] <= 20
    # let the parent's monitor check the segment a few times
    time.sleep(3)
    log = srv.error_log()
    assert "PS0014" not in log, log[-3000:]
    # killed children show as exit signal 9 lines; only Killed is acceptable
    crashes = [l for l in srv.crash_lines() if "Killed" not in l and "(9)" not in l]
    assert not crashes, srv.crash_report(crashes)


def test_killed_child_subscribers_leave_the_counts(httpd):
    srv = httpd(CONF, servers=2, threads=10)
    socks = []
    for _ in range(40):
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(b"GET /sub/counted HTTP/1.1\r\nHost: x\r\n\r\n")
        socks.append(s)
    for _ in range(50):
        if _info(srv, "counted")["subscribers"] == 40:
            break
        time.sleep(0.1)
    assert _info(srv, "counted")["subscribers"] == 40
    for pid in srv.child_pids():
        os.kill(pid, signal.SIGKILL)
    # the parent reaps the dead children's subscriptions (monitor, ~1/s)
    for _ in range(100):
        try:
            if _info(srv, "counted")["subscribers"] == 0:
                break
        except Exception:
            pass
        time.sleep(0.2)
    assert _info(srv, "counted")["subscribers"] == 0
    for s in socks:
        s.close()
