"""Q2_K: 256 values in 16 sub-blocks of 16, 2-bit codes with a 4-bit scale and a 4-bit min each.

Byte layout (ggml-common.h `block_q2_K`, 84 bytes):
    0..15    scales[16] sub-block j: scale in the low nibble, min in the high nibble
    16..79   qs[64]     byte 32h + l, bits 2s..2s+1 = code(x[128h + 32s + l]), s = 0..3
    80..81   d          fp16 super-scale for the scales
    82..83   dmin       fp16 super-scale for the mins
Dequantize (ggml-quants.c `dequantize_row_q2_K`): x = (fp32(d)*(sc & 15)) * q - fp32(dmin)*(sc >> 4).

Quantize (ggml-quants.c `quantize_row_q2_K_ref`, called by `quantize_q2_K` without an imatrix):
weights |x|, `make_qkx2_quants(16, 3, rmin=-0.5, rdelta=0.1, nstep=15, use_mad=true)` per
sub-block; max_scale/max_min are running maxima from 0. If max_scale > 0: scale nibble =
nearest_int(15/max_scale * scale) and d = fp16(max_scale/15), else nibble 0 and d = 0;
likewise for the mins (`scales[j] |= l << 4`, truncated to a byte). Sub-blocks with a nonzero
fp32(d)*(sc & 15) are requantized: q = clamp(nearest_int((x + dmin*(sc >> 4)) / (d*(sc & 15))), 0, 3);
the others keep the search's codes.
"""
from __future__ import annotations

import numpy as np

from oracle.formats import Format
from oracle.ggml.fields import f16_bytes, f16_field
from oracle.ggml.kquant_search import F, QK_K, in_chunks, make_qkx2_quants, running_max
from oracle.rounding import nearest_int

BLOCK_BYTES = 84
_SHIFT = np.array([0, 2, 4, 6], dtype=np.uint8).reshape(1, 1, 4, 1)


def pack_2bit(q: np.ndarray) -> np.ndarray:
    """(n, 256) codes 0..3 -> (n, 64) bytes: byte 32h + l holds x[128h + 32s + l] at bits 2s."""
    q = q.reshape(-1, 2, 4, 32).astype(np.uint8) << _SHIFT
    return np.bitwise_or.reduce(q, axis=2).reshape(-1, 64)


def unpack_2bit(qs: np.ndarray) -> np.ndarray:
    """(n, 64) bytes -> (n, 256) codes 0..3, the inverse of `pack_2bit`."""
    return ((qs.reshape(-1, 2, 1, 32) >> _SHIFT) & np.uint8(3)).reshape(-1, QK_K)


def _quantize(blocks: np.ndarray) -> np.ndarray:
    n = blocks.shape[0]
    x = blocks.reshape(n * 16, 16).T.copy()
    scale, the_min, levels = make_qkx2_quants(x, np.abs(x), 3, -0.5, 0.1, 15, use_mad=True)
    scales, mins = scale.reshape(n, 16), the_min.reshape(n, 16)
    levels = levels.T.reshape(n, 16, 16)
    max_scale = running_max(scales)
    max_min = running_max(mins)
    has_s, has_m = max_scale > 0, max_min > 0
    ls = np.where(has_s[:, None], nearest_int((F(15) / max_scale)[:, None] * scales), 0)
    lm = np.where(has_m[:, None], nearest_int((F(15) / max_min)[:, None] * mins), 0)
    sb = ((ls | (lm << 4)) & 0xFF).astype(np.uint8)
    d16 = f16_bytes(np.where(has_s, max_scale / F(15), F(0)))
    dmin16 = f16_bytes(np.where(has_m, max_min / F(15), F(0)))
    d = d16.view("<f2").astype(np.float32) * (sb & 0xF).astype(np.float32)
    dm = dmin16.view("<f2").astype(np.float32) * (sb >> 4).astype(np.float32)
    xb = blocks.reshape(n, 16, 16)
    q = np.clip(nearest_int((xb + dm[:, :, None]) / d[:, :, None]), 0, 3).astype(np.uint8)
    q = np.where((d != 0)[:, :, None], q, levels)
    return np.concatenate([sb, pack_2bit(q), d16, dmin16], axis=1)


class Q2_K(Format, name="q2_k"):
    block_size = QK_K
    block_bytes = BLOCK_BYTES
    source = "ggml/src/ggml-quants.c: quantize_row_q2_K_ref (make_qkx2_quants), dequantize_row_q2_K"
    summary = "GGML q2_K, 256 = 16 x 16 x 2-bit affine, 4-bit scales and mins under fp16 d/dmin"

    @classmethod
    def quantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        return in_chunks(_quantize, blocks, BLOCK_BYTES)

    @classmethod
    @np.errstate(invalid="ignore", over="ignore")  # an inf scale times a zero code is NaN, as in C
    def dequantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        sc = blocks[:, :16]
        d, dmin = f16_field(blocks, 80), f16_field(blocks, 82)
        dl = d[:, None] * (sc & np.uint8(0xF)).astype(np.float32)
        ml = dmin[:, None] * (sc >> np.uint8(4)).astype(np.float32)
        q = unpack_2bit(blocks[:, 16:80]).reshape(-1, 16, 16).astype(np.float32)
        return (dl[:, :, None] * q - ml[:, :, None]).reshape(-1, QK_K)
