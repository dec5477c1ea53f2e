"""torchao's CPU kernels: DA8W4 (where a build has it) and the intmm int8 paths, judged by the oracle.

int_matmul must equal oracle.gemm.w8a8.int8_matmul byte for byte (int32); int_scaled_matmul is
`float(acc) * scales1`, oracle.gemm.w8a8's '(acc*sa)*sb' epilogue with sb = 1 (bit-exact
prediction) inside w8a8_exact's bound.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance import calls
from oracle.gemm.w8a8 import epilogue, int8_matmul, w8a8_exact, wrap_int32
from oracle.strategies import int8_codes
from oracle.verdict import Result, compare_bounded, compare_exact

MOD = "kernels.torchao.ao"


@pytest.mark.kernel("torchao.da8w4_linear_cpu")
def test_da8w4_linear_cpu(qsession, judge):
    """Runs only where the op has a CPU kernel; the wheel here has none and says exactly why."""
    av = qsession.worker.call(MOD, "available_da8w4")
    detail = av.value["reason"] if av.ok else av.detail
    if av.ok and av.value["ok"]:
        detail = "op present, but this adapter does not drive the prepacked layout yet (oracle.gemm.da8w4 is ready)"
    judge(Result("UNAVAILABLE", "torchao.da8w4.opaque", "da8w4_linear_cpu", detail=detail),
          kernel="torchao.da8w4_linear_cpu")


def int_case(qsession, judge, a, w):
    shape = (a.shape[0], a.shape[1], w.shape[0])
    calls.require_available(qsession, judge, "torchao.int_matmul", MOD, "w8a8 int32", shape=shape)
    c = calls.run(qsession, judge, "torchao.int_matmul", MOD, "int_matmul", a, np.ascontiguousarray(w.T),
                  convention="w8a8 int32", shape=shape)
    judge(compare_exact(wrap_int32(int8_matmul(a, w)), c, convention="w8a8 int32", what="int_matmul int32"),
          kernel="torchao.int_matmul", shape=shape)


def scaled_case(qsession, judge, a, w, sa):
    shape = (a.shape[0], a.shape[1], w.shape[0])
    calls.require_available(qsession, judge, "torchao.int_scaled_matmul", MOD, "w8a8 (acc*sa)*sb", shape=shape)
    y = calls.run(qsession, judge, "torchao.int_scaled_matmul", MOD, "int_scaled_matmul", a,
                  np.ascontiguousarray(w.T), sa, convention="w8a8 (acc*sa)*sb", shape=shape)
    ones = np.ones(w.shape[0], np.float32)
    exact, bound = w8a8_exact(a, sa, w, ones, out="fp32")
    pred = epilogue(wrap_int32(int8_matmul(a, w)), sa, ones, "(acc*sa)*sb")
    judge(compare_bounded(exact, bound, y, out_dtype="fp32", convention="w8a8 (acc*sa)*sb", predicted=pred,
                          what="int_scaled_matmul fp32"), kernel="torchao.int_scaled_matmul", shape=shape)


@pytest.mark.kernel("torchao.int_matmul")
@pytest.mark.parametrize("pattern", ["all_min", "all_max", "alternating", "random"])
def test_int_matmul_crafted(qsession, judge, pattern):
    """Full-range codes: -128 x -128 over K = 4096 sums to 2^26, far inside int32."""
    rng = np.random.default_rng(1)
    fill = {"all_min": -128, "all_max": 127}
    if pattern in fill:
        a, w = np.full((3, 4096), fill[pattern], np.int8), np.full((5, 4096), -128, np.int8)
    elif pattern == "alternating":
        a = np.where(np.indices((2, 1024)).sum(0) % 2, 127, -128).astype(np.int8)
        w = np.where(np.indices((7, 1024)).sum(0) % 2, -128, 127).astype(np.int8)
    else:
        a, w = rng.integers(-128, 128, (17, 768), dtype=np.int8), rng.integers(-128, 128, (48, 768), dtype=np.int8)
    int_case(qsession, judge, a, w)


@pytest.mark.kernel("torchao.int_scaled_matmul")
@pytest.mark.parametrize("m", [1, 16])
def test_int_scaled_matmul_crafted(qsession, judge, m):
    rng = np.random.default_rng(2 + m)
    a, w = rng.integers(-128, 128, (m, 1024), dtype=np.int8), rng.integers(-128, 128, (32, 1024), dtype=np.int8)
    sa = (rng.random(m) * 1e-3 + 1e-6).astype(np.float32)
    scaled_case(qsession, judge, a, w, sa)


@pytest.mark.kernel("torchao.int_scaled_matmul")
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], max_examples=10)
@given(data=st.data())
def test_int_scaled_matmul_hypothesis(qsession, judge, data):
    m = data.draw(st.sampled_from([1, 2, 5, 17, 64]))
    k = data.draw(st.sampled_from([16, 64, 200, 1024]))
    n = data.draw(st.sampled_from([8, 16, 48]))
    a, w = data.draw(int8_codes((m, k))), data.draw(int8_codes((n, k)))
    sa = np.asarray(data.draw(st.lists(st.floats(2.0 ** -20, 8.0, width=32), min_size=m, max_size=m)), np.float32)
    scaled_case(qsession, judge, a, w, sa)
