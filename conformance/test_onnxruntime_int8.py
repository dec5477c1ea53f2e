"""ONNX Runtime's int8 GEMMs (MatMulInteger, QLinearMatMul, com.microsoft DynamicQuantizeMatMul and
MatMulIntegerToFloat, DynamicQuantizeLinear) and QuantizeLinear on the CPU execution provider,
judged by oracle.gemm.mlas_int8.

Two models of the integer accumulator (see that module): the exact sum (a - za)(b - zb), and the
int16 pairs of MLAS's u8 x s8 kernel on x64 hosts without VNNI. Each case is judged twice:
- `host model`: against the model MLAS is documented to compute for these operand types on this
  host (`model_for`: the pairs for u8 x s8 where the cpuid flags the worker saw lack VNNI/AMX,
  exact otherwise and wherever `session.x64quantprecision` rewrote the weight). Integer outputs
  byte for byte, fp32 outputs as the modelled prediction byte for byte (the epilogue's order is
  fixed), never a strict-xfail: a wrong prediction is a failure here.
- `exact`: against the exact model. On a saturating host, cases built to saturate deviate by
  design (onnxruntime's session option docs; onnxruntime issue 16105), registered as such in
  conformance/known_defects.py: on a host whose MLAS saturates they are strict expected failures
  that only the registered FAIL satisfies.
MatMulInteger s8 x s8 without zero points, B an initializer, DynamicQuantizeMatMul with s8 weights,
per-column scales, no zero point or bias (the host's pairs modelled, mlas.dynamicquantizematmul), and
MatMulIntegerToFloat with u8 A and its zero point, s8 B with per-column scales and no zero point, and a
bias (mlas.matmulintegertofloat), and QLinearMatMul with u8 A and Y, s8 B with per-column scales and zero
points (mlas.qlinearmatmul) are judged by conformance/test_specs.py (their KernelSpecs in
kernels/onnxruntime/int8_gemm.py); the tests here keep what those families cannot say: B zero points, bias
(DynamicQuantizeMatMul), per-tensor scales, B as a graph input, u8 weights, s8 A and Y (QLinearMatMul),
quantizer ties, the session option and QLinearMatMul-21.
"""
from __future__ import annotations

import numpy as np
import pytest

from conformance import calls
from kernels.isa import host_flags
from oracle.gemm.mlas_int8 import (accumulator, dynamic_quantize_u8, float_output, model_for, qlinear_scale,
                                   quantize_linear, requantize)
from oracle.verdict import Result, compare_bounded, compare_exact

MODULE = "kernels.onnxruntime.int8_gemm"
F = np.float32
U8, S8 = np.uint8, np.int8
_CONV = {"exact": "mlas.int8.exact", "u8s8_int16_pairs": "mlas.int8.u8s8_int16_pairs", "host": "mlas.int8 (host model)"}

def _kernel(op: str) -> str:
    return f"onnxruntime.{op}"


def _ready(qsession, judge, op: str, convention: str) -> None:
    calls.require_available(qsession, judge, _kernel(op), MODULE, convention)  # MLAS has no knob: native or emulated


def _call(qsession, judge, op: str, func_args: tuple, kw: dict, convention: str, what: str, shape: tuple):
    _ready(qsession, judge, op, convention)
    run = calls.run_observed(qsession, judge, _kernel(op), MODULE, op, *func_args, convention=convention, what=what,
                             shape=shape, **kw)
    return run, run.outcome.value, frozenset(run.observed.get("cpu_flags", ()))


def _record(judge, op, res, run, shape, model, value, **extra) -> None:
    judge(res, kernel=_kernel(op), shape=shape, observed_isa=run.isa(), model=model,
          weight_dtype=value.get("weight_dtype", ""), **extra)


def _pick(which: str, a, b, flags, kw) -> str:
    if which == "exact":
        return "exact"
    return model_for(a.dtype, b.dtype, flags, precision=kw.get("precision", False), b_const=kw.get("b_const", True),
                     b_codes=b)


def _bit_exact(res: Result) -> Result:
    """A modelled fp32 output must be the prediction's bytes: within the bound is not enough."""
    if res.status == "BOUNDED":
        return Result("FAIL", res.convention, res.what, metrics=res.metrics, worst_ratio=res.worst_ratio,
                      detail="within the derived bound but not the modelled bytes: " + res.detail)
    return res


# ---------------------------------------------------------------------------------------- cases

def _u8s8(seed: int, m: int, k: int, n: int, zp: str):
    """Full-range u8 A and s8 B with row 0 all 255 and column 0 all 127 (saturates for K >= 2)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (m, k), dtype=U8)
    b = rng.integers(-128, 128, (k, n), dtype=S8)
    a[0], b[:, 0] = 255, 127
    za, zb = {"none": (None, None), "za128_zb-5": (U8(128), S8(-5)),
              "za255_zbcol": (U8(255), rng.integers(-128, 128, n, dtype=S8)),
              "za0_zb0": (U8(0), S8(0))}[zp]
    return a, za, b, zb


def _straddle():
    """Pairs built on the int16 edges: 255*127 + 191*2 = 32767 (fits), + 192*2 = 32769 (saturates),
    255*-128 + 1*-128 = -32768 (fits), + 3*-43 = -32769 (saturates), and single products (odd K tail)."""
    pairs_a = [(255, 191), (255, 192), (255, 1), (255, 3), (255, 255), (0, 255), (128, 128)]
    pairs_b = [(127, 2), (127, 2), (-128, -128), (-128, -43), (127, 127), (127, 127), (-128, -128)]
    rows = [np.array(sum(([x, y] for x, y in pairs_a[i:] + pairs_a[:i]), []) + [255], U8) for i in range(len(pairs_a))]
    a = np.stack(rows)
    col = np.array(sum(([x, y] for x, y in pairs_b), []) + [127], S8)
    b = np.stack([col, -col.clip(-127, 127), np.roll(col, 2)], axis=1).astype(S8)
    return a, b


_SHAPES = {"gemv_k256": (1, 256, 16), "m4_k256": (4, 256, 16), "k2": (1, 2, 1), "k3_n5": (3, 3, 5),
           "k17_n3": (5, 17, 3), "k65_n9": (7, 65, 9), "k257_n33": (1, 257, 33), "k1023_n24": (16, 1023, 24)}
_ZPS = ("none", "za128_zb-5", "za255_zbcol")


# ------------------------------------------------------------------------------- MatMulInteger

def _matmulinteger(qsession, judge, which: str, a, za, b, zb, **kw) -> None:
    shape = (a.shape[0], a.shape[1], b.shape[1])
    what = f"MatMulInteger {a.dtype.name} x {b.dtype.name} int32 ({', '.join(f'{k}={v}' for k, v in kw.items())})"
    run, value, flags = _call(qsession, judge, "matmulinteger", (a, b, za, zb), kw, _CONV[which], what, shape)
    model = _pick(which, a, b, flags, kw)
    expected = accumulator(a, 0 if za is None else za, b, 0 if zb is None else zb, model)
    res = compare_exact(expected, value["y"], convention=_CONV[model], what=what)
    _record(judge, "matmulinteger", res, run, shape, model, value, b_const=kw.get("b_const", True))


@pytest.mark.kernel("onnxruntime.matmulinteger")
@pytest.mark.parametrize("b_const", [True, False], ids=["b_init", "b_input"])
@pytest.mark.parametrize("zp", _ZPS)
@pytest.mark.parametrize("mkn", sorted(_SHAPES))
@pytest.mark.parametrize("which", ["host", "exact"])
def test_matmulinteger_u8s8(qsession, judge, which: str, mkn: str, zp: str, b_const: bool) -> None:
    """Full-range u8 x s8, zero points 0 / 128 / 255 / per column, K and N tails, M = 1 (GEMV kernel with B an input)."""
    a, za, b, zb = _u8s8(len(mkn) * 7 + len(zp), *_SHAPES[mkn], zp)
    _matmulinteger(qsession, judge, which, a, za, b, zb, b_const=b_const)


@pytest.mark.kernel("onnxruntime.matmulinteger")
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("which", ["host", "exact"])
def test_matmulinteger_int16_edges(qsession, judge, which: str, threads: int) -> None:
    """Pair sums of exactly +-32767/-32768 (must not change) beside ones a step past (saturate); odd K tail."""
    a, b = _straddle()
    _matmulinteger(qsession, judge, which, a, None, b, None, threads=threads)
    _matmulinteger(qsession, judge, which, a, U8(17), b, S8(-9), threads=threads, b_const=False)


_EXACT_TYPES = {  # operand types whose MLAS path is exact on every x64 host
    "u8u8_full": (lambda r, m, k, n: (r.integers(0, 256, (m, k), dtype=U8), r.integers(0, 256, (k, n), dtype=U8))),
    "s8s8_full": (lambda r, m, k, n: (r.integers(-128, 128, (m, k), dtype=S8), r.integers(-128, 128, (k, n), dtype=S8))),
    "u8s8_within_64": (lambda r, m, k, n: (r.integers(0, 256, (m, k), dtype=U8), r.integers(-64, 65, (k, n), dtype=S8))),
}


@pytest.mark.kernel("onnxruntime.matmulinteger")
@pytest.mark.parametrize("b_const", [True, False], ids=["b_init", "b_input"])
@pytest.mark.parametrize("kind", sorted(_EXACT_TYPES))
def test_matmulinteger_exact_paths(qsession, judge, kind: str, b_const: bool) -> None:
    """u8 x u8 (MLAS's int16-widening kernel), s8 x s8 (portable C++), u8 x s8 with |b| <= 64: exact everywhere."""
    rng = np.random.default_rng(len(kind))
    for m, k, n in ((1, 256, 16), (4, 255, 7), (9, 1024, 33)):
        a, b = _EXACT_TYPES[kind](rng, m, k, n)
        a[0], b[:, 0] = (255 if a.dtype == U8 else -128), (b.max() if kind != "s8s8_full" else -128)
        za = a.dtype.type(a.max() // 2 if a.dtype == U8 else -3)
        zb = rng.integers(int(b.min()), int(b.max()) + 1, n).astype(b.dtype)
        if kind != "s8s8_full" or not b_const:  # s8 x s8 from an initializer without zero points: test_specs.py
            _matmulinteger(qsession, judge, "exact", a, None, b, None, b_const=b_const)
        _matmulinteger(qsession, judge, "exact", a, za, b, zb, b_const=b_const)


# -------------------------------------------------------------------- session.x64quantprecision

_OPS = ("matmulinteger", "qlinearmatmul", "matmulintegertofloat", "dynamicquantizematmul")


def _ops(*names: str) -> list:
    return [pytest.param(op, id=op, marks=pytest.mark.kernel(_kernel(op))) for op in names or _OPS]


def _precision_case(qsession, judge, op: str, which: str, *, precision: bool, b_const: bool = True,
                    opset: int = 13, b_values=(127,)) -> None:
    """255 x 127 over K = 256 (the documented overflow: 4194176 instead of 8290560), through each operator."""
    m, k, n = 3, 256, 8
    a = np.full((m, k), 255, U8)
    a[2] = np.arange(k) % 256
    b = np.resize(np.array(b_values, S8), (k, n)).astype(S8)
    b[:, 1] = -b[:, 1] if b_values[0] > 0 else b[:, 1]
    kw = dict(precision=precision, b_const=b_const)
    shape = (m, k, n)
    what = f"{op} 255 x {b_values[0]} K={k} precision={int(precision)} b_const={b_const} opset={opset}"

    def model(flags) -> str:
        return "exact" if which == "exact" else model_for(U8, S8, flags, precision=precision, b_const=b_const,
                                                          b_codes=b, op=op, opset=opset)
    if op == "matmulinteger":
        _matmulinteger(qsession, judge, which, a, None, b, None, **kw)
        return
    conv = _CONV["exact" if which == "exact" else model(host_flags())]
    if op == "qlinearmatmul":
        run, value, flags = _call(qsession, judge, op, (a, F(1), U8(0), b, F(1), S8(0), F(65536), U8(0)),
                                  {**kw, "opset": opset}, conv, what, shape)
        expected = requantize(accumulator(a, 0, b, 0, model(flags)), qlinear_scale(1, 1, 65536), 0, U8)
        res = compare_exact(expected, value["y"], convention=_CONV[model(flags)], what=what)
    else:
        if op == "dynamicquantizematmul":
            x = np.where(a == 255, F(1), a.astype(F) / F(255)).astype(F)
            args = (x, b, F(0.5), None, None)
            codes, sa, za = dynamic_quantize_u8(x)
        else:
            args = (a, b, F(0.5), F(0.25))
            codes, sa, za = a, F(0.5), U8(0)
        run, value, flags = _call(qsession, judge, op, args, kw, conv, what, shape)
        pred, exact, bound = float_output(accumulator(codes, za, b, 0, model(flags)), sa,
                                          F(0.5) if op == "dynamicquantizematmul" else F(0.25))
        res = _bit_exact(compare_bounded(exact, bound, value["y"], out_dtype="fp32", predicted=pred,
                                         convention=_CONV[model(flags)], what=what))
    _record(judge, op, res, run, shape, model(flags), value, precision=precision, opset=opset)


@pytest.mark.parametrize("precision", [False, True], ids=["precision0", "precision1"])
@pytest.mark.parametrize("op", _ops())
def test_x64quantprecision_host_model(qsession, judge, op: str, precision: bool) -> None:
    """session.x64quantprecision 0: the pairs on this host; 1: a constant s8 weight with |b| > 64 is rewritten to
    u8 (weight_dtype uint8 in the optimized graph) and the result is exact."""
    _precision_case(qsession, judge, op, "host", precision=precision)


@pytest.mark.parametrize("op", _ops())
def test_x64quantprecision_exact(qsession, judge, op: str) -> None:
    """With the option on and B an initializer every operator computes the exact sum, here included."""
    _precision_case(qsession, judge, op, "exact", precision=True)


@pytest.mark.parametrize("op", _ops())
def test_x64quantprecision_weight_within_64(qsession, judge, op: str) -> None:
    """A weight within [-64, 64] is left s8 (the rewrite's threshold) and cannot saturate: exact either way."""
    _precision_case(qsession, judge, op, "exact", precision=True, b_values=(64, -64, 63))
    _precision_case(qsession, judge, op, "exact", precision=False, b_values=(64, -64, 63))


@pytest.mark.parametrize("op", _ops("matmulinteger", "qlinearmatmul", "matmulintegertofloat"))
@pytest.mark.parametrize("which", ["host", "exact"])
def test_x64quantprecision_weight_as_input(qsession, judge, op: str, which: str) -> None:
    """The rewrite only touches initializers: a weight fed as a graph input still saturates with the option on."""
    _precision_case(qsession, judge, op, which, precision=True, b_const=False)


@pytest.mark.kernel("onnxruntime.qlinearmatmul")
@pytest.mark.parametrize("which", ["host", "exact"])
def test_x64quantprecision_qlinearmatmul_opset21(qsession, judge, which: str) -> None:
    """The rewrite matches QLinearMatMul since-version 10 only: in an opset-21 model the option leaves B s8."""
    _precision_case(qsession, judge, "qlinearmatmul", which, precision=True, opset=21)


# ------------------------------------------------------------------------------- QLinearMatMul

def _qlinear(qsession, judge, which: str, a, sa, za, b, sb, zb, sy, zy, **kw) -> None:
    shape = (a.shape[0], a.shape[1], b.shape[1])
    what = f"QLinearMatMul {a.dtype.name} x {b.dtype.name} -> {np.asarray(zy).dtype.name}"
    run, value, flags = _call(qsession, judge, "qlinearmatmul", (a, sa, za, b, sb, zb, sy, zy), kw, _CONV[which],
                              what, shape)
    model = _pick(which, a, b, flags, kw)
    expected = requantize(accumulator(a, za, b, zb, model), qlinear_scale(sa, sb, sy), zy, np.asarray(zy).dtype)
    res = compare_exact(expected, value["y"], convention=_CONV[model], what=what)
    _record(judge, "qlinearmatmul", res, run, shape, model, value)


@pytest.mark.kernel("onnxruntime.qlinearmatmul")
@pytest.mark.parametrize("out", ["u8", "s8"])
def test_qlinearmatmul_requant_ties(qsession, judge, out: str) -> None:
    """acc * scale on exact halves (scale 1/2, 1/4, per-column 3/2): round half to even, then the zero point.
    u8 Y with B an initializer is the ties family of test_specs.py (mlas.qlinearmatmul); B as a graph input stays."""
    odd = np.array([1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21], np.int64)
    if out == "u8":
        a = np.array([[1], [3], [5], [7], [255]], U8)
        b = np.concatenate([odd, -odd])[None, :].astype(S8)
        za, zb, zy = U8(0), S8(0), U8(128)
    else:
        a = np.array([[1], [3], [-5], [7], [-128]], S8)
        b = np.concatenate([odd, -odd])[None, :].astype(S8)
        za, zb, zy = S8(0), S8(0), S8(-3)
    n = b.shape[1]
    for sa, sb, sy in ((F(1), F(1), F(2)), (F(0.5), F(0.5), F(1)), (F(1), np.resize(F([1.5, 0.5, 0.25]), n), F(1))):
        if out == "s8":  # s8 A and Y are outside u8_requant
            _qlinear(qsession, judge, "host", a, sa, za, b, sb, zb, sy, zy)
        _qlinear(qsession, judge, "host", a, sa, za, b, sb, zb, sy, zy, b_const=False)


@pytest.mark.kernel("onnxruntime.qlinearmatmul")
@pytest.mark.parametrize("zp", ["za128_zb-5"])  # per-column B scales and zero points: test_specs.py (u8_requant)
@pytest.mark.parametrize("which", ["host", "exact"])
def test_qlinearmatmul_u8s8(qsession, judge, which: str, zp: str) -> None:
    """Full-range u8 x s8 with a per-tensor B scale and zero point (scalars), output clamped at both ends."""
    for key in ("m4_k256", "k65_n9", "k257_n33"):
        a, za, b, zb = _u8s8(11 + len(key), *_SHAPES[key], zp)
        n = b.shape[1]
        sb = F(0.02) if np.ndim(zb) == 0 else np.linspace(0.005, 0.03, n).astype(F)
        _qlinear(qsession, judge, which, a, F(0.05), za, b, sb, zb, F(3.0), U8(77), threads=2)


@pytest.mark.kernel("onnxruntime.qlinearmatmul")
def test_qlinearmatmul_s8s8(qsession, judge) -> None:
    """The int8 kernel (s8 A, B and Y): MLAS's portable C++ path, exact on every host."""
    rng = np.random.default_rng(5)
    for m, k, n in ((1, 256, 16), (5, 33, 7), (16, 1024, 24)):
        a = rng.integers(-128, 128, (m, k), dtype=S8)
        b = rng.integers(-128, 128, (k, n), dtype=S8)
        a[0], b[:, 0] = -128, -128
        _qlinear(qsession, judge, "exact", a, F(0.05), S8(-3), b, np.linspace(0.01, 0.02, n).astype(F),
                 np.zeros(n, S8), F(40.0), S8(-5))


# ------------------------------------------------------------------- MatMulIntegerToFloat

def _to_float(qsession, judge, which: str, a, b, sa, sb, za, zb, bias, **kw) -> None:
    shape = (a.shape[0], a.shape[1], b.shape[1])
    what = f"MatMulIntegerToFloat {a.dtype.name} x {b.dtype.name} fp32{' + bias' if bias is not None else ''}"
    run, value, flags = _call(qsession, judge, "matmulintegertofloat", (a, b, sa, sb, za, zb, bias), kw,
                              _CONV[which], what, shape)
    model = _pick(which, a, b, flags, kw)
    acc = accumulator(a, 0 if za is None else za, b, 0 if zb is None else zb, model)
    pred, exact, bound = float_output(acc, sa, sb, bias)
    res = _bit_exact(compare_bounded(exact, bound, value["y"], out_dtype="fp32", predicted=pred,
                                     convention=_CONV[model], what=what))
    _record(judge, "matmulintegertofloat", res, run, shape, model, value)


@pytest.mark.kernel("onnxruntime.matmulintegertofloat")
@pytest.mark.parametrize("bias", [False, True], ids=["nobias", "bias"])
@pytest.mark.parametrize("zp", ["none", "za128_zb-5", "za255_zbcol"])
@pytest.mark.parametrize("which", ["host", "exact"])
def test_matmulintegertofloat_u8s8(qsession, judge, which: str, zp: str, bias: bool) -> None:
    """fp32(float(acc) * fp32(sa * sb[n])) + bias[n], per-tensor and per-column scales, B initializer and input."""
    rng = np.random.default_rng(len(zp))
    for key in ("gemv_k256", "k17_n3", "k257_n33"):
        a, za, b, zb = _u8s8(3 + len(key), *_SHAPES[key], zp)
        n = b.shape[1]
        sb = F(0.0173) if np.ndim(zb) == 0 else (rng.random(n) * 0.05 + 1e-3).astype(F)
        bvec = rng.standard_normal(n).astype(F) * F(100) if bias else None
        for b_const in (True, False):
            _to_float(qsession, judge, which, a, b, F(0.0131), sb, za, zb, bvec, b_const=b_const)


@pytest.mark.kernel("onnxruntime.matmulintegertofloat")
def test_matmulintegertofloat_u8u8(qsession, judge) -> None:
    """u8 weights run MLAS's exact u8 x u8 kernel on every host."""
    rng = np.random.default_rng(9)
    a = rng.integers(0, 256, (5, 255), dtype=U8)
    b = rng.integers(0, 256, (255, 9), dtype=U8)
    a[0], b[:, 0] = 255, 255
    _to_float(qsession, judge, "exact", a, b, F(0.02), (rng.random(9) * 0.1).astype(F), U8(3),
              rng.integers(0, 256, 9, dtype=U8), rng.standard_normal(9).astype(F))


# ------------------------------------------------------------- DynamicQuantizeLinear / MatMul

_DQL = {
    "halves": np.array([[-127, 128, 0.5, 1.5, 2.5, -0.5, -1.5, 3.5, -126.5, 127.5]], F),  # scale 1, zp 127
    "zp_tie": np.array([[-2.5, 252.5, 0.5, 1.5, 2.5, -1.5]], F),  # 0 - min/scale = 2.5 -> zp 2
    "zeros": np.zeros((2, 3), F),  # max == min: scale 1, zp 0
    "negative": -np.abs(np.random.default_rng(1).standard_normal((3, 7))).astype(F),
    "positive": np.abs(np.random.default_rng(2).standard_normal((3, 7))).astype(F),
    "normal": np.random.default_rng(3).standard_normal((4, 333)).astype(F),
}


@pytest.mark.kernel("onnxruntime.dynamicquantizelinear")
@pytest.mark.parametrize("case", sorted(_DQL))
def test_dynamicquantizelinear(qsession, judge, case: str) -> None:
    """Codes, scale and zero point byte for byte: fp32(max - min)/255, zp = RNE(-min/s), q = RNE(x / s) + zp."""
    x = _DQL[case]
    conv = "act.ort.dynamic_quantize_linear.u8"
    run, value, _ = _call(qsession, judge, "dynamicquantizelinear", (x,), {}, conv, "DynamicQuantizeLinear", x.shape)
    codes, scale, zp = dynamic_quantize_u8(x)
    for what, exp, got in (("codes", codes, value["y"]), ("scale", np.atleast_1d(scale), np.atleast_1d(value["scale"])),
                           ("zero point", np.atleast_1d(zp), np.atleast_1d(value["zero_point"]))):
        res = compare_exact(exp, got, convention=conv, what=f"DynamicQuantizeLinear {what}")
        if not res.ok:
            break
    judge(res, kernel=_kernel("dynamicquantizelinear"), shape=x.shape, observed_isa=run.isa())


def _dq_matmul(qsession, judge, which: str, x, b, sb, zb, bias, **kw) -> None:
    shape = (x.shape[0], x.shape[1], b.shape[1])
    what = f"DynamicQuantizeMatMul fp32 x {b.dtype.name}{' + bias' if bias is not None else ''}"
    run, value, flags = _call(qsession, judge, "dynamicquantizematmul", (x, b, sb, zb, bias), kw, _CONV[which],
                              what, shape)
    codes, sa, za = dynamic_quantize_u8(x)
    model = _pick(which, codes, b, flags, kw)
    pred, exact, bound = float_output(accumulator(codes, za, b, 0 if zb is None else zb, model), sa, sb, bias)
    res = _bit_exact(compare_bounded(exact, bound, value["y"], out_dtype="fp32", predicted=pred,
                                     convention=_CONV[model], what=what))
    _record(judge, "dynamicquantizematmul", res, run, shape, model, value)


@pytest.mark.kernel("onnxruntime.dynamicquantizematmul")
@pytest.mark.parametrize("which", ["host", "exact"])
def test_dynamicquantizematmul_u8s8(qsession, judge, which: str) -> None:
    """Activations whose codes reach 255 (a row of the maximum), halves on the code grid, full-range s8 weights."""
    rng = np.random.default_rng(4)
    for m, k, n in ((1, 256, 16), (4, 65, 9), (3, 257, 33)):
        x = rng.standard_normal((m, k)).astype(F)
        x[0] = x.max()
        b = rng.integers(-128, 128, (k, n), dtype=S8)
        b[:, 0] = 127
        bias = rng.standard_normal(n).astype(F)
        for sb, zb in ((F(0.01), None), (F(0.01), S8(4)), ((rng.random(n) * 0.02).astype(F), rng.integers(-9, 9, n)
                                                            .astype(S8))):
            _dq_matmul(qsession, judge, which, x, b, sb, zb, bias)
            _dq_matmul(qsession, judge, which, x, b, sb, zb, None, b_const=False, threads=2)


@pytest.mark.kernel("onnxruntime.dynamicquantizematmul")
def test_dynamicquantizematmul_exact_paths(qsession, judge) -> None:
    """u8 weights (exact u8 x u8 kernel) and quantizer ties (scale 1: x on halves of the code grid)."""
    x = np.resize(_DQL["halves"], (3, 40)).astype(F)
    rng = np.random.default_rng(6)
    b = rng.integers(0, 256, (40, 7), dtype=U8)
    _dq_matmul(qsession, judge, "exact", x, b, F(0.25), U8(128), rng.standard_normal(7).astype(F))
    _dq_matmul(qsession, judge, "exact", x, rng.integers(-64, 65, (40, 7), dtype=S8), F(0.25), None, None)


# ------------------------------------------------------------------------------- QuantizeLinear

# Power-of-two scales, so x = (j + 1/2) * scale is an exact tie in fp16 and fp32 and x / scale is
# exact; the smallest is the type's least normal (its ties below 1 are subnormal inputs). The last
# scale is not a power of two (0.0999756 is fp16's value next to 0.1).
_QL_SCALES = {"fp32": (2.0 ** -3, 1.0, 2.0 ** 5, 2.0 ** -126, 0.0999756),
              "fp16": (2.0 ** -6, 2.0 ** -2, 1.0, 2.0 ** 3, 2.0 ** -14, 0.0999756)}
_QL_OUT = {"u8_zp0": U8(0), "u8_zp128": U8(128), "s8_zp0": S8(0), "s8_zp-3": S8(-3)}


def _ql_row(scale: float, dt, zp) -> np.ndarray:
    """Every half step from two codes below the range to two above, one ulp either side of each, the
    codes themselves, saturation well past the range, signed zeros, subnormals and random values."""
    info = np.iinfo(np.asarray(zp).dtype)
    s = dt(scale)
    j = np.arange(info.min - int(zp) - 2, info.max - int(zp) + 2, dtype=np.float64)
    halves = ((j + 0.5) * np.float64(s)).astype(dt)
    tiny = np.finfo(dt).smallest_subnormal
    span = float(info.max - info.min)
    extra = np.array([0.0, -0.0, tiny, -tiny, 2 * tiny, 3 * tiny, -3 * tiny, np.finfo(dt).tiny,
                      (span + 5) * s, -(span + 5) * s, 1000 * s, -1000 * s, 3000 * s, -3000 * s], np.float64)
    rng = np.random.default_rng(len(halves))
    noise = rng.standard_normal(64) * 60 * np.float64(s)
    return np.concatenate([halves, np.nextafter(halves, dt(np.inf)), np.nextafter(halves, dt(-np.inf)),
                           (j * np.float64(s)).astype(dt), extra.astype(dt), noise.astype(dt)]).astype(dt)


@pytest.mark.kernel("onnxruntime.quantizelinear")
@pytest.mark.parametrize("layout", ["per_tensor", "axis0", "axis1"])
@pytest.mark.parametrize("out", sorted(_QL_OUT))
@pytest.mark.parametrize("xtype", ["fp32", "fp16"])
def test_quantizelinear(qsession, judge, xtype: str, out: str, layout: str) -> None:
    """QuantizeLinear byte for byte: ties at every half step (round half to even), one ulp either side,
    saturation, signed zeros and subnormal inputs; per tensor (one call per scale) or per axis."""
    dt = np.float32 if xtype == "fp32" else np.float16
    zp = _QL_OUT[out]
    scales = _QL_SCALES[xtype]
    conv = "act.onnx.quantize_linear"
    opset = 19 if dt is np.float16 else 13
    if layout == "per_tensor":
        cases = [(_ql_row(sc, dt, zp)[None, :], dt(sc), zp, None) for sc in scales]
    else:
        x = np.stack([_ql_row(sc, dt, zp) for sc in scales])
        sc = np.array(scales, dt)
        zps = np.full(len(scales), zp, np.asarray(zp).dtype)
        cases = [(x, sc, zps, 0) if layout == "axis0" else (np.ascontiguousarray(x.T), sc, zps, 1)]
    for x, sc, z, axis in cases:
        what = f"QuantizeLinear {xtype} -> {out} {layout} scale={np.atleast_1d(sc)[0]!r}"
        kw = {"opset": opset} if axis is None else {"axis": axis, "opset": opset}
        run, value, _ = _call(qsession, judge, "quantizelinear", (x, sc, z), kw, conv, what, x.shape)
        res = compare_exact(quantize_linear(x, sc, z, axis=axis), value["y"], convention=conv, what=what)
        if not res.ok:
            break
    judge(res, kernel=_kernel("quantizelinear"), shape=x.shape, observed_isa=run.isa(), layout=layout)
