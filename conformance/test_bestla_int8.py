"""auto-round-lib's `woqgemm_s8` (dynamic int8 activations), judged by the oracle.

`woqgemm_s8` runs on the oneDNN the package bundles; its arithmetic is oracle.gemm.bestla_woq's
`woqgemm_s8_model` (activations by act.onednn.s8.per_tensor: sa = fp32(amax * fp32(1/127)),
q = RNE(x * fp32(1/sa)) saturated; y = float(acc) * (sa * sb[n]) + bias, acc the exact int32 sum), with
the GEMM value and bound of oracle.gemm.w8a8. On AVX2 without VNNI oneDNN runs s8 x s8 as
u8 (q + 128) x s8 with vpmaddubsw, whose int16 pair sums saturate: full-range weights give
wrong sums (known defect); weights within [-63, 63] cannot saturate.
`igemm_s8s8s32` is judged by conformance/test_specs.py (its KernelSpec in kernels/bestla/__init__.py).
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance import calls
from oracle.gemm.bestla_woq import S8_ACTIVATIONS as S8_CONV
from oracle.gemm.bestla_woq import woqgemm_s8_model
from oracle.strategies import float_arrays, int8_codes
from oracle.verdict import compare_bounded

MOD = "kernels.bestla.ark"


def s8_case(qsession, judge, x, w, sb, bias):
    shape = (x.shape[0], x.shape[1], w.shape[0])
    calls.require_available(qsession, judge, "bestla.woqgemm_s8", MOD, S8_CONV, shape=shape)
    y = calls.run(qsession, judge, "bestla.woqgemm_s8", MOD, "woqgemm_s8", x, w, sb, bias, convention=S8_CONV,
                  shape=shape)
    pred, exact, bound = woqgemm_s8_model(x, w, sb, bias)
    res = compare_bounded(exact, bound, y, out_dtype="fp32", convention=S8_CONV, predicted=pred,
                          what="woqgemm_s8 fp32 = int8 per-tensor x int8 per-channel")
    judge(res, kernel="bestla.woqgemm_s8", shape=shape)


@pytest.mark.kernel("bestla.woqgemm_s8")
@pytest.mark.parametrize("wmax", [63, 127], ids=["w63", "w127"])
@pytest.mark.parametrize("mkn", [(1, 256, 16), (7, 4096, 33)], ids=["gemv", "k4096"])
def test_woqgemm_s8(qsession, judge, wmax, mkn):
    m, k, n = mkn
    rng = np.random.default_rng(wmax + k)
    w = rng.integers(-wmax, wmax + 1, (n, k)).astype(np.int8)
    sb = (rng.random(n) / 100 + 1e-4).astype(np.float32)
    x = rng.standard_normal((m, k)).astype(np.float32)
    s8_case(qsession, judge, x, w, sb, rng.standard_normal(n).astype(np.float32))


@pytest.mark.kernel("bestla.woqgemm_s8")
def test_woqgemm_s8_ties(qsession, judge):
    """amax 127 makes sa = 1 (127 * fp32(1/127) rounds to 1): x = j + 0.5 sit on RNE ties."""
    x = np.zeros((2, 64), np.float32)
    x[:, 0] = 127
    x[0, 1:] = np.arange(63) % 9 - 4.5
    x[1, 1:] = -(np.arange(63) % 7) - 0.5
    w = np.eye(64, dtype=np.int8)[:32] * 63
    s8_case(qsession, judge, x, w, np.ones(32, np.float32), None)


@pytest.mark.kernel("bestla.woqgemm_s8")
def test_woqgemm_s8_reciprocal_not_divide(qsession, judge):
    """Inputs where RNE(x * fp32(1/sa)) and RNE(x / sa) give different codes (amax 100): the
    convention says which one oneDNN's reorder computes, so one of the two models must fail."""
    f32 = np.float32
    sa = f32(f32(100) * f32(f32(1) / f32(127)))
    r = f32(f32(1) / sa)
    near = [np.nextafter(f32((j + 0.5) * np.float64(sa)), f32(d), dtype=f32)
            for j in range(-120, 120) for d in (-np.inf, np.inf)]
    split = [v for v in near if abs(v) < 100 and np.rint(f32(v / sa)) != np.rint(f32(v * r))]
    assert len(split) >= 8, "the construction must find inputs that separate the two roundings"
    x = np.zeros((1, 64), f32)
    x[0, 0] = 100
    x[0, 1:1 + min(63, len(split))] = split[:63]
    s8_case(qsession, judge, x, np.eye(64, dtype=np.int8) * 63, np.ones(64, f32), None)


@pytest.mark.kernel("bestla.woqgemm_s8")
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], max_examples=10)
@given(data=st.data())
def test_woqgemm_s8_hypothesis(qsession, judge, data):
    m = data.draw(st.sampled_from([1, 3, 8, 17]))
    k = 2 * data.draw(st.integers(16, 256))
    n = data.draw(st.sampled_from([1, 8, 32]))
    x = data.draw(float_arrays((m, k), kinds=("normal", "zero_group", "half_steps", "max_ties", "mixed")))
    w = (data.draw(int8_codes((n, k))).astype(np.int16) // 2).astype(np.int8)  # [-64, 63]: no int16 saturation
    s8_case(qsession, judge, x, w, np.full(n, 0.01, np.float32), None)
