"""One frozen object per real-world quantization convention, and the engine that runs it.

Shipped quantizers differ in small choices that change bytes: which statistic sets the scale
(|x| max, the signed value of the largest |x|, max-min with or without 0 in the range), what it
is divided by (7, 7.5, -8, 15, 127, 127.5, 255), in which dtype that arithmetic happens and when
the scale is rounded to its storage dtype, whether codes come from `x * (1/s)` or `x / s`, how
they are rounded, where the zero point is added (before or after rounding), and how the codes
are laid out in bytes. A `Convention` names each of these choices in a field; `quantize`,
`dequantize`, `pack` and `unpack` follow the fields, so a convention's behaviour is its fields.

Groups run along K (the last axis). `group_size=-1` is one group per row (per output channel
for weights, per token for activations); `group_size=0` is one group for the whole tensor.
When K is not a multiple of the group size the last group is partial: its statistics use only
its real elements, as every quantizer modelled here does (ONNX Runtime's tooling pads with
zeros first; for its rules, which include 0 in the range or take the largest |x|, the result is
the same). Layouts that store whole groups (`pad_groups`) fill the missing codes with the code
of 0.0, the zero point, which is what quantizing those padded zeros gives.

Arithmetic is float32 unless `compute_dtype` says otherwise; a bf16/fp16 compute dtype is
modelled as torch's CPU kernels do it: each operation in float32, rounded to the dtype after it.
NaN policy: NaN propagates through max/min into the scale and codes are then whatever the
rounding of NaN gives after the clamp (numpy's, not a kernel's): conventions do not define it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import ml_dtypes
import numpy as np

from oracle import floats, rounding

__all__ = ["Convention", "QuantizedWeight", "register", "REGISTRY"]

REGISTRY: dict[str, "Convention"] = {}

_COMPUTE = {"fp32": np.float32, "bf16": ml_dtypes.bfloat16, "fp16": np.float16}
_STAT_RULES = {"absmax", "signed_absmax_first", "signed_absmax_min_ties", "range", "range_with_zero",
               "mx_floor_log2", "fbgemm_minmax", "nvfp4"}
_INVERSES = {"reciprocal", "divide", "divisor_over_stat"}
_ZERO_DOMAINS = {"fixed", "int", "int_clamp_then_round", "float", "float_from_min"}
_PACKINGS = {"k_adjacent", "bytes", "tinygemm_cpu_input"}
_SCALE_OPS = {"divide", "times_reciprocal"}


@dataclass(frozen=True)
class QuantizedWeight:
    """Codes in the convention's storage domain, scales holding the stored values exactly.

    codes: int32 (rows, K). scales: float32 (rows, n_groups), the value after rounding to the
    scale dtype. zeros: (rows, n_groups) int32 for integer zero points, float32 for float
    zeros (tinygemm), None when the zero point is the fixed `zero_offset`. tensor_scale: the
    float32 second-level scale of a two-level format (NVFP4), else None.
    """

    codes: np.ndarray
    scales: np.ndarray
    zeros: np.ndarray | None
    convention: str
    tensor_scale: np.float32 | None = None


@dataclass(frozen=True)
class Convention:
    """A named quantization convention; see the module docstring for the meaning of the fields."""

    name: str
    kind: str  # "weight" or "activation"
    bits: int
    symmetric: bool
    group_size: int  # >0 elements along K; -1 one group per row; 0 one group per tensor
    scale_rule: str  # the statistic: see _STAT_RULES and `_statistic`
    divisor: float  # scale = statistic / divisor (or statistic * fp32(1/divisor), see scale_op)
    qmin: int  # clamp range of the stored codes
    qmax: int
    rounding: str  # a function of oracle.rounding
    zero_domain: str  # "fixed" (zero_offset), "int" (qmin - round(min/s)), "int_clamp_then_round",
    # "float" (tinygemm: codes from (x - (zero - s*mid)) / s), "float_from_min" (codes from (x - min) / s)
    zero_offset: int = 0  # the fixed zero point (8 for uint4 codes around 8), or the float-domain midpoint
    zp_added: str = "after_round"  # or "before_round": round(x*inv + zp) instead of round(x*inv) + zp
    round_bias: float = 0.0  # folded into the float constant added before rounding (ggml's 8.5)
    inverse: str = "reciprocal"  # x * (1/s), x / s, or x * (divisor/statistic)
    scale_op: str = "divide"  # "divide": stat / divisor; "times_reciprocal": stat * fp32(1/divisor) (oneDNN)
    inverse_from: str = "stored"  # the scale the codes use: "stored" (rounded) or "computed"
    compute_dtype: str = "fp32"  # dtype of the statistic and scale arithmetic
    scale_dtype: str = "fp32"  # storage dtype of the scale: fp32, fp16, bf16, e8m0, e4m3fn
    eps: float | None = None
    eps_on: str = "scale"  # "scale": s = max(s, eps); "statistic": stat = max(stat, eps) first
    qparam_range: tuple[int, int] | None = None  # fbgemm: the (qmin, qmax) the qparams use (reduce_range)
    two_level: bool = False  # nvfp4: block scales relative to an fp32 per-tensor scale
    clamp: bool = True
    values: tuple[float, ...] | None = None  # non-uniform code table (code -> value), nearest-value codes
    packing: str = "k_adjacent"
    pad_groups: bool = False  # storage holds whole groups (ONNX Runtime MatMulNBits blobs)
    pack_zeros: bool = False  # zero points nibble/bit-packed along the groups like the codes
    source: str = ""
    summary: str = ""
    confirmed: str = "source reading only"
    notes: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        checks = [(self.scale_rule, _STAT_RULES), (self.inverse, _INVERSES),
                  (self.zero_domain, _ZERO_DOMAINS), (self.packing, _PACKINGS),
                  (self.compute_dtype, set(_COMPUTE)), (self.scale_op, _SCALE_OPS)]
        for value, allowed in checks:
            if value not in allowed:
                raise ValueError(f"{self.name}: {value!r} is not one of {sorted(allowed)}")
        if not hasattr(rounding, self.rounding):
            raise ValueError(f"{self.name}: oracle.rounding has no {self.rounding!r}")

    # -- geometry ---------------------------------------------------------------------------

    def groups(self, k: int) -> list[tuple[int, int]]:
        """(start, end) of each group along K; the last one may be partial."""
        if self.group_size <= 0:
            return [(0, k)]
        return [(s, min(s + self.group_size, k)) for s in range(0, k, self.group_size)]

    @property
    def whole_groups_only(self) -> bool:
        """True where upstream rejects a K that is not a multiple of the group size (NVFP4)."""
        return self.scale_rule == "nvfp4"

    def describe(self) -> dict[str, object]:
        """The fields a listing shows (`qoracle conventions --json`)."""
        return {"name": self.name, "kind": self.kind, "bits": self.bits, "symmetric": self.symmetric,
                "group_size": self.group_size, "scale_rule": self.scale_rule, "divisor": self.divisor,
                "scale_dtype": self.scale_dtype, "rounding": self.rounding, "zero_domain": self.zero_domain,
                "packing": self.packing, "summary": self.summary, "source": self.source,
                "confirmed": self.confirmed}

    # -- the two directions -----------------------------------------------------------------

    def quantize(self, x: np.ndarray) -> QuantizedWeight:
        """float32 (rows, K) -> codes, scales, zeros, exactly as the upstream quantizer stores them."""
        x = _check_input(self.name, x)
        if self.scale_rule == "fbgemm_minmax":
            return self._quantize_fbgemm(x)
        if self.scale_rule == "nvfp4":
            return self._quantize_nvfp4(x)
        shape = x.shape
        if self.group_size == 0:
            x = x.reshape(1, -1)
        parts = [self._quantize_group(x[:, s:e]) for s, e in self.groups(x.shape[1])]
        codes = np.concatenate([p[0] for p in parts], axis=1).reshape(shape)
        scales = np.stack([p[1] for p in parts], axis=1)
        zeros = None if self.zero_domain == "fixed" else np.stack([p[2] for p in parts], axis=1)
        return QuantizedWeight(codes, scales, zeros, self.name)

    def dequantize(self, qw: QuantizedWeight) -> np.ndarray:
        """codes -> float32 (rows, K) in the order of operations of the upstream dequantizer."""
        codes = np.asarray(qw.codes)
        shape = codes.shape
        if self.group_size == 0:
            codes = codes.reshape(1, -1)
        out = np.empty(codes.shape, dtype=np.float32)
        for g, (s, e) in enumerate(self.groups(codes.shape[1])):
            q = codes[:, s:e]
            sc = qw.scales[:, g:g + 1].astype(np.float32)
            if self.values is not None:
                out[:, s:e] = np.asarray(self.values, dtype=np.float32)[q] * sc
            elif self.scale_rule == "nvfp4":  # torchao: e2m1 * (tensor_scale * block_scale)
                if qw.tensor_scale is not None:
                    sc = (np.float32(qw.tensor_scale) * sc).astype(np.float32)
                out[:, s:e] = floats.decode(q, "e2m1") * sc
            elif self.scale_rule == "mx_floor_log2":
                out[:, s:e] = floats.decode(q, self.values_format) * sc
            elif self.zero_domain in ("float", "float_from_min"):
                zero = qw.zeros[:, g:g + 1].astype(np.float32)
                out[:, s:e] = (q - self.zero_offset).astype(np.float32) * sc + zero
            else:
                zp = np.float32(self.zero_offset) if qw.zeros is None else qw.zeros[:, g:g + 1].astype(np.float32)
                out[:, s:e] = (q.astype(np.float32) - zp) * sc
        return out.reshape(shape)

    # -- one group ---------------------------------------------------------------------------

    def _quantize_group(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        dt = _COMPUTE[self.compute_dtype]
        xc = x.astype(dt)
        stat, lo = _statistic(self.scale_rule, xc, dt)
        if self.scale_rule == "mx_floor_log2":
            return self._quantize_mx(x, stat)
        if self.eps is not None and self.eps_on == "statistic":
            stat = np.maximum(stat, dt(self.eps))
        if self.scale_op == "times_reciprocal":
            scale = _in(dt, stat.astype(np.float32) * np.float32(1 / self.divisor))
        else:
            scale = _in(dt, stat.astype(np.float32) / np.float32(self.divisor))
        if self.eps is not None and self.eps_on == "scale":
            scale = np.maximum(scale, dt(self.eps)).astype(dt)
        stored = _store(scale.astype(np.float32), self.scale_dtype)
        s = (stored if self.inverse_from == "stored" else scale.astype(np.float32))[:, None]
        zero = self._zero_point(lo, scale, dt)
        xf = x.astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if self.zero_domain in ("float", "float_from_min"):
                mid = np.float32(self.zero_offset)
                zf = zero.astype(np.float32)[:, None]
                base = (zf - s * mid) if self.zero_domain == "float" else lo.astype(np.float32)[:, None]
                t = ((xf - base.astype(np.float32)) / s).astype(np.float32)
                q = getattr(rounding, self.rounding)(t)
                codes = np.clip(q, self.qmin, self.qmax)
                return codes.astype(np.int32), stored, zf[:, 0]
            if self.inverse == "reciprocal":  # `s ? 1/s : 0` where the code guards it; eps keeps s > 0 otherwise
                t = xf * np.where(s != 0, np.float32(1) / np.where(s != 0, s, 1), 0).astype(np.float32)
            elif self.inverse == "divide":
                t = xf / s
            else:
                t = xf * (np.float32(self.divisor) / stat.astype(np.float32)[:, None])
            t = t.astype(np.float32)
            if self.values is not None:
                codes = _nearest_code(t, self.values)
                return codes, stored, None
            zp = zero[:, None].astype(np.float32)
            if self.zp_added == "before_round":
                q = getattr(rounding, self.rounding)((t + (zp + np.float32(self.round_bias))).astype(np.float32))
            else:
                q = getattr(rounding, self.rounding)(t) + zp
            if self.clamp:
                q = np.clip(q, self.qmin, self.qmax)
            codes = _to_int(q)
        return codes, stored, (None if self.zero_domain == "fixed" else zero.astype(np.int32))

    def _zero_point(self, lo: np.ndarray, scale: np.ndarray, dt: type) -> np.ndarray:
        n = lo.shape[0]
        rnd = getattr(rounding, self.rounding)
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.zero_domain == "fixed":
                return np.full(n, self.zero_offset, dtype=np.float32)
            if self.zero_domain == "int":  # torchao: qmin - round(min_neg / scale), clamped
                r = rnd(_in(dt, lo.astype(np.float32) / scale.astype(np.float32))).astype(np.float32)
                return np.clip(np.float32(self.qmin) - r, self.qmin, self.qmax)
            if self.zero_domain == "int_clamp_then_round":  # MLAS range2scalezp: clamp the float, then roundf
                sf = scale.astype(np.float32)
                zfp = np.where(sf != 0, np.float32(0) - lo / np.where(sf != 0, sf, 1), lo).astype(np.float32)
                return rnd(np.clip(zfp, 0, self.qmax)).astype(np.float32)
            # float zero (tinygemm): min + scale * midpoint, in the compute dtype
            prod = _in(dt, scale.astype(np.float32) * np.float32(self.zero_offset))
            zero = _in(dt, lo.astype(np.float32) + prod.astype(np.float32))
            return _store(zero.astype(np.float32), self.scale_dtype)

    def _quantize_fbgemm(self, x: np.ndarray) -> QuantizedWeight:
        """PyTorch per-tensor dynamic quantization (quant_utils::ChooseQuantizationParams, fbgemm Quantize).

        The range is widened to hold 0; scale = float((double(max) - min) / (qmax - qmin)), 0.1 when
        that is 0 or its float reciprocal overflows, raised to 6.1e-5 (min and max scaled with it);
        the zero point comes from whichever of (qmin, min) and (qmax, max) has the smaller error
        term, in double, clamped then nearbyint. Codes are nearbyint(fmaf(x, 1/scale, zp)): fbgemm's
        AVX2 Quantize fuses the multiply and the zero-point add.
        """
        f32 = np.float32
        lo_q, hi_q = self.qparam_range or (self.qmin, self.qmax)
        span = hi_q - lo_q
        mn, mx = min(f32(x.min()), f32(0)), max(f32(x.max()), f32(0))
        scale = f32((np.float64(mx) - np.float64(mn)) / np.float64(span))
        with np.errstate(divide="ignore", over="ignore"):
            if scale == 0 or np.isinf(f32(1) / scale):
                scale = f32(0.1)
        small = f32(6.1e-5)
        if scale < small:
            amplifier = f32(small / scale)
            if mn == 0:
                mx = f32(small * f32(span))
            elif mx == 0:
                mn = f32(-small * f32(span))
            else:
                mn, mx = f32(mn * amplifier), f32(mx * amplifier)
            scale = small
        s64 = np.float64(scale)
        from_min, from_max = lo_q - np.float64(mn) / s64, hi_q - np.float64(mx) / s64
        err_min = abs(lo_q) + abs(np.float64(mn) / s64)
        err_max = abs(hi_q) + abs(np.float64(mx) / s64)
        z = from_min if err_min < err_max else from_max
        zp = lo_q if z < lo_q else hi_q if z > hi_q else int(np.rint(z))
        inv = np.full_like(x, f32(1) / scale)
        q = rounding.rne(rounding.fmaf(x, inv, np.full_like(x, f32(zp))))
        codes = _to_int(np.clip(q, self.qmin, self.qmax))
        return QuantizedWeight(codes, np.array([[scale]], dtype=np.float32), np.array([[zp]], dtype=np.int32), self.name)

    def _quantize_nvfp4(self, x: np.ndarray) -> QuantizedWeight:
        """NVFP4 as torchao's `nvfp4_quantize`: e2m1 codes, one e4m3 scale per 16 elements.

        Block scale amax/6 (fp32), divided by the fp32 tensor scale amax_tensor/(448*6) when
        two-level, clamped to [2^-6, 448] and rounded to e4m3fn (RNE); elements are
        x * (1/s8) (one level) or x * ((1/tensor_scale)/s8) (two levels), clamped to +-6 and rounded
        to e2m1 (RNE, sign kept). An all-zero tensor has tensor scale 0 and NaN scales, as upstream.
        """
        f32 = np.float32
        n, k = x.shape
        if self.whole_groups_only and k % self.group_size:
            raise ValueError(f"{self.name}: K must be a multiple of {self.group_size}, got {k}")
        xb = x.reshape(n, k // self.group_size, self.group_size)
        block = (np.abs(xb).max(axis=2) / f32(6)).astype(f32)
        ts = None
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.two_level:
                ts = f32(f32(np.abs(x).max()) / f32(448 * 6))
                block = (block / ts).astype(f32)
            s8 = floats.round_to(np.clip(block, f32(2.0 ** -6), f32(448)), "e4m3fn").astype(f32)
            recip = (f32(1) / s8) if ts is None else ((f32(1) / ts) / s8)
            scaled = np.clip((xb * recip.astype(f32)[:, :, None]).astype(f32), f32(-6), f32(6))
        codes = floats.encode(scaled, "e2m1").reshape(n, k).astype(np.int32)
        return QuantizedWeight(codes, s8, None, self.name, ts)

    def _quantize_mx(self, x: np.ndarray, amax: np.ndarray) -> tuple[np.ndarray, np.ndarray, None]:
        """OCP MX: shared exponent floor(log2(amax)) - emax(element), elements rounded RNE, saturating."""
        elem = self.values_format
        emax = int(np.floor(np.log2(floats.all_values(elem)[np.isfinite(floats.all_values(elem))].max())))
        with np.errstate(divide="ignore"):
            e = np.floor(np.log2(amax.astype(np.float32))) - emax
        e = np.where(amax == 0, -127, np.clip(e, -127, 127))
        stored = np.ldexp(np.float32(1), e.astype(np.int32)).astype(np.float32)
        top = floats.all_values(elem)
        top = np.float32(top[np.isfinite(top)].max())
        codes = floats.encode(np.clip((x.astype(np.float32) / stored[:, None]).astype(np.float32), -top, top), elem)
        return codes.astype(np.int32), stored, None

    @property
    def values_format(self) -> str:
        """The element float format of an MX convention (its name after 'mx' up to the dot)."""
        return {4: "e2m1", 8: "e4m3fn"}[self.bits] if "e5m2" not in self.name else "e5m2"

    # -- bytes -------------------------------------------------------------------------------

    def pack(self, qw: QuantizedWeight) -> dict[str, np.ndarray]:
        """The arrays a kernel reads, in its layout: codes, scales in their storage dtype, zeros."""
        out: dict[str, np.ndarray] = {"scales": _scale_storage(qw.scales, self.scale_dtype)}
        if qw.tensor_scale is not None:
            out["tensor_scale"] = np.array([qw.tensor_scale], dtype=np.float32)
        if self.packing == "tinygemm_cpu_input":
            # `_convert_weight_to_int4pack_for_cpu` takes int32 codes [N, K]; scales_and_zeros is [G, N, 2]
            out["weight"] = qw.codes.astype(np.int32)
            out["scales_and_zeros"] = np.stack([qw.scales, qw.zeros], axis=2).transpose(1, 0, 2).copy()
            return out
        if self.packing == "bytes":
            out["weight"] = (qw.codes.astype(np.int8) if self.qmin < 0 else qw.codes.astype(np.uint8))
        else:
            codes = qw.codes
            if self.pad_groups and self.group_size > 0:
                codes = self._padded(codes, qw)
                n, k = codes.shape
                out["weight"] = _pack_bits(codes, self.bits).reshape(n, k // self.group_size, -1)
            else:
                out["weight"] = _pack_bits(codes, self.bits)
        if qw.zeros is not None:
            z = qw.zeros.astype(np.int32)
            # unused slots of the last zero-point byte hold the default zero point 2^(bits-1), as MLAS leaves them
            out["zeros"] = _pack_bits(z, self.bits, fill=1 << (self.bits - 1)) if self.pack_zeros else z.astype(np.int8 if self.qmin < 0 else np.uint8)
        return out

    def unpack(self, packed: dict[str, np.ndarray], k: int) -> QuantizedWeight:
        """Inverse of `pack` for K values per row; keys it does not use (such as "k") are ignored."""
        scales = _scale_values(packed["scales"], self.scale_dtype)
        ts = packed.get("tensor_scale")
        ts = None if ts is None else np.float32(np.asarray(ts, dtype=np.float32).reshape(-1)[0])
        n_groups = len(self.groups(k))
        if self.packing == "tinygemm_cpu_input":
            sz = packed["scales_and_zeros"].transpose(1, 0, 2)
            return QuantizedWeight(packed["weight"].astype(np.int32), scales, sz[:, :, 1].astype(np.float32), self.name)
        w = packed["weight"]
        if self.packing == "bytes":
            codes = w.astype(np.int32)
        else:
            n = w.shape[0]
            flat = _unpack_bits(w.reshape(n, -1), self.bits)
            codes = flat[:, :k] if not self.pad_groups else self._unpadded(flat, k)
        zeros = None
        if "zeros" in packed:
            z = packed["zeros"]
            zeros = (_unpack_bits(z, self.bits)[:, :n_groups] if self.pack_zeros else z.astype(np.int32))
            if self.qmin < 0 and not self.pack_zeros:
                zeros = z.astype(np.int8).astype(np.int32)
        return QuantizedWeight(codes, scales, zeros, self.name, ts)

    def _padded(self, codes: np.ndarray, qw: QuantizedWeight) -> np.ndarray:
        n, k = codes.shape
        g = self.group_size
        kp = -(-k // g) * g
        if kp == k:
            return codes
        zp = self.zero_offset if qw.zeros is None else qw.zeros[:, -1:]
        fill = np.broadcast_to(np.asarray(zp, dtype=np.int32), (n, kp - k))
        return np.concatenate([codes, fill], axis=1)

    def _unpadded(self, flat: np.ndarray, k: int) -> np.ndarray:
        return flat[:, :k]


# -- helpers -----------------------------------------------------------------------------------


def register(conv: Convention) -> Convention:
    """Add a convention to the registry (names are unique)."""
    if conv.name in REGISTRY:
        raise RuntimeError(f"convention {conv.name!r} registered twice")
    REGISTRY[conv.name] = conv
    return conv


def _check_input(name: str, x: object) -> np.ndarray:
    if not isinstance(x, np.ndarray) or x.dtype != np.float32:
        raise ValueError(f"{name}: quantize takes a float32 numpy array, got {type(x).__name__}")
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(f"{name}: quantize takes shape (rows, K) with K > 0, got {x.shape}")
    return x


def _in(dt: type, a: np.ndarray) -> np.ndarray:
    """A float32 result rounded to the compute dtype, as torch's CPU kernels round each op."""
    return np.asarray(a, dtype=np.float32).astype(dt)


def _statistic(rule: str, x: np.ndarray, dt: type) -> tuple[np.ndarray, np.ndarray]:
    """(statistic the scale divides, the minimum a zero point is computed from)."""
    mn, mx = x.min(axis=1), x.max(axis=1)
    zero = dt(0)
    if rule in ("absmax", "mx_floor_log2"):
        return np.abs(x).max(axis=1), np.minimum(mn, zero)
    if rule == "signed_absmax_first":  # ggml: strict `amax < |v|`, first largest |x| wins
        idx = np.argmax(np.abs(x), axis=1)
        return np.take_along_axis(x, idx[:, None], axis=1)[:, 0], mn
    if rule == "signed_absmax_min_ties":  # MLAS range2scale: |max| > |min| ? max : min
        return np.where(np.abs(mx) > np.abs(mn), mx, mn), mn
    if rule == "range":
        return _in(dt, mx.astype(np.float32) - mn.astype(np.float32)), mn
    lo, hi = np.minimum(mn, zero), np.maximum(mx, zero)  # range_with_zero
    return _in(dt, hi.astype(np.float32) - lo.astype(np.float32)), lo


def _store(scale: np.ndarray, dtype: str) -> np.ndarray:
    """The value a scale has once rounded to its storage dtype (float32 holds it exactly)."""
    if dtype == "fp32":
        return scale.astype(np.float32)
    return floats.round_to(scale, dtype)


def _scale_storage(scales: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "fp32":
        return scales.astype(np.float32)
    if dtype in ("fp16", "bf16"):
        return scales.astype(floats.FORMATS[dtype].dtype)
    return floats.encode(scales, dtype)  # 8-bit scale formats: their codes


def _scale_values(stored: np.ndarray, dtype: str) -> np.ndarray:
    if dtype in ("fp32", "fp16", "bf16"):
        return stored.astype(np.float32)
    return floats.decode(stored, dtype)


def _to_int(q: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(q), q, 0).astype(np.int64).astype(np.int32)


def _nearest_code(t: np.ndarray, values: tuple[float, ...]) -> np.ndarray:
    """Index of the nearest table value; at an exact midpoint the lower value wins (strict `>`)."""
    v = np.asarray(values, dtype=np.float32)
    order = np.argsort(v, kind="stable")
    sv = v[order]
    mids = ((sv[1:].astype(np.float64) + sv[:-1]) / 2).astype(np.float32)
    idx = np.searchsorted(mids, t, side="left")  # t > mids[i-1] and t <= mids[i]
    return order[idx].astype(np.int32)


def _pack_bits(codes: np.ndarray, bits: int, fill: int = 0) -> np.ndarray:
    """Pack b-bit codes along the last axis, the lowest bits holding the lowest index; `fill` pads."""
    per = 8 // bits
    n, k = codes.shape
    kp = -(-k // per) * per
    c = np.full((n, kp), fill, dtype=np.uint16)
    c[:, :k] = codes.astype(np.int64) & ((1 << bits) - 1)
    c = c.reshape(n, kp // per, per)
    out = np.zeros((n, kp // per), dtype=np.uint16)
    for i in range(per):
        out |= c[:, :, i] << (i * bits)
    return out.astype(np.uint8)


def _unpack_bits(b: np.ndarray, bits: int) -> np.ndarray:
    per = 8 // bits
    mask = (1 << bits) - 1
    parts = [(b.astype(np.int32) >> (i * bits)) & mask for i in range(per)]
    return np.stack(parts, axis=-1).reshape(b.shape[0], -1)
