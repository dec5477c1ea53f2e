"""The BesTLA, torchao and ESIMD judgements catch a deliberately wrong kernel of each kind.

Each case builds the output a plausibly buggy kernel would return (missing +8 shift, zero point
applied twice, scale held in bf16, per-row instead of per-tensor activation scale, int16
saturation, int16 accumulation, ggml nibble order) and checks that the same comparison the
conformance suite makes says FAIL and names the first bad element.
"""
from __future__ import annotations

import numpy as np

from oracle import floats
from oracle.conventions import QuantizedWeight, get
from oracle.gemm.bestla_woq import S8_ACTIVATIONS, dequant, fma_chain
from oracle.gemm.w8a8 import epilogue, int8_matmul, w8a8_exact, wrap_int32
from oracle.gemm.wxa16 import wxa16_exact
from oracle.verdict import compare_bounded, compare_exact

RNG = np.random.default_rng(2024)

def _failed(res, *words: str) -> None:
    msg = res.message()
    assert res.status == "FAIL", msg
    assert "first bad element" in msg, msg
    for w in words:
        assert w in msg, msg


def _woq_inputs(bits=4, asym=False, n=16, k=128, g=32):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    codes = RNG.integers(lo, hi + 1, (n, k)).astype(np.int8)
    scales = (RNG.random((n, k // g)) * 0.1 + 1e-3).astype(np.float32)
    zeros = RNG.integers(lo, hi + 1, (n, k // g)).astype(np.int8) if asym else None
    x = RNG.standard_normal((3, k)).astype(np.float32)
    return x, codes, scales, zeros


def _judge_woq(x, w_good, wrong_w, conv):
    exact, bound = wxa16_exact(x, w_good, acc="fp32", out="fp32")
    return compare_bounded(exact, bound, fma_chain(x, wrong_w, None), out_dtype="fp32", convention=conv,
                           predicted=fma_chain(x, w_good, None), block_size=32, what="woqgemm")


def test_bestla_woqgemm_missing_shift():
    x, codes, scales, _ = _woq_inputs()
    w, conv = dequant(codes, scales, None, 4, 32, "fp32")
    nibbles = (codes.astype(np.int32) + 8) * np.repeat(scales, 32, axis=1)  # stored nibble used without -8
    _failed(_judge_woq(x, w, nibbles.astype(np.float32), conv), "int4_fullrange", "exceeds bound")


def test_bestla_woqgemm_zero_point_twice():
    x, codes, scales, zeros = _woq_inputs(asym=True)
    w, conv = dequant(codes, scales, zeros, 4, 32, "fp32")
    z = np.repeat(zeros.astype(np.int32), 32, axis=1)
    twice = ((codes.astype(np.int32) - 2 * z) * np.repeat(scales, 32, axis=1)).astype(np.float32)
    _failed(_judge_woq(x, w, twice, conv), "int4")


def test_bestla_woqgemm_scale_in_bf16():
    x, codes, scales, _ = _woq_inputs(bits=8)
    w, conv = dequant(codes, scales, None, 8, 32, "fp32")
    wb, _ = dequant(codes, scales, None, 8, 32, "bf16")
    _failed(_judge_woq(x, w, wb, conv), "int8")


def test_bestla_woqgemm_s8_per_row_scale_and_saturation():
    x = RNG.standard_normal((4, 256)).astype(np.float32) * np.array([[1], [10], [0.1], [3]], np.float32)
    w = RNG.integers(-128, 128, (8, 256)).astype(np.int8)
    sb = np.full(8, 0.01, np.float32)
    qa = get(S8_ACTIVATIONS).quantize(x)
    q, sa = qa.codes.astype(np.int8), np.float32(qa.scales[0, 0])
    exact, bound = w8a8_exact(q, sa, w, sb, out="fp32")
    # per-row scales instead of one per tensor
    sr = (np.abs(x).max(axis=1) * np.float32(1 / 127)).astype(np.float32)
    qr = np.clip(np.rint(x / sr[:, None]), -128, 127).astype(np.int8)
    per_row = epilogue(wrap_int32(int8_matmul(qr, w)), sr, sb, "acc*(sa*sb)")
    _failed(compare_bounded(exact, bound, per_row, out_dtype="fp32", convention="act.onednn.s8.per_tensor",
                            what="woqgemm_s8"), "woqgemm_s8")
    # AVX2 vpmaddubsw: u8 (q + 128) x s8 pairs saturated to int16, then the 128 * colsum compensation
    ua = q.astype(np.int64) + 128
    wi = w.astype(np.int64)
    pairs = ua[:, None, 0::2] * wi[None, :, 0::2] + ua[:, None, 1::2] * wi[None, :, 1::2]
    acc = np.clip(pairs, -32768, 32767).sum(-1) - 128 * wi.sum(1)[None, :]
    sat = epilogue(acc.astype(np.int32), sa, sb, "acc*(sa*sb)")
    _failed(compare_bounded(exact, bound, sat, out_dtype="fp32", convention="act.onednn.s8.per_tensor",
                            what="woqgemm_s8"), "exceeds bound")


def test_bestla_igemm_and_torchao_int_matmul_int16_accumulation():
    a = RNG.integers(-128, 128, (3, 512)).astype(np.int8)
    b = RNG.integers(-128, 128, (5, 512)).astype(np.int8)
    good = wrap_int32(int8_matmul(a, b))
    int16 = good.astype(np.int16).astype(np.int32)  # an accumulator that keeps only 16 bits
    _failed(compare_exact(good, int16, convention="w8a8 int32", what="int32 sums"), "differing bits")


def test_torchao_int_scaled_matmul_scale_in_bf16():
    a = RNG.integers(-128, 128, (4, 256)).astype(np.int8)
    w = RNG.integers(-128, 128, (8, 256)).astype(np.int8)
    sa = (RNG.random(4) * 1e-3 + 1e-5).astype(np.float32)
    ones = np.ones(8, np.float32)
    exact, bound = w8a8_exact(a, sa, w, ones, out="fp32")
    pred = epilogue(wrap_int32(int8_matmul(a, w)), sa, ones, "(acc*sa)*sb")
    wrong = epilogue(wrap_int32(int8_matmul(a, w)), floats.round_to(sa, "bf16"), ones, "(acc*sa)*sb")
    _failed(compare_bounded(exact, bound, wrong, out_dtype="fp32", convention="w8a8 (acc*sa)*sb", predicted=pred,
                            what="int_scaled_matmul"), "int_scaled_matmul")


def test_esimd_ggml_nibble_order():
    """A kernel reading the j / j+16 (GGML q4_0) nibble order instead of adjacent pairs."""
    conv = get("esimd.int4_gemv")
    qw = conv.quantize(RNG.standard_normal((8, 256)).astype(np.float32))
    x = RNG.standard_normal((1, 256)).astype(np.float16)
    exact, bound = wxa16_exact(x, conv.dequantize(qw), acc="fp32", out="fp16")
    c = qw.codes.reshape(8, -1, 32)
    swapped = np.concatenate([c[:, :, 0::2], c[:, :, 1::2]], axis=2).reshape(8, 256)  # adjacent bytes read as j/j+16
    wrong_w = conv.dequantize(QuantizedWeight(swapped, qw.scales, None, conv.name))
    y = (x.astype(np.float64) @ wrong_w.astype(np.float64).T).astype(np.float16)
    _failed(compare_bounded(exact, bound, y, out_dtype="fp16", convention="esimd.int4_gemv", block_size=128,
                            what="esimd_gemv_int4"), "esimd.int4_gemv")
