"""Q6_K: 256 values in 16 sub-blocks of 16, 6-bit symmetric codes with an int8 scale each.

Byte layout (ggml-common.h `block_q6_K`, 210 bytes), code = l + 32 in 0..63:
    0..127   ql[128]    half h (x[128h .. 128h+127]): byte 64h + l = low nibble of code(x[128h + l])
                        | low nibble of code(x[128h + 64 + l]) << 4; byte 64h + 32 + l likewise
                        for x[128h + 32 + l] and x[128h + 96 + l]   (l = 0..31)
    128..191 qh[64]     byte 32h + l, bits 2s..2s+1 = bits 4..5 of code(x[128h + 32s + l])
    192..207 scales[16] int8 sub-block scales
    208..209 d          fp16 super-scale
Dequantize (ggml-quants.c `dequantize_row_q6_K`): x = (fp32(d)*scale) * (code - 32).

Quantize (ggml-quants.c `quantize_row_q6_K_ref`, called by `quantize_q6_K` without an imatrix):
`make_qx_quants(16, 32, rmse_type=1, qw=NULL)` per sub-block; max_scale is the signed scale of
the first largest |scale|; if that |scale| < GROUP_MAX_EPS the whole block is zero bytes. Else
iscale = -128/max_scale, d = fp16(1/iscale), scale byte = (int8_t)MIN(127, nearest_int(iscale*
scale)) (the largest sub-block gets -128: the asymmetric int8 range is used on purpose), and
sub-blocks with a nonzero fp32(d)*scale are requantized, code = clamp(nearest_int(x/(d*scale)),
-32, 31) + 32; the others keep the search's codes.
"""
from __future__ import annotations

import numpy as np

from oracle.formats import Format
from oracle.ggml.fields import f16_bytes, f16_field
from oracle.ggml.kquant_search import F, GROUP_MAX_EPS, QK_K, first_absmax_cols, in_chunks, make_qx_quants
from oracle.rounding import nearest_int

BLOCK_BYTES = 210
_QH_SHIFT = np.array([0, 2, 4, 6], dtype=np.uint8).reshape(1, 1, 4, 1)


def _quantize(blocks: np.ndarray) -> np.ndarray:
    n = blocks.shape[0]
    x = blocks.reshape(n * 16, 16).T.copy()
    scale, levels = make_qx_quants(x, 32)
    scales = scale.reshape(n, 16)
    levels = levels.T.reshape(n, 16, 16)
    max_abs, max_scale = first_absmax_cols(scales.T)
    iscale = F(-128) / max_scale
    sc = np.minimum(127, nearest_int(iscale[:, None] * scales))
    sc = (sc & 0xFF).astype(np.uint8).view(np.int8)
    d16 = f16_bytes(F(1) / iscale)
    d = d16.view("<f2").astype(np.float32) * sc.astype(np.float32)
    xb = blocks.reshape(n, 16, 16)
    q = (np.clip(nearest_int(xb / d[:, :, None]), -32, 31) + 32).astype(np.uint8)
    q = np.where((d != 0)[:, :, None], q, levels).reshape(n, 2, 4, 32)  # [half, quarter, l]
    ql = (q[:, :, 0:2] & 0xF) | ((q[:, :, 2:4] & 0xF) << 4)
    qh = np.bitwise_or.reduce((q >> 4) << _QH_SHIFT, axis=2)
    out = np.concatenate([ql.reshape(n, 128), qh.reshape(n, 64), sc.view(np.uint8), d16], axis=1)
    out[max_abs < GROUP_MAX_EPS] = 0
    return out


class Q6_K(Format, name="q6_k"):
    block_size = QK_K
    block_bytes = BLOCK_BYTES
    source = "ggml/src/ggml-quants.c: quantize_row_q6_K_ref (make_qx_quants), dequantize_row_q6_K"
    summary = "GGML q6_K, 256 = 16 x 16 x 6-bit symmetric, int8 scales under an fp16 d"

    @classmethod
    def quantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        return in_chunks(_quantize, blocks, BLOCK_BYTES)

    @classmethod
    def dequantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        d = f16_field(blocks, 208)
        sc = blocks[:, 192:208].view(np.int8).astype(np.float32)
        ql = blocks[:, :128].reshape(-1, 2, 1, 2, 32) >> np.array([0, 4], dtype=np.uint8).reshape(1, 1, 2, 1, 1)
        low = (ql & np.uint8(0xF)).reshape(-1, 2, 4, 32)  # [half, nibble*2 + pair, l] = quarter order
        high = (blocks[:, 128:192].reshape(-1, 2, 1, 32) >> _QH_SHIFT) & np.uint8(3)
        q = ((low | (high << np.uint8(4))).astype(np.int8) - np.int8(32)).reshape(-1, 16, 16)
        return ((d[:, None] * sc)[:, :, None] * q.astype(np.float32)).reshape(-1, QK_K)
