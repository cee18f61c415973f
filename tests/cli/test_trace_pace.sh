#!/usr/bin/env bash
# --trace and --pace on tandem cloud and tandem edge, and the WAN relay in
# between: a paced, traced, relayed sd-ee run gives exactly the target's
# greedy output; every traced verify pass lasts at least its profile time;
# tandem prof reads the traces back with one row per round the edge
# reports, tandem sim replays them; bad profiles are refused clearly.
set -u
cd "$(dirname "$0")/../.."
. tests/cli/lib.sh

$T synth --preset tiny --layers 4 --seed 1 --type f32 -o "$tmp/t.gguf" 2>/dev/null
$T synth --preset tiny --layers 2 --seed 1 --type f32 -o "$tmp/d.gguf" 2>/dev/null
python3 -c "
import json
for i in range(16):
    print(json.dumps({'turns': ['Tell me about the number %d.' % i]}))" > "$tmp/p.jsonl"
$T train-exits -m "$tmp/t.gguf" --layers 1,2 --data "$tmp/p.jsonl" -o "$tmp/te.gguf" \
    --tokens 800 --gen 8 --precision 0.3 >/dev/null 2>&1
echo '{"device":"slow cloud","model":"tiny","base_ms":30,"per_row_ms":1}' > "$tmp/cloud.json"
echo '{"device":"slow edge","model":"tiny","base_ms":5}' > "$tmp/edge.json"

cloud_ep="ipc://$tmp/cloud.sock" link_ep="ipc://$tmp/link.sock"
$T cloud -m "$tmp/te.gguf" --bind "$cloud_ep" --threads 1 --pace "$tmp/cloud.json" \
    --trace "$tmp/cloud.jsonl" 2>"$tmp/cloud.log" &
pids+=($!)
$T link --listen "$link_ep" --forward "$cloud_ep" --rtt 10ms --json > "$tmp/link.json" 2>/dev/null &
link=$!
pids+=($link)
sleep 0.3

ids="1 5 9 13"
want=$($T run -m "$tmp/t.gguf" --ids "$ids" -n 24 --ignore-eos --json 2>/dev/null | \
       python3 -c "import json,sys; print(json.load(sys.stdin)['ids'])")
check "paced sd-ee through the relay" sh -c "$T edge -m $tmp/d.gguf --connect $link_ep --ids '$ids' -n 24 \
    --ignore-eos --mode sd-ee --gamma 3 --threads 1 --pace $tmp/edge.json --trace $tmp/edge.jsonl \
    --json > $tmp/out.json 2>$tmp/edge.err"
check "output is the target's own" python3 -c "
import json; o = json.load(open('$tmp/out.json'))
assert str(o['ids']) == '''$want''', (o['ids'], '''$want''')
assert o['emulated'] is True and len(o['token_ms']) == 24
assert all(a <= b for a, b in zip(o['token_ms'], o['token_ms'][1:]))"
check "every verify pass lasts its profile time" python3 -c "
import json
ev = [json.loads(l) for l in open('$tmp/cloud.jsonl')]
b, gamma = {}, {}
n = 0
for e in ev:
    if e['ev'] == 'recv_draft': gamma[e['round']] = e['v']
    if e['ev'] == 'verify' and e['ph'] == 'B': b[e['round']] = e['t_us']
    if e['ev'] == 'verify' and e['ph'] == 'E':
        n += 1
        # gamma + 1 rows: 30 + 1 * gamma ms
        assert e['t_us'] - b[e['round']] >= 1000 * (30 + gamma[e['round']]), e
assert n > 0"
check "prof: one row per round" sh -c "[ \$($T prof --edge $tmp/edge.jsonl --cloud $tmp/cloud.jsonl --json | \
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)[\"rounds\"]))') -eq \
    \$(python3 -c 'import json; print(json.load(open(\"$tmp/out.json\"))[\"rounds\"])') ]"
check "sim replays the recorded rounds" sh -c "$T sim --edge-profile $tmp/edge.json --cloud-profile $tmp/cloud.json \
    --rounds $tmp/edge.jsonl --rtt 10ms > /dev/null"
kill $link; wait $link 2>/dev/null
check "relay's statistics" python3 -c "
import json; s = json.load(open('$tmp/link.json'))
assert s['clients'] == 1 and s['up']['messages'] > 0 and s['down']['messages'] > 0, s"

echo '{"device":"x","model":"y","base_ms":-3}' > "$tmp/bad.json"
expect_error "edge: bad profile" "base_ms" $T edge -m "$tmp/d.gguf" --ids 1 --mode edge-ar --pace "$tmp/bad.json"
expect_error "cloud: missing profile" "nope.json" $T cloud -m "$tmp/t.gguf" --pace "$tmp/nope.json"
expect_error "edge: unwritable trace" "cannot write the trace" $T edge -m "$tmp/d.gguf" --ids 1 \
    --mode edge-ar --trace /nonexistent/dir/t.jsonl
[ $fails -eq 0 ]
