#!/usr/bin/env bash
# make bench: the CPU engine's speed at true model shapes, side by side in one run.
#   - random-weight models from `tandem synth` at the vicuna-68m (F16, Q8_0) and
#     llama2-7b (Q8_0) shapes, cached under models/bench/;
#   - build/bench/engine_bench on each: read bandwidth, decode tok/s, roofline
#     fraction, k-row verify-pass cost for k = 1..8, peak RSS; with the weights
#     repacked for the CPU (the default, docs/engine.md) and, for comparison,
#     mapped from the file (--no-repack);
#   - llama.cpp's llama-bench on the same files with the same threads, when
#     bench/build-llama-bench.sh has built it (build/llama.cpp/, not committed).
# Results: bench/results/engine-cpu/ (results.json, README.md with this command).
# BENCH_SKIP_7B=1 leaves out the 7B shape (a 7 GB file, minutes to write);
# BENCH_ROUNDS (5) and BENCH_ROUNDS_7B (2) set how many times ours (both
# ways) and llama-bench run in alternation on each model; the speed ratio
# reported is the median of the rounds' ratios (bench/engine_table.py).
set -eu
cd "$(dirname "$0")/.."
threads=${BENCH_THREADS:-2}
out=bench/results/engine-cpu
mkdir -p models/bench "$out"
make -s bin/tandem build/bench/engine_bench

runs=("vicuna-68m f16" "vicuna-68m q8_0")
[ "${BENCH_SKIP_7B:-0}" = 1 ] || runs+=("llama2-7b q8_0")

llama_bench=build/llama.cpp/bin/llama-bench
json="["
for r in "${runs[@]}"; do
    set -- $r
    model=models/bench/$1-$2.gguf
    [ -f "$model" ] || { echo "bench: writing $model"; bin/tandem synth --preset "$1" --type "$2" --seed 1 -o "$model"; }
    # Ours and llama-bench in alternation, ROUNDS times: this VM's speed
    # drifts by tens of percent over minutes, and a ratio is only worth
    # something if both sides saw the same spells. The table reports the
    # median of the rounds' ratios and the round with our median decode
    # rate; every round is kept in results.json.
    rounds=$([ "$1" = llama2-7b ] && echo "${BENCH_ROUNDS_7B:-2}" || echo "${BENCH_ROUNDS:-5}")
    all="["
    for ((i = 1; i <= rounds; i++)); do
        echo "bench: $model, $threads threads, round $i/$rounds"
        ours=$(build/bench/engine_bench "$model" "$threads" 32 9)
        mapped=$(build/bench/engine_bench --no-repack "$model" "$threads" 32 9)
        theirs=null
        if [ -x "$llama_bench" ]; then
            theirs=$("$llama_bench" -m "$model" -t "$threads" -p 0 -n 32 -r 9 -o json 2>/dev/null | \
                     python3 -c 'import json,sys; r=json.load(sys.stdin); print(r[0]["avg_ts"])' || echo null)
        fi
        all+="{\"ours\":$ours,\"mapped\":$mapped,\"llama_bench_decode_tok_s\":$theirs},"
    done
    json+=$(python3 -c '
import json, statistics, sys
rounds = json.loads(sys.argv[3])
mid = sorted(rounds, key=lambda r: r["ours"]["decode_tok_s"])[len(rounds) // 2]
mid_mapped = sorted(rounds, key=lambda r: r["mapped"]["decode_tok_s"])[len(rounds) // 2]
theirs = [r["llama_bench_decode_tok_s"] for r in rounds if r["llama_bench_decode_tok_s"]]
print(json.dumps({"shape": sys.argv[1], "type": sys.argv[2], "ours": mid["ours"],
                  "mapped": mid_mapped["mapped"],
                  "llama_bench_decode_tok_s": statistics.median(theirs) if theirs else None,
                  "rounds": rounds}) + ",")' "$1" "$2" "${all%,}]")
done
json="${json%,}]"
echo "$json" | python3 -m json.tool > "$out/results.json"
python3 bench/engine_table.py "$out/results.json" > "$out/README.md"
{
    echo
    echo "Made by \`make bench\` (bench/run.sh, BENCH_THREADS=$threads) on $(date -u +%Y-%m-%d):"
    echo "$(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')."
    [ -f "$out/earlier-runs.md" ] && echo "Earlier runs, and how far the ratios moved between them: earlier-runs.md."
} >> "$out/README.md"
cat "$out/README.md"
