"""The conformance suite's judging code fails a deliberately wrong kernel of each kind.

Each case feeds the same oracle expectation and verdict call the conformance test uses with an
output computed the wrong way (saturating instead of wrapping int32, fp16 accumulation, scales
shifted by one group, swapped nibbles, ignored zero points, per-tensor activations, an ISA
above the cap) and asserts a FAIL whose message names what went wrong. Pure numpy: no kernel runs.
"""
from __future__ import annotations

import dataclasses

import ml_dtypes
import numpy as np
import pytest

import oracle.conventions as conventions
from kernels.pytorch import evidence
from oracle.gemm import aten_dyn_quant_4bit as dq_case
from oracle.gemm import mlas_matmulnbits as ort_case
from oracle.gemm.aten_int4pack import int4_expected
from oracle.gemm.aten_int8pack import int8_expected, int8_predict
from oracle.gemm.w8a8 import INT32_MAX, int8_matmul, wrap_int32
from oracle.verdict import compare_bounded, compare_exact

RNG = np.random.default_rng(2024)


def _assert_fail(res, *needles: str) -> None:
    assert res.status == "FAIL", res.message()
    msg = res.message()
    for n in needles:
        assert n in msg, msg


def test_int_mm_saturating_accumulator_fails() -> None:
    a = np.full((1, 131200), -128, np.int8)
    b = np.full((2, 131200), -128, np.int8)
    exact = int8_matmul(a, b)
    saturating = np.minimum(exact, INT32_MAX).astype(np.int32)
    _assert_fail(compare_exact(wrap_int32(exact), saturating, convention="w8a8", what="_int_mm"),
                 "first bad element (0, 0)", "differing bits")


def test_int8pack_fp16_accumulation_fails() -> None:
    x = RNG.standard_normal((4, 2048)).astype(np.float16)
    q = RNG.integers(-128, 128, (8, 2048))
    s = (RNG.random(8) * 0.01 + 0.001).astype(np.float16).astype(np.float32)
    w = (q * s[:, None]).astype(np.float16)
    acc = np.zeros((4, 8), np.float16)
    for k in range(x.shape[1]):  # a kernel that accumulates in fp16
        acc = (acc + x[:, k:k + 1] * w[None, :, k]).astype(np.float16)
    exact, bound = int8_expected(x, q, s, "fp16")
    _assert_fail(compare_bounded(exact, bound, acc, out_dtype="fp16", convention="torch.int8pack"),
                 "outside the derived bound", "exceeds bound")


def test_int8pack_model_is_the_kernel_model() -> None:
    """The bit-exact prediction (fp32 sequential) differs from a pairwise-summed output: BOUNDED, not BIT_EXACT."""
    x = RNG.standard_normal((2, 512)).astype(np.float32)
    q = RNG.integers(-128, 128, (4, 512))
    s = (RNG.random(4) * 0.01).astype(np.float32)
    w = (q.astype(np.float32) * s[:, None]).astype(np.float32)
    pairwise = (x[:, None, :] * w[None]).astype(np.float32).sum(axis=2, dtype=np.float32)
    exact, bound = int8_expected(x, q, s, "fp32")
    pred = int8_predict(x, q, s, "fp32", "DEFAULT")
    r = compare_bounded(exact, bound, pairwise, out_dtype="fp32", convention="torch.int8pack", predicted=pred)
    assert r.status == "BOUNDED" and not np.array_equal(pred, pairwise), r.message()


def test_int4pack_scales_off_by_one_group_fails() -> None:
    conv = conventions.get("tinygemm.torchao")
    w = RNG.standard_normal((16, 128)).astype(np.float32)
    qw = conv.quantize(w)
    x = RNG.standard_normal((3, 128)).astype(ml_dtypes.bfloat16)
    shifted = np.roll(qw.scales, 1, axis=1)  # the kernel reads group g's scale for group g + 1
    wrong_w = (qw.codes - 8) * np.repeat(shifted, 32, axis=1) + np.repeat(qw.zeros, 32, axis=1)
    y = (x.astype(np.float64) @ wrong_w.T).astype(np.float32).astype(ml_dtypes.bfloat16)
    exact, bound = int4_expected(x, qw.codes, qw.scales, qw.zeros, 32, "bf16")
    _assert_fail(compare_bounded(exact, bound, y, out_dtype="bf16", convention="tinygemm.torchao", block_size=32),
                 "outside the derived bound", "tinygemm.torchao")


def test_dyn_quant_swapped_nibbles_fail() -> None:
    conv = conventions.get("torch.dyn_quant_4bit")
    w = RNG.standard_normal((8, 64)).astype(np.float32)
    x = RNG.standard_normal((3, 64)).astype(np.float32)
    qw = conv.quantize(w)
    wbytes = conv.pack(qw)["weight"]
    swapped = ((wbytes >> 4) | (wbytes << 4)).astype(np.uint8)
    packed = np.concatenate([wbytes.reshape(-1), qw.scales.reshape(-1)]).astype(np.float32)
    wrong = np.concatenate([swapped.reshape(-1), qw.scales.reshape(-1)]).astype(np.float32)
    _assert_fail(compare_exact(packed, wrong, convention="torch.dyn_quant_4bit"), "differ")
    codes_swapped = qw.codes.reshape(8, 32, 2)[:, :, ::-1].reshape(8, 64)
    y_wrong, _, _ = dq_case.dyn_quant_model(x, codes_swapped, qw.scales, 32)
    pred, exact, bound = dq_case.dyn_quant_model(x, qw.codes, qw.scales, 32)
    _assert_fail(compare_bounded(exact, bound, y_wrong, out_dtype="fp32", convention="torch.dyn_quant_4bit",
                                 predicted=pred), "outside the derived bound")


def test_dyn_quant_rne_activation_rounding_is_not_bit_exact() -> None:
    """Half-step activations: a kernel that rounds them to even instead of away from zero loses BIT_EXACT."""
    conv = conventions.get("torch.dyn_quant_4bit")
    w = RNG.standard_normal((8, 64)).astype(np.float32)
    qw = conv.quantize(w)
    x = np.tile(np.array([127.0, -128.0, 0.5, 1.5, 2.5, -0.5], np.float32), 11)[:64].reshape(1, 64) * np.float32(1.0)
    pred, exact, bound = dq_case.dyn_quant_model(x, qw.codes, qw.scales, 32)
    orig = dq_case.half_away
    try:
        dq_case.half_away = np.rint
        wrong, _, _ = dq_case.dyn_quant_model(x, qw.codes, qw.scales, 32)
    finally:
        dq_case.half_away = orig
    r = compare_bounded(exact, bound, wrong, out_dtype="fp32", convention="torch.dyn_quant_4bit", predicted=pred)
    assert r.status != "BIT_EXACT", r.message()


def test_matmulnbits_ignored_zero_points_fail() -> None:
    conv = dataclasses.replace(conventions.get("ort.matmulnbits.int4.asym"), group_size=32)
    w = np.abs(RNG.standard_normal((8, 64))).astype(np.float32)  # one-signed: zero points far from 8
    a = RNG.standard_normal((2, 64)).astype(np.float32)
    qw = conv.quantize(w)
    wrong = a.astype(np.float64) @ ((qw.codes - 8) * np.repeat(qw.scales, 32, axis=1)).T
    exact, bound = ort_case.level0_expected(a, qw, conv)
    _assert_fail(compare_bounded(exact, bound, wrong.astype(np.float32), out_dtype="fp32",
                                 convention=conv.name), "outside the derived bound")


def test_matmulnbits_per_tensor_activations_fail_level4() -> None:
    conv = dataclasses.replace(conventions.get("ort.matmulnbits.int4.sym"), group_size=32)
    w = RNG.standard_normal((8, 128)).astype(np.float32)
    a = RNG.standard_normal((2, 128)).astype(np.float32)
    a[:, :32] *= 100  # one loud block: a per-tensor scale crushes the others
    qw = conv.quantize(w)
    act = dataclasses.replace(conventions.get("act.ort.matmulnbits.int8_blk"), group_size=0)
    qa = act.quantize(a)
    deq_a = qa.codes * qa.scales[:, :1]
    wrong = (deq_a @ conv.dequantize(qw).T).astype(np.float32)
    pred, exact, bound = ort_case.level4_model(a, qw, conv)
    _assert_fail(compare_bounded(exact, bound, wrong, out_dtype="fp32", convention=conv.name, predicted=pred),
                 "outside the derived bound")


@pytest.mark.parametrize("line,impl,isa,needle", [
    ("Intel AVX-512 with Intel DL Boost", "brg_matmul:avx512_core_vnni", "avx2", "above the cap AVX2"),
    ("Intel AVX2", "brg_matmul:avx2", "scalar", "above the cap SSE41"),
])
def test_isa_evidence_catches_a_cap_that_did_not_hold(line, impl, isa, needle) -> None:
    stdout = (f"onednn_verbose,v1,info,cpu,isa:{line}\n"
              f"onednn_verbose,v1,primitive,exec,cpu,matmul,{impl},undef,src:u8,,4x64:64x16,0.1\n")
    ev = evidence.parse_onednn(stdout)
    problems = evidence.cap_problems(isa, None, ev)
    assert any(needle in p for p in problems), problems


def test_isa_evidence_catches_aten_capability() -> None:
    problems = evidence.cap_problems("avx2", "AVX512", evidence.OneDNNEvidence())
    assert problems == ["ATen capability is AVX512, the cap --isa avx2 requires AVX2"]
    assert evidence.cap_problems("avx2", "AVX2", evidence.parse_onednn("onednn_verbose,v1,info,cpu,isa:Intel AVX2")) == []


def test_linear_dynamic_int16_pair_saturation_fails() -> None:
    """A u8 x s8 path whose int16 pair sums saturate (vpmaddubsw without reduce_range) fails the exact sums."""
    from oracle.gemm.aten_qlinear_dynamic import linear_dynamic_model

    x = RNG.standard_normal((4, 256)).astype(np.float32)
    w = RNG.integers(-128, 128, (8, 256)).astype(np.int8)
    pred, exact, bound = linear_dynamic_model(x, w, np.float32(0.004), None, engine="fbgemm", reduce_range=False)
    saturated, _, _ = linear_dynamic_model(x, w, np.float32(0.004), None, engine="fbgemm", reduce_range=False,
                                           int16_pairs=True)
    _assert_fail(compare_bounded(exact, bound, saturated, out_dtype="fp32", convention="act.torch.per_tensor.quint8",
                                 predicted=pred), "outside the derived bound")
