"""Rounding modes as named functions, and a correctly rounded float32 fused multiply-add.

Kernels disagree mostly in *how* they round, so each mode used by a shipped code path has a
name here. Every function works elementwise in the dtype of its input and is exact: no
function adds 0.5 in a way that can itself round (the classic `floor(x + 0.5f)` bug is kept
only where a kernel really does it, as `floor_plus_half`).
"""
from __future__ import annotations

import numpy as np

__all__ = ["rne", "half_away", "trunc", "floor_plus_half", "nearest_int", "fmaf", "c_float_to_int"]


def rne(x: np.ndarray) -> np.ndarray:
    """Round half to even: IEEE roundTiesToEven, `rintf`/`nearbyintf`, `_mm256_round_ps`, torch.round."""
    return np.rint(x)


def half_away(x: np.ndarray) -> np.ndarray:
    """Round half away from zero, as C `roundf` and `std::round`.

    `trunc(x + copysign(h, x))` with h the largest float below 0.5 in x's dtype (0.49999997f).
    That addition rounds only where it cannot move the result across an integer: a tie k + 0.5
    gives k + 1 - 2^-25 (float32), which rounds up to k + 1; anything smaller stays below it;
    and from 2^23 on x is an integer that h cannot move. Adding 0.5 instead rounds 0.49999997f
    up to 1 (the `floor(|x| + 0.5)` bug). This equals the exact fractional-part rule
    (`x - trunc(x)` compared with 0.5) on every float32 and float16, checked exhaustively.
    Integers are returned unchanged (as a copy).
    """
    x = np.asarray(x)
    if x.dtype.kind != "f":
        return x.copy()
    return np.trunc(x + np.copysign(np.nextafter(x.dtype.type(0.5), x.dtype.type(0)), x))


def trunc(x: np.ndarray) -> np.ndarray:
    """Round toward zero, as a C cast `(int)x` of an in-range value."""
    return np.trunc(x)


def floor_plus_half(x: np.ndarray) -> np.ndarray:
    """`floor(x + 0.5)` evaluated in x's own dtype, including the rounding of the addition.

    This is what code that writes `(int)floorf(x + 0.5f)` computes; it differs from
    `half_away` on negative ties and on 0.49999997f.
    """
    x = np.asarray(x)
    return np.floor(x + x.dtype.type(0.5))


def nearest_int(x: np.ndarray) -> np.ndarray:
    """ggml's `nearest_int` (ggml-quants.c): the 1.5*2^23 magic-number trick on float32.

    For |x| <= 2^22 it equals round-half-to-even; the function reproduces the trick itself so
    that out-of-range inputs give the same garbage as the C code. Returns int32.
    """
    v = (np.asarray(x, dtype=np.float32) + np.float32(12582912.0)).view(np.int32)
    return (v & np.int32(0x007FFFFF)) - np.int32(0x00400000)


def fmaf(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """float32 fused multiply-add `a*b + c` with a single rounding (C99 `fmaf`).

    The product of two float32 values is exact in float64 (48 significant bits), but the sum
    `p + c` in float64 is rounded, and rounding that again to float32 can double-round. So the
    float64 sum is computed with its exact error term (TwoSum) and nudged to round-to-odd
    before the final conversion; round-to-odd at 53 bits followed by RNE at 24 bits is a single
    correct rounding because 53 >= 24 + 2.
    """
    a32 = np.asarray(a, dtype=np.float32)
    b32 = np.asarray(b, dtype=np.float32)
    c64 = np.asarray(c, dtype=np.float32).astype(np.float64)
    p = a32.astype(np.float64) * b32.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        s = p + c64
        bb = s - p
        err = (p - (s - bb)) + (c64 - bb)
        even = (s.view(np.uint64) & np.uint64(1)) == 0
        fix = np.isfinite(s) & (err != 0) & even
        s = np.where(fix, np.nextafter(s, np.where(err > 0, np.inf, -np.inf)), s)
        return s.astype(np.float32)


def c_float_to_int(x: np.ndarray, bits: int = 32) -> np.ndarray:
    """C's `(intN_t)x` for a float x, as GCC compiles it on x86-64.

    The conversion is `cvttss2si`/`cvttps2dq` to int32 (truncation; NaN and out-of-range give
    0x80000000, the "integer indefinite"), then the low `bits` bits are kept as a signed value.
    ggml's q4_0/q5_0 quantizers rely on this when a block's scale is subnormal and `1/d`
    overflows to inf. numpy's own float -> int32 cast truncates in range (its result elsewhere
    is replaced), and its int32 -> int8/int16 casts keep the low bits. Returns int32.
    """
    x = np.asarray(x)
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(x) < 2.0**31)  # NaN compares False, so it lands here too
        i = x.astype(np.int32)
    np.putmask(i, bad, np.int32(-(2**31)))
    if bits == 32:
        return i
    if bits in (8, 16):
        return i.astype(np.int8 if bits == 8 else np.int16).astype(np.int32)
    low = i.astype(np.int64) & ((1 << bits) - 1)
    return np.where(low >= (1 << (bits - 1)), low - (1 << bits), low).astype(np.int32)
