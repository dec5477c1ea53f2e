"""DA8W4 model against an independent computation: centred integer sums, a scalar transcription
of the kernel's fp32 loop, and Fraction arithmetic for the exact value."""
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from oracle.gemm.da8w4 import block_accumulators, block_compensation, da8w4_exact, da8w4_linear
from oracle.verdict import compare_bounded, compare_exact


def _case(seed, M=3, K=256, N=8, group_size=64, sym=True):
    rng = np.random.default_rng(seed)
    a_q = rng.integers(0, 256, (M, K), dtype=np.uint8)
    a_zp = rng.integers(0, 256, M).astype(np.int32)
    a_scale = (rng.random(M) * 0.05 + 1e-3).astype(np.float32)
    w_q = rng.integers(0, 16, (N, K), dtype=np.uint8)
    G = K // group_size
    w_zp = np.full((N, G), 8, np.int8) if sym else rng.integers(0, 16, (N, G)).astype(np.int8)
    w_scale = (rng.random((N, G)) * 0.02 + 1e-4).astype(np.float32)
    bias = rng.standard_normal(N).astype(np.float32)
    return a_q, a_scale, a_zp, w_q, w_scale, w_zp, bias


def _round_f32(v: Fraction) -> np.float32:
    """The float32 nearest to an exact rational, ties to even (no intermediate double)."""
    c = np.float32(float(v))
    best = None
    for x in (np.nextafter(c, np.float32(-np.inf)), c, np.nextafter(c, np.float32(np.inf))):
        d = abs(Fraction(float(x)) - v)
        if best is None or d < best[0] or (d == best[0] and int(np.float32(x).view(np.uint32)) % 2 == 0):
            best = (d, x)
    return np.float32(best[1])


def _scalar_kernel(a_q, a_scale, a_zp, w_q, w_scale, w_zp, bias, group_size, out, fma=False):
    """The C loop order, one element at a time, with Python ints and numpy float32 scalars;
    fma=True rounds `acc_f + p * sb` once (exactly, through Fraction)."""
    M, K = a_q.shape
    N = w_q.shape[0]
    bk = min(group_size, 128)
    y = np.zeros((M, N), np.float32)
    for m in range(M):
        for n in range(N):
            acc_f = np.float32(bias[n]) if bias is not None else np.float32(0)
            for b in range(K // bk):
                g = b * bk // group_size
                s = 0
                for k in range(b * bk, (b + 1) * bk):
                    s += (int(a_q[m, k]) - int(a_zp[m])) * (int(w_q[n, k]) - int(w_zp[n, g]))
                p = np.float32(np.float32(s) * a_scale[m])
                if fma:
                    acc_f = _round_f32(Fraction(float(p)) * Fraction(float(w_scale[n, g])) + Fraction(float(acc_f)))
                else:
                    acc_f = np.float32(acc_f + p * w_scale[n, g])
            y[m, n] = acc_f
    return y.astype({"fp32": np.float32, "fp16": np.float16, "bf16": ml_dtypes.bfloat16}[out])


@pytest.mark.parametrize("group_size", [32, 64, 128, 256])
@pytest.mark.parametrize("sym", [True, False])
def test_compensation_identity(group_size, sym):
    a_q, _, a_zp, w_q, _, w_zp, _ = _case(0, K=512, group_size=group_size, sym=sym)
    accs = block_accumulators(a_q, a_zp, w_q, w_zp, group_size)
    bk = min(group_size, 128)
    zp = np.repeat(w_zp.astype(np.int64), group_size, axis=1)
    centred = (a_q.astype(np.int64) - a_zp[:, None])[:, None, :] * (w_q.astype(np.int64) - zp)[None, :, :]
    direct = centred.reshape(a_q.shape[0], w_q.shape[0], -1, bk).sum(-1).transpose(2, 0, 1)
    assert np.array_equal(accs, direct)


@pytest.mark.parametrize("out", ["fp32", "bf16", "fp16"])
@pytest.mark.parametrize("group_size,with_bias", [(32, True), (128, False), (256, True)])
def test_model_equals_scalar_kernel_loop(out, group_size, with_bias):
    a_q, a_scale, a_zp, w_q, w_scale, w_zp, bias = _case(1, K=512, group_size=group_size, sym=False)
    bias = bias if with_bias else None
    ours = da8w4_linear(a_q, a_scale, a_zp, w_q, w_scale, w_zp, bias, group_size=group_size, out=out)
    ref = _scalar_kernel(a_q, a_scale, a_zp, w_q, w_scale, w_zp, bias, group_size, out)
    r = compare_exact(ref, ours, convention=f"da8w4 g{group_size} {out}")
    assert r.status == "BIT_EXACT", r.message()


def test_exact_value_against_fractions_and_model_inside_bound():
    gs = 64
    a_q, a_scale, a_zp, w_q, w_scale, w_zp, bias = _case(2, M=2, K=256, N=4, group_size=gs)
    exact, bound = da8w4_exact(a_q, a_scale, a_zp, w_q, w_scale, w_zp, bias, group_size=gs, out="bf16")
    for m in range(2):
        for n in range(4):
            v = Fraction(float(bias[n]))
            for k in range(256):
                v += (Fraction(int(a_q[m, k]) - int(a_zp[m])) * (int(w_q[n, k]) - int(w_zp[n, k // gs]))
                      * Fraction(float(a_scale[m])) * Fraction(float(w_scale[n, k // gs])))
            assert abs(Fraction(exact[m, n]) - v) <= Fraction(bound[m, n]) / 1000
    y = da8w4_linear(a_q, a_scale, a_zp, w_q, w_scale, w_zp, bias, group_size=gs, out="bf16")
    r = compare_bounded(exact, bound, y, out_dtype="bf16", convention="da8w4", predicted=y)
    assert r.status == "BIT_EXACT"
    assert compare_bounded(exact, bound, y, out_dtype="bf16", convention="da8w4").status == "BOUNDED"


def test_other_order_differs_in_bits_but_stays_bounded():
    """A kernel summing all blocks in float64 and rounding once is in bound yet not bit-exact."""
    gs = 32
    a_q, a_scale, a_zp, w_q, w_scale, w_zp, bias = _case(3, M=16, K=1024, N=32, group_size=gs)
    exact, bound = da8w4_exact(a_q, a_scale, a_zp, w_q, w_scale, w_zp, bias, group_size=gs, out="fp32")
    model = da8w4_linear(a_q, a_scale, a_zp, w_q, w_scale, w_zp, bias, group_size=gs, out="fp32")
    other = exact.astype(np.float32)
    assert not np.array_equal(model, other)
    assert compare_bounded(exact, bound, other, out_dtype="fp32", convention="da8w4 other order",
                           predicted=model).status == "BOUNDED"


@pytest.mark.parametrize("out", ["fp32", "bf16"])
@pytest.mark.parametrize("group_size", [32, 256])
def test_fma_epilogue_equals_scalar_loop_with_one_rounding(out, group_size):
    a_q, a_scale, a_zp, w_q, w_scale, w_zp, bias = _case(6, M=2, K=512, N=4, group_size=group_size, sym=False)
    ours = da8w4_linear(a_q, a_scale, a_zp, w_q, w_scale, w_zp, bias, group_size=group_size, out=out, epilogue="fma")
    ref = _scalar_kernel(a_q, a_scale, a_zp, w_q, w_scale, w_zp, bias, group_size, out, fma=True)
    r = compare_exact(ref, ours, convention=f"da8w4 fma g{group_size} {out}")
    assert r.status == "BIT_EXACT", r.message()


def test_fma_epilogue_differs_in_bits_and_stays_bounded():
    gs = 32
    a_q, a_scale, a_zp, w_q, w_scale, w_zp, bias = _case(7, M=16, K=1024, N=32, group_size=gs, sym=False)
    exact, bound = da8w4_exact(a_q, a_scale, a_zp, w_q, w_scale, w_zp, bias, group_size=gs, out="fp32")
    two = da8w4_linear(a_q, a_scale, a_zp, w_q, w_scale, w_zp, bias, group_size=gs, out="fp32")
    one = da8w4_linear(a_q, a_scale, a_zp, w_q, w_scale, w_zp, bias, group_size=gs, out="fp32", epilogue="fma")
    assert not np.array_equal(one, two)
    assert compare_bounded(exact, bound, one, out_dtype="fp32", convention="da8w4 fma", predicted=one).status == "BIT_EXACT"
    assert compare_bounded(exact, bound, one, out_dtype="fp32", convention="da8w4 fma").status == "BOUNDED"
    with pytest.raises(ValueError):
        da8w4_linear(a_q, a_scale, a_zp, w_q, w_scale, w_zp, bias, group_size=gs, epilogue="fused")


@pytest.mark.parametrize("group_size", [32, 128, 256])
def test_block_compensation_is_the_block_sum_of_centred_weights(group_size):
    _, _, _, w_q, _, w_zp, _ = _case(8, K=512, N=64, group_size=group_size, sym=False)
    comp = block_compensation(w_q, w_zp, group_size)
    bk = min(group_size, 128)
    for n in (0, 17, 63):
        for b in range(512 // bk):
            g = b * bk // group_size
            assert comp[n, b] == sum(int(w_q[n, k]) - int(w_zp[n, g]) for k in range(b * bk, (b + 1) * bk))


def test_compensation_with_8_is_wrong_for_asymmetric_weights():
    """A counterfactual (no torchao version computes it): a block sum of w - 8 is right only when
    every weight zero point is 8."""
    gs = 64
    args = _case(4, group_size=gs, sym=True)
    assert np.array_equal(block_accumulators(args[0], args[2], args[3], args[5], gs, compensation="8"),
                          block_accumulators(args[0], args[2], args[3], args[5], gs, compensation="zp"))
    args = _case(4, group_size=gs, sym=False)
    assert not np.array_equal(block_accumulators(args[0], args[2], args[3], args[5], gs, compensation="8"),
                              block_accumulators(args[0], args[2], args[3], args[5], gs, compensation="zp"))


def test_bad_shapes_raise():
    a_q, a_scale, a_zp, w_q, w_scale, w_zp, bias = _case(5)
    with pytest.raises(ValueError):
        da8w4_linear(a_q, a_scale, a_zp, w_q, w_scale, w_zp, bias, group_size=96)
