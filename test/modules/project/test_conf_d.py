"""Every file in conf.d/ passes `apache2 -t` with the module loaded."""
import json
import os

import pytest

from pyhttpd.env import ROOT  # noqa: E402
CONF_D = os.path.join(ROOT, "conf.d")


def _read(name):
    with open(os.path.join(CONF_D, name)) as f:
        return f.read()


AUTH_KEY = "/etc/apache2/pushstream-auth.key"     # private-notifications.conf


def key_file(workbase):
    """A stand-in for the examples' PushStreamAuth key file."""
    path = os.path.join(workbase, "conf_d-auth.key")
    with open(path, "w") as f:
        f.write("example-secret-0123456789abcdef0123456789\n")
    os.chmod(path, 0o644)
    return path


@pytest.mark.parametrize("name", sorted(n for n in os.listdir(CONF_D) if n.endswith(".conf")))
def test_conf_d_file_passes_configtest(configtest, workbase, name):
    body = _read("pushstream.conf") + "\n" + _read(name).replace(AUTH_KEY, key_file(workbase))
    rc, out = configtest(body)
    assert rc == 0, out
    assert "Syntax OK" in out


def test_demo_serves_publish_and_long_poll(httpd):
    import http.client
    srv = httpd(_read("pushstream.conf") + "\n" + _read("demo.conf"))
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    c.request("POST", "/pub?id=demo", body=b"Hello")
    r = c.getresponse()
    assert r.status == 200, r.read()
    r.read()
    c.request("GET", "/lp/demo.b1")
    r = c.getresponse()
    assert r.status == 200
    m = json.loads(r.read())          # the page's JSON template: id, time and tag
    assert (m["id"], m["channel"], m["text"], m["tag"]) == (1, "demo", "Hello", 1), m
    c.request("GET", "/sub/demo.b1", headers={"Connection": "close"})
    r = c.getresponse()
    assert r.status == 200
    assert r.readline() == b"Hello\n"  # curl's streaming location: the text, one line each
