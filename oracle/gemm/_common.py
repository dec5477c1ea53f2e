"""Output casts and exact-value helpers shared by the GEMM modules."""
from __future__ import annotations

import ml_dtypes
import numpy as np

from oracle.bounds import gamma

OUT_DTYPES = {"fp32": np.dtype(np.float32), "fp16": np.dtype(np.float16), "bf16": np.dtype(ml_dtypes.bfloat16)}


def cast_out(y: np.ndarray, out: str) -> np.ndarray:
    """float32 -> out dtype with round to nearest even (numpy fp16, ml_dtypes bf16; both RNE)."""
    if out not in OUT_DTYPES:
        raise ValueError(f"unknown output dtype {out!r}; known: {', '.join(OUT_DTYPES)}")
    with np.errstate(over="ignore"):
        return np.asarray(y, dtype=np.float32).astype(OUT_DTYPES[out])


def as_f64(x) -> np.ndarray:
    """Exact float64 view of fp32/fp16/bf16 (ml_dtypes or float32-held) values."""
    return np.asarray(x).astype(np.float64)


def f64_matmul_with_error(x64: np.ndarray, w64: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x @ w.T in float64, sum |x_i w_i|, bound on the float64 evaluation's own error).

    Each product of a <= 24-bit by a <= 24-bit significand is exact in float64 (48 bits); the
    float64 sum of K of them, in whatever order BLAS uses, is within gamma_K(fp64) * sum |p|
    of the true sum (Higham 3.1). That error is returned so callers add it to their bound:
    the 'exact' value is then rigorous without rational arithmetic, and the widening is about
    2^29 times smaller than fp32's own gamma_K.
    """
    K = x64.shape[-1]
    y = x64 @ w64.T
    abs_sum = np.abs(x64) @ np.abs(w64).T
    ref_err = gamma(K + 1, "fp64") * abs_sum * (1 + 2.0 ** -40)
    return y, abs_sum, ref_err

