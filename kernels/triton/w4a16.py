"""The project's Triton int4 weight-only GEMV/GEMM in two stored layouts, read as stored.

- GGML q4_0 (oracle/ggml/q4_0.py; ggml-common.h `block_q4_0`): rows of 18-byte blocks, fp16 d in
  bytes 0..1, byte 2 + j holds code(x[j]) in its low nibble and code(x[j+16]) in its high one;
  w = (nibble - 8) * fp32(d). K must be a multiple of 32.
- ESIMD (oracle/conventions/esimd.py, intel/llm-scaler PR #352's int4_GEMV.h): uint8 [N, K/2], low nibble = even
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
2-byte aligned; word 0 of a block is d, word 1 + j the qs bytes 2j, 2j+1; V4 reads them as uint16 so
they zero-extend). A V2 program loads a 2-D [BLOCK_N, words] tile (so the compiler spreads lanes along K and keeps several rows per thread,
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

Two kernels per layout, chosen by the config (`V`):
- 2: a [BLOCK_N, BLOCK_K] weight tile per step, x loaded as one contiguous chunk and split into
  nibble order in-kernel (reshape/split: shared-memory conversions on the GPU), the dequantized
  tile reused for up to BLOCK_M rows of x. The general-M kernel, and the interpreter's default.
- 4: M = 1 decode on the GPU (`pick_config`'s choice there). One thread owns one 32-element piece
  of K (an ESIMD quad of words, a q4_0 block) for BLOCK_N rows: its weight words, its group's
  scale per row and its 32 x values, all loaded straight into the thread (tiles [BLOCK_V, BLOCK_N]
  with BLOCK_V = 32 x num_warps), so nothing crosses threads inside the K loop; products
  accumulate per (piece, row) and are reduced once at the end (docs/triton.md, "V4").
The interpreter's tl.fma rounds the product first, so there DEQ_FMA is forced off and the
subtract-then-multiply form (also exact) runs.
"""
from __future__ import annotations

import numpy as np

from kernels.triton import runtime  # first: it sets TRITON_INTERPRET before triton is imported
import triton  # noqa: E402
import triton.language as tl  # noqa: E402

from kernels.triton.lang import OUT_CODES, cast_out  # noqa: E402

__all__ = ["LAYOUTS", "gemv", "gemv_t", "pick_config", "k_split", "CANDIDATES"]

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
def _scale_step(s, P: tl.constexpr, OVER_WORDS: tl.constexpr = False):
    """_nib3's per-scale operands for position P: s_p = s * 16^-P and nc_p = -(c_p * s_p), c_p = 2^23 +
    8 * 16^P, both exact in fp32 (module docstring). OVER_WORDS: a [rows, groups] s is given a last
    axis to broadcast over each group's words (V2's tiles)."""
    s_p = s * (1.0 / (16 ** P))
    if OVER_WORDS:
        s_p = s_p[:, :, None]
    return s_p, -((8388608.0 + 8.0 * (16 ** P)) * s_p)


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
    """Store acc (y_ptrs: this tile in the output; ws_ptrs: the same tile in workspace slice 0; cnt_ptr:
    the counters, one per (grid axis 1, grid axis 0) tile).

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
        cnt = cnt_ptr + tl.program_id(1) * tl.num_programs(0) + tl.program_id(0)  # this tile's counter
        ticket = tl.atomic_add(cnt, 1, sem="acq_rel")
        if ticket == SPLIT_K - 1:
            total = tl.load(ws_ptrs, mask=mask, other=0.0, cache_modifier=".cg")
            for s in range(1, SPLIT_K):
                total += tl.load(ws_ptrs + s * MN, mask=mask, other=0.0, cache_modifier=".cg")
            tl.store(y_ptrs, cast_out(total, OUT), mask=mask)
            tl.atomic_xchg(cnt, 0)


@triton.jit
def _store(out_ptr, ws_ptr, cnt_ptr, acc, pid_k, rm, rn, M, N, stride_om, SPLIT_K, OUT: tl.constexpr,
           SPLIT: tl.constexpr):
    """A [BLOCK_M, BLOCK_N] tile through _finish."""
    off = rm[:, None].to(tl.int64) * N + rn[None, :]
    _finish(out_ptr + rm[:, None].to(tl.int64) * stride_om + rn[None, :], ws_ptr + off, M * N,
            (rm < M)[:, None] & (rn < N)[None, :], acc, cnt_ptr, pid_k, SPLIT_K, OUT, SPLIT)


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
        s2, n2 = _scale_step(s, 2, True)
        s3, n3 = _scale_step(s, 3, True)
        s4, n4 = _scale_step(s, 4, True)
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
        d2, n2 = _scale_step(d, 2, True)
        d3, n3 = _scale_step(d, 3, True)
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
def _store_row(out_ptr, ws_ptr, cnt_ptr, acc, pid_k, pid_m, rn, M, N, stride_om, SPLIT_K, OUT: tl.constexpr,
              SPLIT: tl.constexpr):
    """One x row's [BLOCK_N] outputs through _finish."""
    _finish(out_ptr + pid_m.to(tl.int64) * stride_om + rn, ws_ptr + pid_m.to(tl.int64) * N + rn, M * N, rn < N, acc,
            cnt_ptr, pid_k, SPLIT_K, OUT, SPLIT)


@triton.jit
def _word_v4(acc, w, xt, s2, s3, s4, n2, n3, n4, magic, BLOCK_V: tl.constexpr, FMA: tl.constexpr):
    """acc[v, row] += sum_i x[v, i] * (nibble i of w[v, row] - 8) * s[v, row] for one word per quad."""
    x0, x1, x2, x3, x4, x5, x6, x7 = _split8(xt, BLOCK_V, 1)  # [BLOCK_V, 1] each, in-thread splits
    lo = w << 8  # nibbles 0, 1 at positions 2, 3
    hi = w >> 12  # nibbles 5, 6, 7 at positions 2, 3, 4
    acc = tl.fma(_nib3(lo, 2, s2, n2, magic, FMA), x0, acc)
    acc = tl.fma(_nib3(lo, 3, s3, n3, magic, FMA), x1, acc)
    acc = tl.fma(_nib3(w, 2, s2, n2, magic, FMA), x2, acc)
    acc = tl.fma(_nib3(w, 3, s3, n3, magic, FMA), x3, acc)
    acc = tl.fma(_nib3(w, 4, s4, n4, magic, FMA), x4, acc)
    acc = tl.fma(_nib3(hi, 2, s2, n2, magic, FMA), x5, acc)
    acc = tl.fma(_nib3(hi, 3, s3, n3, magic, FMA), x6, acc)
    return tl.fma(_nib3(hi, 4, s4, n4, magic, FMA), x7, acc)


@triton.jit
def _esimd_v4_load(c, w_rows, s_rows, x_row, vi, ii, jj, K, KW, BLOCK_V: tl.constexpr, EVEN: tl.constexpr):
    """Step c's tiles as stored: words [BLOCK_V, BLOCK_N, 4], fp16 scales [BLOCK_V, BLOCK_N], and the
    quads' x as four [BLOCK_V, 8] tiles (word j's x); past the row: weight 0, x 0."""
    quad = c * BLOCK_V + vi
    wq = w_rows + (quad * 4)[:, None, None] + jj[None, None, :]
    sq = s_rows + (quad // 4)[:, None]
    xq = x_row + (quad * 32)[:, None] + ii[None, :]
    if EVEN:
        return tl.load(wq), tl.load(sq), tl.load(xq), tl.load(xq + 8), tl.load(xq + 16), tl.load(xq + 24)
    k0 = (quad * 32)[:, None] + ii[None, :]
    return (tl.load(wq, mask=(quad * 4)[:, None, None] + jj[None, None, :] < KW, other=-2004318072),  # weight 0
            tl.load(sq, mask=(quad * 4 < KW)[:, None], other=0.0), tl.load(xq, mask=k0 < K, other=0.0),
            tl.load(xq + 8, mask=k0 + 8 < K, other=0.0), tl.load(xq + 16, mask=k0 + 16 < K, other=0.0),
            tl.load(xq + 24, mask=k0 + 24 < K, other=0.0))


@triton.jit
def _esimd_v4_kernel(x_ptr, w_ptr, s_ptr, out_ptr, ws_ptr, cnt_ptr, magic, M, N, K, KW, stride_xm, stride_wn,
                     stride_sn, stride_om, SPLIT_K, OUT: tl.constexpr, SPLIT: tl.constexpr, BLOCK_N: tl.constexpr,
                     BLOCK_V: tl.constexpr, DEQ_FMA: tl.constexpr, EVEN: tl.constexpr):
    """V4: one quad of words (4 int32 = 32 k, a quarter of a 128-group) per thread. Tiles are
    [BLOCK_V quads, BLOCK_N rows]: with BLOCK_V = 32 x num_warps, Triton's layouts give thread t
    quad t of every row (one 16-byte load per row), that quad's 32 x values (four 16-byte loads,
    split into nibble planes in registers) and its group's scale per row, so nothing crosses
    threads inside the K loop; products accumulate per (quad, row) and are reduced over the quads
    once at the end. EVEN: the K slice's steps cover whole words and K == 8 KW (no masks). (Loading
    step c + 1 before step c's arithmetic was tried: the registers it takes cost more occupancy than
    it hides latency, 3-15% slower on the H200.)"""
    pid_n = tl.program_id(0)
    pid_m = tl.program_id(1)
    pid_k = tl.program_id(2)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rows = tl.minimum(rn, N - 1).to(tl.int64)
    vi = tl.arange(0, BLOCK_V)
    ii = tl.arange(0, 8)
    jj = tl.arange(0, 4)
    w_rows = w_ptr + rows[None, :, None] * stride_wn  # [1, BLOCK_N, 1]
    s_rows = s_ptr + rows[None, :] * stride_sn
    x_row = x_ptr + pid_m.to(tl.int64) * stride_xm
    n_chunks = tl.cdiv(KW, 4 * BLOCK_V)
    per_split = tl.cdiv(n_chunks, SPLIT_K)
    acc = tl.zeros((BLOCK_V, BLOCK_N), tl.float32)
    c0 = pid_k * per_split
    c1 = tl.minimum(n_chunks, (pid_k + 1) * per_split)
    for c in range(c0, c1):
        wt, s, xa, xb, xc, xd = _esimd_v4_load(c, w_rows, s_rows, x_row, vi, ii, jj, K, KW, BLOCK_V, EVEN)
        wa, wb = tl.split(tl.reshape(wt, [BLOCK_V, BLOCK_N, 2, 2]))  # words {0, 2} / {1, 3} of the quad
        w0, w2 = tl.split(wa)
        w1, w3 = tl.split(wb)
        sf = s.to(tl.float32)
        s2, n2 = _scale_step(sf, 2)
        s3, n3 = _scale_step(sf, 3)
        s4, n4 = _scale_step(sf, 4)
        acc = _word_v4(acc, w0, xa.to(tl.float32), s2, s3, s4, n2, n3, n4, magic, BLOCK_V, DEQ_FMA)
        acc = _word_v4(acc, w1, xb.to(tl.float32), s2, s3, s4, n2, n3, n4, magic, BLOCK_V, DEQ_FMA)
        acc = _word_v4(acc, w2, xc.to(tl.float32), s2, s3, s4, n2, n3, n4, magic, BLOCK_V, DEQ_FMA)
        acc = _word_v4(acc, w3, xd.to(tl.float32), s2, s3, s4, n2, n3, n4, magic, BLOCK_V, DEQ_FMA)
    _store_row(out_ptr, ws_ptr, cnt_ptr, tl.sum(acc, axis=0), pid_k, pid_m, rn, M, N, stride_om, SPLIT_K, OUT, SPLIT)


@triton.jit
def _qword_v4(acc, q, xa, xb, xc, xd, d2, d3, n2, n3, magic, FMA: tl.constexpr):
    """acc += one q4_0 qs byte pair's four products: q = bytes 2j, 2j + 1 (zero-extended int16),
    x at k = 2j, 2j + 16 (low byte's low / high nibble), 2j + 1, 2j + 17 (high byte's)."""
    lo = q << 8  # byte 2j's nibbles at positions 2, 3
    acc = tl.fma(_nib3(lo, 2, d2, n2, magic, FMA), xa, acc)
    acc = tl.fma(_nib3(lo, 3, d3, n3, magic, FMA), xb, acc)
    acc = tl.fma(_nib3(q, 2, d2, n2, magic, FMA), xc, acc)
    return tl.fma(_nib3(q, 3, d3, n3, magic, FMA), xd, acc)


@triton.jit
def _q4_0_half_v4(acc, qa, qb, qc, qd, xlo, xhi, d2, d3, n2, n3, magic, BLOCK_V: tl.constexpr, FMA: tl.constexpr):
    """Four qs words (j = 4h .. 4h + 3) of a block: their x at k = 8h .. 8h + 7 (xlo) and + 16 (xhi)."""
    l0, l1, l2, l3, l4, l5, l6, l7 = _split8(xlo, BLOCK_V, 1)
    h0, h1, h2, h3, h4, h5, h6, h7 = _split8(xhi, BLOCK_V, 1)
    acc = _qword_v4(acc, qa, l0, h0, l1, h1, d2, d3, n2, n3, magic, FMA)
    acc = _qword_v4(acc, qb, l2, h2, l3, h3, d2, d3, n2, n3, magic, FMA)
    acc = _qword_v4(acc, qc, l4, h4, l5, h5, d2, d3, n2, n3, magic, FMA)
    return _qword_v4(acc, qd, l6, h6, l7, h7, d2, d3, n2, n3, magic, FMA)


@triton.jit
def _q4_0_v4_kernel(x_ptr, w_ptr, out_ptr, ws_ptr, cnt_ptr, magic, M, N, NB, stride_xm, stride_wn, stride_om,
                    SPLIT_K, OUT: tl.constexpr, SPLIT: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_V: tl.constexpr,
                    DEQ_FMA: tl.constexpr, EVEN: tl.constexpr):
    """V4 for q4_0: one 32-element block per thread (as _esimd_v4_kernel's quad): tiles [BLOCK_V
    blocks, BLOCK_N rows], the block's d and 8 qs words read as stored (uint16 at 9b and 9b + 1 + j;
    18-byte blocks allow no wider load), its 32 x values as four 16-byte loads split in registers.
    EVEN: NB % BLOCK_V == 0 (no masks)."""
    pid_n = tl.program_id(0)
    pid_m = tl.program_id(1)
    pid_k = tl.program_id(2)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rows = tl.minimum(rn, N - 1).to(tl.int64)
    vi = tl.arange(0, BLOCK_V)
    ii = tl.arange(0, 8)
    w_rows = w_ptr + rows[None, :] * stride_wn  # [1, BLOCK_N]
    x_row = x_ptr + pid_m.to(tl.int64) * stride_xm
    n_chunks = tl.cdiv(NB, BLOCK_V)
    per_split = tl.cdiv(n_chunks, SPLIT_K)
    acc = tl.zeros((BLOCK_V, BLOCK_N), tl.float32)
    for c in range(pid_k * per_split, tl.minimum(n_chunks, (pid_k + 1) * per_split)):
        blk = c * BLOCK_V + vi
        bp = w_rows + (blk * 9)[:, None]  # [BLOCK_V, BLOCK_N]: d of (block, row); qs word j at bp + 1 + j
        xq = x_row + (blk * 32)[:, None] + ii[None, :]  # [BLOCK_V, 8]: k = 32 b + 8 t + i at xq + 8 t
        if EVEN:
            d = tl.load(bp)
            q0, q1, q2, q3 = tl.load(bp + 1), tl.load(bp + 2), tl.load(bp + 3), tl.load(bp + 4)
            q4, q5, q6, q7 = tl.load(bp + 5), tl.load(bp + 6), tl.load(bp + 7), tl.load(bp + 8)
            xs = (tl.load(xq).to(tl.float32), tl.load(xq + 8).to(tl.float32), tl.load(xq + 16).to(tl.float32),
                  tl.load(xq + 24).to(tl.float32))
        else:
            ok = (blk < NB)[:, None]
            d = tl.load(bp, mask=ok, other=0)
            q0, q1, q2, q3 = (tl.load(bp + 1, mask=ok, other=34952), tl.load(bp + 2, mask=ok, other=34952),
                              tl.load(bp + 3, mask=ok, other=34952), tl.load(bp + 4, mask=ok, other=34952))
            q4, q5, q6, q7 = (tl.load(bp + 5, mask=ok, other=34952), tl.load(bp + 6, mask=ok, other=34952),
                              tl.load(bp + 7, mask=ok, other=34952), tl.load(bp + 8, mask=ok, other=34952))  # weight 0
            xs = (tl.load(xq, mask=ok, other=0.0).to(tl.float32), tl.load(xq + 8, mask=ok, other=0.0).to(tl.float32),
                  tl.load(xq + 16, mask=ok, other=0.0).to(tl.float32),
                  tl.load(xq + 24, mask=ok, other=0.0).to(tl.float32))
        d = d.to(tl.float16, bitcast=True).to(tl.float32)
        d2, n2 = _scale_step(d, 2)
        d3, n3 = _scale_step(d, 3)
        acc = _q4_0_half_v4(acc, q0.to(tl.int32), q1.to(tl.int32), q2.to(tl.int32), q3.to(tl.int32), xs[0], xs[2],
                            d2, d3, n2, n3, magic, BLOCK_V, DEQ_FMA)  # uint16 -> int32 zero-extends
        acc = _q4_0_half_v4(acc, q4.to(tl.int32), q5.to(tl.int32), q6.to(tl.int32), q7.to(tl.int32), xs[1], xs[3],
                            d2, d3, n2, n3, magic, BLOCK_V, DEQ_FMA)
    _store_row(out_ptr, ws_ptr, cnt_ptr, tl.sum(acc, axis=0), pid_k, pid_m, rn, M, N, stride_om, SPLIT_K, OUT, SPLIT)


def _sms() -> int:
    import torch

    return torch.cuda.get_device_properties(0).multi_processor_count


def _sweep(v2_tiles, v4_tiles):
    """Benchmark configs: V2 tiles (BLOCK_N, BLOCK_K, warps) with SPLIT_K = 1; V4 tiles (BLOCK_N,
    warps) with BLOCK_K = 1024 x warps (one 32-element piece of K per thread), each with SPLIT_K = 1
    and with K split so that a program owns CHUNKS = 2 or 1 steps."""
    cfgs = [dict(BLOCK_M=1, BLOCK_N=bn, BLOCK_K=bk, SPLIT_K=1, num_warps=w, DEQ_FMA=1) for bn, bk, w in v2_tiles]
    for bn, w in v4_tiles:
        base = dict(V=4, BLOCK_M=1, BLOCK_N=bn, BLOCK_K=1024 * w, num_warps=w, DEQ_FMA=1)
        cfgs += [dict(base, SPLIT_K=1), dict(base, CHUNKS=2), dict(base, CHUNKS=1)]
    return tuple(cfgs)


# M = 1 candidates for a benchmark sweep (BLOCK_K in elements). At M = 1 the kernels are bound by
# instruction issue (Nsight Compute on an H200, docs/triton.md): V4 spends ~33-38 thread
# instructions per 32-bit weight word against V2's 36-40 plus its shared-memory conversions, and
# small V4 tiles (4-8 rows, 1-2 warps) keep more warps resident; the K split (partials summed in the
# same launch by _finish) fills the GPU when N alone gives few programs. The V2 rows are the best
# V2 tiles of the earlier sweep, kept for comparison.
CANDIDATES = {
    "esimd": _sweep(((32, 1024, 4), (16, 1024, 4)), ((4, 1), (4, 2), (8, 1), (8, 2), (4, 4), (8, 4))),
    "q4_0": _sweep(((8, 1024, 4), (16, 512, 4)), ((4, 1), (4, 2), (8, 1), (8, 2), (4, 4), (8, 4))),
}


def pick_config(m: int, n: int, k: int, layout: str = "esimd") -> dict:
    """Small V2 tiles in the interpreter. On the GPU at M = 1, V4 with 4 rows per thread and 2 warps
    (the H200 sweep's best or within 8% of it at every decode shape, both layouts: docs/triton.md),
    K split only when N gives fewer than two programs per SM, into as many slices as fill that; for
    M > 1, V2 with [16, 512] / [16, 256] tiles over up to 4 x rows."""
    if runtime.interpreted():
        return dict(BLOCK_M=min(4, triton.next_power_of_2(max(m, 1))), BLOCK_N=32, BLOCK_K=128, SPLIT_K=1,
                    num_warps=4, DEQ_FMA=0)
    if m == 1:
        cfg = dict(V=4, BLOCK_M=1, BLOCK_N=4, BLOCK_K=2048, num_warps=2, DEQ_FMA=1)
    else:
        cfg = dict(BLOCK_M=min(4, triton.next_power_of_2(m)), BLOCK_N=16, BLOCK_K=512 if layout == "esimd" else 256,
                   num_warps=4, DEQ_FMA=1)
    progs = triton.cdiv(n, cfg["BLOCK_N"]) * triton.cdiv(m, cfg["BLOCK_M"])
    want = 2 * _sms()
    chunks = triton.cdiv(k, cfg["BLOCK_K"])
    split = 1 if progs >= want else max(1, min(triton.cdiv(want, progs), chunks))
    cfg["SPLIT_K"] = triton.cdiv(chunks, triton.cdiv(chunks, split))  # no empty slice: 4 chunks in 3 is 2 x 2
    return cfg


def k_split(k: int, config: dict) -> int:
    """How many K slices a config asks for: SPLIT_K, or as many as give each program CHUNKS steps of
    BLOCK_K (slice s then covers steps s * ceil(steps / split) onwards, as the kernels split them)."""
    if "CHUNKS" in config:
        return triton.cdiv(triton.cdiv(k, config["BLOCK_K"]), config["CHUNKS"])
    return config.get("SPLIT_K", 1)


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
    split = k_split(k, cfg)
    block_k = cfg.pop("BLOCK_K")
    cfg.pop("SPLIT_K", None)
    cfg.pop("CHUNKS", None)
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
    launch = _launch_v4 if cfg.pop("V", 2) == 4 else _launch_v2
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


def _launch_v4(x, words, kw, scales, y, ws, layout, m, n, k, split, block_k, deq_fma, cfg, out):
    """V4 (one x row per program, BLOCK_M ignored): BLOCK_K / 32 quads (ESIMD) or blocks (q4_0) per
    step, one per thread when BLOCK_K = 1024 x num_warps."""
    import torch

    cfg.pop("BLOCK_M", None)
    bv = max(1, block_k // 32)
    grid = (triton.cdiv(n, cfg["BLOCK_N"]), m, split)
    cnt = _counters(x.device, grid[0] * grid[1])
    common = dict(SPLIT_K=split, OUT=OUT_CODES[out], SPLIT=int(split > 1), BLOCK_V=bv, DEQ_FMA=deq_fma, **cfg)
    if layout == "esimd":
        _esimd_v4_kernel[grid](x, words, scales, y, ws, cnt, _MAGIC, m, n, k, kw, x.stride(0), words.stride(0),
                               scales.stride(0), y.stride(0), EVEN=int(kw % (4 * bv) == 0 and k == 8 * kw), **common)
    else:
        _q4_0_v4_kernel[grid](x, words.view(torch.uint16), y, ws, cnt, _MAGIC, m, n, kw, x.stride(0),
                              words.stride(0), y.stride(0), EVEN=int(kw % bv == 0), **common)



def gemv(x: np.ndarray, weight: np.ndarray, scales: np.ndarray | None, *, layout: str, k: int,
         out: str | None = None, config: dict | None = None) -> np.ndarray:
    """numpy in and out: q4_0 weight = the (N, K/32*18) block bytes (scales None); esimd = (N, K/2)
    bytes and (N, ceil(K/128)) fp16 scales."""
    w = runtime.to_torch(np.ascontiguousarray(weight, np.uint8))
    s = None if scales is None else runtime.to_torch(np.ascontiguousarray(scales, np.float16))
    return runtime.to_numpy(gemv_t(runtime.to_torch(x), w, s, layout=layout, k=k, out=out, config=config))


def esimd_view(x, codes: np.ndarray, scales: np.ndarray, group: int) -> np.ndarray:
    """The ESIMD-layout kernel over the caller's view of x (a kernels.layouts.View) as it is, with
    the codes and fp16 scales packed by the esimd.int4_gemv convention (group 128)."""
    from oracle.conventions import QuantizedWeight, get

    conv = get("esimd.int4_gemv")
    if group != conv.group_size:
        raise ValueError(f"the ESIMD layout has groups of {conv.group_size}, not {group}")
    s16 = np.asarray(scales).astype(np.float16)
    packed = conv.pack(QuantizedWeight(codes.astype(np.int32), s16.astype(np.float32), None, conv.name))
    xt, _ = runtime.view_on_device(x)
    w, s = runtime.to_torch(packed["weight"]), runtime.to_torch(s16)
    return runtime.to_numpy(gemv_t(xt, w, s, layout="esimd", k=codes.shape[1]))


def q4_0_view(x, codes: np.ndarray, scales: np.ndarray, group: int) -> np.ndarray:
    """The q4_0-layout kernel over the caller's view of x as it is, the weights as GGML q4_0 blocks
    (oracle.gemm.ggml_mul_mat.q4_0_blocks: fp16 d = the group scale, 32 codes)."""
    from oracle.gemm.ggml_mul_mat import q4_0_blocks

    if group != 32:
        raise ValueError(f"q4_0 blocks hold 32 codes, not groups of {group}")
    xt, _ = runtime.view_on_device(x)
    w = runtime.to_torch(q4_0_blocks(codes, scales))
    return runtime.to_numpy(gemv_t(xt, w, None, layout="q4_0", k=codes.shape[1]))


available = runtime.available
observe = runtime.observe
