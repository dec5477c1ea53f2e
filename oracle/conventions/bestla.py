"""BesTLA weight quantizers as intel/neural-speed's last code writes them ("bestla.neural_speed.*").

Read at intel/neural-speed bfd5d3c1 (2024-08-30, the repository's final commit; kernel_ref.h last
changed at 96520170), bestla/bestla/kernel_ref.h. The January-2024 rules (98ffee45, with
S4_FULLRANGE, removed by a90aea72 / PR #172) are bestla_98ffee4.py ("bestla.neural_speed_98ffee4.*").
All of it is source reading: no runnable upstream quantizer is here (auto-round-lib has none).

Integers, `quantize_f32_sign_int_rowblock(..., BTLA_DTYPE qtype)` (lines 1608-1720): S8 and
S1_CLIP..S7_CLIP all take the `sNauto_*` lambdas (the `s8_*` lambdas at 1623-1650 are dead code);
zero_points == nullptr selects symmetric. `kernel_wrapper.h` `QuantizeSignIntRowBlock` calls this
ref function on every ISA (the AVX512F call is commented out). With F = 2^(b-1), clip = [-F, F-1]:
- symmetric (1651-1671): max from FLT_MIN, min from FLT_MAX, absmax from 0 (std::max/min skip
  NaN); NVal = F - 0.5f, but when |max + min| >= absmax / F, NVal = -F if max + min > 0 else F
  (the unqualified `abs` is the float overload: libstdc++'s <stdlib.h>, included by bestla_utils.h,
  puts `using std::abs` in the global namespace); scale = absmax / NVal (negative when the
  positive side dominates), rscale = 1.f / scale, q = clip(cast<float, int8_t>(x * rscale)).
- asymmetric (1673-1692): max and min from 0, scale = (max - min) / (2^b - 1), rscale = 1.f /
  scale, zp = clip(cast<float, int>(-min * rscale) - F), q = clip(cast<float, int>(x * rscale) + zp).
bestla_utils.h (503-527): cast<float, int8_t> is roundf, min(., 127), max(., -128), (int8_t);
cast<float, int> is int(roundf(.)), no clamp: x86-64 gives INT_MIN for NaN and out-of-range,
and the int sums wrap (only reachable for an all-zero or subnormal-range group).
Dequantization (`decompress_kblock_s*_s8` then `decompress_kblock_s8_fp`): (q - zp) * scale in
float32. Storage: `pack` gives the int8 codes and int8 zero points the quantizer writes;
`compress_planes` models the bit planes `compress_{1..7}bit` / `compress_s8_s4` make of them.

4-bit floats (`quantize_f32_f4_rowblock`, 1802-1821; trees at 1234, 1258, 1373): bestla_f4.py.
`QuantizeF4RowBlock` runs avx512f::quantize_f32_f4_rowblock on AVX512F hosts (rcp14 reciprocal,
other threshold literals, `x - t <= 0` tests), which is not modelled: these are the ref path.
fp8 (`f8_mx_quantize` 1722, `quantize_f32_f8_rowblock_mxscale` 1764, `f8_to_fp32` 984): bestla_f8.py.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from oracle.conventions.bestla_f4 import VALUES, F4Tree
from oracle.conventions.bestla_f8 import register_f8
from oracle.conventions.convention import Convention, register
from oracle.rounding import c_float_to_int, half_away

__all__ = ["SignIntRowBlock", "cast_s8", "cast_int", "compress_planes", "decompress_planes"]

COMMIT = "bfd5d3c1"
_REF = f"intel/neural-speed bestla/bestla/kernel_ref.h @ {COMMIT}"
_FLT_MIN = np.float32(1.1754943508222875e-38)
_FLT_MAX = np.float32(3.4028234663852886e38)


def cast_s8(t: np.ndarray) -> np.ndarray:
    """bestla_utils.h `cast<float, int8_t>`: roundf, min(., 127.f), max(., -128.f), (int8_t).

    std::min/std::max return their first argument when a comparison with NaN is false, so NaN
    reaches the cast, which GCC on x86-64 compiles to cvttss2si: low byte of 0x80000000, 0.
    """
    r = half_away(t.astype(np.float32))
    r = np.where(np.float32(127) < r, np.float32(127), r)
    r = np.where(r < np.float32(-128), np.float32(-128), r)
    return c_float_to_int(r.astype(np.float32), 8)


def cast_int(t: np.ndarray) -> np.ndarray:
    """bestla_utils.h `cast<float, int>`: int(roundf(t)); NaN and out-of-range give INT_MIN (x86-64). int64."""
    return c_float_to_int(half_away(t.astype(np.float32)), 32).astype(np.int64)


def _wrap32(v: np.ndarray) -> np.ndarray:
    return v.astype(np.int64).astype(np.int32).astype(np.int64)


@dataclass(frozen=True)
class SignIntRowBlock(Convention):
    """`quantize_f32_sign_int_rowblock` at bfd5d3c1 for b = `bits` (see the module docstring)."""

    def _quantize_group(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        f32 = np.float32
        full = 1 << (self.bits - 1)
        x = x.astype(f32)
        with np.errstate(all="ignore"):
            if self.symmetric:
                mx = np.fmax.reduce(x, axis=1, initial=_FLT_MIN).astype(f32)
                mn = np.fmin.reduce(x, axis=1, initial=_FLT_MAX).astype(f32)
                absmax = np.fmax.reduce(np.abs(x), axis=1, initial=f32(0)).astype(f32)
                total = (mx + mn).astype(f32)
                lopsided = np.abs(total) >= (absmax / f32(full)).astype(f32)
                nval = np.where(lopsided, np.where(total > 0, f32(-full), f32(full)), f32(full - 1) + f32(0.5))
                scale = (absmax / nval.astype(f32)).astype(f32)
                rscale = (f32(1) / scale).astype(f32)
                q = cast_s8((x * rscale[:, None]).astype(f32)).astype(np.int64)
                return np.clip(q, -full, full - 1).astype(np.int32), scale, None
            mx = np.fmax.reduce(x, axis=1, initial=f32(0)).astype(f32)
            mn = np.fmin.reduce(x, axis=1, initial=f32(0)).astype(f32)
            scale = ((mx - mn).astype(f32) / f32((1 << self.bits) - 1)).astype(f32)
            rscale = (f32(1) / scale).astype(f32)
            zp = np.clip(_wrap32(cast_int(((f32(0) - mn) * rscale).astype(f32)) - full), -full, full - 1)
            q = _wrap32(cast_int((x * rscale[:, None]).astype(f32)) + zp[:, None])
        return np.clip(q, -full, full - 1).astype(np.int32), scale, zp.astype(np.int32)


# -- bit planes: compress_{1..7}bit, compress_s8_s4 (kernel_ref.h 155-361) -------------------------

_PLANES = {1: (1,), 2: (2,), 3: (2, 1), 4: (4,), 5: (4, 1), 6: (4, 2), 7: (4, 2, 1)}
_ALIGN = {1: 8, 2: 4, 3: 8, 4: 2, 5: 8, 6: 4, 7: 8}


def compress_planes(codes: np.ndarray, bits: int) -> dict[str, np.ndarray]:
    """Signed codes (rows, K) -> {"bit4", "bit2", "bit1"} uint8 planes as `compress_{bits}bit` writes them.

    Each code is stored unsigned, u = q + 2^(b-1); a plane of width w holds the next w bits of u
    (low bits first: bit4 = u & 15, then bit2, then bit1), element i at byte i // (8/w), bits
    (i % (8/w)) * w upward (GCC's bitfield order: a/x first, in the low bits). `compress_1bit`
    reads `srcptr[j + FullRange]` (j + 1) for slot e of every 8, so element 8m + 4 is replaced by
    element 8m + 1 (kernel_ref.h line 355); `compress_3bit` has the same expression with
    FullRange = 4, which is right. 4 bits is `compress_s8_s4` (nibble q + 8). K must be a multiple
    of 8 (1, 3, 5, 7 bits), 4 (2, 6) or 2 (4), which upstream asserts.
    """
    codes = np.asarray(codes).astype(np.int64)
    n, k = codes.shape
    if bits not in _PLANES or k % _ALIGN[bits]:
        raise ValueError(f"compress_planes: {bits} bits needs K % {_ALIGN.get(bits)} == 0, got K = {k}")
    u = codes + (1 << (bits - 1))
    if bits == 1:
        u = u.copy()
        u[:, 4::8] = u[:, 1::8]
    out, shift = {}, 0
    for w in _PLANES[bits]:
        field = (u >> shift) & ((1 << w) - 1)
        per = 8 // w
        slots = field.reshape(n, k // per, per) << (np.arange(per) * w)
        out[f"bit{w}"] = slots.sum(axis=2).astype(np.uint8)
        shift += w
    return out


def decompress_planes(planes: dict[str, np.ndarray], bits: int, k: int) -> np.ndarray:
    """`decompress_s{bits}_s8` (kernel_ref.h 412-527): the planes back to signed int8 codes, int32 (rows, K)."""
    u, shift = None, 0
    for w in _PLANES[bits]:
        p = planes[f"bit{w}"].astype(np.int64)
        per = 8 // w
        field = ((p[:, :, None] >> (np.arange(per) * w)) & ((1 << w) - 1)).reshape(p.shape[0], -1)[:, :k]
        u = field << shift if u is None else u | (field << shift)
        shift += w
    return (u - (1 << (bits - 1))).astype(np.int32)


# -- registrations -----------------------------------------------------------------------------------

_INT_SRC = (f"{_REF}: quantize_f32_sign_int_rowblock (lines 1608-1720; sNauto_calc_store_scale_and_quantv_sym "
            "1651-1671, _asym 1673-1692); bestla_utils.h cast<float,int8_t>/cast<float,int> (508, 524); "
            "kernel_wrapper.h QuantizeSignIntRowBlock (ref on every ISA); compress_{1..7}bit 155-361")
_INT_CONFIRMED = ("source reading (no runnable upstream quantizer); the (q - zp) * scale read-back of its codes "
                  "and signed zero points against auto-round-lib unpack_weight, and its woqgemm within the "
                  "derived bound, int2..int8 (tests/test_bestla_head.py)")

for _b in range(1, 9):
    _full = 1 << (_b - 1)
    register(SignIntRowBlock(
        name=f"bestla.neural_speed.int{_b}.sym", kind="weight", bits=_b, symmetric=True, group_size=32,
        scale_rule="absmax", divisor=_full - 0.5, qmin=-_full, qmax=_full - 1, rounding="half_away",
        zero_domain="fixed", packing="bytes", inverse_from="computed", source=_INT_SRC, confirmed=_INT_CONFIRMED,
        summary=f"BesTLA int{_b} sym ({'S8' if _b == 8 else f'S{_b}_CLIP'}) at {COMMIT}: s = absmax/{_full - 0.5}, "
                f"or absmax/-+{_full} when |max+min| >= absmax/{_full}; q = roundf(x*(1/s)) in "
                f"[{-_full}, {_full - 1}]; "
                "source reading"))
    register(SignIntRowBlock(
        name=f"bestla.neural_speed.int{_b}.asym", kind="weight", bits=_b, symmetric=False, group_size=32,
        scale_rule="range_with_zero", divisor=(1 << _b) - 1, qmin=-_full, qmax=_full - 1, rounding="half_away",
        zero_domain="int", packing="bytes", inverse_from="computed", source=_INT_SRC, confirmed=_INT_CONFIRMED,
        summary=f"BesTLA int{_b} asym at {COMMIT}: s = (max-min)/{(1 << _b) - 1} (0 in range), zp = roundf(-min/s) - "
                f"{_full}, q = roundf(x/s) + zp, both clipped to [{-_full}, {_full - 1}]; source reading"))

_F4_SRC = {"e2m1": "fp4_e2m1_quantize (1258) / fp4_e2m1_unpack (1300)",
           "nf4": "nf4_quantize (1373) / nf4_unpack (1325)",
           "bnb": "fp4_bnb_quantize (1234) / fp4_bnb_unpack (1209)"}
_F4_SUMMARY = {
    "e2m1": "BesTLA fp4 E2M1: scale = absmax, code from |x|/absmax > c/6 (float) for c in .03125 .53125 1.25 1.75 "
            "2.5 3.5 5, sign 8 for x < 0; values {0, .0625, 1, 1.5, 2, 3, 4, 6}/6",
    "nf4": "BesTLA NF4: scale = absmax, code from x/absmax against 15 float32 literals (not table midpoints); "
           "code 7 is -1.0, NaN -> code 7",
    "bnb": "BesTLA fp4 BNB: scale = absmax, code from |x|/absmax against 7 float32 literals, sign 8 for x < 0",
}
for _fmt, _name in (("e2m1", "fp4_e2m1"), ("nf4", "nf4"), ("bnb", "fp4_bnb")):
    register(F4Tree(
        name=f"bestla.neural_speed.{_name}", kind="weight", bits=4, symmetric=True, group_size=32,
        scale_rule="absmax", divisor=1, qmin=0, qmax=15, rounding="rne", zero_domain="fixed",
        eps=1.1754943508222875e-38, eps_on="statistic", values=VALUES[_fmt], inverse_from="computed",
        f4_format=_fmt, summary=f"{_F4_SUMMARY[_fmt]}; source reading (ref path, not the AVX512F one)",
        source=f"{_REF}: quantize_f32_f4_rowblock (1802), {_F4_SRC[_fmt]}", confirmed="source reading only"))

register_f8("bestla.neural_speed", f"{_REF}: f8_mx_quantize (1722), quantize_f32_f8_rowblock_mxscale (1764), "
            "f8_to_fp32 (984), decompress_kblock_f8_fp; bestla_utils.h get_mxfp_maxnorm",
            "source reading only: kernel_ref.h @ bfd5d3c1 (auto-round-lib 0.16 accepts fp8 weight types but "
            "its CPU repack leaves the code bytes unwritten, so it cannot confirm them)")
