"""The project's Triton int4 weight-only GEMV/GEMM in two stored layouts, read as stored.

- GGML q4_0 (oracle/ggml/q4_0.py; ggml-common.h `block_q4_0`): rows of 18-byte blocks, fp16 d in
  bytes 0..1, byte 2 + j holds code(x[j]) in its low nibble and code(x[j+16]) in its high one;
  w = (nibble - 8) * fp32(d). K must be a multiple of 32.
- ESIMD (oracle/conventions/esimd.py, seed 001's int4_GEMV.h): uint8 [N, K/2], low nibble = even
  k, high = odd k, fp16 scale [N, ceil(K/128)], w = (u4 - 8) * fp32(scale). K must be even.

Arithmetic: the dequantized weight is exact in fp32 (a 4-bit integer times an fp16 scale), each
product x * w is rounded in fp32 and the products are summed in fp32 in an order the compiler
picks (tl.sum trees), per split-K slice; the slices' fp32 partials are then added in slice order
by a second kernel and cast once (RNE) to the output dtype. That is oracle.gemm.wxa16's model
with acc fp32 and order 'any': the exact value and its derived bound judge it (no fixed order,
so no bit-exact prediction).

Speed (M = 1 decode): the weight bytes are the whole cost; programs tile N (BLOCK_N rows) and,
when N alone gives too few programs for the GPU, split K, so that every SM has several programs
in flight; the ESIMD layout's bytes are contiguous along K and load as 16-byte vectors.
"""
from __future__ import annotations

import numpy as np

from kernels.triton import runtime  # first: it sets TRITON_INTERPRET before triton is imported
import triton  # noqa: E402
import triton.language as tl  # noqa: E402

from kernels.triton.lang import OUT_CODES, cast_out  # noqa: E402

__all__ = ["LAYOUTS", "gemv", "gemv_t", "pick_config"]

LAYOUTS = {"q4_0": 0, "esimd": 1}


@triton.jit
def _w4_kernel(x_ptr, w_ptr, s_ptr, out_ptr, M, N, K, stride_xm, stride_wn, stride_sn, stride_om,
               LAYOUT: tl.constexpr, OUT: tl.constexpr, SPLIT_K: tl.constexpr,
               BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    pid_n = tl.program_id(0)
    pid_m = tl.program_id(1)
    pid_k = tl.program_id(2)
    HALF: tl.constexpr = BLOCK_K // 2
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    p = tl.arange(0, HALF)  # byte index within the chunk
    mask_m = rm < M
    mask_n = rn < N
    w_rows = w_ptr + rn[:, None].to(tl.int64) * stride_wn
    x_rows = x_ptr + rm[:, None].to(tl.int64) * stride_xm
    n_chunks = tl.cdiv(K, BLOCK_K)
    per_split = tl.cdiv(n_chunks, SPLIT_K)
    acc = tl.zeros((BLOCK_M, BLOCK_N), tl.float32)
    for c in range(pid_k * per_split, tl.minimum(n_chunks, (pid_k + 1) * per_split)):
        k0 = c * BLOCK_K
        if LAYOUT == 0:
            # q4_0: chunk byte p is block b = p // 16, qs index j = p % 16: elements k0 + 32b + j (+16)
            blk = k0 // 32 + p // 16
            j = p % 16
            ok = (blk * 32 < K)[None, :] & mask_n[:, None]
            byte = tl.load(w_rows + (blk * 18 + 2 + j)[None, :], mask=ok, other=0)
            d_lo = tl.load(w_rows + (blk * 18)[None, :], mask=ok, other=0).to(tl.uint16)
            d_hi = tl.load(w_rows + (blk * 18 + 1)[None, :], mask=ok, other=0).to(tl.uint16)
            scale = (d_lo | (d_hi << 8)).to(tl.float16, bitcast=True).to(tl.float32)
            k_lo = blk * 32 + j
            k_hi = k_lo + 16
        else:
            # ESIMD: byte p holds k0 + 2p (low nibble) and k0 + 2p + 1 (high); scale of group k // 128
            k_lo = k0 + 2 * p
            k_hi = k_lo + 1
            ok = (k_lo < K)[None, :] & mask_n[:, None]
            byte = tl.load(w_rows + (k0 // 2 + p)[None, :], mask=ok, other=0)
            scale = tl.load(s_ptr + rn[:, None].to(tl.int64) * stride_sn + (k_lo // 128)[None, :], mask=ok,
                            other=0.0).to(tl.float32)
        q_lo = (byte & 15).to(tl.int32) - 8
        q_hi = (byte >> 4).to(tl.int32) - 8
        w_lo = q_lo.to(tl.float32) * scale  # exact: 4-bit integer times an fp16 value
        w_hi = q_hi.to(tl.float32) * scale
        xm = mask_m[:, None]
        x_lo = tl.load(x_rows + k_lo[None, :], mask=xm & (k_lo < K)[None, :], other=0.0).to(tl.float32)
        x_hi = tl.load(x_rows + k_hi[None, :], mask=xm & (k_hi < K)[None, :], other=0.0).to(tl.float32)
        prod = x_lo[:, None, :] * w_lo[None, :, :] + x_hi[:, None, :] * w_hi[None, :, :]
        acc += tl.sum(prod, axis=2)
    o_ptrs = out_ptr + pid_k.to(tl.int64) * M * N + rm[:, None].to(tl.int64) * stride_om + rn[None, :]
    mask = mask_m[:, None] & mask_n[None, :]
    if SPLIT_K == 1:
        tl.store(o_ptrs, cast_out(acc, OUT), mask=mask)
    else:
        tl.store(o_ptrs, acc, mask=mask)


@triton.jit
def _split_sum_kernel(ws_ptr, out_ptr, MN, SPLIT_K: tl.constexpr, OUT: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < MN
    acc = tl.load(ws_ptr + offs, mask=mask, other=0.0)
    for s in tl.static_range(1, SPLIT_K):  # slice order: a fixed, documented order
        acc += tl.load(ws_ptr + s * MN + offs, mask=mask, other=0.0)
    tl.store(out_ptr + offs, cast_out(acc, OUT), mask=mask)


def _sms() -> int:
    import torch

    return torch.cuda.get_device_properties(0).multi_processor_count


def pick_config(m: int, n: int, k: int) -> dict:
    """Small tiles in the interpreter; on the GPU enough programs for every SM (split K if needed)."""
    if runtime.interpreted():
        return dict(BLOCK_M=min(4, triton.next_power_of_2(max(m, 1))), BLOCK_N=16, BLOCK_K=64, SPLIT_K=1,
                    num_warps=4)
    block_m = 1 if m == 1 else min(8, triton.next_power_of_2(m))
    block_n, block_k = 16, 256
    progs = triton.cdiv(n, block_n) * triton.cdiv(m, block_m)
    split = max(1, min(triton.cdiv(4 * _sms(), progs), triton.cdiv(k, block_k), 16))
    return dict(BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_K=block_k, SPLIT_K=split, num_warps=4)


def gemv_t(x, weight, scales, *, layout: str, k: int, out: str | None = None, config: dict | None = None,
           workspace=None):
    """Torch tensors: x (M, K) fp16/bf16/fp32 @ int4 weight.T -> (M, N) in `out` (x's dtype by default)."""
    import torch

    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; known: {', '.join(LAYOUTS)}")
    m = x.shape[0]
    if x.shape[1] != k:
        raise ValueError(f"x has K={x.shape[1]}, weight K={k}")
    if layout == "q4_0" and (k % 32 or weight.shape[1] != k // 32 * 18):
        raise ValueError(f"q4_0 needs K % 32 == 0 and 18-byte blocks, got K={k}, row bytes {weight.shape[1]}")
    if layout == "esimd" and (k % 2 or weight.shape[1] != k // 2 or scales.shape[1] != -(-k // 128)):
        raise ValueError(f"esimd needs even K, [N, K/2] bytes and [N, ceil(K/128)] scales, got K={k}, "
                         f"{tuple(weight.shape)}, {tuple(scales.shape)}")
    n = weight.shape[0]
    names = {torch.float16: "fp16", torch.bfloat16: "bf16", torch.float32: "fp32"}
    out = out or names[x.dtype]
    dt = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[out]
    cfg = dict(config or pick_config(m, n, k))
    split = cfg.pop("SPLIT_K")
    y = torch.empty((m, n), dtype=dt, device=x.device)
    if m == 0 or n == 0:
        return y
    target = y
    if split > 1:
        need = split * m * n
        target = workspace[:need] if workspace is not None and workspace.numel() >= need else \
            torch.empty(need, dtype=torch.float32, device=x.device)
    s = scales if scales is not None else weight
    grid = (triton.cdiv(n, cfg["BLOCK_N"]), triton.cdiv(m, cfg["BLOCK_M"]), split)
    _w4_kernel[grid](x, weight, s, target, m, n, k, x.stride(0), weight.stride(0), s.stride(0),
                     n if split > 1 else y.stride(0), LAYOUT=LAYOUTS[layout], OUT=OUT_CODES[out], SPLIT_K=split,
                     **cfg)
    if split > 1:
        block = 1024
        _split_sum_kernel[(triton.cdiv(m * n, block),)](target, y, m * n, SPLIT_K=split, OUT=OUT_CODES[out],
                                                        BLOCK=block, num_warps=4)
    return y


def gemv(x: np.ndarray, weight: np.ndarray, scales: np.ndarray | None, *, layout: str, k: int,
         out: str | None = None, config: dict | None = None) -> np.ndarray:
    """numpy in and out: q4_0 weight = the (N, K/32*18) block bytes (scales None); esimd = (N, K/2)
    bytes and (N, ceil(K/128)) fp16 scales."""
    w = runtime.to_torch(np.ascontiguousarray(weight, np.uint8))
    s = None if scales is None else runtime.to_torch(np.ascontiguousarray(scales, np.float16))
    return runtime.to_numpy(gemv_t(runtime.to_torch(x), w, s, layout=layout, k=k, out=out, config=config))


available = runtime.available
observe = runtime.observe
