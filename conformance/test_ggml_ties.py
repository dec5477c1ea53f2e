"""libggml's 8-bit quantizers on exact rounding ties, judged byte for byte by the oracle.

The structured kinds of oracle.strategies put ties on the 4-bit grids (divisor 8); 8-bit codes
have divisor 127, so those inputs never land on x * id = j + 1/2 and cannot tell round half away
from zero (the reference quantizers' roundf, ggml-quants.c quantize_row_q8_0_ref) from round half
to even (the x86 activation path's _mm256_round_ps, ggml-cpu quants.c quantize_row_q8_0). Here
each 32-block holds +-127 t and values (j + 1/2) t for a power of two t, so d = t and id = 1/t
(reference) or 127/amax = 1/t (x86) are exact and every other element is a tie.
"""
from __future__ import annotations

import numpy as np
import pytest

import oracle
from conformance import calls
from conformance.test_ggml import _simd_path, _simd_ready
from oracle.verdict import compare_exact

M = "kernels.ggml.calls"


def tie_rows(rows_per_scale: int = 2) -> np.ndarray:
    """Rows of two 32-blocks: element 0 of each block is +-127 t, the rest (j + 1/2) t, j in [-127, 126]."""
    rng = np.random.default_rng(127)
    rows = []
    for t in (2.0 ** -3, 1.0, 2.0 ** 5):
        for _ in range(rows_per_scale):
            x = (rng.integers(-127, 127, 64) + 0.5) * t
            x[0::32] = 127 * t * rng.choice([-1, 1], 2)
            rows.append(x)
    return np.array(rows, np.float32)


@pytest.mark.kernel("ggml.quantize")
@pytest.mark.parametrize("convention", ["q8_0", "q8_1"])
def test_reference_quantizer_ties(qsession, judge, convention):
    _judge(qsession, judge, "ggml.quantize", "quantize", convention, convention)


@pytest.mark.kernel("ggml.from_float")
@pytest.mark.parametrize("convention", ["q8_0.x86", "q8_1.x86"])
def test_x86_activation_quantizer_ties(qsession, judge, convention):
    """The x86 activation quantizers, or the reference ones where the loaded CPU variant has no AVX."""
    observed = _simd_ready(qsession, judge, "ggml.from_float", convention)
    _judge(qsession, judge, "ggml.from_float", "from_float", _simd_path(convention, observed), convention.split(".")[0])


def _judge(qsession, judge, kernel: str, func: str, convention: str, type_name: str) -> None:
    calls.require_available(qsession, judge, kernel, M, convention)
    x = tie_rows(2 if qsession.profile == "quick" else 16)
    got = calls.run(qsession, judge, kernel, M, func, x, type_name, convention=convention, shape=x.shape)
    judge(compare_exact(oracle.quantize(x, convention), got, convention=convention,
                        block_size=oracle.get_format(convention).block_bytes, what="blocks of exact rounding ties"),
          kernel=kernel, shape=x.shape)
