"""Hypothesis strategies shared by the oracle's self-tests and the conformance suite.

The one module of `oracle` that imports hypothesis (a test-time dependency). Values are drawn
as a structural *kind* plus a seed, then filled with numpy: hypothesis explores the kinds that
break kernels (zero and constant groups, values on rounding half-steps, +max/-max ties,
subnormals, huge magnitudes, full-range integer codes) while the arrays stay cheap to build.

NaN/inf policy (`nonfinite`): 'forbid' (default: quantizers and kernels differ in what NaN
turns into, and most conventions leave it undefined), 'inject' (put NaN, +inf and -inf in some
elements, for conventions that document what happens: e.g. ggml's q4_0 cast of NaN to
INT_MIN). Each convention states which it supports; a test passes its own.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

__all__ = ["sums_fit_fp32", "LLM_LAYER_SHAPES", "GROUP_SIZES", "KINDS", "INT8_PATTERNS", "group_sizes", "gemm_shapes",
           "float_arrays", "int8_codes", "structured"]

# (K, N) of real linear layers: Llama-2-7B (hidden 4096, MLP 11008), Llama-3-8B (MLP 14336,
# GQA kv 1024), Qwen2.5-7B (hidden 3584, MLP 18944, kv 512), Phi-3-mini (3072, MLP 8192),
# and GPT-2 small (768, MLP 3072): each model's published config.json.
LLM_LAYER_SHAPES: list[tuple[int, int]] = [
    (4096, 4096), (4096, 11008), (11008, 4096), (4096, 14336), (14336, 4096), (4096, 1024),
    (3584, 18944), (18944, 3584), (3584, 512), (3072, 8192), (8192, 3072), (768, 3072), (3072, 768),
]
GROUP_SIZES = (32, 64, 128, 256, -1)  # -1: one group per output channel (the whole K)
M_VALUES = (1, 2, 3, 4, 5, 8, 16, 17, 32, 64, 128, 256, 512)
KINDS = ("normal", "zero_group", "constant_group", "half_steps", "max_ties", "subnormal", "huge", "mixed")
INT8_PATTERNS = ("all_min", "all_max", "alternating", "random", "zero")
F32 = np.float32


def group_sizes() -> st.SearchStrategy[int]:
    return st.sampled_from(GROUP_SIZES)


@st.composite
def gemm_shapes(draw, group_size: int | None = None, *, max_k: int = 4096, max_m: int = 512,
                off_multiple: bool | None = None, real_layers: bool = False):
    """(M, K, N): M from GEMV (1) up; K on a multiple of the group or off it (off_multiple).

    real_layers draws (K, N) from LLM_LAYER_SHAPES; otherwise K, N stay <= max_k so property
    tests remain fast on two cores.
    """
    m = draw(st.sampled_from([v for v in M_VALUES if v <= max_m]))
    if real_layers:
        k, n = draw(st.sampled_from(LLM_LAYER_SHAPES))
        return m, k, n
    g = group_size if group_size and group_size > 0 else 32
    groups = draw(st.integers(1, max(1, max_k // g)))
    off = draw(st.booleans()) if off_multiple is None else off_multiple
    k = groups * g + (draw(st.integers(1, g - 1)) if off and g > 1 else 0)
    n = draw(st.sampled_from([1, 2, 8, 16, 32, 48, 64]))
    return m, k, n


def structured(kind: str, shape: tuple[int, ...], group: int, rng: np.random.Generator, scale: float) -> np.ndarray:
    """float32 array of one structural kind (see KINDS), groups of `group` along the last axis.

    Plain numpy and deterministic for a given rng, so suites can also use it for crafted cases.
    """
    x = rng.standard_normal(shape) * scale
    flat = x.reshape(-1, shape[-1])
    k = shape[-1]
    starts = range(0, k, group)
    if kind == "zero_group":
        for s in starts:
            if rng.random() < 0.5:
                flat[:, s:s + group] = 0.0
    elif kind == "constant_group":
        for s in starts:
            flat[:, s:s + group] = flat[:, s:s + 1]
    elif kind == "half_steps":
        # values (j + 1/2) * step for a step that makes the group's max land on a code exactly:
        # every element sits on a tie of round-to-nearest at that scale
        q = rng.integers(-8, 8, flat.shape) + 0.5
        flat[:] = q * scale / 8
    elif kind == "max_ties":
        for s in starts:
            w = min(group, k - s)
            i, j = rng.choice(w, 2, replace=False) if w > 1 else (0, 0)
            m = np.max(np.abs(flat[:, s:s + w]), axis=1) * 1.5 + scale
            flat[:, s + i] = m
            flat[:, s + j] = -m
    elif kind == "subnormal":
        flat[:] = rng.integers(-(2 ** 23) + 1, 2 ** 23, flat.shape) * 2.0 ** -149
    elif kind == "huge":
        flat[:] = rng.standard_normal(flat.shape) * 1e37
    elif kind == "mixed":
        flat[:] = flat * 10.0 ** rng.integers(-30, 30, flat.shape)
    return flat.reshape(shape).astype(F32)


@st.composite
def float_arrays(draw, shape: tuple[int, ...], *, group_size: int = 32, kinds=KINDS, nonfinite: str = "forbid"):
    """float32 arrays of `shape` with the structure of one drawn kind, grouped along the last axis."""
    if nonfinite not in ("forbid", "inject"):
        raise ValueError(f"nonfinite policy must be 'forbid' or 'inject', got {nonfinite!r}")
    kind = draw(st.sampled_from(kinds))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    scale = draw(st.sampled_from([1e-3, 0.1, 1.0, 30.0]))
    group = group_size if group_size > 0 else shape[-1]
    rng = np.random.default_rng(seed)
    x = structured(kind, tuple(shape), group, rng, scale)
    if nonfinite == "inject" and x.size:
        n_bad = draw(st.integers(1, min(3, x.size)))
        idx = rng.choice(x.size, n_bad, replace=False)
        x.reshape(-1)[idx] = rng.choice(np.array([np.nan, np.inf, -np.inf], F32), n_bad)
    return x


@st.composite
def int8_codes(draw, shape: tuple[int, ...], *, patterns=INT8_PATTERNS):
    """int8 codes: all -128, all 127, alternating -128/127, all zero, or uniform over the range."""
    p = draw(st.sampled_from(patterns))
    if p == "all_min":
        return np.full(shape, -128, np.int8)
    if p == "all_max":
        return np.full(shape, 127, np.int8)
    if p == "zero":
        return np.zeros(shape, np.int8)
    if p == "alternating":
        return np.where(np.indices(shape).sum(0) % 2 == 0, -128, 127).astype(np.int8)
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    return rng.integers(-128, 128, shape, dtype=np.int8)


def sums_fit_fp32(x: np.ndarray, w: np.ndarray) -> bool:
    """Whether every sum of |x[m, k] w[n, k]| over k stays far inside float32 (a quarter of its largest
    value). Past it a kernel's partial sums may overflow to inf in any order (NaN from inf - inf):
    the float model of every bound assumes no overflow, so such drawn inputs are outside every fp32
    accumulator's contract and a test `assume`s them away."""
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.abs(np.asarray(x, np.float64)) @ np.abs(np.asarray(w, np.float64)).T
    return bool(np.all(np.isfinite(total)) and total.max(initial=0.0) < np.finfo(np.float32).max / 4)
