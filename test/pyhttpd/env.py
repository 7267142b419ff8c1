"""Where things are: the checkout, the build, the binaries the harness runs."""
import os
import re
import tempfile

# PS_ROOT: the checkout (test/pyhttpd/ -> ../..)
ROOT = os.environ.get("PS_ROOT") or os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
# PS_BUILD: another build dir (make BUILD=... / SANITIZE=1 builds)
BUILD = os.environ.get("PS_BUILD") or os.path.join(ROOT, ".build")
APACHE = "/usr/sbin/apache2"
MODDIR = "/usr/lib/apache2/modules"
# the module Httpd loads (load_pushstream=True); bench.py --ours-so replaces it
PUSHSTREAM_SO = os.path.join(BUILD, "mod_pushstream.so")
# PSWT_SO: another build of the tunnel module
WSTUNNEL_SO = os.environ.get("PSWT_SO") or os.path.join(BUILD, "mod_pushstream_wstunnel.so")
LOADGEN = os.path.join(BUILD, "bench", "loadgen")


def _unreachable_ancestor(path):
    """As root (httpd's children then run as User nobody): the first directory
    above path that nobody may not enter, else None."""
    if os.geteuid() != 0:
        return None
    p = os.path.abspath(path)
    while p != "/":
        p = os.path.dirname(p)
        if os.path.exists(p) and not os.stat(p).st_mode & 0o001:
            return p
    return None


def work_root(preferred):
    """Where server workdirs go: preferred (under .build/), unless the checkout
    lies below a directory User nobody cannot enter (a clone in /root or in a
    `mktemp -d` dir); then a directory of this checkout's own under /tmp."""
    if not _unreachable_ancestor(preferred):
        return preferred
    tag = re.sub(r"[^A-Za-z0-9]+", "-", os.path.abspath(preferred)).strip("-")[-80:]
    d = os.path.join(tempfile.gettempdir(), f"pushstream-{os.getuid()}-{tag}")
    os.makedirs(d, mode=0o755, exist_ok=True)
    os.chmod(d, 0o755)
    return d


def read(path):
    """A file's text (undecodable bytes replaced), "" when it cannot be read."""
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""
