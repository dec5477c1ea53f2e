"""Numerics hypotheses for `qoracle fingerprint`: what a kernel's sums, casts and subnormals do.

A probe here chooses the exact terms t[m, k] a kernel sums for one output element (through its
adapter's encoder, which turns terms into weights and activations) and predicts, for each
hypothesis, what the kernel returns. Every prediction is computed in numpy from the hypothesis
alone: a sum in a named float dtype (fp32, fp16 or bf16 partial sums) in a named order, a cast
by a named rounding rule, a multiply that flushes subnormals or not. The traits:

- accumulator: absorption rows, a large term followed by many small ones and the reverse, and for
  M = 1 (GEMV fast paths) one row that reads fp32, fp16 and bf16 at once. The terms are multiples of
  2^-12 below 2, so every fp32 order sums them exactly, while an fp16/bf16 accumulator absorbs the
  small terms (sequentially), or (in any order) ends on its own grid, which the exact sum is not on.
  Integer kernels: int32 vs fp32 sums (2^24 + 1 absorbed) vs int16 saturating pairs (vpmaddubsw).
- order: terms of 8 significant bits spread over 2^-10 .. 2^10 (exact products, every order
  rounds differently) summed in fp32 sequentially, pairwise, in L lanes reduced by halving
  (AVX2/AVX512 accumulators), as numpy's pairwise_sum (the Triton interpreter's tl.sum), or exactly
  with one rounding; rows are drawn until every pair of orders differs somewhere. "fp32 any order"
  (within fp32's bound) reads a kernel whose fp32 order is none of those.
- output cast: exact sums on and beside the ties of the output dtype: RNE vs half away vs toward zero.
- epilogue (integer kernels with fp32 scales): acc*(sa*sb) vs (acc*sa)*sb vs one rounding.
- subnormals: subnormal inputs whose products are normal (DAZ reads them as 0) and normal inputs
  whose products are subnormal (FTZ writes 0): IEEE, DAZ, FTZ or both. Each design holds whether
  a kernel scales before or after the sum.

Hypotheses are `Candidate`s (kernels/fingerprints.py). One that stands for a set of outputs (any
order of fp32 sums, any order of fp16 partials) is a family: consistent with every output inside
its bound, and on its grid where it has one.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import ml_dtypes
import numpy as np

from kernels.fingerprints import Candidate, Case
from oracle.bounds import height, sum_bound

__all__ = [
    "DTYPES", "ORDERS", "CAST_MODES", "SUBNORMAL_MODES", "X_SUBNORMAL", "PRODUCT_SUBNORMAL", "Dot", "IntDot",
    "ScaledIntDot", "round_to", "round_mode", "sum_in", "absorption_terms", "gemv_absorption_terms",
    "accumulator_candidates", "accumulator_case", "order_terms", "order_case", "cast_terms", "cast_case", "subnormal_predictions",
    "subnormal_cases", "int16_pairs", "int_absorption", "int_accumulator_candidates", "int_accumulator_case",
    "scaled_accumulator_case", "epilogue_case", "scaled_subnormal_cases", "standard_cases", "REQUANT_ACC",
    "requant_pairs_case", "requant_ties_case",
]

F32 = np.float32
DTYPES = {"fp32": np.dtype(np.float32), "fp16": np.dtype(np.float16), "bf16": np.dtype(ml_dtypes.bfloat16)}
ORDERS = ("sequential", "pairwise", "lanes 4", "lanes 8", "lanes 16", "lanes 32", "numpy pairwise", "one rounding")
CAST_MODES = ("RNE", "half away", "toward zero")
SUBNORMAL_MODES = ("IEEE", "DAZ", "FTZ", "FTZ+DAZ")
SMALL = 2.0 ** -12  # a quarter ulp of fp16 at 1, a 32nd of bf16's: absorbed there, exact in fp32
TINY_NORMAL = 2.0 ** -126


# -- rounding in numpy, exactly -------------------------------------------------------------------


def _to_f32_odd(v: np.ndarray) -> np.ndarray:
    """float64 -> float32 rounded to odd (exact where representable): a later RNE to 8 bits is then
    one correct rounding (24 >= 8 + 2), which float64 -> float32 -> bf16 by RNE twice is not."""
    v = np.asarray(v, np.float64)
    with np.errstate(over="ignore"):
        f = v.astype(np.float32)
    away = np.abs(f.astype(np.float64)) > np.abs(v)
    f = np.where(away, np.nextafter(f, np.float32(0)), f).astype(np.float32)
    inexact = f.astype(np.float64) != v
    bits = f.view(np.uint32) | np.where(inexact, np.uint32(1), np.uint32(0))
    return bits.view(np.float32)


def round_to(v, dtype: str) -> np.ndarray:
    """float64 values rounded once (RNE) to `dtype`, returned as float64."""
    v = np.asarray(v, np.float64)
    with np.errstate(over="ignore"):
        if dtype == "bf16":
            return _to_f32_odd(v).astype(ml_dtypes.bfloat16).astype(np.float64)
        return v.astype(DTYPES[dtype]).astype(np.float64)


def _neighbours(v: np.ndarray, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """(the dtype value at or toward zero from v, the next one away from zero), as float64."""
    dt = DTYPES[dtype]
    r = round_to(v, dtype).astype(dt)
    zero = dt.type(0)
    low = np.where(np.abs(r.astype(np.float64)) > np.abs(v), np.nextafter(r, zero), r).astype(dt)
    away = np.where(v < 0, dt.type(-np.inf), dt.type(np.inf))
    high = np.where(low.astype(np.float64) == v, low, np.nextafter(low, away)).astype(dt)
    return low.astype(np.float64), high.astype(np.float64)


def round_mode(v, dtype: str, mode: str) -> np.ndarray:
    """v (float64) rounded to `dtype` by RNE, half away from zero, or toward zero (float64 out)."""
    v = np.asarray(v, np.float64)
    if mode == "RNE":
        return round_to(v, dtype)
    low, high = _neighbours(v, dtype)
    if mode == "toward zero":
        return low
    if mode == "half away":
        return np.where(np.abs(v - low) >= np.abs(high - v), high, low)
    raise ValueError(f"unknown rounding mode {mode!r}; known: {', '.join(CAST_MODES)}")


# -- sums in a dtype and an order -----------------------------------------------------------------


def _seq(terms: np.ndarray, acc: str) -> np.ndarray:
    s = np.zeros(terms.shape[:-1])
    for k in range(terms.shape[-1]):
        s = round_to(s + terms[..., k], acc)
    return s


def _pairwise(terms: np.ndarray, acc: str) -> np.ndarray:
    n = terms.shape[-1]
    if n == 1:
        return round_to(terms[..., 0], acc)
    h = n // 2
    return round_to(_pairwise(terms[..., :h], acc) + _pairwise(terms[..., h:], acc), acc)


def _lanes(terms: np.ndarray, acc: str, lanes: int) -> np.ndarray:
    """Lane l sums terms l, l + L, ... sequentially; the lanes are then added by halving
    (l + l + L/2 ...), as AVX2's hsum_float_8 and ATen's vector reductions do."""
    n = terms.shape[-1]
    pad = np.concatenate([terms, np.zeros(terms.shape[:-1] + (-n % lanes,))], axis=-1)
    part = np.stack([_seq(pad[..., lane::lanes], acc) for lane in range(lanes)], axis=-1)
    while part.shape[-1] > 1:
        h = part.shape[-1] // 2
        part = round_to(part[..., :h] + part[..., h:], acc)
    return part[..., 0]


def _numpy_pairwise(terms: np.ndarray, acc: str) -> np.ndarray:
    """numpy's pairwise_sum (numpy/_core/src/umath/loops_utils.h.src): below 8 terms in turn from 0;
    up to 128, eight accumulators r[j] += t[8i + j], then ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7)) and the
    rest in turn; above, halves cut at a multiple of 8. What np.sum of a contiguous float row does,
    and so the Triton interpreter's tl.sum."""
    n = terms.shape[-1]
    if n < 8:
        return _seq(terms, acc)
    if n <= 128:
        r = [terms[..., j] for j in range(8)]
        whole = n - n % 8
        for i in range(8, whole, 8):
            r = [round_to(r[j] + terms[..., i + j], acc) for j in range(8)]
        add = lambda a, b: round_to(a + b, acc)  # noqa: E731
        res = add(add(add(r[0], r[1]), add(r[2], r[3])), add(add(r[4], r[5]), add(r[6], r[7])))
        for i in range(whole, n):
            res = add(res, terms[..., i])
        return res
    h = n // 2
    h -= h % 8
    return round_to(_numpy_pairwise(terms[..., :h], acc) + _numpy_pairwise(terms[..., h:], acc), acc)


def sum_in(terms, acc: str, order: str) -> np.ndarray:
    """The sum over the last axis of exact float64 terms with every partial sum rounded to `acc`."""
    t = np.asarray(terms, np.float64)
    if order == "sequential":
        return _seq(t, acc)
    if order == "pairwise":
        return _pairwise(t, acc)
    if order.startswith("lanes "):
        return _lanes(t, acc, int(order.split()[1]))
    if order == "numpy pairwise":
        return _numpy_pairwise(t, acc)
    if order == "one rounding":
        return round_to(t.sum(axis=-1), acc)  # the probes' exact sums are exact in float64
    raise ValueError(f"unknown order {order!r}; known: {', '.join(ORDERS)}")


# -- how a kernel is driven ------------------------------------------------------------------------


@dataclass(frozen=True)
class Dot:
    """A kernel driven so that output y[m, n] = finish(sum_k t[m, k]) for every column n.

    encode: (x (M, K) float64, path) -> (args, kwargs) of `module.func`, with every weight the
    kernel dequantizes equal to `weight`, so the terms are t = x * weight (x is representable in
    the path's dtype: the probes keep it so). path: the activation dtype, which is the output's
    too. output: the key of a dict result. n: the output's columns (each the same sum). k: the
    terms per row. paths: the activation dtypes to probe. expect_acc: the accumulator the
    adapter's notes and oracle model state.
    """

    module: str
    func: str
    encode: Callable[[np.ndarray, str], tuple[tuple, dict]]
    k: int
    n: int
    output: str | None = None
    paths: tuple[str, ...] = ("fp32",)
    expect_acc: str = "acc fp32"
    weight: float = 1.0

    def case(self, name: str, trait: str, terms: np.ndarray, path: str, cands: tuple[Candidate, ...],
             expect: tuple[str, ...] | None = (), ties: tuple = ()) -> Case:
        args, kwargs = self.encode(terms / self.weight, path)
        return Case(name, self.module, self.func, args, cands, kwargs=kwargs, output=self.output,
                    selects=expect, trait=trait, ties=ties)

    def shape(self, y_rows: np.ndarray, path: str) -> np.ndarray:
        """(M,) float64 predictions -> the kernel's (M, N) output (n = 0: (M,)) in the path's dtype."""
        col = np.asarray(y_rows, np.float64).reshape(-1, 1)
        return (np.repeat(col, self.n, axis=1) if self.n else col[:, 0]).astype(DTYPES[path])


def _pad(rows: list[np.ndarray], k: int) -> np.ndarray:
    """Rows of terms, each zero padded to k."""
    out = np.zeros((len(rows), k))
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return out


# -- accumulator precision -------------------------------------------------------------------------


def absorption_terms(k: int) -> np.ndarray:
    """Three rows of k terms: 1 then k - 1 of 2^-12 (absorbed by fp16 and bf16 partial sums), the same
    reversed (the small ones sum first, exactly, and then round once at 1), and 1 then k - 1 of 2^-9
    (exact in fp16 at 1, absorbed by bf16): every partial sum is a multiple of 2^-12 below 2, exact in fp32."""
    fwd = np.full(k, SMALL)
    fwd[0] = 1.0
    mid = np.full(k, 2.0 ** -9)
    mid[0] = 1.0
    return np.stack([fwd, fwd[::-1].copy(), mid])


def accumulator_candidates(t: np.ndarray, path: str, shape: Callable[[np.ndarray, str], np.ndarray],
                           grids: bool) -> tuple[tuple[Candidate, ...], tuple[tuple[str, str, str], ...]]:
    """The hypotheses for absorption terms t (rows, k) on an output of dtype `path`; shape lays (rows,)
    values out as the kernel's output. grids: add the any-order fp16/bf16 families (fp32 outputs)."""
    exact = t.sum(axis=-1)
    for order in ORDERS:
        if not np.array_equal(sum_in(t, "fp32", order), exact):
            raise AssertionError("absorption terms must sum exactly in fp32 in every order")
    abs_sum, k = np.abs(t).sum(axis=-1), t.shape[-1]
    as64 = lambda v: shape(v, "fp32").astype(np.float64)  # noqa: E731
    cands = [Candidate("acc fp32", shape(round_to(exact, path), path), "fp32 partial sums, any order (all exact "
                       "here)", False, as64(exact), as64(sum_bound(abs_sum, height(k), "fp32")), family=True)]
    for acc in ("fp16", "bf16"):
        seq = round_to(sum_in(t, acc, "sequential"), path)
        cands.append(Candidate(f"acc {acc} seq", shape(seq, path), f"{acc} partial sums, k = 0, 1, ... in turn", False))
    ties = []
    if grids:
        for acc in ("fp16", "bf16"):
            cands.append(Candidate(f"acc {acc} any", shape(sum_in(t, acc, "pairwise"), path),
                                   f"{acc} partial sums in any order: an output on {acc}'s grid within its bound",
                                   False, as64(exact), as64(sum_bound(abs_sum, height(k), acc)), family=True, grid=acc))
            ties.append((f"acc {acc} seq", f"acc {acc} any", "sequential is one of the orders"))
        ties.append(("acc bf16 any", "acc fp16 any", "bf16's grid lies inside fp16's at these magnitudes"))
    return tuple(cands), tuple(ties)


def gemv_absorption_terms(k: int) -> np.ndarray:
    """One row that reads all three accumulators at once (for M = 1 fast paths): 1, then j of 2^-9
    (exact in fp16, absorbed by bf16), then j of 2^-12 (absorbed by fp16 too), zeros after; j odd, so
    the exact sum is off fp16's grid and fp16's sequential sum off bf16's."""
    j = (k - 1) // 2 - ((k - 1) // 2 + 1) % 2
    return np.concatenate([[1.0], np.full(j, 2.0 ** -9), np.full(j, SMALL), np.zeros(k - 1 - 2 * j)])[None, :]


def accumulator_case(dot: Dot, path: str = "fp32", name: str = "", gemv: bool = False) -> Case:
    """Absorption rows through `dot` on activation dtype `path` (its output dtype too); gemv: one row
    (M = 1), for kernels with a GEMV path of their own."""
    t = gemv_absorption_terms(dot.k) if gemv else absorption_terms(dot.k)
    cands, ties = accumulator_candidates(t, path, dot.shape, grids=path == "fp32")
    trait = ("accumulator" if path == "fp32" else f"accumulator, {path} path") + (", M = 1" if gemv else "")
    title = name or f"{path} x, {'M = 1, ' if gemv else ''}absorption"
    return dot.case(title, trait, t, path, cands, expect=(dot.expect_acc,), ties=ties)


# -- summation order ---------------------------------------------------------------------------------


def order_terms(k: int, rows: int = 8, seed: int = 2024, orders: tuple[str, ...] = ORDERS) -> np.ndarray:
    """Rows of k terms with 8 significant bits and exponents -10..10 (exact in fp16 and bf16 too)
    on which every pair of the orders sums differently in fp32 (drawn until they do)."""
    rng = np.random.default_rng(seed)
    for _ in range(50):
        mant = rng.integers(128, 256, (rows, k)) / 128.0
        t = rng.choice([-1.0, 1.0], (rows, k)) * mant * 2.0 ** rng.integers(-10, 11, (rows, k))
        sums = [sum_in(t, "fp32", o) for o in orders]
        if all(np.any(a != b) for i, a in enumerate(sums) for b in sums[i + 1:]):
            return t
    raise AssertionError(f"no rows of {k} terms separate the orders {orders}")


def order_case(dot: Dot, orders: tuple[str, ...] = ORDERS, expect: tuple[str, ...] = ()) -> Case:
    """Which fp32 summation order (with exact products) reproduces the kernel's bits; "fp32 any order"
    (the family within fp32's bound) says the sums are fp32 even when no listed order is the one."""
    t = order_terms(dot.k, orders=orders)
    cands = [Candidate(o, dot.shape(sum_in(t, "fp32", o), "fp32"), f"fp32 partial sums, {o}", False) for o in orders]
    exact = t.sum(axis=-1)
    bound = sum_bound(np.abs(t).sum(axis=-1), height(dot.k), "fp32")
    cands.append(Candidate("fp32 any order", cands[0].predicted, "fp32 partial sums in some order: within fp32's "
                           "bound", False, dot.shape(exact, "fp32").astype(np.float64),
                           dot.shape(bound, "fp32").astype(np.float64), family=True))
    ties = tuple((o, "fp32 any order", "every listed order is an fp32 order") for o in orders)
    return dot.case("fp32 x, order", "order", t, "fp32", tuple(cands), expect=expect, ties=ties)


# -- output cast rounding ------------------------------------------------------------------------------


def cast_terms(k: int, out: str) -> np.ndarray:
    """Rows whose exact sums are 1 + j/4 ulp of `out` at 1, j = 2 (tie to even below), 6 (tie to even
    above), 1 and 3 (off the tie), both signs: two terms each, every fp32 order exact."""
    ulp = 2.0 ** -(10 if out == "fp16" else 7)
    rows = [np.array([s, s * j * ulp / 4]) for j in (2, 6, 1, 3) for s in (1.0, -1.0)]
    return _pad(rows, k)


def cast_case(dot: Dot, path: str) -> Case:
    """The fp32 -> `path` output cast: RNE, half away, or toward zero."""
    t = cast_terms(dot.k, path)
    exact = t.sum(axis=-1)
    cands = tuple(Candidate(m, dot.shape(round_mode(exact, path, m), path), f"fp32 sum cast to {path} {m}", False)
                  for m in CAST_MODES)
    return dot.case(f"{path} out, ties", f"output cast to {path}", t, path, cands, expect=("RNE",))


# -- subnormals ------------------------------------------------------------------------------------------


def subnormal_predictions(exact: np.ndarray, flushed_by: str) -> dict[str, np.ndarray]:
    """Each mode's output for rows whose exact value is `exact` and that only DAZ ('inputs') or only
    FTZ ('products') turns into 0."""
    zero = np.zeros_like(exact)
    hit = {"IEEE": False, "DAZ": flushed_by == "inputs", "FTZ": flushed_by == "products", "FTZ+DAZ": True}
    return {m: zero if hit[m] else exact for m in SUBNORMAL_MODES}


X_SUBNORMAL = 3 * 2.0 ** -128  # 0.75 of the smallest normal: times a weight >= 2, a normal product
PRODUCT_SUBNORMAL = 2.0 ** -140  # each product; 16 of them sum to 2^-136, still subnormal


def subnormal_cases(dot_inputs: Dot, dot_products: Dot, n_terms: int = 16) -> list[Case]:
    """Two fp32 cases: subnormal inputs (X_SUBNORMAL) times weights >= 2 (normal products), and
    normal inputs whose products with small weights are PRODUCT_SUBNORMAL, as is their sum."""
    if dot_inputs.weight < 2 or not TINY_NORMAL <= PRODUCT_SUBNORMAL / dot_products.weight:
        raise ValueError("the subnormal-input weight must be >= 2 and the product weight <= 2^-14")
    cases = []
    for dot, t, what in ((dot_inputs, X_SUBNORMAL * dot_inputs.weight, "inputs"),
                         (dot_products, PRODUCT_SUBNORMAL, "products")):
        terms = _pad([np.full(n_terms, t)], dot.k)
        exact = np.array([n_terms * t])
        preds = subnormal_predictions(exact, what)
        cands = tuple(Candidate(m, dot.shape(v, "fp32"), _SUBNORMAL_WHAT[m], False) for m, v in preds.items())
        cases.append(dot.case(f"fp32, subnormal {what}", "subnormals", terms, "fp32", cands, ties=_subnormal_ties(what)))
    return cases


_SUBNORMAL_WHAT = {"IEEE": "subnormals kept (gradual underflow)", "DAZ": "subnormal inputs read as 0",
                   "FTZ": "subnormal results written as 0", "FTZ+DAZ": "both"}


# -- integer accumulators ------------------------------------------------------------------------------


def int16_pairs(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(M, N): sum over k of a[m] * w[n] with each adjacent pair (2i, 2i+1) saturated to int16 first,
    as vpmaddubsw does before vpmaddwd widens to int32."""
    a, w = np.asarray(a, np.int64), np.asarray(w, np.int64)
    if a.shape[-1] % 2:
        a, w = np.pad(a, ((0, 0), (0, 1))), np.pad(w, ((0, 0), (0, 1)))
    pairs = a[:, None, 0::2] * w[None, :, 0::2] + a[:, None, 1::2] * w[None, :, 1::2]
    return np.clip(pairs, -32768, 32767).sum(axis=-1)


def int_absorption(big: tuple[int, int], n_big: int, n_small: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(a (2, K), w (n, K)): row/column 0 has n_big products big[0] * big[1] then n_small products 1 * 1
    (past 2^24, so an fp32 sum absorbs the ones), row/column 1 the reverse; further columns repeat."""
    a = np.concatenate([np.full(n_big, big[0]), np.ones(n_small, np.int64)])
    w = np.concatenate([np.full(n_big, big[1]), np.ones(n_small, np.int64)])
    return np.stack([a, a[::-1]]), np.stack([w, w[::-1]] * (n // 2))


@dataclass(frozen=True)
class IntDot:
    """An integer kernel driven with codes a (M, K) and weights w (N, K): y = finish(sum_k a[m, k] w[n, k])
    (finish: int64 (M, N) sums -> the kernel's output, e.g. int32). expect_acc: the accumulators the
    adapter's model allows (exact int32; int16 pairs where the host lacks VNNI)."""

    module: str
    func: str
    encode: Callable[[np.ndarray, np.ndarray], tuple[tuple, dict]]
    finish: Callable[[np.ndarray], np.ndarray]
    output: str | None = None
    expect_acc: tuple[str, ...] = ("acc int32",)


def int_accumulator_candidates(a: np.ndarray, w: np.ndarray, finish: Callable) -> tuple[Candidate, ...]:
    """int32 (exact) vs fp32 partial sums vs int16 saturating pairs, each through `finish`."""
    prods = a[:, None, :].astype(np.int64) * w[None, :, :]
    fp32 = sum_in(prods.astype(np.float64), "fp32", "sequential").astype(np.int64)
    return (Candidate("acc int32", finish(prods.sum(axis=-1)), "exact int32 sums", False),
            Candidate("acc fp32 seq", finish(fp32), "products summed in fp32, k in turn", False),
            Candidate("acc int16 pairs", finish(int16_pairs(a, w)), "adjacent k pairs saturated to int16, then "
                      "int32 (vpmaddubsw + vpmaddwd)", False))


def int_accumulator_case(dot: IntDot, a: np.ndarray, w: np.ndarray, name: str = "absorption past 2^24") -> Case:
    """The integer accumulator hypotheses on codes a, w."""
    args, kwargs = dot.encode(a, w)
    return Case(name, dot.module, dot.func, args, int_accumulator_candidates(a, w, dot.finish), kwargs=kwargs,
                output=dot.output, selects=dot.expect_acc, trait="accumulator")


@dataclass(frozen=True)
class ScaledIntDot:
    """An integer kernel with an fp32 epilogue: y = epilogue(sum_k a[m, k] w[n, k], sa, sb).

    encode: (a (M, K), w (N, K), sa (M,), sb (N,)) -> (args, kwargs); a kernel with one activation
    scale takes sa[0] (per_row False), one with no weight scale ignores sb (sb_free False: the
    probes then pass ones). unsigned: activation codes are u8 (products 255 * 127 then).
    orders: the epilogue orders the adapter's model allows (oracle.gemm.w8a8.EPILOGUES names).
    """

    module: str
    func: str
    encode: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], tuple[tuple, dict]]
    output: str | None = None
    unsigned: bool = False
    per_row: bool = False
    sb_free: bool = True
    expect_acc: tuple[str, ...] = ("acc int32",)
    orders: tuple[str, ...] = ("acc*(sa*sb)", "(acc*sa)*sb")
    n: int = 16

    def call(self, name: str, trait: str, a, w, sa, sb, cands, expect=(), ties=()) -> Case:
        args, kwargs = self.encode(a, w, np.asarray(sa, F32), np.asarray(sb, F32))
        return Case(name, self.module, self.func, args, tuple(cands), kwargs=kwargs, output=self.output,
                    selects=expect, trait=trait, ties=ties)

    def ones(self, m: int) -> tuple[np.ndarray, np.ndarray]:
        return np.ones(m, F32), np.ones(self.n, F32)



def scaled_accumulator_case(dot: ScaledIntDot) -> Case:
    """Absorption past 2^24 with unit scales: y = float(acc)."""
    big = (255, 127) if dot.unsigned else (-128, -128)
    a, w = int_absorption(big, 520 if dot.unsigned else 1024, 64, dot.n)
    cands = int_accumulator_candidates(a, w, lambda acc: np.asarray(acc).astype(F32))
    return dot.call("absorption past 2^24, unit scales", "accumulator", a, w, *dot.ones(2), cands,
                    expect=dot.expect_acc)


def epilogue_case(dot: ScaledIntDot, m: int = 8, k: int = 64, seed: int = 5) -> Case:
    """Scales with full 24-bit significands: acc*(sa*sb), (acc*sa)*sb and one rounding of the exact
    product differ; codes below 64 keep every int16 pair exact."""
    from oracle.gemm.w8a8 import epilogue

    rng = np.random.default_rng(seed)
    a = rng.integers(0 if dot.unsigned else -64, 64, (m, k))
    w = rng.integers(-64, 64, (dot.n, k))
    sa = (rng.random(m) + 0.5).astype(F32) if dot.per_row else np.full(m, F32(rng.random() + 0.5))
    sb = (rng.random(dot.n) + 0.5).astype(F32) if dot.sb_free else np.ones(dot.n, F32)
    acc = a @ w.T
    one = round_to(acc * sa.astype(np.float64)[:, None] * sb.astype(np.float64)[None, :], "fp32").astype(F32)
    cands = [Candidate(o, epilogue(acc, sa, sb, o), f"float(acc) scaled as {o} in fp32", False) for o in dot.orders]
    cands.append(Candidate("one rounding", one, "acc * sa * sb exact, rounded once (a wider epilogue)", False))
    return dot.call("scales with 24-bit significands", "epilogue", a, w, sa, sb, cands, expect=dot.orders)


def scaled_subnormal_cases(dot: ScaledIntDot) -> list[Case]:
    """A subnormal activation scale whose products are normal (sa = 0.75 * 2^-126 with sb = 2 and
    acc >= 32: DAZ reads it as 0), and, where the kernel takes weight scales, normal scales whose
    product is subnormal (sa = sb = 2^-70, acc <= 64: FTZ writes 0). With one scale, float(acc) * sa
    is never below sa, so FTZ cannot show. K = 32: a whole block of every tiled kernel here."""
    m, k = 2, 32
    a = np.array([[1], [2]]) * np.ones(k, np.int64)
    w = np.ones((dot.n, k), np.int64)
    acc = (a @ w.T).astype(np.float64)
    designs = [("inputs", X_SUBNORMAL, 2.0 if dot.sb_free else 1.0)]  # acc 32 or 64: normal products
    if dot.sb_free:
        designs.append(("products", 2.0 ** -70, 2.0 ** -70))
    cases = []
    for what, sa, sb in designs:
        preds = subnormal_predictions(acc * sa * sb, what)
        cands = [Candidate(md, v.astype(F32), _SUBNORMAL_WHAT[md], False) for md, v in preds.items()]
        cases.append(dot.call(f"fp32, subnormal {'scale' if what == 'inputs' else 'scale product'}", "subnormals",
                              a, w, np.full(m, sa), np.full(dot.n, sb), cands, ties=_subnormal_ties(what)))
    return cases


def _subnormal_ties(what: str) -> tuple[tuple[str, str, str], ...]:
    """The pairs a one-sided subnormal case cannot separate: only DAZ acts on 'inputs', only FTZ on 'products'."""
    if what == "inputs":
        return (("IEEE", "FTZ", "only DAZ shows on subnormal inputs with normal results"), ("DAZ", "FTZ+DAZ", "as above"))
    return (("IEEE", "DAZ", "only FTZ shows on normal inputs with subnormal results"), ("FTZ", "FTZ+DAZ", "as above"))


def standard_cases(dot: Dot, sub_inputs: Dot | None = None, sub_products: Dot | None = None,
                   orders: tuple[str, ...] = ORDERS) -> list[Case]:
    """Accumulator on every path (M = 3 and M = 1), order (fp32), the casts of the fp16/bf16 paths,
    and subnormals where the encoders for them are given."""
    cases = [accumulator_case(dot, p, gemv=g) for p in dot.paths for g in (False, True)]
    if "fp32" in dot.paths:
        cases.append(order_case(dot, orders))
    cases += [cast_case(dot, p) for p in dot.paths if p != "fp32"]
    if sub_inputs is not None and sub_products is not None:
        cases += subnormal_cases(sub_inputs, sub_products)
    return cases


# -- requantized u8 outputs (QLinearMatMul, static quantized linear) ---------------------------------------------

REQUANT_ACC = ("acc int32", "acc int16 pairs")  # VNNI/AMX hosts sum int32; AVX2 hosts pair through int16
# encode(a u8 codes (M, K), w s8 (N, K), y_scale, y_zp) -> (args, kwargs) with a_scale = b_scale = 1, zero points 0
Requant = Callable[[np.ndarray, np.ndarray, float, int], tuple[tuple, dict]]


def requant_pairs_case(module: str, func: str, encode: Requant, output: str | None) -> Case:
    """Every product 255 * 127 (u8 x s8 pairs overflow int16), requantized by 2^-15: the pairs' sum shows."""
    from oracle.rounding import rne

    a, w = np.full((2, 64), 255), np.full((16, 64), 127)
    out = lambda acc: np.clip(rne(acc / 2.0 ** 15), 0, 255).astype(np.uint8)  # noqa: E731
    cands = (Candidate("acc int32", out(a @ w.T), "exact int32 sums", False),
             Candidate("acc int16 pairs", out(int16_pairs(a, w)), "adjacent k pairs saturated to int16", False))
    args, kwargs = encode(a, w, 2.0 ** 15, 0)
    return Case("pairs past int16, y_scale 2^15", module, func, args, cands, kwargs, output, REQUANT_ACC,
                "accumulator")


def requant_ties_case(module: str, func: str, encode: Requant, output: str | None) -> Case:
    """Odd sums requantized by sa * sb / sy = 1/2: every output an exact tie (zero point 128)."""
    from oracle.rounding import half_away, rne, trunc

    rng = np.random.default_rng(11)
    a, w = rng.integers(0, 10, (4, 8)), rng.integers(-3, 4, (16, 8))  # |acc| / 2 <= 108: no saturation
    acc = a @ w.T
    cands = tuple(Candidate(m, (f(acc / 2.0) + 128).astype(np.uint8), f"acc * 1/2 rounded {m}", False)
                  for m, f in zip(CAST_MODES, (rne, half_away, trunc)))
    args, kwargs = encode(a, w, 2.0, 128)
    return Case("ties at acc / 2", module, func, args, cands, kwargs, output, ("RNE",), "requantization rounding")
