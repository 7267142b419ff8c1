"""Statistics location (protocol B12): summarized, ALL, prefix*, listed."""
import http.client
import json
import time

from pyhttpd.conf import location, pub_location

CONF = ("PushStreamSharedMemorySize 32M\n" + pub_location()
        + location("/channels-stats", ["PushStreamChannelsStatistics",
                                       'PushStreamChannelsPath "%{arg:id}"']))


def _get(srv, path, headers=None, method="GET"):
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    c.request(method, path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r, body


def _publish(srv, ids, body=b"x"):
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    c.request("POST", f"/pub?id={ids}", body=body)
    r = c.getresponse()
    r.read()
    assert r.status == 200


def test_summarized_lists_every_child(httpd):
    srv = httpd(CONF)
    _publish(srv, "a/b")
    r, body = _get(srv, "/channels-stats")
    assert r.status == 200
    assert r.getheader("Content-Type") == "application/json"
    assert r.getheader("X-Nginx-PushStream-Tag") == "0.5.5"
    doc = json.loads(body)
    assert doc["channels"] == 2
    assert doc["published_messages"] == 2
    assert doc["stored_messages"] == 2
    pids = sorted(int(w["pid"]) for w in doc["by_worker"])
    assert pids == sorted(srv.child_pids())


def test_all_prefix_and_listed(httpd):
    srv = httpd(CONF)
    _publish(srv, "ch1/ch2/other")
    r, body = _get(srv, "/channels-stats?id=ALL")
    assert [i["channel"] for i in json.loads(body)["infos"]] == ["ch1", "ch2", "other"]
    r, body = _get(srv, "/channels-stats?id=ch*")
    assert [i["channel"] for i in json.loads(body)["infos"]] == ["ch1", "ch2"]
    r, body = _get(srv, "/channels-stats?id=other/ch1")
    assert [i["channel"] for i in json.loads(body)["infos"]] == ["other", "ch1"]
    r, body = _get(srv, "/channels-stats?id=ch1", {"Accept": "text/plain"})
    assert body == (b"channel: ch1\r\npublished_messages: 1\r\nstored_messages: 1\r\n"
                    b"active_subscribers: 0\r\n")
    r, body = _get(srv, "/channels-stats?id=nope")
    assert r.status == 404 and body == b""
    assert r.getheader("X-Nginx-PushStream-Commit") == "3bc016f811d50374251960db091557571dfd7393"
    r, body = _get(srv, "/channels-stats", method="POST")
    assert r.status == 405 and r.getheader("Allow") == "GET"


def test_prometheus_and_server_status(httpd):
    srv = httpd(CONF)
    _publish(srv, "p1/p2")
    for path, headers in (("/channels-stats?format=prometheus", {}),
                          ("/channels-stats", {"Accept": "text/plain; version=0.0.4"})):
        # a child appears among the processes a moment before its
        # child_init has claimed its worker slot: wait for every child
        deadline = time.time() + 10
        while True:
            r, body = _get(srv, path, headers)
            assert r.status == 200
            assert r.getheader("Content-Type").startswith("text/plain; version=0.0.4")
            text = body.decode()
            pids = sorted(int(l.split('"')[1]) for l in text.splitlines()
                          if l.startswith("pushstream_worker_subscribers{"))
            if pids == sorted(srv.child_pids()) or time.time() > deadline:
                break
            time.sleep(0.2)
        assert "# TYPE pushstream_channels gauge\npushstream_channels 2\n" in text
        assert "pushstream_published_messages_total 2\n" in text
        assert pids == sorted(srv.child_pids())
    r, body = _get(srv, "/server-status?auto")
    assert b"PushStreamChannels: 2\n" in body
    r, body = _get(srv, "/server-status")
    assert b"<h2>mod_pushstream</h2>" in body


def test_prefix_with_nul_byte_is_not_all(httpd):
    """`a%00*` asks for ids starting with "a\\0" (none can exist), not for
    every channel: the prefix is cut at the '*', not at the NUL."""
    srv = httpd(CONF)
    _publish(srv, "ab/other")
    r, body = _get(srv, "/channels-stats?id=a%00*")
    assert r.status == 200
    assert json.loads(body)["infos"] == []
    r, body = _get(srv, "/channels-stats?id=a*")
    assert [i["channel"] for i in json.loads(body)["infos"]] == ["ab"]
