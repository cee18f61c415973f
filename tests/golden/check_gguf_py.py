#!/usr/bin/env python3
"""Independent oracle for the GGUF reader: writes a small file with gguf-py
(the PyPI `gguf` package, llama.cpp's own Python writer) that
tests/unit/test_gguf.c reads back and checks value by value.

    python3 tests/golden/check_gguf_py.py [OUT]   # default: tests/unit/fixtures/gguf_py_written.gguf

Every metadata value type appears once as a scalar and arrays of several
element types; one tensor of each supported dtype, quantized by gguf-py's
own quantizers. Tensor bytes are not repeated in C: the file carries
"test.sum.NAME" = sum of the tensor's bytes, which the C test recomputes.
The values below are mirrored in test_gguf.c (test_reads_gguf_py_file).
"""
import sys

import numpy as np
from gguf import GGMLQuantizationType as Q, GGUFValueType as T, GGUFWriter, quants

OUT = sys.argv[1] if len(sys.argv) > 1 else "tests/unit/fixtures/gguf_py_written.gguf"


def ramp(shape):
    """Deterministic values with both signs, so quantized blocks are not trivial."""
    n = int(np.prod(shape))
    return (np.sin(np.arange(n, dtype=np.float32) * 0.37) * 3.0).reshape(shape).astype(np.float32)


def main():
    w = GGUFWriter(OUT, arch="tiny")
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_float32("test.f32", 1.5)
    w.add_uint64("test.u64", 2**40 + 1)
    w.add_int64("test.i64", -(2**40))
    w.add_float64("test.f64", 0.25)
    w.add_bool("test.bool", True)
    w.add_string("test.str", "h\u00e9llo")  # two-byte UTF-8 in the middle
    w.add_key_value("test.arr_u8", [1, 2, 255], T.ARRAY, sub_type=T.UINT8)
    w.add_key_value("test.arr_i32", [-1, 0, 7], T.ARRAY, sub_type=T.INT32)
    w.add_key_value("test.arr_i64", [-5, 2**40], T.ARRAY, sub_type=T.INT64)
    w.add_key_value("test.arr_f32", [0.5, -2.0], T.ARRAY, sub_type=T.FLOAT32)
    w.add_key_value("test.arr_f64", [1.25], T.ARRAY, sub_type=T.FLOAT64)
    w.add_key_value("test.arr_bool", [True, False], T.ARRAY, sub_type=T.BOOL)
    w.add_key_value("test.arr_str", ["a", "bc", ""], T.ARRAY, sub_type=T.STRING)

    # numpy shapes are (rows, cols); GGUF's ne[0] is cols.
    tensors = {
        "t.f32": (ramp((2, 8)), None),
        "t.f16": (ramp((3, 4)).astype(np.float16), None),
        "t.bf16": (quants.quantize(ramp((32,)), Q.BF16), Q.BF16),
        "t.q8_0": (quants.quantize(ramp((2, 64)), Q.Q8_0), Q.Q8_0),
        "t.q4_0": (quants.quantize(ramp((1, 32)), Q.Q4_0), Q.Q4_0),
        "t.q4_1": (quants.quantize(ramp((64,)), Q.Q4_1), Q.Q4_1),
    }
    for name, (data, _) in tensors.items():
        w.add_uint64("test.sum." + name, int(data.view(np.uint8).astype(np.uint64).sum()))
    for name, (data, raw_dtype) in tensors.items():
        w.add_tensor(name, data, raw_dtype=raw_dtype)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
