"""torchao's shipped Triton int8 kernels (torchao/kernel/intmm_triton.py), driven directly.

`torch.ops.torchao.int_matmul` / `int_scaled_matmul` are registered for CUDA only and pick a
config with torchao's autotuner over ~960 configs, so the adapter calls the module's launch
helpers `int_matmul_kernel(a, b, c, config)` and `int_scaled_matmul_kernel(a, b, scales1, c,
config)` with one fixed `triton.Config` taken from torchao's own list (64 x 15 tile/stage/warp
combinations). That runs the same JIT kernels natively on CUDA and in the interpreter on CPU.

- matmul_kernel_with_block_pointers: int32 acc += tl.dot(int8 A, int8 B) over block pointers
  with boundary checks: exact int32 (wrapping) for any shape.
- scaled_matmul_kernel_with_block_pointers: the same accumulator, then `acc * scales1[m]`
  (int32 * fp32 promotes to fp32: float(acc) rounded, one rounding for the product) stored in
  scales1's dtype: oracle.gemm.w8a8 '(acc*sa)*sb' with sb = 1. Its loads are unmasked when
  EVEN_K = (K % 2 == 0), which is only safe when K is a multiple of BLOCK_K: for an even K that
  is not, the last K step reads past each row (the suite shows it).
Versions: read from torchao 0.18.0's source with triton 3.6.0; the kernels use
`tl.make_block_ptr`/`tl.advance` (still in triton 3.6) and reassign the GROUP_M constexpr.
"""
from __future__ import annotations

import numpy as np

from kernels.layouts import View
from kernels.loading import import_failure
from kernels.triton import runtime  # first: it sets TRITON_INTERPRET before triton is imported

__all__ = ["available", "observe", "int_matmul", "int_matmul_view", "int_scaled_matmul", "int_scaled_matmul_view",
           "config"]


def available() -> dict:
    base = runtime.available()
    if not base["ok"]:
        return base
    try:
        from torchao.kernel import intmm_triton  # noqa: F401
    except Exception as e:  # absent or incompatible torchao is the reason
        return import_failure(("torchao",), "torchao.kernel.intmm_triton", e)
    return base


def observe() -> dict:
    return runtime.observe()


def config(m: int, n: int, k: int, block: tuple[int, int, int, int, int] | None = None):
    """A triton.Config from torchao's own list: small tiles in the interpreter, whose BLOCK_K is the largest of
    256, 128, 64 that divides K (32 otherwise: an interpreted K step costs the same whatever its width, so the
    K = 131584 int32-wrap GEMV takes 514 steps, not 4112; a K that BLOCK_K divides never meets the EVEN_K defect), and
    Hopper-sized on the GPU."""
    import triton

    if block is None:
        bk = next((b for b in (256, 128, 64) if k % b == 0), 32)
        block = (32, 32, bk, 1, 4) if runtime.interpreted() else (128, 256, 128, 3, 8)
    bm, bn, bk, stages, warps = block
    return triton.Config({"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk, "GROUP_M": 8}, num_stages=stages,
                         num_warps=warps)


def int_matmul(a: np.ndarray, w: np.ndarray, block=None) -> np.ndarray:
    """int32 a (M, K) @ w (N, K).T; B is passed as the (K, N) transposed view, as a caller of the op would."""
    import torch
    from torchao.kernel import intmm_triton

    at, wt = runtime.to_torch(a), runtime.to_torch(w)
    b = wt.t()
    c = torch.empty((a.shape[0], w.shape[0]), dtype=torch.int32, device=at.device)
    intmm_triton.int_matmul_kernel(at, b, c, config(a.shape[0], w.shape[0], a.shape[1], block))
    return runtime.to_numpy(c)


def int_matmul_view(a: View, b_kn: View, *, out: View | None = None, block=None) -> np.ndarray:
    """int_matmul_kernel over the caller's views as they are: it hands each operand's strides to its block
    pointers, and with `out` stores into that view of a buffer (returning the buffer's whole storage)."""
    import torch
    from torchao.kernel import intmm_triton

    (at, _), (bt, _) = runtime.view_on_device(a), runtime.view_on_device(b_kn)
    m, k, n = a.shape[0], a.shape[1], b_kn.shape[1]
    c, c_storage = runtime.view_on_device(out) if out is not None else (torch.empty((m, n), dtype=torch.int32, device=at.device),
                                                             None)
    intmm_triton.int_matmul_kernel(at, bt, c, config(m, n, k, block))
    return runtime.to_numpy(c if c_storage is None else c_storage)


def int_scaled_matmul(a: np.ndarray, w: np.ndarray, scales1: np.ndarray, block=None) -> np.ndarray:
    """float(acc) * scales1[m] in scales1's dtype (fp32 here), scales1 expanded to (M, N) as the op does."""
    import torch
    from torchao.kernel import intmm_triton

    at, wt = runtime.to_torch(a), runtime.to_torch(w)
    m, n = a.shape[0], w.shape[0]
    s = runtime.to_torch(np.asarray(scales1, np.float32).reshape(m, 1)).expand((m, n))
    c = torch.empty((m, n), dtype=s.dtype, device=at.device)
    intmm_triton.int_scaled_matmul_kernel(at, wt.t(), s, c, config(m, n, a.shape[1], block))
    return runtime.to_numpy(c)


def int_scaled_matmul_view(a: View, b_kn: View, row_scales: np.ndarray, *, block=None) -> np.ndarray:
    """int_scaled_matmul_kernel over the caller's views of a and b (K, N) as they are (their strides go to the
    kernel's pointers), the row scales (M, 1) expanded to (M, N) and a fresh fp32 (M, N) output, as the op
    passes them (the kernel indexes the scales by row and the output as contiguous, whatever their strides)."""
    import torch
    from torchao.kernel import intmm_triton

    (at, _), (bt, _) = runtime.view_on_device(a), runtime.view_on_device(b_kn)
    m, k, n = a.shape[0], a.shape[1], b_kn.shape[1]
    s = runtime.to_torch(np.ascontiguousarray(row_scales, np.float32).reshape(m, 1)).expand((m, n))
    c = torch.empty((m, n), dtype=s.dtype, device=at.device)
    intmm_triton.int_scaled_matmul_kernel(at, bt, s, c, config(m, n, k, block))
    return runtime.to_numpy(c)
