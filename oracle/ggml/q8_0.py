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
from oracle.ggml.fields import f16_bytes, f16_field
from oracle.ggml.tables import seq_max_abs
from oracle.rounding import c_float_to_int, half_away, rne

QK = 32


def ref_codes(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(d, int8 codes) of `quantize_row_q8_0_ref` / `quantize_row_q8_1_ref`."""
    d = (seq_max_abs(blocks) / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        inv = np.where(d != 0, np.float32(1) / np.where(d != 0, d, np.float32(1)), np.float32(0))
        t = (blocks * inv.astype(np.float32)[:, None]).astype(np.float32)
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
        d, q = ref_codes(blocks)
        return np.concatenate([f16_bytes(d), q.view(np.uint8)], axis=1)

    @classmethod
    def dequantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        d = f16_field(blocks, 0)
        q = np.ascontiguousarray(blocks[:, 2:]).view(np.int8)
        with np.errstate(invalid="ignore"):
            return (q.astype(np.float32) * d[:, None]).astype(np.float32)


class Q8_0X86(Q8_0, name="q8_0.x86"):
    source = "ggml/src/ggml-cpu/arch/x86/quants.c: quantize_row_q8_0 (AVX/AVX2 path)"
    summary = "GGML q8_0 as the x86 CPU backend quantizes activations: id = 127/amax, round half to even"

    @classmethod
    def quantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        d, q = x86_codes(blocks)
        q8 = np.clip(q, -128, 127).astype(np.int8)
        with np.errstate(over="ignore"):
            return np.concatenate([f16_bytes(d), q8.view(np.uint8)], axis=1)
