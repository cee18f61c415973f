#!/usr/bin/env bash
# The host harness catches what docs/cuda.md says it does: a missing
# __syncthreads (TSan race), a divergent barrier (deadlock report), and warp
# intrinsics with CUDA's results. Binary: build/tsan/tests/harness_selftest.
set -u
cd "$(dirname "$0")/../.."
bin=build/tsan/tests/harness_selftest
ok=true
expect() { # $1 = what, $2 = pattern the output must contain, $3 = expected exit status (0 or nonzero)
    local out rc
    out=$("$bin" "$1" 2>&1); rc=$?
    if ! grep -q "$2" <<<"$out" || { [ "$3" = 0 ] && [ $rc -ne 0 ]; } || { [ "$3" != 0 ] && [ $rc -eq 0 ]; }; then
        echo "harness self-test '$1': expected /$2/ and status $3, got $rc:"; echo "$out" | head -20; ok=false
    else
        echo "harness self-test '$1': ok"
    fi
}
expect race "ThreadSanitizer: data race" 1
expect synced "synced: out\[63\] = 0" 0
expect diverge "deadlock" 1
expect shuffle "shuffle: ok" 0
$ok
