"""ggml_mul_mat through libggml's CPU backend, with the weight in every buffer type, judged by the oracle.

What llama.cpp runs for a quantized linear layer (kernels/ggml/mul_mat.py): W[N, K] of a
quantized type times X[M, K] f32, 1 and 2 threads, the weight in the default CPU buffer type
and in each extra buffer type the CPU device offers (CPU_REPACK's interleaved layouts, AMX on
AMX builds). Shapes: N off the repack interleave (no repack: the buffer type refuses the
weight, as llama.cpp's placement check does) and on it with several tiles (rows split across
threads), N smaller than M (the default path splits by X rows), K a few blocks (not a multiple
of 256 for the 32-element types); M = 1..9 covers ggml's kernel choice at every batch size:
vec_dot (M = 1), llamafile tinyBLAS (q4_0/q5_0/q8_0/iq4_nl, M >= 2), the tiled K-quant kernel
(M >= 8), repack GEMV for M % 4 rows and GEMM for groups of 4.

The oracle quantizes X as the CPU backend does (oracle.gemm.ggml_mul_mat.activations) and
gives every output's exact value with a bound for any fp32 order; q8_0 in the default buffer
on an AVX2 build is predicted bit for bit. One case is recorded per (buffer type, shape): all M
together, or the first M that fails.

q4_0 in the default buffer is judged by the spec engine instead (kernels/ggml/mul_mat.py SPEC,
conformance/test_specs.py): its case families reach vec_dot (M = 1) and tinyBLAS with every
remainder of its 4-row tiles (M = 2, 3, 5, 9), bit for bit, with caller layouts and 1 vs N threads.
"""
from __future__ import annotations

import numpy as np
import pytest

import oracle
from conformance import calls
from conformance.test_ggml import _simd_ready
from oracle.gemm.ggml_mul_mat import TYPES, activations, mul_mat_exact, mul_mat_predicted
from oracle.strategies import structured
from oracle.verdict import Result, compare_bounded

M_ = "kernels.ggml.mul_mat"
KERNEL = "ggml.mul_mat"
BUFFERS = ("CPU", "extra")
# (weight type, buffer) pairs judged here: q4_0 in the default buffer is the spec engine's
PAIRS = tuple((t, b) for t in TYPES for b in BUFFERS if (t, b) != ("q4_0", "CPU"))
THREADS = (1, 2)
MS = tuple(range(1, 10))
# (N, blocks per row): N off the 8-row interleave, on it with 5 tiles, and N = 8 < M = 9
SHAPES = {"quick": ((20, 3), (40, 5), (8, 2)), "full": ((20, 3), (40, 5), (8, 2), (136, 11), (256, 16), (72, 1))}
MS_FULL = MS + (16, 33)
PREDICTED = ("q8_0",)  # the default-buffer AVX2 order is modelled (oracle.gemm.ggml_mul_mat)


def _weights(convention: str, n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Rows of normal values with some zero and constant 32-groups, at three magnitudes."""
    kinds = ("normal", "zero_group", "constant_group")
    rows = [structured(kinds[i % 3], (1, k), 32, rng, (1e-2, 1.0, 30.0)[i // 3 % 3]) for i in range(n)]
    return oracle.quantize(np.concatenate(rows).astype(np.float32), convention)


def _activations(m: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Normal rows, one of them with zero 32-groups; the last row of M >= 3 all zero."""
    x = structured("normal", (m, k), 32, rng, 1.0)
    if m >= 2:
        x[1] = structured("zero_group", (1, k), 32, rng, 0.5)[0]
    if m >= 3:
        x[-1] = 0.0
    return x.astype(np.float32)


def _ready(qsession, judge, convention: str) -> dict:
    """Skip unless libggml's CPU backend runs here under this --isa (a one-ISA build cannot be
    capped: conformance/test_ggml.py's rule); what it observes, with its buffer types."""
    label = _simd_ready(qsession, judge, KERNEL, convention)
    calls.require_available(qsession, judge, KERNEL, M_, convention)
    seen = calls.observe(qsession, M_)
    seen["label"] = label
    return seen


def _judge_shape(judge, convention, observed, bt, threads, n, k, xs, ys, wq, repacked) -> None:
    """One recorded case for this (buffer type, shape): the first M that fails, else all M."""
    predict = bt == "CPU" and convention in PREDICTED and observed.get("isa") == "avx2"
    where = f"{observed.get('label')} build, weight in {bt}{' (repacked)' if repacked else ''}, {threads} thread(s)"
    parts = []
    for x, y in zip(xs, ys):
        a = activations(x, convention)
        exact, bound = mul_mat_exact(convention, wq, a)
        pred = mul_mat_predicted(convention, wq, a) if predict else None
        what = (f"ggml_mul_mat {convention} N={n} K={k} M={x.shape[0]}, {where} "
                f"({'bit-exact AVX2 model' if predict else 'exact value + bound'})")
        r = compare_bounded(exact, bound, y, out_dtype="fp32", convention=convention, predicted=pred, what=what)
        if not r.ok:
            judge(r, kernel=KERNEL, shape=(x.shape[0], n, k), observed_isa=where, buffer_type=bt,
                  threads=threads, repacked=repacked)
        parts.append((exact, bound, y, pred))
    cat = [np.concatenate([p[i] for p in parts]) for i in range(3)]
    pred = np.concatenate([p[3] for p in parts]) if predict else None
    ms = [x.shape[0] for x in xs]
    r = compare_bounded(*cat, out_dtype="fp32", convention=convention, predicted=pred,
                        what=f"ggml_mul_mat {convention} N={n} K={k} M={ms[0]}..{ms[-1]} stacked, {where}")
    judge(r, kernel=KERNEL, shape=(sum(ms), n, k), observed_isa=where, buffer_type=bt, threads=threads,
          repacked=repacked)


@pytest.mark.kernel(KERNEL)
@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("convention, buffer", PAIRS)
def test_mul_mat(qsession, judge, convention, buffer, threads):
    observed = _ready(qsession, judge, convention)
    bufts = observed.get("buffer_types", ["CPU"])
    targets = ["CPU"] if buffer == "CPU" else [b for b in bufts if b != "CPU"]
    if not targets:
        judge(Result("UNAVAILABLE", convention, KERNEL, detail="the CPU device offers no extra buffer type "
                                                               "in this build"), kernel=KERNEL)
    fmt = oracle.get_format(convention)
    full = qsession.profile == "full"
    ms = MS_FULL if full else MS
    refused = []
    ran = 0
    for bt in targets:
        for si, (n, blocks) in enumerate(SHAPES["full" if full else "quick"]):
            k = blocks * fmt.block_size
            rng = np.random.default_rng(1000 * si + n)
            wq = _weights(convention, n, k, rng)
            xs = [_activations(m, k, rng) for m in ms]
            out = calls.run(qsession, judge, KERNEL, M_, "mul_mat", convention, wq, xs, bt, threads,
                            convention=convention, what=f"ggml_mul_mat {convention} in {bt}", shape=(n, k))
            if not out["supported"]:
                if bt == "CPU":
                    judge(Result("FAIL", convention, KERNEL, detail=f"the CPU device refuses MUL_MAT {convention} "
                                                                    f"N={n} K={k} in its default buffer type"),
                          kernel=KERNEL, shape=(n, k))
                refused.append(f"{bt} N={n}")
                continue
            ran += 1
            _judge_shape(judge, convention, observed, bt, threads, n, k, xs, out["ys"], wq, out["repacked"])
    if not ran:
        judge(Result("UNAVAILABLE", convention, KERNEL,
                     detail=f"no extra buffer type takes a {convention} weight on this CPU "
                            f"(refused: {', '.join(refused)})"), kernel=KERNEL)
