"""MatMulNBits corners against ONNX Runtime's own quantizer: K tails, tiny scales, zero-point ties.

ORT's tooling (`DefaultWeightOnlyQuantizer.qbits_block_quant`) passes the unpadded K to MLAS, so
the codes past K stay 0 (with stale slots in the last real byte); the pybind helper called on a
zero-padded K writes the quantized 0.0 there, which is 0 instead of the zero point when 1/scale
overflows. The asymmetric zero point is 0 - min / scale, a true division: rows built so that
min * (1/scale) rounds to the other integer pin that. onnxruntime runs in a worker process
(tests/kernel_calls.py).
"""
from __future__ import annotations

import dataclasses
import importlib.util
import sys
import types

import numpy as np
import pytest

import oracle.conventions as conventions
from oracle import rounding
from tests.kernel_calls import needs, run

HERE = "tests.test_ort_matmulnbits_corners"
needs("onnxruntime", "onnxruntime not installed")
F = np.float32


def _tooling():
    """onnxruntime.quantization.matmul_nbits_quantizer; it imports onnx_ir only for graph rewriting,
    which qbits_block_quant does not use, so a placeholder stands in where onnx_ir is absent."""
    stub = importlib.util.find_spec("onnx_ir") is None
    if stub:
        sys.modules["onnx_ir"] = types.ModuleType("onnx_ir")
    try:
        return importlib.import_module("onnxruntime.quantization.matmul_nbits_quantizer")
    finally:
        if stub:
            sys.modules.pop("onnx_ir", None)


def tooling_quantize(w_kn: np.ndarray, bits: int, block: int, sym: bool) -> tuple:
    """Worker side: ORT's DefaultWeightOnlyQuantizer.qbits_block_quant on the [K, N] weight."""
    mod = _tooling()
    cfg = mod.DefaultWeightOnlyQuantConfig(block_size=block, is_symmetric=sym, bits=bits)
    return mod.DefaultWeightOnlyQuantizer(cfg).qbits_block_quant(w_kn)


def _conv(bits: int, sym: bool, block: int, suffix: str = ""):
    return dataclasses.replace(conventions.get(f"ort.matmulnbits.int{bits}.{'sym' if sym else 'asym'}{suffix}"),
                               group_size=block)


def _corner_weights(seed: int, n: int, k: int, block: int) -> np.ndarray:
    """Rows whose last block is tiny (1/scale = inf), zero, one-signed; one row tiny throughout."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((n, k)).astype(F)
    last = (k - 1) // block * block
    w[1, last:] = F(1e-39) * rng.standard_normal(k - last).astype(F)  # subnormal: |scale| < 2^-128
    w[1, last] = F(0)  # a real 0.0 in a tiny block: 0 * inf as well
    w[2, last:] = 0
    w[3] *= F(1e-38)
    w[4, last:] = np.abs(w[4, last:])
    return w


def _helper(w: np.ndarray, bits: int, block: int, sym: bool, k_passed: int):
    """The pybind helper on the zero-padded [K, N] weight, told K = k_passed."""
    return run("tests.kernel_calls", "ort_quantize_matmul", w, bits, block, sym, k_passed)


def _assert_bytes(conv, w, packed, scales, zp) -> None:
    ours = conv.pack(conv.quantize(w))
    assert np.array_equal(ours["weight"], packed), np.argwhere(ours["weight"] != packed)[:4].tolist()
    assert np.array_equal(ours["scales"].view(np.uint32), scales.view(np.uint32))
    if not conv.symmetric:
        assert np.array_equal(ours["zeros"], zp)


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("sym", [True, False])
@pytest.mark.parametrize("k,block", [(80, 32), (81, 32), (70, 16), (97, 32), (33, 16), (131, 64), (64, 32)])
def test_tooling_quantizer_bytes(bits: int, sym: bool, k: int, block: int) -> None:
    if importlib.util.find_spec("onnx") is None:
        pytest.skip("the ORT quantizer module imports onnx")
    w = _corner_weights(k * bits, 6, k, block)
    packed, scales, zp = run(HERE, "tooling_quantize", np.ascontiguousarray(w.T), bits, block, sym)
    _assert_bytes(_conv(bits, sym, block), w, packed, scales, zp)


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("sym", [True, False])
@pytest.mark.parametrize("k,block", [(80, 32), (81, 32), (70, 16), (131, 64)])
def test_helper_on_padded_k_bytes(bits: int, sym: bool, k: int, block: int) -> None:
    w = _corner_weights(k + bits, 6, k, block)
    kb = -(-k // block)
    _assert_bytes(_conv(bits, sym, block, ".padded_k"), w, *_helper(w, bits, block, sym, kb * block))


def test_tiny_scale_pads_with_code_zero() -> None:
    """int4 sym, K = 80: the pad of a block with |scale| < 2^-128 is 0x00, elsewhere 0x88."""
    w = _corner_weights(5, 6, 80, 32)
    packed, scales, _ = _helper(w, 4, 32, True, 96)
    with np.errstate(over="ignore", divide="ignore"):
        assert abs(scales[1, 2]) < 2.0 ** -128 and np.isinf(F(1) / scales[1, 2])
    assert np.all(packed[1, 2, 8:] == 0x00) and np.all(packed[0, 2, 8:] == 0x88)
    ours = _conv(4, True, 32, ".padded_k").pack(_conv(4, True, 32, ".padded_k").quantize(w))["weight"]
    assert np.array_equal(ours[:, 2, 8:], packed[:, 2, 8:])


def _near_tie_rows(bits: int, n: int, seed: int) -> np.ndarray:
    """Blocks of 32 whose zero point -min/s lies on or one ulp inside a half-integer."""
    qmax = (1 << bits) - 1
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        s = F(rng.uniform(0.01, 1.0))
        mn = F(-(rng.integers(0, qmax) + 0.5) * s)
        if rng.random() < 0.5:
            mn = np.nextafter(mn, F(0), dtype=F)
        mx = F(F(qmax) * s + mn)
        r = rng.uniform(mn, mx, 32).astype(F)
        r[0], r[1] = mn, mx
        rows.append(r)
    return np.stack(rows)


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_zero_point_is_a_division_at_near_ties(bits: int) -> None:
    w = _near_tie_rows(bits, 64, bits)
    conv = _conv(bits, False, 32)
    packed, scales, zp = _helper(w, bits, 32, False, 32)
    _assert_bytes(conv, w, packed, scales, zp)
    # the other formula, min * (1/s), must give another zero point on some of these rows
    qmax = (1 << bits) - 1
    lo = np.minimum(w.min(axis=1), F(0))
    s = ((np.maximum(w.max(axis=1), F(0)) - lo) / F(qmax)).astype(F)
    times_inverse = rounding.half_away(np.clip((F(0) - lo * (F(1) / s)).astype(F), 0, qmax)).astype(np.int32)
    ort_zp = zp[:, 0].astype(np.int32) & qmax  # one block per row: the lowest slot of the byte
    assert np.array_equal(conv.quantize(w).zeros[:, 0], ort_zp)
    assert np.any(times_inverse != ort_zp)


@pytest.mark.parametrize("bits,level", [(4, 0), (4, 4), (8, 0), (8, 4)])
def test_fp16_model_is_fp32_rounded_once(bits: int, level: int) -> None:
    """A float16 MatMulNBits model gives the float32 model's Y rounded to nearest even once (what
    oracle.gemm.mlas_matmulnbits models for out="fp16"), given float16-representable A and scales."""
    if importlib.util.find_spec("onnx") is None:
        pytest.skip("the adapter builds models with onnx")
    rng = np.random.default_rng(bits + level)
    conv = _conv(bits, False, 32)
    qw = conv.quantize(rng.standard_normal((17, 96)).astype(F))
    qw = dataclasses.replace(qw, scales=qw.scales.astype(np.float16).astype(F))
    p = conv.pack(qw)
    a16 = rng.standard_normal((3, 96)).astype(np.float16)
    kw = {"k": 96, "n": 17, "bits": bits, "block": 32, "accuracy_level": level}
    mod = "kernels.onnxruntime.matmulnbits"
    y32 = run(mod, "matmulnbits", a16.astype(F), p["weight"], p["scales"], p["zeros"], **kw)
    y16 = run(mod, "matmulnbits", a16, p["weight"], p["scales"], p["zeros"], dtype="fp16", **kw)
    assert y16.dtype == np.float16 and np.array_equal(y16.view(np.uint16), y32.astype(np.float16).view(np.uint16))


@pytest.mark.parametrize("feed", ["constant", "runtime"])
def test_unused_zero_point_slots_are_ignored(feed: str) -> None:
    """int4 with 3 blocks a row: the high nibble of each row's second zero-point byte is padding;
    0x0 or 0xF there leaves Y's bytes alone (the operator reads ceil(blocks / 2) bytes a row, blocks slots)."""
    if importlib.util.find_spec("onnx") is None:
        pytest.skip("the adapter builds models with onnx")
    rng = np.random.default_rng(7)
    conv = _conv(4, False, 32)
    p = conv.pack(conv.quantize(rng.standard_normal((9, 96)).astype(F)))
    a = rng.standard_normal((2, 96)).astype(F)
    ys = []
    for pad in (0x00, 0xF0):
        z = p["zeros"].copy()
        z[:, -1] = (z[:, -1] & 0x0F) | pad
        ys.append(run("kernels.onnxruntime.matmulnbits", "matmulnbits", a, p["weight"], p["scales"], z, k=96, n=9,
                      bits=4, block=32, accuracy_level=0, feed=feed))
    assert np.array_equal(ys[0].view(np.uint32), ys[1].view(np.uint32))
