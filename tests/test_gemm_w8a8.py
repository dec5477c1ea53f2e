"""W8A8: exact int32 accumulation against torch._int_mm, each epilogue bit-exact against torch
float32 eager written in the same order, and the order-free exact value + bound."""
import numpy as np
import pytest

from oracle.gemm.w8a8 import EPILOGUES, fits_int32, int8_matmul, w8a8_exact, w8a8_linear, wrap_int32
from oracle.verdict import compare_bounded, compare_exact

torch = pytest.importorskip("torch", reason="torch is the upstream reference for _int_mm and fp32 epilogues")

TORCH_OUT = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def _case(seed, M=5, K=96, N=24):
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, (M, K), dtype=np.int8)
    w = rng.integers(-128, 128, (N, K), dtype=np.int8)
    sa = (rng.random(M) * 0.02 + 1e-4).astype(np.float32)
    sb = (rng.random(N) * 0.01 + 1e-5).astype(np.float32)
    bias = rng.standard_normal(N).astype(np.float32)
    return a, w, sa, sb, bias


def _torch_epilogue(acc, sa, sb, order):
    f = acc.float()
    sa, sb = sa[:, None], sb[None, :]
    if order == "(acc*sa)*sb":
        return f * sa * sb
    if order == "acc*(sa*sb)":
        return f * (sa * sb)
    return sb * (sa * f)


def test_int_mm_exact_against_torch():
    a, w, *_ = _case(0, M=17, K=1000, N=33)
    ours = wrap_int32(int8_matmul(a, w))
    ref = torch._int_mm(torch.from_numpy(a), torch.from_numpy(w).T.contiguous()).numpy()
    assert compare_exact(ref, ours, convention="w8a8 int32 acc").status == "BIT_EXACT"


def test_int32_overflow_is_reported_and_wraps_like_torch():
    K = 140000
    a = np.full((1, K), -128, np.int8)
    w = np.full((1, K), -128, np.int8)
    acc = int8_matmul(a, w)
    assert acc[0, 0] == K * 128 * 128 and not fits_int32(acc)
    ref = torch._int_mm(torch.from_numpy(a), torch.from_numpy(w).T.contiguous()).numpy()
    assert np.array_equal(ref, wrap_int32(acc))


@pytest.mark.parametrize("order", list(EPILOGUES))
@pytest.mark.parametrize("out", ["fp32", "fp16", "bf16"])
@pytest.mark.parametrize("bias_stage", [None, "before_cast", "after_cast"])
def test_epilogues_bit_exact_against_torch(order, out, bias_stage):
    a, w, sa, sb, bias = _case(1)
    acc = torch._int_mm(torch.from_numpy(a), torch.from_numpy(w).T.contiguous())
    y = _torch_epilogue(acc, torch.from_numpy(sa), torch.from_numpy(sb), order)
    tb = torch.from_numpy(bias)
    if bias_stage is None:
        ref = y.to(TORCH_OUT[out])
    elif bias_stage == "before_cast":
        ref = (y + tb).to(TORCH_OUT[out])
    else:
        ref = y.to(TORCH_OUT[out]) + tb.to(TORCH_OUT[out])
    ours = w8a8_linear(a, sa, w, sb, None if bias_stage is None else bias, order=order,
                       bias_stage=bias_stage or "before_cast", out=out)
    ref_np = ref.view(torch.int16).numpy().view(ours.dtype) if out != "fp32" else ref.numpy()
    r = compare_exact(ref_np, ours, convention=f"w8a8 {order} bias={bias_stage} {out}")
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
