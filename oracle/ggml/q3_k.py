"""Q3_K: 256 values in 16 sub-blocks of 16, 3-bit symmetric codes with a 6-bit signed scale each.

Byte layout (ggml-common.h `block_q3_K`, 110 bytes):
    0..31    hmask[32]  bit s of hmask[l] = bit 2 of code(x[32s + l]) (set: code >= 4)
    32..95   qs[64]     low 2 bits of each code, packed as q2_K's qs (oracle/ggml/q2_k.py)
    96..107  scales[12] sixteen 6-bit scales u[j] (stored as scale + 32): low nibble of u[j]
                        in byte j (j < 8) or in the high nibble of byte j-8 (j >= 8); bits 4..5
                        of u[j] at bits 2*(j//4) of byte 8 + j%4
    108..109 d          fp16 super-scale
Dequantize (ggml-quants.c `dequantize_row_q3_K`): x = (fp32(d)*(u - 32)) * (code - 4), where
code - 4 = (low 2 bits) - (hmask bit ? 0 : 4).

Quantize (ggml-quants.c `quantize_row_q3_K_ref`, called by `quantize_q3_K` without an imatrix):
`make_q3_quants(16, 4, do_rmse=true)` per sub-block; max_scale is the signed scale of the
first largest |scale|; if it is nonzero, iscale = -32/max_scale, u = MAX(-32, MIN(31,
(int8_t)nearest_int(iscale*scale))) + 32 and d = fp16(1/iscale), else all zero. Sub-blocks
with a nonzero fp32(d)*(u-32) are requantized, code = clamp(nearest_int(x / (d*(u-32))), -4, 3) + 4;
the others keep the search's codes (0 for an all-zero sub-block, where the search returns early).
"""
from __future__ import annotations

import numpy as np

from oracle.formats import Format
from oracle.ggml.fields import f16_bytes, f16_field
from oracle.ggml.kquant_search import F, QK_K, first_absmax_cols, in_chunks, make_q3_quants
from oracle.ggml.q2_k import pack_2bit, unpack_2bit
from oracle.rounding import nearest_int

BLOCK_BYTES = 110
_PLANE = np.arange(8, dtype=np.uint8).reshape(1, 8, 1)


def _int8(v: np.ndarray) -> np.ndarray:
    """C's conversion of an int to int8_t: keep the low byte as a signed value."""
    return (v & 0xFF).astype(np.uint8).view(np.int8).astype(np.int32)


def pack_scales(u: np.ndarray) -> np.ndarray:
    """(n, 16) 6-bit values -> (n, 12) bytes, as quantize_row_q3_K_ref packs them."""
    u = u.astype(np.uint8)
    low = (u[:, :8] & 0xF) | ((u[:, 8:] & 0xF) << 4)
    hi = np.bitwise_or.reduce((u >> 4).reshape(-1, 4, 4) << (2 * np.arange(4, dtype=np.uint8)).reshape(1, 4, 1),
                              axis=1)
    return np.concatenate([low, hi.astype(np.uint8)], axis=1)


def unpack_scales(b: np.ndarray) -> np.ndarray:
    """(n, 12) bytes -> (n, 16) 6-bit values u (the scale is u - 32)."""
    low = np.concatenate([b[:, :8] & 0xF, b[:, :8] >> 4], axis=1)
    hi = (b[:, None, 8:12] >> (2 * np.arange(4, dtype=np.uint8)).reshape(1, 4, 1)) & 3
    return low | (hi.reshape(-1, 16) << 4)


def _quantize(blocks: np.ndarray) -> np.ndarray:
    n = blocks.shape[0]
    x = blocks.reshape(n * 16, 16).T.copy()
    scale, levels = make_q3_quants(x, 4)
    scales = scale.reshape(n, 16)
    levels = levels.T.reshape(n, 16, 16)
    _, max_scale = first_absmax_cols(scales.T)
    has = max_scale != 0
    iscale = F(-32) / max_scale
    u = np.clip(_int8(nearest_int(iscale[:, None] * scales)), -32, 31) + 32
    u = np.where(has[:, None], u, 0)
    sb = pack_scales(u)
    d16 = f16_bytes(np.where(has, F(1) / iscale, F(0)))
    d = d16.view("<f2").astype(np.float32) * (u - 32).astype(np.float32)
    xb = blocks.reshape(n, 16, 16)
    q = (np.clip(nearest_int(xb / d[:, :, None]), -4, 3) + 4).astype(np.uint8)
    q = np.where((d != 0)[:, :, None], q, levels).reshape(n, QK_K)
    hmask = np.bitwise_or.reduce((q.reshape(n, 8, 32) >> 2) << _PLANE, axis=1).astype(np.uint8)
    return np.concatenate([hmask, pack_2bit(q & 3), sb, d16], axis=1)


class Q3_K(Format, name="q3_k"):
    block_size = QK_K
    block_bytes = BLOCK_BYTES
    source = "ggml/src/ggml-quants.c: quantize_row_q3_K_ref (make_q3_quants), dequantize_row_q3_K"
    summary = "GGML q3_K, 256 = 16 x 16 x 3-bit symmetric, 6-bit signed scales under an fp16 d"

    @classmethod
    def quantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        return in_chunks(_quantize, blocks, BLOCK_BYTES)

    @classmethod
    @np.errstate(invalid="ignore", over="ignore")  # an inf scale times a zero code is NaN, as in C
    def dequantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        d = f16_field(blocks, 108)
        u = unpack_scales(blocks[:, 96:108]).astype(np.int32)
        dl = d[:, None] * (u - 32).astype(np.float32)
        low = unpack_2bit(blocks[:, 32:96]).reshape(-1, 8, 32).astype(np.int32)
        high = (blocks[:, None, :32] >> _PLANE) & np.uint8(1)
        q = (low - np.where(high != 0, 0, 4)).reshape(-1, 16, 16).astype(np.float32)
        return (dl[:, :, None] * q).reshape(-1, QK_K)
