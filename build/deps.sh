#!/usr/bin/env bash
# Installs the Debian packages needed to build and test mod_pushstream, or with
# --bench the bench-only ones (make bench).
# Quiet when everything is present; as non-root only reports what is missing.
#
#   build/deps.sh            build + `make test`
#   build/deps.sh --bench    bench only (not needed by `make test`)
set -euo pipefail

case "${1:-}" in
"")
    bench=0
    tag="deps.sh"
    # clang + libclang-rt-14-dev (libFuzzer's runtime): the fuzzers (test/fuzz/);
    # gdb: the harness reads the backtrace of a crashed child's core file;
    # libssl-dev: OpenSSL 3 headers (PushStreamAuth token checks; ps_tls.c,
    # detached TLS subscribers and tunnels);
    # debhelper, dpkg-dev, lintian (+ dh_apache2 of apache2-dev): make deb
    # and its test (test_package.py);
    # python3-h2: the HTTP/2 client of test_http2.py (many streams, resets, RFC 8441);
    # python3-yaml: test_channel_lists.py parses the YAML statistics;
    # libhiredis-dev: PushStreamRedis (several servers); redis-server: its
    # tests start their own on a loopback port (never the system service)
    PKGS="apache2 apache2-dev libcmocka-dev python3-pytest python3-websockets python3-yaml php-cli php-curl
          curl openssl libssl-dev gcc make procps chromium clang libclang-rt-14-dev gdb
          debhelper dpkg-dev lintian python3-h2 redis-server libhiredis-dev"
    ;;
--bench)
    bench=1
    tag="deps.sh --bench"
    # Debian's nginx with nchan (the module we compare against), wrk
    # (publish-rate scenario), gnuplot (the plot).  Profiling (perf,
    # valgrind) is not part of `make bench`.
    PKGS="nginx libnginx-mod-nchan wrk gnuplot-nox gcc make procps"
    ;;
*)
    echo "usage: build/deps.sh [--bench]" >&2
    exit 2
    ;;
esac

missing=()
for p in $PKGS; do
    # "install ok installed" is the only state that means usable.
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$st" = "install ok installed" ] || missing+=("$p")
done

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "$tag: missing Debian packages: ${missing[*]}" >&2
    echo "run as root: apt-get update && apt-get install -y ${missing[*]}" >&2
    exit 1
fi

echo "$tag: installing ${missing[*]}"
apt_opts=()
want_redis=0
for p in "${missing[@]}"; do
    if [ "$p" = redis-server ]; then want_redis=1; fi
done
if [ "$bench" -eq 1 ] || [ "$want_redis" -eq 1 ]; then
    # The nginx package would start a system nginx on port 80, redis-server
    # a system Redis on 6379 (the tests start their own, never the system
    # service): forbid service starts while installing (policy-rc.d, removed
    # afterwards unless it was there to begin with).
    policy=/usr/sbin/policy-rc.d
    ours=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy"
        chmod 755 "$policy"
        ours=1
    fi
    trap '[ "$ours" -eq 1 ] && rm -f "$policy"' EXIT
    if [ "$bench" -eq 1 ]; then apt_opts=(--no-install-recommends); fi
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_opts[@]}" "${missing[@]}" >/dev/null
