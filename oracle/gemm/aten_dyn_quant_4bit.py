"""ATen `_dyn_quant_matmul_4bit` on x86 (no KleidiAI): the scalar reference path, bit for bit.

Upstream: pytorch aten/src/ATen/native/cpu/int4mm_kernel.cpp
`ref_dyn_quant_matmul_4bit_channelwise_kernel` / `ref_dyn_quant_matmul_4bit_groupwise_kernel`.
Activations: per row, range widened to 0, inverse scale 255/range in fp32, a zero point
`lrintf` of a clamped float (the channelwise and groupwise kernels test which end to use
differently), codes `std::round(x * inv)` (half away) + zp clamped to int8. These rules do not
reduce to a `Convention`'s fields (an inverse scale, a kernel-dependent zero-point test), so
the quantizer lives here with the GEMM it feeds. Per block an exact int32 sum of
(a_q - zp) * (nibble - 8), `acc += isum * w_scale` in fp32 in K order, then `acc * (1/inv)`.
"""
from __future__ import annotations

import numpy as np

from oracle.bounds import gamma_bound
from oracle.rounding import half_away

__all__ = ["quantize_rows", "dyn_quant_model", "dyn_quant_w4"]

F = np.float32


def quantize_rows(x: np.ndarray, channelwise: bool):
    """(int8 codes, zero point, fp32 1/inv) per row, in the reference kernel's fp32 order."""
    x = x.astype(F)
    rmin = np.minimum(F(0), x.min(axis=1))
    rmax = np.maximum(F(0), x.max(axis=1))
    # a range below 255 / FLT_MAX overflows inv to inf, as the kernel's fp32 division does: no warning for it
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        inv = np.where(rmin == rmax, F(1), F(255) / (rmax - rmin).astype(F)).astype(F)
        recip = np.where(inv != 0, F(1) / np.where(inv != 0, inv, F(1)), F(0)).astype(F)
        dmin, dmax = (rmin * inv).astype(F), (rmax * inv).astype(F)
        lo, hi = (F(-128) + dmin).astype(F), (F(127) + dmax).astype(F)
        test = (lo + hi).astype(F) if channelwise else ((lo + F(127)).astype(F) + dmax).astype(F)
        zp = np.where(test > 0, (F(-128) - dmin).astype(F), (F(127) - dmax).astype(F))
        zp = np.rint(np.clip(zp, F(-128), F(127))).astype(np.int64)
        q = half_away((x * inv[:, None]).astype(F)).astype(np.int64) + zp[:, None]
    return np.clip(q, -128, 127), zp, recip


def dyn_quant_model(x, codes, scales, group: int):
    """(predicted fp32 y, exact float64 value of the same integer sums, its bound)."""
    m, k = x.shape
    q, zp, recip = quantize_rows(x, channelwise=(group == k))
    a = q - zp[:, None]
    w = codes.astype(np.int64) - 8
    nb = k // group
    isum = np.einsum("mbk,nbk->bmn", a.reshape(m, nb, group), w.reshape(w.shape[0], nb, group))
    s = scales.astype(F).T[:, None, :]  # (nb, 1, N)
    acc = np.zeros((m, w.shape[0]), F)
    for b in range(nb):
        acc = (acc + (isum[b].astype(F) * s[b]).astype(F)).astype(F)
    y = (acc * recip[:, None]).astype(F)
    terms = isum.astype(np.float64) * s.astype(np.float64) * recip.astype(np.float64)[None, :, None]
    exact = terms.sum(axis=0)
    bound = gamma_bound(nb + 2, "fp32", n_terms=nb) * np.abs(terms).sum(axis=0) * (1 + 2.0 ** -40)
    return y, exact, bound


def dyn_quant_w4(ops: dict[str, np.ndarray], observed: dict):
    """w4_sym (codes around 8, per-group fp32 scales, fp32 x) as the reference path computes it: the model's
    prediction, exact value and bound. A NaN or Inf in a row leaves that row's quantization parameters
    undefined (its range and inverse scale cannot be formed): NaN throughout the row, as
    oracle.gemm.aten_qlinear_dynamic.linear_dynamic_w8 gives for its per-tensor quantizer."""
    from oracle.gemm.semantics import Expected, w4_parts

    x, codes, scales, _, group = w4_parts(ops)
    undefined = ~np.isfinite(x).all(axis=1, keepdims=True)
    pred, exact, bound = dyn_quant_model(np.where(undefined, 0, x).astype(F), codes, scales, group)
    return Expected(np.where(undefined, np.nan, exact), np.where(undefined, 0.0, bound),
                    np.where(undefined, F(np.nan), pred).astype(F), "fp32")
