"""Q5_1: 32 values as 5-bit codes above a minimum, with fp16 scale and fp16 minimum.

Byte layout (ggml-common.h `block_q5_1`, 24 bytes):
    0..1   d      fp16 scale
    2..3   m      fp16 minimum
    4..7   qh     uint32 little-endian: bit j = bit 4 of code(x[j]), j = 0..31
    8..23  qs[16] byte j = low4(code(x[j])) | low4(code(x[j+16])) << 4
Dequantize (ggml-quants.c `dequantize_row_q5_1`): x = code*fp32(d) + fp32(m).

Quantize (ggml-quants.c `quantize_row_q5_1_ref`, which `quantize_q5_1` calls without an
imatrix): min / max and d = (max - min) / 31, id as in q4_1; code = (uint8_t)((x-min)*id +
0.5f) with no MIN clamp (a code of 32 cannot arise from finite input; a NaN or inf gives 0).
Fused and unfused roundings as q4_1: `q5_1.nofma` (x86-64, gguf-py), `q5_1.fma`
(`(x-min)*id + 0.5f` fused), `q5_1` = nofma; code*d is exact, so both dequantize alike.
"""
from __future__ import annotations

import numpy as np

from oracle.formats import Format
from oracle.ggml.fields import f16_bytes, f16_field
from oracle.ggml.q4_1 import affine, offset, scale_min
from oracle.ggml.q5_0 import pack_q5, unpack_q5
from oracle.rounding import c_float_to_int

QK = 32


class Q5_1(Format, name="q5_1.nofma"):
    block_size = QK
    block_bytes = 24
    source = "ggml/src/ggml-quants.c: quantize_row_q5_1_ref, dequantize_row_q5_1 (unfused)"
    summary = "GGML q5_1, 32 x 5-bit, d = (max-min)/31, m = min (fp16), trunc((x-min)*id + 0.5); unfused"
    fused: bool = False

    @classmethod
    def quantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        mn, d, inv = scale_min(blocks, 31)
        code = c_float_to_int(offset(blocks, mn, inv, cls.fused), 8).astype(np.uint8)
        qh, qs = pack_q5(code)
        return np.concatenate([f16_bytes(d), f16_bytes(mn), qh, qs], axis=1)

    @classmethod
    def dequantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        d, m = f16_field(blocks, 0), f16_field(blocks, 2)
        return affine(unpack_q5(blocks[:, 4:8], blocks[:, 8:]), d, m)


class Q5_1Ref(Q5_1, name="q5_1"):
    summary = "GGML q5_1 as x86-64 builds and gguf-py round it (alias of q5_1.nofma)"


class Q5_1Fma(Q5_1, name="q5_1.fma"):
    source = "ggml/src/ggml-quants.c: quantize_row_q5_1_ref compiled with FMA contraction (aarch64)"
    summary = "GGML q5_1 with (x-min)*id + 0.5f as one fused multiply-add (aarch64 and FMA-contracted builds)"
    fused = True
