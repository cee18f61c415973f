#!/usr/bin/env python3
"""llama.cpp runs what `tandem convert` writes: stories260K, f32 and q8_0.

Converts ../shared/data/models/stories260K/stories260K.bin with its tok512.bin
by `bin/tandem convert --type f32`, re-quantizes that GGUF to q8_0 by
`bin/tandem convert --type q8_0` (GGUF -> GGUF), loads both in llama-cpp-python
and decodes greedily from the prompt of greedy_once_upon_a_time.ids (the
reference llama2.c's run.c made) for 256 positions, as run.c does. Writes
tests/golden/fixtures/stories260k_llama_cpp.json:

  {"source", "oracle", "prompt_text",
   "cases": [{"name": "f32" | "q8_0", "convert": the `tandem convert` arguments,
              "sha256": of the converted file, "prompt_ids",
              "prompt_ids_by_llama_cpp", "ids", "top2_gap",
              "top": [[[id, logit] x 4] per step]}]}

prompt_ids_by_llama_cpp is llama.cpp's own tokenization of prompt_text with the
converted tokenizer metadata (the script stops unless it equals the
reference's prompt ids).
Decoding is by hand, as in make_smollm2_reference.py: llm.eval, argmax of the
raw logits (ties -> lowest id), F32 KV cache, no sampler; it stops after BOS
(id 1, which run.c never prints) or when 256 positions are used.
tests/golden/test_stories260k.c converts the model again and compares.
The script also prints where llama.cpp's ids leave run.c's reference, if they do.

Usage: make bin/tandem && python3 tests/golden/make_stories260k_reference.py
       (TANDEM=path/to/tandem to use another build)
"""
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL_DIR = os.path.join(ROOT, "..", "shared", "data", "models", "stories260K")
OUT = os.path.join(ROOT, "tests", "golden", "fixtures", "stories260k_llama_cpp.json")
TANDEM = os.environ.get("TANDEM", os.path.join(ROOT, "bin", "tandem"))
N_POS, N_TOP, BOS = 256, 4, 1
PROMPT_TEXT = "Once upon a time"


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def reference():
    lines = open(os.path.join(MODEL_DIR, "greedy_once_upon_a_time.ids")).read().split("\n")
    prompt = [int(t) for t in lines[0].split(":")[1].split()]
    return prompt, [int(t) for t in lines[1:] if t.strip()]


def greedy(llm, prompt_ids):
    """run.c's loop: the prompt, then one token per position up to N_POS."""
    llm.reset()
    llm.eval(prompt_ids)
    ids, gaps, tops = [], [], []
    for step in range(N_POS - len(prompt_ids) + 1):
        logits = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
        # stable sort on -logit: equal logits keep ascending id order
        order = np.argsort(-logits, kind="stable")[:N_TOP]
        tok = int(order[0])
        ids.append(tok)
        gaps.append(float(f"{float(logits[order[0]]) - float(logits[order[1]]):.7g}"))
        tops.append([[int(i), float(f"{float(logits[i]):.7g}")] for i in order])
        if tok == BOS or step == N_POS - len(prompt_ids):
            break
        llm.eval([tok])
    return ids, gaps, tops


def main():
    import llama_cpp
    prompt, ref = reference()
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        f32 = os.path.join(tmp, "stories260K-f32.gguf")
        q8 = os.path.join(tmp, "stories260K-q8_0.gguf")
        # (name, convert arguments, output, the arguments as the fixture records them)
        runs = [("f32", [os.path.join(MODEL_DIR, "stories260K.bin"), "--tokenizer",
                         os.path.join(MODEL_DIR, "tok512.bin"), "--type", "f32"], f32,
                 "stories260K.bin --tokenizer tok512.bin --type f32"),
                ("q8_0", [f32, "--type", "q8_0"], q8, "stories260K-f32.gguf --type q8_0")]
        for name, args, path, shown in runs:
            subprocess.run([TANDEM, "convert", *args, "-o", path, "--quiet"], check=True)
            llm = llama_cpp.Llama(model_path=path, n_ctx=512, n_threads=2, logits_all=True,
                                  seed=0, verbose=False, type_k=0, type_v=0)
            by_llama_cpp = llm.tokenize(PROMPT_TEXT.encode(), add_bos=True, special=True)
            if by_llama_cpp != prompt:
                sys.exit(f"{name}: llama.cpp tokenizes {PROMPT_TEXT!r} as {by_llama_cpp}, "
                         f"the reference's prompt is {prompt}")
            ids, gaps, tops = greedy(llm, prompt)
            generated = ids[:ids.index(BOS)] if BOS in ids else ids
            diverge = next((i for i, (a, b) in enumerate(zip(generated, ref)) if a != b), None)
            if diverge is None and len(generated) == len(ref):
                print(f"{name}: llama.cpp's {len(generated)} ids equal run.c's reference")
            else:
                print(f"{name}: llama.cpp leaves run.c's reference at step {diverge} "
                      f"(its top-2 gap there {gaps[diverge] if diverge is not None else '-'})")
            print(f"{name}: smallest top-2 gap {min(gaps):.3g}")
            cases.append({"name": name, "convert": shown,
                          "sha256": sha256(path), "prompt_ids": prompt,
                          "prompt_ids_by_llama_cpp": by_llama_cpp, "ids": ids,
                          "top2_gap": gaps, "top": tops})
            del llm
    with open(OUT, "w") as f:
        json.dump({"source": "stories260K.bin + tok512.bin (../shared/data/models/stories260K)",
                   "oracle": f"llama-cpp-python {llama_cpp.__version__}",
                   "prompt_text": PROMPT_TEXT, "cases": cases}, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
