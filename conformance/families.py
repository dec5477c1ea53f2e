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
- nonfinite: NaN and Inf in one activation row each, which a float path must carry to every output
  of that row (a kernel that quantizes its activations gives what its modelled quantizer makes of them);
- random: full-range draws over GEMV to batch shapes with K tails.
Grouped 4-bit weights add: zero_points (codes and zero points at 0 and 15), scales (fp16
subnormal and large group scales), k_boundary (K one off a whole number of groups, where the
kernel claims partial groups), and tails whose K tail is the last group. uint8 affine activations
(u8_affine) add zero_points (the activation's zero point at 0, 127, 128 and 255), and a bias in ties
that sets a fused multiply-add apart from the product rounded, then the bias added. Requantized uint8 outputs
(u8_requant) add weight zero points per column (in zero_points), outputs saturated at 0 and 255 (only in
extremes) and requantized values on exact halves (ties).
Every family is a pure function of its name, the space point and the profile (seeded by name), so each level of
a run and each machine judges the same bytes.
"""
from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass, field
from typing import Callable, Iterator

import ml_dtypes
import numpy as np

from kernels.registry import get as kernel_info
from kernels.spec import KernelSpec
from oracle.gemm import semantics

__all__ = ["Case", "Space", "FAMILIES", "cases", "spaces", "largest_random", "layout_case"]

_FLOAT = {"fp32": np.dtype(np.float32), "fp16": np.dtype(np.float16), "bf16": np.dtype(ml_dtypes.bfloat16)}
_MANTISSA = {"fp16": 10, "bf16": 7}  # explicit significand bits of the output dtype (the tie position)


@dataclass(frozen=True)
class Space:
    """One point of a spec's claimed parameter space that cases are drawn for: the activation dtype
    (float signatures), the group size and whether K may end inside a group (grouped weights)."""

    dtype: str = ""
    group: int = 0
    k_tail: bool = False
    n_multiple: int = 1  # the kernel's declared N granularity (kernels.registry.Space)

    def n(self, n: int) -> int:
        """`n` rounded up to the kernel's N granularity: odd N where the kernel takes any."""
        return -(-n // self.n_multiple) * self.n_multiple


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
        ops = self.operands
        act = ops["a"] if "a" in ops else ops["x"]
        wt = next(ops[r] for r in ("b", "w", "codes") if r in ops)
        return (act.shape[0], act.shape[1], wt.shape[0])


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(name.encode()))


def _mkn(m: int, k: int, n: int) -> str:
    return f"m{m}k{k}n{n}"


# ---- int8 x int8 -> int32 -------------------------------------------------------------------

_I8_SHAPES = [(1, 1, 1), (3, 33, 7), (17, 257, 48), (64, 1023, 24)]


def _i8_extremes(profile: str) -> Iterator[Case]:
    for va, vb in ((-128, -128), (-128, 127), (127, 127), (0, -128)):
        # K = 131584 (514 x 256) with -128 x -128 sums past 2^31: the int32 result must wrap, not saturate
        # (a GEMV of two columns, milliseconds natively, so the quick profile has it too; a K that 256
        # divides lets an interpreted Triton GEMM take 256-wide steps)
        for m, k, n in [(1, 4096, 16), (17, 33, 7)] + ([(1, 131584, 2)] if (va, vb) == (-128, -128) else []):
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


def _i8_layout_case(m: int, equal_rows: bool, k: int = 66) -> Case:
    r = _rng(f"int8 layout {m} {equal_rows}")
    n = 9
    a = r.integers(-128, 128, (1 if equal_rows else m, k), dtype=np.int8)
    return Case(_mkn(m, k, n) + ("_equal_rows" if equal_rows else ""), "layout", {"a": np.repeat(a, m, 0) if equal_rows else a,
                                          "b": r.integers(-128, 128, (n, k), dtype=np.int8)})


# ---- int8 x int8 -> int32, scaled per row -> float32 ----------------------------------------------
# The int8_gemm operands (the int32 wrap included: the contract is an int32 sum, then the scale) with
# row scales added; an even-K random case and exact ties of the product.

def _row_scales(name: str, m: int) -> np.ndarray:
    """m * 2^(e - 23) with a full 24-bit m (2^23..2^24 - 1) and e -12..-4, exact in fp32: fp32(acc) * s
    rounds for most sums, so another order or precision of the epilogue (a float64 product, a scale held in
    bf16) changes bits. Row 1 (where there is one) at the subnormal scale 3 * 2^-149, its products subnormal
    (and exact) while |acc| < 2^23 / 3: a kernel that flushes the scale or the product gives 0 there."""
    r = _rng(f"row scales {name}")
    s = r.integers(2 ** 23, 2 ** 24, m) * 2.0 ** (r.integers(-12, -3, m) - 23)
    if m > 1:
        s[1] = 3 * 2.0 ** -149
    return s.astype(np.float32)


def _row_scaled(gen: Callable[[str], Iterator[Case]]) -> Callable[[Space, str], Iterator[Case]]:
    """An int8_gemm family's cases, each with row scales for its M rows."""
    def scaled(sp: Space, profile: str) -> Iterator[Case]:
        for c in gen(profile):
            yield Case(c.id, c.family, {**c.operands, "row_scales": _row_scales(c.id, c.operands["a"].shape[0])})
    return scaled


def _rs_random(profile: str) -> Iterator[Case]:
    """int8 random, and K = 48: even but not a multiple of a K block of 32 or 128, so a kernel that skips
    the K mask whenever K is even reads past the end of each row."""
    yield from _i8_random(profile)
    r = _rng("int8 row-scaled even k")
    m, k, n = 3, 48, 8
    yield Case(_mkn(m, k, n), "random", {"a": r.integers(-128, 128, (m, k), dtype=np.int8),
                                          "b": r.integers(-128, 128, (n, k), dtype=np.int8)})


def _rs_ties(profile: str) -> Iterator[Case]:
    """a[:, 0] = 3 and b[:, 0] = 2^j (j 0..6) and -128, zeros elsewhere: every acc is 1.5 * 2^e, and
    fp32(acc) * s is exactly halfway between two fp32 values: 1.5 ulps above acc for s = 1 + 2^-23 (row 0:
    round to nearest even goes up, truncation down), 4.5 ulps for s = 1 + 3 * 2^-23 (row 1: nearest even
    goes down, rounding half away from zero up). K is odd (33), as the tails' and random's K mostly are."""
    m, k, n = 2, 33, 8
    a, b = np.zeros((m, k), np.int8), np.zeros((n, k), np.int8)
    a[:, 0] = 3
    b[:, 0] = [1, 2, 4, 8, 16, 32, 64, -128]
    s = np.array([1 + 2.0 ** -23, 1 + 3 * 2.0 ** -23], np.float32)
    yield Case(_mkn(m, k, n), "ties", {"a": a, "b": b, "row_scales": s})


def _rs_layout_case(m: int, equal_rows: bool) -> Case:
    """int8_gemm's layout operands at an odd K (65; its 66 is an even K tail, the random family's K = 48
    case's business), with row scales."""
    c = _i8_layout_case(m, equal_rows, k=65)
    return Case(c.id, c.family, {**c.operands, "row_scales": _row_scales(c.id, m)})


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


# ---- float activations x 4-bit group-wise weights -> float ---------------------------------------

def _w4_case(cid: str, family: str, sp: Space, x: np.ndarray, codes: np.ndarray, scales: np.ndarray,
             zp: np.ndarray, sym: bool) -> Case:
    """A w4_grouped case (or w4_sym's, whose zero points are all 8)."""
    ops = {"x": x.astype(_FLOAT[sp.dtype]), "codes": codes.astype(np.uint8), "scales": scales.astype(np.float32),
           "group": np.array(sp.group, np.int64)}
    if not sym:
        ops["zp"] = zp.astype(np.uint8)
    return Case(f"{sp.dtype}_g{sp.group}_{cid}", family, ops)


def _w4_draw(sp: Space, m: int, k: int, n: int, r: np.random.Generator, sym: bool):
    """Normal activations, codes 0..15, zero points 1..14 (8 for sym; the ends 0 and 15 are the
    zero_points family's) and scales m * 2^e (m 1..15, e -9..-4): every scale and every tinygemm
    float zero (8 - zp) * s is exact in fp16 and bf16."""
    groups = -(-k // sp.group)
    zp = np.full((n, groups), 8) if sym else r.integers(1, 15, (n, groups))
    scales = r.integers(1, 16, (n, groups)) * 2.0 ** r.integers(-9, -3, (n, groups))
    return r.standard_normal((m, k)), r.integers(0, 16, (n, k)), scales, zp


def _w4_unit(sp: Space, m: int, k: int, n: int, sym: bool):
    """Unit weights (codes = zp + 1, zero points 1..14, scale 1) and zero activations, for the
    crafted families."""
    groups = -(-k // sp.group)
    zp = np.full((n, groups), 8) if sym else np.tile(np.arange(groups) % 14 + 1, (n, 1))
    codes = np.repeat(zp, sp.group, axis=1)[:, :k] + 1
    return np.zeros((m, k)), codes, np.ones((n, groups)), zp


def _w4_shapes(sp: Space, profile: str) -> list[tuple[int, int, int]]:
    g = sp.group
    return [(1, 2 * g, sp.n(17)), (5, 3 * g, sp.n(33))] + ([(33, 8 * g, sp.n(48))] if profile == "full" else [])


def _w4_random(sp: Space, profile: str, sym: bool) -> Iterator[Case]:
    r = _rng(f"w4 random {sp} {sym}")
    for m, k, n in _w4_shapes(sp, profile):
        yield _w4_case(_mkn(m, k, n), "random", sp, *_w4_draw(sp, m, k, n, r, sym), sym)


def _w4_k_boundary(sp: Space, profile: str, sym: bool) -> Iterator[Case]:
    """K one short of and two past a whole number of groups (for kernels that take a partial last
    group; the odd K also half-fills its last byte of nibbles): the weights carry signal only in
    the last groups, so a kernel that drops, pads wrongly or misindexes the partial group is off
    by whole products, far outside the bound."""
    if not sp.k_tail:
        return
    r = _rng(f"w4 k boundary {sp} {sym}")
    for k in (2 * sp.group - 1, 2 * sp.group + 2):
        m, n = 3, 16
        x, codes, scales, zp = _w4_draw(sp, m, k, n, r, sym)
        codes[:, :max(0, k - sp.group - 1)] = np.repeat(zp, sp.group, axis=1)[:, :max(0, k - sp.group - 1)]
        yield _w4_case(_mkn(m, k, n), "k_boundary", sp, x, codes, scales, zp, sym)


def _w4_zero_points(sp: Space, profile: str, sym: bool) -> Iterator[Case]:
    """Codes and zero points at the ends of 0..15 (w = +-15 s, or -8 s and 7 s symmetric): a kernel
    that stores the zero point off by the +8 shift, sign-extends a nibble or clamps the difference
    is off by whole multiples of the scale."""
    r = _rng(f"w4 zero points {sp} {sym}")
    m, k, n = 3, 2 * sp.group, 16
    x, _, scales, _ = _w4_draw(sp, m, k, n, r, sym)
    codes = 15 * r.integers(0, 2, (n, k))
    zp = np.full(scales.shape, 8) if sym else 15 * (np.indices(scales.shape).sum(axis=0) % 2)
    yield _w4_case(_mkn(m, k, n), "zero_points", sp, x, codes, scales, zp, sym)


def _w4_scales(sp: Space, profile: str, sym: bool) -> Iterator[Case]:
    """Group scales at the small and large ends: fp16 subnormals (m * 2^-24, which a kernel that
    converts scales with flush-to-zero turns to 0) and m * 2^8 with activations scaled by 2^-8 so
    that outputs stay inside fp16's range."""
    r = _rng(f"w4 scales {sp} {sym}")
    m, k, n = 3, 2 * sp.group, 16
    for name, exp, xs in (("tiny", -24, 1.0), ("huge", 8, 2.0 ** -8)):
        x, codes, scales, zp = _w4_draw(sp, m, k, n, r, sym)
        scales = r.integers(1, 16, scales.shape) * 2.0 ** exp
        yield _w4_case(f"{name}_{_mkn(m, k, n)}", "scales", sp, x * xs, codes, scales, zp, sym)


def _w4_tails(sp: Space, profile: str, sym: bool) -> Iterator[Case]:
    """All the weights' signal in the last group of K, the last output column, and all the
    activations' in the last row: a kernel that drops the tail returns zeros there."""
    r = _rng(f"w4 tails {sp} {sym}")
    m, k, n = 9, 3 * sp.group, sp.n(33)
    x, codes, scales, zp = _w4_draw(sp, m, k, n, r, sym)
    neutral = np.repeat(zp, sp.group, axis=1)[:, :k]  # codes equal to their zero point: w = 0
    ck = neutral.copy()
    ck[:, -sp.group:] = codes[:, -sp.group:]
    yield _w4_case(f"tail_k_{_mkn(m, k, n)}", "tail_k", sp, x, ck, scales, zp, sym)
    cn = neutral.copy()
    cn[-1] = codes[-1]
    yield _w4_case(f"tail_n_{_mkn(m, k, n)}", "tail_n", sp, x, cn, scales, zp, sym)
    xm = np.zeros_like(x)
    xm[-1] = x[-1]
    yield _w4_case(f"tail_m_{_mkn(m, k, n)}", "tail_m", sp, xm, codes, scales, zp, sym)


def _w4_absorption(sp: Space, profile: str, sym: bool) -> Iterator[Case]:
    """2048 at k = 0 and a 1 at every k = 32 j against unit weights: fp32 holds 2048 + K / 32 - 1
    exactly, while a running total kept in fp16 or bf16 (per element, per lane or per 32-block)
    rounds each 2048 + 1 back to 2048 and ends more than half an output ulp away."""
    m, k, n = 2, max(512, 2 * sp.group), 16
    x, codes, scales, zp = _w4_unit(sp, m, k, n, sym)
    x[:, ::32] = 1
    x[:, 0] = 2048
    yield _w4_case(_mkn(m, k, n), "absorption", sp, x, codes, scales, zp, sym)


def _w4_ties(sp: Space, profile: str, sym: bool) -> Iterator[Case]:
    """x = [1, t, 0, ...] against unit weights: 1 + t halfway between two outputs (see _f_ties)."""
    if sp.dtype not in _MANTISSA:
        return
    p = _MANTISSA[sp.dtype]
    m, k, n = 2, sp.group, 16
    x, codes, scales, zp = _w4_unit(sp, m, k, n, sym)
    x[:, 0] = 1.0
    x[0, 1], x[1, 1] = 2.0 ** -(p + 1), 3 * 2.0 ** -(p + 1)
    yield _w4_case(_mkn(m, k, n), "ties", sp, x, codes, scales, zp, sym)


def _w4_subnormal(sp: Space, profile: str, sym: bool) -> Iterator[Case]:
    """Subnormal activations (see _f_subnormal) against unit weights: a flush gives 0."""
    r = _rng(f"w4 subnormal {sp} {sym}")
    unit = {"fp32": 2.0 ** -140, "bf16": 2.0 ** -133, "fp16": 2.0 ** -22}[sp.dtype]
    m, k, n = 3, 2 * sp.group, 16
    x, codes, scales, zp = _w4_unit(sp, m, k, n, sym)
    for row in x:
        row[r.choice(k, 4, replace=False)] = r.integers(1, 4, 4) * unit
    yield _w4_case(_mkn(m, k, n), "subnormal", sp, x, codes, scales, zp, sym)


def _w4_nonfinite(sp: Space, profile: str, sym: bool) -> Iterator[Case]:
    """NaN in row 0 and +Inf in row 1 against unit weights: NaN and +Inf rows through a float path."""
    r = _rng(f"w4 nonfinite {sp} {sym}")
    m, k, n = 3, 2 * sp.group, 16
    _, codes, scales, zp = _w4_unit(sp, m, k, n, sym)
    x = r.standard_normal((m, k))
    x[0, 5], x[1, 9] = np.nan, np.inf
    yield _w4_case(_mkn(m, k, n), "nonfinite", sp, x, codes, scales, zp, sym)


def _w4_layout_case(sp: Space, m: int, equal_rows: bool, sym: bool) -> Case:
    r = _rng(f"w4 layout {sp} {m} {equal_rows} {sym}")
    k, n = 2 * sp.group, 16
    x, codes, scales, zp = _w4_draw(sp, 1 if equal_rows else m, k, n, r, sym)
    return _w4_case(_mkn(m, k, n) + ("_equal_rows" if equal_rows else ""), "layout", sp,
                    np.repeat(x, m, 0) if equal_rows else x, codes, scales, zp, sym)


_W4 = {"random": _w4_random, "k_boundary": _w4_k_boundary, "zero_points": _w4_zero_points, "scales": _w4_scales,
       "tails": _w4_tails, "absorption": _w4_absorption, "ties": _w4_ties, "subnormal": _w4_subnormal,
       "nonfinite": _w4_nonfinite}


def _w4(sym: bool) -> dict[str, Callable[[Space, str], Iterator[Case]]]:
    return {name: (lambda g: lambda sp, p: g(sp, p, sym))(gen) for name, gen in _W4.items()}


# ---- uint8 affine activations x int8 per-channel weights -> float32 ------------------------------------
# Each family keeps to its own ground, so the mistake it targets shows there alone: zero points 1..127 outside
# zero_points (the upper half, where a u8 zero point read as s8 turns negative, is its own), a zero bias outside
# ties (a fused multiply-add or a misplaced bias shows there alone), per-channel scales that differ across more
# than 16 columns only in random, sums past 2^24 only in extremes, subnormal scales only in subnormal.

_UA_SHAPES = [(1, 255, 17), (3, 65, 9), (17, 257, 33), (64, 1023, 24)]


def _ua_case(cid: str, family: str, a: np.ndarray, zp: int, b: np.ndarray, a_scale: float, b_scales: np.ndarray,
             bias: np.ndarray | None = None) -> Case:
    """A u8_affine case (bias 0 where none is given)."""
    n = len(b_scales)
    return Case(cid, family, {"a": np.asarray(a, np.uint8), "a_scale": np.array(a_scale, np.float32),
                              "a_zp": np.array(zp, np.uint8), "b": np.asarray(b, np.int8),
                              "b_scales": np.asarray(b_scales, np.float32),
                              "bias": np.zeros(n, np.float32) if bias is None else np.asarray(bias, np.float32)})


def _ua_scales(r: np.random.Generator, n: int) -> np.ndarray:
    """m * 2^(e - 23) with a full 24-bit m and e -12..-5: fp32(a_scale * b_scales[n]) rounds, so the order of the
    epilogue's products shows in the output's bits."""
    return (r.integers(2 ** 23, 2 ** 24, n) * 2.0 ** (r.integers(-12, -4, n) - 23)).astype(np.float32)


def _ua_draw(r: np.random.Generator, m: int, k: int, n: int) -> tuple:
    """Full-range codes and weights, a zero point in 1..127, a_scale and per-channel b_scales."""
    return (r.integers(0, 256, (m, k)), int(r.integers(1, 128)), r.integers(-128, 128, (n, k)), _ua_scales(r, 1)[0],
            _ua_scales(r, n))


def _ua_random(profile: str) -> Iterator[Case]:
    """GEMV to batch, odd K and N, N past 16 with a scale of its own per column."""
    r = _rng("u8 affine random")
    for m, k, n in _UA_SHAPES + ([(129, 2048, 65)] if profile == "full" else []):
        yield _ua_case(_mkn(m, k, n), "random", *_ua_draw(r, m, k, n))


def _ua_extremes(profile: str) -> Iterator[Case]:
    """Codes at 255 (every other row 0) against weights at 127 and -128, zero point 0: the largest products,
    which saturate the int16 pair sums of a u8 x s8 kernel without VNNI; and a GEMV of K = 65473 whose sum of
    255 * 127 (2120343105, or 1072692897 as int16 pairs) stays inside int32 (whose wrap VNNI's saturating
    vpdpbusds does not share) but needs more than 24 bits: its conversion to fp32 rounds up, where truncation
    goes down."""
    r = _rng("u8 affine extremes")
    for vb in (127, -128):
        for m, k, n in [(1, 4096, 16), (17, 33, 7)] + ([(1, 65473, 2)] if vb == 127 else []):
            a = np.full((m, k), 255)
            a[1::2] = 0
            yield _ua_case(f"b{vb}_{_mkn(m, k, n)}", "extremes", a, 0, np.full((n, k), vb), _ua_scales(r, 1)[0],
                           _ua_scales(r, n))


def _ua_zero_points(profile: str) -> Iterator[Case]:
    """The zero point at both ends and either side of 128 over full-range codes, two rows alternating 0 and 255
    (a - zp from -255 to 255, no row all at the zero point): a zero point read as s8, clamped or dropped is off by
    multiples of the column sums."""
    r = _rng("u8 affine zero points")
    m, k, n = 4, 65, 16
    for zp in (0, 127, 128, 255):
        a, _, b, sa, sb = _ua_draw(r, m, k, n)
        a[0], a[1] = 255 * (np.arange(k) % 2), 255 * (1 - np.arange(k) % 2)
        yield _ua_case(f"zp{zp}_{_mkn(m, k, n)}", "zero_points", a, zp, b, sa, sb)


def _ua_tails(profile: str) -> Iterator[Case]:
    """All the signal in the last k, the last row, the last column (codes at the zero point or zero weights
    elsewhere; full-range weights against codes at the zero point must cancel exactly): a kernel that drops a
    tail returns zeros there. One scale for every column: a per-column scale mistake is random's."""
    r = _rng("u8 affine tails")
    m, k, n = 17, 257, 33
    a, zp, b, sa, sb = _ua_draw(r, m, k, n)
    sb = np.full(n, sb[0])
    ak = np.full_like(a, zp)
    ak[:, -1] = a[:, -1]
    yield _ua_case(f"tail_k_{_mkn(m, k, n)}", "tail_k", ak, zp, b, sa, sb)
    am = np.full_like(a, zp)
    am[-1] = a[-1]
    yield _ua_case(f"tail_m_{_mkn(m, k, n)}", "tail_m", am, zp, b, sa, sb)
    bn = np.zeros_like(b)
    bn[-1] = b[-1]
    yield _ua_case(f"tail_n_{_mkn(m, k, n)}", "tail_n", a, zp, bn, sa, sb)


def _ua_ties(profile: str) -> Iterator[Case]:
    """a - zp = 3, -3, 0 (rows 0..2) at k = 0 and 0 elsewhere, b[:, 0] = 2^j (j 0..6) and -128 beside full-range
    weights, a_scale 2^-4 and b_scales (1 + 2^-23) 2^-10 and (1 + 3 * 2^-23) 2^-10 in turn: every scale product
    is exact and each acc * a_scale * b_scales[n] (acc = +-1.5 * 2^e) lies halfway between two fp32 values in
    every order of the products, 1.5 ulps above the acc's (nearest even goes up, truncation down) or 4.5 (nearest
    even goes down, half away from zero up). bias[n] is minus the fp32 value just below row 0's product: the
    rounded product plus the bias is 0 or one ulp, a fused multiply-add gives half an ulp; row 2 gives the bias."""
    r = _rng("u8 affine ties")
    m, k, n, zp = 3, 33, 8, 3
    a = np.full((m, k), zp)
    a[0, 0], a[1, 0] = zp + 3, zp - 3
    b = r.integers(-128, 128, (n, k))
    b[:, 0] = [1, 2, 4, 8, 16, 32, 64, -128]
    sa = 2.0 ** -4
    sb = np.where(np.arange(n) % 2, 1 + 3 * 2.0 ** -23, 1 + 2.0 ** -23) * 2.0 ** -10
    exact = 3 * b[:, 0] * sa * sb  # row 0's products, exact in float64
    near = exact.astype(np.float32)
    below = np.where(near > exact, np.nextafter(near, np.float32(-np.inf)), near)
    yield _ua_case(_mkn(m, k, n), "ties", a, zp, b, sa, sb, -below)


def _ua_subnormal(profile: str) -> Iterator[Case]:
    """Multipliers a_scale * b_scales[n] below fp32's smallest normal, from a subnormal a_scale, subnormal
    b_scales, or two normal scales (2^-70 and m 2^-70); codes within 2 of the zero point and weights within 3 keep
    |acc| <= 384, so every output is an exact subnormal (or 0 where acc is): a kernel that flushes a scale (DAZ)
    or a product (FTZ) gives 0."""
    r = _rng("u8 affine subnormal")
    m, k, n = 3, 64, 8
    zp = int(r.integers(2, 126))
    units = r.integers(1, 16, n)
    for name, sa, sb in (("scale_a", 3 * 2.0 ** -140, units * 2.0 ** -4), ("scale_b", 2.0 ** -4, units * 2.0 ** -140),
                         ("product", 2.0 ** -70, units * 2.0 ** -70)):
        a, b = zp + r.integers(-2, 3, (m, k)), r.integers(-3, 4, (n, k))
        yield _ua_case(f"{name}_{_mkn(m, k, n)}", "subnormal", a, zp, b, sa, sb)


def _ua_layout_case(m: int, equal_rows: bool) -> Case:
    """Full-range draws at an even K (66) and N = 9 (one scale a column, below random's 16)."""
    r = _rng(f"u8 affine layout {m} {equal_rows}")
    k, n = 66, 9
    a, zp, b, sa, sb = _ua_draw(r, 1 if equal_rows else m, k, n)
    return _ua_case(_mkn(m, k, n) + ("_equal_rows" if equal_rows else ""), "layout",
                    np.repeat(a, m, 0) if equal_rows else a, zp, b, sa, sb)


# ---- uint8 affine activations x int8 per-channel weights -> uint8 requantized ----------------------------------
# u8_affine's operands without the bias, with per-channel weight zero points and the output's y_scale and y_zp. Each
# family keeps to its own ground: outputs at 0 or 255 only in extremes (y_scale elsewhere keeps every output at least
# ten steps inside the range), zero points past 127 and nonzero weight zero points only in zero_points, per-channel
# scales that differ across more than 16 columns only in random, outputs on exact halves only in ties.

_UQ_REACH = 110  # elsewhere than extremes, the largest |acc * scale| in output steps (y_zp within 118..137)


def _uq_case(cid: str, family: str, a: np.ndarray, zp: int, b: np.ndarray, a_scale: float, b_scales: np.ndarray,
             y_scale: float, y_zp: int, b_zp: np.ndarray | None = None) -> Case:
    """A u8_requant case (weight zero points 0 where none are given)."""
    c = _ua_case(cid, family, a, zp, b, a_scale, b_scales)
    ops = {k: v for k, v in c.operands.items() if k != "bias"}
    return Case(cid, family, {**ops, "b_zp": np.zeros(len(b_scales), np.int8) if b_zp is None else
                              np.asarray(b_zp, np.int8), "y_scale": np.array(y_scale, np.float32),
                              "y_zp": np.array(y_zp, np.uint8)})


def _uq_y_scale(a: np.ndarray, zp: int, b: np.ndarray, a_scale: float, b_scales: np.ndarray,
                b_zp: np.ndarray | None = None, reach: float = _UQ_REACH) -> float:
    """The y_scale that puts the largest |acc| * a_scale * b_scales[n] `reach` output steps from the zero point,
    acc as either integer model of oracle.gemm.mlas_int8 forms it (exact, or u8 x s8 int16 pairs), so no output
    saturates whichever the host computes."""
    from oracle.gemm.mlas_int8 import MODELS, accumulator

    zb = 0 if b_zp is None else np.asarray(b_zp, np.int64)
    bk = np.asarray(b, np.int8).T
    accs = [np.abs(accumulator(np.asarray(a, np.uint8), zp, bk, zb, m).astype(np.float64)) for m in MODELS]
    big = max(float((acc * np.float64(a_scale) * np.asarray(b_scales, np.float64)[None, :]).max()) for acc in accs)
    return float(np.float32(max(big, 1e-30) / reach))


def _uq_from_ua(c: Case, y_zp: int, b_zp: np.ndarray | None = None) -> Case:
    """A u8_affine case without its bias, with weight zero points, a y_scale of its own (`_uq_y_scale`) and y_zp."""
    o = c.operands
    za = int(o["a_zp"])
    sy = _uq_y_scale(o["a"], za, o["b"], o["a_scale"], o["b_scales"], b_zp)
    return _uq_case(c.id, c.family, o["a"], za, o["b"], o["a_scale"], o["b_scales"], sy, y_zp, b_zp)


def _uq_draw(r: np.random.Generator, m: int, k: int, n: int) -> tuple:
    """u8_affine's draw with a y_scale that keeps every output inside the range and y_zp in 118..137."""
    a, zp, b, sa, sb = _ua_draw(r, m, k, n)
    return a, zp, b, sa, sb, _uq_y_scale(a, zp, b, sa, sb), int(r.integers(118, 138))


def _uq_random(profile: str) -> Iterator[Case]:
    """GEMV to batch, odd K and N, N past 16 with a scale of its own per column."""
    r = _rng("u8 requant random")
    for m, k, n in _UA_SHAPES + ([(129, 2048, 65)] if profile == "full" else []):
        yield _uq_case(_mkn(m, k, n), "random", *_uq_draw(r, m, k, n))


def _uq_extremes(profile: str) -> Iterator[Case]:
    """u8_affine's extremes (codes 255 in every other row, zero point 0, weights all 127 or all -128: saturated int16
    pairs, and a K = 65473 GEMV whose sum needs more than 24 bits) with per-column scales spread from an eighth to
    eight times the multiplier that takes the larger model's sum to the end of the range: the upper columns saturate
    at 255 (weights 127) or 0 (-128) in either model, the lower ones land inside, and rows of zero codes give y_zp."""
    r = _rng("u8 requant extremes")
    for c in _ua_extremes(profile):
        ops = c.operands
        n = len(ops["b_scales"])
        yz = int(r.integers(118, 138))
        sb = ops["b_scales"][0] * 2.0 ** np.linspace(-3, 3, n)
        sy = _uq_y_scale(ops["a"], 0, ops["b"], ops["a_scale"], np.full(n, ops["b_scales"][0]), reach=128)
        yield _uq_case(c.id, "extremes", ops["a"], 0, ops["b"], ops["a_scale"], sb, sy, yz)


def _uq_zero_points(profile: str) -> Iterator[Case]:
    """u8_affine's zero points (0, 127, 128, 255 over rows alternating 0 and 255), and one case of weight zero points
    per column across the whole s8 range (-128 and 127 among them): a zero point read as s8, clamped, dropped or
    taken per tensor is off by multiples of the row or column sums."""
    r = _rng("u8 requant zero points")
    for c in _ua_zero_points(profile):
        zb = r.integers(-128, 128, len(c.operands["b_scales"])) if int(c.operands["a_zp"]) == 127 else None
        if zb is not None:
            zb[:2] = -128, 127
            c = Case(c.id + "_zbcol", c.family, c.operands)
        yield _uq_from_ua(c, int(r.integers(118, 138)), zb)


def _uq_tails(profile: str) -> Iterator[Case]:
    """u8_affine's tails (the signal in the last k, row or column alone), each with a y_scale of its own."""
    r = _rng("u8 requant tails")
    for c in _ua_tails(profile):
        yield _uq_from_ua(c, int(r.integers(118, 138)))


def _uq_ties(profile: str) -> Iterator[Case]:
    """a - zp odd (+-1, +-3, +-5) at k = 0 and 0 elsewhere, b[:, 0] odd (+-1 .. +-15) beside full-range weights, a_scale
    2^-4, b_scales 2^-5 and 3 * 2^-5 in turn, y_scale 2^-8: the requantization scale is exactly 0.5 or 1.5 and every
    acc * scale an exact half (+-0.5 .. +-112.5): round half to even, truncation and half away from zero all differ."""
    r = _rng("u8 requant ties")
    m, k, n, zp = 6, 33, 16, 7
    a = np.full((m, k), zp)
    a[:, 0] = zp + np.array([1, -1, 3, -3, 5, -5])
    b = r.integers(-128, 128, (n, k))
    b[:, 0] = np.concatenate([np.arange(1, 16, 2), -np.arange(1, 16, 2)])
    sb = np.where(np.arange(n) % 2, 3 * 2.0 ** -5, 2.0 ** -5)
    yield _uq_case(_mkn(m, k, n), "ties", a, zp, b, 2.0 ** -4, sb, 2.0 ** -8, 128)


def _uq_layout_case(m: int, equal_rows: bool) -> Case:
    """u8_affine's layout operands with a y_scale of their own."""
    return _uq_from_ua(_ua_layout_case(m, equal_rows), 128)


# signature -> family -> generator(space, profile)
FAMILIES: dict[str, dict[str, Callable[[Space, str], Iterator[Case]]]] = {
    "int8_gemm": {"extremes": lambda sp, p: _i8_extremes(p), "tails": lambda sp, p: _i8_tails(p),
                  "random": lambda sp, p: _i8_random(p)},
    "w8_float": {name: (lambda g: lambda sp, p: g(sp.dtype, p))(gen) for name, gen in (
        ("random", _f_random), ("absorption", _f_absorption), ("ties", _f_ties), ("subnormal", _f_subnormal),
        ("nonfinite", _f_nonfinite), ("tails", _f_tails))},
    "w4_grouped": _w4(sym=False),
    "w4_sym": _w4(sym=True),
    "int8_row_scaled": {"extremes": _row_scaled(_i8_extremes), "tails": _row_scaled(_i8_tails),
                        "random": _row_scaled(_rs_random), "ties": lambda sp, p: _rs_ties(p)},
    "u8_affine": {name: (lambda g: lambda sp, p: g(p))(gen) for name, gen in (
        ("extremes", _ua_extremes), ("zero_points", _ua_zero_points), ("tails", _ua_tails), ("ties", _ua_ties),
        ("subnormal", _ua_subnormal), ("random", _ua_random))},
    "u8_requant": {name: (lambda sp, p, g=gen: g(p)) for name, gen in (
        ("extremes", _uq_extremes), ("zero_points", _uq_zero_points), ("tails", _uq_tails), ("ties", _uq_ties),
        ("random", _uq_random))},
}

LAYOUT_CASES: dict[str, Callable[[Space, int, bool], Case]] = {
    "int8_gemm": lambda sp, m, eq: _i8_layout_case(m, eq),
    "w8_float": lambda sp, m, eq: _f_layout_case(sp.dtype, m, eq),
    "w4_grouped": lambda sp, m, eq: _w4_layout_case(sp, m, eq, sym=False),
    "w4_sym": lambda sp, m, eq: _w4_layout_case(sp, m, eq, sym=True),
    "int8_row_scaled": lambda sp, m, eq: _rs_layout_case(m, eq),
    "u8_affine": lambda sp, m, eq: _ua_layout_case(m, eq),
    "u8_requant": lambda sp, m, eq: _uq_layout_case(m, eq),
}


def spaces(spec: KernelSpec, profile: str) -> list[Space]:
    """The points of a spec's claimed space that cases are drawn for: every dtype (a Triton spec's
    quick profile its first only: about a second a call in the CPU interpreter); every group in
    the full profile, the smallest and the largest in the quick one; N at the kernel's declared
    granularity (kernels.registry.Space)."""
    dtypes = spec.dtypes[:1] if spec.worker == "triton" and profile == "quick" else spec.dtypes
    gs = tuple(spec.groups) if profile == "full" else tuple(dict.fromkeys(spec.groups[:1] + spec.groups[-1:]))
    declared = kernel_info(spec.kernel).space
    n_multiple = declared.n_multiple if declared else 1
    return [Space(d, g, spec.k_tail, n_multiple) for d in dtypes or ("",) for g in gs or (0,)]


def largest_random(spec: KernelSpec) -> Case:
    """The largest random case of the spec's first quick-profile point: every element a long
    full-range sum (the thread test's case, and the selftest's typical call)."""
    drawn = cases(semantics.get(spec.semantics).signature, spaces(spec, "quick")[:1], "quick")
    return max((c for c in drawn if c.family == "random"), key=lambda c: np.prod(c.shape))


def cases(signature: str, points: list[Space], profile: str) -> list[Case]:
    """Every family's cases for a signature, at each point of the claimed space."""
    return [c for family, gen in FAMILIES[signature].items() for sp in points for c in gen(sp, profile)]


def layout_case(signature: str, sp: Space, layout: str) -> Case:
    """The case a layout is judged on: M = 1 for a batch row, equal rows for a broadcast."""
    m = 1 if layout == "batch_row" else 5
    return LAYOUT_CASES[signature](sp, m, layout == "broadcast")
