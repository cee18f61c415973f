#!/usr/bin/env bash
# tandem train-exits from the command line: fits exits on a tiny model, the
# output loads with its exits, the chosen adapter is never worse on held-out
# text than no adapter, and bad input gives a clear error.
set -u
cd "$(dirname "$0")/../.."
T=bin/tandem
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
check() { # description, then a command that must succeed
    local what=$1; shift
    if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fails=$((fails + 1)); fi
}
quiet() { "$@" >/dev/null; }
expect_error() { # description, text the error must contain, command...
    local what=$1 want=$2; shift 2
    local err rc
    err=$("$@" 2>&1 >/dev/null); rc=$?
    if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -qF -- "$want" <<<"$err"; then
        echo "ok   $what"
    else
        echo "FAIL $what (exit $rc): $err"; fails=$((fails + 1))
    fi
}

check "train-exits --help" quiet $T train-exits --help
check "synth 4-layer tiny" $T synth --preset tiny --layers 4 --type f32 -o "$tmp/m.gguf"
head -n 30 ../shared/data/prompts/mt_bench_question.jsonl > "$tmp/p.jsonl" 2>/dev/null ||
    python3 -c "
import json
for i in range(30):
    print(json.dumps({'turns': ['Tell me a story about the number %d.' % i, 'Shorter, please.']}))" > "$tmp/p.jsonl"

# Every candidate's held-out agreement, the chosen one's, and a re-load of
# the output through the trainer's own check (it reads back what it writes).
json=$($T train-exits -m "$tmp/m.gguf" --layers 0,2 --data "$tmp/p.jsonl" -o "$tmp/x.gguf" \
       --tokens 1500 --gen 8 --json 2>"$tmp/err")
check "train-exits writes exits" test -s "$tmp/x.gguf"
check "summary: chosen >= no adapter, threshold in [0,1]" python3 -c "
import json, sys
o = json.loads(sys.argv[1])
assert [e['layer'] for e in o['exits']] == [0, 2]
assert o['train_tokens'] > 0 and o['holdout_tokens'] > 0
for e in o['exits']:
    best = max(c['agreement'] for c in e['candidates'] if c['agreement'] is not None)
    assert e['agreement'] == best >= e['agreement_none'], e
    assert 0 <= e['threshold'] <= 1 and 0 <= e['kept'] <= 1
" "$json"
if python3 -c "import gguf" 2>/dev/null; then
    check "gguf-py sees the exit metadata and adapters" python3 -c "
import gguf, sys
r = gguf.GGUFReader(sys.argv[1])
layers = [int(r.fields['tandem.exit.layers'].parts[i][0]) for i in r.fields['tandem.exit.layers'].data]
assert layers == [0, 2], layers
names = {t.name: t.shape.tolist() for t in r.tensors}
for l in (0, 2):
    assert names.get('exit.%d.adapter.weight' % l, [64, 64]) == [64, 64]
assert len(names) >= 4 * 9 + 3
" "$tmp/x.gguf"
fi
check "the output still runs" quiet $T run -m "$tmp/x.gguf" --ids "1 2 3" -n 4 --json
check "retraining a model with exits replaces them" \
    quiet $T train-exits -m "$tmp/x.gguf" --layers 1 --data "$tmp/p.jsonl" -o "$tmp/y.gguf" --tokens 800 --gen 4 \
    --rank 4
check "--no-adapter" quiet $T train-exits -m "$tmp/m.gguf" --layers 1 --data "$tmp/p.jsonl" -o "$tmp/z.gguf" \
    --tokens 500 --gen 4 --no-adapter

expect_error "exit at the last layer" "not below the last layer" \
    $T train-exits -m "$tmp/m.gguf" --layers 3 --data "$tmp/p.jsonl" -o "$tmp/bad.gguf"
expect_error "layers not increasing" "increasing" \
    $T train-exits -m "$tmp/m.gguf" --layers 2,1 --data "$tmp/p.jsonl" -o "$tmp/bad.gguf"
expect_error "missing --data" "--data" $T train-exits -m "$tmp/m.gguf" --layers 1 -o "$tmp/bad.gguf"
echo '{"question": "no turns here"}' > "$tmp/bad.jsonl"
expect_error "jsonl without prompts" "bad.jsonl: line 1: no \"turns\"" \
    $T train-exits -m "$tmp/m.gguf" --layers 1 --data "$tmp/bad.jsonl" -o "$tmp/bad.gguf"
expect_error "rank above width" "--rank 100 exceeds" \
    $T train-exits -m "$tmp/m.gguf" --layers 1 --data "$tmp/p.jsonl" -o "$tmp/bad.gguf" --rank 100
check "no output after failures" test ! -e "$tmp/bad.gguf"

[ $fails -eq 0 ]
