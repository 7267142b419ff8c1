"""Security defaults (issue 8).

1. Every publisher and statistics location of the conf.d/ examples answers
   only the machine itself. Checked from a real non-loopback address: a
   network namespace joined to the host by a veth pair (10.213.N.2 -> 10.213.N.1),
   the server listening there too. `Require local` admits all of 127.0.0.0/8,
   so 127.0.0.2 would prove nothing; if namespaces cannot be made here the
   test falls back to 127.0.0.2 against the example with `Require local`
   replaced by `Require ip 127.0.0.1` (and says so).
2. Channel ids with control bytes (NUL, CR, LF, ESC, DEL ...) are refused with
   400 `Channel id is invalid.` on every transport and never name a channel;
   spaces, `..`, UTF-8 and other non-ASCII bytes stay ordinary ids (protocol
   B2: ids are raw bytes, `sp%20ace` is verified nginx behaviour).
3. No request field reaches a response header raw: CR/LF in query arguments
   used by expressions (CORS origin, tag, time, event id, callback) and marker
   values in every request header never show up in response headers; header
   templates are sent literally (no tokens).
"""
import os
import re
import shutil
import subprocess

import pytest

from pyhttpd import httpd as pshttpd
from pyhttpd.client import Stream, info, publish, request, wait_for
from pyhttpd.conf import conf, location, sub_location
from pyhttpd.ws import Ws

from pyhttpd.env import ROOT  # noqa: E402
CONF_D = os.path.join(ROOT, "conf.d")
EXPLAIN = "X-Nginx-PushStream-Explain"


def read(name):
    with open(os.path.join(CONF_D, name)) as f:
        return f.read()


# ================================================================ 1. admin locations
def _admin_locations(text):
    """[(path, body)] of every <Location*> holding a publisher or statistics."""
    out = []
    for m in re.finditer(r"<(Location(?:Match)?)\s+\"?([^\">]+)\"?\s*>(.*?)</\1>", text,
                         re.S | re.I):
        body = "\n".join(l.strip() for l in m.group(3).splitlines()
                         if l.strip() and not l.strip().startswith("#"))
        if re.search(r"^PushStream(Publisher|ChannelsStatistics)\b", body, re.M):
            out.append((m.group(2), body))
    return out


def test_conf_d_admin_locations_require_local():
    """Statically: each publisher/statistics location of every conf.d file has
    `Require local` or `Require ip 127.0.0.1` and nothing that grants more."""
    seen = 0
    for name in sorted(os.listdir(CONF_D)):
        if not name.endswith(".conf"):
            continue
        for path, body in _admin_locations(read(name)):
            seen += 1
            requires = re.findall(r"^Require\s+(.+)$", body, re.M)
            assert requires, f"{name} {path}: no Require line"
            for req in requires:
                assert req.strip() in ("local", "ip 127.0.0.1", "ip ::1",
                                       "ip 127.0.0.1 ::1"), f"{name} {path}: Require {req}"
            assert not re.search(r"^(Allow|Satisfy|RequireAny)", body, re.M | re.I), \
                f"{name} {path}: {body}"
    assert seen >= 6, seen


def _curl(prefix, opts, method, url, data, headers):
    """(status, body) of `prefix curl opts` (a request from another address)."""
    cmd = [*prefix, "curl", "-s", "-o", "-", "-w", "\n%{http_code}", "--max-time", "10",
           *opts, "-X", method, url]
    for h in headers:
        cmd[-3:-3] = ["-H", h]
    if data is not None:
        cmd[-3:-3] = ["--data-binary", data]
    p = subprocess.run(cmd, capture_output=True, timeout=30)
    body, _, code = p.stdout.rpartition(b"\n")
    return int(code or 0), body


class Netns:
    """A network namespace with a veth pair: the host side listens on .host,
    commands run inside with .run(); None-able by the fixture."""

    def __init__(self):
        n = os.getpid() % 200 + 20
        self.name = f"pssec{os.getpid()}"
        self.veth = f"psh{os.getpid() % 100000}"
        self.host, self.peer = f"10.213.{n}.1", f"10.213.{n}.2"
        cmds = [["ip", "netns", "add", self.name],
                ["ip", "link", "add", self.veth, "type", "veth", "peer", "name", "psn0",
                 "netns", self.name],
                ["ip", "addr", "add", f"{self.host}/30", "dev", self.veth],
                ["ip", "link", "set", self.veth, "up"],
                ["ip", "-n", self.name, "addr", "add", f"{self.peer}/30", "dev", "psn0"],
                ["ip", "-n", self.name, "link", "set", "psn0", "up"],
                ["ip", "-n", self.name, "link", "set", "lo", "up"]]
        for c in cmds:
            p = subprocess.run(c, capture_output=True, text=True)
            if p.returncode:
                self.destroy()
                raise OSError(f"{' '.join(c)}: {p.stderr.strip()}")

    def curl(self, method, url, data=None, headers=()):
        """(status, body) of a request made from inside the namespace."""
        return _curl(["ip", "netns", "exec", self.name], [], method, url, data, headers)

    def destroy(self):
        subprocess.run(["ip", "link", "del", self.veth], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


class Loopback2:
    """The fallback: requests from 127.0.0.2 (curl --interface)."""
    host, peer = "127.0.0.1", "127.0.0.2"

    def curl(self, method, url, data=None, headers=()):
        return _curl([], ["--interface", self.peer], method, url, data, headers)


@pytest.fixture(scope="module")
def outside():
    if not shutil.which("curl"):
        pytest.fail("curl is needed")
    try:
        ns = Netns()
    except OSError as e:
        print(f"network namespaces unavailable ({e}): falling back to 127.0.0.2 "
              f"with `Require local` replaced by `Require ip 127.0.0.1`")
        yield Loopback2()
        return
    yield ns
    ns.destroy()


def _example(name, outside, pub_port, port):
    """The example's text, listening on `outside.host` too (same ports)."""
    text = read(name)
    fallback = isinstance(outside, Loopback2)
    if fallback:
        text = text.replace("Require local", "Require ip 127.0.0.1")
    extra = "" if fallback else f"Listen {outside.host}:{port}"

    def pub_vhost(text, example_port):
        """The publisher's virtual host on pub_port (and outside.host:pub_port)."""
        also = "" if fallback else f"\n    Listen {outside.host}:{pub_port}"
        return text.replace(f"Listen 127.0.0.1:{example_port}",
                            f"Listen 127.0.0.1:{pub_port}" + also) \
                   .replace(f"<VirtualHost 127.0.0.1:{example_port}>",
                            f"<VirtualHost 127.0.0.1:{pub_port}"
                            + ("" if fallback else f" {outside.host}:{pub_port}") + ">")
    if name == "helpdesk-chat.conf":
        text = pub_vhost(text, 8060) \
            .replace("http://127.0.0.1:8080/", f"http://127.0.0.1:{pshttpd.free_port()}/")
    if name == "private-notifications.conf":
        text = pub_vhost(text, 8062).replace(AUTH_KEY, _auth_key())
    if name == "two-nodes.conf":
        # one node, without its Redis (never a private address from a test)
        text = re.sub(r"\n *PushStreamRedis(Timeout)? [^\n]*", "", text)
        text = text[:text.index("<IfModule proxy_balancer_module>")]
    text = text.replace("<VirtualHost *:80>", f"<VirtualHost *:{port}>")
    return read("pushstream.conf") + "\n" + text, extra


AUTH_KEY = "/etc/apache2/pushstream-auth.key"     # private-notifications.conf
AUTH_SECRET = b"security-test-secret-0123456789abcdef"


def _auth_key():
    path = os.path.join(os.environ.get("PS_BUILD") or os.path.join(ROOT, ".build"),
                        "security-auth.key")
    with open(path, "wb") as f:
        f.write(AUTH_SECRET)
    os.chmod(path, 0o644)
    return path


def _sub_headers(name, ch):
    """A token for the private-notifications example's subscribers."""
    if name != "private-notifications.conf":
        return ()
    import hashlib
    import hmac
    import time
    from pyhttpd.jwtmint import compact
    tok = compact({"alg": "HS256", "kid": "app1"},
                  {"exp": int(time.time()) + 60, "pushstream": {"subscribe": [ch]}},
                  lambda d: hmac.new(AUTH_SECRET, d, hashlib.sha256).digest())
    return (f"Authorization: Bearer {tok}",)


# name -> (modules, on the admin port: publisher path, stats path or None,
#          a subscriber path that answers at once with a stored message)
EXAMPLES = {
    "demo.conf": ([], "/pub", "/channels-stats", "/lp/{ch}.b1"),
    "helpdesk-chat.conf": (["proxy", "proxy_http"], "/pub", "/channels-stats",
                           "/event/lp/{ch}.b1"),
    "intranet-portal.conf": ([], "/queue", "/queue-stats", "/notify/{ch}.b1"),
    "web-im.conf": ([], "/im/pub", None, "/im/lp/{ch}.b1"),
    "private-notifications.conf": ([], "/pub", None, "/notify/lp/{ch}.b1"),
    "two-nodes.conf": ([], "/push/pub", "/push/stats", "/push/lp/{ch}.b1"),
}


def test_examples_table_lists_every_admin_location():
    """A new example with a publisher/statistics location must be added above."""
    for name in sorted(os.listdir(CONF_D)):
        if not name.endswith(".conf"):
            continue
        paths = {p for p, _ in _admin_locations(read(name))}
        if paths:
            assert name in EXAMPLES, f"{name} has {paths}: add it to EXAMPLES"
            assert paths == {p for p in EXAMPLES[name][1:3] if p}, (name, paths)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_admin_locations_refuse_other_hosts(httpd, outside, name):
    modules, pub, stats, sub = EXAMPLES[name]
    port = pshttpd.free_port()
    pub_port = pshttpd.free_port() if name in ("helpdesk-chat.conf",
                                               "private-notifications.conf") else port
    body, extra = _example(name, outside, pub_port, port)
    srv = httpd(body, port=port, modules=modules, extra_global=extra)
    admin = pshttpd.Httpd.__new__(pshttpd.Httpd)
    admin.port = pub_port
    ch = "0123456789abcdef0123456789abcdef"     # fits web-im's 32-char limit
    # from the machine itself: allowed
    publish(admin, ch, b"local", path=pub)
    if stats:
        assert request(admin, "GET", f"{stats}?id={ch}").status == 200
    # from the other host: the public subscriber answers (the path works) ...
    status, got = outside.curl("GET", f"http://{outside.host}:{port}{sub.format(ch=ch)}",
                               headers=_sub_headers(name, ch))
    assert status == 200 and b"local" in got, (status, got)
    # ... the publisher and statistics do not, for any method
    where = f"http://{outside.host}:{pub_port}"
    for method, data in (("POST", "evil"), ("PUT", "evil"), ("GET", None),
                         ("DELETE", None)):
        status, _ = outside.curl(method, f"{where}{pub}?id={ch}", data)
        assert status == 403, (name, method, pub, status)
        status, _ = outside.curl(method, f"{where}{pub}?id=fresh{method}", data)
        assert status == 403, (name, method, pub, status)
    if stats:
        for q in ("", "?id=ALL", f"?id={ch}", "?format=prometheus"):
            status, _ = outside.curl("GET", f"{where}{stats}{q}")
            assert status == 403, (name, stats, q, status)
    # nothing changed: one message, the channel still there, no channel created
    i = info(admin, ch, path=pub)
    assert i["published_messages"] == 1 and i["stored_messages"] == 1, i
    for method in ("POST", "PUT", "GET", "DELETE"):
        assert info(admin, f"fresh{method}", path=pub) is None


# ================================================================ 2. channel ids
ADMIN_STATS = location("/channels-stats", 'PushStreamChannelsStatistics\n'
                                          'PushStreamChannelsPath "%{arg:id}"')
IDS_CONF = conf(extra=ADMIN_STATS
                + sub_location("ev", "eventsource")
                + sub_location("ws", "websocket")
                + location("/subq", 'PushStreamSubscriber long-polling\n'
                                    'PushStreamChannelsPath "%{arg:id}"'))

# (as sent in the URL, what it must not become)
BAD_IDS = ["a%00b", "%00", "a%0d%0aX-Injected:%201", "a%0aB", "a%0dB", "a%01", "a%1b[31m",
           "a%09tab", "a%7f", "ok/a%0aB", "a%2500b", "a%250d%250aX-Injected:%201"]
GOOD_IDS = {"a%20b": b"a b", "..": b"..", "..%2F..%2Fetc": None, "%ff%fe": b"\xff\xfe",
            "caf%c3%a9": b"caf\xc3\xa9", "a%2e%2e": b"a.."}


def _all_channel_names(srv):
    r = request(srv, "GET", "/channels-stats?id=ALL", headers={"Accept": "text/plain"})
    assert r.status == 200, r
    return re.findall(rb"^channel: (.*?)\r$", r.body, re.M | re.S)


def _assert_invalid(r, what):
    assert r.status == 400, (what, r)
    assert r.header(EXPLAIN) == "Channel id is invalid.", (what, r)
    assert r.body == b"", (what, r)
    for k, v in r.headers:
        assert "Injected" not in k and "\r" not in v and "\n" not in v, (what, r)


def test_channel_ids_with_control_bytes_are_refused(httpd):
    srv = httpd(IDS_CONF, servers=1)
    publish(srv, "a", b"keep")
    for raw in BAD_IDS:
        for method in ("POST", "PUT", "GET", "DELETE"):
            r = request(srv, method, f"/pub?id={raw}",
                        body=b"x" if method in ("POST", "PUT") else None)
            _assert_invalid(r, (method, raw))
        _assert_invalid(request(srv, "GET", f"/subq?id={raw}"), ("subq", raw))
        if "%00" in raw or "%2F" in raw:
            continue     # httpd's core refuses %00 in a URL path before any module
        for prefix in ("sub", "lp", "poll", "ev"):
            _assert_invalid(request(srv, "GET", f"/{prefix}/{raw}"), (prefix, raw))
        with Ws(srv, f"/ws/{raw}") as ws:     # 101 first, then the 1008 close (B10)
            reason = b'{"http_status": 400, "explain":"Channel id is invalid."}'
            ws.expect_close(1008, exact=b"\x88" + bytes([2 + len(reason)]) + b"\x03\xf0"
                            + reason)
    # "a%00b" did not fall back to channel "a", nothing else was created
    assert info(srv, "a")["published_messages"] == 1
    assert _all_channel_names(srv) == [b"a"]
    assert "PS0070" in srv.error_log()


def test_channel_ids_with_other_bytes_are_ordinary(httpd):
    srv = httpd(IDS_CONF, servers=1)
    names = []
    for raw, name in GOOD_IDS.items():
        if name is None:
            continue
        r = publish(srv, raw, b"m-" + raw.encode())
        assert r.header(EXPLAIN) is None
        r = request(srv, "GET", f"/poll/{raw}.b1")
        assert r.status == 200 and r.body == b"m-" + raw.encode(), (raw, r)
        names.append(name)
    # ".." and "../..": ordinary ids; nothing is a file here
    publish(srv, "..%2F..%2Fetc", b"two")      # '/' separates channels: "..", "..", "etc"
    assert info(srv, "etc")["stored_messages"] == 1
    assert sorted(_all_channel_names(srv)) == sorted(names + [b"etc"])


# ================================================================ 3. reflection
REFLECT_CONF = conf(
    server=['PushStreamAllowedOrigins "%{arg:origin}"',
            'PushStreamPaddingByUserAgent "REFLECT,1024,100"'],
    sub=['PushStreamHeaderTemplate "H ~text~ ~channel~ ~event-id~ ~tag~|"',
         'PushStreamMessageTemplate "~text~|"'],
    lp=['PushStreamLastReceivedMessageTag "%{arg:tag}"',
        'PushStreamLastReceivedMessageTime "%{arg:time}"',
        'PushStreamLastEventId "%{arg:eventid}"'],
    extra=ADMIN_STATS + sub_location("ev", "eventsource",
                                     'PushStreamHeaderTemplate "H ~text~"')
    + sub_location("ws", "websocket"))

MARK = "REFLECTmarker"
CRLF_ARG = "%0d%0aX-Injected:%20" + MARK
HEADERS = {"User-Agent": MARK + "-ua", "Referer": "http://" + MARK, "Cookie": "c=" + MARK,
           "Origin": "http://" + MARK, "X-Anything": MARK, "Accept-Language": MARK,
           "Event-Id": MARK + "-id", "Event-Type": MARK + "-type",
           "Last-Event-Id": MARK, "If-None-Match": "W/" + MARK,
           "If-Modified-Since": MARK, "X-Nginx-PushStream-Mode": MARK}


def _check_headers(r, what):
    for k, v in r.headers:
        assert "Injected" not in k, (what, r)
        assert "\r" not in v and "\n" not in v, (what, r)
        assert MARK not in v and MARK not in k, (what, r)


def test_no_request_field_reaches_a_response_header(httpd):
    srv = httpd(REFLECT_CONF, servers=1)
    publish(srv, "r", b"stored")
    q = (f"origin=x{CRLF_ARG}&tag=1{CRLF_ARG}&time=Mon{CRLF_ARG}&eventid=e{CRLF_ARG}"
         f"&callback=cb{CRLF_ARG}&id=r")
    for method, path in (("GET", f"/pub?{q}"), ("POST", f"/pub?{q}"),
                         ("OPTIONS", f"/pub?{q}"), ("GET", f"/channels-stats?{q}"),
                         ("GET", f"/poll/r.b1?{q}"), ("GET", f"/poll/r?{q}"),
                         ("GET", f"/lp/r.b1?{q}"), ("GET", f"/sub/nope%0d%0aX?{q}")):
        r = request(srv, method, path, headers=HEADERS,
                    body=b"m" if method == "POST" else None)
        assert r.status in (200, 304, 400), (method, path, r)
        _check_headers(r, (method, path))
    assert "AH02430" not in srv.error_log()     # httpd never had to refuse a header
    # streaming and EventSource: headers, and the header template sent literally
    for path, head in (("/sub/r", b"H ~text~ ~channel~ ~event-id~ ~tag~|"),
                       ("/ev/r", b": H ~text~\n")):
        with Stream(srv, f"{path}?{q}", headers=HEADERS, read_headers=True) as s:
            _check_headers(s.p.response(), path)
            s.wait_for(head)
            publish(srv, "r", b"live", headers={"Event-Id": "7"})
            s.wait_for(b"live")
            assert MARK.encode() not in s.body, s.body
            assert s.body.startswith(head), s.body
    # WebSocket: its 101 carries no request field either
    with Ws(srv, f"/ws/r?{q}", extra={"Origin": "http://" + MARK,
                                       "Sec-WebSocket-Protocol": MARK}) as ws:
        for k, v in ws.resp.headers:
            assert MARK not in k + v and "Injected" not in k, ws.resp
    # the long-poll JSONP callback is body, not header (nginx: callback + "([...]);")
    r = request(srv, "GET", f"/lp/r.b1?callback=cb{CRLF_ARG}")
    _check_headers(r, "jsonp")
    assert r.header("Content-Type") == "application/javascript"
