"""ONNX Runtime MatMulNBits on the CPU EP (MLAS): accuracy_level 0 and 4 semantics.

accuracy_level 0 (onnxruntime/contrib_ops/cpu/quantization/matmul_nbits.cc, MLAS
sqnbitgemm fp32 kernels): exact a @ dequant(B).T with the fp32 accumulation bound, each
weight carrying u32 * (|q s| + |zp s| + |w|) (MLAS may form (q - zp) * s or q * s - zp * s,
fused or not). accuracy_level 4 (onnxruntime/core/mlas/lib/sqnbitgemm_kernel_avx2.cpp,
`QuantizeARow_CompInt8_avx2` and the CompInt8 kernels): A quantized per block by
act.ort.matmulnbits.int8_blk, exact int32 block sums, `acc += qsum * (a_scale * b_scale)`.

The BlkSum CompInt8 kernels do not subtract the zero point in the integer sum. They dot the raw
unsigned codes q with the int8 activations, scale each block by fp32(a_scale * b_scale), then add
sum_b ABlockSum[b] * QuantBBlkSum[b] through MLAS's fp32 SGEMM (GemmFloatKernel), where
ABlockSum = fp32(a_scale * sum_k qa_k) (`QuantizeARow_CompInt8_avx2`) and QuantBBlkSum =
-b_scale * zp in fp32 (`ComputePackBlkSum`, zp 2^(bits-1) without zero points); for 2 bits the same in
sqnbitgemm_kernel_avx2_2bit_blklen{32,64,128}.h (`SQ2BitGemmKernel_BlkSum_CompInt8_*`). Both
products are of the size of a_scale * b_scale * sum |qa q| and can cancel to a far smaller result, so
the bound carries the larger of the two forms' term sums (some kernels, 4-bit with M = 1 among them,
subtract the zero point in the integer sum instead).

A float16 model (`out` "fp16") is the float32 computation rounded once at the end: on x86
`MatMulNBits<MLFloat16>::ComputeBPacked` and `ComputeBUnpacked` (matmul_nbits.cc) widen A and the
scales exactly (`MlasConvertHalfToFloatBuffer`), run the float32 kernels above and round Y to
nearest even (`MlasConvertFloatToHalfBuffer`); the caller passes the float16 values (as float32).

`level0_grouped` is accuracy_level 0 from the spec engine's grouped 4-bit operands (w4_grouped:
codes, scales, integer zero points, group size), as ort.matmulnbits.int4.asym holds them with the
group as block size. K need not be a whole number of blocks: the operator takes
k_blocks = ceil(K / block_size) (matmul_nbits_helper.h `CheckInputs`), the last one partial.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from oracle.bounds import float_spec, gamma, gamma_bound, output_rounding
from oracle.conventions import get
from oracle.conventions.convention import Convention, QuantizedWeight
from oracle.gemm.wxa16 import wxa16_exact
from oracle.rounding import fmaf

__all__ = ["zero_point_columns", "level0_expected", "level4_model", "grouped_weight", "level0_grouped"]

F = np.float32
_U32 = float_spec("fp32").u


def zero_point_columns(qw, conv, zeros):
    """The zero point of every weight column (2^(bits-1) when the model has none), (N, K)."""
    zp = np.full(qw.scales.shape, 1 << (conv.bits - 1)) if zeros is None else zeros
    return np.repeat(zp, conv.group_size, axis=1)[:, :qw.codes.shape[1]]


def level0_expected(a, qw, conv, out: str = "fp32"):
    """(exact, bound) of accuracy_level 0: fp32 accumulation of a with the dequantized weights, Y in `out`."""
    zp = zero_point_columns(qw, conv, qw.zeros).astype(np.float64)
    s = np.repeat(qw.scales.astype(np.float64), conv.group_size, axis=1)[:, :qw.codes.shape[1]]
    q = qw.codes.astype(np.float64)
    w = (q - zp) * s
    w_err = _U32 * (np.abs(q * s) + np.abs(zp * s) + np.abs(w)) * (1 + 3 * _U32)
    exact, bound = wxa16_exact(a, w, acc="fp32", out="fp32")
    bound = bound + (np.abs(a.astype(np.float64)) @ w_err.T) * (1 + gamma(a.shape[1] + 3, "fp32"))
    return exact, _rounded_to(out, exact, bound)


def grouped_weight(codes: np.ndarray, scales: np.ndarray, zp: np.ndarray, group: int
                   ) -> tuple[QuantizedWeight, Convention]:
    """Codes (N, K), float32 scales and integer zero points (N, ceil(K / group)) as the 4-bit asymmetric
    MatMulNBits convention with block size `group` holds them (its `pack` gives the operator's inputs)."""
    conv = dataclasses.replace(get("ort.matmulnbits.int4.asym"), group_size=group)
    qw = QuantizedWeight(codes.astype(np.int32), np.asarray(scales, F), zp.astype(np.int32), conv.name)
    return qw, conv


def level0_grouped(x: np.ndarray, codes: np.ndarray, scales: np.ndarray, zp: np.ndarray, group: int,
                   out: str) -> tuple[np.ndarray, np.ndarray]:
    """(exact, bound) of accuracy_level 0 on grouped 4-bit operands, Y in `out` (x's dtype). A fp16 model
    stores its scales in fp16, so they are judged as that model holds them."""
    qw, conv = grouped_weight(codes, scales, zp, group)
    if out == "fp16":
        qw = dataclasses.replace(qw, scales=qw.scales.astype(np.float16).astype(F))
    return level0_expected(x.astype(F), qw, conv, out=out)


def _rounded_to(out: str, exact, bound):
    """The bound after Y's one cast from float32 to `out` (none for fp32)."""
    return bound if out == "fp32" else bound + output_rounding(np.abs(exact) + bound, out)


def level4_model(a, qw, conv, out: str = "fp32"):
    """(predicted Y in `out`, exact float64 of the same block sums, bound) of accuracy_level 4."""
    act = dataclasses.replace(get("act.ort.matmulnbits.int8_blk"), group_size=conv.group_size)
    qa = act.quantize(a.astype(F))
    k, g = a.shape[1], conv.group_size
    nb = -(-k // g)
    pad = nb * g - k
    ac = np.pad(qa.codes.astype(np.int64), ((0, 0), (0, pad))).reshape(a.shape[0], nb, g)
    q = np.pad(qw.codes.astype(np.int64), ((0, 0), (0, pad))).reshape(qw.codes.shape[0], nb, g)
    zp = zero_point_columns(qw, conv, qw.zeros)[:, ::g].astype(np.int64)  # (N, nb), one per block
    wc = q - zp[:, :, None]
    qsum = np.einsum("mbk,nbk->bmn", ac, wc)
    sa, sb = qa.scales.astype(F).T[:, :, None], qw.scales.astype(F).T[:, None, :]  # (nb, M, 1), (nb, 1, N)
    acc = np.zeros(qsum.shape[1:], F)
    for b in range(nb):
        acc = fmaf(qsum[b].astype(F), (sa[b] * sb[b]).astype(F), acc)
    scale = sa.astype(np.float64) * sb.astype(np.float64)
    exact = (qsum.astype(np.float64) * scale).sum(axis=0)
    scale = np.abs(scale)
    # zero point in the integer sum: the terms are lane partials of sum qa (q - zp)
    terms_zp = (np.einsum("mbk,nbk->bmn", np.abs(ac), np.abs(wc)) * scale).sum(axis=0)
    # BlkSum kernels: lane partials of sum qa q, and ABlockSum * QuantBBlkSum = a_s sum(qa) * (-b_s zp)
    raw = np.einsum("mbk,nbk->bmn", np.abs(ac), np.abs(q))
    corr = np.abs(ac.sum(axis=2)).T[:, :, None] * np.abs(zp).T[:, None, :]
    terms_blksum = ((raw + corr) * scale).sum(axis=0)
    # at most k nonzero integer partials plus nb block-sum products, any summation tree (height
    # terms - 1), and three roundings on a term: fp32(a_s * b_s) or the two block-sum factors, the
    # int32 -> fp32 conversion of a partial, and its product
    h = k + nb + 2
    bound = gamma_bound(h, "fp32", n_terms=k + nb) * np.maximum(terms_zp, terms_blksum) * (1 + 2.0 ** -40)
    # below fp32's normal range a rounding errs by up to half the smallest subnormal (2^-150) in
    # absolute terms, not relatively: fp32(a_s * b_s)'s such error is multiplied by the block's integer
    # sum, and each of the term's other roundings and the block additions adds at most one more
    ints = np.maximum(np.einsum("mbk,nbk->bmn", np.abs(ac), np.abs(wc)), raw + corr)
    bound = bound + 2.0 ** -150 * (ints.sum(axis=0) + 4 * nb) * (1 + 2.0 ** -20)
    return acc.astype(float_spec(out).dtype), exact, _rounded_to(out, exact, bound)
