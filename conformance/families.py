"""Case families: inputs designed so that a wrong kernel fails every time, per GEMM signature.

Random data held to a worst-case bound proves little; each family here targets one way kernels
go wrong and is built so the oracle's verdict separates right from wrong deterministically:
- extremes: every operand at its range's ends (largest products, int16 pair-sum saturation of
  u8 x s8 paths without VNNI, int32 wrap in the full profile);
- tail_k / tail_m / tail_n: all the signal in the last K element, the last row, the last column,
  so a kernel that drops a tail (K % block, M % tile, N % tile) returns zeros there;
- absorption: one large term then many ones, so a partial sum held in fp16 or bf16 absorbs the
  ones (2048 + 1 rounds back to 2048 in fp16; bf16 loses them sooner) while fp32 keeps every one;
- ties: an exact sum halfway between two output values, so a cast that truncates or rounds
  half away from zero differs from round-to-nearest-even by one ulp (visible where the order is
  modelled bit for bit);
- subnormal: products and sums below the smallest normal, so flushing (FTZ/DAZ) turns them to 0;
- nonfinite: NaN and Inf in one activation row each, which must reach every output of that row;
- random: full-range draws over GEMV to batch shapes with K tails.
Every family is a pure function of its name and the profile (seeded by name), so each level of
a run and each machine judges the same bytes.
"""
from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass, field
from typing import Callable, Iterator

import ml_dtypes
import numpy as np

__all__ = ["Case", "FAMILIES", "cases"]

_FLOAT = {"fp32": np.dtype(np.float32), "fp16": np.dtype(np.float16), "bf16": np.dtype(ml_dtypes.bfloat16)}
_MANTISSA = {"fp16": 10, "bf16": 7}  # explicit significand bits of the output dtype (the tie position)


@dataclass(frozen=True)
class Case:
    id: str
    family: str
    operands: dict[str, np.ndarray] = field(hash=False)

    @property
    def digest(self) -> str:
        """The operands' identity (names, dtypes, shapes, bytes): what the oracle's answer depends on."""
        h = hashlib.blake2b(digest_size=16)
        for name in sorted(self.operands):
            v = self.operands[name]
            h.update(f"{name} {v.dtype} {v.shape}".encode())
            h.update(np.ascontiguousarray(v).tobytes())
        return h.hexdigest()

    @property
    def shape(self) -> tuple[int, int, int]:
        act = self.operands.get("a", self.operands.get("x"))
        wt = self.operands.get("b", self.operands.get("w"))
        return (act.shape[0], act.shape[1], wt.shape[0])


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(name.encode()))


def _mkn(m: int, k: int, n: int) -> str:
    return f"m{m}k{k}n{n}"


# ---- int8 x int8 -> int32 -------------------------------------------------------------------

_I8_SHAPES = [(1, 1, 1), (3, 33, 7), (17, 257, 48), (64, 1023, 24)]


def _i8_extremes(profile: str) -> Iterator[Case]:
    for va, vb in ((-128, -128), (-128, 127), (127, 127), (0, -128)):
        # K = 131200 with -128 x -128 sums past 2^31: the int32 result must wrap, not saturate (a GEMV
        # of two columns, milliseconds, so the quick profile has it too)
        for m, k, n in [(1, 4096, 16), (17, 33, 7)] + ([(1, 131200, 2)] if (va, vb) == (-128, -128) else []):
            yield Case(f"a{va}_b{vb}_{_mkn(m, k, n)}", "extremes",
                       {"a": np.full((m, k), va, np.int8), "b": np.full((n, k), vb, np.int8)})


def _i8_tails(profile: str) -> Iterator[Case]:
    m, k, n = 17, 257, 33
    r = _rng("int8 tails")
    full = lambda shape: r.integers(-128, 128, shape, dtype=np.int8)  # noqa: E731
    a, b = np.zeros((m, k), np.int8), np.zeros((n, k), np.int8)
    ak, bk = a.copy(), b.copy()
    ak[:, -1], bk[:, -1] = full(m), full(n)
    yield Case(f"tail_k_{_mkn(m, k, n)}", "tail_k", {"a": ak, "b": bk})
    am = a.copy()
    am[-1] = full(k)
    yield Case(f"tail_m_{_mkn(m, k, n)}", "tail_m", {"a": am, "b": full((n, k))})
    bn = b.copy()
    bn[-1] = full(k)
    yield Case(f"tail_n_{_mkn(m, k, n)}", "tail_n", {"a": full((m, k)), "b": bn})


def _i8_random(profile: str) -> Iterator[Case]:
    r = _rng("int8 random")
    shapes = _I8_SHAPES + ([(129, 2048, 65)] if profile == "full" else [])
    for m, k, n in shapes:
        yield Case(_mkn(m, k, n), "random", {"a": r.integers(-128, 128, (m, k), dtype=np.int8),
                                              "b": r.integers(-128, 128, (n, k), dtype=np.int8)})


def _i8_layout_case(m: int, equal_rows: bool) -> Case:
    r = _rng(f"int8 layout {m} {equal_rows}")
    k, n = 66, 9
    a = r.integers(-128, 128, (1 if equal_rows else m, k), dtype=np.int8)
    return Case(_mkn(m, k, n) + ("_equal_rows" if equal_rows else ""), "layout", {"a": np.repeat(a, m, 0) if equal_rows else a,
                                          "b": r.integers(-128, 128, (n, k), dtype=np.int8)})


# ---- float activations x int8 per-channel weights -> float --------------------------------------

def _w8(shape: tuple[int, int], r: np.random.Generator) -> np.ndarray:
    return r.integers(-127, 128, shape, dtype=np.int8)


def _scales(n: int, dt: np.dtype, r: np.random.Generator) -> np.ndarray:
    return (r.uniform(0.5, 2.0, n) / 127).astype(dt)


def _f_random(dtype: str, profile: str) -> Iterator[Case]:
    dt, r = _FLOAT[dtype], _rng(f"w8 random {dtype}")
    for m, k, n in [(1, 64, 8), (3, 40, 7), (17, 256, 33)] + ([(64, 4096, 48)] if profile == "full" else []):
        yield Case(f"{dtype}_{_mkn(m, k, n)}", "random",
                   {"x": r.standard_normal((m, k)).astype(dt), "w": _w8((n, k), r), "scales": _scales(n, dt, r)})


def _ones_w(n: int, k: int, dt: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    return np.ones((n, k), np.int8), np.ones(n, dt)


def _f_absorption(dtype: str, profile: str) -> Iterator[Case]:
    """2048 then K - 1 ones: exact in fp32, and each one rounds away in an fp16 (ulp 2 at 2048) or a bf16
    partial sum; the sum 2048 + K - 1 is an output value far from 2048 in every dtype."""
    dt = _FLOAT[dtype]
    for m, k, n in [(1, 512, 8), (4, 256, 16)]:
        x = np.ones((m, k), np.float32)
        x[:, 0] = 2048
        w, s = _ones_w(n, k, dt)
        yield Case(f"{dtype}_{_mkn(m, k, n)}", "absorption", {"x": x.astype(dt), "w": w, "scales": s})


def _f_ties(dtype: str, profile: str) -> Iterator[Case]:
    """Unit weights and x = [1, t, 0, ...]: the exact sum 1 + t lies halfway between two outputs of p
    explicit bits. Row 0 (t = 2^-(p+1)) rounds down to even, where rounding half away from zero goes
    up; row 1 (t = 3 * 2^-(p+1)) rounds up to even, where truncation goes down."""
    if dtype not in _MANTISSA:
        return
    dt, p = _FLOAT[dtype], _MANTISSA[dtype]
    m, k, n = 2, 32, 16
    x = np.zeros((m, k), np.float32)
    x[:, 0] = 1.0
    x[0, 1], x[1, 1] = 2.0 ** -(p + 1), 3 * 2.0 ** -(p + 1)
    w, s = _ones_w(n, k, dt)
    yield Case(f"{dtype}_{_mkn(m, k, n)}", "ties", {"x": x.astype(dt), "w": w, "scales": s})


def _f_subnormal(dtype: str, profile: str) -> Iterator[Case]:
    """Four subnormal activations a row (1..3 times a subnormal unit; the rest zero) times unit
    weights: every product, partial sum and output stays below the smallest normal of the
    activation dtype (for bf16 and fp32 also of fp32), so a flush-to-zero anywhere gives 0."""
    dt, r = _FLOAT[dtype], _rng(f"w8 subnormal {dtype}")
    unit = {"fp32": 2.0 ** -140, "bf16": 2.0 ** -133, "fp16": 2.0 ** -22}[dtype]
    m, k, n = 3, 64, 8
    x = np.zeros((m, k), np.float32)
    for row in x:
        row[r.choice(k, 4, replace=False)] = r.integers(1, 4, 4) * unit
    w, s = _ones_w(n, k, dt)
    yield Case(f"{dtype}_{_mkn(m, k, n)}", "subnormal", {"x": x.astype(dt), "w": w, "scales": s})


def _f_nonfinite(dtype: str, profile: str) -> Iterator[Case]:
    """NaN in row 0 and +Inf in row 1 (unit weights, so no Inf * 0): those rows are NaN and +Inf."""
    dt, r = _FLOAT[dtype], _rng(f"w8 nonfinite {dtype}")
    m, k, n = 3, 64, 8
    x = r.standard_normal((m, k)).astype(np.float32)
    x[0, 5], x[1, 9] = np.nan, np.inf
    w, s = _ones_w(n, k, dt)
    yield Case(f"{dtype}_{_mkn(m, k, n)}", "nonfinite", {"x": x.astype(dt), "w": w, "scales": s})


def _f_tails(dtype: str, profile: str) -> Iterator[Case]:
    dt, r = _FLOAT[dtype], _rng(f"w8 tails {dtype}")
    m, k, n = 17, 264, 33
    x, w, s = r.standard_normal((m, k)).astype(np.float32), _w8((n, k), r), _scales(n, dt, r)
    xk, wk = np.zeros_like(x), np.zeros_like(w)
    xk[:, -1], wk[:, -1] = x[:, -1], w[:, -1]
    yield Case(f"{dtype}_tail_k_{_mkn(m, k, n)}", "tail_k", {"x": xk.astype(dt), "w": wk, "scales": s})
    xm = np.zeros_like(x)
    xm[-1] = x[-1]
    yield Case(f"{dtype}_tail_m_{_mkn(m, k, n)}", "tail_m", {"x": xm.astype(dt), "w": w, "scales": s})
    wn = np.zeros_like(w)
    wn[-1] = w[-1]
    yield Case(f"{dtype}_tail_n_{_mkn(m, k, n)}", "tail_n", {"x": x.astype(dt), "w": wn, "scales": s})


def _f_layout_case(dtype: str, m: int, equal_rows: bool) -> Case:
    dt, r = _FLOAT[dtype], _rng(f"w8 layout {dtype} {m} {equal_rows}")
    k, n = 64, 9
    x = r.standard_normal((1 if equal_rows else m, k)).astype(dt)
    return Case(f"{dtype}_{_mkn(m, k, n)}" + ("_equal_rows" if equal_rows else ""), "layout",
                {"x": np.repeat(x, m, 0) if equal_rows else x,
                                                       "w": _w8((n, k), r), "scales": _scales(n, dt, r)})


# signature -> family -> generator(dtype, profile); int8_gemm ignores dtype
FAMILIES: dict[str, dict[str, Callable[[str, str], Iterator[Case]]]] = {
    "int8_gemm": {"extremes": lambda d, p: _i8_extremes(p), "tails": lambda d, p: _i8_tails(p),
                  "random": lambda d, p: _i8_random(p)},
    "w8_float": {"random": _f_random, "absorption": _f_absorption, "ties": _f_ties, "subnormal": _f_subnormal,
                 "nonfinite": _f_nonfinite, "tails": _f_tails},
}

LAYOUT_CASES: dict[str, Callable[[str, int, bool], Case]] = {
    "int8_gemm": lambda d, m, eq: _i8_layout_case(m, eq),
    "w8_float": _f_layout_case,
}


def cases(signature: str, dtypes: tuple[str, ...], profile: str) -> list[Case]:
    """Every family's cases for a signature, for each activation dtype (one pass for integer ones)."""
    out = []
    for family, gen in FAMILIES[signature].items():
        for d in dtypes or ("",):
            out += list(gen(d, profile))
    return out


def layout_case(signature: str, dtype: str, layout: str) -> Case:
    """The case a layout is judged on: M = 1 for a batch row, equal rows for a broadcast."""
    m = 1 if layout == "batch_row" else 5
    return LAYOUT_CASES[signature](dtype, m, layout == "broadcast")
