"""gemlite's Triton A16W4 GEMV (kernels/triton/gemlite.py) judged by the oracle: GPU only.

Weights: uint8 codes 0..15 and fp16 group scales (random, every code and both signs of scale),
zero point 8: gemlite's W_group_mode 3 rounds each weight (q - 8) * s to fp16 before use, so the
reference is oracle.gemm.wxa16 with that stage rounding (`stage_dtypes=("fp16",)`), fp32 products
and sums in any order (its split-K partials meet in fp32 atomics), fp32 output. Without a GPU the
kernel is UNAVAILABLE with its reason (gemlite queries CUDA at import).
"""
from __future__ import annotations

import numpy as np
import pytest

from conformance import triton_harness as harness
from oracle.gemm.wxa16 import wxa16_exact
from oracle.verdict import compare_bounded

MOD = "kernels.triton.gemlite"
KERNEL = "triton.gemlite.a16w4"
CONV = "gemlite.a16w4: fp16((q - 8) * s), fp32 atomic split-K"


def _shapes(qsession):
    quick = [(1, 1024, 96), (3, 4096, 512)]
    return quick if qsession.profile == "quick" else quick + [(1, 4096, 4096), (4, 11008, 1024)]


@pytest.mark.kernel(KERNEL)
@pytest.mark.parametrize("group_size", [128, 64])
def test_a16w4_gemv(qsession, judge, group_size):
    for m, k, n in _shapes(qsession):
        rng = np.random.default_rng(m * k + n + group_size)
        codes = rng.integers(0, 16, (n, k), dtype=np.uint8)
        codes[0, :16] = np.arange(16)  # every code
        scales = (rng.standard_normal((n, k // group_size)) * 0.05).astype(np.float16)
        x = rng.standard_normal((m, k)).astype(np.float16)
        shape = (m, k, n)
        isa = harness.ready(qsession, judge, MOD, KERNEL, CONV, shape)
        y = harness.call(qsession, judge, MOD, "a16w4", x, codes, scales, group_size=group_size, kernel=KERNEL,
                         judged_as=CONV, shape=shape)
        w = (codes.astype(np.float32) - 8) * np.repeat(scales.astype(np.float32), group_size, axis=1)
        exact, bound = wxa16_exact(x, w, acc="fp32", out="fp32", stage_dtypes=("fp16",))
        judge(compare_bounded(exact, bound, y, out_dtype="fp32", convention=CONV, block_size=group_size,
                              what="fp32 output (exact value + fp32 bound, weights staged in fp16)"),
              kernel=KERNEL, shape=shape, observed_isa=isa, group_size=group_size)
