"""clients/js/pushstream-client.js in a real browser (Debian's headless Chromium,
driven through the DevTools protocol over --remote-debugging-pipe) against the
help-desk example (conf.d/helpdesk-chat.conf): every transport (WebSocket,
EventSource, long-polling, iframe streaming) receives what is published, resumes
after a forced server-side disconnect (apachectl graceful) without losing or
duplicating a message, replays by time/tag and by event id, and backs off
instead of reconnecting in a storm.

The page is served by the "application" behind the example's ProxyPass / (a
small Python HTTP server over clients/js/), so it is same-origin with /event/.
"""
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse

import pytest

from pyhttpd import httpd as pshttpd
from pyhttpd.client import LocalHttpServer, request, wait_for

from pyhttpd.env import ROOT  # noqa: E402
CONF_D = os.path.join(ROOT, "conf.d")
JS_DIR = os.path.join(ROOT, "clients", "js")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync",
                  "--remote-debugging-pipe"]

URLS = {"websocket": "/event/ws/", "eventsource": "/event/ev/",
        "longpolling": "/event/lp/", "stream": "/event/sub/"}
TRANSPORTS = list(URLS)

pytestmark = pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                                reason="chromium not installed (build/deps.sh)")


# ---------------------------------------------------------------- Chromium over CDP
class CdpError(Exception):
    pass


class Chromium:
    """Headless Chromium with the DevTools protocol on fds 3/4 (NUL-separated JSON)."""

    def __init__(self, workdir):
        self.userdir = tempfile.mkdtemp(prefix="chromium-", dir=workdir)
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def child_fds():
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)
            os.setsid()
        self.log_path = os.path.join(workdir, "chromium.log")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={self.userdir}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            close_fds=False, preexec_fn=child_fds)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._next_id = 0
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self._replies = {}
        self.events = []
        self._closed = False
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()

    def _read_loop(self):
        buf = b""
        while True:
            try:
                data = os.read(self._from_chrome, 65536)
            except OSError:
                data = b""
            if not data:
                with self._cv:
                    self._closed = True
                    self._cv.notify_all()
                return
            buf += data
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                with self._cv:
                    if "id" in msg:
                        self._replies[msg["id"]] = msg
                    else:
                        self.events.append(msg)
                    self._cv.notify_all()

    def send(self, method, params=None, session=None, timeout=20):
        with self._cv:
            self._next_id += 1
            mid = self._next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.time() + timeout
        with self._cv:
            while mid not in self._replies:
                left = deadline - time.time()
                if self._closed or left <= 0:
                    raise CdpError(f"no answer to {method} ({'closed' if self._closed else 'timeout'})"
                                   f"\n{self.log_tail()}")
                self._cv.wait(left)
            reply = self._replies.pop(mid)
        if "error" in reply:
            raise CdpError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def new_page(self, url):
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget",
                            {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session, target)
        self.send("Runtime.enable", session=session)
        self.send("Page.navigate", {"url": url}, session=session)
        page.wait("window.harnessReady === true", what=f"harness at {url}")
        return page

    def log_tail(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-20:])
        except OSError:
            return ""

    def console(self, session):
        out = []
        with self._lock:
            for e in self.events:
                if e.get("sessionId") != session:
                    continue
                if e["method"] == "Runtime.consoleAPICalled":
                    out.append(" ".join(str(a.get("value", a.get("description", "")))
                                        for a in e["params"]["args"]))
                elif e["method"] == "Runtime.exceptionThrown":
                    d = e["params"]["exceptionDetails"]
                    out.append("EXCEPTION " + str(d.get("exception", {}).get("description")
                                                  or d.get("text")))
        return out

    def close(self):
        try:
            self.send("Browser.close", timeout=5)
        except CdpError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)   # its own session (setsid)
            self.proc.wait(timeout=5)
        for fd in (self._to_chrome, self._from_chrome):
            try:
                os.close(fd)
            except OSError:
                pass
        self._log.close()
        shutil.rmtree(self.userdir, ignore_errors=True)


class Page:
    def __init__(self, browser, session, target):
        self.b, self.session, self.target = browser, session, target

    def eval(self, expr, timeout=20):
        r = self.b.send("Runtime.evaluate", {"expression": expr, "awaitPromise": True,
                                             "returnByValue": True}, session=self.session,
                        timeout=timeout)
        if "exceptionDetails" in r:
            raise CdpError(f"{expr}: {r['exceptionDetails']}\nconsole: {self.console()}")
        return r["result"].get("value")

    def wait(self, expr, timeout=15, what=None):
        deadline = time.time() + timeout
        while True:
            try:
                if self.eval(expr):
                    return
            except CdpError:
                pass
            if time.time() > deadline:
                raise AssertionError(f"timed out waiting for {what or expr}\n"
                                     f"console: {self.console()}")
            time.sleep(0.05)

    def console(self):
        return self.b.console(self.session)

    def close(self):
        try:
            self.b.send("Target.closeTarget", {"targetId": self.target}, timeout=5)
        except CdpError:
            pass


# ---------------------------------------------------------------- servers
class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


class App(LocalHttpServer):
    """The PHP application stand-in behind ProxyPass /: serves clients/js/."""

    def __init__(self):
        super().__init__(lambda *a, **kw: _Quiet(*a, directory=JS_DIR, **kw))


class PubSide:
    """The loopback publisher virtual host of the example."""

    def __init__(self, port):
        self.port = port


def helpdesk_conf(pub_port, public_port, app_port, key_path=None):
    with open(os.path.join(CONF_D, "pushstream.conf")) as f:
        base = f.read()
    with open(os.path.join(CONF_D, "helpdesk-chat.conf")) as f:
        ex = f.read()
    ex = ex.replace("127.0.0.1:8060", f"127.0.0.1:{pub_port}")
    ex = ex.replace("<VirtualHost *:80>", f"<VirtualHost *:{public_port}>")
    ex = ex.replace("http://127.0.0.1:8080/", f"http://127.0.0.1:{app_port}/")
    assert str(pub_port) in ex and str(app_port) in ex
    # for test_plain_templates: locations with nginx's default template ~text~
    ex = ex.replace("ProxyPass /event/ !", "ProxyPass /event/ !\n            ProxyPass /plain/ !"
                    "\n            ProxyPass /auth/ !")
    auth = f"PushStreamAuthKey HS256 file:{key_path}\n" + AUTH if key_path else ""
    return base + "\n" + ex + PLAIN + auth


PLAIN = r'''
<LocationMatch "^/plain/lp/(?<ch>.+)$">
    PushStreamSubscriber long-polling
    PushStreamChannelsPath "%{env:MATCH_CH}"
    PushStreamLongpollingConnectionTtl 30s
</LocationMatch>
<LocationMatch "^/plain/ev/(?<ch>.+)$">
    PushStreamSubscriber eventsource
    PushStreamChannelsPath "%{env:MATCH_CH}"
    PushStreamLastEventId "%{arg:eventid}"
</LocationMatch>
'''


# for test_token: PushStreamAuth subscribers (nginx's default template ~text~)
AUTH = "".join(f'''
<LocationMatch "^/auth/{p}/(?<ch>.+)$">
    PushStreamSubscriber {mode}
    PushStreamChannelsPath "%{{env:MATCH_CH}}"
    PushStreamLongpollingConnectionTtl 30s
    PushStreamAuth subscribe
</LocationMatch>
''' for p, mode in (("lp", "long-polling"), ("ev", "eventsource"), ("ws", "websocket")))
AUTH_SECRET = b"js-client-secret-0123456789abcdef0123"


@pytest.fixture(scope="module")
def env(workbase):
    d = tempfile.mkdtemp(prefix="clients_js-", dir=workbase)
    os.chmod(d, 0o755)
    key = os.path.join(d, "auth.key")
    with open(key, "wb") as f:
        f.write(AUTH_SECRET)
    os.chmod(key, 0o644)
    app = App()
    pub_port = pshttpd.free_port()
    port = pshttpd.free_port()
    srv = pshttpd.Httpd(os.path.join(d, "httpd"), helpdesk_conf(pub_port, port, app.port, key),
                        port=port, modules=["proxy", "proxy_http"])
    browser = None
    try:
        srv.start()
        browser = Chromium(d)
        yield {"srv": srv, "pub": PubSide(pub_port), "app": app, "browser": browser}
    finally:
        if browser:
            browser.close()
        srv.stop()
        app.stop()
    known = srv.httpd_stop_crashes() if srv.crash_lines() else []
    crashes = [l for l in srv.crash_lines() if l not in known]
    assert not crashes, srv.crash_report(crashes)


@pytest.fixture
def page(env):
    p = env["browser"].new_page(env["srv"].url("/test/harness.html"))
    yield p
    try:
        p.eval("for (const n of ['a','b','c','d','e','f','g','h']) "
               "{ try { harness.stop(n) } catch (e) {} } true")
    finally:
        p.close()


# ---------------------------------------------------------------- helpers
_seq = [0]


def channel(prefix):
    _seq[0] += 1
    return f"{prefix}_{os.getpid()}_{_seq[0]}_{int(time.time() * 1000) % 100000}"


def publish(env, channels, text, headers=None):
    r = request(env["pub"], "POST", f"/pub?id={urllib.parse.quote(channels)}",
                body=text.encode(), headers=headers or {})
    assert r.status == 200, r
    return r


def subscribers(env, ch):
    r = request(env["pub"], "GET", f"/pub?id={ch}", headers={"Accept": "application/json"})
    return 0 if r.status == 404 else json.loads(r.body)["subscribers"]


def start(page, name, transport, channels, **opts):
    o = {"transport": transport, "url": URLS[transport], "channels": channels}
    if transport == "eventsource":
        o.setdefault("eventTypes", ["chat"])
    o.update(opts)
    page.eval(f"harness.start({json.dumps(name)}, {json.dumps(o)})")


def state(page, name):
    return page.eval(f"harness.state({json.dumps(name)})")


def texts(page, name):
    return [m["text"] for m in state(page, name)["msgs"]]


def wait_texts(page, name, expected, timeout=15):
    """Waits until the client got exactly `expected` (in order); fails on more."""
    deadline = time.time() + timeout
    while True:
        got = texts(page, name)
        if len(got) >= len(expected):
            assert got == expected, f"{name}: got {got!r}\nwanted {expected!r}"
            return
        if got != expected[:len(got)]:
            raise AssertionError(f"{name}: got {got!r}\nwanted {expected!r}")
        if time.time() > deadline:
            st = state(page, name)
            raise AssertionError(f"{name}: got {got!r}, wanted {expected!r}; status "
                                 f"{st['status']}, statuses {st['statuses'][-6:]}, errors "
                                 f"{st['errors']}\nconsole: {page.console()}")
        time.sleep(0.05)


def wait_subscribed(env, ch, n=1):
    wait_for(lambda: subscribers(env, ch) >= n, 10, what=f"{n} subscriber(s) on {ch}")


def statuses(page, name):
    return [s["s"] for s in state(page, name)["statuses"]]


# Texts that break naive templates: quotes, backslashes, a closing script tag
# (the iframe), HTML, non-ASCII, the JavaScript line separators, several lines.
TRICKY = ['plain', 'quote " and \\ backslash', '</script><script>alert(1)</script>',
          '<b>&amp;</b> \'single\'', 'unicode \u00fc \u20ac \U0001F600',
          'sep \u2028 \u2029 end', 'line one\nline two', '{"json": "inside"}']


# ---------------------------------------------------------------- tests
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_every_transport_receives_published_messages(env, page, transport):
    """Plain and tricky texts, two channels, a publish to both at once, event
    ids and types: each arrives once, in order, with its channel, id and text."""
    a, b = channel("a"), channel("b")
    start(page, "a", transport, [a, b])
    wait_subscribed(env, a)
    expected = []
    for t in TRICKY:
        publish(env, a, t)
        expected.append((a, t))
    publish(env, b, "on b", headers={"Event-Id": "ev-1"})
    expected.append((b, "on b"))
    publish(env, f"{a}/{b}", "to both", headers={"Event-Id": "ev-2", "Event-Type": "chat"})
    expected += [(a, "to both"), (b, "to both")]
    wait_texts(page, "a", [t for _, t in expected])
    msgs = state(page, "a")["msgs"]
    assert [(m["channel"], m["text"]) for m in msgs] == expected
    assert [m["id"] for m in msgs if m["channel"] == a] == list(range(1, len(TRICKY) + 2))
    assert [m["id"] for m in msgs if m["channel"] == b] == [1, 2]
    assert msgs[-3]["eventid"] == "ev-1" and msgs[-1]["eventid"] == "ev-2"
    if transport == "eventsource":
        assert msgs[-1]["eventtype"] == "chat"
    assert all(m["transport"] == transport for m in msgs)
    st = state(page, "a")
    assert st["errors"] == [] and st["status"] in ("open", "connecting")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_resume_after_graceful_restart(env, page, transport):
    """apachectl graceful ends every subscriber; messages published while the
    client is away arrive after it reconnects, none twice, none lost."""
    srv = env["srv"]
    ch = channel("g")
    # a fixed 2.5 s delay after a clean close, so the gap is certain
    start(page, "a", transport, [ch], cleanDelayMin=2500, cleanDelayMax=2500)
    wait_subscribed(env, ch)
    sent = []
    for i in range(1, 4):
        sent.append(f"before {i}")
        publish(env, ch, sent[-1])
    wait_texts(page, "a", sent)
    n_statuses = len(state(page, "a")["statuses"])
    srv.graceful()
    if transport == "longpolling":
        # a long-poll is one request: the 304 of the old child is answered at
        # once by a new poll (no reconnect delay); publish right away
        for i in range(1, 4):
            sent.append(f"during {i}")
            publish(env, ch, sent[-1])
    else:
        page.wait(f"harness.state('a').statuses.slice({n_statuses})"
                  ".some(s => s.s === 'waiting')", what="the client to see the close")
        for i in range(1, 4):
            sent.append(f"during {i}")
            publish(env, ch, sent[-1])
        st = state(page, "a")
        assert st["status"] == "waiting", "the client reconnected before the gap was filled"
        closed = [s for s in st["statuses"][n_statuses:] if s["s"] == "closed"]
        assert closed and closed[0]["d"]["clean"] is True, closed
        assert st["failures"] == 0
        page.wait("harness.state('a').status === 'open'", what="the client to reconnect")
    wait_subscribed(env, ch)
    for i in range(1, 4):
        sent.append(f"after {i}")
        publish(env, ch, sent[-1])
    wait_texts(page, "a", sent)
    msgs = state(page, "a")["msgs"]
    assert [m["id"] for m in msgs] == list(range(1, 10))
    time.sleep(0.5)                      # nothing else trickles in
    assert texts(page, "a") == sent
    if transport != "longpolling":
        # the reconnect asked for what it missed with time and tag (logged once it ends)
        page.eval("harness.stop('a')")
        wait_for(lambda: subscribers(env, ch) == 0, 10, what="the subscriber to leave")
        wait_for(lambda: re.search(rf'GET {URLS[transport]}{ch}\?time=[^ ]+&tag=\d+ ', srv.access_log()),
                 5, what="the reconnect in the access log")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_replay_by_time_tag_and_event_id(env, page, transport):
    """since: {time, tag} and since: {eventid} start after that message;
    backtrack: N gets the last N stored messages."""
    ch = channel("r")
    for i in range(1, 6):
        publish(env, ch, f"m{i}", headers={"Event-Id": f"e{i}"})
    r = request(env["pub"], "GET", f"/pub?id={ch}")
    assert json.loads(r.body)["stored_messages"] == 5
    # read m2's time and tag the way a client would have got them
    r = request(env["srv"], "GET", f"/event/lp/{ch}.b4")
    first = json.loads(r.body.split(b"}", 1)[0] + b"}")
    assert first["text"] == "m2"
    start(page, "a", transport, [ch], since={"time": first["time"], "tag": first["tag"]})
    wait_texts(page, "a", ["m3", "m4", "m5"])
    start(page, "b", transport, [ch], backtrack=2)
    wait_texts(page, "b", ["m4", "m5"])
    if transport != "eventsource":     # the EventSource location keeps Last-Event-Id
        start(page, "c", transport, [ch], since={"eventid": "e3"})
        wait_texts(page, "c", ["m4", "m5"])
    publish(env, ch, "m6")
    wait_texts(page, "a", ["m3", "m4", "m5", "m6"])
    wait_texts(page, "b", ["m4", "m5", "m6"])


def test_backoff_on_refusal_is_not_a_storm(env, page):
    """A subscription the server refuses (channel id ALL: 403, for WebSocket a
    1008 close after the 101) is retried with growing delays, not in a loop."""
    for name, transport in (("a", "websocket"), ("b", "longpolling"), ("c", "eventsource"),
                            ("d", "stream")):
        start(page, name, transport, ["ALL"], initialDelay=200, factor=2, jitter=0,
              maxDelay=1600)
    time.sleep(4.5)
    for name in "abcd":
        st = state(page, name)
        delays = [round(s["d"]["delay"]) for s in st["statuses"] if s["s"] == "waiting"]
        # 200, 400, 800, 1600 (+ capped 1600) in 4.5 s: a handful, not hundreds
        assert 3 <= len(delays) <= 6, (name, delays)
        assert delays[:4] == [200, 400, 800, 1600], (name, delays)
        assert st["failures"] == len(delays)
        assert st["msgs"] == []
    closed = [s for s in state(page, "a")["statuses"] if s["s"] == "closed"]
    assert closed[0]["d"]["code"] == 1008 and closed[0]["d"]["http_status"] == 403
    closed = [s for s in state(page, "b")["statuses"] if s["s"] == "closed"]
    assert closed[0]["d"]["status"] == 403
    page.eval("for (const n of 'abcd') harness.stop(n); true")
    log = env["srv"].access_log()
    attempts = len(re.findall(r'"GET /event/\w+/ALL', log))
    assert attempts <= 4 * 7, attempts


def test_clean_close_reconnects_spread_out(env, page):
    """Six clients closed at once by a graceful restart come back after
    random delays spread over [cleanDelayMin, cleanDelayMax] (no storm),
    counting it as a clean close (no failure)."""
    ch = channel("s")
    names = "abcdef"
    for i, name in enumerate(names):
        start(page, name, ("websocket", "eventsource", "stream")[i % 3], [ch],
              cleanDelayMin=200, cleanDelayMax=3000)
    wait_subscribed(env, ch, len(names))
    publish(env, ch, "hello")
    for name in names:
        wait_texts(page, name, ["hello"])
    env["srv"].graceful()
    for name in names:
        page.wait(f"harness.state('{name}').statuses.some(s => s.s === 'closed')")
    delays = []
    for name in names:
        closed = [s for s in state(page, name)["statuses"] if s["s"] == "closed"][0]
        assert closed["d"]["clean"] is True
        assert 200 <= closed["d"]["delay"] <= 3000
        delays.append(closed["d"]["delay"])
    # spread over the window, not all at once (6 uniform draws in 2.8 s fall
    # within 300 ms of each other with a probability below 1e-4)
    assert max(delays) - min(delays) > 300, delays
    for name in names:
        page.wait(f"harness.state('{name}').status === 'open'", what=f"{name} to reconnect")
    wait_subscribed(env, ch, len(names))
    publish(env, ch, "again")
    for name in names:
        wait_texts(page, name, ["hello", "again"])
        assert state(page, name)["failures"] == 0


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_disconnect_stops_for_good(env, page, transport):
    ch = channel("d")
    start(page, "a", transport, [ch])
    wait_subscribed(env, ch)
    publish(env, ch, "one")
    wait_texts(page, "a", ["one"])
    page.eval("harness.stop('a')")
    wait_for(lambda: subscribers(env, ch) == 0, 10, what="the subscriber to leave")
    before = env["srv"].access_log().count(f"/{ch}")
    publish(env, ch, "two")
    time.sleep(1.5)
    assert texts(page, "a") == ["one"]
    assert state(page, "a")["status"] == "stopped"
    assert env["srv"].access_log().count(f"/{ch}") == before
    assert page.eval("document.querySelectorAll('iframe').length") == 0


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_channel_deleted(env, page, transport):
    """A DELETE reaches the client as ondeleted(channel, text), not as a
    message; the client leaves the channel (here its only one: it stops)."""
    ch, other = channel("x"), channel("y")
    start(page, "a", transport, [ch])
    start(page, "b", transport, [ch, other])
    wait_subscribed(env, ch, 2)
    publish(env, ch, "before")
    wait_texts(page, "a", ["before"])
    wait_texts(page, "b", ["before"])
    r = request(env["pub"], "DELETE", f"/pub?id={ch}", body=b"closed by agent")
    assert r.status == 200
    for name in "ab":
        page.wait(f"harness.state('{name}').deleted.length === 1")
        assert state(page, name)["deleted"] == [{"ch": ch, "text": "closed by agent"}]
    page.wait("harness.state('a').status === 'stopped'")
    # b goes on with the other channel
    publish(env, other, "still here")
    wait_texts(page, "b", ["before", "still here"])
    time.sleep(0.5)
    assert texts(page, "a") == ["before"]
    assert state(page, "a")["status"] == "stopped"
    assert subscribers(env, ch) == 0


def test_json_sequence_parser(env, page):
    """The parser of concatenated JSON objects (long-poll answers) copes with
    braces and quotes inside strings, whitespace between objects, and says
    null for anything else."""
    cases = {
        '{"a":"}{"}{"b":"\\"}"}': [{"a": "}{"}, {"b": '"}'}],
        '{"x":1}\n{"y":{"z":[1,2]}}\n': [{"x": 1}, {"y": {"z": [1, 2]}}],
        '': [],
        'plain text': None,
        '{"x":1} trailing': None,
        '{"unterminated":': None,
    }
    for raw, want in cases.items():
        assert page.eval(f"harness.parse({json.dumps(raw)})") == want, raw


@pytest.mark.parametrize("transport", ["longpolling", "eventsource"])
def test_plain_templates(env, page, transport):
    """With nginx's default template (~text~, no JSON) the client still
    resumes exactly: long-polling by Last-Modified/Etag sent back as
    If-Modified-Since/If-None-Match, EventSource by the id: lines (?eventid=).
    (A long-poll answer holding several messages is one text then: nothing
    separates them; so here each is received before the next is published,
    and one is published while the client is away.)"""
    srv = env["srv"]
    ch = channel("p")
    url = {"longpolling": "/plain/lp/", "eventsource": "/plain/ev/"}[transport]
    start(page, "a", transport, [ch], url=url, cleanDelayMin=2500, cleanDelayMax=2500)
    wait_subscribed(env, ch)
    sent = []
    n = 0

    def pub(prefix, count=3, wait=transport == "longpolling"):
        nonlocal n
        for _ in range(count):
            n += 1
            sent.append(f"{prefix} {n}")
            publish(env, ch, sent[-1], headers={"Event-Id": f"e{n}"})
            if wait:
                wait_texts(page, "a", sent)
    pub("before")
    wait_texts(page, "a", sent)
    srv.graceful()
    if transport == "eventsource":
        page.wait("harness.state('a').status === 'waiting'", what="the client to see the close")
    pub("during", 3 if transport == "eventsource" else 1, wait=False)
    if transport == "eventsource":
        assert state(page, "a")["status"] == "waiting"
        page.wait("harness.state('a').status === 'open'", what="the client to reconnect")
    wait_subscribed(env, ch)
    pub("after")
    wait_texts(page, "a", sent)
    time.sleep(0.5)
    assert texts(page, "a") == sent
    msgs = state(page, "a")["msgs"]
    assert all(m["id"] is None for m in msgs)          # no JSON: text only
    if transport == "eventsource":
        assert [m["eventid"] for m in msgs] == [f"e{i}" for i in range(1, 10)]
        # the reconnect asked for what it missed by event id (logged once it ends)
        page.eval("harness.stop('a')")
        wait_for(lambda: subscribers(env, ch) == 0, 10, what="the subscriber to leave")
        wait_for(lambda: f"GET /plain/ev/{ch}?eventid=e3 " in srv.access_log(), 5,
                 what="the reconnect in the access log")


@pytest.mark.parametrize("transport", ["websocket", "eventsource", "longpolling"])
def test_token(env, page, transport):
    """PushStreamAuth: the client's token option reaches the module (long-polling:
    Authorization header; WebSocket/EventSource: the pushstream_token cookie); a
    client without a token is refused (401) and backs off."""
    from pyhttpd.jwtmint import compact
    import hashlib
    import hmac
    ch = channel("auth")
    tok = compact({"alg": "HS256"}, {"exp": int(time.time()) + 60,
                                     "pushstream": {"subscribe": [ch]}},
                  lambda d: hmac.new(AUTH_SECRET, d, hashlib.sha256).digest())
    url = {"websocket": "/auth/ws/", "eventsource": "/auth/ev/", "longpolling": "/auth/lp/"}
    # first without a token (before any token cookie exists in the browser)
    start(page, "n", transport, [ch], url=url[transport], initialDelay=300, jitter=0)
    wait_for(lambda: state(page, "n")["failures"] >= 1, 10, what="a refusal")
    page.eval("harness.stop('n'); true")
    assert subscribers(env, ch) == 0
    start(page, "a", transport, [ch], url=url[transport], token=tok)
    wait_subscribed(env, ch)
    publish(env, ch, "granted")
    wait_texts(page, "a", ["granted"])
    log = env["srv"].error_log()
    assert "PS0120" in log and "Missing token." in log
