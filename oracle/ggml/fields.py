"""Byte-level helpers shared by the GGML block modules: fp16 fields, nibbles, ordered sums, row maxima."""
from __future__ import annotations

import numpy as np


def f16_bytes(x: np.ndarray) -> np.ndarray:
    """float32 (n,) -> (n, 2) uint8 as ggml-base's software GGML_FP32_TO_FP16 writes it.

    Round to nearest even like numpy, except NaN: ggml writes sign | 0x7E00 whatever the
    payload, numpy keeps the top payload bits. Only matters where a NaN input reaches a scale
    (q8_0, q8_1, tq1_0, tq2_0 via their NaN-propagating MAX), but there it changes the bytes.
    """
    x = np.asarray(x, dtype=np.float32)
    nan = np.isnan(x)
    if nan.any():
        x = np.where(nan, np.where(np.signbit(x), np.float32(-np.nan), np.float32(np.nan)), x).astype(np.float32)
    with np.errstate(over="ignore"):
        return x.astype("<f2").view(np.uint8).reshape(-1, 2)


def inv_or_zero(d: np.ndarray) -> np.ndarray:
    """ggml's `id = d ? 1.0f/d : 0.0f` in float32: -0.0 is false too, a NaN d gives a NaN id."""
    d = np.asarray(d, dtype=np.float32)
    with np.errstate(divide="ignore", over="ignore"):
        inv = np.float32(1) / d
    inv[d == 0] = 0
    return inv


def f16_field(blocks: np.ndarray, offset: int) -> np.ndarray:
    """The fp16 at byte `offset` of each block, as float32 (GGML_FP16_TO_FP32 is exact)."""
    if offset % 2 == 0 and blocks.shape[1] % 2 == 0 and blocks.flags.c_contiguous:
        return blocks.view("<f2")[:, offset // 2].astype(np.float32)  # one strided pass, no per-row copy
    return np.ascontiguousarray(blocks[:, offset:offset + 2]).view("<f2").astype(np.float32)[:, 0]


def put_f16(blocks: np.ndarray, d: np.ndarray) -> None:
    """Write `f16_bytes(d)` into bytes 0..1 of each (C-contiguous, even-sized) block, in one pass."""
    blocks.view(np.uint16)[:, 0] = f16_bytes(d).view(np.uint16)[:, 0]


def pack_nibbles(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Two arrays of 4-bit values (any int dtype) -> bytes `lo | hi << 4`."""
    return ((lo.astype(np.uint8) & 0x0F) | ((hi.astype(np.uint8) & 0x0F) << 4)).astype(np.uint8)


def unpack_nibbles(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bytes -> (low nibbles, high nibbles) as uint8."""
    return b & np.uint8(0x0F), b >> np.uint8(4)


def sum_in_order(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """Sum along `axis` one term at a time from index 0, in a's dtype, as a C `for` loop does.

    numpy's own `sum` is pairwise and rounds differently, which is enough to flip a quantizer's
    choice; this loop is vectorized across the other axes only.
    """
    a = np.moveaxis(np.asarray(a), axis, -1)
    acc = np.zeros(a.shape[:-1], dtype=a.dtype)
    for j in range(a.shape[-1]):
        acc = acc + a[..., j]
    return acc


def row_max(a: np.ndarray) -> np.ndarray:
    """Max of each row of a 2-D integer array whose row length is a power of two, as (n,).

    A pairwise tree of whole-array strided passes (adjacent pairs, then pairs of those):
    numpy's `max(axis=1)` runs one short inner loop per row, which costs more than the
    comparisons themselves for rows of 32. Integer max is exact in any order.
    """
    n, k = a.shape
    if k & (k - 1):
        raise ValueError(f"row_max needs a power-of-two row length, got {k}")
    m = np.ascontiguousarray(a).reshape(-1)
    if k == 1:
        return m.copy()
    while m.size > n:
        m = np.maximum(m[0::2], m[1::2])
    return m


def absmax_scan(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(amax, max, finite): `first_absmax` of each row plus whether the row has no NaN or inf.

    Fast path for float32 rows of a power-of-two length: two integer row maxima of the bit
    patterns. As int32, any x >= +0 beats any negative and a larger |x| wins within a sign;
    as uint32, any negative beats any x >= +0. So one maximum holds the largest x >= 0, the
    other the negative of largest |x| (each falls back to the other when its sign is absent),
    and the larger magnitude is the answer unless the two are +a and -a (the first wins: only
    the position knows) or a NaN is present (NaN sorts above inf): those rows take the argmax
    path, as do other dtypes and widths. A row of zeros gives max = +0.0 either way.
    """
    blocks = np.asarray(blocks)
    n, k = blocks.shape
    if blocks.dtype != np.float32 or k & (k - 1) or n == 0:
        amax, mx = _first_absmax_argmax(blocks)
        return amax, mx, np.isfinite(blocks).all(axis=-1)
    bits = np.ascontiguousarray(blocks).view(np.int32)
    pos_b = row_max(bits)
    neg_b = row_max(bits.view(np.uint32)).view(np.int32)
    pos, neg = pos_b.view(np.float32), neg_b.view(np.float32)
    finite = np.isfinite(pos) & np.isfinite(neg)
    ap, an = np.abs(pos), np.abs(neg)
    amax = np.maximum(ap, an)
    mx = np.where(ap > an, pos, neg)
    mx[amax == 0] = 0
    redo = np.isnan(amax) | ((ap == an) & (pos_b != neg_b) & (amax != 0))
    if redo.any():
        amax[redo], mx[redo] = _first_absmax_argmax(blocks[redo])
    return amax, mx, finite


def first_absmax(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(amax, max): the largest |x| of each row and the signed value that holds it.

    ggml scans with a strict `amax < fabsf(v)`, so the first of several equal |x| wins, which
    is also what argmax returns. A NaN never wins that comparison. (See `absmax_scan`.)
    """
    amax, mx, _ = absmax_scan(blocks)
    return amax, mx


def _first_absmax_argmax(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.abs(blocks)
    a = np.where(np.isnan(a), -1.0, a)
    idx = np.argmax(a, axis=-1)
    mx = np.take_along_axis(blocks, idx[:, None], axis=-1)[:, 0]
    amax = np.maximum(np.take_along_axis(a, idx[:, None], axis=-1)[:, 0], 0).astype(blocks.dtype)
    mx = np.where(amax == 0, blocks.dtype.type(0), mx)
    return amax, mx


def scaled_codes(blocks: np.ndarray, codes, qk: int, chunk: int) -> np.ndarray:
    """fp32(d) * code for blocks whose fp16 d is at byte 0 (q4_0, q8_0): `codes(b)` gives the
    int8 codes of a chunk of blocks. Chunked so the float copy of the codes stays in cache;
    the int8 -> float32 conversion and the one product per value are exact as ggml's."""
    out = np.empty((blocks.shape[0], qk), dtype=np.float32)
    q = np.empty((min(chunk, blocks.shape[0]), qk), dtype=np.float32)
    for s in range(0, blocks.shape[0], chunk):
        b = blocks[s : s + chunk]
        qc = q[: b.shape[0]]
        np.copyto(qc, codes(b), casting="unsafe")
        with np.errstate(invalid="ignore"):
            np.multiply(qc, f16_field(b, 0)[:, None], out=out[s : s + chunk])
    return out
