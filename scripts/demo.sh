#!/usr/bin/env bash
# make demo: speculative edge–cloud decoding with early exits on this machine.
#
# 1. Fetches the default target, SmolLM2-135M-Instruct (scripts/fetch-smollm2.sh).
# 2. Fits early exits into it and exports a draft made of its first layers
#    (tandem train-exits), once: both are cached in models/.
# 3. Starts `tandem cloud` with the target in the background, streams an
#    answer to a fixed question with `tandem edge --mode sd-ee`, then prints
#    ms/token of sd-ee next to the two cloud-only baselines.
# Cloud and edge share this machine's cores, so the timings show the
# protocol's overheads and the draft/verify balance, not a real edge device.
set -eu
cd "$(dirname "$0")/.."
T=bin/tandem
. scripts/demo-models.sh
question="What are three good reasons to learn to cook at home?"
n=${DEMO_TOKENS:-64}
threads=$(nproc)

dir=$(mktemp -d)
endpoint="ipc://$dir/cloud.sock"
$T cloud -m "$target" --bind "$endpoint" --threads "$threads" 2>"$dir/cloud.log" &
cloud=$!
trap 'kill $cloud 2>/dev/null; wait $cloud 2>/dev/null; rm -rf "$dir"' EXIT
sleep 1

edge=($T edge -m "$draft" --connect "$endpoint" --chat -p "$question" -n "$n" --threads "$threads")
echo "demo: cloud: $target ($endpoint); edge: $draft"
echo "demo: Q: $question"
echo "demo: A (sd-ee, γ=4):"
"${edge[@]}" --mode sd-ee --gamma 4
echo
echo "demo: ms/token, $n tokens, cloud and edge on this machine ($threads cores):"
printf '  %-13s %9s %8s %7s %12s %8s\n' mode ms/token rounds tau early_hits rtt_ms
for mode in sd-ee sd cloud-ar cloud-ar-rpc; do
    "${edge[@]}" --mode "$mode" --gamma 4 --json | python3 -c "
import json, sys
o = json.load(sys.stdin)
print('  %-13s %9.1f %8d %7.2f %12d %8.3f' % (o['mode'], o['ms_per_token'], o['rounds'], o['tau'],
                                             o['early_hits'], o['rtt_ms']))"
done
