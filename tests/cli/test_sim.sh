#!/usr/bin/env bash
# tandem sim on hand-made profiles and rounds whose timelines are worked out
# by hand below (see tools/sim.h for the model), and clear errors.
set -u
cd "$(dirname "$0")/../.."
. tests/cli/lib.sh
echo '{"device":"E","model":"d","base_ms":10}' > "$tmp/edge.json"
echo '{"device":"C","model":"t","base_ms":100}' > "$tmp/cloud.json"
ev() { echo "{\"t_us\":$1,\"side\":\"edge\",\"session\":1,\"round\":$2,\"ev\":\"$3\",\"ph\":\"i\",\"v\":$4}"; }
# prompt 5; round 1: 4 of 4 accepted, EARLY confirmed; round 2: 1 of 4, EARLY
# not confirmed; round 3: 2 of 4, no EARLY. 5 + 2 + 3 = 10 tokens.
{
    ev 1 0 prompt 5
    ev 2 1 send_draft 4; ev 3 1 recv_early 4; ev 4 1 recv_final 4; ev 5 1 early_hit 1
    ev 6 2 send_draft 4; ev 7 2 recv_early 3; ev 8 2 recv_final 1; ev 9 2 early_hit 0
    ev 10 3 send_draft 4; ev 11 3 recv_final 2
} > "$tmp/rounds.jsonl"

check "sim --help" sh -c "$T sim --help > /dev/null"
check "sim --json" sh -c "$T sim --edge-profile $tmp/edge.json --cloud-profile $tmp/cloud.json \
    --rounds $tmp/rounds.jsonl --rtt 50ms --exit-fraction 0.5 --json > $tmp/out.json"
# By hand (ms), rtt 50, edge pass 10, cloud pass 100:
# the cloud prefills 4 of the 5 prompt tokens at OPEN (100 ms):
#   edge-ar       10 + 9*10                                          = 100
#   cloud-ar      25 + 100 + 100 + 25 (first) + 9*100               = 1150
#   cloud-ar-rpc  250 + 9*(25 + 100 + 25)                            = 1600
#   sd            first draft 40, cloud free at 125: rounds end at 250, 440, 630 = 630
#   sd-ee         round 1 EARLY at 200, pre-draft done 240, sent at FINAL 250;
#                 round 2 FINAL 400, its wrong pre-draft stops by 390;
#                 round 3 sent 440, FINAL at 590                     = 590
check "predictions equal the hand-worked timelines" python3 - "$tmp/out.json" <<'PY'
import json, sys
res = {r["mode"]: r for r in json.load(open(sys.argv[1]))["results"]}
want = {"edge-ar": 100, "cloud-ar": 1150, "cloud-ar-rpc": 1600, "sd": 630, "sd-ee": 590}
for mode, total in want.items():
    r = res[mode]
    assert r["tokens"] == 10, r
    assert abs(r["total_ms"] - total) < 1e-6, (mode, r["total_ms"], total)
assert abs(res["sd"]["ttft_ms"] - 250) < 1e-6, res["sd"]
assert abs(res["cloud-ar"]["ttft_ms"] - 250) < 1e-6, res["cloud-ar"]
PY
check "table over three rtts" sh -c "[ \$($T sim --edge-profile $tmp/edge.json --cloud-profile $tmp/cloud.json \
    --rounds $tmp/rounds.jsonl --rtt 0,50ms,0.1s | grep -c 'sd-ee') -eq 3 ]"

check "baselines without rounds" python3 -c "
import json, subprocess
o = json.loads(subprocess.check_output(['$T', 'sim', '--edge-profile', '$tmp/edge.json', '--cloud-profile',
    '$tmp/cloud.json', '--tokens', '10', '--prompt-len', '5', '--modes', 'cloud-ar,edge-ar', '--rtt', '50ms', '--json']))
r = {x['mode']: x['total_ms'] for x in o['results']}
assert abs(r['cloud-ar'] - 1150) < 1e-6 and abs(r['edge-ar'] - 100) < 1e-6, r"
expect_error "sd needs rounds" "needs the recorded --rounds" $T sim --edge-profile "$tmp/edge.json" \
    --cloud-profile "$tmp/cloud.json" --tokens 10 --prompt-len 5 --modes sd
expect_error "unknown mode" "warp" $T sim --edge-profile "$tmp/edge.json" --cloud-profile "$tmp/cloud.json" \
    --rounds "$tmp/rounds.jsonl" --modes sd,warp
expect_error "bad rtt" "soon" $T sim --edge-profile "$tmp/edge.json" --cloud-profile "$tmp/cloud.json" \
    --rounds "$tmp/rounds.jsonl" --rtt soon
expect_error "missing profile" "nope.json" $T sim --edge-profile "$tmp/nope.json" \
    --cloud-profile "$tmp/cloud.json" --rounds "$tmp/rounds.jsonl"
ev 1 0 send_draft 4 > "$tmp/cut.jsonl"
expect_error "trace without rounds" "no complete rounds" $T sim --edge-profile "$tmp/edge.json" \
    --cloud-profile "$tmp/cloud.json" --rounds "$tmp/cut.jsonl"
{ ev 1 0 prompt 5; ev 2 1 send_draft 2; ev 3 1 recv_final 7; } > "$tmp/bad.jsonl"
expect_error "accepted > gamma" "inconsistent" $T sim --edge-profile "$tmp/edge.json" \
    --cloud-profile "$tmp/cloud.json" --rounds "$tmp/bad.jsonl"
[ $fails -eq 0 ]
