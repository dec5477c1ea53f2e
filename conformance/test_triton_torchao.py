"""torchao's shipped Triton int_scaled_matmul_kernel (torchao/kernel/intmm_triton.py) judged by the oracle.

int_matmul_kernel and int_scaled_matmul_kernel are judged by conformance/test_specs.py (their KernelSpecs in
kernels/triton/__init__.py; the engine's random m3k48n8 case shows int_scaled_matmul_kernel's EVEN_K defect:
its loads skip the K mask whenever K is even, so an even K that is not a multiple of BLOCK_K reads past
the rows). What stays here: int_scaled_matmul_kernel at the full profile's GPU-sized shapes (several
128 x 256 tiles in M and N on the GPU, K a multiple of BLOCK_K with many rows), which no family draws.
float(acc) * scales1 in fp32, the '(acc*sa)*sb' epilogue with sb = 1, bit-exact prediction inside
w8a8_exact's bound.
"""
from __future__ import annotations

import numpy as np
import pytest

from conformance import triton_harness as harness
from oracle.gemm.w8a8 import epilogue, int8_matmul, w8a8_exact, wrap_int32
from oracle.verdict import compare_bounded

MOD = "kernels.triton.torchao_intmm"


def _shapes(qsession):
    quick = [(5, 128, 40), (33, 256, 17), (3, 45, 8)]
    return quick if qsession.profile == "quick" else quick + [(256, 4096, 1024), (16, 11008, 512)]


def _codes(rng, m, k, n):
    a = rng.integers(-128, 128, (m, k), dtype=np.int8)
    w = rng.integers(-128, 128, (n, k), dtype=np.int8)
    a[0], w[0] = -128, -128  # the largest products
    return a, w


def _scaled(qsession, judge, m, k, n):
    kernel, conv = "triton.torchao.int_scaled_matmul", "w8a8 (acc*sa)*sb"
    rng = np.random.default_rng(m * k + n)
    a, w = _codes(rng, m, k, n)
    sa = (rng.random(m) * 0.01 + 1e-4).astype(np.float32)
    isa = harness.ready(qsession, judge, MOD, kernel, conv, (m, k, n))
    y = harness.call(qsession, judge, MOD, "int_scaled_matmul", a, w, sa, kernel=kernel, judged_as=conv,
                     shape=(m, k, n))
    ones = np.ones(n, np.float32)
    exact, bound = w8a8_exact(a, sa, w, ones, out="fp32")
    pred = epilogue(wrap_int32(int8_matmul(a, w)), sa, ones, "(acc*sa)*sb")
    judge(compare_bounded(exact, bound, y, out_dtype="fp32", convention=conv, predicted=pred,
                          what="fp32 output (bit-exact float(acc)*scale model)"),
          kernel=kernel, shape=(m, k, n), observed_isa=isa)


@pytest.mark.kernel("triton.torchao.int_scaled_matmul")
def test_int_scaled_matmul(qsession, judge):
    for m, k, n in _shapes(qsession):  # K a multiple of BLOCK_K (32 interpreted, 128 on the GPU) or odd
        _scaled(qsession, judge, m, k, n)

