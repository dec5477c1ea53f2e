"""BesTLA weight quantizers as intel/neural-speed wrote them in January 2024 ("bestla.neural_speed_98ffee4.*").

Read from intel/neural-speed bestla/bestla/kernel_ref.h at 98ffee45 (2024-01-31; 0157342 is
identical in these functions), `quantize_f32_sign_int_rowblock<S4_T>` (line 828) and
`quantize_f32_f4_rowblock<F4_T>` (1013). a90aea72 (PR #172, 2024-03-18) replaced these integer
rules and removed S4_FULLRANGE; the final rules are bestla.py ("bestla.neural_speed.*"). All of
it is source reading; auto-round-lib (a later BesTLA) confirms only how given codes read back.
- S4_FULLRANGE symmetric: the signed value of the first largest |x| (strict `<`), scale = max / -8,
  rscale = scale ? 1/scale : 0, q = min(15, (int8)(x*rscale + 8.5f)); stored nibble q, dequant
  (nibble - 8) * scale (`get_s8<S4_FULLRANGE>`, `decompress_kblock_s4_fp`): GGML q4_0's rounding.
- S8 symmetric: scale = max(FLT_MIN, max|x|) / 127, q = cast<int8>(x * (1/scale)).
- S8 asymmetric (`s8_calc_store_scale_and_quantv_asym`): max and min start at 0 (the range
  holds 0), scale = (max - min) / 255, rscale = 1/scale, fmedium = (max + min) / 2 (float32),
  zp = cast<int8>((0 - fmedium) * rscale), q = cast<int8>((x - fmedium) * rscale), where
  `utils::cast<float, int8_t>` (bestla_utils.h) is roundf then clamp to [-128, 127]; dequant
  (`decompress_kblock_s8_fp`) (q - zp) * scale.
- S4_FULLRANGE asymmetric (`s4_fullrange_calc_store_scale_and_quantv_asym`): max/min from 0,
  range = |max| < |min| ? min - max : max - min (signed), scale = range / -16, rscale = scale ?
  1/scale : 0, fmedium and zp as for S8, q = min(15, (int8)((x - fmedium)*rscale + 8.5f));
  stored nibble q (`x << 4` then `int4x2::convert`, which gives back q's low nibble), dequant
  (`decompress_kblock_s4_fp`) (q - 8 - zp) * scale.
- F4 (E2M1 `fp4_e2m1_quantize` line 477, NF4 `nf4_quantize` 592): the comparison trees of
  bestla_f4.py, the same bodies as at bfd5d3c1.
- fp8 (`quantize_f32_f8_rowblock_mxscale` 976, `f8_mx_quantize` 934, `f8_to_fp32` 288): bestla_f8.py.
These commits have no quantizer for int1, int2, int3, int5, int6 or int7: the dispatch knows only
S8, S4_CLIP (the S8 path: int8 codes, compressed later by `compress_s8_s4`) and S4_FULLRANGE,
`default: assert(false)`. The packed storage interleaves N by the GEMM core's NTile, which is
not modelled (`pack` gives row-major nibbles and int8 zero points).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from oracle.conventions.bestla import cast_s8
from oracle.conventions.bestla_f4 import VALUES, F4Tree
from oracle.conventions.bestla_f8 import register_f8
from oracle.conventions.convention import Convention, QuantizedWeight, register
from oracle.rounding import c_float_to_int

PREFIX = "bestla.neural_speed_98ffee4"
_SRC = "intel/neural-speed bestla/bestla/kernel_ref.h @ 98ffee45 (0157342 identical here)"
_ONLY = ("source reading only: intel/neural-speed bestla/bestla/kernel_ref.h @ 98ffee45 "
         "quantize_f32_sign_int_rowblock / quantize_f32_f4_rowblock (auto-round-lib has no float quantizer)")

register(Convention(
    name=f"{PREFIX}.int4_fullrange.sym", kind="weight", bits=4, symmetric=True, group_size=32,
    scale_rule="signed_absmax_first", divisor=-8, qmin=0, qmax=15, rounding="trunc", zero_domain="fixed",
    zero_offset=8, zp_added="before_round", round_bias=0.5, inverse_from="computed",
    source=f"{_SRC}: quantize_f32_sign_int_rowblock<S4_FULLRANGE> (s4_fullrange_calc_store_scale_and_quantv_sym)",
    summary="BesTLA Jan-2024 int4 sym (S4_FULLRANGE, removed upstream in a90aea72): s = max/-8 (signed max|x|), "
            "trunc(x/s + 8.5) <= 15, fp32 scale; source reading",
    confirmed=_ONLY + "; its dequantization (nibble - 8) * scale against auto-round-lib unpack_weight "
                      "(tests/test_conventions_bestla.py)"))
register(Convention(
    name=f"{PREFIX}.int8.sym", kind="weight", bits=8, symmetric=True, group_size=32,
    scale_rule="absmax", divisor=127, qmin=-128, qmax=127, rounding="half_away", zero_domain="fixed",
    eps=1.1754943508222875e-38, eps_on="statistic", packing="bytes", inverse_from="computed",
    source=f"{_SRC}: quantize_f32_sign_int_rowblock<S8> (s8_calc_store_scale_and_quantv_sym)",
    summary="BesTLA Jan-2024 int8 sym: s = max(FLT_MIN, absmax)/127, q = roundf(x * (1/s)) saturated; source reading",
    confirmed=_ONLY))
for _fmt, _name, _line in (("e2m1", "fp4_e2m1", 477), ("nf4", "nf4", 592)):
    register(F4Tree(
        name=f"{PREFIX}.{_name}", kind="weight", bits=4, symmetric=True, group_size=32,
        scale_rule="absmax", divisor=1, qmin=0, qmax=15, rounding="rne", zero_domain="fixed",
        eps=1.1754943508222875e-38, eps_on="statistic", values=VALUES[_fmt], inverse_from="computed", f4_format=_fmt,
        source=f"{_SRC}: quantize_f32_f4_rowblock<F4_{_fmt.upper()}> (1013), f4_quantize -> line {_line}",
        summary=f"BesTLA Jan-2024 {_name}: the bfd5d3c1 comparison tree (bestla_f4.py), absmax scale; source reading",
        confirmed=_ONLY))


@dataclass(frozen=True)
class MidrangeAsym(Convention):
    """BesTLA's asymmetric paths: codes of (x - fmedium) * rscale, a roundf'd signed zero point.

    The field engine has no mid-range offset, so this subclass computes one group itself; the
    fields still describe the result (range_with_zero statistic, divisor, clamp, layout).
    """

    def _quantize_group(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        f32 = np.float32
        x = x.astype(f32)
        # std::max(maxval, v) from 0 keeps maxval when v is NaN, as fmax does
        mx = np.fmax.reduce(x, axis=1, initial=f32(0)).astype(f32)
        mn = np.fmin.reduce(x, axis=1, initial=f32(0)).astype(f32)
        with np.errstate(all="ignore"):
            if self.bits == 8:
                scale = ((mx - mn).astype(f32) / f32(255)).astype(f32)
                rscale = (f32(1) / scale).astype(f32)
            else:
                rng = np.where(np.abs(mx) < np.abs(mn), mn - mx, mx - mn).astype(f32)
                scale = (rng / f32(-16)).astype(f32)
                rscale = np.where(scale != 0, f32(1) / np.where(scale != 0, scale, f32(1)), f32(0)).astype(f32)
            mid = ((mx + mn).astype(f32) / f32(2)).astype(f32)
            zp = cast_s8(((f32(0) - mid) * rscale).astype(f32))
            t = ((x - mid[:, None]).astype(f32) * rscale[:, None]).astype(f32)
            if self.bits == 8:
                codes = cast_s8(t)
            else:
                codes = np.minimum(15, c_float_to_int((t + f32(8.5)).astype(f32), 8))
        return codes.astype(np.int32), scale, zp.astype(np.int32)

    def dequantize(self, qw: QuantizedWeight) -> np.ndarray:
        """(q - 8 - zp) * scale for S4 (`decompress_kblock_s4_fp`), (q - zp) * scale for S8."""
        if self.bits == 8:
            return super().dequantize(qw)
        codes = np.asarray(qw.codes)
        out = np.empty(codes.shape, dtype=np.float32)
        for g, (s, e) in enumerate(self.groups(codes.shape[1])):
            q = (codes[:, s:e] - 8).astype(np.float32)
            out[:, s:e] = (q - qw.zeros[:, g:g + 1].astype(np.float32)) * qw.scales[:, g:g + 1].astype(np.float32)
        return out

    def pack(self, qw: QuantizedWeight) -> dict[str, np.ndarray]:
        """As Convention.pack, but zero points are always signed int8 (BesTLA's `int8_t* zero_points`)."""
        out = super().pack(QuantizedWeight(qw.codes, qw.scales, None, qw.convention))
        out["zeros"] = qw.zeros.astype(np.int8)
        return out

    def unpack(self, packed: dict[str, np.ndarray], k: int) -> QuantizedWeight:
        qw = super().unpack({key: v for key, v in packed.items() if key != "zeros"}, k)
        return QuantizedWeight(qw.codes, qw.scales, packed["zeros"].astype(np.int8).astype(np.int32), self.name)



_ASYM_ONLY = ("source reading only: intel/neural-speed bestla/bestla/kernel_ref.h @ 98ffee45 "
              "quantize_f32_sign_int_rowblock, bestla_utils.h cast<float,int8_t>; dequantization and "
              "storage of its codes and signed zero points against auto-round-lib unpack_weight "
              "(tests/test_conventions_bestla.py)")
register(MidrangeAsym(
    name=f"{PREFIX}.int8.asym", kind="weight", bits=8, symmetric=False, group_size=32,
    scale_rule="range_with_zero", divisor=255, qmin=-128, qmax=127, rounding="half_away", zero_domain="int",
    packing="bytes", inverse_from="computed",
    source=f"{_SRC}: quantize_f32_sign_int_rowblock<S8> (s8_calc_store_scale_and_quantv_asym)",
    summary="BesTLA Jan-2024 int8 asym: s = (max-min)/255 (0 in range), q = roundf((x - (max+min)/2)/s), "
            "zp = roundf(-mid/s); source reading",
    confirmed=_ASYM_ONLY))
register(MidrangeAsym(
    name=f"{PREFIX}.int4_fullrange.asym", kind="weight", bits=4, symmetric=False, group_size=32,
    scale_rule="range_with_zero", divisor=-16, qmin=0, qmax=15, rounding="trunc", zero_domain="int",
    inverse_from="computed",
    source=f"{_SRC}: quantize_f32_sign_int_rowblock<S4_FULLRANGE> (s4_fullrange_calc_store_scale_and_quantv_asym)",
    summary="BesTLA Jan-2024 int4 asym: s = signed range/-16, q = trunc((x - mid)/s + 8.5) <= 15, "
            "zp = roundf(-mid/s) signed; source reading",
    confirmed=_ASYM_ONLY))

register_f8(PREFIX, f"{_SRC}: quantize_f32_f8_rowblock_mxscale<F8_T> and f8_mx_quantize (encode), f8_to_fp32 and "
            "decompress_kblock_f8_fp (decode); bestla_utils.h get_mxfp_maxnorm; bestla_prologue_b.h stores an "
            "e8m0 scale as static_cast<int8_t>(exponent)",
            "source reading only: intel/neural-speed bestla/bestla/kernel_ref.h @ 98ffee45 (auto-round-lib 0.16 "
            "accepts fp8 weight types but its CPU repack leaves the code bytes unwritten, so it cannot confirm them)")
