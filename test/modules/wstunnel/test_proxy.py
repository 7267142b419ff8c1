"""mod_pushstream_wstunnel: WebSocket reverse proxy (issue 5), plain HTTP.

Real back ends (Python websockets echo servers in subprocesses, see
wsbackend.py) behind a real httpd; real clients."""
import asyncio
import http.client
import json
import os
import socket
import struct
import time

import pytest
import websockets

from pyhttpd import wsbackend
from pyhttpd.wsbackend import connect, run, wt_modules, status_auto, wait_for  # noqa: F401

BALANCER_MODS = ["proxy_balancer", "slotmem_shm", "lbmethod_byrequests"]


def location_conf(b, path="/ws/", extra="", params=""):
    return f"""
<Location {path}>
    ProxyPass {b.url}/ {params}
    ProxyPassReverse {b.url}/
    {extra}
</Location>
"""


def start(httpd, conf, mods=(), **kw):
    kw.setdefault("load_pushstream", False)
    return httpd(conf, modules=wt_modules(*mods), **kw)


# ---------------------------------------------------------------- raw frames
def frame(payload, opcode=1, mask=True, fin=True):
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        hdr = struct.pack("!BB", b0, (0x80 if mask else 0) | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, (0x80 if mask else 0) | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, (0x80 if mask else 0) | 127, n)
    if not mask:
        return hdr + payload
    key = os.urandom(4)
    return hdr + key + bytes(c ^ key[i & 3] for i, c in enumerate(payload))


def read_frame(sock, buf=b""):
    """(opcode, payload, rest) of one unmasked frame from sock."""
    def need(n):
        nonlocal buf
        while len(buf) < n:
            chunk = sock.recv(65536)
            if not chunk:
                raise EOFError("closed")
            buf += chunk
    need(2)
    op, n = buf[0] & 0x0F, buf[1] & 0x7F
    pos = 2
    if n == 126:
        need(4)
        n = struct.unpack("!H", buf[2:4])[0]
        pos = 4
    elif n == 127:
        need(10)
        n = struct.unpack("!Q", buf[2:10])[0]
        pos = 10
    need(pos + n)
    return op, buf[pos:pos + n], buf[pos + n:]


def upgrade_request(port, path, host="127.0.0.1", upgrade="websocket",
                    connection="Upgrade", extra=""):
    return (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: {upgrade}\r\n"
            f"Connection: {connection}\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\n{extra}\r\n")


# ---------------------------------------------------------------- basics
def test_echo_through_location(httpd, backends):
    b = backends("b1")
    srv = start(httpd, location_conf(b))

    async def go():
        async with connect(f"ws://127.0.0.1:{srv.port}/ws/echo") as ws:
            for n in (0, 1, 125, 126, 127, 65535, 65536, 300_000):
                text = "".join(chr(0x41 + (i % 26)) for i in range(n))
                await ws.send(text)
                assert await ws.recv() == text
                data = os.urandom(n)
                await ws.send(data)
                assert await ws.recv() == data
            await ws.send("whoami")
            assert await ws.recv() == "b1"
    run(go())
    # the request is logged when the tunnel ends, with its 101
    assert wait_for(lambda: ' 101 ' in srv.access_log() and 'GET /ws/echo' in srv.access_log())


def test_handshake_headers_forwarded(httpd, backends):
    b = backends("b1")
    srv = start(httpd, location_conf(b) + location_conf(
        b, "/preserve/", "ProxyPreserveHost On"))

    async def go(path, vhost="127.0.0.1", **kw):
        async with connect(f"ws://{vhost}:{srv.port}{path}", host="127.0.0.1",
                           port=srv.port, **kw) as ws:
            await ws.send("headers")
            return json.loads(await ws.recv()), ws.subprotocol, ws.extensions
    info, proto, exts = run(go("/ws/a/b?x=1", subprotocols=["superchat"],
                               extra_headers={"Origin": "http://example.test",
                                              "Cookie": "s=1"},
                               compression="deflate"))
    h = {k.lower(): v for k, v in info["headers"].items()}
    assert info["path"] == "/a/b?x=1"
    assert h["host"] == f"127.0.0.1:{b.port}"
    assert h["x-forwarded-for"] == "127.0.0.1"
    assert h["x-forwarded-host"] == f"127.0.0.1:{srv.port}"
    assert h["x-forwarded-server"] == "127.0.0.1"
    assert h["origin"] == "http://example.test" and h["cookie"] == "s=1"
    assert h["upgrade"].lower() == "websocket" and h["connection"].lower() == "upgrade"
    assert "superchat" in h["sec-websocket-protocol"]
    assert "permessage-deflate" in h["sec-websocket-extensions"]
    # the back end's choices came back through the 101
    assert proto == "superchat"
    assert [e.name for e in exts] == ["permessage-deflate"]
    info, _, _ = run(go("/preserve/z", vhost="www.example.test"))
    assert {k.lower(): v for k, v in info["headers"].items()}["host"] == \
        f"www.example.test:{srv.port}"


def test_upgrade_tokens_case_insensitive(httpd, backends):
    b = backends("b1")
    srv = start(httpd, location_conf(b))
    status, headers, rest, s = wsbackend.raw_request(
        srv.port, upgrade_request(srv.port, "/ws/raw", upgrade="WebSocket",
                                  connection="keep-alive, UPGRADE"))
    try:
        assert status == 101, (status, headers)
        assert headers["upgrade"].lower() == "websocket"
        assert headers["connection"].lower() == "upgrade"
        assert headers["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        s.sendall(frame(b"raw hello"))
        op, payload, rest = read_frame(s, rest)
        assert (op, payload) == (1, b"raw hello")
        s.sendall(frame(struct.pack("!H", 1000), opcode=8))
        op, payload, rest = read_frame(s, rest)
        assert op == 8 and payload[:2] == struct.pack("!H", 1000)
    finally:
        s.close()


def test_bad_handshakes_are_400(httpd, backends):
    b = backends("b1")
    srv = start(httpd, location_conf(b))
    for req in (upgrade_request(srv.port, "/ws/x").replace("GET", "POST", 1),
                upgrade_request(srv.port, "/ws/x", extra="Content-Length: 5\r\n") + "hello",
                upgrade_request(srv.port, "/ws/x").replace("HTTP/1.1", "HTTP/1.0", 1)):
        status, _, _, s = wsbackend.raw_request(srv.port, req)
        s.close()
        assert status == 400, req
    # a list of protocols: only websocket goes to the back end
    status, headers, rest, s = wsbackend.raw_request(
        srv.port, upgrade_request(srv.port, "/ws/x", upgrade="websocket, h2c"))
    try:
        assert status == 101
        s.sendall(frame(b"headers"))
        op, payload, _ = read_frame(s, rest)
        assert json.loads(payload)["headers"]["Upgrade"] == "websocket"
    finally:
        s.close()


def test_pipelined_frame_after_handshake(httpd, backends):
    """A frame sent together with the handshake sits in httpd's input
    filters, not in the socket: the tunnel must forward it all the same."""
    b = backends("b1")
    srv = start(httpd, location_conf(b))
    req = upgrade_request(srv.port, "/ws/p").encode() + frame(b"early bird")
    status, _, rest, s = wsbackend.raw_request(srv.port, req)
    try:
        assert status == 101
        op, payload, _ = read_frame(s, rest)
        assert payload == b"early bird"
    finally:
        s.close()


def test_backend_greeting_right_after_101(httpd, backends):
    """The back end's first frame may arrive with its 101, so it waits in
    the back end connection's input filters: it must reach the client
    although the client sends nothing."""
    b = backends("b1")
    srv = start(httpd, location_conf(b))

    async def go():
        got = []
        for _ in range(20):
            async with connect(f"ws://127.0.0.1:{srv.port}/ws/greet") as ws:
                got.append(await asyncio.wait_for(ws.recv(), 5))
        return got
    assert run(go()) == ["welcome"] * 20


def test_no_upgrade_gets_426(httpd, backends):
    b = backends("b1")
    srv = start(httpd, location_conf(b))
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    conn.request("GET", "/ws/status/200")
    resp = conn.getresponse()
    body = resp.read().decode()
    assert resp.status == 426
    assert resp.getheader("Upgrade").lower() == "websocket"
    assert "WebSocket" in body
    # Upgrade without Connection: upgrade is no handshake either
    conn.request("GET", "/ws/x", headers={"Upgrade": "websocket"})
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 426
    assert "PSWT0102" in srv.error_log()
    assert status_auto(srv)["WstunnelRefusedNoUpgrade"] == "2"


def test_fallback_to_proxy_http(httpd, backends):
    b = backends("b1")
    srv = start(httpd, location_conf(b, extra="PushStreamWstunnelFallbackToProxyHttp On"),
                mods=["proxy_http"])
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    conn.request("GET", "/ws/status/200")
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.read() == b"backend b1 says 200\n"

    async def go():          # upgrades still go through this module
        async with connect(f"ws://127.0.0.1:{srv.port}/ws/e") as ws:
            await ws.send("hi")
            return await ws.recv()
    assert run(go()) == "hi"
    assert status_auto(srv)["WstunnelOpened"] == "1"


def test_http_worker_with_upgrade_websocket(httpd, backends):
    """ProxyPass http://... upgrade=websocket (the httpd 2.4.47+ manual's
    way): WebSocket handshakes are tunnelled here, the rest stays with
    mod_proxy_http; PushStreamWstunnelHttpUpgrade Off leaves all to it."""
    b = backends("b1")
    srv = start(httpd, f"""
ProxyPass /app/ http://127.0.0.1:{b.port}/ upgrade=websocket
<Location /off/>
    ProxyPass http://127.0.0.1:{b.port}/ upgrade=websocket
    PushStreamWstunnelHttpUpgrade Off
</Location>
""", mods=["proxy_http"])

    async def echo(path):
        async with connect(f"ws://127.0.0.1:{srv.port}{path}") as ws:
            await ws.send("via " + path)
            return await ws.recv()
    assert run(echo("/app/x")) == "via /app/x"
    assert status_auto(srv)["WstunnelOpened"] == "1"
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    conn.request("GET", "/app/status/200")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.read() == b"backend b1 says 200\n"
    assert run(echo("/off/x")) == "via /off/x"          # mod_proxy_http's tunnel
    assert status_auto(srv)["WstunnelOpened"] == "1"


def test_fallback_needs_mod_proxy_http(configtest):
    rc, out = configtest("""<Location /ws/>
    ProxyPass ws://127.0.0.1:9/
    PushStreamWstunnelFallbackToProxyHttp On
</Location>""", modules=wt_modules(), load_pushstream=False)
    assert rc != 0 and "needs mod_proxy_http" in out


def test_rewrite_proxy_recipe(httpd, backends):
    """The mod_rewrite recipe of the mod_proxy_wstunnel manual."""
    b = backends("b1")
    srv = start(httpd, f"""
RewriteEngine on
RewriteCond %{{HTTP:Upgrade}} websocket [NC]
RewriteCond %{{HTTP:Connection}} upgrade [NC]
RewriteRule ^/app/(.*) "ws://127.0.0.1:{b.port}/$1" [P,L]
""", mods=["rewrite"])

    async def go():
        async with connect(f"ws://127.0.0.1:{srv.port}/app/deep/path?q=1") as ws:
            await ws.send("headers")
            return json.loads(await ws.recv())["path"]
    assert run(go()) == "/deep/path?q=1"


def test_unix_socket_backend(httpd, backends, workbase):
    path = os.path.join(workbase, "wsb.sock")
    backends("u1", unix=path)
    srv = start(httpd, f"""
<Location /ws/>
    ProxyPass unix:{path}|ws://localhost/
</Location>""")

    async def go():
        async with connect(f"ws://127.0.0.1:{srv.port}/ws/u") as ws:
            await ws.send("whoami")
            return await ws.recv()
    assert run(go()) == "u1"


# ---------------------------------------------------------------- back end answers
def _upgrade_http(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    conn.request("GET", path, headers={
        "Upgrade": "websocket", "Connection": "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"})
    resp = conn.getresponse()
    return resp, resp.read()


def test_backend_answer_without_101_is_relayed(httpd, backends):
    b = backends("b1")
    srv = start(httpd, location_conf(b))
    resp, body = _upgrade_http(srv.port, "/ws/status/403")
    assert resp.status == 403 and body == b"backend b1 says 403\n"
    assert resp.getheader("X-Backend") == "b1"
    assert resp.getheader("Content-Type") == "text/plain"
    resp, body = _upgrade_http(srv.port, "/ws/status/503")
    assert resp.status == 503 and body == b"backend b1 says 503\n"
    resp, body = _upgrade_http(srv.port, "/ws/chunked")
    assert resp.status == 403 and body == b"hello chunks"
    resp, body = _upgrade_http(srv.port, "/ws/noclen")
    assert resp.status == 404 and body == b"no such socket here\n"
    assert "PSWT0110" in srv.error_log()


def test_error_override_uses_httpd_error_page(httpd, backends):
    b = backends("b1")
    srv = start(httpd, location_conf(b, extra="ProxyErrorOverride On"))
    resp, body = _upgrade_http(srv.port, "/ws/status/404")
    assert resp.status == 404
    assert b"backend b1 says" not in body and b"Not Found" in body


def test_backend_wrong_upgrade_is_502(httpd, backends):
    b = backends("b1")
    srv = start(httpd, location_conf(b))
    resp, body = _upgrade_http(srv.port, "/ws/wrong-upgrade")
    assert resp.status == 502
    assert "PSWT0112" in srv.error_log()


def test_backend_down_is_502(httpd):
    with socket.socket() as s:           # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = start(httpd, f"""
<Location /ws/>
    ProxyPass ws://127.0.0.1:{port}/ retry=0
</Location>""")
    for _ in range(2):
        resp, body = _upgrade_http(srv.port, "/ws/x")
        assert resp.status == 502
    assert "PSWT0116: cannot connect to the back end 127.0.0.1:%d" % port in srv.error_log()
    assert status_auto(srv)["WstunnelBackendFailures"] == "2"


def test_connect_timeout(httpd):
    # a listener whose accept queue is full: SYNs go unanswered
    lsn = socket.socket()
    lsn.bind(("127.0.0.1", 0))
    lsn.listen(0)
    port = lsn.getsockname()[1]
    fillers = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(s)
    try:
        srv = start(httpd, f"""
<Location /ws/>
    ProxyPass ws://127.0.0.1:{port}/ connectiontimeout=1 retry=0
</Location>""")
        t0 = time.time()
        resp, _ = _upgrade_http(srv.port, "/ws/x")
        took = time.time() - t0
        assert resp.status == 502
        assert 0.8 < took < 5, took
    finally:
        for s in fillers + [lsn]:
            s.close()


def test_handshake_timeout_is_504(httpd, backends):
    b = backends("b1")
    srv = start(httpd, location_conf(b, params="timeout=1"))
    t0 = time.time()
    resp, _ = _upgrade_http(srv.port, "/ws/hang")
    assert resp.status == 504
    assert time.time() - t0 < 5
    assert "PSWT0104" in srv.error_log()


# ---------------------------------------------------------------- balancer
def balancer_conf(*bs, params=""):
    members = "\n".join(f"    BalancerMember {b.url} {params}" for b in bs)
    return f"""
<Proxy balancer://wscluster>
{members}
</Proxy>
ProxyPass /chat/ balancer://wscluster/
"""


def test_balancer_spreads_and_fails_over(httpd, backends):
    b1, b2 = backends("b1"), backends("b2")
    srv = start(httpd, balancer_conf(b1, b2, params="retry=0"), mods=BALANCER_MODS)

    async def whoami(n):
        names = []
        for _ in range(n):
            async with connect(f"ws://127.0.0.1:{srv.port}/chat/room") as ws:
                await ws.send("whoami")
                names.append(await ws.recv())
                await ws.send("ping")
                assert await ws.recv() == "ping"
        return names
    names = run(whoami(6))
    assert sorted(set(names)) == ["b1", "b2"], names
    b1.kill()
    assert run(whoami(4)) == ["b2"] * 4
    b2.kill()
    resp, _ = _upgrade_http(srv.port, "/chat/room")
    assert resp.status == 503


def test_directives_in_proxy_section(httpd, backends):
    b1, b2 = backends("b1"), backends("b2")
    conf = balancer_conf(b1, b2).replace("</Proxy>", """    PushStreamWstunnelIdleTimeout 500ms
    PushStreamWstunnelMaxMessageSize 100
</Proxy>""")
    srv = start(httpd, conf, mods=BALANCER_MODS)

    async def go():
        async with connect(f"ws://127.0.0.1:{srv.port}/chat/x") as ws:
            await ws.send("y" * 101)
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 3)
        c1 = ws.close_code
        async with connect(f"ws://127.0.0.1:{srv.port}/chat/x") as ws:
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 3)
        return c1, ws.close_code
    assert run(go()) == (1009, 1001)


def test_balancer_busy_counts_open_tunnels(httpd, backends):
    import re
    import urllib.request
    b = backends("b1")
    srv = start(httpd, balancer_conf(b) + """
<Location /balancer-manager>
    SetHandler balancer-manager
</Location>""", mods=BALANCER_MODS)

    def busy():
        with urllib.request.urlopen(srv.url("/balancer-manager"), timeout=5) as r:
            html = r.read().decode()
        m = re.search(r"Init Ok\s*</td><td>(\d+)</td><td>(\d+)</td>", html)
        return int(m.group(2))

    async def go():
        loop = asyncio.get_running_loop()
        conns = [await connect(f"ws://127.0.0.1:{srv.port}/chat/x") for _ in range(3)]
        during = await loop.run_in_executor(None, busy)
        for ws in conns:
            await ws.close()
        return during
    assert run(go()) == 3
    assert wait_for(lambda: busy() == 0)


def test_issue_config_passes_configtest(configtest):
    rc, out = configtest("""
<Location /ws/>
    ProxyPass ws://127.0.0.1:8080/
    ProxyPassReverse ws://127.0.0.1:8080/
</Location>
<Proxy balancer://wscluster>
    BalancerMember ws://127.0.0.1:8081
    BalancerMember ws://127.0.0.1:8082
</Proxy>
ProxyPass /chat/ balancer://wscluster/
""", modules=wt_modules(*BALANCER_MODS), load_pushstream=False)
    assert rc == 0 and "Syntax OK" in out, out


def test_shipped_example_conf(configtest):
    from pyhttpd import httpd as pshttpd
    with open(os.path.join(pshttpd.ROOT, "conf.d", "wstunnel.conf")) as f:
        body = f.read()
    rc, out = configtest(body, modules=wt_modules(*BALANCER_MODS), load_pushstream=False)
    assert rc == 0 and "Syntax OK" in out, out
    # every commented directive too
    import re
    body = re.sub(r"(?m)^(\s*)#(?=[<A-Z]|    [A-Z])", r"\1", body)
    for line in ("    <Location /ws/>", "        BalancerMember ws://127.0.0.1:8081 retry=5",
                 "    PushStreamWstunnelMaxMessageSize 1M"):
        assert line in body.splitlines(), line
    rc, out = configtest(body, modules=wt_modules(*BALANCER_MODS), load_pushstream=False)
    assert rc == 0 and "Syntax OK" in out, (out, body)
    # what a2enmod pushstream_wstunnel enables: the event MPM settings, in force
    with open(os.path.join(pshttpd.ROOT, "conf.d", "pushstream_wstunnel.conf")) as f:
        mpm = f.read()
    assert "        AsyncRequestWorkerFactor 1000" in mpm.splitlines()
    rc, out = configtest(mpm, modules=wt_modules(), load_pushstream=False)
    assert rc == 0 and "Syntax OK" in out, out


def test_configtest_refuses_mod_proxy_wstunnel(configtest):
    rc, out = configtest("ProxyPass /ws/ ws://127.0.0.1:8080/",
                         modules=["proxy", "proxy_wstunnel", wsbackend.WT_LOAD],
                         load_pushstream=False)
    assert rc != 0
    assert "mod_proxy_wstunnel are both loaded" in out and "a2dismod proxy_wstunnel" in out


def test_without_mod_proxy_module_is_inactive(httpd):
    srv = httpd("", modules=[wsbackend.WT_LOAD], load_pushstream=False)
    assert "PSWT0004" in srv.error_log()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5):
        pass


def test_bad_directive_values(configtest):
    for line, text in (("PushStreamWstunnelIdleTimeout soon", "is not a time"),
                       ("PushStreamWstunnelMaxMessageSize 12q", "is not a size"),
                       # overflows 64 bits: refused (was accepted, wrapped around)
                       ("PushStreamWstunnelMaxMessageSize 99999999999g", "is not a size"),
                       ("PushStreamWstunnelIdleTimeout 99999999999999999h", "is not a time"),
                       ("PushStreamWstunnelFrameAware maybe", "must be On or Off")):
        rc, out = configtest(line, modules=wt_modules(), load_pushstream=False)
        assert rc != 0 and text in out, (line, out)


# ---------------------------------------------------------------- endings
def test_backend_killed_mid_session_client_gets_close(httpd, backends):
    b = backends("b1")
    srv = start(httpd, location_conf(b))

    async def go():
        async with connect(f"ws://127.0.0.1:{srv.port}/ws/k") as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"
            b.kill()
            t0 = time.time()
            with pytest.raises(websockets.ConnectionClosed) as ei:
                await asyncio.wait_for(ws.recv(), 10)
            return ei.value, time.time() - t0
    exc, took = run(go())
    assert exc.rcvd is not None and exc.rcvd.code == 1011, exc
    assert took < 5
    assert wait_for(lambda: status_auto(srv)["WstunnelOpen"] == "0")
    assert status_auto(srv)["WstunnelClosedByBackend"] == "1"


def test_close_handshake_both_ways(httpd, backends):
    b = backends("b1")
    srv = start(httpd, location_conf(b, extra="PushStreamWstunnelFrameAware On"))

    async def go():
        # the client closes
        async with connect(f"ws://127.0.0.1:{srv.port}/ws/c") as ws:
            await ws.send("x")
            await ws.recv()
            await ws.close(4001, "client done")
        assert ws.close_code == 4001
        # the back end closes
        async with connect(f"ws://127.0.0.1:{srv.port}/ws/c") as ws:
            await ws.send("close:4002")
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
        assert ws.close_code == 4002 and ws.close_reason == "bye"
        # the client vanishes without a close frame: the back end hears 1001
        ws = await connect(f"ws://127.0.0.1:{srv.port}/ws/c")
        ws.transport.abort()
        await asyncio.sleep(1)
        async with connect(f"ws://127.0.0.1:{srv.port}/ws/c") as ws:
            await ws.send("closes")
            return json.loads(await ws.recv())
    codes = run(go())
    assert codes == [4001, 4002, 1001], codes
    log = srv.error_log()
    assert "client close code 4001" in log
    assert "back end close code 4002" in log
    assert "(client closed)" in log and "proxy sent close none to the client and 1001 to the back end" in log


def test_idle_timeout(httpd, backends):
    b = backends("b1")
    srv = start(httpd, location_conf(b, extra="PushStreamWstunnelIdleTimeout 1"))

    async def go():
        async with connect(f"ws://127.0.0.1:{srv.port}/ws/i") as ws:
            for _ in range(5):          # traffic keeps it open past 1 s
                await asyncio.sleep(0.4)
                await ws.send("still here")
                assert await ws.recv() == "still here"
            t0 = time.time()
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            return ws.close_code, ws.close_reason, time.time() - t0
    code, reason, took = run(go())
    assert code == 1001 and reason == "idle timeout"
    assert 0.7 < took < 2.5, took
    assert wait_for(lambda: status_auto(srv)["WstunnelClosedIdle"] == "1")


def test_reqtimeout_does_not_cut_tunnels(httpd, backends):
    b = backends("b1")
    srv = start(httpd, location_conf(b), mods=["reqtimeout"],
                extra_global="RequestReadTimeout header=1 body=1")

    async def go():
        async with connect(f"ws://127.0.0.1:{srv.port}/ws/r") as ws:
            await asyncio.sleep(2.5)
            await ws.send("still")
            return await ws.recv()
    assert run(go()) == "still"


def test_idle_timeout_ms_and_zero(httpd, backends):
    b = backends("b1")
    srv = start(httpd, location_conf(b, "/short/", "PushStreamWstunnelIdleTimeout 300ms")
                + location_conf(b, "/never/", "PushStreamWstunnelIdleTimeout 0")
                + location_conf(b, "/default/"),
                extra_global="Timeout 1")

    async def closes_after(path):
        async with connect(f"ws://127.0.0.1:{srv.port}{path}") as ws:
            t0 = time.time()
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 4)
            return time.time() - t0

    async def go():
        assert 0.2 < await closes_after("/short/") < 1
        # no directive: as httpd 2.4.53+, max(Timeout, ProxyTimeout) = 1 s
        assert 0.8 < await closes_after("/default/") < 2
        async with connect(f"ws://127.0.0.1:{srv.port}/never/") as ws:
            await asyncio.sleep(2.5)      # > Timeout 1: not the idle timeout
            await ws.send("alive")
            return await ws.recv()
    assert run(go()) == "alive"


# ---------------------------------------------------------------- frame-aware mode
def test_frame_aware_max_message_size(httpd, backends):
    b = backends("b1")
    srv = start(httpd, location_conf(b, extra="""PushStreamWstunnelFrameAware On
    PushStreamWstunnelMaxMessageSize 1k"""))

    async def client_too_big():
        async with connect(f"ws://127.0.0.1:{srv.port}/ws/f") as ws:
            await ws.send("a" * 1024)             # at the limit: fine
            assert len(await ws.recv()) == 1024
            await ws.send("b" * 1025)
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
        return ws.close_code

    async def fragmented_too_big():
        async with connect(f"ws://127.0.0.1:{srv.port}/ws/f") as ws:
            await ws.send(["x" * 600, "y" * 600])  # one message in two frames
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
        return ws.close_code

    async def backend_too_big():
        async with connect(f"ws://127.0.0.1:{srv.port}/ws/f") as ws:
            await ws.send("big:5000")
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
        return ws.close_code
    assert run(client_too_big()) == 1009
    assert run(fragmented_too_big()) == 1009
    assert run(backend_too_big()) == 1009
    log = srv.error_log()
    assert log.count("PSWT0030") == 3 and "a message over 1024 bytes from the client" in log
    assert "a message over 1024 bytes from the back end" in log
    assert "(message too big)" in log and "proxy sent close 1009 to the client" in log
    assert status_auto(srv)["WstunnelClosedTooBig"] == "3"


def test_frame_aware_log_line_counts(httpd, backends):
    b = backends("b1")
    srv = start(httpd, location_conf(b, extra="PushStreamWstunnelFrameAware On"))

    async def go():
        async with connect(f"ws://127.0.0.1:{srv.port}/ws/l") as ws:
            for i in range(3):
                await ws.send("m%d" % i)
                await ws.recv()
    run(go())
    line = wait_for(lambda: [l for l in srv.error_log().splitlines() if "PSWT0020" in l])
    assert line, srv.error_log()
    line = line[0]
    # 3 text frames of 2 bytes + close(1000) from the client, masked: 3*8 + 8
    assert "client close code 1000" in line and "back end close code 1000" in line
    assert "client->back end 32 bytes, 4 frames, 3 messages" in line
    assert "back end->client 16 bytes, 4 frames, 3 messages" in line
    assert "[client 127.0.0.1:" in line or "127.0.0.1" in line


# ---------------------------------------------------------------- scale / status / MPMs
def test_idle_tunnels_hold_no_worker(httpd, backends):
    """40 idle tunnels on a child with 4 worker threads: static files and
    new tunnels are still served."""
    b = backends("b1")
    srv = start(httpd, location_conf(b), servers=1, threads=4)

    async def go():
        conns = [await connect(f"ws://127.0.0.1:{srv.port}/ws/{i}") for i in range(40)]
        t0 = time.time()
        loop = asyncio.get_running_loop()
        body = await loop.run_in_executor(None, lambda: http.client.HTTPConnection(
            "127.0.0.1", srv.port, timeout=5))
        body.request("GET", "/static.txt")
        resp = await loop.run_in_executor(None, body.getresponse)
        assert resp.status == 200 and resp.read() == b"hello\n"
        took = time.time() - t0
        st = await loop.run_in_executor(None, status_auto, srv)
        for i, ws in enumerate(conns):
            await ws.send(f"n{i}")
        for i, ws in enumerate(conns):
            assert await ws.recv() == f"n{i}"
        for ws in conns:
            await ws.close()
        return took, st
    took, st = run(go())
    assert took < 1, took
    assert st["WstunnelOpen"] == "40"
    assert int(st["BusyWorkers"]) <= 2


def test_server_status_html_and_counts(httpd, backends):
    b = backends("b1")
    srv = start(httpd, location_conf(b))

    async def go():
        async with connect(f"ws://127.0.0.1:{srv.port}/ws/s") as ws:
            await ws.send("abc")
            await ws.recv()
            st = await asyncio.get_running_loop().run_in_executor(None, status_auto, srv)
        return st
    st = run(go())
    assert st["WstunnelOpen"] == "1" and st["WstunnelOpened"] == "1"
    st = wait_for(lambda: (lambda s: s if s["WstunnelClosed"] == "1" else None)(status_auto(srv)))
    assert st["WstunnelOpen"] == "0"
    assert int(st["WstunnelBytesClientToBackend"]) > 3
    assert int(st["WstunnelBytesBackendToClient"]) > 3
    import urllib.request
    with urllib.request.urlopen(srv.url("/server-status"), timeout=5) as r:
        html = r.read().decode()
    assert "mod_pushstream_wstunnel" in html and "Open tunnels" in html


@pytest.mark.parametrize("mpm", ["worker", "prefork"])
def test_blocking_fallback_other_mpms(httpd, backends, mpm):
    b = backends("b1")
    srv = start(httpd, location_conf(b, extra="PushStreamWstunnelIdleTimeout 2"),
                mpm=mpm, servers=2, threads=5)

    async def go():
        async with connect(f"ws://127.0.0.1:{srv.port}/ws/w") as ws:
            for n in (10, 100_000):
                await ws.send("z" * n)
                assert await ws.recv() == "z" * n
        async with connect(f"ws://127.0.0.1:{srv.port}/ws/w") as ws:
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 6)
            return ws.close_code
    assert run(go()) == 1001
    log = srv.error_log()
    assert "PSWT0006" in log and "PSWT0120" in log
    assert wait_for(lambda: status_auto(srv)["WstunnelBlocking"] == "2")


@pytest.mark.parametrize("mpm", ["event", "worker"])
def test_graceful_restart_closes_tunnels(httpd, backends, mpm):
    b = backends("b1")
    srv = start(httpd, location_conf(b), mpm=mpm)

    async def go():
        ws = await connect(f"ws://127.0.0.1:{srv.port}/ws/g")
        await ws.send("before")
        assert await ws.recv() == "before"
        loop = asyncio.get_running_loop()
        t0 = time.time()
        await loop.run_in_executor(None, srv.graceful)
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        took = time.time() - t0
        async with connect(f"ws://127.0.0.1:{srv.port}/ws/g") as ws2:
            await ws2.send("after")
            assert await ws2.recv() == "after"
        return ws.close_code, ws.close_reason, took
    code, reason, took = run(go())
    assert code == 1001 and reason == "server stopping"
    assert took < 10
    st = status_auto(srv)           # totals kept across the restart
    assert st["WstunnelOpened"] == "2" and st["WstunnelClosedShutdown"] == "1"


def test_slow_reader_backpressure(httpd, backends):
    """A client that does not read: the proxy stops reading the back end
    instead of buffering; nothing is lost once the client reads."""
    b = backends("b1")
    srv = start(httpd, location_conf(b), servers=1)

    async def go():
        async with connect(f"ws://127.0.0.1:{srv.port}/ws/slow", max_queue=1,
                           read_limit=2 ** 16) as ws:
            before = sum(srv.rss_kb().values())
            await ws.send("big:30000000")
            await asyncio.sleep(2)
            during = sum(srv.rss_kb().values())
            msg = await asyncio.wait_for(ws.recv(), 30)
            assert len(msg) == 30_000_000 and msg == "x" * 30_000_000
            await ws.send("after")
            assert await ws.recv() == "after"
            return during - before
    grown = run(go())
    assert grown < 16 * 1024, grown        # kB; 30 MB went through


def test_with_mod_pushstream_loaded(httpd, backends):
    """Both modules suspend connections; each takes only its own."""
    b = backends("b1")
    srv = start(httpd, location_conf(b) + """
PushStreamSharedMemorySize 8M
<Location /pub>
    PushStreamPublisher admin
    PushStreamChannelsPath "%{arg:id}"
</Location>
<Location /wsub>
    PushStreamSubscriber websocket
    PushStreamChannelsPath "%{arg:id}"
</Location>
""", load_pushstream=True)

    async def go():
        loop = asyncio.get_running_loop()
        async with connect(f"ws://127.0.0.1:{srv.port}/wsub?id=ch1") as sub, \
                connect(f"ws://127.0.0.1:{srv.port}/ws/e") as tun:
            await tun.send("tunnel")
            assert await tun.recv() == "tunnel"

            def publish():
                c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
                c.request("POST", "/pub?id=ch1", body="pushed")
                return c.getresponse().status
            assert await loop.run_in_executor(None, publish) == 200
            assert await asyncio.wait_for(sub.recv(), 5) == "pushed"
            await tun.send("again")
            return await tun.recv()
    assert run(go()) == "again"
