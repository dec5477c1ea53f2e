"""BesTLA 4-bit float weights (F4_E2M1, F4_NF4, F4_BNB): comparison trees, not nearest value.

intel/neural-speed bestla/bestla/kernel_ref.h `fp4_e2m1_quantize`, `nf4_quantize` and
`fp4_bnb_quantize` pick a code by comparing x * (1/absmax) with float32 literals in a binary
tree of strict `>` tests. The literals are not the midpoints of the float32 table: e2m1 uses
`c.f / 6` computed in float (5.f / 6 = 0.83333331f, while the midpoint of 4/6 and 6/6 rounds to
0.83333337f), NF4 and BNB use decimal literals. Because the thresholds are sorted and every test
is `x > t`, the tree's answer is the number of thresholds below x, mapped through a per-format
code order; NaN fails every test and gets the order's first code. E2M1 and BNB compare |x| and
add the sign bit 8 for `x < 0` (so -0.0 and NaN get sign 0); NF4 compares the signed x.
These bodies are the same at 98ffee45 (`fabsf`) and bfd5d3c1 (`fabs` of a float, the same value).
The scale is absmax from FLT_MIN (`std::max` skips NaN), stored in fp32; dequantization is the
float32 table value (sign applied by `* -1.0f`, so code 8 reads -0.0) times the scale.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from oracle.conventions.convention import Convention

__all__ = ["F4Tree", "TREES", "VALUES", "tree_codes"]

_F = np.float32
_FLT_MIN = np.float32(1.1754943508222875e-38)


def c_float(literal: str) -> np.float32:
    """A C `...f` literal: the decimal rounded once to float32 (ties to even).

    Not np.float32(float(literal)): going through float64 rounds twice, and two NF4 thresholds
    (0.8614784181118011f, 0.5016634166240692f, midpoints of the double table) sit so close to a
    float32 tie that the float64 value lands on it and the second rounding goes the wrong way.
    """
    exact = Fraction(literal)
    near = _F(float(exact))
    cands = (np.nextafter(near, _F(-np.inf)), near, np.nextafter(near, _F(np.inf)))
    return min(cands, key=lambda v: (abs(Fraction(float(v)) - exact), int(np.array(v).view(np.uint32)) & 1))


def _literals(*texts: str) -> np.ndarray:
    return np.array([c_float(t) for t in texts], dtype=np.float32)

# format -> (sorted float32 thresholds, code for "count of thresholds below", signed-magnitude?)
TREES: dict[str, tuple[np.ndarray, tuple[int, ...], bool]] = {
    "e2m1": (np.array([_F(c) / _F(6) for c in (0.03125, 0.53125, 1.25, 1.75, 2.5, 3.5, 5.0)], dtype=np.float32),
             tuple(range(8)), True),
    "bnb": (_literals("0.00260417", "0.0859375", "0.20833333", "0.29166667", "0.4166667", "0.583333", "0.8333333"),
            (0b0000, 0b0001, 0b0110, 0b0111, 0b0100, 0b0101, 0b0010, 0b0011), True),
    "nf4": (_literals("-0.8480964004993439", "-0.6106329262256622", "-0.4599952697753906", "-0.33967943489551544",
                      "-0.23460740596055984", "-0.13791173323988914", "-0.045525018125772476", "0.03979014977812767",
                      "0.1202552504837513", "0.2035212516784668", "0.2920137718319893", "0.3893125355243683",
                      "0.5016634166240692", "0.6427869200706482", "0.8614784181118011"),
            (0b0111, 0b0001, 0b0010, 0b0011, 0b0100, 0b0101, 0b0110, 0b0000,
             0b1000, 0b1001, 0b1010, 0b1011, 0b1100, 0b1101, 0b1110, 0b1111), False),
}

# code -> float32 value of fp4_e2m1_unpack / fp4_bnb_unpack / nf4_unpack (before the scale)
_E2M1_MAG = (0.0, 0.0625 / 6, 1 / 6, 1.5 / 6, 2 / 6, 3 / 6, 4 / 6, 1.0)
_BNB_MAG = (0.0, 5.208333333e-03, 0.66666667, 1.0, 0.33333333, 0.5, 0.16666667, 0.25)
VALUES: dict[str, tuple[float, ...]] = {
    "e2m1": _E2M1_MAG + tuple(-v for v in _E2M1_MAG),
    "bnb": _BNB_MAG + tuple(-v for v in _BNB_MAG),
    "nf4": (0.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
            -0.18477343022823334, -0.09105003625154495, -1.0, 0.07958029955625534, 0.16093020141124725,
            0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
            0.7229568362236023, 1.0),
}


def tree_codes(t: np.ndarray, fmt: str) -> np.ndarray:
    """The code the comparison tree of `fmt` gives each float32 t (already divided by absmax)."""
    thresholds, order, signed_magnitude = TREES[fmt]
    t = np.asarray(t, dtype=np.float32)
    m = np.abs(t) if signed_magnitude else t
    below = (m[..., None] > thresholds).sum(axis=-1)  # NaN: no test passes, count 0
    codes = np.asarray(order, dtype=np.int32)[below]
    if signed_magnitude:
        codes = codes + np.where(t < 0, 8, 0)
    return codes.astype(np.int32)


@dataclass(frozen=True)
class F4Tree(Convention):
    """`quantize_f32_f4_rowblock<F4_T>` (ref path): absmax scale, `f4_quantize` tree on x * (1/absmax)."""

    f4_format: str = "e2m1"

    def _quantize_group(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, None]:
        x = x.astype(np.float32)
        absmax = np.fmax.reduce(np.abs(x), axis=1, initial=_FLT_MIN).astype(np.float32)
        with np.errstate(all="ignore"):
            t = (x * (np.float32(1) / absmax)[:, None]).astype(np.float32)
        return tree_codes(t, self.f4_format), absmax, None
