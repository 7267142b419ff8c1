#!/usr/bin/env bash
# Runs the libFuzzer targets built by test/fuzz/fuzz.mk.
#   test/fuzz/run.sh run   SECONDS FUZZDIR TARGET...  fuzz, growing the corpus
#   test/fuzz/run.sh smoke SECONDS FUZZDIR TARGET...  replay corpus, fuzz briefly
#   test/fuzz/run.sh merge 0       FUZZDIR TARGET...  minimize the corpus
# One pass/fail per target; PS_FUZZ_COUNTS=file -> "PASSED FAILED" written there.
# A crash leaves FUZZDIR/artifacts/<target>-crash-<sha1>; the log is in
# FUZZDIR/logs/<target>.log.
cd "$(dirname "$0")/../.." || exit 1
mode=$1 secs=$2 dir=$3
shift 3
corpus=test/fuzz/corpus
passed=0 failed=0

# Longest input per target: enough for a few frames / a long path.
max_len() {
    case $1 in
    websocket|wstrack) echo 4096 ;;
    template) echo 2048 ;;
    store|jwt) echo 1024 ;;
    *) echo 512 ;;
    esac
}

# Hand-written seeds have descriptive names; what libFuzzer adds is named
# by its SHA-1.  merge keeps every seed and only the added inputs that
# bring new coverage.
is_sha1() { [[ $(basename "$1") =~ ^[0-9a-f]{40}$ ]]; }

merge_one() {
    local t=$1 bin=$2 tmp=$dir/merge/$1 f
    rm -rf "$tmp" && mkdir -p "$tmp"
    for f in "$corpus/$t"/*; do
        [ -f "$f" ] && ! is_sha1 "$f" && cp "$f" "$tmp/"
    done
    "$bin" -merge=1 -max_len="$(max_len "$t")" "$tmp" "$corpus/$t" \
        >"$dir/logs/$t.log" 2>&1 || return 1
    for f in "$corpus/$t"/*; do
        is_sha1 "$f" && rm -f "$f"
    done
    for f in "$tmp"/*; do
        is_sha1 "$f" && cp "$f" "$corpus/$t/"
    done
    return 0
}

run_one() {
    local t=$1 bin=$2 log=$dir/logs/$1.log
    local opts=(-max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=2048
                -artifact_prefix="$dir/artifacts/$t-" -print_final_stats=1)
    case $mode in
    run)
        "$bin" "${opts[@]}" -max_total_time="$secs" "$corpus/$t" >"$log" 2>&1
        ;;
    smoke)
        # the whole corpus once (every committed crash input included),
        # then a short run into a scratch dir so the corpus stays as is
        "$bin" "${opts[@]}" -runs=0 "$corpus/$t" >"$log" 2>&1 || return 1
        rm -rf "$dir/scratch/$t" && mkdir -p "$dir/scratch/$t"
        "$bin" "${opts[@]}" -max_total_time="$secs" "$dir/scratch/$t" \
            "$corpus/$t" >>"$log" 2>&1
        ;;
    merge)
        merge_one "$t" "$bin"
        ;;
    esac
}

mkdir -p "$dir/logs" "$dir/artifacts"
for t in "$@"; do
    bin=$dir/fuzz_$t
    mkdir -p "$corpus/$t"
    start=$SECONDS
    if run_one "$t" "$bin"; then
        passed=$((passed + 1))
        execs=$(grep -o 'number_of_executed_units: [0-9]*' "$dir/logs/$t.log" \
                | awk '{ s += $2 } END { print s + 0 }')
        cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$dir/logs/$t.log" | tail -1)
        echo "PASS fuzz_$t ($((SECONDS - start)) s, $execs execs, ${cov:-no stats}," \
             "corpus $(find "$corpus/$t" -type f | wc -l) files)"
    else
        failed=$((failed + 1))
        echo "FAIL fuzz_$t (log: $dir/logs/$t.log)"
        grep -E 'ERROR|SUMMARY|invariant failed|runtime error|Test unit written' \
            "$dir/logs/$t.log" | head -20
        art=$(grep -o 'Test unit written to [^ ]*' "$dir/logs/$t.log" | tail -1)
        art=${art##* }
        echo "   reproduce: $bin ${art:-<crash-file>}"
    fi
done
echo "fuzz: $passed passed, $failed failed"
[ -n "${PS_FUZZ_COUNTS:-}" ] && echo "$passed $failed" > "$PS_FUZZ_COUNTS"
[ "$failed" -eq 0 ]
