"""Probes of libggml's K-quants and dot products: rounding of the quantizers' searches, fp16/fp32
scale subnormals in the dequantizers, and the float sums of vec_dot and mul_mat.

Blocks are written byte by byte where a probe needs exact scales ("unit" blocks: element 0 has
code 1 under the block's scale, every other element 0, checked against the oracle's dequantizer),
so a dot product of unit blocks is the plain sum of their scales: the scales carry the terms.
"""
from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from unittest import mock

import numpy as np

import oracle
from kernels.fingerprints import Candidate, Case, ProbeSet
from kernels.probes_numerics import (PRODUCT_SUBNORMAL, X_SUBNORMAL, Dot, absorption_terms, accumulator_candidates,
                                     accumulator_case, subnormal_predictions)
from oracle.gemm.ggml_vec_dot import vec_dot as model_vec_dot, vec_dot_exact
from oracle.ggml.q4_k import pack_scale_min_k4
from oracle.rounding import half_away

__all__ = ["PROBES", "unit_blocks", "nearest_int_as_roundf"]

_GGML = "kernels.ggml.calls"
KQUANTS = ("q2_k", "q3_k", "q4_k", "q5_k", "q6_k")
# offsets of the fp16 super-block scales (d, then dmin where the type has one)
_F16_FIELDS = {"q4_0": (0,), "q8_0": (0,), "q2_k": (80, 82), "q3_k": (108,), "q4_k": (0, 2), "q5_k": (0, 2),
               "q6_k": (208,)}


# -- unit blocks --------------------------------------------------------------------------------------


def _f16(v: float) -> np.ndarray:
    return np.array([v], "<f2").view(np.uint8)


def _unit_block(t: str, d: float) -> np.ndarray:
    """One block of type t whose element 0 dequantizes to d * 1 and every other element to 0."""
    if t == "q8_0":
        b = np.zeros(34, np.uint8)
        b[2] = 1
    elif t == "q4_0":
        b = np.full(18, 0x88, np.uint8)
        b[2] = 0x89
    elif t == "q2_k":
        b = np.zeros(84, np.uint8)
        b[0:16], b[16] = 0x01, 0x01  # scale 1, min 0; element 0 code 1
    elif t == "q3_k":
        b = np.zeros(110, np.uint8)
        b[0:32], b[32] = 0xFF, 0x01  # high bits set: value = 2-bit code
        b[96:104], b[104:108] = 0x11, 0xAA  # every 6-bit scale 33, i.e. 1
    elif t in ("q4_k", "q5_k"):
        b = np.zeros(144 if t == "q4_k" else 176, np.uint8)
        b[4:16] = pack_scale_min_k4(np.ones((1, 8), np.uint8), np.zeros((1, 8), np.uint8)).reshape(-1)
        b[16 if t == "q4_k" else 48] = 0x01
    elif t == "q6_k":
        b = np.zeros(210, np.uint8)
        b[0], b[128:192], b[192:208] = 0x01, 0xAA, 0x01  # code 33 = 1 + 32 at element 0, 32 elsewhere
    else:
        raise ValueError(f"no unit block for {t}")
    off = _F16_FIELDS[t][0]
    b[off:off + 2] = _f16(d)
    return b


def _q8_k_unit(d: float, code: int = 1) -> np.ndarray:
    """A q8_K block (fp32 d, element 0 = code, bsums[0] = code)."""
    b = np.zeros(292, np.uint8)
    b[0:4] = np.array([d], "<f4").view(np.uint8)
    b[4] = np.uint8(code)
    b[260:262] = np.array([code], "<i2").view(np.uint8)
    return b


def unit_blocks(t: str, ds: np.ndarray) -> np.ndarray:
    """(rows, blocks) scales -> (rows, row bytes) of unit blocks, checked against oracle.dequantize."""
    ds = np.atleast_2d(ds)
    rows = np.stack([np.concatenate([_unit_block(t, d) for d in r]) for r in ds])
    size = 256 if t.endswith("_k") else 32
    want = np.zeros((ds.shape[0], ds.shape[1], size), np.float32)
    want[..., 0] = ds.astype(np.float16).astype(np.float32)
    got = oracle.dequantize(rows, t).reshape(want.shape)
    if not np.array_equal(got, want):
        raise AssertionError(f"{t} unit blocks do not dequantize to their scales")
    return rows


# -- ggml.quantize: the K-quant searches' rounding ----------------------------------------------------


def _roundf_int(x: np.ndarray) -> np.ndarray:
    """C (int)roundf(x): half away from zero, int32 (in place of ggml's nearest_int, RNE)."""
    return half_away(np.asarray(x, np.float32)).astype(np.int32)


@contextlib.contextmanager
def nearest_int_as_roundf() -> Iterator[None]:
    """The oracle's K-quant quantizers with every nearest_int (RNE) replaced by roundf (half away):
    the one choice the variant changes, in the searches and in the final requantization alike."""
    import oracle.ggml.kquant_search as search
    from oracle.ggml import q2_k, q3_k, q4_k, q5_k, q6_k

    with contextlib.ExitStack() as stack:
        for mod in (search, q2_k, q3_k, q4_k, q5_k, q6_k):
            if hasattr(mod, "nearest_int"):
                stack.enter_context(mock.patch.object(mod, "nearest_int", _roundf_int))
        yield


def _tie_designs(sub: int, nmax: int, rows: int = 16) -> np.ndarray:
    """Super-blocks where RNE and half away meet ties: half-integers (random, and with -nmax leading
    each sub-block so the first inverse scale is 1), and constant sub-blocks c = (2j + 1)/4 under a
    leading 64 (scale ratios at exact halves)."""
    rng = np.random.default_rng(sub * 100 + nmax)
    half = rng.integers(-20, 20, (rows, 256)) + 0.5
    half[:, 0] = 31
    anchored = rng.integers(-nmax, nmax, (rows, 256)) + 0.5
    anchored[:, ::sub] = -nmax
    c = (2 * rng.integers(0, 6, (rows, 256 // sub)) + 1) / 4.0 * rng.choice([-1, 1], (rows, 256 // sub))
    c[:, 0] = 64
    return np.concatenate([half, anchored, np.repeat(c, sub, axis=1)]).astype(np.float32)


_TIE_SHAPES = {"q2_k": (16, 3), "q3_k": (16, 4), "q4_k": (32, 15), "q5_k": (32, 31), "q6_k": (16, 32)}


def _kquant_tie_case(t: str) -> Case:
    """Super-blocks on which the reference (nearest_int) and the roundf variant write different bytes
    (at most 4), plus one on which they agree."""
    x = _tie_designs(*_TIE_SHAPES[t])
    ref = oracle.quantize(x, t)
    with nearest_int_as_roundf():
        var = oracle.quantize(x, t)
    differ = np.any(ref != var, axis=1)
    rows = sorted(list(np.flatnonzero(differ)[:4]) + list(np.flatnonzero(~differ)[:1]))
    if not differ.any():
        raise AssertionError(f"no {t} design separates nearest_int from roundf")
    cands = (Candidate(t, ref[rows], oracle.get_format(t).summary),
             Candidate(f"{t}~roundf", var[rows], "every nearest_int (RNE) of the search and the requantization "
                       "replaced by roundf (half away)", False))
    return Case(f"{t} ties", _GGML, "quantize", (x[rows], t), cands)


# -- ggml.dequantize: subnormal scales ------------------------------------------------------------------


def _flushed_f16(blocks: np.ndarray, t: str) -> np.ndarray:
    """The blocks with every subnormal fp16 scale field set to +0."""
    b = blocks.reshape(blocks.shape[0], -1, oracle.get_format(t).block_bytes).copy()
    for off in _F16_FIELDS[t]:
        f = np.ascontiguousarray(b[..., off:off + 2]).view("<f2")[..., 0]
        sub = (f != 0) & (np.abs(f.astype(np.float32)) < np.float32(2.0 ** -14))
        b[..., off:off + 2][sub] = 0
    return b.reshape(blocks.shape)


def _dequant_subnormal_case(t: str) -> Case:
    """Unit blocks with fp16 scales 2^-20 and 3 * 2^-24 (subnormal in fp16, normal in fp32)."""
    q = unit_blocks(t, np.array([[2.0 ** -20, 3 * 2.0 ** -24]]))
    k = 2 * (256 if t.endswith("_k") else 32)
    cands = (Candidate("fp16 subnormals kept", oracle.dequantize(q, t), "subnormal fp16 scales converted exactly",
                       False),
             Candidate("fp16 subnormals flushed", oracle.dequantize(_flushed_f16(q, t), t), "subnormal fp16 scales "
                       "read as 0", False))
    return Case(f"{t} subnormal fp16 scales", _GGML, "dequantize", (q, t, k), cands,
                selects=("fp16 subnormals kept",), trait="fp16 subnormal scales")


def _dequant_q8_k_case() -> Case:
    """q8_K's fp32 scale subnormal (0.75 * 2^-126) with code 2: a normal value unless DAZ reads 0."""
    q = _q8_k_unit(X_SUBNORMAL, 2)[None, :]
    y = oracle.dequantize(q, "q8_k")
    preds = subnormal_predictions(y.astype(np.float64), "inputs")
    cands = tuple(Candidate(m, v.astype(np.float32), m, False) for m, v in preds.items())
    ties = (("IEEE", "FTZ", "only DAZ shows on a subnormal input with a normal result"),
            ("DAZ", "FTZ+DAZ", "as above"))
    return Case("q8_k subnormal fp32 scale", _GGML, "dequantize", (q, "q8_k", 256), cands, trait="subnormals",
                ties=ties)


# -- ggml.vec_dot ---------------------------------------------------------------------------------------


def _y_type(t: str) -> str:
    return "q8_k" if t.endswith("_k") else "q8_0"


def _vec_dot_dot(t: str, nb: int) -> Dot:
    """x rows: unit blocks of type t with the terms as scales; y: unit q8_0/q8_K blocks with scale 1."""
    def encode(x: np.ndarray, path: str) -> tuple[tuple, dict]:
        xb = unit_blocks(t, x)
        if t.endswith("_k"):
            yb = np.tile(_q8_k_unit(1.0), (x.shape[0], nb))
        else:
            yb = unit_blocks("q8_0", np.ones_like(x))
        return (t, nb * (256 if t.endswith("_k") else 32), xb, yb), {}

    return Dot(_GGML, "vec_dot", encode, k=nb, n=0)


def _vec_dot_order_case(t: str) -> Case:
    """Random blocks (the CPU backend's own q8 activations): the oracle's bit-exact variants
    (generic C, FMA-contracted C, and AVX2 for q4_0/q8_0) and any fp32 order within the bound."""
    rng = np.random.default_rng(7)
    size = 256 if t.endswith("_k") else 32
    x = (rng.standard_normal((8, 8 * size)) * 2.0 ** rng.integers(-6, 6, (8, 1))).astype(np.float32)
    a = rng.standard_normal((8, 8 * size)).astype(np.float32)
    yt = _y_type(t)
    xq, yq = oracle.quantize(x, t), oracle.quantize(a, yt if yt == "q8_k" else "q8_0.x86")
    variants = ("generic", "fma", "avx2") if yt == "q8_0" else (("generic",) if t == "q2_k" else ("generic", "fma"))
    exact, bound = vec_dot_exact(t, yt, xq, yq)
    cands = [Candidate(v, model_vec_dot(t, yt, xq, yq, variant=v).astype(np.float32), _VARIANT_WHAT[v], False)
             for v in variants]
    cands.append(Candidate("fp32 any order", cands[0].predicted, "fp32 sums in any order, at most 3 roundings per "
                           "term (oracle vec_dot_exact's bound)", False, exact, bound, family=True))
    ties = tuple((v, "fp32 any order", "every variant is an fp32 order") for v in variants)
    return Case(f"{t} x {yt}, order", _GGML, "vec_dot", (t, 8 * size, xq, yq), tuple(cands),
                selects=("fp32 any order",), trait=f"order, {t}", ties=ties)


_VARIANT_WHAT = {"generic": "ggml's generic C, block terms added in turn",
                 "fma": "the generic C with every acc += a*b fused",
                 "avx2": "8 fp32 lanes (fmadd per block) then hsum_float_8"}


def _vec_dot_subnormal_cases(t: str) -> list[Case]:
    """K-quants only (q8_K's scale is fp32): y.d subnormal with x.d = 2 (DAZ), and x.d = 2^-14 with
    y.d = 2^-126 (d = 2^-140 subnormal, FTZ), over 4 super-blocks."""
    nb, n = 4, 4 * 256
    cases = []
    for what, dx, dy in (("inputs", 2.0, X_SUBNORMAL), ("products", 2.0 ** -14, PRODUCT_SUBNORMAL / 2.0 ** -14)):
        xb = unit_blocks(t, np.full((1, nb), dx))
        yb = np.tile(_q8_k_unit(dy), (1, nb))
        preds = subnormal_predictions(np.array([nb * dx * dy]), what)
        cands = tuple(Candidate(m, v.astype(np.float32), m, False) for m, v in preds.items())
        keep, lose = (("IEEE", "FTZ"), ("DAZ", "FTZ+DAZ")) if what == "inputs" else (("IEEE", "DAZ"), ("FTZ", "FTZ+DAZ"))
        ties = ((*keep, "only one flag shows in this case"), (*lose, "as above"))
        cases.append(Case(f"{t} subnormal {'q8_K scale' if what == 'inputs' else 'scale product'}", _GGML, "vec_dot",
                          (t, n, xb, yb), cands, trait="subnormals", ties=ties))
    return cases


def _vec_dot_cases() -> list[Case]:
    cases = []
    for t in ("q4_0", "q8_0", *KQUANTS):
        acc = accumulator_case(_vec_dot_dot(t, 64), name=f"{t}, absorption over blocks")
        cases.append(dataclasses.replace(acc, trait=f"accumulator, {t}"))
        cases.append(_vec_dot_order_case(t))
    return cases + [c for t in KQUANTS for c in _vec_dot_subnormal_cases(t)]


# -- ggml.mul_mat ---------------------------------------------------------------------------------------


def _mul_mat_case(t: str, nb: int = 64) -> Case:
    """W rows: unit blocks whose scales are absorption terms; X: one row with 127 at each block's
    start (its q8 activation scale is 1, code 127): y[0, n] = 127 * sum of row n's scales."""
    ds = absorption_terms(nb)
    size = 256 if t.endswith("_k") else 32
    x = np.zeros((1, nb * size), np.float32)
    x[0, ::size] = 127
    shape = lambda v, path: np.asarray(v, np.float64).reshape(1, -1).astype(np.float32)  # noqa: E731
    cands, ties = accumulator_candidates(127 * ds, "fp32", shape, grids=True)
    return Case(f"{t}, absorption over blocks", "kernels.ggml.mul_mat", "mul_mat", (t, unit_blocks(t, ds), [x]),
                cands, output=("ys", 0), selects=("acc fp32",), trait="accumulator", ties=ties)


_SEP = ("K-quant searches' rounding nearest_int (RNE) vs roundf (half away), q2_K..q6_K")
PROBES = (
    ProbeSet("ggml.quantize", _SEP, _GGML, lambda: [_kquant_tie_case(t) for t in KQUANTS]),
    ProbeSet("ggml.dequantize", "subnormal fp16 scales kept vs flushed (q4_0, q8_0, q2_K..q6_K); DAZ on q8_K's fp32 "
             "scale", _GGML, lambda: [_dequant_subnormal_case(t) for t in ("q4_0", "q8_0", *KQUANTS)]
             + [_dequant_q8_k_case()]),
    ProbeSet("ggml.vec_dot", "accumulator fp32 vs fp16/bf16 partials over blocks, order (generic / FMA / AVX2 "
             "models), FTZ/DAZ on q8_K scales; q4_0, q8_0, q2_K..q6_K", _GGML, _vec_dot_cases),
    ProbeSet("ggml.mul_mat", "accumulator fp32 vs fp16/bf16 partials over blocks (q4_0, q8_0, q4_K, q6_K weights)",
             "kernels.ggml.mul_mat", lambda: [_mul_mat_case(t) for t in ("q4_0", "q8_0", "q4_k", "q6_k")]),
)
