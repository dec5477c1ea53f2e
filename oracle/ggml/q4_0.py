"""Q4_0: 32 values as 4-bit codes around 8 with one fp16 scale.

Byte layout (ggml-common.h `block_q4_0`, 18 bytes):
    0..1   d      fp16 scale
    2..17  qs[16] byte j = code(x[j]) | code(x[j+16]) << 4   (j / j+16 pairing, not adjacent)
Dequantize (ggml-quants.c `dequantize_row_q4_0`): x = ((nibble) - 8) * fp32(d).

Quantize (ggml-quants.c `quantize_row_q4_0_ref`): max = the signed value of the first largest
|x|; d = max / -8 in float32; id = d ? 1/d : 0 from the float32 d (not the stored fp16);
code = MIN(15, (int8_t)(x*id + 8.5f)). Whether `x*id + 8.5f` is one fused multiply-add is the
compiler's choice (GCC contracts across statements wherever FMA is in the target ISA; ggml-base
is built for baseline x86-64, so x86 builds do not fuse; aarch64 builds do). Both are real, so
both are named: `q4_0.nofma` (two roundings) and `q4_0.fma` (one rounding). `q4_0` is the
x86-64 build's (unfused) rounding, which is also gguf-py's.

A subnormal d makes 1/d overflow; x*id is then inf or NaN and the C cast gives INT_MIN, whose
low byte is 0, on x86-64 (modelled by `c_float_to_int`).
"""
from __future__ import annotations

import numpy as np

from oracle.formats import Format
from oracle.ggml.fields import f16_bytes, f16_field, first_absmax, unpack_nibbles
from oracle.rounding import c_float_to_int, fmaf

QK = 32


def _scale(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    _, mx = first_absmax(blocks)
    d = (mx / np.float32(-8)).astype(np.float32)
    with np.errstate(divide="ignore", over="ignore"):
        inv = np.where(d != 0, np.float32(1) / np.where(d != 0, d, np.float32(1)), np.float32(0))
    return d, inv.astype(np.float32)


def _pack(d: np.ndarray, t: np.ndarray) -> np.ndarray:
    code = np.minimum(15, c_float_to_int(t, 8)).astype(np.uint8)  # negative wraps as uint8_t does
    qs = code[:, : QK // 2] | (code[:, QK // 2 :] << np.uint8(4))
    return np.concatenate([f16_bytes(d), qs.astype(np.uint8)], axis=1)


class Q4_0(Format, name="q4_0.nofma"):
    block_size = QK
    block_bytes = 18
    source = "ggml/src/ggml-quants.c: quantize_row_q4_0_ref, dequantize_row_q4_0 (x*id + 8.5f unfused)"
    summary = "GGML q4_0, 32 x 4-bit, d = max/-8 (fp16), trunc(x*id + 8.5), j/j+16 nibbles; unfused"

    @classmethod
    def _offset(cls, blocks: np.ndarray, inv: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", over="ignore"):
            return (blocks * inv[:, None]).astype(np.float32) + np.float32(8.5)

    @classmethod
    def quantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        d, inv = _scale(blocks)
        return _pack(d, cls._offset(blocks, inv))

    @classmethod
    def dequantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        d = f16_field(blocks, 0)
        lo, hi = unpack_nibbles(blocks[:, 2:])
        q = np.concatenate([lo, hi], axis=1).astype(np.int8) - np.int8(8)
        return (q.astype(np.float32) * d[:, None]).astype(np.float32)


class Q4_0Ref(Q4_0, name="q4_0"):
    summary = "GGML q4_0 as x86-64 builds and gguf-py round it (alias of q4_0.nofma)"


class Q4_0Fma(Q4_0, name="q4_0.fma"):
    source = "ggml/src/ggml-quants.c: quantize_row_q4_0_ref compiled with FMA contraction (aarch64, -march=native GCC)"
    summary = "GGML q4_0 with x*id + 8.5f as one fused multiply-add (aarch64 and FMA-contracted builds)"

    @classmethod
    def _offset(cls, blocks: np.ndarray, inv: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", over="ignore"):
            return fmaf(blocks, np.broadcast_to(inv[:, None], blocks.shape), np.float32(8.5))
