"""Exact codecs for the small float formats that scales and weights are stored in.

Decoding is exact for every code (subnormals, signed zeros, inf, NaN). Encoding from float32
rounds to nearest, ties to even, with each format's own overflow policy, written down below,
because kernels differ exactly there. The arithmetic is ml_dtypes' (a well-kept library whose
conversions are proven here by exhaustive enumeration in tests/test_floats.py), except fp16,
which numpy converts with correct rounding itself.

| name   | bits | overflow on encode (|x| past the largest finite + half an ulp) | NaN in    |
|--------|------|-----------------------------------------------------------------|-----------|
| fp16   | 16   | inf                                                             | NaN       |
| bf16   | 16   | inf                                                             | NaN       |
| e4m3fn | 8    | NaN (0x7f/0xff): no inf in this format                          | NaN       |
| e5m2   | 8    | inf                                                             | NaN       |
| e8m0   | 8    | from 1.5 * 2^127 up: NaN (0xff); see the note below             | 0xff      |
| e2m1   | 4    | saturates to +-6 (inf too); NaN -> zero of the opposite sign    | no NaN    |

Note e2m1: +NaN encodes as code 8 (-0), -NaN as code 0 (+0) (ml_dtypes' conversion).
Note e8m0 (ml_dtypes' conversion, not round-to-nearest everywhere): a normal float32 gets its
own exponent, plus one when its significand is at least 1.5 (ties go up); a float32 subnormal
gets code 0 (2^-127) up to 2^-127 and code 1 (2^-126) anywhere above it, even where 2^-127 is
nearer; zero, negative values (-0 too), inf and NaN give 0xff (NaN).

e8m0 (OCP MX scale: 2^(code-127), 0xff = NaN, no zero, no sign) is almost never produced by
rounding in a kernel: MX quantizers compute its exponent from floor(log2(amax)); those rules
live with the formats that use them (for example oracle/ggml/mxfp4.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np

__all__ = ["FloatFormat", "FORMATS", "decode", "encode", "round_to", "all_values"]


@dataclass(frozen=True)
class FloatFormat:
    """A small binary float: its storage and the numpy/ml_dtypes type that does the arithmetic."""

    name: str
    bits: int
    exponent_bits: int
    mantissa_bits: int
    bias: int
    dtype: np.dtype
    storage: np.dtype

    @property
    def n_codes(self) -> int:
        return 1 << self.bits


FORMATS: dict[str, FloatFormat] = {
    f.name: f
    for f in (
        FloatFormat("fp16", 16, 5, 10, 15, np.dtype(np.float16), np.dtype(np.uint16)),
        FloatFormat("bf16", 16, 8, 7, 127, np.dtype(ml_dtypes.bfloat16), np.dtype(np.uint16)),
        FloatFormat("e4m3fn", 8, 4, 3, 7, np.dtype(ml_dtypes.float8_e4m3fn), np.dtype(np.uint8)),
        FloatFormat("e5m2", 8, 5, 2, 15, np.dtype(ml_dtypes.float8_e5m2), np.dtype(np.uint8)),
        FloatFormat("e8m0", 8, 8, 0, 127, np.dtype(ml_dtypes.float8_e8m0fnu), np.dtype(np.uint8)),
        FloatFormat("e2m1", 4, 2, 1, 1, np.dtype(ml_dtypes.float4_e2m1fn), np.dtype(np.uint8)),
    )
}


def _fmt(name: str) -> FloatFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown float format {name!r}; known: {', '.join(FORMATS)}") from None


def decode(codes: np.ndarray, name: str) -> np.ndarray:
    """Codes (unsigned integers; e2m1 in the low 4 bits of a uint8) to exact float32 values."""
    f = _fmt(name)
    c = np.asarray(codes).astype(f.storage)
    if f.bits == 4:
        c = c & np.uint8(0x0F)
    return c.view(f.dtype).astype(np.float32)


def encode(x: np.ndarray, name: str) -> np.ndarray:
    """float32 values to codes, round to nearest even, with the overflow policy in the table."""
    f = _fmt(name)
    v = np.asarray(x, dtype=np.float32).astype(f.dtype)
    return v.view(f.storage)


def round_to(x: np.ndarray, name: str) -> np.ndarray:
    """Round float32 values to the format and back: the value a kernel gets after storing it."""
    return decode(encode(x, name), name)


def all_values(name: str) -> np.ndarray:
    """The float32 value of every code, indexed by code: the format's complete table."""
    f = _fmt(name)
    return decode(np.arange(f.n_codes, dtype=np.uint32), name)
