"""The project's Triton int4 weight-only GEMV/GEMM in two stored layouts, read as stored.

- GGML q4_0 (oracle/ggml/q4_0.py; ggml-common.h `block_q4_0`): rows of 18-byte blocks, fp16 d in
  bytes 0..1, byte 2 + j holds code(x[j]) in its low nibble and code(x[j+16]) in its high one;
  w = (nibble - 8) * fp32(d). K must be a multiple of 32.
- ESIMD (oracle/conventions/esimd.py, seed 001's int4_GEMV.h): uint8 [N, K/2], low nibble = even
  k, high = odd k, fp16 scale [N, ceil(K/128)], w = (u4 - 8) * fp32(scale). K must be even.

Arithmetic: the dequantized weight (nibble - 8) * scale is exact in fp32 (a 4-bit integer times an
fp16 value); each product x * w is rounded in fp32, or fused with its add into an FMA where the
compiler contracts it, and summed in fp32 in an order the compiler picks, per split-K slice; the
slices' fp32 partials are then added in slice order, in the same launch, by the last of a tile's
programs to finish (`_finish`: a per-tile counter), and cast once (RNE) to
the output dtype. That is oracle.gemm.wxa16's model with acc fp32 and order 'any' (its bound
covers fused products): the exact value and its bound judge it, no bit-exact prediction.

Memory (M = 1 decode, where the weight bytes are the whole cost): the weight is read as words,
ESIMD rows as int32 [N, K/8] (word q holds k = 8q .. 8q+7, nibble i = k 8q+i since bytes are
little-endian, low nibble first), q4_0 rows as int16 [N, K/32*9] (rows are 18-byte blocks, only
2-byte aligned; word 0 of a block is d, word 1 + j the qs bytes 2j, 2j+1). A program loads a 2-D
[BLOCK_N, words] tile (so the compiler spreads lanes along K and keeps several rows per thread,
reusing each x value), reshapes it to [BLOCK_N, groups, words per group] to broadcast one scale
per (row, group), and loads the x values of its K chunk once, contiguously, split into the
nibble order in registers.

Unpacking without a shift per nibble: a nibble at bit 4p of a word, masked and or-ed into the
mantissa of 2^23 (0x4B000000), reads as the float 2^23 + n*16^p; minus c_p = 2^23 + 8*16^p it is
(n - 8)*16^p exactly, and times s*16^-p it is (n - 8)*s exactly. Only positions p in {2, 3, 4}
are used (each word shifted at most twice to bring its nibbles there), because there c_p * s*16^-p
is exact in fp32 (fp16 s has 11 significant bits, c_p spans 20 - 4p more), so the subtraction and
the multiply fold into one exact FMA, fma(f, s_p, -(c_p * s_p)) (DEQ_FMA=1; the identity holds for
every finite fp16 s and every nibble). An inf or NaN scale gives NaN for its whole group then
(inf - inf), where (n - 8) * inf would give +-inf.

Two kernel variants per layout, chosen by the config (`V`): 2 (default) loads x as one contiguous
chunk and splits it into nibble order in-kernel (reshape/split: shared memory on the GPU); 3 reads
x from host-made nibble planes (`x_planes`) or gathers it (XP=0), so every tile is loaded straight
in the layout it is used in, and reduces once after the K loop (docs/triton.md, "V3"). The interpreter's tl.fma rounds the product
first, so there DEQ_FMA is forced off and the subtract-then-multiply form (also exact) runs.
"""
from __future__ import annotations

import numpy as np

from kernels.triton import runtime  # first: it sets TRITON_INTERPRET before triton is imported
import triton  # noqa: E402
import triton.language as tl  # noqa: E402

from kernels.triton.lang import OUT_CODES, cast_out  # noqa: E402

__all__ = ["LAYOUTS", "gemv", "gemv_t", "pick_config", "CANDIDATES", "x_planes"]

LAYOUTS = {"q4_0": 0, "esimd": 1}
_MAGIC = 0x4B000000  # 2^23 as fp32 bits: a nibble or-ed into its mantissa reads as 2^23 + nibble * 16^p
_NIB8 = {"esimd": -2004318072, "q4_0": -30584}  # 0x88888888 / 0x8888: code 8 everywhere, weight 0


@triton.jit
def _nib3(word, P: tl.constexpr, s_p, nc_p, magic, FMA: tl.constexpr):
    """(nibble at bit 4P of word - 8) * s, exactly; s_p = s * 16^-P, nc_p = -(c_p * s_p), P in {2, 3, 4}
    (module docstring). magic = 0x4B000000 comes in a register (a kernel argument), so the mask and
    the or fold into one LOP3 (with two immediates ptxas emits two instructions)."""
    f = ((word & (15 << (4 * P))) | magic).to(tl.float32, bitcast=True)
    if FMA:
        return tl.fma(f, s_p, nc_p)
    else:
        return (f - (8388608.0 + 8.0 * (16 ** P))) * s_p


@triton.jit
def _split8(x, A: tl.constexpr, B: tl.constexpr):
    """[A, B*8] fp32 (k = 8b + i within a row) -> the eight [A, B] tensors x[..., i], i = 0..7."""
    e, o = tl.split(tl.reshape(x, [A, B, 4, 2]))  # i even / odd
    e0, e1 = tl.split(tl.reshape(e, [A, B, 2, 2]))  # i in {0, 4} / {2, 6}
    o0, o1 = tl.split(tl.reshape(o, [A, B, 2, 2]))  # i in {1, 5} / {3, 7}
    x0, x4 = tl.split(e0)
    x2, x6 = tl.split(e1)
    x1, x5 = tl.split(o0)
    x3, x7 = tl.split(o1)
    return x0, x1, x2, x3, x4, x5, x6, x7


@triton.jit
def _accumulate(acc, part, mi, BLOCK_M: tl.constexpr):
    """acc[mi, :] += part (acc is [BLOCK_M, BLOCK_N])."""
    if BLOCK_M == 1:
        return acc + part[None, :]
    else:
        return tl.where((tl.arange(0, BLOCK_M) == mi)[:, None], acc + part[None, :], acc)


@triton.jit
def _finish(y_ptrs, ws_ptrs, MN, mask, acc, cnt_ptr, pid_k, SPLIT_K, OUT: tl.constexpr, SPLIT: tl.constexpr):
    """Store acc (y_ptrs: this tile in the output; ws_ptrs: the same tile in workspace slice 0).

    With SPLIT (SPLIT_K > 1) the program adds its slice's fp32 partial to the workspace and takes a ticket
    from the tile's counter; the last of the tile's SPLIT_K programs to arrive sums the slices in
    slice order (a fixed order, so the bytes do not depend on which program came last), casts once,
    stores, and sets the counter back to 0 for the next call (one launch, no second kernel). The
    barrier puts every thread's partial before the counter's release; the sums read L2 (.cg)."""
    if not SPLIT:
        tl.store(y_ptrs, cast_out(acc, OUT), mask=mask)
    else:
        tl.store(ws_ptrs + pid_k.to(tl.int64) * MN, acc, mask=mask)
        tl.debug_barrier()
        ticket = tl.atomic_add(cnt_ptr, 1, sem="acq_rel")
        if ticket == SPLIT_K - 1:
            total = tl.load(ws_ptrs, mask=mask, other=0.0, cache_modifier=".cg")
            for s in range(1, SPLIT_K):
                total += tl.load(ws_ptrs + s * MN, mask=mask, other=0.0, cache_modifier=".cg")
            tl.store(y_ptrs, cast_out(total, OUT), mask=mask)
            tl.atomic_xchg(cnt_ptr, 0)


@triton.jit
def _store(out_ptr, ws_ptr, cnt_ptr, acc, pid_k, rm, rn, M, N, stride_om, SPLIT_K, OUT: tl.constexpr,
           SPLIT: tl.constexpr):
    """A [BLOCK_M, BLOCK_N] tile through _finish (the tile's counter: pid_m * grid0 + pid_n)."""
    cnt = cnt_ptr + tl.program_id(1) * tl.num_programs(0) + tl.program_id(0)
    off = rm[:, None].to(tl.int64) * N + rn[None, :]
    _finish(out_ptr + rm[:, None].to(tl.int64) * stride_om + rn[None, :], ws_ptr + off, M * N,
            (rm < M)[:, None] & (rn < N)[None, :], acc, cnt, pid_k, SPLIT_K, OUT, SPLIT)


@triton.jit
def _esimd_kernel(x_ptr, w_ptr, s_ptr, out_ptr, ws_ptr, cnt_ptr, magic, M, N, K, KW, G, stride_xm, stride_wn, stride_sn,
                  stride_om,
                  SPLIT_K, OUT: tl.constexpr, SPLIT: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                  BLOCK_G: tl.constexpr, DEQ_FMA: tl.constexpr):
    """w_ptr: int32 words [N, KW] (KW = ceil(K/8), padding nibbles 8); BLOCK_G 128-groups per step."""
    pid_n = tl.program_id(0)
    pid_m = tl.program_id(1)
    pid_k = tl.program_id(2)
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_n = rn < N
    gi = tl.arange(0, BLOCK_G)
    word = tl.arange(0, BLOCK_G * 16)  # word index within the step
    kk = tl.arange(0, BLOCK_G * 128)
    w_rows = w_ptr + rn.to(tl.int64)[:, None] * stride_wn
    s_rows = s_ptr + rn.to(tl.int64)[:, None] * stride_sn
    n_chunks = tl.cdiv(G, BLOCK_G)
    per_split = tl.cdiv(n_chunks, SPLIT_K)
    acc = tl.zeros((BLOCK_M, BLOCK_N), tl.float32)
    for c in range(pid_k * per_split, tl.minimum(n_chunks, (pid_k + 1) * per_split)):
        g0 = c * BLOCK_G
        q = g0 * 16 + word
        wq = tl.reshape(tl.load(w_rows + q[None, :], mask=mask_n[:, None] & (q < KW)[None, :],
                                other=-2004318072), [BLOCK_N, BLOCK_G, 16])  # 0x88888888: weight 0 past the row
        g = g0 + gi
        s = tl.load(s_rows + g[None, :], mask=mask_n[:, None] & (g < G)[None, :], other=0.0).to(tl.float32)
        s2 = (s * 0.00390625)[:, :, None]  # s * 16^-2, exact
        s3 = (s * 0.000244140625)[:, :, None]
        s4 = (s * 0.0000152587890625)[:, :, None]
        n2 = -(8390656.0 * s2)  # -(c_p * s_p), exact (module docstring)
        n3 = -(8421376.0 * s3)
        n4 = -(8912896.0 * s4)
        lo = wq << 8  # nibbles 0, 1 at positions 2, 3
        hi = wq >> 12  # nibbles 5, 6, 7 at positions 2, 3, 4
        w0 = _nib3(lo, 2, s2, n2, magic, DEQ_FMA)
        w1 = _nib3(lo, 3, s3, n3, magic, DEQ_FMA)
        w2 = _nib3(wq, 2, s2, n2, magic, DEQ_FMA)
        w3 = _nib3(wq, 3, s3, n3, magic, DEQ_FMA)
        w4 = _nib3(wq, 4, s4, n4, magic, DEQ_FMA)
        w5 = _nib3(hi, 2, s2, n2, magic, DEQ_FMA)
        w6 = _nib3(hi, 3, s3, n3, magic, DEQ_FMA)
        w7 = _nib3(hi, 4, s4, n4, magic, DEQ_FMA)
        k = g0 * 128 + kk
        for mi in tl.static_range(BLOCK_M):
            m = pid_m * BLOCK_M + mi
            xv = tl.load(x_ptr + m.to(tl.int64) * stride_xm + k, mask=(k < K) & (m < M), other=0.0)
            x0, x1, x2, x3, x4, x5, x6, x7 = _split8(tl.reshape(xv.to(tl.float32), [BLOCK_G, 128]), BLOCK_G, 16)
            t = w0 * x0[None] + w1 * x1[None] + w2 * x2[None] + w3 * x3[None] + w4 * x4[None] + w5 * x5[None] \
                + w6 * x6[None] + w7 * x7[None]
            acc = _accumulate(acc, tl.sum(tl.sum(t, axis=2), axis=1), mi, BLOCK_M)
    _store(out_ptr, ws_ptr, cnt_ptr, acc, pid_k, rm, rn, M, N, stride_om, SPLIT_K, OUT, SPLIT)


@triton.jit
def _q4_0_kernel(x_ptr, w_ptr, out_ptr, ws_ptr, cnt_ptr, magic, M, N, K, NB, stride_xm, stride_wn, stride_om,
                 SPLIT_K, OUT: tl.constexpr, SPLIT: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                 BLOCK_B: tl.constexpr, DEQ_FMA: tl.constexpr):
    """w_ptr: int16 words [N, NB*9], NB = K/32 blocks of (d, 8 qs words); BLOCK_B blocks per step."""
    pid_n = tl.program_id(0)
    pid_m = tl.program_id(1)
    pid_k = tl.program_id(2)
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_n = rn < N
    bi = tl.arange(0, BLOCK_B)
    tq = tl.arange(0, BLOCK_B * 8)
    kk = tl.arange(0, BLOCK_B * 32)
    w_rows = w_ptr + rn.to(tl.int64)[:, None] * stride_wn
    n_chunks = tl.cdiv(NB, BLOCK_B)
    per_split = tl.cdiv(n_chunks, SPLIT_K)
    acc = tl.zeros((BLOCK_M, BLOCK_N), tl.float32)
    for c in range(pid_k * per_split, tl.minimum(n_chunks, (pid_k + 1) * per_split)):
        b = c * BLOCK_B + bi
        ok = mask_n[:, None] & (b < NB)[None, :]
        d = tl.load(w_rows + (b * 9)[None, :], mask=ok, other=0).to(tl.float16, bitcast=True).to(tl.float32)
        t = c * (BLOCK_B * 8) + tq  # qs word t = 8b + j sits at 9b + 1 + j
        qp = tl.reshape(tl.load(w_rows + (t + t // 8 + 1)[None, :], mask=mask_n[:, None] & (t < NB * 8)[None, :],
                                other=-30584), [BLOCK_N, BLOCK_B, 8]).to(tl.int32)  # 0x8888: weight 0 past the row
        d2 = (d * 0.00390625)[:, :, None]
        d3 = (d * 0.000244140625)[:, :, None]
        n2 = -(8390656.0 * d2)
        n3 = -(8421376.0 * d3)
        lo = qp << 8  # byte 2j's nibbles (k = 2j, 2j + 16) at positions 2, 3
        w_a = _nib3(lo, 2, d2, n2, magic, DEQ_FMA)  # k = 2j
        w_b = _nib3(lo, 3, d3, n3, magic, DEQ_FMA)  # k = 2j + 16
        w_c = _nib3(qp, 2, d2, n2, magic, DEQ_FMA)  # k = 2j + 1
        w_d = _nib3(qp, 3, d3, n3, magic, DEQ_FMA)  # k = 2j + 17
        k = c * (BLOCK_B * 32) + kk
        for mi in tl.static_range(BLOCK_M):
            m = pid_m * BLOCK_M + mi
            xv = tl.load(x_ptr + m.to(tl.int64) * stride_xm + k, mask=(k < K) & (m < M), other=0.0)
            # k - 32b = 16h + 2j + e: split e (byte parity), then h (low / high nibble)
            xe0, xe1 = tl.split(tl.reshape(xv.to(tl.float32), [BLOCK_B, 2, 8, 2]))
            x_a, x_b = tl.split(tl.permute(xe0, (0, 2, 1)))
            x_c, x_d = tl.split(tl.permute(xe1, (0, 2, 1)))
            t = w_a * x_a[None] + w_b * x_b[None] + w_c * x_c[None] + w_d * x_d[None]
            acc = _accumulate(acc, tl.sum(tl.sum(t, axis=2), axis=1), mi, BLOCK_M)
    _store(out_ptr, ws_ptr, cnt_ptr, acc, pid_k, rm, rn, M, N, stride_om, SPLIT_K, OUT, SPLIT)


@triton.jit
def _xload(ptrs, mask, EVEN: tl.constexpr):
    """x values as fp32 (0 past the row unless EVEN)."""
    if EVEN:
        return tl.load(ptrs).to(tl.float32)
    else:
        return tl.load(ptrs, mask=mask, other=0.0).to(tl.float32)


@triton.jit
def _store_v3(out_ptr, ws_ptr, cnt_ptr, acc, pid_k, pid_m, rn, M, N, stride_om, SPLIT_K, OUT: tl.constexpr,
              SPLIT: tl.constexpr):
    """One x row's [BLOCK_N] outputs through _finish (the tile's counter: pid_m * grid0 + pid_n)."""
    cnt = cnt_ptr + pid_m * tl.num_programs(0) + tl.program_id(0)
    _finish(out_ptr + pid_m.to(tl.int64) * stride_om + rn, ws_ptr + pid_m.to(tl.int64) * N + rn, M * N, rn < N, acc,
            cnt, pid_k, SPLIT_K, OUT, SPLIT)


@triton.jit
def _esimd_v3_kernel(x_ptr, w_ptr, s_ptr, out_ptr, ws_ptr, cnt_ptr, magic, M, N, KW, G, stride_xm, stride_wn, stride_sn,
                     stride_om, SPLIT_K, OUT: tl.constexpr, SPLIT: tl.constexpr, BLOCK_N: tl.constexpr,
                     BLOCK_G: tl.constexpr, DEQ_FMA: tl.constexpr, XP: tl.constexpr, EVEN: tl.constexpr):
    """V3, no in-kernel shuffle: word tile [BLOCK_G, BLOCK_N, 16] (16 words = one 128-group; groups
    first so that threads spread over groups and words and each keeps several rows), scale tile
    [BLOCK_G, BLOCK_N] broadcast over its group's words, nibble i's x loaded straight into a
    [BLOCK_G, 16] tile broadcast over rows: from x_planes (XP=1; 16-byte loads) or x[m, 8q + i]
    itself (XP=0, K % 8 == 0; gathers). Products accumulate in a [BLOCK_G, BLOCK_N, 16] fp32 tile
    reduced once at the end. One x row per program (grid axis 1); rows past N read row N - 1
    (loads unmasked) and are not stored. EVEN: KW % (16 BLOCK_G) == 0, no K masks."""
    pid_n = tl.program_id(0)
    pid_m = tl.program_id(1)
    pid_k = tl.program_id(2)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rows = tl.minimum(rn, N - 1).to(tl.int64)
    gi = tl.arange(0, BLOCK_G)
    col = gi[:, None] * 16 + tl.arange(0, 16)[None, :]  # word within the chunk, [BLOCK_G, 16]
    w_tile = w_ptr + rows[None, :, None] * stride_wn + col[:, None, :]  # [BLOCK_G, BLOCK_N, 16]
    s_tile = s_ptr + rows[None, :] * stride_sn + gi[:, None]
    x_row = x_ptr + pid_m.to(tl.int64) * stride_xm
    n_chunks = tl.cdiv(G, BLOCK_G)
    per_split = tl.cdiv(n_chunks, SPLIT_K)
    acc = tl.zeros((BLOCK_G, BLOCK_N, 16), tl.float32)
    for c in range(pid_k * per_split, tl.minimum(n_chunks, (pid_k + 1) * per_split)):
        g0 = c * BLOCK_G
        q = g0 * 16 + col
        if EVEN:
            wq = tl.load(w_tile + g0 * 16)
            s = tl.load(s_tile + g0).to(tl.float32)
        else:
            wq = tl.load(w_tile + g0 * 16, mask=(q < KW)[:, None, :], other=-2004318072)  # 0x88888888: weight 0
            s = tl.load(s_tile + g0, mask=(g0 + gi < G)[:, None], other=0.0).to(tl.float32)
        s2 = (s * 0.00390625)[:, :, None]  # s * 16^-2, exact
        s3 = (s * 0.000244140625)[:, :, None]
        s4 = (s * 0.0000152587890625)[:, :, None]
        n2 = -(8390656.0 * s2)  # -(c_p * s_p), exact (module docstring)
        n3 = -(8421376.0 * s3)
        n4 = -(8912896.0 * s4)
        lo = wq << 8  # nibbles 0, 1 at positions 2, 3
        hi = wq >> 12  # nibbles 5, 6, 7 at positions 2, 3, 4
        if XP:  # x_perm[m, v, i, j] = x[m, 8 (4v + j) + i]: a thread's 4 words' planes are 32 adjacent floats
            xq = x_row + tl.max_contiguous(tl.multiple_of((q >> 2) * 32 + (q & 3), [4, 4]), [1, 4])
            xs = 4
        else:
            xq = x_row + q * 8
            xs = 1  # from plane i to plane i + 1
        xm = q < KW
        acc += _nib3(lo, 2, s2, n2, magic, DEQ_FMA) * _xload(xq, xm, EVEN)[:, None, :]
        acc += _nib3(lo, 3, s3, n3, magic, DEQ_FMA) * _xload(xq + xs, xm, EVEN)[:, None, :]
        acc += _nib3(wq, 2, s2, n2, magic, DEQ_FMA) * _xload(xq + 2 * xs, xm, EVEN)[:, None, :]
        acc += _nib3(wq, 3, s3, n3, magic, DEQ_FMA) * _xload(xq + 3 * xs, xm, EVEN)[:, None, :]
        acc += _nib3(wq, 4, s4, n4, magic, DEQ_FMA) * _xload(xq + 4 * xs, xm, EVEN)[:, None, :]
        acc += _nib3(hi, 2, s2, n2, magic, DEQ_FMA) * _xload(xq + 5 * xs, xm, EVEN)[:, None, :]
        acc += _nib3(hi, 3, s3, n3, magic, DEQ_FMA) * _xload(xq + 6 * xs, xm, EVEN)[:, None, :]
        acc += _nib3(hi, 4, s4, n4, magic, DEQ_FMA) * _xload(xq + 7 * xs, xm, EVEN)[:, None, :]
    _store_v3(out_ptr, ws_ptr, cnt_ptr, tl.sum(tl.sum(acc, axis=2), axis=0), pid_k, pid_m, rn, M, N, stride_om, SPLIT_K,
              OUT, SPLIT)


@triton.jit
def _q4_0_v3_kernel(x_ptr, w_ptr, out_ptr, ws_ptr, cnt_ptr, magic, M, N, NB, stride_xm, stride_xp, stride_wn, stride_om,
                    SPLIT_K, OUT: tl.constexpr, SPLIT: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_B: tl.constexpr,
                    DEQ_FMA: tl.constexpr, XP: tl.constexpr, EVEN: tl.constexpr):
    """V3 for q4_0 blocks read as stored: qs words [BLOCK_N, BLOCK_B, 8] (int16 at 9b + 1 + j), d
    [BLOCK_N, BLOCK_B] (int16 at 9b) broadcast over the block, word j's four nibbles (k = 32b + 2j
    + 0, 16, 1, 17) against x planes p = 0..3 loaded straight as [BLOCK_B, 8] tiles: x_perm[m, p,
    8b + j] (XP=1) or x[m, 32b + 2j + (0, 16, 1, 17)[p]] (XP=0). fp32 tile accumulator reduced once
    at the end; rows as in _esimd_v3_kernel. EVEN: NB % BLOCK_B == 0, no K masks."""
    pid_n = tl.program_id(0)
    pid_m = tl.program_id(1)
    pid_k = tl.program_id(2)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rows = tl.minimum(rn, N - 1).to(tl.int64)
    bi = tl.arange(0, BLOCK_B)
    ji = tl.arange(0, 8)
    w_row = w_ptr + rows[None, :] * stride_wn
    d_tile = w_row + bi[:, None] * 9  # [BLOCK_B, BLOCK_N]
    q_tile = w_row[:, :, None] + (bi[:, None] * 9 + 1 + ji[None, :])[:, None, :]  # [BLOCK_B, BLOCK_N, 8]
    x_row = x_ptr + pid_m.to(tl.int64) * stride_xm
    n_chunks = tl.cdiv(NB, BLOCK_B)
    per_split = tl.cdiv(n_chunks, SPLIT_K)
    acc = tl.zeros((BLOCK_B, BLOCK_N, 8), tl.float32)
    for c in range(pid_k * per_split, tl.minimum(n_chunks, (pid_k + 1) * per_split)):
        b0 = c * BLOCK_B
        if EVEN:
            d = tl.load(d_tile + b0 * 9)
            qp = tl.load(q_tile + b0 * 9)
        else:
            bm = b0 + bi < NB
            d = tl.load(d_tile + b0 * 9, mask=bm[:, None], other=0)
            qp = tl.load(q_tile + b0 * 9, mask=bm[:, None, None], other=-30584)  # 0x8888: weight 0
        d = d.to(tl.float16, bitcast=True).to(tl.float32)
        d2 = (d * 0.00390625)[:, :, None]
        d3 = (d * 0.000244140625)[:, :, None]
        n2 = -(8390656.0 * d2)
        n3 = -(8421376.0 * d3)
        qp = qp.to(tl.int32)
        lo = qp << 8  # byte 2j's nibbles (k = 2j, 2j + 16) at positions 2, 3
        if XP:
            xq = x_row + (b0 * 8 + bi[:, None] * 8 + ji[None, :])
            xs = stride_xp
        else:
            xq = x_row + (b0 * 32 + bi[:, None] * 32 + ji[None, :] * 2)
            xs = 16
        xm = (b0 + bi < NB)[:, None]
        acc += _nib3(lo, 2, d2, n2, magic, DEQ_FMA) * _xload(xq, xm, EVEN)[:, None, :]  # k = 2j
        acc += _nib3(lo, 3, d3, n3, magic, DEQ_FMA) * _xload(xq + xs, xm, EVEN)[:, None, :]  # k = 2j + 16
        if XP:
            xq1 = xq + 2 * xs
        else:
            xq1 = xq + 1
        acc += _nib3(qp, 2, d2, n2, magic, DEQ_FMA) * _xload(xq1, xm, EVEN)[:, None, :]  # k = 2j + 1
        acc += _nib3(qp, 3, d3, n3, magic, DEQ_FMA) * _xload(xq1 + xs, xm, EVEN)[:, None, :]  # k = 2j + 17
    _store_v3(out_ptr, ws_ptr, cnt_ptr, tl.sum(tl.sum(acc, axis=2), axis=0), pid_k, pid_m, rn, M, N, stride_om, SPLIT_K,
              OUT, SPLIT)


def _sms() -> int:
    import torch

    return torch.cuda.get_device_properties(0).multi_processor_count


def _sweep(tiles, v3):
    """Benchmark configs: each V2 tile (BLOCK_N, BLOCK_K, warps) with SPLIT_K = 1 and with K split so
    that a program owns CHUNKS = 4, 2 or 1 steps of BLOCK_K; plus V3 rows (BLOCK_N, BLOCK_K, warps,
    CHUNKS, XP) for comparison."""
    cfgs = []
    for bn, bk, w in tiles:
        base = dict(BLOCK_M=1, BLOCK_N=bn, BLOCK_K=bk, num_warps=w, DEQ_FMA=1)
        cfgs += [dict(base, SPLIT_K=1)] + [dict(base, CHUNKS=c) for c in (4, 2, 1)]
    return tuple(cfgs) + tuple(dict(V=3, BLOCK_M=1, BLOCK_N=bn, BLOCK_K=bk, CHUNKS=c, num_warps=w, DEQ_FMA=1, XP=xp)
                               for bn, bk, w, c, xp in v3)


# M = 1 candidates for a benchmark sweep (BLOCK_K in elements: 128-groups for ESIMD, 32-blocks for q4_0).
# At M = 1 the kernel is bound by instruction issue (Nsight Compute on an H200: ~1.5 warp instructions
# per 32-bit weight word, 70% of issue slots used; docs/triton.md), so tiles that give each thread more
# rows per x value win; the K split (partials summed in the same launch by _finish) fills the GPU
# when N alone gives few programs.
CANDIDATES = {
    "esimd": _sweep(((16, 1024, 4), (32, 1024, 4), (64, 1024, 8), (32, 512, 4)),
                    ((16, 512, 4, 1, 0), (16, 512, 4, 1, 1))),
    "q4_0": _sweep(((16, 512, 4), (32, 512, 4), (8, 1024, 4), (16, 1024, 8), (32, 256, 4)),
                   ((8, 256, 4, 1, 0), (16, 128, 4, 1, 1))),
}


def pick_config(m: int, n: int, k: int, layout: str = "esimd") -> dict:
    """Small tiles in the interpreter. On the GPU at M = 1 the H200 sweep's winners (docs/triton.md):
    [32, 1024] (ESIMD) or [8, 1024] (q4_0) tiles, K split only when N gives fewer than two programs
    per SM, into as many slices as fill that; for M > 1, [16, 512] / [16, 256] tiles over up to 4 x
    rows (the dequantized tile is reused per row, so it must stay small in registers)."""
    if runtime.interpreted():
        return dict(BLOCK_M=min(4, triton.next_power_of_2(max(m, 1))), BLOCK_N=16, BLOCK_K=128, SPLIT_K=1,
                    num_warps=4, DEQ_FMA=0)
    if m == 1:
        block_m, block_n, block_k = 1, (32 if layout == "esimd" else 8), 1024
    else:
        block_m, block_n, block_k = min(4, triton.next_power_of_2(m)), 16, (512 if layout == "esimd" else 256)
    progs = triton.cdiv(n, block_n) * triton.cdiv(m, block_m)
    want = 2 * _sms()
    chunks = triton.cdiv(k, block_k)
    split = 1 if progs >= want else max(1, min(triton.cdiv(want, progs), chunks))
    split = triton.cdiv(chunks, triton.cdiv(chunks, split))  # no empty slice: 4 chunks split 3 ways is 2 x 2
    return dict(BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_K=block_k, SPLIT_K=split, num_warps=4, DEQ_FMA=1)


def _words(weight, k: int, layout: str):
    """The weight as the kernel's words: a view when rows are aligned, else a padded copy (rare)."""
    import torch

    n = weight.shape[0]
    if layout == "esimd":
        kw = -(-k // 8)
        if k % 8 == 0 and weight.stride(1) == 1 and weight.stride(0) % 4 == 0 and weight.data_ptr() % 4 == 0:
            return weight.view(torch.int32), kw
        buf = torch.full((n, kw * 4), 0x88, dtype=torch.uint8, device=weight.device)  # padding nibbles: 8
        buf[:, : k // 2] = weight
        return buf.view(torch.int32), kw
    if weight.stride(1) != 1 or weight.stride(0) % 2 or weight.data_ptr() % 2:
        weight = weight.contiguous()
    return weight.view(torch.int16), k // 32


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
    cfg = dict(config or pick_config(m, n, k, layout))
    block_k = cfg.pop("BLOCK_K")
    split = cfg.pop("SPLIT_K", 1)
    if "CHUNKS" in cfg:  # K split so that each program owns CHUNKS steps of BLOCK_K
        split = triton.cdiv(triton.cdiv(k, block_k), cfg.pop("CHUNKS"))
    deq_fma = int(cfg.pop("DEQ_FMA", 1)) and not runtime.interpreted()  # interpreter: tl.fma rounds a*b
    y = torch.empty((m, n), dtype=dt, device=x.device)
    if m == 0 or n == 0:
        return y
    if x.stride(1) != 1:
        x = x.contiguous()
    ws = y  # not read unless split > 1
    if split > 1:
        need = split * m * n
        ws = workspace[:need] if workspace is not None and workspace.numel() >= need else \
            torch.empty(need, dtype=torch.float32, device=x.device)
    words, kw = _words(weight, k, layout)
    launch = _launch_v3 if cfg.pop("V", 2) == 3 else _launch_v2
    launch(x, words, kw, scales, y, ws, layout, m, n, k, split, block_k, int(deq_fma), cfg, out)
    return y


_COUNTERS: dict = {}


def _counters(device, count: int):
    """Per-device int32 tile counters for the split-K reduction, zero between calls (each tile's last
    program sets its counter back to 0). Calls on one device share them, so they must not overlap in
    time (one stream)."""
    import torch

    c = _COUNTERS.get(str(device))
    if c is None or c.numel() < count:
        c = _COUNTERS[str(device)] = torch.zeros(max(count, 4096), dtype=torch.int32, device=device)
    return c


def _launch_v2(x, words, kw, scales, y, ws, layout, m, n, k, split, block_k, deq_fma, cfg, out):
    grid = (triton.cdiv(n, cfg["BLOCK_N"]), triton.cdiv(m, cfg["BLOCK_M"]), split)
    cnt = _counters(x.device, grid[0] * grid[1])
    common = dict(OUT=OUT_CODES[out], SPLIT_K=split, SPLIT=int(split > 1), DEQ_FMA=deq_fma, **cfg)
    if layout == "esimd":
        _esimd_kernel[grid](x, words, scales, y, ws, cnt, _MAGIC, m, n, k, kw, scales.shape[1], x.stride(0), words.stride(0),
                            scales.stride(0), y.stride(0), BLOCK_G=max(1, block_k // 128), **common)
    else:
        _q4_0_kernel[grid](x, words, y, ws, cnt, _MAGIC, m, n, k, kw, x.stride(0), words.stride(0), y.stride(0),
                           BLOCK_B=max(1, block_k // 32), **common)


def x_planes(x, layout: str, k: int):
    """x (M, K) as fp32 nibble planes laid out for the V3 kernels' loads (one copy kernel at decode).
    ESIMD [M, KW4/4, 8, 4] with [m, v, i, j] = x[m, 8(4v + j) + i] (KW4 = ceil(K/8) rounded up to 4,
    zeros past K): a thread's 4-word vector q = 4v..4v+3 finds its 8 planes as 32 adjacent floats,
    8 16-byte loads at fixed offsets. q4_0 [M, 4, K/32*8] with [m, p, 8b + j] = x[m, 32b + 2j +
    (0, 16, 1, 17)[p]] (int16 word j of block b: low byte low/high nibble, high byte low/high)."""
    import torch

    m = x.shape[0]
    if layout == "esimd":
        kw4 = -(-k // 32) * 4
        if k != kw4 * 8:
            x = torch.nn.functional.pad(x, (0, kw4 * 8 - k))
        xp = torch.empty((m, kw4 // 4, 8, 4), dtype=torch.float32, device=x.device)
        xp.copy_(x.view(m, kw4 // 4, 4, 8).transpose(2, 3))
        return xp.view(m, kw4 * 8)
    nb = k // 32
    xp = torch.empty((m, 4, nb * 8), dtype=torch.float32, device=x.device)
    xp.view(m, 2, 2, nb, 8).copy_(x.view(m, nb, 2, 8, 2).permute(0, 4, 2, 1, 3))  # p = 2 e + h
    return xp


def _launch_v3(x, words, kw, scales, y, ws, layout, m, n, k, split, block_k, deq_fma, cfg, out):
    """V3 (one x row per program, BLOCK_M ignored): XP=1 reads host-made x planes, XP=0 gathers x."""
    xp = int(cfg.pop("XP", 1)) or (layout == "esimd" and k % 8 != 0)
    cfg.pop("BLOCK_M", None)
    xv = x_planes(x, layout, k) if xp else x
    grid = (triton.cdiv(n, cfg["BLOCK_N"]), m, split)
    cnt = _counters(x.device, grid[0] * grid[1])
    common = dict(OUT=OUT_CODES[out], SPLIT_K=split, SPLIT=int(split > 1), DEQ_FMA=deq_fma, XP=int(bool(xp)), **cfg)
    if layout == "esimd":
        bg = max(1, block_k // 128)
        _esimd_v3_kernel[grid](xv, words, scales, y, ws, cnt, _MAGIC, m, n, kw, scales.shape[1], xv.stride(0),
                               words.stride(0), scales.stride(0), y.stride(0), BLOCK_G=bg,
                               EVEN=int(kw % (16 * bg) == 0), **common)
    else:
        bb = max(1, block_k // 32)
        _q4_0_v3_kernel[grid](xv, words, y, ws, cnt, _MAGIC, m, n, kw, xv.stride(0), xv.stride(1) if xp else 0,
                              words.stride(0), y.stride(0),
                              BLOCK_B=bb, EVEN=int(kw % bb == 0), **common)


def gemv(x: np.ndarray, weight: np.ndarray, scales: np.ndarray | None, *, layout: str, k: int,
         out: str | None = None, config: dict | None = None) -> np.ndarray:
    """numpy in and out: q4_0 weight = the (N, K/32*18) block bytes (scales None); esimd = (N, K/2)
    bytes and (N, ceil(K/128)) fp16 scales."""
    w = runtime.to_torch(np.ascontiguousarray(weight, np.uint8))
    s = None if scales is None else runtime.to_torch(np.ascontiguousarray(scales, np.float16))
    return runtime.to_numpy(gemv_t(runtime.to_torch(x), w, s, layout=layout, k=k, out=out, config=config))


available = runtime.available
observe = runtime.observe
