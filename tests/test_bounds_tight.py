"""Every bound is nearly attained by some input, so a bound loosened by 2x fails here.

The inputs make every rounding go the same way by the largest amount: a running sum of 1 and
terms of exactly half an ulp of 1 (each addition ties to even and drops the term), or values
exactly halfway between two neighbours of the output dtype. The exact values are written as
Fractions and are exactly representable in float64. Each test asserts error/bound > 0.9.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from oracle.bounds import output_rounding, probable_of
from oracle.gemm._common import cast_out
from oracle.gemm.da8w4 import da8w4_exact, da8w4_linear
from oracle.gemm.ggml_vec_dot import vec_dot_exact
from oracle.gemm.w8a8 import w8a8_exact, w8a8_linear
from oracle.gemm.wxa16 import wxa16_exact
from oracle.verdict import compare_bounded
from test_bounds import lanes8, seq

F32 = np.float32
HALF_ULP = 2.0 ** -24  # half an fp32 ulp at 1


def _ratio(computed, exact: Fraction, bound) -> float:
    err = abs(Fraction(float(computed)) - exact)
    return float(err / Fraction(float(bound)))


@pytest.mark.parametrize("out,tie", [("fp16", 2.0 ** -11), ("bf16", 2.0 ** -8)])
def test_output_rounding_is_attained_at_a_tie(out, tie):
    y = np.array([1.0 + tie, 2.0 * (1.0 + tie), -(1.0 + 3 * tie)])  # halfway between neighbours; RNE goes to even
    err = np.abs(cast_out(y.astype(F32), out).astype(np.float64) - y)
    assert np.all(err == output_rounding(np.abs(y), out))


@pytest.mark.parametrize("out,tie", [("fp16", 2.0 ** -11), ("bf16", 2.0 ** -8)])
def test_wxa16_output_term_nearly_attained(out, tie):
    """fp32 sum exact, the cast a tie: all of the error is the output term."""
    x = np.array([[1.0, tie]], F32)
    w = np.ones((1, 2), F32)
    exact, bound = wxa16_exact(x, w, acc="fp32", out=out)
    y = cast_out(seq((x * w).astype(F32)), out).reshape(1, 1)
    r = compare_bounded(exact, bound, y, out_dtype=out, convention="c")
    assert r.status == "BOUNDED" and r.worst_ratio > 0.99 and r.worst_ratio_probable > 0.99


def _tie_chain(k: int) -> tuple[np.ndarray, Fraction]:
    x = np.full((1, k), HALF_ULP, F32)
    x[0, 0] = 1.0
    return x, 1 + (k - 1) * Fraction(HALF_ULP)


@pytest.mark.parametrize("k", [64, 4096])
def test_wxa16_accumulation_bound_nearly_attained_sequential(k):
    x, exact = _tie_chain(k)
    w = np.ones((1, k), F32)
    y = seq((x * w).astype(F32))
    assert y[0] == 1.0  # every half-ulp term was dropped
    e, bound = wxa16_exact(x, w, acc="fp32", out="fp32")
    assert Fraction(float(e[0, 0])) == exact
    assert 0.9 < _ratio(y[0], exact, bound[0, 0]) <= 1
    assert _ratio(y[0], exact, probable_of(bound)[0, 0]) > 1 or k < 100  # correlated ties: SUSPECT at large k


def test_wxa16_lanes_bound_nearly_attained():
    """Lane 0 holds the 1 and K/8 - 1 dropped ties; the other lanes' sums are exact."""
    k = 4096
    x, exact = _tie_chain(k)
    w = np.ones((1, k), F32)
    y = lanes8((x * w).astype(F32))
    _, bound = wxa16_exact(x, w, acc="fp32", out="fp32", order="lanes", lanes=8)
    lost = (k // 8 - 1) * Fraction(HALF_ULP)
    assert abs(Fraction(float(y[0])) - exact) == lost
    assert 0.9 < _ratio(y[0], exact, bound[0, 0]) <= 1


def test_w8a8_bound_nearly_attained():
    """after_cast bias in bf16: acc*sa rounds down by half an ulp, the bias by almost half an ulp,
    their sum is a tie that rounds down again: three maximal roundings the same way."""
    a = np.array([[127, 127, 3]], np.int8)
    w = np.ones((1, 3), np.int8)
    sa, sb = np.array([2.0 ** -8], F32), np.array([1.0], F32)  # acc * sa = 1 + 2^-8, a bf16 tie
    bias = np.array([1 + 2.0 ** -7 + 2.0 ** -8 - 2.0 ** -23], F32)  # just below a tie: rounds down
    y = w8a8_linear(a, sa, w, sb, bias, order="(acc*sa)*sb", bias_stage="after_cast", out="bf16")
    exact, bound = w8a8_exact(a, sa, w, sb, bias, out="bf16")
    assert Fraction(float(exact[0, 0])) == 2 + Fraction(2.0 ** -6) - Fraction(2.0 ** -23)
    assert float(y[0, 0]) == 2.0
    assert 0.99 < _ratio(y[0, 0], Fraction(float(exact[0, 0])), bound[0, 0]) <= 1


def test_da8w4_bound_nearly_attained():
    """Bias 1, then 32 block terms of exactly half an ulp of 1 (acc 1 * 2^-12 * 2^-12), each dropped."""
    k, g = 4096, 128
    nb = k // g
    a_q = np.zeros((1, k), np.uint8)
    w_q = np.full((1, k), 8, np.uint8)
    a_q[0, ::g], w_q[0, ::g] = 1, 9  # one (1) * (9 - 8) per block
    args = (a_q, np.array([2.0 ** -12], F32), np.zeros(1, np.int32), w_q, np.full((1, nb), 2.0 ** -12, F32),
            np.full((1, nb), 8, np.int8), np.ones(1, F32))
    y = da8w4_linear(*args, group_size=g, out="fp32")
    exact, bound = da8w4_exact(*args, group_size=g, out="fp32")
    assert float(y[0, 0]) == 1.0 and Fraction(float(exact[0, 0])) == 1 + nb * Fraction(HALF_ULP)
    assert 0.9 < _ratio(y[0, 0], Fraction(float(exact[0, 0])), bound[0, 0]) <= 1


def _q8_0_row(d: list[float], codes: np.ndarray) -> np.ndarray:
    blocks = [np.concatenate([np.array([v], np.float16).view(np.uint8), c.astype(np.int8).view(np.uint8)])
              for v, c in zip(d, codes.reshape(len(d), 32))]
    return np.concatenate(blocks)[None, :]


def test_vec_dot_bound_nearly_attained_by_per_element_float_terms():
    """The bound covers any split of the integer sums into float terms, down to one per element (its
    stated purpose): such a kernel, summing 1 and then K - 32 terms of half an ulp in fp32, loses them all."""
    k = 4096
    nb = k // 32
    codes = np.zeros(k, np.int64)
    codes[0] = 1
    codes[32:] = 1
    d = [1.0] + [2.0 ** -12] * (nb - 1)
    x = _q8_0_row(d, codes)
    exact, bound = vec_dot_exact("q8_0", "q8_0", x, x)
    terms = (np.repeat(np.array(d, np.float64) ** 2, 32) * codes * codes).astype(F32)  # exact in fp32
    y = seq(terms[None, :])[0]
    assert y == 1.0 and Fraction(float(exact[0])) == 1 + (k - 32) * Fraction(HALF_ULP)
    assert 0.9 < _ratio(y, Fraction(float(exact[0])), bound[0]) <= 1
