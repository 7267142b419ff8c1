"""The one client library of the integration tests and the benchmark (stdlib only).
Every raw-socket client takes tls=True to talk https to the server's ssl_port (the
harness's self-signed certificate is verified, by IP address).

    r = request(srv, "GET", "/pub?id=ch")         # http.client, fresh connection: Response
    r = http(srv, "GET", "/poll/ch.b1", tls=True)  # raw bytes as given, our parser: Response
    c = HttpConn(srv); r = c.request("GET", p)     # keep-alive: several requests
    publish(srv, "ch", b"hello")                   # POST /pub?id=ch, asserts 200
    info(srv, "ch")                                # channel info dict, None on 404
    wait_subscribers(srv, "ch", 3)                 # polls GET /pub?id=ch
    wait_for(fn, timeout, what=...)                # until fn() is truthy, else AssertionError

    s = Stream(srv, "/lp/ch")                      # raw socket, body read on demand
    s = Subscriber(srv, "/ev/ch")                  # the same, response headers read at once
    s.wait_for(b"hello")                           # decoded (de-chunked) body contains it
    s.wait_closed()                                # server ended the connection
    events, comments = parse_sse(body)             # EventSource body
    HttpParser                                     # the one response parser (incremental)

    Swarm / run_cycles                             # thousands of non-blocking subscribers
    Curl([...])                                    # curl in the background
    app = LocalHttpServer(Handler)                 # a stand-in back end: app.port, app.stop()

WebSocket clients (Ws, WsSwarm, frames) are in pyhttpd.ws, on top of this module.
"""
import errno
import os
import http.client as http_client
import http.server as http_server
import json
import selectors
import socket
import ssl
import subprocess
import threading
import time

EXPIRES = "Thu, 01 Jan 1970 00:00:01 GMT"
CACHE_CONTROL = "no-cache, no-store, must-revalidate"


# ---------------------------------------------------------------- connections
def cert_path(srv):
    return os.path.join(srv.workdir, "conf", "server.crt")


def ssl_context(srv):
    ctx = ssl.create_default_context(cafile=cert_path(srv))
    ctx.check_hostname = True
    return ctx


def port_of(srv, tls):
    return srv.ssl_port if tls else srv.port


def connect(srv, tls=False, timeout=10):
    """A raw socket (plain or TLS). Over TLS a TCP close without close_notify is
    told apart from a close_notify: Python's default context takes one for the
    other (OP_IGNORE_UNEXPECTED_EOF); Reader still reads either as the end unless
    strict() was called (see cut_without_close_notify)."""
    s = socket.create_connection(("127.0.0.1", port_of(srv, tls)), timeout=timeout)
    if tls:
        ctx = ssl_context(srv)
        ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
        s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
    return s


def cut_without_close_notify(e):
    """Whether an ssl error is the peer's TCP close without a TLS close_notify."""
    return isinstance(e, ssl.SSLEOFError) or \
        getattr(e, "reason", None) == "UNEXPECTED_EOF_WHILE_READING"


def is_strict(sock):
    return isinstance(sock, ssl.SSLSocket) and not sock.suppress_ragged_eofs


class Reader:
    """Buffered reads from a socket with deadlines."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.eof = False

    def fill(self, deadline):
        """Reads once (waits until deadline). False on timeout; sets eof."""
        if self.eof:
            return False
        left = deadline - time.time()
        if left <= 0:
            return False
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, ssl.SSLWantReadError):
            return False
        except (ConnectionResetError, ssl.SSLZeroReturnError, BrokenPipeError):
            data = b""
        except ssl.SSLError as e:
            if not cut_without_close_notify(e):
                raise
            if is_strict(self.sock):
                raise AssertionError(f"TCP closed without a TLS close_notify: {e}; "
                                     f"have {self.buf[:300]!r}") from e
            data = b""
        if data:
            self.buf += data
        else:
            self.eof = True
        return True

    def fill_until(self, ready, deadline, what):
        """Reads until ready() (AssertionError on EOF or timeout first)."""
        while not ready():
            if self.eof:
                raise AssertionError(f"connection closed while waiting for {what}; "
                                     f"have {self.buf[:300]!r}")
            if not self.fill(deadline):
                raise AssertionError(f"timed out waiting for {what}; have {self.buf[:300]!r}")

    def need(self, n, deadline, what="data"):
        self.fill_until(lambda: len(self.buf) >= n, deadline, what)

    def take(self, n, deadline, what="data"):
        self.need(n, deadline, what)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _upto(self, sep, deadline, what):
        self.fill_until(lambda: sep in self.buf, deadline, what)
        i = self.buf.index(sep)
        out, self.buf = self.buf[:i], self.buf[i + len(sep):]
        return out

    def line(self, deadline, what="a line"):
        return self._upto(b"\r\n", deadline, what)

    def head(self, deadline):
        return self._upto(b"\r\n\r\n", deadline, "the response headers").decode("latin-1")

    def until_eof(self, deadline):
        while not self.eof:
            if not self.fill(deadline):
                raise AssertionError(f"connection still open; have {self.buf[:300]!r}")
        out, self.buf = self.buf, b""
        return out


def strict(client):
    """TLS: a missing close_notify (a cut TCP connection) must raise from now on."""
    if isinstance(client.sock, ssl.SSLSocket):
        client.sock.suppress_ragged_eofs = False
    return client


def assert_close_notify(client, timeout=10):
    """A raw TLS client (Stream, Ws: made by connect()) reads to the end: the
    server must send a TLS close_notify before it closes the TCP connection."""
    sock = client.sock
    assert isinstance(sock, ssl.SSLSocket), "not a TLS connection"
    assert not client.rd.eof, "the end was read already (without strict()?)"
    sock.suppress_ragged_eofs = False
    deadline = time.time() + timeout
    while True:
        sock.settimeout(max(0.1, deadline - time.time()))
        try:
            data = sock.recv(65536)
        except (socket.timeout, ssl.SSLWantReadError):
            if time.time() > deadline:
                raise AssertionError("connection still open")
            continue
        except ssl.SSLError as e:
            if not cut_without_close_notify(e):
                raise
            raise AssertionError(f"TCP closed without a TLS close_notify: {e}") from e
        if not data:
            return


# ---------------------------------------------------------------- plain requests
def header_of(headers, name):
    """First value of a header in [(name, value)] (case-insensitive), None if absent."""
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


class Response:
    def __init__(self, status, reason, headers, body, version=11, status_line=None):
        self.status = status
        self.reason = reason
        self.headers = headers      # [(name, value)] in order
        self.body = body
        self.version = version      # 11 (http.client) or "HTTP/1.1" (raw)
        self.status_line = status_line or f"HTTP/1.1 {status} {reason}"
        self.elapsed = None

    def header(self, name):
        """First value of a header (case-insensitive), None if absent."""
        return header_of(self.headers, name)

    def names(self):
        return [k for k, _ in self.headers]

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def __repr__(self):
        hdrs = "".join(f"\n  {k}: {v}" for k, v in self.headers)
        return f"<Response {self.status} {self.reason}{hdrs}\n  body={self.body[:300]!r}>"


def _from_httpclient(r, body):
    return Response(r.status, r.reason, list(r.getheaders()), body, r.version)


def request(srv, method, path, body=None, headers=None, timeout=10):
    """One request on a fresh connection."""
    c = http_client.HTTPConnection("127.0.0.1", srv.port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return _from_httpclient(r, r.read())
    finally:
        c.close()


def request_on(conn, method, path, body=None, headers=None):
    """One request on an existing http.client connection (keep-alive tests)."""
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    return _from_httpclient(r, r.read())


def publish(srv, channels, body, headers=None, tls=False, expect=200, method="POST",
            path="/pub"):
    """POST (method) body to path?id=channels; asserts the status when expect is set."""
    if isinstance(body, str):
        body = body.encode()
    if tls:
        r = http(srv, method, f"{path}?id={channels}", headers, body, tls=True)
    else:
        r = request(srv, method, f"{path}?id={channels}", body=body, headers=headers)
    if expect is not None:
        assert r.status == expect, f"publish to {channels}: {r!r}"
    return r


def info(srv, channel, path="/pub"):
    """Channel info (JSON) from the publisher, None when the channel does not exist."""
    r = request(srv, "GET", f"{path}?id={channel}", headers={"Accept": "application/json"})
    if r.status == 404:
        return None
    assert r.status == 200, r
    return json.loads(r.body)


def subscribers(srv, channel):
    i = info(srv, channel)
    return 0 if i is None else i["subscribers"]


def wait_for(fn, timeout=10, interval=0.05, what="condition", step=None):
    """Calls fn() until it returns a truthy value; returns it.  A failing call
    (OSError, HTTP error, AssertionError) counts as not yet.  AssertionError on
    timeout."""
    interval = step or interval
    deadline = time.time() + timeout
    last = None
    while True:
        try:
            last = fn()
        except (OSError, http_client.HTTPException, AssertionError) as e:
            last = e
        else:
            if last:
                return last
        if time.time() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


def kill_children_during(srv, threads, stop, seconds, every, join=10):
    """SIGKILL srv's children in turn every `every` s for `seconds` s while
    `threads` run; then set `stop` and join them.  Returns the kill count."""
    import signal
    for t in threads:
        t.start()
    kills = 0
    try:
        deadline = time.time() + seconds
        while time.time() < deadline:
            time.sleep(every)
            pids = srv.child_pids()
            if pids:
                os.kill(pids[kills % len(pids)], signal.SIGKILL)
                kills += 1
    finally:
        stop.set()
        for t in threads:
            t.join(join)
    return kills


def wait_subscribers(srv, channel, n, timeout=10):
    got = []

    def check():
        got.append(subscribers(srv, channel))
        return got[-1] == n
    try:
        wait_for(check, timeout, what=f"{n} subscribers on {channel}")
    except AssertionError:
        raise AssertionError(f"channel {channel}: wanted {n} subscribers, "
                             f"last count {got[-1] if got else None}") from None


def http_date(t):
    """RFC 1123 date of epoch seconds t."""
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(t))


def parse_head(text):
    """A response head (status line + header lines, no final CRLF) -> Response (no body)."""
    lines = text.split("\r\n")
    parts = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.append((k.strip(), v.strip()))
    return Response(int(parts[1]), parts[2] if len(parts) > 2 else "", headers, b"",
                    parts[0], lines[0])


def build_request(method, path, headers=None, body=b"", host="127.0.0.1"):
    """The bytes of a request, headers as given (plus Host, Content-Length)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def read_response(rd, method="GET", timeout=10):
    """Reads one whole response from a Reader (chunked / Content-Length / until
    close) with HttpParser; bytes after it stay in rd.buf."""
    deadline = time.time() + timeout
    p = HttpParser(method, keep_rest=True)
    while True:
        p.feed(rd.buf)
        rd.buf = b""
        assert p.error is None, p.error
        if p.complete:
            break
        if rd.eof:
            if not p.head_done:
                raise AssertionError("connection closed before the response headers; "
                                     f"have {p.buf[:300]!r}")
            p.feed_eof()
            if not p.complete:
                raise AssertionError(f"connection closed in the body; have {bytes(p.body[:300])!r}")
            break
        if not rd.fill(deadline):
            raise AssertionError("timed out waiting for the response "
                                 f"{'body' if p.head_done else 'headers'}; "
                                 f"have {(bytes(p.body) or p.buf)[:300]!r}")
    rd.buf, p.buf = p.buf, b""
    return p.response()


class SockClient:
    """Base of the raw-socket clients (HttpConn, Stream, ws.Ws): the connection
    (plain or TLS) and its Reader; close() and `with`."""

    def __init__(self, srv, tls=False, timeout=10):
        self.sock = connect(srv, tls, timeout)
        self.rd = Reader(self.sock)
        self.timeout = timeout

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


class HttpConn(SockClient):
    """One (keep-alive) connection, plain or TLS; requests as raw bytes."""

    def request(self, method, path, headers=None, body=b""):
        t0 = time.time()
        self.sock.sendall(build_request(method, path, headers, body))
        r = read_response(self.rd, method, self.timeout)
        r.elapsed = time.time() - t0
        return r

    def closed_by_server(self, timeout=2):
        """True when the server closes the connection within timeout (nothing else arrives)."""
        deadline = time.time() + timeout
        while not self.rd.eof:
            if not self.rd.fill(deadline):
                return False
        assert self.rd.buf == b"", self.rd.buf
        return True


def http(srv, method, path, headers=None, body=b"", tls=False, timeout=10):
    """One request as raw bytes on a fresh connection (plain or TLS): Response."""
    with HttpConn(srv, tls, timeout) as c:
        return c.request(method, path, headers, body)


def assert_no_cache(r):
    assert r.header("Expires") == EXPIRES, r
    assert r.header("Cache-Control") == CACHE_CONTROL, r


def assert_header_only(r, status, explain=None):
    """A header-only error: status, Content-Length: 0, no body, exact explain (or none)."""
    assert r.status == status, r
    assert r.header("Content-Length") == "0", r
    assert r.body == b"", r
    assert r.header("X-Nginx-PushStream-Explain") == explain, r
    assert_no_cache(r)


# ---------------------------------------------------------------- response parser
class HttpParser:
    """Incremental HTTP/1.1 response parser: headers, then a chunked,
    Content-Length or close-delimited body. `chunks` holds each chunk's payload."""

    def __init__(self, method="GET", keep_rest=False):
        self.method = method
        self.keep_rest = keep_rest  # bytes after the response stay in buf (keep-alive)
        self.buf = b""
        self.resp = None           # Response of the head, once read
        self.t_head = None
        self.status = None
        self.reason = None
        self.headers = []
        self.head_done = False
        self.body = bytearray()
        self.chunks = []
        self.complete = False      # the body's framing ended (terminal chunk / length reached)
        self.eof = False           # the peer closed the connection
        self.chunked = False
        self.remaining = None      # Content-Length left
        self._chunk_left = None    # bytes left in the current chunk (None: expecting a size line)
        self._trailer = False
        self.error = None

    def header(self, name):
        return header_of(self.headers, name)

    def response(self):
        r = Response(self.status, self.reason, self.headers, bytes(self.body),
                     self.resp.version, self.resp.status_line)
        return r

    def feed(self, data):
        self.buf += data
        if not self.head_done:
            i = self.buf.find(b"\r\n\r\n")
            if i < 0:
                return
            head, self.buf = self.buf[:i].decode("latin-1"), self.buf[i + 4:]
            self.resp = parse_head(head)
            self.status, self.reason = self.resp.status, self.resp.reason
            self.headers = self.resp.headers
            self.head_done = True
            self.t_head = time.time()
            te = (self.header("Transfer-Encoding") or "").lower()
            if "chunked" in te:
                self.chunked = True
            elif self.header("Content-Length") is not None:
                self.remaining = int(self.header("Content-Length"))
                if self.remaining == 0:
                    self.complete = True
            if self.method == "HEAD" or self.status in (204, 304) or 100 <= self.status < 200:
                self.chunked, self.remaining, self.complete = False, None, True
        self._body()

    def _body(self):
        if self.complete:
            if self.buf and not self.keep_rest:
                self.error = f"bytes after the end of the response: {self.buf[:100]!r}"
            return
        if self.chunked:
            self._dechunk()
        elif self.remaining is not None:
            take = self.buf[:self.remaining]
            self.buf = self.buf[len(take):]
            self.body += take
            if take:
                self.chunks.append(take)
            self.remaining -= len(take)
            if self.remaining == 0:
                self.complete = True
        else:
            if self.buf:
                self.body += self.buf
                self.chunks.append(self.buf)
                self.buf = b""

    def _dechunk(self):
        while not self.complete:
            if self._trailer:
                i = self.buf.find(b"\r\n")
                if i < 0:
                    return
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                if line == b"":
                    self.complete = True
                continue
            if self._chunk_left is None:
                i = self.buf.find(b"\r\n")
                if i < 0:
                    return
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    self._trailer = True
                    continue
                self._chunk_left = size
                self._cur = bytearray()
            take = self.buf[:self._chunk_left]
            if take:
                self._cur += take
                self.buf = self.buf[len(take):]
                self._chunk_left -= len(take)
            if self._chunk_left:
                return
            if len(self.buf) < 2:
                return
            if self.buf[:2] != b"\r\n":
                self.error = f"chunk not followed by CRLF: {self.buf[:50]!r}"
            self.buf = self.buf[2:]
            self.chunks.append(bytes(self._cur))
            self.body += self._cur
            self._chunk_left = None

    def feed_eof(self):
        self.eof = True
        if self.head_done and not self.chunked and self.remaining is None:
            self.complete = True


# ---------------------------------------------------------------- one raw-socket subscriber
class Stream(SockClient):
    """A subscriber on a raw socket (plain or TLS): sends the request, then reads
    the response (headers, then the de-chunked body) incrementally, on demand.
    read_headers=True waits for the response headers at once (a long-poll gets
    them only with its answer: leave it False there); Subscriber does so by default."""

    def __init__(self, srv, path, headers=None, tls=False, timeout=10, read_headers=False):
        super().__init__(srv, tls, timeout)
        self.srv = srv
        self.path = path
        self.p = HttpParser()
        self.t0 = time.time()
        self.sock.sendall(build_request("GET", path, headers))
        if read_headers:
            self.wait_headers(timeout)

    # -- state
    @property
    def status(self):
        return self.p.status

    def header(self, name):
        return self.p.header(name)

    @property
    def resp(self):
        """The response head (Response), None before it arrived."""
        return self.p.resp

    @property
    def t_head(self):
        return self.p.t_head

    @property
    def body(self):
        return bytes(self.p.body)

    @property
    def chunks(self):
        return self.p.chunks

    @property
    def complete(self):
        return self.p.complete

    ended = complete

    @property
    def eof(self):
        return self.p.eof

    # -- reading
    def _read_once(self, deadline):
        got = self.rd.fill(deadline)
        if self.rd.buf:
            self.p.feed(self.rd.buf)
            self.rd.buf = b""
        if self.rd.eof and not self.p.eof:
            self.p.feed_eof()
        assert self.p.error is None, self.p.error
        return got

    def wait(self, pred, timeout=10, what="condition"):
        """Reads until pred(self) is true; returns the body. AssertionError (with
        what was read) on timeout or when the connection closes first."""
        deadline = time.time() + timeout
        while not pred(self):
            if self.p.eof:
                raise AssertionError(f"{self.path}: connection closed before {what}; "
                                     f"status {self.p.status}, body {self.body[-500:]!r}")
            if not self._read_once(deadline):
                raise AssertionError(f"{self.path}: timed out after {timeout}s waiting for "
                                     f"{what}; status {self.p.status}, body "
                                     f"{self.body[-500:]!r}")
        return self.body

    def wait_headers(self, timeout=10):
        return self.wait(lambda s: s.p.head_done, timeout, "the response headers")

    def wait_for(self, data, timeout=10):
        """Until the decoded body contains `data`; returns the body."""
        return self.wait(lambda s: data in s.p.body, timeout, f"{data!r}")

    def wait_len(self, n, timeout=10):
        return self.wait(lambda s: len(s.p.body) >= n, timeout, f"{n} body bytes")

    def _read_until(self, pred, timeout, what):
        """Reads until pred() (EOF included); AssertionError `what` on timeout."""
        deadline = time.time() + timeout
        while not pred():
            if not self._read_once(deadline):
                raise AssertionError(f"{self.path}: {what} after {timeout}s; "
                                     f"complete={self.p.complete} body {self.body[-500:]!r}")
        return self.body

    def wait_complete(self, timeout=10):
        """Until the response's framing ended (terminal chunk) or the connection closed."""
        return self._read_until(lambda: self.p.complete or self.p.eof, timeout,
                                "response not ended")

    wait_end = wait_complete

    def wait_closed(self, timeout=10):
        """Until the server closed the connection (EOF). Returns the body."""
        return self._read_until(lambda: self.p.eof, timeout, "connection still open")

    wait_eof = wait_closed

    def idle(self, seconds):
        """Reads whatever arrives during `seconds` (nothing is required to arrive)."""
        deadline = time.time() + seconds
        while time.time() < deadline and not self.p.eof:
            self._read_once(deadline)
        return self.body


class Subscriber(Stream):
    """A Stream that reads the response headers at once (streaming, EventSource:
    the module sends them as the subscription starts)."""

    def __init__(self, srv, path, headers=None, tls=False, timeout=10, read_headers=True):
        super().__init__(srv, path, headers, tls, timeout, read_headers)


def long_poll(srv, path, headers=None, timeout=30):
    """A long-poll (or poll) on a fresh connection; Response with .elapsed."""
    t0 = time.time()
    r = request(srv, "GET", path, headers=headers, timeout=timeout)
    r.elapsed = time.time() - t0
    return r


# ---------------------------------------------------------------- many subscribers
def connect_nonblocking(port):
    """A non-blocking socket connecting to 127.0.0.1:port (OSError when refused at once)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    rc = s.connect_ex(("127.0.0.1", port))
    if rc not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
        s.close()
        raise OSError(rc, f"connect: {errno.errorcode.get(rc, rc)}")
    return s


def recv_some(sock):
    """One recv on a non-blocking socket: the bytes, b"" at EOF (or reset), None
    when nothing is there yet."""
    try:
        return sock.recv(65536)
    except BlockingIOError:
        return None
    except ConnectionResetError:
        return b""


def gather(socks, marker, timeout=60):
    """Reads sockets (made non-blocking) until each has sent `marker` or closed,
    at most timeout s: the set of those that sent it."""
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, bytearray())
    got = set()
    deadline = time.time() + timeout
    while sel.get_map() and time.time() < deadline:
        for key, _ in sel.select(timeout=1):
            data = recv_some(key.fileobj)
            if data is None:
                continue
            key.data.extend(data)
            if marker in key.data:
                got.add(key.fileobj)
            elif data:
                continue
            sel.unregister(key.fileobj)
    sel.close()
    return got


class SwarmConn:
    __slots__ = ("sock", "path", "out", "p", "kind", "connected", "closed", "t_close",
                 "frames")

    def __init__(self, sock, path, kind, out=None, keep_rest=False):
        self.sock = sock
        self.path = path
        self.out = build_request("GET", path) if out is None else out
        self.p = HttpParser(keep_rest=keep_rest)
        self.kind = kind
        self.connected = False
        self.closed = False
        self.t_close = None
        self.frames = []            # ws.WsSwarm: (first byte, payload) of each frame

    @property
    def status(self):
        return self.p.status


class Swarm:
    """Thousands of subscribers on non-blocking sockets, driven by one selector:
    each sends its request, then feeds what it reads to its HttpParser
    (ws.WsSwarm: its WebSocket frames after the 101, too)."""
    what = "swarm"

    def __init__(self, port):
        self.port = port
        self.sel = selectors.DefaultSelector()
        self.conns = []

    def _conn(self, sock, path, kind):
        return SwarmConn(sock, path, kind)

    def open(self, path, kind="stream"):
        c = self._conn(connect_nonblocking(self.port), path, kind)
        self.conns.append(c)
        self.sel.register(c.sock, selectors.EVENT_WRITE, c)
        return c

    def _close(self, c):
        if not c.closed:
            c.closed = True
            c.t_close = time.time()
            try:
                self.sel.unregister(c.sock)
            except (KeyError, ValueError):
                pass
            c.sock.close()

    def _error(self, c, msg):
        c.p.error = msg
        self._close(c)

    def _data(self, c, data):
        c.p.feed(data)

    def pump(self, timeout=0.1):
        for key, ev in self.sel.select(timeout):
            c = key.data
            if ev & selectors.EVENT_WRITE:
                if not c.connected:
                    err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        self._error(c, f"connect failed: {errno.errorcode.get(err, err)}")
                        continue
                    c.connected = True
                try:
                    n = c.sock.send(c.out)
                except BlockingIOError:
                    continue
                except OSError as e:
                    self._error(c, f"send: {e}")
                    continue
                c.out = c.out[n:]
                if not c.out:
                    self.sel.modify(c.sock, selectors.EVENT_READ, c)
                continue
            data = recv_some(c.sock)
            if data:
                self._data(c, data)
            elif data is not None:
                c.p.feed_eof()
                self._close(c)

    def run_until(self, pred, timeout, what="condition"):
        deadline = time.time() + timeout
        while not pred():
            if time.time() >= deadline:
                raise AssertionError(f"{self.what}: timed out after {timeout}s waiting for "
                                     f"{what}: {self.summary()}")
            self.pump(min(0.1, max(0.0, deadline - time.time())))

    def summary(self):
        from collections import Counter
        c = Counter()
        for x in self.conns:
            c[(x.kind, x.p.status, "closed" if x.closed else "open",
               "complete" if x.p.complete else "-")] += 1
        errs = [x.p.error for x in self.conns if x.p.error][:3]
        return f"{dict(c)} errors={errs}"

    def close_all(self):
        for c in self.conns:
            self._close(c)
        self.sel.close()


def run_cycles(port, n, concurrency, path_fn, timeout=120, lp_every=0, lp_path_fn=None):
    """n subscribe/disconnect cycles, `concurrency` at a time: each connection sends
    GET path_fn(i), waits for the first body byte (the location needs a header
    template) and closes. With lp_every=k, every k-th connection is a long-poll on
    lp_path_fn(i) instead, closed as soon as a later streaming cycle completes.
    Returns {"done": n, "bad": [(path, status, error)]}."""
    sel = selectors.DefaultSelector()
    started = done = 0
    bad = []
    active = {}
    lps = []
    deadline = time.time() + timeout

    def start():
        nonlocal started
        i = started
        started += 1
        lp = bool(lp_every) and i % lp_every == lp_every - 1
        path = lp_path_fn(i) if lp else path_fn(i)
        s = connect_nonblocking(port)
        c = SwarmConn(s, path, "lp" if lp else "stream")
        active[s.fileno()] = c
        sel.register(s, selectors.EVENT_WRITE, c)

    def finish(c):
        nonlocal done
        sel.unregister(c.sock)
        del active[c.sock.fileno()]
        if c.kind == "lp" and not c.p.eof and c.p.error is None and not c.p.head_done:
            lps.append(c)           # closed later, while it waits
            done += 1
            return
        c.sock.close()
        done += 1

    while done < n:
        while started < n and len(active) < concurrency:
            start()
        if time.time() > deadline:
            raise AssertionError(f"cycles: only {done}/{n} done after {timeout}s")
        for key, ev in sel.select(0.5):
            c = key.data
            if ev & selectors.EVENT_WRITE:
                err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    bad.append((c.path, None, errno.errorcode.get(err, err)))
                    finish(c)
                    continue
                try:
                    k = c.sock.send(c.out)
                except OSError as e:
                    bad.append((c.path, None, str(e)))
                    finish(c)
                    continue
                c.out = c.out[k:]
                if not c.out:
                    if c.kind == "lp":
                        finish(c)     # sent: it now waits on the server
                    else:
                        sel.modify(c.sock, selectors.EVENT_READ, c)
                continue
            data = recv_some(c.sock)
            if data is None:
                continue
            if data:
                c.p.feed(data)
            else:
                c.p.feed_eof()
            if c.p.body or c.p.eof or c.p.error:
                if c.p.status != 200 or not c.p.body:
                    bad.append((c.path, c.p.status, c.p.error or bytes(c.p.body[:100])))
                finish(c)
                # keep at most concurrency/10 long-polls waiting; drop the oldest
                while len(lps) > concurrency // 10:
                    lps.pop(0).sock.close()
    for c in lps:
        c.sock.close()
    sel.close()
    return {"done": done, "bad": bad}


# ---------------------------------------------------------------- stand-ins
class At:
    """A port of a server, for the request helpers (which use .port)."""

    def __init__(self, port, workdir=None, ssl_port=None):
        self.port, self.workdir, self.ssl_port = port, workdir, ssl_port


class LocalHttpServer:
    """An http.server with `handler` on 127.0.0.1 (a free port), served by a
    daemon thread: the application behind a ProxyPass, for instance."""

    def __init__(self, handler):
        self.server = http_server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------- server-side views
def _tcp_inode(local_port, remote_port):
    """Inode of the 127.0.0.1:local_port <-> 127.0.0.1:remote_port socket, or None."""
    want_l = f"0100007F:{local_port:04X}"
    want_r = f"0100007F:{remote_port:04X}"
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[1] == want_l and fields[2] == want_r and fields[9] != "0":
                return fields[9]
    return None


def child_of(srv, sock):
    """pid of the httpd child holding the server side of a client socket, or None."""
    inode = _tcp_inode(srv.port, sock.getsockname()[1])
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in srv.child_pids():
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return pid
            except OSError:
                pass
    return None


def socket_counts(srv):
    """{child pid: number of socket fds}."""
    out = {}
    for pid in srv.child_pids():
        n = 0
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                        n += 1
                except OSError:
                    pass
        except OSError:
            continue
        out[pid] = n
    return out


# ---------------------------------------------------------------- EventSource
def parse_sse(body):
    """EventSource body -> ([events], [comments]). Event: {"id", "event", "data": [lines]}.
    Every line must end in \\n (the module writes \\n only)."""
    text = body.decode("utf-8")
    assert "\r" not in text, body
    events, comments, cur = [], [], {}
    lines = text.split("\n")
    assert lines[-1] == "", f"body does not end with a newline: {body!r}"
    for line in lines[:-1]:
        if line == "":
            if cur:
                events.append(cur)
            cur = {}
        elif line.startswith(":"):
            comments.append(line)
        else:
            k, _, v = line.partition(": ")
            assert k in ("id", "event", "data"), line
            if k == "data":
                cur.setdefault("data", []).append(v)
            else:
                assert k not in cur, line
                cur[k] = v
    assert cur == {}, f"unterminated event {cur} in {body!r}"
    return events, comments


# ---------------------------------------------------------------- curl
class Curl:
    """curl in the background; its stdout collected by a thread."""

    def __init__(self, args):
        self.p = subprocess.Popen(["curl", "-sS", *args], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.out = b""
        self.lock = threading.Lock()
        self.t = threading.Thread(target=self._pump, daemon=True)
        self.t.start()

    def _pump(self):
        while True:
            data = self.p.stdout.read1(65536)
            if not data:
                return
            with self.lock:
                self.out += data

    def output(self):
        with self.lock:
            return self.out

    def wait_for(self, data, timeout=10):
        deadline = time.time() + timeout
        while data not in self.output():
            if time.time() > deadline:
                raise AssertionError(f"curl: timed out waiting for {data!r}; got "
                                     f"{self.output()!r}, stderr {self._stderr()!r}")
            if self.p.poll() is not None and not self.t.is_alive() and data not in self.output():
                raise AssertionError(f"curl exited {self.p.returncode} before {data!r}; got "
                                     f"{self.output()!r}, stderr {self._stderr()!r}")
            time.sleep(0.02)
        return self.output()

    def _stderr(self):
        if self.p.poll() is None:
            return "(running)"
        return self.p.stderr.read()

    def wait_exit(self, timeout=10):
        rc = self.p.wait(timeout)
        self.t.join(5)
        return rc

    def stop(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait(5)
        self.t.join(5)
        self.p.stdout.close()
        self.p.stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()


def h2_curl(srv, path, *args, tls=True):
    """curl over HTTP/2 in the background (a Curl): --http2 over TLS (ALPN h2),
    or h2c with prior knowledge; args go before the URL."""
    if tls:
        opts = ["--http2", "--cacert", cert_path(srv), srv.ssl_url(path)]
    else:
        opts = ["--http2-prior-knowledge", srv.url(path)]
    return Curl(["-N", *args, *opts])


def curl_tls_args(srv):
    return ["--cacert", cert_path(srv)]
