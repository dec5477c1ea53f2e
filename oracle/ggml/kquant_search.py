"""The scale searches behind ggml's K-quant reference quantizers, vectorized across sub-blocks.

Upstream (ggml/src/ggml-quants.c) runs one C call per sub-block: `make_qkx2_quants` (q2_K,
q4_K, q5_K: scale and min), `make_q3_quants` (q3_K) and `make_qx_quants` (q6_K). Each is a
search whose outcome hangs on float32 comparisons such as `cur_error < best_error` or
`sumlx*sumlx > best*suml2`, so the last bit of every sum decides which codes are written.
Here every function takes sub-blocks element-major, `x` of shape (n, m): n values (16 or 32)
of m sub-blocks. Loops run over the short axes (the n values, the search steps) in Python, in
C's order, and every operation is a float32 numpy operation on m sub-blocks at once, with the
operands of each `*` and `+` exactly as C groups them (`w*l*x` is `(w*l)*x`). ggml-base is
built for baseline x86-64, so nothing is fused into an FMA; numpy does not fuse either.
Python float constants never meet these arrays: every constant is an np.float32.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from oracle.rounding import nearest_int

__all__ = [
    "F", "GROUP_MAX_EPS", "QK_K", "in_chunks", "seq_sum", "running_max", "first_absmax_cols",
    "make_qkx2_quants", "make_qx_quants", "make_q3_quants",
]

F = np.float32
QK_K = 256
GROUP_MAX_EPS = F(1e-15)  # ggml-quants.c GROUP_MAX_EPS, 1e-15f
_CHUNK = 1024  # super-blocks per pass: keeps the (n, m) temporaries inside the CPU caches


def in_chunks(fn: Callable[[np.ndarray], np.ndarray], blocks: np.ndarray, nbytes: int) -> np.ndarray:
    """Apply a per-super-block quantizer to `blocks` a cache-sized slice at a time."""
    out = np.empty((blocks.shape[0], nbytes), dtype=np.uint8)
    with np.errstate(all="ignore"):  # inf/NaN inputs follow the C arithmetic, silently
        for s in range(0, blocks.shape[0], _CHUNK):
            out[s:s + _CHUNK] = fn(np.ascontiguousarray(blocks[s:s + _CHUNK], dtype=np.float32))
    return out


def seq_sum(terms: np.ndarray) -> np.ndarray:
    """Sum (n, m) terms over axis 0 one term at a time from 0.f, as a C `for` loop does."""
    acc = np.zeros(terms.shape[1:], dtype=np.float32)
    for t in terms:
        acc += t
    return acc


def running_max(v: np.ndarray) -> np.ndarray:
    """`m = 0; for j: if (v[j] > m) m = v[j];` over the last axis (NaN never wins, +0 stays +0)."""
    m = np.zeros(v.shape[:-1], dtype=np.float32)
    for j in range(v.shape[-1]):
        m = np.where(v[..., j] > m, v[..., j], m)
    return m


def first_absmax_cols(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(amax, max) over axis 0 of (n, m): the C scan `if (fabsf(x) > amax) {amax = ...; max = x;}`."""
    amax = np.zeros(x.shape[1:], dtype=np.float32)
    mx = np.zeros(x.shape[1:], dtype=np.float32)
    for xi in x:
        ax = np.abs(xi)
        take = ax > amax
        amax = np.where(take, ax, amax)
        mx = np.where(take, xi, mx)
    return amax, mx


def _codes(v: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """`MAX(lo, MIN(hi, nearest_int(v)))` as float32 (the C code then uses it as a float)."""
    return np.clip(nearest_int(v), lo, hi).astype(np.float32)


def _qkx2_levels(iscale: np.ndarray, x: np.ndarray, shift: np.ndarray, nmax: int) -> np.ndarray:
    return _codes(iscale * (x - shift), 0, nmax)


def _qkx2_error(scale: np.ndarray, shift: np.ndarray, lv: np.ndarray, x: np.ndarray,
                w: np.ndarray, use_mad: bool) -> np.ndarray:
    diff = scale * lv + shift - x
    diff = np.abs(diff) if use_mad else diff * diff
    return seq_sum(w * diff)


def make_qkx2_quants(x: np.ndarray, w: np.ndarray, nmax: int, rmin: float, rdelta: float,
                     nstep: int, use_mad: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ggml-quants.c `make_qkx2_quants`: affine codes 0..nmax with a min, by a grid search.

    x, w: (n, m) float32 values and weights. Returns (scale (m,), the_min (m,), L (n, m) uint8)
    where the_min is C's `*the_min = -min`. The search moves `min` when a step wins, and the
    next steps measure `x - min` and `max - min` from the moved min, as the C loop does.
    """
    mn = x[0].copy()
    mx = x[0].copy()
    sum_w = w[0].copy()
    sum_x = sum_w * x[0]
    for xi, wi in zip(x[1:], w[1:]):
        mn = np.where(xi < mn, xi, mn)
        mx = np.where(xi > mx, xi, mx)
        sum_w = sum_w + wi
        sum_x = sum_x + wi * xi
    mn = np.where(mn > 0, F(0), mn)
    flat = mx == mn
    iscale = F(nmax) / (mx - mn)
    scale = F(1) / iscale
    best_error = _qkx2_error(scale, mn, _qkx2_levels(iscale, x, mn, nmax), x, w, use_mad)
    best_iscale, best_shift = iscale, mn
    for step in range(nstep + 1):
        iscale = (F(rmin) + F(rdelta) * F(step) + F(nmax)) / (mx - mn)
        lv = _qkx2_levels(iscale, x, mn, nmax)
        wl = w * lv
        sum_l = seq_sum(wl)
        sum_l2 = seq_sum(wl * lv)
        sum_xl = seq_sum(wl * x)
        big_d = sum_w * sum_l2 - sum_l * sum_l
        this_scale = (sum_w * sum_xl - sum_x * sum_l) / big_d
        this_min = (sum_l2 * sum_x - sum_l * sum_xl) / big_d
        clip = this_min > 0
        this_min = np.where(clip, F(0), this_min)
        this_scale = np.where(clip, sum_xl / sum_l2, this_scale)
        cur_error = _qkx2_error(this_scale, this_min, lv, x, w, use_mad)
        win = (big_d > 0) & (cur_error < best_error) & ~flat
        best_iscale = np.where(win, iscale, best_iscale)
        best_shift = np.where(win, mn, best_shift)
        best_error = np.where(win, cur_error, best_error)
        scale = np.where(win, this_scale, scale)
        mn = np.where(win, this_min, mn)
    levels = _qkx2_levels(best_iscale, x, best_shift, nmax).astype(np.uint8)
    levels[:, flat] = 0
    return np.where(flat, F(0), scale), -mn, levels


def make_qx_quants(x: np.ndarray, nmax: int) -> tuple[np.ndarray, np.ndarray]:
    """ggml-quants.c `make_qx_quants` with rmse_type 1 and no quant weights (q6_K's call).

    Symmetric codes l in [-nmax, nmax-1] with weights w = x*x: a first scale -nmax/max, then
    18 trial scales -(nmax + 0.1f*is)/max, is = -9..9, kept when `sumlx*sumlx > best*suml2`.
    x: (n, m). Returns (scale (m,), L (n, m) uint8 = l + nmax, or 0 for an all-zero sub-block).
    """
    amax, mx = first_absmax_cols(x)
    w = x * x
    wx = w * x

    def trial(iscale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lv = _codes(iscale * x, -nmax, nmax - 1)
        return seq_sum(wx * lv), seq_sum(w * lv * lv)

    iscale = F(-nmax) / mx
    best_iscale = iscale
    sumlx, suml2 = trial(iscale)
    scale = np.where(suml2 != 0, sumlx / suml2, F(0))
    best = scale * sumlx
    for step in range(-9, 10):
        if step == 0:
            continue
        iscale = -(F(nmax) + F(0.1) * F(step)) / mx
        sumlx, suml2 = trial(iscale)
        win = (suml2 > 0) & (sumlx * sumlx > best * suml2)
        best_iscale = np.where(win, iscale, best_iscale)
        scale = np.where(win, sumlx / suml2, scale)
        best = np.where(win, scale * sumlx, best)
    zero = amax < GROUP_MAX_EPS
    levels = (np.clip(nearest_int(best_iscale * x), -nmax, nmax - 1) + nmax).astype(np.uint8)
    levels[:, zero] = 0
    return np.where(zero, F(0), scale), levels


def make_q3_quants(x: np.ndarray, nmax: int) -> tuple[np.ndarray, np.ndarray]:
    """ggml-quants.c `make_q3_quants` with do_rmse (q3_K's call).

    Codes l in [-nmax, nmax-1] from iscale = -nmax/max, then up to 5 passes of coordinate
    descent: each value in turn tries `nearest_int(x*sl2/slx)` and keeps it if
    `slx*slx*suml2 > sumlx*sumlx*sl2`, the running sums changing as it goes. A pass that
    changes nothing ends that sub-block's search in C; here such a sub-block runs the remaining
    passes, which change nothing either (same state, same arithmetic), so the result is equal.
    x: (n, m). Returns (scale (m,), L (n, m) uint8 = l + nmax, or 0 for an all-zero sub-block).
    """
    amax, mx = first_absmax_cols(x)
    iscale = F(-nmax) / mx
    lv = _codes(iscale * x, -nmax, nmax - 1)
    w = x * x
    wx = w * x
    sumlx = seq_sum(wx * lv)
    suml2 = seq_sum(w * lv * lv)
    for _ in range(5):
        changed = False
        for i in range(x.shape[0]):
            li = lv[i]
            slx = sumlx - wx[i] * li
            sl2 = suml2 - w[i] * li * li
            new_l = _codes(x[i] * sl2 / slx, -nmax, nmax - 1)
            try_it = (slx > 0) & (new_l != li)
            slx = slx + wx[i] * new_l
            sl2 = sl2 + w[i] * new_l * new_l
            keep = try_it & (sl2 > 0) & (slx * slx * suml2 > sumlx * sumlx * sl2)
            if keep.any():
                changed = True
                lv[i] = np.where(keep, new_l, li)
                sumlx = np.where(keep, slx, sumlx)
                suml2 = np.where(keep, sl2, suml2)
        if not changed:
            break
    zero = amax < GROUP_MAX_EPS
    levels = (lv + F(nmax)).astype(np.uint8)
    levels[:, zero] = 0
    return np.where(zero, F(0), np.where(suml2 > 0, sumlx / suml2, F(0))), levels
