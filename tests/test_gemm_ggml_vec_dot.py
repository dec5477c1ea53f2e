"""GGML vec_dot models: block parsing against gguf-py's dequantization, every modelled order
inside the exact-value bound, and the AVX2 model bit-exact against libggml's CPU vec_dot."""
import ctypes
import hashlib
import importlib.util
import json
import os

import numpy as np
import pytest

import oracle
from oracle.bounds import gamma
from oracle.gemm.ggml_vec_dot import BLOCKS, vec_dot, vec_dot_exact
from tests.kernel_calls import run

gguf = pytest.importorskip("gguf", reason="gguf-py dequantizes the weight blocks independently")

PAIRS = sorted(BLOCKS)


def _variants(x_type):
    if x_type in ("q4_0", "q8_0"):
        return ["generic", "fma", "avx2"]
    return ["generic"] if x_type == "q2_k" else ["generic", "fma"]


def _data(x_type, y_type, seed, rows=16, n=1024):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((rows, n)) * rng.choice([1e-3, 1.0, 30.0], (rows, 1))).astype(np.float32)
    y = rng.standard_normal((rows, n)).astype(np.float32)
    return oracle.quantize(x, x_type), oracle.quantize(y, y_type)


@pytest.mark.parametrize("x_type,y_type", PAIRS)
def test_exact_value_matches_gguf_dequantization(x_type, y_type):
    xq, yq = _data(x_type, y_type, 0)
    xd = gguf.quants.dequantize(xq, getattr(gguf.GGMLQuantizationType, x_type.upper())).astype(np.float64)
    yd = oracle.dequantize(yq, y_type).astype(np.float64)  # q8_0/q8_K dequant is one exact product
    exact, _ = vec_dot_exact(x_type, y_type, xq, yq)
    # gguf-py dequantizes in float32 (at most 3 roundings per element): that is the slack
    slack = gamma(4, "fp32") * np.abs(xd * yd).sum(-1)
    assert np.all(np.abs(exact - (xd * yd).sum(-1)) <= slack)


@pytest.mark.parametrize("x_type,y_type", PAIRS)
def test_every_modelled_order_inside_bound(x_type, y_type):
    xq, yq = _data(x_type, y_type, 1)
    exact, bound = vec_dot_exact(x_type, y_type, xq, yq)
    results = {v: vec_dot(x_type, y_type, xq, yq, variant=v) for v in _variants(x_type)}
    for v, r in results.items():
        assert np.all(np.abs(r - exact) <= bound), v


def test_orders_are_distinct_models():
    xq, yq = _data("q4_0", "q8_0", 2, rows=64, n=4096)
    g, f, a = (vec_dot("q4_0", "q8_0", xq, yq, variant=v) for v in ("generic", "fma", "avx2"))
    assert not np.array_equal(g, f) and not np.array_equal(g, a)


def test_avx2_q8_0_sign_quirk_on_minus_128():
    """maddubs(|x|, sign(y, x)) makes (-128) * (-128) count as -16384 on AVX2 without VNNI."""
    d = np.array([1.0], "<f2").view(np.uint8)
    block = np.concatenate([d, np.full(32, 0x80, np.uint8)])[None, :]
    assert vec_dot("q8_0", "q8_0", block, block, variant="generic")[0] == 32 * 16384
    assert vec_dot("q8_0", "q8_0", block, block, variant="avx2")[0] == -32 * 16384


def libggml_vec_dot(x_type: str, n: int, xq: np.ndarray, yq: np.ndarray) -> np.ndarray:
    """Worker side: libggml's CPU type-traits vec_dot through ctypes (llama-cpp-python's bundled
    build), one row of xq with the same row of yq."""
    import llama_cpp

    lib = ctypes.CDLL(os.path.join(os.path.dirname(llama_cpp.__file__), "lib", "libggml-cpu.so"))
    lib.ggml_cpu_init()
    fn_t = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.POINTER(ctypes.c_float), ctypes.c_size_t, ctypes.c_void_p,
                            ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)

    class Traits(ctypes.Structure):  # ggml-cpu.h struct ggml_type_traits_cpu
        _fields_ = [("from_float", ctypes.c_void_p), ("vec_dot", fn_t), ("vec_dot_type", ctypes.c_int),
                    ("nrows", ctypes.c_int64)]

    lib.ggml_get_type_traits_cpu.restype = ctypes.POINTER(Traits)
    tr = lib.ggml_get_type_traits_cpu(int(getattr(gguf.GGMLQuantizationType, x_type.upper()))).contents
    out = np.zeros(xq.shape[0], np.float32)
    for r in range(xq.shape[0]):
        s = ctypes.c_float()
        xr, yr = np.ascontiguousarray(xq[r]), np.ascontiguousarray(yq[r])
        tr.vec_dot(n, ctypes.byref(s), 0, xr.ctypes.data, 0, yr.ctypes.data, 0, 1)
        out[r] = s.value
    return out


def _libggml_vec_dot():
    """`run(x_type, n, xq, yq)`: libggml's vec_dot in the worker process (tests/kernel_calls.py)."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("libggml ships in llama-cpp-python (extra 'ggml')")
    return lambda x_type, n, xq, yq: run("tests.test_gemm_ggml_vec_dot", "libggml_vec_dot", x_type, n, xq, yq)


def _has_avx2():
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return " avx2" in flags and " avx512f" not in flags and "avx_vnni" not in flags


@pytest.mark.libggml
@pytest.mark.parametrize("x_type", ["q4_0", "q8_0"])
def test_avx2_model_bit_exact_against_libggml(x_type):
    if not _has_avx2():
        pytest.skip("the AVX2 (no AVX512, no VNNI) model is for the haswell-level path; this CPU differs")
    run = _libggml_vec_dot()
    xq, yq = _data(x_type, "q8_0", 3, rows=64, n=2048)
    ours = vec_dot(x_type, "q8_0", xq, yq, variant="avx2")
    assert np.array_equal(run(x_type, 2048, xq, yq), ours)
    if x_type == "q8_0":  # the -128 * -128 sign quirk is libggml's, not the model's invention
        block = np.concatenate([np.array([1.0], "<f2").view(np.uint8), np.full(32, 0x80, np.uint8)])[None, :]
        assert run("q8_0", 32, block, block)[0] == vec_dot("q8_0", "q8_0", block, block, variant="avx2")[0]


RECORDED = os.path.join(os.path.dirname(__file__), "data", "ggml_vec_dot_avx2.json")


@pytest.mark.parametrize("x_type", ["q4_0", "q8_0"])
def test_avx2_model_matches_vectors_recorded_from_libggml(x_type):
    """The AVX2 order model against libggml's haswell-level vec_dot outputs recorded on an AVX2-only
    host (tests/data/ggml_vec_dot_avx2.json says which build), so the model stays pinned on hosts
    whose own libggml runs another path."""
    with open(RECORDED, encoding="utf-8") as f:
        rec = json.load(f)
    xq, yq = _data(x_type, "q8_0", 3, rows=64, n=2048)
    assert hashlib.sha256(xq.tobytes() + yq.tobytes()).hexdigest() == rec[x_type]["inputs_sha256"]
    want = np.frombuffer(bytes.fromhex(rec[x_type]["libggml_f32_hex"]), np.float32)
    assert np.array_equal(vec_dot(x_type, "q8_0", xq, yq, variant="avx2").astype(np.float32).view(np.uint32),
                          want.view(np.uint32))
    assert not np.array_equal(vec_dot(x_type, "q8_0", xq, yq, variant="generic").astype(np.float32), want)
    if x_type == "q8_0":  # the -128 * -128 sign quirk, as libggml returned it
        block = np.concatenate([np.array([1.0], "<f2").view(np.uint8), np.full(32, 0x80, np.uint8)])[None, :]
        quirk = np.frombuffer(bytes.fromhex(rec["q8_0_minus128_block"]["libggml_f32_hex"]), np.float32)
        assert vec_dot("q8_0", "q8_0", block, block, variant="avx2")[0] == quirk[0]


@pytest.mark.libggml
@pytest.mark.parametrize("x_type,y_type", PAIRS)
def test_libggml_simd_inside_bound(x_type, y_type):
    run = _libggml_vec_dot()
    xq, yq = _data(x_type, y_type, 4, rows=32, n=2048)
    exact, bound = vec_dot_exact(x_type, y_type, xq, yq)
    assert np.all(np.abs(run(x_type, 2048, xq, yq) - exact) <= bound)
