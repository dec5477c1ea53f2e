"""The project's Triton DA8W4: dynamic int8 activations x int4 weights with zero points.

Semantics are oracle/gemm/da8w4.py's (torchao's CPU kernel, PR #2128 / da8w4_linear.cpp), bit
for bit:
- K is cut into blocks of min(group_size, 128); per block an int32
  acc = sum_k a_q[m, k] * (w_q[n, k] - zp_w[n, g]) - zp_a[m] * comp[n, b],
  comp = the block's sum of (w_q - zp_w) (the oracle's compensation='zp');
- y starts at the fp32 bias (or 0) and, block after block in K order,
  y = y + (float(acc) * a_scale[m]) * w_scale[n, g] in fp32 (no FMA: enable_fp_fusion=False);
- one RNE cast to bf16/fp16 (bf16 rounded explicitly: the interpreter would truncate).
The uint8 activation codes do not fit tl.dot's int8, so the kernel feeds (a_q - 128) and adds
(128 - zp_a) * comp back: the same integers, exactly (|acc| < 2^31 with K blocks <= 128).
Symmetric int8 codes go in as they are with zp_a = 0.

Weights are the kernel's own layout: uint8 [N, K/2] with adjacent nibbles (low = even k), codes
0..15; scales fp32 [N, K/group]; zero points int32 [N, K/group].

Activation quantization, one program per token, in the named oracle conventions
(oracle/activations.py): `act.torchao.da8w4.asym.fp32` (s = (max(x,0) - min(x,0)) / 255 with
eps 2^-23, zp = clamp(-rne(min/s), 0, 255), q = clamp(rne(x * (1/s)) + zp, 0, 255)) and
`act.torchao.da8w4.sym` (s = absmax / 127 with eps, q = clamp(rne(x * (1/s)), -127, 127)), all
divisions IEEE (`div_rn`); x is read through both of its strides (a caller's transposed, sliced
or broadcast view as it is).
"""
from __future__ import annotations

import numpy as np

from kernels.triton import runtime  # first: it sets TRITON_INTERPRET before triton is imported
import triton  # noqa: E402
import triton.language as tl  # noqa: E402

from kernels.triton.lang import OUT_CODES, cast_out, round_half_even  # noqa: E402

__all__ = ["ACT_CONVENTIONS", "DEFAULT_CONVENTION", "quantize_act", "linear", "linear_view", "linear_t",
           "quantize_act_t", "pack_weight"]

ACT_CONVENTIONS = {"act.torchao.da8w4.asym.fp32": 0, "act.torchao.da8w4.sym": 1}
# torchao's default (int4_opaque_tensor.py Int4OpaqueTensor.from_hp_da8w4: act_mapping_type=MappingType.ASYMMETRIC)
DEFAULT_CONVENTION = "act.torchao.da8w4.asym.fp32"
_F32_EPS = 1.1920928955078125e-07


@triton.jit
def _act_kernel(x_ptr, q_ptr, s_ptr, z_ptr, K, stride_x, stride_xk, stride_q, SYM: tl.constexpr,
                EPS: tl.constexpr, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    offs = tl.arange(0, BLOCK)
    lo = tl.zeros((BLOCK,), tl.float32)
    hi = tl.zeros((BLOCK,), tl.float32)
    for k0 in range(0, K, BLOCK):
        m = k0 + offs < K
        x = tl.load(x_ptr + row * stride_x + (k0 + offs) * stride_xk, mask=m, other=0.0).to(tl.float32)
        lo = tl.minimum(lo, x)  # the zeros start both at 0: min(min, 0) and max(max, 0)
        hi = tl.maximum(hi, x)
    mn = tl.min(lo, axis=0)
    mx = tl.max(hi, axis=0)
    if SYM:
        s = tl.maximum(tl.math.div_rn(tl.maximum(-mn, mx), 127.0), EPS)
        zp = 0
    else:
        s = tl.maximum(tl.math.div_rn(mx - mn, 255.0), EPS)
        zp = tl.minimum(tl.maximum(0 - round_half_even(tl.math.div_rn(mn, s)), 0), 255)
    inv = tl.math.div_rn(1.0, s)
    tl.store(s_ptr + row, s)
    tl.store(z_ptr + row, zp)
    for k0 in range(0, K, BLOCK):
        m = k0 + offs < K
        x = tl.load(x_ptr + row * stride_x + (k0 + offs) * stride_xk, mask=m, other=0.0).to(tl.float32)
        q = round_half_even(x * inv) + zp
        if SYM:
            q = tl.minimum(tl.maximum(q, -127), 127)
            tl.store(q_ptr + row * stride_q + k0 + offs, q.to(tl.int8), mask=m)
        else:
            q = tl.minimum(tl.maximum(q, 0), 255)
            tl.store(q_ptr + row * stride_q + k0 + offs, q.to(tl.uint8), mask=m)


@triton.jit
def _da8w4_kernel(a_ptr, sa_ptr, za_ptr, w_ptr, sw_ptr, zw_ptr, bias_ptr, out_ptr, M, N, K,
                  stride_am, stride_ak, stride_wn, stride_gn, stride_om,
                  GROUP: tl.constexpr, ASYM: tl.constexpr, HAS_BIAS: tl.constexpr, OUT: tl.constexpr,
                  BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BK: tl.constexpr):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BK)
    rp = tl.arange(0, BK // 2)
    mask_m = rm < M
    mask_n = rn < N
    ram = rm % M
    rbn = rn % N
    sa = tl.load(sa_ptr + ram)
    off = tl.zeros((BLOCK_M,), tl.int32)
    if ASYM:
        off = 128 - tl.load(za_ptr + ram)
    if HAS_BIAS:
        y = tl.zeros((BLOCK_M, BLOCK_N), tl.float32) + tl.load(bias_ptr + rbn)[None, :]
    else:
        y = tl.zeros((BLOCK_M, BLOCK_N), tl.float32)
    for b in range(0, K // BK):
        g = (b * BK) // GROUP
        a = tl.load(a_ptr + ram[:, None].to(tl.int64) * stride_am + (b * BK + rk)[None, :] * stride_ak)
        if ASYM:
            a = (a.to(tl.int32) - 128).to(tl.int8)
        byte = tl.load(w_ptr + rbn[:, None].to(tl.int64) * stride_wn + (b * (BK // 2) + rp)[None, :])
        zw = tl.load(zw_ptr + rbn.to(tl.int64) * stride_gn + g)
        lo = (byte & 15).to(tl.int32) - zw[:, None]
        hi = (byte >> 4).to(tl.int32) - zw[:, None]
        wc = tl.reshape(tl.join(lo, hi), (BLOCK_N, BK))  # adjacent nibbles: k = 2p (low), 2p + 1 (high)
        comp = tl.sum(wc, axis=1)  # (BLOCK_N,): the block's sum of (w_q - zp_w)
        acc = tl.dot(a, tl.trans(wc.to(tl.int8)), out_dtype=tl.int32)
        acc = acc + off[:, None] * comp[None, :]
        sw = tl.load(sw_ptr + rbn.to(tl.int64) * stride_gn + g)
        y = y + (acc.to(tl.float32) * sa[:, None]) * sw[None, :]
    o_ptrs = out_ptr + rm[:, None].to(tl.int64) * stride_om + rn[None, :]
    tl.store(o_ptrs, cast_out(y, OUT), mask=mask_m[:, None] & mask_n[None, :])


def pack_weight(codes: np.ndarray) -> np.ndarray:
    """uint4 codes (N, K) -> uint8 (N, K/2), low nibble = even k."""
    c = np.asarray(codes).astype(np.uint8)
    if c.shape[1] % 2 or c.max(initial=0) > 15:
        raise ValueError("need codes in [0, 15] and an even K")
    return (c[:, 0::2] | (c[:, 1::2] << 4)).astype(np.uint8)


def quantize_act_t(x, convention: str):
    """Torch: (codes uint8 (asym) / int8 (sym), fp32 scales (M,), int32 zero points (M,))."""
    import torch

    if convention not in ACT_CONVENTIONS:
        raise ValueError(f"unknown activation convention {convention!r}; known: {', '.join(ACT_CONVENTIONS)}")
    sym = ACT_CONVENTIONS[convention] == 1
    m, k = x.shape
    q = torch.empty((m, k), dtype=torch.int8 if sym else torch.uint8, device=x.device)
    s = torch.empty((m,), dtype=torch.float32, device=x.device)
    z = torch.empty((m,), dtype=torch.int32, device=x.device)
    block = runtime.row_block(k)
    if m:
        _act_kernel[(m,)](x, q, s, z, k, x.stride(0), x.stride(1), q.stride(0), SYM=sym, EPS=_F32_EPS, BLOCK=block,
                          num_warps=4, enable_fp_fusion=False)
    return q, s, z


def linear_t(a, sa, za, w, sw, zw, bias=None, *, group_size: int, out: str = "bf16", config: dict | None = None):
    """Torch: a (M, K) uint8 (asym, zero points za) or int8 (sym); w (N, K/2) packed uint4."""
    import torch

    m, k = a.shape
    n = w.shape[0]
    bk = min(group_size, 128)
    if group_size <= 0 or k % group_size or group_size % bk or bk < 32 or bk & (bk - 1):
        raise ValueError(f"need K % group_size == 0 and a power-of-two block >= 32, got K={k}, group {group_size}")
    if w.shape[1] != k // 2 or sw.shape != (n, k // group_size) or zw.shape != (n, k // group_size):
        raise ValueError(f"weight (N, K/2), scales and zero points (N, K/group) expected, got {tuple(w.shape)}, "
                         f"{tuple(sw.shape)}, {tuple(zw.shape)}")
    asym = a.dtype == torch.uint8
    if not asym and a.dtype != torch.int8:
        raise ValueError(f"activation codes must be uint8 (asym) or int8 (sym), got {a.dtype}")
    cfg = dict(config or (dict(BLOCK_M=16, BLOCK_N=64, num_warps=4) if runtime.interpreted()
                          else dict(BLOCK_M=64 if m > 32 else 16, BLOCK_N=64, num_warps=4, num_stages=3)))
    dt = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[out]
    y = torch.empty((m, n), dtype=dt, device=a.device)
    if m == 0 or n == 0:
        return y
    za = za if za is not None else sa
    grid = (triton.cdiv(m, cfg["BLOCK_M"]), triton.cdiv(n, cfg["BLOCK_N"]))
    _da8w4_kernel[grid](a, sa, za, w, sw, zw, bias if bias is not None else sw, y, m, n, k,
                        a.stride(0), a.stride(1), w.stride(0), sw.stride(0), y.stride(0), GROUP=group_size, ASYM=asym,
                        HAS_BIAS=bias is not None, OUT=OUT_CODES[out], BK=bk, enable_fp_fusion=False, **cfg)
    return y


# -- worker-side calls on numpy arrays ------------------------------------------------------


def quantize_act(x: np.ndarray, convention: str) -> dict:
    q, s, z = quantize_act_t(runtime.to_torch(x), convention)
    return {"codes": runtime.to_numpy(q), "scales": runtime.to_numpy(s), "zeros": runtime.to_numpy(z)}


def _weights_t(w_packed: np.ndarray, w_scale: np.ndarray, w_zp: np.ndarray) -> tuple:
    """Packed uint4 codes, fp32 group scales and int32 zero points as linear_t takes them."""
    t = runtime.to_torch
    return t(np.asarray(w_packed, np.uint8)), t(np.asarray(w_scale, np.float32)), t(np.asarray(w_zp, np.int32))


def linear(a_q: np.ndarray, a_scale: np.ndarray, a_zp: np.ndarray | None, w_packed: np.ndarray,
           w_scale: np.ndarray, w_zp: np.ndarray, bias: np.ndarray | None = None, *, group_size: int,
           out: str = "bf16", config: dict | None = None) -> np.ndarray:
    """uint8 a_q with int zero points (asym) or int8 a_q with a_zp None (sym) x packed uint4 weights."""
    t = runtime.to_torch
    y = linear_t(t(a_q), t(np.asarray(a_scale, np.float32)), None if a_zp is None else t(np.asarray(a_zp, np.int32)),
                 *_weights_t(w_packed, w_scale, w_zp), None if bias is None else t(np.asarray(bias, np.float32)),
                 group_size=group_size, out=out, config=config)
    return runtime.to_numpy(y)


def linear_view(x, codes: np.ndarray, scales: np.ndarray, zp: np.ndarray, group: int) -> np.ndarray:
    """The caller's view of x (a kernels.layouts.View) as it is, quantized per token by DEFAULT_CONVENTION,
    times codes 0..15 with fp32 group scales and zero points (N, K / group), no bias, the output in x's
    dtype: the call its spec judges (semantics da8w4.asym_fp32.mul_add)."""
    from oracle.gemm.semantics import out_dtype

    xt, _ = runtime.view_on_device(x)
    a, sa, za = quantize_act_t(xt, DEFAULT_CONVENTION)
    y = linear_t(a, sa, za, *_weights_t(pack_weight(codes), scales, zp), group_size=group, out=out_dtype(x.storage))
    return runtime.to_numpy(y)


available = runtime.available
observe = runtime.observe
