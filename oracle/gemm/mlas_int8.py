"""ONNX Runtime's int8 GEMMs on x64 (MLAS QGEMM): integer accumulators, the non-VNNI u8 x s8
int16 pairs, QLinearMatMul's requantization, DynamicQuantizeMatMul's activation quantizer and
the fp32 epilogue of MatMulIntegerToFloat / DynamicQuantizeMatMul, each bit for bit.

Sources (microsoft/onnxruntime, onnxruntime/core/mlas/lib unless noted):

- Dispatch (qgemm.h `MlasGemmQuantGetDispatch`): on x64, u8 A x s8 B runs the platform's
  GemmU8S8Dispatch, u8 x u8 its GemmU8U8Dispatch, s8 x s8 the portable C++ kernel
  (`MlasGemmQuantDispatchDefault`, exact int32). platform.cpp: with AVX2 the u8 x s8 dispatch is
  MlasGemmU8S8DispatchAvx2 and u8 x u8 MlasGemmU8U8DispatchAvx2; VNNI and AMX replace the u8 x s8
  kernel only.
- The AVX2 u8 x s8 kernel (x86_64/QgemmU8X8KernelAvx2.S, `MultiplyAccumulateRowU8S8Avx2`): A is
  packed four k at a time (PackedK = 4) and broadcast as a dword, B four k per column;
  `vpmaddubsw` multiplies u8 A by s8 B and adds adjacent products (k = 4q, 4q+1 and 4q+2, 4q+3)
  into a SATURATING int16, `vpmaddwd` by 1 widens the two pair sums into one int32 and `vpaddd`
  accumulates (wrapping). The GEMV kernel for M = 1 (x86_64/QgemvU8S8KernelAvx2.S) forms the same
  pairs; both zero-pad K to a multiple of 4, so the pairs are (2j, 2j + 1) over the whole row.
  The operands are the RAW codes: zero points never enter the pairs.
- Zero points (qgemm.h `MlasGemmQuantOperation`): the row sums of A (CopyPackA, exact), minus
  K * za, times -zb (per tensor) or -zb[n] (per column, inside the kernel), and the column sums
  of B times -za initialize the accumulators: acc = sum a b - zb sum a - za sum b + K za zb, all
  int32 and wrapping. With u8 B on the u8 x s8 dispatch (not used on x64 AVX2, where u8 x u8 has
  its own kernel) B and zb are flipped to s8 by ^ 0x80 (qgemm_kernel_avx2.cpp
  `MlasGemmU8X8FixupZeroPointB`). The u8 x u8 AVX2 kernel widens both to int16 and uses
  `vpmaddwd` (exact).
- QLinearMatMul (core/providers/cpu/quantization/quantize_linear_matmul.cc): scale =
  fp32(fp32(a_scale * b_scale[n]) / y_scale); the int32 result goes through
  `MlasRequantizeOutput` (quantize.cpp, SSE2 path): float(acc) (cvtdq2ps), times the scale,
  clamped to [lo - zy, hi - zy], `_mm_cvtps_epi32` (round to nearest even under the default
  MXCSR), plus zy, packed with saturation.
- DynamicQuantizeMatMul's activations (contrib_ops/cpu/quantization/dynamic_quantize_matmul.cc
  calls core/util/qmath.h `GetQuantizationParameter` then `ParQuantizeLinear` ->
  `MlasQuantizeLinear`): min/max widened to include 0; scale = 1 if max == min else
  fp32(max - min) / 255; zp = RoundHalfToEven(clamp(0 - min / scale, 0, 255)) (qmath.h:
  input - remainderf(input, 1), exact RNE); q = RNE(clamp(x / scale, -zp, 255 - zp)) + zp (a true
  division, `MlasDivideFloat32x4`). The DynamicQuantizeLinear operator
  (core/providers/cpu/quantization/dynamicquantizelinear.cc) calls the same two functions.
- The fp32 epilogue (qpostprocessor.cpp `MLAS_QGEMM_SCALE_BIAS_OUTPUT_PROCESSOR::ProcessImpl`,
  ZeroMode): y = fp32(float(acc) * multiplier), then y = fp32(y + bias[n]); two separate SSE
  operations, no FMA. multiplier = fp32(a_scale * b_scale) per tensor or fp32(a_scale * b_scale[n])
  per column (dynamic_quantize_matmul.cc `MatMulIntegerToFloatBase::ComputeCommon`).
- `session.x64quantprecision` = 1 (core/optimizer/qdq_transformer/avx2_weight_s8_to_u8.cc,
  s8_to_u8.cc `ConvertS8WeightToU8`): a CONSTANT s8 weight of MatMulInteger / QLinearMatMul (opset
  10) / DynamicQuantizeMatMul / MatMulIntegerToFloat that holds any value outside [-64, 64] is
  rewritten to u8 (b ^ 0x80, its zero point ^ 0x80, 128 where absent): the u8 x u8 kernel then
  runs and the result is exact. A weight within [-64, 64] is left alone (255 * 64 * 2 = 32640
  cannot saturate); a weight that is a graph input is never rewritten.
- QuantizeLinear (ONNX: y = saturate(round_half_to_even(x / y_scale) + y_zero_point)), on the CPU
  EP (core/providers/cpu/quantization/quantize_linear.cc `QuantizeLinear<T>::Compute`, which
  calls core/util/qmath.h): fp32 per tensor or per axis on the last axis runs `MlasQuantizeLinear`
  (quantize.cpp: a true fp32 division, the float clamp to [lo - zp, hi - zp], cvtps2dq under
  the default MXCSR, plus zp); per axis on another axis `BlockedQuantizeLinear<...>::opNotLastAxis`
  (std::nearbyint(x / scale) + zp, clamped). fp16 x and scale are widened to fp32 first
  (`MLFloat16::ToFloat`, exact) in `ParQuantizeLinearStd(const MLFloat16*, ...)` and the
  MLFloat16 `BlockedQuantizeLinear` specialisations; the quotient is the fp32 division. Each path
  is one fp32 division then round to nearest even: `quantize_linear`. The conversions to int32
  there are undefined past |x / scale| >= 2^31, so only quotients within the int32 range are
  specified here.

The VNNI kernels (QgemmU8S8KernelAvxVnni / Avx512Vnni) use `vpdpbusds`, which saturates the int32
accumulator instead of wrapping: the two models differ only past |acc| = 2^31 (K > 66000 at
full range), which no case here reaches.
"""
from __future__ import annotations

import numpy as np

from oracle.bounds import gamma
from oracle.gemm.aten_qlinear_dynamic import accumulate as _pairs_minus_zp
from oracle.gemm.w8a8 import wrap_int32

__all__ = ["MODELS", "VNNI_FLAGS", "u8s8_saturates", "model_for", "accumulator", "qlinear_scale", "requantize",
           "dynamic_quantize_u8", "quantize_linear", "scale_bias", "float_output", "dynamic_quantize_matmul"]

F = np.float32
MODELS = ("exact", "u8s8_int16_pairs")
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def u8s8_saturates(flags) -> bool:
    """Whether MLAS's u8 x s8 kernel on a host with these cpuid flags forms int16 pair sums.

    AVX2 or AVX512BW without VNNI/AMX (vpmaddubsw); with VNNI or AMX the products go straight
    into int32. (Without AVX2, MLAS's SSE kernels widen to int16 first and are exact.)
    """
    f = set(flags)
    return "avx2" in f and not any(v in f for v in VNNI_FLAGS)


def model_for(a_dtype, b_dtype, flags, *, precision: bool = False, b_const: bool = True,
              b_codes: np.ndarray | None = None, op: str = "", opset: int = 13) -> str:
    """The integer model MLAS computes for these operand types on this host ('exact' or 'u8s8_int16_pairs').

    Only u8 A x s8 B on a saturating host pairs; `precision` (session.x64quantprecision = 1) turns
    a constant s8 weight with any |b| > 64 into u8 (exact); b_codes are the weight's codes. The
    rewrite matches QLinearMatMul of since-version 10 only (avx2_weight_s8_to_u8.cc s8_overflow_ops),
    so op='qlinearmatmul' in a model of opset >= 21 (QLinearMatMul-21) keeps the pairs.
    """
    if np.dtype(a_dtype) != np.uint8 or np.dtype(b_dtype) != np.int8 or not u8s8_saturates(flags):
        return "exact"
    rewritten = precision and b_const and not (op == "qlinearmatmul" and opset >= 21)
    if rewritten and (b_codes is None or bool(((b_codes < -64) | (b_codes > 64)).any())):
        return "exact"
    return "u8s8_int16_pairs"


def _zb_row(zb, n: int) -> np.ndarray:
    z = np.asarray(zb, dtype=np.int64).reshape(-1)
    return np.broadcast_to(z, (n,)) if z.size == 1 else z


def accumulator(a: np.ndarray, za, b: np.ndarray, zb, model: str = "exact") -> np.ndarray:
    """int32 (M, N): a (M, K) and b (K, N) codes (ONNX layout), za scalar, zb scalar or (N,).

    'exact': sum_k (a - za)(b - zb) wrapped to int32 (what MatMulInteger specifies).
    'u8s8_int16_pairs': sum_j sat16(a[2j] b[2j] + a[2j+1] b[2j+1]) - zb sum a - za sum b + K za zb,
    wrapped (MLAS's AVX2 u8 x s8 kernel; see the module docstring).
    """
    a64, b64 = np.asarray(a).astype(np.int64), np.asarray(b).astype(np.int64)
    if a64.ndim != 2 or b64.ndim != 2 or a64.shape[1] != b64.shape[0]:
        raise ValueError(f"need a (M, K) and b (K, N), got {a64.shape} and {b64.shape}")
    k, n = b64.shape
    zbn, za = _zb_row(zb, n), int(za)
    if model == "exact":
        return wrap_int32((a64 - za) @ (b64 - zbn[None, :]))
    if model != "u8s8_int16_pairs":
        raise ValueError(f"unknown model {model!r}; known: {', '.join(MODELS)}")
    pairs = _pairs_minus_zp(a64, 0, b64.T, True)  # sum of saturated raw pair sums (zp 0)
    corr = -a64.sum(axis=1)[:, None] * zbn[None, :] - za * b64.sum(axis=0)[None, :] + k * za * zbn[None, :]
    return wrap_int32(pairs + corr)


def qlinear_scale(a_scale, b_scale, y_scale) -> np.ndarray:
    """QLinearMatMul's fp32 requantization scale(s): (a_scale * b_scale[n]) / y_scale, each op rounded."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return np.atleast_1d((F(a_scale) * np.asarray(b_scale, F)).astype(F) / F(y_scale)).astype(F)


def requantize(acc: np.ndarray, scale, zero_point, out_dtype) -> np.ndarray:
    """MlasRequantizeOutput: saturate(RNE(fp32(float(acc) * scale)) + zp) in out_dtype (u8/s8).

    scale broadcasts as a scalar or per column (N,). The float clamp to [lo - zp, hi - zp] before
    the conversion equals saturating after it, the bounds being integers.
    """
    info = np.iinfo(out_dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        v = (np.asarray(acc, np.int32).astype(F) * np.asarray(scale, F).reshape(1, -1)).astype(F)
    zp = int(zero_point)
    v = np.clip(v, F(info.min - zp), F(info.max - zp))
    return (np.rint(v).astype(np.int64) + zp).astype(out_dtype)


def dynamic_quantize_u8(x: np.ndarray) -> tuple[np.ndarray, np.float32, np.uint8]:
    """DynamicQuantizeLinear / DynamicQuantizeMatMul's u8 quantizer: (codes, scale, zero point), see the docstring."""
    x = np.asarray(x, F)
    lo = F(min(F(x.min()) if x.size else F(0), F(0)))
    hi = F(max(F(x.max()) if x.size else F(0), F(0)))
    scale = F(1) if hi == lo else F(F(hi - lo) / F(255))
    zpf = np.clip(F(F(0) - F(lo / scale)), F(0), F(255))
    zp = int(np.rint(zpf))
    with np.errstate(over="ignore", invalid="ignore"):
        q = np.clip((x / scale).astype(F), F(-zp), F(255 - zp))
    return (np.rint(q).astype(np.int64) + zp).astype(np.uint8), scale, np.uint8(zp)


def quantize_linear(x: np.ndarray, y_scale, y_zero_point, out_dtype=None, axis: int | None = None) -> np.ndarray:
    """ONNX QuantizeLinear (u8/s8 out): saturate(RNE(fp32(fp32(x) / fp32(y_scale))) + zp), see the docstring.

    x fp32 or fp16 (widened exactly); y_scale and y_zero_point scalars (per tensor) or 1-D along
    `axis` (per axis); out_dtype defaults to the zero point's type. The float clamp before the
    rounding equals saturating after it, the bounds being integers.
    """
    zp = np.asarray(y_zero_point)
    out = np.dtype(out_dtype if out_dtype is not None else zp.dtype)
    info = np.iinfo(out)
    xf = np.asarray(x).astype(F)
    s = np.asarray(y_scale).astype(F)
    z = zp.astype(np.int64)
    if axis is not None and s.ndim == 1:
        shape = [1] * xf.ndim
        shape[axis] = -1
        s, z = s.reshape(shape), (z.reshape(shape) if z.ndim == 1 else z)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        q = (xf / s).astype(F)
    q = np.clip(q, (info.min - z).astype(F), (info.max - z).astype(F))
    return (np.rint(q).astype(np.int64) + z).astype(out)


def scale_bias(acc: np.ndarray, multiplier, bias=None) -> np.ndarray:
    """MLAS_QGEMM_SCALE_BIAS_OUTPUT_PROCESSOR (ZeroMode): fp32(float(acc) * mult[n]) then + bias[n], each rounded."""
    with np.errstate(over="ignore", invalid="ignore"):
        y = (np.asarray(acc, np.int32).astype(F) * np.asarray(multiplier, F).reshape(1, -1)).astype(F)
        return y if bias is None else (y + np.asarray(bias, F).reshape(1, -1)).astype(F)


def float_output(acc: np.ndarray, a_scale, b_scale, bias=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(predicted fp32 y, exact float64 value, bound) of MatMulIntegerToFloat / DynamicQuantizeMatMul.

    multiplier = fp32(a_scale * b_scale[n]); the exact value is acc * a_scale * b_scale[n] + bias
    in float64 (exact to gamma_3(fp64)), the bound covers float(acc), the scale product, the
    multiply and the bias add in any order: gamma_4(fp32) * (|acc s| + |bias| + |y|).
    """
    mult = (F(a_scale) * np.atleast_1d(np.asarray(b_scale, F))).astype(F)
    pred = scale_bias(acc, mult, bias)
    s64 = np.float64(F(a_scale)) * np.atleast_1d(np.asarray(b_scale, F)).astype(np.float64)
    b64 = np.zeros(1) if bias is None else np.asarray(bias, F).astype(np.float64)
    prod = np.asarray(acc, np.int32).astype(np.float64) * s64[None, :]
    exact = prod + b64[None, :]
    mag = np.abs(prod) + np.abs(b64)[None, :] + np.abs(exact)
    return pred, exact, (gamma(4, "fp32") + gamma(3, "fp64")) * mag + 4 * 2.0 ** -150


def dynamic_quantize_matmul(x: np.ndarray, w_kn: np.ndarray, b_scale,
                            flags) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """(predicted fp32 y, exact float64 value, bound) of DynamicQuantizeMatMul without B zero point or bias.

    x fp32 (M, K) is quantized per tensor by `dynamic_quantize_u8`; w_kn (K, N) holds the s8 or u8
    codes, b_scale a scalar or (N,). The int32 sums are those MLAS forms on a host with these cpuid
    flags (`model_for` with the session option off: the int16 pairs where u8 x s8 saturates), so the
    exact value is that of the host's integer model, not of the unsaturated sum.

    A NaN anywhere in x makes a_scale NaN under NaN-propagating min / max (IEEE 754-2019 minimum and
    maximum, as the ONNX reference implementation's numpy computes the function body), so y is NaN
    everywhere whatever the codes (its NaN's bits are not predicted; MLAS's minps / maxps reduction
    drops a NaN instead, so only a NaN beside an infinity reaches the output). An infinity without a NaN
    quantizes inf / inf, whose u8 code the operator leaves undefined: no expectation exists.
    """
    x = np.asarray(x, F)
    if np.isnan(x).any():
        nan = np.full((x.shape[0], np.shape(w_kn)[1]), np.nan)
        return None, nan, np.zeros_like(nan)
    if not np.isfinite(x).all():
        raise ValueError("x holds an infinity: DynamicQuantizeLinear's code for inf / inf is undefined")
    codes, sa, za = dynamic_quantize_u8(x)
    model = model_for(np.uint8, np.asarray(w_kn).dtype, flags)
    return float_output(accumulator(codes, za, w_kn, 0, model), sa, b_scale)
