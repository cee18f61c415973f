#!/usr/bin/env bash
# Tabulates ptxas -v reports (build/cuda/**/*.o.log, written by `make cuda`):
# registers, stack, spills and shared memory of every kernel for every arch.
# Usage: resources.sh LOG...
set -euo pipefail
printf '| %-60s | %-6s | %4s | %5s | %11s | %6s |\n' kernel arch regs stack "spill st/ld" smem
echo "|--------------------------------------------------------------|--------|------|-------|-------------|--------|"
for log in "$@"; do
    # Names and archs are quoted with single quotes: split fields on them.
    awk -F "'" '
    /Compiling entry function/ { fn = $2; arch = $4 }
    /bytes stack frame/ { split($0, w, " "); stack = w[1]; spill = w[5] "/" w[9] }
    /Used [0-9]+ registers/ {
        regs = $0; sub(/.*Used /, "", regs); sub(/ registers.*/, "", regs)
        smem = 0; if ($0 ~ /bytes smem/) { smem = $0; sub(/ bytes smem.*/, "", smem); sub(/.* /, "", smem) }
        if (fn != "") printf "%s\t%s\t%s\t%s\t%s\t%s\n", fn, arch, regs, stack, spill, smem
        fn = ""
    }' "$log"
done | c++filt | sort -t "$(printf '\t')" -k1,1 -k2,2 | \
    awk -F '\t' '{ k = $1; if (length(k) > 60) k = substr(k, 1, 57) "...";
                   printf "| %-60s | %-6s | %4s | %5s | %11s | %6s |\n", k, $2, $3, $4, $5, $6 }'
