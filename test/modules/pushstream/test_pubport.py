"""The publisher port (PushStreamPublisherListen): a publisher location also
served by each child's event loop on an address of its own, channels from
?id=.  Same answers as the location; its own HTTP/1.x reading (keep-alive,
pipelining, 100-continue, errors, timeouts); restarts keep the address."""
import http.client
import json
import socket
import subprocess
import time

import pytest

from pyhttpd import httpd as pshttpd
from pyhttpd.client import HttpParser, Stream, publish, request, wait_for
from pyhttpd.conf import conf

EXPIRES = "Thu, 01 Jan 1970 00:00:01 GMT"
CACHE_CONTROL = "no-cache, no-store, must-revalidate"


def port_conf(port, publisher="admin", server="", extra_pub=""):
    return conf(server=server, publisher=publisher,
                pub=f"PushStreamPublisherListen 127.0.0.1:{port}\n" + extra_pub,
                sub='PushStreamMessageTemplate "~text~|"',
                poll='PushStreamMessageTemplate "~event-id~:~event-type~:~text~|"')


def start(httpd, publisher="admin", server="", servers=2, **kw):
    port = pshttpd.free_port()
    srv = httpd(port_conf(port, publisher, server), servers=servers, **kw)
    wait_for(lambda: pshttpd.tcp_connects(port), what="publisher port")
    return srv, port


def conn(port):
    return http.client.HTTPConnection("127.0.0.1", port, timeout=10)


def call(c, method, path, body=None, headers=None):
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    return r, r.read()


def read_to_close(s):
    """Everything s receives until the server closes it."""
    out = b""
    while True:
        b = s.recv(65536)
        if not b:
            return out
        out += b


def raw(port, data, timeout=5):
    """Send data on a new connection, read until the server closes it."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    try:
        return read_to_close(s)
    finally:
        s.close()


def responses(data):
    """Split raw bytes into Content-Length framed responses (psclient.Response)."""
    out = []
    while data:
        p = HttpParser()
        i = data.find(b"\r\n\r\n")
        assert i >= 0, data
        head = data[:i + 4]
        p.feed(head)
        n = int(p.header("Content-Length"))
        p.feed(data[i + 4:i + 4 + n])
        assert p.complete, data
        out.append(p.response())
        data = data[i + 4 + n:]
    return out


def test_port_publishes_to_subscribers_of_every_child_over_keepalive(httpd):
    srv, port = start(httpd)
    subs = [Stream(srv, "/sub/kp") for _ in range(6)]
    for s in subs:
        s.wait_headers()
    c = conn(port)
    for i in range(50):
        r, body = call(c, "POST", "/pub?id=kp", body=f"m{i}".encode())
        assert r.status == 200, (r.status, body)
        assert json.loads(body) == {"channel": "kp", "published_messages": i + 1,
                                    "stored_messages": i + 1, "subscribers": 6}
    want = "".join(f"m{i}|" for i in range(50)).encode()
    for s in subs:
        s.wait_for(want)
    c.close()
    # the same messages through httpd's location: counts go on from 50
    r = publish(srv, "kp", b"via-httpd")
    assert json.loads(r.body)["published_messages"] == 51
    for s in subs:
        s.close()


def test_port_answers_as_the_location_does(httpd):
    srv, port = start(httpd)
    c = conn(port)
    r, body = call(c, "POST", "/pub?id=same", body=b"x")
    via_location = publish(srv, "same", b"y")
    assert r.getheader("Content-Type") == via_location.header("Content-Type") \
        == "application/json"
    assert r.getheader("Expires") == EXPIRES
    assert r.getheader("Cache-Control") == CACHE_CONTROL
    assert body.replace(b'"published_messages": 1', b'"published_messages": 2') \
        .replace(b'"stored_messages": 1', b'"stored_messages": 2') == via_location.body
    r, body = call(c, "GET", "/pub?id=same", headers={"Accept": "text/plain"})
    assert r.status == 200 and r.getheader("Content-Type") == "text/plain"
    assert body == request(srv, "GET", "/pub?id=same",
                           headers={"Accept": "text/plain"}).body
    r, body = call(c, "GET", "/pub?id=nothere")
    assert (r.status, body) == (404, b"")
    # group info of two channels, as the location's
    call(c, "POST", "/pub?id=other", body=b"z")
    r, body = call(c, "GET", "/pub?id=same/other")
    doc = json.loads(body)
    assert [i["channel"] for i in doc["infos"]] == ["same", "other"]
    for method, path, body_, status, explain in [
            ("POST", "/pub?id=e", b"", 400, "Empty post requests are not allowed."),
            ("POST", "/pub", b"x", 400, "No channel id provided."),
            ("POST", "/pub?id=ALL", b"x", 403, "Channel id not authorized for this method."),
            ("POST", "/pub?id=a%0Ab", b"x", 400, "Channel id is invalid."),
            ("OPTIONS", "/pub?id=same", None, 200, None)]:
        r, body = call(c, method, path, body=body_)
        assert (r.status, body, r.getheader("X-Nginx-PushStream-Explain")) \
            == (status, b"", explain), (method, path)
        assert r.getheader("Content-Length") == "0"
    r, body = call(c, "HEAD", "/pub?id=same")
    assert r.status == 405 and r.getheader("Allow") == "GET, POST, PUT, DELETE"
    # Event-Id / Event-Type reach the message, as through the location
    call(c, "POST", "/pub?id=ev", body=b"hi", headers={"Event-Id": "e-1",
                                                        "Event-Type": "greet"})
    r = request(srv, "GET", "/poll/ev.b1")
    assert r.status == 200 and r.body == b"e-1:greet:hi|"
    # DELETE (admin): subscribers are told
    s = Stream(srv, "/sub/same")
    s.wait_headers()
    r, body = call(c, "DELETE", "/pub?id=same")
    assert r.status == 200
    assert r.getheader("X-Nginx-PushStream-Explain") == "Channel deleted."
    s.wait_for(b"Channel deleted|")
    s.close()
    c.close()
    assert "PS0070: channel id with control byte 0x0a refused" in srv.error_log()


def test_port_of_a_normal_publisher_refuses_delete(httpd):
    srv, port = start(httpd, publisher="normal", servers=1)
    c = conn(port)
    r, _ = call(c, "DELETE", "/pub?id=x")
    assert r.status == 405 and r.getheader("Allow") == "GET, POST, PUT"
    r, body = call(c, "POST", "/pub?id=x", body=b"still open")
    assert r.status == 200
    c.close()


def test_port_pipelining_http10_and_continue(httpd):
    srv, port = start(httpd, servers=1)
    host = "Host: x\r\n"
    req = (f"POST /pub?id=pl HTTP/1.1\r\n{host}Content-Length: 3\r\n\r\none"
           f"POST /pub?id=pl HTTP/1.1\r\n{host}Content-Length: 3\r\n\r\ntwo"
           f"GET /pub?id=pl HTTP/1.1\r\n{host}Connection: close\r\n\r\n").encode()
    rs = responses(raw(port, req))
    assert [r.status for r in rs] == [200, 200, 200]
    assert [json.loads(r.body)["published_messages"] for r in rs] == [1, 2, 2]
    assert rs[2].header("Connection") == "close"
    # a client that shuts its side after sending still gets its answers
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(f"POST /pub?id=pl HTTP/1.1\r\n{host}Content-Length: 5\r\n\r\nthree"
              f"GET /pub?id=pl HTTP/1.1\r\n{host}\r\nGET /pub?id=pl HT".encode())
    s.shutdown(socket.SHUT_WR)
    out = read_to_close(s)
    s.close()
    rs = responses(out)
    assert [r.status for r in rs] == [200, 200]
    assert json.loads(rs[1].body)["published_messages"] == 3
    # HTTP/1.0: closed after the answer unless keep-alive is asked for
    out = raw(port, b"GET /pub?id=pl HTTP/1.0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 OK\r\n") and b"Connection: close" in out
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /pub?id=pl HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    p = HttpParser()
    while not p.complete:
        p.feed(s.recv(65536))
    assert p.header("Connection") == "keep-alive"
    s.sendall(b"GET /pub?id=pl HTTP/1.0\r\n\r\n")
    assert b"HTTP/1.1 200 OK" in s.recv(65536)
    s.close()
    # Expect: 100-continue: the interim answer comes before the body is sent
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"POST /pub?id=pl HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
              b"Expect: 100-continue\r\n\r\n")
    assert s.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
    s.sendall(b"hello")
    assert s.recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")
    s.close()
    # curl sends Expect: 100-continue for bodies over 1 KiB
    big = "b" * 5000
    out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                          "--data-binary", big, f"http://127.0.0.1:{port}/pub?id=big"],
                         capture_output=True, text=True, timeout=30)
    assert out.stdout == "200", out
    r = request(srv, "GET", "/poll/big.b1")
    assert r.body == b"::" + big.encode() + b"|"


def test_port_bad_requests_get_a_status_and_a_close(httpd):
    srv, port = start(httpd, servers=1, server="PushStreamMaxMessageSize 1k")
    cases = [
        (b"garbage\r\n\r\n", 400, None),
        (b"GET /pub?id=a HTTP/2.0\r\nHost: x\r\n\r\n", 505, None),
        (b"GET /pub?id=a HTTP/1.1\r\n\r\n", 400, None),                 # no Host
        (b"GET http://x/pub?id=a HTTP/1.1\r\nHost: x\r\n\r\n", 400, None),
        (b"GET /pub?id=a HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400, None),
        (b"POST /pub?id=a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
         b"Content-Length: 2\r\n\r\nab", 400, None),
        (b"POST /pub?id=a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"1\r\na\r\n0\r\n\r\n", 411, "Chunked bodies are not supported: send a Content-Length."),
        (b"POST /pub?id=a HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n"
         b"Content-Length: 1\r\n\r\na", 417, None),
        (b"POST /pub?id=a HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n"
         + b"z" * 2000, 413, "Message is too large."),
        (b"GET /pub?id=a HTTP/1.1\r\nHost: x\r\nX-Big: " + b"y" * 20000 + b"\r\n\r\n",
         431, None),
    ]
    for data, status, explain in cases:
        rs = responses(raw(port, data))
        assert len(rs) == 1, data[:60]
        r = rs[0]
        assert r.status == status, (data[:60], r)
        assert r.header("Connection") == "close"
        assert r.header("X-Nginx-PushStream-Explain") == explain
    # nothing of those was published
    r = request(srv, "GET", "/pub?id=a")
    assert r.status == 404
    c = conn(port)
    r, _ = call(c, "POST", "/pub?id=a", body=b"fine")
    assert r.status == 200
    c.close()


def test_port_idle_and_stalled_connections_time_out(httpd):
    # KeepAliveTimeout / Timeout of the location's server apply on the port
    srv, port = start(httpd, servers=1, server="KeepAliveTimeout 1\nTimeout 2")
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /pub?id=t HTTP/1.1\r\nHost: x\r\n\r\n")
    assert s.recv(65536).startswith(b"HTTP/1.1 404")
    t0 = time.time()
    assert s.recv(65536) == b""          # closed once idle for KeepAliveTimeout
    assert 0.5 < time.time() - t0 < 4
    s.close()
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"POST /pub?id=t HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
    t0 = time.time()
    out = read_to_close(s)
    assert out.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), out
    assert 1.5 < time.time() - t0 < 5
    s.close()
    assert request(srv, "GET", "/pub?id=t").status == 404


def test_port_survives_graceful_restart_and_keeps_messages(httpd):
    srv, port = start(httpd)
    c = conn(port)
    for i in range(3):
        assert call(c, "POST", "/pub?id=gr", body=b"m")[0].status == 200
    c.close()
    srv.graceful()
    wait_for(lambda: pshttpd.tcp_connects(port), what="port after graceful")
    c = conn(port)
    r, body = call(c, "POST", "/pub?id=gr", body=b"m")
    assert r.status == 200 and json.loads(body)["published_messages"] == 4
    c.close()
    assert "PS0092" not in srv.error_log()


def test_port_configuration_errors_name_directive_and_line(configtest, httpd):
    port = pshttpd.free_port()
    rc, out = configtest(conf(sub=f"PushStreamPublisherListen 127.0.0.1:{port}"))
    assert rc != 0
    assert "PS0090: PushStreamPublisherListen is only allowed in a location with " \
           "PushStreamPublisher (at " in out and "httpd.conf:" in out, out
    rc, out = configtest(conf(pub="PushStreamPublisherListen nope:port"))
    assert rc != 0 and "PushStreamPublisherListen: \"nope:port\" is not [host:]port" \
        in out, out
    rc, out = configtest(conf(
        pub=f"PushStreamPublisherListen 127.0.0.1:{port}",
        extra=f"<Location /pub2>\n PushStreamPublisher\n PushStreamChannelsPath x\n"
              f" PushStreamPublisherListen {port}\n</Location>\n"))
    assert rc != 0 and "PS0091: PushStreamPublisherListen" in out \
        and "the address is already used at" in out, out
    rc, out = configtest(conf(pub=f"PushStreamPublisherListen 127.0.0.1:{port}"))
    assert rc == 0, out
    # an address httpd cannot bind: the start fails, naming the directive
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen(1)
        try:
            httpd(port_conf(port), servers=1)
            started = True
        except Exception:  # noqa: BLE001 - the start is meant to fail
            started = False
    assert not started


def test_port_many_clients_abrupt_closes_and_exact_counts(httpd):
    """Clients that vanish mid-request (reset or FIN) cost nothing; 8
    keep-alive publishers in parallel lose no publish."""
    import struct
    import threading
    srv, port = start(httpd)
    req = b"POST /pub?id=cnt HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd"
    socks = []
    for i in range(300):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(req[:i % len(req)])
        socks.append(s)
    for i, s in enumerate(socks):
        if i % 2:   # reset
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    errors = []

    def worker(n):
        try:
            c = conn(port)
            for _ in range(n):
                r, _b = call(c, "POST", "/pub?id=cnt", body=b"m")
                if r.status != 200:
                    errors.append(r.status)
            c.close()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))
    threads = [threading.Thread(target=worker, args=(250,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:5]
    r = request(srv, "GET", "/pub?id=cnt")
    assert json.loads(r.body)["published_messages"] == 2000


@pytest.mark.parametrize("mpm", ["worker", "prefork"])
def test_port_works_with_the_other_mpms(httpd, mpm):
    """The loop that serves the port runs in every MPM's children."""
    srv, port = start(httpd, mpm=mpm)
    s = Stream(srv, "/sub/mp")
    s.wait_headers()
    c = conn(port)
    for i in range(5):
        r, body = call(c, "POST", "/pub?id=mp", body=f"w{i}".encode())
        assert r.status == 200, body
    c.close()
    s.wait_for(b"w0|w1|w2|w3|w4|")
    s.close()
