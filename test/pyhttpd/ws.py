"""WebSocket clients of the tests (stdlib only), on top of pyhttpd.client's
connections and response parser; tls=True talks wss to the server's ssl_port.

    ws = Ws(srv, "/ws/ch")                           # hand-made RFC 6455 client
    ws.send_frame(OP_TEXT, b"hi"); f = ws.read_frame()
    ws.expect_close(1008)
    WsSwarm(port)                                    # thousands of idle ws subscribers
"""
import base64
import errno
import hashlib
import os
import selectors
import socket
import struct
import time

from .client import Reader, build_request, connect, parse_head

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def accept_of(key):
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


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
