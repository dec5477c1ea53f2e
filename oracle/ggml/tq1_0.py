"""TQ1_0: 256 ternary values packed five (or four) base-3 digits to a byte, fp16 scale at the end.

Byte layout (ggml-common.h `block_tq1_0`, 54 bytes):
    0..31  qs[0:32]   byte m packs x[m + 32n], n = 0..4
    32..47 qs[32:48]  byte m packs x[160 + m + 16n], n = 0..4
    48..51 qh[4]      byte j packs x[240 + j + 4n], n = 0..3, then a 0 digit
    52..53 d          fp16 scale
A byte holds digits t_0..t_4 (t = trit + 1, t_0 most significant) as
ceil(256 * (t_0 t_1 t_2 t_3 t_4)_3 / 243): a fixed-point fraction of 243, so digit n is read
back as ((uint8)(q * 3^n) * 3) >> 8 (ggml-quants.c `dequantize_row_tq1_0`), and
x = (float)(digit - 1)*fp32(d).

Quantize (ggml-quants.c `quantize_row_tq1_0_ref`): d and digits as tq2_0 (d = amax,
t = lroundf(x*id) + 1); the base-3 value is accumulated in a uint8_t (`q *= 3; q += t`), so
it wraps mod 256 exactly as C does, then `((uint16_t)q * 256 + 242) / 243`.
"""
from __future__ import annotations

import numpy as np

from oracle.formats import Format
from oracle.ggml.fields import f16_bytes, f16_field
from oracle.ggml.tq2_0 import scaled_trits, ternary_codes

QK_K = 256
_POW3 = np.array([1, 3, 9, 27, 81], dtype=np.uint8)


def _pack(digits: np.ndarray) -> np.ndarray:
    """(..., n_digits, bytes) codes -> (..., bytes) packed bytes, most significant digit first."""
    q = np.zeros(digits.shape[:-2] + digits.shape[-1:], dtype=np.int32)
    for n in range(digits.shape[-2]):
        q = (q * 3 + digits[..., n, :]) & 0xFF
    return ((q * 256 + 242) // 243).astype(np.uint8)


def _digits(q: np.ndarray, n_digits: int) -> np.ndarray:
    """Packed bytes (n, bytes) -> digits (n, n_digits, bytes) as ggml reads them back."""
    shifted = q[:, None, :] * _POW3[:n_digits, None]  # uint8 arithmetic wraps, as C's uint8_t store
    return (shifted.astype(np.uint16) * 3) >> 8


class TQ1_0(Format, name="tq1_0"):
    block_size = QK_K
    block_bytes = 54
    source = "ggml/src/ggml-quants.c: quantize_row_tq1_0_ref, dequantize_row_tq1_0"
    summary = "GGML tq1_0, 256 ternary x 1.6 bit (5 trits/byte, 256/243 fixed point), d = amax (fp16, last)"

    @classmethod
    def quantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        d, code = ternary_codes(blocks)
        n = blocks.shape[0]
        a = _pack(code[:, :160].reshape(n, 5, 32))
        b = _pack(code[:, 160:240].reshape(n, 5, 16))
        h4 = code[:, 240:].reshape(n, 4, 4)
        h = _pack(np.concatenate([h4, np.zeros((n, 1, 4), dtype=h4.dtype)], axis=1))
        return np.concatenate([a, b, h, f16_bytes(d)], axis=1)

    @classmethod
    def dequantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        d = f16_field(blocks, 52)
        n = blocks.shape[0]
        t = np.concatenate(
            [
                _digits(blocks[:, 0:32], 5).reshape(n, 160),
                _digits(blocks[:, 32:48], 5).reshape(n, 80),
                _digits(blocks[:, 48:52], 4).reshape(n, 16),
            ],
            axis=1,
        )
        return scaled_trits(t, d)
