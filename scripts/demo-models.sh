#!/usr/bin/env bash
# The default model pair, made once and cached in models/ (used by make demo
# and the end-to-end bench). Sourced: sets $target and $draft. Needs bin/tandem.
#   target  SmolLM2-135M-Instruct with early exits fitted after layers 24
#           and 27 (of 30): the last ones confident often enough to matter
#           (bench/results/exits-smollm2)
#   draft   its first 20 layers with an exit head fitted at layer 20
bash scripts/fetch-smollm2.sh
base=models/SmolLM2-135M-Instruct.Q4_1.gguf
target=models/SmolLM2-135M-Instruct.Q4_1.demo-exits-24-27.gguf
draft=models/SmolLM2-135M-Instruct.Q4_1.demo-draft-L20.gguf
models_prompts=../shared/data/prompts/mt_bench_question.jsonl
[ -f "$models_prompts" ] || models_prompts=scripts/demo_prompts.jsonl
fit() { # layers, output
    bin/tandem train-exits -m "$base" --layers "$1" --data "$models_prompts" --tokens 1024 --gen 16 \
        --threads "$(nproc)" -o "$2"
}
if [ ! -s "$target" ]; then
    echo "models: fitting early exits after layers 24 and 27 on $models_prompts (once; cached in $target)"
    fit 24,27 "$target"
fi
if [ ! -s "$draft" ]; then
    echo "models: exporting a draft: the target's first 20 layers with an exit head fitted there ($draft)"
    fit 20 "$draft.exit20.tmp"
    bin/tandem train-exits -m "$draft.exit20.tmp" --export-draft 20 -o "$draft"
    rm -f "$draft.exit20.tmp"
fi
