"""A small HTTP/2 client (Debian's python3-h2) for the tests: many streams on
many connections driven from one thread, stream resets, extended CONNECT.

    with H2Conn(srv, tls=False) as c:          # h2c with prior knowledge
        sid = c.get("/ev/ch")
        c.pump_until(lambda: c.streams[sid].headers, 5)
        c.streams[sid].body ...
"""
import select
import socket
import ssl
import time

import h2.config
import h2.connection
import h2.events
import h2.settings

from pyhttpd.client import cert_path


class H2Stream:
    def __init__(self, sid):
        self.sid = sid
        self.headers = None          # {name: value} of the response
        self.body = b""
        self.ended = False
        self.reset = False

    @property
    def status(self):
        return int(self.headers[":status"]) if self.headers else None

    def header(self, name):
        return (self.headers or {}).get(name.lower())


class H2Conn:
    def __init__(self, srv, tls=False, timeout=10):
        port = srv.ssl_port if tls else srv.port
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls:
            ctx = ssl.create_default_context(cafile=cert_path(srv))
            ctx.set_alpn_protocols(["h2"])
            sock = ctx.wrap_socket(sock, server_hostname="127.0.0.1")
            assert sock.selected_alpn_protocol() == "h2"
        sock.setblocking(False)
        self.sock = sock
        self.authority = f"127.0.0.1:{port}"
        self.scheme = "https" if tls else "http"
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.conn.update_settings({h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL: 1})
        self.streams = {}
        self.remote_settings = {}
        self.closed = False
        self.flush()

    def fileno(self):
        return self.sock.fileno()

    def flush(self):
        data = self.conn.data_to_send()
        while data:
            try:
                n = self.sock.send(data)
            except (BlockingIOError, ssl.SSLWantWriteError):
                select.select([], [self.sock], [], 1)
                continue
            data = data[n:]

    def request(self, path, method="GET", headers=(), extra_pseudo=(), end=True):
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), *extra_pseudo, (":scheme", self.scheme),
                (":authority", self.authority), (":path", path), *headers]
        self.conn.send_headers(sid, hdrs, end_stream=end)
        self.streams[sid] = H2Stream(sid)
        self.flush()
        return sid

    def get(self, path, headers=()):
        return self.request(path, headers=headers)

    def reset(self, sid):
        self.conn.reset_stream(sid, error_code=8)          # CANCEL
        self.flush()

    def on_readable(self):
        """Read what is there and handle it (non-blocking)."""
        while True:
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, ssl.SSLWantReadError):
                break
            except OSError:
                data = b""
            if not data:
                self.closed = True
                break
            for ev in self.conn.receive_data(data):
                self._event(ev)
        self.flush()

    def _event(self, ev):
        if isinstance(ev, h2.events.ResponseReceived):
            self.streams[ev.stream_id].headers = dict(ev.headers)
        elif isinstance(ev, h2.events.DataReceived):
            self.streams[ev.stream_id].body += ev.data
            self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded):
            self.streams[ev.stream_id].ended = True
        elif isinstance(ev, h2.events.StreamReset):
            if ev.stream_id in self.streams:
                self.streams[ev.stream_id].reset = True
        elif isinstance(ev, h2.events.RemoteSettingsChanged):
            for k, v in ev.changed_settings.items():
                self.remote_settings[k] = v.new_value
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.closed = True

    def pump_until(self, cond, timeout, what="condition"):
        return pump([self], cond, timeout, what)

    def close(self):
        try:
            self.conn.close_connection()
            self.flush()
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def pump(conns, cond, timeout, what="condition"):
    """Drive every connection until cond() is true; AssertionError after timeout."""
    deadline = time.time() + timeout
    while not cond():
        left = deadline - time.time()
        if left <= 0:
            raise AssertionError(f"HTTP/2: timed out after {timeout}s waiting for {what}")
        live = [c for c in conns if not c.closed]
        r, _, _ = select.select(live, [], [], min(left, 0.2)) if live else ([], [], [])
        if not live:
            time.sleep(min(left, 0.05))
        for c in r:
            c.on_readable()
    return True
