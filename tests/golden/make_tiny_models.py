#!/usr/bin/env python3
"""Tiny random-weight GGUF models + NumPy reference logits (golden fixtures).

Oracle: the files are written by gguf-py's GGUFWriter (quantized by gguf.quants),
and the logits come from a float64 NumPy forward pass written from llama.cpp's
semantics (not from tandem's C code). The reference reads the weights back from
the written file with GGUFReader and gguf.quants.dequantize, so quantization
error is part of the model, not part of the comparison.

Writes into tests/golden/fixtures/:
  tiny-{llama,qwen2}-{f32,f16,bf16,q8_0,q4_0,q4_1}.gguf   the models
  tiny-{arch}-{type}.json   {"model", "tokens": [12 ids], "logits": [[vocab] x 12]}
  index.json                the 12 model names

Variants worth knowing about:
  tiny-llama-f16   has rope.scaling.type = "linear", rope.scaling.factor = 2.0
  tiny-llama-q8_0  has its own output.weight; every other model ties the LM head
                   to token_embd.weight (no output.weight tensor)
  tiny-qwen2-*     have F32 q/k/v biases and use NEOX rope

Usage:  python tests/golden/make_tiny_models.py [--check-llama-cpp]
--check-llama-cpp also loads every model with llama-cpp-python, stores its
logits in the fixture ("llama_cpp_logits", a second oracle) and prints the max
|logit difference| between llama.cpp and this reference, plain and with
llama.cpp's CPU activation rounding emulated. The committed fixtures were made
with this flag.
"""
import argparse
import json
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as QT

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")

N_LAYER, N_EMBD, N_HEAD, N_HEAD_KV, N_FF, VOCAB, N_CTX = 2, 64, 4, 2, 96, 96, 64
HEAD_DIM = N_EMBD // N_HEAD
N_PROMPT = 12

ARCHS = {
    #         rms eps  rope base   rope mode  qkv bias
    "llama": (1e-5, 10000.0, "normal", False),
    "qwen2": (1e-6, 1000000.0, "neox", True),
}
TYPES = {"f32": QT.F32, "f16": QT.F16, "bf16": QT.BF16,
         "q8_0": QT.Q8_0, "q4_0": QT.Q4_0, "q4_1": QT.Q4_1}
ARCH_SEED = {"llama": 1, "qwen2": 2}
TYPE_SEED = {"f32": 0, "f16": 1, "bf16": 2, "q8_0": 3, "q4_0": 4, "q4_1": 5}


def model_name(arch, tname):
    return f"tiny-{arch}-{tname}"


def variant(arch, tname):
    """(rope linear scaling factor or None, has separate output.weight)."""
    scale = 2.0 if (arch, tname) == ("llama", "f16") else None
    untied = (arch, tname) == ("llama", "q8_0")
    return scale, untied


# ---------------------------------------------------------------- writing

def random_weights(rng, has_bias, untied):
    """Float32 weights in numpy layout (rows = output features)."""
    def mat(rows, cols):  # 1/sqrt(fan_in): unit-scale outputs, so attention is far from uniform
        return (rng.standard_normal((rows, cols)) / np.sqrt(cols)).astype(np.float32)

    def norm(n):
        return (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    kv = N_HEAD_KV * HEAD_DIM
    w = {"token_embd.weight": rng.standard_normal((VOCAB, N_EMBD)).astype(np.float32)}
    for i in range(N_LAYER):
        p = f"blk.{i}."
        w[p + "attn_norm.weight"] = norm(N_EMBD)
        w[p + "attn_q.weight"] = mat(N_EMBD, N_EMBD)
        w[p + "attn_k.weight"] = mat(kv, N_EMBD)
        w[p + "attn_v.weight"] = mat(kv, N_EMBD)
        if has_bias:
            w[p + "attn_q.bias"] = (0.1 * rng.standard_normal(N_EMBD)).astype(np.float32)
            w[p + "attn_k.bias"] = (0.1 * rng.standard_normal(kv)).astype(np.float32)
            w[p + "attn_v.bias"] = (0.1 * rng.standard_normal(kv)).astype(np.float32)
        w[p + "attn_output.weight"] = mat(N_EMBD, N_EMBD)
        w[p + "ffn_norm.weight"] = norm(N_EMBD)
        w[p + "ffn_gate.weight"] = mat(N_FF, N_EMBD)
        w[p + "ffn_up.weight"] = mat(N_FF, N_EMBD)
        w[p + "ffn_down.weight"] = mat(N_EMBD, N_FF)
    w["output_norm.weight"] = norm(N_EMBD)
    if untied:
        # unit-scale rows like token_embd, so logits have the same range as when tied
        w["output.weight"] = rng.standard_normal((VOCAB, N_EMBD)).astype(np.float32)
    return w


def add_vocab(wr):
    tokens = ["<unk>", "<s>", "</s>"] + [f"t{i}" for i in range(3, VOCAB)]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL] \
        + [gguf.TokenType.NORMAL] * (VOCAB - 3)
    scores = [0.0, 0.0, 0.0] + [-float(i) for i in range(3, VOCAB)]
    wr.add_tokenizer_model("llama")
    wr.add_token_list(tokens)
    wr.add_token_scores(scores)
    wr.add_token_types(types)
    wr.add_bos_token_id(1)
    wr.add_eos_token_id(2)


def write_model(path, arch, tname):
    eps, base, _, has_bias = ARCHS[arch]
    scale, untied = variant(arch, tname)
    qtype = TYPES[tname]
    rng = np.random.default_rng(1000 * ARCH_SEED[arch] + TYPE_SEED[tname])
    weights = random_weights(rng, has_bias, untied)

    wr = gguf.GGUFWriter(path, arch)
    wr.add_name(model_name(arch, tname))
    wr.add_block_count(N_LAYER)
    wr.add_context_length(N_CTX)
    wr.add_embedding_length(N_EMBD)
    wr.add_feed_forward_length(N_FF)
    wr.add_head_count(N_HEAD)
    wr.add_head_count_kv(N_HEAD_KV)
    wr.add_layer_norm_rms_eps(eps)
    wr.add_rope_freq_base(base)
    if scale is not None:
        wr.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        wr.add_rope_scaling_factor(scale)
    add_vocab(wr)

    for name, t in weights.items():
        if t.ndim == 1 or qtype == QT.F32:  # norms and biases stay F32
            wr.add_tensor(name, t)
        elif qtype == QT.F16:
            wr.add_tensor(name, t.astype(np.float16))
        else:  # BF16 and block formats: raw bytes + raw_dtype
            wr.add_tensor(name, gguf.quants.quantize(t, qtype), raw_dtype=qtype)

    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()


# ---------------------------------------------------------------- reading

def read_model(path):
    """Returns (hparams dict, {name: float64 array in numpy layout})."""
    rd = gguf.GGUFReader(path)
    arch = rd.get_field("general.architecture").contents()

    def field(key, default=None):
        f = rd.get_field(f"{arch}.{key}")
        return default if f is None else f.contents()

    hp = {
        "arch": arch,
        "n_layer": field("block_count"),
        "n_embd": field("embedding_length"),
        "n_head": field("attention.head_count"),
        "n_head_kv": field("attention.head_count_kv"),
        "eps": field("attention.layer_norm_rms_epsilon"),
        "base": field("rope.freq_base"),
        "scale_type": field("rope.scaling.type", "none"),
        "scale_factor": field("rope.scaling.factor", 1.0),
    }
    w = {}
    for t in rd.tensors:
        shape = tuple(int(d) for d in reversed(t.shape.tolist()))
        a = gguf.quants.dequantize(t.data, t.tensor_type)
        w[t.name] = np.asarray(a, dtype=np.float64).reshape(shape)
    return hp, w


# ---------------------------------------------------------------- reference

def rmsnorm(x, weight, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight


def rope(x, pos, base, freq_scale, mode):
    """x: (n_tok, n_heads, head_dim). llama.cpp rope with ext_factor 0, attn_factor 1.

    normal (LLAMA_ROPE_TYPE_NORM): rotates adjacent pairs (2i, 2i+1)
    neox   (LLAMA_ROPE_TYPE_NEOX): rotates pairs (i, i + head_dim/2)
    Both use theta_i = p * freq_scale * base^(-2i/head_dim), i < head_dim/2.
    """
    d = x.shape[-1]
    inv = base ** (-np.arange(0, d, 2, dtype=np.float64) / d)        # (d/2,)
    theta = (pos.astype(np.float64) * freq_scale)[:, None] * inv[None]  # (n_tok, d/2)
    cos, sin = np.cos(theta)[:, None, :], np.sin(theta)[:, None, :]
    out = np.empty_like(x)
    if mode == "normal":
        x0, x1 = x[..., 0::2], x[..., 1::2]
        out[..., 0::2] = x0 * cos - x1 * sin
        out[..., 1::2] = x0 * sin + x1 * cos
    else:
        h = d // 2
        x0, x1 = x[..., :h], x[..., h:]
        out[..., :h] = x0 * cos - x1 * sin
        out[..., h:] = x0 * sin + x1 * cos
    return out


def forward(hp, w, tokens, matmul=None):
    """Logits (n_tok, vocab) for the whole prompt, causal, positions 0..n-1.

    matmul(x, name) computes x @ w[name].T; --check-llama-cpp swaps in one that
    rounds x the way llama.cpp's CPU backend does before its dot products.
    """
    mm = matmul or (lambda x, name: x @ w[name].T)
    mode = ARCHS[hp["arch"]][2]
    n_head, n_kv = hp["n_head"], hp["n_head_kv"]
    hd = hp["n_embd"] // n_head
    group = n_head // n_kv
    eps, base = hp["eps"], hp["base"]
    freq_scale = 1.0 / hp["scale_factor"] if hp["scale_type"] == "linear" else 1.0
    n = len(tokens)
    pos = np.arange(n)
    mask = np.triu(np.full((n, n), -np.inf), k=1)

    x = w["token_embd.weight"][np.asarray(tokens)]                   # (n, C)
    for i in range(hp["n_layer"]):
        p = f"blk.{i}."
        h = rmsnorm(x, w[p + "attn_norm.weight"], eps)
        q = mm(h, p + "attn_q.weight")
        k = mm(h, p + "attn_k.weight")
        v = mm(h, p + "attn_v.weight")
        if p + "attn_q.bias" in w:
            q = q + w[p + "attn_q.bias"]
            k = k + w[p + "attn_k.bias"]
            v = v + w[p + "attn_v.bias"]
        q = rope(q.reshape(n, n_head, hd), pos, base, freq_scale, mode)
        k = rope(k.reshape(n, n_kv, hd), pos, base, freq_scale, mode)
        v = v.reshape(n, n_kv, hd)
        att = np.empty((n, n_head, hd))
        for hh in range(n_head):
            kh = hh // group
            s = q[:, hh, :] @ k[:, kh, :].T / np.sqrt(hd) + mask       # (n, n)
            s = np.exp(s - s.max(axis=-1, keepdims=True))
            s /= s.sum(axis=-1, keepdims=True)
            att[:, hh, :] = s @ v[:, kh, :]
        x = x + mm(att.reshape(n, -1), p + "attn_output.weight")
        h = rmsnorm(x, w[p + "ffn_norm.weight"], eps)
        g = mm(h, p + "ffn_gate.weight")
        u = mm(h, p + "ffn_up.weight")
        x = x + mm(g / (1.0 + np.exp(-g)) * u, p + "ffn_down.weight")
    head = "output.weight" if "output.weight" in w else "token_embd.weight"
    return mm(rmsnorm(x, w["output_norm.weight"], eps), head)


def prompt_tokens(arch, tname):
    rng = np.random.default_rng(7000 + 10 * ARCH_SEED[arch] + TYPE_SEED[tname])
    return [int(t) for t in rng.integers(3, VOCAB, size=N_PROMPT)]


def fmt(v):
    return float(f"{v:.7g}")


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
        f.write("\n")


# ---------------------------------------------------------------- llama.cpp check

def llama_cpp_logits(path, tokens):
    import llama_cpp
    kw = dict(model_path=path, logits_all=True, n_ctx=N_CTX, n_batch=N_CTX,
              n_threads=1, seed=0, verbose=False)
    # F32 KV cache, so only llama.cpp's matmul activation rounding remains in
    # the difference (see llama_cpp_cpu_matmul).
    llm = llama_cpp.Llama(type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32, **kw)
    llm.eval(tokens)
    out = np.array(llm.scores[:len(tokens)], dtype=np.float64)
    llm.close()
    return out


def q8_blocks(x):
    """ggml's quantize_row_q8_0/q8_1 over blocks of 32: (dequantized x, fp16 block sums d*sum(q))."""
    xb = np.asarray(x, dtype=np.float32).reshape(x.shape[0], -1, 32)
    d = np.abs(xb).max(axis=-1, keepdims=True) / np.float32(127)
    inv = np.divide(np.float32(1), d, out=np.zeros_like(d), where=d > 0)
    q = np.rint(xb * inv)
    vals = q * d.astype(np.float16).astype(np.float64)
    sums = (d[..., 0] * q.sum(axis=-1, dtype=np.float32)).astype(np.float16).astype(np.float64)
    return vals.reshape(x.shape), sums


def llama_cpp_cpu_matmul(path, w):
    """matmul(x, name) as ggml's CPU backend computes x @ W.T up to summation order:
    x is first converted to the weight type's vec_dot type (F16 -> f16, BF16 -> bf16,
    Q8_0/Q4_0 -> Q8_0, Q4_1 -> Q8_1 whose f16 block sums multiply Q4_1's mins)."""
    types, mins = {}, {}
    for t in gguf.GGUFReader(path).tensors:
        types[t.name] = t.tensor_type
        if t.tensor_type == QT.Q4_1:  # block: f16 d, f16 m, 16 bytes of nibbles
            blocks = np.asarray(t.data).reshape(-1, 20)
            mins[t.name] = blocks[:, 2:4].copy().view(np.float16).astype(np.float64) \
                .reshape(int(t.shape[1]), -1)

    def matmul(x, name):
        wt, qt = w[name], types[name]
        if qt == QT.F32:
            return x @ wt.T
        if qt == QT.F16:
            return x.astype(np.float32).astype(np.float16).astype(np.float64) @ wt.T
        if qt == QT.BF16:
            xr = gguf.quants.dequantize(gguf.quants.quantize(x.astype(np.float32), QT.BF16), QT.BF16)
            return xr.astype(np.float64) @ wt.T
        vals, sums = q8_blocks(x)
        if qt == QT.Q4_1:  # W = d*q + m per block: sum(d*q*xq) + m * fp16(block sum)
            m = mins[name]
            return vals @ (wt - np.repeat(m, 32, axis=1)).T + sums @ m.T
        return vals @ wt.T

    return matmul


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check-llama-cpp", action="store_true",
                    help="compare the reference with llama-cpp-python's logits")
    args = ap.parse_args()
    os.makedirs(FIXTURES, exist_ok=True)

    names = []
    for arch in ARCHS:
        for tname in TYPES:
            name = model_name(arch, tname)
            gpath = os.path.join(FIXTURES, name + ".gguf")
            write_model(gpath, arch, tname)
            hp, w = read_model(gpath)
            tokens = prompt_tokens(arch, tname)
            logits = forward(hp, w, tokens)
            fixture = {
                "model": name + ".gguf",
                "tokens": tokens,
                "logits": [[fmt(v) for v in row] for row in logits],
            }
            if args.check_llama_cpp:
                # llama.cpp's own logits, a second oracle: the engine follows
                # its activation rounding for f32 and the 8-bit types.
                import llama_cpp
                lc = llama_cpp_logits(gpath, tokens)
                fixture["llama_cpp"] = "llama-cpp-python " + llama_cpp.__version__
                fixture["llama_cpp_logits"] = [[fmt(v) for v in row] for row in lc]
            write_json(os.path.join(FIXTURES, name + ".json"), fixture)
            names.append(name + ".gguf")
            line = f"{name}: logits range [{logits.min():.3f}, {logits.max():.3f}]"
            if args.check_llama_cpp:
                lc = llama_cpp_logits(gpath, tokens)
                emulated = forward(hp, w, tokens, llama_cpp_cpu_matmul(gpath, w))
                same_argmax = int((lc.argmax(1) == logits.argmax(1)).sum())
                line += (f"\n  vs llama.cpp: max|diff| {np.abs(lc - logits).max():.3g},"
                         f" with its activation rounding emulated {np.abs(lc - emulated).max():.3g},"
                         f" argmax agree {same_argmax}/{len(tokens)}")
            print(line, flush=True)
    write_json(os.path.join(FIXTURES, "index.json"), {"models": names})


if __name__ == "__main__":
    sys.exit(main())
