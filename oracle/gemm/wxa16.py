"""Weight-only GEMM (w4a16, w8a16, ...): y = x @ dequant(w).T (+ bias), floats all the way.

The weight's integer codes and their dequantization belong to the conventions; this module
takes the dequantized weight as exact float32 values (N, K) and activations x (M, K) as exact
fp32/fp16/bf16 values (float32 arrays holding them, or ml_dtypes/fp16 arrays).

Exact value: float64, not rationals. Every product x_k * w_k of a <= 24-bit by a 24-bit
significand is exact in float64 (48 bits), so the only rounding in the reference is float64's
own summation, which is within gamma_{K+1}(fp64) * sum |x_k w_k| of the true sum whatever
order BLAS picks (Higham 3.1). That amount is added to the returned bound, which keeps the
bound rigorous at a cost 2^29 times below fp32's own gamma_K. (Rational arithmetic would be
exact but is some 10^4 times slower on real layer shapes.)

Kernel bound (oracle/bounds.py): products rounded in the accumulation dtype (or fused, same
index), summed in the declared order ('any' covers every order and every split-K tree),
optional intermediate rounding stages (dequantized weights or activations held in bf16/fp16
before the multiply: one (1 + u_stage) each), the bias add (one more rounding), and the final
cast to the output dtype (half an ulp at |y| + bound; none when out is the accumulator dtype).
No order is fixed across kernels here, so there is no bit-exact model. The bound is an
oracle.bounds.Bound: its probable tier (docs/bounds.md) follows the same additions.
"""
from __future__ import annotations

import numpy as np

from oracle.bounds import dot_bound, float_spec, output_rounding
from oracle.gemm._common import OUT_DTYPES, as_f64, f64_matmul_with_error

__all__ = ["wxa16_exact", "grouped_weights"]


def wxa16_exact(x, w_deq, bias=None, *, acc: str = "fp32", out: str = "bf16", order: str = "any",
                lanes: int = 8, stage_dtypes=()) -> tuple[np.ndarray, np.ndarray]:
    """(exact y in float64, per-element bound) for x (M, K) @ w_deq (N, K).T + bias (N,)."""
    x64, w64 = as_f64(x), as_f64(w_deq)
    if x64.ndim != 2 or w64.ndim != 2 or x64.shape[1] != w64.shape[1]:
        raise ValueError(f"need x (M, K) and w (N, K), got {x64.shape} and {w64.shape}")
    if out not in OUT_DTYPES:
        raise ValueError(f"unknown output dtype {out!r}; known: {', '.join(OUT_DTYPES)}")
    K = x64.shape[1]
    y, abs_sum, ref_err = f64_matmul_with_error(x64, w64)
    n_terms = K
    if bias is not None:
        b64 = as_f64(bias).reshape(1, -1)
        y = y + b64  # exact enough: one more float64 rounding, covered below
        abs_sum = abs_sum + np.abs(b64)
        n_terms = K + 1  # the bias is one more term of the sum (it may also seed the accumulator)
        ref_err = ref_err + np.abs(y) * 2.0 ** -52
    bound = dot_bound(abs_sum, n_terms, acc=acc, order=order, lanes=lanes, products_rounded=True,
                      stage_dtypes=stage_dtypes) + ref_err
    if float_spec(out).name != float_spec(acc).name:
        bound = bound + output_rounding(np.abs(y) + bound, out)
    return y, bound


def grouped_weights(codes, scales, zp, group: int) -> np.ndarray:
    """Exact float64 weights (codes - zp) * scale of group-wise 4-bit weights, (N, K); the last
    group may be partial."""
    k = codes.shape[1]
    s = np.repeat(np.asarray(scales, np.float64), group, axis=1)[:, :k]
    z = np.repeat(np.asarray(zp, np.float64), group, axis=1)[:, :k]
    return (codes.astype(np.float64) - z) * s
