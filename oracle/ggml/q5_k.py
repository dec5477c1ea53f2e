"""Q5_K: 256 values in 8 sub-blocks of 32, 5-bit codes with a 6-bit scale and a 6-bit min each.

Byte layout (ggml-common.h `block_q5_K`, 176 bytes):
    0..1     d          fp16 super-scale for the sub-block scales
    2..3     dmin       fp16 super-scale for the sub-block mins
    4..15    scales[12] 6-bit scales and mins packed as in q4_K (`get_scale_min_k4`)
    16..47   qh[32]     bit 2p of qh[l] = bit 4 of code(x[64p + l]),
                        bit 2p+1 of qh[l] = bit 4 of code(x[64p + 32 + l])
    48..175  qs[128]    low nibbles, paired as in q4_K: byte 32p + l = x[64p + l] | x[64p + 32 + l] << 4
Dequantize (ggml-quants.c `dequantize_row_q5_K`): x = (fp32(d)*sc) * q - fp32(dmin)*m.

Quantize (ggml-quants.c `quantize_row_q5_K_ref`, called by `quantize_q5_K` without an imatrix):
as q4_K (oracle/ggml/q4_k.py) with codes 0..31 and `make_qkx2_quants(32, 31, rmin=-0.5,
rdelta=0.1, nstep=15, use_mad=false)`; the requantized codes are clamped to 0..31.
"""
from __future__ import annotations

import numpy as np

from oracle.formats import Format
from oracle.ggml.fields import f16_field
from oracle.ggml.kquant_search import QK_K, in_chunks
from oracle.ggml.q4_k import k4_dequantize, k4_requantize, k4_search, k4_super_scales

BLOCK_BYTES = 176
_PLANE = np.arange(8, dtype=np.uint8).reshape(1, 8, 1)  # qh bit index = sub-block index


def _quantize(blocks: np.ndarray) -> np.ndarray:
    n = blocks.shape[0]
    scales, mins, levels = k4_search(blocks, 31, -0.5, 0.1, 15)
    sb, d16, dmin16 = k4_super_scales(scales, mins)
    q = k4_requantize(blocks.reshape(n, 8, 32), levels, sb, d16, dmin16, 31)
    qh = np.bitwise_or.reduce((q >> 4) << _PLANE, axis=1).astype(np.uint8)
    low = (q & 0xF).reshape(n, 4, 2, 32)
    qs = low[:, :, 0, :] | (low[:, :, 1, :] << 4)
    return np.concatenate([d16, dmin16, sb, qh, qs.reshape(n, 128)], axis=1)


class Q5_K(Format, name="q5_k"):
    block_size = QK_K
    block_bytes = BLOCK_BYTES
    source = "ggml/src/ggml-quants.c: quantize_row_q5_K_ref (make_qkx2_quants), dequantize_row_q5_K"
    summary = "GGML q5_K, 256 = 8 x 32 x 5-bit affine, 6-bit scales and mins under fp16 d/dmin"

    @classmethod
    def quantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        return in_chunks(_quantize, blocks, BLOCK_BYTES)

    @classmethod
    def dequantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        qh = blocks[:, 16:48].reshape(-1, 1, 32)
        qs = blocks[:, 48:].reshape(-1, 4, 1, 32) >> np.array([0, 4], dtype=np.uint8).reshape(1, 1, 2, 1)
        low = (qs & np.uint8(0xF)).reshape(-1, 8, 32)
        q = low | (((qh >> _PLANE) & np.uint8(1)) << np.uint8(4))
        return k4_dequantize(f16_field(blocks, 0), f16_field(blocks, 2), blocks[:, 4:16], q)
