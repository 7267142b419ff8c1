"""Raw clients for the EventSource, WebSocket, polling/JSONP and TLS tests (stdlib only).
Every client takes tls=True to talk https/wss to the server's ssl_port (the harness's
self-signed certificate is verified, by IP address).

    r = http(srv, "GET", "/poll/ch.b1")              # one request, fresh connection
    c = HttpConn(srv); r = c.request("GET", p)       # keep-alive: several requests
    s = Stream(srv, "/ev/ch")                        # streaming body, de-chunked on demand
    s.wait_for(b"data: x\\n\\n")
    ws = Ws(srv, "/ws/ch")                           # hand-made RFC 6455 client
    ws.send_frame(OP_TEXT, b"hi"); f = ws.read_frame()
    events = parse_sse(body)                         # [{"id":…, "event":…, "data":[…]}]
    WsSwarm(port)                                    # thousands of idle ws subscribers
"""
import base64
import errno
import hashlib
import http.client
import json
import os
import selectors
import socket
import ssl
import struct
import subprocess
import threading
import time

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

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
    s = socket.create_connection(("127.0.0.1", port_of(srv, tls)), timeout=timeout)
    if tls:
        s = ssl_context(srv).wrap_socket(s, server_hostname="127.0.0.1")
    return s


def accept_of(key):
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


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
        except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError,
                BrokenPipeError):
            data = b""
        if data:
            self.buf += data
        else:
            self.eof = True
        return True

    def need(self, n, deadline, what="data"):
        while len(self.buf) < n:
            if self.eof:
                raise AssertionError(f"connection closed while waiting for {what}; "
                                     f"have {self.buf[:300]!r}")
            if not self.fill(deadline):
                raise AssertionError(f"timed out waiting for {what}; have {self.buf[:300]!r}")

    def take(self, n, deadline, what="data"):
        self.need(n, deadline, what)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def line(self, deadline, what="a line"):
        while b"\r\n" not in self.buf:
            if self.eof:
                raise AssertionError(f"connection closed while waiting for {what}; "
                                     f"have {self.buf[:300]!r}")
            if not self.fill(deadline):
                raise AssertionError(f"timed out waiting for {what}; have {self.buf[:300]!r}")
        i = self.buf.index(b"\r\n")
        out, self.buf = self.buf[:i], self.buf[i + 2:]
        return out

    def head(self, deadline):
        while b"\r\n\r\n" not in self.buf:
            if self.eof:
                raise AssertionError(f"connection closed before the response headers; "
                                     f"have {self.buf[:300]!r}")
            if not self.fill(deadline):
                raise AssertionError(f"timed out waiting for the response headers; "
                                     f"have {self.buf[:300]!r}")
        i = self.buf.index(b"\r\n\r\n")
        out, self.buf = self.buf[:i], self.buf[i + 4:]
        return out.decode("latin-1")

    def until_eof(self, deadline):
        while not self.eof:
            if not self.fill(deadline):
                raise AssertionError(f"connection still open; have {self.buf[:300]!r}")
        out, self.buf = self.buf, b""
        return out


# ---------------------------------------------------------------- HTTP
class Resp:
    def __init__(self, status_line, headers, body=b""):
        self.status_line = status_line
        parts = status_line.split(" ", 2)
        self.version = parts[0]
        self.status = int(parts[1])
        self.reason = parts[2] if len(parts) > 2 else ""
        self.headers = headers
        self.body = body
        self.elapsed = None

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def names(self):
        return [k for k, _ in self.headers]

    def __repr__(self):
        hdrs = "".join(f"\n  {k}: {v}" for k, v in self.headers)
        return f"<Resp {self.status_line}{hdrs}\n  body={self.body[:300]!r}>"


def parse_head(text):
    lines = text.split("\r\n")
    headers = []
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.append((k.strip(), v.strip()))
    return Resp(lines[0], headers)


def build_request(method, path, headers=None, body=b"", host="127.0.0.1"):
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _no_body(method, status):
    return method == "HEAD" or status in (204, 304) or 100 <= status < 200


def read_response(rd, method="GET", timeout=10):
    """Reads one whole response from a Reader (chunked / Content-Length / until close)."""
    deadline = time.time() + timeout
    r = parse_head(rd.head(deadline))
    te = (r.header("Transfer-Encoding") or "").lower()
    if _no_body(method, r.status):
        body = b""
    elif "chunked" in te:
        body = b""
        while True:
            size = int(rd.line(deadline, "a chunk size").split(b";")[0], 16)
            if size == 0:
                while rd.line(deadline, "the trailer") != b"":
                    pass
                break
            body += rd.take(size, deadline, "chunk data")
            assert rd.take(2, deadline, "chunk CRLF") == b"\r\n"
    elif r.header("Content-Length") is not None:
        body = rd.take(int(r.header("Content-Length")), deadline, "the body")
    else:
        body = rd.until_eof(deadline)
    r.body = body
    return r


class HttpConn:
    """One (keep-alive) connection, plain or TLS."""

    def __init__(self, srv, tls=False, timeout=10):
        self.sock = connect(srv, tls, timeout)
        self.rd = Reader(self.sock)
        self.timeout = timeout

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

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def http(srv, method, path, headers=None, body=b"", tls=False, timeout=10):
    with HttpConn(srv, tls, timeout) as c:
        return c.request(method, path, headers, body)


def publish(srv, channels, body, headers=None, tls=False, expect=200):
    if isinstance(body, str):
        body = body.encode()
    r = http(srv, "POST", f"/pub?id={channels}", headers, body, tls=tls)
    if expect is not None:
        assert r.status == expect, f"publish to {channels}: {r!r}"
    return r


def info(srv, channel):
    r = http(srv, "GET", f"/pub?id={channel}", {"Accept": "application/json"})
    if r.status == 404:
        return None
    assert r.status == 200, r
    return json.loads(r.body)


def subscribers(srv, channel):
    i = info(srv, channel)
    return 0 if i is None else i["subscribers"]


def wait_for(fn, timeout=10, interval=0.05, what="condition"):
    deadline = time.time() + timeout
    last = None
    while True:
        try:
            last = fn()
        except (OSError, AssertionError) as e:
            last = e
        else:
            if last:
                return last
        if time.time() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


def wait_subscribers(srv, channel, n, timeout=10):
    wait_for(lambda: subscribers(srv, channel) == n, timeout,
             what=f"{n} subscribers on {channel} (now {subscribers(srv, channel)})")


def assert_no_cache(r):
    assert r.header("Expires") == EXPIRES, r
    assert r.header("Cache-Control") == CACHE_CONTROL, r


# ---------------------------------------------------------------- streaming bodies
class Stream:
    """A streaming response (streaming / EventSource / waiting long-poll) on a raw socket:
    headers read at once, then the de-chunked body on demand."""

    def __init__(self, srv, path, headers=None, tls=False, timeout=10, read_headers=True):
        self.path = path
        self.sock = connect(srv, tls, timeout)
        self.rd = Reader(self.sock)
        self.resp = None
        self.body = b""
        self.chunks = []
        self.ended = False
        self._left = None          # bytes left in the current chunk
        self._trailer = False
        self._cur = b""
        self.t0 = time.time()
        self.sock.sendall(build_request("GET", path, headers))
        if read_headers:       # a long-poll gets its headers only with the answer
            self.wait_headers(timeout)

    def wait_headers(self, timeout=10):
        return self.wait(lambda s: s.resp is not None, timeout, "the response headers")

    @property
    def status(self):
        return self.resp.status if self.resp else None

    def header(self, name):
        return self.resp.header(name) if self.resp else None

    def _parse(self):
        rd = self.rd
        if self.resp is None:
            if b"\r\n\r\n" not in rd.buf:
                return
            i = rd.buf.index(b"\r\n\r\n")
            head, rd.buf = rd.buf[:i].decode("latin-1"), rd.buf[i + 4:]
            self.resp = parse_head(head)
            self.t_head = time.time()
            self.chunked = "chunked" in (self.resp.header("Transfer-Encoding") or "").lower()
            self.length = self.resp.header("Content-Length")
            self.length = int(self.length) if self.length is not None else None
            self.ended = _no_body("GET", self.resp.status) or self.length == 0
        while not self.ended:
            if not self.chunked:
                take = rd.buf if self.length is None else rd.buf[:self.length - len(self.body)]
                rd.buf = rd.buf[len(take):]
                if take:
                    self.body += take
                    self.chunks.append(take)
                if self.length is not None and len(self.body) >= self.length:
                    self.ended = True
                return
            if self._trailer:
                if b"\r\n" not in rd.buf:
                    return
                i = rd.buf.index(b"\r\n")
                line, rd.buf = rd.buf[:i], rd.buf[i + 2:]
                if line == b"":
                    self.ended = True
                continue
            if self._left is None:
                if b"\r\n" not in rd.buf:
                    return
                i = rd.buf.index(b"\r\n")
                line, rd.buf = rd.buf[:i], rd.buf[i + 2:]
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    self._trailer = True
                    continue
                self._left = size
                self._cur = b""
            take = rd.buf[:self._left]
            rd.buf = rd.buf[len(take):]
            self._cur += take
            self._left -= len(take)
            if self._left or len(rd.buf) < 2:
                return
            assert rd.buf[:2] == b"\r\n", f"chunk not followed by CRLF: {rd.buf[:50]!r}"
            rd.buf = rd.buf[2:]
            self.body += self._cur
            self.chunks.append(self._cur)
            self._left = None

    def _read(self, deadline):
        got = self.rd.fill(deadline)
        self._parse()
        return got

    def wait(self, pred, timeout=10, what="condition"):
        deadline = time.time() + timeout
        self._parse()
        while not pred(self):
            if self.rd.eof:
                raise AssertionError(f"{self.path}: closed before {what}; body {self.body!r}")
            if not self._read(deadline):
                raise AssertionError(f"{self.path}: timed out after {timeout}s waiting for "
                                     f"{what}; body {self.body[-600:]!r}")
        return self.body

    def wait_for(self, data, timeout=10):
        return self.wait(lambda s: data in s.body, timeout, repr(data))

    def wait_len(self, n, timeout=10):
        return self.wait(lambda s: len(s.body) >= n, timeout, f"{n} body bytes")

    def wait_end(self, timeout=10):
        """Until the body's framing ended (terminal chunk) or the connection closed."""
        deadline = time.time() + timeout
        self._parse()
        while not (self.ended or self.rd.eof):
            if not self._read(deadline):
                raise AssertionError(f"{self.path}: body not ended after {timeout}s; "
                                     f"body {self.body[-600:]!r}")
        return self.body

    def wait_eof(self, timeout=10):
        deadline = time.time() + timeout
        while not self.rd.eof:
            if not self._read(deadline):
                raise AssertionError(f"{self.path}: connection still open after {timeout}s; "
                                     f"body {self.body[-600:]!r}")
        return self.body

    def idle(self, seconds):
        deadline = time.time() + seconds
        while time.time() < deadline and not self.rd.eof:
            self._read(deadline)
        return self.body

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


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


# ---------------------------------------------------------------- WebSocket
def frame(opcode, payload=b"", fin=True, mask=True, rsv=0, key=None, length=None):
    """A client frame. length overrides the length field (payload sent as given)."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    m = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, m | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, m | 126, n)
    else:
        head = struct.pack("!BBQ", b0, m | 127, n)
    if not mask:
        return head + payload
    key = key if key is not None else os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + masked


def server_frame(opcode, payload=b""):
    """The exact bytes of an unmasked FIN frame (what the server must send)."""
    return frame(opcode, payload, mask=False)


def close_frame_bytes(code=None, reason=b""):
    """Unmasked close frame: no code -> \\x88\\x00."""
    if code is None:
        return b"\x88\x00"
    return server_frame(OP_CLOSE, struct.pack("!H", code) + reason)


class Frame:
    def __init__(self, fin, rsv, opcode, payload, raw):
        self.fin, self.rsv, self.opcode, self.payload, self.raw = fin, rsv, opcode, payload, raw

    @property
    def code(self):
        assert self.opcode == OP_CLOSE
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None

    def __repr__(self):
        return f"<Frame op={self.opcode:#x} fin={self.fin} {self.payload[:200]!r}>"


def handshake_request(path, key="dGhlIHNhbXBsZSBub25jZQ==", version="13", extra=None,
                      omit=()):
    hdrs = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": key,
            "Sec-WebSocket-Version": version}
    for h in omit:
        hdrs.pop(h, None)
    hdrs.update(extra or {})
    return build_request("GET", path, hdrs)


class Ws:
    """A hand-made WebSocket client. After __init__ the handshake answer is in .resp
    (any status); bytes after the 101 are frames, read with read_frame()."""

    def __init__(self, srv, path, tls=False, key="dGhlIHNhbXBsZSBub25jZQ==", version="13",
                 extra=None, omit=(), timeout=10, method="GET", expect101=True):
        self.path = path
        self.key = key
        self.sock = connect(srv, tls, timeout)
        self.rd = Reader(self.sock)
        req = handshake_request(path, key, version, extra, omit)
        if method != "GET":
            req = req.replace(b"GET ", method.encode() + b" ", 1)
        self.sock.sendall(req)
        self.resp = parse_head(self.rd.head(time.time() + timeout))
        if expect101:
            assert self.resp.status == 101, self.resp
            assert self.resp.header("Sec-WebSocket-Accept") == accept_of(key), self.resp

    def send(self, data):
        self.sock.sendall(data)

    def send_frame(self, opcode, payload=b"", **kw):
        self.sock.sendall(frame(opcode, payload, **kw))

    def send_text(self, text, **kw):
        self.send_frame(OP_TEXT, text, **kw)

    def read_frame(self, timeout=10):
        """The next server frame (asserts it is unmasked); AssertionError on timeout/EOF."""
        deadline = time.time() + timeout
        rd = self.rd
        h = rd.take(2, deadline, "a frame header")
        fin, rsv, op = h[0] >> 7, (h[0] >> 4) & 7, h[0] & 0xF
        assert not h[1] & 0x80, f"server frame is masked: {h!r}"
        n = h[1] & 0x7F
        ext = b""
        if n == 126:
            ext = rd.take(2, deadline, "a 16-bit length")
            n = struct.unpack("!H", ext)[0]
        elif n == 127:
            ext = rd.take(8, deadline, "a 64-bit length")
            n = struct.unpack("!Q", ext)[0]
        payload = rd.take(n, deadline, f"a {n}-byte payload")
        return Frame(fin, rsv, op, payload, h + ext + payload)

    def read_data_frame(self, timeout=10):
        """Next frame that is not a ping."""
        deadline = time.time() + timeout
        while True:
            f = self.read_frame(max(0.01, deadline - time.time()))
            if f.opcode != OP_PING:
                return f

    def read_text(self, timeout=10):
        f = self.read_data_frame(timeout)
        assert f.opcode == OP_TEXT and f.fin, f
        return f.payload

    def read_exact(self, n, timeout=10):
        return self.rd.take(n, time.time() + timeout, f"{n} bytes")

    def expect_bytes(self, data, timeout=10):
        got = self.rd.take(len(data), time.time() + timeout, repr(data))
        assert got == data, f"expected {data!r}, got {got!r}"

    def wait_eof(self, timeout=10):
        """The server closes the TCP connection; returns any bytes before that."""
        return self.rd.until_eof(time.time() + timeout)

    def expect_close(self, code=None, timeout=10, exact=None):
        """Reads a close frame (exact bytes if given), then EOF with nothing after it."""
        f = self.read_frame(timeout)
        assert f.opcode == OP_CLOSE, f
        if exact is not None:
            assert f.raw == exact, f"close frame {f.raw!r}, expected {exact!r}"
        if code is not None:
            assert f.code == code, f"close code {f.code}, expected {code}: {f.raw!r}"
        rest = self.wait_eof(timeout)
        assert rest == b"", f"bytes after the close frame: {rest!r}"
        return f

    def nothing_for(self, seconds):
        """Asserts no byte arrives and the connection stays open for `seconds`."""
        deadline = time.time() + seconds
        while time.time() < deadline:
            self.rd.fill(deadline)
            assert not self.rd.eof, "connection closed"
            assert self.rd.buf == b"", f"unexpected bytes {self.rd.buf!r}"

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


class WsSwarmConn:
    __slots__ = ("sock", "out", "buf", "head", "status", "closed", "connected", "frames")

    def __init__(self, sock, out):
        self.sock, self.out = sock, out
        self.buf = b""
        self.head = None
        self.status = None
        self.closed = False
        self.connected = False
        self.frames = []


class WsSwarm:
    """Many idle WebSocket subscribers on non-blocking sockets, one selector."""

    def __init__(self, port):
        self.port = port
        self.sel = selectors.DefaultSelector()
        self.conns = []
        self.errors = []

    def open(self, path, key="dGhlIHNhbXBsZSBub25jZQ=="):
        s = socket.socket()
        s.setblocking(False)
        rc = s.connect_ex(("127.0.0.1", self.port))
        if rc not in (0, errno.EINPROGRESS):
            s.close()
            raise OSError(rc, "connect")
        c = WsSwarmConn(s, handshake_request(path, key))
        self.conns.append(c)
        self.sel.register(s, selectors.EVENT_WRITE, c)
        return c

    def _close(self, c):
        if not c.closed:
            c.closed = True
            self.sel.unregister(c.sock)
            c.sock.close()

    def _frames(self, c):
        while True:
            b = c.buf
            if len(b) < 2:
                return
            n, off = b[1] & 0x7F, 2
            if n == 126:
                if len(b) < 4:
                    return
                n, off = struct.unpack("!H", b[2:4])[0], 4
            elif n == 127:
                if len(b) < 10:
                    return
                n, off = struct.unpack("!Q", b[2:10])[0], 10
            if len(b) < off + n:
                return
            c.frames.append((b[0], b[off:off + n]))
            c.buf = b[off + n:]

    def pump(self, timeout=0.1):
        for key, ev in self.sel.select(timeout):
            c = key.data
            if ev & selectors.EVENT_WRITE:
                if not c.connected:
                    err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        self.errors.append(f"connect: {errno.errorcode.get(err, err)}")
                        self._close(c)
                        continue
                    c.connected = True
                try:
                    n = c.sock.send(c.out)
                except BlockingIOError:
                    continue
                except OSError as e:
                    self.errors.append(f"send: {e}")
                    self._close(c)
                    continue
                c.out = c.out[n:]
                if not c.out:
                    self.sel.modify(c.sock, selectors.EVENT_READ, c)
                continue
            try:
                data = c.sock.recv(65536)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                data = b""
            if not data:
                self._close(c)
                continue
            c.buf += data
            if c.head is None and b"\r\n\r\n" in c.buf:
                i = c.buf.index(b"\r\n\r\n")
                c.head, c.buf = c.buf[:i].decode("latin-1"), c.buf[i + 4:]
                c.status = int(c.head.split(" ", 2)[1])
            if c.head is not None:
                self._frames(c)

    def run_until(self, pred, timeout, what="condition"):
        deadline = time.time() + timeout
        while not pred():
            if time.time() >= deadline:
                raise AssertionError(f"ws swarm: timed out after {timeout}s waiting for "
                                     f"{what}: {self.summary()}")
            self.pump(min(0.1, max(0.0, deadline - time.time())))

    def summary(self):
        from collections import Counter
        c = Counter((x.status, "closed" if x.closed else "open", len(x.frames))
                    for x in self.conns)
        return f"{dict(c)} errors={self.errors[:3]}"

    def close_all(self):
        for c in self.conns:
            self._close(c)
        self.sel.close()


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


def curl_tls_args(srv):
    return ["--cacert", cert_path(srv)]
