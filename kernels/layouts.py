"""The memory layouts real callers hand a kernel: views, not fresh dense copies.

A caller rarely passes a freshly allocated contiguous tensor. Weights arrive as the transposed
view `w.t()` of an (N, K) parameter, activations as a slice of a fused projection (a row pitch
wider than the row), as one row of a larger batch, broadcast along M with stride 0 by `expand`,
or at an odd storage offset. A `View` describes such an operand as numbers (a flat storage
array, an element offset, a shape and element strides) so it crosses the worker's pipe as plain
data; in the worker the adapter rebuilds exactly that view over the same memory (`as_torch`,
`as_numpy`) and hands it to the library untouched. Storage outside the view is filled with a
guard pattern: the call must leave every byte of it as it was (the worker's inputs-unchanged
invariant covers the whole storage), and for an output buffer the suite checks it itself.

The oracle judges the logical values (`View.logical`), never the storage.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["LAYOUTS", "View", "make", "dense", "as_numpy", "as_torch", "guard_intact", "GUARD_BYTE"]

GUARD_BYTE = 0xA5  # storage outside the view: a pattern no kernel writes by accident
_ALIGN = 64  # a dense view starts on a 64-byte boundary, like a framework allocation

# layout -> what a caller does to produce it
LAYOUTS: dict[str, str] = {
    "dense": "a fresh contiguous, 64-byte aligned tensor",
    "transposed": "the transpose of a contiguous tensor of the other orientation (w.t() of a parameter)",
    "row_pitch": "a slice of wider rows (x[:, :K] of a fused projection): row stride > row length",
    "offset": "the same values one element past an aligned start (a storage offset)",
    "broadcast": "one row expanded along the first axis with stride 0 (x.expand(M, K))",
    "batch_row": "rows 1 .. M of a larger batch (x[1:M + 1]): an M = 1 decode step is such a view",
}


class View(NamedTuple):
    """An operand as storage + (offset, shape, strides) in elements; a tuple, so the worker's
    inputs-unchanged check sees its storage."""

    storage: np.ndarray
    offset: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    layout: str

    def __reduce__(self):
        """Pickle so the storage arrives 64-byte aligned again (an unpickled numpy array is aligned to
        16 bytes at most, and where a view starts relative to that decides what some kernels do)."""
        return (_rebuild, (self.storage.tobytes(), self.storage.dtype, self.offset, self.shape, self.strides,
                           self.layout))

    @property
    def logical(self) -> np.ndarray:
        """The values the view shows (a copy), which the oracle judges."""
        return as_numpy(self).copy()


def _aligned(n: int, dtype: np.dtype) -> np.ndarray:
    """n elements of `dtype`, filled with the guard pattern, starting on a 64-byte boundary."""
    raw = np.full(n * dtype.itemsize + _ALIGN, GUARD_BYTE, np.uint8)
    start = -raw.ctypes.data % _ALIGN
    return raw[start:start + n * dtype.itemsize].view(dtype)


def _rebuild(raw: bytes, dtype: np.dtype, offset: int, shape: tuple[int, ...], strides: tuple[int, ...],
             layout: str) -> View:
    s = _aligned(len(raw) // dtype.itemsize, dtype)
    s.view(np.uint8)[:] = np.frombuffer(raw, np.uint8)
    return View(s, offset, shape, strides, layout)


def dense(a: np.ndarray) -> View:
    return make(a, "dense")


def make(a: np.ndarray, layout: str) -> View:
    """`a` (2-D) presented in `layout`. 'broadcast' needs every row of `a` equal (a case family
    that offers it draws such operands)."""
    a = np.asarray(a)
    r, c = a.shape
    dt = a.dtype
    if layout == "dense":
        s = _aligned(r * c, dt)
        s[:] = a.reshape(-1)
        return View(s, 0, (r, c), (c, 1), layout)
    if layout == "transposed":
        s = _aligned(r * c, dt)
        s[:] = a.T.reshape(-1)
        return View(s, 0, (r, c), (1, r), layout)
    if layout == "row_pitch":
        pitch = c + 7
        s = _aligned(r * pitch, dt)
        s.reshape(r, pitch)[:, :c] = a
        return View(s, 0, (r, c), (pitch, 1), layout)
    if layout == "offset":
        s = _aligned(r * c + 2, dt)
        s[1:1 + r * c] = a.reshape(-1)
        return View(s, 1, (r, c), (c, 1), layout)
    if layout == "broadcast":
        if r and not (a == a[:1]).all():
            raise ValueError("a broadcast view needs equal rows")
        s = _aligned(c + 1, dt)
        s[:c] = a[0] if r else 0
        return View(s, 0, (r, c), (0, 1), layout)
    if layout == "batch_row":
        s = _aligned((r + 2) * c, dt)
        s[c:c + r * c] = a.reshape(-1)
        return View(s, c, (r, c), (c, 1), layout)
    raise ValueError(f"unknown layout {layout!r}; known: {', '.join(LAYOUTS)}")


def as_numpy(v: View, writeable: bool = False) -> np.ndarray:
    """The view over its storage (no copy); `writeable` for an output buffer's view."""
    isz = v.storage.itemsize
    flat = v.storage[v.offset:] if v.offset else v.storage
    return np.lib.stride_tricks.as_strided(flat, v.shape, tuple(s * isz for s in v.strides), writeable=writeable)


def as_torch(v: View):
    """The same view as a torch tensor over the same memory (bf16 storage is ml_dtypes bfloat16)."""
    import ml_dtypes
    import torch

    s = v.storage
    bf16 = s.dtype == ml_dtypes.bfloat16
    base = torch.from_numpy(s.view(np.int16) if bf16 else s)
    if bf16:
        base = base.view(torch.bfloat16)
    return torch.as_strided(base, v.shape, v.strides, v.offset)


def guard_intact(v: View, before: np.ndarray) -> bool:
    """Whether every storage byte outside the view is what it was (`before`: the storage's bytes then)."""
    inside = np.zeros(v.storage.size, bool)
    idx = np.ravel_multi_index(np.indices(v.shape).reshape(len(v.shape), -1), v.shape) if v.shape else []
    if len(idx):
        coords = np.unravel_index(idx, v.shape)
        inside[v.offset + sum(c * s for c, s in zip(coords, v.strides))] = True
    now = v.storage.view(np.uint8).reshape(v.storage.size, -1)
    was = before.view(np.uint8).reshape(v.storage.size, -1)
    return bool((now[~inside] == was[~inside]).all())
