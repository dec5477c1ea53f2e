"""The verdict API: statuses (SUSPECT between the two bound tiers), the failure message's required content, metrics, JSON."""
import json

import ml_dtypes
import numpy as np

import pytest

from oracle.bounds import FAILURE_PROBABILITY, Bound
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
    for piece in ("da8w4 sym", "(0, 1)", "0x3c80", "exceeds bound 0.001", "0.125", "worst error/bound 125 at (0, 1)"):
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


def test_bounded_boundary_is_the_bound_itself():
    """An error equal to the bound passes; 1.25x the bound fails (a verdict that let errors up to 2x pass is caught)."""
    exact = np.array([1.0, 1.0])
    bound = np.full(2, 2.0 ** -21)
    at = np.array([1.0 + 2.0 ** -21, 1.0], dtype=np.float32)
    r = compare_bounded(exact, bound, at, out_dtype="fp32", convention="c")
    assert r.status == "BOUNDED" and r.worst_ratio == 1.0
    over = np.array([1.0 + 5 * 2.0 ** -23, 1.0], dtype=np.float32)  # 1.25 x the bound
    r = compare_bounded(exact, bound, over, out_dtype="fp32", convention="c")
    assert r.status == "FAIL" and r.worst_ratio == 1.25 and r.mismatch.index == (0,)


def test_suspect_between_the_tiers():
    exact = np.array([[1.0, 2.0, 3.0]])
    rig = np.full((1, 3), 2.0 ** -18)
    prob = np.full((1, 3), 2.0 ** -21)
    actual = (exact + np.array([[0.0, 2.0 ** -20, 2.0 ** -22]])).astype(np.float32)
    for kw in ({"probable": prob}, {}):
        bound = rig if kw else Bound(rig, prob)
        r = compare_bounded(exact, bound, actual, out_dtype="fp32", convention="fp32 acc", **kw)
        assert r.status == "SUSPECT" and not r.ok
        assert r.mismatch.index == (0, 1) and r.mismatch.count == 1
        assert r.mismatch.bound == 2.0 ** -18 and r.mismatch.bound_probable == 2.0 ** -21
        assert r.worst_ratio == 0.25 and r.worst_ratio_probable == 2.0 and r.worst_index == (0, 1)
        assert r.failure_probability == FAILURE_PROBABILITY
        text = r.message()
        for piece in ("SUSPECT", "(0, 1)", "exceeds probable bound 4.76837158203125e-07", "1e-09",
                      "within the rigorous bound 3.814697265625e-06", "9.5367431640625e-07", "worst error/bound 0.25"):
            assert piece in text, (piece, text)
    inside = (exact + 2.0 ** -22).astype(np.float32)
    assert compare_bounded(exact, Bound(rig, prob), inside, out_dtype="fp32", convention="c").status == "BOUNDED"
    assert compare_bounded(exact, rig, actual, out_dtype="fp32", convention="c").status == "BOUNDED"  # one tier only


def test_fail_worst_ratio_covers_every_element():
    """The failing element's own ratio, not the worst of the elements within bound."""
    exact = np.array([1.0, 2.0])
    bound = np.array([6.3e-6, 6.3e-6])
    actual = np.array([1.0, 2.0 + 2.49], dtype=np.float32)
    r = compare_bounded(exact, bound, actual, out_dtype="fp32", convention="c")
    assert r.status == "FAIL" and r.worst_index == (1,)
    assert r.worst_ratio == pytest.approx(r.mismatch.error / r.mismatch.bound) and r.worst_ratio > 1e5
    assert f"worst error/bound {r.worst_ratio:.4g} at (1,)" in r.message()
    assert "exceeds bound 6.3e-06 (rigorous" in r.message()
    nan = np.array([np.nan, 2.0], dtype=np.float32)
    assert compare_bounded(exact, bound, nan, out_dtype="fp32", convention="c").worst_ratio == np.inf


def test_require_prediction_makes_a_miss_a_fail():
    exact = np.array([1.0, 2.0])
    pred = np.array([1.0, 2.0], dtype=np.float32)
    near = np.array([1.0, np.nextafter(np.float32(2), np.float32(3))], dtype=np.float32)  # within the bound
    bound = np.full(2, 1e-3)
    assert compare_bounded(exact, bound, near, out_dtype="fp32", convention="c", predicted=pred).status == "BOUNDED"
    r = compare_bounded(exact, bound, near, out_dtype="fp32", convention="c", predicted=pred, require_prediction=True)
    assert r.status == "FAIL" and r.mismatch.index == (1,) and r.mismatch.differing_bits == [0]
    assert "modelled prediction" in r.detail
    assert compare_bounded(exact, bound, pred.copy(), out_dtype="fp32", convention="c", predicted=pred,
                           require_prediction=True).status == "BIT_EXACT"
    with pytest.raises(ValueError):
        compare_bounded(exact, bound, near, out_dtype="fp32", convention="c", require_prediction=True)
