"""torch._weight_int8pack_mm: x (M, K) fp32/fp16/bf16 @ int8 w (N, K).T, times per-channel scales.

Upstream: aten/src/ATen/native/cpu/int8mm_kernel.cpp `int8pack_mm_kernel_` (dot product of x
with the int8 row in fp32, then `* scale[n]`, cast to x's dtype). Scales are in x's dtype.
Weights come from the torch.int8pack convention (torch's tests' per-channel quantizer).
Every tensor is a fresh 64-byte-aligned torch allocation (to_torch): the AVX512 bf16 kernel loads
rows of x with 32-byte aligned loads and the int8 rows with 16-byte aligned ones (the AVX2 one x
with 16-byte aligned loads), so `x_offset_bytes` places x off that boundary on purpose.
"""
from __future__ import annotations

import numpy as np

from kernels.layouts import View, as_torch
from kernels.pytorch._torch import TORCH_DTYPES, num_threads, observe_torch, op_available, to_numpy, to_torch, to_torch_at
from kernels.registry import KernelInfo, register
from kernels.spec import KernelSpec, register_spec

INFO = register(KernelInfo(
    name="torch.weight_int8pack_mm", package="torch", op="torch._weight_int8pack_mm", module=__name__,
    conventions=("torch.int8pack",), isa_knobs=("ATEN_CPU_CAPABILITY",), dtypes=TORCH_DTYPES,
    notes="fp32 accumulation of x * w, then the per-channel scale, then the cast to x's dtype"))

SPEC = register_spec(KernelSpec(
    kernel=INFO.name, call="int8pack_mm_view", semantics="aten.int8pack", args=("x", "w", "scales"),
    layouts={"x": ("dense", "row_pitch", "offset", "broadcast", "batch_row"), "w": ("dense", "offset")},
    threads=True, dtypes=TORCH_DTYPES, modelled=True,
    source="aten/src/ATen/native/LinearAlgebra.cpp _weight_int8pack_mm_cpu: 'A must be contiguous on the last "
           "dimension', 'expect B to be contiguous'"))


def available() -> dict:
    return op_available("_weight_int8pack_mm")


def observe() -> dict:
    return observe_torch()


def int8pack_mm(x: np.ndarray, w: np.ndarray, scales: np.ndarray, x_offset_bytes: int = 0) -> np.ndarray:
    """x (M, K), w int8 (N, K), scales (N,) in x's dtype -> (M, N) in x's dtype; x starts x_offset_bytes past 64."""
    import torch

    return to_numpy(torch._weight_int8pack_mm(to_torch_at(x, x_offset_bytes), to_torch(w), to_torch(scales)))


def int8pack_mm_view(x: View, w: View, scales: np.ndarray, *, threads: int | None = None) -> np.ndarray:
    """_weight_int8pack_mm over the caller's views of x and w as they are (no copy)."""
    import torch

    with num_threads(threads):
        return to_numpy(torch._weight_int8pack_mm(as_torch(x), as_torch(w), to_torch(scales)))
