"""clients/php: the PHP publisher library (its own tests, clients/php/tests/,
run with Debian's php-cli against a real httpd) and the publish.php example
against the help-desk example's loopback publisher."""
import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from pyhttpd import httpd as pshttpd
from pyhttpd.client import request

from pyhttpd.env import ROOT  # noqa: E402
PHP_DIR = os.path.join(ROOT, "clients", "php")
CONF_D = os.path.join(ROOT, "conf.d")
PHP = shutil.which("php") or "/usr/bin/php"

pytestmark = pytest.mark.skipif(not os.access(PHP, os.X_OK), reason="php-cli not installed")

# What clients/php/tests/ expects (see its header).
CONF = r'''
PushStreamSharedMemorySize 32M
PushStreamMaxChannelIdLength 40
<Location /pub>
    PushStreamPublisher admin
    PushStreamChannelsPath "%{arg:id}"
    PushStreamStoreMessages on
    Require local
</Location>
<Location /pub-normal>
    PushStreamPublisher normal
    PushStreamChannelsPath "%{arg:id}"
    PushStreamStoreMessages on
</Location>
<Location /pub-quiet>
    PushStreamPublisher admin
    PushStreamChannelsPath "%{arg:id}"
    PushStreamStoreMessages on
    PushStreamChannelInfoOnPublish off
</Location>
<Location /channels-stats>
    PushStreamChannelsStatistics
    PushStreamChannelsPath "%{arg:id}"
</Location>
<LocationMatch "^/lp/(?<ch>.+)$">
    PushStreamSubscriber long-polling
    PushStreamChannelsPath "%{env:MATCH_CH}"
    PushStreamMessageTemplate "~channel~|~id~|~event-id~|~event-type~|~text~\n--\n"
    PushStreamLongpollingConnectionTtl 10s
</LocationMatch>
'''


def _php_tests():
    with open(os.path.join(PHP_DIR, "tests", "ClientTest.php")) as f:
        return re.findall(r"^function (test_\w+)\(", f.read(), re.M)


@pytest.fixture(scope="module")
def server(workbase):
    d = tempfile.mkdtemp(prefix="clients_php-", dir=workbase)
    os.chmod(d, 0o755)
    srv = pshttpd.Httpd(d, CONF, servers=1)
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()
    assert not srv.crash_lines(), srv.crash_lines()


def php(*args, env=None, stdin=None, timeout=30):
    e = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    e.update(env or {})
    return subprocess.run([PHP, *args], env=e, input=stdin, capture_output=True, text=True,
                          timeout=timeout)


def test_php_has_curl():
    p = php("-r", "echo function_exists('curl_init') ? 'yes' : 'no';")
    assert p.stdout == "yes", p


def test_php_files_lint():
    for rel in ("src/PushStream.php", "publish.php", "tests/run.php", "tests/ClientTest.php"):
        p = php("-l", os.path.join(PHP_DIR, rel))
        assert p.returncode == 0, p.stdout + p.stderr


@pytest.mark.parametrize("name", _php_tests())
def test_php_library(server, name):
    """One test function of clients/php/tests/ClientTest.php."""
    p = php(os.path.join(PHP_DIR, "tests", "run.php"), name,
            env={"PUSHSTREAM_URL": server.url("")})
    assert p.returncode == 0 and f"ok {name}" in p.stdout, p.stdout + p.stderr


def test_php_runner_lists_every_test():
    p = php(os.path.join(PHP_DIR, "tests", "run.php"), "--list")
    assert p.stdout.split() == _php_tests()


# ---------------------------------------------------------------- publish.php
def _helpdesk(httpd):
    pub = pshttpd.free_port()
    port = pshttpd.free_port()
    with open(os.path.join(CONF_D, "pushstream.conf")) as f:
        body = f.read() + "\n"
    with open(os.path.join(CONF_D, "helpdesk-chat.conf")) as f:
        body += f.read().replace("127.0.0.1:8060", f"127.0.0.1:{pub}") \
                        .replace("<VirtualHost *:80>", f"<VirtualHost *:{port}>") \
                        .replace("127.0.0.1:8080", f"127.0.0.1:{pshttpd.free_port()}")
    srv = httpd(body, port=port, modules=["proxy", "proxy_http"])
    return srv, pub


class _Port:
    def __init__(self, port):
        self.port = port


def test_publish_php_against_helpdesk_example(httpd):
    srv, pub = _helpdesk(httpd)
    url = f"http://127.0.0.1:{pub}"
    script = os.path.join(PHP_DIR, "publish.php")
    p = php(script, f"--url={url}", "--event-id=7", "--event-type=chat", "room1,room2", 'Hi "all"')
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert sorted(out) == ["room1", "room2"] and out["room1"]["published_messages"] == 1
    # a subscriber of the example sees it, with the event id, as JSON
    r = request(srv, "GET", "/event/lp/room2.b1")
    assert r.status == 200
    m = json.loads(r.body)
    assert (m["channel"], m["text"], m["eventid"], m["id"]) == ("room2", 'Hi "all"', "7", 1)
    # the message from stdin; the URL from the environment
    p = php(script, "room1", "-", stdin="from stdin\n", env={"PUSHSTREAM_URL": url})
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["published_messages"] == 2
    p = php(script, f"--url={url}", "--info", "room1")
    assert json.loads(p.stdout)["stored_messages"] == 2
    p = php(script, f"--url={url}", "--stats")
    assert json.loads(p.stdout)["channels"] == 2
    p = php(script, f"--url={url}", "--delete", "room1")
    assert json.loads(p.stdout) == {"deleted": True}
    p = php(script, f"--url={url}", "--info", "room1")
    assert p.returncode == 1 and "no such channel" in p.stderr
    # errors: usage, and an HTTP error with the server's explanation
    p = php(script, f"--url={url}", "only-a-channel")
    assert p.returncode == 2 and "usage:" in p.stderr
    p = php(script, f"--url={url}/nothing-here", "room1", "x")
    assert p.returncode == 1 and "HTTP 404" in p.stderr, p.stderr
    # the public port does not publish: it proxies to the application (down here)
    p = php(script, f"--url={srv.url('')}", "room1", "x")
    assert p.returncode == 1 and "HTTP 503" in p.stderr, p.stderr
    assert request(_Port(pub), "GET", "/pub?id=room1").status == 404


def test_php_client_on_the_publisher_port(httpd):
    """The PHP library unchanged against PushStreamPublisherListen: keep-alive
    publishes, a 5 KB message (php-curl sends Expect: 100-continue), event id
    and type, channel info, delete."""
    port = pshttpd.free_port()
    body = CONF.replace("    Require local\n</Location>",
                        f"    Require local\n    PushStreamPublisherListen 127.0.0.1:{port}\n"
                        "</Location>", 1)
    srv = httpd(body, servers=2)
    code = r'''
require getenv('PS_SRC');
$ps = new PushStream\Client(getenv('PUSHSTREAM_URL'));
for ($i = 1; $i <= 20; $i++) { $last = $ps->publish('phpport', "m$i"); }
$big = $ps->publish('phpport', str_repeat('x', 5000), '77', 'bulk');
echo json_encode([$last, $big, $ps->channelInfo('phpport'), $ps->delete('phpport'),
                  $ps->channelInfo('phpport')]);
'''
    p = php("-r", code, env={"PS_SRC": os.path.join(PHP_DIR, "src", "PushStream.php"),
                             "PUSHSTREAM_URL": f"http://127.0.0.1:{port}"})
    assert p.returncode == 0, p.stdout + p.stderr
    last, big, info, deleted, gone = json.loads(p.stdout)
    assert last["published_messages"] == 20 and big["published_messages"] == 21
    assert info["stored_messages"] == 21
    assert deleted is True and gone is None


def test_php_token_for_channels_against_module(httpd, workbase):
    """PushStream\\Token::forChannels() mints tokens the module accepts: HS256 (key
    file with a trailing newline) and ES256 (openssl-made key), used by the PHP
    Client to publish (token option) and by curl to subscribe; a token for other
    channels gets 403, an expired one 401."""
    d = tempfile.mkdtemp(prefix="php_token-", dir=workbase)
    os.chmod(d, 0o755)
    secret = os.path.join(d, "hs.key")
    with open(secret, "w") as f:
        f.write("php-secret-0123456789abcdef0123456789\n")
    ec = os.path.join(d, "ec.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-out", ec], check=True, capture_output=True)
    subprocess.run(["openssl", "pkey", "-in", ec, "-pubout", "-out", ec + ".pub"],
                   check=True, capture_output=True)
    for f in (secret, ec + ".pub"):
        os.chmod(f, 0o644)
    body = f'''PushStreamSharedMemorySize 32M
PushStreamAuthKey HS256 file:{secret} app
PushStreamAuthKey ES256 file:{ec}.pub ec
<Location /pub>
    PushStreamPublisher admin
    PushStreamChannelsPath "%{{arg:id}}"
    PushStreamStoreMessages on
    PushStreamAuth publish
</Location>
<LocationMatch "^/poll/(?<ch>.+)$">
    PushStreamSubscriber polling
    PushStreamChannelsPath "%{{env:MATCH_CH}}"
    PushStreamMessageTemplate "~text~"
    PushStreamAuth subscribe
</LocationMatch>
'''
    srv = httpd(body, servers=1)
    code = r'''
require getenv('PS_SRC');
use PushStream\Client; use PushStream\Token; use PushStream\Exception as PSE;
$secret = rtrim(file_get_contents(getenv('SECRET')), "\n");
$ec = file_get_contents(getenv('EC'));
$url = getenv('PUSHSTREAM_URL');
$out = [];
$pub = new Client($url, ['token' => Token::forChannels($secret, [], ['php*'], 60, ['kid' => 'app'])]);
$out[] = $pub->publish('php1', 'hello')['published_messages'];
$pub2 = new Client($url, ['token' => Token::forChannels($ec, [], ['php1'], 60, ['alg' => 'ES256', 'kid' => 'ec'])]);
$out[] = $pub2->publish('php1', 'again')['published_messages'];
foreach ([Token::forChannels($secret, [], ['other'], 60), Token::forChannels($secret, [], ['php1'], -10)] as $t) {
    try { (new Client($url, ['token' => $t]))->publish('php1', 'no'); $out[] = 'published?!'; }
    catch (PSE $e) { $out[] = $e->getStatus(); }
}
$get = function ($t) use ($url) {
    $ch = curl_init("$url/poll/php1.b5");
    curl_setopt_array($ch, [CURLOPT_RETURNTRANSFER => true, CURLOPT_HTTPHEADER => ["Authorization: Bearer $t"]]);
    $b = curl_exec($ch);
    return [(int)curl_getinfo($ch, CURLINFO_RESPONSE_CODE), $b];
};
$out[] = $get(Token::forChannels($secret, ['php1'], [], 60, ['kid' => 'app']));
$out[] = $get(Token::forChannels($secret, ['php2'], [], 60))[0];
echo json_encode($out);
'''
    p = php("-r", code, env={"PS_SRC": os.path.join(PHP_DIR, "src", "PushStream.php"),
                             "PUSHSTREAM_URL": srv.url(""), "SECRET": secret, "EC": ec})
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads(p.stdout) == [1, 2, 403, 401, [200, "helloagain"], 403], p.stdout
