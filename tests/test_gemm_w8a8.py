"""W8A8: exact int32 accumulation against torch._int_mm, each epilogue bit-exact against torch
float32 eager written in the same order, and the order-free exact value + bound. torch runs in a
worker process (tests/kernel_calls.py)."""
import numpy as np
import pytest

from oracle.gemm.w8a8 import EPILOGUES, fits_int32, int8_matmul, w8a8_exact, w8a8_linear, wrap_int32
from oracle.verdict import compare_bounded, compare_exact
from tests.kernel_calls import needs, run, to_numpy, to_torch

HERE = "tests.test_gemm_w8a8"
needs("torch", "torch is the upstream reference for _int_mm and fp32 epilogues")
TORCH_OUT = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def _case(seed, M=5, K=96, N=24):
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, (M, K), dtype=np.int8)
    w = rng.integers(-128, 128, (N, K), dtype=np.int8)
    sa = (rng.random(M) * 0.02 + 1e-4).astype(np.float32)
    sb = (rng.random(N) * 0.01 + 1e-5).astype(np.float32)
    bias = rng.standard_normal(N).astype(np.float32)
    return a, w, sa, sb, bias


def int_mm(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Worker side: torch._int_mm(a, w.T)."""
    import torch

    return torch._int_mm(torch.from_numpy(a), torch.from_numpy(w).T.contiguous()).numpy()


def torch_w8a8(a, w, sa, sb, bias, order: str, out: str, bias_stage: str | None) -> np.ndarray:
    """Worker side: _int_mm, then the epilogue in float32 eager in `order`, the bias at `bias_stage`."""
    import torch

    f = torch.from_numpy(int_mm(a, w)).float()
    tsa, tsb = to_torch(sa)[:, None], to_torch(sb)[None, :]
    if order == "(acc*sa)*sb":
        y = f * tsa * tsb
    elif order == "acc*(sa*sb)":
        y = f * (tsa * tsb)
    else:
        y = tsb * (tsa * f)
    dt, tb = getattr(torch, TORCH_OUT[out]), to_torch(bias)
    if bias_stage is None:
        return to_numpy(y.to(dt))
    if bias_stage == "before_cast":
        return to_numpy((y + tb).to(dt))
    return to_numpy(y.to(dt) + tb.to(dt))


def test_int_mm_exact_against_torch():
    a, w, *_ = _case(0, M=17, K=1000, N=33)
    ours = wrap_int32(int8_matmul(a, w))
    ref = run(HERE, "int_mm", a, w)
    assert compare_exact(ref, ours, convention="w8a8 int32 acc").status == "BIT_EXACT"


def test_int32_overflow_is_reported_and_wraps_like_torch():
    K = 140000
    a = np.full((1, K), -128, np.int8)
    w = np.full((1, K), -128, np.int8)
    acc = int8_matmul(a, w)
    assert acc[0, 0] == K * 128 * 128 and not fits_int32(acc)
    ref = run(HERE, "int_mm", a, w)
    assert np.array_equal(ref, wrap_int32(acc))


@pytest.mark.parametrize("order", list(EPILOGUES))
@pytest.mark.parametrize("out", ["fp32", "fp16", "bf16"])
@pytest.mark.parametrize("bias_stage", [None, "before_cast", "after_cast"])
def test_epilogues_bit_exact_against_torch(order, out, bias_stage):
    a, w, sa, sb, bias = _case(1)
    ref = run(HERE, "torch_w8a8", a, w, sa, sb, bias, order, out, bias_stage)
    ours = w8a8_linear(a, sa, w, sb, None if bias_stage is None else bias, order=order,
                       bias_stage=bias_stage or "before_cast", out=out)
    r = compare_exact(ref.view(ours.dtype), ours, convention=f"w8a8 {order} bias={bias_stage} {out}")
    assert r.status == "BIT_EXACT", r.message()


def test_epilogue_orders_differ_somewhere():
    """The two distinct orders are not the same function (else naming them is pointless)."""
    a, w, sa, sb, _ = _case(2, M=32, K=256, N=64)
    y1 = w8a8_linear(a, sa, w, sb, order="(acc*sa)*sb", out="fp32")
    y2 = w8a8_linear(a, sa, w, sb, order="acc*(sa*sb)", out="fp32")
    y3 = w8a8_linear(a, sa, w, sb, order="sb*(sa*acc)", out="fp32")
    assert not np.array_equal(y1, y2) and np.array_equal(y1, y3)


@pytest.mark.parametrize("out", ["fp32", "fp16", "bf16"])
def test_every_epilogue_inside_order_free_bound(out):
    a, w, sa, sb, bias = _case(3, M=16, K=512, N=48)
    exact, bound = w8a8_exact(a, sa, w, sb, bias, out=out)
    for order in EPILOGUES:
        for stage in ("before_cast", "after_cast"):
            y = w8a8_linear(a, sa, w, sb, bias, order=order, bias_stage=stage, out=out)
            r = compare_bounded(exact, bound, y, out_dtype=out, convention=f"w8a8 {order} {stage}")
            assert r.status == "BOUNDED", r.message()
