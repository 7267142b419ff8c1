#!/usr/bin/env bash
# Body of `make test`: up to two passes, each = build modules + unit tests,
# run the unit tests, run the integration suite:
#   normal     BUILD=.build, plain -O2 build
#   sanitizer  BUILD=.build-san, SANITIZE=1 (ASan + UBSan); httpd alone gets
#              the ASan runtime preloaded (PS_SAN_PRELOAD), reports land in
#              each server's logs/sanitizer.<pid> and fail the test (conftest)
# SANITIZE unset: both passes; SANITIZE=0: normal only; SANITIZE=1: sanitizer
# only.  Then the fuzz smoke and the include-graph check once, and as the very last line
# "N passed, N failed" summed over everything.  Exit 1 if anything failed.
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
mkdir -p .build
summary="" up=0 uf=0 ip=0 ifl=0 is=0

# ps_pass NAME BUILD_DIR SANITIZE [env...]: adds to up/uf/ip/ifl/is.
ps_pass() {
    local name=$1 build=$2 san=$3; shift 3
    local counts=$build/unit-counts junit=$build/junit.xml t0=$SECONDS
    local p=0 f=0 rc a=0 b=0 c=0
    mkdir -p "$build"
    rm -f "$counts" "$junit"
    echo "===== [$name] build"
    if ! make --no-print-directory modules BUILD="$build" SANITIZE="$san"; then
        echo "!! [$name] module build failed"
        uf=$((uf + 1)); summary+="$name: build failed; "
        return
    fi
    echo "===== [$name] unit tests"
    PS_UNIT_COUNTS=$counts make --no-print-directory unit BUILD="$build" SANITIZE="$san"
    rc=$?
    [ -s "$counts" ] && read -r p f < "$counts"
    # no counts file: the build (or make itself) failed before any test ran
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "!! [$name] make unit failed (rc=$rc)"
        f=1
    fi
    up=$((up + p)) uf=$((uf + f))
    echo "===== [$name] integration tests"
    env "$@" PS_ROOT="$ROOT" PS_BUILD="$build" /usr/bin/python3 -m pytest test/modules \
        -q -p no:cacheprovider --junitxml="$junit"; rc=$?
    # Count per <testcase> (the suite totals count a test with a teardown error twice).
    read -r a b c < <(/usr/bin/python3 - "$junit" <<'PY'
import sys, xml.etree.ElementTree as ET
p = f = s = 0
try:
    for tc in ET.parse(sys.argv[1]).iter("testcase"):
        tags = {c.tag for c in tc}
        if tags & {"failure", "error"}:
            f += 1
        elif "skipped" in tags:
            s += 1
        else:
            p += 1
except (OSError, ET.ParseError):
    pass
print(p, f, s)
PY
)
    # 0 = ok, 1 = tests failed, 5 = no tests collected; else a pytest-level problem
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ] && [ "$rc" -ne 5 ] && [ "$b" -eq 0 ]; then
        echo "!! [$name] pytest exited with status $rc"
        b=1
    fi
    ip=$((ip + a)) ifl=$((ifl + b)) is=$((is + c))
    summary+="$name: unit $p/$f, integration $a/$b/$c (passed/failed[/skipped]) in $((SECONDS - t0))s; "
}

# which passes; then out of the environment, so that no sub-make sees it
passes=${SANITIZE:-}
unset SANITIZE MAKEFLAGS MFLAGS   # `make test SANITIZE=1` passes it in MAKEFLAGS too
if [ "$passes" != 1 ]; then
    ps_pass normal "$ROOT/.build" 0
fi
if [ "$passes" != 0 ]; then
    # PS_SLOW: timing-bound tests multiply their waits (ASan is ~2-3x slower);
    # PS_CAPACITY_N: test_capacity's subscriber count (10 000 under ASan
    # alone would take most of the 2-core CI box's time budget).
    ps_pass sanitizer "$ROOT/.build-san" 1 \
        PS_SAN_PRELOAD="$(gcc -print-file-name=libasan.so)" PS_SLOW=3 PS_CAPACITY_N=3000
fi

# ===== fuzz smoke: once per `make test` (not per build/sanitizer pass), one
# pass/fail per fuzzer; sets fp / ff.
ps_fuzz_smoke() {
    local fcounts=$ROOT/.build/fuzz-counts rc
    echo "===== fuzz smoke"
    rm -f "$fcounts"
    PS_FUZZ_COUNTS=$fcounts make --no-print-directory fuzz-smoke; rc=$?
    if [ -s "$fcounts" ]; then
        read -r fp ff < "$fcounts"
    else
        fp=0 ff=0
    fi
    # no counts file: building the fuzzers failed
    if [ "$rc" -ne 0 ] && [ "$ff" -eq 0 ]; then
        echo "!! make fuzz-smoke failed (rc=$rc)"
        ff=1
    fi
}
ps_fuzz_smoke

# ===== include graph (test/include_graph.py): no new cycle among the
# project's own headers and sources; one pass/fail.
echo "===== include graph"
if /usr/bin/python3 test/include_graph.py; then gp=1 gf=0; else gp=0 gf=1; fi

passed=$((up + ip + fp + gp)) failed=$((uf + ifl + ff + gf))
echo "$summary"
echo "unit: $up passed, $uf failed; integration: $ip passed, $ifl failed, $is skipped;" \
     "fuzz: $fp passed, $ff failed; include graph: $gp passed, $gf failed"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
