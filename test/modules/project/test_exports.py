"""Both modules carry the shared core (mod_pushstream/common/) compiled in: only each
module's `*_module` structure may leave its .so, so that httpd loading both never binds
one module's calls to the other's copy (mod_pushstream/common/psc_exports.map)."""
import os
import subprocess

from pyhttpd.env import BUILD


def _exported(so):
    out = subprocess.run(["nm", "-D", "--defined-only", os.path.join(BUILD, so)],
                         capture_output=True, text=True, check=True).stdout
    # the ASan build adds an ODR indicator per global (__odr_asan.<name>)
    return sorted(n for n in (l.split()[-1] for l in out.splitlines() if l.strip())
                  if not n.startswith("__odr_asan."))


def test_only_the_module_structures_are_exported():
    assert _exported("mod_pushstream.so") == ["pushstream_module"]
    assert _exported("mod_pushstream_wstunnel.so") == ["pushstream_wstunnel_module"]
