#!/usr/bin/env bash
# Predicted per-token latency of every mode on hardware not present here
# (tandem sim): an A100 serving Llama2-7B behind a Jetson Nano, a Jetson
# Orin or a phone drafting Vicuna-68M, over a sweep of round trips, replaying
# the rounds (acceptance, EARLY verdicts) that bench/e2e.sh recorded with the
# real SmolLM2 pair (copied next to the results so this can be re-run).
#   bash bench/sim_predict.sh [E2E_NAME]      (default e2e-smollm2)
set -eu
cd "$(dirname "$0")/.."
name=${1:-e2e-smollm2}
out=bench/results/sim-predictions
traces=build/e2e/$name/traces
mkdir -p "$out/rounds"
if ls "$traces"/*-sd-ee-4-*.edge.jsonl > /dev/null 2>&1; then
    rm -f "$out"/rounds/*.jsonl
    first_rtt=$(ls "$traces"/*-sd-ee-4-*.edge.jsonl | head -1 | xargs basename | cut -d- -f1)
    for f in "$traces/$first_rtt"-sd-ee-4-*.edge.jsonl; do
        grep -E '"ev":"(prompt|send_draft|recv_early|recv_final|early_hit)"' "$f" > "$out/rounds/$(basename "$f")"
    done
fi
ls "$out"/rounds/*.jsonl > /dev/null 2>&1 || { echo "sim_predict: no recorded rounds; run bash bench/e2e.sh first" >&2; exit 1; }
make -s bin/tandem
rtts=10ms,50ms,100ms,200ms
{
    echo "# Predicted latency on other hardware (tandem sim, emulated)"
    echo
    echo "Made by \`bash bench/sim_predict.sh $name\` on $(date -u +%Y-%m-%d). Rounds: the $(ls "$out"/rounds/*.jsonl | wc -l)"
    echo "sd-ee runs (γ = 4) of bench/results/$name, SmolLM2 pair, in rounds/. Device costs: bench/profiles"
    echo "(estimates from datasheet bandwidth, not measurements). Mean ms/token over the prompts."
    echo
    for edge in jetson-nano-vicuna-68m-f16 jetson-orin-vicuna-68m-f16 phone-vicuna-68m-f16; do
        echo "## A100 (Llama2-7B f16) + $edge"
        echo
        for f in "$out"/rounds/*.jsonl; do
            bin/tandem sim --edge-profile "bench/profiles/$edge.json" \
                --cloud-profile bench/profiles/a100-llama2-7b-f16.json --rounds "$f" --rtt "$rtts" \
                --exit-fraction 0.85 --json
        done | python3 -c '
import json, sys, collections
acc = collections.defaultdict(list)
for line in sys.stdin:
    for r in json.loads(line)["results"]:
        acc[(r["rtt_ms"], r["mode"])].append(r["ms_per_token"])
modes = ["cloud-ar", "cloud-ar-rpc", "edge-ar", "sd", "sd-ee"]
rtts = sorted({k[0] for k in acc})
print("| rtt ms | " + " | ".join(modes) + " | sd-ee × cloud-ar | sd-ee × cloud-ar-rpc |")
print("|---" * (len(modes) + 3) + "|")
for t in rtts:
    m = {mode: sum(acc[(t, mode)]) / len(acc[(t, mode)]) for mode in modes}
    ar, rpc, ee = m["cloud-ar"], m["cloud-ar-rpc"], m["sd-ee"]
    print(f"| {t:g} | " + " | ".join(f"{m[x]:.1f}" for x in modes) + f" | {ar / ee:.2f} | {rpc / ee:.2f} |")
'
        echo
    done
    echo "The exit fraction 0.85 is where the target's exits sit (after layers 24 and 27 of 30 in the"
    echo "SmolLM2 target: the first confident one releases EARLY)."
} > "$out/README.md"
cat "$out/README.md"
