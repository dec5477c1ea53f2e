"""Q8_0: 32 values as int8 codes with one fp16 scale; the reference and the x86 SIMD rounding.

Byte layout (ggml-common.h `block_q8_0`, 34 bytes):
    0..1   d      fp16 scale
    2..33  qs[32] int8 codes, in order
Dequantize (ggml-quants.c `dequantize_row_q8_0`): x = qs*fp32(d).

`q8_0` (ggml-quants.c `quantize_row_q8_0_ref`, what `ggml_quantize_chunk` and gguf-py do):
amax = MAX(amax, fabsf(x)) in order (a NaN survives only in last place, `seq_max_abs`);
d = amax / 127; id = d ? 1/d : 0; code = (int8_t)roundf(x*id), round half away from zero.
A NaN code is the low byte of INT_MIN, 0; a NaN d is stored as 0x7E00 (GGML_FP32_TO_FP16).

`q8_0.x86` (ggml-cpu/arch/x86/quants.c `quantize_row_q8_0`, the CPU backend's from_float
for activations on AVX/AVX2 builds): amax by `_mm256_max_ps` over 4 loads of 8 then a
128/64/32-bit tree (`x86_amax`: maxps returns its second operand on NaN or equality);
d = amax / 127.f; id = amax != 0 ? 127.f/amax : 0 (not 1/d); codes = `_mm256_round_ps`
(round half to even) then `_mm256_cvtps_epi32` (NaN and |v| >= 2^31 give INT_MIN) and two
saturating packs, so a NaN element gives -128 and an amax below 127/FLT_MAX (id = inf) makes
every code -128 or 127. d is stored with F16C `_cvtss_sh` (GGML_CPU_FP32_TO_FP16 on a native
x86 build), which keeps a quiet NaN's top payload bits as numpy does.

Speed (docs/benchmarks.md): `q8_0` runs a cache-sized chunk of blocks at a time through
whole-chunk passes that are exact for finite blocks with a normal (or zero) d, then redoes
the chunk's other blocks with the reference formula (`_ref_codes_into`).
"""
from __future__ import annotations

import numpy as np

from oracle.formats import Format
from oracle.ggml.fields import f16_bytes, inv_or_zero, put_f16, row_max, scaled_codes
from oracle.ggml.tables import seq_max_abs
from oracle.rounding import c_float_to_int, half_away, rne

QK = 32
CHUNK = 16384  # blocks per pass (2 MiB of float32): passes re-read a chunk from cache, not memory
_TINY = np.finfo(np.float32).tiny
_BELOW_HALF = np.nextafter(np.float32(0.5), np.float32(0))  # 0.49999997f, see rounding.half_away
_ABS = np.uint32(0x7FFFFFFF)
_SIGN = np.uint32(0x80000000)


def ref_codes(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(d, int8 codes) of `quantize_row_q8_0_ref` / `quantize_row_q8_1_ref`."""
    d = np.empty(blocks.shape[0], dtype=np.float32)
    q = np.empty(blocks.shape, dtype=np.int8)
    _ref_codes_into(blocks, d, q)
    return d, q


def _ref_codes_into(blocks: np.ndarray, d: np.ndarray, q: np.ndarray) -> None:
    """Write d and the int8 codes of `quantize_row_q8_0_ref` into `d` and `q` (q may be strided).

    Fast path, a chunk at a time: amax from the |x| bit patterns (exact without a NaN, see
    `seq_max_abs`), then roundf(x*id) = sign(x) * trunc(|x|*id + 0.49999997f)
    (`rounding.half_away`; IEEE products and sums are symmetric in sign), which stays within
    127 where d is normal or 0, so a plain numpy cast is exact. Blocks with a NaN or inf, or a
    subnormal d (1/d overflows), then run the reference formula with `c_float_to_int`'s
    INT_MIN semantics.
    """
    blocks = np.ascontiguousarray(blocks)
    width = min(CHUNK, blocks.shape[0])
    mag, sign = np.empty((width, QK), dtype=np.uint32), np.empty((width, QK), dtype=np.uint32)
    for s in range(0, blocks.shape[0], CHUNK):
        bits = blocks[s : s + CHUNK].view(np.uint32)
        a, sg, dc = mag[: bits.shape[0]], sign[: bits.shape[0]], d[s : s + CHUNK]
        np.bitwise_and(bits, _ABS, out=a)
        amax = row_max(a).view(np.float32)
        af = a.view(np.float32)
        with np.errstate(invalid="ignore", over="ignore"):  # signalling NaNs, out-of-range casts
            np.divide(amax, np.float32(127), out=dc)
            odd = ~np.isfinite(amax) | ((dc != 0) & (dc < _TINY))
            np.multiply(af, inv_or_zero(dc)[:, None], out=af)
            np.add(af, _BELOW_HALF, out=af)
            np.bitwise_and(bits, _SIGN, out=sg)
            np.bitwise_or(a, sg, out=a)
            np.copyto(q[s : s + CHUNK], af, casting="unsafe")  # float -> int8 truncates toward 0
        if odd.any():
            rows = np.flatnonzero(odd) + s
            d[rows], q[rows] = _ref_codes_exact(blocks[rows])


def _ref_codes_exact(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = (seq_max_abs(blocks) / np.float32(127)).astype(np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        t = (blocks * inv_or_zero(d)[:, None]).astype(np.float32)
        return d, c_float_to_int(half_away(t), 8).astype(np.int8)


def _maxps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where(a > b, a, b)


def x86_amax(blocks: np.ndarray) -> np.ndarray:
    """The block max |x| exactly as the AVX reduction in x86 `quantize_row_q8_0` computes it."""
    a = np.abs(blocks)
    m = a[:, 0:8]
    for k in range(1, 4):
        m = _maxps(m, a[:, 8 * k : 8 * k + 8])
    m4 = _maxps(m[:, 4:8], m[:, 0:4])
    r0, r1 = _maxps(m4[:, 0], m4[:, 2]), _maxps(m4[:, 1], m4[:, 3])
    return _maxps(r0, r1)


def x86_codes(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(d, int32 codes before the saturating packs) of the x86 AVX q8_0 / q8_1 quantizers."""
    amax = x86_amax(blocks)
    d = (amax / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        inv = np.where(amax != 0, np.float32(127) / np.where(amax != 0, amax, np.float32(1)), np.float32(0))
        t = rne((blocks * inv.astype(np.float32)[:, None]).astype(np.float32))
    return d, c_float_to_int(t)


class Q8_0(Format, name="q8_0"):
    block_size = QK
    block_bytes = 34
    source = "ggml/src/ggml-quants.c: quantize_row_q8_0_ref, dequantize_row_q8_0"
    summary = "GGML q8_0, 32 x int8, d = amax/127 (fp16), roundf(x * 1/d) half away from zero"

    @classmethod
    def quantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        out = np.empty((blocks.shape[0], 34), dtype=np.uint8)
        d = np.empty(blocks.shape[0], dtype=np.float32)
        _ref_codes_into(blocks, d, out[:, 2:].view(np.int8))
        put_f16(out, d)
        return out

    @classmethod
    def dequantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        return scaled_codes(blocks, lambda b: b[:, 2:].view(np.int8), QK, CHUNK)


class Q8_0X86(Q8_0, name="q8_0.x86"):
    source = "ggml/src/ggml-cpu/arch/x86/quants.c: quantize_row_q8_0 (AVX/AVX2 path)"
    summary = "GGML q8_0 as the x86 CPU backend quantizes activations: id = 127/amax, round half to even"

    @classmethod
    def quantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        d, q = x86_codes(blocks)
        q8 = np.clip(q, -128, 127).astype(np.int8)
        with np.errstate(over="ignore"):
            return np.concatenate([f16_bytes(d), q8.view(np.uint8)], axis=1)
