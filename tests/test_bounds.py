"""The summation bounds of oracle.bounds hold on adversarial sums and are tight enough to matter.

Exact sums come from fractions.Fraction (small K) or math.fsum of exact float64 products (large
K; fsum is correctly rounded, so the reference carries at most 2^-53 relative error, added as
slack). An fp32 accumulation in any of several orders must stay inside the bound; an fp16
accumulation, or bf16 rounding of the partial sums, must fall outside it on crafted inputs.
"""
import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from oracle.bounds import dot_bound, float_spec, gamma, height, output_rounding, sum_bound, ulp

F32 = np.float32


def seq(t):
    """Sequential fp32 sum along the last axis (np.cumsum accumulates one term at a time)."""
    return np.cumsum(t, axis=-1, dtype=t.dtype)[..., -1]


def pairwise(t):
    t = t.copy()
    while t.shape[-1] > 1:
        if t.shape[-1] % 2:
            t = np.concatenate([t, np.zeros(t.shape[:-1] + (1,), t.dtype)], axis=-1)
        t = t[..., 0::2] + t[..., 1::2]
    return t[..., 0]


def lanes8(t):
    """8 lane accumulators (term j into lane j % 8), then the AVX hsum tree."""
    n = t.shape[-1]
    pad = (-n) % 8
    t = np.concatenate([t, np.zeros(t.shape[:-1] + (pad,), t.dtype)], axis=-1)
    acc = np.cumsum(t.reshape(t.shape[:-1] + (-1, 8)), axis=-2, dtype=t.dtype)[..., -1, :]
    r = acc[..., 4:] + acc[..., :4]
    r = r[..., :2] + r[..., 2:]
    return r[..., 0] + r[..., 1]


ORDERS = {"sequential": (seq, "any"), "reversed": (lambda t: seq(t[..., ::-1]), "any"),
          "pairwise": (pairwise, "pairwise"), "lanes8": (lanes8, "lanes")}


def exact_sums(a, b):
    return np.array([math.fsum(r) for r in a.astype(np.float64) * b.astype(np.float64)])


def check(a, b, computed, bound, slack_rel=2.0 ** -53):
    ex = exact_sums(a, b)
    err = np.abs(computed.astype(np.float64) - ex)
    assert np.all(err <= bound + slack_rel * np.abs(ex)), np.max(err / bound)
    return float(np.max(err / bound))


def test_gamma_and_height():
    assert gamma(1, "fp32") >= 2.0 ** -24 and gamma(2 ** 24, "fp32") == math.inf
    assert gamma(2047, "fp16") < math.inf and gamma(2048, "fp16") == math.inf
    assert height(1024, "any") == 1023 and height(1024, "pairwise") == 10
    assert height(1024, "lanes", lanes=8) == 127 + 3
    assert height(1024, "any", products_rounded=True) == 1024


def test_ulp_matches_numpy_spacing():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.standard_normal(1000) * 10.0 ** rng.integers(-40, 38, 1000),
                        2.0 ** np.arange(-149, 127), [0.0, 1e-45]]).astype(F32)
    assert np.array_equal(ulp(x, "fp32"), np.spacing(np.abs(x)).astype(np.float64))
    h = x[np.abs(x) < 60000].astype(np.float16)
    assert np.array_equal(ulp(h, "fp16"), np.spacing(np.abs(h)).astype(np.float64))


@pytest.mark.parametrize("order", list(ORDERS))
def test_fp32_any_order_inside_bound_random(order):
    rng = np.random.default_rng(1)
    K = 4096
    a = rng.standard_normal((32, K)).astype(F32)
    b = rng.standard_normal((32, K)).astype(F32)
    fn, kind = ORDERS[order]
    computed = fn((a * b).astype(F32))  # products rounded to fp32
    abs_sum = np.abs(a.astype(np.float64) * b).sum(-1)
    ratio = check(a, b, computed, dot_bound(abs_sum, K, order=kind, products_rounded=True))
    assert ratio < 0.05  # random data sits far inside the worst case (measured: about 1e-3)


def test_fp32_massive_cancellation_and_mixed_magnitudes():
    rng = np.random.default_rng(2)
    K = 2048
    big = (rng.standard_normal(K // 2) * 1e6).astype(F32)
    a = np.concatenate([big, -big, rng.standard_normal(0)]).astype(F32)
    a = np.concatenate([a[:K - 64], (rng.standard_normal(64) * 1e-6).astype(F32)])[None, :]
    b = np.ones_like(a)
    for fn, kind in ORDERS.values():
        computed = fn((a * b).astype(F32))
        bound = dot_bound(np.abs(a.astype(np.float64)).sum(-1), K, order=kind, products_rounded=True)
        check(a, b, computed, bound)


def test_fp32_huge_k_sequential_and_lanes():
    rng = np.random.default_rng(3)
    K = 2 ** 20
    a = rng.random((2, K)).astype(F32)  # all positive: errors accumulate, no cancellation
    b = rng.random((2, K)).astype(F32)
    t = (a * b).astype(F32)
    abs_sum = (a.astype(np.float64) * b).sum(-1)
    r_seq = check(a, b, seq(t), dot_bound(abs_sum, K, order="any"))
    r_lanes = check(a, b, lanes8(t), dot_bound(abs_sum, K, order="lanes"))
    assert r_seq < 1 and r_lanes < 1


def test_bound_is_tight_on_worst_case():
    """1 followed by n-1 terms of exactly half an ulp of 1: each ties to even and is lost."""
    n = 4097
    t = np.full((1, n), 2.0 ** -24, dtype=F32)
    t[0, 0] = 1.0
    computed = seq(t)
    assert computed[0] == 1.0
    exact = Fraction(1) + (n - 1) * Fraction(2) ** -24
    err = float(exact - 1)
    bound = sum_bound(float(exact), height(n, "any"))[()]
    assert err <= bound and err / bound > 0.99  # the bound is essentially attained


def test_fp16_accumulation_falls_outside_fp32_bound():
    rng = np.random.default_rng(4)
    K = 1024
    a = rng.random((8, K)).astype(np.float16).astype(F32)
    b = rng.random((8, K)).astype(np.float16).astype(F32)
    t = (a.astype(np.float64) * b)
    fp32_bound = dot_bound(t.sum(-1), K, order="any")
    fp16_acc = seq((a * b).astype(np.float16))
    err = np.abs(fp16_acc.astype(np.float64) - exact_sums(a, b))
    assert np.all(err > fp32_bound)  # every row is caught
    fp16_bound = dot_bound(t.sum(-1), K, acc="fp16", order="any")
    assert np.all(err <= fp16_bound)  # and the fp16 bound, when declared, does hold


def test_bf16_partial_sums_fall_outside_fp32_bound():
    rng = np.random.default_rng(5)
    K = 256
    a = rng.random((8, K)).astype(F32)
    b = rng.random((8, K)).astype(F32)
    acc = np.zeros(8, F32)
    for j in range(K):  # a kernel that stores its running sum in bf16
        acc = (acc + a[:, j] * b[:, j]).astype(ml_dtypes.bfloat16).astype(F32)
    bound = dot_bound((a.astype(np.float64) * b).sum(-1), K, order="any")
    err = np.abs(acc - exact_sums(a, b))
    assert np.all(err > bound)


def test_underflow_term_is_needed():
    """Products below fp32's subnormal range vanish; only the eta term covers them."""
    K = 64
    a = np.full((1, K), 2.0 ** -80, F32)
    b = np.full((1, K), 2.0 ** -80, F32)
    computed = seq((a * b).astype(F32))
    assert computed[0] == 0.0
    exact = K * 2.0 ** -160
    assert exact > gamma(K, "fp32") * exact  # a purely relative bound would reject it
    assert exact <= dot_bound(np.array([exact]), K, order="any")[0]


def test_stage_rounding_bf16_weights():
    """Weights rounded to bf16 before an fp32 dot: needs the stage term, and it suffices."""
    rng = np.random.default_rng(6)
    K = 512
    x = rng.random((8, K)).astype(F32)
    w = rng.random((8, K)).astype(F32)
    wb = w.astype(ml_dtypes.bfloat16).astype(F32)
    computed = seq((x * wb).astype(F32))
    abs_sum = (x.astype(np.float64) * w).sum(-1)
    err = np.abs(computed - exact_sums(x, w))
    assert np.any(err > dot_bound(abs_sum, K))
    assert np.all(err <= dot_bound(abs_sum, K, stage_dtypes=("bf16",)))


def test_output_rounding_bf16():
    rng = np.random.default_rng(7)
    y = rng.standard_normal(10000) * 100
    r = y.astype(ml_dtypes.bfloat16).astype(np.float64)
    assert np.all(np.abs(r - y) <= output_rounding(np.abs(y), "bf16"))
    assert output_rounding(70000.0, "fp16") == np.inf
    assert float_spec(ml_dtypes.bfloat16).u == 2.0 ** -8
