"""NVFP4 (GGML type 40): 64 E2M1 values in four sub-blocks of 16, each with an unsigned E4M3 scale.

Byte layout (ggml-common.h `block_nvfp4`, 36 bytes):
    0..3   d[4]   UE4M3 scale byte of sub-block s (elements 16*s .. 16*s + 15)
    4..35  qs[32] byte 8*s + j = code(x[16*s + j]) | code(x[16*s + 8 + j]) << 4   (j = 0..7)
so inside each sub-block the pairing is j / j+8 (the q4_0 idea at sub-block scale).
There is no fp32 per-tensor second-level scale (unlike NVIDIA's and torchao's NVFP4): the
UE4M3 byte is the whole scale, so typical LLM weights (|x| ~ 0.03) get subnormal scales.

Dequantize (ggml-quants.c `dequantize_row_nvfp4`): x = kvalues_mxfp4[code] * d with
d = ggml_ue4m3_to_fp32(byte) (ggml-impl.h), HALF the UE4M3 value because the table holds E2M1
doubled: byte 0 and 0x7F give 0; bit 7 is ignored otherwise (0x80 is 0, 0xFF is 480/2);
exponent bits 0 give man * 2^-9 / 2, others (1 + man/8) * 2^(exp-7) / 2. Every product is exact.

Quantize (ggml-quants.c `quantize_row_nvfp4_ref`), per sub-block: amax = the largest |x|
(strict `<`, NaN never wins); byte = ggml_fp32_to_ue4m3(amax / 6.0f); d = the decoded byte as
above; code = `best_index_mxfp4(x, d)`, the first index with the smallest
fabsf(kvalues_mxfp4[i]*d - x), as in mxfp4 (ties go to the smaller code; NaN and inf get 0).
ggml_fp32_to_ue4m3 is not IEEE rounding and is modelled step by step (`ue4m3_byte`):
  * x <= 0 or NaN -> 0; x is clamped to 448 first;
  * exponent field <= 0 (x < 2^-6): m = (int)(x*512.0f + 0.5f) in float32, then m > 7 -> 7
    and m < 1 -> 0, so x in [7.5, 8) * 2^-9 keeps code 7 instead of rounding up to 2^-6;
  * otherwise the top three mantissa bits plus mantissa bit 19 (round half up on the
    magnitude, the bits below ignored), a carry into the exponent, and any exponent >= 15
    gives 0x7E (448), so amax/6 in [248, 448] maps to 448 and 0x78..0x7D are never written.
x*512.0f is exact and kvalues*d is exact, so an FMA-contracted build rounds identically: there
is no fused variant.
"""
from __future__ import annotations

import numpy as np

from oracle.formats import Format
from oracle.ggml.fields import first_absmax, unpack_nibbles
from oracle.ggml.tables import KVALUES_MXFP4

QK = 64
QK_SUB = 16
N_SUB = QK // QK_SUB


def ue4m3_to_fp32_half(b: np.ndarray) -> np.ndarray:
    """ggml_ue4m3_to_fp32: half the UE4M3 value of each byte, as float32 (exact)."""
    b = np.asarray(b, dtype=np.uint8)
    exp = ((b >> 3) & 0xF).astype(np.int32)
    man = (b & 0x7).astype(np.float32)
    raw = np.where(exp == 0, np.ldexp(man, -9), np.ldexp(np.float32(1) + man / np.float32(8), exp - 7))
    raw = raw.astype(np.float32) * np.float32(0.5)
    return np.where((b == 0) | (b == 0x7F), np.float32(0), raw).astype(np.float32)


def ue4m3_byte(x: np.ndarray) -> np.ndarray:
    """ggml_fp32_to_ue4m3 of float32 x, byte for byte (see the module docstring)."""
    x = np.asarray(x, dtype=np.float32)
    positive = x > 0  # False for NaN too
    xc = np.where(positive, np.minimum(x, np.float32(448)), np.float32(1)).astype(np.float32)
    bits = xc.view(np.uint32).astype(np.int64)
    exp = ((bits >> 23) & 0xFF) - 127 + 7
    man = (bits >> 20) & 0x7
    with np.errstate(over="ignore", invalid="ignore"):
        sub = ((xc * np.float32(512)).astype(np.float32) + np.float32(0.5)).astype(np.float32).astype(np.int64)
    sub = np.where(sub > 7, 7, sub)
    sub = np.where(sub < 1, 0, sub)
    man = man + ((bits >> 19) & 1)
    carry = man > 7
    man = np.where(carry, 0, man)
    exp_n = np.where(carry, exp + 1, exp)
    normal = np.where(exp_n >= 15, 0x7E, (exp_n << 3) | man)
    out = np.where(exp <= 0, sub, np.where(exp >= 15, 0x7E, normal))
    return np.where(positive, out, 0).astype(np.uint8)


class NVFP4(Format, name="nvfp4"):
    block_size = QK
    block_bytes = 4 + QK // 2
    source = "ggml/src/ggml-quants.c: quantize_row_nvfp4_ref, dequantize_row_nvfp4; ggml-impl.h: ggml_fp32_to_ue4m3"
    summary = "GGML nvfp4, 64 x E2M1 in 4 sub-blocks of 16, UE4M3 scale amax/6 (ggml rounding), j/j+8 nibbles"

    @classmethod
    def quantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        n = blocks.shape[0]
        sub = blocks.reshape(n * N_SUB, QK_SUB)
        amax, _ = first_absmax(sub)
        with np.errstate(over="ignore", invalid="ignore"):
            e = ue4m3_byte((amax / np.float32(6)).astype(np.float32))
            d = ue4m3_to_fp32_half(e)
            grid = (KVALUES_MXFP4.astype(np.float32)[None, :] * d[:, None]).astype(np.float32)
            err = np.abs((grid[:, None, :] - sub[:, :, None]).astype(np.float32))
        code = np.argmin(err, axis=-1).astype(np.uint8)  # first minimum; all-NaN rows give 0, as C
        qs = code[:, : QK_SUB // 2] | (code[:, QK_SUB // 2 :] << np.uint8(4))
        return np.concatenate([e.reshape(n, N_SUB), qs.reshape(n, QK // 2)], axis=1)

    @classmethod
    def dequantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        n = blocks.shape[0]
        d = ue4m3_to_fp32_half(blocks[:, :N_SUB]).reshape(n * N_SUB)
        lo, hi = unpack_nibbles(blocks[:, N_SUB:].reshape(n * N_SUB, QK_SUB // 2))
        code = np.concatenate([lo, hi], axis=1)
        return (KVALUES_MXFP4[code].astype(np.float32) * d[:, None]).astype(np.float32).reshape(n, QK)
