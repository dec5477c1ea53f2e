"""ATen `_weight_int8pack_mm` (int8 per-channel weights): exact value, bound, and bit-exact order.

Upstream: pytorch aten/src/ATen/native/cpu/int8mm_kernel.cpp `int8pack_mm_kernel_`: every path
forms w = fp32(q) * scale[n] (rounded) first. The generic `tinygemm_kernel` (fp32 and fp16
everywhere on x86, bf16 under the DEFAULT capability) sums `c += a * w` sequentially in fp32
without FMA; the bf16 AVX2 / AVX512 kernels keep 8 / 16 fmadd lanes over k, reduce them by
halving, and cast to bf16. Those vector loops have no K tail (K % lanes).
"""
from __future__ import annotations

import ml_dtypes
import numpy as np

from oracle.gemm.wxa16 import wxa16_exact
from oracle.rounding import fmaf

__all__ = ["int8_expected", "int8_predict"]

_NP_DTYPES = {"fp32": np.float32, "fp16": np.float16, "bf16": ml_dtypes.bfloat16}


def int8_expected(x, q, scales, out: str):
    """(exact, bound): fp32 dot of x with the int8 row, one more rounding for the scale, the cast."""
    w = q.astype(np.float64) * scales.astype(np.float64)[:, None]
    return wxa16_exact(x, w, acc="fp32", out=out, stage_dtypes=("fp32",))


def int8_predict(x, q, scales, dtype: str, capability: str | None):
    """Bit-exact output for the ATen capability that ran ('DEFAULT', 'AVX2', 'AVX512'), or None where not modelled."""
    xf, k = np.asarray(x, dtype=np.float32), x.shape[1]
    w = (q.astype(np.float32) * scales.astype(np.float32)[:, None]).astype(np.float32)
    lanes = {"AVX2": 8, "AVX512": 16}.get(capability or "") if dtype == "bf16" else None
    if capability is None or (lanes and k % lanes):
        return None
    if not lanes:
        c = np.zeros((x.shape[0], q.shape[0]), np.float32)
        for i in range(k):
            c = (c + (xf[:, i:i + 1] * w[None, :, i]).astype(np.float32)).astype(np.float32)
        return c.astype(_NP_DTYPES[dtype])
    acc = np.zeros((lanes, x.shape[0], q.shape[0]), np.float32)
    for i in range(k):
        acc[i % lanes] = fmaf(xf[:, i:i + 1], w[None, :, i], acc[i % lanes])
    while acc.shape[0] > 1:
        h = acc.shape[0] // 2
        acc = (acc[:h] + acc[h:]).astype(np.float32)
    return acc[0].astype(_NP_DTYPES[dtype])
