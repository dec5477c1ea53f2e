"""BesTLA fp8 weights (F8_E4M3, F8_E5M2 with an e8m0 or fp32 block scale), shared by both eras.

intel/neural-speed bestla/bestla/kernel_ref.h `f8_mx_quantize`, `quantize_f32_f8_rowblock_mxscale`
and `f8_to_fp32` differ between 98ffee45 and bfd5d3c1 only in casts that do not change a result:
at bfd5d3c1 `v /= static_cast<float>(std::pow(2, scale))` divides by an exact power of two in
float (98ffee45 in double, then rounds: the same float), and the exponent-field arithmetic is
done in uint8/uint32 instead of double (the same wrapped byte on x86-64). So one model serves
both; bestla.py and bestla_98ffee4.py register it under their own names and sources.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from oracle.conventions.convention import Convention, QuantizedWeight, register

_F8 = {"e4m3": (4, 5), "e5m2": (5, 4)}  # ebits, quant mantissa bits (bestla_dtype_get_f8_ebits/_quant_mbits)


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


def register_f8(prefix: str, source: str, confirmed: str) -> None:
    """Register the four fp8 conventions (e4m3/e5m2 x e8m0/fp32 scale) under `prefix`."""
    for fmt, top in (("e4m3", 448), ("e5m2", 57344)):
        common = dict(kind="weight", bits=8, symmetric=True, group_size=32, divisor=1, qmin=0, qmax=255,
                      rounding="half_away", zero_domain="fixed", eps=1.1754943508222875e-38,
                      eps_on="statistic", packing="bytes", source=source, confirmed=confirmed)
        register(F8RowBlock(
            name=f"{prefix}.fp8_{fmt}.e8m0", scale_rule="mx_floor_log2", scale_dtype="e8m0", **common,
            summary=f"BesTLA fp8 {fmt}: e8m0 exponent floorf(log2f(amax)) - {8 if fmt == 'e4m3' else 15} "
                    f"(>= -127), half-away rounding, +-{top}, underflow to field 0 (0 -> 0x80), no subnormals "
                    "on decode; source reading"))
        register(F8RowBlock(
            name=f"{prefix}.fp8_{fmt}.fp32", scale_rule="absmax", scale_dtype="fp32",
            **{**common, "divisor": top},
            summary=f"BesTLA fp8 {fmt}: fp32 scale max(FLT_MIN, amax)/{top}, x/s in float, half-away rounding, "
                    "underflow to field 0 (0 -> 0x80), no subnormals on decode; source reading"))
