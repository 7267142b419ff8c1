#!/usr/bin/python3
"""WebSocket back ends and clients for the mod_pushstream_wstunnel tests.

As a script (run by the tests in a subprocess, so a test can SIGKILL it):

    python3 test/pyhttpd/wsbackend.py --port P --name NAME [--cert C --key K]

prints "READY <port>" once it listens on 127.0.0.1 and serves:

  any path      echo of every message; these messages are commands:
                  "whoami"       -> NAME
                  "headers"      -> JSON {"path":..., "headers": {...}, "subprotocol": ...}
                  "big:N"        -> a text message of N bytes
                  "close:CODE"   -> the server closes with CODE ("bye")
                  "count"        -> number of open connections of this server
                  "closes"       -> JSON list of the close codes of ended connections
                  "tls_ends"     -> JSON list of [path, how the peer ended TLS] of
                                    ended wss:// connections: "close_notify", or
                                    "cut" (TCP closed without a close_notify)
  /status/N     answers HTTP N (no upgrade) with a body "backend NAME says N"
  /chunked      answers 403 with a chunked body
  /noclen       answers 404 with a body delimited by the connection close
  /hang         never answers
  /wrong-upgrade answers 101 with Upgrade: h2c
  /greet        sends "welcome" right after the handshake, then echoes
"""
import argparse
import asyncio
import http
import json
import os
import signal
import ssl
import subprocess
import sys
import time

import websockets
import websockets.legacy.server as wslegacy

HERE = os.path.dirname(os.path.abspath(__file__))


# ---------------------------------------------------------------------- server side
def _watch_tls_ends():
    """Marks on each asyncio TLS connection how the peer ended it (_ps_peer_end).
    asyncio never feeds a TCP EOF to the TLS session (whatever the context's
    OP_IGNORE_UNEXPECTED_EOF), so it reads a cut like a close_notify: the two
    are told apart here.  A close_notify is seen by the read that returns b""
    and by a completed two-way shutdown (unwrap), both ending in
    _call_eof_received before any TCP EOF; a TCP EOF first is a cut."""
    from asyncio import sslproto

    cls = sslproto.SSLProtocol
    eof_received, call_eof = cls.eof_received, cls._call_eof_received

    def on_tcp_eof(self):
        if getattr(self, "_ps_peer_end", None) is None \
                and self._state != sslproto.SSLProtocolState.DO_HANDSHAKE:
            self._ps_peer_end = "cut"
        return eof_received(self)

    def on_tls_eof(self):
        if not self._eof_received and getattr(self, "_ps_peer_end", None) is None:
            self._ps_peer_end = "close_notify"
        return call_eof(self)

    cls.eof_received, cls._call_eof_received = on_tcp_eof, on_tls_eof


def _serve(args):
    open_conns = set()
    close_codes = []
    tls_ends = []

    async def handler(ws, path):
        open_conns.add(ws)
        tls = getattr(ws.transport, "_ssl_protocol", None)   # dropped when it ends
        try:
            if path == "/greet":         # a frame right behind the 101
                await ws.send("welcome")
            async for msg in ws:
                if msg == "whoami":
                    await ws.send(args.name)
                elif msg == "headers":
                    await ws.send(json.dumps({
                        "path": path,
                        "headers": {k: v for k, v in ws.request_headers.raw_items()},
                        "subprotocol": ws.subprotocol}))
                elif isinstance(msg, str) and msg.startswith("big:"):
                    await ws.send("x" * int(msg[4:]))
                elif isinstance(msg, str) and msg.startswith("close:"):
                    await ws.close(int(msg[6:]), "bye")
                    return
                elif msg == "count":
                    await ws.send(str(len(open_conns)))
                elif msg == "closes":
                    await ws.send(json.dumps(close_codes))
                elif msg == "tls_ends":
                    await ws.send(json.dumps(tls_ends))
                else:
                    await ws.send(msg)
        except websockets.ConnectionClosed:
            pass
        finally:
            open_conns.discard(ws)
            await ws.wait_closed()
            close_codes.append(ws.close_code)
            if tls is not None:
                tls_ends.append([path, getattr(tls, "_ps_peer_end", None) or "cut"])

    async def process_request(path, headers):
        name = args.name
        if path.startswith("/status/"):
            code = int(path.split("/")[2])
            body = f"backend {name} says {code}\n".encode()
            return (http.HTTPStatus(code),
                    [("Content-Type", "text/plain"), ("X-Backend", name),
                     ("Content-Length", str(len(body)))], body)
        if path == "/chunked":
            body = b"5\r\nhello\r\n7\r\n chunks\r\n0\r\n\r\n"
            return (http.HTTPStatus.FORBIDDEN,
                    [("Content-Type", "text/plain"), ("Transfer-Encoding", "chunked"),
                     ("X-Backend", name)], body)
        if path == "/noclen":
            return (http.HTTPStatus.NOT_FOUND,
                    [("Content-Type", "text/plain"), ("X-Backend", name)],
                    b"no such socket here\n")
        if path == "/hang":
            await asyncio.sleep(3600)
        if path == "/wrong-upgrade":
            return (http.HTTPStatus.SWITCHING_PROTOCOLS,
                    [("Upgrade", "h2c"), ("Connection", "Upgrade")], b"")
        return None

    async def main():
        ctx = None
        if args.cert:
            _watch_tls_ends()
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(args.cert, args.key)
        common = dict(ssl=ctx, process_request=process_request,
                      subprotocols=["chat", "superchat"], ping_interval=None,
                      max_size=None, max_queue=None, backlog=4096, close_timeout=2)
        if args.unix:
            server = await websockets.unix_serve(handler, args.unix, **common)
            os.chmod(args.unix, 0o777)
            port = 0
        else:
            server = await websockets.serve(handler, "127.0.0.1", args.port, **common)
            port = server.sockets[0].getsockname()[1]
        print(f"READY {port}", flush=True)
        stop = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
        await stop
        server.close()
        await server.wait_closed()

    asyncio.run(main())


# ---------------------------------------------------------------------- test helpers
if not __package__:     # run as a script: the package is found beside it
    sys.path.insert(1, os.path.dirname(HERE))
from pyhttpd.client import parse_head, wait_for  # noqa: E402,F401  (wait_for: for the tests)
from pyhttpd.env import WSTUNNEL_SO  # noqa: E402
from pyhttpd.proc import Proc, make_cert as _make_cert, raise_nofile_limit  # noqa: E402


class WsBackend(Proc):
    """A back end in a subprocess: ws://127.0.0.1:port (wss:// with cert/key)."""

    def __init__(self, name="b1", port=0, cert=None, key=None, unix=None):
        self.name, self.port, self.cert, self.key = name, port, cert, key
        self.unix = unix
        cmd = [sys.executable, os.path.join(HERE, "wsbackend.py"), "--port",
               str(self.port), "--name", self.name]
        if self.cert:
            cmd += ["--cert", self.cert, "--key", self.key]
        if self.unix:
            cmd += ["--unix", self.unix]
        super().__init__(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def start(self, timeout=10):
        raise_nofile_limit()
        super().start()
        deadline = time.time() + timeout
        line = self.proc.stdout.readline()
        if not line.startswith("READY") or time.time() > deadline:
            err = self.proc.stderr.read() if self.proc.poll() is not None else ""
            raise RuntimeError(f"back end {self.name} did not start: {line!r} {err}")
        self.port = int(line.split()[1])
        return self

    @property
    def scheme(self):
        return "wss" if self.cert else "ws"

    @property
    def url(self):
        return f"{self.scheme}://127.0.0.1:{self.port}"


def make_cert(dirname, name="backend"):
    """A self-signed certificate for 127.0.0.1 (also usable as its own CA)."""
    return _make_cert(os.path.join(dirname, f"{name}.crt"),
                      os.path.join(dirname, f"{name}.key"), ca=True)


def client_ssl(cafile=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile:
        ctx.load_verify_locations(cafile)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def connect(url, **kw):
    """websockets.connect with test defaults: no pings, no compression unless asked."""
    kw.setdefault("ping_interval", None)
    kw.setdefault("open_timeout", 10)
    kw.setdefault("close_timeout", 5)
    kw.setdefault("max_size", None)
    kw.setdefault("compression", None)
    if url.startswith("wss:") and "ssl" not in kw:
        kw["ssl"] = client_ssl()
    return websockets.connect(url, **kw)


def run(coro, timeout=50):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def raw_request(port, request, timeout=10, tls=False):
    """Send raw bytes to 127.0.0.1:port, return (status, headers dict lower-case, body
    read until close or timeout)."""
    import socket
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if tls:
        s = client_ssl().wrap_socket(s)
    try:
        s.sendall(request.encode() if isinstance(request, str) else request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        r = parse_head(head.decode("latin-1")) if head else None
        status = r.status if r else 0
        headers = {}
        for k, v in (r.headers if r else []):
            headers.setdefault(k.lower(), v)
        return status, headers, body, s
    except BaseException:
        s.close()
        raise


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--name", default="b1")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--unix")
    _serve(ap.parse_args())


# ---------------------------------------------------------------------- tunnel module
WT_LOAD = f"LoadModule pushstream_wstunnel_module {WSTUNNEL_SO}"


def wt_modules(*extra):
    """modules= for Httpd: mod_proxy, extras, then this module."""
    return ["proxy", *extra, WT_LOAD]


def status_auto(srv):
    """server-status?auto as a dict."""
    import urllib.request
    with urllib.request.urlopen(srv.url("/server-status?auto"), timeout=5) as r:
        out = {}
        for line in r.read().decode().splitlines():
            k, _, v = line.partition(": ")
            out[k] = v
        return out
