"""The project's Triton W8A8 (kernels/triton/w8a8.py): what its engine spec does not judge.

The spec (kernels/triton/__init__.py, conformance/test_specs.py) runs `linear`'s default call, the
sglang quantizer and the '(acc*sa)*sb' epilogue without bias, over every w8_float case family and
caller layout. Here: per-token activation codes and scales byte for byte against both named
conventions (oracle/activations.py), exact ties included; the int32 accumulator byte for byte
against oracle.gemm.w8a8 (wrapping); the other epilogue order and the bias stages, full-range codes
and scales of any magnitude, and the vLLM quantizer end to end, each output against w8a8_exact's
value and bound with the named epilogue's bit-exact output as the prediction. The quick profile
runs tiny shapes (the CPU interpreter is slow); the full profile adds LLM-sized ones for a GPU.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import oracle.activations  # noqa: F401  (registers the activation conventions)
from conformance import triton_harness as harness
from oracle.conventions import get
from oracle.gemm.w8a8 import int8_matmul, w8a8_exact, w8a8_linear, wrap_int32
from oracle.strategies import int8_codes
from oracle.verdict import compare_bounded, compare_exact

KERNEL = "triton.w8a8"
MOD = "kernels.triton.w8a8"
ACTS = ("act.sglang.per_token_int8.triton", "act.vllm.per_token_int8.cuda")
ORDERS = ("(acc*sa)*sb", "acc*(sa*sb)")
OUTS = ("fp32", "fp16", "bf16")
# the spec's call (linear_view): the first order without bias, in every output dtype, is the engine's
EPILOGUES = [(out, order, stage) for out in OUTS for order in ORDERS for stage in (None, "before_cast", "after_cast")
             if (order, stage) != (ORDERS[0], None)]
pytestmark = pytest.mark.kernel(KERNEL)


def _shapes(qsession) -> list[tuple[int, int, int]]:
    quick = [(1, 32, 16), (17, 70, 33)]
    return quick if qsession.profile == "quick" else quick + [(64, 4096, 256), (256, 4096, 256), (33, 11008, 96)]


def _act_rows(rng: np.random.Generator, m: int, k: int) -> np.ndarray:
    """Gaussian rows plus crafted ones: zeros, one spike, exact half-steps, tiny values."""
    x = rng.standard_normal((max(m, 6), k)).astype(np.float32)
    x[0] = 0
    x[1] = 0
    x[1, k // 2] = -3.0
    x[2] = _tie_row(k, 1.0)
    x[3] = 1e-12 * np.sign(x[3])  # below the 1e-10 clamp of the sglang rule
    x[4] = 6e4 * np.sign(x[4])
    return x


def _tie_row(k: int, unit: float) -> np.ndarray:
    """absmax 127 * unit (a power of two) makes 127/absmax = 1/unit exact, so every other element,
    (j + 0.5) * unit for j in -127..126, scales to an exact half: both rounding rules disagree on them."""
    row = ((np.arange(k) % 254 - 127 + 0.5) * unit).astype(np.float32)
    row[0] = 127 * unit
    return row


def _ties(convention: str, x: np.ndarray) -> int:
    """How many codes the oracle's rule decides on an exact tie: the elements whose code changes when
    only the rounding of ties changes (half away and half to even agree everywhere else)."""
    conv = get(convention)
    other = dataclasses.replace(conv, rounding="rne" if conv.rounding == "half_away" else "half_away")
    return int(np.count_nonzero(conv.quantize(x).codes != other.quantize(x).codes))


@pytest.mark.parametrize("convention", ACTS)
@pytest.mark.parametrize("dtype", ["fp32", "fp16", "bf16"])
def test_per_token_quant(qsession, judge, convention, dtype):
    from oracle.gemm._common import cast_out
    rng = np.random.default_rng(3)
    for m, k, _ in _shapes(qsession):
        x = cast_out(_act_rows(rng, m, k), dtype)
        shape = x.shape
        isa = harness.ready(qsession, judge, MOD, KERNEL, convention, shape)
        codes, scales = harness.call(qsession, judge, MOD, "quantize_act", x, convention, kernel=KERNEL,
                                     judged_as=convention, shape=shape)
        qw = get(convention).quantize(x.astype(np.float32))
        assert _ties(convention, x[2:3].astype(np.float32)) >= k // 4, "the half-step row must hold exact ties"
        judge(compare_exact(qw.codes.astype(np.int8), codes, convention=convention, what="int8 codes"),
              kernel=KERNEL, shape=shape, observed_isa=isa)
        judge(compare_exact(qw.scales[:, 0].astype(np.float32), scales, convention=convention, what="fp32 scales"),
              kernel=KERNEL, shape=shape, observed_isa=isa)


def _acc_case(qsession, judge, a, w):
    shape = (a.shape[0], a.shape[1], w.shape[0])
    conv = "w8a8 int32 accumulator (wraps mod 2^32)"
    isa = harness.ready(qsession, judge, MOD, KERNEL, conv, shape)
    c = harness.call(qsession, judge, MOD, "int_mm", a, w, kernel=KERNEL, judged_as=conv, shape=shape)
    judge(compare_exact(wrap_int32(int8_matmul(a, w)), c, convention=conv, what="int32 accumulator"),
          kernel=KERNEL, shape=shape, observed_isa=isa)


@pytest.mark.parametrize("fill", [(-128, -128), (-128, 127), (127, 127)], ids=["min_min", "min_max", "max_max"])
def test_int32_accumulator_extremes(qsession, judge, fill):
    for m, k, n in _shapes(qsession):
        _acc_case(qsession, judge, np.full((m, k), fill[0], np.int8), np.full((n, k), fill[1], np.int8))


def test_int32_accumulator_wraps(qsession, judge):
    """K * 16384 > 2^31: the tensor cores' s32 accumulate wraps like the oracle's int32."""
    if qsession.profile != "full":
        pytest.skip("full profile only (a 131200-long dot product is minutes in the interpreter)")
    _acc_case(qsession, judge, np.full((1, 131200), -128, np.int8), np.full((2, 131200), -128, np.int8))


def _gemm_case(qsession, judge, a, w, sa, sb, bias, order, bias_stage, out):
    shape = (a.shape[0], a.shape[1], w.shape[0])
    conv = f"w8a8 {order} bias {bias_stage if bias is not None else 'none'}"
    isa = harness.ready(qsession, judge, MOD, KERNEL, conv, shape)
    y = harness.call(qsession, judge, MOD, "gemm", a, sa, w, sb, bias, out=out, order=order, bias_stage=bias_stage,
                     kernel=KERNEL, judged_as=conv, shape=shape)
    exact, bound = w8a8_exact(a, sa, w, sb, bias, out=out)
    pred = w8a8_linear(a, sa, w, sb, bias, order=order, bias_stage=bias_stage, out=out)
    res = compare_bounded(exact, bound, y, out_dtype=out, convention=conv, predicted=pred,
                          what=f"{out} output (bit-exact {order} model)")
    judge(res, kernel=KERNEL, shape=shape, observed_isa=isa)
    if res.status != "BIT_EXACT":  # the order is fixed by the kernel's source: bounded is not enough
        judge(compare_exact(pred, y, convention=conv, what=f"{out} output vs the {order} model"),
              kernel=KERNEL, shape=shape, observed_isa=isa)


@pytest.mark.parametrize("out, order, bias_stage", EPILOGUES)
def test_gemm_epilogue(qsession, judge, out, order, bias_stage):
    rng = np.random.default_rng(7)
    for m, k, n in _shapes(qsession)[1 if qsession.profile == "quick" else 0:]:
        a = rng.integers(-128, 128, (m, k), dtype=np.int8)
        w = rng.integers(-128, 128, (n, k), dtype=np.int8)
        sa = (rng.random(m) * 0.02 + 1e-4).astype(np.float32)
        sb = (rng.random(n) * 0.002 + 1e-5).astype(np.float32)
        bias = None if bias_stage is None else rng.standard_normal(n).astype(np.float32)
        _gemm_case(qsession, judge, a, w, sa, sb, bias, order, bias_stage or "before_cast", out)


@pytest.mark.parametrize("convention", ACTS)
@pytest.mark.parametrize("unit", [2.0 ** -3, 2.0 ** 4], ids=["unit_1_8", "unit_16"])
def test_per_token_quant_ties(qsession, judge, convention, unit):
    """Rows whose every non-max element scales to an exact .5 after the kernel's own fp32 multiplier:
    the convention's rounding rule alone decides half of each row's codes."""
    k = 64
    x = np.stack([_tie_row(k, unit), -_tie_row(k, unit)])
    assert _ties(convention, x) >= k // 2, "the case must hold exact ties"
    isa = harness.ready(qsession, judge, MOD, KERNEL, convention, x.shape)
    codes, scales = harness.call(qsession, judge, MOD, "quantize_act", x, convention, kernel=KERNEL,
                                 judged_as=convention, shape=x.shape)
    qw = get(convention).quantize(x)
    judge(compare_exact(qw.codes.astype(np.int8), codes, convention=convention, what="int8 codes of exact ties"),
          kernel=KERNEL, shape=x.shape, observed_isa=isa)
    judge(compare_exact(qw.scales[:, 0].astype(np.float32), scales, convention=convention, what="fp32 scales"),
          kernel=KERNEL, shape=x.shape, observed_isa=isa)


@pytest.mark.parametrize("bias", ["nonzero", "zero", "none"])
@pytest.mark.parametrize("out", ["fp32", "bf16"])
def test_gemm_gemv_bias(qsession, judge, bias, out):
    """M = 1 (the GEMV a decode step runs) with a non-zero bias, a zero bias and none: a kernel whose
    M = 1 path skips the epilogue's bias add fails the first."""
    rng = np.random.default_rng(21)
    m, k, n = 1, 32, 16
    a = rng.integers(-128, 128, (m, k), dtype=np.int8)
    w = rng.integers(-128, 128, (n, k), dtype=np.int8)
    sa = np.array([0.01], np.float32)
    sb = (rng.random(n) * 0.002 + 1e-4).astype(np.float32)
    b = {"nonzero": (rng.standard_normal(n) * 4).astype(np.float32), "zero": np.zeros(n, np.float32),
         "none": None}[bias]
    _gemm_case(qsession, judge, a, w, sa, sb, b, ORDERS[0], "before_cast", out)


def test_linear_end_to_end_vllm(qsession, judge):
    """Quantize by the vLLM rule, then GEMM in one call: the codes, the scales and the bf16 output, each judged
    (the sglang rule's call is the engine spec's)."""
    convention = ACTS[1]
    rng = np.random.default_rng(11)
    m, k, n = _shapes(qsession)[-1]
    x = _act_rows(rng, m, k)
    w = rng.integers(-127, 128, (n, k), dtype=np.int8)
    sb = (rng.random(n) * 0.01).astype(np.float32)
    shape = (x.shape[0], k, n)
    isa = harness.ready(qsession, judge, MOD, KERNEL, convention, shape)
    r = harness.call(qsession, judge, MOD, "linear", x, w, sb, None, convention=convention, out="bf16",
                     kernel=KERNEL, judged_as=convention, shape=shape)
    qw = get(convention).quantize(x)
    codes, sa = qw.codes.astype(np.int8), qw.scales[:, 0].astype(np.float32)
    judge(compare_exact(codes, r["codes"], convention=convention, what="int8 codes"), kernel=KERNEL, shape=shape,
          observed_isa=isa)
    judge(compare_exact(sa, r["scales"], convention=convention, what="fp32 scales"), kernel=KERNEL, shape=shape,
          observed_isa=isa)
    exact, bound = w8a8_exact(codes, sa, w, sb, out="bf16")
    judge(compare_bounded(exact, bound, r["y"], out_dtype="bf16", convention=convention,
                          predicted=w8a8_linear(codes, sa, w, sb, out="bf16"), what="bf16 output"),
          kernel=KERNEL, shape=shape, observed_isa=isa)


def test_gemm_hypothesis(qsession, judge):
    """Full-range codes and scales of any magnitude over small shapes, each epilogue order and dtype."""
    n_examples = 4 if qsession.profile == "quick" else 40

    @settings(max_examples=n_examples, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
    @given(data=st.data(), m=st.integers(1, 20), k=st.integers(1, 80), n=st.integers(1, 40),
           order=st.sampled_from(ORDERS), out=st.sampled_from(OUTS))
    def case(data, m, k, n, order, out):
        a = data.draw(int8_codes((m, k)))
        w = data.draw(int8_codes((n, k)))
        exp = st.floats(-20, 0)
        sa = np.float32(2.0) ** np.array(data.draw(st.lists(exp, min_size=m, max_size=m)), np.float32)
        sb = np.float32(3.0) ** np.array(data.draw(st.lists(exp, min_size=n, max_size=n)), np.float32)
        _gemm_case(qsession, judge, a, w, sa.astype(np.float32), sb.astype(np.float32), None, order, "before_cast", out)

    case()
