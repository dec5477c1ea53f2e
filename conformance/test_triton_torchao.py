"""torchao's shipped Triton int8 kernels (torchao/kernel/intmm_triton.py) judged by the oracle.

int_matmul_kernel: the int32 accumulator byte for byte (oracle.gemm.w8a8, wrapping).
int_scaled_matmul_kernel: float(acc) * scales1 in fp32, the '(acc*sa)*sb' epilogue with sb = 1,
bit-exact prediction inside w8a8_exact's bound. Its loads skip the K mask whenever K is even
(EVEN_K = K % 2 == 0), so an even K that is not a multiple of BLOCK_K reads past the rows.
"""
from __future__ import annotations

import numpy as np
import pytest

from conformance import triton_harness as harness
from oracle.gemm.w8a8 import epilogue, int8_matmul, w8a8_exact, wrap_int32
from oracle.verdict import compare_bounded, compare_exact

MOD = "kernels.triton.torchao_intmm"


def _shapes(qsession):
    quick = [(5, 128, 40), (33, 256, 17), (3, 45, 8)]
    return quick if qsession.profile == "quick" else quick + [(256, 4096, 1024), (16, 11008, 512)]


def _codes(rng, m, k, n):
    a = rng.integers(-128, 128, (m, k), dtype=np.int8)
    w = rng.integers(-128, 128, (n, k), dtype=np.int8)
    a[0], w[0] = -128, -128  # the largest products
    return a, w


@pytest.mark.kernel("triton.torchao.int_matmul")
def test_int_matmul(qsession, judge):
    kernel, conv = "triton.torchao.int_matmul", "w8a8 int32 accumulator (wraps mod 2^32)"
    rng = np.random.default_rng(21)
    for m, k, n in _shapes(qsession):
        a, w = _codes(rng, m, k, n)
        isa = harness.ready(qsession, judge, MOD, kernel, conv, (m, k, n))
        c = harness.call(qsession, judge, MOD, "int_matmul", a, w, kernel=kernel, judged_as=conv, shape=(m, k, n))
        judge(compare_exact(wrap_int32(int8_matmul(a, w)), c, convention=conv, what="int32 accumulator"),
              kernel=kernel, shape=(m, k, n), observed_isa=isa)


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


@pytest.mark.kernel("triton.torchao.int_scaled_matmul")
def test_int_scaled_matmul_even_k_tail(qsession, judge):
    _scaled(qsession, judge, 3, 48, 8)  # BLOCK_K = 32 in the interpreter; on the GPU (BLOCK_K 128) K = 48 is a tail too
