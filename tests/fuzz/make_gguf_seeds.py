#!/usr/bin/env python3
"""Writes the seed corpus for build/fuzz/fuzz_gguf into tests/fuzz/seeds/gguf/:
small valid GGUF files that between them reach every branch of a successful
open, so the fuzzer starts from deep inside the format rather than from the
magic number.

    python3 tests/fuzz/make_gguf_seeds.py

Two files come from gguf-py (llama.cpp's Python writer); two are packed by
hand for what gguf-py does not write (version 2, a custom alignment, empty
arrays, a file without tensors).
"""
import os
import struct

import numpy as np
from gguf import GGMLQuantizationType as Q, GGUFValueType as T, GGUFWriter, quants

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds", "gguf")


def values(n, scale=1.0):
    return (np.cos(np.arange(n, dtype=np.float32) * 0.61) * scale).astype(np.float32)


def write_with_gguf_py(name, fill):
    w = GGUFWriter(os.path.join(OUT, name), arch="llama")
    fill(w)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def tiny_llama(w):
    """The metadata and tensor names a real llama file has, at toy sizes."""
    w.add_block_count(1)
    w.add_context_length(16)
    w.add_embedding_length(32)
    w.add_feed_forward_length(64)
    w.add_head_count(2)
    w.add_head_count_kv(1)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("llama")
    w.add_token_list(["<unk>", "<s>", "</s>", "a", "b", "\u2581c"])
    w.add_token_scores([0.0, 0.0, 0.0, -1.0, -2.0, -3.5])
    w.add_token_types([2, 3, 3, 1, 1, 1])
    w.add_bos_token_id(1)
    w.add_add_bos_token(True)
    w.add_tensor("token_embd.weight", quants.quantize(values(6 * 32).reshape(6, 32), Q.Q8_0), raw_dtype=Q.Q8_0)
    w.add_tensor("blk.0.attn_q.weight", quants.quantize(values(8 * 32).reshape(8, 32), Q.Q4_0), raw_dtype=Q.Q4_0)
    w.add_tensor("blk.0.ffn_up.weight", quants.quantize(values(2 * 32).reshape(2, 32), Q.Q4_1), raw_dtype=Q.Q4_1)
    w.add_tensor("output_norm.weight", values(32))


def all_value_types(w):
    w.add_uint8("s.u8", 7)
    w.add_int8("s.i8", -7)
    w.add_uint16("s.u16", 700)
    w.add_int16("s.i16", -700)
    w.add_uint32("s.u32", 70000)
    w.add_int32("s.i32", -70000)
    w.add_float32("s.f32", 0.5)
    w.add_uint64("s.u64", 2**50)
    w.add_int64("s.i64", -(2**50))
    w.add_float64("s.f64", 1e-3)
    w.add_bool("s.bool", False)
    w.add_string("s.str", "seed")
    for sub, vals in [(T.UINT16, [1, 2]), (T.INT64, [-1]), (T.FLOAT64, [2.5, -0.5]),
                      (T.BOOL, [True]), (T.STRING, ["x", "yz"])]:
        w.add_key_value("s.arr_" + sub.name.lower(), vals, T.ARRAY, sub_type=sub)
    w.add_tensor("h", values(12).astype(np.float16).reshape(3, 4))
    w.add_tensor("bh", quants.quantize(values(8), Q.BF16), raw_dtype=Q.BF16)


def pack_str(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def pack_kv(key, vtype, payload):
    return pack_str(key) + struct.pack("<I", vtype) + payload


def pack_file(version, kvs, tensors, alignment):
    """tensors: (name, ne, type, data bytes); offsets are assigned aligned."""
    infos, data, offset = b"", b"", 0
    for name, ne, ttype, raw in tensors:
        infos += pack_str(name) + struct.pack("<I", len(ne)) + struct.pack(f"<{len(ne)}Q", *ne)
        infos += struct.pack("<IQ", ttype, offset)
        padded = raw + b"\0" * (-len(raw) % alignment)
        data += padded
        offset += len(padded)
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs)) + b"".join(kvs) + infos
    return head + b"\0" * (-len(head) % alignment) + data


def write_packed(name, content):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(content)


def main():
    os.makedirs(OUT, exist_ok=True)
    write_with_gguf_py("tiny_llama.gguf", tiny_llama)
    write_with_gguf_py("all_value_types.gguf", all_value_types)
    f32 = values(16).tobytes()
    write_packed("v2_align64.gguf", pack_file(2, [
        pack_kv("general.alignment", T.UINT32, struct.pack("<I", 64)),
        pack_kv("e.empty", T.ARRAY, struct.pack("<IQ", T.INT32, 0)),
        pack_kv("e.no_strings", T.ARRAY, struct.pack("<IQ", T.STRING, 0)),
    ], [("a", [16], 0, f32), ("b", [4, 2, 2], 0, f32)], 64))
    write_packed("no_tensors.gguf", pack_file(3, [
        pack_kv("general.name", T.STRING, pack_str("")),
        pack_kv("tokenizer.ggml.merges", T.ARRAY,
                struct.pack("<IQ", T.STRING, 2) + pack_str("a b") + pack_str("ab c")),
    ], [], 32))
    for name in sorted(os.listdir(OUT)):
        print(f"{os.path.join(OUT, name)}: {os.path.getsize(os.path.join(OUT, name))} bytes")


if __name__ == "__main__":
    main()
