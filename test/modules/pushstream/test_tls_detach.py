"""Idle TLS subscribers leave httpd too (issue 16): once a streaming, EventSource or
WebSocket subscriber over https/wss has been idle a moment, the loop takes over the
TLS session mod_ssl negotiated (ps_tls.c) on a dup() of the socket and httpd's
connection is released.  These tests check that such subscribers still get messages
(small and large: partial TLS writes), pings and replays, that client frames are
read through the session, and that every ending (TTL, client close, graceful
restart) sends a TLS close_notify rather than cutting the TCP connection.  The
scenarios shared with plain TCP are test_detach.py's (parametrized plain / tls);
here: the TLS-only ones."""
import json
import os
import subprocess
import time

from pyhttpd.client import Subscriber as Stream, publish, wait_subscribers

from .test_detach import CONF, DETACHED, TAKEN, server, wait_detached


def wait_taken(srv, n, timeout=10):
    wait_detached(srv, n, timeout, tls=True)


# ---------------------------------------------------------------- cycles: nothing left behind
SLOW = float(os.environ.get("PS_SLOW") or 1)
# 20 000 subscribe/disconnect cycles (fewer under the sanitizers: PS_SLOW)
CYCLES = int(os.environ.get("PS_TLS_CYCLES") or (20000 if SLOW == 1 else 4000))
ROUND = 2000 if SLOW == 1 else 500


def test_tls_subscribe_disconnect_cycles_leave_nothing(httpd, loadgen, monkeypatch):
    """Rounds of TLS subscribers (EventSource and WebSocket, bench/loadgen.c) that
    all leave httpd, then all vanish (RST, no close_notify): afterwards the child's
    RSS is where it was after the first round and the event MPM counts no
    connection; every session was taken over (freed by us, not mod_ssl)."""
    if os.environ.get("PS_SAN_PRELOAD"):
        monkeypatch.setenv("ASAN_OPTIONS", "quarantine_size_mb=0")
    lg = loadgen
    srv = server(httpd, True, CONF.replace("LogLevel info pushstream:trace1",
                                           "LogLevel info pushstream:trace1 mpm_event:trace6"))
    kid = srv.child_pids()[0]
    done = 0

    def round_trip():
        nonlocal done
        r = subprocess.run([lg, "sub", "--url", f"https://127.0.0.1:{srv.ssl_port}/{{tr}}/c{{ch}}",
                            "--n", str(ROUND), "--transport", "mix", "--channels", "20",
                            "--conc", "200", "--hold", str(0.8 * SLOW), "--timeout", "120"],
                           capture_output=True, text=True, timeout=180)
        out = json.loads([l for l in r.stdout.splitlines() if l.startswith('{"mode"')][-1])
        assert r.returncode == 0 and out["ready"] == ROUND, (out, r.stderr)
        done += ROUND
        wait_taken(srv, done, timeout=30 * SLOW)
        for i in range(20):
            wait_subscribers(srv, f"c{i}", 0, timeout=20 * SLOW)

    # The first half warms up: mod_ssl's handshakes run on every worker thread,
    # each with its own malloc arena, and those settle at their high-water mark
    # (~8 MB here, flat after ~6 rounds of 2 000).  A session not freed would
    # add ~2-4 KB per cycle over the second half.
    t0 = time.time()
    while done < CYCLES // 2:
        round_trip()
    base = srv.rss_kb()[kid]
    while done < CYCLES:
        round_trip()
    # ASan's allocator keeps caches of its own per thread (10 workers ran the
    # handshakes): a looser bound there; the normal pass resolves ~150 B/cycle,
    # and a session not freed (~15 KB each) would add 30 MB even under ASan
    limit = 1536 if SLOW == 1 else 3072
    growth = srv.rss_growth_kb(kid, base, limit)
    # the MPM's own accounting: no connection, no suspended one (its listener
    # logs them at trace6 when it wakes: mpm_idle() wakes it, else the last
    # line read may be one logged while the last round was still closing)
    deadline = time.time() + 10 * SLOW
    while not srv.mpm_idle([kid]) and time.time() < deadline:
        time.sleep(0.5)
    counts = srv.mpm_counts().get(kid)
    print(f"\n{done} TLS subscribe/disconnect cycles in {time.time() - t0:.1f} s; "
          f"child RSS growth over the second half {growth} kB; MPM {counts}")
    assert counts == (0, 0), counts
    assert growth < limit, f"RSS grew by {growth} kB over {CYCLES - CYCLES // 2} cycles"
    assert "AH00052" not in srv.error_log()


def test_tls_stream_with_client_certificates_stays_in_httpd(httpd):
    """With client certificates asked for (SSLVerifyClient), the session is not
    taken over: the stream stays in httpd (PS0160 says why) and works as before."""
    srv = server(httpd, True, CONF + "\nSSLVerifyClient optional_no_ca\n")
    s = Stream(srv, "/sub/cc", tls=True)
    plain = Stream(srv, "/sub/cc")
    try:
        wait_subscribers(srv, "cc", 2)
        deadline = time.time() + 10
        while "PS0160: TLS stream stays in httpd: client certificates" not in srv.error_log():
            assert time.time() < deadline, "no PS0160"
            time.sleep(0.1)
        # the plain one leaves httpd, the TLS one does not
        while DETACHED not in srv.error_log():
            assert time.time() < deadline, "the plain stream did not leave httpd"
            time.sleep(0.1)
        time.sleep(0.5)
        assert srv.error_log().count(TAKEN) == 0
        assert srv.error_log().count(DETACHED) == 1
        publish(srv, "cc", b"still here")
        s.wait_for(b"still here|", timeout=5)
        plain.wait_for(b"still here|", timeout=5)
    finally:
        s.close()
        plain.close()
    wait_subscribers(srv, "cc", 0)
