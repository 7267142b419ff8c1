"""Publisher location (protocol B1, B2, B3, B15): methods, channel info formats,
multi-channel publish, DELETE, error answers, message ids/tags, limits."""
import json
import re
import socket
import time

from pyhttpd.client import (HttpParser, Stream, assert_header_only, assert_no_cache, info,
                            publish, request, wait_for)
from pyhttpd.conf import conf, location

RFC1123 = r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT"

# subscriber template showing every token, used to read ids, tags and times back
ALL_TOKENS = "~id~|~channel~|~text~|~size~|~time~|~tag~|~event-id~|~event-type~\\n"


def single_json(ch, published, stored, subs):
    return (f'{{"channel": "{ch}", "published_messages": {published}, '
            f'"stored_messages": {stored}, "subscribers": {subs}}}\r\n').encode()


def poll_messages(srv, ch, n):
    """The last n stored messages of ch, parsed from the ALL_TOKENS template:
    [{id, channel, text, size, time, tag, event-id, event-type}]."""
    r = request(srv, "GET", f"/poll/{ch}.b{n}")
    assert r.status == 200, r
    out = []
    for line in r.body.decode().split("\n")[:-1]:
        f = line.split("|")
        out.append(dict(zip(("id", "channel", "text", "size", "time", "tag", "event-id",
                             "event-type"), f)))
    return out


def test_publish_answers_channel_info(httpd):
    srv = httpd(conf())
    r = publish(srv, "ch1", b"hello")
    assert r.body == single_json("ch1", 1, 1, 0)
    assert r.header("Content-Type") == "application/json"
    assert_no_cache(r)
    r = publish(srv, "ch1", b"again", method="PUT")
    assert r.body == single_json("ch1", 2, 2, 0)
    r = request(srv, "GET", "/pub?id=ch1")
    assert r.status == 200
    assert r.body == single_json("ch1", 2, 2, 0)
    assert r.header("Content-Type") == "application/json"
    assert_no_cache(r)


def test_publish_answer_counts_subscribers(httpd):
    srv = httpd(conf())
    with Stream(srv, "/sub/counted"):
        wait_for(lambda: (info(srv, "counted") or {}).get("subscribers") == 1, 10,
                 what="1 subscriber")
        r = publish(srv, "counted", b"x")
        assert r.body == single_json("counted", 1, 1, 1)


def test_store_off_counts_but_does_not_store(httpd):
    srv = httpd(conf(store="off"))
    r = publish(srv, "ch", b"x")
    assert r.body == single_json("ch", 1, 0, 0)
    r = publish(srv, "ch", b"y")
    assert r.body == single_json("ch", 2, 0, 0)


def test_channel_info_formats_by_accept(httpd):
    srv = httpd(conf())
    publish(srv, "ch1", b"m")
    cases = [
        ("text/plain", "text/plain",
         b"channel: ch1\r\npublished_messages: 1\r\nstored_messages: 1\r\n"
         b"active_subscribers: 0\r\n"),
        ("application/yaml", "application/yaml",
         b"  channel: ch1\r\n  published_messages: 1\r\n  stored_messages: 1\r\n"
         b"  subscribers: 0\r\n"),
        ("application/xml", "application/xml",
         b'<?xml version="1.0" encoding="UTF-8" ?>\r\n<channel>\r\n  <name>ch1</name>\r\n'
         b"  <published_messages>1</published_messages>\r\n"
         b"  <stored_messages>1</stored_messages>\r\n  <subscribers>0</subscribers>\r\n"
         b"</channel>\r\n\r\n"),
        ("application/json", "application/json", single_json("ch1", 1, 1, 0)),
        ("text/x-json", "text/x-json", single_json("ch1", 1, 1, 0)),
        ("text/html", "application/json", single_json("ch1", 1, 1, 0)),
        ("*/*", "application/json", single_json("ch1", 1, 1, 0)),
    ]
    for accept, ctype, body in cases:
        r = request(srv, "GET", "/pub?id=ch1", headers={"Accept": accept})
        assert r.status == 200, (accept, r)
        assert r.header("Content-Type") == ctype, (accept, r)
        assert r.body == body, (accept, r)


def _group(body):
    """Checks the JSON group (detailed) format byte by byte around the items;
    returns (document, [item lines])."""
    text = body.decode()
    m = re.fullmatch(r'\{"hostname": "[^"]*", "time": "\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", '
                     r'"channels": (\d+), "wildcard_channels": 0, "uptime": \d+, '
                     r'"infos": \[\r\n(.*)\]\}\r\n', text, re.S)
    assert m, text
    items = m.group(2).split(",\r\n")
    assert items[-1].endswith("\r\n"), text
    items[-1] = items[-1][:-2]
    return json.loads(text), items


def test_multi_channel_publish_and_group_info(httpd):
    srv = httpd(conf())
    r = publish(srv, "a/b/c", b"to all")
    doc, items = _group(r.body)
    assert doc["channels"] == 3
    assert items == [single_json(ch, 1, 1, 0).decode()[:-2] for ch in "abc"]
    for ch in "abc":
        assert info(srv, ch) == {"channel": ch, "published_messages": 1,
                                 "stored_messages": 1, "subscribers": 0}
    # GET: only existing channels, in request order; 1 found -> single format
    r = request(srv, "GET", "/pub?id=c/nope/a")
    doc, items = _group(r.body)
    assert [i["channel"] for i in doc["infos"]] == ["c", "a"]
    r = request(srv, "GET", "/pub?id=nope/b")
    assert r.status == 200 and r.body == single_json("b", 1, 1, 0)
    assert_header_only(request(srv, "GET", "/pub?id=nope/nope2"), 404)
    # the same message was stored once per channel, with that channel's id
    for ch in "abc":
        assert request(srv, "GET", f"/poll/{ch}.b5").body == b"to all"


def test_get_missing_channel_is_404(httpd):
    srv = httpd(conf())
    assert_header_only(request(srv, "GET", "/pub?id=nope"), 404)


def test_channel_id_is_uri_unescaped(httpd):
    srv = httpd(conf())
    r = publish(srv, "sp%20ace", b"x")
    assert r.body == single_json("sp ace", 1, 1, 0)
    assert info(srv, "sp%20ace")["channel"] == "sp ace"


def test_backtrack_suffix_is_stripped_by_publisher(httpd):
    srv = httpd(conf())
    r = publish(srv, "room.b18.beautiful.b3", b"x")
    assert r.body == single_json("room.b18.beautiful", 1, 1, 0)
    r = publish(srv, "ch.b", b"x")
    assert r.body == single_json("ch.b", 1, 1, 0)


def test_empty_post_is_refused(httpd):
    srv = httpd(conf())
    r = request(srv, "POST", "/pub?id=ch", body=b"")
    assert_header_only(r, 400, "Empty post requests are not allowed.")
    assert info(srv, "ch") is None or info(srv, "ch")["published_messages"] == 0


def test_chunked_post_is_accepted(httpd):
    srv = httpd(conf())
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(b"POST /pub?id=chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
              b"Connection: close\r\n\r\n5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n")
    p = HttpParser()
    while not (p.complete or p.eof):
        data = s.recv(65536)
        p.feed(data) if data else p.feed_eof()
    s.close()
    assert p.status == 200, p.response()
    assert bytes(p.body) == single_json("chunked", 1, 1, 0)
    assert request(srv, "GET", "/poll/chunked.b1").body == b"hello, world"


def test_publish_is_binary_safe(httpd):
    srv = httpd(conf())
    data = bytes(range(256)) + b"\x00\r\n\r\n~text~" + bytes(range(255, -1, -1))
    publish(srv, "bin", data)
    r = request(srv, "GET", "/poll/bin.b1")
    assert r.status == 200 and r.body == data


def test_channel_info_on_publish_off(httpd):
    srv = httpd(conf(extra=location("/pubquiet", 'PushStreamPublisher\n'
                                                 'PushStreamChannelsPath "%{arg:id}"\n'
                                                 "PushStreamChannelInfoOnPublish off")))
    r = request(srv, "POST", "/pubquiet?id=q", body=b"x")
    assert r.status == 200, r
    assert r.header("Content-Length") == "0" and r.body == b"", r
    assert info(srv, "q")["published_messages"] == 1


def test_delete(httpd):
    srv = httpd(conf())
    publish(srv, "ch1", b"1")
    publish(srv, "ch1", b"2")
    r = request(srv, "DELETE", "/pub?id=ch1")
    assert r.status == 200, r
    assert r.header("X-Nginx-PushStream-Explain") == "Channel deleted."
    assert r.body == b""
    assert_no_cache(r)
    assert_header_only(request(srv, "GET", "/pub?id=ch1"), 404)
    # a new POST creates a new channel: ids restart at 1
    assert publish(srv, "ch1", b"3").body == single_json("ch1", 1, 1, 0)
    # missing channel(s): 404 without explain
    assert_header_only(request(srv, "DELETE", "/pub?id=nope"), 404)
    assert_header_only(request(srv, "DELETE", "/pub?id=nope/nope2"), 404)
    # at least one deleted: 200
    publish(srv, "ch3", b"x")
    r = request(srv, "DELETE", "/pub?id=ch3/ch4/ch1")
    assert r.status == 200 and r.header("X-Nginx-PushStream-Explain") == "Channel deleted."
    assert info(srv, "ch3") is None and info(srv, "ch1") is None


def test_methods(httpd):
    srv = httpd(conf(extra=location("/pubn", 'PushStreamPublisher normal\n'
                                             'PushStreamChannelsPath "%{arg:id}"')))
    publish(srv, "ch", b"x")
    for path, allow in (("/pub", "GET, POST, PUT, DELETE"), ("/pubn", "GET, POST, PUT")):
        for method in ("PATCH", "PROPFIND") + (("DELETE",) if path == "/pubn" else ()):
            r = request(srv, method, f"{path}?id=ch")
            assert r.status == 405, (method, path, r)
            assert r.header("Allow") == allow, (method, path, r)
            assert r.header("Content-Length") == "0" and r.body == b"", r
            assert_no_cache(r)
        r = request(srv, "OPTIONS", f"{path}?id=ch")
        assert r.status == 200, r
        assert r.header("Content-Length") == "0" and r.body == b"", r
        assert_no_cache(r)
    assert info(srv, "ch")["published_messages"] == 1


def test_head_is_405_header_only(httpd):
    """B1: HEAD is not allowed anywhere; the 405 is a header-only error like the others
    (Content-Length: 0 included, which httpd's header filter drops for HEAD unless the
    module prevents it)."""
    srv = httpd(conf())
    publish(srv, "ch", b"x")
    for path, allow in (("/pub?id=ch", "GET, POST, PUT, DELETE"), ("/sub/ch", "GET"),
                        ("/lp/ch", "GET"), ("/poll/ch", "GET")):
        r = request(srv, "HEAD", path)
        assert r.status == 405, (path, r)
        assert r.header("Allow") == allow, (path, r)
        assert_no_cache(r)
        assert r.header("Content-Length") == "0", (path, r)


def test_no_channel_id(httpd):
    srv = httpd(conf())
    for method in ("GET", "POST", "DELETE"):
        r = request(srv, method, "/pub", body=b"x" if method == "POST" else None)
        assert_header_only(r, 400, "No channel id provided.")
        r = request(srv, method, "/pub?id=", body=b"x" if method == "POST" else None)
        assert_header_only(r, 400, "No channel id provided.")


def test_all_and_wildcard_ids_are_forbidden(httpd):
    srv = httpd(conf())
    publish(srv, "ok", b"x")
    for ids in ("ALL", "ch*", "*", "ok/ALL", "a%2Ab"):
        for method in ("GET", "POST", "PUT", "DELETE"):
            r = request(srv, method, f"/pub?id={ids}",
                        body=b"x" if method in ("POST", "PUT") else None)
            assert_header_only(r, 403, "Channel id not authorized for this method.")
    assert info(srv, "ok")["published_messages"] == 1
    # ALL is case-sensitive: `all` is an ordinary channel
    assert publish(srv, "all", b"x").body == single_json("all", 1, 1, 0)


def test_channel_id_too_large(httpd):
    srv = httpd(conf(server="PushStreamMaxChannelIdLength 10"))
    assert publish(srv, "a" * 10, b"x").status == 200
    for method in ("GET", "POST", "PUT", "DELETE"):
        r = request(srv, method, f"/pub?id={'b' * 11}",
                    body=b"x" if method in ("POST", "PUT") else None)
        assert_header_only(r, 400, "Channel id is too large.")
    # per id, after unescaping
    r = request(srv, "POST", f"/pub?id=ok/{'c' * 11}", body=b"x")
    assert_header_only(r, 400, "Channel id is too large.")
    assert publish(srv, "%20" * 10, b"x").status == 200
    # subscribers are checked too
    r = request(srv, "GET", f"/poll/{'d' * 11}")
    assert_header_only(r, 400, "Channel id is too large.")


def test_max_number_of_channels(httpd):
    srv = httpd(conf(server="PushStreamMaxNumberOfChannels 2"))
    publish(srv, "c1", b"x")
    publish(srv, "c2", b"x")
    assert_header_only(request(srv, "POST", "/pub?id=c3", body=b"x"), 403,
                       "Number of channels were exceeded.")
    assert publish(srv, "c1", b"y").status == 200   # existing ones still take messages


def test_event_id_and_type(httpd):
    srv = httpd(conf(poll=f'PushStreamMessageTemplate "{ALL_TOKENS}"'))
    publish(srv, "ev", b"one", headers={"Event-Id": "id1", "Event-Type": "type1"})
    publish(srv, "ev", b"two", headers={"event-id": "id2"})
    publish(srv, "ev", b"three", headers={"Event-Ids": "no", "Event-I": "no", "Event-Typ": "no"})
    msgs = poll_messages(srv, "ev", 3)
    assert [(m["text"], m["event-id"], m["event-type"]) for m in msgs] == \
        [("one", "id1", "type1"), ("two", "id2", ""), ("three", "", "")]


def test_message_ids_times_and_tags(httpd):
    srv = httpd(conf(poll=f'PushStreamMessageTemplate "{ALL_TOKENS}"'))
    t0 = int(time.time())
    order = []
    for i in range(6):
        ch = "tagA" if i % 2 == 0 else "tagB"
        publish(srv, ch, f"m{i}")
        order.append(ch)
    t1 = int(time.time())
    a, b = poll_messages(srv, "tagA", 10), poll_messages(srv, "tagB", 10)
    assert [m["id"] for m in a] == ["1", "2", "3"] and [m["id"] for m in b] == ["1", "2", "3"]
    assert [m["channel"] for m in a] == ["tagA"] * 3
    assert [m["text"] for m in a] == ["m0", "m2", "m4"] and [m["size"] for m in a] == ["2"] * 3
    # time: the publish second, RFC 1123
    for m in a + b:
        assert re.fullmatch(RFC1123, m["time"]), m
        t = time.mktime(time.strptime(m["time"], "%a, %d %b %Y %H:%M:%S GMT")) - time.timezone
        assert t0 <= t <= t1, (m, t0, t1)
    # tag: 1 + previous tag when the previous message of the whole zone has the same second
    seq = []
    ia, ib = iter(a), iter(b)
    for ch in order:
        seq.append(next(ia) if ch == "tagA" else next(ib))
    prev = None
    for m in seq:
        want = int(prev["tag"]) + 1 if prev and prev["time"] == m["time"] else 1
        assert int(m["tag"]) == want, seq
        prev = m


def test_max_message_size(httpd):
    srv = httpd(conf(server="PushStreamMaxMessageSize 1k"))
    publish(srv, "big", b"a" * 1024)
    r = request(srv, "POST", "/pub?id=big", body=b"b" * 1025)
    assert r.status == 413, r
    assert r.body == b"" and r.header("Content-Length") == "0", r
    assert_no_cache(r)
    # chunked, so the length is only known while reading
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(b"POST /pub?id=big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
              b"Connection: close\r\n\r\n" + (b"200\r\n" + b"c" * 512 + b"\r\n") * 3
              + b"0\r\n\r\n")
    p = HttpParser()
    while not (p.complete or p.eof):
        try:
            data = s.recv(65536)
        except ConnectionResetError:
            data = b""
        p.feed(data) if data else p.feed_eof()
    s.close()
    assert p.status == 413, p.response()
    # nothing was stored or published, and nothing created
    assert info(srv, "big") == {"channel": "big", "published_messages": 1,
                                "stored_messages": 1, "subscribers": 0}
    assert request(srv, "POST", "/pub?id=big2", body=b"b" * 2000).status == 413
    assert info(srv, "big2") is None


def test_shared_memory_full(httpd):
    ttl = 6     # longer than filling the segment takes on a loaded machine
    srv = httpd(conf(shm="128K", server=f"PushStreamMessageTtl {ttl}s"))
    body = b"x" * 3000
    statuses = []
    first = last_ok = None
    for i in range(200):
        r = request(srv, "POST", "/pub?id=full", body=body)
        statuses.append(r.status)
        if r.status != 200:
            break
        last_ok = time.time()
        first = first or last_ok
    assert statuses[-1] == 500, statuses
    assert len(statuses) > 3, statuses   # a few 3 KB messages fit in 128K
    assert "PushStreamSharedMemorySize" in srv.error_log()
    stored = info(srv, "full")["stored_messages"]
    assert stored == len(statuses) - 1
    # the stored messages expire after the TTL; then a publish fits again
    deadline = last_ok + ttl + 3 + 2   # TTL + ~3 s of cleanup + slack for a loaded machine
    while True:
        r = request(srv, "POST", "/pub?id=full", body=body)
        if r.status == 200:
            break
        assert r.status == 500, r
        assert time.time() < deadline, "publish still refused after TTL + 5 s"
        time.sleep(0.25)
    # not before the oldest message could expire (message times have 1 s resolution)
    assert time.time() - first >= ttl - 1


def test_max_messages_stored_per_channel(httpd):
    srv = httpd(conf(server="PushStreamMaxMessagesStoredPerChannel 3"))
    for i in range(1, 6):
        r = publish(srv, "few", f"m{i}")
        assert r.body == single_json("few", i, min(i, 3), 0)
    assert request(srv, "GET", "/poll/few.b10").body == b"m3m4m5"


def test_message_ttl_and_channel_inactivity(httpd):
    srv = httpd(conf(server=["PushStreamMessageTtl 2s", "PushStreamChannelInactivityTime 2s"]))
    t0 = time.time()
    publish(srv, "short", b"x")
    assert info(srv, "short")["stored_messages"] == 1
    # the message goes after its TTL (cleanup runs every few seconds) ...
    wait_for(lambda: info(srv, "short") is None or info(srv, "short")["stored_messages"] == 0,
             timeout=2 + 6, interval=0.2, what="the stored message to expire")
    assert time.time() - t0 >= 1.5
    # ... and then the empty, unused channel itself
    wait_for(lambda: info(srv, "short") is None, timeout=2 + 6, interval=0.2,
             what="the inactive channel to be removed")
    # a subscriber keeps its channel alive
    with Stream(srv, "/sub/kept"):
        wait_for(lambda: (info(srv, "kept") or {}).get("subscribers") == 1, 5,
                 what="1 subscriber")
        time.sleep(5)
        assert info(srv, "kept") is not None
