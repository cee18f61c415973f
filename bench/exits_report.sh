#!/usr/bin/env bash
# Early exits of SmolLM2-135M-Instruct (Q4_1, 30 layers): fits them on MT-Bench
# and reports on Spec-Bench without its MT-Bench questions (docs/exits.md).
#   bash bench/exits_report.sh
# Writes bench/results/exits-smollm2/: report.json (the report), README.md
# (the command, the machine and the tables), agreement.png (bench/plot_exits.py,
# needs matplotlib). The model with exits goes to models/ (not committed).
# EXITS_LAYERS, EXITS_TOKENS, EXITS_REPORT_TOKENS and EXITS_THREADS override
# the defaults below.
set -eu
cd "$(dirname "$0")/.."
model=models/SmolLM2-135M-Instruct.Q4_1.gguf
prompts=../shared/data/prompts
out=bench/results/exits-smollm2
work=build/exits-smollm2
layers=${EXITS_LAYERS:-2,5,8,11,14,17,20,23,26,28}
tokens=${EXITS_TOKENS:-16000}
report_tokens=${EXITS_REPORT_TOKENS:-4096}
threads=${EXITS_THREADS:-$(nproc)}
mkdir -p "$out" "$work"
[ -f "$model" ] || bash scripts/fetch-smollm2.sh
make -s bin/tandem

# Spec-Bench holds MT-Bench's 80 questions: leave them out so the report
# reads none of the fitting text, and interleave the other categories so the
# report's first tokens cover all of them, not only the first category.
held_out=$work/spec_bench_without_mt_bench.jsonl
python3 - "$prompts/mt_bench_question.jsonl" "$prompts/spec_bench_question.jsonl" "$held_out" <<'PY'
import json, sys
seen = {t for line in open(sys.argv[1]) for t in json.loads(line)["turns"]}
by_cat = {}
for line in open(sys.argv[2]):
    q = json.loads(line)
    if not any(t in seen for t in q["turns"]):
        by_cat.setdefault(q["category"], []).append(q)
with open(sys.argv[3], "w") as f:
    for i in range(max(map(len, by_cat.values()))):
        for qs in by_cat.values():
            if i < len(qs):
                f.write(json.dumps(qs[i]) + "\n")
PY

cmd=(bin/tandem train-exits -m "$model" --layers "$layers" --data "$prompts/mt_bench_question.jsonl"
     --tokens "$tokens" --holdout 0.15 --gen 32 --threads "$threads"
     -o models/SmolLM2-135M-Instruct.Q4_1.exits.gguf
     --report --report-data "$held_out" --report-tokens "$report_tokens" --report-json "$out/report.json")
start=$(date +%s)
"${cmd[@]}" > "$work/tables.txt"
seconds=$(( $(date +%s) - start ))
python3 bench/plot_exits.py "$out/report.json" "$out/agreement.png" "SmolLM2-135M-Instruct Q4_1"
{
    echo "# Early exits: SmolLM2-135M-Instruct Q4_1"
    echo
    echo "Exits fitted on MT-Bench (prompts and greedy continuations), reported on"
    echo "Spec-Bench without its MT-Bench questions (categories interleaved). In the"
    echo "report the text itself is the draft of every round: prompt tokens are human"
    echo "text, continuation tokens the target's own greedy choices (always accepted)."
    echo "See docs/exits.md for what each number means."
    echo
    echo "![agreement vs layer](agreement.png)"
    echo
    echo '```'
    cat "$work/tables.txt"
    echo '```'
    echo
    echo "Made by \`bash bench/exits_report.sh\` on $(date -u +%Y-%m-%d) in ${seconds} s:"
    echo "$(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $threads threads."
    echo "The command it ran:"
    echo
    echo '```'
    echo "${cmd[*]}"
    echo '```'
} > "$out/README.md"
cat "$out/README.md"
