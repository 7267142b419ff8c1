"""Proves the harness itself: no mod_pushstream needed."""
import os
import re
import signal
import ssl
import time
import urllib.request

from pyhttpd import httpd as pshttpd
from pyhttpd.client import wait_for


def get(url, **kw):
    with urllib.request.urlopen(url, timeout=5, **kw) as r:
        return r.status, r.read()


def test_static_children_and_stop(httpd):
    srv = httpd(load_pushstream=False)
    assert get(srv.url("/static.txt")) == (200, b"hello\n")
    parent, kids = srv.parent_pid(), srv.child_pids()
    assert len(kids) == 2  # StartServers 2, event MPM
    assert set(srv.rss_kb()) == {parent, *kids}
    # httpd logs a request after its response went out: the line may lag it
    line = rf"^127\.0\.0\.1 ({kids[0]}|{kids[1]}) 200 "
    deadline = time.time() + 5
    while not re.search(line, srv.access_log(), re.M) and time.time() < deadline:
        time.sleep(0.05)
    assert re.search(line, srv.access_log(), re.M), srv.access_log()
    srv.stop()
    assert not [p for p in [parent, *kids] if pshttpd.pid_alive(p)]
    assert srv.crash_lines() == []


def test_configtest_names_file_and_line(configtest):
    rc, out = configtest("Timeout 30\nBogusDirective on\n", load_pushstream=False)
    assert rc != 0
    m = re.search(r"Syntax error on line (\d+) of (\S+/conf/httpd\.conf):", out)
    assert m, out
    with open(m.group(2)) as f:
        assert f.read().splitlines()[int(m.group(1)) - 1] == "BogusDirective on"
    assert configtest("Timeout 30\n", load_pushstream=False) == (0, "Syntax OK\n")


def test_ssl_and_graceful(httpd):
    srv = httpd("Header set X-Body yes", load_pushstream=False, ssl_port=pshttpd.free_port(),
                servers=1)
    ctx = ssl._create_unverified_context()
    assert get(srv.ssl_url("/static.txt"), context=ctx) == (200, b"hello\n")
    old = srv.child_pids()
    srv.graceful()
    assert get(srv.url("/static.txt")) == (200, b"hello\n")
    assert set(srv.child_pids()) - set(old)


def test_prefork_and_worker(httpd):
    for mpm in ("prefork", "worker"):
        srv = httpd(load_pushstream=False, mpm=mpm, servers=3, threads=4)
        assert get(srv.url("/static.txt")) == (200, b"hello\n")
        assert len(srv.child_pids()) == 3
        srv.stop()


def test_crash_outside_a_stop_is_not_excused(httpd):
    """A child that segfaults while the server runs stays a crash, reported with
    its core's backtrace; only lines inside a stop's stretch of the error log
    (every stop, not only the last: servers are stopped and started again
    within a test) are looked at as httpd's own stop race."""
    srv = httpd(load_pushstream=False)
    srv.stop()
    srv.start()
    kid = srv.child_pids()[0]
    os.kill(kid, signal.SIGSEGV)
    wait_for(lambda: srv.crash_lines(), 10, what="the crash line")
    srv.stop()
    windows = srv._stop_windows
    assert len(windows) == 2 and all(b < e for b, e in windows), windows
    log = open(srv.error_log_path, "rb").read()
    for b, e in windows:
        assert b"caught SIGTERM" in log[b:e], log[b:e]
    (line,) = srv.crash_lines()
    assert f"child pid {kid} exit signal Segmentation fault" in line, line
    assert srv.httpd_stop_crashes() == []
    report = srv.crash_report([line])
    assert report.startswith(line) and "backtrace of logs/core" in report, report
    assert re.search(r"^#0 ", report, re.M), report
    # the conftest fixture would fail the test on it: forget it
    os.truncate(srv.error_log_path, 0)
