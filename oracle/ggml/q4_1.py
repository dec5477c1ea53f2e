"""Q4_1: 32 values as 4-bit codes above a minimum, with fp16 scale and fp16 minimum.

Byte layout (ggml-common.h `block_q4_1`, 20 bytes):
    0..1   d      fp16 scale
    2..3   m      fp16 minimum
    4..19  qs[16] byte j = code(x[j]) | code(x[j+16]) << 4   (j / j+16 pairing)
Dequantize (ggml-quants.c `dequantize_row_q4_1`): x = nibble*fp32(d) + fp32(m).

Quantize (ggml-quants.c `quantize_row_q4_1_ref`, which `quantize_q4_1` calls when there is no
imatrix): min / max scanned from FLT_MAX / -FLT_MAX with strict comparisons (NaN never wins,
the first of equal values stays, a block of +inf keeps min = FLT_MAX); d = (max - min) / 15
and id = d ? 1/d : 0 in float32 (id from the float32 d); code = MIN(15, (int8_t)((x-min)*id
+ 0.5f)).

`(x-min)*id + 0.5f` is contractible: GCC fuses it on FMA targets (aarch64 builds), not in
ggml-base on x86-64 (baseline ISA). `q4_1.nofma` rounds twice, `q4_1.fma` once; `q4_1` is the
x86-64 (and gguf-py) rounding. The dequantizer's `x0*d + m` is contractible too, but the
product of a code below 32 and an fp16 d has at most 16 significant bits, so it is exact in
float32 and fusing cannot change the sum: one dequantizer serves both variants.
NaN or out-of-range `(int8_t)` casts follow x86-64 (`c_float_to_int`: low byte of INT_MIN, 0).
"""
from __future__ import annotations

import numpy as np

from oracle.formats import Format
from oracle.ggml.fields import f16_bytes, f16_field, unpack_nibbles
from oracle.ggml.tables import seq_min_max
from oracle.rounding import c_float_to_int, fmaf

QK = 32


def scale_min(blocks: np.ndarray, levels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(min, d, id) of `quantize_row_q4_1_ref` / `quantize_row_q5_1_ref` (levels = 15 / 31)."""
    mn, mx = seq_min_max(blocks)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        d = ((mx - mn).astype(np.float32) / np.float32(levels)).astype(np.float32)
        inv = np.where(d != 0, np.float32(1) / np.where(d != 0, d, np.float32(1)), np.float32(0))
    return mn, d, inv.astype(np.float32)


def offset(blocks: np.ndarray, mn: np.ndarray, inv: np.ndarray, fused: bool) -> np.ndarray:
    """`(x - min)*id + 0.5f`, rounded twice or (fused) once."""
    with np.errstate(over="ignore", invalid="ignore"):
        diff = (blocks - mn[:, None]).astype(np.float32)
        if fused:
            return fmaf(diff, np.broadcast_to(inv[:, None], blocks.shape), np.float32(0.5))
        return (diff * inv[:, None]).astype(np.float32) + np.float32(0.5)


def affine(q: np.ndarray, d: np.ndarray, m: np.ndarray) -> np.ndarray:
    """`q*d + m` for integer codes q (the product is exact, see the module docstring)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return (q.astype(np.float32) * d[:, None]).astype(np.float32) + m[:, None]


class Q4_1(Format, name="q4_1.nofma"):
    block_size = QK
    block_bytes = 20
    source = "ggml/src/ggml-quants.c: quantize_row_q4_1_ref, dequantize_row_q4_1 (unfused)"
    summary = "GGML q4_1, 32 x 4-bit, d = (max-min)/15, m = min (fp16), trunc((x-min)*id + 0.5); unfused"
    fused: bool = False

    @classmethod
    def quantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        mn, d, inv = scale_min(blocks, 15)
        code = np.minimum(15, c_float_to_int(offset(blocks, mn, inv, cls.fused), 8)).astype(np.uint8)
        qs = code[:, : QK // 2] | (code[:, QK // 2 :] << np.uint8(4))
        return np.concatenate([f16_bytes(d), f16_bytes(mn), qs], axis=1)

    @classmethod
    def dequantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        d, m = f16_field(blocks, 0), f16_field(blocks, 2)
        lo, hi = unpack_nibbles(blocks[:, 4:])
        return affine(np.concatenate([lo, hi], axis=1), d, m)


class Q4_1Ref(Q4_1, name="q4_1"):
    summary = "GGML q4_1 as x86-64 builds and gguf-py round it (alias of q4_1.nofma)"


class Q4_1Fma(Q4_1, name="q4_1.fma"):
    source = "ggml/src/ggml-quants.c: quantize_row_q4_1_ref compiled with FMA contraction (aarch64)"
    summary = "GGML q4_1 with (x-min)*id + 0.5f as one fused multiply-add (aarch64 and FMA-contracted builds)"
    fused = True
