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
from oracle.ggml.fields import absmax_scan, f16_bytes, f16_field
from oracle.rounding import c_float_to_int, fmaf

QK = 32
CHUNK = 8192  # blocks per pass (1 MiB of float32): each numpy pass re-reads the chunk from cache
_TINY = np.finfo(np.float32).tiny
_BYTE = np.arange(256)
_LO = ((_BYTE & 0x0F) - 8).astype(np.float32)  # byte -> its (low nibble - 8), the code of x[j]
_HI = ((_BYTE >> 4) - 8).astype(np.float32)  # byte -> its (high nibble - 8), the code of x[j+16]


def _inverse(d: np.ndarray) -> np.ndarray:
    """`id = d ? 1.0f/d : 0.0f` in float32."""
    with np.errstate(divide="ignore", over="ignore"):
        return np.where(d != 0, np.float32(1) / np.where(d != 0, d, np.float32(1)), np.float32(0)).astype(np.float32)


class Q4_0(Format, name="q4_0.nofma"):
    block_size = QK
    block_bytes = 18
    source = "ggml/src/ggml-quants.c: quantize_row_q4_0_ref, dequantize_row_q4_0 (x*id + 8.5f unfused)"
    summary = "GGML q4_0, 32 x 4-bit, d = max/-8 (fp16), trunc(x*id + 8.5), j/j+16 nibbles; unfused"

    @classmethod
    def _offset(cls, blocks: np.ndarray, inv: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", over="ignore"):
            t = np.multiply(blocks, inv[:, None])
            return np.add(t, np.float32(8.5), out=t)

    @classmethod
    def quantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        out = np.empty((blocks.shape[0], 18), dtype=np.uint8)
        for s in range(0, blocks.shape[0], CHUNK):
            cls._quantize_chunk(blocks[s : s + CHUNK], out[s : s + CHUNK])
        return out

    @classmethod
    def _quantize_chunk(cls, blocks: np.ndarray, out: np.ndarray) -> None:
        _, mx, finite = absmax_scan(blocks)
        d = (mx / np.float32(-8)).astype(np.float32)
        t = cls._offset(blocks, _inverse(d))
        # In a finite block with d normal (or 0: all x are zeros), |x*id| <= 8 (1 + 2^-22), so
        # t lies in [0.49, 16.6] and numpy's uint8 cast truncates exactly like the C cast.
        # Elsewhere (subnormal d, so 1/d overflows; inf or NaN in the block) the C cast's
        # INT_MIN and wrap-around matter: those blocks take `c_float_to_int`.
        with np.errstate(invalid="ignore"):
            code = t.astype(np.uint8)
        np.minimum(code, np.uint8(15), out=code)
        odd = ~finite | ((d != 0) & (np.abs(d) < _TINY))
        if odd.any():  # MIN(15, (int8_t)v) then uint8_t: a negative wraps, then ORs unmasked
            code[odd] = np.minimum(15, c_float_to_int(t[odd], 8)).astype(np.uint8)
        out[:, :2] = f16_bytes(d)
        out[:, 2:] = _pack(code)

    @classmethod
    def dequantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        out = np.empty((blocks.shape[0], QK), dtype=np.float32)
        for s in range(0, blocks.shape[0], CHUNK):
            b = blocks[s : s + CHUNK]
            d = f16_field(b, 0)[:, None]
            qs = b[:, 2:]
            with np.errstate(invalid="ignore"):
                np.multiply(_LO[qs], d, out=out[s : s + CHUNK, : QK // 2])
                np.multiply(_HI[qs], d, out=out[s : s + CHUNK, QK // 2 :])
        return out


def _pack(code: np.ndarray) -> np.ndarray:
    """(n, 32) uint8 codes -> (n, 16) bytes `code[j] | code[j+16] << 4` (uint8 arithmetic).

    Done on 8-byte words (a block is 4 words: 2 of low codes, 2 of high codes), masking the
    shifted word so no bit crosses into the next byte, as the uint8 shift drops it.
    """
    w = code.view(np.uint64)
    packed = np.empty((code.shape[0], 2), dtype=np.uint64)
    for k in range(2):
        np.left_shift(w[:, 2 + k], np.uint64(4), out=packed[:, k])
        np.bitwise_and(packed[:, k], np.uint64(0xF0F0F0F0F0F0F0F0), out=packed[:, k])
        np.bitwise_or(packed[:, k], w[:, k], out=packed[:, k])
    return packed.view(np.uint8)


class Q4_0Ref(Q4_0, name="q4_0"):
    summary = "GGML q4_0 as x86-64 builds and gguf-py round it (alias of q4_0.nofma)"


class Q4_0Fma(Q4_0, name="q4_0.fma"):
    source = "ggml/src/ggml-quants.c: quantize_row_q4_0_ref compiled with FMA contraction (aarch64, -march=native GCC)"
    summary = "GGML q4_0 with x*id + 8.5f as one fused multiply-add (aarch64 and FMA-contracted builds)"

    @classmethod
    def _offset(cls, blocks: np.ndarray, inv: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", over="ignore"):
            return fmaf(blocks, np.broadcast_to(inv[:, None], blocks.shape), np.float32(8.5))
