"""torch.ops.quantized.linear_dynamic per engine, bit for bit (oracle.gemm.aten_qlinear_dynamic).

The activations are quantized per tensor to quint8 (act.torch.per_tensor.quint8, with
reduce_range as asked; QNNPACK ignores it), accumulated exactly in int32 and scaled back in
fp32: fbgemm/x86 as fmaf(acc, fp32(sa * sb), bias), onednn as acc * fp32(1/(1/sa) * 1/(1/sb)) + bias
on gemm:jit and AMX and as (acc * 1/(1/sa)) * 1/(1/sb) + bias on the other brg_matmul kernels
(chosen from the implementation oneDNN reports), qnnpack as fp32(acc * fp32(sb * sa)) + bias. The
exact value of the modelled integer sum, with the bound of the epilogue's few fp32 roundings,
backs the prediction. Per-channel weights without bias at reduce_range=False are every engine's
spec (conformance/test_specs.py); this module holds what the spec table cannot say: reduce_range,
per-tensor weights, bias, int16 pair sums on full-range weights, and quantizer ties.

reduce_range exists because without VNNI both fbgemm and oneDNN multiply u8 by s8 with
vpmaddubsw, whose adjacent-pair int16 sums saturate: `reduce_range=True` (codes <= 127) or
weights in [-64, 63] cannot overflow, so those cases must be exact on every host. Full-range
weights without reduce_range are checked against the int16-pair sums where no VNNI ran (byte for
byte on gemm:jit, whose epilogue is pinned; within the bound elsewhere), and against the exact
sums where it did.
"""
from __future__ import annotations

import numpy as np
import pytest

import oracle.activations  # noqa: F401  (registers the activation conventions)
from conformance import calls
from kernels.isa import host_flags, levels_on_host
from oracle.gemm.aten_qlinear_dynamic import ENGINES, activation_convention, linear_dynamic_model, onednn_epilogue
from oracle.conventions import get
from oracle.rounding import fmaf
from oracle.verdict import Result, compare_bounded, compare_exact

MODULE = "kernels.pytorch.linear_dynamic"
NO_KNOB = ("fbgemm", "x86", "qnnpack")  # fbgemm (which the x86 engine uses for linear) and QNNPACK follow cpuid
SHAPES = [(1, 64, 16), (5, 300, 33), (32, 1024, 64)]


def _engine_param(e: str):
    return pytest.param(e, marks=pytest.mark.kernel(f"torch.quantized.linear_dynamic.{e}"))


def _vnni_ran(engine: str, run) -> bool:
    """Whether the u8 x s8 products went straight to int32 (VNNI/AMX) rather than through int16 pairs."""
    if engine == "onednn":
        ranks = run.onednn.impl_ranks().values()
        if ranks:
            return any(r == 1.5 or r >= 3 for r in ranks)
        line = run.onednn.isa_line.lower()  # 'gemm:jit' names no ISA: it runs the best one oneDNN reports
        return "dl boost" in line or "amx" in line
    return "avx512_vnni" in host_flags()


def _inputs(m: int, k: int, n: int, per_channel: bool, wmax: int):
    rng = np.random.default_rng(m * 7 + k + n + per_channel + wmax)
    x = rng.standard_normal((m, k)).astype(np.float32)
    x[0, 0] = -3.0 * np.abs(x).max()  # a negative outlier moves the zero point off 0
    w = rng.integers(-wmax - 1, wmax + 1, (n, k)).astype(np.int8)
    w_scale = (rng.random(n) * 0.01 + 1e-3).astype(np.float32) if per_channel else np.float32(0.004)
    return x, w, w_scale, rng.standard_normal(n).astype(np.float32)


def _judge(qsession, judge, engine: str, x, w, w_scale, bias, reduce_range: bool, *, pairs_allowed: bool) -> None:
    kernel = f"torch.quantized.linear_dynamic.{engine}"
    conv = activation_convention(engine, reduce_range)
    calls.require_available(qsession, judge, kernel, MODULE, conv, engine)
    top = (levels_on_host() or ["scalar"])[-1]
    if engine in NO_KNOB and qsession.isa not in ("native", top):
        judge(Result("UNAVAILABLE", conv, kernel, detail=f"{engine} dispatches on cpuid ({top} here); "
                                                        f"--isa {qsession.isa} cannot cap it"), kernel=kernel)
    shape = (x.shape[0], x.shape[1], w.shape[0])
    what = (f"linear_dynamic[{engine}] fp32, {'per-channel' if np.ndim(w_scale) else 'per-tensor'} qint8 weights, "
            f"reduce_range={reduce_range}")
    run = calls.run_observed(qsession, judge, kernel, MODULE, "linear_dynamic", engine, x, w, w_scale, bias,
                             reduce_range, convention=conv, what=what, shape=shape)
    pairs = pairs_allowed and not _vnni_ran(engine, run)
    epilogue = onednn_epilogue(run.onednn.impls) if engine == "onednn" else None
    pred, exact, bound = linear_dynamic_model(x, w, w_scale, bias, engine=engine, reduce_range=reduce_range,
                                              int16_pairs=pairs, epilogue=epilogue)
    y = run.outcome.value
    if pairs:
        conv = f"{conv} x vpmaddubsw int16 pairs"
    if pairs and (engine != "onednn" or "matmul:gemm:jit" in run.onednn.impls):
        res = compare_exact(pred, y, convention=conv, what=what)  # the non-VNNI paths pinned bit for bit
    else:
        res = compare_bounded(exact, bound, y, out_dtype="fp32", convention=conv, predicted=pred, what=what)
    judge(res, kernel=kernel, shape=shape, observed_isa=run.isa(), engine=engine, reduce_range=reduce_range,
          int16_pairs=pairs, epilogue=epilogue)


@pytest.mark.parametrize("engine", [_engine_param(e) for e in ENGINES])
@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
@pytest.mark.parametrize("mkn", SHAPES, ids=["gemv", "k300", "k1024"])
def test_linear_dynamic_reduce_range(qsession, judge, engine: str, per_channel: bool, mkn) -> None:
    """reduce_range=True (what torch.ao.nn.quantized.dynamic.Linear passes on x86): full-range qint8 weights."""
    x, w, w_scale, bias = _inputs(*mkn, per_channel, 127)
    _judge(qsession, judge, engine, x, w, w_scale, bias, True, pairs_allowed=False)


@pytest.mark.parametrize("engine", [_engine_param(e) for e in ENGINES])
def test_linear_dynamic_full_range_activations_per_tensor(qsession, judge, engine: str) -> None:
    """reduce_range=False with per-tensor weights in [-64, 63]: 255 * 64 * 2 < 2^15, exact on every path; no
    bias (per-channel weights are the engine's spec)."""
    x, w, w_scale, _ = _inputs(5, 300, 33, False, 63)
    _judge(qsession, judge, engine, x, w, w_scale, None, False, pairs_allowed=False)


@pytest.mark.parametrize("engine", [_engine_param(e) for e in ENGINES])
def test_linear_dynamic_int16_pairs_without_reduce_range(qsession, judge, engine: str) -> None:
    """reduce_range=False with full-range weights: int16 pair saturation where no VNNI ran, exact elsewhere."""
    x, w, w_scale, bias = _inputs(8, 256, 24, True, 127)
    _judge(qsession, judge, engine, x, w, w_scale, bias, False, pairs_allowed=engine != "qnnpack")


def _tie_activations(conv_name: str, m: int, k: int) -> np.ndarray:
    """x spanning [-(span + 1) // 2, span // 2] * 2^-4 exactly, so the fbgemm scale is 2^-4 and 1/scale
    exact; the other elements are (j + 0.5) * 2^-4, whose fmaf(x, 1/scale, zp) is an exact half."""
    span = get(conv_name).qparam_range[1] - get(conv_name).qparam_range[0]
    j = np.arange(m * k).reshape(m, k) % span - (span + 1) // 2
    x = ((j + 0.5) / 16).astype(np.float32)
    x[0, 0], x[0, 1] = -((span + 1) // 2) / 16, (span // 2) / 16
    return x


def _ties(conv_name: str, x: np.ndarray) -> int:
    """Elements whose pre-rounding value fmaf(x, 1/scale, zp) is an exact half, computed with the oracle's qparams."""
    qw = get(conv_name).quantize(x)
    t = fmaf(x, np.full_like(x, np.float32(1) / qw.scales[0, 0]), np.full_like(x, np.float32(qw.zeros[0, 0])))
    return int(np.count_nonzero(t - np.floor(t) == 0.5))


@pytest.mark.parametrize("engine", [_engine_param(e) for e in ENGINES])
@pytest.mark.parametrize("reduce_range", [True, False], ids=["reduce_range", "full_range"])
def test_linear_dynamic_activation_ties(qsession, judge, engine: str, reduce_range: bool) -> None:
    """Activations whose quantized values are exact halves for all but two elements: the declared
    round-half-to-even decides every code, so a quantizer rounding ties the other way fails."""
    m, k, n = 3, 64, 16
    x = _tie_activations(activation_convention(engine, reduce_range), m, k)
    assert _ties(activation_convention(engine, reduce_range), x) >= m * k - 2, "the case must be exact ties"
    rng = np.random.default_rng(5)
    w = rng.integers(-64, 64, (n, k)).astype(np.int8)
    w_scale = (rng.random(n) * 0.01 + 1e-3).astype(np.float32)
    _judge(qsession, judge, engine, x, w, w_scale, rng.standard_normal(n).astype(np.float32), reduce_range,
           pairs_allowed=False)
