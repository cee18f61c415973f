#!/usr/bin/env bash
# make demo. Until the edge–cloud link lands (its own issue), the demo runs the
# default target model, the real SmolLM2-135M-Instruct, alone on this machine:
# it fetches the model if needed and streams an answer to a fixed question.
set -eu
cd "$(dirname "$0")/.."
bash scripts/fetch-smollm2.sh
model=models/SmolLM2-135M-Instruct.Q4_1.gguf
question="What are three good reasons to learn to cook at home?"
echo "demo: $model (target alone; edge–cloud mode comes with its issue)"
echo "demo: Q: $question"
chat=()
bin/tandem run --help | grep -q -- --chat && chat=(--chat)
bin/tandem run -m "$model" "${chat[@]}" -p "$question" -n 128 --threads "$(nproc)"
