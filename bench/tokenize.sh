#!/usr/bin/env bash
# Tokenizer speed: 1 MiB of English through `tandem tokenize` on one core,
# for the Llama-2 (SentencePiece-style) and SmolLM2 (byte-level BPE)
# vocabularies. Goal (issue 3): under 1 s each.
# The text: the MT-Bench and Spec-Bench questions (../shared/data/prompts; the
# translation category left out, being half German), joined by blank lines
# and repeated up to 1 MiB. Encode time only (the --time line); best of 3.
# Writes bench/results/tokenize.md.
set -eu
cd "$(dirname "$0")/.."
make -s bin/tandem
prompts=${PROMPTS:-../shared/data/prompts}
text=build/bench/english-1MiB.txt
mkdir -p build/bench bench/results
python3 - "$prompts" "$text" <<'PY'
import json, sys
turns = []
for name in ("mt_bench_question.jsonl", "spec_bench_question.jsonl"):
    for line in open("%s/%s" % (sys.argv[1], name), encoding="utf-8"):
        q = json.loads(line)
        if q.get("category") != "translation":
            turns += q["turns"]
one = "\n\n".join(turns).encode("utf-8")
data = (one * (1 + (1 << 20) // len(one)))[: 1 << 20]
data = data.decode("utf-8", "ignore").encode("utf-8")  # cut at a character boundary
open(sys.argv[2], "wb").write(data)
PY
bytes=$(wc -c < "$text")
models=(tests/tokenizer/llama2-vocab.gguf)
[ -f models/SmolLM2-135M-Instruct.Q4_1.gguf ] && models+=(models/SmolLM2-135M-Instruct.Q4_1.gguf)
pin=""
command -v taskset >/dev/null && pin="taskset -c 0"
out=bench/results/tokenize.md
{
    echo "# Tokenizing 1 MiB of English"
    echo
    echo "| vocabulary | bytes | tokens | encode s (best of 3) | MB/s |"
    echo "|---|---|---|---|---|"
    for m in "${models[@]}"; do
        best=""
        for _ in 1 2 3; do
            line=$($pin bin/tandem tokenize -m "$m" -f "$text" --count --time 2>&1 >/dev/null)
            s=$(sed -n 's/.* tokens in \([0-9.]*\) s.*/\1/p' <<<"$line")
            n=$(sed -n 's/.* -> \([0-9]*\) tokens.*/\1/p' <<<"$line")
            if [ -z "$best" ] || python3 -c "import sys; sys.exit(not $s < $best)"; then best=$s; fi
        done
        mbs=$(python3 -c "print('%.2f' % ($bytes / 1e6 / $best))")
        echo "| $(basename "$m" .gguf) | $bytes | $n | $best | $mbs |"
    done
    echo
    echo "Made by \`bash bench/tokenize.sh\` on $(date -u +%Y-%m-%d), one core (${pin:-no taskset}):"
    echo "$(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')."
    echo "Each run: \`bin/tandem tokenize -m MODEL -f build/bench/english-1MiB.txt --count --time\`;"
    echo "the time is tokenizer_encode alone (the vocabulary loads in well under 0.1 s)."
} > "$out"
cat "$out"
