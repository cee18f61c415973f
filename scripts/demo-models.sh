#!/usr/bin/env bash
# The default model pair, made once and cached in models/ (used by make demo
# and the end-to-end bench): SmolLM2-135M-Instruct as the target with early
# exits fitted at layers 14 and 22, and a draft exported from its first 8
# layers. Sourced: sets $target and $draft. Needs bin/tandem.
bash scripts/fetch-smollm2.sh
base=models/SmolLM2-135M-Instruct.Q4_1.gguf
target=models/SmolLM2-135M-Instruct.Q4_1.demo-exits.gguf
draft=models/SmolLM2-135M-Instruct.Q4_1.demo-draft-L8.gguf
models_prompts=../shared/data/prompts/mt_bench_question.jsonl
[ -f "$models_prompts" ] || models_prompts=scripts/demo_prompts.jsonl
if [ ! -s "$target" ]; then
    echo "models: fitting early exits at layers 14 and 22 on $models_prompts (once; cached in $target)"
    bin/tandem train-exits -m "$base" --layers 14,22 --data "$models_prompts" --tokens 1024 --gen 16 \
        --threads "$(nproc)" -o "$target"
fi
if [ ! -s "$draft" ]; then
    echo "models: exporting a draft: the target's first 8 layers with its own head ($draft)"
    bin/tandem train-exits -m "$base" --export-draft 8 -o "$draft"
fi
