"""torch._dyn_quant_pack_4bit_weight + _dyn_quant_matmul_4bit against a bit-exact model of the
reference path every x86 build runs (aten/src/ATen/native/cpu/int4mm_kernel.cpp,
`ref_dyn_quant_matmul_4bit_{channelwise,groupwise}_kernel`; no KleidiAI on x86).

Activations: per row, range widened to 0, inverse scale 255/range in fp32, zero point
`lrintf` of a clamped float, codes `std::round(x * inv)` (half away) + zp clamped to int8.
Per block an exact int32 sum of (a_q - zp) * (nibble - 8), `acc += isum * w_scale` in fp32 in K
order, then `acc * (1/inv)`. The packed buffer is float32 [weight bytes..., scales...], compared
byte for byte. The exact value of the same integer sums, with the bound of those few fp32
roundings, backs the prediction.

Group-wise blocks of 32 to 256 over the engine's case families and caller layouts are the
kernel's spec (conformance/test_specs.py); this module holds what the spec table cannot say:
channelwise blocks (block = K), the packed buffer, and rows built around the activation
quantizer (one-signed, zero and constant rows; half steps and ties).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import oracle.conventions as conventions
from conformance import calls
from oracle.gemm.aten_dyn_quant_4bit import dyn_quant_model
from oracle.strategies import KINDS, float_arrays
from oracle.verdict import compare_bounded, compare_exact

KERNEL = "torch.dyn_quant_matmul_4bit"
MODULE = "kernels.pytorch.dyn_quant_matmul_4bit"
CONV = "torch.dyn_quant_4bit"
F = np.float32
pytestmark = pytest.mark.kernel(KERNEL)


def _judge(qsession, judge, x: np.ndarray, w: np.ndarray, group: int) -> None:
    calls.require_available(qsession, judge, KERNEL, MODULE, CONV)
    conv = dataclasses.replace(conventions.get(CONV), group_size=group)
    qw = conv.quantize(w)
    wbytes = conv.pack(qw)["weight"]
    shape = (x.shape[0], x.shape[1], w.shape[0])
    what = f"_dyn_quant_matmul_4bit fp32, block {group}"
    run = calls.run_observed(qsession, judge, KERNEL, MODULE, "dyn_quant_matmul", x, wbytes, qw.scales, group,
                             convention=CONV, what=what, shape=shape)
    packed = np.concatenate([wbytes.reshape(-1).astype(F), qw.scales.reshape(-1).astype(F)])
    judge(compare_exact(packed, run.outcome.value["packed"], convention=CONV,
                        what="_dyn_quant_pack_4bit_weight buffer (reference layout)"),
          kernel=KERNEL, shape=shape, observed_isa=run.isa())
    pred, exact, bound = dyn_quant_model(x, qw.codes, qw.scales, group)
    res = compare_bounded(exact, bound, run.outcome.value["y"], out_dtype="fp32", convention=CONV,
                          predicted=pred, block_size=group, what=what)
    judge(res, kernel=KERNEL, shape=shape, observed_isa=run.isa(), group_size=group)


@pytest.mark.parametrize("group", ["channel", 32])
def test_dyn_quant_crafted(qsession, judge, group) -> None:
    """One-signed rows (zero point at an end), a zero row, a constant row, M = 1 and M = 5: channelwise and one
    group size, since the row quantizer is the same for every group size (only its zero-point test differs)."""
    rng = np.random.default_rng(5)
    k = 256
    gs = k if group == "channel" else group
    w = rng.standard_normal((24, k)).astype(F)
    w[0] = 0.0
    for m in (1, 5):
        x = rng.standard_normal((m, k)).astype(F)
        x[0] = np.abs(x[0]) if m > 1 else x[0]
        if m > 1:
            x[1] = -np.abs(x[1])
            x[2] = 0.0
            x[3] = 0.75
        _judge(qsession, judge, x, w, gs)


def test_dyn_quant_hypothesis(qsession, judge) -> None:
    @settings(max_examples=4 if qsession.profile == "quick" else 60)
    @given(data=st.data(), group=st.sampled_from([32, 64, 128, 256, 0]), m=st.sampled_from([1, 2, 3, 16, 64]),
           blocks=st.integers(1, 8), n=st.integers(1, 40))
    def case(data, group, m, blocks, n):
        k = (group or 32) * blocks
        gs = group or k  # 0: channelwise (block = K)
        kinds = tuple(kd for kd in KINDS if kd not in ("huge", "subnormal"))  # 255/range overflows to inf there
        x = data.draw(float_arrays((m, k), group_size=gs, kinds=kinds))
        w = data.draw(float_arrays((n, k), group_size=gs, kinds=kinds))
        _judge(qsession, judge, x, w, gs)

    case()
