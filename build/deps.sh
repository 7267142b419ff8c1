#!/usr/bin/env bash
# Installs the Debian packages needed to build and test mod_pushstream.
# Quiet when everything is present; as non-root only reports what is missing.
set -euo pipefail

# clang + libclang-rt-14-dev (libFuzzer's runtime): the fuzzers (test/fuzz/);
# gdb: the harness reads the backtrace of a crashed child's core file
PKGS="apache2 apache2-dev libcmocka-dev python3-pytest python3-websockets php-cli php-curl
      curl openssl gcc make procps chromium clang libclang-rt-14-dev gdb"

missing=()
for p in $PKGS; do
    # "install ok installed" is the only state that means usable.
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$st" = "install ok installed" ] || missing+=("$p")
done

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: missing Debian packages: ${missing[*]}" >&2
    echo "run as root: apt-get update && apt-get install -y ${missing[*]}" >&2
    exit 1
fi

echo "deps.sh: installing ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
