"""DA8W4 on CPU (torchao PR #2128): uint8 per-token activations x uint4 group-wise weights.

Upstream: pytorch/ao torchao/csrc/cpu/aten_kernels/da8w4_linear.cpp (earlier
torchao/csrc/cpu/da8w4_linear.cpp): `da8w4_linear_prepack_impl`, `_da8w4_linear_impl`,
`_dequant_gemm_accum`, `_dequant_gemm_accum_small_M`, `_dequant_and_store`, `store_out`.

What the kernel computes, per output row m and column n:
- K is cut into blocks of block_k = min(group_size, 128) (a group holds group_size/block_k
  blocks); weights carry a per-group fp32 scale and int8 zero point (torchao's own quantizer,
  Int4OpaqueTensor.from_hp_da8w4, gives uint4 codes 0..15 with asymmetric zero points);
- per block, an int32 sum acc = sum_k a_q[m, k] * (w_q[n, k] - zp_w[n, g]) with a_q uint8;
- acc -= zp_a[m] * comp[n, b], comp = per-block sum of (w_q - zp_w) (`block_compensation`).
  Every path agrees: the prepacked `compensation` is `sum(weight - qzeros)` over the block (the
  brgemm path and `_dequant_and_store`), the small-M VNNI path sums the dequantized bytes with
  `_mm512_dpbusd_epi32(ones, w - zp)`, and the scalar path centres a_q itself. That holds in
  every version of the file from PR #2128 (8b57afe) to 2026-08; `compensation='8'` (a block sum
  of w_q - 8, right only when every zero point is 8) is kept as a counterfactual for tests, not
  as anything upstream computes;
- y starts as the fp32 bias (or 0) and, block after block in K order, gets
  (float(acc) * a_scale[m]) * w_scale[n, g] added in fp32. How the last multiply and the add
  round depends on the build, not on the source (`epilogue`):
  'mul_add' (two roundings): the portable build (pytorch/ao setup.py on a host without AVX512:
  `-O3` only, no FMA instructions on baseline x86-64); its scalar path sums the block's integers
  in a float (exact: |sum| <= 128 * 255 * 15 < 2^24) and does `C += sum * sa * sb`;
  'fma' (one rounding, y = fmaf(float(acc) * sa, sb, y)): the AVX512 build (`-march=native
  -mfma`), where GCC (whose C++ default is -ffp-contract=fast) fuses `_mm512_mul_ps` into the
  following `_mm512_add_ps` in `_dequant_and_store` and the small-M store, and `sum * sa * sb`
  into `C +=` in the scalar path (GCC 12, -std=c++20 -O3: 44 vfmadd213ps and 6 vfmadd132ss in
  the AVX512-VNNI build, none in the portable one);
- the fp32 y is cast once to bf16/fp16 (RNE) or kept as fp32.

Symmetric int8 activations are passed as int8 codes with zero point 0 (the model takes any
codes and int zero point). `da8w4_exact` gives the exact value and a bound for kernels with
another order (e.g. one float sum over all blocks). `da8w4_w4` is the model as the engine's
w4_grouped semantics of a kernel that quantizes x itself (`da8w4.asym_fp32.mul_add`).
"""
from __future__ import annotations

import numpy as np

from oracle.bounds import gamma, output_rounding, sum_bound
from oracle.conventions import get
from oracle.gemm._common import OUT_DTYPES, cast_out
from oracle.gemm.semantics import Expected, out_dtype, w4_parts
from oracle.rounding import fmaf

__all__ = ["block_k_for", "block_compensation", "block_accumulators", "da8w4_linear", "da8w4_exact", "EPILOGUES",
           "da8w4_w4"]

EPILOGUES = ("mul_add", "fma")


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


def block_compensation(w_q, w_zp, group_size: int, *, compensation: str = "zp") -> np.ndarray:
    """int64 (N, n_blocks): each K block's sum of (w_q - zp_w) ('zp', upstream's), or of w_q - 8 ('8').

    Transposed and cut into 32-column tiles ([N/32, n_blocks, 32]) it is the `compensation`
    tensor that `torchao::da8w4_linear_prepack_cpu` returns."""
    w_q = np.asarray(w_q)
    N, K = w_q.shape
    w_zp = np.asarray(w_zp).reshape(N, -1).astype(np.int64)
    if group_size <= 0 or K % group_size or w_zp.shape[1] != K // group_size:
        raise ValueError(f"w_q {w_q.shape}, zero points {w_zp.shape} and group_size={group_size} do not fit")
    bk = block_k_for(group_size)
    if compensation == "zp":
        src = w_q.astype(np.int64) - np.repeat(w_zp, group_size, axis=1)
    elif compensation == "8":
        src = w_q.astype(np.int64) - 8
    else:
        raise ValueError(f"unknown compensation {compensation!r} (zp, 8)")
    return src.reshape(N, K // bk, bk).sum(-1)


def block_accumulators(a_q, a_zp, w_q, w_zp, group_size: int, *, compensation: str = "zp") -> np.ndarray:
    """int64 (n_blocks, M, N): each K block's acc - zp_a * comp, as the kernel's int32 holds it."""
    a_q, w_q = np.asarray(a_q), np.asarray(w_q)
    w_zp = np.asarray(w_zp).reshape(w_q.shape[0], -1).astype(np.int64)
    _check(a_q, w_q, w_zp, group_size)
    bk = block_k_for(group_size)
    nb = a_q.shape[1] // bk
    zp_cols = np.repeat(w_zp, group_size, axis=1)  # (N, K)
    wc = w_q.astype(np.int64) - zp_cols
    a = a_q.astype(np.int64).reshape(a_q.shape[0], nb, bk)
    acc = np.einsum("mbk,nbk->bmn", a, wc.reshape(wc.shape[0], nb, bk))
    comp = block_compensation(w_q, w_zp, group_size, compensation=compensation).T  # (nb, N)
    zp_a = np.asarray(a_zp, dtype=np.int64).reshape(-1)
    return acc - zp_a[None, :, None] * comp[:, None, :]


def da8w4_linear(a_q, a_scale, a_zp, w_q, w_scale, w_zp, bias=None, *, group_size: int, out: str = "bf16",
                 compensation: str = "zp", epilogue: str = "mul_add") -> np.ndarray:
    """Bit-exact DA8W4 output: per-block fp32 epilogue in K order from the bias, then the cast.

    epilogue 'mul_add': y = y + (float(acc) * sa) * sb, each operation rounded; 'fma':
    y = fmaf(float(acc) * sa, sb, y), as GCC contracts the AVX512 build's epilogue."""
    if epilogue not in EPILOGUES:
        raise ValueError(f"unknown epilogue {epilogue!r} ({', '.join(EPILOGUES)})")
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
            p = accs[b].astype(np.int32).astype(np.float32) * sa
            y = fmaf(p, np.broadcast_to(sb, p.shape), y) if epilogue == "fma" else y + p * sb
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


def da8w4_w4(ops: dict[str, np.ndarray], observed: dict, convention: str, epilogue: str) -> Expected:
    """w4_grouped as a DA8W4 kernel computes it, without bias: x widened to fp32 and quantized per token by the
    named uint8 convention (codes, scales, zero points), the per-block int32 sums against codes - zp, the
    fp32 `epilogue` in block order, one cast to x's dtype. The exact value and bound are those of the
    quantized sums (da8w4_exact), the prediction `da8w4_linear`'s."""
    x, codes, scales, zp, group = w4_parts(ops)
    qa = get(convention).quantize(np.asarray(x, np.float32))
    a_q, sa, za = qa.codes.astype(np.uint8), qa.scales[:, 0].astype(np.float32), qa.zeros[:, 0]
    out = out_dtype(x)
    exact, bound = da8w4_exact(a_q, sa, za, codes, scales, zp, group_size=group, out=out)
    pred = da8w4_linear(a_q, sa, za, codes, scales, zp, group_size=group, out=out, epilogue=epilogue)
    return Expected(exact, bound, pred, out)


def da8w4_w4_torchao(ops: dict[str, np.ndarray], observed: dict) -> Expected:
    """w4_grouped as torchao's `_da8w4_linear` (int4_opaque_tensor.py) runs it on the CPU kernel: x quantized per
    token in its own dtype (act.torchao.da8w4.asym.{fp32,bf16,fp16}: choose_qparams_affine computes the range in x's
    dtype), the block sums, and the epilogue of the build that ran (`observed['da8w4_epilogue']`: 'mul_add' portable,
    'fma' GCC's AVX512 build); an unknown epilogue ('' or absent) leaves the exact value and bound, no prediction."""
    from dataclasses import replace

    epilogue = observed.get("da8w4_epilogue") or ""
    conv = f"act.torchao.da8w4.asym.{out_dtype(ops['x'])}"
    exp = da8w4_w4(ops, observed, conv, epilogue if epilogue in EPILOGUES else "mul_add")
    return exp if epilogue in EPILOGUES else replace(exp, predicted=None)
