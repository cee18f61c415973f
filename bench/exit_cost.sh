#!/usr/bin/env bash
# What one early exit costs next to the verify pass it rides in (issue 5: at
# most 5% at the llama2-7b shape): build/bench/exit_bench on random-weight
# models from `tandem synth` at the vicuna-68m (F16, Q8_0) and llama2-7b
# (Q8_0) shapes, cached under models/bench/ as `make bench` makes them.
# Results: bench/results/exit-cost/ (results.json, README.md with this command).
# BENCH_THREADS (default: all cores), BENCH_REPS (best of, default 15),
# BENCH_SKIP_7B=1 leaves out the 7B shape (a 7 GB file).
set -eu
cd "$(dirname "$0")/.."
threads=${BENCH_THREADS:-$(nproc)}
reps=${BENCH_REPS:-15}
out=bench/results/exit-cost
mkdir -p models/bench "$out"
make -s bin/tandem build/bench/exit_bench

runs=("vicuna-68m f16" "vicuna-68m q8_0")
[ "${BENCH_SKIP_7B:-0}" = 1 ] || runs+=("llama2-7b q8_0")
json="["
for r in "${runs[@]}"; do
    set -- $r
    model=models/bench/$1-$2.gguf
    [ -f "$model" ] || { echo "exit_cost: writing $model"; bin/tandem synth --preset "$1" --type "$2" --seed 1 -o "$model"; }
    echo "exit_cost: $model, $threads threads, best of $reps"
    json+="{\"shape\":\"$1\",\"type\":\"$2\",\"ours\":$(build/bench/exit_bench "$model" "$threads" "$reps")},"
done
echo "${json%,}]" | python3 -m json.tool > "$out/results.json"
python3 - "$out/results.json" > "$out/README.md" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
print("# Cost of one early exit next to a 5-row verify pass (CPU)\n")
print("Random weights at true shapes; the exit reads the stream after the middle layer")
print("(below the last). Every time is the best of the runs, each exit timed right after")
print("a pass (its weights out of cache). share = exit alone / pass; \"pass with exit\" is")
print("forward_exits, within the passes' own spread of it.\n")
print("| shape | type | layers x dim, vocab | verify pass (5 rows) | exit, no adapter | share | exit, full F32 adapter | share | pass with exit (none / full) |")
print("|---|---|---|---|---|---|---|---|---|")
for r in rows:
    o = r["ours"]
    print(f"| {r['shape']} | {r['type']} | {o['layers']} x {o['dim']}, {o['vocab']} | {o['verify_pass_ms']:.1f} ms "
          f"| {o['exit_no_adapter_ms']:.2f} ms | {100 * o['exit_no_adapter_share']:.1f}% "
          f"| {o['exit_full_adapter_ms']:.2f} ms | {100 * o['exit_full_adapter_share']:.1f}% "
          f"| {o['pass_with_exit_no_adapter_ms']:.1f} / {o['pass_with_exit_full_adapter_ms']:.1f} ms |")
PY
{
    echo
    echo "Made by \`bash bench/exit_cost.sh\` (BENCH_THREADS=$threads, BENCH_REPS=$reps) on $(date -u +%Y-%m-%d):"
    echo "$(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')."
} >> "$out/README.md"
cat "$out/README.md"
