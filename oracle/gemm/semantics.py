"""The GEMM semantics a kernel can be held to, by name: one registry, one `Expected` shape.

Formats and conventions are looked up by name (oracle/formats.py, oracle/conventions); so are
GEMM semantics, so a kernel's spec (kernels/spec.py) names what it must compute and the suite
validates the name instead of trusting free text. Every semantics takes the case's logical
operands (numpy arrays by role: `a`/`x` activations (M, K), `b`/`w` weights (N, K), scales ...)
and returns an `Expected`:
- integer results: `exact` is the result itself, compared byte for byte;
- float results: `exact` (float64) with its rigorous per-element `bound`, and `predicted`, the
  bit-exact output where the kernel's order of operations is modelled (None elsewhere).
A signature names the operand roles a semantics reads, so a case family (conformance/families.py)
knows which operands to draw for it.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["Expected", "Semantics", "SEMANTICS", "SIGNATURES", "register", "get", "out_dtype", "w4_parts"]

# signature -> the operand roles it reads (what a case family must draw)
SIGNATURES: dict[str, tuple[str, ...]] = {
    "int8_gemm": ("a", "b"),  # a int8 (M, K), b int8 (N, K) -> int32 (M, N)
    "w8_float": ("x", "w", "scales"),  # x float (M, K), w int8 (N, K), per-channel scales (N,) -> float (M, N)
    # x float (M, K); codes uint8 (N, K) in 0..15; scales float32 (N, G) and integer zero points zp uint8
    # (N, G), G = ceil(K / group); group a 0-d int: w[n, k] = (codes - zp[n, k // group]) * scales[n, k // group]
    "w4_grouped": ("x", "codes", "scales", "zp", "group"),
    "w4_sym": ("x", "codes", "scales", "group"),  # the same with every zero point 8: w = (codes - 8) * scales
    # a int8 (M, K), b int8 (N, K), row_scales float32 (M,) -> float32 (M, N): an int32 sum scaled per row
    "int8_row_scaled": ("a", "b", "row_scales"),
    # a uint8 codes (M, K) with a_scale float32 and a_zp uint8 (0-d, per tensor), b int8 (N, K) with b_scales float32
    # (N,), bias float32 (N,) -> float32 (M, N): (a - a_zp) . b summed in int32, times a_scale * b_scales[n], plus bias
    "u8_affine": ("a", "a_scale", "a_zp", "b", "b_scales", "bias"),
    # a uint8 (M, K) with a_scale float32 and a_zp uint8 (0-d), b int8 (N, K) with b_scales float32 (N,) and b_zp int8
    # (N,) (per channel), y_scale float32 and y_zp uint8 (0-d) -> uint8 (M, N): the int32 sum of (a - a_zp)(b - b_zp)
    # requantized to saturate(round(acc * a_scale * b_scales[n] / y_scale) + y_zp)
    "u8_requant": ("a", "a_scale", "a_zp", "b", "b_scales", "b_zp", "y_scale", "y_zp"),
}


@dataclass(frozen=True)
class Expected:
    exact: np.ndarray
    bound: np.ndarray | None = None  # None: an integer result, judged byte for byte
    predicted: np.ndarray | None = None  # the modelled output, bit for bit (float results only)
    out_dtype: str | None = None  # fp32 / fp16 / bf16 for float results


@dataclass(frozen=True)
class Semantics:
    """What a kernel must compute: `expected(operands, observed)`; `observed` is what the worker saw
    of the implementation that ran, for models that depend on the path taken (`depends` names the
    keys read, so an expectation is reused only where they agree)."""

    name: str
    signature: str
    expected: Callable[[dict[str, np.ndarray], dict], Expected]
    doc: str
    source: str
    depends: tuple[str, ...] = ()

    def key(self, observed: dict) -> tuple:
        return tuple(str(observed.get(k)) for k in self.depends)


SEMANTICS: dict[str, Semantics] = {}


def register(s: Semantics) -> Semantics:
    if s.signature not in SIGNATURES:
        raise ValueError(f"semantics {s.name!r}: unknown signature {s.signature!r}; known: {', '.join(SIGNATURES)}")
    if s.name in SEMANTICS:
        raise ValueError(f"semantics {s.name!r} registered twice")
    SEMANTICS[s.name] = s
    return s


def get(name: str) -> Semantics:
    if name not in SEMANTICS:
        raise ValueError(f"unknown GEMM semantics {name!r}; known: {', '.join(sorted(SEMANTICS))}")
    return SEMANTICS[name]


def out_dtype(x: np.ndarray) -> str:
    """The name (fp32 / fp16 / bf16) of a float activation's dtype, which float results come back in."""
    from oracle.gemm._common import OUT_DTYPES

    return next(k for k, v in OUT_DTYPES.items() if v == x.dtype)


def w4_parts(ops: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """x, codes, scales, zero points (8 for w4_sym) and the group size of a grouped 4-bit case."""
    zp = ops.get("zp")
    if zp is None:
        zp = np.full(ops["scales"].shape, 8, np.uint8)
    return ops["x"], ops["codes"], ops["scales"], zp, int(ops["group"])


def _model(module: str, func: str, **kwargs: object) -> Callable[[dict[str, np.ndarray], dict], Expected]:
    """A semantics whose model function takes (ops, observed) itself, in `module`, imported on first
    use (the models import this module for `Expected`)."""
    def expected(ops: dict[str, np.ndarray], observed: dict) -> Expected:
        return getattr(importlib.import_module(module), func)(ops, observed, **kwargs)
    return expected


def _int32_wrap(ops: dict[str, np.ndarray], observed: dict) -> Expected:
    from oracle.gemm.w8a8 import int8_matmul, wrap_int32

    return Expected(wrap_int32(int8_matmul(ops["a"], ops["b"])))


def _int8pack(ops: dict[str, np.ndarray], observed: dict) -> Expected:
    from oracle.gemm.aten_int8pack import int8_expected, int8_predict

    x = ops["x"]
    out = out_dtype(x)
    exact, bound = int8_expected(x, ops["w"], ops["scales"], out)
    return Expected(exact, bound, int8_predict(x, ops["w"], ops["scales"], out, observed.get("aten_capability")), out)


register(Semantics(
    "w8a8.int32_wrap", "int8_gemm", _int32_wrap,
    "int8 x int8 summed exactly, the int32 result the low 32 bits of the exact sum",
    "oracle/gemm/w8a8.py int8_matmul, wrap_int32"))
register(Semantics(
    "aten.int8pack", "w8_float", _int8pack,
    "w = fp32(q) * scale[n] rounded, fp32 dot products, cast to x's dtype; bit-exact per ATen capability",
    "oracle/gemm/aten_int8pack.py (pytorch aten/src/ATen/native/cpu/int8mm_kernel.cpp int8pack_mm_kernel_)",
    depends=("aten_capability",)))


def _int4pack(ops: dict[str, np.ndarray], observed: dict) -> Expected:
    from oracle.gemm.aten_int4pack import int4_expected, tinygemm_stored

    x, codes, scales, zp, group = w4_parts(ops)
    s, z = tinygemm_stored(scales, zp, x.dtype)
    exact, bound = int4_expected(x, codes, s.astype(np.float32), z.astype(np.float32), group, out_dtype(x))
    return Expected(exact, bound, None, out_dtype(x))


register(Semantics(
    "aten.int4pack", "w4_grouped", _int4pack,
    "tinygemm: w = (q - 8) * s + z with s and z = (8 - zp) * s in x's dtype, fp32 accumulation, cast to x's dtype",
    "oracle/gemm/aten_int4pack.py (pytorch aten/src/ATen/native/cpu/int4mm_kernel.cpp int4pack_mm_kernel_)"))


def _matmulnbits_level0(ops: dict[str, np.ndarray], observed: dict) -> Expected:
    from oracle.gemm.mlas_matmulnbits import level0_grouped

    x, codes, scales, zp, group = w4_parts(ops)
    exact, bound = level0_grouped(x, codes, scales, zp, group, out_dtype(x))
    return Expected(exact, bound, None, out_dtype(x))


register(Semantics(
    "mlas.matmulnbits.level0", "w4_grouped", _matmulnbits_level0,
    "MatMulNBits accuracy_level 0: w = (q - zp) * s in fp32 (s as stored in x's dtype), fp32 accumulation in "
    "any order, a partial last block, Y rounded once to x's dtype",
    "oracle/gemm/mlas_matmulnbits.py (onnxruntime contrib_ops/cpu/quantization/matmul_nbits.cc, "
    "MLAS sqnbitgemm / qnbitgemm SQNBIT_CompFp32)"))


def _ggml_q4_0(ops: dict[str, np.ndarray], observed: dict) -> Expected:
    from oracle.gemm import ggml_mul_mat as mm

    x, codes, scales, _, group = w4_parts(ops)
    if group != 32:
        raise ValueError(f"q4_0 blocks hold 32 codes, not groups of {group}")
    w = mm.q4_0_blocks(codes, scales)
    a = mm.activations(x, "q4_0", x86="avx" in observed.get("compiled", ()))
    exact, bound = mm.mul_mat_exact("q4_0", w, a)
    predicted = mm.mul_mat_predicted("q4_0", w, a) if observed.get("isa") == "avx2" else None
    return Expected(exact, bound, predicted, "fp32")


register(Semantics(
    "ggml.mul_mat.q4_0", "w4_sym", _ggml_q4_0,
    "q4_0 blocks (fp16 d = the group scale, w = (q - 8) * d, 32 codes) times X quantized to q8_0 by the CPU "
    "backend's from_float; exact integer block sums, fp32 dx * dy products and accumulation; bit-exact on AVX2 builds",
    "oracle/gemm/ggml_mul_mat.py (ggml/src/ggml-cpu/ggml-cpu.c ggml_compute_forward_mul_mat, arch/x86/quants.c "
    "quantize_row_q8_0 and ggml_vec_dot_q4_0_q8_0, llamafile/sgemm.cpp tinyBLAS_Q0_AVX)",
    depends=("isa", "compiled")))


register(Semantics(
    "bestla.woqgemm", "w4_grouped", _model("oracle.gemm.bestla_woq", "woqgemm_w4"),
    "BesTLA woqgemm, asymmetric int4: w = (q - zp) * s in fp32 (the signed pair q - 8, zp - 8), fp32 accumulation, "
    "a partial last group; bit-exact as one fmaf chain over k from 0 where BesTLA runs its AVX2 fp32 core",
    "oracle/gemm/bestla_woq.py woqgemm_w4 (intel/neural-speed bestla/bestla/bestla_prologue_b.h weight "
    "decompression, the fp32 GEMM cores)",
    depends=("bestla_isa",)))


def _w4a16_fp32(ops: dict[str, np.ndarray], observed: dict) -> Expected:
    from oracle.gemm.wxa16 import grouped_weights, wxa16_exact

    x, codes, scales, zp, group = w4_parts(ops)
    w = grouped_weights(codes, scales.astype(np.float16), zp, group)
    exact, bound = wxa16_exact(x, w, acc="fp32", out=out_dtype(x))
    return Expected(exact, bound, None, out_dtype(x))


register(Semantics(
    "w4a16.fp32", "w4_sym", _w4a16_fp32,
    "w = (q - 8) * s with s stored in fp16, fp32 products and sums in any order, one rounding to x's dtype",
    "oracle/gemm/wxa16.py wxa16_exact (the project's Triton kernels, kernels/triton/w4a16.py)"))


def _mlas_dynamicquantizematmul(ops: dict[str, np.ndarray], observed: dict) -> Expected:
    from oracle.gemm.mlas_int8 import dynamic_quantize_matmul

    pred, exact, bound = dynamic_quantize_matmul(ops["x"], ops["w"].T, ops["scales"], observed["cpu_flags"])
    return Expected(exact, bound, pred, "fp32")


register(Semantics(
    "mlas.dynamicquantizematmul", "w8_float", _mlas_dynamicquantizematmul,
    "x fp32 quantized per tensor to u8 by DynamicQuantizeLinear's rule; int32 sums of (codes - zp) * w as MLAS's "
    "u8 x s8 kernel forms them on the observed host (int16 pair sums that saturate on AVX2 / AVX512BW without "
    "VNNI, exact elsewhere); y = fp32(float(acc) * fp32(sa * scales[n])), bit-exact",
    "oracle/gemm/mlas_int8.py dynamic_quantize_matmul (onnxruntime contrib_ops/cpu/quantization/"
    "dynamic_quantize_matmul.cc, core/util/qmath.h GetQuantizationParameter, MLAS qgemm.h, qpostprocessor.cpp)",
    depends=("cpu_flags",)))


register(Semantics(
    "onednn.s8_per_tensor", "w8_float", _model("oracle.gemm.bestla_woq", "woqgemm_s8_w8"),
    "dynamic int8 on oneDNN: x quantized per tensor by act.onednn.s8.per_tensor (sa = amax * fp32(1/127), "
    "q = RNE(x * fp32(1/sa)) saturated), the exact int32 sum of q * w, y = float(acc) * fp32(sa * s[n]) (gemm:jit, "
    "AMX) or (float(acc) * sa) * s[n] (other brg_matmul kernels); fp32 only",
    "oracle/gemm/bestla_woq.py woqgemm_s8_model (auto-round-lib woqgemm_s8 on its bundled oneDNN: abs-max "
    "reduction, linear by 1/127, reorder to s8, s8 x s8 matmul with src and wei scales)",
    depends=("onednn_impl",)))


register(Semantics(
    "fbgemm.linear_dynamic", "w8_float",
    _model("oracle.gemm.aten_qlinear_dynamic", "linear_dynamic_w8", engine="fbgemm"),
    "quantized.linear_dynamic (reduce_range=False): x quantized per tensor to quint8 by act.torch.per_tensor.quint8, "
    "the exact int32 sum of (q - zp) * w, y = fmaf(float(acc), fp32(sa * s[n]), bias) (FBGEMM ReQuantizeForFloat)",
    "oracle/gemm/aten_qlinear_dynamic.py linear_dynamic_model (pytorch aten/src/ATen/native/quantized/cpu/"
    "qlinear_dynamic.cpp PackedLinearWeight::apply_dynamic_impl)"))
register(Semantics(
    "onednn.linear_dynamic", "w8_float",
    _model("oracle.gemm.aten_qlinear_dynamic", "linear_dynamic_w8", engine="onednn"),
    "quantized.linear_dynamic on the onednn engine (reduce_range=False): x quantized as for fbgemm, the exact int32 "
    "sum, scaled by fp32(1/(1/sa) * 1/(1/s[n])) (gemm:jit, AMX) or by 1/(1/sa) then 1/(1/s[n]) (other brg_matmul "
    "kernels), by the implementations the call ran; an activation within a rounding of a half step may take either "
    "code (unpinned_codes: one code step in the bound, no prediction)",
    "oracle/gemm/aten_qlinear_dynamic.py linear_dynamic_model, onednn_epilogue (pytorch qlinear_dynamic.cpp "
    "PackedLinearWeightsOnednn::apply_dynamic_impl)",
    depends=("onednn_impls",)))
register(Semantics(
    "qnnpack.linear_dynamic", "w8_float",
    _model("oracle.gemm.aten_qlinear_dynamic", "linear_dynamic_w8", engine="qnnpack"),
    "quantized.linear_dynamic on the qnnpack engine: x quantized as for fbgemm, the exact int32 sum of (q - zp) * w, "
    "y = fp32(float(acc) * fp32(s[n] * sa)) + bias (a multiply, then an add); an activation within a rounding of a "
    "half step may take either code (unpinned_codes: one code step in the bound, no prediction)",
    "oracle/gemm/aten_qlinear_dynamic.py linear_dynamic_model (pytorch qlinear_dynamic.cpp "
    "PackedLinearWeightsQnnp::apply_dynamic_impl, QnnpackUtils.h generate_requantization_scales, "
    "qnnpack/src/q8gemm/4x4c2-dq-sse2.c pytorch_q8gemm_dq_ukernel_4x4c2__sse2)"))
register(Semantics(
    "aten.dyn_quant_4bit", "w4_sym", _model("oracle.gemm.aten_dyn_quant_4bit", "dyn_quant_w4"),
    "x fp32 quantized per row to int8 (range widened to 0, inverse scale 255/range, an lrintf zero point, codes "
    "std::round(x * inv) + zp); exact int32 block sums of (q - zp) * (code - 8), acc += isum * s[n, b] in fp32 in "
    "K order, y = acc * (1/inv); bit-exact. A row holding a NaN or Inf has no defined quantization: NaN there",
    "oracle/gemm/aten_dyn_quant_4bit.py dyn_quant_w4, dyn_quant_model (pytorch aten/src/ATen/native/cpu/"
    "int4mm_kernel.cpp ref_dyn_quant_matmul_4bit_groupwise_kernel / _channelwise_kernel)"))


def _int32_row_scaled(ops: dict[str, np.ndarray], observed: dict) -> Expected:
    """y = fp32(fp32(acc32) * s[m]) with acc32 the wrapped int32 sum: the exact value of that contract (the
    int32 result, wrapped, times the scale, in float64, one rounding of its own for 32 + 24 bits) and its
    bound: two fp32 roundings (the conversion above 2^24, the product), each within half an ulp or, below
    the smallest normal, eta absolute; bit-exact as numpy's correctly rounded fp32 ops (oracle.gemm.w8a8
    epilogue, sb = 1)."""
    from oracle.bounds import float_spec, gamma
    from oracle.gemm.w8a8 import epilogue, int8_matmul, wrap_int32

    acc = wrap_int32(int8_matmul(ops["a"], ops["b"]))
    s = np.asarray(ops["row_scales"], np.float32).reshape(-1)
    exact = acc.astype(np.float64) * s.astype(np.float64)[:, None]
    bound = (gamma(2, "fp32") + gamma(1, "fp64")) * np.abs(exact) + 2 * float_spec("fp32").eta
    ones = np.ones(acc.shape[1], np.float32)
    return Expected(exact, bound, epilogue(acc, s, ones, "(acc*sa)*sb"), "fp32")


register(Semantics(
    "w8a8.int32_row_scaled", "int8_row_scaled", _int32_row_scaled,
    "int8 x int8 summed into int32 (wrapping), converted to fp32 (round to nearest even) and multiplied by "
    "the fp32 row scale (one rounding): y = fp32(acc) * s[m], bit-exact",
    "oracle/gemm/w8a8.py int8_matmul, wrap_int32, epilogue '(acc*sa)*sb' with sb = 1 (torchao/kernel/intmm.py "
    "_int_scaled_matmul_cpu: 'c.to(scales1.dtype) * scales1'; intmm_triton.py "
    "scaled_matmul_kernel_with_block_pointers: 'acc * tmp0')"))


register(Semantics(
    "w8a8.sglang_per_token.acc_sa_sb", "w8_float",
    _model("oracle.gemm.w8a8", "per_token_w8", convention="act.sglang.per_token_int8.triton", order="(acc*sa)*sb"),
    "x quantized per token by act.sglang.per_token_int8.triton (absmax >= 1e-10, q = round_half_away(x * fp32(127 / "
    "absmax)), sa = absmax / 127), the int32 sum of q * w (wrapping), y = (float(acc) * sa) * s[n] in fp32, one RNE "
    "cast to x's dtype, bit-exact",
    "oracle/gemm/w8a8.py per_token_w8 (sglang python/sglang/srt/layers/quantization/int8_kernel.py "
    "per_token_quant_int8; the project's kernels/triton/w8a8.py linear)"))
register(Semantics(
    "da8w4.asym_fp32.mul_add", "w4_grouped",
    _model("oracle.gemm.da8w4", "da8w4_w4", convention="act.torchao.da8w4.asym.fp32", epilogue="mul_add"),
    "x quantized per token to uint8 by act.torchao.da8w4.asym.fp32; per K block (min(group, 128)) the int32 sum of "
    "a_q * (codes - zp) minus zp_a times the block's sum of (codes - zp); y = y + (float(acc) * sa) * s[n, g] in "
    "fp32 block after block (no FMA), one RNE cast to x's dtype, bit-exact",
    "oracle/gemm/da8w4.py da8w4_w4 (torchao torchao/csrc/cpu/aten_kernels/da8w4_linear.cpp _da8w4_linear_impl, "
    "its portable build's epilogue; the project's kernels/triton/da8w4.py)"))


def _mlas_matmulintegertofloat(ops: dict[str, np.ndarray], observed: dict) -> Expected:
    """MatMulIntegerToFloat's sums are the ones the host's MLAS kernel forms (the cpuid flags the worker saw
    choose it), so the exact value and the prediction are those of that integer model, as for DynamicQuantizeMatMul."""
    from oracle.gemm.mlas_int8 import float_output

    pred, exact, bound = float_output(_mlas_acc(ops, observed), ops["a_scale"], ops["b_scales"], ops["bias"])
    return Expected(exact, bound, pred, "fp32")


def _mlas_acc(ops: dict[str, np.ndarray], observed: dict) -> np.ndarray:
    """The int32 sums of (a - a_zp)(b - b_zp) (b_zp 0 where the signature has none) that MLAS's kernel for these
    operand types forms on the host the worker observed (oracle.gemm.mlas_int8.model_for, session option off)."""
    from oracle.gemm.mlas_int8 import accumulator, model_for

    a, b_kn = ops["a"], ops["b"].T
    model = model_for(a.dtype, b_kn.dtype, observed["cpu_flags"])
    return accumulator(a, ops["a_zp"], b_kn, ops.get("b_zp", 0), model)


def _mlas_qlinearmatmul(ops: dict[str, np.ndarray], observed: dict) -> Expected:
    """QLinearMatMul's u8 output: MLAS's int32 sums (those of MatMulIntegerToFloat) requantized per column."""
    from oracle.gemm.mlas_int8 import qlinear_scale, requantize

    scale = qlinear_scale(ops["a_scale"], ops["b_scales"], ops["y_scale"])
    return Expected(requantize(_mlas_acc(ops, observed), scale, ops["y_zp"], np.uint8))


register(Semantics(
    "mlas.matmulintegertofloat", "u8_affine", _mlas_matmulintegertofloat,
    "int32 sums of (a - a_zp) * b as MLAS's u8 x s8 kernel forms them on the observed host (int16 pair sums that "
    "saturate on AVX2 / AVX512BW without VNNI, exact elsewhere); y = fp32(fp32(float(acc) * fp32(a_scale * "
    "b_scales[n])) + bias[n]), bit-exact",
    "oracle/gemm/mlas_int8.py accumulator, float_output (onnxruntime contrib_ops/cpu/quantization/"
    "dynamic_quantize_matmul.cc MatMulIntegerToFloat::Compute, MatMulIntegerToFloatBase::ComputeCommon; MLAS "
    "qgemm.h, qpostprocessor.cpp)",
    depends=("cpu_flags",)))
register(Semantics(
    "onednn.qlinear_pointwise", "u8_affine", _model("oracle.gemm.aten_qlinear_dynamic", "qlinear_pointwise_u8"),
    "onednn::qlinear_pointwise, fp32 output, no post-op: the int32 sum of (a - a_zp) * b as the matmul the call ran "
    "forms it (int16 pair sums without VNNI, over gemm:jit's K blocks), y = float(acc) * fp32(a_scale * "
    "b_scales[n]) + bias[n] (gemm:jit, AMX) or (float(acc) * a_scale) * b_scales[n] + bias[n] (other brg_matmul "
    "kernels), bit-exact by the implementations the call ran",
    "oracle/gemm/aten_qlinear_dynamic.py qlinear_pointwise_u8 (pytorch aten/src/ATen/native/quantized/cpu/qlinear.cpp "
    "linear_int8_with_onednn_weight)",
    depends=("onednn_impls", "onednn_avx2")))
register(Semantics(
    "mlas.qlinearmatmul", "u8_requant", _mlas_qlinearmatmul,
    "int32 sums of (a - a_zp)(b - b_zp[n]) as MLAS's u8 x s8 kernel forms them on the observed host (int16 pair sums "
    "of the raw codes that saturate on AVX2 / AVX512BW without VNNI, exact elsewhere), requantized as "
    "saturate(RNE(fp32(float(acc) * fp32(fp32(a_scale * b_scales[n]) / y_scale))) + y_zp) to uint8, byte for byte",
    "oracle/gemm/mlas_int8.py accumulator, qlinear_scale, requantize (onnxruntime core/providers/cpu/quantization/"
    "quantize_linear_matmul.cc QLinearMatMul::Compute; MLAS qgemm.h MlasGemmQuantOperation, quantize.cpp "
    "MlasRequantizeOutput)",
    depends=("cpu_flags",)))
register(Semantics(
    "fbgemm.qlinear", "u8_requant", _model("oracle.gemm.fbgemm_requant", "qlinear_requant"),
    "quantized.linear (static, no bias) on fbgemm: the exact int32 sum of (a - a_zp)(b - b_zp[n]) (raw-code products "
    "corrected by row and column offsets), requantized as saturate(RNE(fp32(float(acc) * fp32(fp32(a_scale * "
    "b_scales[n]) / y_scale))) + y_zp) to uint8, byte for byte: QLinearMatMul's requantization, another library's "
    "convention",
    "oracle/gemm/fbgemm_requant.py qlinear_u8 (pytorch aten/src/ATen/native/quantized/cpu/qlinear.cpp "
    "PackedLinearWeight::apply_impl, qlinear_prepack.cpp calc_col_offsets_transpose; FBGEMM "
    "include/fbgemm/OutputProcessing-inl.h ReQuantizeOutput::f, src/QuantUtilsAvx2.cc "
    "requantizeOutputProcessingAvx2)"))
register(Semantics(
    "da8w4.asym.torchao_build", "w4_grouped", _model("oracle.gemm.da8w4", "da8w4_w4_torchao"),
    "x quantized per token to uint8 in its own dtype by act.torchao.da8w4.asym.{fp32,bf16,fp16}; per K block "
    "(min(group, 128)) the int32 sum of a_q * (codes - zp) minus zp_a times the block's sum of (codes - zp); "
    "y = y + (float(acc) * sa) * s[n, g] in fp32 block after block, rounded as the build that ran does it "
    "(observed da8w4_epilogue: 'mul_add' two roundings, 'fma' one), one RNE cast to x's dtype, bit-exact",
    "oracle/gemm/da8w4.py da8w4_w4_torchao (torchao torchao/prototype/quantization/int4/int4_opaque_tensor.py "
    "_da8w4_linear; torchao/csrc/cpu/aten_kernels/da8w4_linear.cpp _da8w4_linear_impl; the build's flags as "
    "benchmarks/build_torchao_cpu.py records them)",
    depends=("da8w4_epilogue",)))
