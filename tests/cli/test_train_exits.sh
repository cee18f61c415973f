#!/usr/bin/env bash
# tandem train-exits from the command line: fits exits on a tiny model, the
# output loads with its exits, the chosen adapter is never worse on held-out
# text than no adapter, the report's numbers are consistent, an exported
# draft runs in llama.cpp as in tandem, and bad input gives a clear error.
set -u
cd "$(dirname "$0")/../.."
. tests/cli/lib.sh
quiet() { "$@" >/dev/null; }

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

# The report, in the fitting run and on its own: the same numbers (the runs
# are deterministic), each in range and consistent with the others.
both=$($T train-exits -m "$tmp/m.gguf" --layers 0,1,2 --data "$tmp/p.jsonl" -o "$tmp/r.gguf" \
       --tokens 1000 --gen 8 --json --report --report-data "$tmp/p.jsonl" --report-tokens 600 \
       --report-json "$tmp/r.json" 2>"$tmp/err")
check "fit and report: two JSON lines" test "$(wc -l <<<"$both")" -eq 2
alone=$($T train-exits -m "$tmp/r.gguf" --report --report-data "$tmp/p.jsonl" --report-tokens 600 --gen 8 --json)
check "report on the stored exits == report after fitting" test "$(tail -n 1 <<<"$both")" = "$alone"
check "report: fields, ranges, consistency" python3 -c "
import json, sys
r = json.load(open(sys.argv[1]))
assert r == json.loads(sys.argv[2]), 'file and stdout differ'
G = list(range(1, 9))
assert r['gammas'] == G and r['prompts'] == 'all' and r['tokens'] >= 600 and r['sequences'] > 0
# each sequence of n rows holds n - γ rounds (every sequence here is longer than 8)
assert r['rounds'] == [r['tokens'] - r['sequences'] * g for g in G], r['rounds']
assert all(0 <= a <= g for a, g in zip(r['final_mean_accepted'], G))
assert [e['layer'] for e in r['exits']] == [0, 1, 2]
for e in r['exits']:
    assert e['adapter'] in ('full', 'none') and 0 <= e['stored_threshold'] <= 1
    for k in ('agreement', 'agreement_none'):
        assert 0 <= e[k] <= 1, e
    for k in ('verdict_agreement', 'verdict_agreement_none'):
        assert len(e[k]) == 8 and all(0 <= v <= 1 for v in e[k]), e
    if e['adapter'] == 'none':
        assert e['agreement'] == e['agreement_none']
        assert e['verdict_agreement'] == e['verdict_agreement_none']
    assert len(e['round_thresholds']) == 8
    for t in [e['row_thresholds']] + e['round_thresholds']:
        assert [x['precision'] for x in t] == [0.9, 0.95]
        for x in t:
            assert 0 <= x['kept'] <= 1
            assert (x['threshold'] is None) == (x['kept'] == 0) and (x['threshold'] is None or 0 <= x['threshold'] <= 1)
        assert t[1]['kept'] <= t[0]['kept']  # a stricter precision keeps no more
" "$tmp/r.json" "$alone"
check "report on the held-out share of --data" quiet \
    $T train-exits -m "$tmp/r.gguf" --report --data "$tmp/p.jsonl" --report-tokens 300
if python3 -c "import matplotlib" 2>/dev/null; then
    check "bench/plot_exits.py draws the report" python3 bench/plot_exits.py "$tmp/r.json" "$tmp/r.png"
    check "the plot is a PNG" python3 -c "import sys; assert open(sys.argv[1], 'rb').read(8) == b'\x89PNG\r\n\x1a\n'" "$tmp/r.png"
fi

# A draft of the first 2 layers (the exit at layer 1 of r.gguf has an
# adapter: the draft notes it is left out). tests/unit/test_exits.c checks
# the draft's logits bitwise against the target's exit; here, another engine
# runs it.
check "export a draft" quiet $T train-exits -m "$tmp/r.gguf" --export-draft 2 -o "$tmp/d.gguf" 2>"$tmp/err"
check "the draft notes the adapter it leaves out" grep -qF "adapter of the exit at layer 1 is not in it" "$tmp/err"
check "the draft generates" quiet $T run -m "$tmp/d.gguf" --ids "1 2 3" -n 8 --json
if python3 -c "import gguf, llama_cpp" 2>/dev/null; then
    ours=$($T run -m "$tmp/d.gguf" --ids "1 2 3" -n 8 --json | python3 -c "import json, sys; print(json.load(sys.stdin)['ids'])")
    check "llama.cpp runs the draft: 2 layers, no exit keys, same greedy tokens" python3 -c "
import sys, gguf, numpy as np
from llama_cpp import Llama
r = gguf.GGUFReader(sys.argv[1])
assert int(r.fields['llama.block_count'].parts[-1][0]) == 2
assert not [k for k in r.fields if k.startswith('tandem.')]
assert not [t.name for t in r.tensors if t.name.startswith(('exit.', 'blk.2.', 'blk.3.'))]
m = Llama(model_path=sys.argv[1], verbose=False, n_ctx=64, logits_all=True)
m.eval([1, 2, 3])
ids = []
for _ in range(8):
    ids.append(int(np.argmax(m.scores[m.n_tokens - 1])))
    m.eval([ids[-1]])
assert str(ids) == sys.argv[2], (ids, sys.argv[2])
" "$tmp/d.gguf" "$ours"
fi

expect_error "report on a model without exits" "has no exits to report on" \
    $T train-exits -m "$tmp/m.gguf" --report --data "$tmp/p.jsonl"
expect_error "report without prompts" "--report needs --report-data" $T train-exits -m "$tmp/r.gguf" --report
expect_error "draft as deep as the target" "has 4, a draft keeps 1 .. 3" \
    $T train-exits -m "$tmp/r.gguf" --export-draft 4 -o "$tmp/bad.gguf"
expect_error "draft and fitting at once" "--export-draft makes a draft only" \
    $T train-exits -m "$tmp/m.gguf" --export-draft 2 --layers 1 --data "$tmp/p.jsonl" -o "$tmp/bad.gguf"
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
