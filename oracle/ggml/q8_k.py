"""Q8_K: 256 values as int8 codes under one float32 scale, with int16 sums of each 16 codes.

ggml uses q8_K for activations (the partner of the K-quant dot products), never for stored
weights, so it has a float32 scale, not fp16. Byte layout (ggml-common.h `block_q8_K`, 292 bytes):
    0..3     d          float32 scale (little-endian)
    4..259   qs[256]    int8 codes
    260..291 bsums[16]  int16 sum of qs[16j .. 16j+15]
Dequantize (ggml-quants.c `dequantize_row_q8_K`): x = d * q.

Quantize (ggml-quants.c `quantize_row_q8_K_ref`): max = the signed value of the first largest
|x|; an all-zero block gets d = 0 and zero codes (C leaves bsums unwritten there; they are 0
here, the sum of the codes). Else iscale = -127/max (it was -128/max before IQ2_XXS, see the
upstream comment), q = MIN(127, nearest_int(iscale*x)) stored as int8, d = 1/iscale.
`ggml_quantize_chunk` does not accept Q8_K: upstream produces it through
`quantize_row_q8_K_ref` (and SIMD variants in ggml-cpu that round differently) only.
"""
from __future__ import annotations

import numpy as np

from oracle.formats import Format
from oracle.ggml.kquant_search import F, QK_K, first_absmax_cols, in_chunks
from oracle.rounding import nearest_int

BLOCK_BYTES = 292


def _quantize(blocks: np.ndarray) -> np.ndarray:
    n = blocks.shape[0]
    amax, mx = first_absmax_cols(blocks.T)
    zero = amax == 0
    iscale = F(-127) / mx
    q = np.minimum(127, nearest_int(iscale[:, None] * blocks))
    q = np.where(zero[:, None], 0, q & 0xFF).astype(np.uint8).view(np.int8)
    bsums = q.reshape(n, 16, 16).astype(np.int32).sum(axis=2).astype("<i2")
    d = np.where(zero, F(0), F(1) / iscale).astype("<f4")
    return np.concatenate([d.view(np.uint8).reshape(n, 4), q.view(np.uint8), bsums.view(np.uint8)], axis=1)


class Q8_K(Format, name="q8_k"):
    block_size = QK_K
    block_bytes = BLOCK_BYTES
    source = "ggml/src/ggml-quants.c: quantize_row_q8_K_ref, dequantize_row_q8_K"
    summary = "GGML q8_K (activation format), 256 x int8, d = 1/(-127/max) in float32, int16 bsums"

    @classmethod
    def quantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        return in_chunks(_quantize, blocks, BLOCK_BYTES)

    @classmethod
    def dequantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        d = np.ascontiguousarray(blocks[:, :4]).view("<f4").astype(np.float32)
        q = blocks[:, 4:260].view(np.int8).astype(np.float32)
        return d * q
