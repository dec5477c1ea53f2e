"""The project's Triton W8A8 kernels: per-token int8 activation quantization and an int8 GEMM.

Activation quantization, one program per token, in one of two named oracle conventions
(oracle/activations.py):
- `act.sglang.per_token_int8.triton` (sglang int8_kernel.py `per_token_quant_int8`):
  absmax = max(max|x|, 1e-10), scale = absmax / 127, q = round_half_away(x * (127 / absmax));
- `act.vllm.per_token_int8.cuda` (vLLM int8_quant_kernels.cu `dynamic_scaled_int8_quant_kernel`):
  no eps, q = cvt.rni.sat(x * (127 / absmax)) (RNE, saturating, NaN -> 0).
Both divisions use `tl.math.div_rn` (IEEE): Triton's `/` on fp32 lowers to the approximate
`div.full.f32` on NVIDIA GPUs, which would move a scale by an ulp.

GEMM: acc = a (M, K) int8 @ w (N, K).T int8 by `tl.dot` into an int32 accumulator (wrapping, like
the tensor cores' s32 accumulate), then the named fp32 epilogue of oracle/gemm/w8a8.py:
'(acc*sa)*sb' (torch eager, vLLM triton_scaled_mm's sb*(sa*acc) is the same value) or
'acc*(sa*sb)', per-token sa (M,) and per-channel sb (N,); an optional fp32 bias added before the
output cast ('before_cast') or to the cast output ('after_cast', vLLM); fp32, fp16 or bf16 out by
RNE. Kernels launch with enable_fp_fusion=False so `y + bias` is never contracted into an FMA
with the scaling, and the epilogue is the oracle's order bit for bit. Activations and weights
are read through both of their strides (a transposed, sliced or broadcast caller view as it
is); the weight's fast layout is K-major ((N, K) row-major), which Hopper's int8 wgmma takes
without a transpose.
"""
from __future__ import annotations

import numpy as np

from kernels.triton import runtime  # first: it sets TRITON_INTERPRET before triton is imported
import triton  # noqa: E402
import triton.language as tl  # noqa: E402

from kernels.triton.lang import OUT_CODES, cast_out, round_half_away, round_half_even

__all__ = ["CONVENTIONS", "ORDERS", "DEFAULT_CONVENTION", "DEFAULT_ORDER", "quantize_act", "int_mm", "gemm",
           "linear", "linear_view", "gemm_t", "quantize_act_t", "pick_config", "HOPPER_CONFIGS"]

CONVENTIONS = {"act.sglang.per_token_int8.triton": 0, "act.vllm.per_token_int8.cuda": 1}
ORDERS = {"(acc*sa)*sb": 1, "acc*(sa*sb)": 2}
DEFAULT_CONVENTION, DEFAULT_ORDER = "act.sglang.per_token_int8.triton", "(acc*sa)*sb"  # linear's, unless told
_BIAS = {None: 0, "before_cast": 1, "after_cast": 2}


@triton.jit
def _act_quant_kernel(x_ptr, q_ptr, s_ptr, K, stride_x, stride_xk, stride_q, RULE: tl.constexpr,
                      BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    offs = tl.arange(0, BLOCK)
    amax = tl.zeros((BLOCK,), tl.float32)
    for k0 in range(0, K, BLOCK):
        m = k0 + offs < K
        x = tl.load(x_ptr + row * stride_x + (k0 + offs) * stride_xk, mask=m, other=0.0).to(tl.float32)
        amax = tl.maximum(amax, tl.abs(x))
    absmax = tl.max(amax, axis=0)
    if RULE == 0:
        absmax = tl.maximum(absmax, 1e-10)
    tl.store(s_ptr + row, tl.math.div_rn(absmax, 127.0))
    inv = tl.math.div_rn(127.0, absmax)
    for k0 in range(0, K, BLOCK):
        m = k0 + offs < K
        x = tl.load(x_ptr + row * stride_x + (k0 + offs) * stride_xk, mask=m, other=0.0).to(tl.float32)
        t = x * inv
        if RULE == 0:
            q = round_half_away(t)
        else:
            t = tl.where(t == t, t, 0.0)  # cvt.sat: NaN -> 0
            q = round_half_even(tl.minimum(tl.maximum(t, -128.0), 127.0))
        tl.store(q_ptr + row * stride_q + k0 + offs, q.to(tl.int8), mask=m)


@triton.jit
def _gemm_kernel(a_ptr, w_ptr, c_ptr, sa_ptr, sb_ptr, bias_ptr, M, N, K,
                 stride_am, stride_ak, stride_wn, stride_wk, stride_cm,
                 EPI: tl.constexpr, BIAS: tl.constexpr, OUT: tl.constexpr, EVEN_K: tl.constexpr,
                 BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr):
    pid = tl.program_id(0)
    grid_m = tl.cdiv(M, BLOCK_M)
    grid_n = tl.cdiv(N, BLOCK_N)
    width = GROUP_M * grid_n  # grouped order: GROUP_M row blocks share each weight column block in L2
    group = pid // width
    first_m = group * GROUP_M
    rows = min(grid_m - first_m, GROUP_M)
    pid_m = first_m + (pid % width) % rows
    pid_n = (pid % width) // rows
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    ram = tl.max_contiguous(tl.multiple_of(rm % M, BLOCK_M), BLOCK_M)
    rbn = tl.max_contiguous(tl.multiple_of(rn % N, BLOCK_N), BLOCK_N)
    a_ptrs = a_ptr + ram[:, None].to(tl.int64) * stride_am + rk[None, :] * stride_ak
    w_ptrs = w_ptr + rbn[None, :].to(tl.int64) * stride_wn + rk[:, None] * stride_wk
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.int32)
    for k0 in range(0, tl.cdiv(K, BLOCK_K)):
        if EVEN_K:
            a = tl.load(a_ptrs)
            b = tl.load(w_ptrs)
        else:
            left = K - k0 * BLOCK_K
            a = tl.load(a_ptrs, mask=rk[None, :] < left, other=0)
            b = tl.load(w_ptrs, mask=rk[:, None] < left, other=0)
        acc = tl.dot(a, b, acc, out_dtype=tl.int32)
        a_ptrs += BLOCK_K * stride_ak
        w_ptrs += BLOCK_K * stride_wk
    mask = (rm[:, None] < M) & (rn[None, :] < N)
    c_ptrs = c_ptr + rm[:, None].to(tl.int64) * stride_cm + rn[None, :]
    if EPI == 0:
        tl.store(c_ptrs, acc, mask=mask)
    else:
        sa = tl.load(sa_ptr + rm, mask=rm < M, other=0.0)
        sb = tl.load(sb_ptr + rn, mask=rn < N, other=0.0)
        accf = acc.to(tl.float32)
        if EPI == 1:
            y = (accf * sa[:, None]) * sb[None, :]
        else:
            y = accf * (sa[:, None] * sb[None, :])
        if BIAS == 1:
            y = y + tl.load(bias_ptr + rn, mask=rn < N, other=0.0)[None, :]
        if BIAS == 2:
            b_out = cast_out(tl.load(bias_ptr + rn, mask=rn < N, other=0.0), OUT).to(tl.float32)
            y = cast_out(y, OUT).to(tl.float32) + b_out[None, :]
        tl.store(c_ptrs, cast_out(y, OUT), mask=mask)


# Hopper (H100/H200) candidates: 128-256 wide tiles, BLOCK_K 128 (two wgmma k-steps of 64 bytes),
# 8 warps (two warpgroups), 3-5 stages in shared memory (<= 228 KiB), grouped launch order.
HOPPER_CONFIGS = (
    dict(BLOCK_M=128, BLOCK_N=256, BLOCK_K=128, GROUP_M=8, num_warps=8, num_stages=3),
    dict(BLOCK_M=256, BLOCK_N=128, BLOCK_K=128, GROUP_M=8, num_warps=8, num_stages=3),
    dict(BLOCK_M=128, BLOCK_N=128, BLOCK_K=128, GROUP_M=8, num_warps=8, num_stages=4),
    dict(BLOCK_M=128, BLOCK_N=256, BLOCK_K=64, GROUP_M=8, num_warps=8, num_stages=4),
    dict(BLOCK_M=128, BLOCK_N=128, BLOCK_K=64, GROUP_M=8, num_warps=4, num_stages=5),
    dict(BLOCK_M=64, BLOCK_N=128, BLOCK_K=128, GROUP_M=8, num_warps=4, num_stages=4),
)
_INTERPRETER_CONFIG = dict(BLOCK_M=16, BLOCK_N=32, BLOCK_K=64, GROUP_M=2, num_warps=4, num_stages=1)


def pick_config(m: int, n: int, k: int) -> dict:
    """A default launch config: small tiles in the interpreter, Hopper tiles on the GPU."""
    if runtime.interpreted():
        return dict(_INTERPRETER_CONFIG)
    if m <= 64:
        return dict(BLOCK_M=64, BLOCK_N=64, BLOCK_K=128, GROUP_M=8, num_warps=4, num_stages=4)
    return dict(HOPPER_CONFIGS[0])


def quantize_act_t(x, convention: str):
    """Torch tensors in and out: (int8 codes (M, K), fp32 scales (M,))."""
    import torch

    if convention not in CONVENTIONS:
        raise ValueError(f"unknown activation convention {convention!r}; known: {', '.join(CONVENTIONS)}")
    m, k = x.shape
    q = torch.empty((m, k), dtype=torch.int8, device=x.device)
    s = torch.empty((m,), dtype=torch.float32, device=x.device)
    block = runtime.row_block(k)
    if m:
        _act_quant_kernel[(m,)](x, q, s, k, x.stride(0), x.stride(1), q.stride(0), RULE=CONVENTIONS[convention],
                                BLOCK=block, num_warps=4 if block <= 1024 else 8, enable_fp_fusion=False)
    return q, s


def gemm_t(a, w, sa=None, sb=None, bias=None, *, out: str = "bf16", order: str | None = "(acc*sa)*sb",
           bias_stage: str = "before_cast", config: dict | None = None):
    """Torch tensors: int8 a (M, K) @ int8 w (N, K).T; order None returns the int32 accumulator."""
    import torch

    m, k = a.shape
    n = w.shape[0]
    if w.shape[1] != k or a.dtype != torch.int8 or w.dtype != torch.int8:
        raise ValueError(f"need int8 a (M, K) and w (N, K), got {tuple(a.shape)} {a.dtype}, {tuple(w.shape)} {w.dtype}")
    if order is not None and order not in ORDERS:
        raise ValueError(f"unknown epilogue order {order!r}; known: {', '.join(ORDERS)}")
    cfg = dict(config or pick_config(m, n, k))
    out_dt = torch.int32 if order is None else runtime_dtype(out)
    c = torch.empty((m, n), dtype=out_dt, device=a.device)
    if m == 0 or n == 0:
        return c
    dummy = c if order is None else sa
    grid = (triton.cdiv(m, cfg["BLOCK_M"]) * triton.cdiv(n, cfg["BLOCK_N"]),)
    _gemm_kernel[grid](a, w, c, dummy if sa is None else sa, dummy if sb is None else sb,
                       dummy if bias is None else bias, m, n, k, a.stride(0), a.stride(1), w.stride(0), w.stride(1),
                       c.stride(0), EPI=0 if order is None else ORDERS[order],
                       BIAS=_BIAS[None if bias is None else bias_stage], OUT=OUT_CODES.get(out, 0),
                       EVEN_K=k % cfg["BLOCK_K"] == 0, enable_fp_fusion=False, **cfg)
    return c


def runtime_dtype(out: str):
    import torch

    if out not in OUT_CODES:
        raise ValueError(f"unknown output dtype {out!r}; known: {', '.join(OUT_CODES)}")
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[out]


# -- worker-side calls on numpy arrays ------------------------------------------------------


def quantize_act(x: np.ndarray, convention: str) -> tuple[np.ndarray, np.ndarray]:
    """(int8 codes, fp32 scales) of float rows x (M, K)."""
    q, s = quantize_act_t(runtime.to_torch(x), convention)
    return runtime.to_numpy(q), runtime.to_numpy(s)


def int_mm(a: np.ndarray, w: np.ndarray, config: dict | None = None) -> np.ndarray:
    """The int32 accumulator a @ w.T (no epilogue)."""
    return runtime.to_numpy(gemm_t(runtime.to_torch(a), runtime.to_torch(w), order=None, config=config))


def _f32(v: np.ndarray | None):
    """An fp32 vector on the kernel device (None stays None)."""
    return None if v is None else runtime.to_torch(np.asarray(v, np.float32))


def gemm(a: np.ndarray, sa: np.ndarray, w: np.ndarray, sb: np.ndarray, bias: np.ndarray | None = None, *,
         out: str = "bf16", order: str = "(acc*sa)*sb", bias_stage: str = "before_cast",
         config: dict | None = None) -> np.ndarray:
    """int8 GEMM with the named fp32 epilogue; sa (M,), sb (N,), bias (N,) fp32."""
    y = gemm_t(runtime.to_torch(a), runtime.to_torch(w), _f32(sa), _f32(sb), _f32(bias), out=out, order=order,
               bias_stage=bias_stage, config=config)
    return runtime.to_numpy(y)


def _linear_t(x, w, sb: np.ndarray, bias: np.ndarray | None, convention: str, out: str, order: str,
              bias_stage: str):
    """Torch x and w: quantize x per token, then the GEMM; (y, codes, scales)."""
    q, s = quantize_act_t(x, convention)
    return gemm_t(q, w, s, _f32(sb), _f32(bias), out=out, order=order, bias_stage=bias_stage), q, s


def linear(x: np.ndarray, w: np.ndarray, sb: np.ndarray, bias: np.ndarray | None = None, *,
           convention: str = DEFAULT_CONVENTION, out: str = "bf16", order: str = DEFAULT_ORDER,
           bias_stage: str = "before_cast") -> dict:
    """Quantize x per token, then the GEMM; returns the output and the intermediate codes and scales."""
    y, q, s = _linear_t(runtime.to_torch(x), runtime.to_torch(w), sb, bias, convention, out, order, bias_stage)
    return {"y": runtime.to_numpy(y), "codes": runtime.to_numpy(q), "scales": runtime.to_numpy(s)}


def linear_view(x, w, scales: np.ndarray) -> np.ndarray:
    """`linear`'s default call (no bias) over the caller's views of x and w (kernels.layouts.View) as they
    are, the output in x's dtype: the call its spec judges (semantics w8a8.sglang_per_token.acc_sa_sb)."""
    from oracle.gemm.semantics import out_dtype

    xt, _ = runtime.view_on_device(x)
    wt, _ = runtime.view_on_device(w)
    y, _, _ = _linear_t(xt, wt, scales, None, DEFAULT_CONVENTION, out_dtype(x.storage), DEFAULT_ORDER, "before_cast")
    return runtime.to_numpy(y)


available = runtime.available
observe = runtime.observe
