"""Throwaway Apache httpd instances on 127.0.0.1 for tests, the benchmark and the demo.

    srv = Httpd("/tmp/x", conf_body="<Location /pub> ... </Location>")
    srv.start(); ...; srv.stop()

CLI:  python3 -m pyhttpd run | stop | configtest FILE   (from test/; `make run`, `make stop`)
      (run: the demo of `make run` on 127.0.0.1:8080, else a free port, or
      PS_DEMO_PORT; its workdir is $PS_BUILD/demo)
"""
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

from . import env
from .env import (APACHE, BUILD, MODDIR, PUSHSTREAM_SO, ROOT,  # noqa: F401
                  _unreachable_ancestor, work_root)
from .env import read as _read
from .proc import (Daemon, children, free_port, kill_pids, make_cert, pid_alive,  # noqa: F401
                   port_is_free, proc_stat as _proc_stat, raise_nofile_limit, tcp_connects,
                   term_and_wait)

CRASH_PATTERNS = ("exit signal", "AH00052", "AddressSanitizer", "runtime error:",
                  "AH00046", "leaked", "EOWNERDEAD")

# Sanitizer pass (PS_SAN_PRELOAD set): detect_leaks=0 because httpd never
# frees its process pool on exit (it relies on exit), so LeakSanitizer would
# report every pool of httpd/APR; our own leaks that matter (shared segment
# blocks) are found by PS0060 instead.  abort_on_error=1: after its report a
# child dies by SIGABRT, which the error log shows as "exit signal" (so the
# test fails even if nobody reads the report file).  UBSan halts too (the
# modules are built with -fno-sanitize-recover=undefined).  disable_coredump=0:
# a crashed child leaves logs/core (shadow memory is not dumped) for the
# harness to read its backtrace (Httpd.httpd_stop_crashes).
SAN_ASAN_OPTIONS = "detect_leaks=0:abort_on_error=1:disable_coredump=0:" \
                   "handle_abort=0:allow_user_segv_handler=1"
SAN_UBSAN_OPTIONS = "print_stacktrace=1:halt_on_error=1"

def _allow_core():
    """In the forked apache2: allow core files (CoreDumpDirectory logs), so a
    child crash can be read with gdb afterwards."""
    try:
        resource.setrlimit(resource.RLIMIT_CORE,
                           (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    except (ValueError, OSError):
        pass


def _tail(path, n=40):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return f"({path} missing)"


class Httpd(Daemon):
    def __init__(self, workdir, conf_body="", port=None, mpm="event", servers=2, threads=25,
                 modules=None, load_pushstream=True, ssl_port=None, log_level="info",
                 extra_global="", mpm_conf=None):
        self.workdir = os.path.abspath(workdir)
        self.conf_body = conf_body
        self.port = port or free_port()
        self.mpm = mpm
        self.servers = servers
        self.threads = threads
        self.modules = list(modules or [])
        self.load_pushstream = load_pushstream
        self.ssl_port = ssl_port
        self.log_level = log_level
        self.extra_global = extra_global
        # mpm_conf: MPM directives instead of the harness's own (e.g. an Include
        # of Debian's stock mpm_event.conf; "" = httpd's compiled-in defaults)
        self.mpm_conf = mpm_conf
        self.conf_path = os.path.join(self.workdir, "conf", "httpd.conf")
        self.error_log_path = os.path.join(self.workdir, "logs", "error_log")
        self.access_log_path = os.path.join(self.workdir, "logs", "access_log")
        self.pid_path = os.path.join(self.workdir, "logs", "httpd.pid")

    # ---------------------------------------------------------------- config
    def _path(self, *parts):
        return os.path.join(self.workdir, *parts)

    def _copy_module(self, src):
        """Copy a .so into workdir/modules: readable by User nobody, and a later
        `make` rewriting the original in place cannot crash the running server."""
        dst = self._path("modules", os.path.basename(src))
        shutil.copyfile(src, dst)
        os.chmod(dst, 0o644)
        return dst

    def _module_lines(self):
        sysmods = [f"mpm_{self.mpm}", "authz_core", "authz_host", "mime", "status",
                   "headers", "env", "setenvif"]
        if self.ssl_port:
            sysmods += ["socache_shmcb", "ssl"]
        lines = [f"LoadModule {m}_module {MODDIR}/mod_{m}.so" for m in sysmods]
        if self.load_pushstream and os.path.exists(env.PUSHSTREAM_SO):
            lines.append(f"LoadModule pushstream_module {self._copy_module(env.PUSHSTREAM_SO)}")
        for line in self.modules:
            parts = line.split()
            if len(parts) == 1:  # bare name, e.g. "proxy_wstunnel": a Debian module
                name = parts[0].removesuffix("_module")
                parts = ["LoadModule", f"{name}_module", f"{MODDIR}/mod_{name}.so"]
            if len(parts) == 3 and not parts[2].startswith(MODDIR + "/"):
                parts[2] = self._copy_module(parts[2])
            lines.append(" ".join(parts))
        return "\n".join(lines)

    def _mpm_lines(self):
        if self.mpm_conf is not None:
            return self.mpm_conf
        n, t = self.servers, self.threads
        if self.mpm == "prefork":
            return "\n".join(f"{d} {n}" for d in ("StartServers", "MinSpareServers",
                             "MaxSpareServers", "ServerLimit", "MaxRequestWorkers"))
        lines = [f"ServerLimit {n}", f"StartServers {n}", "MinSpareThreads 1",
                 # must be >= MinSpareThreads + ThreadsPerChild or httpd warns and adjusts
                 f"MaxSpareThreads {max(n * t, t + 1)}",
                 f"ThreadLimit {t}", f"ThreadsPerChild {t}", f"MaxRequestWorkers {n * t}",
                 "MaxConnectionsPerChild 0"]
        if self.mpm == "event":
            # suspended connections must not count against the workers' capacity
            lines.append("AsyncRequestWorkerFactor 1000")
        return "\n".join(lines)

    def _make_cert(self):
        return make_cert(self._path("conf", "server.crt"), self._path("conf", "server.key"))

    def write_config(self):
        # children run as nobody and must reach htdocs and the module copies
        blocked = _unreachable_ancestor(self.workdir)
        if blocked:
            raise RuntimeError(f"{blocked} is not world-searchable; User nobody cannot "
                               f"reach {self.workdir} (see work_root())")
        for d in ("", "conf", "logs", "htdocs", "run", "modules"):
            os.makedirs(self._path(d), exist_ok=True)
            os.chmod(self._path(d), 0o755)
        if os.geteuid() == 0:
            for d in ("logs", "run"):  # writable by the children too
                os.chown(self._path(d), 65534, 65534)
        with open(self._path("htdocs", "static.txt"), "w") as f:
            f.write("hello\n")
        os.chmod(self._path("htdocs", "static.txt"), 0o644)

        ssl = ""
        if self.ssl_port:
            crt, key = self._make_cert()
            ssl = f"""
Listen 127.0.0.1:{self.ssl_port} https
SSLSessionCache shmcb:run/ssl_scache(512000)
<VirtualHost 127.0.0.1:{self.ssl_port}>
ServerName 127.0.0.1
SSLEngine on
SSLCertificateFile {crt}
SSLCertificateKeyFile {key}
{self.conf_body}
</VirtualHost>
"""
        conf = f"""# generated by test/pyhttpd
ServerRoot "{self.workdir}"
ServerName 127.0.0.1
Listen 127.0.0.1:{self.port}
PidFile logs/httpd.pid
ErrorLog logs/error_log
# a crashing child leaves logs/core (kept with the workdir of a failed test)
CoreDumpDirectory logs
LogLevel {self.log_level}
LogFormat "%h %P %>s %B %D \\"%r\\"" pshttpd
CustomLog logs/access_log pshttpd
DefaultRuntimeDir run
User nobody
Group nogroup

{self._module_lines()}

TypesConfig /etc/mime.types
DocumentRoot "{self._path('htdocs')}"
<Directory "{self._path('htdocs')}">
    Require all granted
</Directory>
ExtendedStatus On

{self._mpm_lines()}

{self.extra_global}
{ssl}
# ---- conf_body
{self.conf_body}
# ---- end of conf_body

# last, so that a <Location /> in conf_body does not take it over (graceful() polls it)
<Location /server-status>
    SetHandler server-status
    Require ip 127.0.0.1
</Location>
"""
        # 1-based line in httpd.conf of conf_body's first line (the last copy of it)
        self.body_first_line = conf[:conf.index("# ---- conf_body\n")].count("\n") + 2
        with open(self.conf_path, "w") as f:
            f.write(conf)
        os.chmod(self.conf_path, 0o644)

    # ---------------------------------------------------------------- control
    def _env(self):
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}
        for k in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if k in os.environ:
                env[k] = os.environ[k]
        # PS_SAN_PRELOAD (sanitizer pass): the ASan runtime, for httpd only --
        # not for the test's curl/php/chromium/nginx, hence not LD_PRELOAD.
        san = os.environ.get("PS_SAN_PRELOAD")
        if san:
            env["LD_PRELOAD"] = san
            env["ASAN_OPTIONS"] = ":".join(filter(None, (
                os.environ.get("ASAN_OPTIONS", ""), SAN_ASAN_OPTIONS,
                f"log_path={self.san_log_prefix()}")))
            env["UBSAN_OPTIONS"] = ":".join(filter(None, (
                os.environ.get("UBSAN_OPTIONS", ""), SAN_UBSAN_OPTIONS,
                f"log_path={self.san_log_prefix()}")))
        return env

    def san_log_prefix(self):
        # httpd closes stderr; reports go to logs/sanitizer.<pid> (logs/ is
        # writable by the children, which run as nobody)
        return self._path("logs", "sanitizer")

    def sanitizer_reports(self):
        """[(file, text)] of the ASan/UBSan report files this server wrote."""
        out = []
        d = self._path("logs")
        try:
            names = sorted(os.listdir(d))
        except OSError:
            return out
        for n in names:
            if n.startswith("sanitizer."):
                text = _read(os.path.join(d, n))
                if text.strip():
                    out.append((os.path.join(d, n), text))
        return out

    def _apache(self, *args):
        p = subprocess.run([APACHE, "-f", self.conf_path, *args], env=self._env(),
                           preexec_fn=_allow_core, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=60)
        return p.returncode, p.stdout

    def configtest(self):
        self.write_config()
        return self._apache("-t")

    def _fail(self, msg):
        raise RuntimeError(f"{msg}\n--- {self.error_log_path} (tail):\n"
                           f"{_tail(self.error_log_path)}")

    def start(self, timeout=15):
        self.write_config()
        raise_nofile_limit()
        if os.path.exists(self.pid_path):
            os.unlink(self.pid_path)
        # -k start forks a daemon that reopens stdio on /dev/null, so run() returns.
        rc, out = self._apache("-k", "start")
        if rc != 0:
            self._fail(f"apache2 -k start failed (rc={rc}):\n{out}")
        def alive(pid):
            if not pid_alive(pid):
                self._fail(f"httpd parent {pid} died during startup:\n{out}")
        # also wait for StartServers children, so tests can count them right away
        if self._wait_started(timeout, self.servers, alive):
            self._started_at = time.time()
            return
        self._fail(f"httpd did not come up on port {self.port} within {timeout}s:\n{out}")

    def stop(self, timeout=15):
        parent = self.parent_pid()
        if not parent or not pid_alive(parent):
            return
        # httpd 2.4.71's event MPM itself sometimes segfaults when stopped within
        # ~100 ms of starting (seen without any module of ours): let it settle.
        settle = 1.0 - (time.time() - getattr(self, "_started_at", 0))
        if settle > 0:
            time.sleep(settle)
        pids = [parent] + self.child_pids()
        # each stop's stretch of the error log (a server may be stopped and
        # started again within a test): httpd_stop_crashes looks in all of them
        begin = self._log_size()
        try:
            if term_and_wait(parent, pids, timeout):
                return
        finally:
            self._stop_windows = getattr(self, "_stop_windows", []) + [(begin, self._log_size())]
        kill_pids(pids + self.child_pids())  # last resort
        raise RuntimeError(f"httpd {parent} did not stop within {timeout}s; SIGKILLed "
                           f"{[p for p in pids if pid_alive(p)] or pids}")

    def _generation(self):
        try:
            with urllib.request.urlopen(self.url("/server-status?auto"), timeout=2) as r:
                m = re.search(r"^ParentServerConfigGeneration: (\d+)", r.read().decode(),
                              re.M)
                return int(m.group(1)) if m else None
        except OSError:
            return None

    def graceful(self, timeout=15):
        """-k graceful; returns once a child of the new generation answers."""
        old_gen, old_kids = self._generation(), set(self.child_pids())
        rc, out = self._apache("-k", "graceful")
        if rc != 0:
            self._fail(f"apache2 -k graceful failed (rc={rc}):\n{out}")
        deadline = time.time() + timeout
        while time.time() < deadline:
            pid = self.parent_pid()
            if not pid or not pid_alive(pid):
                self._fail("httpd parent died during graceful restart")
            if old_gen is not None:
                gen = self._generation()
                if gen is not None and gen > old_gen:
                    return
            elif set(self.child_pids()) - old_kids and self._connects():
                return
            time.sleep(0.05)
        self._fail(f"no new generation within {timeout}s after graceful")

    # ---------------------------------------------------------------- inspection
    def rss_kb(self):
        """{pid: VmRSS in kB} for the parent and its children."""
        out = {}
        parent = self.parent_pid()
        for pid in ([parent] if parent else []) + self.child_pids():
            try:
                with open(f"/proc/{pid}/status") as f:
                    m = re.search(r"^VmRSS:\s+(\d+)", f.read(), re.M)
                if m:
                    out[pid] = int(m.group(1))
            except OSError:
                pass
        return out

    def rss_growth_kb(self, pid, base, limit, timeout=10):
        """VmRSS of pid minus base (kB), once it is below limit or after timeout
        (freed memory goes back to the system a moment later)."""
        deadline = time.time() + timeout
        while self.rss_kb()[pid] - base >= limit and time.time() < deadline:
            time.sleep(0.2)
        return self.rss_kb()[pid] - base

    def mpm_counts(self):
        """{pid: (connections, suspended)} from each child's last event MPM
        trace6 line ("connections: N ... suspended:S"; LogLevel mpm_event:trace6)."""
        out = {}
        for line in self.error_log().splitlines():
            m = re.search(r"\[pid (\d+):tid \d+\].*connections: (\d+) .*suspended:(\d+)", line)
            if m:
                out[int(m.group(1))] = (int(m.group(2)), int(m.group(3)))
        return out

    def mpm_idle(self, kids):
        """mpm_counts() if every child in kids counts 0 connections and 0
        suspended ones, else None.  The listener logs its counters (trace6)
        only when it wakes up: a few server-status requests wake it first."""
        for _ in range(4):
            urllib.request.urlopen(self.url("/server-status?auto"), timeout=5).read()
        c = self.mpm_counts()
        return c if all(c.get(k) == (0, 0) for k in kids) else None

    def access_log(self):
        return _read(self.access_log_path)

    def crash_lines(self):
        return [l for l in self.error_log().splitlines()
                if any(p in l for p in CRASH_PATTERNS)]

    def httpd_stop_crashes(self):
        """Child crash lines written after stop() sent SIGTERM whose core file
        shows the crashing thread in httpd's own event MPM / APR code with no
        frame of ours: httpd 2.4.71's ungraceful-stop race (the child's main
        thread closes the listeners while its listener thread tears down;
        seen without our modules too).  Every other crash stays a failure:
        no core, a frame of mod_pushstream*, or a crash before the stop."""
        tail = []
        try:
            with open(self.error_log_path, "rb") as f:
                for begin, end in getattr(self, "_stop_windows", []):
                    f.seek(begin)
                    tail += f.read(end - begin).decode(errors="replace").splitlines()
        except OSError:
            return []
        segv = [l for l in tail if "exit signal Segmentation fault" in l]
        if not segv:
            return []                   # no gdb run for nothing
        frames = [l for l in self.core_backtrace().splitlines() if re.match(r"#\d+ ", l)]
        if not (frames and any("mod_mpm_event.so" in l for l in frames)
                and not any("pushstream" in l or " ps_" in l or " pswt_" in l
                            for l in frames)):
            return []
        return segv

    def core_backtrace(self):
        """gdb's backtrace of the crashed child's core (logs/core), or ''."""
        core = os.path.join(self.workdir, "logs", "core")
        if not os.path.exists(core):
            return ""
        try:
            return subprocess.run(["gdb", "-q", "-batch", "-ex", "bt", APACHE, core],
                                  capture_output=True, text=True, timeout=60).stdout
        except (OSError, subprocess.TimeoutExpired):
            return ""

    def crash_report(self, lines):
        """lines, and what tells where the child crashed: the core's
        backtrace, or that there was none."""
        bt = self.core_backtrace()
        return "\n".join(lines) + ("\n--- backtrace of logs/core:\n" + bt if bt
                                   else "\n(no logs/core to read)")

    def _log_size(self):
        try:
            return os.path.getsize(self.error_log_path)
        except OSError:
            return 0


# -------------------------------------------------------------------- CLI
def _demo_dir():
    return work_root(os.path.join(BUILD, "demo"))


DEMO_PAGE_DIR = os.path.join(ROOT, "clients", "demo")
JS_CLIENT = os.path.join(ROOT, "clients", "js", "pushstream-client.js")


class DemoHttpd(Httpd):
    """The demo of `make run`: conf.d/pushstream.conf + demo.conf, the page of
    clients/demo/ at / and the JS client at /js/pushstream-client.js.  The page
    files are copied into htdocs/ at each start (the checkout may lie where
    User nobody cannot read)."""

    def write_config(self):
        super().write_config()
        js = self._path("htdocs", "js")
        os.makedirs(js, exist_ok=True)
        os.chmod(js, 0o755)
        pairs = [(JS_CLIENT, os.path.join(js, "pushstream-client.js"))]
        for n in sorted(os.listdir(DEMO_PAGE_DIR)):
            if n.endswith((".html", ".js", ".css")):
                pairs.append((os.path.join(DEMO_PAGE_DIR, n), self._path("htdocs", n)))
        for src, dst in pairs:
            shutil.copyfile(src, dst)
            os.chmod(dst, 0o644)


def demo_server(workdir, port=None):
    """The demo server (not started) in workdir; also used by test_demo_page.py."""
    body = "\n".join(_read(os.path.join(ROOT, "conf.d", n))
                     for n in ("pushstream.conf", "demo.conf"))
    body += "\nDirectoryIndex index.html\n"
    modules = ["dir"]                   # DirectoryIndex: the page at /
    # the websocket companion module, if built, under the name its .load file gives it
    wt_so = os.path.join(BUILD, "mod_pushstream_wstunnel.so")
    m = re.search(r"^\s*LoadModule\s+(\S+)", _read(os.path.join(
        ROOT, "conf.d", "pushstream_wstunnel.load")), re.M)
    if m and os.path.exists(wt_so):
        modules.append("proxy")         # the tunnel is a mod_proxy scheme handler
        modules.append(f"LoadModule {m.group(1)} {wt_so}")
    return DemoHttpd(workdir, body, port=port, modules=modules, load_pushstream=True)


def _demo_server(port=None):
    return demo_server(_demo_dir(), port=port)


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "run":
        _demo_server(port=1).stop()  # an older demo, if any
        if not os.path.exists(env.PUSHSTREAM_SO):
            print(f"warning: {env.PUSHSTREAM_SO} not built, starting without it", file=sys.stderr)
        port = int(os.environ.get("PS_DEMO_PORT") or 0) or \
            (8080 if port_is_free(8080) else free_port())
        srv = _demo_server(port=port)
        srv.start()
        u = srv.url("")
        print(f"""demo page:     {u}/      <- open it in a browser
httpd (pid {srv.parent_pid()}) on {u}   [{srv.workdir}]
  error log:     {srv.error_log_path}
  statistics:    curl -s '{u}/channels-stats'
  server-status: {u}/server-status

  publish:       curl -s -X POST -d 'Hello' '{u}/pub?id=demo'
  stream:        curl -s -N '{u}/sub/demo'
  EventSource:   curl -s -N '{u}/ev/demo'
  long-polling:  curl -s '{u}/lp/demo'
  WebSocket:     {u.replace('http:', 'ws:')}/ws/demo

  stop with:     make stop""")
    elif cmd == "stop":
        srv = _demo_server(port=1)  # the port does not matter for stop
        pid = srv.parent_pid()
        srv.stop()
        print(f"stopped httpd {pid}" if pid else "no demo httpd running")
    elif cmd == "configtest" and len(argv) == 3:
        tmp = tempfile.mkdtemp(prefix="pshttpd-ct-")
        os.chmod(tmp, 0o755)
        try:
            srv = Httpd(tmp, _read(argv[2]))
            rc, out = srv.configtest()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print(out, end="")
        m = re.search(r"line (\d+) of " + re.escape(srv.conf_path), out)
        if m and int(m.group(1)) >= srv.body_first_line:
            print(f"(= line {int(m.group(1)) - srv.body_first_line + 1} of {argv[2]})")
        return rc
    else:
        print("usage: python3 -m pyhttpd run | stop | configtest FILE", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
