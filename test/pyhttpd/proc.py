"""Processes and ports: the one place that starts, stops and kills what the
tests and the benchmark run (httpd, nginx, redis-server, back ends)."""
import os
import re
import resource
import signal
import socket
import subprocess
import time

from .env import read

_given_ports = set()


def free_port():
    """A port free on 127.0.0.1 right now, never handed out twice by this process."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _given_ports:
            _given_ports.add(port)
            return port


def port_is_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def tcp_connects(port):
    """1 when something accepts connections on 127.0.0.1:port."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def raise_nofile_limit():
    """Soft RLIMIT_NOFILE := hard; children inherit it (tests hold thousands of sockets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def proc_stat(pid):
    """(state, ppid) of a pid from /proc, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    fields = data.rsplit(")", 1)[1].split()  # comm may contain spaces/parens
    return fields[0], int(fields[1])


def pid_alive(pid):
    # PID 1 here may not reap orphans: a zombie counts as gone.
    st = proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def children(parent):
    """Live child pids of parent, sorted."""
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = proc_stat(int(d))
            if st and st[1] == parent and st[0] not in ("Z", "X"):
                kids.append(int(d))
    return sorted(kids)


def status_field(pid, field):
    """A number of /proc/PID/status (VmRSS, Threads, ...; kB for sizes), 0 if gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            m = re.search(rf"^{field}:\s+(\d+)", f.read(), re.M)
        return int(m.group(1)) if m else 0
    except OSError:
        return 0


def cpu_ticks(pid):
    """utime + stime of pid (clock ticks)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def term_and_wait(parent, pids, timeout):
    """SIGTERM parent, then wait up to timeout s for all of pids to be gone;
    True if they went."""
    os.kill(parent, signal.SIGTERM)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not any(pid_alive(p) for p in pids):
            return True
        time.sleep(0.05)
    return False


def kill_pids(pids):
    """SIGKILL each of pids that is still there."""
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_port(port, timeout, what):
    """Until 127.0.0.1:port accepts connections; RuntimeError naming what after timeout."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if tcp_connects(port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not come up on {port} within {timeout}s")


def end_popen(p, timeout=10, close_stdin=False):
    """Ends a subprocess.Popen: EOF on its stdin (close_stdin) or SIGTERM, SIGKILL
    after timeout s; closes its pipes."""
    if close_stdin and p.stdin:
        if not p.stdin.closed:
            try:
                p.stdin.close()
            except OSError:
                pass
    elif p.poll() is None:
        p.terminate()
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(10)
    for f in (p.stdin, p.stdout, p.stderr):
        if f:
            try:
                f.close()
            except OSError:
                pass


class Daemon:
    """A server that forks into the background and writes a pid file (httpd,
    nginx): set port, ssl_port, pid_path and error_log_path."""
    port = ssl_port = pid_path = error_log_path = None

    def url(self, path="/"):
        return f"http://127.0.0.1:{self.port}{path}"

    def ssl_url(self, path="/"):
        return f"https://127.0.0.1:{self.ssl_port}{path}"

    def parent_pid(self):
        try:
            with open(self.pid_path) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def child_pids(self):
        parent = self.parent_pid()
        return children(parent) if parent else []

    def pids(self):
        """The parent and its children."""
        parent = self.parent_pid()
        return [parent] + children(parent) if parent else []

    def _connects(self):
        return tcp_connects(self.port)

    def _wait_started(self, timeout, workers, alive_check=None):
        """Until the parent has `workers` children and the port accepts; False
        after timeout.  alive_check(pid) may raise when the parent died."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            pid = self.parent_pid()
            if pid and alive_check:
                alive_check(pid)
            if pid and self._connects() and len(self.child_pids()) >= workers:
                return True
            time.sleep(0.05)
        return False

    def error_log(self):
        return read(self.error_log_path)


class Proc:
    """A helper process in the foreground of the test (redis-server, a WebSocket
    back end, bench/tlsfloor): start(), stop() = SIGTERM (or EOF on its stdin),
    then SIGKILL after timeout; kill() = SIGKILL at once (fault tests)."""

    def __init__(self, cmd, **popen_kw):
        self.argv = list(cmd)
        self.popen_kw = popen_kw
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(self.argv, **self.popen_kw)
        return self

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        if self.running():
            self.proc.kill()
            self.proc.wait(10)

    def stop(self, timeout=10, close_stdin=False):
        """Ends the process: EOF on its stdin (close_stdin) or SIGTERM, SIGKILL
        after timeout s; closes the pipes (end_popen)."""
        if self.proc:
            end_popen(self.proc, timeout, close_stdin)


def make_cert(crt, key, ca=False):
    """An EC P-256 self-signed certificate for 127.0.0.1 (subjectAltName IP,
    usable as its own CA) at crt/key, unless crt exists; (crt, key)."""
    if not os.path.exists(crt):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "30",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
                       + ([] if ca else ["-addext", "basicConstraints=critical,CA:FALSE"])
                       + ["-keyout", key, "-out", crt],
                       check=True, capture_output=True)
        os.chmod(key, 0o644)
        os.chmod(crt, 0o644)
    return crt, key
