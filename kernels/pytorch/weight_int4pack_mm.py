"""torch._weight_int4pack_mm_for_cpu with its packer `_convert_weight_to_int4pack_for_cpu`.

Upstream: aten/src/ATen/native/cpu/int4mm_kernel.cpp (`weight_to_int4pack_kernel`,
`int4pack_mm_kernel_`): w = (q - 8) * scale + zero (tinygemm float zero point), fp32
accumulation, output in x's dtype; scales_and_zeros [K/group, N, 2] in x's dtype. The packed
layout depends on the ATen capability (n paired with n+1, n+16 or n+32), so packing and the
matmul happen in the same worker call, under the same capability.
"""
from __future__ import annotations

import numpy as np

from kernels.layouts import View, as_torch
from kernels.pytorch._torch import TORCH_DTYPES, num_threads, observe_torch, op_available, to_numpy, to_torch
from kernels.registry import KernelInfo, Space, register
from kernels.spec import KernelSpec, register_spec
from oracle.gemm.aten_int4pack import tinygemm_stored

INFO = register(KernelInfo(
    name="torch.weight_int4pack_mm", package="torch", op="torch._weight_int4pack_mm_for_cpu", module=__name__,
    conventions=("tinygemm.torchao", "tinygemm.torch_test"), isa_knobs=("ATEN_CPU_CAPABILITY",), dtypes=TORCH_DTYPES,
    notes="N a multiple of 16, K a multiple of the group size (32..256)",
    space=Space(n_multiple=16, source="aten/src/ATen/native/LinearAlgebra.cpp _convert_weight_to_int4pack_cpu: "
                                      "'expect N to be dividable by 16'"),
    extra={"group_sizes": (32, 64, 128, 256)}))

SPEC = register_spec(KernelSpec(
    kernel=INFO.name, call="int4pack_mm_view", semantics="aten.int4pack", args=("x", "codes", "scales", "zp", "group"),
    layouts={"x": ("dense", "offset", "batch_row")}, threads=True, dtypes=TORCH_DTYPES, groups=(32, 64, 128, 256),
    source="aten/src/ATen/native/LinearAlgebra.cpp _weight_int4pack_mm_cpu: 'expect A to be contiguous.'"))


def available() -> dict:
    return op_available("_weight_int4pack_mm_for_cpu", "_convert_weight_to_int4pack_for_cpu")


def observe() -> dict:
    return observe_torch()


def int4pack_mm(x: np.ndarray, codes: np.ndarray, scales_and_zeros: np.ndarray, group_size: int,
                inner_k_tiles: int = 2) -> dict:
    """Pack int32 codes (N, K) in 0..15 and run; returns the output and the packed bytes."""
    import torch

    packed = torch._convert_weight_to_int4pack_for_cpu(to_torch(codes.astype(np.int32)), inner_k_tiles)
    y = torch._weight_int4pack_mm_for_cpu(to_torch(x), packed, group_size, to_torch(scales_and_zeros))
    return {"y": to_numpy(y), "packed": to_numpy(packed)}


def int4pack_mm_view(x: View, codes: np.ndarray, scales: np.ndarray, zp: np.ndarray, group: int, *,
                     threads: int | None = None) -> np.ndarray:
    """The tinygemm GEMM over the caller's view of x as it is, with integer zero points written as
    tinygemm's float zeros (oracle.gemm.aten_int4pack.tinygemm_stored), packed in the same call."""
    import torch

    s, z = tinygemm_stored(scales, zp, x.storage.dtype)
    sz = np.ascontiguousarray(np.stack([s, z], axis=2).transpose(1, 0, 2))  # [K/group, N, 2]
    with num_threads(threads):
        packed = torch._convert_weight_to_int4pack_for_cpu(to_torch(codes.astype(np.int32)), 2)
        return to_numpy(torch._weight_int4pack_mm_for_cpu(as_torch(x), packed, group, to_torch(sz)))
