"""Q8_1: q8_0's codes plus a second fp16, s = d * sum(codes), for the q4_1/q5_1 dot products.

Byte layout (ggml-common.h `block_q8_1`, 36 bytes):
    0..1   d      fp16 scale
    2..3   s      fp16 of (float)sum(codes) * d (the float32 d, not the stored fp16)
    4..35  qs[32] int8 codes, in order
ggml has no dequantize_row_q8_1 (q8_1 is only an activation format, and `ggml_quantize_chunk`
rejects it); dequantize here gives qs*fp32(d), the values the vec_dot kernels multiply.

`q8_1` (ggml-quants.c `quantize_row_q8_1_ref`, the type's from_float_ref): codes exactly as
`q8_0`; sum = int sum of the stored int8 codes (exact); s = GGML_FP32_TO_FP16(sum*d).

`q8_1.x86` (ggml-cpu/arch/x86/quants.c `quantize_row_q8_1`, AVX/AVX2): d and codes exactly as
`q8_0.x86`; the sum is taken over the int32 results of `_mm256_cvtps_epi32` before the
saturating packs (`hsum_i32_8`, wrapping int32), so it differs from the stored codes' sum only
when an element is NaN or inf (INT_MIN each); s = F16C fp16 of d*(float)sum, converted RNE.
The two paths differ in rounding (half away vs half even) and in id (1/d vs 127/amax).
"""
from __future__ import annotations

import numpy as np

from oracle.formats import Format
from oracle.ggml.fields import f16_bytes, f16_field
from oracle.ggml.q8_0 import ref_codes, x86_codes

QK = 32


class Q8_1(Format, name="q8_1"):
    block_size = QK
    block_bytes = 36
    source = "ggml/src/ggml-quants.c: quantize_row_q8_1_ref (dequantize: qs*d, as the vec_dot kernels read it)"
    summary = "GGML q8_1, q8_0's codes plus s = fp16(d*sum(q)), roundf half away from zero"

    @classmethod
    def quantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        d, q = ref_codes(blocks)
        total = q.astype(np.int32).sum(axis=1).astype(np.float32)
        with np.errstate(invalid="ignore", over="ignore"):
            s = (total * d).astype(np.float32)
        return np.concatenate([f16_bytes(d), f16_bytes(s), q.view(np.uint8)], axis=1)

    @classmethod
    def dequantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        d = f16_field(blocks, 0)
        q = np.ascontiguousarray(blocks[:, 4:]).view(np.int8)
        with np.errstate(invalid="ignore"):
            return (q.astype(np.float32) * d[:, None]).astype(np.float32)


class Q8_1X86(Q8_1, name="q8_1.x86"):
    source = "ggml/src/ggml-cpu/arch/x86/quants.c: quantize_row_q8_1 (AVX/AVX2 path)"
    summary = "GGML q8_1 as the x86 CPU backend quantizes activations: id = 127/amax, half to even, int32 sum"

    @classmethod
    def quantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        d, q = x86_codes(blocks)
        total = q.astype(np.int64).sum(axis=1)
        total = ((total + 2**31) % 2**32 - 2**31).astype(np.int32).astype(np.float32)  # int32 wrap
        with np.errstate(invalid="ignore", over="ignore"):
            s = (d * total).astype(np.float32)
        q8 = np.clip(q, -128, 127).astype(np.int8)
        with np.errstate(over="ignore"):
            return np.concatenate([f16_bytes(d), f16_bytes(s), q8.view(np.uint8)], axis=1)
