"""The probable tier (Higham & Mary 2019, oracle/bounds.py) holds for every fp32 model and catches fp16.

Every fp32 accumulation here (numpy sequential, reversed, pairwise, 8-lane sums; the oracle's
own bit-exact kernel models) must stay well inside the probable tier on typical and hard data
(Gaussian, all positive, huge magnitude spread, cancellation) at K = 256..16384. fp16
accumulation of a w4a16 GEMV must leave it: SUSPECT where the rigorous fp32 bound still holds
(it did before the tier existed), FAIL where not. Constant data (every term alike) are the
known exception of the mean-zero model: there a correct fp32 sum can be SUSPECT, shown below.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import oracle
from oracle.bounds import FAILURE_PROBABILITY, Bound, dot_bound, gamma, gamma_tilde, lam, probable_of, sum_bound
from oracle.conventions import get
from oracle.gemm.aten_int8pack import int8_expected, int8_predict
from oracle.gemm.da8w4 import da8w4_exact, da8w4_linear
from oracle.gemm.esimd_gemv import esimd_gemv_int4
from oracle.gemm.ggml_vec_dot import vec_dot, vec_dot_exact
from oracle.gemm.wxa16 import wxa16_exact
from oracle.verdict import compare_bounded
from test_bounds import exact_sums, lanes8, pairwise, seq

F32, F16 = np.float32, np.float16
WELL_INSIDE = 0.25  # "well below 1": measured worst 0.16 (pairwise sums of positive data at K = 256)


def test_lambda_and_gamma_tilde_formulas():
    n = 4096
    lam_n = lam(n, "fp32")
    u = 2.0 ** -24
    assert n * 2 * math.exp(-lam_n ** 2 * (1 - u) ** 2 / 2) == pytest.approx(FAILURE_PROBABILITY, rel=1e-9)
    g = gamma_tilde(n, "fp32", n_terms=n)
    assert g == pytest.approx(math.exp(lam_n * math.sqrt(n) * u + n * u * u / (1 - u)) - 1, rel=1e-12)
    assert g >= math.expm1(lam_n * math.sqrt(n) * u + n * u * u / (1 - u))  # rounded upward
    assert g < gamma(n, "fp32") / 7  # sqrt(n) against n: the point of the tier
    assert gamma_tilde(8, "fp32", n_terms=8) == gamma(8, "fp32")  # small h: the rigorous value is kept


def test_bound_arithmetic_keeps_both_tiers():
    b = dot_bound(np.array([1.0, 2.0]), 4096, order="any")
    assert isinstance(b, Bound) and np.all(b.probable < b)
    c = b + np.array([1e-3, 0.0])
    assert np.array_equal(c.probable, b.probable + [1e-3, 0.0]) and np.array_equal(np.asarray(c), np.asarray(b) + [1e-3, 0])
    d = 2 * c
    assert np.array_equal(d.probable, 2 * c.probable)
    d += 1.0
    assert isinstance(d, Bound) and np.array_equal(d.probable, 2 * c.probable + 1)
    assert d[1:].probable[0] == d.probable[1]
    assert d.reshape(2, 1).probable is None  # another shape: the tier is not carried, only rigorous remains
    assert np.array_equal(probable_of(d.reshape(2, 1)), np.asarray(d).reshape(2, 1))
    assert np.array_equal(probable_of(sum_bound(np.ones(2), 100)), sum_bound(np.ones(2), 100))  # no n_terms: one tier


def _ratios(err, bound) -> tuple[float, float]:
    return float(np.max(err / probable_of(bound))), float(np.max(err / np.asarray(bound)))


def _data(kind: str, rng, k: int, rows: int = 16):
    if kind == "gauss":
        return rng.standard_normal((rows, k)), rng.standard_normal((rows, k))
    if kind == "positive":
        return rng.random((rows, k)), rng.random((rows, k))
    if kind == "spread":
        return rng.standard_normal((rows, k)) * 10.0 ** rng.integers(-6, 6, (rows, k)), rng.standard_normal((rows, k))
    a = rng.standard_normal((rows, k // 2)) * 1000
    return np.concatenate([a, -a + rng.standard_normal((rows, k // 2))], axis=1), np.ones((rows, k))


ORDERS = {"sequential": (seq, "any"), "reversed": (lambda t: seq(t[..., ::-1]), "any"),
          "pairwise": (pairwise, "pairwise"), "lanes8": (lanes8, "lanes")}


@pytest.mark.parametrize("kind", ["gauss", "positive", "spread", "cancel"])
@pytest.mark.parametrize("k", [256, 1024, 4096, 16384])
def test_fp32_sums_well_inside_the_probable_tier(kind, k):
    a, b = (v.astype(F32) for v in _data(kind, np.random.default_rng([k, len(kind)]), k))
    t = (a * b).astype(F32)
    ex = exact_sums(a, b)
    abs_sum = np.abs(a.astype(np.float64) * b).sum(-1)
    for name, (fn, order) in ORDERS.items():
        err = np.abs(fn(t).astype(np.float64) - ex)
        prob, rig = _ratios(err, dot_bound(abs_sum, k, order=order))
        assert prob < WELL_INSIDE, (name, prob)


def test_constant_data_is_the_exception_of_the_model():
    """Every term 0.1: each addition rounds the same way for long runs, so errors add linearly."""
    k = 16384
    a = np.full((1, k), 0.1, F32)
    b = np.ones((1, k), F32)
    err = np.abs(seq((a * b).astype(F32)).astype(np.float64) - exact_sums(a, b))
    prob, rig = _ratios(err, dot_bound(np.abs(a.astype(np.float64)).sum(-1), k))
    assert rig < 0.5 and prob > 1  # a correct fp32 sum, SUSPECT: the verdict says why (docs/bounds.md)


def _w4a16(k: int, n: int = 64, stream: int = 7):
    rng = np.random.default_rng([stream, k])
    w = rng.standard_normal((n, k)).astype(F32)
    x = rng.standard_normal((1, k)).astype(F16)
    conv = get("esimd.int4_gemv")
    qw = conv.quantize(w)
    return x, conv, qw, conv.pack(qw)


@pytest.mark.parametrize("k", [1024, 4096, 16384])
@pytest.mark.parametrize("fused", [True, False])
def test_esimd_model_inside_the_probable_tier(k, fused):
    """The fp16 output cast alone may take up to all of the output term, so the accumulation is checked
    before it: fp16 rounding is monotone, so an fp32 sum within d of exact casts into [fp16(exact - d),
    fp16(exact + d)], with d a quarter of the probable accumulation tier."""
    x, conv, qw, packed = _w4a16(k)
    y = esimd_gemv_int4(x, packed["weight"], packed["scales"], fused=fused).astype(np.float64)
    for order, lanes in (("any", 8), ("lanes", 128)):
        exact, acc_bound = wxa16_exact(x, conv.dequantize(qw), acc="fp32", out="fp32", order=order, lanes=lanes)
        d = WELL_INSIDE * probable_of(acc_bound)
        lo, hi = (exact - d).astype(F16).astype(np.float64), (exact + d).astype(F16).astype(np.float64)
        assert np.all((lo <= y) & (y <= hi)), order
        _, bound = wxa16_exact(x, conv.dequantize(qw), acc="fp32", out="fp16", order=order, lanes=lanes)
        assert compare_bounded(exact, bound, y.astype(F16), out_dtype="fp16", convention="c").status == "BOUNDED"


@pytest.mark.parametrize("x_type,y_type,variants", [("q4_0", "q8_0", ("generic", "fma", "avx2")),
                                                    ("q8_0", "q8_0", ("generic", "fma", "avx2")),
                                                    ("q4_k", "q8_k", ("generic", "fma")),
                                                    ("q6_k", "q8_k", ("generic", "fma"))])
def test_ggml_vec_dot_models_inside_the_probable_tier(x_type, y_type, variants):
    rng = np.random.default_rng(3)
    for k in (256, 4096, 16384):
        xq = oracle.quantize(rng.standard_normal((8, k)).astype(F32), x_type)
        yq = oracle.quantize(rng.standard_normal((8, k)).astype(F32), y_type)
        exact, bound = vec_dot_exact(x_type, y_type, xq, yq)
        for v in variants:
            prob, _ = _ratios(np.abs(vec_dot(x_type, y_type, xq, yq, variant=v).astype(np.float64) - exact), bound)
            assert prob < WELL_INSIDE, (k, v, prob)


@pytest.mark.parametrize("k", [256, 4096, 16384])
def test_da8w4_and_int8pack_models_inside_the_probable_tier(k):
    rng = np.random.default_rng(k)
    m, n, gs = 2, 8, 32
    a_q = rng.integers(0, 256, (m, k), dtype=np.uint8)
    args = (a_q, (rng.random(m) * 0.05 + 1e-3).astype(F32), rng.integers(0, 256, m).astype(np.int32),
            rng.integers(0, 16, (n, k), dtype=np.uint8), (rng.random((n, k // gs)) * 0.02 + 1e-4).astype(F32),
            np.full((n, k // gs), 8, np.int8), rng.standard_normal(n).astype(F32))
    exact, bound = da8w4_exact(*args, group_size=gs, out="fp32")
    prob, _ = _ratios(np.abs(da8w4_linear(*args, group_size=gs, out="fp32").astype(np.float64) - exact), bound)
    assert prob < WELL_INSIDE
    x = rng.standard_normal((m, k)).astype(F32)
    q = rng.integers(-128, 128, (n, k))
    s = (rng.random(n) * 0.01 + 1e-3).astype(F32)
    for cap, dtype in (("DEFAULT", "fp32"), ("AVX512", "bf16")):
        exact, bound = int8_expected(x, q, s, "fp32")
        y = int8_predict(x, q, s, dtype, cap)
        if dtype == "fp32":
            prob, _ = _ratios(np.abs(y.astype(np.float64) - exact), bound)
            assert prob < WELL_INSIDE, (cap, prob)
        else:
            exact, bound = int8_expected(x, q, s, dtype)
            assert compare_bounded(exact, bound, y, out_dtype=dtype, convention="c").status == "BOUNDED"


# --- fp16 accumulation of a w4a16 GEMV: caught by the probable tier ---------------------------------

def _hfma_chain(acc, x, w) -> np.ndarray:
    """acc = fp16(acc + x * w), one rounding (an fp16 FMA); the float64 sum of fp16 operands is exact."""
    return (acc.astype(np.float64) + x.astype(np.float64) * w.astype(np.float64)).astype(F16)


def fp16_sequential(x, w):
    acc = np.zeros(w.shape[0], F16)
    for i in range(x.shape[0]):
        acc = _hfma_chain(acc, x[i], w[:, i])
    return acc


def fp16_lanes8(x, w):
    acc = np.zeros((w.shape[0], 8), F16)
    for i in range(0, x.shape[0], 8):
        acc = _hfma_chain(acc, x[i:i + 8], w[:, i:i + 8])
    while acc.shape[1] > 1:
        h = acc.shape[1] // 2
        acc = (acc[:, :h] + acc[:, h:]).astype(F16)
    return acc[:, 0]


def fp16_block32(x, w):
    """Each 32-element block's dot in fp16, block results accumulated in fp16."""
    total = np.zeros(w.shape[0], F16)
    for b in range(0, x.shape[0], 32):
        acc = np.zeros(w.shape[0], F16)
        for i in range(b, b + 32):
            acc = _hfma_chain(acc, x[i], w[:, i])
        total = (total + acc).astype(F16)
    return total


FP16_KERNELS = {"sequential": fp16_sequential, "lanes8": fp16_lanes8, "block32": fp16_block32}


@pytest.mark.parametrize("k", [4096, 11008, 14336])
@pytest.mark.parametrize("kernel", list(FP16_KERNELS))
def test_fp16_accumulation_is_flagged(k, kernel):
    x, conv, qw, _ = _w4a16(k)
    w_deq = conv.dequantize(qw)
    y = FP16_KERNELS[kernel](x[0], w_deq.astype(F16))[None, :]  # the weight formed in fp16, as an fp16 kernel does
    exact, bound = wxa16_exact(x, w_deq, acc="fp32", out="fp16")  # what the conformance suite declares
    r = compare_bounded(exact, bound, y, out_dtype="fp16", convention="esimd.int4_gemv")
    one_tier = compare_bounded(exact, np.asarray(bound), y, out_dtype="fp16", convention="esimd.int4_gemv")
    assert r.worst_ratio_probable > 1.5  # measured 1.59 .. 16.2
    if (k, kernel) == (4096, "sequential"):
        assert r.status == one_tier.status == "FAIL"  # the rigorous bound alone already catches this one
    else:
        assert one_tier.status == "BOUNDED" and r.worst_ratio <= 1  # passed before the probable tier
        assert r.status == "SUSPECT" and not r.ok
        assert "exceeds probable bound" in r.message() and "within the rigorous bound" in r.message()
