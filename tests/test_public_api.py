"""oracle.quantize / oracle.dequantize: one entry point for block formats and conventions."""
import numpy as np
import pytest

import oracle
from oracle import conventions

X = np.random.default_rng(7).standard_normal((3, 256)).astype(np.float32)


@pytest.mark.parametrize("bad, match", [
    (X.astype(np.float64), "float32 numpy array"),
    (X.tolist(), "float32 numpy array"),
    (X[0], r"shape \(rows, K\)"),
    (X[:, :100], "not a multiple of the block size 32"),
])
def test_quantize_rejects_bad_input_in_one_line(bad, match):
    with pytest.raises(ValueError, match=match) as e:
        oracle.quantize(bad, "q4_0")
    assert "\n" not in str(e.value)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown format 'q4_2'.*q4_0"):
        oracle.quantize(X, "q4_2")


def test_dequantize_rejects_bad_input():
    q = oracle.quantize(X, "q4_0")
    with pytest.raises(ValueError, match="uint8"):
        oracle.dequantize(q.view(np.int8), "q4_0")
    with pytest.raises(ValueError, match="not a multiple of the block size 18"):
        oracle.dequantize(q[:, :20], "q4_0")


def test_format_shapes():
    for name in oracle.format_names():
        fmt = oracle.get_format(name)
        k = 256 * fmt.block_size // np.gcd(256, fmt.block_size)
        x = np.random.default_rng(1).standard_normal((2, k)).astype(np.float32)
        q = oracle.quantize(x, name)
        assert q.dtype == np.uint8 and q.shape == (2, k // fmt.block_size * fmt.block_bytes), name
        assert oracle.dequantize(q, name).shape == (2, k), name


@pytest.mark.parametrize("name", conventions.names("weight"))
def test_conventions_round_trip_through_the_same_functions(name):
    conv = conventions.get(name)
    packed = oracle.quantize(X, name)
    assert int(packed["k"]) == X.shape[1]
    direct = conv.dequantize(conv.quantize(X))
    assert np.array_equal(oracle.dequantize(packed, name).view(np.uint32), direct.view(np.uint32))
    with pytest.raises(ValueError, match="dict of arrays"):
        oracle.dequantize(np.zeros((3, 8), np.uint8), name)
