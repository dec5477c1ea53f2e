"""The project's Triton int4 weight-only kernels (kernels/triton/w4a16.py) judged by the oracle.

Weights quantized by the oracle in the layout's own convention (GGML q4_0 blocks as bytes;
esimd.int4_gemv packed), plus random bytes (every nibble and any fp16 scale pattern short of
inf/NaN); the output is held to oracle.gemm.wxa16's exact value and derived bound (fp32 products
and sums in any order, one output rounding). No order is fixed (tl.sum trees), so no prediction.
The crafted families (absorption, the last K block, a partial last group, zero points, scales,
caller layouts) are the spec engine's (conformance/test_specs.py); this module keeps the configs
a table cannot choose (split-K slices, the V4 kernel) and weights as arbitrary bytes.
"""
from __future__ import annotations

import numpy as np
import pytest

import oracle
from conformance import triton_harness as harness
from oracle.conventions import get
from oracle.gemm._common import cast_out
from oracle.gemm.wxa16 import wxa16_exact
from oracle.verdict import compare_bounded

MOD = "kernels.triton.w4a16"
LAYOUTS = [pytest.param(lay, marks=pytest.mark.kernel(f"triton.w4a16.{lay}"), id=lay) for lay in ("q4_0", "esimd")]
SPLIT = dict(BLOCK_M=2, BLOCK_N=16, BLOCK_K=64, SPLIT_K=3, num_warps=4)  # exercises the split-K partial sum
V4 = dict(V=4, BLOCK_M=1, BLOCK_N=4, BLOCK_K=64, SPLIT_K=1, num_warps=1)  # the M = 1 GPU kernel, 2 pieces per step


def _shapes(qsession):
    quick = [(3, 128, 20)]
    return quick if qsession.profile == "quick" else quick + [(1, 4096, 4096), (1, 11008, 512), (16, 4096, 1024)]


def _quantized(layout: str, w: np.ndarray):
    """(weight bytes, scales or None, dequantized fp32 weight) of fp32 weights w in the layout's convention."""
    if layout == "q4_0":
        q = oracle.quantize(w, "q4_0")
        return q, None, oracle.dequantize(q, "q4_0")
    conv = get("esimd.int4_gemv")
    qw = conv.quantize(w)
    p = conv.pack(qw)
    return p["weight"], p["scales"], conv.dequantize(qw)


def _weights(layout: str, n: int, k: int, rng, kind: str):
    """(weight bytes, scales or None, dequantized fp32 weight) for the layout."""
    if kind == "quantized":
        return _quantized(layout, rng.standard_normal((n, k)).astype(np.float32))
    if layout == "q4_0":
        q = rng.integers(0, 256, (n, k // 32 * 18), dtype=np.uint8)
        d = (rng.standard_normal((n, k // 32)) * 0.05).astype(np.float16)
        q.reshape(n, k // 32, 18)[:, :, :2] = d.view(np.uint8).reshape(n, k // 32, 2)
        return q, None, oracle.dequantize(q, "q4_0")
    conv = get("esimd.int4_gemv")
    w = rng.integers(0, 256, (n, k // 2), dtype=np.uint8)
    s = (rng.standard_normal((n, -(-k // 128))) * 0.05).astype(np.float16)
    return w, s, conv.dequantize(conv.unpack({"weight": w, "scales": s}, k))


def _case(qsession, judge, layout, x, n, k, kind, out, config=None, weights=None):
    kernel, conv = f"triton.w4a16.{layout}", ("q4_0" if layout == "q4_0" else "esimd.int4_gemv")
    shape = (x.shape[0], k, n)
    rng = np.random.default_rng(n * 7 + k)
    w, s, wd = weights or _weights(layout, n, k, rng, kind)
    isa = harness.ready(qsession, judge, MOD, kernel, conv, shape)
    y = harness.call(qsession, judge, MOD, "gemv", x, w, s, layout=layout, k=k, out=out, config=config,
                     kernel=kernel, judged_as=conv, shape=shape)
    exact, bound = wxa16_exact(x, wd, acc="fp32", out=out)
    judge(compare_bounded(exact, bound, y, out_dtype=out, convention=conv, block_size=32 if layout == "q4_0" else 128,
                          what=f"{out} output (exact value + fp32 bound)"),
          kernel=kernel, shape=shape, observed_isa=isa, weights=kind, split_k=(config or {}).get("SPLIT_K", "auto"))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("kind", ["quantized", "random_bytes"])
@pytest.mark.parametrize("xdtype", ["fp16", "bf16", "fp32"])
def test_w4a16(qsession, judge, layout, kind, xdtype):
    for m, k, n in _shapes(qsession):
        x = cast_out(np.random.default_rng(m + k).standard_normal((m, k)).astype(np.float32), xdtype)
        _case(qsession, judge, layout, x, n, k, kind, xdtype)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("config,n", [(SPLIT, 20), (dict(V4, SPLIT_K=3), 6)], ids=["v2", "v4"])
def test_w4a16_split_k(qsession, judge, layout, config, n):
    """Three K slices (4 chunks of 64: the last slice is empty) summed in slice order by each tile's
    last program in the same launch, fp16 output; N is one full row tile and a partial one (V2's 16
    rows, V4's 4: an interpreted V4 program costs as much as a V2 one for a quarter of the rows)."""
    m, k = 3, 256
    x = np.random.default_rng(5).standard_normal((m, k)).astype(np.float16)
    _case(qsession, judge, layout, x, n, k, "quantized", "fp16", config=config)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("kind", ["quantized", "random_bytes"])
def test_w4a16_v4(qsession, judge, layout, kind):
    """The V4 kernel (pick_config's choice at M = 1 on a GPU) in the interpreter: K = 224 leaves a
    partial last step (masked loads), N = 6 a full row tile and a partial one, bf16 x and output."""
    m, k, n = 1, 224, 6
    x = cast_out(np.random.default_rng(6).standard_normal((m, k)).astype(np.float32), "bf16")
    _case(qsession, judge, layout, x, n, k, kind, "bf16", config=V4)


@pytest.mark.kernel("triton.w4a16.q4_0")
def test_q4_0_extreme_scales(qsession, judge):
    """fp16 d at the extremes (65504, subnormal 2^-24) and all nibbles: the bound holds or inf matches."""
    k, n = 64, 16
    rng = np.random.default_rng(12)
    q = rng.integers(0, 256, (n, k // 32 * 18), dtype=np.uint8)
    d = np.array([65504.0, 2.0 ** -24, -2.0 ** -14, 1.0], np.float16)[np.arange(n * 2) % 4].reshape(n, 2)
    q.reshape(n, 2, 18)[:, :, :2] = d.view(np.uint8).reshape(n, 2, 2)
    x = (np.random.default_rng(13).standard_normal((1, k)) * 1e-3).astype(np.float16)
    kernel, shape = "triton.w4a16.q4_0", (1, k, n)
    isa = harness.ready(qsession, judge, MOD, kernel, "q4_0", shape)
    y = harness.call(qsession, judge, MOD, "gemv", x, q, None, layout="q4_0", k=k, out="fp32", kernel=kernel,
                     judged_as="q4_0", shape=shape)
    exact, bound = wxa16_exact(x, oracle.dequantize(q, "q4_0"), acc="fp32", out="fp32")
    judge(compare_bounded(exact, bound, y, out_dtype="fp32", convention="q4_0", block_size=32, what="fp32 output"),
          kernel=kernel, shape=shape, observed_isa=isa)
