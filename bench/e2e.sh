#!/usr/bin/env bash
# End-to-end bench of edge-cloud decoding on this machine:
#   bash bench/e2e.sh [CONFIG]        (default bench/e2e/smollm2.conf)
#
# Starts `tandem cloud` once, and for each round trip in the config a
# `tandem link` relay in front of it; runs `tandem edge` in every mode over the
# config's prompts (sd and sd-ee at each γ), with traces on both sides; then
# bench/e2e_report.py writes results.json, README.md (tables, the validation of
# `tandem sim` against these runs) and PNG plots to bench/results/$NAME/.
# The traces stay in build/e2e/$NAME/ (large, not committed).
set -eu
cd "$(dirname "$0")/.."
config=${1:-bench/e2e/smollm2.conf}
[ -f "$config" ] || { echo "e2e: no config $config" >&2; exit 2; }
# Defaults; the config overrides them.
NAME=e2e
TARGET= DRAFT=                     # empty: the demo pair (scripts/demo-models.sh)
PROMPTS=../shared/data/prompts/spec_bench_question.jsonl
PER_CATEGORY=1                     # prompts taken from each category, first turns
CATEGORIES=""                      # empty: every category in the file
TOKENS=48
MODES="cloud-ar cloud-ar-rpc edge-ar sd sd-ee"
GAMMAS="4"                         # sd and sd-ee run at each
RTTS="0 50ms"
RATE="" JITTER=""
EDGE_PACE="" CLOUD_PACE=""         # device profiles (results then labelled emulated)
THREADS_CLOUD=1 THREADS_EDGE=1     # one core each on a 2-core machine
. "$config"

make -s bin/tandem
T=bin/tandem
if [ -z "$TARGET" ]; then
    . scripts/demo-models.sh
    TARGET=$target DRAFT=$draft
fi
out=bench/results/$NAME
work=build/e2e/$NAME
rm -rf "$work"
mkdir -p "$out" "$work/traces"

# Prompts: the first PER_CATEGORY first turns of each category.
python3 - "$PROMPTS" "$PER_CATEGORY" "$CATEGORIES" > "$work/prompts.jsonl" <<'PY'
import json, sys
path, per, only = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
taken = {}
for line in open(path):
    q = json.loads(line)
    cat = q.get("category", "all")
    if only and cat not in only:
        continue
    if taken.get(cat, 0) < per:
        taken[cat] = taken.get(cat, 0) + 1
        print(json.dumps({"category": cat, "prompt": q["turns"][0]}))
PY
n_prompts=$(wc -l < "$work/prompts.jsonl")

cloud_ep="ipc://$work/cloud.sock"
link_ep="ipc://$work/link.sock"
pace() { [ -n "$1" ] && echo "--pace $1"; true; }
$T cloud -m "$TARGET" --bind "$cloud_ep" --threads "$THREADS_CLOUD" $(pace "$CLOUD_PACE") \
    --trace "$work/traces/cloud.jsonl" 2> "$work/cloud.log" &
cloud=$!
link=
trap 'kill $cloud $link 2>/dev/null || true; wait 2>/dev/null || true' EXIT
sleep 1

# Warm-up, not measured: the first passes fault the models' pages in.
$T edge -m "$DRAFT" --connect "$cloud_ep" --ids "1 2 3" -n 8 --mode sd --gamma 2 \
    --threads "$THREADS_EDGE" > /dev/null 2>&1 || true

runs=$work/runs.jsonl
: > "$runs"
# Runs per prompt at one RTT: a run per mode, one per gamma for sd and sd-ee.
per_prompt=0
for mode in $MODES; do
    case $mode in sd|sd-ee) gs=$GAMMAS ;; *) gs=0 ;; esac
    for g in $gs; do per_prompt=$((per_prompt + 1)); done
done
total=$((per_prompt * n_prompts * $(echo $RTTS | wc -w)))
done_runs=0
for rtt in $RTTS; do
    $T link --listen "$link_ep" --forward "$cloud_ep" --rtt "$rtt" ${JITTER:+--jitter $JITTER} \
        ${RATE:+--rate $RATE} --json > "$work/link-$rtt.json" 2> "$work/link-$rtt.log" &
    link=$!
    sleep 0.3
    # Prompt by prompt, every mode and gamma in turn: a slow spell of a
    # shared machine then lands on all modes alike, not on one of them.
    i=0
    while IFS= read -r line; do
        i=$((i + 1))
        prompt=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["prompt"])' "$line")
        cat=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["category"])' "$line")
        [ -t 2 ] || echo "e2e: rtt $rtt, prompt $i/$n_prompts ($cat), runs $((done_runs + 1))..$((done_runs + per_prompt)) of $total" >&2
        for mode in $MODES; do
            case $mode in sd|sd-ee) gs=$GAMMAS ;; *) gs=0 ;; esac
            for g in $gs; do
                done_runs=$((done_runs + 1))
                [ -t 2 ] && printf '\re2e: rtt %-6s prompt %2d/%d %-13s gamma %-2s (run %d/%d)' \
                    "$rtt" "$i" "$n_prompts" "$mode" "$g" "$done_runs" "$total" >&2
                trace="$work/traces/$rtt-$mode-$g-$i.edge.jsonl"
                json=$($T edge -m "$DRAFT" --connect "$link_ep" --chat -p "$prompt" -n "$TOKENS" \
                       --ignore-eos --mode "$mode" --gamma $((g > 0 ? g : 1)) --threads "$THREADS_EDGE" \
                       $(pace "$EDGE_PACE") --trace "$trace" --json 2>> "$work/edge.log") || {
                    echo "e2e: edge failed ($rtt $mode $g prompt $i); see $work/edge.log" >&2; exit 1; }
                python3 -c '
import json, sys
o = json.loads(sys.argv[1])
o.pop("text", None)
o.update(rtt=sys.argv[2], gamma=int(sys.argv[3]), prompt_index=int(sys.argv[4]),
         category=sys.argv[5], edge_trace=sys.argv[6])
print(json.dumps(o))' "$json" "$rtt" "$g" "$i" "$cat" "$trace" >> "$runs"
            done
        done
    done < "$work/prompts.jsonl"
    kill -INT $link; wait $link 2>/dev/null || true
    link=
done
echo >&2
kill $cloud; wait $cloud 2>/dev/null || true

cmd="bash bench/e2e.sh $config"
python3 bench/e2e_report.py --runs "$runs" --work "$work" --out "$out" --config "$config" \
    --command "$cmd" --tandem "$T"
