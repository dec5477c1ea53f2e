"""Weight-only GEMM bound: torch's fp32 and bf16 linear and _weight_int8pack_mm stay inside;
an fp16-accumulating kernel does not. torch runs in a worker process (tests/kernel_calls.py)."""
import ml_dtypes
import numpy as np

from oracle.gemm.wxa16 import wxa16_exact
from oracle.verdict import compare_bounded
from tests.kernel_calls import needs, run, to_numpy, to_torch

HERE = "tests.test_gemm_wxa16"
needs("torch", "torch's CPU linear kernels are the references judged here")


def _case(seed, M=8, K=1024, N=64):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((M, K)).astype(ml_dtypes.bfloat16)
    q = rng.integers(-8, 8, (N, K))
    scale = (rng.random((N, K // 32)) * 0.05).astype(np.float32)
    w = (q.astype(np.float32) * np.repeat(scale, 32, axis=1)).astype(np.float32)  # exact int4 dequant
    bias = rng.standard_normal(N).astype(np.float32)
    return x, q, w, bias


def torch_linear(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None = None, weight_dtype: str = "") -> np.ndarray:
    """Worker side: torch.nn.functional.linear, the weight cast to `weight_dtype` first if named."""
    import torch

    tw = to_torch(w) if not weight_dtype else to_torch(w).to(getattr(torch, weight_dtype))
    return to_numpy(torch.nn.functional.linear(to_torch(x), tw, None if bias is None else to_torch(bias)))


def test_torch_fp32_linear_inside_bound():
    x, _, w, bias = _case(0)
    y = run(HERE, "torch_linear", x.astype(np.float32), w, bias)
    exact, bound = wxa16_exact(x, w, bias, acc="fp32", out="fp32")
    r = compare_bounded(exact, bound, y, out_dtype="fp32", convention="w4a16 torch fp32 linear")
    assert r.status == "BOUNDED", r.message()
    assert r.worst_ratio < 0.1


def test_torch_bf16_linear_needs_and_fits_the_bf16_weight_stage():
    x, _, w, _ = _case(1)
    y = run(HERE, "torch_linear", x, w, weight_dtype="bfloat16")
    exact, bound = wxa16_exact(x, w, acc="fp32", out="bf16", stage_dtypes=("bf16",))
    r = compare_bounded(exact, bound, y, out_dtype="bf16", convention="w4a16 bf16 weights")
    assert r.status in ("BOUNDED", "BIT_EXACT"), r.message()


def test_torch_weight_int8pack_mm_inside_bound():
    rng = np.random.default_rng(2)
    M, K, N = 4, 512, 32
    x = rng.standard_normal((M, K)).astype(ml_dtypes.bfloat16)
    q = rng.integers(-128, 128, (N, K)).astype(np.int8)
    s = (rng.random(N) * 0.01).astype(ml_dtypes.bfloat16)
    y = run("tests.kernel_calls", "torch_op", "_weight_int8pack_mm", x, q, s)
    # (x @ q.T) * s: the scale is applied after the dot, so it is one more rounded product
    exact, bound = wxa16_exact(x, q.astype(np.float32) * s.astype(np.float32)[:, None], acc="fp32", out="bf16",
                               stage_dtypes=("fp32",))
    r = compare_bounded(exact, bound, y, out_dtype="bf16", convention="w8a16 _weight_int8pack_mm")
    assert r.status in ("BOUNDED", "BIT_EXACT"), r.message()


def test_fp16_accumulation_is_caught():
    x, _, w, _ = _case(3, M=4, K=4096, N=16)
    x = np.abs(x.astype(np.float32))
    w = np.abs(w)
    acc = np.zeros((4, 16), np.float16)
    xf, wf = x.astype(np.float16), w.astype(np.float16)
    for k in range(x.shape[1]):
        acc = (acc + np.outer(xf[:, k], wf[:, k]).astype(np.float16)).astype(np.float16)
    exact, bound = wxa16_exact(x, w, acc="fp32", out="fp16")
    r = compare_bounded(exact, bound, acc, out_dtype="fp16", convention="w4a16 fp16-accumulating kernel")
    assert r.status == "FAIL" and r.mismatch is not None and "exceeds bound" in r.message()
