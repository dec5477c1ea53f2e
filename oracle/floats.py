"""Exact codecs for the small float formats that scales and weights are stored in.

Decoding is exact for every code (subnormals, signed zeros, inf, NaN). Encoding from float32
rounds to nearest, ties to even, with each format's own overflow policy, written down below,
because kernels differ exactly there. The arithmetic is ml_dtypes' (a well-kept library whose
conversions are proven here by exhaustive enumeration in tests/test_floats.py), except fp16,
which numpy converts with correct rounding itself, and e8m0, encoded here (see its note).

| name   | bits | overflow on encode (|x| past the largest finite + half an ulp) | NaN in    |
|--------|------|-----------------------------------------------------------------|-----------|
| fp16   | 16   | inf                                                             | NaN       |
| bf16   | 16   | inf                                                             | NaN       |
| e4m3fn | 8    | NaN (0x7f/0xff): no inf in this format                          | NaN       |
| e5m2   | 8    | inf                                                             | NaN       |
| e8m0   | 8    | from 1.5 * 2^127 up: NaN (0xff); see the note below             | 0xff      |
| e2m1   | 4    | saturates to +-6 (inf too); NaN -> zero of the opposite sign    | no NaN    |

Note e2m1: +NaN encodes as code 8 (-0), -NaN as code 0 (+0) (ml_dtypes' conversion).
Note e8m0: the oracle encodes it itself, not through ml_dtypes, whose rule for float32
subnormals changed between releases (0.5 and 0.6 send everything above 2^-127 to 2^-126, 0.7
rounds to the nearer). The OCP MX v1.0 specification defines e8m0's values (2^(code-127), codes
0..254; 0xff NaN; no zero, no sign, no inf) and, for conversions into MX formats, round to
nearest; so every positive finite float32 goes to the nearer power of two, measured in value:
its own exponent, plus one when its significand is at least 1.5 (at the midpoint the larger power
wins, as rounding "to even" on the implicit leading one does). Values below 2^-127 take the
smallest code 0 (there is no zero); zero, negative values (-0 too), inf and NaN give 0xff
(NaN), and so does anything from 1.5 * 2^127 up.

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
    if name == "e8m0":
        return np.where(c == 0xFF, np.float32(np.nan), np.ldexp(np.float32(1), np.minimum(c, 254).astype(np.int32) - 127))
    if f.bits == 4:
        c = c & np.uint8(0x0F)
    return c.view(f.dtype).astype(np.float32)


def encode(x: np.ndarray, name: str) -> np.ndarray:
    """float32 values to codes, round to nearest even, with the overflow policy in the table."""
    f = _fmt(name)
    if name == "e8m0":
        return _encode_e8m0(np.asarray(x, dtype=np.float32))
    v = np.asarray(x, dtype=np.float32).astype(f.dtype)
    return v.view(f.storage)


def _encode_e8m0(x: np.ndarray) -> np.ndarray:
    """float32 to e8m0 codes by the rule in the module docstring, on the bits."""
    b = np.ascontiguousarray(x).view(np.uint32).astype(np.int64)
    exp, man = (b >> 23) & 0xFF, b & 0x7FFFFF
    normal = exp + (man >= 1 << 22)
    subnormal = (man >= 3 << 21).astype(np.int64)  # 1.5 * 2^-127 = 0x600000 * 2^-149
    code = np.where(exp == 0, subnormal, normal)
    invalid = (b >> 31 == 1) | (exp == 0xFF) | ((exp == 0) & (man == 0)) | (code > 254)
    return np.where(invalid, 0xFF, code).astype(np.uint8)


def round_to(x: np.ndarray, name: str) -> np.ndarray:
    """Round float32 values to the format and back: the value a kernel gets after storing it."""
    return decode(encode(x, name), name)


def all_values(name: str) -> np.ndarray:
    """The float32 value of every code, indexed by code: the format's complete table."""
    f = _fmt(name)
    return decode(np.arange(f.n_codes, dtype=np.uint32), name)
