"""PyTorch's static quantized linear on the fbgemm (and x86) engine: u8 activations, per-channel s8 weights
with zero points, u8 output, byte for byte.

Sources:
- pytorch aten/src/ATen/native/quantized/cpu/qlinear_prepack.cpp `calc_col_offsets_transpose`: the
  packed weight keeps col_offsets[n] = sum_k w[n, k] - w_zp[n] * K (int32), the zero points w_zp
  and the scales as fp32 (w_scale).
- qlinear.cpp `PackedLinearWeight::apply_impl`: input_scale_float = fp32(input.q_scale());
  act_times_w_scale[n] = fp32(input_scale_float * w_scale[n]); output_multiplier_float[n] =
  fp32(act_times_w_scale[n] / static_cast<float>(output_scale)) (an fp32 division);
  `PackAWithRowOffset` packs the RAW u8 codes and keeps each row's sum (row_offsets), and
  `fbgemm::ReQuantizeOutput<ReluFused, OUT_CHANNEL, float>` finishes every output.
- FBGEMM include/fbgemm/OutputProcessing-inl.h `ReQuantizeOutput::f` (scalar path; the AVX2 / AVX512
  path, src/QuantUtilsAvx2.cc `requantizeOutputProcessingAvx2`, does the same in vectors: cvtepi32_ps,
  mul_ps, cvtps_epi32 under the default MXCSR, saturating packs): raw = acc - a_zp * col_offsets[n]
  - row_offsets[m] * w_zp[n] (int32), raw_f = float(raw) (plus bias[n] / act_times_w_scale[n] where a
  float bias is packed: not part of u8_requant), ab = fp32(raw_f * multiplier[n]), y = clamp(lrintf(ab)
  + y_zp, 0, 255) (ReluFused: clamped below at y_zp).
So y = saturate(RNE(fp32(float(acc) * fp32(fp32(a_scale * w_scale[n]) / y_scale))) + y_zp), where acc is
sum_k (a - a_zp)(w - w_zp[n]) in int32: the arithmetic of ONNX Runtime's QLinearMatMul (oracle.gemm.mlas_int8
`qlinear_scale`, `requantize`), which this module reuses. The u8 x s8 products of raw codes run through
vpmaddubsw on AVX2 / AVX512 without VNNI, whose int16 pair sums saturate (by design, as for linear_dynamic:
conformance/known_defects.py); the semantics is the exact int32 sum.
"""
from __future__ import annotations

import numpy as np

from oracle.gemm.mlas_int8 import accumulator, qlinear_scale, requantize

__all__ = ["qlinear_requant", "qlinear_u8"]


def qlinear_u8(a: np.ndarray, a_scale, a_zp, w: np.ndarray, w_scales, w_zp, y_scale, y_zp) -> np.ndarray:
    """uint8 (M, N): a uint8 (M, K), w int8 (N, K) with per-channel fp32 scales and int zero points (N,),
    requantized by ReQuantizeOutput as the module docstring derives it (exact int32 sums)."""
    acc = accumulator(a, a_zp, np.asarray(w).T, np.asarray(w_zp, np.int64), "exact")
    return requantize(acc, qlinear_scale(a_scale, w_scales, y_scale), y_zp, np.uint8)


def qlinear_requant(ops: dict[str, np.ndarray], observed: dict):
    """u8_requant as quantized.linear on fbgemm computes it (see `qlinear_u8`)."""
    from oracle.gemm.semantics import Expected

    return Expected(qlinear_u8(ops["a"], ops["a_scale"], ops["a_zp"], ops["b"], ops["b_scales"], ops["b_zp"],
                               ops["y_scale"], ops["y_zp"]))
