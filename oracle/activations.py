"""Dynamic activation quantizers, each a named `Convention` in the shared registry.

Per token is one group per row (`group_size=-1`), per K group a positive group size, per
tensor `group_size=0`. `quantize` returns the codes, the fp32 scales and the zero points
exactly as the upstream path produces them.

- sglang Triton `per_token_quant_int8` (python/sglang/srt/layers/quantization/int8_kernel.py):
  absmax = max(max|x|, 1e-10), scale = absmax / 127, q = round(x * (127 / absmax)) with
  libdevice `round` (half away from zero), no clamp.
- vLLM `dynamic_scaled_int8_quant` / sgl-kernel CUDA (csrc/quantization/compressed_tensors/int8_quant_kernels.cu):
  scale = absmax / 127, q = x * (127 / absmax) converted by `cvt.rni.sat` (RNE, saturating), no eps.
- torchao DA8W4 (torchao/prototype/quantization/int4/int4_opaque_tensor.py `_da8w4_linear`, which calls
  choose_qparams_affine / quantize_affine): asymmetric uint8 with the scale and zero point computed
  in the INPUT dtype (each op rounded to bf16/fp16 as torch's CPU kernels do) then cast to fp32;
  symmetric int8 in [-127, 127] for act_mapping_type="symmetric".
- ONNX Runtime MatMulNBits accuracy_level 4 (onnxruntime/core/mlas/lib/sqnbitgemm_kernel_avx2.cpp
  QuantizeARow_CompInt8_avx2): per block of the weight block size along K, scale = amax / 127.f,
  q = _mm256_round_ps(x * (amax ? 127.f / amax : 0), nearest), i.e. RNE with the multiplier
  computed from amax, not 1/scale (the two differ by an ulp for many amax, moving near-half codes).
- BesTLA (intel/neural-speed bestla/bestla/kernel_ref.h `quantize_fp_s8_colblock`,
  `quantize_fp_u8_colblock`): s8 scale = max(FLT_MIN, amax)/127, q = cast<int8>(x * (1/s));
  u8 scale = (max - min(min, 0))/255, zp = cast<uint8>(-min / s), q = zp + cast<int>(x * (1/s)).
- oneDNN dynamic per-tensor s8 (the primitives auto-round-lib's `woqgemm_s8` runs, seen with ONEDNN_VERBOSE:
  an abs-max reduction over the whole tensor, `linear` by 1/127, a f32 -> s8 reorder with a destination
  scale): s = amax * fp32(1/127), q = RNE(x * fp32(1/s)) saturated to int8 (an all-zero tensor
  has s = 0 and codes 0). The reorder multiplies by the reciprocal on the AVX2 host (inputs that
  separate it from x / s: conformance/test_bestla_int8.py::test_woqgemm_s8_reciprocal_not_divide);
  other ISA paths of oneDNN's reorder are not confirmed.
- PyTorch per-tensor dynamic quantization (`torch.quantize_per_tensor_dynamic`, the same qparams as
  `torch._choose_qparams_per_tensor`; quant_utils::ChooseQuantizationParams in
  aten/src/ATen/native/quantized/cpu/QuantUtils.h, a copy of FBGEMM's): range widened to 0, the scale
  computed in double and rounded to float once, the zero point in double, and codes from fbgemm's
  AVX2 `Quantize`, which fuses `x * (1/scale) + zp` (see `Convention._quantize_fbgemm`). quint8 and
  qint8, each with and without reduce_range (the qparams use half the range, codes keep the dtype's).
"""
from __future__ import annotations

from oracle.conventions.convention import Convention, register

_F32_EPS = 1.1920928955078125e-07
_FLT_MIN = 1.1754943508222875e-38

register(Convention(
    name="act.sglang.per_token_int8.triton", kind="activation", bits=8, symmetric=True, group_size=-1,
    scale_rule="absmax", divisor=127, qmin=-128, qmax=127, rounding="half_away", zero_domain="fixed",
    inverse="divisor_over_stat", eps=1e-10, eps_on="statistic", clamp=False, packing="bytes",
    source="sgl-project/sglang python/sglang/srt/layers/quantization/int8_kernel.py: per_token_quant_int8",
    summary="per-token int8 (sglang Triton): absmax >= 1e-10, q = round_half_away(x * 127/absmax), no clamp",
    confirmed="source reading only (Triton kernel; CPU Triton not run here)"))
register(Convention(
    name="act.vllm.per_token_int8.cuda", kind="activation", bits=8, symmetric=True, group_size=-1,
    scale_rule="absmax", divisor=127, qmin=-128, qmax=127, rounding="rne", zero_domain="fixed",
    inverse="divisor_over_stat", packing="bytes",
    source="vllm-project/vllm csrc/quantization/compressed_tensors/int8_quant_kernels.cu: "
           "dynamic_scaled_int8_quant_kernel (sgl-kernel's per_token_quant_int8 rounds the same way)",
    summary="per-token int8 (vLLM / sgl-kernel CUDA): q = cvt.rni.sat(x * 127/absmax), RNE saturating, no eps",
    confirmed="source reading only (CUDA kernel)"))
for _dt in ("fp32", "bf16", "fp16"):
    register(Convention(
        name=f"act.torchao.da8w4.asym.{_dt}", kind="activation", bits=8, symmetric=False, group_size=-1,
        scale_rule="range_with_zero", divisor=255, qmin=0, qmax=255, rounding="rne", zero_domain="int",
        eps=_F32_EPS, compute_dtype=_dt, packing="bytes",
        source="torchao/prototype/quantization/int4/int4_opaque_tensor.py: _da8w4_linear; "
               "torchao/quantization/quant_primitives.py: choose_qparams_affine, quantize_affine",
        summary=f"per-token uint8 (torchao DA8W4) from {_dt} input: s = range/255 and zp = -round(min/s) in {_dt}, "
                "q = RNE(x * (1/fp32(s))) + zp",
        confirmed="torchao quant_primitives (tests/test_activations.py)"))
register(Convention(
    name="act.torchao.da8w4.sym", kind="activation", bits=8, symmetric=True, group_size=-1,
    scale_rule="absmax", divisor=127, qmin=-127, qmax=127, rounding="rne", zero_domain="fixed",
    eps=_F32_EPS, packing="bytes",
    source="torchao/prototype/quantization/int4/int4_opaque_tensor.py: _da8w4_linear (symmetric); "
           "torchao/quantization/quant_primitives.py: choose_qparams_affine, quantize_affine",
    summary="per-token int8 [-127,127] (torchao DA8W4 symmetric): s = absmax/127, q = RNE(x * (1/s))",
    confirmed="torchao quant_primitives (tests/test_activations.py)"))
register(Convention(
    name="act.ort.matmulnbits.int8_blk", kind="activation", bits=8, symmetric=True, group_size=32,
    scale_rule="absmax", divisor=127, qmin=-128, qmax=127, rounding="rne", zero_domain="fixed",
    inverse="divisor_over_stat", packing="bytes",
    source="onnxruntime/core/mlas/lib/sqnbitgemm_kernel_avx2.cpp: QuantizeARow_CompInt8_avx2 (accuracy_level 4)",
    summary="per-K-block int8 (ORT MatMulNBits accuracy_level 4): s = amax/127, q = RNE(x * (amax ? 127/amax : 0))",
    confirmed="onnxruntime 1.32 AVX2 MatMulNBits outputs on near-half and exact-half inputs "
              "(tests/test_ort_level4_int8.py)"))
register(Convention(
    name="act.bestla.s8", kind="activation", bits=8, symmetric=True, group_size=32,
    scale_rule="absmax", divisor=127, qmin=-128, qmax=127, rounding="half_away", zero_domain="fixed",
    eps=_FLT_MIN, eps_on="statistic", packing="bytes",
    source="intel/neural-speed bestla/bestla/kernel_ref.h: quantize_fp_s8_colblock",
    summary="per-K-block int8 (BesTLA s8): s = max(FLT_MIN, amax)/127, q = roundf(x * (1/s)) saturated",
    confirmed="source reading only"))
register(Convention(
    name="act.bestla.u8", kind="activation", bits=8, symmetric=False, group_size=32,
    scale_rule="range_with_zero", divisor=255, qmin=0, qmax=255, rounding="half_away", zero_domain="int",
    packing="bytes",
    source="intel/neural-speed bestla/bestla/kernel_ref.h: quantize_fp_u8_colblock",
    summary="per-K-block uint8 (BesTLA u8): s = range/255 (0 in range), zp = roundf(-min/s), q = zp + roundf(x/s)",
    confirmed="source reading only"))
register(Convention(
    name="act.onednn.s8.per_tensor", kind="activation", bits=8, symmetric=True, group_size=0,
    scale_rule="absmax", divisor=127, scale_op="times_reciprocal", qmin=-128, qmax=127, rounding="rne",
    zero_domain="fixed", inverse="reciprocal", packing="bytes",
    source="oneDNN reduction (max of abs), eltwise linear 1/127 and f32->s8 reorder with a destination scale, "
           "as auto-round-lib's woqgemm_s8 runs them (ONEDNN_VERBOSE); oneDNN dev guide: reorder, attributes scaling",
    summary="per-tensor int8 (oneDNN dynamic s8): s = amax * fp32(1/127), q = RNE(x * fp32(1/s)) saturated",
    confirmed="auto-round-lib woqgemm_s8 outputs bit for bit (conformance/test_bestla_int8.py)"))
_FBGEMM_SRC = ("aten/src/ATen/native/quantized/QTensor.cpp: quantize_per_tensor_dynamic, _choose_qparams_per_tensor; "
               "aten/src/ATen/native/quantized/cpu/QuantUtils.h: ChooseQuantizationParams; "
               "FBGEMM src/QuantUtilsAvx2.cc: QuantizeAvx2")
_FBGEMM_OK = ("torch.quantize_per_tensor_dynamic and torch._choose_qparams_per_tensor byte for byte, "
              "half-step inputs included (tests/test_activations.py)")
for _dt, _lo, _hi in (("quint8", 0, 255), ("qint8", -128, 127)):
    for _rr in (False, True):
        _range = (_lo // 2, _hi // 2) if _rr else (_lo, _hi)
        register(Convention(
            name=f"act.torch.per_tensor.{_dt}" + (".reduce_range" if _rr else ""), kind="activation", bits=8,
            symmetric=False, group_size=0, scale_rule="fbgemm_minmax", divisor=_range[1] - _range[0],
            qmin=_lo, qmax=_hi, rounding="rne", zero_domain="int", qparam_range=_range, packing="bytes",
            source=_FBGEMM_SRC, confirmed=_FBGEMM_OK,
            summary=f"per-tensor {_dt} (PyTorch/fbgemm dynamic{', reduce_range' if _rr else ''}): "
                    f"s = float((double)range/{_range[1] - _range[0]}), zp from the smaller-error end in double, "
                    "q = rint(fmaf(x, 1/s, zp))"))
