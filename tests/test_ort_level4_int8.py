"""ONNX Runtime MatMulNBits accuracy_level 4 on the x86 AVX2 MLAS path, against the real kernel.

The kernel runs in a worker process (tests/kernel_calls.py), never in the pytest process.

- Activation codes (act.ort.matmulnbits.int8_blk): MLAS's `QuantizeARow_CompInt8_avx2`
  (onnxruntime/core/mlas/lib/sqnbitgemm_kernel_avx2.cpp) multiplies by 127.f / amax, not by
  1 / (amax / 127.f), and rounds with `_mm256_round_ps` to nearest even. A row with amax = 1.00025
  (where the two multipliers differ by an ulp) holds values whose product lands on either side of
  j + 0.5 depending on the multiplier; a row with amax = 127 (multiplier exactly 1) holds exact
  halves. An identity weight matrix reads every code back from the output.
- The level-4 bound (oracle.gemm.mlas_matmulnbits.level4_model): for M > 1 the BlkSum kernels dot the
  raw weight codes with the int8 activations and add ABlockSum * QuantBBlkSum (a_scale * sum qa times
  -b_scale * zp) afterwards. Weights sitting at their zero point make both products large while the
  exact result is small or 0, so their rounding errors exceed a bound built from sum |qa (q - zp)|.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import oracle.conventions as conventions
from oracle.bounds import gamma
from oracle.gemm.mlas_matmulnbits import level4_model, zero_point_columns
from tests.kernel_calls import needs, run

needs("onnxruntime", "onnxruntime not installed")
needs("onnx", "onnx not installed (the adapter builds a one-node model)")

F = np.float32
MODULE = "kernels.onnxruntime.matmulnbits"
ACT = "act.ort.matmulnbits.int8_blk"


@pytest.fixture(scope="module", autouse=True)
def _avx2_only():
    from kernels.isa import levels_on_host

    top = (levels_on_host() or ["scalar"])[-1]
    if top != "avx2":
        pytest.skip(f"MLAS dispatches on cpuid to {top} here; these rules are read from its AVX2 path")


def _kernel(a, conv, qw, block: int):
    p = conv.pack(qw)
    return run(MODULE, "matmulnbits", a, p["weight"], p["scales"], p.get("zeros"), k=a.shape[1], n=qw.codes.shape[0],
               bits=conv.bits, block=block, accuracy_level=4)


def _act(block: int, **change):
    return dataclasses.replace(conventions.get(ACT), group_size=block, **change)


def _near_half_rows(k: int = 32) -> np.ndarray:
    """Row 0: amax 1.00025 and values x with RNE(x * fp32(1/s)) != RNE(x * fp32(127/amax)), signs
    alternating; row 1: amax 127 and exact halves +-(j + 0.5)."""
    amax = F(1.00025)
    inv_old = F(F(1) / F(amax / F(127)))
    inv_new = F(F(127) / amax)
    assert inv_old != inv_new
    xs = []
    for j in range(1, 127):
        x = F((j + 0.5) / np.float64(inv_old))
        for c in (x, np.nextafter(x, F(0)), np.nextafter(x, F(2))):
            if np.rint(F(c * inv_old)) != np.rint(F(c * inv_new)):
                xs.append(c)
                break
        if len(xs) == k - 1:
            break
    sign = np.where(np.arange(k - 1) % 2, 1, -1).astype(F)
    row0 = np.concatenate([[amax], np.array(xs, F) * sign])
    row1 = np.concatenate([[F(127)], (np.arange(k - 1) % 16 + F(0.5)) * sign])
    return np.stack([row0, row1]).astype(F)


def test_activation_codes_on_near_halves_and_ties() -> None:
    k = 32
    a = _near_half_rows(k)
    conv = dataclasses.replace(conventions.get("ort.matmulnbits.int4.sym"), group_size=k)
    qw = conv.quantize(np.eye(k, dtype=F))  # column n reads activation code n
    y = _kernel(a, conv, qw, k)
    sa = (np.abs(a).max(axis=1) / F(127)).astype(F).astype(np.float64)
    unit = sa[:, None] * qw.scales[:, 0].astype(np.float64) * (np.diag(qw.codes) - (1 << (conv.bits - 1)))
    read = y.astype(np.float64) / unit
    codes = np.rint(read).astype(np.int64)
    assert np.abs(read - codes).max() < 1e-3, "the output does not resolve single activation codes"

    ours = _act(k).quantize(a).codes
    assert np.array_equal(codes, ours), np.argwhere(codes != ours).tolist()
    # the crafted rows separate the alternatives this pins against
    old_inverse = _act(k, inverse="reciprocal").quantize(a).codes
    half_away = _act(k, rounding="half_away").quantize(a).codes
    assert (codes[0] != old_inverse[0]).sum() == k - 1  # x * (1/s): every near-half value moves
    assert (codes[1] != half_away[1]).sum() >= k // 2  # roundf at the exact halves


def _zero_point_weights(n: int, k: int, block: int) -> np.ndarray:
    """Every block spans [-1, 2] (two elements) and is 0 elsewhere, which quantizes to the zero point."""
    w = np.zeros((n, k), F)
    w[:, ::block], w[:, 1::block] = -1, 2
    return w


@pytest.mark.parametrize("bits, block", [(2, 128), (4, 32), (8, 64)])
def test_blksum_cancellation_within_bound(bits: int, block: int) -> None:
    m, n, k = 16, 8, 2 * block
    rng = np.random.default_rng(3)
    a = rng.standard_normal((m, k)).astype(F)
    a[:, ::block] *= F(1 / 64)  # the few elements off the zero point meet small activation codes
    a[:, 1::block] *= F(1 / 64)
    conv = dataclasses.replace(conventions.get(f"ort.matmulnbits.int{bits}.asym"), group_size=block)
    qw = conv.quantize(_zero_point_weights(n, k, block))
    zp = zero_point_columns(qw, conv, qw.zeros)
    assert (qw.codes == zp).mean() >= 0.9
    y = _kernel(a, conv, qw, block)
    _, exact, bound = level4_model(a, qw, conv)
    err = np.abs(y.astype(np.float64) - exact)
    assert np.all(err <= np.asarray(bound)), f"worst error/bound {np.max(err / np.asarray(bound)):.3g}"

    # the bound from sum |qa (q - zp)| alone (zero point inside the integer sum) does not hold here
    qa = _act(block).quantize(a)
    nb = k // block
    ac = np.abs(qa.codes.astype(np.int64)).reshape(m, nb, block)
    wc = np.abs(qw.codes.astype(np.int64) - zp).reshape(n, nb, block)
    scale = np.abs(qa.scales.astype(np.float64).T[:, :, None] * qw.scales.astype(np.float64).T[:, None, :])
    old = gamma(k + 3) * (np.einsum("mbk,nbk->bmn", ac, wc) * scale).sum(axis=0)
    assert (err > old).sum() >= 8, "the case no longer separates the two bounds"
