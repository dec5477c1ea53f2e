"""ATen `_weight_int4pack_mm_for_cpu` (tinygemm int4 weights): the exact value and its fp32 bound.

Upstream: pytorch aten/src/ATen/native/cpu/int4mm_kernel.cpp `int4pack_mm_kernel_` and its
`tinygemm_kernel` variants: w = (q - 8) * scale + zero, fp32 accumulation, output cast to x's
dtype. The kernels may form the weight with one rounding (FMA) or two, so each weight carries
u32 * (|(q - 8) s| + |w|) of its own, propagated through the dot product.
"""
from __future__ import annotations

import numpy as np

from oracle.bounds import float_spec, gamma, output_rounding
from oracle.gemm.wxa16 import wxa16_exact

__all__ = ["int4_expected", "tinygemm_stored"]

_U32 = float_spec("fp32").u


def int4_expected(x, codes, scales, zeros, group: int, out: str):
    """(exact, bound) for the tinygemm weight-only GEMM with stored scales/zeros (N, G)."""
    s = np.repeat(scales.astype(np.float64), group, axis=1)
    z = np.repeat(zeros.astype(np.float64), group, axis=1)
    qs = (codes.astype(np.float64) - 8) * s
    w = qs + z  # float64: exact up to 2^-53 |w|, folded into the weight error below
    w_err = _U32 * (np.abs(qs) + np.abs(w)) * (1 + 2 * _U32) + 2.0 ** -52 * np.abs(w)
    k = x.shape[1]
    exact, bound = wxa16_exact(x, w, acc="fp32", out="fp32")
    bound = bound + (np.abs(np.asarray(x, dtype=np.float64)) @ w_err.T) * (1 + gamma(k + 2, "fp32"))
    if out != "fp32":
        bound = bound + output_rounding(np.abs(exact) + bound, out)
    return exact, bound


def tinygemm_stored(scales, zp, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Scales and tinygemm float zeros in the activation dtype for integer zero points: the same
    weights (q - zp) * s written as (q - 8) * s + z with z = (8 - zp) * s (torchao's
    `_convert_to_tinygemm` form), each rounded once to `dtype` (exact where z fits it)."""
    s = np.asarray(scales, np.float64)
    return s.astype(dtype), ((8 - np.asarray(zp, np.float64)) * s).astype(dtype)
