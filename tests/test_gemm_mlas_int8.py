"""oracle.gemm.mlas_int8: the integer models, the requantization and the quantizer on hand-checked values."""
from __future__ import annotations

import numpy as np

from oracle.gemm.mlas_int8 import (accumulator, dynamic_quantize_u8, float_output, model_for, qlinear_scale,
                                   requantize, u8s8_saturates)

F = np.float32


def test_documented_overflow_figures() -> None:
    a, b = np.full((1, 256), 255, np.uint8), np.full((256, 2), 127, np.int8)
    assert accumulator(a, 0, b, 0)[0, 0] == 255 * 127 * 256 == 8290560
    assert accumulator(a, 0, b, 0, "u8s8_int16_pairs")[0, 0] == 32767 * 128 == 4194176
    b[:, 1] = -128
    assert accumulator(a, 0, b, 0, "u8s8_int16_pairs")[0, 1] == -32768 * 128


def test_pairs_are_adjacent_k_and_raw_codes() -> None:
    # 255*127 + 191*2 = 32767 fits; 255*127 + 192*2 = 32769 saturates to 32767; an odd tail pairs with 0
    a = np.array([[255, 191, 7], [255, 192, 7]], np.uint8)
    b = np.array([[127], [2], [3]], np.int8)
    assert accumulator(a, 0, b, 0, "u8s8_int16_pairs")[:, 0].tolist() == [32767 + 21, 32767 + 21]
    # zero points never enter the pairs: the corrections are exact int32 terms
    za, zb = 100, np.array([-5], np.int8)
    pairs = accumulator(a, za, b, zb, "u8s8_int16_pairs")[:, 0].astype(np.int64)
    exact = accumulator(a, za, b, zb)[:, 0].astype(np.int64)
    assert (exact - pairs).tolist() == [0, 2]


def test_models_agree_where_no_pair_can_saturate() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (7, 301), dtype=np.uint8)
    b = rng.integers(-64, 65, (301, 5), dtype=np.int8)
    zb = rng.integers(-128, 128, 5, dtype=np.int8)
    assert np.array_equal(accumulator(a, 255, b, zb), accumulator(a, 255, b, zb, "u8s8_int16_pairs"))


def test_model_for() -> None:
    avx2 = frozenset({"avx2", "fma"})
    b = np.array([[127]], np.int8)
    assert model_for(np.uint8, np.int8, avx2) == "u8s8_int16_pairs"
    assert model_for(np.uint8, np.int8, avx2 | {"avx512_vnni"}) == "exact"
    assert model_for(np.uint8, np.int8, avx2 | {"avx_vnni"}) == "exact"
    assert model_for(np.uint8, np.uint8, avx2) == model_for(np.int8, np.int8, avx2) == "exact"
    assert model_for(np.uint8, np.int8, avx2, precision=True, b_codes=b) == "exact"
    assert model_for(np.uint8, np.int8, avx2, precision=True, b_const=False, b_codes=b) == "u8s8_int16_pairs"
    assert model_for(np.uint8, np.int8, avx2, precision=True, b_codes=b, op="qlinearmatmul",
                     opset=21) == "u8s8_int16_pairs"
    assert not u8s8_saturates({"sse4_1"}) and u8s8_saturates(avx2)


def test_requantize_rounds_half_to_even_then_saturates() -> None:
    acc = np.array([[1, 3, 5, -1, -3, -5, 1000, -1000]], np.int32)
    assert requantize(acc, F(0.5), 128, np.uint8).tolist() == [[128, 130, 130, 128, 126, 126, 255, 0]]
    assert requantize(acc, F(0.5), -3, np.int8).tolist() == [[-3, -1, -1, -3, -5, -5, 127, -128]]
    assert qlinear_scale(F(0.1), F(0.3), F(0.7))[0] == (F(0.1) * F(0.3)) / F(0.7)


def test_dynamic_quantize_u8_ties_and_degenerate() -> None:
    codes, s, z = dynamic_quantize_u8(np.array([[-127, 128, 0.5, 1.5, 2.5, -0.5]], F))
    assert (s, z) == (F(1), 127) and codes.tolist() == [[0, 255, 127, 129, 129, 127]]
    codes, s, z = dynamic_quantize_u8(np.array([-2.5, 252.5], F))
    assert (s, z) == (F(1), 2) and codes.tolist() == [0, 254]
    codes, s, z = dynamic_quantize_u8(np.zeros(4, F))
    assert (s, z) == (F(1), 0) and codes.tolist() == [0, 0, 0, 0]


def test_float_output_is_two_roundings_without_fma() -> None:
    acc = np.array([[16777217, 3]], np.int32)  # 2^24 + 1 rounds to 2^24 in float(acc)
    pred, exact, bound = float_output(acc, F(1), F(1), np.array([F(1), F(0.1)]))
    assert pred[0, 0] == F(16777216) + F(1) and pred[0, 1] == F(3) + F(0.1)
    assert np.all(np.abs(pred.astype(np.float64) - exact) <= bound)


def test_quantize_linear_ties_saturation_and_fp16() -> None:
    from oracle.gemm.mlas_int8 import quantize_linear

    s = F(0.25)
    x = (np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 1000, -1000, -0.0]) * 0.25).astype(F)
    assert quantize_linear(x, s, np.uint8(128)).tolist() == [128, 130, 130, 128, 126, 126, 255, 0, 128]
    assert quantize_linear(x, s, np.int8(-3)).tolist() == [-3, -1, -1, -3, -5, -5, 127, -128, -3]
    # one ulp above a tie rounds up, one below rounds down
    up, down = np.nextafter(F(2.5 * 0.25), F(np.inf)), np.nextafter(F(2.5 * 0.25), F(-np.inf))
    assert quantize_linear(np.array([up, down], F), s, np.uint8(0)).tolist() == [3, 2]
    # fp16: widened to fp32, then one fp32 division (0.0500183 / 0.0999756 = 0.5003... -> 1, not truncated to 0)
    h = np.array([0.0500183, -0.0500183], np.float16)
    assert quantize_linear(h, np.float16(0.0999756), np.int8(0)).tolist() == [1, -1]
    # per axis: scale and zero point broadcast along `axis`
    x2 = np.array([[0.5, 1.5], [2.5, 3.5]], F)
    assert quantize_linear(x2, np.array([1, 0.5], F), np.array([0, 10], np.uint8), axis=0).tolist() == \
        [[0, 2], [15, 17]]
    assert quantize_linear(x2, np.array([1, 0.5], F), np.array([0, 10], np.uint8), axis=1).tolist() == \
        [[0, 13], [2, 17]]
