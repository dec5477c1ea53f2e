"""torch._int_mm: int8 (M, K) @ int8 (K, N) -> int32, which must be exact.

Upstream: aten/src/ATen/native/LinearAlgebra.cpp `_int_mm_out_cpu` (oneDNN matmul where
mkldnn is usable, else an int32 fallback). Judged byte for byte against oracle.gemm.w8a8's
exact accumulator, wrapped to int32 (the documented int32 result type).
"""
from __future__ import annotations

import numpy as np

from kernels.pytorch._torch import observe_torch, onednn_verbose, op_available, to_numpy, to_torch
from kernels.registry import KernelInfo, register

INFO = register(KernelInfo(
    name="torch.int_mm", package="torch", op="torch._int_mm", module=__name__,
    conventions=("w8a8.int32_exact",), isa_knobs=("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA"),
    dtypes=("int8",), notes="int32 output must equal the exact int32 accumulator"))


def available() -> dict:
    return op_available("_int_mm")


def observe() -> dict:
    return observe_torch()


def int_mm(a: np.ndarray, b_kn: np.ndarray) -> np.ndarray:
    """a int8 (M, K), b int8 (K, N) -> int32 (M, N)."""
    import torch

    with onednn_verbose():
        return to_numpy(torch._int_mm(to_torch(a), to_torch(b_kn)))
