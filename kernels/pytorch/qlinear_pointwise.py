"""torch.ops.onednn.qlinear_pointwise (the static int8 linear inductor emits on x86), fp32 output.

Upstream: aten/src/ATen/native/quantized/cpu/qlinear.cpp (`QLinearOnednn::run_pointwise`,
`linear_int8_with_onednn_weight`) with its packer `onednn::qlinear_prepack(weight, x_shape)`:
uint8 activations with a per-tensor scale and zero point, int8 weights (N, K) with per-channel
scales and zero points 0, an oneDNN u8 x s8 matmul, output scale 1 / zero point 0 for fp32.
"""
from __future__ import annotations

import numpy as np

from kernels.pytorch._torch import observe_torch, onednn_verbose, op_available, to_numpy, to_torch
from kernels.registry import KernelInfo, register

INFO = register(KernelInfo(
    name="torch.onednn.qlinear_pointwise", package="torch", op="torch.ops.onednn.qlinear_pointwise", module=__name__,
    conventions=("w8a8.int32_exact",), isa_knobs=("ONEDNN_MAX_CPU_ISA",), dtypes=("fp32",),
    notes="uint8 x (per tensor, zero point) @ int8 w (per channel), fp32 out, post_op 'none'"))


def available() -> dict:
    return op_available("ops.onednn.qlinear_pointwise", "ops.onednn.qlinear_prepack")


def observe() -> dict:
    return observe_torch()


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
