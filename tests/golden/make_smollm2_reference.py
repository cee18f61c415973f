#!/usr/bin/env python3
"""Greedy-decoding reference for the real SmolLM2-135M-Instruct Q4_1 (oracle: llama.cpp).

Runs llama-cpp-python on models/SmolLM2-135M-Instruct.Q4_1.gguf (fetch it with
scripts/fetch-smollm2.sh) and writes tests/golden/fixtures/smollm2_greedy.json:

  {"model", "sha256", "oracle": "llama-cpp-python X.Y.Z",
   "cases": [{"name", "prompt_ids", "ids": [64],
              "top2_gap": [64], "top": [[[id, logit] x 8] x 64]}]}

Per step: ids[i] is the argmax of the raw logits (ties -> lowest id), top2_gap[i]
is logit(top1) - logit(top2), top[i] the 8 best (id, logit) pairs, best first.
Decoding is done by hand (llm.eval + llm.scores): no sampler, no penalties, and
it never stops at EOS -- always 64 tokens. A test should only demand an exact id
match where top2_gap is comfortably larger than its logit tolerance, since
llama.cpp's Q4_1 matmul rounds activations to Q8_1 and our engine may not.

Usage: python tests/golden/make_smollm2_reference.py [--model PATH]
"""
import argparse
import hashlib
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
OUT = os.path.join(ROOT, "tests", "golden", "fixtures", "smollm2_greedy.json")
N_STEPS, N_TOP, N_CTX = 64, 8, 256

CHAT = ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by "
        "Hugging Face<|im_end|>\n<|im_start|>user\nWhat is the capital of France?"
        "<|im_end|>\n<|im_start|>assistant\n")

# (name, text) prompts are tokenized by llama.cpp's own tokenizer; (name, [ids])
# are fed as they are.
PROMPTS = [
    ("english", "The capital of France is"),
    ("story", "Once upon a time, in a small village by the sea, there lived"),
    ("code", "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n"),
    ("chat", CHAT),
    ("list", "Here are three tips for staying healthy:\n1."),
    # Arbitrary fixed ids, so the case does not depend on any tokenizer:
    # np.random.default_rng(135).integers(3, 49152, 10)
    ("raw_ids", [23450, 26948, 43248, 13801, 14281, 44274, 12997, 48518, 11506, 10983]),
]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def greedy(llm, prompt_ids):
    llm.reset()
    llm.eval(prompt_ids)
    ids, gaps, tops = [], [], []
    for step in range(N_STEPS):
        logits = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
        # stable sort on -logit: equal logits keep ascending id order
        order = np.argsort(-logits, kind="stable")[:N_TOP]
        tok = int(order[0])
        ids.append(tok)
        gaps.append(float(f"{float(logits[order[0]]) - float(logits[order[1]]):.7g}"))
        tops.append([[int(i), float(f"{float(logits[i]):.7g}")] for i in order])
        if step + 1 < N_STEPS:
            llm.eval([tok])
    return ids, gaps, tops


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(ROOT, "models", MODEL_NAME))
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()
    if not os.path.exists(args.model):
        sys.exit(f"{args.model} not found; run scripts/fetch-smollm2.sh first")

    import llama_cpp
    llm = llama_cpp.Llama(model_path=args.model, n_ctx=N_CTX, n_threads=2,
                          logits_all=True, seed=0, verbose=False,
                          # F32 KV cache like ours (llama.cpp defaults to F16)
                          type_k=0, type_v=0)
    cases = []
    for name, prompt in PROMPTS:
        if isinstance(prompt, str):
            # add_bos=True lets llama.cpp add BOS only if the model's
            # tokenizer.ggml.add_bos_token says so (SmolLM2: it does not).
            prompt_ids = llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
        else:
            prompt_ids = list(prompt)
        assert len(prompt_ids) + N_STEPS <= N_CTX
        ids, gaps, tops = greedy(llm, prompt_ids)
        cases.append({"name": name, "prompt_ids": [int(t) for t in prompt_ids],
                      "ids": ids, "top2_gap": gaps, "top": tops})
        text = llm.detokenize(ids).decode("utf-8", errors="replace")
        print(f"{name}: {len(prompt_ids)} prompt ids, min gap {min(gaps):.3g}: {text[:60]!r}")

    with open(args.out, "w") as f:
        json.dump({"model": MODEL_NAME, "sha256": sha256(args.model),
                   "oracle": f"llama-cpp-python {llama_cpp.__version__}",
                   "cases": cases}, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
