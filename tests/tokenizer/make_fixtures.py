#!/usr/bin/env python3
"""Builds the tokenizer fixtures under tests/tokenizer/ and the expected ids.

Writes:
  llama2-vocab.gguf      the Llama-2/Vicuna SentencePiece vocabulary (tokens,
                         scores, types, BOS/EOS/UNK, add_bos, space prefix) as a
                         tensor-less GGUF, from ../shared/data/tokenizers/llama2/
                         tokenizer.model
  smollm2-mini.gguf      SmolLM2's byte-level BPE cut to its first 2000 merges
                         (and the tokens they need), from the real SmolLM2 GGUF;
                         small enough to commit, used where the model is absent
  stories260K-vocab.gguf the 512-token llama2.c vocabulary of stories260K
                         (../shared/data/models/stories260K/tok512.bin: spaces
                         written as "\u2581" again, <s>/</s> unwrapped from
                         their newlines, types from the layout: 0 unknown, 1-2
                         control, 3-258 bytes); its reference ids come from
                         llama2.c's run.c (greedy_once_upon_a_time.ids)
  expected-pre-{gpt2,llama3,qwen2}.jsonl
                         the mini vocabulary under the other pre-tokenizers
                         (tokenizer.ggml.pre gpt2 / llama3 / qwen2): ids with
                         special tokens for the first 340 corpus lines (the
                         hand-written cases and some prompts); Llama-3's model also takes a piece
                         that is a token whole (ignore_merges)
  expected-llama2.jsonl, expected-smollm2.jsonl, expected-smollm2-mini.jsonl
                         one line per corpus line: {"special": ids with special
                         tokens recognised, "plain": ids with special-token text
                         treated as text, "decoded": the oracle's decode of
                         "plain" without special tokens}; "plain" is left out
                         where it equals "special", "decoded" where it equals
                         the corpus line

The oracle is Hugging Face `tokenizers`, set up the way the published
tokenizer.json files are:
  llama2: BPE(byte_fallback, fuse_unk) whose merges are every split of a piece
          into two vocabulary pieces, ordered by the piece's score (highest
          first, ties by the ids of the two halves; pieces with score 0, i.e.
          control and byte tokens, are never merge results) -- the rule of the
          transformers converter that made meta-llama's tokenizer.json;
          normalizer Prepend("\u2581") + Replace(" ", "\u2581"); <s> prepended.
  smollm2: BPE(vocab, merges) from the GGUF, pre-tokenizer
          Digits(individual_digits) then ByteLevel(regex, no prefix space), as
          in SmolLM2's tokenizer.json; ByteLevel decoder.
The control tokens are added tokens (special=True). "plain" sets
encode_special_tokens=True.

Note: ../shared/data/tokenizers/llama2/tokenizer.json is *not* the Llama-2
vocabulary (its ids disagree with tokenizer.model on 31730 of 32000 pieces and
it lacks pieces such as "\u2581hello"), so it is not used; tokenizer.model is the
Llama-2 model (its ids match llama2.c, sentencepiece and the stories260K
reference ids).

Cross-checks, printed but not stored: the sentencepiece library on
tokenizer.model, and llama.cpp (llama-cpp-python, vocab_only) on the SmolLM2
GGUF, when those packages are installed.

Usage: python3 tests/tokenizer/make_fixtures.py   (needs: tokenizers, gguf)
"""
import json
import os
import struct
import sys

import gguf
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SHARED = os.path.join(ROOT, "..", "shared", "data")
SPM_MODEL = os.path.join(SHARED, "tokenizers", "llama2", "tokenizer.model")
SMOL_GGUF = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
MINI_MERGES = 2000
PRE_LINES = 340  # the hand-written cases and the first prompts
RE_GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
RE_LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
             r"\s*[\r\n]+|\s+(?!\S)|\s+")
RE_QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
            r"\s*[\r\n]+|\s+(?!\S)|\s+")

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6


# ---- a minimal reader for SentencePiece's ModelProto (no protobuf needed) ----
def _varint(b, i):
    r = s = 0
    while True:
        c = b[i]
        i += 1
        r |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return r, i


def _fields(b):
    i = 0
    while i < len(b):
        key, i = _varint(b, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _varint(b, i)
        elif wire == 1:
            v, i = b[i:i + 8], i + 8
        elif wire == 2:
            n, i = _varint(b, i)
            v, i = b[i:i + n], i + n
        elif wire == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise ValueError("unsupported protobuf wire type %d" % wire)
        yield field, v


def load_spm(path):
    """[(piece, score, type)] in id order. ModelProto.pieces is field 1;
    SentencePiece: piece=1, score=2 (float), type=3 (enum, default NORMAL)."""
    with open(path, "rb") as f:
        data = f.read()
    out = []
    for field, v in _fields(data):
        if field != 1:
            continue
        piece, score, typ = None, 0.0, NORMAL
        for ff, vv in _fields(v):
            if ff == 1:
                piece = vv.decode("utf-8")
            elif ff == 2:
                score = struct.unpack("<f", vv)[0]
            elif ff == 3:
                typ = vv
        out.append((piece, score, typ))
    return out


# ---- GGUF -----------------------------------------------------------------------
def read_gguf_vocab(path):
    r = gguf.GGUFReader(path)

    def arr(key):
        f = r.fields[key]
        return [f.parts[i] for i in f.data]

    def scalar(key):
        f = r.fields.get(key)
        if f is None:
            return None
        v = f.parts[f.data[0]]
        return bytes(v).decode() if f.types[0] == gguf.GGUFValueType.STRING else v.tolist()[0]

    return {
        "tokens": [bytes(x).decode("utf-8") for x in arr("tokenizer.ggml.tokens")],
        "types": [int(x[0]) for x in arr("tokenizer.ggml.token_type")],
        "merges": [bytes(x).decode("utf-8") for x in arr("tokenizer.ggml.merges")],
        "scalar": scalar,
    }


def write_gguf(path, model, pre, tokens, types, bos, eos, unk, add_bos, add_space_prefix,
               scores=None, merges=None, pad=None, chat_template=None, name=None):
    tmp = path + ".tmp"
    w = gguf.GGUFWriter(tmp, "llama")
    if name:
        w.add_name(name)
    w.add_tokenizer_model(model)
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    if scores is not None:
        w.add_token_scores([float(s) for s in scores])
    w.add_token_types([int(t) for t in types])
    if merges is not None:
        w.add_token_merges(merges)
    w.add_bos_token_id(bos)
    w.add_eos_token_id(eos)
    w.add_unk_token_id(unk)
    if pad is not None:
        w.add_pad_token_id(pad)
    w.add_add_bos_token(add_bos)
    w.add_add_space_prefix(add_space_prefix)
    if chat_template:
        w.add_chat_template(chat_template)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(tmp, path)
    print("wrote %s (%d bytes)" % (path, os.path.getsize(path)))


# ---- oracles ----------------------------------------------------------------------
def hf_llama(pieces):
    vocab = {p: i for i, (p, _, _) in enumerate(pieces)}
    cand = []
    for i, (p, score, _) in enumerate(pieces):
        if not score:
            continue
        for k in range(1, len(p)):
            a, b = p[:k], p[k:]
            if a in vocab and b in vocab:
                cand.append((-score, vocab[a], vocab[b], a, b))
    cand.sort()
    tok = Tokenizer(models.BPE(vocab, [(a, b) for *_, a, b in cand], unk_token="<unk>",
                               fuse_unk=True, byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(),
                                     decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    tok.add_special_tokens([AddedToken(p, normalized=False, special=True)
                            for p, _, t in pieces if t in (UNKNOWN, CONTROL)])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", vocab["<s>"])])
    return tok


def hf_smollm(tokens, types, merges, regex=None, ignore_merges=False):
    """SmolLM2's setup; with regex, that split instead (as Llama-3's and
    Qwen2's tokenizer.json have it: Split(isolated) then ByteLevel without
    its own regex)."""
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab, [tuple(m.split(" ")) for m in merges], fuse_unk=False,
                               byte_fallback=False, ignore_merges=ignore_merges))
    if regex:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(regex), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                     pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True)
                            for t, ty in zip(tokens, types) if ty == CONTROL])
    return tok


def expected(tok, corpus, path):
    rows = []
    for text in corpus:
        tok.encode_special_tokens = False
        special = tok.encode(text).ids
        tok.encode_special_tokens = True
        plain = tok.encode(text).ids
        rows.append({"special": special, "plain": plain,
                     "decoded": tok.decode(plain, skip_special_tokens=True)})
    with open(path, "w", encoding="utf-8") as f:
        for text, r in zip(corpus, rows):
            # "plain" and "decoded" are left out where they equal "special" / the text
            short = {k: v for k, v in r.items()
                     if k == "special" or v != (r["special"] if k == "plain" else text)}
            f.write(json.dumps(short, ensure_ascii=False, separators=(",", ":")) + "\n")
    print("wrote %s (%d lines)" % (path, len(rows)))
    return rows


def cross_check(name, rows, encode):
    """encode(text, special) -> ids; counts disagreements with the HF rows."""
    bad = 0
    for text, r in zip(corpus, rows):
        for key, special in (("special", True), ("plain", False)):
            if encode(text, special) != r[key]:
                bad += 1
                if bad <= 3:
                    print("  %s disagrees (%s) on %r" % (name, key, text[:60]))
    print("cross-check %s: %d disagreements over %d encodings" % (name, bad, 2 * len(rows)))


def load_llama2c(path):
    """llama2.c's tokenizer file: int32 max_token_length, then per token
    float32 score, int32 length, bytes."""
    with open(path, "rb") as f:
        data = f.read()
    i, out = 4, []
    while i < len(data):
        score, n = struct.unpack("<fi", data[i:i + 8])
        out.append((data[i + 8:i + 8 + n].decode("utf-8"), score))
        i += 8 + n
    return out


corpus = [json.loads(l) for l in open(os.path.join(HERE, "corpus.jsonl"), encoding="utf-8")]

# llama2
pieces = load_spm(SPM_MODEL)
write_gguf(os.path.join(HERE, "llama2-vocab.gguf"), "llama", "default",
           [p for p, _, _ in pieces], [t for _, _, t in pieces], bos=1, eos=2, unk=0,
           add_bos=True, add_space_prefix=True, scores=[s for _, s, _ in pieces],
           name="Llama-2 tokenizer (from tokenizer.model)")
rows = expected(hf_llama(pieces), corpus, os.path.join(HERE, "expected-llama2.jsonl"))
try:
    import sentencepiece
    sp = sentencepiece.SentencePieceProcessor(model_file=SPM_MODEL)
    # sentencepiece never parses special tokens: compare "plain" only
    bad = sum(1 for text, r in zip(corpus, rows) if [1] + sp.encode(text) != r["plain"])
    print("cross-check sentencepiece: %d disagreements over %d lines" % (bad, len(rows)))
except ImportError:
    print("cross-check sentencepiece: not installed, skipped")

# stories260K
tok512 = load_llama2c(os.path.join(SHARED, "models", "stories260K", "tok512.bin"))
pieces = []
for i, (p, score) in enumerate(tok512):
    typ = UNKNOWN if i == 0 else CONTROL if i in (1, 2) else BYTE if 3 <= i < 259 else NORMAL
    pieces.append((p.strip("\n") if typ == CONTROL else p.replace(" ", "\u2581"), score, typ))
write_gguf(os.path.join(HERE, "stories260K-vocab.gguf"), "llama", "default",
           [p for p, _, _ in pieces], [t for _, _, t in pieces], bos=1, eos=2, unk=0,
           add_bos=True, add_space_prefix=True, scores=[s for _, s, _ in pieces],
           name="stories260K tokenizer (from llama2.c tok512.bin)")

# smollm2 (full, from the model) and the committed mini vocabulary
if not os.path.exists(SMOL_GGUF):
    sys.exit("make_fixtures: %s missing (scripts/fetch-smollm2.sh fetches it)" % SMOL_GGUF)
v = read_gguf_vocab(SMOL_GGUF)
rows = expected(hf_smollm(v["tokens"], v["types"], v["merges"]), corpus,
                os.path.join(HERE, "expected-smollm2.jsonl"))
try:
    import llama_cpp
    llm = llama_cpp.Llama(SMOL_GGUF, vocab_only=True, verbose=False)
    cross_check("llama.cpp", rows, lambda text, special: llm.tokenize(text.encode("utf-8"), add_bos=False, special=special))
except ImportError:
    print("cross-check llama.cpp: llama-cpp-python not installed, skipped")

mini_merges = v["merges"][:MINI_MERGES]
index = {t: i for i, t in enumerate(v["tokens"])}
n_mini = 1 + max(max(index[a], index[b], index[a + b]) for a, b in (m.split(" ") for m in mini_merges))
mini_tokens, mini_types = v["tokens"][:n_mini], v["types"][:n_mini]
write_gguf(os.path.join(HERE, "smollm2-mini.gguf"), "gpt2", v["scalar"]("tokenizer.ggml.pre"),
           mini_tokens, mini_types, bos=1, eos=2, unk=0, pad=2, add_bos=False, add_space_prefix=False,
           merges=mini_merges, chat_template=v["scalar"]("tokenizer.chat_template"),
           name="SmolLM2 tokenizer, first %d merges" % MINI_MERGES)
expected(hf_smollm(mini_tokens, mini_types, mini_merges), corpus,
         os.path.join(HERE, "expected-smollm2-mini.jsonl"))

for name, regex, ignore in (("gpt2", RE_GPT2, False), ("llama3", RE_LLAMA3, True), ("qwen2", RE_QWEN2, False)):
    tok = hf_smollm(mini_tokens, mini_types, mini_merges, regex, ignore)
    path = os.path.join(HERE, "expected-pre-%s.jsonl" % name)
    with open(path, "w", encoding="utf-8") as f:
        for text in corpus[:PRE_LINES]:
            f.write(json.dumps(tok.encode(text).ids, separators=(",", ":")) + "\n")
    print("wrote %s (%d lines)" % (path, PRE_LINES))
