"""build/nginx2apache: the nginx original of the help-desk example is converted,
the result passes apache2 -t, and the converted server behaves as the nginx
one did (publish on the loopback server, subscribe on every location, replay by
$arg_time/$arg_tag, proxy to the application); the single conversions and the
flagging of what cannot be converted."""
import http.server
import importlib.machinery
import importlib.util
import json
import os
import re
import subprocess
import urllib.parse

import pytest

from pyhttpd import httpd as pshttpd
import pyhttpd.client
import pyhttpd.ws
from pyhttpd.client import At, LocalHttpServer, request

from pyhttpd.env import ROOT  # noqa: E402

from .test_examples import helpdesk_subscribers

TOOL = os.path.join(ROOT, "build", "nginx2apache")

# The help desk's nginx, as it ran before the move (ports filled in by the test).
NGINX_HELPDESK = r'''# nginx in front of the help desk (Apache + PHP behind it)
user www-data;
worker_processes auto;
pid /run/nginx.pid;

events {
    worker_connections 10240;
}

http {
    include mime.types;
    default_type application/octet-stream;
    sendfile on;
    keepalive_timeout 65;

    push_stream_shared_memory_size 32M;
    push_stream_message_ttl 30m;
    push_stream_max_messages_stored_per_channel 100;
    push_stream_channel_deleted_message_text "Chat closed";

    upstream helpdesk_app {
        server 127.0.0.1:@APP@;
    }

    # publisher and statistics: loopback only
    server {
        listen 127.0.0.1:@PUB@;

        location /pub {
            push_stream_publisher admin;
            push_stream_channels_path $arg_id;
            push_stream_store_messages on;
            client_max_body_size 64k;
            allow 127.0.0.1;
            deny all;
        }

        location /channels-stats {
            push_stream_channels_statistics;
            push_stream_channels_path $arg_id;
            allow 127.0.0.1;
            deny all;
        }
    }

    server {
        listen 127.0.0.1:@WEB@;
        server_name helpdesk.example.com;

        location ~ /event/ws/(.*) {
            push_stream_subscriber websocket;
            push_stream_channels_path $1;
            push_stream_message_template "{\"id\":~id~,\"channel\":\"~channel~\",\"text\":\"~text~\",\"tag\":~tag~,\"time\":\"~time~\"}";
            push_stream_ping_message_interval 10s;
            push_stream_last_received_message_time $arg_time;
            push_stream_last_received_message_tag $arg_tag;
        }

        location ~ /event/lp/(.*) {
            push_stream_subscriber long-polling;
            push_stream_channels_path $1;
            push_stream_message_template "{\"id\":~id~,\"channel\":\"~channel~\",\"text\":\"~text~\",\"tag\":~tag~,\"time\":\"~time~\"}\n";
            push_stream_longpolling_connection_ttl 30s;
            push_stream_last_received_message_time $arg_time;
            push_stream_last_received_message_tag $arg_tag;
        }

        location ~ /event/sub/(.*) {
            push_stream_subscriber;
            push_stream_channels_path $1;
            default_type text/html;
            charset utf-8;
            push_stream_header_template "<html><head><script>function p(id,ch,t){parent.PushStreamFrame(window.name,{id:id,channel:ch,text:t})}</script></head><body>\n";
            push_stream_message_template "<script>p(~id~,'~channel~','~text~');</script>\n";
            push_stream_footer_template "</body></html>";
            push_stream_ping_message_interval 10s;
            push_stream_last_received_message_time $arg_time;
            push_stream_last_received_message_tag $arg_tag;
        }

        location ~ /event/ev/(.*) {
            push_stream_subscriber eventsource;
            push_stream_channels_path $1;
            push_stream_message_template "{\"id\":~id~,\"channel\":\"~channel~\",\"text\":\"~text~\"}";
            push_stream_ping_message_interval 10s;
            add_header X-Frame-Options SAMEORIGIN;
        }

        location / {
            proxy_pass http://helpdesk_app;
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_read_timeout 120s;
        }

        location /legacy {
            if ($http_user_agent ~ MSIE) {
                return 403;
            }
            rewrite ^/legacy/(.*)$ /$1 break;
        }
    }
}
'''


def load_tool():
    loader = importlib.machinery.SourceFileLoader("nginx2apache", TOOL)
    spec = importlib.util.spec_from_loader("nginx2apache", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


n2a = load_tool()


def run_tool(*args, stdin=None):
    return subprocess.run(["/usr/bin/python3", TOOL, *args], input=stdin, capture_output=True,
                          text=True, timeout=30)


def convert(text):
    """(apache config, flags) of an nginx config given as text."""
    c = n2a.Converter("test.conf")
    return c.render(n2a.parse(text, "test.conf")), c.flags


class App(LocalHttpServer):
    """The application behind proxy_pass: echoes what it got."""

    def __init__(self):
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = json.dumps({"path": self.path, "host": self.headers.get("Host"),
                                   "real_ip": self.headers.get("X-Real-IP")}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass
        super().__init__(H)


@pytest.fixture
def helpdesk(httpd, workbase):
    app = App()
    pub, web = pshttpd.free_port(), pshttpd.free_port()
    nginx = NGINX_HELPDESK.replace("@APP@", str(app.port)).replace("@PUB@", str(pub)) \
                          .replace("@WEB@", str(web))
    src = os.path.join(workbase, f"nginx-{pub}.conf")
    with open(src, "w") as f:
        f.write(nginx)
    p = run_tool(src)
    assert p.returncode == 0, p.stderr
    conf = p.stdout
    srv = httpd(conf, modules=["proxy", "proxy_http"])
    yield {"srv": srv, "pub": At(pub), "web": At(web), "app": app, "conf": conf,
           "stderr": p.stderr, "src": src}
    app.stop()


def test_helpdesk_conversion_text(helpdesk):
    """What the converter says and writes for the help desk's nginx."""
    conf, err, src = helpdesk["conf"], helpdesk["stderr"], helpdesk["src"]
    # flagged: the if and the rewrite of /legacy, with their lines
    assert re.findall(r":(\d+): not converted: (\w+)", err) == [("98", "if"), ("101", "rewrite")]
    assert "8 location(s) converted, 2 item(s) need review" in err
    assert "needs a2enmod pushstream headers proxy proxy_http" in err
    assert conf.count("# nginx2apache: NOT CONVERTED") == 2
    for line in ("PushStreamSharedMemorySize 32M", "PushStreamMessageTtl 30m",
                 "PushStreamMaxMessagesStoredPerChannel 100",
                 'PushStreamChannelDeletedMessageText "Chat closed"',
                 'PushStreamChannelsPath "%{arg:id}"', "Require ip 127.0.0.1",
                 '<LocationMatch "/event/ws/(?<channels>.*)">',
                 'PushStreamChannelsPath "%{env:MATCH_CHANNELS}"',
                 'PushStreamLastReceivedMessageTime "%{arg:time}"',
                 'PushStreamLastReceivedMessageTag "%{arg:tag}"',
                 'ForceType "text/html; charset=utf-8"',
                 'Header always set X-Frame-Options "SAMEORIGIN"',
                 'ProxyPassMatch "/event/ws/(?<channels>.*)" !', "ProxyPreserveHost On",
                 'RequestHeader set X-Real-IP "expr=%{REMOTE_ADDR}"', "PushStreamMaxMessageSize 64k"):
        assert line in conf, line
    assert re.search(r'ProxyPass "/" "http://127\.0\.0\.1:\d+/" timeout=120', conf)
    assert "Settings of nginx itself, left out:" in conf and "worker_processes" in conf
    # the output starts and ends inside <IfModule pushstream_module>
    body = [l for l in conf.splitlines() if l.strip() and not l.startswith("#")]
    assert body[0] == "<IfModule pushstream_module>" and body[-1] == "</IfModule>"


def test_converted_helpdesk_serves_every_location(helpdesk):
    srv, pub, web = helpdesk["srv"], helpdesk["pub"], helpdesk["web"]
    ch = "ticket42"
    ws, sub, ev, lp = helpdesk_subscribers(web, pub, ch)
    assert sub.header("Content-Type") == "text/html; charset=utf-8"
    assert ev.header("X-Frame-Options") == "SAMEORIGIN"
    for text in ("hello", "second", "third"):
        r = request(pub, "POST", f"/pub?id={ch}", body=text.encode())
        assert r.status == 200
    got = [json.loads(ws.read_text()) for _ in range(3)]
    assert [m["text"] for m in got] == ["hello", "second", "third"]
    lp.wait_end()
    assert json.loads(lp.body)["text"] == "hello"
    sub.wait_for(b"third")
    assert re.findall(r"<script>p\((\d+),'ticket42','(\w+)'\);</script>\n", sub.body.decode()) == \
        [("1", "hello"), ("2", "second"), ("3", "third")]
    ev.wait_for(b"third")
    assert [e["data"] for e in pyhttpd.client.parse_sse(ev.body)[0]] == \
        [['{"id":1,"channel":"ticket42","text":"hello"}'],
         ['{"id":2,"channel":"ticket42","text":"second"}'],
         ['{"id":3,"channel":"ticket42","text":"third"}']]
    # $arg_time / $arg_tag replay
    q = f"time={urllib.parse.quote(got[0]['time'])}&tag={got[0]['tag']}"
    r = request(web, "GET", f"/event/lp/{ch}?{q}")
    assert [json.loads(l)["text"] for l in r.body.decode().splitlines()] == ["second", "third"]
    ws2 = pyhttpd.ws.Ws(web, f"/event/ws/{ch}?{q}")
    assert [json.loads(ws2.read_text())["text"] for _ in range(2)] == ["second", "third"]
    # the http{} settings: deleted text, stored messages, client_max_body_size
    r = request(pub, "POST", f"/pub?id={ch}", body=b"x" * (65 * 1024))
    assert r.status == 413
    r = request(pub, "DELETE", f"/pub?id={ch}")
    assert r.status == 200
    assert json.loads(ws.read_text()) == {"id": -2, "channel": ch, "text": "Chat closed", "tag": 0,
                                          "time": "Thu, 01 Jan 1970 00:00:00 GMT"}
    r = request(pub, "GET", "/channels-stats?id=ALL")
    assert r.status == 200
    for s in (ws, ws2, sub, ev):
        s.close()


def test_converted_helpdesk_proxies_the_rest(helpdesk):
    web, pub = helpdesk["web"], helpdesk["pub"]
    r = request(web, "GET", "/tickets/7?x=1")
    assert r.status == 200
    got = json.loads(r.body)
    assert got["path"] == "/tickets/7?x=1" and got["real_ip"] == "127.0.0.1"
    assert got["host"] == f"127.0.0.1:{web.port}"          # proxy_set_header Host $host
    # the publisher is not on the public server; subscribers are not proxied
    assert json.loads(request(web, "GET", "/pub?id=x").body)["path"] == "/pub?id=x"
    assert request(pub, "POST", "/pub?id=x", body=b"m").status == 200
    r = request(web, "GET", "/event/lp/x.b1", timeout=5)
    assert r.status == 200 and json.loads(r.body)["text"] == "m"
    assert request(pub, "GET", "/", timeout=5).status in (403, 404)


def test_configtest_of_the_conversion(configtest, workbase):
    nginx = NGINX_HELPDESK.replace("@APP@", "8080").replace("@PUB@", "8060") \
                          .replace("@WEB@", "8000")
    conf, flags = convert(nginx)
    rc, out = configtest(conf, modules=["proxy", "proxy_http"])
    assert rc == 0 and "Syntax OK" in out, out
    assert len(flags) == 2


# ---------------------------------------------------------------- single conversions
def loc(body, head="location /x"):
    conf, flags = convert(f"server {{ listen 8000; {head} {{ {body} }} }}")
    return conf, flags


@pytest.mark.parametrize("head, section", [
    ("location /pub", '<Location "/pub">'),
    ("location ^~ /pub", '<Location "/pub">'),
    ("location = /pub", '<LocationMatch "^/pub$">'),
    ("location = /a.b", r'<LocationMatch "^/a\.b$">'),
    ("location ~ /sub/(.*)", '<LocationMatch "/sub/(?<channels>.*)">'),
    ("location ~* /sub/(.*)", '<LocationMatch "(?i)/sub/(?<channels>.*)">'),
    (r"location ~ ^/s/([^/(]+)/(\w+)$", r'<LocationMatch "^/s/(?<c1>[^/(]+)/(?<c2>\w+)$">'),
    ("location ~ ^/s/(?<room>[a-z]+)(?:/x)?$", '<LocationMatch "^/s/(?<room>[a-z]+)(?:/x)?$">'),
    (r"location ~ ^/s/\((\d+)\)$", r'<LocationMatch "^/s/\((?<channels>\d+)\)$">'),
])
def test_location_forms(head, section):
    conf, flags = loc("push_stream_subscriber; push_stream_channels_path x;", head)
    assert section in conf and not flags, conf


@pytest.mark.parametrize("value, expr", [
    ("$arg_id", '"%{arg:id}"'),
    ("${arg_id}", '"%{arg:id}"'),
    ("chat_$arg_room", '"chat_%{arg:room}"'),
    ("$http_x_channel_id", '"%{HTTP:X-Channel-Id}"'),
    ("$remote_addr", '"%{REMOTE_ADDR}"'),
    ("$host/$uri", '"%{HTTP_HOST}/%{REQUEST_URI}"'),
    ("fixed", '"fixed"'),
])
def test_complex_values(value, expr):
    conf, flags = loc(f"push_stream_publisher; push_stream_channels_path {value};")
    assert f"PushStreamChannelsPath {expr}" in conf and not flags, conf


def test_captures_by_number_and_name():
    conf, flags = loc("push_stream_subscriber; push_stream_channels_path $1/$2.b$3;",
                      r"location ~ ^/s/(\w+)/(\w+)/(\d+)$")
    assert 'PushStreamChannelsPath "%{env:MATCH_C1}/%{env:MATCH_C2}.b%{env:MATCH_C3}"' in conf
    conf, flags = loc("push_stream_subscriber; push_stream_channels_path $room;",
                      "location ~ ^/s/(?<room>.+)$")
    assert 'PushStreamChannelsPath "%{env:MATCH_ROOM}"' in conf and not flags
    conf, flags = loc("push_stream_subscriber; push_stream_channels_path $2;",
                      "location ~ ^/s/(.+)$")
    assert flags and "$2 has no capture group" in flags[0][1]


def test_unknown_variables_and_old_directives_are_flagged():
    conf, flags = loc("push_stream_subscriber; push_stream_channels_path $cookie_sid; "
                      "push_stream_broadcast_channel_prefix b_; push_stream_bogus on; "
                      "try_files $uri =404;")
    reasons = [m for _, m in flags]
    assert len(flags) == 4, reasons
    assert "$cookie_sid has no Apache equivalent" in reasons[0]
    assert "push_stream_wildcard_channel_prefix" in reasons[1]
    assert "unknown push_stream directive" in reasons[2]
    assert reasons[3].startswith("try_files")
    assert conf.count("# nginx2apache: NOT CONVERTED") == 4
    assert "PushStreamChannelsPath" not in conf


@pytest.mark.parametrize("rules, lines", [
    ("allow 127.0.0.1; deny all;", ["Require ip 127.0.0.1"]),
    ("allow 10.0.0.0/8; allow ::1; deny all;", ["Require ip 10.0.0.0/8 ::1"]),
    ("deny all;", ["Require all denied"]),
    ("allow all;", ["Require all granted"]),
    ("deny 192.0.2.1; allow all;", ["<RequireAll>", "Require all granted",
                                    "Require not ip 192.0.2.1", "</RequireAll>"]),
])
def test_access_rules(rules, lines):
    conf, flags = loc(f"push_stream_publisher; push_stream_channels_path $arg_id; {rules}")
    got = [l.strip() for l in conf.splitlines()]
    i = got.index(lines[0])
    assert got[i:i + len(lines)] == lines and not flags


def test_access_rules_too_complex_are_flagged():
    conf, flags = loc("push_stream_publisher; push_stream_channels_path $arg_id; "
                      "allow 10.0.0.1; deny 10.0.0.0/8; allow all;")
    assert len(flags) == 3
    assert not [l for l in conf.splitlines() if l.strip().startswith("Require")]


def test_proxy_forms():
    conf, flags = convert("""
upstream pool { server 10.0.0.1:8080; server 10.0.0.2:8080; }
server {
    listen 8000;
    location /ws/ {
        proxy_pass http://pool;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "upgrade";
        proxy_buffering off;
    }
    location /api/ { proxy_pass http://127.0.0.1:9000/v2/; proxy_connect_timeout 5s; }
    location ~ \\.php$ { proxy_pass http://127.0.0.1:9001; }
    location /pub { push_stream_publisher; push_stream_channels_path $arg_id; }
}""")
    assert not flags, flags
    lines = [l.strip() for l in conf.splitlines()]
    assert 'ProxyPass "/pub" !' in lines
    assert r'ProxyPassMatch "\.php$" "http://127.0.0.1:9001"' in lines
    assert 'ProxyPass "/ws/" "balancer://pool/ws/" flushpackets=on upgrade=websocket' in lines
    assert 'ProxyPass "/api/" "http://127.0.0.1:9000/v2/" connectiontimeout=5' in lines
    i = lines.index("<Proxy balancer://pool>")
    assert lines[i + 1:i + 4] == ["BalancerMember http://10.0.0.1:8080",
                                  "BalancerMember http://10.0.0.2:8080", "</Proxy>"]
    # exclusions, then regex, then the longer prefixes first
    order = [l for l in lines if l.startswith(("ProxyPass ", "ProxyPassMatch "))]
    assert order[0] == 'ProxyPass "/pub" !' and order[1].startswith("ProxyPassMatch")


def test_servers_listen_and_tls():
    conf, flags = convert("""
server { listen 80; listen [::]:80; server_name a.example b.example; }
server { listen 443 ssl http2; server_name a.example;
         ssl_certificate /etc/ssl/a.pem; ssl_certificate_key /etc/ssl/a.key; }
server { listen 127.0.0.1:8060; }
server { listen 9000; }
""")
    lines = [l.strip() for l in conf.splitlines()]
    assert "<VirtualHost *:80 [::]:80>" in lines
    assert "ServerName a.example" in lines and "ServerAlias b.example" in lines
    assert "<VirtualHost *:443>" in lines and "SSLEngine on" in lines
    assert "SSLCertificateFile /etc/ssl/a.pem" in lines
    assert "Listen 127.0.0.1:8060" in lines and "Listen 9000" in lines
    assert "Listen 80" not in lines and "Listen 443" not in lines   # Debian's ports.conf
    assert any("http2 left out" in l for l in lines)


def test_templates_keep_nginx_escapes_end_to_end(httpd, workbase):
    """nginx reads \\" \\\\ \\n \\t in a quoted template; the converted Apache
    line gives the module the same template: the subscriber gets the same bytes."""
    port = pshttpd.free_port()
    nginx = r'''
http {
    push_stream_shared_memory_size 32M;
    push_stream_ping_message_text "pi\"ng";
    server {
        listen 127.0.0.1:%d;
        location /pub { push_stream_publisher; push_stream_channels_path $arg_id;
                        push_stream_store_messages on; }
        location ~ /lp/(.*) {
            push_stream_subscriber long-polling;
            push_stream_channels_path $1;
            push_stream_message_template "[~text~] \"q\" back\\slash tab\there\n'single' ~id~ $notavar";
            push_stream_header_template 'head\'s';
            push_stream_footer_template "</foot>";
        }
    }
}''' % port
    conf, flags = convert(nginx)
    assert not flags, flags
    srv = httpd(conf)
    at = At(port)
    assert request(at, "POST", "/pub?id=t", body=b"msg").status == 200
    r = request(at, "GET", "/lp/t.b1")
    assert r.body == b"head's[msg] \"q\" back\\slash tab\there\n'single' 1 $notavar</foot>"


def test_cli(workbase):
    src = os.path.join(workbase, "cli-nginx.conf")
    with open(src, "w") as f:
        f.write("server { listen 8000; location /pub { push_stream_publisher; "
                "push_stream_channels_path $arg_id; } location /x { return 204; } }\n")
    out = os.path.join(workbase, "cli-apache.conf")
    p = run_tool(src, "-o", out)
    assert p.returncode == 0 and p.stdout == ""
    assert f"{src}:1: not converted: return 204;" in p.stderr
    with open(out) as f:
        assert '<Location "/pub">' in f.read()
    assert run_tool("--strict", src).returncode == 1
    p = run_tool("-", stdin="server { location /p { push_stream_publisher; "
                            "push_stream_channels_path $arg_id; } }")
    assert p.returncode == 0 and "<VirtualHost *:80>" in p.stdout
    p = run_tool("-q", "-", stdin="server { location /p { push_stream_publisher; }")
    assert p.returncode == 2 and "missing '}'" in p.stderr
    p = run_tool("-", stdin='http {\n  push_stream_message_template "unterminated;\n}\n')
    assert p.returncode == 2 and "<stdin>:2: unterminated quoted string" in p.stderr
    p = run_tool(os.path.join(workbase, "does-not-exist.conf"))
    assert p.returncode == 2
    p = run_tool("--help")
    assert p.returncode == 0 and "nginx2apache" in p.stdout


def test_every_directive_name_exists_in_the_module():
    """The converter's table names only directives mod_pushstream defines."""
    defined = set()
    for name in ("ps_directives.c", "ps_auth.h"):   # the table, the auth rows
        with open(os.path.join(ROOT, "mod_pushstream", name)) as f:
            defined |= set(re.findall(r'AP_INIT_\w+\("(PushStream\w+)"', f.read()))
    assert defined, "no directive table found"
    names = {a for a, _ in n2a.PS.values()}
    assert names <= defined, names - defined
    # and every nginx directive of the module is known to the converter
    assert len(n2a.PS) == 36


def test_secure_link_becomes_a_commented_auth_recipe(configtest, workbase):
    """nginx secure_link (MD5 links) -> a commented PushStreamAuth recipe at its place,
    flagged for review; the output passes configtest, and so does the recipe once
    uncommented with a key file."""
    conf, flags = convert(r'''
http {
    push_stream_shared_memory_size 32M;
    server {
        listen 8000;
        location ~ /sub/(.*) {
            push_stream_subscriber;
            push_stream_channels_path $1;
            secure_link $arg_md5,$arg_expires;
            secure_link_md5 "$secure_link_expires$uri secret";
            if ($secure_link = "") { return 403; }
            if ($secure_link = "0") { return 410; }
        }
        location /pub {
            push_stream_publisher admin;
            push_stream_channels_path $arg_id;
            secure_link_secret s3cret;
        }
    }
}''')
    assert [m for _, m in flags if m.startswith("secure_link")] and len(flags) == 2, flags
    assert not [m for _, m in flags if "if (" in m or "return" in m], flags
    lines = [l.strip() for l in conf.splitlines()]
    assert "# PushStreamAuth subscribe" in lines and "# PushStreamAuth publish" in lines
    assert "# PushStreamAuthSource header cookie=pushstream_token arg=token" in lines
    assert any("was (line 9): secure_link $arg_md5,$arg_expires;" in l for l in lines), conf
    assert any("PushStream\\Token::forChannels" in l for l in lines), conf
    rc, out = configtest(conf.replace("Listen 8000", f"Listen {pshttpd.free_port()}"))
    assert rc == 0, out
    key = os.path.join(workbase, "n2a-auth.key")
    with open(key, "w") as f:
        f.write("k" * 32 + "\n")
    os.chmod(key, 0o644)
    enabled = re.sub(r"^(\s*)# (PushStreamAuth\w* )", r"\1\2", conf, flags=re.M)
    enabled = enabled.replace("PushStreamSharedMemorySize 32M",
                              f"PushStreamSharedMemorySize 32M\nPushStreamAuthKey HS256 file:{key}")
    enabled = enabled.replace("Listen 8000", f"Listen {pshttpd.free_port()}")
    assert len(re.findall(r"^\s*PushStreamAuth (subscribe|publish)$", enabled, re.M)) == 2, enabled
    rc, out = configtest(enabled)
    assert rc == 0, out + enabled
