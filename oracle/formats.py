"""The registry of block formats and the public `quantize` / `dequantize` entry points.

A format is one small class (in the style of gguf-py's quants.py): it says how many values a
block holds, how many bytes it takes, where upstream its reference code lives, and how to turn
a (n_blocks, block_size) float32 array into (n_blocks, block_bytes) uint8 bytes and back.
A format name is the lower-case GGML type name for the reference path (`q4_0`), with a dotted
suffix for another real-world rounding of the same bytes (`q4_0.fma`, `q8_0.x86`).

The same two functions serve the named conventions of oracle/conventions/ (group-wise affine
and float formats whose codes, scales and zero points live in separate arrays): for those,
`quantize` returns the dict of arrays in the kernel's layout (`Convention.pack`) plus the
row length under "k", and `dequantize` takes that dict back.
"""
from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

__all__ = ["Format", "quantize", "dequantize", "get_format", "format_names"]

_REGISTRY: dict[str, type["Format"]] = {}
_FORMAT_PACKAGES = ("oracle.ggml",)


class Format(ABC):
    """One block format: its geometry, its upstream source and its two directions."""

    name: ClassVar[str]
    block_size: ClassVar[int]
    block_bytes: ClassVar[int]
    source: ClassVar[str]
    summary: ClassVar[str]

    def __init_subclass__(cls, name: str | None = None, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if name is None:
            return
        if name in _REGISTRY:
            raise RuntimeError(f"format {name!r} registered twice")
        cls.name = name
        _REGISTRY[name] = cls

    @classmethod
    @abstractmethod
    def quantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        """(n, block_size) float32 -> (n, block_bytes) uint8."""

    @classmethod
    @abstractmethod
    def dequantize_blocks(cls, blocks: np.ndarray) -> np.ndarray:
        """(n, block_bytes) uint8 -> (n, block_size) float32."""


def _load() -> None:
    for pkg in _FORMAT_PACKAGES:
        importlib.import_module(pkg)


def format_names() -> list[str]:
    """Every registered format name, sorted."""
    _load()
    return sorted(_REGISTRY)


def get_format(name: str) -> type[Format]:
    """The format class for `name`, or a one-line ValueError listing the known names."""
    _load()
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"unknown format {name!r}; known formats: {', '.join(sorted(_REGISTRY))}; "
                         "conventions: see `qoracle conventions`")
    return _REGISTRY[name]


def _convention(name: str):
    """The convention called `name` when it is not a block format, else None."""
    _load()
    if name in _REGISTRY:
        return None
    from oracle import conventions

    return conventions.get(name) if name in conventions.names() else None


def quantize(x: np.ndarray, name: str) -> np.ndarray | dict[str, np.ndarray]:
    """float32 (rows, K) -> uint8 (rows, K // block_size * block_bytes), laid out as ggml does.

    For a convention name: the dict of packed arrays in the kernel's layout, with "k".
    """
    conv = _convention(name) if isinstance(name, str) else None
    if conv is not None:
        packed = conv.pack(conv.quantize(x))
        packed["k"] = np.array(x.shape[-1], dtype=np.int64)
        return packed
    fmt = get_format(name)
    if not isinstance(x, np.ndarray) or x.dtype != np.float32:
        raise ValueError(f"{name}: quantize takes a float32 numpy array, got {_describe(x)}")
    if x.ndim != 2:
        raise ValueError(f"{name}: quantize takes shape (rows, K), got shape {x.shape}")
    rows, k = x.shape
    if k % fmt.block_size:
        raise ValueError(f"{name}: K={k} is not a multiple of the block size {fmt.block_size}")
    blocks = np.ascontiguousarray(x).reshape(-1, fmt.block_size)
    q = fmt.quantize_blocks(blocks)
    assert q.dtype == np.uint8 and q.shape == (blocks.shape[0], fmt.block_bytes), (name, q.shape)
    return q.reshape(rows, (k // fmt.block_size) * fmt.block_bytes)


def dequantize(q: np.ndarray | dict[str, np.ndarray], name: str) -> np.ndarray:
    """uint8 (rows, n_blocks * block_bytes) -> float32 (rows, n_blocks * block_size).

    For a convention name: the dict `quantize` returned -> float32 (rows, K).
    """
    conv = _convention(name) if isinstance(name, str) else None
    if conv is not None:
        if not isinstance(q, dict) or "k" not in q:
            raise ValueError(f"{name}: dequantize takes the dict of arrays that quantize returned")
        return conv.dequantize(conv.unpack(q, int(q["k"])))
    fmt = get_format(name)
    if not isinstance(q, np.ndarray) or q.dtype != np.uint8:
        raise ValueError(f"{name}: dequantize takes a uint8 numpy array, got {_describe(q)}")
    if q.ndim != 2:
        raise ValueError(f"{name}: dequantize takes shape (rows, bytes), got shape {q.shape}")
    rows, nbytes = q.shape
    if nbytes % fmt.block_bytes:
        raise ValueError(f"{name}: {nbytes} bytes per row is not a multiple of the block size {fmt.block_bytes}")
    blocks = np.ascontiguousarray(q).reshape(-1, fmt.block_bytes)
    x = fmt.dequantize_blocks(blocks)
    assert x.dtype == np.float32 and x.shape == (blocks.shape[0], fmt.block_size), (name, x.shape)
    return x.reshape(rows, (nbytes // fmt.block_bytes) * fmt.block_size)


def _describe(a: object) -> str:
    if isinstance(a, np.ndarray):
        return f"{a.dtype} array"
    return type(a).__name__
