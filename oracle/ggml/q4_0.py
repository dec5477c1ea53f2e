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

Speed (docs/benchmarks.md): blocks go a cache-sized chunk at a time through whole-chunk numpy
passes that are exact for finite blocks with a normal (or zero) d; the other blocks of the
chunk are then redone with the C cast's semantics.
"""
from __future__ import annotations

import numpy as np

from oracle.formats import Format
from oracle.ggml.fields import absmax_scan, inv_or_zero, put_f16, scaled_codes
from oracle.rounding import c_float_to_int, fmaf

QK = 32
CHUNK = 16384  # blocks per pass (2 MiB of float32): passes re-read a chunk from cache, not memory
_TINY = np.finfo(np.float32).tiny
_LAYOUT = np.dtype([("d", "<u2"), ("qs", "V16")])  # block_q4_0


class Q4_0(Format, name="q4_0.nofma"):
    block_size = QK
    block_bytes = 18
    source = "ggml/src/ggml-quants.c: quantize_row_q4_0_ref, dequantize_row_q4_0 (x*id + 8.5f unfused)"
    summary = "GGML q4_0, 32 x 4-bit, d = max/-8 (fp16), trunc(x*id + 8.5), j/j+16 nibbles; unfused"

    @classmethod
    def _offset(cls, blocks: np.ndarray, inv: np.ndarray, out: np.ndarray) -> np.ndarray:
        """x*id + 8.5f per block, two roundings, written into `out`."""
        with np.errstate(invalid="ignore", over="ignore"):
            np.multiply(blocks, inv[:, None], out=out)
            return np.add(out, np.float32(8.5), out=out)

    @classmethod
    def quantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        n = blocks.shape[0]
        out = np.empty((n, 18), dtype=np.uint8)
        qs = out.view(_LAYOUT)[:, 0]["qs"]  # 16-byte items: one copy per chunk, no per-row loop
        d = np.empty(n, dtype=np.float32)
        t_buf = np.empty((min(CHUNK, n), QK), dtype=np.float32)
        code_buf = np.empty((min(CHUNK, n), QK), dtype=np.uint8)
        for s in range(0, n, CHUNK):
            x, dc = blocks[s : s + CHUNK], d[s : s + CHUNK]
            t, code = t_buf[: x.shape[0]], code_buf[: x.shape[0]]
            _, mx, finite = absmax_scan(x)
            np.divide(mx, np.float32(-8), out=dc)
            t = cls._offset(x, inv_or_zero(dc), t)
            # In a finite block with d normal (or 0: all x are zeros), |x*id| <= 8 (1 + 2^-22),
            # so t lies in [0.49, 16.6] and numpy's uint8 cast truncates exactly like the C cast.
            # Elsewhere (subnormal d, so 1/d overflows; inf or NaN in the block) the C cast's
            # INT_MIN and wrap-around matter: those blocks take `c_float_to_int`.
            with np.errstate(invalid="ignore"):
                np.copyto(code, t, casting="unsafe")
            _clamp15(code)
            odd = ~finite | ((dc != 0) & (np.abs(dc) < _TINY))
            if odd.any():  # MIN(15, (int8_t)v) then uint8_t: a negative wraps, then ORs unmasked
                code[odd] = np.minimum(15, c_float_to_int(t[odd], 8)).astype(np.uint8)
            qs[s : s + CHUNK] = _pack(code).view("V16")[:, 0]
        put_f16(out, d)
        return out

    @classmethod
    def dequantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        return scaled_codes(blocks, lambda b: _codes(b.view(_LAYOUT)[:, 0]["qs"]).view(np.int8), QK, CHUNK)


_NIBBLES = np.uint64(0x0F0F0F0F0F0F0F0F)
_HIGH_NIBBLES = np.uint64(0xF0F0F0F0F0F0F0F0)
_PLUS_0X78 = np.uint64(0x7878787878787878)
_TOP_BITS = np.uint64(0x8080808080808080)
_LOW_BITS = np.uint64(0x0101010101010101)


def _clamp15(code: np.ndarray) -> None:
    """MIN(15, b) in place on 8-byte words: b - (b >> 4 & 1) turns 16 into 15, leaves 0..15.

    Bytes above 16 (only in blocks that are then redone exactly) never borrow from a neighbour.
    """
    w = code.reshape(-1).view(np.uint64)
    carry = np.right_shift(w, np.uint64(4))
    np.bitwise_and(carry, _LOW_BITS, out=carry)
    np.subtract(w, carry, out=w)


def _pack(code: np.ndarray) -> np.ndarray:
    """(n, 32) uint8 codes -> (n, 16) bytes `code[j] | code[j+16] << 4` (uint8 arithmetic).

    Done on 8-byte words (a block is 4 words: 2 of low codes, 2 of high codes), masking the
    shifted word so no bit crosses into the next byte, as the uint8 shift drops it.
    """
    w = code.view(np.uint64)
    packed = np.empty((code.shape[0], 2), dtype=np.uint64)
    for k in range(2):
        np.left_shift(w[:, 2 + k], np.uint64(4), out=packed[:, k])
        np.bitwise_and(packed[:, k], _HIGH_NIBBLES, out=packed[:, k])
        np.bitwise_or(packed[:, k], w[:, k], out=packed[:, k])
    return packed.view(np.uint8)


def _codes(qs: np.ndarray) -> np.ndarray:
    """(n,) 16-byte items of packed nibbles -> (n, 32) bytes holding int8 `nibble - 8`, j/j+16 order.

    On 8-byte words: a nibble b plus 0x78 stays within its byte (<= 0x87), and flipping the
    top bit then gives b - 8 in two's complement (b >= 8: b - 8; b < 8: 0xF8 + b).
    """
    w = np.ascontiguousarray(qs).view(np.uint64).reshape(-1, 2)
    code = np.empty((qs.shape[0], 4), dtype=np.uint64)
    for k in range(2):
        np.bitwise_and(w[:, k], _NIBBLES, out=code[:, k])
        np.right_shift(w[:, k], np.uint64(4), out=code[:, 2 + k])
        np.bitwise_and(code[:, 2 + k], _NIBBLES, out=code[:, 2 + k])
    np.add(code, _PLUS_0X78, out=code)
    np.bitwise_xor(code, _TOP_BITS, out=code)
    return code.view(np.uint8)


class Q4_0Ref(Q4_0, name="q4_0"):
    summary = "GGML q4_0 as x86-64 builds and gguf-py round it (alias of q4_0.nofma)"


class Q4_0Fma(Q4_0, name="q4_0.fma"):
    source = "ggml/src/ggml-quants.c: quantize_row_q4_0_ref compiled with FMA contraction (aarch64, -march=native GCC)"
    summary = "GGML q4_0 with x*id + 8.5f as one fused multiply-add (aarch64 and FMA-contracted builds)"

    @classmethod
    def _offset(cls, blocks: np.ndarray, inv: np.ndarray, out: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", over="ignore"):
            return fmaf(blocks, np.broadcast_to(inv[:, None], blocks.shape), np.float32(8.5))
