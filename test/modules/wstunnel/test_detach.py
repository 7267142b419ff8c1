"""Idle tunnels of mod_pushstream_wstunnel leave httpd (issue 16): 200 ms after
its last byte, an open tunnel's two sockets are dup()ed, the TLS sessions mod_ssl
negotiated on either side (wss:// client, wss:// back end) are taken over by the
loop (ps_tls.c), the request is ended (logged) and the client's connection and the
back end's pool are released.  Everything a tunnel does afterwards still works:
messages both ways (large ones: partial writes), close handshakes from either
side, a graceful restart's 1001; and thousands of idle tunnels leave the event MPM
counting no connection, with MaxRequestWorkers 50."""
import asyncio
import json
import os
import resource
import subprocess
import time

import pytest
import websockets

from pyhttpd import httpd as pshttpd
from pyhttpd import wsbackend
from pyhttpd.env import ROOT
from pyhttpd.proc import end_popen
from pyhttpd.wsbackend import connect, run, status_auto, wait_for, wt_modules  # noqa: F401

SLOW = float(os.environ.get("PS_SLOW") or 1)
LEFT = "PSWT0131: tunnel to"


def left(srv):
    return srv.error_log().count(LEFT)


def wait_left(srv, n, timeout=20):
    deadline = time.time() + timeout
    while left(srv) < n:
        if time.time() > deadline:
            raise AssertionError(f"{left(srv)} tunnels left httpd, expected {n}")
        time.sleep(0.1)


@pytest.mark.parametrize("client_tls, backend_tls", [(False, False), (True, False),
                                                      (False, True), (True, True)],
                         ids=["ws-ws", "wss-ws", "ws-wss", "wss-wss"])
def test_detached_tunnels_still_work(httpd, backends, workbase, client_tls, backend_tls):
    if backend_tls:
        certdir = os.path.join(workbase, "certs")
        os.makedirs(certdir, mode=0o755, exist_ok=True)
        crt, key = wsbackend.make_cert(certdir)
        b = backends("b1", cert=crt, key=key)
        proxy = (f"SSLProxyEngine on\nSSLProxyVerify require\nSSLProxyCheckPeerName on\n"
                 f"SSLProxyCACertificateFile {crt}\n")
    else:
        b = backends("b1")
        proxy = ""
    conf = (proxy + "LogLevel info pushstream_wstunnel:trace1\n"
            f"<Location /ws/>\n    ProxyPass {b.url}/\n"
            "    PushStreamWstunnelFrameAware On\n</Location>\n")
    srv = httpd(conf, modules=wt_modules(), load_pushstream=False, servers=1, threads=10,
                ssl_port=pshttpd.free_port() if (client_tls or backend_tls) else None)
    base = (f"wss://127.0.0.1:{srv.ssl_port}" if client_tls
            else f"ws://127.0.0.1:{srv.port}")
    tls_note = [" (client TLS session taken over)" if client_tls else "",
                " (back end TLS session taken over)" if backend_tls else ""]

    async def go():
        a = await connect(base + "/ws/a")
        c = await connect(base + "/ws/c")
        g = await connect(base + "/ws/g")
        await asyncio.get_running_loop().run_in_executor(None, wait_left, srv, 3,
                                                         20 * SLOW)
        # messages both ways, large ones too (partial writes, TLS records)
        await a.send("whoami")
        assert await a.recv() == "b1"
        await a.send("big:3000000")
        assert await asyncio.wait_for(a.recv(), 30) == "x" * 3_000_000
        big = "y" * 2_000_000
        await a.send(big)
        assert await asyncio.wait_for(a.recv(), 30) == big
        # idle again: it left httpd once only (the block stays the loop's)
        await asyncio.sleep(0.5)
        # close handshakes from either side
        await a.close(4001, "client done")
        assert a.close_code == 4001
        await c.send("close:4002")
        with pytest.raises(websockets.ConnectionClosed):
            await c.recv()
        assert c.close_code == 4002 and c.close_reason == "bye"
        # a graceful restart ends the last one with 1001
        await asyncio.get_running_loop().run_in_executor(None, srv.graceful)
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(g.recv(), 10)
        assert g.close_code == 1001 and g.close_reason == "server stopping"
        async with connect(base + "/ws/x") as x:
            await x.send("closes")
            return json.loads(await x.recv())
    codes = run(go(), timeout=90)
    assert codes[:3] == [4001, 4002, 1001], codes
    log = srv.error_log()
    assert log.count(f"detached from httpd{tls_note[0]}{tls_note[1]}") == 3
    assert "client close code 4001" in log and "back end close code 4002" in log
    assert "AH00052" not in log


N = min(5000, int(os.environ.get("PS_CAPACITY_N") or 5000))


def test_thousands_of_idle_tunnels_hold_no_connection_of_httpd(httpd):
    """N idle tunnels (bench/loadgen.c clients and echo back end), MaxRequestWorkers
    50: all leave httpd, the event MPM counts 0 connections, no worker is busy, a
    static request is served at once; RSS per idle tunnel is printed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    build = os.environ.get("PS_BUILD") or os.path.join(ROOT, ".build")
    p = subprocess.run(["make", "--no-print-directory", "-s", "loadgen",
                        f"BUILD={build}"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    lg = os.path.join(build, "bench", "loadgen")
    echod = subprocess.Popen([lg, "echod", "--port", "0", "--stdin", "--timeout", "300"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    procs = [echod]
    try:
        back = json.loads(echod.stdout.readline())["port"]
        srv = httpd(f"<Location /tun/>\n    ProxyPass ws://127.0.0.1:{back}/\n</Location>\n"
                    "LogLevel info pushstream_wstunnel:trace1 mpm_event:trace6\n",
                    modules=wt_modules(), load_pushstream=False, servers=2, threads=25)
        kids = srv.child_pids()
        rss0 = sum(srv.rss_kb().values())
        tun = subprocess.Popen([lg, "sub", "--url", f"ws://127.0.0.1:{srv.port}/tun/t",
                                "--n", str(N), "--transport", "ws", "--stdin",
                                "--conc", "200", "--timeout", "300"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        procs.append(tun)
        ready = json.loads(tun.stdout.readline())
        assert (ready["ready"], ready["failed"]) == (N, 0), ready
        wait_left(srv, N, timeout=60 * SLOW)
        assert wait_for(lambda: srv.mpm_idle(kids), 15 * SLOW, step=0.5), srv.mpm_counts()
        st = status_auto(srv)
        assert int(st["BusyWorkers"]) <= 1, st["BusyWorkers"]      # (this request)
        assert st["WstunnelOpen"] == str(N)
        time.sleep(0.5)
        per = (sum(srv.rss_kb().values()) - rss0) / N
        print(f"\n{N} idle tunnels, MaxRequestWorkers 50: all left httpd; MPM "
              f"{srv.mpm_counts()}; BusyWorkers {st['BusyWorkers']}; "
              f"httpd RSS per idle tunnel {per:.1f} kB")
        tun.stdin.close()
        final = json.loads([l for l in tun.stdout.read().splitlines() if l][-1])
        assert final["closed"] == 0, final
        assert wait_for(lambda: status_auto(srv)["WstunnelOpen"] == "0", 30 * SLOW)
        assert wait_for(lambda: srv.mpm_idle(kids), 10, step=0.5), srv.mpm_counts()
    finally:
        for p in procs:
            end_popen(p, 30, close_stdin=True)
