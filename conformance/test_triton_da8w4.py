"""The project's Triton DA8W4 (kernels/triton/da8w4.py): what its engine spec does not judge.

The spec (kernels/triton/__init__.py, conformance/test_specs.py) runs the asymmetric quantizer and
the GEMM without bias over every w4_grouped case family and caller layout. Here: activation
codes, scales and zero points byte for byte against both torchao conventions; the symmetric int8
path, the bias, and M past one row tile with a distinct zero point per row, each output against
da8w4_exact's value and bound with da8w4_linear (per-block int32, fp32 epilogue in K order from
the bias) as the bit-exact prediction, which the kernel must equal.
"""
from __future__ import annotations

import numpy as np
import pytest

import oracle.activations  # noqa: F401  (registers the activation conventions)
from conformance import triton_harness as harness
from oracle.conventions import get
from oracle.gemm.da8w4 import da8w4_exact, da8w4_linear
from oracle.verdict import compare_bounded, compare_exact

KERNEL = "triton.da8w4"
MOD = "kernels.triton.da8w4"
ACTS = ("act.torchao.da8w4.asym.fp32", "act.torchao.da8w4.sym")
pytestmark = pytest.mark.kernel(KERNEL)


def _shape(qsession):
    return (5, 256, 24) if qsession.profile == "quick" else (64, 4096, 512)


def _x(rng, m, k):
    x = rng.standard_normal((m, k)).astype(np.float32)
    x[0] = np.abs(x[0])  # all positive: min clamps to 0
    x[1] = 0  # zero range: the eps scale
    x[2] = -np.abs(x[2]) * 1e3
    return x


@pytest.mark.parametrize("convention", ACTS)
def test_activation_quant(qsession, judge, convention):
    m, k, _ = _shape(qsession)
    x = _x(np.random.default_rng(1), m, k)
    isa = harness.ready(qsession, judge, MOD, KERNEL, convention, x.shape)
    r = harness.call(qsession, judge, MOD, "quantize_act", x, convention, kernel=KERNEL, judged_as=convention,
                     shape=x.shape)
    qw = get(convention).quantize(x)
    sym = convention.endswith("sym")
    judge(compare_exact(qw.codes.astype(np.int8 if sym else np.uint8), r["codes"], convention=convention,
                        what="codes"), kernel=KERNEL, shape=x.shape, observed_isa=isa)
    judge(compare_exact(qw.scales[:, 0].astype(np.float32), r["scales"], convention=convention, what="fp32 scales"),
          kernel=KERNEL, shape=x.shape, observed_isa=isa)
    if not sym:
        judge(compare_exact(qw.zeros[:, 0].astype(np.int32), r["zeros"], convention=convention, what="zero points"),
              kernel=KERNEL, shape=x.shape, observed_isa=isa)


def _weights(rng, n, k, group, source):
    """uint4 codes, fp32 scales, int zero points: random, or torchao's quantizers (group 32)."""
    if source == "random":
        return (rng.integers(0, 16, (n, k)), (rng.random((n, k // group)) * 0.05 + 1e-4).astype(np.float32),
                rng.integers(0, 16, (n, k // group)))
    conv = get(source)
    qw = conv.quantize(rng.standard_normal((n, k)).astype(np.float32))
    zeros = qw.zeros if qw.zeros is not None else np.full(qw.scales.shape, conv.zero_offset, np.int32)
    return qw.codes, qw.scales.astype(np.float32), zeros


def _gemm(qsession, judge, a_q, sa, za, wq, sw, zw, bias, group, out, label):
    from kernels.triton.da8w4 import pack_weight

    shape = (a_q.shape[0], a_q.shape[1], wq.shape[0])
    conv = f"da8w4 block int32 + fp32 epilogue ({label})"
    isa = harness.ready(qsession, judge, MOD, KERNEL, conv, shape)
    y = harness.call(qsession, judge, MOD, "linear", a_q, sa, za, pack_weight(wq), sw, zw, bias, group_size=group,
                     out=out, kernel=KERNEL, judged_as=conv, shape=shape)
    # symmetric int8 codes are the oracle's uint8 codes q + 128 with zero point 128
    ua, uz = (a_q, za) if za is not None else ((a_q.astype(np.int32) + 128).astype(np.uint8), np.full(len(sa), 128))
    exact, bound = da8w4_exact(ua, sa, uz, wq, sw, zw, bias, group_size=group, out=out)
    pred = da8w4_linear(ua, sa, uz, wq, sw, zw, bias, group_size=group, out=out)
    res = compare_bounded(exact, bound, y, out_dtype=out, convention=conv, predicted=pred,
                          what=f"{out} output (bit-exact block-order model)")
    judge(res, kernel=KERNEL, shape=shape, observed_isa=isa)
    if res.status != "BIT_EXACT":
        judge(compare_exact(pred, y, convention=conv, what=f"{out} output vs the block-order model"),
              kernel=KERNEL, shape=shape, observed_isa=isa)


@pytest.mark.parametrize("group", [32, 64, 256])
@pytest.mark.parametrize("out", ["bf16", "fp32"])
def test_da8w4_sym_random_codes(qsession, judge, group, out):
    """Symmetric int8 codes (zero point 0) with a bias: the path the engine's asymmetric spec does not take."""
    m, k, n = _shape(qsession)
    rng = np.random.default_rng(group)
    wq, sw, zw = _weights(rng, n, k, group, "random")
    sa = (rng.random(m) * 0.05 + 1e-3).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    a_q = rng.integers(-127, 128, (m, k)).astype(np.int8)
    _gemm(qsession, judge, a_q, sa, None, wq, sw, zw, bias, group, out, f"sym act, group {group}")


@pytest.mark.parametrize("out", ["fp32", "bf16"])
def test_da8w4_rows_past_one_tile(qsession, judge, out):
    """M = 40 spans three 16-row tiles (the interpreter's BLOCK_M; 64 on a GPU from M = 33 would need
    M > 64) with a distinct zero point on every row and every weight group: a kernel that indexes the
    activation zero point (or its zp * sum(w - zw) compensation) by the tile-local row reads row r % 16's."""
    m, k, n, group = 40, 128, 16, 32
    rng = np.random.default_rng(40)
    wq, sw, zw = _weights(rng, n, k, group, "random")
    zw = (np.arange(n * (k // group)).reshape(n, -1) * 7) % 16  # distinct along each row's groups
    a_q = rng.integers(0, 256, (m, k)).astype(np.uint8)
    za = rng.permutation(256)[:m]  # distinct per row
    assert len(set(za.tolist())) == m and np.any(za != za[np.arange(m) % 16])
    sa = (rng.random(m) * 0.05 + 1e-3).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    _gemm(qsession, judge, a_q, sa, za, wq, sw, zw, bias, group, out, f"asym act, M {m} over 16-row tiles")


@pytest.mark.parametrize("weights", ["torchao.da8w4.opaque", "torchao.da8w4.pr2128"])
def test_da8w4_sym_end_to_end(qsession, judge, weights):
    """torchao's weight quantizer, the kernel's own symmetric activation quantizer, then the GEMM (fp16 out)
    (the asymmetric quantizer's call is the engine spec's)."""
    convention = ACTS[1]
    m, k, n = _shape(qsession)
    rng = np.random.default_rng(4)
    x = _x(rng, m, k)
    wq, sw, zw = _weights(rng, n, k, 32, weights)
    shape = (m, k, n)
    harness.ready(qsession, judge, MOD, KERNEL, convention, shape)
    r = harness.call(qsession, judge, MOD, "quantize_act", x, convention, kernel=KERNEL, judged_as=convention,
                     shape=shape)
    _gemm(qsession, judge, r["codes"], r["scales"], None, wq, sw, zw, None, 32, "fp16", f"{convention} x {weights}")
