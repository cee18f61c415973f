#!/usr/bin/env bash
# tandem prof on two hand-written traces whose breakdown is known, its Chrome
# trace and SVG outputs, and clear errors on bad traces.
set -u
cd "$(dirname "$0")/../.."
. tests/cli/lib.sh
ev() { # side t_us round ev ph [v]
    local v=""; [ $# -ge 6 ] && v=",\"v\":$6"
    echo "{\"t_us\":$(( 1000000000 + $2 )),\"side\":\"$1\",\"session\":1,\"round\":$3,\"ev\":\"$4\",\"ph\":\"$5\"$v}"
}
# Round 1 with an EARLY and a pre-draft of round 2; round 2 without an exit.
{
    ev edge 0 1 draft B; ev edge 1000 1 draft E; ev edge 1000 1 send_draft i 4
    ev edge 3000 1 recv_early i 2; ev edge 3000 2 predraft B; ev edge 4000 2 predraft E
    ev edge 6000 1 recv_final i 2; ev edge 6000 2 send_draft i 4; ev edge 10000 2 recv_final i 4
} > "$tmp/edge.jsonl"
{
    ev cloud 1500 1 recv_draft i 4; ev cloud 1500 1 verify B; ev cloud 2500 1 send_early i 8
    ev cloud 5500 1 verify E; ev cloud 5500 1 send_final i 2
    ev cloud 6500 2 recv_draft i 4; ev cloud 6500 2 verify B; ev cloud 9500 2 verify E
    ev cloud 9500 2 send_final i 4
} > "$tmp/cloud.jsonl"

check "prof --help" sh -c "$T prof --help > /dev/null"
check "prof --json" sh -c "$T prof --edge $tmp/edge.jsonl --cloud $tmp/cloud.jsonl --json > $tmp/out.json"
check "breakdown equals the hand computation" python3 - "$tmp/out.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["rounds"]
want = [
    dict(draft=1.0, up=0.5, to_exit=1.0, early=0.5, predraft=1.0, rest=3.0, final=0.5,
         wall=5.0, e_idle=4.0, c_idle=1.0),
    dict(draft=None, up=0.5, to_exit=None, early=None, predraft=None, rest=3.0, final=0.5,
         wall=4.0, e_idle=4.0, c_idle=1.0),
]
assert len(r) == 2, r
for i, (got, w) in enumerate(zip(r, want)):
    assert got["round"] == i + 1, got
    for k, v in w.items():
        g = got[k]
        assert (g is None and v is None) or (g is not None and v is not None and abs(g - v) < 1e-9), (k, g, v)
PY
check "table has a mean row" sh -c "$T prof --edge $tmp/edge.jsonl --cloud $tmp/cloud.jsonl | grep -q '^  mean'"
check "chrome trace and svg written" sh -c "$T prof --edge $tmp/edge.jsonl --cloud $tmp/cloud.jsonl \
    --chrome $tmp/t.json --svg $tmp/g.svg > /dev/null"
check "chrome trace is JSON with flows" python3 -c "
import json,sys; t=json.load(open('$tmp/t.json'))['traceEvents']
assert sum(e['ph']=='s' for e in t)==5 and sum(e['ph']=='f' for e in t)==5, t"
check "svg has both lanes' spans" sh -c "[ \$(grep -c '<rect x=' $tmp/g.svg) -eq 4 ]"

echo '{"t_us":1,"side":"edge"' > "$tmp/bad.jsonl"
expect_error "truncated line" "bad.jsonl:1" $T prof --edge "$tmp/bad.jsonl" --cloud "$tmp/cloud.jsonl"
echo '{"t_us":1,"session":1,"round":1,"ev":"draft","ph":"X"}' > "$tmp/bad.jsonl"
expect_error "unknown phase" "\"ph\"" $T prof --edge "$tmp/bad.jsonl" --cloud "$tmp/cloud.jsonl"
expect_error "missing file" "nope.jsonl" $T prof --edge "$tmp/nope.jsonl" --cloud "$tmp/cloud.jsonl"
expect_error "other session only" "no events of session 9" $T prof --edge "$tmp/edge.jsonl" --cloud "$tmp/cloud.jsonl" --session 9
expect_error "traces required" "required" $T prof --edge "$tmp/edge.jsonl"

[ $fails -eq 0 ]
