"""What `a2enmod pushstream pushstream_wstunnel` gives on Debian's untouched
event MPM settings: /etc/apache2/mods-available/mpm_event.conf included verbatim,
then conf.d/pushstream.conf and conf.d/pushstream_wstunnel.conf (their
<IfModule mpm_event_module> part).  10 000 idle subscribers (stream, EventSource,
WebSocket, long-poll) and 1 000 idle tunnels are held while a static GET answers
in < 200 ms (sanitizer pass: PS_CAPACITY_N=3000, 300 tunnels); a long-poll
publish then answers every long-poll.  PS0110 warns once, naming each
directive, exactly when the running limits are too low."""
import json
import os
import re
import resource
import selectors
import socket
import subprocess
import time

import pytest

from pyhttpd import httpd as pshttpd
from pyhttpd.client import gather, publish, subscribers, wait_for
from pyhttpd.conf import pub_location, sub_location
from pyhttpd.proc import end_popen

from pyhttpd.env import ROOT  # noqa: E402
CONF_D = os.path.join(ROOT, "conf.d")
STOCK_MPM = "/etc/apache2/mods-available/mpm_event.conf"
WT_SO = os.path.join(os.environ.get("PS_BUILD") or os.path.join(ROOT, ".build"),
                     "mod_pushstream_wstunnel.so")
N = int(os.environ.get("PS_CAPACITY_N") or 10000)     # subscribers
N_TUN = N // 10                                        # tunnels
N_LP = N // 4                                          # of the subscribers: long-polls

STOCK = (f"Include {STOCK_MPM}\n"
         f"Include {CONF_D}/pushstream.conf\n"
         f"Include {CONF_D}/pushstream_wstunnel.conf\n")

BODY = (pub_location(store=None) + sub_location("sub") + sub_location("ev", "eventsource")
        + sub_location("ws", "websocket")
        + sub_location("lp", "long-polling", "PushStreamLongPollingConnectionTtl 5m"))


def _json_line(p, timeout, what):
    """The next JSON line of a loadgen process (its stdout)."""
    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if sel.select(timeout=1):
            line = p.stdout.readline()
            if not line:
                break
            if line.startswith("{"):
                return json.loads(line)
    raise AssertionError(f"loadgen: no {what} within {timeout}s (rc={p.poll()})")


def _static_get_ms(port):
    t0 = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /static.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        d = s.recv(4096)
        if not d:
            break
        data += d
    s.close()
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"hello\n"), data
    return (time.perf_counter() - t0) * 1000


def _ps0110(srv):
    return [l for l in srv.error_log().splitlines() if "PS0110" in l]


def test_stock_mpm_settings_hold_subscribers_and_tunnels(httpd, loadgen):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < N + 1000:
        pytest.fail(f"RLIMIT_NOFILE hard limit {hard} is below {N + 1000}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    echod = subprocess.Popen([loadgen, "echod", "--port", "0", "--stdin", "--timeout", "300"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    procs = [echod]
    socks = []
    try:
        back = _json_line(echod, 10, "listening line")["port"]
        srv = httpd(BODY + f"<Location /tun/>\n    ProxyPass ws://127.0.0.1:{back}/\n"
                    "</Location>\n", mpm_conf=STOCK, servers=2,
                    modules=["proxy", f"LoadModule pushstream_wstunnel_module {WT_SO}"],
                    log_level="warn")
        conf = open(srv.conf_path).read()
        assert "AsyncRequestWorkerFactor" not in conf.split("# ---- conf_body")[0], \
            "only the included files may set the MPM"
        t0 = time.time()
        # stream / EventSource / WebSocket subscribers and the tunnels: loadgen
        mix = subprocess.Popen([loadgen, "sub", "--url", srv.url("/{tr}/stock"),
                                "--n", str(N - N_LP), "--transport", "mix", "--stdin",
                                "--conc", "200", "--timeout", "300"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        procs.append(mix)
        tun = subprocess.Popen([loadgen, "sub", "--url",
                                f"ws://127.0.0.1:{srv.port}/tun/t", "--n", str(N_TUN),
                                "--transport", "ws", "--stdin", "--conc", "100",
                                "--timeout", "300"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        procs.append(tun)
        # long-polls (no answer until a publish): plain sockets
        for _ in range(N_LP):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            s.sendall(b"GET /lp/lpstock HTTP/1.1\r\nHost: x\r\n\r\n")
            socks.append(s)
        r_mix = _json_line(mix, 120, "ready line of the subscribers")
        r_tun = _json_line(tun, 120, "ready line of the tunnels")
        assert (r_mix["ready"], r_mix["failed"]) == (N - N_LP, 0), r_mix
        assert (r_tun["ready"], r_tun["failed"]) == (N_TUN, 0), r_tun
        wait_for(lambda: subscribers(srv, "lpstock") == N_LP, 60,
                 what=f"{N_LP} long-polls")
        assert subscribers(srv, "stock") == N - N_LP
        held_in = time.time() - t0
        lat = [_static_get_ms(srv.port) for _ in range(5)]
        assert max(lat) < 200, lat
        # every long-poll answered by one publish
        publish(srv, "lpstock", "LPMSG")
        got = len(gather(socks, b"LPMSG", 60))
        assert got == N_LP, f"{got} of {N_LP} long-polls answered"
        # the others were held all along
        for p in (mix, tun):
            p.stdin.close()
        f_mix, f_tun = _json_line(mix, 60, "final line"), _json_line(tun, 60, "final line")
        assert f_mix["closed"] == 0 and f_tun["closed"] == 0, (f_mix, f_tun)
        print(f"\nstock mpm_event.conf + conf.d: {N} subscribers ({N_LP} long-polls) + "
              f"{N_TUN} tunnels held in {held_in:.1f} s; static GET ms max {max(lat):.1f}; "
              f"httpd RSS {sum(srv.rss_kb().values()) / 1024:.0f} MB")
        assert _ps0110(srv) == [], "PS0110 with settings that are fine"
    finally:
        for s in socks:
            s.close()
        for p in procs:
            end_popen(p, 30, close_stdin=True)


@pytest.mark.parametrize("mpm, expect", [
    # httpd's compiled-in defaults (a bare LoadModule): ThreadsPerChild 25,
    # AsyncRequestWorkerFactor 2, MaxRequestWorkers 400, MaxSpareThreads 250
    ("", ["AsyncRequestWorkerFactor 1000 (now 2: a child stops accepting at about 75",
          "MaxSpareThreads 400 (now 250"]),
    # Debian's stock file alone (MaxRequestWorkers 150, MaxSpareThreads 75), and a
    # MaxConnectionsPerChild to see the third directive named
    (f"Include {STOCK_MPM}\nMaxConnectionsPerChild 1000\n",
     ["AsyncRequestWorkerFactor 1000 (now 2", "MaxSpareThreads 150 (now 75",
      "MaxConnectionsPerChild 0 (now 1000"]),
], ids=["bare", "stock-only"])
def test_ps0110_warns_once_when_limits_are_low(httpd, mpm, expect):
    """(No warning with good settings: the test above.)"""
    srv = httpd(BODY, mpm_conf=mpm, servers=1, extra_global="PushStreamSharedMemorySize 8M")
    lines = _ps0110(srv)
    assert len(lines) == 1, lines
    for e in expect:
        assert e in lines[0], lines[0]
    named = set(re.findall(r"(AsyncRequestWorkerFactor|MaxSpareThreads|MaxConnectionsPerChild) "
                           r"\d+ \(now", lines[0]))
    assert len(named) == len(expect), lines[0]
