"""IQ4_XS: 256 values in 8 blocks of 32, iq4_nl indices with a 6-bit scale per block.

Byte layout (ggml-common.h `block_iq4_xs`, 136 bytes):
    0..1    d            fp16 super-block scale
    2..3    scales_h     uint16 little-endian: bits 2ib..2ib+1 = high 2 bits of ls[ib]
    4..7    scales_l[4]  byte i = low4(ls[2i]) | low4(ls[2i+1]) << 4
    8..135  qs[128]      block ib: bytes 16ib + j = idx(x[32ib + j]) | idx(x[32ib + 16 + j]) << 4
Dequantize (ggml-quants.c `dequantize_row_iq4_xs`): dl = fp32(d) * (ls - 32) (float times
int), x = dl * kvalues_iq4nl[idx].

Quantize: `ggml_quantize_chunk` -> `quantize_iq4_xs` -> `quantize_row_iq4_nl_impl(QK_K, 32,
..., ntry = 7)` without imatrix. Each block's float32 scale is searched exactly as iq4_nl's
(`iq4_nl.subblock_scales`). Then max_scale = the first scale of largest magnitude;
d = -max_scale / 32 (stored fp16), id = d ? 1/d : 0; per block l = nearest_int(id*scale)
clamped to [-32, 31] (ggml's 1.5*2^23 trick, `oracle.rounding.nearest_int`), dl = d*l from
the float32 d, idl = dl ? 1/dl : 0, idx = best_index_int8(idl*x); ls = l + 32.
`quantize_row_iq4_xs_ref` and the CPU backend's from_float call the same function, so this one
format covers them all (on x86-64; FMA-contracted builds are not modelled, see iq4_nl).
"""
from __future__ import annotations

import numpy as np

from oracle.formats import Format
from oracle.ggml.fields import f16_bytes, f16_field, first_absmax
from oracle.ggml.iq4_nl import best_index_int8, pack_indices, subblock_scales, unpack_values
from oracle.rounding import nearest_int

QK_K = 256
NB = QK_K // 32


def _inverse(v: np.ndarray) -> np.ndarray:
    """`v ? 1/v : 0` in float32."""
    with np.errstate(divide="ignore", over="ignore"):
        return np.where(v != 0, np.float32(1) / np.where(v != 0, v, np.float32(1)), np.float32(0)).astype(np.float32)


class IQ4_XS(Format, name="iq4_xs"):
    block_size = QK_K
    block_bytes = 136
    source = "ggml/src/ggml-quants.c: quantize_iq4_xs (quantize_row_iq4_nl_impl, ntry=7), dequantize_row_iq4_xs"
    summary = "GGML iq4_xs, 256 x 4-bit kvalues_iq4nl indices, 8 x 6-bit block scales, fp16 d"

    @classmethod
    def quantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        n = blocks.shape[0]
        xb = blocks.reshape(n * NB, 32)
        scales = subblock_scales(xb).reshape(n, NB)
        _, max_scale = first_absmax(scales)
        d = ((-max_scale) / np.float32(32)).astype(np.float32)
        inv = _inverse(d)
        with np.errstate(invalid="ignore", over="ignore"):
            l = np.clip(nearest_int((inv[:, None] * scales).astype(np.float32)), -32, 31)
            dl = (d[:, None] * l.astype(np.float32)).astype(np.float32)
            idl = _inverse(dl.reshape(-1))
            idx = best_index_int8((idl[:, None] * xb).astype(np.float32)).reshape(n, QK_K)
        ls = (l + 32).astype(np.uint16)
        scales_h = np.zeros(n, dtype=np.uint16)
        for ib in range(NB):
            scales_h |= (ls[:, ib] >> np.uint16(4)) << np.uint16(2 * ib)
        low = (ls & np.uint16(0x0F)).astype(np.uint8)
        scales_l = low[:, 0::2] | (low[:, 1::2] << np.uint8(4))
        h = scales_h.astype("<u2").view(np.uint8).reshape(n, 2)
        return np.concatenate([f16_bytes(d), h, scales_l, pack_indices(idx)], axis=1)

    @classmethod
    def dequantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        n = blocks.shape[0]
        d = f16_field(blocks, 0)
        scales_h = np.ascontiguousarray(blocks[:, 2:4]).view("<u2")[:, 0].astype(np.int32)
        sl = blocks[:, 4:8].astype(np.int32)
        low = np.stack([sl & 0x0F, sl >> 4], axis=2).reshape(n, NB)
        high = (scales_h[:, None] >> (2 * np.arange(NB))) & 3
        ls = low | (high << 4)
        with np.errstate(invalid="ignore", over="ignore"):
            dl = (d[:, None] * (ls - 32).astype(np.float32)).astype(np.float32)
            vals = unpack_values(blocks[:, 8:]).reshape(n, NB, 32)
            return (dl[:, :, None] * vals).astype(np.float32).reshape(n, QK_K)
