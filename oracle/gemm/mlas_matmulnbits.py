"""ONNX Runtime MatMulNBits on the CPU EP (MLAS): accuracy_level 0 and 4 semantics.

accuracy_level 0 (onnxruntime/contrib_ops/cpu/quantization/matmul_nbits.cc, MLAS
sqnbitgemm fp32 kernels): exact a @ dequant(B).T with the fp32 accumulation bound, each
weight carrying u32 * (|q s| + |zp s| + |w|) (MLAS may form (q - zp) * s or q * s - zp * s,
fused or not). accuracy_level 4 (onnxruntime/core/mlas/lib/sqnbitgemm_kernel_avx2.cpp,
`QuantizeARow_CompInt8` and the CompInt8 kernels): A quantized per block by
act.ort.matmulnbits.int8_blk, exact int32 block sums, `acc += qsum * (a_scale * b_scale)`.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from oracle.bounds import float_spec, gamma, gamma_bound
from oracle.conventions import get
from oracle.gemm.wxa16 import wxa16_exact
from oracle.rounding import fmaf

__all__ = ["zero_point_columns", "level0_expected", "level4_model"]

F = np.float32
_U32 = float_spec("fp32").u


def zero_point_columns(qw, conv, zeros):
    """The zero point of every weight column (2^(bits-1) when the model has none), (N, K)."""
    zp = np.full(qw.scales.shape, 1 << (conv.bits - 1)) if zeros is None else zeros
    return np.repeat(zp, conv.group_size, axis=1)[:, :qw.codes.shape[1]]


def level0_expected(a, qw, conv):
    """(exact, bound) of accuracy_level 0: fp32 accumulation of a with the dequantized weights."""
    zp = zero_point_columns(qw, conv, qw.zeros).astype(np.float64)
    s = np.repeat(qw.scales.astype(np.float64), conv.group_size, axis=1)[:, :qw.codes.shape[1]]
    q = qw.codes.astype(np.float64)
    w = (q - zp) * s
    w_err = _U32 * (np.abs(q * s) + np.abs(zp * s) + np.abs(w)) * (1 + 3 * _U32)
    exact, bound = wxa16_exact(a, w, acc="fp32", out="fp32")
    return exact, bound + (np.abs(a.astype(np.float64)) @ w_err.T) * (1 + gamma(a.shape[1] + 3, "fp32"))


def level4_model(a, qw, conv):
    """(predicted fp32, exact float64 of the same block sums, bound) of accuracy_level 4."""
    act = dataclasses.replace(get("act.ort.matmulnbits.int8_blk"), group_size=conv.group_size)
    qa = act.quantize(a.astype(F))
    k, g = a.shape[1], conv.group_size
    nb = -(-k // g)
    pad = nb * g - k
    ac = np.pad(qa.codes.astype(np.int64), ((0, 0), (0, pad)))
    wc = np.pad(qw.codes.astype(np.int64) - zero_point_columns(qw, conv, qw.zeros), ((0, 0), (0, pad)))
    qsum = np.einsum("mbk,nbk->bmn", ac.reshape(a.shape[0], nb, g), wc.reshape(wc.shape[0], nb, g))
    sa, sb = qa.scales.astype(F).T[:, :, None], qw.scales.astype(F).T[:, None, :]  # (nb, M, 1), (nb, 1, N)
    acc = np.zeros(qsum.shape[1:], F)
    for b in range(nb):
        acc = fmaf(qsum[b].astype(F), (sa[b] * sb[b]).astype(F), acc)
    scale = sa.astype(np.float64) * sb.astype(np.float64)
    exact = (qsum.astype(np.float64) * scale).sum(axis=0)
    # MLAS may split a block's int32 sum into lane partials converted and scaled separately before a
    # float reduction: sum |a_k w_k| bounds every partial, and K + 3 roundings bound any such tree
    abs_terms = np.einsum("mbk,nbk->bmn", np.abs(ac).reshape(a.shape[0], nb, g), np.abs(wc).reshape(wc.shape[0], nb, g))
    bound = gamma_bound(k + 3, "fp32", n_terms=k) * (abs_terms * np.abs(scale)).sum(axis=0) * (1 + 2.0 ** -40)
    return acc, exact, bound
