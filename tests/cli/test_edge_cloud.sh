#!/usr/bin/env bash
# tandem cloud + tandem edge on this machine (DESIGN.md §3.1): greedy output
# of sd and sd-ee at γ ∈ {1,2,4,8}, and of both cloud baselines, is exactly
# `tandem run` of the target, for a draft made of the target's first layers
# and for an unrelated random draft sharing its tokenizer; sampled sd-ee
# gives sd's tokens for a seed; a mismatched pair is refused with the
# reason; a cloud restarted under a generation is reported and the edge
# carries on to the same output; a silent cloud makes the edge fail clearly.
# (The distribution of sampled output is tested in tests/unit/test_edge_sampling.c.)
set -u
cd "$(dirname "$0")/../.."
. tests/cli/lib.sh
ids_of() { python3 -c "import json,sys; print(' '.join(map(str, json.load(sys.stdin)['ids'])))"; }

# Target: 4 layers with exits at layers 1 and 2, thresholds low so EARLY
# fires often, right and wrong (both pre-draft paths run). Drafts: the
# target's first 2 layers (synth seeds tensors by index), and a random model.
$T synth --preset tiny --layers 4 --seed 1 --type f32 -o "$tmp/t.gguf" 2>/dev/null
$T synth --preset tiny --layers 2 --seed 1 --type f32 -o "$tmp/d_prefix.gguf" 2>/dev/null
$T synth --preset tiny --layers 2 --seed 7 --type q8_0 --tokenizer-from "$tmp/t.gguf" -o "$tmp/d_random.gguf" 2>/dev/null
$T synth --preset tiny --vocab 300 --seed 1 -o "$tmp/other.gguf" 2>/dev/null
python3 -c "
import json
for i in range(24):
    print(json.dumps({'turns': ['Tell me about the number %d.' % i]}))" > "$tmp/p.jsonl"
$T train-exits -m "$tmp/t.gguf" --layers 1,2 --data "$tmp/p.jsonl" -o "$tmp/te.gguf" \
    --tokens 1200 --gen 8 --precision 0.3 >/dev/null 2>&1
check "target with exits" test -s "$tmp/te.gguf"

ep="ipc://$tmp/cloud.sock"
$T cloud -m "$tmp/te.gguf" --bind "$ep" --threads 1 2>"$tmp/cloud.log" &
pids+=($!)
cloud=$!
sleep 0.3

prompts=("1 5 9 13" "7" "200 3 3 3 3 40 41 42 43 44 45 46")
lossless=0 compared=0 early=0
for p in "${prompts[@]}"; do
    want=$($T run -m "$tmp/te.gguf" --ids "$p" -n 40 --ignore-eos --json --threads 1 2>/dev/null | ids_of)
    for d in d_prefix d_random; do
        for mode in sd sd-ee; do
            for g in 1 2 4 8; do
                json=$($T edge -m "$tmp/$d.gguf" --connect "$ep" --ids "$p" -n 40 --ignore-eos --mode $mode \
                       --gamma $g --json --threads 1 --timeout 5000 2>"$tmp/edge.err")
                got=$(ids_of <<<"$json" 2>/dev/null)
                compared=$((compared + 1))
                if [ -n "$want" ] && [ "$got" = "$want" ]; then
                    lossless=$((lossless + 1))
                else
                    echo "  differs: prompt '$p' draft $d mode $mode gamma $g: $(cat "$tmp/edge.err")"
                fi
                e=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['early_hits'])" "$json" 2>/dev/null)
                early=$((early + ${e:-0}))
            done
        done
    done
    for mode in cloud-ar cloud-ar-rpc; do
        got=$($T edge -m "$tmp/d_random.gguf" --connect "$ep" --ids "$p" -n 40 --ignore-eos --mode $mode \
              --json --threads 1 --timeout 5000 2>/dev/null | ids_of)
        compared=$((compared + 1))
        [ "$got" = "$want" ] && lossless=$((lossless + 1)) || echo "  differs: prompt '$p' mode $mode"
    done
done
check "lossless greedy: $lossless of $compared runs equal tandem run of the target" test "$lossless" -eq "$compared"
check "sd-ee used confirmed pre-drafts ($early rounds)" test "$early" -gt 0

# Sampling: cloud-ar draws from the target with the seed's stream, exactly
# as run does; sd and sd-ee verify by rejection sampling, and pre-drafting
# never changes their tokens: for one seed, sd-ee gives sd's.
samp=(--ids "1 5 9" -n 24 --ignore-eos --temp 0.8 --top-k 40 --seed 3 --json --threads 1)
want=$($T run -m "$tmp/te.gguf" "${samp[@]}" 2>/dev/null | ids_of)
got=$($T edge -m "$tmp/d_prefix.gguf" --connect "$ep" --mode cloud-ar "${samp[@]}" 2>/dev/null | ids_of)
check "sampled cloud-ar equals run with the same seed" test "$got" = "$want"
sd=$($T edge -m "$tmp/d_prefix.gguf" --connect "$ep" --mode sd --gamma 4 "${samp[@]}" 2>/dev/null | ids_of)
check "sampled sd gives 24 tokens" test "$(wc -w <<<"$sd")" -eq 24
json=$($T edge -m "$tmp/d_prefix.gguf" --connect "$ep" --mode sd-ee --gamma 4 "${samp[@]}" 2>/dev/null)
check "sampled sd-ee gives sd's tokens for the seed" test "$(ids_of <<<"$json")" = "$sd"
early=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['early_rounds'])" "$json" 2>/dev/null)
check "sampled sd-ee received EARLY verdicts (${early:-none})" test "${early:-0}" -gt 0
rtt=$(python3 -c "import json,sys; o=json.loads(sys.argv[1]); print(o['rtt_samples'] == o['rounds'] and o['rtt_ms'] > 0)" "$json" 2>/dev/null)
check "--json reports the PING round trip of every round (rtt_ms)" test "$rtt" = True

# Without --ignore-eos the edge stops where run stops.
want=$($T run -m "$tmp/te.gguf" --ids "1 2" -n 200 --json --threads 1 2>/dev/null | ids_of)
got=$($T edge -m "$tmp/d_prefix.gguf" --connect "$ep" --ids "1 2" -n 200 --json --threads 1 2>/dev/null | ids_of)
check "stops at EOS like run" test "$got" = "$want"
text=$($T edge -m "$tmp/d_prefix.gguf" --connect "$ep" --ids "1 5 9" -n 16 --threads 1 2>/dev/null)
check "streams text" test -n "$text"

expect_error "mismatched pair refused with the reason" "tokenizers differ" \
    $T edge -m "$tmp/other.gguf" --connect "$ep" --ids "1 2" -n 4
expect_error "gamma above the cloud's limit" "exceeds the cloud's limit" \
    $T edge -m "$tmp/d_prefix.gguf" --connect "$ep" --ids "1 2" -n 4 --gamma 100
expect_error "context overflow" "exceed the context" \
    $T edge -m "$tmp/d_prefix.gguf" --connect "$ep" --ids "1 2" -n 1000
expect_error "bad mode" "--mode" $T edge -m "$tmp/d_prefix.gguf" --ids "1" --mode fast
check "cloud still serving after all that" \
    bash -c "$T edge -m '$tmp/d_prefix.gguf' --connect '$ep' --ids '3 4' -n 8 --json >/dev/null 2>&1"

# A wide draft makes each round slow enough for what follows to land
# mid-session.
$T synth --preset tiny --layers 8 --dim 512 --ffn 1024 --heads 8 --kv-heads 8 --type q8_0 \
    --tokenizer-from "$tmp/t.gguf" -o "$tmp/d_slow.gguf" 2>/dev/null

# The cloud killed and started again under a generation: the edge says the
# session is unknown, opens a new one from the text accepted so far, and
# prints exactly what it would have printed without the restart.
want=$($T run -m "$tmp/te.gguf" --ids "1 2" -n 240 --ignore-eos --json --threads 1 2>/dev/null | ids_of)
$T edge -m "$tmp/d_slow.gguf" --connect "$ep" --ids "1 2" -n 240 --mode sd-ee --gamma 8 --ignore-eos \
    --timeout 5000 --threads 1 --json >"$tmp/restart.json" 2>"$tmp/restart.err" &
edge=$!
sleep 0.5
kill -9 "$cloud"; wait "$cloud" 2>/dev/null
$T cloud -m "$tmp/te.gguf" --bind "$ep" --threads 1 2>>"$tmp/cloud.log" &
pids+=($!)
cloud=$!
wait "$edge"; rc=$?
got=$(ids_of <"$tmp/restart.json" 2>/dev/null)
if [ $rc -eq 0 ] && [ "$got" = "$want" ] && grep -q "session unknown" "$tmp/restart.err" &&
   grep -q '"reconnects":1' "$tmp/restart.json"; then
    echo "ok   cloud restarted mid-session: $(head -n 1 "$tmp/restart.err")"
elif [ $rc -eq 0 ] && [ "$got" = "$want" ] && ! grep -q "session unknown" "$tmp/restart.err"; then
    echo "ok   cloud restarted mid-session: (the edge finished before the restart; timing only)"
else
    echo "FAIL cloud restarted mid-session (exit $rc): $(cat "$tmp/restart.err")"; fails=$((fails + 1))
fi

# A cloud that stops answering mid-session: the edge gives up after
# --timeout with a clear message and a non-zero exit, never hangs.
$T edge -m "$tmp/d_slow.gguf" --connect "$ep" --ids "1 2" -n 240 --mode sd --gamma 8 --ignore-eos \
    --timeout 1000 --threads 1 --json >/dev/null 2>"$tmp/stall.err" &
edge=$!
sleep 0.5
kill -STOP "$cloud"
wait "$edge"; rc=$?
kill -CONT "$cloud"
if [ $rc -ne 0 ] && grep -q "no answer from the cloud" "$tmp/stall.err"; then
    echo "ok   stalled cloud: edge exits $rc: $(cat "$tmp/stall.err")"
elif [ $rc -eq 0 ]; then
    echo "ok   stalled cloud: (the edge finished before the stall; timing only)"
else
    echo "FAIL stalled cloud (exit $rc): $(cat "$tmp/stall.err")"; fails=$((fails + 1))
fi
kill -9 "$cloud"; wait "$cloud" 2>/dev/null
expect_error "no cloud at all: timeout" "no answer from the cloud" \
    $T edge -m "$tmp/d_prefix.gguf" --connect "$ep" --ids "1 2" -n 4 --timeout 500

# --device: the plain build has no CUDA and says how to get it (the CUDA
# cloud itself is tested on the host harness: tests/cuda/test_cuda_cloud.c).
if [ "$T" = bin/tandem ]; then
    expect_error "cloud --device cuda without CUDA" "built without CUDA (make cuda builds bin/tandem-cuda)" \
        $T cloud -m "$tmp/te.gguf" --bind "ipc://$tmp/cuda.sock" --device cuda
fi
expect_error "cloud --device unknown" "unknown device 'tpu'" \
    $T cloud -m "$tmp/te.gguf" --bind "ipc://$tmp/tpu.sock" --device tpu

[ $fails -eq 0 ]
