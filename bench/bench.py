#!/usr/bin/python3
"""`make bench`: mod_pushstream (httpd, event MPM) against nginx + nchan, in one run.

    bench/bench.py [--quick] [--only idle,fanout,pubrate,tunnel,cluster,tls,tlsfanout,
                   longpoll,storm] [--n16 N] [--out DIR]

Starts our httpd and Debian's nginx with nchan on loopback ports, runs every
scenario against both with bench/loadgen (and wrk for the publish rate),
prints a table of figures with the ratio ours/nchan and the targets (issues
7 and 16: tls = idle RSS and fan-out over TLS, with bench/tlsfloor.c as the
floor of an idle OpenSSL session; longpoll = idle long-polls, plain and TLS;
storm = N subscribers connecting at once, plain and TLS),
and writes DIR/results.json, DIR/results.md and DIR/bench.png (gnuplot).
Default DIR: .build/bench.  Every load generator run is bounded in count and
time; everything is on 127.0.0.0/8.
"""
import argparse
import json
import math
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import servers  # noqa: E402
from servers import Ours, Nchan, Floor, pshttpd  # noqa: E402
from pyhttpd.env import read  # noqa: E402

LOADGEN = os.path.join(ROOT, ".build", "bench", "loadgen")
TLSFLOOR = os.path.join(ROOT, ".build", "bench", "tlsfloor")
WT_SO = os.path.join(ROOT, ".build", "mod_pushstream_wstunnel.so")


def log(msg):
    print(msg, flush=True)


# ------------------------------------------------------------------ machine
def machine_info():
    mem = re.search(r"MemTotal:\s+(\d+)", read("/proc/meminfo"))
    cpu = re.search(r"model name\s*:\s*(.+)", read("/proc/cpuinfo"))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return {
        "nproc": os.cpu_count(),
        "ram_gb": round(int(mem.group(1)) / 1048576, 1) if mem else None,
        "kernel": platform.release(),
        "cpu": cpu.group(1).strip() if cpu else "?",
        "os": "Debian " + read("/etc/debian_version").strip(),
        "loadavg_start": read("/proc/loadavg").split()[:3],
        "nofile": [soft, hard],
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def raise_nofile(want):
    """ulimit -n: as high as allowed (the hard limit needs CAP_SYS_RESOURCE)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for h in (max(want, hard), hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (h, h))
            break
        except (ValueError, OSError):
            continue
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


# ------------------------------------------------------------------ helpers
def run_loadgen(args, timeout, on_event=None):
    """Run loadgen, return its last JSON line as a dict (with rc); on_event(name) is
    called as {"event": name} lines arrive."""
    p = subprocess.Popen([LOADGEN] + [str(a) for a in args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    killer = threading.Timer(timeout, p.kill)
    killer.start()
    lines = []
    try:
        for line in p.stdout:
            if not line.startswith("{"):
                continue
            lines.append(line)
            if on_event and line.startswith('{"event"'):
                on_event(json.loads(line)["event"])
        err = p.stderr.read()
        p.wait()
    finally:
        killer.cancel()
    if not lines:
        raise RuntimeError(f"loadgen {args[0]} printed nothing (rc={p.returncode}):\n"
                           f"{err[-2000:]}")
    out = json.loads(lines[-1])
    out["rc"] = p.returncode
    if err.strip():
        out["stderr"] = err.strip()[-500:]
    return out


def run_fanout(urls, pub_url, n, rate, count, cpu_ticks):
    """One loadgen fanout run: n subscribers spread over urls (--url, --url2), count
    messages at rate on pub_url; adds server_cpu_s (from cpu_ticks(), the server
    CPU of the publish + delivery phase only, not the connects), cpu_us_per_msg
    and rate to loadgen's result."""
    marks = {}
    args = ["fanout"]
    for opt, url in zip(("--url", "--url2"), urls):
        args += [opt, url]
    r = run_loadgen(args + ["--pub-url", pub_url, "--n", n, "--transport", "mix",
                            "--rate", rate, "--count", count, "--src-ips", 4,
                            "--timeout", 150, "--drain", 5], timeout=200,
                    on_event=lambda ev: marks.setdefault(ev, cpu_ticks()))
    cpu = ((marks.get("measure_end", 0) - marks.get("measure_start", 0))
           / os.sysconf("SC_CLK_TCK"))
    r["server_cpu_s"] = cpu
    r["cpu_us_per_msg"] = cpu * 1e6 / r["received"] if r["received"] else None
    r["rate"] = rate
    return r


class SubHolders:
    """Several `loadgen sub --stdin` processes (each below the fd limit) that
    hold N subscribers until stop()."""

    def __init__(self, url, n, per_proc, extra=(), timeout=180):
        self.procs, self.ready, self.final = [], [], []
        k = max(1, math.ceil(n / per_proc))
        base = 0
        for i in range(k):
            cnt = n // k + (1 if i < n % k else 0)
            args = [LOADGEN, "sub", "--url", url, "--n", cnt, "--first", base, "--stdin",
                    "--timeout", timeout, *extra]
            base += cnt
            self.procs.append(subprocess.Popen([str(a) for a in args], stdin=subprocess.PIPE,
                                               stdout=subprocess.PIPE, text=True))

    def wait_ready(self, timeout):
        deadline = time.time() + timeout
        for p in self.procs:
            line = ""
            while time.time() < deadline:
                line = p.stdout.readline()
                if not line or line.startswith("{"):
                    break
            if not line:
                raise RuntimeError("loadgen sub ended before it was ready")
            self.ready.append(json.loads(line))
        return self.ready

    def stop(self):
        for p in self.procs:
            try:
                p.stdin.close()
            except OSError:
                pass
        for p in self.procs:
            out = p.stdout.read()       # bounded: loadgen --timeout
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            lines = [l for l in out.splitlines() if l.startswith("{")]
            if lines:
                self.final.append(json.loads(lines[-1]))
        return self.final


def median_run(runs, key):
    """The run whose key is the median (lower median for an even count)."""
    return dict(sorted(runs, key=key)[(len(runs) - 1) // 2])


def interleaved(kinds, rounds, one):
    """runs[kind] = [one(kind, i) for each round i], the kinds taking turns to go
    first (ours, nchan, nchan, ours, ...)."""
    runs = {k: [] for k in kinds}
    for i in range(rounds):
        for kind in (list(kinds) if i % 2 == 0 else list(kinds)[::-1]):
            runs[kind].append(one(kind, i))
    return runs


def summarise_rounds(runs, key, totals=(("lost_all_rounds", "lost"),
                                        ("failed_all_rounds", "failed"))):
    """Per kind: the median run by key, every round's summary and, for each
    (name, field) of totals, the field summed over all rounds."""
    res = {}
    for kind, rs in runs.items():
        res[kind] = median_run(rs, key)
        res[kind]["rounds"] = [round_summary(r) for r in rs]
        for name, field in totals:
            res[kind][name] = sum(r.get(field, 0) for r in rs)
    return res


def round_summary(r):
    return {k: r.get(k) for k in ("msgs_per_s", "lost", "failed", "received", "expected",
                                   "cpu_us_per_msg", "pub_late")} | {
        "p50_us": r["lat_us"]["p50"], "p99_us": r["lat_us"]["p99"],
        "max_us": r["lat_us"]["max"]}


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


# ---------------------------------------------------------------- issue 16 scenarios
def _url(srv, path, tls):
    return srv.ssl_url(path) if tls else srv.url(path)


class Bench16:
    """The production paths (issue 16): TLS subscribers, long-polls, reconnect
    storms; mixed into Bench."""

    def _idle_hold(self, srv, url, n, transport, what):
        """RSS growth per subscriber while n subscribers of transport wait."""
        # warm-up, the same for every server: a few subscribers come and go
        # first, so that the baseline already has the code pages a first TLS
        # handshake faults in (libcrypto, libssl: ~2.5 MB, counted once per
        # process in an RSS sum) -- growth per subscriber, not first use
        warm = SubHolders(url, min(200, n), self.per_proc,
                          ["--transport", transport, "--channels", 100, "--src-ips", 8,
                           "--conc", 64, "--connect-timeout", 60], timeout=120)
        try:
            warm.wait_ready(120)
        finally:
            warm.stop()
        time.sleep(3.0)
        base = srv.rss_total_kb()
        h = SubHolders(url, n, self.per_proc,
                       ["--transport", transport, "--channels", 100, "--src-ips", 8,
                        "--conc", 256, "--connect-timeout", 120], timeout=300)
        try:
            ready = h.wait_ready(240)
            time.sleep(3.0)                # ours: streams and long-polls leave httpd
            rss = srv.rss_total_kb()
            busy = srv.busy_workers()
        finally:
            final = h.stop()
        got = sum(r["ready"] for r in ready)
        failed = sum(r["failed"] for r in ready)
        res = {"n": n, "ready": got, "failed": failed, "rss_base_kb": base, "rss_kb": rss,
               "rss_per_sub_b": (rss - base) * 1024 / got if got else None,
               "connect_all_s": max(r["connect_all_ms"] for r in ready) / 1000.0,
               "closed_during_hold": sum(f.get("closed", 0) for f in final),
               "errors": [r["error"] for r in ready if r["error"]][:3], "busy_workers": busy}
        log(f"  {what} {srv.name:5} N={n}: ready {got}/{n} failed {failed} in "
            f"{res['connect_all_s']:.2f}s, RSS {base}->{rss} kB = "
            f"{res['rss_per_sub_b'] or 0:.0f} B/sub, busy {busy}")
        return res

    def n16(self, quick_n, full_n):
        return self.args.n16 or (quick_n if self.quick else full_n)

    # ---- 5. TLS: idle RSS (vs nchan and the bare OpenSSL floor), fan-out
    def tls(self):
        ns = [self.n16(2000, 10000)]
        for n in ns:
            res = {}
            for kind in ("ours", "nchan", "floor"):
                srv = self.make(kind, 2, "-tls", tls=True)
                try:
                    res[kind] = self._idle_hold(srv, srv.ssl_url("/{tr}/tidle{ch}"), n,
                                                "mix", "tls idle")
                finally:
                    srv.stop()
            self.data["tls_idle"].append(res)
            o, c, f = (res[k]["rss_per_sub_b"] for k in ("ours", "nchan", "floor"))
            floor_ratio = ratio(f, c)
            sc = f"5 TLS idle N={n} (EventSource + WebSocket)"
            # the target: <= 0.5x nchan, or <= 1.1x the floor if the floor itself
            # is above 0.5x nchan
            self.row(sc, "RSS per subscriber", o, c,
                     0.5 if floor_ratio is not None and floor_ratio <= 0.5 else None,
                     "lower", "B", note=f"ready {res['ours']['ready']} / "
                     f"{res['nchan']['ready']}; failed {res['ours']['failed']} / "
                     f"{res['nchan']['failed']}")
            self.row(sc, "RSS per subscriber vs OpenSSL floor", o, f,
                     1.1 if floor_ratio is not None and floor_ratio > 0.5 else None,
                     "lower", "B", note="nchan column: bench/tlsfloor.c (a bare OpenSSL 3 "
                     f"server, idle sessions); floor/nchan {floor_ratio or 0:.2f}x")
            self.row(sc, "time to connect all", res["ours"]["connect_all_s"],
                     res["nchan"]["connect_all_s"], None, "lower", "s", "{:.2f}")

    def tlsfanout(self):
        ns = [1000] if self.quick else [1000, 10000]
        dur = 4.0 if self.quick else 6.0
        srvs = {k: self.make(k, 2, "-tfo", tls=True) for k in ("ours", "nchan")}
        try:
            for n in ns:
                rate = self.fanout_rate(n)
                count = max(10, int(rate * dur))
                res = self._fanout_rounds(srvs, n, rate, count, "tw-", "t", tls=True)
                self.data["tls_fanout"].append(res)
                o, c = res["ours"], res["nchan"]
                sc = f"5 TLS fan-out N={n} @{rate:g}/s"
                # a fixed offered load (as in 2.): both deliver all of it, msgs/s
                # is that load; 0.99 absorbs the clock noise of one run's window
                self.row(sc, "delivered msgs/s", o["msgs_per_s"], c["msgs_per_s"], 0.99,
                         "higher", note="fixed offered load: both deliver every message")
                self.row(sc, "latency p99", o["lat_us"]["p99"] / 1000,
                         c["lat_us"]["p99"] / 1000, 1.0, "lower", "ms", "{:.2f}")
                self.row(sc, "messages lost (all rounds)", o["lost_all_rounds"],
                         c["lost_all_rounds"], None, "lower", "", "{:.0f}",
                         f"must be 0; subscribers refused {o['failed_all_rounds']} / "
                         f"{c['failed_all_rounds']}",
                         ok=o["lost_all_rounds"] == 0 and o["failed_all_rounds"] == 0)
                self.row(sc, "server CPU per msg", o["cpu_us_per_msg"], c["cpu_us_per_msg"],
                         None, "lower", "us", "{:.2f}")
        finally:
            for s in srvs.values():
                s.stop()

    # ---- 6. long-polls waiting, plain and TLS
    def longpoll(self):
        n = self.n16(2000, 10000)
        for tls in (False, True):
            res = {}
            # over TLS also the floor: a bare OpenSSL server's idle session
            for kind in ("ours", "nchan") + (("floor",) if tls else ()):
                srv = self.make(kind, 2, "-lp", tls=tls)
                try:
                    res[kind] = self._idle_hold(srv, _url(srv, "/lp/lpidle{ch}", tls), n,
                                                "lp", "longpoll" + (" tls" if tls else ""))
                finally:
                    srv.stop()
            res["tls"] = tls
            self.data["longpoll"].append(res)
            o, c = res["ours"], res["nchan"]
            sc = f"6 long-poll idle N={n}" + (" over TLS" if tls else "")
            # the target: <= 0.5x nchan; over TLS <= 1.1x the floor instead when the
            # floor itself is above 0.5x nchan (the rule)
            floor_ratio = ratio(res["floor"]["rss_per_sub_b"], c["rss_per_sub_b"]) \
                if tls else None
            by_floor = floor_ratio is not None and floor_ratio > 0.5
            self.row(sc, "RSS per waiting long-poll", o["rss_per_sub_b"], c["rss_per_sub_b"],
                     None if by_floor else 0.5, "lower", "B",
                     note=f"waiting {o['ready']} / {c['ready']}; ours busy workers "
                     f"{o['busy_workers']}" + (f"; floor/nchan {floor_ratio:.2f}x: the "
                                               "target is the floor's (next row)"
                                               if by_floor else ""))
            if tls:
                self.row(sc, "RSS per waiting long-poll vs OpenSSL floor",
                         o["rss_per_sub_b"], res["floor"]["rss_per_sub_b"],
                         1.1 if by_floor else None, "lower", "B",
                         note="nchan column: bench/tlsfloor.c holding the same idle "
                         "TLS connections")

    # ---- 7. reconnect storm: N subscribers at once
    def storm(self):
        n = self.n16(2000, 10000)
        tck = os.sysconf("SC_CLK_TCK")
        for tls in (False, True):
            res = {}
            # static: httpd's own floor, the same storm against the same
            # server (modules, MPM settings) asking for a 6-byte static file
            # (core's default handler, keep-alive): accept, hand-off to a
            # worker, request parsing, hooks, answer; no mod_pushstream request
            for kind in ("ours", "nchan", "static"):
                srv = self.make(kind, 2, "-st", tls=tls)
                path, tr = ("/static.txt?c={ch}", "sse") if kind == "static" \
                    else ("/{tr}/storm{ch}", "mix")
                try:
                    time.sleep(1.0)
                    c0 = srv.cpu_ticks()
                    r = run_loadgen(["sub", "--url", _url(srv, path, tls),
                                     "--n", n, "--transport", tr, "--channels", 100,
                                     "--src-ips", 8, "--conc", n, "--connect-timeout", 120,
                                     "--hold", 0, "--timeout", 200], timeout=260)
                    cpu = (srv.cpu_ticks() - c0) / tck
                    res[kind] = {"n": n, "ready": r["ready"], "failed": r["failed"],
                                 "connect_all_s": r["connect_all_ms"] / 1000.0,
                                 "connect_p99_ms": r["connect_us"]["p99"] / 1000.0,
                                 "cpu_us_per_sub": cpu * 1e6 / n, "error": r["error"]}
                    log(f"  storm{' tls' if tls else ''} {kind:5} N={n}: {r['ready']}/{n} "
                        f"subscribed in {res[kind]['connect_all_s']:.2f}s (p99 "
                        f"{res[kind]['connect_p99_ms']:.0f} ms), server CPU "
                        f"{res[kind]['cpu_us_per_sub']:.0f} us/subscriber {r['error']}")
                finally:
                    srv.stop()
            res["tls"] = tls
            self.data["storm"].append(res)
            o, c = res["ours"], res["nchan"]
            sc = f"7 reconnect storm N={n} at once" + (" over TLS" if tls else "")
            self.row(sc, "time until all subscribed", o["connect_all_s"], c["connect_all_s"],
                     1.5, "lower", "s", "{:.2f}", note=f"subscribed {o['ready']} / "
                     f"{c['ready']}; failed {o['failed']} / {c['failed']}")
            self.row(sc, "server CPU per new subscriber", o["cpu_us_per_sub"],
                     c["cpu_us_per_sub"], None, "lower", "us", "{:.0f}",
                     note="what a client that reconnects (a long-poll answered with "
                     "Connection: close) costs per connection")
            # httpd's floor (the TLS floor's way): what httpd alone costs for
            # the same storm; above 1.5x nchan the time target is out of reach
            # of any httpd module
            f = res["static"]
            fr = ratio(f["connect_all_s"], c["connect_all_s"])
            self.row(sc, "httpd floor: time until all served a static file",
                     f["connect_all_s"], c["connect_all_s"], None, "lower", "s", "{:.2f}",
                     note="ours column: the same httpd serving a 6-byte file (no "
                     "mod_pushstream request); nchan column: nchan's subscribers"
                     + (f"; floor/nchan {fr:.2f}x > 1.5x: the time target is "
                        "unreachable inside httpd" if fr and fr > 1.5 else ""))
            self.row(sc, "httpd floor: server CPU per connection", f["cpu_us_per_sub"],
                     c["cpu_us_per_sub"], None, "lower", "us", "{:.0f}",
                     note="ours column: httpd serving the static file")
            self.row(sc, "time until all subscribed vs httpd floor", o["connect_all_s"],
                     f["connect_all_s"], None, "lower", "s", "{:.2f}",
                     note="nchan column: the httpd floor (what mod_pushstream adds "
                     "on top of httpd)")
            self.row(sc, "server CPU per new subscriber vs httpd floor",
                     o["cpu_us_per_sub"], f["cpu_us_per_sub"], None, "lower", "us",
                     "{:.0f}", note="nchan column: the httpd floor")


# ---------------------------------------------------------------- scenarios
class Bench(Bench16):
    def __init__(self, args):
        self.args = args
        self.out = args.out
        self.quick = args.quick
        self.rows = []          # the table
        self.data = {"idle": [], "fanout": [], "fanout_sat": [], "pubrate": [],
                     "tunnel": [], "cluster": [], "tls_idle": [], "tls_fanout": [],
                     "longpoll": [], "storm": []}
        self.work = pshttpd.work_root(os.path.join(self.out, "srv"))
        self.nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        # a loadgen process holds at most this many sockets
        self.per_proc = max(1000, self.nofile - 1000)
        # rounds of the noise-prone runs (interleaved, median reported): the
        # machine is shared, so one run can catch someone else's burst
        self.rounds = 1 if args.quick else 3
        # the fan-out latency rounds: p99 at N = 1 000 and 10 000 moved by
        # 0.8-1.1x between rounds of one server (130-210 ms at 10 000, the
        # 2 cores shared with the load generator): 5 rounds, plus one warm-up
        # round per N that is not counted (the first one after the idle
        # scenario's 50 000 closes ran slowest for both servers)
        self.fanout_rounds = 1 if args.quick else 5

    # ---- servers
    def procs_for(self, n):
        """Server processes (httpd children, nginx workers) for n connections:
        2 (production-like for 2 cores) unless the fd limit forces more."""
        cap = 0.6 * (self.nofile - 500)
        return max(2, math.ceil(n / cap))

    def make(self, kind, procs=2, tag="", tls=False):
        d = os.path.join(self.work, f"{kind}{tag}")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o755)
        if kind in ("ours", "static"):
            s = Ours(d, tls=tls)
            s.servers = procs
            if kind == "static":
                # httpd's floor: the same server, its DocumentRoot at the
                # harness's htdocs (static.txt, 6 bytes) for the storm
                s.extra_global += f"DocumentRoot {s._path('htdocs')}\n"
        elif kind == "floor":
            s = Floor(d, TLSFLOOR)
        else:
            s = Nchan(d, workers=procs, tls=tls)
        s.start()
        return s

    def row(self, scen, metric, ours, nchan, target=None, better="lower", unit="",
            fmt="{:.0f}", note="", ok=None):
        r = ratio(ours, nchan)
        if target is not None and r is not None:
            ok = r <= target if better == "lower" else r >= target
        self.rows.append({"scenario": scen, "metric": metric, "unit": unit, "ours": ours,
                          "nchan": nchan, "ratio": r, "target": target, "better": better,
                          "ok": ok, "fmt": fmt, "note": note})

    # ---- 1. idle capacity
    def idle(self):
        ns = [2000, 5000] if self.quick else [10000, 50000]
        if self.args.idle_n:
            ns = [int(x) for x in self.args.idle_n.split(",")]
        for n in ns:
            procs = self.procs_for(n)
            res = {}
            for kind in ("ours", "nchan"):
                srv = self.make(kind, procs)
                try:
                    time.sleep(1.0)
                    base = srv.rss_total_kb()
                    base_thr = srv.threads_total()
                    h = SubHolders(srv.url("/{tr}/idle{ch}"), n, self.per_proc,
                                   ["--transport", "mix", "--channels", 100, "--src-ips", 8,
                                    "--conc", 256, "--connect-timeout", 90])
                    try:
                        ready = h.wait_ready(120)
                        time.sleep(2.0)            # let both settle
                        rss = srv.rss_total_kb()
                        thr = srv.threads_total()
                        busy = srv.busy_workers()
                    finally:
                        final = h.stop()
                    got = sum(r["ready"] for r in ready)
                    failed = sum(r["failed"] for r in ready)
                    errors = [r["error"] for r in ready if r["error"]]
                    conn_s = max(r["connect_all_ms"] for r in ready) / 1000.0
                    closed = sum(f.get("closed", 0) for f in final)
                    res[kind] = {
                        "n": n, "procs": procs, "ready": got, "failed": failed,
                        "closed_during_hold": closed, "errors": errors[:3],
                        "rss_base_kb": base, "rss_kb": rss,
                        "rss_per_sub_b": (rss - base) * 1024 / got if got else None,
                        "connect_all_s": conn_s, "threads": thr, "threads_base": base_thr,
                        "busy_workers": busy}
                    log(f"  idle {kind:5} N={n}: ready {got}/{n} failed {failed} in "
                        f"{conn_s:.2f}s, RSS {base}->{rss} kB = "
                        f"{res[kind]['rss_per_sub_b'] or 0:.0f} B/sub, threads {thr}, "
                        f"busy {busy}")
                finally:
                    srv.stop()
            self.data["idle"].append(res)
            o, c = res["ours"], res["nchan"]
            sc = f"1 idle N={n}"
            self.row(sc, "RSS per subscriber", o["rss_per_sub_b"], c["rss_per_sub_b"],
                     1.0, "lower", "B")
            self.row(sc, "time to connect all", o["connect_all_s"], c["connect_all_s"],
                     None, "lower", "s", "{:.2f}")
            self.row(sc, "subscribed / failed", o["ready"], c["ready"], None, "higher", "",
                     "{:.0f}", f"failed {o['failed']} / {c['failed']}")
            self.row(sc, "threads (busy workers)", o["threads"], c["threads"], None, "lower",
                     "", "{:.0f}", f"ours busy {o['busy_workers']}; {procs} procs each")

    # ---- 2. fan-out
    def fanout_rate(self, n):
        # a fixed offered delivery load of ~20 000 msgs/s: both keep up on 2 cores,
        # so latency compares servers, not queues
        return min(200.0, max(1.0, 20000.0 / n))

    def fanout(self):
        ns = [100, 1000] if self.quick else [100, 1000, 10000]
        dur = 4.0 if self.quick else 6.0
        srvs = {k: self.make(k, 2, "-fo") for k in ("ours", "nchan")}
        try:
            for n in ns:
                rate = self.fanout_rate(n)
                count = max(10, int(rate * dur))
                res = self._fanout_rounds(srvs, n, rate, count, "w-", "r")
                self.data["fanout"].append(res)
                o, c = res["ours"], res["nchan"]
                sc = f"2 fan-out N={n} @{rate:g}/s"
                self.row(sc, "delivered msgs/s", o["msgs_per_s"], c["msgs_per_s"], 0.99,
                         "higher")
                self.row(sc, "latency p50", o["lat_us"]["p50"] / 1000,
                         c["lat_us"]["p50"] / 1000, None, "lower", "ms", "{:.2f}")
                self.row(sc, "latency p99", o["lat_us"]["p99"] / 1000,
                         c["lat_us"]["p99"] / 1000, 1.0, "lower", "ms", "{:.2f}")
                self.row(sc, "latency max", o["lat_us"]["max"] / 1000,
                         c["lat_us"]["max"] / 1000, None, "lower", "ms", "{:.2f}")
                self.row(sc, "messages lost (all rounds)", o["lost_all_rounds"],
                         c["lost_all_rounds"], None, "lower", "", "{:.0f}",
                         f"must be 0; subscribers refused {o['failed_all_rounds']} / "
                         f"{c['failed_all_rounds']}")
                self.row(sc, "server CPU per msg", o["cpu_us_per_msg"], c["cpu_us_per_msg"],
                         None, "lower", "us", "{:.2f}")
            # saturation: offered far above what 2 cores deliver
            n = 1000
            rate = 300.0
            count = int(rate * (2.0 if self.quick else 3.0))
            runs = interleaved(srvs, self.rounds,
                               lambda kind, i: self._fanout_one(srvs[kind], kind, n, rate,
                                                                count, tag=f"sat{i}-"))
            res = summarise_rounds(runs, lambda r: r["msgs_per_s"],
                                   (("lost_all_rounds", "lost"),))
            self.data["fanout_sat"].append(res)
            o, c = res["ours"], res["nchan"]
            sc = f"2 fan-out N={n} saturated (offered {rate * n / 1000:g}k/s)"
            self.row(sc, "delivered msgs/s", o["msgs_per_s"], c["msgs_per_s"], 1.0, "higher")
            self.row(sc, "latency p99", o["lat_us"]["p99"] / 1000, c["lat_us"]["p99"] / 1000,
                     None, "lower", "ms", "{:.1f}",
                     f"publishes late >10 ms: {o['pub_late']} / {c['pub_late']} of {count}")
            self.row(sc, "messages lost (all rounds)", o["lost_all_rounds"],
                     c["lost_all_rounds"], None, "lower", "", "{:.0f}", "must be 0")
            self.row(sc, "server CPU per msg", o["cpu_us_per_msg"], c["cpu_us_per_msg"],
                     None, "lower", "us", "{:.2f}")
        finally:
            for s in srvs.values():
                s.stop()

    def _fanout_rounds(self, srvs, n, rate, count, warm_tag, tag, tls=False):
        """The fan-out rounds of one N (a warm-up first in full runs), summarised
        per kind by the median p99."""
        if not self.quick:
            for kind in srvs:            # warm-up, not counted
                self._fanout_one(srvs[kind], kind, n, rate, max(10, count // 3),
                                 tag=warm_tag, tls=tls)
        runs = interleaved(srvs, self.fanout_rounds,
                           lambda kind, i: self._fanout_one(srvs[kind], kind, n, rate, count,
                                                            tag=f"{tag}{i}-", tls=tls))
        return summarise_rounds(runs, lambda r: r["lat_us"]["p99"])

    def _fanout_one(self, srv, kind, n, rate, count, tag="", tls=False):
        """One loadgen fanout run on a fresh channel (tls: subscribers over TLS;
        the publisher stays on plain HTTP)."""
        ch = f"fo{tag}{n}"
        r = run_fanout([_url(srv, f"/{{tr}}/{ch}", tls)], srv.url(f"/pub?id={ch}"), n,
                       rate, count, srv.cpu_ticks)
        cpu = r["server_cpu_s"]
        log(f"  fanout {kind:5} N={n} rate={rate:g}: {r['received']}/{r['expected']} "
            f"lost {r['lost']} {r['msgs_per_s']:.0f} msg/s p50 {r['lat_us']['p50']}us "
            f"p99 {r['lat_us']['p99']}us max {r['lat_us']['max']}us "
            f"cpu {cpu:.2f}s pub_late {r['pub_late']} {r['error']}")
        return r

    # ---- 3. publish rate
    def pubrate(self):
        dur = 4 if self.quick else 8
        res = {}
        for kind in ("ours", "nchan"):
            srv = self.make(kind, 2, "-pr")
            try:
                tck = os.sysconf("SC_CLK_TCK")
                c0 = srv.cpu_ticks()
                r = run_wrk(srv.url("/pub"), dur)
                r["cpu_us_per_req"] = ((srv.cpu_ticks() - c0) / tck * 1e6 / r["requests"]
                                       if r["requests"] else None)
                if kind == "ours":
                    # the same POSTs on /pub's publisher port, served by the
                    # children's event loops instead of httpd's workers
                    c0 = srv.cpu_ticks()
                    p = run_wrk(srv.pubport_url("/pub"), dur)
                    r["port"] = {k: p[k] for k in ("rps", "requests", "p50_ms", "p99_ms",
                                                   "non2xx", "errors")}
                    r["port"]["cpu_us_per_req"] = (
                        (srv.cpu_ticks() - c0) / tck * 1e6 / p["requests"]
                        if p["requests"] else None)
                    log(f"  pubrate ours port: {p['rps']:.0f} req/s p99 {p['p99_ms']} ms, "
                        f"{r['port']['cpu_us_per_req'] or 0:.1f} us CPU/req, non-2xx "
                        f"{p['non2xx']}, errors {p['errors']}")
                # reference: the server's own minimal status handler, same load
                ref = "/server-status?auto" if kind == "ours" else "/nchan_status"
                c0 = srv.cpu_ticks()
                rr = run_wrk(srv.url(ref), max(2, dur // 2), lua=False)
                r["ref_path"] = ref
                r["ref_rps"] = rr["rps"]
                r["ref_cpu_us_per_req"] = ((srv.cpu_ticks() - c0) / tck * 1e6 / rr["requests"]
                                           if rr["requests"] else None)
                # and the server's static file handler: Debian's default page,
                # the same file from both (the DocumentRoot of each)
                r["static_rps"] = (run_wrk(srv.url(STATIC_PAGE), max(2, dur // 2),
                                           lua=False)["rps"]
                                   if os.path.exists(STATIC_FILE) else None)
                res[kind] = r
                log(f"  pubrate {kind:5}: {r['rps']:.0f} req/s p99 {r['p99_ms']} ms, "
                    f"{r['cpu_us_per_req'] or 0:.1f} us CPU/req, non-2xx {r['non2xx']}, "
                    f"errors {r['errors']}; reference {ref}: {r['ref_rps']:.0f} req/s "
                    f"{r['ref_cpu_us_per_req'] or 0:.1f} us CPU/req; static "
                    f"{STATIC_PAGE}: {r['static_rps'] or 0:.0f} req/s")
            finally:
                srv.stop()
        self.data["pubrate"].append(res)
        o, c = res["ours"], res["nchan"]
        op = o["port"]
        sc = "3 publish rate, publisher port (1000 channels, 32 keep-alive conns)"
        self.row(sc, "requests/s", op["rps"], c["rps"], 1.0, "higher",
                 note="PushStreamPublisherListen: the children's event loops serve "
                 "/pub's POSTs (nchan: its location, served by nginx's event loop)")
        self.row(sc, "latency p99", op["p99_ms"], c["p99_ms"], None, "lower", "ms", "{:.2f}")
        self.row(sc, "non-2xx answers", op["non2xx"], c["non2xx"], None, "lower", "",
                 "{:.0f}", f"wrk socket errors {op['errors']} / {c['errors']}")
        self.row(sc, "server CPU per request", op["cpu_us_per_req"], c["cpu_us_per_req"],
                 None, "lower", "us", "{:.1f}")
        sc = "3 publish rate, <Location /pub> (httpd's request path)"
        self.row(sc, "requests/s", o["rps"], c["rps"], None, "higher",
                 note="the same POSTs through httpd's worker threads")
        self.row(sc, "latency p99", o["p99_ms"], c["p99_ms"], None, "lower", "ms", "{:.2f}")
        self.row(sc, "non-2xx answers", o["non2xx"], c["non2xx"], None, "lower", "",
                 "{:.0f}", f"wrk socket errors {o['errors']} / {c['errors']} (resets when "
                 "a connection ends at MaxKeepAliveRequests / keepalive_requests 1000)")
        self.row(sc, "server CPU per request", o["cpu_us_per_req"], c["cpu_us_per_req"],
                 None, "lower", "us", "{:.1f}")
        self.row("3 reference: status handler, same wrk load", "requests/s", o["ref_rps"],
                 c["ref_rps"], None, "higher", note="httpd server-status?auto vs "
                 "nchan_stub_status: the servers' own request-path ceilings")
        if o["static_rps"] and c["static_rps"]:
            self.row("3 reference: static file, same wrk load", "requests/s",
                     o["static_rps"], c["static_rps"], None, "higher",
                     note=f"{STATIC_FILE} ({os.path.getsize(STATIC_FILE)} B) by httpd's "
                     "core handler vs nginx's static module")

    # ---- 5. several servers on one Redis
    def cluster(self):
        """2 httpd (PushStreamRedis) vs 2 nginx + nchan (nchan_redis_pass), the
        same redis-server: subscribers spread over both nodes, publishes to
        the first; then the publish rate on the first node."""
        ns = [1000] if self.quick else [1000, 10000]
        dur = 4.0 if self.quick else 6.0
        rd = servers.Redis(os.path.join(self.work, "redis")).start()
        nodes = {}
        try:
            for kind in ("ours", "nchan"):
                pair = []
                for i in (1, 2):
                    d = os.path.join(self.work, f"{kind}-cl{i}")
                    shutil.rmtree(d, ignore_errors=True)
                    os.makedirs(d, exist_ok=True)
                    os.chmod(d, 0o755)
                    if kind == "ours":
                        srv = Ours(d, redis_url=rd.url())
                        srv.servers = 2
                    else:
                        srv = Nchan(d, workers=2, redis_url=rd.url())
                    srv.start()
                    pair.append(srv)
                nodes[kind] = pair
            out = {"fanout": [], "pubrate": {}}
            for n in ns:
                rate = self.fanout_rate(n)
                count = max(10, int(rate * dur))
                runs = interleaved(("ours", "nchan"), self.rounds,
                                   lambda kind, i: self._cluster_fanout(nodes[kind], rd, kind,
                                                                        n, rate, count,
                                                                        f"r{i}-"))
                res = summarise_rounds(runs, lambda r: r["lat_us"]["p99"],
                                       (("lost_all_rounds", "lost"),
                                        ("dup_all_rounds", "dups"),
                                        ("failed_all_rounds", "failed")))
                out["fanout"].append(res)
                o, c = res["ours"], res["nchan"]
                sc = f"5 two nodes + Redis: fan-out N={n} @{rate:g}/s"
                # the offered load bounds msgs/s (as in scenario 2): 0.99
                self.row(sc, "delivered msgs/s", o["msgs_per_s"], c["msgs_per_s"], 0.99,
                         "higher", note="subscribers half on each node, publishes to node 1")
                self.row(sc, "latency p99", o["lat_us"]["p99"] / 1000,
                         c["lat_us"]["p99"] / 1000, 1.0, "lower", "ms", "{:.2f}")
                self.row(sc, "messages lost (all rounds)", o["lost_all_rounds"],
                         c["lost_all_rounds"], None, "lower", "", "{:.0f}",
                         f"must be 0; duplicates {o['dup_all_rounds']} / "
                         f"{c['dup_all_rounds']}; subscribers refused "
                         f"{o['failed_all_rounds']} / {c['failed_all_rounds']}")
                self.row(sc, "server CPU per msg (2 nodes + Redis)", o["cpu_us_per_msg"],
                         c["cpu_us_per_msg"], None, "lower", "us", "{:.2f}")
            dur_w = 4 if self.quick else 8
            for kind in ("ours", "nchan"):
                a = nodes[kind][0]
                r = run_wrk(a.url("/pub"), dur_w)
                if kind == "ours":
                    p = run_wrk(a.pubport_url("/pub"), dur_w)
                    r["port"] = {k: p[k] for k in ("rps", "requests", "p50_ms", "p99_ms",
                                                   "non2xx", "errors")}
                out["pubrate"][kind] = r
                log(f"  cluster pubrate {kind:5}: {r['rps']:.0f} req/s p99 {r['p99_ms']} ms "
                    f"non-2xx {r['non2xx']}"
                    + (f"; port {r['port']['rps']:.0f} req/s p99 {r['port']['p99_ms']} ms "
                       f"non-2xx {r['port']['non2xx']}" if "port" in r else ""))
            o, c = out["pubrate"]["ours"], out["pubrate"]["nchan"]
            sc = "5 two nodes + Redis: publish rate on node 1 (1000 channels)"
            self.row(sc, "requests/s, publisher port", o["port"]["rps"], c["rps"], 1.0,
                     "higher", note="ours: PushStreamPublisherListen; one Lua script "
                     "(EVALSHA) per publish")
            self.row(sc, "requests/s, <Location /pub>", o["rps"], c["rps"], None, "higher")
            self.row(sc, "latency p99 (port)", o["port"]["p99_ms"], c["p99_ms"], None,
                     "lower", "ms", "{:.2f}")
            self.row(sc, "non-2xx answers (port / location)", o["port"]["non2xx"],
                     c["non2xx"], None, "lower", "", "{:.0f}",
                     f"location {o['non2xx']}")
            self.data["cluster"].append(out)
        finally:
            for pair in nodes.values():
                for srv in pair:
                    srv.stop()
            rd.stop()

    def _cluster_fanout(self, pair, rd, kind, n, rate, count, tag):
        ch = f"cl{tag}{n}"
        r = run_fanout([s.url(f"/{{tr}}/{ch}") for s in pair], pair[0].url(f"/pub?id={ch}"),
                       n, rate, count,
                       lambda: sum(s.cpu_ticks() for s in pair) + rd.cpu_ticks())
        cpu = r["server_cpu_s"]
        log(f"  cluster {kind:5} N={n} rate={rate:g}: {r['received']}/{r['expected']} "
            f"lost {r['lost']} dup {r.get('dups')} {r['msgs_per_s']:.0f} msg/s "
            f"p50 {r['lat_us']['p50']}us p99 {r['lat_us']['p99']}us cpu {cpu:.2f}s "
            f"{r['error']}")
        return r

    # ---- 4. tunnel
    def tunnel(self):
        dur = 3.0 if self.quick else 4.0
        idle_n = 200 if self.quick else 1000
        echod = subprocess.Popen([LOADGEN, "echod", "--port", "0", "--stdin",
                                  "--timeout", "900"], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
        srvs = {}
        try:
            port = json.loads(echod.stdout.readline())["port"]
            backend = f"ws://127.0.0.1:{port}/"
            conf = f"""
<Location /t/>
    ProxyPass {backend}
    ProxyPassReverse {backend}
</Location>
"""
            ours_ok, ours_why = wstunnel_usable()
            variants = {"mod_pushstream_wstunnel":
                        ["proxy", f"LoadModule pushstream_wstunnel_module {WT_SO}"],
                        "mod_proxy_wstunnel": ["proxy", "proxy_http", "proxy_wstunnel"]}
            if not ours_ok:
                del variants["mod_pushstream_wstunnel"]
            urls = {"direct": backend + "echo"}
            for name, mods in variants.items():
                d = os.path.join(self.work, "tun-" + name)
                shutil.rmtree(d, ignore_errors=True)
                srvs[name] = Ours(d, push=False, conf_body=conf, modules=mods, label=name)
                srvs[name].start()
                urls[name] = f"ws://127.0.0.1:{srvs[name].port}/t/echo"
            runs = {k: [] for k in urls}
            tck = os.sysconf("SC_CLK_TCK")
            for i in range(self.rounds):
                for name in (list(urls) if i % 2 == 0 else list(urls)[::-1]):
                    if name == "mod_pushstream_wstunnel" and not ours_ok:
                        continue
                    srv = srvs.get(name)
                    c0 = srv.cpu_ticks() if srv else 0
                    r = run_loadgen(["echo", "--url", urls[name], "--conns", 32,
                                     "--duration", dur, "--timeout", 60], timeout=90)
                    if r["echoes"] == 0 or r["ready"] == 0:
                        why = f"{name} did not echo: {r['error'] or 'no echo'}"
                        log(f"  tunnel {why}")
                        if name == "mod_pushstream_wstunnel":
                            ours_ok, ours_why = False, why
                        continue
                    r["cpu_us_per_msg"] = ((srv.cpu_ticks() - c0) / tck * 1e6 / r["echoes"]
                                           if srv else None)
                    runs[name].append(r)
                    log(f"  tunnel {name} round {i + 1}: {r['msgs_per_s']:.0f} msg/s p99 "
                        f"{r['lat_us']['p99'] / 1000:.2f} ms"
                        + (f", server {r['cpu_us_per_msg']:.1f} us CPU/msg" if srv else ""))
            res = {}
            for name, rs in runs.items():
                if not rs:
                    continue
                r = median_run(rs, lambda x: x["msgs_per_s"])
                entry = {"msgs_per_s": r["msgs_per_s"], "p50_ms": r["lat_us"]["p50"] / 1000,
                         "p99_ms": r["lat_us"]["p99"] / 1000,
                         "cpu_us_per_msg": r["cpu_us_per_msg"],
                         "rounds": [{"msgs_per_s": x["msgs_per_s"],
                                     "p99_us": x["lat_us"]["p99"],
                                     "cpu_us_per_msg": x["cpu_us_per_msg"]} for x in rs]}
                srv = srvs.get(name)
                if srv:
                    entry.update(self._idle_tunnels(srv, urls[name], idle_n))
                res[name] = entry
            res["ours_note"] = None if ours_ok else ours_why
            self.data["tunnel"].append(res)
            stock = res["mod_proxy_wstunnel"]
            ours = res.get("mod_pushstream_wstunnel")
            sc = "4 tunnel (WS echo, 32 conns) vs mod_proxy_wstunnel"
            if ours:
                self.row(sc, "messages/s", ours["msgs_per_s"], stock["msgs_per_s"], 1.0,
                         "higher", note=f"direct {res['direct']['msgs_per_s']:.0f}")
                self.row(sc, "latency p99", ours["p99_ms"], stock["p99_ms"], None, "lower",
                         "ms", "{:.2f}", f"direct {res['direct']['p99_ms']:.2f}")
                self.row(sc, "server CPU per message", ours["cpu_us_per_msg"],
                         stock["cpu_us_per_msg"], None, "lower", "us", "{:.1f}")
                # issue 16: <= 12 KB per idle tunnel (they leave httpd), 0 busy workers
                self.row(sc, f"RSS per idle tunnel ({idle_n} asked)",
                         ours["rss_per_tunnel_b"], stock["rss_per_tunnel_b"], None, "lower",
                         "B", note=f"target ours <= 12 KB with 0 busy workers; held "
                         f"{ours['idle_ready']} / {stock['idle_ready']}; "
                         f"busy workers {ours['busy_workers']} / {stock['busy_workers']}",
                         ok=(ours["rss_per_tunnel_b"] is not None
                             and ours["rss_per_tunnel_b"] <= 12 * 1024
                             and ours["busy_workers"] == 0
                             and ours["idle_ready"] == idle_n))
            else:
                self.row(sc, "messages/s (stock only)", None, stock["msgs_per_s"],
                         note=ours_why)
        finally:
            for srv in srvs.values():
                srv.stop()
            try:
                echod.stdin.close()
                echod.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                echod.kill()

    def _idle_tunnels(self, srv, url, idle_n):
        """RSS per idle tunnel: idle_n WebSocket connections held open."""
        time.sleep(0.5)
        base = srv.rss_total_kb()
        h = SubHolders(url, idle_n, self.per_proc,
                       ["--transport", "ws", "--conc", 64, "--connect-timeout", 10])
        try:
            ready = h.wait_ready(30)
            time.sleep(1.5)
            rss = srv.rss_total_kb()
            busy = srv.busy_workers()
            if busy is None:
                busy = "all (server-status got no worker)"
        finally:
            h.stop()
        got = sum(x["ready"] for x in ready)
        log(f"  tunnel {srv.name}: {got}/{idle_n} idle tunnels held, RSS {base}->{rss} kB, "
            f"busy workers {busy}")
        return {"idle_n": idle_n, "idle_ready": got, "busy_workers": busy,
                "rss_base_kb": base, "rss_kb": rss,
                "rss_per_tunnel_b": (rss - base) * 1024 / got if got else None}


def wstunnel_usable():
    """(False, why) when .build/mod_pushstream_wstunnel.so is missing; whether it
    proxies is seen from its echo run (tunnel())."""
    if not os.path.exists(WT_SO):
        return False, "mod_pushstream_wstunnel.so not built"
    return True, ""


# Debian's default page (package apache2), for the static-file reference row.
STATIC_FILE = "/var/www/html/index.html"
STATIC_PAGE = "/index.html"


def run_wrk(url, dur, lua=True):
    """wrk, 2 threads, 32 keep-alive connections; with lua: bench/pub.lua POSTs."""
    args = ["wrk", "-t2", "-c32", f"-d{dur}s", "--latency"]
    if lua:
        args += ["-s", os.path.join(HERE, "pub.lua")]
    p = subprocess.run(args + [url], capture_output=True, text=True, timeout=dur + 60)
    out = p.stdout

    def num(pat, default=0.0):
        m = re.search(pat, out)
        return float(m.group(1)) if m else default

    def lat(pct):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return None
        v = float(m.group(1))
        return v / 1000 if m.group(2) == "us" else (v * 1000 if m.group(2) == "s" else v)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                     out)
    return {"rps": num(r"Requests/sec:\s+([\d.]+)"),
            "requests": int(num(r"(\d+) requests in")),
            "p50_ms": lat(50), "p99_ms": lat(99),
            "non2xx": int(num(r"Non-2xx or 3xx responses: (\d+)")),
            "errors": sum(int(x) for x in errs.groups()) if errs else 0,
            "raw": out}


# ------------------------------------------------------------------ report
def fmt_val(v, f):
    if v is None:
        return "-"
    return f.format(v)


def table(rows):
    hdr = ["scenario", "metric", "ours", "nchan", "ours/nchan", "target", "met", "note"]
    lines = []
    for r in rows:
        unit = f" {r['unit']}" if r["unit"] else ""
        tgt = ""
        if r["target"] is not None:
            tgt = ("<= " if r["better"] == "lower" else ">= ") + f"{r['target']:.2f}x"
        met = "" if r["ok"] is None else ("yes" if r["ok"] else "NO")
        lines.append([r["scenario"], r["metric"] + (f" ({r['unit']})" if unit else ""),
                      fmt_val(r["ours"], r["fmt"]), fmt_val(r["nchan"], r["fmt"]),
                      "-" if r["ratio"] is None else f"{r['ratio']:.2f}x", tgt, met,
                      r["note"]])
    w = [max(len(hdr[i]), *(len(l[i]) for l in lines)) if lines else len(hdr[i])
         for i in range(len(hdr))]
    txt = ["  ".join(h.ljust(w[i]) for i, h in enumerate(hdr)),
           "  ".join("-" * w[i] for i in range(len(hdr)))]
    for l in lines:
        txt.append("  ".join(c.ljust(w[i]) for i, c in enumerate(l)).rstrip())
    md = ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
    for l in lines:
        md.append("| " + " | ".join(c.replace("|", "/") for c in l) + " |")
    return "\n".join(txt), "\n".join(md)


def plot(data, out_png, work):
    """gnuplot: fan-out latency and throughput by subscriber count, idle RSS,
    publish rate and tunnel throughput."""
    if not shutil.which("gnuplot"):
        return "gnuplot missing"
    fo = os.path.join(work, "fanout.dat")
    with open(fo, "w") as f:
        f.write("# N ours_p50 ours_p99 nchan_p50 nchan_p99 ours_mps nchan_mps ours_max "
                "nchan_max\n")
        for r in data["fanout"]:
            o, c = r["ours"], r["nchan"]
            f.write(f"{o['n']} {o['lat_us']['p50'] / 1000} {o['lat_us']['p99'] / 1000} "
                    f"{c['lat_us']['p50'] / 1000} {c['lat_us']['p99'] / 1000} "
                    f"{o['msgs_per_s']} {c['msgs_per_s']} {o['lat_us']['max'] / 1000} "
                    f"{c['lat_us']['max'] / 1000}\n")
    idle = os.path.join(work, "idle.dat")
    with open(idle, "w") as f:
        f.write("# N ours_B nchan_B ours_connect_s nchan_connect_s\n")
        for r in data["idle"]:
            o, c = r["ours"], r["nchan"]
            f.write(f"{o['n']} {o['rss_per_sub_b'] or 0} {c['rss_per_sub_b'] or 0} "
                    f"{o['connect_all_s']} {c['connect_all_s']}\n")
    bars = os.path.join(work, "bars.dat")
    with open(bars, "w") as f:
        f.write("# label value\n")
        for r in data["fanout_sat"]:
            f.write(f"\"fan-out sat.\\nours (k msg/s)\" {r['ours']['msgs_per_s'] / 1000}\n")
            f.write(f"\"fan-out sat.\\nnchan (k msg/s)\" {r['nchan']['msgs_per_s'] / 1000}\n")
        for r in data["pubrate"]:
            if "port" in r["ours"]:
                f.write(f"\"publish\\nours port (k req/s)\" "
                        f"{r['ours']['port']['rps'] / 1000}\n")
            f.write(f"\"publish\\nours httpd (k req/s)\" {r['ours']['rps'] / 1000}\n")
            f.write(f"\"publish\\nnchan (k req/s)\" {r['nchan']['rps'] / 1000}\n")
        for r in data["tunnel"]:
            for k, lbl in (("mod_pushstream_wstunnel", "tunnel\\nours"),
                           ("mod_proxy_wstunnel", "tunnel\\nstock"),
                           ("direct", "tunnel\\ndirect")):
                if k in r and isinstance(r[k], dict):
                    f.write(f"\"{lbl} (k msg/s)\" {r[k]['msgs_per_s'] / 1000}\n")
    # issue 16: idle RSS per connection of the production paths, storm times
    b16 = os.path.join(work, "bars16.dat")
    with open(b16, "w") as f:
        f.write("# label KB\n")
        for r in data["tls_idle"]:
            for k in ("ours", "nchan", "floor"):
                f.write(f"\"TLS stream\\n{k}\" {(r[k]['rss_per_sub_b'] or 0) / 1024}\n")
        for r in data["longpoll"]:
            t = "TLS " if r["tls"] else ""
            for k in ("ours", "nchan"):
                f.write(f"\"{t}long-poll\\n{k}\" {(r[k]['rss_per_sub_b'] or 0) / 1024}\n")
    st16 = os.path.join(work, "storm16.dat")
    with open(st16, "w") as f:
        f.write("# label seconds\n")
        for r in data["storm"]:
            t = "TLS " if r["tls"] else ""
            for k in ("ours", "nchan", "static"):
                if k in r:      # static: httpd's floor
                    lbl = "httpd floor" if k == "static" else k
                    f.write(f"\"{t}storm N={r[k]['n']}\\n{lbl}\" {r[k]['connect_all_s']}\n")

    def panel(title, xlabel, ylabel, plots, have, logx=False, logy=False, extra=""):
        lines = [f'set title "{title}"', f'set xlabel "{xlabel}"', f'set ylabel "{ylabel}"',
                 "set logscale x" if logx else "unset logscale x",
                 "set logscale y" if logy else "unset logscale y",
                 "set autoscale", "set key top left", extra]
        if not have:
            lines += ["unset logscale", "set xrange [0:1]", "set yrange [0:1]",
                      'set label 9 "not run" at 0.5,0.5 center', "plot NaN notitle",
                      "unset label 9", "set autoscale"]
        else:
            lines.append("plot " + ", \\\n     ".join(plots))
        return "\n".join(lines) + "\n"

    has_fo, has_idle = bool(data["fanout"]), bool(data["idle"])
    has_bars = bool(data["fanout_sat"] or data["pubrate"] or data["tunnel"])
    gp = os.path.join(work, "bench.gp")
    with open(gp, "w") as f:
        f.write(f"""set terminal pngcairo noenhanced size 1400,1500 font ",10"
set output "{out_png}"
set multiplot layout 3,2 title "mod_pushstream (httpd event MPM) vs nginx + nchan, loopback"
set grid
""")
        f.write(panel("fan-out latency (fixed offered load, one channel)",
                      "subscribers", "publish -> receive latency (ms)",
                      [f'"{fo}" using 1:2 with linespoints lw 2 title "ours p50"',
                       f'"{fo}" using 1:3 with linespoints lw 2 title "ours p99"',
                       f'"{fo}" using 1:4 with linespoints lw 2 dt 2 title "nchan p50"',
                       f'"{fo}" using 1:5 with linespoints lw 2 dt 2 title "nchan p99"'],
                      has_fo, logx=True, logy=True))
        f.write(panel("fan-out throughput (fixed offered load)", "subscribers",
                      "delivered messages/s",
                      [f'"{fo}" using 1:6 with linespoints lw 2 title "ours"',
                       f'"{fo}" using 1:7 with linespoints lw 2 dt 2 title "nchan"'],
                      has_fo, logx=True, extra="set yrange [0:*]"))
        f.write(panel("idle capacity: server RSS per subscriber", "idle subscribers (WS + SSE)",
                      "bytes per subscriber",
                      [f'"{idle}" using 1:2 with linespoints lw 2 title "ours"',
                       f'"{idle}" using 1:3 with linespoints lw 2 dt 2 title "nchan"'],
                      has_idle, logx=True, extra="set yrange [0:*]"))
        f.write(panel("saturated fan-out, publish rate, WebSocket tunnel", "",
                      "thousands per second",
                      [f'"{bars}" using 0:2:xtic(1) with boxes notitle'],
                      has_bars, extra='set yrange [0:*]\nset style fill solid 0.6\n'
                      'set boxwidth 0.6\nset xtics rotate by -30 font ",8"'))
        bars = 'set yrange [0:*]\nset style fill solid 0.6\nset boxwidth 0.6\n' \
               'set xtics rotate by -30 font ",8"'
        f.write(panel("production paths: idle RSS per connection (tlsfloor = bare OpenSSL)",
                      "", "KB per connection",
                      [f'"{b16}" using 0:2:xtic(1) with boxes notitle'],
                      bool(data["tls_idle"] or data["longpoll"]), extra=bars))
        f.write(panel("reconnect storm: N subscribers at once, time until all subscribed",
                      "", "seconds", [f'"{st16}" using 0:2:xtic(1) with boxes notitle'],
                      bool(data["storm"]), extra=bars))
        f.write("unset multiplot\n")
    p = subprocess.run(["gnuplot", gp], capture_output=True, text=True)
    return p.stderr.strip() or None


# ------------------------------------------------------------------ main
def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small N, short runs")
    ap.add_argument("--only",
                    default="idle,fanout,pubrate,tunnel,cluster,tls,tlsfanout,longpoll,storm")
    ap.add_argument("--n16", type=int, default=0,
                    help="N of the tls, longpoll and storm scenarios (default 10000)")
    ap.add_argument("--idle-n", default="", help="idle subscriber counts, e.g. 10000,50000")
    ap.add_argument("--ours-so", default="",
                    help="mod_pushstream.so to load instead of .build/'s (e.g. a patched build)")
    ap.add_argument("--out", default=os.path.join(ROOT, ".build", "bench"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    os.chmod(args.out, 0o755)
    if not os.access(LOADGEN, os.X_OK):
        sys.exit(f"{LOADGEN} missing: run `make bench` (or `make loadgen`)")
    if args.ours_so:
        pshttpd.env.PUSHSTREAM_SO = os.path.abspath(args.ours_so)
    hard = raise_nofile(131072)
    t0 = time.time()
    info = machine_info()
    b = Bench(args)
    info["ours"] = Ours(os.path.join(b.work, "v")).version()
    info["nchan"] = Nchan(os.path.join(b.work, "v")).version()
    log(f"machine: {info['nproc']} CPUs ({info['cpu']}), {info['ram_gb']} GB RAM, "
        f"kernel {info['kernel']}, {info['os']}, load {' '.join(info['loadavg_start'])}, "
        f"ulimit -n {hard}")
    info["ours_so"] = pshttpd.env.PUSHSTREAM_SO
    log(f"servers: {info['ours']} + mod_pushstream ({pshttpd.env.PUSHSTREAM_SO}) vs {info['nchan']}")
    only = args.only.split(",")
    for name in ("idle", "fanout", "pubrate", "tunnel", "cluster", "tls", "tlsfanout",
                 "longpoll", "storm"):
        if name in only:
            log(f"== {name}")
            t = time.time()
            getattr(b, name)()
            log(f"   ({time.time() - t:.0f} s)")
    info["elapsed_s"] = round(time.time() - t0)
    info["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    txt, md = table(b.rows)
    png = os.path.join(args.out, "bench.png")
    err = plot(b.data, png, args.out)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"machine": info, "rows": b.rows, "data": b.data}, f, indent=1,
                  default=str)
    mach = (f"{info['nproc']} CPUs ({info['cpu']}), {info['ram_gb']} GB RAM, kernel "
            f"{info['kernel']}, {info['os']}; load average {' '.join(info['loadavg_start'])}"
            f" at start, {' '.join(info['loadavg_end'])} at end; ulimit -n {hard}; "
            f"{info['date']}; {info['elapsed_s']} s")
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(f"Machine: {mach}\n\nServers: {info['ours']} + mod_pushstream "
                f"({info['ours_so']}, event MPM) vs {info['nchan']}\n\n{md}\n")
    log("")
    log(txt)
    log("")
    log(f"machine: {mach}")
    log(f"results: {args.out}/results.md, results.json; plot: {png}"
        + (f" (gnuplot: {err})" if err else ""))
    missed = [r for r in b.rows if r["ok"] is False]
    log(f"targets: {sum(1 for r in b.rows if r['ok'])} met, {len(missed)} missed")
    for r in missed:
        log(f"  missed: {r['scenario']} / {r['metric']}: {r['ratio']:.2f}x")
    if missed:
        sys.exit(1)     # a missed target fails `make bench`


if __name__ == "__main__":
    main()
