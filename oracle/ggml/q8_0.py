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
"""
from __future__ import annotations

import numpy as np

from oracle.formats import Format
from oracle.ggml.fields import f16_bytes, f16_field, row_max
from oracle.ggml.tables import seq_max_abs
from oracle.rounding import c_float_to_int, half_away, rne

QK = 32
CHUNK = 8192  # blocks per pass (1 MiB of float32): each numpy pass re-reads the chunk from cache
_TINY = np.finfo(np.float32).tiny
_BELOW_HALF = np.nextafter(np.float32(0.5), np.float32(0))  # 0.49999997f, see rounding.half_away


def ref_codes(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(d, int8 codes) of `quantize_row_q8_0_ref` / `quantize_row_q8_1_ref`."""
    d = np.empty(blocks.shape[0], dtype=np.float32)
    q = np.empty(blocks.shape, dtype=np.int8)
    for s in range(0, blocks.shape[0], CHUNK):
        _ref_chunk(blocks[s : s + CHUNK], d[s : s + CHUNK], q[s : s + CHUNK])
    return d, q


def _ref_chunk(blocks: np.ndarray, d: np.ndarray, q: np.ndarray) -> None:
    """Write d and the int8 codes of a chunk of blocks into `d` and `q` (which may be strided).

    Fast path: amax from the |x| bit patterns (exact without a NaN, see `seq_max_abs`), then
    roundf(x*id) = sign(x) * trunc(|x|*id + 0.49999997f) (`rounding.half_away`; IEEE products
    and sums are symmetric in sign), which stays within 127 where d is normal or 0, so plain
    numpy casts are exact. Blocks with a NaN or inf, or a subnormal d (1/d overflows), run the
    reference formula with `c_float_to_int`'s INT_MIN semantics.
    """
    blocks = np.ascontiguousarray(blocks)
    a = np.bitwise_and(blocks.view(np.uint32), np.uint32(0x7FFFFFFF)).view(np.float32)
    amax = row_max(a.view(np.uint32)).view(np.float32)
    odd = ~np.isfinite(amax)
    d[:] = amax / np.float32(127)
    odd |= (d != 0) & (d < _TINY)
    with np.errstate(invalid="ignore", over="ignore"):
        np.multiply(a, _inverse(d)[:, None], out=a)
        np.add(a, _BELOW_HALF, out=a)
        mag = a.astype(np.int8)
    neg = np.signbit(blocks).view(np.int8)
    np.negative(neg, out=neg)  # 0 or -1
    np.bitwise_xor(mag, neg, out=mag)
    np.subtract(mag, neg, out=q)
    if odd.any():
        d[odd], q[odd] = _ref_codes_exact(blocks[odd])


def _ref_codes_exact(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = (seq_max_abs(blocks) / np.float32(127)).astype(np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        t = (blocks * _inverse(d)[:, None]).astype(np.float32)
        return d, c_float_to_int(half_away(t), 8).astype(np.int8)


def _inverse(d: np.ndarray) -> np.ndarray:
    """`id = d ? 1.0f/d : 0.0f` in float32."""
    with np.errstate(divide="ignore", over="ignore"):
        return np.where(d != 0, np.float32(1) / np.where(d != 0, d, np.float32(1)), np.float32(0)).astype(np.float32)


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
        for s in range(0, blocks.shape[0], CHUNK):
            _ref_chunk(blocks[s : s + CHUNK], d[s : s + CHUNK], out[s : s + CHUNK, 2:].view(np.int8))
        out[:, :2] = f16_bytes(d)
        return out

    @classmethod
    def dequantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        out = np.empty((blocks.shape[0], QK), dtype=np.float32)
        for s in range(0, blocks.shape[0], CHUNK):
            b = blocks[s : s + CHUNK]
            with np.errstate(invalid="ignore"):
                np.multiply(b[:, 2:].view(np.int8), f16_field(b, 0)[:, None], out=out[s : s + CHUNK], dtype=np.float32)
        return out


class Q8_0X86(Q8_0, name="q8_0.x86"):
    source = "ggml/src/ggml-cpu/arch/x86/quants.c: quantize_row_q8_0 (AVX/AVX2 path)"
    summary = "GGML q8_0 as the x86 CPU backend quantizes activations: id = 127/amax, round half to even"

    @classmethod
    def quantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        d, q = x86_codes(blocks)
        q8 = np.clip(q, -128, 127).astype(np.int8)
        with np.errstate(over="ignore"):
            return np.concatenate([f16_bytes(d), q8.view(np.uint8)], axis=1)
