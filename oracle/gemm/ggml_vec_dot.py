"""GGML CPU dot products `ggml_vec_dot_<x>_<y>`, read from the block bytes themselves.

Upstream: ggml/src/ggml-cpu/quants.c (`ggml_vec_dot_q4_0_q8_0_generic`,
`ggml_vec_dot_q8_0_q8_0_generic`, `ggml_vec_dot_q{2,3,4,5,6}_K_q8_K_generic`) and
ggml/src/ggml-cpu/arch/x86/quants.c (the `__AVX2__` branches of `ggml_vec_dot_q4_0_q8_0` and
`ggml_vec_dot_q8_0_q8_0`, `mul_sum_i8_pairs_float`, `hsum_float_8`); block layouts from
ggml/src/ggml-common.h. Integer work is exact; the float work is modelled in its C order:

- q4_0 x q8_0 generic: per block an int sum, then `sumf += sumi*dx*dy`, i.e.
  sumf + ((float)sumi * dx) * dy, left to right.
- q8_0 x q8_0 generic: `sumf += sumi*(dx*dy)`.
- K-quants x q8_K generic: int32 lanes aux32[l] (element e goes to lane e % 8) scaled per
  super-block, `sums[l] += d * aux32[l]` with d = fp32(x.d) * y.d, the mins through
  `sumf -= dmin * sumi` (q4_K, q5_K), and `sumf += sums[l]` for l = 0..7 at the end; q2_K does
  `sumf += dall * isum - dmin * summs` per super-block.
- variant 'fma': the same C compiled with FMA contraction (GCC contracts `a += b*c` into one
  fused multiply-add wherever the target has FMA, as ggml-cpu's haswell+ variants do): every
  `acc += p*q` becomes fmaf(p, q, acc). (q2_K's two-product update is left unfused-only.)
- variant 'avx2' (q4_0, q8_0 only): 8 float lanes, lane l holding the int sum of bytes
  4l..4l+3 of the block (`_mm256_maddubs_epi16` + `_mm256_madd_epi16`, or dpbusd with VNNI),
  `acc = fmadd(dx*dy, float(lane), acc)` per block, then `hsum_float_8`:
  ((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7)). Without VNNI, maddubs takes |x| and y with x's
  sign: a pair x = y = -128 gives -16384 instead of +16384 (sign of -128 wraps); modelled.

`vec_dot_exact` gives the exact value of the dot of the dequantized blocks (what every path
approximates) and a bound valid for any fp32 order with at most 3 roundings per term before
the sum (scale product, scale-times-int, an optional scale-times-scale), so SIMD paths of
any lane count are judged by it.
"""
from __future__ import annotations

import numpy as np

from oracle.bounds import gamma, sum_bound
from oracle.ggml.q4_k import unpack_scale_min_k4
from oracle.rounding import fmaf

__all__ = ["BLOCKS", "vec_dot", "vec_dot_exact", "VARIANTS"]

F32 = np.float32
# (x type, y type) -> (elements per block, x bytes, y bytes)
BLOCKS = {
    ("q4_0", "q8_0"): (32, 18, 34),
    ("q8_0", "q8_0"): (32, 34, 34),
    ("q2_k", "q8_k"): (256, 84, 292),
    ("q3_k", "q8_k"): (256, 110, 292),
    ("q4_k", "q8_k"): (256, 144, 292),
    ("q5_k", "q8_k"): (256, 176, 292),
    ("q6_k", "q8_k"): (256, 210, 292),
}
VARIANTS = {"generic", "fma", "avx2"}


def _f16(b: np.ndarray, off: int) -> np.ndarray:
    return np.ascontiguousarray(b[..., off:off + 2]).view("<f2")[..., 0].astype(F32)


def _blocks(data, rows_bytes: int, block_bytes: int) -> np.ndarray:
    a = np.asarray(data, dtype=np.uint8)
    a = a.reshape(-1, a.shape[-1]) if a.ndim > 1 else a.reshape(1, -1)
    if a.shape[-1] % block_bytes:
        raise ValueError(f"row of {a.shape[-1]} bytes is not a whole number of {block_bytes}-byte blocks")
    return a.reshape(a.shape[0], -1, block_bytes)


# ---- decoding: (integer codes per element, per-element integer scale, super-block floats) ----

def _q8_0(b):
    return b[..., 2:].view(np.int8).astype(np.int64), _f16(b, 0)


def _q4_0(b):
    lo, hi = b[..., 2:] & 0x0F, b[..., 2:] >> 4
    return np.concatenate([lo, hi], axis=-1).astype(np.int64) - 8, _f16(b, 0)


def _q8_k(b):
    d = np.ascontiguousarray(b[..., :4]).view("<f4")[..., 0].astype(F32)
    q = b[..., 4:260].view(np.int8).astype(np.int64)
    bsums = np.ascontiguousarray(b[..., 260:292]).view("<i2").astype(np.int64)
    return q, bsums, d


def _scale_min_k4(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The eight 6-bit scales and mins of q4_K/q5_K from their 12 bytes, as int64 for the int sums."""
    sc, mn = unpack_scale_min_k4(np.asarray(s, np.uint8))
    return sc.astype(np.int64), mn.astype(np.int64)


def _kq_nibbles(qs: np.ndarray) -> np.ndarray:
    """q4_K/q5_K low bits: element 64p + l = qs[32p + l] & 15, element 64p + 32 + l = qs[32p + l] >> 4."""
    q = qs.reshape(qs.shape[:-1] + (4, 32)).astype(np.int64)
    return np.stack([q & 0xF, q >> 4], axis=-2).reshape(qs.shape[:-1] + (256,))


def _q4_k(b):
    sc, mn = _scale_min_k4(b[..., 4:16])
    return _kq_nibbles(b[..., 16:144]), sc, mn, _f16(b, 0), _f16(b, 2)


def _q5_k(b):
    sc, mn = _scale_min_k4(b[..., 4:16])
    q = _kq_nibbles(b[..., 48:176])
    qh = b[..., 16:48].astype(np.int64)  # bit j of qh[l] is the high bit of element 32j + l
    hb = np.stack([(qh >> j) & 1 for j in range(8)], axis=-2).reshape(q.shape)
    return q + 16 * hb, sc, mn, _f16(b, 0), _f16(b, 2)


def _q6_k(b):
    ql = b[..., 0:128].astype(np.int64).reshape(b.shape[:-1] + (2, 64))
    qh = b[..., 128:192].astype(np.int64).reshape(b.shape[:-1] + (2, 32))
    parts = [(ql[..., 0:32] & 0xF) | (((qh >> 0) & 3) << 4), (ql[..., 32:64] & 0xF) | (((qh >> 2) & 3) << 4),
             (ql[..., 0:32] >> 4) | (((qh >> 4) & 3) << 4), (ql[..., 32:64] >> 4) | (((qh >> 6) & 3) << 4)]
    q = np.stack(parts, axis=-2).reshape(b.shape[:-1] + (256,)) - 32
    sc = b[..., 192:208].view(np.int8).astype(np.int64)
    return q, sc, _f16(b, 208)


def _q2_k(b):
    sc = b[..., 0:16].astype(np.int64)
    qs = b[..., 16:80].astype(np.int64).reshape(b.shape[:-1] + (2, 1, 32))
    q = ((qs >> (2 * np.arange(4)[:, None])) & 3).reshape(b.shape[:-1] + (256,))
    return q, sc & 0xF, sc >> 4, _f16(b, 80), _f16(b, 82)


def _q3_k(b):
    hm = b[..., 0:32].astype(np.int64)
    qs = b[..., 32:96].astype(np.int64).reshape(b.shape[:-1] + (2, 1, 32))
    q = ((qs >> (2 * np.arange(4)[:, None])) & 3)  # (..., chunk c, shift s, l)
    hbit = np.stack([(hm[..., None, :] >> (4 * c + np.arange(4)[:, None])) & 1 for c in range(2)], axis=-3)
    a = (q - 4 * (1 - hbit)).reshape(b.shape[:-1] + (256,))
    raw = np.ascontiguousarray(b[..., 96:108]).view("<u4").astype(np.uint64)
    k1, k2 = np.uint64(0x03030303), np.uint64(0x0F0F0F0F)
    a0, a1, t = raw[..., 0], raw[..., 1], raw[..., 2]
    sh = lambda v, n: v >> np.uint64(n)  # noqa: E731
    words = np.stack([(a0 & k2) | ((sh(t, 0) & k1) << np.uint64(4)), (a1 & k2) | ((sh(t, 2) & k1) << np.uint64(4)),
                      (sh(a0, 4) & k2) | ((sh(t, 4) & k1) << np.uint64(4)),
                      (sh(a1, 4) & k2) | ((sh(t, 6) & k1) << np.uint64(4))], axis=-1).astype("<u4")
    sc = np.ascontiguousarray(words).view(np.int8).astype(np.int64) - 32
    return a, sc, _f16(b, 108)


def _lanes(prod: np.ndarray) -> np.ndarray:
    """int32 lanes aux32[l] = sum of prod[e] over e % 8 == l, per super-block: (..., nb, 8)."""
    return prod.reshape(prod.shape[:-1] + (-1, 8)).sum(axis=-2)


def _acc(acc, p, q, fma: bool):
    with np.errstate(over="ignore", invalid="ignore"):
        if fma:
            return fmaf(p, q, acc)
        return (acc + (p * q).astype(F32)).astype(F32)


def _hsum8(acc: np.ndarray) -> np.ndarray:
    r = acc[..., 4:] + acc[..., :4]
    r = r[..., :2] + r[..., 2:]
    return r[..., 0] + r[..., 1]


def _int_dot_32(xq, yq, avx2_sat: bool):
    p = xq * yq
    if avx2_sat:
        p = np.where((xq == -128) & (yq == -128), -16384, p)
    return p


def _legacy(xb, yb, kind, variant):
    xq, dx = (_q4_0 if kind == "q4_0" else _q8_0)(xb)
    yq, dy = _q8_0(yb)
    p = _int_dot_32(xq, yq, variant == "avx2" and kind == "q8_0")
    nb = xb.shape[1]
    if variant == "avx2":
        lanes = p.reshape(p.shape[:-1] + (8, 4)).sum(-1).astype(np.int32).astype(F32)  # (rows, nb, 8)
        d = (dx * dy).astype(F32)
        acc = np.zeros((xb.shape[0], 8), F32)
        for ib in range(nb):
            acc = fmaf(np.broadcast_to(d[:, ib:ib + 1], acc.shape), lanes[:, ib], acc)
        return _hsum8(acc)
    sumi = p.sum(-1).astype(np.int32).astype(F32)
    sumf = np.zeros(xb.shape[0], F32)
    fma = variant == "fma"
    for ib in range(nb):
        if kind == "q4_0":
            sumf = _acc(sumf, (sumi[:, ib] * dx[:, ib]).astype(F32), dy[:, ib], fma)
        else:
            sumf = _acc(sumf, sumi[:, ib], (dx[:, ib] * dy[:, ib]).astype(F32), fma)
    return sumf


def _kquant_terms(kind, xb, yb):
    """Per super-block: (int lanes aux32 (rows, nb, 8), x d, min int sum or None, x dmin or None)."""
    q8, bsums, _ = _q8_k(yb)
    if kind in ("q4_k", "q5_k"):
        q, sc, mn, d, dmin = (_q4_k if kind == "q4_k" else _q5_k)(xb)
        aux = _lanes(np.repeat(sc, 32, axis=-1) * q * q8)
        sumi = (bsums * np.repeat(mn, 2, axis=-1)).sum(-1)
        return aux, d, sumi, dmin
    if kind == "q6_k":
        q, sc, d = _q6_k(xb)
        return _lanes(np.repeat(sc, 16, axis=-1) * q * q8), d, None, None
    if kind == "q3_k":
        q, sc, d = _q3_k(xb)
        return _lanes(np.repeat(sc, 16, axis=-1) * q * q8), d, None, None
    q, sc, mn, d, dmin = _q2_k(xb)
    isum = (np.repeat(sc, 16, axis=-1) * q * q8).sum(-1)
    summs = (bsums * mn).sum(-1)
    return isum, d, summs, dmin


def _kquant(xb, yb, kind, variant):
    if variant == "avx2":
        raise ValueError(f"no AVX2 model for {kind}: judge that path with vec_dot_exact")
    fma = variant == "fma"
    _, _, yd = _q8_k(yb)
    aux, d_x, mins, dmin_x = _kquant_terms(kind, xb, yb)
    rows, nb = xb.shape[:2]
    sumf = np.zeros(rows, F32)
    if kind == "q2_k":
        if fma:
            raise ValueError("q2_K's fused variant is not modelled (which product GCC fuses is not fixed)")
        for i in range(nb):
            dall = (yd[:, i] * d_x[:, i]).astype(F32)
            dmin = (yd[:, i] * dmin_x[:, i]).astype(F32)
            t = ((dall * aux[:, i].astype(F32)).astype(F32) - (dmin * mins[:, i].astype(F32)).astype(F32)).astype(F32)
            sumf = (sumf + t).astype(F32)
        return sumf
    sums = np.zeros((rows, 8), F32)
    for i in range(nb):
        d = (d_x[:, i] * yd[:, i]).astype(F32)
        sums = _acc(sums, np.broadcast_to(d[:, None], sums.shape), aux[:, i].astype(np.int32).astype(F32), fma)
        if mins is not None:
            dmin = (dmin_x[:, i] * yd[:, i]).astype(F32)
            sumf = _acc(sumf, -dmin, mins[:, i].astype(F32), fma)
    for lane in range(8):
        sumf = (sumf + sums[:, lane]).astype(F32)
    return sumf


def _split(x_type, y_type, x, y):
    key = (x_type.lower(), y_type.lower())
    if key not in BLOCKS:
        raise ValueError(f"no vec_dot model for {x_type} x {y_type}; known: {sorted(BLOCKS)}")
    _, bx, by = BLOCKS[key]
    xb, yb = _blocks(x, 0, bx), _blocks(y, 0, by)
    if xb.shape[:2] != yb.shape[:2]:
        raise ValueError(f"x has {xb.shape[:2]} (rows, blocks), y has {yb.shape[:2]}")
    return key[0], xb, yb


def vec_dot(x_type: str, y_type: str, x, y, *, variant: str = "generic") -> np.ndarray:
    """Bit-exact float32 result of ggml_vec_dot for each row of x and y bytes (rows, n_bytes)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: {sorted(VARIANTS)}")
    kind, xb, yb = _split(x_type, y_type, x, y)
    if kind in ("q4_0", "q8_0"):
        return _legacy(xb, yb, kind, variant)
    return _kquant(xb, yb, kind, variant)


def vec_dot_exact(x_type: str, y_type: str, x, y) -> tuple[np.ndarray, np.ndarray]:
    """(exact dot of the dequantized rows in float64, bound for any fp32 evaluation order).

    Terms: per block, d_x * d_y * (integer sums) and, for min-carrying types, d_min * d_y *
    (integer min sums). Their |.| sums use per-element |codes| so the bound covers any split of
    the integer sums into float lanes. Height: one addition per element plus the block
    terms, plus 3 roundings per term (see the module docstring). The float64 evaluation adds
    gamma_3(fp64) per term and gamma_n(fp64) for its sum.
    """
    kind, xb, yb = _split(x_type, y_type, x, y)
    n = xb.shape[1] * BLOCKS[(kind, y_type.lower())][0]
    if kind in ("q4_0", "q8_0"):
        xq, dx = (_q4_0 if kind == "q4_0" else _q8_0)(xb)
        yq, dy = _q8_0(yb)
        s = dx.astype(np.float64) * dy
        terms = s * (xq * yq).sum(-1)
        abs_terms = np.abs(s) * np.abs(xq * yq).sum(-1)
    else:
        q8, bsums, yd = _q8_k(yb)
        if kind in ("q4_k", "q5_k", "q2_k"):
            q, sc, mn, d, dmin = {"q4_k": _q4_k, "q5_k": _q5_k, "q2_k": _q2_k}[kind](xb)
            rep = 32 if kind != "q2_k" else 16
            scq = np.repeat(sc, rep, axis=-1) * q * q8
            mq = np.repeat(mn, rep // 16, axis=-1) * bsums
            s1, s2 = d.astype(np.float64) * yd, dmin.astype(np.float64) * yd
            terms = s1 * scq.sum(-1) - s2 * mq.sum(-1)
            abs_terms = np.abs(s1) * np.abs(scq).sum(-1) + np.abs(s2) * np.abs(mq).sum(-1)
        else:
            q, sc, d = (_q6_k if kind == "q6_k" else _q3_k)(xb)
            scq = np.repeat(sc, 16, axis=-1) * q * q8
            s1 = d.astype(np.float64) * yd
            terms = s1 * scq.sum(-1)
            abs_terms = np.abs(s1) * np.abs(scq).sum(-1)
    exact = terms.sum(-1)
    abs_sum = abs_terms.sum(-1)
    n_terms = n + 2 * xb.shape[1]
    bound = (sum_bound(abs_sum, n_terms + 3, "fp32", n_products=3 * n_terms, n_terms=n_terms)
             + gamma(n_terms + 3, "fp64") * abs_sum)
    return exact, bound
