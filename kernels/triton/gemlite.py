"""gemlite's shipped Triton A16W4 kernels (PyPI `gemlite` 0.6.0.post2), driven through its public API.

`gemlite.GemLiteLinearTriton(4, group_size, in_features, out_features, input_dtype=FP16,
output_dtype=...)`, `pack(W_q, scales, zeros=8)` with W_q the uint8 codes 0..15 [N, K] and fp16
scales [N, K / group], then a forward. gemlite packs the codes itself (8 per int32 along K) and,
with an integer zero and grouped scales, runs `W_group_mode` 3: `dequantize` in
`triton_kernels/utils.py` computes `(q - zeros).to(fp16) * scales`, an fp16 product, so each weight
is (q - 8) * s rounded once to fp16 (a stage rounding: oracle.gemm.wxa16 `stage_dtypes=("fp16",)`).
For M <= 4 it picks `GEMV_REVSPLITK` (`core.get_matmul_type`): x and the fp16 weights multiplied in
the accumulator dtype (fp32 unless `set_fast_gemv_acc`: products of fp16 values, exact), summed per
program, and each program's partial added with `tl.atomic_add` into a zeroed output of the output
dtype. With an fp32 output that is fp32 summation in an order the hardware picks: the wxa16 model
with acc fp32, order 'any'. With an fp16 output every partial is rounded to fp16 and added in fp16,
a model with no useful fp32 bound, so this adapter asks for fp32 output.

gemlite's `triton_kernels/utils.py` calls `torch.cuda.get_device_capability()` at import: it does
not import without a GPU (and never in the Triton interpreter), which `available()` reports.
"""
from __future__ import annotations

import numpy as np

from kernels.loading import import_failure
from kernels.triton import runtime  # first: it sets TRITON_INTERPRET before triton is imported

__all__ = ["available", "observe", "a16w4"]


def available() -> dict:
    base = runtime.available()
    if not base["ok"]:
        return base
    if runtime.interpreted():
        return {"ok": False, "reason": "gemlite needs a CUDA GPU: it queries torch.cuda.get_device_capability() at "
                                       "import and has no interpreter path"}
    try:
        import gemlite  # noqa: F401
    except Exception as e:  # absent or incompatible gemlite is the reason
        return import_failure(("gemlite",), "gemlite", e)
    return base


def observe() -> dict:
    import importlib.metadata

    obs = runtime.observe()
    obs["isa"] = f"{obs['isa']}, gemlite {importlib.metadata.version('gemlite')}"
    return obs


def a16w4(x: np.ndarray, codes: np.ndarray, scales: np.ndarray, *, group_size: int) -> np.ndarray:
    """fp16 x (M, K) @ w.T with w[n, k] = fp16((codes[n, k] - 8) * scales[n, k // group_size]); fp32 (M, N) out."""
    import torch
    from gemlite import DType, GemLiteLinearTriton

    n, k = codes.shape
    lin = GemLiteLinearTriton(4, group_size=group_size, in_features=k, out_features=n, input_dtype=DType.FP16,
                              output_dtype=DType.FP32)
    lin.pack(runtime.to_torch(np.asarray(codes, np.uint8)), runtime.to_torch(np.asarray(scales, np.float16)), 8,
             bias=None)
    with torch.no_grad():
        y = lin(runtime.to_torch(np.asarray(x, np.float16)))
    return runtime.to_numpy(y.float())
