"""Rigorous per-element error bounds for float dot products, and the float dtypes they use.

Everything here follows Higham, *Accuracy and Stability of Numerical Algorithms* (2nd ed.),
chapter 2 (the standard model fl(a op b) = (a op b)(1 + d), |d| <= u) and chapter 3 (sums and
inner products). Notation: u is the unit roundoff of a dtype (2^-24 fp32, 2^-11 fp16, 2^-8
bf16, 2^-53 fp64) and gamma_n = n u / (1 - n u), valid while n u < 1 (Lemma 3.1: a product of
n factors (1 + d_i)^(+-1) is 1 + theta_n with |theta_n| <= gamma_n).

Summation in ANY order (Higham 3.1, eq. 3.4 and the tree remark after it). Every summation
algorithm for n terms is a binary tree of n - 1 additions; a term that passes through h_i
additions picks up a factor (1 + theta_{h_i}), so

    |fl(sum t_i) - sum t_i| <= gamma_h * sum |t_i|,   h = max_i h_i (the tree's height).

Sequential (recursive) summation has h = n - 1, whatever the order of the terms; pairwise has
h = ceil(log2 n); L lanes summed sequentially and then by a reduction tree (SIMD
accumulators: AVX2 fmadd over 8 lanes, then `hsum_float_8`) has h = ceil(n/L) - 1 +
ceil(log2 L). An accumulator that starts from an exact zero adds nothing on its first term.

Products (Higham 3.1, eq. 3.2-3.5). If the terms t_i = a_i b_i are themselves rounded, each
gets one more factor: h + 1. A fused multiply-add acc = fma(a, b, acc) rounds once per step,
counting as the addition; with acc starting at 0 the first step rounds the bare product, so
the height is again the chain length: FMA accumulation has the same index as rounded products
plus recursive sums (its advantage is in the constant, not the worst case). Products that
are exact in the accumulation dtype (an integer times a power-of-two-friendly scale, int32
sums converted exactly) add nothing.

Rounded inputs (a kernel that stores dequantized weights in bf16, or scales in fp16, before
multiplying): each such stage is one more factor (1 + d), |d| <= u_stage, on every term, so
the relative factor becomes (1 + u_stage)(1 + gamma_h) - 1.

Underflow (Higham 2.1, eq. 2.8): with gradual underflow, fl(a*b) = ab(1 + d) + e with
|e| <= eta = (smallest subnormal)/2 and d*e = 0; additions are exact whenever they underflow.
So each rounded product contributes at most eta absolute error, amplified by at most
(1 + gamma_h) through later additions: the bound adds n_products * eta * (1 + gamma_h).

Output rounding: a final cast to fp16/bf16 (or fp32 from a wider accumulator) by RNE moves a
value y by at most ulp(y)/2, and ulp is monotone in |y|, so with |y| <= |exact| + acc_bound
the cast adds at most ulp(|exact| + acc_bound)/2. Past the largest finite value the cast
overflows and the bound is inf.

The bound itself is evaluated in float64 from float64 |t_i| sums; that evaluation is rounded
too, so every returned bound is inflated by (1 + (n + 4) 2^-52) (Higham 3.1 applied to the
nonnegative float64 sum of the |t_i|, which is what the caller passes).
"""
from __future__ import annotations

import math

import ml_dtypes
import numpy as np

__all__ = [
    "FloatSpec", "float_spec", "gamma", "height", "sum_bound", "dot_bound", "ulp", "output_rounding",
]


class FloatSpec:
    """Facts about one binary float dtype that the bounds need."""

    def __init__(self, name: str, dtype: np.dtype, precision: int, emin: int, emax: int):
        self.name = name
        self.dtype = np.dtype(dtype)
        self.precision = precision  # significand bits including the implicit one
        self.emin = emin  # exponent of the smallest normal
        self.max = float(np.finfo(self.dtype).max) if name != "bf16" else float(ml_dtypes.finfo(ml_dtypes.bfloat16).max)

    @property
    def u(self) -> float:
        """Unit roundoff of round-to-nearest: 2^-p."""
        return 2.0 ** -self.precision

    @property
    def eta(self) -> float:
        """Half the smallest subnormal: the absolute error bound of an underflowing product."""
        return 2.0 ** (self.emin - self.precision)

    def __repr__(self) -> str:
        return f"FloatSpec({self.name})"


_SPECS = {
    "fp64": FloatSpec("fp64", np.float64, 53, -1022, 1023),
    "fp32": FloatSpec("fp32", np.float32, 24, -126, 127),
    "fp16": FloatSpec("fp16", np.float16, 11, -14, 15),
    "bf16": FloatSpec("bf16", ml_dtypes.bfloat16, 8, -126, 127),
}
_ALIASES = {"float64": "fp64", "float32": "fp32", "float16": "fp16", "bfloat16": "bf16",
            "double": "fp64", "float": "fp32", "half": "fp16"}


def float_spec(dtype) -> FloatSpec:
    """'fp32' / 'fp16' / 'bf16' / 'fp64', a numpy or ml_dtypes dtype, or a FloatSpec."""
    if isinstance(dtype, FloatSpec):
        return dtype
    name = dtype if isinstance(dtype, str) else np.dtype(dtype).name
    name = _ALIASES.get(name, name)
    if name not in _SPECS:
        raise ValueError(f"not a supported float dtype: {dtype!r} (fp64, fp32, fp16, bf16)")
    return _SPECS[name]


def gamma(n: int, dtype="fp32") -> float:
    """gamma_n = n u / (1 - n u), rounded upward; inf when n u >= 1 (no bound exists)."""
    u = float_spec(dtype).u
    nu = n * u
    if nu >= 1:
        return math.inf
    return math.nextafter(math.nextafter(nu / (1 - nu), math.inf), math.inf)


def height(n: int, order: str = "any", *, lanes: int = 8, products_rounded: bool = False) -> int:
    """Largest number of roundings any of n terms goes through (the h of the module docstring).

    order: 'any' / 'sequential' (n - 1: valid for every summation tree), 'pairwise'
    (ceil(log2 n)), 'lanes' (ceil(n / lanes) - 1 + ceil(log2 lanes)). products_rounded adds
    one for a rounded product (or an FMA, see the module docstring).
    """
    if n < 0:
        raise ValueError(f"number of terms must be >= 0, got {n}")
    if n <= 1:
        h = 0
    elif order in ("any", "sequential"):
        h = n - 1
    elif order == "pairwise":
        h = math.ceil(math.log2(n))
    elif order == "lanes":
        h = math.ceil(n / lanes) - 1 + math.ceil(math.log2(lanes))
    else:
        raise ValueError(f"unknown summation order {order!r} (any, sequential, pairwise, lanes)")
    return h + (1 if products_rounded and n > 0 else 0)


def _inflate(x: np.ndarray, n: int) -> np.ndarray:
    return np.asarray(x, dtype=np.float64) * (1.0 + (n + 4) * 2.0 ** -52)


def sum_bound(abs_sum, h: int, dtype="fp32", *, n_products: int = 0, stage_dtypes=()) -> np.ndarray:
    """Bound on |computed - exact| of a sum whose terms pass through at most h roundings.

    abs_sum: sum |t_i| of the exact terms (float64, any shape). n_products: how many rounded
    products may underflow (adds n_products * eta * (1 + gamma_h)). stage_dtypes: dtypes the
    inputs were rounded to before the products (one factor (1 + u) each).
    """
    spec = float_spec(dtype)
    g = gamma(h, spec)
    rel = 1.0 + g
    for s in stage_dtypes:
        rel *= 1.0 + float_spec(s).u
    rel -= 1.0
    a = np.asarray(abs_sum, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        b = a * rel + n_products * spec.eta * (1.0 + g)
    return _inflate(b, h + n_products)


def dot_bound(abs_sum, n: int, *, acc="fp32", order: str = "any", lanes: int = 8,
              products_rounded: bool = True, stage_dtypes=(), out=None, exact=None) -> np.ndarray:
    """Bound for an n-term dot product accumulated in `acc`, optionally cast to `out`.

    A convenience over `height` + `sum_bound` + `output_rounding`: abs_sum = sum |a_i b_i|
    (exact inputs), exact = the exact result (needed only when out is given).
    """
    h = height(n, order, lanes=lanes, products_rounded=products_rounded)
    b = sum_bound(abs_sum, h, acc, n_products=n if products_rounded else 0, stage_dtypes=stage_dtypes)
    if out is None:
        return b
    if exact is None:
        raise ValueError("output rounding needs the exact result (exact=...)")
    return b + output_rounding(np.abs(np.asarray(exact, dtype=np.float64)) + b, out)


def ulp(x, dtype) -> np.ndarray:
    """The spacing of `dtype` at magnitude |x| (subnormal spacing below the normal range)."""
    spec = float_spec(dtype)
    a = np.abs(np.asarray(x, dtype=np.float64))
    with np.errstate(divide="ignore"):
        e = np.floor(np.log2(np.where(a > 0, a, 1.0)))
    # log2 of an exact power of two is exact; elsewhere floor(log2) may be off by one just
    # below a binade boundary: correct it against exact powers of two.
    e = np.where(np.exp2(e) > a, e - 1, e)
    e = np.where(np.exp2(e + 1) <= a, e + 1, e)
    e = np.maximum(np.where(a > 0, e, spec.emin), spec.emin)
    return np.exp2(e - (spec.precision - 1))


def output_rounding(magnitude, out) -> np.ndarray:
    """Half an ulp of `out` at |magnitude| (the error of one RNE cast); inf past out's max."""
    spec = float_spec(out)
    m = np.asarray(magnitude, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        half = ulp(m, spec) / 2
        return np.where(m > spec.max, np.inf, half)
