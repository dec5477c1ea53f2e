"""TQ2_0: 256 ternary values (-1, 0, 1) as 2-bit codes with one fp16 scale at the end.

Byte layout (ggml-common.h `block_tq2_0`, 66 bytes):
    0..63  qs[64] for chunk c = 0, 1 (128 values each) and byte m < 32, bits 2n..2n+1 hold
                  code(x[128c + 32n + m]), n = 0..3; code = trit + 1 in {0, 1, 2}
    64..65 d      fp16 scale
Dequantize (ggml-quants.c `dequantize_row_tq2_0`): x = (float)(code - 1)*fp32(d); code 3,
which the quantizer never writes, reads as +2.

Quantize (ggml-quants.c `quantize_row_tq2_0_ref`): amax = MAX(amax, fabsf(x)) in order over
the 256 values (`seq_max_abs`); d = amax (no division); id = d ? 1/d : 0; trit + 1 =
lroundf(x*id) + 1, of which the code keeps the low 2 bits. `lround_low_byte` models glibc's
lroundf on x86-64 for the non-finite products an inf input or a subnormal amax produce (NaN
and |v| >= 2^63 return LONG_MIN, so the code is 1).
"""
from __future__ import annotations

import numpy as np

from oracle.formats import Format
from oracle.ggml.fields import f16_bytes, f16_field
from oracle.ggml.tables import seq_max_abs
from oracle.rounding import half_away

QK_K = 256


def lround_low_byte(v: np.ndarray) -> np.ndarray:
    """Low byte of `(int)(lroundf(v) + 1)` as int32 in 0..255: the trit code before packing."""
    r = half_away(v)
    ok = np.abs(r) < 2.0**63  # NaN is not ok either
    i = np.where(ok, r, 0).astype(np.int64) + 1  # LONG_MIN + 1 has low byte 1
    return (i & 0xFF).astype(np.int32)


def ternary_codes(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(d, codes) of the tq1_0 / tq2_0 reference quantizers: d = amax, code = lroundf(x/amax) + 1."""
    d = seq_max_abs(blocks)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        inv = np.where(d != 0, np.float32(1) / np.where(d != 0, d, np.float32(1)), np.float32(0))
        v = (blocks * inv.astype(np.float32)[:, None]).astype(np.float32)
        return d, lround_low_byte(v)


def scaled_trits(t: np.ndarray, d: np.ndarray) -> np.ndarray:
    """`(float)(t - 1) * d` for codes t."""
    with np.errstate(invalid="ignore"):
        return ((t.astype(np.int32) - 1).astype(np.float32) * d[:, None]).astype(np.float32)


class TQ2_0(Format, name="tq2_0"):
    block_size = QK_K
    block_bytes = 66
    source = "ggml/src/ggml-quants.c: quantize_row_tq2_0_ref, dequantize_row_tq2_0"
    summary = "GGML tq2_0, 256 ternary x 2-bit, d = amax (fp16, last), lroundf(x/d)"

    @classmethod
    def quantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        d, code = ternary_codes(blocks)
        c = (code & 3).astype(np.uint8).reshape(-1, 2, 4, 32)
        qs = c[:, :, 0] | (c[:, :, 1] << 2) | (c[:, :, 2] << 4) | (c[:, :, 3] << 6)
        return np.concatenate([qs.reshape(-1, 64).astype(np.uint8), f16_bytes(d)], axis=1)

    @classmethod
    def dequantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        d = f16_field(blocks, 64)
        qs = blocks[:, :64].reshape(-1, 2, 1, 32)
        shifts = np.array([0, 2, 4, 6], dtype=np.uint8).reshape(1, 1, 4, 1)
        t = ((qs >> shifts) & np.uint8(3)).reshape(-1, QK_K)
        return scaled_trits(t, d)
