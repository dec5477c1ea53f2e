"""The verdict API: statuses, the failure message's required content, metrics, JSON."""
import json

import ml_dtypes
import numpy as np

from oracle.verdict import Verdict, compare_bounded, compare_exact, ulp_distance


def test_exact_equal_is_bit_exact():
    a = np.arange(64, dtype=np.uint8).reshape(2, 32)
    r = compare_exact(a, a.copy(), convention="q4_0", block_size=18)
    assert r.status == Verdict.BIT_EXACT and r.ok and r.mismatch is None


def test_exact_failure_names_element_block_bytes_and_bits():
    e = np.zeros((3, 64), dtype=np.uint8)
    a = e.copy()
    a[2, 40] = 0b00100100
    a[2, 50] = 1
    r = compare_exact(e, a, convention="q4_0", block_size=18, what="packed weight")
    r.reproduce = "python -m qoracle repro 123"
    assert r.status == "FAIL" and not r.ok
    m = r.mismatch
    assert m.index == (2, 40) and m.block == (2, 2) and m.count == 2
    assert (m.expected_hex, m.actual_hex, m.xor_hex) == ("0x00", "0x24", "0x24")
    assert m.differing_bits == [2, 5]
    text = r.message()
    for piece in ("q4_0", "packed weight", "(2, 40)", "block (2, 2)", "0x24", "[2, 5]", "python -m qoracle repro 123"):
        assert piece in text, piece


def test_exact_float_fail_reports_values_and_ulp():
    e = np.array([1.0, -2.0, 3.0], dtype=ml_dtypes.bfloat16)
    a = e.copy()
    a[1] = np.nextafter(np.float32(-2.0), np.float32(-3.0)).astype(ml_dtypes.bfloat16)  # rounds back to -2
    a[2] = ml_dtypes.bfloat16(3.015625)  # next bf16 above 3.0
    r = compare_exact(e, a, convention="bf16 out")
    assert r.mismatch.index == (2,) and r.mismatch.expected == 3.0 and r.mismatch.actual == 3.015625
    assert r.mismatch.xor_hex == "0x0001" and r.metrics.max_ulp == 1


def test_exact_nan_payload_and_signed_zero_are_bytes():
    e = np.array([0.0, np.nan], dtype=np.float32)
    a = np.array([-0.0, np.nan], dtype=np.float32)
    r = compare_exact(e, a, convention="c")
    assert r.status == "FAIL" and r.mismatch.index == (0,) and r.mismatch.differing_bits == [31]
    assert compare_exact(e[1:], a[1:], convention="c").status == "BIT_EXACT"


def test_shape_mismatch_fails_with_detail():
    r = compare_exact(np.zeros(3, np.int32), np.zeros(4, np.int32), convention="c")
    assert r.status == "FAIL" and "shape" in r.message()


def test_bounded_statuses_and_ratio():
    exact = np.array([1.0, 2.0, -3.0])
    bound = np.full(3, 2.0 ** -20)
    actual = (exact + np.array([2.0 ** -22, -(2.0 ** -21), 0.0])).astype(np.float32)
    r = compare_bounded(exact, bound, actual, out_dtype="fp32", convention="w4a16")
    assert r.status == Verdict.BOUNDED
    assert r.worst_ratio == 0.5
    assert r.metrics.max_ulp == 4  # 2 - 2^-21 lies in [1, 2), where the fp32 ulp is 2^-23
    r2 = compare_bounded(exact, bound, actual, out_dtype="fp32", convention="w4a16", predicted=actual.copy())
    assert r2.status == Verdict.BIT_EXACT


def test_bounded_failure_message_has_bound_and_error():
    exact = np.array([[0.5, 1.0]])
    bound = np.array([[1e-3, 1e-3]])
    actual = np.array([[0.5, 1.125]], dtype=np.float16)
    r = compare_bounded(exact, bound, actual, out_dtype="fp16", convention="da8w4 sym", block_size=1)
    assert r.status == "FAIL"
    m = r.mismatch
    assert m.index == (0, 1) and m.bound == 1e-3 and m.error == 0.125 and m.expected == 1.0
    assert m.expected_hex == "0x3c00" and m.actual_hex == "0x3c80"
    text = r.message()
    for piece in ("da8w4 sym", "(0, 1)", "0x3c80", "exceeds bound 0.001", "0.125"):
        assert piece in text, piece


def test_bounded_nonfinite_policy():
    exact = np.array([np.inf, np.nan, 1.0])
    actual = np.array([np.inf, np.nan, 1.0], dtype=np.float32)
    assert compare_bounded(exact, 0.0, actual, out_dtype="fp32", convention="c").status == "BOUNDED"
    actual[0] = np.float32(3e38)
    assert compare_bounded(exact, 1e300, actual, out_dtype="fp32", convention="c").status == "FAIL"


def test_metrics_nmse_sqnr():
    e = np.array([3.0, 4.0], dtype=np.float32)
    a = np.array([3.0, 4.5], dtype=np.float32)
    r = compare_exact(e, a, convention="c")
    assert r.metrics.nmse == 0.25 / 25 and abs(r.metrics.sqnr_db - 20.0) < 1e-12 and r.metrics.max_abs == 0.5


def test_ulp_distance_crosses_zero():
    tiny = np.array([np.float32(1e-45)])
    assert ulp_distance(-tiny, tiny, "fp32")[0] == 2
    assert ulp_distance(np.array([0.0], np.float32), np.array([-0.0], np.float32), "fp32")[0] == 0


def test_to_dict_is_json():
    r = compare_exact(np.zeros(2, np.float32), np.ones(2, np.float32), convention="c")
    d = json.loads(json.dumps(r.to_dict()))
    assert d["status"] == "FAIL" and d["mismatch"]["index"] == [0] and d["metrics"]["sqnr_db"] == "-inf"
