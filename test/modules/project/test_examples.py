"""The worked examples of conf.d/: each passes apache2 -t with the modules it
names, and each is started and used: messages published through its publisher
reach subscribers of each of its locations.

Ports, back-end addresses and certificate paths of the examples are replaced
by free ones / generated ones; nothing else is changed, except where a test
says so (the intranet portal's 40 s wait is shortened to see the 304).
"""
import http.client
import http.server
import json
import os
import re
import socket
import subprocess
import time
import urllib.parse

import pytest

from pyhttpd import httpd as pshttpd
import pyhttpd.client
import pyhttpd.ws
from pyhttpd.client import At, LocalHttpServer, request, wait_for

from pyhttpd.env import ROOT  # noqa: E402
CONF_D = os.path.join(ROOT, "conf.d")
WT_SO = os.path.join(os.environ.get("PS_BUILD") or os.path.join(ROOT, ".build"),
                     "mod_pushstream_wstunnel.so")
WT_LOAD = f"LoadModule pushstream_wstunnel_module {WT_SO}"

EXAMPLES = {
    "helpdesk-chat.conf": ["proxy", "proxy_http"],
    "intranet-portal.conf": [],
    "web-im.conf": [],
    "private-notifications.conf": [],
}
AUTH_KEY = "/etc/apache2/pushstream-auth.key"     # private-notifications.conf
AUTH_SECRET = b"example-secret-0123456789abcdef0123456789"
WSPROXY_MODS = ["socache_shmcb", "ssl", "proxy", "proxy_balancer", "slotmem_shm",
                "lbmethod_byrequests"]

# Texts that break JSON built by hand: the examples' templates escape them.
TRICKY = ['say "hi"', "back\\slash", "two\nlines", "</script><b>", "\u00fc\u20ac\U0001F600"]


def read(name):
    with open(os.path.join(CONF_D, name)) as f:
        text = f.read()
    if AUTH_KEY in text:              # the examples' key file: a generated one
        path = os.path.join(os.environ.get("PS_BUILD") or os.path.join(ROOT, ".build"),
                            "example-auth.key")
        with open(path, "wb") as f:
            f.write(AUTH_SECRET + b"\n")
        os.chmod(path, 0o644)
        text = text.replace(AUTH_KEY, path)
    return text


def with_base(text):
    """What a2enmod pushstream gives: pushstream.conf, then the example."""
    return read("pushstream.conf") + "\n" + text


def make_cert(d):
    crt, key = os.path.join(d, "conf", "server.crt"), os.path.join(d, "conf", "server.key")
    os.makedirs(os.path.dirname(crt), mode=0o755, exist_ok=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", crt], check=True, capture_output=True)
    os.chmod(key, 0o644)
    return crt, key


def json_messages(body):
    """The JSON objects of a body, in order ("{..}{..}" or one per line)."""
    if isinstance(body, bytes):
        body = body.decode()
    dec, out, i = json.JSONDecoder(), [], 0
    while True:
        while i < len(body) and body[i].isspace():
            i += 1
        if i == len(body):
            return out
        obj, i = dec.raw_decode(body, i)
        out.append(obj)


# ---------------------------------------------------------------- configtest
@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_passes_configtest(configtest, name):
    rc, out = configtest(with_base(read(name)), modules=EXAMPLES[name])
    assert rc == 0 and "Syntax OK" in out, out


@pytest.mark.parametrize("name", sorted(EXAMPLES) + ["websocket-proxy.conf"])
def test_example_is_wrapped_in_ifmodule(name):
    """Every directive sits inside <IfModule>: the file is harmless while the
    module is not enabled (a2dismod)."""
    depth = 0
    for line in read(name).splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if s.lower().startswith("<ifmodule"):
            depth += 1
        elif s.lower().startswith("</ifmodule"):
            depth -= 1
        else:
            assert depth > 0, f"{name}: outside <IfModule>: {line}"


def test_examples_pass_configtest_without_their_modules(configtest):
    """Without mod_pushstream (a2dismod pushstream) every example is skipped."""
    for name in sorted(EXAMPLES) + ["websocket-proxy.conf"]:
        rc, out = configtest(read(name), load_pushstream=False)
        assert rc == 0, (name, out)


# ---------------------------------------------------------------- help desk
class App(LocalHttpServer):
    """The PHP application behind ProxyPass /."""

    def __init__(self):
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = f"app page {self.path}".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            do_POST = do_GET

            def log_message(self, *a):
                pass
        super().__init__(H)


@pytest.fixture
def app():
    a = App()
    yield a
    a.stop()


def helpdesk(httpd, app_port):
    pub, port = pshttpd.free_port(), pshttpd.free_port()
    text = read("helpdesk-chat.conf")
    text = text.replace("127.0.0.1:8060", f"127.0.0.1:{pub}") \
               .replace("<VirtualHost *:80>", f"<VirtualHost *:{port}>") \
               .replace("http://127.0.0.1:8080/", f"http://127.0.0.1:{app_port}/")
    srv = httpd(with_base(text), port=port, modules=EXAMPLES["helpdesk-chat.conf"])
    return srv, At(pub)


def helpdesk_subscribers(srv, pub, ch):
    """The helpdesk's four subscribers of ch on srv (WebSocket, iframe stream,
    EventSource, long-poll), once pub counts them: (ws, sub, ev, lp).
    test_nginx2apache.py too."""
    ws = pyhttpd.ws.Ws(srv, f"/event/ws/{ch}")
    sub = pyhttpd.client.Subscriber(srv, f"/event/sub/{ch}")
    ev = pyhttpd.client.Subscriber(srv, f"/event/ev/{ch}")
    lp = pyhttpd.client.Subscriber(srv, f"/event/lp/{ch}", read_headers=False)
    wait_for(lambda: json.loads(request(pub, "GET", f"/pub?id={ch}").body)["subscribers"] == 4,
             what="4 subscribers")
    return ws, sub, ev, lp


def test_helpdesk_every_location(httpd, app):
    srv, pub = helpdesk(httpd, app.port)
    ch = "room1"
    ws, sub, ev, lp = helpdesk_subscribers(srv, pub, ch)
    assert sub.header("Content-Type") == "text/html; charset=utf-8"
    assert ev.header("Content-Type") == "text/event-stream; charset=utf-8"
    r = request(pub, "POST", f"/pub?id={ch}", body=TRICKY[0].encode(), headers={"Event-Id": "e1"})
    assert r.status == 200 and json.loads(r.body)["subscribers"] == 4
    for t in TRICKY[1:]:
        assert request(pub, "POST", f"/pub?id={ch}", body=t.encode()).status == 200

    # WebSocket: one JSON text frame per message
    got = [json.loads(ws.read_text()) for _ in TRICKY]
    assert [m["text"] for m in got] == TRICKY
    assert [m["id"] for m in got] == [1, 2, 3, 4, 5] and got[0]["eventid"] == "e1"
    assert all(m["channel"] == ch and isinstance(m["tag"], int) for m in got)
    # long-polling: the first message, JSON, with Last-Modified/Etag of that message
    lp.wait_end()
    m = json_messages(lp.body)
    assert [x["text"] for x in m] == TRICKY[:1]
    assert lp.header("Etag") == f"W/{m[0]['tag']}" and lp.header("Last-Modified") == m[0]["time"]
    # iframe streaming: HTML header, then one <script>p({...});</script> per message
    sub.wait_for("\U0001F600".encode())
    html = sub.body.decode()
    assert html.startswith("<!DOCTYPE html>") and "parent.PushStreamFrame" in html
    calls = re.findall(r"<script>p\((\{.*?\})\);</script>\n", html)
    assert [json.loads(c)["text"] for c in calls] == TRICKY
    assert "</script><b>" not in html          # ~text|js~ hides < and >
    # EventSource: "id:" from Event-Id, one JSON object per line of the text
    ev.wait_for("\U0001F600".encode())
    events, _ = pyhttpd.client.parse_sse(ev.body)
    assert events[0]["id"] == "e1"
    texts = ["\n".join(json.loads(d)["text"] for d in e["data"]) for e in events]
    assert texts == TRICKY

    # replay by ?time=&tag= of the second message, on every location
    second = got[1]
    q = f"time={urllib.parse.quote(second['time'])}&tag={second['tag']}"
    r = request(srv, "GET", f"/event/lp/{ch}?{q}")
    assert [x["text"] for x in json_messages(r.body)] == TRICKY[2:]
    ws2 = pyhttpd.ws.Ws(srv, f"/event/ws/{ch}?{q}")
    assert [json.loads(ws2.read_text())["text"] for _ in TRICKY[2:]] == TRICKY[2:]
    sub2 = pyhttpd.client.Subscriber(srv, f"/event/sub/{ch}?{q}")
    sub2.wait_for("\U0001F600".encode())
    assert len(re.findall(r"<script>p\(", sub2.body.decode())) == len(TRICKY) - 2
    ev2 = pyhttpd.client.Subscriber(srv, f"/event/ev/{ch}?{q}")
    ev2.wait_for("\U0001F600".encode())
    assert len(pyhttpd.client.parse_sse(ev2.body)[0]) == len(TRICKY) - 2
    # and by ?eventid= (ws, lp, iframe)
    r = request(srv, "GET", f"/event/lp/{ch}?eventid=e1")
    assert [x["text"] for x in json_messages(r.body)] == TRICKY[1:]
    for s in (ws, ws2, sub, sub2, ev, ev2):
        s.close()


def test_helpdesk_publisher_is_loopback_only_and_app_is_proxied(httpd, app):
    srv, pub = helpdesk(httpd, app.port)
    # the public site proxies everything but /event/ to the application
    r = request(srv, "GET", "/")
    assert r.status == 200 and r.body == b"app page /"
    r = request(srv, "POST", "/pub?id=room1", body=b"x")
    assert r.body == b"app page /pub?id=room1"         # the app's, not a publisher
    r = request(srv, "GET", "/channels-stats")
    assert r.body == b"app page /channels-stats"
    # publisher and statistics answer on the loopback vhost
    r = request(pub, "POST", "/pub?id=room1", body=b"x")
    assert r.status == 200
    r = request(pub, "GET", "/channels-stats?id=ALL")
    assert r.status == 200 and json.loads(r.body)["infos"][0]["channel"] == "room1"
    r = request(pub, "GET", "/channels-stats")
    assert json.loads(r.body)["channels"] == 1
    # subscribers are not on the loopback vhost, publishers not on the public one
    assert request(pub, "GET", "/event/lp/room1.b1").status == 404
    text = read("helpdesk-chat.conf")
    assert text.count("Require local") == 2
    assert re.search(r"Listen 127\.0\.0\.1:8060\n", text)


def test_helpdesk_pings_and_templates_as_documented():
    """The four public locations: JSON templates (escaped tokens), time/tag
    replay from the query, 10 s pings where a connection stays open."""
    text = read("helpdesk-chat.conf")
    blocks = dict(re.findall(r'<LocationMatch "\^/event/(\w+)/.*?>(.*?)</LocationMatch>', text,
                             re.S))
    assert sorted(blocks) == ["ev", "lp", "sub", "ws"]
    for name, body in blocks.items():
        assert '"%{arg:time}"' in body and '"%{arg:tag}"' in body, name
        assert "~text|js" in body if name == "sub" else "~text|json~" in body, name
        if name != "lp":
            assert "PushStreamPingMessageInterval 10s" in body, name


# ---------------------------------------------------------------- intranet portal
def intranet(httpd, ttl=None):
    text = read("intranet-portal.conf")
    assert "PushStreamLongpollingConnectionTtl 40s" in text
    if ttl:
        text = text.replace("PushStreamLongpollingConnectionTtl 40s",
                            f"PushStreamLongpollingConnectionTtl {ttl}")
    return httpd(with_base(text))


def test_intranet_long_polling_with_headers(httpd):
    """The classic long-polling loop: If-Modified-Since/If-None-Match from the
    previous answer; every message once, also several published at once."""
    srv = intranet(httpd)
    lp = pyhttpd.client.Subscriber(srv, "/notify/user_42/announcements", read_headers=False)
    wait_for(lambda: request(srv, "GET", "/queue?id=user_42").status == 200, what="channel")
    assert request(srv, "POST", "/queue?id=user_42", body=b"first").status == 200
    lp.wait_end()
    assert lp.status == 200 and lp.header("Connection") == "close"
    assert [m["text"] for m in json_messages(lp.body)] == ["first"]
    ims, inm = lp.header("Last-Modified"), lp.header("Etag")
    for body, ch in ((b"second", "announcements"), (b"third", "user_42"), (b"fourth", "user_42")):
        assert request(srv, "POST", f"/queue?id={ch}", body=body).status == 200
    r = request(srv, "GET", "/notify/user_42/announcements",
                headers={"If-Modified-Since": ims, "If-None-Match": inm})
    got = json_messages(r.body)
    # the answer lists channel by channel (protocol B5); all three, once
    assert sorted(m["text"] for m in got) == ["fourth", "second", "third"]
    last = max(got, key=lambda m: m["tag"])
    assert r.header("Etag") == f"W/{last['tag']}"
    # the next poll from there waits for the next message
    nxt = pyhttpd.client.Subscriber(srv, "/notify/user_42/announcements", read_headers=False,
                        headers={"If-Modified-Since": r.header("Last-Modified"),
                                 "If-None-Match": r.header("Etag")})
    time.sleep(0.3)
    assert nxt.resp is None and not nxt.p.buf
    assert request(srv, "POST", "/queue?id=announcements", body=b"fifth").status == 200
    nxt.wait_end()
    assert [m["text"] for m in json_messages(nxt.body)] == ["fifth"]


def test_intranet_timeout_is_304(httpd):
    """The 40 s wait, shortened to 2 s for the test: 304 Not Modified, Etag W/0."""
    srv = intranet(httpd, ttl="2s")
    t0 = time.time()
    r = request(srv, "GET", "/notify/user_7", timeout=10)
    assert r.status == 304 and r.body == b""
    assert 1.5 < time.time() - t0 < 6
    assert r.header("Etag") == "W/0" and r.header("Last-Modified")


def test_intranet_queue_only_from_127_0_0_1(httpd):
    srv = intranet(httpd)
    assert request(srv, "POST", "/queue?id=u", body=b"m").status == 200
    assert request(srv, "GET", "/queue-stats").status == 200

    def from_127_0_0_2(method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10,
                                       source_address=("127.0.0.2", 0))
        try:
            c.request(method, path, body=body)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()
    try:
        status, _ = from_127_0_0_2("POST", "/queue?id=u", b"m")
    except OSError as e:
        pytest.skip(f"cannot bind 127.0.0.2: {e}")
    assert status == 403
    assert from_127_0_0_2("GET", "/queue?id=u")[0] == 403
    assert from_127_0_0_2("GET", "/queue-stats")[0] == 403
    # subscribing is for everybody
    status, body = from_127_0_0_2("GET", "/notify/u.b1")
    assert status == 200 and json_messages(body)[0]["text"] == "m"


# ---------------------------------------------------------------- web IM
def web_im(httpd):
    port = pshttpd.free_port()
    text = read("web-im.conf").replace("<VirtualHost *:80>", f"<VirtualHost *:{port}>")
    return httpd(with_base(text), port=port)


def test_web_im(httpd):
    srv = web_im(httpd)
    token = "0123456789abcdef0123456789abcdef"          # 32 characters
    # unknown channels cannot be subscribed
    r = request(srv, "GET", f"/im/lp/{token}")
    assert r.status == 403
    assert r.header("X-Nginx-PushStream-Explain") == "Subscriber could not create channels."
    ws = pyhttpd.ws.Ws(srv, f"/im/ws/{token}")
    f = ws.read_frame()
    assert f.opcode == pyhttpd.ws.OP_CLOSE and b"403" in f.payload
    ws.close()
    # ids longer than 32 characters are refused
    r = request(srv, "POST", f"/im/pub?id={token}x", body=b"m")
    assert r.status == 400 and r.header("X-Nginx-PushStream-Explain") == "Channel id is too large."
    # the application creates the channel by publishing; one message is kept
    for text in ("hello", 'second "message"'):
        r = request(srv, "POST", f"/im/pub?id={token}", body=text.encode())
        assert r.status == 200
    assert json.loads(r.body)["stored_messages"] == 1
    r = request(srv, "GET", f"/im/lp/{token}.b10")
    assert [m["text"] for m in json_messages(r.body)] == ['second "message"']
    # live: WebSocket and long-polling
    ws = pyhttpd.ws.Ws(srv, f"/im/ws/{token}")
    lp = pyhttpd.client.Subscriber(srv, f"/im/lp/{token}", read_headers=False)
    wait_for(lambda: json.loads(request(srv, "GET", f"/im/pub?id={token}").body)
             ["subscribers"] == 2, what="2 subscribers")
    request(srv, "POST", f"/im/pub?id={token}", body="new \u00e9".encode())
    assert json.loads(ws.read_text())["text"] == "new \u00e9"
    lp.wait_end()
    assert json_messages(lp.body)[0]["text"] == "new \u00e9"
    ws.close()
    # the 5-minute lifetime is the vhost's: stored messages expire 300 s after publishing
    text = read("web-im.conf")
    assert "PushStreamMessageTtl 5m" in text and "PushStreamMaxMessagesStoredPerChannel 1" in text


# ---------------------------------------------------------------- private notifications
def test_private_notifications(httpd):
    """PushStreamAuth example: a token (as the PHP of the comment mints it) in the
    cookie opens EventSource and WebSocket, in Authorization a long-poll; a user's
    token does not open another user's channel; the loopback publisher needs none."""
    from pyhttpd.jwtmint import compact
    import hashlib
    import hmac
    pub = pshttpd.free_port()
    text = read("private-notifications.conf").replace("127.0.0.1:8062", f"127.0.0.1:{pub}")
    srv = httpd(with_base(text))

    def token(channels, exp=3600):
        return compact({"alg": "HS256", "typ": "JWT", "kid": "app1"},
                       {"exp": int(time.time()) + exp,
                        "pushstream": {"subscribe": channels, "publish": []}},
                       lambda d: hmac.new(AUTH_SECRET, d, hashlib.sha256).digest())
    tok = token(["user42", "team7*"])
    cookie = {"Cookie": f"pushstream_token={tok}"}
    assert request(At(pub), "POST", "/pub?id=user42", body=b"first").status == 200
    ev = pyhttpd.client.Subscriber(srv, "/notify/ev/user42.b1", cookie)
    assert ev.status == 200
    ev.wait_for(b'"text":"first"')
    ws = pyhttpd.ws.Ws(srv, "/notify/ws/team7-ops.b1", extra=cookie)
    r = request(srv, "GET", "/notify/lp/user42.b1", headers={"Authorization": f"Bearer {tok}"})
    assert r.status == 200 and json_messages(r.body)[0]["text"] == "first"
    request(At(pub), "POST", "/pub?id=team7-ops", body=b"ops")
    assert json.loads(ws.read_text())["text"] == "ops"
    ws.close()
    ev.close()
    for path, hdrs, want in (("/notify/ev/user43", cookie, 403),
                             ("/notify/lp/user42", {}, 401),
                             ("/notify/lp/user42",
                              {"Authorization": f"Bearer {token(['user42'], exp=-60)}"}, 401)):
        r = request(srv, "GET", path, headers=hdrs)
        assert r.status == want, (path, r)


# ---------------------------------------------------------------- WebSocket proxy
@pytest.fixture
def wt(configtest):
    """Skips unless mod_pushstream_wstunnel is built and loads (beside mod_proxy)."""
    if not os.path.exists(WT_SO):
        pytest.skip("mod_pushstream_wstunnel not built (.build/)")
    rc, out = configtest("", modules=["proxy", WT_LOAD], load_pushstream=False)
    if rc != 0:
        pytest.skip(f"mod_pushstream_wstunnel does not load: {out}")


def wsproxy_conf(crt, key, tls_port, back1, back2):
    text = read("websocket-proxy.conf")
    text = text.replace("<VirtualHost *:443>", f"<VirtualHost 127.0.0.1:{tls_port}>") \
               .replace("/etc/ssl/certs/chat.example.com.pem", crt) \
               .replace("/etc/ssl/private/chat.example.com.key", key) \
               .replace("ws://10.0.0.11:8080", f"ws://127.0.0.1:{back1}") \
               .replace("ws://10.0.0.12:8080", f"ws://127.0.0.1:{back2}")
    assert "10.0.0." not in text and "example.com.pem" not in text
    return text


def backend_vhost(port, name):
    return f"""
<VirtualHost 127.0.0.1:{port}>
    <Location /pub>
        PushStreamPublisher admin
        PushStreamChannelsPath "%{{arg:id}}"
        PushStreamStoreMessages on
    </Location>
    <LocationMatch "^/ws/(?<ch>.+)$">
        PushStreamSubscriber websocket
        PushStreamChannelsPath "%{{env:MATCH_CH}}"
        PushStreamHeaderTemplate "{name}"
        PushStreamMessageTemplate "~channel~:~text~"
    </LocationMatch>
</VirtualHost>
"""


def test_websocket_proxy_configtest(wt, configtest, workbase):
    d = os.path.join(workbase, "wsproxy-ct")
    crt, key = make_cert(d)
    body = wsproxy_conf(crt, key, pshttpd.free_port(), 8081, 8082)
    rc, out = configtest(with_base(body), modules=WSPROXY_MODS + [WT_LOAD])
    assert rc == 0 and "Syntax OK" in out, out


def test_websocket_proxy_wss_to_balanced_pushstream_backends(wt, httpd, workbase):
    """wss:// through the example's TLS vhost and balancer to two back ends
    (two vhosts of mod_pushstream sharing one segment): both members are used,
    and a message published once reaches every client."""
    d = os.path.join(workbase, f"wsproxy-{os.getpid()}-{time.time():.0f}")
    crt, key = make_cert(d)
    port, back2, tls = pshttpd.free_port(), pshttpd.free_port(), pshttpd.free_port()
    body = with_base(backend_vhost(port, "backend-1") + backend_vhost(back2, "backend-2")
                     + wsproxy_conf(crt, key, tls, port, back2))
    srv = httpd(body, port=port, modules=WSPROXY_MODS + [WT_LOAD],
                extra_global=f"Listen 127.0.0.1:{back2}\nListen 127.0.0.1:{tls} https")
    front = At(None, workdir=d, ssl_port=tls)
    clients = [pyhttpd.ws.Ws(front, "/ws/room", tls=True) for _ in range(4)]
    names = sorted(c.read_text().decode() for c in clients)
    assert names == ["backend-1", "backend-1", "backend-2", "backend-2"]
    r = request(srv, "POST", "/pub?id=room", body=b"through the proxy")
    assert r.status == 200 and json.loads(r.body)["subscribers"] == 4
    for c in clients:
        assert c.read_text() == b"room:through the proxy"
        c.close()
    assert not srv.crash_lines()
