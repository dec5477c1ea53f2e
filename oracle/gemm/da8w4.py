"""DA8W4 on CPU (torchao PR #2128): uint8 per-token activations x uint4 group-wise weights.

Upstream: pytorch/ao torchao/csrc/cpu/aten_kernels/da8w4_linear.cpp (earlier
torchao/csrc/cpu/da8w4_linear.cpp): `da8w4_linear_prepack_impl`, `_da8w4_linear_impl`,
`_dequant_gemm_accum`, `_dequant_gemm_accum_small_M`, `_dequant_and_store`, `store_out`.

What the kernel computes, per output row m and column n:
- K is cut into blocks of block_k = min(group_size, 128) (a group holds group_size/block_k
  blocks); weights carry a per-group fp32 scale and int8 zero point (8 for the symmetric
  PR #2128 weights, which store `int_data + 8`).
- per block, an int32 sum acc = sum_k a_q[m, k] * (w_q[n, k] - zp_w[n, g]) with a_q uint8;
- acc -= zp_a[m] * comp[n, b], comp = per-block sum of (w_q - zp_w) (the small-M VNNI path
  computes it from the dequantized bytes) or of (w_q - 8) (the prepacked `compensation` used by
  the brgemm path: "weight was increased by 8 during quantization"); the two agree only when
  every zero point is 8, so both are named (`compensation='zp'` / `'8'`);
- y starts as the fp32 bias (or 0) and, block after block in K order,
  y = y + (float(acc) * a_scale[m]) * w_scale[n, g] in fp32 (`_mm512_cvtepi32_ps`, two
  `_mm512_mul_ps`, one `_mm512_add_ps`: no FMA). The non-AVX512 reference path sums the same
  integers in a float (exact: |sum| <= 128 * 255 * 15 < 2^24) and scales `sum * sa * sb`
  left to right, so it is the same arithmetic;
- the fp32 y is cast once to bf16/fp16 (RNE) or kept as fp32.

Symmetric int8 activations are passed as uint8 codes with their zero point (the model takes
any uint8 codes and int zero point). `da8w4_exact` gives the exact value and a bound for
kernels with another order (e.g. one float sum over all blocks).
"""
from __future__ import annotations

import numpy as np

from oracle.bounds import gamma, output_rounding, sum_bound
from oracle.gemm._common import OUT_DTYPES, cast_out

__all__ = ["block_k_for", "block_accumulators", "da8w4_linear", "da8w4_exact"]


def block_k_for(group_size: int) -> int:
    """The kernel's K block: min(group_size, 128)."""
    return min(group_size, 128)


def _check(a_q, w_q, w_scale, group_size):
    M, K = a_q.shape
    N = w_q.shape[0]
    if w_q.shape[1] != K:
        raise ValueError(f"a_q is (M, K={K}) but w_q is {w_q.shape}")
    if group_size <= 0 or K % group_size:
        raise ValueError(f"K={K} must be a multiple of group_size={group_size}")
    if w_scale.shape != (N, K // group_size):
        raise ValueError(f"w_scale must be (N, K/group_size) = {(N, K // group_size)}, got {w_scale.shape}")


def block_accumulators(a_q, a_zp, w_q, w_zp, group_size: int, *, compensation: str = "zp") -> np.ndarray:
    """int64 (n_blocks, M, N): each K block's acc - zp_a * comp, as the kernel's int32 holds it."""
    a_q, w_q = np.asarray(a_q), np.asarray(w_q)
    w_zp = np.asarray(w_zp).reshape(w_q.shape[0], -1).astype(np.int64)
    _check(a_q, w_q, w_zp, group_size)
    bk = block_k_for(group_size)
    nb = a_q.shape[1] // bk
    zp_cols = np.repeat(w_zp, group_size, axis=1)  # (N, K)
    wc = w_q.astype(np.int64) - zp_cols
    if compensation == "zp":
        comp_src = wc
    elif compensation == "8":
        comp_src = w_q.astype(np.int64) - 8
    else:
        raise ValueError(f"unknown compensation {compensation!r} (zp, 8)")
    a = a_q.astype(np.int64).reshape(a_q.shape[0], nb, bk)
    acc = np.einsum("mbk,nbk->bmn", a, wc.reshape(wc.shape[0], nb, bk))
    comp = comp_src.reshape(wc.shape[0], nb, bk).sum(-1).T  # (nb, N)
    zp_a = np.asarray(a_zp, dtype=np.int64).reshape(-1)
    return acc - zp_a[None, :, None] * comp[:, None, :]


def da8w4_linear(a_q, a_scale, a_zp, w_q, w_scale, w_zp, bias=None, *, group_size: int, out: str = "bf16",
                 compensation: str = "zp") -> np.ndarray:
    """Bit-exact DA8W4 output: per-block fp32 epilogue in K order from the bias, then the cast."""
    w_scale = np.asarray(w_scale, dtype=np.float32)
    _check(np.asarray(a_q), np.asarray(w_q), w_scale, group_size)
    accs = block_accumulators(a_q, a_zp, w_q, w_zp, group_size, compensation=compensation)
    blocks_per_group = group_size // block_k_for(group_size)
    sa = np.asarray(a_scale, dtype=np.float32).reshape(-1, 1)
    M, N = accs.shape[1:]
    y = np.zeros((M, N), np.float32) if bias is None else np.broadcast_to(np.asarray(bias, np.float32), (M, N)).copy()
    with np.errstate(over="ignore", invalid="ignore"):
        for b in range(accs.shape[0]):
            sb = w_scale[:, b // blocks_per_group][None, :]
            y = y + (accs[b].astype(np.int32).astype(np.float32) * sa) * sb
    return cast_out(y, out)


def da8w4_exact(a_q, a_scale, a_zp, w_q, w_scale, w_zp, bias=None, *, group_size: int,
                out: str = "bf16") -> tuple[np.ndarray, np.ndarray]:
    """(exact y, bound) for any kernel with exact int32 block sums and an fp32 epilogue.

    Terms t_b = acc_b * sa * sb_b (two rounded products; float(acc) is exact below 2^24) plus
    the bias, summed in any order: height n_blocks + 2 (bounds.py), then the output cast. The
    float64 reference (two products, n_blocks + 1 additions) adds gamma_{n+3}(fp64) * sum |t|.
    """
    if out not in OUT_DTYPES:
        raise ValueError(f"unknown output dtype {out!r}; known: {', '.join(OUT_DTYPES)}")
    w_scale = np.asarray(w_scale, dtype=np.float32)
    accs = block_accumulators(a_q, a_zp, w_q, w_zp, group_size).astype(np.float64)
    bpg = group_size // block_k_for(group_size)
    sb = np.repeat(w_scale.astype(np.float64), bpg, axis=1).T[:, None, :]  # (nb, 1, N)
    sa = np.asarray(a_scale, dtype=np.float64).reshape(1, -1, 1)
    terms = accs * sa * sb
    nb = accs.shape[0]
    b64 = np.zeros(terms.shape[2]) if bias is None else np.asarray(bias, dtype=np.float64)
    y = terms.sum(0) + b64
    abs_sum = np.abs(terms).sum(0) + np.abs(b64)
    bound = sum_bound(abs_sum, nb + 2, "fp32", n_products=2 * nb, n_terms=nb + 1) + gamma(nb + 3, "fp64") * abs_sum
    return y, bound + output_rounding(np.abs(y) + bound, out)
