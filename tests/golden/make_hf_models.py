#!/usr/bin/env python3
"""Tiny random-weight Hugging Face checkpoints + transformers' own logits.

Oracle: transformers (PyTorch, float32, eager attention) runs each checkpoint
as it loads it back from disk, and Hugging Face `tokenizers` encodes a few
corpus lines with each tokenizer.json. Neither shares code with tandem; the C
side (tests/cli/test_convert_hf.sh and tests/golden/test_hf_models.c) only
converts the folders and compares.

Writes tests/golden/fixtures/hf/:
  llama/          LlamaForCausalLM, untied LM head, one model.safetensors with
                  F16 matrices and F32 norms; a SentencePiece-style BPE
                  tokenizer.json (byte_fallback, "▁" for spaces, Llama-2's
                  layout: <unk> <s> </s>, 256 <0xNN> byte tokens, pieces)
  llama-sharded/  LlamaForCausalLM, BF16, tied embeddings, linear rope scaling
                  (factor 2), sharded into several files with
                  model.safetensors.index.json; a SmolLM2-style byte-level BPE
                  (Digits then ByteLevel) with <|endoftext|> <|im_start|>
                  <|im_end|> at ids 0-2
  qwen2/          Qwen2ForCausalLM, BF16, tied embeddings, q/k/v biases; a
                  Qwen2-style byte-level BPE (Qwen2's split regex, NFC), its
                  added tokens after the merges, and config vocab_size larger
                  than the tokenizer's (the rows past it are padding)
  each folder:    config.json, generation_config.json, tokenizer.json,
                  tokenizer_config.json, and expected.json:
                  {"cases": [{"ids": [...], "logits": [[vocab] x n]}],
                   "tokenizer": {"add_bos": bool,
                                 "texts": [{"text": s, "ids": [...]}]}}

Shapes: hidden 64, 2 layers, 4 heads, 2 KV heads (GQA), head_dim 16,
intermediate 96, vocab 320 (352 for the SentencePiece-style one, whose
259 byte and special tokens would leave few merges otherwise). Weights: N(0,1) embeddings, N(0, 1/fan_in)
matrices, norms 1 ± 0.1, biases N(0, 0.1²), so that logits span tens and a
wrong permutation or rope moves them by whole units. The tokenizers are
trained on tests/tokenizer/corpus.jsonl.

Deterministic (fixed seeds). Usage:
  python3 tests/golden/make_hf_models.py        (needs torch, transformers,
                                                 safetensors, tokenizers)
  python3 tests/golden/make_hf_models.py --check-llama-cpp bin/tandem
      also converts each folder with that tandem (f32) and runs the result in
      llama.cpp (llama-cpp-python, F32 KV cache): prints its max relative
      logit error against transformers and how many recorded texts its
      tokenizer encodes differently (printed, not stored).
The tests need none of these packages.
"""
import argparse
import collections
import json
import os
import shutil

import numpy as np
import torch
from safetensors.torch import save_file
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, "fixtures", "hf")
CORPUS = os.path.join(ROOT, "tests", "tokenizer", "corpus.jsonl")

HIDDEN, LAYERS, HEADS, KV_HEADS, FFN, VOCAB = 64, 2, 4, 2, 96, 320
SPM_VOCAB, SPM_ALPHABET = 352, 32  # Llama's 259 special and byte tokens leave 61 merges
TEXT_STRIDE, TEXT_MAX = 15, 500  # ids recorded for every 15th corpus line of at most 500 characters
RE_QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
            r"\s*[\r\n]+|\s+(?!\S)|\s+")
CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
          "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def corpus():
    with open(CORPUS, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


# ---- tokenizers --------------------------------------------------------------------
def spm_tokenizer(texts):
    """Llama-2's tokenizer.json layout over a vocabulary trained here: BPE over
    characters of "▁"-joined text; merges are every split of a piece into two
    pieces, best piece first (as the transformers converter writes Llama's)."""
    words = collections.Counter()
    for t in texts:
        s = "\u2581" + t.replace(" ", "\u2581")
        for w in s.split("\u2581"):
            words["\u2581" + w] += 1
    chars = collections.Counter(c for w, n in words.items() for c in w for _ in range(n))
    alphabet = [c for c, _ in sorted(chars.items(), key=lambda kv: (-kv[1], kv[0]))[:SPM_ALPHABET]]
    pieces = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)] + alphabet
    known = set(pieces)
    seqs = {w: list(w) for w in words}
    merged = []
    while len(pieces) < SPM_VOCAB:
        pairs = collections.Counter()
        for w, n in words.items():
            s = seqs[w]
            for a, b in zip(s, s[1:]):
                if a in known and b in known and a + b not in known:
                    pairs[a, b] += n
        (a, b), _ = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        pieces.append(a + b)
        known.add(a + b)
        merged.append(a + b)
        for w in words:
            s, out, i = seqs[w], [], 0
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[w] = out
    vocab = {p: i for i, p in enumerate(pieces)}
    rank = {p: k for k, p in enumerate(merged)}
    cand = sorted((rank[p], vocab[p[:k]], vocab[p[k:]], p[:k], p[k:])
                  for p in merged for k in range(1, len(p)) if p[:k] in vocab and p[k:] in vocab)
    tok = Tokenizer(models.BPE(vocab, [(a, b) for *_, a, b in cand], unk_token="<unk>",
                               fuse_unk=True, byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(),
                                     decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    tok.add_special_tokens([AddedToken(p, normalized=False, special=True) for p in ("<unk>", "<s>", "</s>")])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    config = {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
              "unk_token": "<unk>", "legacy": True, "model_max_length": 2048,
              "tokenizer_class": "LlamaTokenizerFast"}
    return tok, config


def byte_level_tokenizer(texts, style):
    """A trained byte-level BPE: "smollm" (Digits + ByteLevel's own regex,
    specials first) or "qwen2" (Qwen2's split regex + ByteLevel without one,
    NFC, specials last)."""
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    if style == "smollm":
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    else:
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(RE_QWEN2), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    n_base = VOCAB - (20 if style == "qwen2" else 0)  # qwen2: config vocab larger than the tokenizer's
    trainer = trainers.BpeTrainer(vocab_size=n_base - (3 if style == "qwen2" else 0),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=specials if style == "smollm" else [], show_progress=False)
    tok.train_from_iterator(texts, trainer)
    if style == "qwen2":
        tok.add_special_tokens([AddedToken(s, normalized=False, special=True) for s in specials])
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    eos = "<|im_end|>" if style == "smollm" else "<|endoftext|>"
    config = {"add_prefix_space": False, "bos_token": "<|im_start|>" if style == "smollm" else None,
              "eos_token": eos, "unk_token": None, "model_max_length": 2048, "chat_template": CHATML,
              "tokenizer_class": "GPT2Tokenizer"}
    return tok, config


# ---- models --------------------------------------------------------------------------
def randomize(model, seed, biases):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1 + 0.1 * (2 * torch.rand(p.shape, generator=g) - 1))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / np.sqrt(p.shape[1]))
    assert biases == any(n.endswith("bias") for n, _ in model.named_parameters())


def logits_of(cls, folder, sequences):
    model = cls.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    cases = []
    with torch.no_grad():
        for ids in sequences:
            out = model(torch.tensor([ids])).logits[0]
            cases.append({"ids": ids, "logits": [[float("%.7g" % x) for x in row] for row in out.tolist()]})
    return cases


def write_folder(name, cls, config, tokenizer, tok_config, seed, save):
    folder = os.path.join(OUT, name)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    torch.manual_seed(seed)
    model = cls(config)
    randomize(model, seed, cls is Qwen2ForCausalLM)
    save(model, folder)
    model.generation_config.save_pretrained(folder)
    tokenizer.save(os.path.join(folder, "tokenizer.json"))
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump(tok_config, f, indent=2)

    rng = np.random.default_rng(seed)
    sequences = [rng.integers(3, config.vocab_size, size=n).tolist() for n in (9, 5)]
    texts = [t for t in corpus()[::TEXT_STRIDE] if len(t) <= TEXT_MAX]
    bos = tokenizer.token_to_id(tok_config["bos_token"]) if tok_config["bos_token"] else None
    with_specials = tokenizer.encode("a", add_special_tokens=True).ids
    expected = {"cases": logits_of(cls, folder, sequences),
                "tokenizer": {"add_bos": bos is not None and with_specials[0] == bos,
                              "texts": [{"text": t, "ids": tokenizer.encode(t, add_special_tokens=False).ids}
                                        for t in texts]}}
    with open(os.path.join(folder, "expected.json"), "w") as f:
        json.dump(expected, f, separators=(",", ":"))
    size = sum(os.path.getsize(os.path.join(folder, x)) for x in os.listdir(folder))
    print("wrote %s (%d files, %d bytes)" % (folder, len(os.listdir(folder)), size))


def save_mixed(model, folder):
    """F16 matrices and F32 norms in one file, as some checkpoints mix them."""
    model.config.save_pretrained(folder)
    tensors = {n: (p.detach().half() if p.dim() == 2 else p.detach().float()).contiguous()
               for n, p in model.named_parameters()}
    save_file(tensors, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})


def save_bf16(shard_size):
    def save(model, folder):
        model.to(torch.bfloat16).save_pretrained(folder, max_shard_size=shard_size)
    return save


def check_llama_cpp(tandem):
    import subprocess
    import tempfile
    import llama_cpp
    for name in sorted(os.listdir(OUT)):
        with open(os.path.join(OUT, name, "expected.json")) as f:
            expected = json.load(f)
        with tempfile.TemporaryDirectory() as tmp:
            gguf = os.path.join(tmp, name + ".gguf")
            subprocess.run([tandem, "convert", os.path.join(OUT, name), "--type", "f32", "--quiet", "-o", gguf],
                           check=True)
            llm = llama_cpp.Llama(gguf, n_ctx=64, logits_all=True, verbose=False, n_threads=2, type_k=0, type_v=0)
            worst = 0.0
            for case in expected["cases"]:
                llm.reset()
                llm.eval(case["ids"])
                got, ref = np.array(llm.scores[:len(case["ids"])]), np.array(case["logits"])
                worst = max(worst, float((np.abs(got - ref).max(axis=1) / np.abs(ref).max(axis=1)).max()))
            texts = expected["tokenizer"]["texts"]
            bad = sum(llm.tokenize(t["text"].encode(), add_bos=False, special=True) != t["ids"] for t in texts)
            print("%-14s llama.cpp: max relative logit error vs transformers %.1e, %d of %d texts tokenized "
                  "differently" % (name, worst, bad, len(texts)))
            del llm


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check-llama-cpp", metavar="TANDEM", help="convert with this tandem and run llama.cpp")
    args = ap.parse_args()
    texts = corpus()
    common = dict(hidden_size=HIDDEN, intermediate_size=FFN, num_hidden_layers=LAYERS,
                  num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, vocab_size=VOCAB)
    tok, tcfg = spm_tokenizer(texts)
    write_folder("llama", LlamaForCausalLM,
                 LlamaConfig(**dict(common, vocab_size=SPM_VOCAB), rms_norm_eps=1e-5, rope_theta=10000.0, bos_token_id=1, eos_token_id=2,
                             max_position_embeddings=128, tie_word_embeddings=False),
                 tok, tcfg, 11, save_mixed)
    tok, tcfg = byte_level_tokenizer(texts, "smollm")
    write_folder("llama-sharded", LlamaForCausalLM,
                 LlamaConfig(**common, rms_norm_eps=1e-5, rope_theta=100000.0, bos_token_id=1, eos_token_id=2,
                             max_position_embeddings=256, tie_word_embeddings=True,
                             rope_scaling={"rope_type": "linear", "factor": 2.0}),
                 tok, tcfg, 12, save_bf16("60KB"))
    tok, tcfg = byte_level_tokenizer(texts, "qwen2")
    eot = tok.token_to_id("<|endoftext|>")
    write_folder("qwen2", Qwen2ForCausalLM,
                 Qwen2Config(**common, rms_norm_eps=1e-6, rope_theta=1000000.0, bos_token_id=eot,
                             eos_token_id=eot, max_position_embeddings=512, tie_word_embeddings=True),
                 tok, tcfg, 13, save_bf16("1GB"))
    if args.check_llama_cpp:
        check_llama_cpp(args.check_llama_cpp)


if __name__ == "__main__":
    main()
