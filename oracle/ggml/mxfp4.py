"""MXFP4: 32 E2M1 (fp4) values with one shared E8M0 power-of-two scale (OCP MX, as ggml stores it).

Byte layout (ggml-common.h `block_mxfp4`, 17 bytes):
    0      e      E8M0 exponent byte
    1..16  qs[16] byte j = code(x[j]) | code(x[j+16]) << 4   (j / j+16 pairing)
Dequantize (ggml-quants.c `dequantize_row_mxfp4`): x = kvalues_mxfp4[code] * d with
d = ggml_e8m0_to_fp32_half(e) = 2^(e-128) (the table holds the E2M1 values doubled, so the
half scale cancels; e = 0xFF is not NaN here but 2^127).

Quantize (ggml-quants.c `quantize_row_mxfp4_ref`): amax = the largest |x| (strict `<`, NaN
never wins); e = amax > 0 ? (uint8_t)(floorf(log2f(amax)) - 2 + 127) : 0; the code of x is
the first index with the smallest fabsf(kvalues_mxfp4[i]*d - x) (`best_index_mxfp4`), so a
tie between magnitudes goes to the smaller code and 0 beats -0 (code 8 is never written).

Two C-level cases are modelled explicitly. log2f is glibc's (x86-64): its result is within
one ulp and correctly rounded except very near a float midpoint; `_log2f` computes the
correctly rounded value (float64 log2 rounded to float32), which decides floorf at the only
place it matters, amax just below a power of two, where log2f rounds up to the integer
(checked against libm's log2f in tests/test_ggml_blocks.py). The `(uint8_t)` cast of an
out-of-range float is UB in C; GCC on x86-64 converts through int32 (`cvttss2si`) and keeps
the low byte, so amax < 2^-125 wraps (e.g. 2^-126 gives 255) and amax = inf gives 0
(`c_float_to_int`). The products kvalues*d are exact (a small integer times a power of two)
except that they overflow to inf for e = 255, so an FMA-contracted build rounds identically:
there is no fused variant.
"""
from __future__ import annotations

import numpy as np

from oracle.formats import Format
from oracle.ggml.fields import first_absmax, unpack_nibbles
from oracle.ggml.tables import KVALUES_MXFP4, e8m0_to_fp32_half
from oracle.rounding import c_float_to_int

QK = 32


def _log2f(x: np.ndarray) -> np.ndarray:
    """Correctly rounded float32 log2 of positive float32 x (see the module docstring)."""
    with np.errstate(divide="ignore"):
        return np.log2(x.astype(np.float64)).astype(np.float32)


def exponent_byte(amax: np.ndarray) -> np.ndarray:
    """The E8M0 byte `quantize_row_mxfp4_ref` writes for a block whose largest |x| is amax."""
    safe = np.where(amax > 0, amax, np.float32(1))
    with np.errstate(invalid="ignore", over="ignore"):
        v = (np.floor(_log2f(safe)) - np.float32(2) + np.float32(127)).astype(np.float32)
    e = c_float_to_int(v, 8).astype(np.uint8)
    return np.where(amax > 0, e, np.uint8(0)).astype(np.uint8)


class MXFP4(Format, name="mxfp4"):
    block_size = QK
    block_bytes = 17
    source = "ggml/src/ggml-quants.c: quantize_row_mxfp4_ref, dequantize_row_mxfp4"
    summary = "GGML mxfp4 (OCP MX), 32 x E2M1, e = floor(log2(amax)) - 2 (E8M0), nearest code, first wins"

    @classmethod
    def quantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        amax, _ = first_absmax(blocks)
        e = exponent_byte(amax)
        d = e8m0_to_fp32_half(e)
        with np.errstate(over="ignore", invalid="ignore"):
            grid = (KVALUES_MXFP4.astype(np.float32)[None, :] * d[:, None]).astype(np.float32)
            err = np.abs(grid[:, None, :] - blocks[:, :, None])
        code = np.argmin(err, axis=-1).astype(np.uint8)  # first minimum; all-NaN rows give 0, as C
        qs = code[:, : QK // 2] | (code[:, QK // 2 :] << np.uint8(4))
        return np.concatenate([e[:, None], qs], axis=1)

    @classmethod
    def dequantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        d = e8m0_to_fp32_half(blocks[:, 0])
        lo, hi = unpack_nibbles(blocks[:, 1:])
        code = np.concatenate([lo, hi], axis=1)
        with np.errstate(over="ignore"):
            return (KVALUES_MXFP4[code].astype(np.float32) * d[:, None]).astype(np.float32)
