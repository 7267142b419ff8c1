"""WebSocket clients of the tests (stdlib only), on top of pyhttpd.client's
connections and response parser; tls=True talks wss to the server's ssl_port.

    ws = Ws(srv, "/ws/ch")                           # hand-made RFC 6455 client
    ws.send_frame(OP_TEXT, b"hi"); f = ws.read_frame()
    ws.expect_close(1008)
    WsSwarm(port)                                    # thousands of idle ws subscribers
"""
import base64
import hashlib
import os
import struct
import time

from .client import SockClient, Swarm, SwarmConn, build_request, parse_head

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


def parse_frame(b):
    """The first whole (unmasked) frame of b: (Frame, rest), or None while incomplete."""
    if len(b) < 2:
        return None
    n, off = b[1] & 0x7F, 2
    if n == 126:
        if len(b) < 4:
            return None
        n, off = struct.unpack("!H", b[2:4])[0], 4
    elif n == 127:
        if len(b) < 10:
            return None
        n, off = struct.unpack("!Q", b[2:10])[0], 10
    if len(b) < off + n:
        return None
    f = Frame(b[0] >> 7, (b[0] >> 4) & 7, b[0] & 0xF, b[off:off + n], b[:off + n])
    return f, b[off + n:]


def handshake_request(path, key="dGhlIHNhbXBsZSBub25jZQ==", version="13", extra=None,
                      omit=()):
    hdrs = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": key,
            "Sec-WebSocket-Version": version}
    for h in omit:
        hdrs.pop(h, None)
    hdrs.update(extra or {})
    return build_request("GET", path, hdrs)


class Ws(SockClient):
    """A hand-made WebSocket client. After __init__ the handshake answer is in .resp
    (any status); bytes after the 101 are frames, read with read_frame()."""

    def __init__(self, srv, path, tls=False, key="dGhlIHNhbXBsZSBub25jZQ==", version="13",
                 extra=None, omit=(), timeout=10, method="GET", expect101=True):
        super().__init__(srv, tls, timeout)
        self.path = path
        self.key = key
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
        rd = self.rd
        deadline = time.time() + timeout
        rd.need(2, deadline, "a frame header")
        assert not rd.buf[1] & 0x80, f"server frame is masked: {rd.buf[:2]!r}"
        rd.fill_until(lambda: parse_frame(rd.buf) is not None, deadline, "a whole frame")
        f, rd.buf = parse_frame(rd.buf)
        return f

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


class WsSwarm(Swarm):
    """Many idle WebSocket subscribers on non-blocking sockets, one selector
    (client.Swarm); each conn's .status is its handshake answer's, .frames the
    (first byte, payload) of every frame after it."""
    what = "ws swarm"

    def __init__(self, port):
        super().__init__(port)
        self.errors = []

    def open(self, path, key="dGhlIHNhbXBsZSBub25jZQ=="):
        self._key = key
        return super().open(path, "ws")

    def _conn(self, sock, path, kind):
        return SwarmConn(sock, path, kind, handshake_request(path, self._key), keep_rest=True)

    def _error(self, c, msg):
        self.errors.append(msg)
        super()._error(c, msg)

    def _data(self, c, data):
        c.p.feed(data)
        if c.p.status != 101:
            return
        while True:
            r = parse_frame(c.p.buf)
            if r is None:
                return
            f, c.p.buf = r
            c.frames.append((f.raw[0], f.payload))

    def summary(self):
        from collections import Counter
        c = Counter((x.status, "closed" if x.closed else "open", len(x.frames))
                    for x in self.conns)
        return f"{dict(c)} errors={self.errors[:3]}"
