"""BesTLA weight quantizers as intel/neural-speed's reference kernels write them ("bestla.neural_speed.*").

Read from intel/neural-speed bestla/bestla/kernel_ref.h at commits 0157342 and 98ffee4 (identical in
these functions), `quantize_f32_sign_int_rowblock<S4_T>` and `quantize_f32_f4_rowblock<F4_T>`:
- S4_FULLRANGE symmetric: the signed value of the first largest |x| (strict `<`), scale = max / -8,
  rscale = scale ? 1/scale : 0, q = min(15, (int8)(x*rscale + 8.5f)); stored nibble q, dequant
  (nibble - 8) * scale (`get_s8<S4_FULLRANGE>`, `decompress_kblock_s4_fp`): GGML q4_0's rounding.
- S8 symmetric: scale = max(FLT_MIN, max|x|) / 127, q = cast<int8>(x * (1/scale)).
- F4 (E2M1, NF4) symmetric: scale = absmax, code = nearest table entry of x * (1/absmax).
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
Other integer widths (issue 3): these commits have NO quantizer for int1, int2, int3, int5, int6 or
int7, so no convention is named for them. `quantize_f32_sign_int_rowblock<S4_T>` dispatches only S8,
S4_CLIP (which takes the S8 path: int8 codes, compressed later by `compress_s8_s4`) and
S4_FULLRANGE, `default: assert(false)`; the only packers are `compress_s8_s4` and `compress_f4`.
bestla.h at 1775012 adds S3_CLIP to BTLA_DTYPE (no S1/S2/S5/S6/S7); the later kernel_wrapper.h
that calls `ref::compress_{1,2,3,5,6,7}bit` and the non-template
`ref::quantize_f32_sign_int_rowblock(..., qtype)` is stored, but no kernel_ref.h holding those
bodies is. What auto-round-lib 0.16 does confirm for int2, int3, int5, int6, int7 (int1 it rejects)
is the dequantization of given codes: signed q in [-2^(b-1), 2^(b-1) - 1], (q - zp) * fp32 scale,
bit-exact (tests/test_conventions_bestla.py); the scale, rounding and zero-point rules are unknown.
Newer BesTLA (neural-speed's last kernel_wrapper.h, and the copy inside auto-round-lib 0.16,
"ARK", whose kernel_wrapper.h at intel/auto-round 86f9804 calls
`ref::quantize_f32_sign_int_rowblock(..., BTLA_DTYPE qtype)` for int1..int8, S*_CLIP types)
is NOT modelled: its kernel_ref.h is not among the stored sources (intel/auto-round's bestla
copy lists no kernel_ref.h; intel/neural-speed's stored kernel_ref.h versions are 0157342 and
98ffee4 only; exact-string and semantic searches for its body found nothing), and auto-round-lib
exposes no float weight quantizer (only `repack_quantized_weight` of integer codes,
`unpack_weight`, GEMMs, attention and fp16/bf16 KV caches). NUMERICS.md's description of it
(NVal = 2^(b-1) - 0.5, +-8 by an asymmetry rule) stays an unconfirmed lead: a convention cannot
be named without its arithmetic. The fp8 weights (`quantize_f32_f8_rowblock_mxscale`, read at
98ffee4: double-precision pow steps, floorf(log2f), a bit-level repacking that maps exponent
underflow to field 0, and a decoder with no zero or subnormals) are `F8RowBlock` below; ARK
accepts fp8 weight types but its CPU repack leaves their code bytes unwritten (unpack returns
run-to-run varying floats), so they stay source reading. tests/test_conventions_bestla.py confirms against ARK the
dequantization rule ((nibble - 8 - zp) * fp32 scale, (q - zp) * scale) and the storage of the
codes and signed zero points. The packed storage interleaves N by the GEMM core's NTile, which
is not modelled (`pack` gives row-major nibbles and int8 zero points).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from oracle.conventions.convention import Convention, QuantizedWeight, register
from oracle.rounding import c_float_to_int, half_away

_SRC = "intel/neural-speed bestla/bestla/kernel_ref.h (commits 0157342, 98ffee4)"
_ONLY = "source reading only: intel/neural-speed bestla/bestla/kernel_ref.h:quantize_f32_sign_int_rowblock / quantize_f32_f4_rowblock (auto-round-lib has no float quantizer)"

# code -> value; codes 8..15 are the negatives of 0..7 (sign bit 3) for E2M1
_E2M1_BESTLA = tuple(v / 6 for v in (0, 0.0625, 1, 1.5, 2, 3, 4, 6)) + tuple(-v / 6 for v in (0, 0.0625, 1, 1.5, 2, 3, 4, 6))
_NF4 = (0.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
        -0.18477343022823334, -0.09105003625154495, -1.0, 0.07958029955625534, 0.16093020141124725,
        0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
        0.7229568362236023, 1.0)

register(Convention(
    name="bestla.neural_speed.int4_fullrange.sym", kind="weight", bits=4, symmetric=True, group_size=32,
    scale_rule="signed_absmax_first", divisor=-8, qmin=0, qmax=15, rounding="trunc", zero_domain="fixed",
    zero_offset=8, zp_added="before_round", round_bias=0.5, inverse_from="computed",
    source=f"{_SRC}: quantize_f32_sign_int_rowblock<S4_FULLRANGE> (s4_fullrange_calc_store_scale_and_quantv_sym)",
    summary="BesTLA int4 sym (S4_FULLRANGE): s = max/-8 (signed max|x|), trunc(x/s + 8.5) <= 15, fp32 scale",
    confirmed=_ONLY + "; its dequantization (nibble - 8) * scale against auto-round-lib unpack_weight "
                      "(tests/test_conventions_bestla.py)"))
register(Convention(
    name="bestla.neural_speed.int8.sym", kind="weight", bits=8, symmetric=True, group_size=32,
    scale_rule="absmax", divisor=127, qmin=-128, qmax=127, rounding="half_away", zero_domain="fixed",
    eps=1.1754943508222875e-38, eps_on="statistic", packing="bytes", inverse_from="computed",
    source=f"{_SRC}: quantize_f32_sign_int_rowblock<S8> (s8_calc_store_scale_and_quantv_sym)",
    summary="BesTLA int8 sym: s = max(FLT_MIN, absmax)/127, q = roundf(x * (1/s)) saturated",
    confirmed=_ONLY))
register(Convention(
    name="bestla.neural_speed.fp4_e2m1", kind="weight", bits=4, symmetric=True, group_size=32,
    scale_rule="absmax", divisor=1, qmin=0, qmax=15, rounding="rne", zero_domain="fixed",
    eps=1.1754943508222875e-38, eps_on="statistic", values=_E2M1_BESTLA, inverse_from="computed",
    source=f"{_SRC}: quantize_f32_f4_rowblock<F4_E2M1>, f4_quantize; dequant table F4_E2M1 in bestla_utils.h",
    summary="BesTLA fp4 E2M1: scale = absmax, code = nearest of {0, .0625, 1, 1.5, 2, 3, 4, 6}/6 (not OCP's 0.5)",
    confirmed=_ONLY))
register(Convention(
    name="bestla.neural_speed.nf4", kind="weight", bits=4, symmetric=True, group_size=32,
    scale_rule="absmax", divisor=1, qmin=0, qmax=15, rounding="rne", zero_domain="fixed",
    eps=1.1754943508222875e-38, eps_on="statistic", values=_NF4, inverse_from="computed",
    source=f"{_SRC}: quantize_f32_f4_rowblock<F4_NF4>, f4_quantize; table F4_NF4 in bestla_utils.h",
    summary="BesTLA NF4: scale = absmax, code = nearest NF4 table entry of x/absmax (code 7 is -1.0)",
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
            zp = _cast_s8(((f32(0) - mid) * rscale).astype(f32))
            t = ((x - mid[:, None]).astype(f32) * rscale[:, None]).astype(f32)
            if self.bits == 8:
                codes = _cast_s8(t)
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


def _cast_s8(t: np.ndarray) -> np.ndarray:
    """bestla_utils.h `cast<float, int8_t>`: roundf, min(., 127.f), max(., -128.f), (int8_t).

    std::min/std::max return their first argument when a comparison with NaN is false, so NaN
    reaches the cast, which GCC on x86-64 compiles to cvttss2si: low byte of 0x80000000, 0.
    """
    r = half_away(t.astype(np.float32))
    r = np.where(np.float32(127) < r, np.float32(127), r)
    r = np.where(r < np.float32(-128), np.float32(-128), r)
    return c_float_to_int(r.astype(np.float32), 8)


_ASYM_ONLY = ("source reading only: intel/neural-speed bestla/bestla/kernel_ref.h (0157342, 98ffee4) "
              "quantize_f32_sign_int_rowblock, bestla_utils.h cast<float,int8_t>; dequantization and "
              "storage of its codes and signed zero points against auto-round-lib unpack_weight "
              "(tests/test_conventions_bestla.py)")
register(MidrangeAsym(
    name="bestla.neural_speed.int8.asym", kind="weight", bits=8, symmetric=False, group_size=32,
    scale_rule="range_with_zero", divisor=255, qmin=-128, qmax=127, rounding="half_away", zero_domain="int",
    packing="bytes", inverse_from="computed",
    source=f"{_SRC}: quantize_f32_sign_int_rowblock<S8> (s8_calc_store_scale_and_quantv_asym)",
    summary="BesTLA int8 asym: s = (max-min)/255 (0 in range), q = roundf((x - (max+min)/2)/s), zp = roundf(-mid/s)",
    confirmed=_ASYM_ONLY))
register(MidrangeAsym(
    name="bestla.neural_speed.int4_fullrange.asym", kind="weight", bits=4, symmetric=False, group_size=32,
    scale_rule="range_with_zero", divisor=-16, qmin=0, qmax=15, rounding="trunc", zero_domain="int",
    inverse_from="computed",
    source=f"{_SRC}: quantize_f32_sign_int_rowblock<S4_FULLRANGE> (s4_fullrange_calc_store_scale_and_quantv_asym)",
    summary="BesTLA int4 asym: s = signed range/-16, q = trunc((x - mid)/s + 8.5) <= 15, zp = roundf(-mid/s) signed",
    confirmed=_ASYM_ONLY))


# -- fp8 (F8_E4M3, F8_E5M2) with e8m0 or fp32 block scales -------------------------------------

_F8 = {"e4m3": (4, 5), "e5m2": (5, 4)}  # ebits, quant mantissa bits (bestla_dtype_get_f8_ebits/_quant_mbits)
_F8_SRC = (f"{_SRC}: quantize_f32_f8_rowblock_mxscale<F8_T> and f8_mx_quantize (encode), f8_to_fp32 and "
           "decompress_kblock_f8_fp (decode); bestla_utils.h get_mxfp_maxnorm; bestla_prologue_b.h stores an "
           "e8m0 scale as static_cast<int8_t>(exponent)")
_F8_ONLY = ("source reading only: intel/neural-speed bestla/bestla/kernel_ref.h:quantize_f32_f8_rowblock_mxscale "
            "/ f8_mx_quantize / f8_to_fp32 @98ffee4 (auto-round-lib 0.16 accepts fp8 weight types but its CPU "
            "repack leaves the code bytes unwritten, so it cannot confirm them)")


def f8_max_norm(fmt: str) -> np.float32:
    """get_mxfp_maxnorm: 2^8 * 1.75 = 448 (e4m3), 2^15 * 1.75 = 57344 (e5m2), as float."""
    ebits, qm = _F8[fmt]
    if fmt == "e4m3":
        return np.float32(2.0 ** 2 ** (ebits - 1) * 1.75)
    return np.float32(2.0 ** (2 ** (ebits - 1) - 1) * ((2.0 ** (qm - 1) - 1) / 2.0 ** (qm - 2)))


def floor_log2f(a: np.ndarray) -> np.ndarray:
    """floorf(log2f(a)) for positive float32 a (NaN stays NaN), as glibc computes it.

    The exact floor is frexp's exponent - 1; log2f's float32 result rounds up to the next integer
    e when a lies just below 2^e and log2(a) is within half a float32 ulp of e (for |e| >= 3,
    2^e * (1 - 2^-24) gives e). glibc's log2f is correctly rounded there (its double-precision
    evaluation is far from any float32 midpoint near an integer), which the float32 rounding of
    a float64 log2 reproduces; tests check it against libm's own log2f on every boundary.
    """
    a = np.asarray(a, dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        _, e = np.frexp(a)
        up = np.log2(a.astype(np.float64)).astype(np.float32) >= e.astype(np.float32)
    out = (e - 1 + up).astype(np.float64)
    return np.where(np.isnan(a), np.nan, np.where(np.isinf(a), np.inf, out))


def f8_encode(v: np.ndarray, fmt: str) -> np.ndarray:
    """f8_mx_quantize after the division by the scale: float32 v (already divided) -> uint8 codes.

    In double: private exponent max(floor(log2f(|v| or 1)), 2 - 2^(ebits-1)), round half away on
    a grid of 2^(pe - mbits), saturate to +-max_norm; then the float32's sign, its exponent
    rebiased by 2^(ebits-1) - 1 (any result outside the field, underflow included, becomes 0: the
    uint8 wrap then the `> 15` / `> 31` test) and its top mantissa bits. Zero takes the `v > 0 ?
    1 : -1` sign, so 0 (and -0) encode as sign 1, field 0: code 0x80. NaN (ignored by the scale's
    std::max) encodes from its float32 bits with the sign cleared by std::abs and x86's NaN
    propagation, e.g. 0x04 (e4m3) / 0x02 (e5m2) for the default NaN; compiler-dependent (a
    folded `-x` for `-1 * x` would set the sign), not a contract.
    """
    ebits, qm = _F8[fmt]
    sm = 7 - ebits
    v = np.asarray(v, dtype=np.float32)
    nan = np.isnan(v)
    with np.errstate(all="ignore"):
        pe = floor_log2f(np.where(v == 0, np.float32(1), np.abs(v)))
        pe = np.where(pe < 2 - 2 ** (ebits - 1), np.float64(2 - 2 ** (ebits - 1)), pe)
        w = (v.astype(np.float64) / np.exp2(pe) * 2.0 ** (qm - 2)).astype(np.float32)
        r = np.where(w > 0, 1.0, -1.0) * np.floor(np.abs(w).astype(np.float64) + 0.5)
        r = r.astype(np.float32)
        q = (r.astype(np.float64) / 2.0 ** (qm - 2) * np.exp2(pe)).astype(np.float32)
    top = f8_max_norm(fmt)
    q = np.where(q < -top, -top, np.where(top < q, top, q)).astype(np.float32)
    bits = q.view(np.uint32).astype(np.int64)
    bits = np.where(nan, (v.view(np.uint32).astype(np.int64) | 0x00400000) & 0x7FFFFFFF, bits)
    field = (bits >> 23 & 0xFF) - 127 + 2 ** (ebits - 1) - 1
    field = np.where((field >= 0) & (field < 2 ** ebits), field, 0)
    code = (bits >> 31) << 7 | field << sm | (bits >> (23 - sm)) & ((1 << sm) - 1)
    return code.astype(np.uint8)


def f8_decode(codes: np.ndarray, fmt: str) -> np.ndarray:
    """f8_to_fp32: sign, field as a NORMAL exponent field - (2^(ebits-1) - 1), mantissa bits.

    No zero, subnormal, inf or NaN: field 0 is 2^-7 (e4m3) / 2^-15 (e5m2) times 1.m, so code
    0x80 (what 0 encodes to) reads back as -2^-7 / -2^-15, and e4m3 0x7f reads 480.
    """
    ebits, _ = _F8[fmt]
    sm = 7 - ebits
    c = np.asarray(codes).astype(np.uint32) & 0xFF
    e = ((c & 0x7F) >> sm) - 2 ** (ebits - 1) + 1 + 127
    bits = (c << 24 & 0x80000000) | (e << 23) | ((c << (23 - sm)) & 0x007FFFFF)
    return bits.astype(np.uint32).view(np.float32)


@dataclass(frozen=True)
class F8RowBlock(Convention):
    """BesTLA fp8 weights: `quantize_f32_f8_rowblock_mxscale` with an e8m0 or an fp32 block scale.

    e8m0: amax = max(FLT_MIN, max|x|) (NaN ignored), exponent = max(-127, floorf(log2f(amax)) -
    emax) with emax 8 (e4m3) / 15 (e5m2), elements v = float(x / 2^exponent) in double. fp32:
    scale = amax / max_norm in float, v = x / scale in float. Codes from `f8_encode`; dequant
    (`decompress_kblock_f8_fp`, ref) f8_decode(code) * float(2^exponent) or * scale, in float.
    The AVX2/AVX512 decoders add an e8m0 exponent into the float's exponent field instead of
    multiplying: the same wherever the product is a normal float32 (not modelled below that).
    `scales` hold the scale's value (2^exponent); `pack` stores an e8m0 scale as BesTLA's int8
    exponent. Groups with an infinite |x| give an infinite scale (no int8 exponent: out of contract).
    """

    @property
    def f8_format(self) -> str:
        return "e5m2" if "e5m2" in self.name else "e4m3"

    def _quantize_group(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, None]:
        fmt = self.f8_format
        ebits, _ = _F8[fmt]
        x = x.astype(np.float32)
        amax = np.fmax.reduce(np.abs(x), axis=1, initial=np.float32(self.eps)).astype(np.float32)
        with np.errstate(all="ignore"):
            if self.scale_dtype == "e8m0":
                emax = 2 ** (ebits - 1) - (1 if fmt == "e5m2" else 0)
                ex = floor_log2f(amax) - emax
                ex = np.where(ex < -127, -127.0, ex)
                v = (x.astype(np.float64) / np.exp2(ex)[:, None]).astype(np.float32)
                stored = np.exp2(ex).astype(np.float32)
            else:
                stored = (amax / f8_max_norm(fmt)).astype(np.float32)
                v = (x / stored[:, None]).astype(np.float32)
        return f8_encode(v, fmt).astype(np.int32), stored, None

    def dequantize(self, qw: QuantizedWeight) -> np.ndarray:
        codes = np.asarray(qw.codes)
        out = np.empty(codes.shape, dtype=np.float32)
        for g, (s, e) in enumerate(self.groups(codes.shape[1])):
            out[:, s:e] = f8_decode(codes[:, s:e], self.f8_format) * qw.scales[:, g:g + 1].astype(np.float32)
        return out

    def pack(self, qw: QuantizedWeight) -> dict[str, np.ndarray]:
        """uint8 codes; scales fp32, or the int8 exponent BesTLA keeps for e8m0 (`utils::f8`)."""
        if self.scale_dtype == "fp32":
            return {"weight": qw.codes.astype(np.uint8), "scales": qw.scales.astype(np.float32)}
        s = qw.scales.astype(np.float32)
        if not np.all(np.isfinite(s) & (s > 0)):
            raise ValueError(f"{self.name}: a scale is not a finite power of two (a group held inf)")
        return {"weight": qw.codes.astype(np.uint8), "scales": (np.frexp(s)[1] - 1).astype(np.int8)}

    def unpack(self, packed: dict[str, np.ndarray], k: int) -> QuantizedWeight:
        s = packed["scales"]
        scales = s.astype(np.float32) if self.scale_dtype == "fp32" else np.ldexp(np.float32(1), s.astype(np.int32)).astype(np.float32)
        return QuantizedWeight(packed["weight"].astype(np.int32)[:, :k], scales, None, self.name)


for _fmt, _top in (("e4m3", 448), ("e5m2", 57344)):
    register(F8RowBlock(
        name=f"bestla.neural_speed.fp8_{_fmt}.e8m0", kind="weight", bits=8, symmetric=True, group_size=32,
        scale_rule="mx_floor_log2", divisor=1, qmin=0, qmax=255, rounding="half_away", zero_domain="fixed",
        eps=1.1754943508222875e-38, eps_on="statistic", scale_dtype="e8m0", packing="bytes", source=_F8_SRC,
        summary=f"BesTLA fp8 {_fmt}: e8m0 exponent floorf(log2f(amax)) - {8 if _fmt == 'e4m3' else 15} (>= -127), "
                f"half-away rounding, +-{_top}, underflow to field 0 (0 -> 0x80), no subnormals on decode",
        confirmed=_F8_ONLY))
    register(F8RowBlock(
        name=f"bestla.neural_speed.fp8_{_fmt}.fp32", kind="weight", bits=8, symmetric=True, group_size=32,
        scale_rule="absmax", divisor=_top, qmin=0, qmax=255, rounding="half_away", zero_domain="fixed",
        eps=1.1754943508222875e-38, eps_on="statistic", scale_dtype="fp32", packing="bytes", source=_F8_SRC,
        summary=f"BesTLA fp8 {_fmt}: fp32 scale max(FLT_MIN, amax)/{_top}, x/s in float, half-away rounding, "
                "underflow to field 0 (0 -> 0x80), no subnormals on decode",
        confirmed=_F8_ONLY))
