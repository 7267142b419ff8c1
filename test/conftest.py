"""The fixtures of every integration test (test/modules/*/) against a real
/usr/sbin/apache2; the harness itself is the package test/pyhttpd.

    def test_x(httpd):
        srv = httpd(conf_body, servers=1)   # started; stopped at teardown
        ...
    def test_y(configtest):
        rc, out = configtest(conf_body)     # apache2 -t, no server started
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

# test/ on the path: `import pyhttpd` from tests, bench and this file alike
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pyhttpd import httpd as pshttpd  # noqa: E402
from pyhttpd.env import BUILD, LOADGEN, ROOT  # noqa: E402,F401
from pyhttpd.wsbackend import WsBackend  # noqa: E402


_session_dir = []


def pytest_collection_modifyitems(config, items):
    """Sanitizer pass (PS_SAN_PRELOAD set): tests marked normal_pass_only
    (test_package.py: it installs the release .deb, whose modules are not the
    sanitizer build, so a second run would repeat the first) are deselected,
    not skipped: they run once per `make test`."""
    if not os.environ.get("PS_SAN_PRELOAD"):
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("normal_pass_only") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def workbase():
    """A per-session dir for server workdirs. Not pytest's tmp_path: that lives
    under a 0700 dir the children (User nobody) cannot enter."""
    base = pshttpd.work_root(os.path.join(BUILD, "itest"))
    os.makedirs(base, mode=0o755, exist_ok=True)
    d = tempfile.mkdtemp(prefix="run-", dir=base)
    os.chmod(d, 0o755)
    _session_dir.append(d)
    return d


def pytest_sessionfinish(session, exitstatus):
    # here, not in the fixture: teardown errors of the last test are not counted yet there
    for d in _session_dir:
        if exitstatus == 0 and not os.environ.get("PS_KEEP_WORKDIRS"):
            shutil.rmtree(d, ignore_errors=True)
        else:
            print(f"\nhttpd workdirs kept in {d}")


def _workdir(base, request):
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)[:60]
    d = tempfile.mkdtemp(prefix=name + "-", dir=base)
    os.chmod(d, 0o755)
    return d


@pytest.fixture
def httpd(request, workbase):
    servers = []

    def start(conf_body="", **kw):
        srv = pshttpd.Httpd(_workdir(workbase, request), conf_body, **kw)
        servers.append(srv)  # before start(): a half-started server is stopped too
        srv.start()
        return srv

    yield start
    problems = []
    for srv in servers:
        try:
            srv.stop()
        except Exception as e:  # noqa: BLE001 - report, keep stopping the others
            problems.append(f"{srv.workdir}: {e}")
        # children killed on purpose (SIGKILL tests) are not crashes; nor is
        # httpd's own stop race, proven by the core's backtrace (pshttpd)
        known = srv.httpd_stop_crashes() if srv.crash_lines() else []
        for l in known:
            print(f"\nhttpd's own event MPM crashed at stop (no frame of ours): {l}")
        crashes = [l for l in srv.crash_lines()
                   if "exit signal Killed" not in l and l not in known]
        if crashes:
            problems.append(f"{srv.error_log_path}: " + srv.crash_report(crashes))
        for f, text in srv.sanitizer_reports():
            _san_seen.add(f)
            problems.append(f"{f}:\n{text}")
    if problems:
        pytest.fail("httpd crash/leak lines:\n" + "\n".join(problems), pytrace=False)


_san_seen = set()


@pytest.fixture(autouse=True)
def sanitizer_sweep(workbase):
    """Sanitizer pass: also catch reports of servers started outside the
    `httpd` fixture (module-scoped ones, examples): any new
    logs/sanitizer.* file under the session's workdirs fails this test."""
    yield
    if not os.environ.get("PS_SAN_PRELOAD"):
        return
    new = []
    for pat in ("*/logs/sanitizer.*", "*/*/logs/sanitizer.*"):
        for f in sorted(glob.glob(os.path.join(workbase, pat))):
            if f not in _san_seen:
                _san_seen.add(f)
                new.append(f"{f}:\n{pshttpd._read(f)}")
    if new:
        pytest.fail("sanitizer reports:\n" + "\n".join(new), pytrace=False)


@pytest.fixture(scope="module")
def loadgen():
    """bench/loadgen.c, built with `make loadgen` into the build tree: its path."""
    build = os.environ.get("PS_BUILD")
    p = subprocess.run(["make", "--no-print-directory", "-s", "loadgen"]
                       + ([f"BUILD={build}"] if build else []), cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    return LOADGEN


@pytest.fixture
def configtest(request, workbase):
    servers = []

    def run(conf_body="", **kw):
        srv = pshttpd.Httpd(_workdir(workbase, request), conf_body, **kw)
        servers.append(srv)
        return srv.configtest()
    yield run
    reports = [f"{f}:\n{text}" for srv in servers for f, text in srv.sanitizer_reports()]
    _san_seen.update(f for srv in servers for f, _t in srv.sanitizer_reports())
    if reports:
        pytest.fail("sanitizer reports:\n" + "\n".join(reports), pytrace=False)


@pytest.fixture
def backends():
    """WebSocket back ends (pyhttpd/wsbackend.py in a subprocess) for the
    mod_pushstream_wstunnel tests: start(name, **kw) -> WsBackend, stopped at teardown."""
    started = []

    def start(name="b1", **kw):
        b = WsBackend(name, **kw).start()
        started.append(b)
        return b
    yield start
    for b in started:
        b.stop()
