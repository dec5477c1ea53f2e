"""Q4_K: 256 values in 8 sub-blocks of 32, 4-bit codes with a 6-bit scale and a 6-bit min each.

Byte layout (ggml-common.h `block_q4_K`, 144 bytes):
    0..1     d          fp16 super-scale for the sub-block scales
    2..3     dmin       fp16 super-scale for the sub-block mins
    4..15    scales[12] eight 6-bit scales sc[j] and eight 6-bit mins m[j] (`get_scale_min_k4`):
                        j < 4:  sc = scales[j] & 63,  m = scales[j+4] & 63
                        j >= 4: sc = scales[j+4] & 15 | (scales[j-4] >> 6) << 4,
                                m  = scales[j+4] >> 4 | (scales[j]   >> 6) << 4
    16..143  qs[128]    byte 32*p + l = code(x[64p + l]) | code(x[64p + 32 + l]) << 4
Dequantize (ggml-quants.c `dequantize_row_q4_K`): x = (fp32(d)*sc) * q - fp32(dmin)*m.

Quantize (ggml-quants.c `quantize_row_q4_K_ref`, which `quantize_q4_K` calls when there is no
imatrix): per sub-block, weights av_x + |x| with av_x = sqrtf(sum(x*x)/32) (sequential sum),
then `make_qkx2_quants(32, 15, rmin=-1, rdelta=0.1, nstep=20, use_mad=false)` gives a scale and
a min; max_scale/max_min are their running maxima from 0; sc = MIN(63, (uint8_t)nearest_int(
63/max_scale * scale)), likewise m; d = fp16(max_scale/63), dmin = fp16(max_min/63). Then each
sub-block whose fp16 d*sc is nonzero is requantized: q = clamp(nearest_int((x + dmin*m)/(d*sc)),
0, 15); a sub-block with d*sc == 0 keeps the codes of the search.
"""
from __future__ import annotations

import numpy as np

from oracle.formats import Format
from oracle.ggml.fields import f16_bytes, f16_field
from oracle.ggml.kquant_search import F, QK_K, in_chunks, make_qkx2_quants, running_max, seq_sum
from oracle.rounding import nearest_int

BLOCK_BYTES = 144


def pack_scale_min_k4(sc: np.ndarray, m: np.ndarray) -> np.ndarray:
    """(n, 8) 6-bit scales and mins -> (n, 12) bytes, as quantize_row_q4_K_ref packs them."""
    sc = sc.astype(np.uint8)
    m = m.astype(np.uint8)
    out = np.zeros((sc.shape[0], 12), dtype=np.uint8)
    out[:, 0:4] = sc[:, :4] | ((sc[:, 4:] >> 4) << 6)
    out[:, 4:8] = m[:, :4] | ((m[:, 4:] >> 4) << 6)
    out[:, 8:12] = (sc[:, 4:] & 0xF) | ((m[:, 4:] & 0xF) << 4)
    return out


def unpack_scale_min_k4(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(..., 12) bytes -> (sc, m), each (..., 8) uint8: ggml-quants.c `get_scale_min_k4`."""
    lo, mid, hi = b[..., 0:4], b[..., 4:8], b[..., 8:12]
    sc = np.concatenate([lo & 63, (hi & 0xF) | ((lo >> 6) << 4)], axis=-1)
    m = np.concatenate([mid & 63, (hi >> 4) | ((mid >> 6) << 4)], axis=-1)
    return sc, m


def k4_super_scales(scales: np.ndarray, mins: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, 8) float scales and mins -> (12 scale bytes, fp16 d bytes, fp16 dmin bytes) (q4_K, q5_K)."""
    max_scale = running_max(scales)
    max_min = running_max(mins)
    inv_scale = np.where(max_scale > 0, F(63) / max_scale, F(0))
    inv_min = np.where(max_min > 0, F(63) / max_min, F(0))
    ls = np.minimum(nearest_int(inv_scale[:, None] * scales) & 0xFF, 63)  # (uint8_t) cast, then MIN
    lm = np.minimum(nearest_int(inv_min[:, None] * mins) & 0xFF, 63)
    return pack_scale_min_k4(ls, lm), f16_bytes(max_scale / F(63)), f16_bytes(max_min / F(63))


def k4_requantize(x: np.ndarray, levels: np.ndarray, scale_bytes: np.ndarray, d16: np.ndarray,
                  dmin16: np.ndarray, nmax: int) -> np.ndarray:
    """Recompute codes from the stored fp16 d/dmin and 6-bit sc/m; x, levels: (n, 8, 32)."""
    sc, m = unpack_scale_min_k4(scale_bytes)
    d = d16.view("<f2").astype(np.float32) * sc.astype(np.float32)  # (n,1)*(n,8)
    dm = dmin16.view("<f2").astype(np.float32) * m.astype(np.float32)
    q = np.clip(nearest_int((x + dm[:, :, None]) / d[:, :, None]), 0, nmax).astype(np.uint8)
    return np.where((d != 0)[:, :, None], q, levels)


def k4_search(blocks: np.ndarray, nmax: int, rmin: float, rdelta: float, nstep: int):
    """Weights av_x + |x| and make_qkx2_quants over each 32-value sub-block (q4_K, q5_K)."""
    n = blocks.shape[0]
    x = blocks.reshape(n * 8, 32).T.copy()  # element-major (32, m)
    av_x = np.sqrt(seq_sum(x * x) / F(32))
    w = av_x + np.abs(x)
    scale, the_min, levels = make_qkx2_quants(x, w, nmax, rmin, rdelta, nstep, use_mad=False)
    return scale.reshape(n, 8), the_min.reshape(n, 8), levels.T.reshape(n, 8, 32)


def _quantize(blocks: np.ndarray) -> np.ndarray:
    n = blocks.shape[0]
    scales, mins, levels = k4_search(blocks, 15, -1.0, 0.1, 20)
    sb, d16, dmin16 = k4_super_scales(scales, mins)
    q = k4_requantize(blocks.reshape(n, 8, 32), levels, sb, d16, dmin16, 15).reshape(n, 4, 2, 32)
    qs = q[:, :, 0, :] | (q[:, :, 1, :] << 4)
    return np.concatenate([d16, dmin16, sb, qs.reshape(n, 128)], axis=1)


def k4_dequantize(d: np.ndarray, dmin: np.ndarray, scale_bytes: np.ndarray, q: np.ndarray) -> np.ndarray:
    """x = (d*sc) * q - dmin*m per sub-block; q: (n, 8, 32) codes (q4_K, q5_K)."""
    sc, m = unpack_scale_min_k4(scale_bytes)
    dl = d[:, None] * sc.astype(np.float32)
    ml = dmin[:, None] * m.astype(np.float32)
    return (dl[:, :, None] * q.astype(np.float32) - ml[:, :, None]).reshape(q.shape[0], QK_K)


class Q4_K(Format, name="q4_k"):
    block_size = QK_K
    block_bytes = BLOCK_BYTES
    source = "ggml/src/ggml-quants.c: quantize_row_q4_K_ref (make_qkx2_quants), dequantize_row_q4_K"
    summary = "GGML q4_K, 256 = 8 x 32 x 4-bit affine, 6-bit scales and mins under fp16 d/dmin"

    @classmethod
    def quantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        return in_chunks(_quantize, blocks, BLOCK_BYTES)

    @classmethod
    def dequantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        qs = blocks[:, 16:].reshape(-1, 4, 1, 32) >> np.array([0, 4], dtype=np.uint8).reshape(1, 1, 2, 1)
        q = (qs & np.uint8(0xF)).reshape(-1, 8, 32)
        return k4_dequantize(f16_field(blocks, 0), f16_field(blocks, 2), blocks[:, 4:16], q)
