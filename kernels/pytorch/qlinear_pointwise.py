"""torch.ops.onednn.qlinear_pointwise (the static int8 linear inductor emits on x86), fp32 output.

Upstream: aten/src/ATen/native/quantized/cpu/qlinear.cpp (`QLinearOnednn::run_pointwise`,
`linear_int8_with_onednn_weight`) with its packer `onednn::qlinear_prepack(weight, x_shape)`:
uint8 activations with a per-tensor scale and zero point, int8 weights (N, K) with per-channel
scales and zero points 0, an oneDNN u8 x s8 matmul, output scale 1 / zero point 0 for fp32.
`qlinear_pointwise_view` is on the spec engine (u8_affine: per-channel scales, a bias); `qlinear_pointwise` serves
the ISA evidence tests and the fingerprint probes.
"""
from __future__ import annotations

import os

import numpy as np

from kernels.layouts import View, as_torch
from kernels.pytorch._torch import num_threads, observe_torch, onednn_verbose, op_available, to_numpy, to_torch
from kernels.registry import KernelInfo, register
from kernels.spec import ACTIVATION_LAYOUTS, WEIGHT_LAYOUTS, KernelSpec, register_spec

INFO = register(KernelInfo(
    name="torch.onednn.qlinear_pointwise", package="torch", op="torch.ops.onednn.qlinear_pointwise", module=__name__,
    conventions=("w8a8.int32_exact",), isa_knobs=("ONEDNN_MAX_CPU_ISA",), dtypes=("fp32",),
    notes="uint8 x (per tensor, zero point) @ int8 w (per channel), fp32 out, post_op 'none'"))

SPEC = register_spec(KernelSpec(
    kernel=INFO.name, call="qlinear_pointwise_view", semantics="onednn.qlinear_pointwise",
    args=("a", "a_scale", "a_zp", "b", "b_scales", "bias"), layouts={"a": ACTIVATION_LAYOUTS, "b": WEIGHT_LAYOUTS},
    threads=True, modelled=True,
    source="aten/src/ATen/native/quantized/cpu/qlinear.cpp linear_int8_with_onednn_weight: 'auto input_contig = dim "
           "== 2 ? input.contiguous() : ...' (any strides of the activations); qlinear_prepack.cpp "
           "pack_weight_to_onednn_tensor: 'ideep::tensor({w_dims, dnnl::memory::data_type::s8}, weight.data_ptr())' "
           "(the weight's sizes over its data pointer, whatever its strides)"))


def available() -> dict:
    return op_available("ops.onednn.qlinear_pointwise", "ops.onednn.qlinear_prepack")


def observe() -> dict:
    """torch's own facts, and whether oneDNN may run AVX2 here (its gemm:jit int8 K blocking depends on it,
    oracle.gemm.aten_qlinear_dynamic.gemm_jit_k_block): the host has it and ONEDNN_MAX_CPU_ISA does not cap below."""
    from kernels.isa import host_flags

    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    return {**observe_torch(), "onednn_avx2": "avx2" in host_flags() and cap not in ("SSE41", "AVX")}


def qlinear_pointwise(qx: np.ndarray, x_scale: float, x_zp: int, w: np.ndarray, w_scale: np.ndarray,
                      bias: np.ndarray | None) -> np.ndarray:
    """qx uint8 (M, K), w int8 (N, K), w_scale fp32 (N,) -> y fp32 (M, N)."""
    import torch

    with onednn_verbose():
        packed = torch.ops.onednn.qlinear_prepack(to_torch(w), list(qx.shape))
        y = torch.ops.onednn.qlinear_pointwise(to_torch(qx), float(x_scale), int(x_zp), packed, to_torch(w_scale),
                                               torch.zeros(w.shape[0], dtype=torch.int32),
                                               None if bias is None else to_torch(bias), 1.0, 0, torch.float32,
                                               "none", [], "")
    return to_numpy(y)


def qlinear_pointwise_view(a: View, a_scale: float, a_zp: int, b: View, b_scales: np.ndarray, bias: np.ndarray, *,
                           threads: int | None = None) -> np.ndarray:
    """qlinear_pointwise over the caller's views of a (uint8 (M, K)) and b (int8 (N, K), packed by qlinear_prepack),
    per-channel scales, weight zero points 0, a bias, fp32 out, under `threads` ATen threads."""
    import torch

    x, w = as_torch(a), as_torch(b)
    with num_threads(threads), onednn_verbose():
        packed = torch.ops.onednn.qlinear_prepack(w, list(x.shape))
        y = torch.ops.onednn.qlinear_pointwise(x, float(a_scale), int(a_zp), packed, to_torch(b_scales),
                                               torch.zeros(w.shape[0], dtype=torch.int32), to_torch(bias), 1.0, 0,
                                               torch.float32, "none", [], "")
    return to_numpy(y)
