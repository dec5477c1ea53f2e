"""The shared strategies produce what they promise (structure, ranges, policies)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oracle.strategies import (GROUP_SIZES, LLM_LAYER_SHAPES, float_arrays, gemm_shapes, group_sizes,
                               int8_codes)


@given(st.data())
def test_shapes_on_and_off_group_multiples(data):
    g = data.draw(group_sizes())
    assert g in GROUP_SIZES
    off = data.draw(st.booleans())
    m, k, n = data.draw(gemm_shapes(g, off_multiple=off, max_k=1024))
    gg = g if g > 0 else 32
    assert m >= 1 and n >= 1 and k >= gg
    assert (k % gg != 0) == off


@given(gemm_shapes(real_layers=True))
def test_real_layer_shapes(shape):
    assert shape[1:] in LLM_LAYER_SHAPES


@pytest.mark.parametrize("kind", ["zero_group", "constant_group", "half_steps", "max_ties", "subnormal", "huge"])
@settings(max_examples=10)
@given(data=st.data())
def test_float_kinds_have_their_structure(kind, data):
    x = data.draw(float_arrays((3, 96), group_size=32, kinds=(kind,)))
    assert x.dtype == np.float32 and x.shape == (3, 96) and np.all(np.isfinite(x))
    g = x.reshape(3, 3, 32)
    if kind == "constant_group":
        assert np.all(g == g[..., :1])
    elif kind == "half_steps":
        assert np.all(np.abs(x) > 0)
    elif kind == "max_ties":
        amax = np.max(np.abs(g), axis=-1)
        assert np.all((g == amax[..., None]).any(-1) & (g == -amax[..., None]).any(-1))
    elif kind == "subnormal":
        assert np.all(np.abs(x) < np.finfo(np.float32).tiny)
    elif kind == "huge":
        assert np.max(np.abs(x)) > 1e36


@settings(max_examples=20)
@given(float_arrays((4, 64), nonfinite="inject"))
def test_nonfinite_injection(x):
    assert (~np.isfinite(x)).any()


@given(int8_codes((4, 32)))
def test_int8_patterns_in_range(q):
    assert q.dtype == np.int8 and q.shape == (4, 32)


def test_int8_patterns_cover_extremes():
    seen = set()

    @settings(max_examples=50)
    @given(int8_codes((2, 4), patterns=("all_min", "all_max", "alternating")))
    def collect(q):
        seen.add((int(q.min()), int(q.max())))
    collect()
    assert {(-128, -128), (127, 127), (-128, 127)} <= seen
