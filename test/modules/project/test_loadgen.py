"""bench/loadgen.c at tiny scale, so the benchmark's load generator cannot rot
(issue 7).  Correctness only: no timing is asserted here (`make bench` measures).

Builds .build/bench/loadgen with `make loadgen`, then runs each mode once
against a real httpd with mod_pushstream configured as in the benchmark
(bench/servers.py), and against loadgen's own WebSocket echo server."""
import json
import os
import subprocess
import sys

import pytest

from pyhttpd.env import ROOT

sys.path.insert(0, os.path.join(ROOT, "bench"))
import servers  # noqa: E402  (the benchmark's httpd configuration)

def run(lg, *args, timeout=60):
    p = subprocess.run([lg, *map(str, args)], capture_output=True, text=True,
                       timeout=timeout)
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    assert lines, f"no JSON from loadgen {args[0]} (rc={p.returncode}): {p.stderr}"
    out = json.loads(lines[-1])
    return p.returncode, out


@pytest.fixture
def push(httpd):
    return httpd(servers.OURS_PUSH, servers=1, threads=5)


def test_fanout_sse_and_ws(loadgen, push):
    rc, r = run(loadgen, "fanout", "--url", push.url("/{tr}/smoke"),
                "--pub-url", push.url("/pub?id=smoke"), "--n", 10, "--transport", "mix",
                "--rate", 100, "--count", 20, "--timeout", 30)
    assert rc == 0, r
    assert (r["ready"], r["failed"], r["pub_ok"], r["pub_errors"]) == (10, 0, 20, 0), r
    assert r["expected"] == r["received"] == 200 and r["lost"] == 0, r
    assert r["dups"] == 0 and r["stray"] == 0, r
    assert r["lat_us"]["n"] == 200 and r["lat_us"]["max"] >= r["lat_us"]["p50"] > 0


def test_fanout_stream_and_chunked_publisher_answers(loadgen, push):
    rc, r = run(loadgen, "fanout", "--url", push.url("/{tr}/smoke2"),
                "--pub-url", push.url("/pub?id=smoke2"), "--n", 3, "--transport", "stream",
                "--rate", 50, "--count", 5, "--pub-conns", 1, "--timeout", 30)
    assert rc == 0 and r["received"] == 15 and r["lost"] == 0, r


def test_sub_holds_and_pub_counts(loadgen, push):
    rc, r = run(loadgen, "sub", "--url", push.url("/{tr}/held{ch}"), "--n", 6,
                "--channels", 3, "--src-ips", 2, "--hold", 0.2, "--timeout", 30)
    assert rc == 0 and (r["ready"], r["failed"], r["closed"]) == (6, 0, 0), r
    rc, r = run(loadgen, "pub", "--pub-url", push.url("/pub?id=held0"), "--rate", 100,
                "--count", 5, "--timeout", 30)
    assert rc == 0 and (r["ok"], r["errors"]) == (5, 0), r


def test_subscriber_refused_is_counted(loadgen, push):
    rc, r = run(loadgen, "sub", "--url", push.url("/nowhere/x"), "--n", 2,
                "--transport", "sse", "--timeout", 30)
    assert rc == 1 and r["failed"] == 2 and "404" in r["error"], r


def test_echo_server_and_clients(loadgen):
    srv = subprocess.Popen([loadgen, "echod", "--port", "0", "--stdin", "--timeout", "60"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        port = json.loads(srv.stdout.readline())["port"]
        rc, r = run(loadgen, "echo", "--url", f"ws://127.0.0.1:{port}/e", "--conns", 2,
                    "--duration", 0.3, "--size", 300, "--timeout", 30)
        assert rc == 0 and r["ready"] == 2 and r["echoes"] > 0, r
        assert r["lat_us"]["n"] > 0, r
        rc, r = run(loadgen, "sub", "--url", f"ws://127.0.0.1:{port}/idle", "--n", 3,
                    "--transport", "ws", "--hold", 0.1, "--timeout", 30)
        assert rc == 0 and r["ready"] == 3, r
    finally:
        srv.stdin.close()
        srv.wait(timeout=30)


def test_loopback_only(loadgen):
    p = subprocess.run([loadgen, "sub", "--url", "http://10.0.0.1:80/x"],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 2 and "loopback only" in p.stderr
