"""torch._int_mm: int8 (M, K) @ int8 (K, N) -> int32, which must be exact.

Upstream: aten/src/ATen/native/LinearAlgebra.cpp `_int_mm_out_cpu` (oneDNN matmul where
mkldnn is usable, else an int32 fallback). Judged byte for byte against oracle.gemm.w8a8's
exact accumulator, wrapped to int32 (the documented int32 result type).
"""
from __future__ import annotations

import numpy as np

from kernels.layouts import View, as_torch
from kernels.pytorch._torch import num_threads, observe_torch, onednn_verbose, op_available, to_numpy, to_torch
from kernels.registry import KernelInfo, register
from kernels.spec import ACTIVATION_LAYOUTS, WEIGHT_LAYOUTS, KernelSpec, register_spec

INFO = register(KernelInfo(
    name="torch.int_mm", package="torch", op="torch._int_mm", module=__name__,
    conventions=("w8a8.int32_exact",), isa_knobs=("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA"),
    dtypes=("int8",), notes="int32 output must equal the exact int32 accumulator"))

SPEC = register_spec(KernelSpec(
    kernel=INFO.name, call="int_mm_view", semantics="w8a8.int32_wrap", args=("a", "b.T"),
    layouts={"a": ACTIVATION_LAYOUTS, "b.T": WEIGHT_LAYOUTS}, threads=True, out_buffer=True,
    source="aten/src/ATen/native/native_functions.yaml _int_mm / _int_mm.out (strided tensors, out= variant)"))


def available() -> dict:
    return op_available("_int_mm")


def observe() -> dict:
    return observe_torch()


def int_mm(a: np.ndarray, b_kn: np.ndarray) -> np.ndarray:
    """a int8 (M, K), b int8 (K, N) -> int32 (M, N)."""
    import torch

    with onednn_verbose():
        return to_numpy(torch._int_mm(to_torch(a), to_torch(b_kn)))


def int_mm_view(a: View, b_kn: View, *, out: View | None = None, threads: int | None = None) -> np.ndarray:
    """torch._int_mm over the caller's views as they are (no copy); with `out`, into that view of a
    buffer, returning the buffer's whole storage."""
    import torch

    with num_threads(threads), onednn_verbose():
        if out is None:
            return to_numpy(torch._int_mm(as_torch(a), as_torch(b_kn)))
        torch._int_mm(as_torch(a), as_torch(b_kn), out=as_torch(out))
        return out.storage
