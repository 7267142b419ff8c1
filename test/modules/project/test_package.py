"""The Debian package of `make deb`, installed for real: apt-get install of
the .deb into this machine, `a2enmod pushstream`, `apachectl configtest`, a
publish/subscribe round trip through the system's apache2 (its binary, its
/etc/apache2/mods-enabled with the package's modules, the package's own
example demo.conf) on a free loopback port, then `apt-get purge`, after
which /etc/apache2 is byte for byte what it was before.

Runs only as root, and once per `make test`: it installs into the system
and its modules are the package's (-O2, not the sanitizer build), so the
sanitizer pass would repeat exactly the same thing -- conftest deselects
tests marked normal_pass_only there.  The system apache2 it starts has a
config of its own (test-only: Listen on a free 127.0.0.1 port, pid file and
logs in the test's workdir; never port 80) and is stopped before the purge.
Two runs on one machine take turns (a lock file).
"""
import fcntl
import hashlib
import http.client
import json
import os
import re
import stat
import subprocess
import tempfile
import threading
import time

import pytest

from pyhttpd import httpd as pshttpd
from pyhttpd.client import request, wait_for

from pyhttpd.env import ROOT  # noqa: E402
PKG = "libapache2-mod-pushstream"
DOC = f"/usr/share/doc/{PKG}"
ETC = "/etc/apache2"
POLICY = "/usr/sbin/policy-rc.d"
LOCK = "/run/lock/mod_pushstream-package-test.lock"

pytestmark = [
    pytest.mark.normal_pass_only,
    pytest.mark.skipif(os.geteuid() != 0, reason="installs a package: root only"),
]


def tree_digest(top):
    """{path: (type, mode, uid, gid, content sha256 | link target)} of a tree."""
    out = {}
    for d, dirs, files in os.walk(top):
        dirs.sort()
        for n in sorted(dirs + files):
            p = os.path.join(d, n)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                what = ("l", os.readlink(p))
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    what = ("f", hashlib.sha256(f.read()).hexdigest())
            else:
                what = ("d", "")
            out[p] = (what[0], stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, what[1])
    out[top] = ("d", stat.S_IMODE(os.lstat(top).st_mode), 0, 0, "")
    return out


def run(cmd, **kw):
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive", LANG="C")
    env.pop("LD_PRELOAD", None)
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, **kw)


def installed():
    r = run(["dpkg-query", "-W", "-f=${Status}", PKG])
    return r.returncode == 0 and "installed" in r.stdout and "not-installed" not in r.stdout


def system_conf(workdir, port):
    """A test-only top-level config for the system's apache2: its enabled
    modules, the package's example, our port, pid file and logs."""
    return f"""# test_package.py: the system apache2 on a loopback port (not port 80)
ServerRoot "{ETC}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile {workdir}/logs/httpd.pid
DefaultRuntimeDir {workdir}/run
ErrorLog {workdir}/logs/error_log
LogLevel info
LogFormat "%h %P %>s %B %D \\"%r\\"" pshttpd
User www-data
Group www-data
IncludeOptional mods-enabled/*.load
IncludeOptional mods-enabled/*.conf
CustomLog {workdir}/logs/access_log pshttpd
# the package's own example: /pub, /channels-stats, /lp/, /ws/, /ev/ ...
# and its demo page at /
Include {DOC}/examples/demo.conf
DocumentRoot {DOC}/examples/demo-page
<Directory {DOC}/examples/demo-page>
    Require all granted
</Directory>
"""


@pytest.fixture
def lock():
    os.makedirs(os.path.dirname(LOCK), exist_ok=True)
    with open(LOCK, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def test_package_installs_serves_and_purges_cleanly(workbase, lock):
    d = tempfile.mkdtemp(prefix="package-", dir=workbase)
    os.chmod(d, 0o755)
    assert not installed(), f"{PKG} is installed on this machine: the test would " \
                            f"remove it (dpkg --purge {PKG} first)"
    for f in ("/usr/lib/apache2/modules/mod_pushstream.so",
              f"{ETC}/mods-available/pushstream.load"):
        assert not os.path.exists(f), f"{f} exists (make install?): the package test " \
                                      "would overwrite and then remove it"

    # ---- make deb: Debian's tools, lintian without errors
    deb_dir = os.path.join(d, "deb")
    r = run(["make", "--no-print-directory", "deb", f"DEB_DIR={deb_dir}"], cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    deb = r.stdout.strip().splitlines()[-1]
    version = run(["dpkg-parsechangelog", "-l", os.path.join(ROOT, "build/debian/changelog"),
                   "-S", "Version"]).stdout.strip()
    arch = run(["dpkg-architecture", "-qDEB_HOST_ARCH"]).stdout.strip()
    assert deb == os.path.join(deb_dir, f"{PKG}_{version}_{arch}.deb"), deb
    assert re.search(r"lintian: 0 errors, \d+ warnings", r.stdout), r.stdout
    contents = run(["dpkg-deb", "-c", deb]).stdout
    for f in ("etc/apache2/mods-available/pushstream.load",
              "etc/apache2/mods-available/pushstream.conf",
              "etc/apache2/mods-available/pushstream_wstunnel.load",
              "etc/apache2/mods-available/pushstream_wstunnel.conf",
              "usr/lib/apache2/modules/mod_pushstream.so",
              "usr/lib/apache2/modules/mod_pushstream_wstunnel.so",
              f"usr/share/doc/{PKG}/README.md.gz",
              f"usr/share/doc/{PKG}/examples/demo.conf",
              f"usr/share/doc/{PKG}/examples/helpdesk-chat.conf",
              f"usr/share/doc/{PKG}/examples/demo-page/index.html",
              f"usr/share/doc/{PKG}/examples/demo-page/js/pushstream-client.js"):
        assert f" ./{f}\n" in contents + "\n", f"{f} not in the package:\n{contents}"
    info = run(["dpkg-deb", "-f", deb, "Depends"]).stdout
    assert "apache2-api-20120211" in info, info      # dh_apache2's dependency

    before = tree_digest(ETC)
    # maintainer scripts must not start or restart the system apache2 (port 80)
    policy_ours = not os.path.exists(POLICY)
    if policy_ours:
        with open(POLICY, "w") as f:
            f.write("#!/bin/sh\nexit 101\n")
        os.chmod(POLICY, 0o755)
    srv = pshttpd.Httpd(os.path.join(d, "system"), port=pshttpd.free_port())
    started = False
    try:
        # ---- apt-get install ./libapache2-mod-pushstream_<version>_<arch>.deb
        r = run(["apt-get", "install", "-y", "-q", "-o", "DPkg::Lock::Timeout=300",
                 "./" + os.path.basename(deb)], cwd=deb_dir)
        assert r.returncode == 0, r.stdout + r.stderr
        assert installed()
        # not enabled on install: the admin chooses
        assert not os.path.exists(f"{ETC}/mods-enabled/pushstream.load")
        r = run(["a2enmod", "pushstream"])
        assert r.returncode == 0, r.stdout + r.stderr
        assert os.path.realpath(f"{ETC}/mods-enabled/pushstream.load") == \
            f"{ETC}/mods-available/pushstream.load"
        assert os.path.exists(f"{ETC}/mods-enabled/pushstream.conf")
        r = run(["apachectl", "configtest"])
        assert r.returncode == 0 and "Syntax OK" in r.stdout + r.stderr, r.stdout + r.stderr

        # ---- the system apache2 with the package's module, on a loopback port
        for sub in ("conf", "logs", "run"):
            os.makedirs(os.path.join(srv.workdir, sub), exist_ok=True)
        with open(srv.conf_path, "w") as f:
            f.write(system_conf(srv.workdir, srv.port))
        r = run([pshttpd.APACHE, "-f", srv.conf_path, "-t", "-D", "DUMP_MODULES"])
        assert r.returncode == 0 and "pushstream_module (shared)" in r.stdout, \
            r.stdout + r.stderr
        r = run([pshttpd.APACHE, "-f", srv.conf_path, "-k", "start"])
        started = True
        assert r.returncode == 0, r.stdout + r.stderr
        wait_for(lambda: srv.parent_pid() and pshttpd.tcp_connects(srv.port), 15,
                 what="the system apache2")
        srv._started_at = time.time()    # stop() lets a young httpd settle
        assert "/usr/lib/apache2/modules/mod_pushstream.so" in \
            open(f"/proc/{srv.parent_pid()}/maps").read()

        ch = f"pkg_{os.getpid()}"
        got = {}

        def long_poll():
            c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=20)
            c.request("GET", f"/lp/{ch}")
            resp = c.getresponse()
            got["status"], got["body"] = resp.status, resp.read()
            c.close()
        t = threading.Thread(target=long_poll)
        t.start()
        wait_for(lambda: json.loads(request(srv, "GET", f"/pub?id={ch}").body or b"{}")
                 .get("subscribers") == 1, 10, what="the long-poll subscriber")
        r = request(srv, "POST", f"/pub?id={ch}", body=b"Hello from the package")
        assert r.status == 200, r
        t.join(20)
        assert got.get("status") == 200, got
        m = json.loads(got["body"])
        assert (m["channel"], m["text"], m["id"]) == (ch, "Hello from the package", 1), m
        r = request(srv, "GET", "/channels-stats", headers={"Accept": "application/json"})
        assert r.status == 200 and json.loads(r.body)["published_messages"] == 1, r
        # the demo page of the examples, served by the system apache2
        for path, want in (("/", b"mod_pushstream live demo"),
                           ("/js/pushstream-client.js", b"export class PushStreamClient")):
            r = request(srv, "GET", path)
            assert r.status == 200 and want in r.body, (path, r)
    finally:
        if started:
            srv.stop()
        crashes = srv.crash_lines()
        r = run(["apt-get", "purge", "-y", "-q", "-o", "DPkg::Lock::Timeout=300", PKG])
        if policy_ours:
            os.unlink(POLICY)
    assert not crashes, crashes
    assert r.returncode == 0, r.stdout + r.stderr
    assert not installed()
    assert not os.path.exists("/usr/lib/apache2/modules/mod_pushstream.so")
    after = tree_digest(ETC)
    changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
    assert not changed, f"/etc/apache2 differs after the purge: {changed}"
    leftover = [os.path.join(dp, n) for dp, _, fs in os.walk("/var/lib/apache2")
                for n in fs if "pushstream" in n]
    assert not leftover, leftover
