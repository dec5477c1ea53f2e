"""ONNX Runtime MatMulNBits (CPU EP) against the oracle: bits 2/4/8, with and without zero points,
accuracy_level 0 (fp32) and 4 (int8 activations), block sizes 16..256 drawn, and every accepted size 16..2048 once, K on and off blocks.

Weights come from the ort.matmulnbits.* conventions (byte-equal to ORT's own quantizer,
tests/test_conventions_onnxruntime.py). accuracy_level 0: exact a @ dequant(B).T with the fp32
accumulation bound, each weight carrying u32 * (|q s| + |zp s| + |w|) of its own (MLAS may form
(q - zp) * s or q * s - zp * s, fused or not). accuracy_level 4: A quantized per block by
act.ort.matmulnbits.int8_blk, exact int32 block sums, `acc += qsum * (a_scale * b_scale)`
in K order (the predicted model; MLAS's tiled kernels reduce lane partials in another order),
the exact value of the same sums with a bound valid for any split of the integer sums into
float-converted partials. accuracy_level is a floor on precision: where MLAS has no int8 kernel
it computes in fp32, so level 4 conforms when either semantics holds (the path is recorded).

How the weights reach the operator picks its code path (kernels/onnxruntime/matmulnbits.py): as
initializers (packed at session creation), with the zero points fed at run time, or all fed at run
time (unpacked). The zero-point layout family crosses those with K in whole blocks (the packed
paths: Neural Speed / BesTLA in onnxruntime 1.17 and 1.18, MLAS's packed B), odd block counts (a
half-used last zero-point byte, its unused slots set to a value the operator must ignore), zero
points taking every code, N off the kernels' column tiles, M on both sides of 16 and several
threads. The fp16 family runs `MatMulNBits<MLFloat16>` (fp16 A, scales and Y), whose PrePack and
Compute are their own code.

4-bit with zero points at accuracy_level 0, weights as initializers, is also on the spec engine
(conformance/test_specs.py, kernels/onnxruntime/matmulnbits.py `matmulnbits_view`): its crafted and
subnormal-activation cases here go, since the engine's families cover them at every block size
16..256. What stays is what the engine cannot draw: levels 4, 2 and 8 bits, the default zero
point, run-time feeds, N off the column tiles (the engine's N are multiples of 16), subnormal fp32
scales, blocks past 256 and float-derived hypothesis weights.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import oracle.conventions as conventions
from conformance import calls
from oracle.gemm.mlas_matmulnbits import level0_expected, level4_model
from oracle.strategies import float_arrays, sums_fit_fp32
from oracle.verdict import compare_bounded

KERNEL = "onnxruntime.matmulnbits"
MODULE = "kernels.onnxruntime.matmulnbits"
F = np.float32
KINDS = ("normal", "zero_group", "constant_group", "half_steps", "max_ties", "mixed")
pytestmark = pytest.mark.kernel(KERNEL)


def _fill_zero_point_padding(zeros: np.ndarray, bits: int, n_blocks: int, value: int) -> np.ndarray:
    """Packed zero points with the unused slots of each row's last byte set to `value`: the operator
    reads n_blocks slots a row (matmul_nbits.cc: [N][ceil(n_blocks * bits / 8)]), so nothing may change."""
    per = 8 // bits
    used = n_blocks % per
    if not used:
        return zeros
    out = zeros.copy()
    pad = sum(value << (j * bits) for j in range(used, per))
    out[:, -1] = (out[:, -1] & ((1 << (used * bits)) - 1)) | pad
    return out


def _judge(qsession, judge, a, w, bits: int, sym: bool, block: int, level: int, *, feed: str = "constant",
           threads: int = 1, dtype: str = "fp32", pad_fill: int | None = None) -> None:
    name = f"ort.matmulnbits.int{bits}.{'sym' if sym else 'asym'}"
    calls.require_available(qsession, judge, KERNEL, MODULE, name)  # MLAS has no knob: native or emulated
    conv = dataclasses.replace(conventions.get(name), group_size=block)
    qw = conv.quantize(w)
    if dtype == "fp16":  # the model stores the scales in A's dtype: judge what it holds
        qw = dataclasses.replace(qw, scales=qw.scales.astype(np.float16).astype(F))
    p = conv.pack(qw)
    if pad_fill is not None and "zeros" in p:
        p["zeros"] = _fill_zero_point_padding(p["zeros"], bits, qw.scales.shape[1], pad_fill)
    n, k = w.shape
    shape = (a.shape[0], k, n)
    what = (f"MatMulNBits int{bits} {'sym' if sym else 'asym zp'} block {block} accuracy_level {level}"
            + (f" {dtype}" if dtype != "fp32" else "") + (f" {feed} weights" if feed != "constant" else "")
            + (f" {threads} threads" if threads != 1 else ""))
    run = calls.run_observed(qsession, judge, KERNEL, MODULE, "matmulnbits", a, p["weight"], p["scales"],
                             p.get("zeros"), convention=name, what=what, shape=shape, k=k, n=n, bits=bits,
                             block=block, accuracy_level=level, feed=feed, threads=threads, dtype=dtype)
    y = run.outcome.value
    a32 = a.astype(F)
    exact, bound = level0_expected(a32, qw, conv, out=dtype)
    res = compare_bounded(exact, bound, y, out_dtype=dtype, convention=name, block_size=block, what=what)
    path = "fp32"
    if level == 4:
        # accuracy_level is the lowest precision A may be computed in; MLAS falls back to fp32 where it
        # has no int8 kernel (2-bit with block 16 on AVX2, onnxruntime 1.31): either semantics is conforming
        pred, exact4, bound4 = level4_model(a32, qw, conv, out=dtype)
        res4 = compare_bounded(exact4, bound4, y, out_dtype=dtype, predicted=pred, block_size=block, what=what,
                               convention=f"{name} x act.ort.matmulnbits.int8_blk")
        if res4.ok or not res.ok:
            res, path = res4, "int8"
            if not res4.ok:
                res.detail += "; the fp32 (dequantize B) semantics does not hold either"
    judge(res, kernel=KERNEL, shape=shape, observed_isa=run.isa(), bits=bits, accuracy_level=level, block=block,
          path=path, feed=feed, threads=threads, dtype=dtype)


def _zp_id(sym: bool) -> str:
    return "sym" if sym else "zp"


# (bits, symmetric, accuracy_level) the engine does not judge: all but 4-bit with zero points at level 0
_BEYOND_ENGINE = [pytest.param(b, s, lv, id=f"{b}-{_zp_id(s)}-{lv}") for b in (2, 4, 8) for s in (True, False)
                  for lv in (0, 4) if (b, s, lv) != (4, False, 0)]


@pytest.mark.parametrize("bits, sym, level", _BEYOND_ENGINE)
def test_matmulnbits_crafted(qsession, judge, bits: int, sym: bool, level: int) -> None:
    """Zero row, one-signed rows, |max| == |min| ties, K off the block multiple; GEMV and M = 5."""
    rng = np.random.default_rng(bits * 10 + level)
    n, k = 16, 80
    w = rng.standard_normal((n, k)).astype(F)
    w[0] = 0.0
    w[1] = np.abs(w[1])
    w[2] = -np.abs(w[2])
    w[3, 0], w[3, 1] = 2.0, -2.0
    for m in (1, 5):
        a = rng.standard_normal((m, k)).astype(F)
        _judge(qsession, judge, a, w, bits, sym, 32, level)


_TINY = np.finfo(F).tiny


def _subnormal_case(rng: np.random.Generator, which: str, m: int, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(a, w) whose correct products are fp32 subnormals: weights around 1e-40 (so the block scales
    are subnormal themselves), or activations around 1e-40 with ordinary weights."""
    a = rng.standard_normal((m, k)).astype(F)
    w = rng.standard_normal((n, k)).astype(F)
    if which == "scales":
        return a, (w * F(1e-40)).astype(F)
    return (a * F(1e-40)).astype(F), w


@pytest.mark.parametrize("sym, which, level", [
    pytest.param(s, wh, lv, id=f"{_zp_id(s)}-{wh}-{lv}") for s in (True, False) for wh in ("scales", "activations")
    for lv in (0, 4) if (s, wh, lv) != (False, "activations", 0)])  # that one is the engine's subnormal family
def test_matmulnbits_subnormal(qsession, judge, which: str, sym: bool, level: int) -> None:
    """Subnormal block scales or activations with subnormal correct outputs, at accuracy levels 0 and 4:
    MLAS under FTZ/DAZ (a host process built with -ffast-math, or a kernel that sets MXCSR) returns
    zeros, outside the bound. (Level 4 multiplies each integer block sum by fp32(a_scale * b_scale),
    whose underflow error the sum amplifies: level4_model's bound carries that absolute term.)"""
    rng = np.random.default_rng(31 + 2 * sym)
    m, n, k = 2, 16, 64
    a, w = _subnormal_case(rng, which, m, n, k)
    conv = dataclasses.replace(conventions.get(f"ort.matmulnbits.int4.{'sym' if sym else 'asym'}"), group_size=32)
    qw = conv.quantize(w)
    exact, bound = level0_expected(a, qw, conv)
    tiny = (exact != 0) & (np.abs(exact) < _TINY) & (bound < np.abs(exact) / 2)
    assert tiny.mean() > 0.75, "the case's correct outputs must be subnormal and resolved by the bound"
    if which == "scales":
        assert np.all(np.abs(qw.scales) < _TINY), "the block scales must be subnormal"
    _judge(qsession, judge, a, w, 4, sym, 32, level)


@pytest.mark.parametrize("level", [0, 4])
@pytest.mark.parametrize("bits", [2, 4, 8])
def test_matmulnbits_hypothesis(qsession, judge, bits: int, level: int) -> None:
    @settings(max_examples=3 if qsession.profile == "quick" else 40)
    @given(data=st.data(), block=st.sampled_from([16, 32, 64, 128, 256]), sym=st.booleans(),
           m=st.sampled_from([1, 2, 3, 8, 17, 64]), blocks=st.integers(1, 6), tail=st.integers(0, 15),
           n=st.integers(1, 40))
    def case(data, block, sym, m, blocks, tail, n):
        k = block * blocks + tail
        w = data.draw(float_arrays((n, k), group_size=block, kinds=KINDS))
        a = data.draw(float_arrays((m, k), group_size=block, kinds=KINDS))
        conv = dataclasses.replace(conventions.get(f"ort.matmulnbits.int{bits}.{'sym' if sym else 'asym'}"),
                                   group_size=block)
        with np.errstate(over="ignore", invalid="ignore"):
            assume(sums_fit_fp32(a, conv.dequantize(conv.quantize(w))))
        _judge(qsession, judge, a, w, bits, sym, block, level)

    case()


# Every block size the operator accepts: powers of two from 16; bits 4 and 8 have no upper limit in
# onnxruntime 1.32 (2048 stands for the open end), 2-bit refuses blocks past 256 with a message.
_BLOCKS = {2: (16, 32, 64, 128, 256), 4: (16, 32, 64, 128, 256, 512, 1024, 2048),
           8: (16, 32, 64, 128, 256, 512, 1024, 2048)}


@pytest.mark.parametrize("bits, block", [(b, s) for b, sizes in _BLOCKS.items() for s in sizes])
def test_matmulnbits_every_block_size(qsession, judge, bits: int, block: int) -> None:
    """One cheap case per accepted block size, with zero points, K two blocks plus a tail, fp32 path."""
    rng = np.random.default_rng(bits * 4099 + block)
    k = 2 * block + 8
    w = rng.standard_normal((5, k)).astype(F)
    a = rng.standard_normal((2, k)).astype(F)
    _judge(qsession, judge, a, w, bits, False, block, 0)


# (N, K, block, M, threads). K in whole blocks with an odd block count (the last zero-point byte of a
# row half used) and an even one, one K with a tail; N off the 8/16/48-column tiles; M on both sides
# of the GEMV/GEMM switch at 16 (BesTLA's KBlock and base launchers in onnxruntime 1.17, MLAS's M=1
# kernels); work split over up to 4 threads. The quick profile runs the first three.
_LAYOUTS = ((17, 96, 32, 1, 1), (49, 128, 32, 17, 4), (33, 80, 16, 16, 2), (64, 256, 128, 3, 4),
            (7, 48, 16, 1, 1), (40, 112, 32, 5, 4))


def _spread_zero_points(rng: np.random.Generator, n: int, k: int, block: int) -> np.ndarray:
    """Weights whose blocks sit at random offsets, so the asymmetric zero points take every code
    (0 and 2^bits - 1 for one-signed blocks) and a misplaced one changes the product."""
    w = rng.standard_normal((n, k)).astype(F)
    shift = rng.uniform(-3, 3, (n, -(-k // block))).astype(F)
    return w + np.repeat(shift, block, axis=1)[:, :k]


@pytest.mark.parametrize("feed", ["constant", "runtime_zp", "runtime"])
@pytest.mark.parametrize("level", [0, 4])
@pytest.mark.parametrize("bits", [2, 4, 8])
def test_matmulnbits_zero_point_layouts(qsession, judge, bits: int, level: int, feed: str) -> None:
    """Asymmetric weights through every way the weights reach the operator, over the layout shapes."""
    rng = np.random.default_rng(bits * 100 + level * 10 + len(feed))
    for n, k, block, m, threads in _LAYOUTS if qsession.profile == "full" else _LAYOUTS[:3]:
        w = _spread_zero_points(rng, n, k, block)
        a = rng.standard_normal((m, k)).astype(F)
        _judge(qsession, judge, a, w, bits, False, block, level, feed=feed, threads=threads,
               pad_fill=(1 << bits) - 1)


@pytest.mark.parametrize("level", [0, 4])
@pytest.mark.parametrize("sym", [True, False], ids=["sym", "zp"])
@pytest.mark.parametrize("bits", [4, 8])
def test_matmulnbits_fp16(qsession, judge, bits: int, sym: bool, level: int) -> None:
    """fp16 A, scales and Y: K in whole blocks (packed at session creation) and with a tail; GEMV and M = 5."""
    rng = np.random.default_rng(bits * 10 + level + 2 * sym)
    for n, k, block, m in ((17, 128, 32, 1), (24, 72, 16, 5)):
        w = _spread_zero_points(rng, n, k, block)
        a = rng.standard_normal((m, k)).astype(np.float16)
        _judge(qsession, judge, a, w, bits, sym, block, level, dtype="fp16")
