#!/usr/bin/env python3
"""Writes the seed corpus for build/fuzz/fuzz_safetensors into
tests/fuzz/seeds/safetensors/: small valid files, packed by hand from the
format's description (8-byte little-endian header length, JSON header,
data), that between them reach every branch of a successful parse.

    python3 tests/fuzz/make_safetensors_seeds.py
"""
import json
import os
import struct

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds", "safetensors")


def pack(name, tensors, metadata=None, pad=0):
    """tensors: [(name, dtype, shape, bytes)] laid out in order."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for tname, dtype, shape, raw in tensors:
        header[tname] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header).encode() + b" " * pad
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def values(n):
    return np.cos(np.arange(n, dtype=np.float32) * 0.61)


os.makedirs(OUT, exist_ok=True)
bf16 = (values(6).view(np.uint32) >> 16).astype(np.uint16).tobytes()
pack("three_dtypes.safetensors",
     [("model.embed_tokens.weight", "F32", [4, 8], values(32).tobytes()),
      ("model.norm.weight", "F16", [8], values(8).astype(np.float16).tobytes()),
      ("lm_head.weight", "BF16", [2, 3], bf16)],
     metadata={"format": "pt"})
pack("scalar_and_empty.safetensors",
     [("s", "F32", [], values(1).tobytes()), ("e", "F16", [3, 0], b""), ("v", "F16", [2], values(2).astype(np.float16).tobytes())],
     pad=5)
pack("empty.safetensors", [])
print("wrote", sorted(os.listdir(OUT)))
