"""PushStreamAuth: signed channel grants (compact JWS) checked by the module, for
every transport, the publisher location and port, the statistics location; key
rotation, algorithms pinned by the config, expiry closing live subscribers,
refusals counted in the statistics; configtest errors."""
import http.client as hc
import json
import os
import re
import time

import pytest

from pyhttpd import httpd as pshttpd
from pyhttpd.jwtmint import Keys, b64u
from pyhttpd.conf import location, location_match
from pyhttpd.client import Subscriber as Stream, http, wait_for
from pyhttpd.ws import OP_CLOSE, OP_TEXT, Ws

TRANSPORTS = ("sub", "ev", "ws", "lp", "poll")


@pytest.fixture(scope="module")
def keys(workbase):
    return Keys(os.path.join(workbase, "authkeys"))


def auth_conf(keys, port, server_extra=""):
    k = keys.path
    subs = ""
    for prefix, mode in (("sub", ""), ("ev", "eventsource"), ("ws", "websocket"),
                         ("lp", "long-polling"), ("poll", "polling")):
        extra = "" if prefix in ("lp", "poll") else 'PushStreamFooterTemplate "END"\n'
        if prefix == "poll":
            extra += "PushStreamAuthSource header cookie=pushstream_token arg=token\n"
        if prefix == "ws":
            extra += "PushStreamWebsocketAllowPublish on\nPushStreamStoreMessages on\n"
        subs += location_match(f"^/{prefix}/(?<ch>.+)$",
                               f"PushStreamSubscriber {mode}\n"
                               'PushStreamChannelsPath "%{env:MATCH_CH}"\n'
                               'PushStreamMessageTemplate "~text~|"\n'
                               "PushStreamAuth subscribe\n" + extra)
    return f"""PushStreamSharedMemorySize 32M
PushStreamAuthKey HS256 file:{k('hs.key')} k1
PushStreamAuthKey HS256 file:{k('hs2.key')} k2
PushStreamAuthKey RS256 file:{k('rsa.pub')} rs
PushStreamAuthKey ES256 file:{k('ec.pub')} es
PushStreamAuthKey EdDSA file:{k('ed.pub')} ed
PushStreamAuthClaims mercure
{server_extra}
""" + location("/pub", "PushStreamPublisher admin\n"
                       'PushStreamChannelsPath "%{arg:id}"\n'
                       "PushStreamStoreMessages on\n"
                       "PushStreamAuth publish\n"
                       f"PushStreamPublisherListen 127.0.0.1:{port}\n") \
        + location("/openpub", "PushStreamPublisher admin\n"
                               'PushStreamChannelsPath "%{arg:id}"\n'
                               "PushStreamStoreMessages on\n") \
        + location("/stats", "PushStreamChannelsStatistics\n"
                             'PushStreamChannelsPath "%{arg:id}"\n'
                             "PushStreamAuth subscribe\n") \
        + location("/openstats", "PushStreamChannelsStatistics\n"
                                 'PushStreamChannelsPath "%{arg:id}"\n') + subs


@pytest.fixture
def srv(httpd, keys):
    port = pshttpd.free_port()
    s = httpd(auth_conf(keys, port))
    s.pubport = port
    wait_for(lambda: pshttpd.tcp_connects(port), what="publisher port")
    return s


def grants(sub=(), pub=(), exp=60, **extra):
    c = {"pushstream": {"subscribe": list(sub), "publish": list(pub)}}
    if exp is not None:
        c["exp"] = int(time.time()) + exp
    c.update(extra)
    return c


def bearer(tok):
    return {"Authorization": f"Bearer {tok}"}


def openpub(srv, ch, text):
    r = http(srv, "POST", f"/openpub?id={ch}", body=text.encode())
    assert r.status == 200, r


def status_of(srv, prefix, ch, headers):
    """Status (and response) of a subscribe refused before any streaming."""
    path = f"/{prefix}/{ch}"
    if prefix == "ws":
        ws = Ws(srv, path, extra=headers, expect101=False)
        ws.close()
        return ws.resp.status, ws.resp
    r = http(srv, "GET", path, headers)
    return r.status, r


def receives(srv, prefix, ch, headers, text):
    """A granted subscriber of prefix gets the stored message text (.b1)."""
    path = f"/{prefix}/{ch}.b1"
    if prefix == "ws":
        with Ws(srv, path, extra=headers) as ws:
            assert ws.read_text() == (text + "|").encode()
        return
    if prefix in ("lp", "poll"):
        r = http(srv, "GET", path, headers)
        assert r.status == 200, r
        assert r.body == (text + "|").encode(), r
        return
    with Stream(srv, path, headers) as s:
        assert s.status == 200, s.resp
        s.wait_for((text + "|").encode())


def assert_401(r):
    assert r.status == 401, r
    assert r.header("WWW-Authenticate").startswith('Bearer error="invalid_token"'), r


def assert_403(r, ch):
    assert r.status == 403, r
    assert r.header("WWW-Authenticate") == 'Bearer error="insufficient_scope"', r
    assert ch in r.header("X-Nginx-PushStream-Explain"), r


def bad_tokens(keys, ch):
    good = keys.token(grants([ch]), kid="k1")
    h, p, s = good.split(".")
    other = b64u(json.dumps(grants(["zzz", ch + "x"])).encode())
    return {
        "missing": {},
        "expired": bearer(keys.token(grants([ch], exp=-5), kid="k1")),
        "not yet valid": bearer(keys.token(grants([ch], nbf=int(time.time()) + 60), kid="k1")),
        "wrong key": bearer(keys.token(grants([ch]), kid="k1", secret=b"x" * 40)),
        "wrong alg": bearer(keys.token(grants([ch]), alg="HS384", secret=keys.SECRET * 2)),
        "alg none": bearer(keys.token(grants([ch]), alg="none")),
        "alg none, no signature": bearer(h.replace(h, b64u(b'{"alg":"none"}')) + "." + p + "."),
        "tampered": bearer(f"{h}.{other}.{s}"),
        "malformed": bearer("abc.def"),
        "garbage": bearer("\u00e9t\u00e9".encode("utf-8").decode("latin-1")),
    }


def test_every_transport_valid_refused_prefix(srv, keys):
    for prefix in TRANSPORTS:
        ch = f"{prefix}room1"
        openpub(srv, ch, f"hello-{prefix}")
        # a valid token, exact grant; then a prefix grant
        receives(srv, prefix, ch, bearer(keys.token(grants([ch]), kid="k1")), f"hello-{prefix}")
        receives(srv, prefix, ch, bearer(keys.token(grants([f"{prefix}room*"]))),
                 f"hello-{prefix}")
        for what, hdrs in bad_tokens(keys, ch).items():
            st, r = status_of(srv, prefix, ch, hdrs)
            assert st == 401, (prefix, what, r)
            assert_401(r)
        # channel not granted (every channel of the path must be)
        tok = bearer(keys.token(grants([ch, "other*"])))
        st, r = status_of(srv, prefix, f"{ch}/secret", tok)
        assert_403(r, "secret")
        st, r = status_of(srv, prefix, f"{prefix}room", tok)     # prefix is not the id
        assert_403(r, f"{prefix}room")
    log = srv.error_log()
    assert "PS0120: [client 127.0.0.1] Invalid token: token expired." in log
    assert "PS0121: [client 127.0.0.1] Token does not grant subscribe to channel secret." in log


def test_publisher_location_and_port(srv, keys):
    pubtok = bearer(keys.token(grants(pub=["news*"])))
    subtok = bearer(keys.token(grants(sub=["news1"])))
    r = http(srv, "POST", "/pub?id=news1", pubtok, b"m1")
    assert r.status == 200, r
    assert_403(http(srv, "POST", "/pub?id=news1", subtok, b"m2"), "news1")
    assert_401(http(srv, "POST", "/pub?id=news1", {}, b"m3"))
    assert_401(http(srv, "POST", "/pub?id=news1",
                    bearer(keys.token(grants(pub=["news1"], exp=-1))), b"m4"))
    assert_403(http(srv, "POST", "/pub?id=news1/sports", pubtok, b"m5"), "sports")
    # the publisher port, same checks
    c = hc.HTTPConnection("127.0.0.1", srv.pubport, timeout=10)
    try:
        for hdrs, body, want in ((pubtok, b"p1", 200), (subtok, b"p2", 403), ({}, b"p3", 401),
                                 (bearer(keys.token(grants(pub=["news1"]), alg="none")),
                                  b"p4", 401)):
            c.request("POST", "/pub?id=news2", body=body, headers=hdrs)
            r = c.getresponse()
            r.read()
            assert r.status == want, (hdrs, r.status, r.getheaders())
            if want != 200:
                assert r.getheader("WWW-Authenticate").startswith("Bearer error="), r.getheaders()
    finally:
        c.close()
    # only the accepted publishes were stored: m1 on news1, p1 on news2
    r = http(srv, "GET", "/poll/news1.b5", subtok)
    assert r.body == b"m1|", r
    r = http(srv, "GET", "/poll/news2.b5", bearer(keys.token(grants(sub=["news2"]))))
    assert r.body == b"p1|", r


def test_websocket_publish_needs_publish_grant(srv, keys):
    both = bearer(keys.token(grants(sub=["chat1"], pub=["chat1"])))
    with Ws(srv, "/ws/chat1", extra=both) as ws:
        ws.send_frame(OP_TEXT, b"hi")
        assert ws.read_text() == b"hi|"
    only_sub = bearer(keys.token(grants(sub=["chat1"])))
    with Ws(srv, "/ws/chat1", extra=only_sub) as ws:
        ws.send_frame(OP_TEXT, b"sneaky")
        ws.expect_close(code=1008)
    r = http(srv, "GET", "/poll/chat1.b9", only_sub)
    assert r.body == b"hi|", r
    assert "PS0122" in srv.error_log()


def test_key_rotation_and_pinned_algorithms(srv, keys):
    openpub(srv, "rot1", "r")
    claims = grants(["rot1"])
    ok = [keys.token(claims, kid="k1"), keys.token(claims, kid="k2", secret=keys.SECRET2),
          keys.token(claims, secret=keys.SECRET2),          # no kid: each HS256 key tried
          keys.token(claims, alg="RS256", kid="rs"), keys.token(claims, alg="RS256"),
          keys.token(claims, alg="ES256", kid="es"), keys.token(claims, alg="EdDSA", kid="ed"),
          keys.token({"mercure": {"subscribe": ["*"]}, "exp": int(time.time()) + 60})]
    for tok in ok:
        r = http(srv, "GET", "/poll/rot1.b1", bearer(tok))
        assert r.status == 200, (tok, r)
    with open(keys.path("rsa.pub"), "rb") as f:
        rsa_pub = f.read()
    bad = {
        "retired/unknown kid": keys.token(claims, kid="k3"),
        "k2's secret under k1": keys.token(claims, kid="k1", secret=keys.SECRET2),
        "HS256 with the RSA public key as secret (confusion)":
            keys.token(claims, kid="rs", secret=rsa_pub),
        "HS256 with the RSA public key, no kid": keys.token(claims, secret=rsa_pub),
        "ES256 under the EdDSA key id": keys.token(claims, alg="ES256", kid="ed"),
        "RS256 signature of other claims":
            ".".join(keys.token(claims, alg="RS256").split(".")[:2]
                     + [keys.token(grants(["x"]), alg="RS256").split(".")[2]]),
    }
    for what, tok in bad.items():
        r = http(srv, "GET", "/poll/rot1.b1", bearer(tok))
        assert r.status == 401, (what, r)


def test_cors_preflight_needs_no_token(httpd, keys):
    """OPTIONS (a browser's preflight) is answered without a token, and allows the
    Authorization header; the refusal itself carries the CORS headers."""
    s = httpd(auth_conf(keys, pshttpd.free_port(), server_extra='PushStreamAllowedOrigins "*"'))
    r = http(s, "OPTIONS", "/lp/c1", {"Origin": "http://a.example",
                                      "Access-Control-Request-Headers": "authorization"})
    assert r.status == 200, r
    assert "Authorization" in r.header("Access-Control-Allow-Headers"), r
    r = http(s, "GET", "/lp/c1", {"Origin": "http://a.example"})
    assert_401(r)
    assert r.header("Access-Control-Allow-Origin") == "*", r


def test_token_sources(srv, keys):
    openpub(srv, "src1", "s")
    tok = keys.token(grants(["src1"]))
    cookie = {"Cookie": f"a=b; pushstream_token={tok}; c=d"}
    with Stream(srv, "/sub/src1.b1", cookie) as s:
        assert s.status == 200, s.resp
        s.wait_for(b"s|")
    assert http(srv, "GET", f"/poll/src1.b1?token={tok}").status == 200
    # a query argument is read only where PushStreamAuthSource says so
    assert_401(http(srv, "GET", f"/lp/src1.b1?token={tok}"))
    # the first source present is used: a bad header wins over a good cookie
    r = http(srv, "GET", "/poll/src1.b1", {"Authorization": "Bearer x.y.z", **cookie})
    assert_401(r)
    # a non-Bearer Authorization is not a token: the cookie is used
    r = http(srv, "GET", "/poll/src1.b1", {"Authorization": "Basic dTpw", **cookie})
    assert r.status == 200, r


def test_statistics_location_and_counters(srv, keys):
    openpub(srv, "st1", "x")
    assert http(srv, "GET", "/stats?id=st1", bearer(keys.token(grants(["st1"])))).status == 200
    assert_403(http(srv, "GET", "/stats?id=st1/st2", bearer(keys.token(grants(["st1"])))),
               "st2")
    # the summary and ALL need a grant of every channel ("*")
    assert http(srv, "GET", "/stats", bearer(keys.token(grants(["st*"])))).status == 403
    assert http(srv, "GET", "/stats", bearer(keys.token(grants(["*"])))).status == 200
    assert http(srv, "GET", "/stats?id=st*", bearer(keys.token(grants(["s*"])))).status == 200
    assert_401(http(srv, "GET", "/stats", {}))
    doc = json.loads(http(srv, "GET", "/openstats").body)
    assert doc["auth_invalid_token"] == 1 and doc["auth_insufficient_scope"] == 2, doc
    for accept, want in (("text/plain", "auth_invalid_token: 1\r\nauth_insufficient_scope: 2"),
                         ("application/yaml", "  auth_invalid_token: 1\r\n"),
                         ("application/xml", "<auth_insufficient_scope>2</auth_insufficient_")):
        body = http(srv, "GET", "/openstats", {"Accept": accept}).body.decode()
        assert want in body, (accept, body)
    prom = http(srv, "GET", "/openstats?format=prometheus").body.decode()
    assert 'pushstream_auth_refusals_total{error="invalid_token"} 1\n' in prom, prom
    assert 'pushstream_auth_refusals_total{error="insufficient_scope"} 2\n' in prom, prom


def test_expiry_closes_live_subscribers(srv, keys):
    exp = int(time.time()) + 3
    tok = bearer(keys.token({"pushstream": {"subscribe": ["live1"]}, "exp": exp}))
    s = Stream(srv, "/sub/live1", tok)
    e = Stream(srv, "/ev/live1", tok)
    w = Ws(srv, "/ws/live1", extra=tok)
    lp = Stream(srv, "/lp/live1", tok, read_headers=False)
    try:
        s.wait_eof(timeout=8)
        t_s = time.time()
        assert s.body.endswith(b"END"), s.body
        e.wait_eof(timeout=3)
        t_e = time.time()
        assert b": END" in e.body or b"END" in e.body, e.body
        f = w.read_data_frame(timeout=3)
        if f.opcode == OP_TEXT:
            assert f.payload == b"END", f
            f = w.read_frame(timeout=3)
        t_w = time.time()
        assert f.opcode == OP_CLOSE and f.code == 1008, f
        lp.wait_end(timeout=3)
        t_l = time.time()
        assert lp.status == 304, lp.resp
        for t in (t_s, t_e, t_w, t_l):
            assert abs(t - exp) <= 1.0, (t, exp, t_s, t_e, t_w, t_l)
    finally:
        for x in (s, e, w, lp):
            x.close()
    # a long-poll is checked on every poll: the same token is refused now
    assert_401(http(srv, "GET", "/lp/live1", tok))
    assert "PS0124" in srv.error_log()


def test_configtest_errors(configtest, keys, tmp_path_factory):
    k = keys.path
    short = keys.path("short.key")
    with open(short, "wb") as f:
        f.write(b"too short\n")
    os.chmod(short, 0o644)
    cases = [
        (f"PushStreamAuthKey HS257 file:{k('hs.key')}", "unknown algorithm \"HS257\""),
        ("PushStreamAuthKey HS256 file:/nonexistent/key", "cannot open key file"),
        (f"PushStreamAuthKey HS256 file:{short}", "at least 32 needed"),
        (f"PushStreamAuthKey RS256 file:{k('hs.key')}", "no PEM public key"),
        (f"PushStreamAuthKey ES256 file:{k('rsa.pub')}", "curve P-256"),
        (f"PushStreamAuthKey RS256 env:SECRET", "env: is only for HS256"),
        ("PushStreamAuthKey HS256 env:PS_SURELY_UNSET_VAR", "is not set"),
        (f"PushStreamAuthKey HS256 file:{k('hs.key')} a\nPushStreamAuthKey HS256 "
         f"file:{k('hs2.key')} a", "key id \"a\" given twice"),
        ("PushStreamAuthClaims jwt", "pushstream or mercure"),
        ("PushStreamAuthLeeway soon", "PushStreamAuthLeeway: invalid time"),
    ]
    for server, want in cases:
        rc, out = configtest(f"PushStreamSharedMemorySize 32M\n{server}\n"
                             + location("/p", 'PushStreamPublisher\nPushStreamChannelsPath "%{arg:id}"'))
        assert rc != 0 and want in out, (server, out)
        assert re.search(r"line \d+ of .*httpd\.conf", out), out
    rc, out = configtest("PushStreamSharedMemorySize 32M\n"
                         + location("/p", 'PushStreamPublisher\nPushStreamChannelsPath "%{arg:id}"\n'
                                          "PushStreamAuth publish"))
    assert rc != 0 and re.search(r"PS0123: PushStreamAuth needs a PushStreamAuthKey in its "
                                 r"server \(PushStreamAuth at .*httpd\.conf:\d+\)", out), out
    rc, out = configtest("PushStreamSharedMemorySize 32M\n"
                         + location("/p", 'PushStreamPublisher\nPushStreamChannelsPath "%{arg:id}"\n'
                                          "PushStreamAuth sometimes"))
    assert rc != 0 and "subscribe, publish or off" in out, out
