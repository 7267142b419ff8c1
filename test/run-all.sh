#!/usr/bin/env bash
# Body of `make test` (modules already built): unit tests, then integration tests,
# then as the very last line "N passed, N failed". Exit 1 if anything failed or nothing passed.
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
mkdir -p .build
counts=$ROOT/.build/unit-counts junit=$ROOT/.build/junit.xml
rm -f "$counts" "$junit"

echo "===== unit tests"
PS_UNIT_COUNTS=$counts make --no-print-directory unit; unit_rc=$?
if [ -s "$counts" ]; then
    read -r up uf < "$counts"
else
    up=0 uf=0
fi
# no counts file: the build (or make itself) failed before any test ran
if [ "$unit_rc" -ne 0 ] && [ "$uf" -eq 0 ]; then
    echo "!! make unit failed (rc=$unit_rc)"
    uf=1
fi

echo "===== integration tests"
PS_ROOT=$ROOT /usr/bin/python3 -m pytest test/integration -q -p no:cacheprovider \
    --junitxml="$junit"; py_rc=$?
# Count per <testcase> (the suite totals count a test with a teardown error twice).
read -r ip ifl is < <(/usr/bin/python3 - "$junit" <<'PY'
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
# 0 = ok, 1 = tests failed, 5 = no tests collected; anything else is a pytest-level problem
if [ "$py_rc" -ne 0 ] && [ "$py_rc" -ne 1 ] && [ "$py_rc" -ne 5 ] && [ "$ifl" -eq 0 ]; then
    echo "!! pytest exited with status $py_rc"
    ifl=1
fi

passed=$((up + ip)) failed=$((uf + ifl))
echo "unit: $up passed, $uf failed; integration: $ip passed, $ifl failed, $is skipped"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
