#!/usr/bin/env bash
# Runs cmocka unit-test binaries, shows their output, sums the results.
#   test/run-unit.sh BIN...     (PS_UNIT_COUNTS=file -> "PASSED FAILED" written there)
passed=0 failed=0
for bin in "$@"; do
    echo "== $bin"
    # timeout: a hung binary counts as a failure instead of hanging `make test`
    out=$(CMOCKA_MESSAGE_OUTPUT=stdout timeout 300 "$bin" 2>&1); rc=$?
    printf '%s\n' "$out"
    # A binary may run several groups: sum every summary line.
    read -r p f < <(printf '%s\n' "$out" | awk '
        /^\[  PASSED  \] [0-9]+ test/ { p += $4 }
        /^\[  FAILED  \] [0-9]+ test/ { f += $4 }
        END { print p + 0, f + 0 }')
    passed=$((passed + p))
    if [ "$f" -gt 0 ]; then
        failed=$((failed + f))
    elif [ "$rc" -ne 0 ]; then  # crashed or died before its summary
        echo "!! $bin exited with status $rc"
        failed=$((failed + 1))
    fi
done
echo "unit: $passed passed, $failed failed"
[ -n "${PS_UNIT_COUNTS:-}" ] && echo "$passed $failed" > "$PS_UNIT_COUNTS"
[ "$failed" -eq 0 ]
