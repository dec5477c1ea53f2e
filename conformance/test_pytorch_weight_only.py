"""PyTorch's weight-only CPU kernels (_weight_int4pack_mm_for_cpu, _weight_int8pack_mm) against
the exact x @ dequant(w).T with the bound of their declared fp32 accumulation (oracle.gemm.wxa16),
on weights quantized from floats by each convention's own quantizer. The crafted probes (zero
points at the code ends, tiny and large group scales, absorption, tails, ties, subnormal and
non-finite activations, caller layouts, threads) are the spec engine's (conformance/test_specs.py).

Weights are quantized by the oracle's convention (tinygemm.*, torch.int8pack) and handed to the
kernel as codes plus scales (and zeros) in the activation dtype, as torchao and torch's tests do;
the exact value uses those stored scales. The kernels may form the tinygemm weight
(q - 8) * s + z with one rounding (FMA) or two, so each weight carries
u32 * (|(q - 8) s| + |w|) of its own, propagated through the dot product.
"""
from __future__ import annotations

import dataclasses

import ml_dtypes
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import oracle.conventions as conventions
from conformance import calls
from oracle.gemm.aten_int4pack import int4_expected
from oracle.gemm.aten_int8pack import int8_expected, int8_predict
from oracle.strategies import KINDS, LLM_LAYER_SHAPES, float_arrays, sums_fit_fp32
from oracle.verdict import compare_bounded

NP_DTYPES = {"fp32": np.float32, "fp16": np.float16, "bf16": ml_dtypes.bfloat16}
SAFE_KINDS = ("normal", "zero_group", "constant_group", "half_steps", "max_ties")  # finite in fp16


def _examples(qsession) -> int:
    return 3 if qsession.profile == "quick" else 40


def _kinds(dtype: str) -> tuple[str, ...]:
    return SAFE_KINDS if dtype == "fp16" else KINDS


def _activations(data, m: int, k: int, dtype: str, group: int) -> np.ndarray:
    x = data.draw(float_arrays((m, k), group_size=group, kinds=_kinds(dtype)))
    return x.astype(NP_DTYPES[dtype])


def _stored(a: np.ndarray, dtype: str) -> np.ndarray:
    """Values rounded to the activation dtype (the dtype the kernels take scales in), as float32."""
    return np.asarray(a, dtype=np.float32).astype(NP_DTYPES[dtype]).astype(np.float32)


# -- _weight_int4pack_mm_for_cpu --------------------------------------------------------------

K4 = "torch.weight_int4pack_mm"
M4 = "kernels.pytorch.weight_int4pack_mm"


def _judge_int4(qsession, judge, conv_name: str, dtype: str, x: np.ndarray, w: np.ndarray, group: int) -> None:
    calls.require_available(qsession, judge, K4, M4, conv_name)
    conv = dataclasses.replace(conventions.get(conv_name), group_size=group)
    qw = conv.quantize(w)
    scales, zeros = _stored(qw.scales, dtype), _stored(qw.zeros, dtype)
    sz = np.stack([scales, zeros], axis=2).transpose(1, 0, 2).astype(NP_DTYPES[dtype])
    shape = (x.shape[0], x.shape[1], w.shape[0])
    what = f"_weight_int4pack_mm_for_cpu {dtype} out, group {group}"
    run = calls.run_observed(qsession, judge, K4, M4, "int4pack_mm", x, qw.codes, sz, group, convention=conv_name,
                             what=what, shape=shape)
    exact, bound = int4_expected(x, qw.codes, scales, zeros, group, dtype)
    res = compare_bounded(exact, bound, run.outcome.value["y"], out_dtype=dtype, convention=conv_name,
                          block_size=group, what=what)
    judge(res, kernel=K4, shape=shape, observed_isa=run.isa(), dtype=dtype, group_size=group)


@pytest.mark.kernel(K4)
@pytest.mark.parametrize("convention", ["tinygemm.torchao", "tinygemm.torch_test"])
@pytest.mark.parametrize("dtype", ["fp32", "bf16", "fp16"])
def test_int4pack_hypothesis(qsession, judge, convention: str, dtype: str) -> None:
    @settings(max_examples=_examples(qsession))
    @given(data=st.data(), group=st.sampled_from([32, 64, 128, 256]),
           m=st.sampled_from([1, 2, 3, 8, 17, 64]), groups=st.integers(1, 6), n16=st.integers(1, 4))
    def case(data, group, m, groups, n16):
        k, n = group * groups, 16 * n16
        w = data.draw(float_arrays((n, k), group_size=group, kinds=_kinds(dtype)))
        x = _activations(data, m, k, dtype, group)
        assume(sums_fit_fp32(np.asarray(x, np.float32), w * 1.125))  # dequantized codes exceed w by < 1/8
        _judge_int4(qsession, judge, convention, dtype, x, w, group)

    case()


@pytest.mark.kernel(K4)
@pytest.mark.parametrize("layer", LLM_LAYER_SHAPES[:6])
def test_int4pack_llm_layers(qsession, judge, layer) -> None:
    if qsession.profile != "full":
        pytest.skip("real LLM layer shapes run in the full profile only")
    k, n = layer
    rng = np.random.default_rng(k + n)
    w = (rng.standard_normal((n, k)) * 0.02).astype(np.float32)
    x = rng.standard_normal((4, k)).astype(ml_dtypes.bfloat16)
    _judge_int4(qsession, judge, "tinygemm.torchao", "bf16", x, w, 128)


# -- _weight_int8pack_mm ------------------------------------------------------------------------

K8 = "torch.weight_int8pack_mm"
M8 = "kernels.pytorch.weight_int8pack_mm"
CONV8 = "torch.int8pack"


def _judge_int8(qsession, judge, dtype: str, x: np.ndarray, q: np.ndarray, scales: np.ndarray,
                x_offset_bytes: int = 0) -> None:
    calls.require_available(qsession, judge, K8, M8, CONV8)
    s = _stored(scales, dtype)
    shape = (x.shape[0], x.shape[1], q.shape[0])
    what = f"_weight_int8pack_mm {dtype} out"
    run = calls.run_observed(qsession, judge, K8, M8, "int8pack_mm", x, q.astype(np.int8), s.astype(NP_DTYPES[dtype]),
                             x_offset_bytes, convention=CONV8, what=what, shape=shape)
    exact, bound = int8_expected(x, q, s, dtype)
    res = compare_bounded(exact, bound, run.outcome.value, out_dtype=dtype, convention=CONV8, what=what,
                          predicted=int8_predict(x, q, s, dtype, run.capability))
    judge(res, kernel=K8, shape=shape, observed_isa=run.isa(), dtype=dtype)


@pytest.mark.kernel(K8)
@pytest.mark.parametrize("dtype", ["fp32", "bf16", "fp16"])
def test_int8pack_full_range_codes(qsession, judge, dtype: str) -> None:
    """-128/127 codes everywhere (largest |products|), alternating signs (cancellation), K off any multiple."""
    rng = np.random.default_rng(8)
    for m, k, n in ((1, 4096, 16), (3, 80, 5), (17, 304, 33)) if dtype == "bf16" else ((1, 4096, 16), (3, 77, 5), (17, 300, 33)):
        x = rng.standard_normal((m, k)).astype(NP_DTYPES[dtype])
        for q in (np.full((n, k), -128), np.full((n, k), 127), np.where(np.indices((n, k)).sum(0) % 2, 127, -128)):
            _judge_int8(qsession, judge, dtype, x, q, (rng.random(n) * 0.01 + 1e-3).astype(np.float32))


@pytest.mark.kernel(K8)
@pytest.mark.parametrize("mkn", [(3, 77, 5), (4, 66, 4)])
def test_int8pack_bf16_k_tail(qsession, judge, mkn) -> None:
    """bf16 with K off a multiple of 8: the AVX2/AVX512 kernels load rows with aligned loads and have no K tail."""
    m, k, n = mkn
    rng = np.random.default_rng(k)
    x = rng.standard_normal((m, k)).astype(ml_dtypes.bfloat16)
    _judge_int8(qsession, judge, "bf16", x, rng.integers(-128, 128, (n, k)), (rng.random(n) * 0.01).astype(np.float32))


@pytest.mark.kernel(K8)
def test_int8pack_bf16_row_alignment(qsession, judge) -> None:
    """bf16 x 16 bytes off a 32-byte boundary, K % 16 == 0: AVX2 row loads (16-byte) hold, AVX512 ones (32) fault."""
    m, k, n = 3, 64, 5
    rng = np.random.default_rng(16)
    x = rng.standard_normal((m, k)).astype(ml_dtypes.bfloat16)
    _judge_int8(qsession, judge, "bf16", x, rng.integers(-128, 128, (n, k)), (rng.random(n) * 0.01).astype(np.float32),
                x_offset_bytes=16)


@pytest.mark.kernel(K8)
@pytest.mark.parametrize("dtype", ["fp32", "bf16", "fp16"])
def test_int8pack_hypothesis(qsession, judge, dtype: str) -> None:
    """Weights quantized by torch.int8pack from structured floats; M from GEMV up."""
    conv = conventions.get(CONV8)

    @settings(max_examples=_examples(qsession))
    @given(data=st.data(), m=st.sampled_from([1, 2, 5, 16, 64]), k=st.integers(1, 600), n=st.integers(1, 40))
    def case(data, m, k, n):
        if dtype == "bf16":  # K off 16 is test_int8pack_bf16_k_tail's (a known defect)
            k = -(-k // 16) * 16
        w = data.draw(float_arrays((n, k), group_size=k, kinds=_kinds(dtype)))
        qw = conv.quantize(w)
        x = _activations(data, m, k, dtype, k)
        assume(sums_fit_fp32(np.asarray(x, np.float32), qw.codes * qw.scales.astype(np.float64)))
        _judge_int8(qsession, judge, dtype, x, qw.codes, qw.scales[:, 0])

    case()
