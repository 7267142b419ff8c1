#!/usr/bin/env bash
# Bench-only Debian packages (not needed by `make test`): Debian's nginx with
# nchan (the module we compare against), wrk (publish-rate scenario), gnuplot
# (the plot), linux-perf and valgrind (profiling).  Quiet when all present.
set -euo pipefail

PKGS="nginx libnginx-mod-nchan wrk gnuplot-nox gcc make procps"

missing=()
for p in $PKGS; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$st" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "bench/deps.sh: missing Debian packages: ${missing[*]}" >&2
    echo "run as root: apt-get update && apt-get install -y ${missing[*]}" >&2
    exit 1
fi

echo "bench/deps.sh: installing ${missing[*]}"
# The nginx package would start a system nginx on port 80: forbid service
# starts while installing (policy-rc.d, removed afterwards unless it was ours
# to begin with).
policy=/usr/sbin/policy-rc.d
ours=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    ours=1
fi
trap '[ "$ours" -eq 1 ] && rm -f "$policy"' EXIT
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
