"""A bit-level model of the ESIMD INT4 GEMV kernel's arithmetic (intel/llm-scaler PR #352).

Source: vllm/custom-esimd-kernels-vllm/csrc/xpu/esimd_kernels/int4_GEMV.h (read at intel/llm-scaler
7d73f30): `GEMV_int4_kernel<VL=128, K_SPLIT>`, `int4_dequant`, `select_vl_ks_int4`; the horizontal
sum is ESIMD's `reduce<float>(v, std::plus<>())` (intel/llvm sycl/include/sycl/ext/intel/esimd/math.hpp,
`detail::reduce_single`: the vector is split into halves that are added lane by lane, recursively).

What one work-group (output row n) computes, all in float32:
- K_SPLIT threads (`select_vl_ks_int4`: 8 when N <= 128 and K >= 2048, 4 when N <= 512 and K >= 2048,
  else 1; halved until K / K_SPLIT is a multiple of 128) each own kp = K / K_SPLIT consecutive k.
- Per 128-wide step (one scale group): input fp16 -> float, split into even k and odd k (64 each);
  bytes unpacked to (low nibble - 8.0f) for even k and (high nibble - 8.0f) for odd k; both
  multiplied by float(fp16 scale) (exact: 4-bit by 11-bit significands); then
  `acc_even += in_even * wf_even`, `acc_odd += in_odd * wf_odd` in two 64-lane accumulators.
- my_sum = reduce(acc_even) + reduce(acc_odd) (each a halving tree over 64 lanes).
- K_SPLIT == 1: out = fp16(my_sum); else the K_SPLIT partial sums go through SLM and thread 0
  writes fp16(reduce(parts)) (the same halving tree over K_SPLIT lanes). fp16() rounds to nearest even.

Not settled by the source: whether the device compiler fuses `acc += in * wf` into one mad
(a single rounding) or rounds the product first. The product of an 11-bit input and a 15-bit
weight has up to 26 significant bits, so the two differ. `fused=True` (the default) models a
mad, which DPC++'s default floating-point contraction for device code allows; `fused=False`
models separate rounding. Only hardware can say which one a build does; a verdict against
this model names which variant it used, and the bounded verdict holds for both.
"""
from __future__ import annotations

import numpy as np

from oracle.rounding import fmaf

__all__ = ["GROUP", "VL", "select_k_split", "esimd_gemv_int4"]

GROUP = 128  # INT4_GROUP_SIZE: one fp16 scale per 128 weights along K
VL = 128  # Phase 1: the vector length of one K step, equal to the group


def select_k_split(n: int, k: int) -> int:
    """`select_vl_ks_int4`: K_SPLIT from the shape (VL is fixed at 128)."""
    ks = 8 if (n <= 128 and k >= 2048) else 4 if (n <= 512 and k >= 2048) else 1
    while (k // ks) % GROUP != 0 and ks > 1:
        ks //= 2
    return ks


def _tree_sum(v: np.ndarray) -> np.ndarray:
    """ESIMD reduce<float>(v, plus) over the last axis (a power of two): halves added, recursively."""
    width = v.shape[-1]
    if width & (width - 1):
        raise ValueError(f"ESIMD reduce over {width} lanes: only powers of two are modelled")
    while width > 1:
        width //= 2
        v = (v[..., :width] + v[..., width:]).astype(np.float32)
    return v[..., 0]


def esimd_gemv_int4(x: np.ndarray, weight: np.ndarray, scales: np.ndarray, *, k_split: int | None = None,
                    fused: bool = True) -> np.ndarray:
    """fp16 x (1, K), uint8 weight (N, K/2), fp16 scales (N, K/128) -> fp16 (1, N), as the kernel rounds."""
    x = np.asarray(x)
    weight = np.asarray(weight)
    scales = np.asarray(scales)
    if x.dtype != np.float16 or weight.dtype != np.uint8 or scales.dtype != np.float16:
        raise ValueError(f"need fp16 x, uint8 weight, fp16 scales; got {x.dtype}, {weight.dtype}, {scales.dtype}")
    if x.ndim != 2 or x.shape[0] != 1:
        raise ValueError(f"the kernel is a GEMV: x must be (1, K), got {x.shape}")
    k = x.shape[1]
    n = weight.shape[0]
    if k % GROUP or weight.shape != (n, k // 2) or scales.shape != (n, k // GROUP):
        raise ValueError(f"need K % 128 == 0, weight (N, K/2), scales (N, K/128); got x {x.shape}, "
                         f"weight {weight.shape}, scales {scales.shape}")
    ks = select_k_split(n, k) if k_split is None else k_split
    if ks < 1 or (k // ks) % GROUP or k % ks:
        raise ValueError(f"K_SPLIT {ks}: K / K_SPLIT must be a multiple of 128 (K={k})")
    kp = k // ks
    xf = x[0].astype(np.float32)
    lo = (weight & 0x0F).astype(np.float32) - np.float32(8)  # even k
    hi = (weight >> 4).astype(np.float32) - np.float32(8)  # odd k
    sc = scales.astype(np.float32)
    parts = np.empty((n, ks), dtype=np.float32)
    for t in range(ks):
        acc_e = np.zeros((n, VL // 2), dtype=np.float32)
        acc_o = np.zeros((n, VL // 2), dtype=np.float32)
        for k0 in range(t * kp, (t + 1) * kp, VL):
            gs = sc[:, k0 // GROUP][:, None]
            in_e, in_o = xf[k0:k0 + VL:2], xf[k0 + 1:k0 + VL:2]
            wf_e = (lo[:, k0 // 2:k0 // 2 + VL // 2] * gs).astype(np.float32)
            wf_o = (hi[:, k0 // 2:k0 // 2 + VL // 2] * gs).astype(np.float32)
            if fused:
                acc_e = fmaf(np.broadcast_to(in_e, wf_e.shape), wf_e, acc_e)
                acc_o = fmaf(np.broadcast_to(in_o, wf_o.shape), wf_o, acc_o)
            else:
                acc_e = (acc_e + (in_e * wf_e).astype(np.float32)).astype(np.float32)
                acc_o = (acc_o + (in_o * wf_o).astype(np.float32)).astype(np.float32)
        parts[:, t] = (_tree_sum(acc_e) + _tree_sum(acc_o)).astype(np.float32)
    total = parts[:, 0] if ks == 1 else _tree_sum(parts)
    with np.errstate(over="ignore"):
        return total.astype(np.float16)[None, :]
