"""BesTLA `woqgemm` (auto-round-lib) against the oracle: weight-only GEMM with int2..int8 codes.

Expected values: the weight is dequantized by oracle.gemm.bestla_woq.dequant (the oracle's BesTLA
conventions) and the GEMM value and bound come from oracle.gemm.wxa16. The prediction is
oracle.gemm.bestla_woq.fma_chain, the order observed on an AVX2 host: one fmaf chain per output
over k = 0..K-1 from 0, then the fp32 bias add (fp32 activations; compute type fp32, and int8,
which such a host runs as fp32). bf16/fp16 activations abort the process (known defect).
The asymmetric int4 GEMM without bias (fp32 activations and scales) is on the engine as the spec
`bestla.woqgemm` (kernels/bestla/__init__.py, conformance/test_specs.py); this module keeps what
that signature cannot say: the other widths, symmetric codes, bias, scale dtypes, compute types.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance import calls
from oracle import floats
from oracle.gemm.bestla_woq import dequant, fma_chain
from oracle.gemm.wxa16 import wxa16_exact
from oracle.strategies import float_arrays, gemm_shapes
from oracle.verdict import compare_bounded

pytestmark = pytest.mark.kernel("bestla.woqgemm")
KERNEL = "bestla.woqgemm"
MOD = "kernels.bestla.ark"
OUT_NP = {"fp32": np.float32, "fp16": np.float16}


def case(qsession, judge, x, codes, scales, zeros, bias, *, bits, group, act="fp32", compute="fp32",
         scale_type="fp32"):
    w, conv = dequant(codes, scales, zeros, bits, group, scale_type)
    shape = (x.shape[0], x.shape[1], codes.shape[0])
    calls.require_available(qsession, judge, KERNEL, MOD, conv, shape=shape)
    y = calls.run(qsession, judge, KERNEL, MOD, "woqgemm", x, codes, scales, zeros, bias, convention=conv,
                  shape=shape, bits=bits, group_size=group, act=act, compute=compute, scale_type=scale_type)
    xa = x if act == "fp32" else floats.round_to(x, act)
    exact, bound = wxa16_exact(xa, w, bias, acc="fp32", out=act, order="any")
    pred = fma_chain(xa.astype(np.float32), w, bias)
    pred = pred if act == "fp32" else pred.astype(y.dtype)
    res = compare_bounded(exact, bound, y, out_dtype=act, convention=conv, predicted=pred, block_size=group,
                          what=f"woqgemm int{bits} {'asym' if zeros is not None else 'sym'} g{group} "
                               f"act={act} compute={compute} scale={scale_type}")
    judge(res, kernel=KERNEL, shape=shape, compute=compute, act=act)


def weights(rng, n, k, bits, group, asym, pattern="random"):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if pattern == "extremes":
        codes = np.where(rng.random((n, k)) < 0.5, lo, hi).astype(np.int8)
    else:
        codes = rng.integers(lo, hi + 1, (n, k)).astype(np.int8)
    scales = (rng.random((n, k // group)) * 0.1 + 1e-3).astype(np.float32) * rng.choice([-1, 1], (n, k // group))
    zeros = None
    if asym:
        zeros = (np.full((n, k // group), hi, np.int8) if pattern == "extremes"
                 else rng.integers(lo, hi + 1, (n, k // group)).astype(np.int8))
    return codes, scales.astype(np.float32), zeros


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 7, 8])
@pytest.mark.parametrize("asym", [False, True], ids=["sym", "asym"])
@pytest.mark.parametrize("group", [32, 128])
def test_bits_sym_asym(qsession, judge, bits, asym, group):
    rng = np.random.default_rng(bits * 100 + group + asym)
    k, n = 256, 24
    codes, scales, zeros = weights(rng, n, k, bits, group, asym)
    x = rng.standard_normal((3, k)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    case(qsession, judge, x, codes, scales, zeros, bias, bits=bits, group=group)


@pytest.mark.parametrize("bits", [8])
def test_extreme_codes_and_zero_points(qsession, judge, bits):
    """Codes at both ends and the largest zero point: (q - zp) reaches -(2^b - 1). (int4: the engine's
    zero_points family of bestla.woqgemm, conformance/test_specs.py.)"""
    rng = np.random.default_rng(7 + bits)
    codes, scales, zeros = weights(rng, 16, 128, bits, 32, True, pattern="extremes")
    x = rng.standard_normal((2, 128)).astype(np.float32) * 100
    case(qsession, judge, x, codes, scales, zeros, None, bits=bits, group=32)


def test_per_channel_group_is_k(qsession, judge):
    rng = np.random.default_rng(11)
    codes, scales, zeros = weights(rng, 8, 512, 4, 512, False)
    case(qsession, judge, rng.standard_normal((1, 512)).astype(np.float32), codes, scales, zeros, None,
         bits=4, group=512)


def test_real_layer_gemv(qsession, judge):
    """Llama-2-7B attention projection width, GEMV (M=1), group 128, sliced to 64 outputs."""
    rng = np.random.default_rng(12)
    codes, scales, zeros = weights(rng, 64, 4096, 4, 128, False)
    case(qsession, judge, rng.standard_normal((1, 4096)).astype(np.float32), codes, scales, zeros, None,
         bits=4, group=128)


@pytest.mark.parametrize("bias", ["nonzero", "zero", "none"])
def test_gemv_bias(qsession, judge, bias):
    """M = 1 with a non-zero bias, a zero bias and none: BesTLA's GEMV launcher is its own epilogue
    path, and a bias it skips there is invisible to every M > 1 case."""
    rng = np.random.default_rng(16)
    codes, scales, zeros = weights(rng, 24, 128, 4, 32, False)
    b = {"nonzero": (rng.standard_normal(24) * 4).astype(np.float32), "zero": np.zeros(24, np.float32),
         "none": None}[bias]
    case(qsession, judge, rng.standard_normal((1, 128)).astype(np.float32), codes, scales, zeros, b,
         bits=4, group=32)


@pytest.mark.parametrize("scale_type", ["bf16", "fp16"])
def test_scale_dtypes(qsession, judge, scale_type):
    """Scales stored in bf16/fp16: the oracle rounds them (RNE) before dequantizing."""
    rng = np.random.default_rng(13)
    codes, scales, zeros = weights(rng, 16, 256, 4, 32, False)
    case(qsession, judge, rng.standard_normal((4, 256)).astype(np.float32), codes, scales, zeros, None,
         bits=4, group=32, scale_type=scale_type)


@pytest.mark.parametrize("act", ["bf16", "fp16"])
def test_half_activations(qsession, judge, act):
    rng = np.random.default_rng(14)
    codes, scales, zeros = weights(rng, 16, 128, 4, 32, False)
    case(qsession, judge, rng.standard_normal((2, 128)).astype(np.float32), codes, scales, zeros, None,
         bits=4, group=32, act=act)


def test_int8_compute(qsession, judge):
    """compute_type int8: on a host without VNNI/AMX BesTLA runs it as fp32 (same bytes here)."""
    if calls.observe(qsession, MOD).get("bestla_isa") != "AVX2":
        pytest.skip("int8 compute quantizes activations on VNNI/AMX hosts; BesTLA's int8 kernel has no oracle model yet")
    rng = np.random.default_rng(15)
    codes, scales, zeros = weights(rng, 16, 256, 4, 64, True)
    case(qsession, judge, rng.standard_normal((5, 256)).astype(np.float32), codes, scales, zeros, None,
         bits=4, group=64, compute="int8")


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data(), bits=st.sampled_from([2, 4, 8]), asym=st.booleans(), group=st.sampled_from([32, 64, 128]))
def test_hypothesis(qsession, judge, data, bits, asym, group):
    max_examples = 12 if qsession.profile == "quick" else 60
    if data.draw(st.integers(0, 59)) >= max_examples:  # the quick profile keeps a fifth of the draws
        return
    m, k, n = data.draw(gemm_shapes(group, max_k=1024, max_m=17, off_multiple=False))
    kinds = ("normal", "zero_group", "constant_group", "half_steps", "max_ties", "subnormal", "mixed")
    x = data.draw(float_arrays((m, k), group_size=group, kinds=kinds))
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    codes, scales, zeros = weights(rng, n, k, bits, group, asym)
    case(qsession, judge, x, codes, scales, zeros, None, bits=bits, group=group)
