"""torch._int_mm against the exact int32 accumulator, byte for byte (oracle.gemm.w8a8)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance import calls
from oracle.gemm.w8a8 import int8_matmul, wrap_int32
from oracle.strategies import gemm_shapes, int8_codes
from oracle.verdict import compare_exact

KERNEL = "torch.int_mm"
MODULE = "kernels.pytorch.int_mm"
CONV = "w8a8 int32 accumulator (wraps mod 2^32)"
pytestmark = pytest.mark.kernel(KERNEL)


def _judge(qsession, judge, a: np.ndarray, b: np.ndarray) -> None:
    shape = (a.shape[0], a.shape[1], b.shape[0])
    calls.require_available(qsession, judge, KERNEL, MODULE, CONV)
    run = calls.run_observed(qsession, judge, KERNEL, MODULE, "int_mm", a, np.ascontiguousarray(b.T), convention=CONV,
                             what="_int_mm int32 output", shape=shape)
    exact = int8_matmul(a, b)
    res = compare_exact(wrap_int32(exact), run.outcome.value, convention=CONV, what="_int_mm int32 output")
    judge(res, kernel=KERNEL, shape=shape, observed_isa=run.isa())


_CRAFTED = {  # name -> (a value, b value) filling the operands; -128 * -128 is the largest product
    "min_x_min": (-128, -128), "min_x_max": (-128, 127), "max_x_max": (127, 127), "zero_x_min": (0, -128),
}


@pytest.mark.parametrize("case", sorted(_CRAFTED))
@pytest.mark.parametrize("mkn", [(1, 1, 1), (1, 4096, 16), (17, 33, 7), (64, 256, 48)])
def test_int_mm_extremes(qsession, judge, case: str, mkn: tuple[int, int, int]) -> None:
    m, k, n = mkn
    va, vb = _CRAFTED[case]
    _judge(qsession, judge, np.full((m, k), va, np.int8), np.full((n, k), vb, np.int8))


def test_int_mm_wraps_past_int32(qsession, judge) -> None:
    """K * 16384 > 2^31: the documented int32 result is the low 32 bits of the exact sum."""
    if qsession.profile != "full":
        pytest.skip("full profile only (a 131200-long dot product)")
    k = 131200
    _judge(qsession, judge, np.full((1, k), -128, np.int8), np.full((2, k), -128, np.int8))


def test_int_mm_hypothesis(qsession, judge) -> None:
    """Full-range int8 operands (extremes, alternating, uniform) over GEMV to large M."""
    n_examples = 6 if qsession.profile == "quick" else 60
    max_m = 64 if qsession.profile == "quick" else 512

    @settings(max_examples=n_examples)
    @given(data=st.data(), shape=gemm_shapes(max_k=1024, max_m=max_m))
    def case(data, shape):
        m, k, n = shape
        a = data.draw(int8_codes((m, k)))
        b = data.draw(int8_codes((n, k)))
        _judge(qsession, judge, a, b)

    case()
