"""W8A8 int8 GEMM: exact int32 accumulation, then each real float32 epilogue, bit for bit.

acc[m, n] = sum_k a[m, k] * w[n, k] over int8 codes is exact in int64 here; a kernel holds it
in int32, so `int8_matmul` reports whether any element leaves the int32 range (real kernels
wrap: torch._int_mm on x86 returns the low 32 bits, checked in tests/test_gemm_w8a8.py).

Epilogues are float32 and elementwise, so their order of operations is fixed by the source
and each is modelled bit-exactly (numpy float32 ops are IEEE correctly rounded, like C float
ops compiled without FMA contraction):
- `(acc*sa)*sb`: torch eager `acc.float() * sa * sb` (left to right), PyTorch
  `_weight_int8pack_mm`-style per-channel scaling after a per-token one.
- `acc*(sa*sb)`: kernels that premultiply the two scales (an outer product sa*sb in fp32).
- `sb*(sa*acc)`: vLLM `triton_scaled_mm` (vllm/model_executor/layers/quantization/compressed_tensors/
  triton_scaled_mm.py: `scale_b * (scale_a * accumulator.to(float32))`). IEEE multiplication is
  commutative, so this equals `(acc*sa)*sb` bit for bit; it is named so a report can say which
  kernel's expression was checked.
- bias `before_cast`: out = cast(y + bias) with the bias in fp32; `after_cast`: out =
  cast(fp32(cast(y)) + fp32(bias_out)) (vLLM triton_scaled_mm adds the bias after `.to(out)`;
  an add of two bf16/fp16 tensors is done in fp32 and rounded back, as torch's CPU kernels and
  Triton do).

`per_token_w8` is the model as the engine's w8_float semantics of a kernel that quantizes x per
token itself (`w8a8.sglang_per_token.acc_sa_sb`).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from oracle.bounds import float_spec, gamma, output_rounding
from oracle.conventions import get
from oracle.gemm._common import OUT_DTYPES, cast_out
from oracle.gemm.semantics import Expected, out_dtype

__all__ = ["int8_matmul", "fits_int32", "wrap_int32", "EPILOGUES", "epilogue", "w8a8_linear", "w8a8_exact",
           "per_token_w8"]

INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1


def int8_matmul(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Exact int64 acc = a (M, K) @ w (N, K).T for int8 (or any int) codes."""
    a, w = np.asarray(a), np.asarray(w)
    if a.ndim != 2 or w.ndim != 2 or a.shape[1] != w.shape[1]:
        raise ValueError(f"need a (M, K) and w (N, K), got {a.shape} and {w.shape}")
    return a.astype(np.int64) @ w.astype(np.int64).T


def fits_int32(acc: np.ndarray) -> bool:
    """Whether an exact accumulator stays in int32 (else int32 kernels overflow)."""
    return bool(acc.size == 0 or (acc.min() >= INT32_MIN and acc.max() <= INT32_MAX))


def wrap_int32(acc: np.ndarray) -> np.ndarray:
    """The low 32 bits as int32: what a wrapping int32 accumulator holds."""
    return np.asarray(acc, dtype=np.int64).astype(np.int32)


def _f32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def _acc_sa_sb(acc, sa, sb):
    return (_f32(acc) * _f32(sa)) * _f32(sb)


def _acc_sasb(acc, sa, sb):
    return _f32(acc) * (_f32(sa) * _f32(sb))


def _sb_sa_acc(acc, sa, sb):
    return _f32(sb) * (_f32(sa) * _f32(acc))


EPILOGUES: dict[str, Callable] = {
    "(acc*sa)*sb": _acc_sa_sb,
    "acc*(sa*sb)": _acc_sasb,
    "sb*(sa*acc)": _sb_sa_acc,
}


def epilogue(acc: np.ndarray, sa: np.ndarray, sb: np.ndarray, order: str) -> np.ndarray:
    """float32 y = the named scaling of an int32 acc; sa broadcasts as (M, 1), sb as (N,).

    int32 -> float32 conversion rounds to nearest even above 2^24, as cvtdq2ps does.
    """
    if order not in EPILOGUES:
        raise ValueError(f"unknown epilogue {order!r}; known: {', '.join(EPILOGUES)}")
    with np.errstate(over="ignore", invalid="ignore"):
        return EPILOGUES[order](np.asarray(acc, dtype=np.int32), np.asarray(sa).reshape(-1, 1) if np.ndim(sa) else sa,
                                np.asarray(sb).reshape(1, -1) if np.ndim(sb) else sb)


def w8a8_linear(a, sa, w, sb, bias=None, *, order: str = "(acc*sa)*sb", bias_stage: str = "before_cast",
                out: str = "bf16") -> np.ndarray:
    """Bit-exact output of an int8 x int8 linear with the named epilogue and bias placement.

    a (M, K) int8 with per-token (M,) or scalar sa; w (N, K) int8 with per-channel (N,) or
    scalar sb (fp32 scales); bias (N,) fp32 for before_cast, or already in the out dtype for
    after_cast (it is rounded to out first if given as fp32). The int32 accumulator wraps.
    """
    y = epilogue(wrap_int32(int8_matmul(a, w)), sa, sb, order)
    if bias is None:
        return cast_out(y, out)
    if bias_stage == "before_cast":
        with np.errstate(over="ignore", invalid="ignore"):
            return cast_out(y + _f32(bias), out)
    if bias_stage == "after_cast":
        b = cast_out(bias, out).astype(np.float32)
        with np.errstate(over="ignore", invalid="ignore"):
            return cast_out(cast_out(y, out).astype(np.float32) + b, out)
    raise ValueError(f"unknown bias_stage {bias_stage!r} (before_cast, after_cast)")


def w8a8_exact(a, sa, w, sb, bias=None, *, out: str = "bf16") -> tuple[np.ndarray, np.ndarray]:
    """(exact y, bound) for a kernel whose epilogue order is unknown (any of the above).

    Exact: acc*sa*sb + bias with acc exact; the float64 evaluation (two products and an add)
    carries at most gamma_3(fp64) relative error, which is added to the bound. Kernel: float(acc)
    (1 rounding), two products (2), the bias add (1, or 2 with a cast between): relative gamma_4
    of fp32 on |acc sa sb| + |bias|, plus the output casts: half an ulp at |acc sa sb| for a cast before the bias, and half
    an ulp at |y| for the final one (the first matters under cancellation with the bias), and half an ulp at |bias| for
    a bias stored in the output dtype.
    """
    acc = int8_matmul(a, w).astype(np.float64)
    sa64 = np.asarray(sa, dtype=np.float64)
    sa64 = sa64.reshape(-1, 1) if sa64.ndim else sa64
    sb64 = np.asarray(sb, dtype=np.float64)
    sb64 = sb64.reshape(1, -1) if sb64.ndim else sb64
    prod = acc * sa64 * sb64
    b64 = np.zeros(prod.shape[-1]) if bias is None else np.asarray(bias, dtype=np.float64)
    y = prod + b64
    mag = np.abs(prod) + np.abs(b64)
    bound = gamma(4, "fp32") * mag + gamma(3, "fp64") * mag + 4 * float_spec("fp32").eta
    if out not in OUT_DTYPES:
        raise ValueError(f"unknown output dtype {out!r}; known: {', '.join(OUT_DTYPES)}")
    # the cast before an after_cast bias rounds at |acc sa sb|, the final one at |y|
    first = output_rounding(np.abs(prod) + bound, out) + output_rounding(np.abs(b64), out)
    return y, bound + first + output_rounding(np.abs(y) + bound + first, out)


def per_token_w8(ops: dict[str, np.ndarray], observed: dict, convention: str, order: str) -> Expected:
    """w8_float as a kernel that quantizes x itself computes it, without bias: x widened to fp32 and quantized
    per token by the named activation convention (oracle/activations.py), the int32 sum of its codes times w
    (wrapping), the named fp32 epilogue with the per-channel scales in fp32, one RNE cast to x's dtype. The
    exact value and bound are those of the quantized sum (w8a8_exact), the prediction `w8a8_linear`'s."""
    x, w = ops["x"], ops["w"]
    qa = get(convention).quantize(np.asarray(x, np.float32))
    codes, sa = qa.codes.astype(np.int8), qa.scales[:, 0].astype(np.float32)
    sb, out = _f32(ops["scales"]), out_dtype(x)
    exact, bound = w8a8_exact(codes, sa, w, sb, out=out)
    return Expected(exact, bound, w8a8_linear(codes, sa, w, sb, order=order, out=out), out)
