"""Numerics the PyTorch adapters declare, as numpy models the conformance tests judge with.

Each function is a kernel's arithmetic read from its upstream source (cited per function) or
the exact value and rigorous bound of it; numpy and oracle only, so self-tests can prove the
suite fails wrong variants (tests/test_conformance_catches.py) without torch.
"""
from __future__ import annotations

import ml_dtypes
import numpy as np

from oracle.bounds import float_spec, gamma, output_rounding
from oracle.gemm.wxa16 import wxa16_exact
from oracle.rounding import fmaf, half_away

NP_DTYPES = {"fp32": np.float32, "fp16": np.float16, "bf16": ml_dtypes.bfloat16}
U32 = float_spec("fp32").u
F = np.float32


def int4_expected(x, codes, scales, zeros, group: int, out: str):
    """(exact, bound) for the tinygemm weight-only GEMM with stored scales/zeros (N, G)."""
    s = np.repeat(scales.astype(np.float64), group, axis=1)
    z = np.repeat(zeros.astype(np.float64), group, axis=1)
    qs = (codes.astype(np.float64) - 8) * s
    w = qs + z  # float64: exact up to 2^-53 |w|, folded into the weight error below
    w_err = U32 * (np.abs(qs) + np.abs(w)) * (1 + 2 * U32) + 2.0 ** -52 * np.abs(w)
    k = x.shape[1]
    exact, bound = wxa16_exact(x, w, acc="fp32", out="fp32")
    bound = bound + (np.abs(np.asarray(x, dtype=np.float64)) @ w_err.T) * (1 + gamma(k + 2, "fp32"))
    if out != "fp32":
        bound = bound + output_rounding(np.abs(exact) + bound, out)
    return exact, bound


def int8_expected(x, q, scales, out: str):
    """(exact, bound): fp32 dot of x with the int8 row, one more rounding for the scale, the cast."""
    w = q.astype(np.float64) * scales.astype(np.float64)[:, None]
    return wxa16_exact(x, w, acc="fp32", out=out, stage_dtypes=("fp32",))


def int8_predict(x, q, scales, dtype: str, capability: str | None):
    """Bit-exact model of int8mm_kernel.cpp for the capability that ran, or None where not modelled.

    Every path forms w = fp32(q) * scale (rounded) first. The generic `tinygemm_kernel` (fp32 and
    fp16 everywhere on x86, bf16 under DEFAULT) sums `c += a * w` sequentially in fp32 without
    FMA (confirmed on fp32 outputs); the bf16 AVX2 / AVX512 kernels keep 8 / 16 fmadd lanes over
    k, reduce them by halving, and cast to bf16. Those vector loops have no K tail (K % lanes).
    """
    xf, k = np.asarray(x, dtype=np.float32), x.shape[1]
    w = (q.astype(np.float32) * scales.astype(np.float32)[:, None]).astype(np.float32)
    lanes = {"AVX2": 8, "AVX512": 16}.get(capability or "") if dtype == "bf16" else None
    if capability is None or (lanes and k % lanes):
        return None
    if not lanes:
        c = np.zeros((x.shape[0], q.shape[0]), np.float32)
        for i in range(k):
            c = (c + (xf[:, i:i + 1] * w[None, :, i]).astype(np.float32)).astype(np.float32)
        return c.astype(NP_DTYPES[dtype])
    acc = np.zeros((lanes, x.shape[0], q.shape[0]), np.float32)
    for i in range(k):
        acc[i % lanes] = fmaf(xf[:, i:i + 1], w[None, :, i], acc[i % lanes])
    while acc.shape[0] > 1:
        h = acc.shape[0] // 2
        acc = (acc[:h] + acc[h:]).astype(np.float32)
    return acc[0].astype(NP_DTYPES[dtype])


def quantize_rows(x: np.ndarray, channelwise: bool):
    """(int8 codes, zero point, fp32 1/inv) per row, in the reference kernel's fp32 order."""
    x = x.astype(F)
    rmin = np.minimum(F(0), x.min(axis=1))
    rmax = np.maximum(F(0), x.max(axis=1))
    with np.errstate(divide="ignore"):
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
    bound = gamma(nb + 2, "fp32") * np.abs(terms).sum(axis=0) * (1 + 2.0 ** -40)
    return y, exact, bound
