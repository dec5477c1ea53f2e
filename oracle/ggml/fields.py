"""Byte-level helpers shared by the GGML block modules: fp16 fields, nibbles, ordered sums."""
from __future__ import annotations

import numpy as np


def f16_bytes(x: np.ndarray) -> np.ndarray:
    """float32 (n,) -> (n, 2) uint8 as ggml-base's software GGML_FP32_TO_FP16 writes it.

    Round to nearest even like numpy, except NaN: ggml writes sign | 0x7E00 whatever the
    payload, numpy keeps the top payload bits. Only matters where a NaN input reaches a scale
    (q8_0, q8_1, tq1_0, tq2_0 via their NaN-propagating MAX), but there it changes the bytes.
    """
    x = np.asarray(x, dtype=np.float32)
    canon = np.where(np.signbit(x), np.float32(-np.nan), np.float32(np.nan)).astype(np.float32)
    x = np.where(np.isnan(x), canon, x)
    with np.errstate(over="ignore"):
        return x.astype("<f2").view(np.uint8).reshape(-1, 2)


def f16_field(blocks: np.ndarray, offset: int) -> np.ndarray:
    """The fp16 at byte `offset` of each block, as float32 (GGML_FP16_TO_FP32 is exact)."""
    return np.ascontiguousarray(blocks[:, offset:offset + 2]).view("<f2").astype(np.float32)[:, 0]


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


def first_absmax(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(amax, max): the largest |x| of each row and the signed value that holds it.

    ggml scans with a strict `amax < fabsf(v)`, so the first of several equal |x| wins, which
    is also what argmax returns. A NaN never wins that comparison.
    """
    a = np.abs(blocks)
    a = np.where(np.isnan(a), -1.0, a)
    idx = np.argmax(a, axis=-1)
    mx = np.take_along_axis(blocks, idx[:, None], axis=-1)[:, 0]
    amax = np.maximum(np.take_along_axis(a, idx[:, None], axis=-1)[:, 0], 0).astype(blocks.dtype)
    mx = np.where(amax == 0, blocks.dtype.type(0), mx)
    return amax, mx
