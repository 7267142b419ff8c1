"""The demo page of `make run` (clients/demo/ at / of conf.d/demo.conf) in
Debian's headless Chromium: the page loads with the project's JS client, a
message typed into its box and sent reaches all four transports (WebSocket,
EventSource, long-polling, iframe streaming), the statistics panel follows the
server, a paused transport catches up what it missed by ?time=&tag=, and after
the server is stopped and started again every transport reconnects by itself.

The server is pshttpd.demo_server() -- the very config `make run` starts.  A
screenshot of the page is kept in the test's workdir (demo-page.png), so a
failure can be looked at.
"""
import base64
import json
import os
import re
import tempfile
import time

import pytest

import shutil
import subprocess
import urllib.request

from pyhttpd import httpd as pshttpd
from pyhttpd.client import request, wait_for
from .test_clients_js import CHROMIUM, Chromium, Page

SLOW = float(os.environ.get("PS_SLOW", "1"))
PANES = ("websocket", "eventsource", "longpolling", "stream")

pytestmark = pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                                reason="chromium not installed (build/deps.sh)")


@pytest.fixture(scope="module")
def demo(workbase):
    d = tempfile.mkdtemp(prefix="demo_page-", dir=workbase)
    os.chmod(d, 0o755)
    srv = pshttpd.demo_server(os.path.join(d, "httpd"))
    browser = None
    try:
        srv.start()
        browser = Chromium(d)
        yield {"srv": srv, "browser": browser, "dir": d}
    finally:
        if browser:
            browser.close()
        srv.stop()
    known = srv.httpd_stop_crashes() if srv.crash_lines() else []
    crashes = [l for l in srv.crash_lines() if l not in known]
    assert not crashes, srv.crash_report(crashes)


def open_page(demo):
    b = demo["browser"]
    target = b.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = b.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    page = Page(b, session, target)
    b.send("Runtime.enable", session=session)
    b.send("Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 860,
                                                  "deviceScaleFactor": 1, "mobile": False},
           session=session)
    b.send("Page.navigate", {"url": demo["srv"].url("/")}, session=session)
    page.wait("window.demo && window.demo.ready === true", what="the demo page")
    return page


def screenshot(page, path):
    shot = page.b.send("Page.captureScreenshot", {"format": "png"}, session=page.session)
    with open(path, "wb") as f:
        f.write(base64.b64decode(shot["data"]))
    return path


def texts(page, pane):
    return page.eval(f"[...document.querySelectorAll('#pane-{pane} .msgs li')]"
                     ".map(li => ({text: li.querySelector('.text').textContent, "
                     "id: li.querySelector('.id').textContent, kind: li.className}))")


def status(page, pane):
    return page.eval(f"document.querySelector('#pane-{pane}').dataset.status")


def wait_all_open(page, timeout=15):
    for p in PANES:
        page.wait(f"document.querySelector('#pane-{p}').dataset.status === 'open'",
                  timeout=timeout * SLOW, what=f"{p} to be open")


def send_from_box(page, text):
    """Types into the page's box and clicks Send, as a visitor does."""
    page.eval(f"document.querySelector('#text').value = {json.dumps(text)}; "
              "document.querySelector('#send').click(); true")


def wait_text_everywhere(page, text, timeout=10):
    for p in PANES:
        page.wait(f"[...document.querySelectorAll('#pane-{p} .msgs .text')]"
                  f".some(e => e.textContent.endsWith({json.dumps(text)}))",
                  timeout=timeout * SLOW, what=f"{text!r} in the {p} pane")


def subscribers(srv, ch="demo"):
    r = request(srv, "GET", f"/pub?id={ch}", headers={"Accept": "application/json"})
    return json.loads(r.body)["subscribers"] if r.status == 200 else 0


def test_demo_page_every_transport_shows_a_message_sent_from_the_box(demo):
    srv = demo["srv"]
    page = open_page(demo)
    shot = os.path.join(demo["dir"], "demo-page.png")
    try:
        # the page, its script and the JS client come from the demo httpd
        log = srv.access_log()
        for path in ("/", "/demo.js", "/demo.css", "/js/pushstream-client.js"):
            assert re.search(rf' 200 \d+ \d+ "GET {re.escape(path)} ', log), (path, log)
        wait_all_open(page)
        wait_for(lambda: subscribers(srv) == 4, 10 * SLOW, what="4 subscribers on demo")
        send_from_box(page, "Hello from Chromium <b>&</b> \"quotes\" ✓")
        wait_text_everywhere(page, "Hello from Chromium <b>&</b> \"quotes\" ✓")
        page.wait("document.querySelector('#pubresult').className.includes('ok')",
                  what="the publish result")
        for p in PANES:
            got = texts(page, p)
            assert len(got) == 1, (p, got)
            assert got[0]["id"] == "#1" and got[0]["kind"] == "live", (p, got)
            assert re.fullmatch(r"guest\d+: Hello from Chromium <b>&</b> \"quotes\" ✓",
                                got[0]["text"]), got
        # the publish went through /pub on the server
        assert re.search(r' 200 \d+ \d+ "POST /pub\?id=demo ', srv.access_log())
        for i in range(2, 5):
            send_from_box(page, f"message {i}")
        wait_text_everywhere(page, "message 4")
        for p in PANES:
            assert [m["id"] for m in texts(page, p)] == ["#1", "#2", "#3", "#4"], p
        # statistics panel: 1 channel, 4 subscribers, 4 published, a chart
        page.wait("document.querySelector('#st-published').textContent === '4' && "
                  "document.querySelector('#st-subscribers').textContent === '4' && "
                  "document.querySelector('#st-channels').textContent === '1'",
                  timeout=5 * SLOW, what="the statistics panel")
        n = page.eval("window.demo.statsUpdates")
        time.sleep(2.2)
        assert page.eval("window.demo.statsUpdates") >= n + 1   # refreshed every second
        # the chart was drawn: the canvas is not blank
        assert page.eval("(() => { const c = document.querySelector('#chart');"
                         " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
                         " let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++;"
                         " return n; })()") > 500
    finally:
        screenshot(page, shot)
        page.close()
    assert os.path.getsize(shot) > 10000


def test_demo_page_catches_up_after_pause_and_server_restart(demo):
    srv = demo["srv"]
    page = open_page(demo)
    shot = os.path.join(demo["dir"], "demo-page-restart.png")
    try:
        wait_all_open(page)
        before = {p: len(texts(page, p)) for p in PANES}
        # paused transports miss two messages, then catch up by ?time=&tag=
        page.eval("for (const b of document.querySelectorAll('.pane .toggle')) b.click(); true")
        for p in PANES:
            page.wait(f"document.querySelector('#pane-{p}').dataset.status === 'stopped'")
        wait_for(lambda: subscribers(srv) == 0, 10 * SLOW, what="the paused subscribers to go")
        send_from_box(page, "while paused 1")
        send_from_box(page, "while paused 2")
        page.wait("document.querySelector('#st-published').textContent === '6'",
                  timeout=5 * SLOW, what="the two publishes in the statistics")
        time.sleep(1.1)                 # the page tells backlog by whole-second times
        page.eval("for (const b of document.querySelectorAll('.pane .toggle')) b.click(); true")
        wait_text_everywhere(page, "while paused 2")
        for p in PANES:
            got = texts(page, p)[before[p]:]
            assert [m["text"].split(": ", 1)[1] for m in got] == \
                ["while paused 1", "while paused 2"], (p, got)
            assert all(m["kind"] == "caught" for m in got), (p, got)
            assert page.eval(f"document.querySelector('#pane-{p} .resume').textContent") \
                .startswith("resumed by ?time=&tag=: caught up 2"), p
        assert re.search(r'"GET /ws/demo\?time=[^ ]+&tag=\d+ ', srv.access_log()) or \
            re.search(r'"GET /lp/demo\?time=[^ ]+&tag=\d+ ', srv.access_log())

        # stop and start the server: every transport notices, retries, and
        # catches up what was published before it got back (by ?time=&tag=
        # of its last message: the new server's store starts empty)
        srv.stop()
        for p in PANES:
            page.wait(f"window.demo.panes['{p}'].client.failures >= 3",
                      timeout=15 * SLOW, what=f"{p} to retry three times")
        page.wait("document.querySelector('#st-state').className.includes('err')",
                  timeout=5 * SLOW, what="the statistics panel to notice the stop")
        srv.start()
        r = request(srv, "POST", "/pub?id=demo", body=b"curl: right after the restart")
        assert r.status == 200, r
        published = int(time.time()) * 1000       # its time as the page sees it
        wait_text_everywhere(page, "right after the restart", timeout=20)
        late = []
        for p in PANES:
            got = texts(page, p)[-1]
            assert got["id"] == "#1", (p, got)        # a new store: ids start again
            # came back a second or more after the publish: shown as caught up
            if page.eval(f"window.demo.panes['{p}'].connectingAt") >= published + 1000:
                late.append(p)
                assert got["kind"] == "caught", (p, got)
                assert page.eval(f"document.querySelector('#pane-{p} .resume').textContent") \
                    .startswith("resumed by ?time=&tag=: caught up 1 missed message"), p
        wait_all_open(page, timeout=20)
        wait_for(lambda: subscribers(srv) == 4, 10 * SLOW, what="4 subscribers again")
        send_from_box(page, "after restart")
        wait_text_everywhere(page, "after restart")
        for p in PANES:
            assert texts(page, p)[-1]["kind"] == "live", (p, texts(page, p))
        page.wait("document.querySelector('#st-state').className.includes('ok')",
                  timeout=5 * SLOW, what="the statistics panel to come back")
        print(f"panes that caught up after the restart: {late}")
    finally:
        screenshot(page, shot)
        page.close()


def test_make_run_prints_the_page_url_first(workbase):
    """`make run`'s CLI (python3 -m pyhttpd run): the first line is the page's
    URL, and the page, the JS client and the statistics answer there; `stop`
    stops it.  Its own PS_BUILD (a copy of the modules) and PS_DEMO_PORT, so a
    demo the developer runs is left alone."""
    d = tempfile.mkdtemp(prefix="make_run-", dir=workbase)
    os.chmod(d, 0o755)
    build = os.environ.get("PS_BUILD") or os.path.join(pshttpd.ROOT, ".build")
    for so in ("mod_pushstream.so", "mod_pushstream_wstunnel.so"):
        shutil.copy(os.path.join(build, so), d)
    port = pshttpd.free_port()
    env = dict(os.environ, PS_BUILD=d, PS_DEMO_PORT=str(port),
               PYTHONPATH=os.path.join(pshttpd.ROOT, "test"))
    cli = ["-m", "pyhttpd"]
    r = subprocess.run(["/usr/bin/python3", *cli, "run"], env=env, capture_output=True,
                       text=True, timeout=60)
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        first = r.stdout.splitlines()[0]
        assert re.fullmatch(rf"demo page: +http://127\.0\.0\.1:{port}/ +<- open it in a browser",
                            first), r.stdout
        for path, want in (("/", b"mod_pushstream live demo"),
                           ("/js/pushstream-client.js", b"export class PushStreamClient"),
                           ("/channels-stats", b'"published_messages": 0')):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
                assert resp.status == 200 and want in resp.read(), path
    finally:
        s = subprocess.run(["/usr/bin/python3", *cli, "stop"], env=env, capture_output=True,
                           text=True, timeout=60)
    assert s.returncode == 0 and s.stdout.startswith("stopped httpd "), s.stdout + s.stderr
    assert not pshttpd.tcp_connects(port)
