#!/usr/bin/env bash
# Early-exit reports (docs/exits.md), one per model:
#   bash bench/exits_report.sh              # SmolLM2-135M-Instruct (Q4_1, 30 layers):
#                                           # fitted on MT-Bench, reported on Spec-Bench
#                                           # without its MT-Bench questions
#   bash bench/exits_report.sh stories260k  # stories260K (f32, 5 layers, converted by
#                                           # tandem convert): fitted on story openings,
#                                           # reported on openings with other names
# Writes bench/results/exits-smollm2/ or exits-stories260K/: report.json (the
# report), README.md (the command, the machine and the tables), agreement.png
# (bench/plot_exits.py, needs matplotlib). Models go to models/ (not committed).
# EXITS_LAYERS, EXITS_TOKENS, EXITS_REPORT_TOKENS and EXITS_THREADS override
# the defaults below.
set -eu
cd "$(dirname "$0")/.."
prompts=../shared/data/prompts
threads=${EXITS_THREADS:-$(nproc)}
make -s bin/tandem

case "${1:-smollm2}" in
smollm2)
    model=models/SmolLM2-135M-Instruct.Q4_1.gguf
    title="SmolLM2-135M-Instruct Q4_1"
    out=bench/results/exits-smollm2
    work=build/exits-smollm2
    layers=${EXITS_LAYERS:-2,5,8,11,14,17,20,23,26,28}
    tokens=${EXITS_TOKENS:-16000}
    report_tokens=${EXITS_REPORT_TOKENS:-4096}
    gen=32
    fit_data=$prompts/mt_bench_question.jsonl
    held_out=$work/spec_bench_without_mt_bench.jsonl
    about="Exits fitted on MT-Bench (prompts and greedy continuations), reported on
Spec-Bench without its MT-Bench questions (categories interleaved)."
    mkdir -p "$out" "$work"
    [ -f "$model" ] || bash scripts/fetch-smollm2.sh
    # Spec-Bench holds MT-Bench's 80 questions: leave them out so the report
    # reads none of the fitting text, and interleave the other categories so the
    # report's first tokens cover all of them, not only the first category.
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
    ;;
stories260k)
    src=../shared/data/models/stories260K
    model=models/stories260K.gguf
    title="stories260K f32"
    out=bench/results/exits-stories260K
    work=build/exits-stories260K
    # 0-based: the exits after layers 1..4 of 5 (an exit after the last layer
    # would be the model's own head)
    layers=${EXITS_LAYERS:-0,1,2,3}
    tokens=${EXITS_TOKENS:-20000}
    report_tokens=${EXITS_REPORT_TOKENS:-8192}
    gen=128
    fit_data=$work/openings_fit.jsonl
    held_out=$work/openings_report.jsonl
    about="A TinyStories model: MT-Bench text is not its language, so the prompts are
story openings (12 templates, bench/exits_report.sh), fitted with ten names and
reported with four others, each followed by 128 greedy tokens."
    mkdir -p "$out" "$work" models
    bin/tandem convert "$src/stories260K.bin" --tokenizer "$src/tok512.bin" --type f32 -o "$model" --quiet
    python3 - "$fit_data" "$held_out" <<'PY'
import json, sys
names = ["Lily", "Tom", "Ben", "Sue", "Max", "Mia", "Tim", "Anna", "Sam", "Lucy",
         "Jack", "Zoe", "Bob", "Kim"]
openings = ["Once upon a time, there was a little girl named {n}.",
            "Once upon a time, there was a boy named {n}.",
            "One day, {n} went to the park.", "{n} had a big red ball.",
            "{n} and {m} were best friends.", "{n} saw a little bird in a tree.",
            "It was a sunny day. {n} wanted to play outside.",
            "{n} found a shiny rock near the river.", "There was a big dog named {n}.",
            "{n} liked to eat apples.", "{n} went to the store with mom.",
            "One night, {n} could not sleep."]
for path, group in ((sys.argv[1], names[:10]), (sys.argv[2], names[10:])):
    with open(path, "w") as f:
        for i, n in enumerate(group):
            for o in openings:
                f.write(json.dumps({"prompt": o.format(n=n, m=group[(i + 1) % len(group)])}) + "\n")
PY
    ;;
*)
    echo "usage: bash bench/exits_report.sh [smollm2|stories260k]" >&2
    exit 2
    ;;
esac

exits_model=${model%.gguf}.exits.gguf
cmd=(bin/tandem train-exits -m "$model" --layers "$layers" --data "$fit_data"
     --tokens "$tokens" --holdout 0.15 --gen "$gen" --threads "$threads" -o "$exits_model"
     --report --report-data "$held_out" --report-tokens "$report_tokens" --report-json "$out/report.json")
start=$(date +%s)
"${cmd[@]}" > "$work/tables.txt"
seconds=$(( $(date +%s) - start ))
python3 bench/plot_exits.py "$out/report.json" "$out/agreement.png" "$title"
{
    echo "# Early exits: $title"
    echo
    echo "$about In the"
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
    echo "Made by \`bash bench/exits_report.sh${1:+ $1}\` on $(date -u +%Y-%m-%d) in ${seconds} s:"
    echo "$(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $threads threads."
    echo "The command it ran:"
    echo
    echo '```'
    echo "${cmd[*]}"
    echo '```'
} > "$out/README.md"
cat "$out/README.md"
