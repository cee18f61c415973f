#!/usr/bin/env bash
# make test-gpu runs this (after make cuda, on a machine with a GPU): the kernel and
# forward comparisons natively, then the kernel table and decode speed of a
# llama2-7b-shaped random model. Results go to bench/results/cuda/.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=bench/results/cuda
mkdir -p "$out" models
build/cuda/test_cuda_ops
build/cuda/test_cuda_forward
build/cuda/test_cuda_exits
build/cuda/test_cuda_cloud
model=models/llama2-7b-q8_0.gguf
[ -f "$model" ] || bin/tandem synth --preset llama2-7b --type q8_0 -o "$model"
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1 | tr ' ' '-')
{
    echo "# make test-gpu on $gpu, $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD)"
    echo "# command: build/cuda/gpu_bench $model"
    build/cuda/gpu_bench "$model"
} | tee "$out/kernels-$gpu.md"
