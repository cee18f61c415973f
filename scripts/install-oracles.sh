#!/usr/bin/env bash
# Installs the Python packages that regenerate test fixtures and cross-check
# them (oracles only; never needed to build, run or test tandem):
# gguf-py and NumPy (tiny models), llama-cpp-python (llama.cpp's outputs),
# tokenizers and sentencepiece (tokenizer ids), matplotlib (plots).
set -eu
python3 -m pip install --quiet numpy gguf tokenizers sentencepiece llama-cpp-python matplotlib
