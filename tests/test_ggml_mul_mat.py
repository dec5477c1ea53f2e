"""The ggml_mul_mat model: exact values against gguf-py's dequantization, the AVX2 prediction
inside the bound, the activation types; libggml's CPU-backend mul_mat against the model
(in a worker process, tests/kernel_calls.py)."""
import importlib.util

import numpy as np
import pytest

import oracle
from oracle.bounds import gamma
from oracle.gemm.ggml_mul_mat import ACT_TYPE, TYPES, activations, mul_mat_exact, mul_mat_predicted
from tests.kernel_calls import run

gguf = pytest.importorskip("gguf", reason="gguf-py dequantizes the weight blocks independently")


def _data(w_type, seed, n=12, m=5):
    rng = np.random.default_rng(seed)
    k = 4 * oracle.get_format(w_type).block_size
    w = (rng.standard_normal((n, k)) * rng.choice([1e-2, 1.0, 30.0], (n, 1))).astype(np.float32)
    x = rng.standard_normal((m, k)).astype(np.float32)
    return oracle.quantize(w, w_type), activations(x, w_type)


def _act_values(a, act):
    """(values (M, K) float64, per-block correction of the stored s) of q8_0/q8_1/q8_K rows."""
    if act == "q8_k":
        return oracle.dequantize(a, "q8_k").astype(np.float64), None
    b = a.reshape(a.shape[0], -1, 34 if act == "q8_0" else 36)
    d = np.ascontiguousarray(b[..., :2]).view("<f2")[..., 0].astype(np.float64)
    q = b[..., -32:].view(np.int8).astype(np.float64)
    vals = (d[..., None] * q).reshape(a.shape[0], -1)
    if act == "q8_0":
        return vals, None
    s = np.ascontiguousarray(b[..., 2:4]).view("<f2")[..., 0].astype(np.float64)
    return vals, s - d * q.sum(-1)  # the kernel uses the stored s where the values give d * sum(q)


@pytest.mark.parametrize("w_type", TYPES)
def test_exact_value_matches_gguf_dequantization(w_type):
    wq, a = _data(w_type, 0)
    wd = gguf.quants.dequantize(wq, getattr(gguf.GGMLQuantizationType, w_type.upper())).astype(np.float64)
    ad, s_fix = _act_values(a, ACT_TYPE[w_type])
    want = ad @ wd.T
    if s_fix is not None:  # q4_1 / q5_1: the min term uses the activation block's stored s
        mins = np.ascontiguousarray(wq.reshape(wq.shape[0], -1, wq.shape[1] // (ad.shape[1] // 32))[..., 2:4])
        want = want + s_fix @ mins.view("<f2")[..., 0].astype(np.float64).T
    exact, bound = mul_mat_exact(w_type, wq, a)
    # gguf-py dequantizes in float32 (at most 3 roundings per element): that is the slack
    slack = gamma(4, "fp32") * (np.abs(ad) @ np.abs(wd).T) + 1e-300
    assert np.all(np.abs(exact - want) <= slack), np.max(np.abs(exact - want) / slack)
    assert np.all(bound > 0) and np.all(np.isfinite(bound))


@pytest.mark.parametrize("w_type", ["q4_0", "q8_0"])
def test_prediction_inside_bound(w_type):
    wq, a = _data(w_type, 1)
    exact, bound = mul_mat_exact(w_type, wq, a)
    pred = mul_mat_predicted(w_type, wq, a)
    assert pred.dtype == np.float32 and pred.shape == exact.shape
    assert np.all(np.abs(pred.astype(np.float64) - exact) <= bound)


def test_activation_types():
    assert {ACT_TYPE[t] for t in ("q4_1", "q5_1")} == {"q8_1"}
    assert {ACT_TYPE[t] for t in ("q4_k", "q5_k", "q6_k", "q2_k", "q3_k")} == {"q8_k"}
    x = np.random.default_rng(2).standard_normal((3, 256)).astype(np.float32)
    assert activations(x, "q4_0").shape == (3, 8 * 34) and activations(x, "q4_1").shape == (3, 8 * 36)
    assert activations(x, "q4_k").shape == (3, 292)
    with pytest.raises(ValueError):
        mul_mat_predicted("q4_k", np.zeros((1, 144), np.uint8), np.zeros((1, 292), np.uint8))


def test_libggml_mul_mat_matches_model():
    """Every buffer type libggml offers, M = 1 and 5: q4_0 bit-exact in the default buffer, within
    the bound in every buffer (the repacked layout included)."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("libggml comes with llama-cpp-python")
    avail = run("kernels.ggml.mul_mat", "available")
    if not avail["ok"]:
        pytest.skip(avail["reason"])
    rng = np.random.default_rng(3)
    wq = oracle.quantize(rng.standard_normal((16, 128)).astype(np.float32), "q4_0")
    xs = [rng.standard_normal((m, 128)).astype(np.float32) for m in (1, 5)]
    for bt in run("kernels.ggml.mul_mat", "buffer_types"):
        out = run("kernels.ggml.mul_mat", "mul_mat", "q4_0", wq, xs, bt, 2)
        assert out["supported"] or bt != "CPU"
        for x, y in zip(xs, out["ys"]):
            a = activations(x, "q4_0")
            exact, bound = mul_mat_exact("q4_0", wq, a)
            assert np.all(np.abs(y.astype(np.float64) - exact) <= bound)
            if bt == "CPU" and run("kernels.ggml.calls", "observe")["isa"] == "avx2":
                assert np.array_equal(y.view(np.uint32), mul_mat_predicted("q4_0", wq, a).view(np.uint32))
