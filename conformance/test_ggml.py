"""libggml's quantizers, dequantizers, SIMD activation quantizers and dot products, judged by the oracle.

Inputs: every structural kind of oracle.strategies (zero and constant groups, half-steps,
+max/-max ties, subnormals, huge values, mixed magnitudes) at several scales, plus random bytes
for the dequantizers, and hypothesis-drawn arrays. Bytes are compared byte for byte; a dot
product is compared with the oracle's bit-exact model of the build's code path where one exists
(the AVX2 q4_0/q8_0 paths) and otherwise held to the exact value and its derived bound.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import oracle
from conformance import calls
from kernels.isa import GGML_VARIANT, knobs_for
from oracle.gemm.ggml_vec_dot import vec_dot as model_vec_dot
from oracle.gemm.ggml_vec_dot import vec_dot_exact
from oracle.strategies import KINDS, float_arrays, structured
from oracle.verdict import Result, compare_bounded, compare_exact

M = "kernels.ggml.calls"
QUANTIZE = ("q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q8_1", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "q8_k",
            "iq4_nl", "iq4_xs", "tq1_0", "tq2_0", "mxfp4")
DEQUANTIZE = tuple(n for n in QUANTIZE if n != "q8_1")  # q8_1 has no dequantizer in ggml
FROM_FLOAT = ("q8_0.x86", "q8_1.x86")
VEC_DOT = (("q4_0", "q8_0"), ("q8_0", "q8_0"), ("q2_k", "q8_k"), ("q3_k", "q8_k"), ("q4_k", "q8_k"),
           ("q5_k", "q8_k"), ("q6_k", "q8_k"))
SCALES = (1e-3, 1.0, 1e3)


def _ready(qsession, judge, kernel: str, convention: str) -> dict:
    """Skip (recorded UNAVAILABLE) unless libggml loads; return what the CPU backend observes."""
    calls.require_available(qsession, judge, kernel, M, convention)
    return calls.observe(qsession, M)


def _simd_ready(qsession, judge, kernel: str, convention: str) -> str:
    """The CPU backend's ISA is the variant library loaded: under a cap it must be the cap's
    variant (a mismatch fails). A one-ISA build runs only at the level its cpuid dispatch reaches
    (kernels.isa.mode; elsewhere `_ready` has judged it UNAVAILABLE)."""
    seen = _ready(qsession, judge, kernel, convention)
    if qsession.isa == "native" or seen["variant"] is None:
        return seen["isa"]
    want = knobs_for(qsession.isa)[GGML_VARIANT]
    if seen["variant"] != want:
        judge(Result("FAIL", convention, kernel, detail=f"--isa {qsession.isa} asked for the {want} variant, "
                                                       f"libggml loaded {seen['variant']}"), kernel=kernel)
    return f"{seen['isa']} ({seen['variant']})"


def _simd_path(convention: str, observed: str) -> str:
    """The `.x86` activation quantizers are the AVX/AVX2 code path; a CPU library built without
    AVX (ggml's x64 variant, --isa scalar) falls back to the reference quantizer
    (ggml-cpu/arch/x86/quants.c: quantize_row_q8_0 / q8_1 without __AVX__ call the _ref ones)."""
    return convention.split(".")[0] if observed.startswith("scalar") else convention


def _inputs(block: int, rows_per_kind: int, kinds: tuple[str, ...] = KINDS) -> np.ndarray:
    """Rows of every structural kind at every scale, K = 2 blocks (fixed seeds)."""
    k = 2 * block
    parts = [structured(kind, (rows_per_kind, k), min(block, 32), np.random.default_rng(i * 7 + j), s)
             for i, kind in enumerate(kinds) for j, s in enumerate(SCALES)]
    return np.concatenate(parts).astype(np.float32)


@pytest.mark.kernel("ggml.quantize")
@pytest.mark.parametrize("convention", QUANTIZE)
def test_quantize(qsession, judge, convention):
    kernel = "ggml.quantize"
    observed = _ready(qsession, judge, kernel, convention)
    refusal = qsession.worker.call(M, "refusal", convention).value
    if refusal:
        judge(Result("UNAVAILABLE", convention, kernel, detail=refusal), kernel=kernel)
    fmt = oracle.get_format(convention)
    x = _inputs(fmt.block_size, 2 if qsession.profile == "quick" else 16)
    got = calls.run(qsession, judge, kernel, M, "quantize", x, convention, convention=convention, what=kernel)
    judge(compare_exact(oracle.quantize(x, convention), got, convention=convention, block_size=fmt.block_bytes,
                        what="packed blocks"), kernel=kernel, shape=x.shape, observed_isa=f"{observed['isa']} build; ggml-base is plain C")


@pytest.mark.kernel("ggml.dequantize")
@pytest.mark.parametrize("convention", DEQUANTIZE)
def test_dequantize_random_bytes(qsession, judge, convention):
    kernel = "ggml.dequantize"
    observed = _ready(qsession, judge, kernel, convention)
    fmt = oracle.get_format(convention)
    rows = 8 if qsession.profile == "quick" else 256
    q = np.random.default_rng(11).integers(0, 256, (rows, 4 * fmt.block_bytes), dtype=np.uint8)
    k = 4 * fmt.block_size
    got = calls.run(qsession, judge, kernel, M, "dequantize", q, convention, k, convention=convention, what=kernel)
    judge(compare_exact(oracle.dequantize(q, convention), got, convention=convention, block_size=fmt.block_size,
                        what="dequantized values"), kernel=kernel, shape=(rows, k),
          observed_isa=f"{observed['isa']} build; ggml-base is plain C")


# Scales that put every dequantized value in fp32's subnormal range (or make them subnormal themselves):
# q8_k's fp32 d, subnormal and tiny-normal; mxfp4's E8M0 exponent 0 (d = 2^-128, itself subnormal) with
# codes of magnitude 0.5..1.5 (doubled 1..3), whose products stay below 2^-126.
_Q8_K_TINY_D = np.array([2.0 ** -149, 3e-42, 1e-40, 2.0 ** -127, 1e-39, 2.0 ** -135, 5e-41, 2.0 ** -130], np.float32)


def _subnormal_blocks(convention: str, rows: int) -> np.ndarray:
    """Random bytes whose scale field is rewritten so the block's values are fp32 subnormals."""
    fmt = oracle.get_format(convention)
    q = np.random.default_rng(17).integers(0, 256, (rows, 4 * fmt.block_bytes), dtype=np.uint8)
    b = q.reshape(rows, 4, fmt.block_bytes)
    if convention == "q8_k":
        d = _Q8_K_TINY_D[np.arange(rows * 4) % len(_Q8_K_TINY_D)].reshape(rows, 4)
        b[:, :, :4] = d.view(np.uint8).reshape(rows, 4, 4)
    else:
        codes = np.array([1, 2, 3, 9, 10, 11], np.uint8)[np.random.default_rng(18).integers(0, 6, (rows, 4, 32))]
        b[:, :, 0] = 0
        b[:, :, 1:] = codes[..., :16] | (codes[..., 16:] << 4)
    return q


@pytest.mark.kernel("ggml.dequantize")
@pytest.mark.parametrize("convention", ["q8_k", "mxfp4"])
def test_dequantize_subnormal(qsession, judge, convention):
    """Blocks whose correct values are fp32 subnormals: a dequantizer running with FTZ/DAZ set (or
    flushing on its own) returns zeros there, which only a byte comparison of such values can see."""
    kernel = "ggml.dequantize"
    observed = _ready(qsession, judge, kernel, convention)
    fmt = oracle.get_format(convention)
    q = _subnormal_blocks(convention, 4)
    want = oracle.dequantize(q, convention)
    tiny = (want != 0) & (np.abs(want) < np.finfo(np.float32).tiny)
    assert tiny.mean() > 0.5, "the case must be mostly non-zero subnormal values"
    got = calls.run(qsession, judge, kernel, M, "dequantize", q, convention, 4 * fmt.block_size,
                    convention=convention, what=kernel)
    judge(compare_exact(want, got, convention=convention, block_size=fmt.block_size,
                        what="dequantized subnormal values"), kernel=kernel, shape=want.shape,
          observed_isa=f"{observed['isa']} build; ggml-base is plain C")


@pytest.mark.kernel("ggml.from_float")
@pytest.mark.parametrize("convention", FROM_FLOAT)
def test_from_float_simd(qsession, judge, convention):
    kernel = "ggml.from_float"
    observed = _simd_ready(qsession, judge, kernel, convention)
    convention = _simd_path(convention, observed)
    x = _inputs(32, 2 if qsession.profile == "quick" else 16)
    got = calls.run(qsession, judge, kernel, M, "from_float", x, convention.split(".")[0], convention=convention,
                    what=kernel)
    judge(compare_exact(oracle.quantize(x, convention), got, convention=convention,
                        block_size=oracle.get_format(convention).block_bytes, what="activation blocks"),
          kernel=kernel, shape=x.shape, observed_isa=observed)


@pytest.mark.kernel("ggml.from_float")
@settings(max_examples=10, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(x=float_arrays((4, 64)), convention=st.sampled_from(FROM_FLOAT))
def test_from_float_simd_property(qsession, judge, x, convention):
    kernel = "ggml.from_float"
    observed = _simd_ready(qsession, judge, kernel, convention)
    convention = _simd_path(convention, observed)
    got = calls.run(qsession, judge, kernel, M, "from_float", x, convention.split(".")[0], convention=convention,
                    what=kernel)
    judge(compare_exact(oracle.quantize(x, convention), got, convention=convention, block_size=36,
                        what="activation blocks"), kernel=kernel, shape=x.shape, observed_isa=observed)


@pytest.mark.kernel("ggml.vec_dot")
@pytest.mark.parametrize("x_type, y_type", VEC_DOT)
def test_vec_dot(qsession, judge, x_type, y_type):
    kernel, conv = "ggml.vec_dot", f"{x_type}.{y_type}"
    observed = _simd_ready(qsession, judge, kernel, conv)
    fmt = oracle.get_format(x_type)
    rows = 12 if qsession.profile == "quick" else 96
    # no 'huge' or 'mixed' kind: their dot products (1e37 x 1e37, 1e30 x 1e30) have exact values
    # beyond fp32, where inf and NaN (inf - inf in a min correction) are both what fp32 gives
    kinds = tuple(k for k in KINDS if k not in ("huge", "mixed"))
    w = _inputs(fmt.block_size, 1, kinds)[:rows]
    a = _inputs(fmt.block_size, 1, kinds)[::-1][:rows].copy()
    n = w.shape[1]
    xq = oracle.quantize(w, x_type)
    yq = oracle.quantize(a, y_type if y_type != "q8_0" else "q8_0.x86")  # what the CPU backend feeds vec_dot
    got = calls.run(qsession, judge, kernel, M, "vec_dot", x_type, n, xq, yq, convention=conv, what=kernel)
    exact, bound = vec_dot_exact(x_type, y_type, xq, yq)
    predicted = None
    if observed.startswith("avx2") and (x_type, y_type) in (("q4_0", "q8_0"), ("q8_0", "q8_0")):
        predicted = model_vec_dot(x_type, y_type, xq, yq, variant="avx2").astype(np.float32)
    judge(compare_bounded(exact, bound, got, out_dtype="fp32", convention=conv, predicted=predicted,
                          what=f"vec_dot ({'bit-exact AVX2 model' if predicted is not None else 'exact value + bound'})"),
          kernel=kernel, shape=(rows, n), observed_isa=observed)
