"""Numerics probes of the Triton kernels (kernels/probes_numerics.py), run where the adapters run:
natively on a CUDA device, else in the Triton interpreter (kernels/triton/runtime.py), in a worker
of their own (ProbeSet.triton).

- w4a16 (q4_0 and ESIMD layouts): every weight equal, x carrying the terms: accumulator per x
  dtype, fp32 order, output casts, subnormals.
- w8a8: the int32 accumulator, each named epilogue order, the two per-token activation roundings
  (ties at scale 1), the fp16/bf16 output casts (odd accumulators past 2048 / 256 are ties), FTZ/DAZ
  on the scales.
- DA8W4: the fp32 sum over K blocks (absorption through the weight group scales), its order, the
  asymmetric activation quantizer's zero-point and code ties.
- torchao's int_matmul / int_scaled_matmul: the integer accumulator, DAZ on the row scale.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from kernels.fingerprints import Candidate, Case, ProbeSet
from kernels.probes_numerics import (CAST_MODES, DTYPES, ORDERS, Dot, IntDot, ScaledIntDot, absorption_terms,
                                     accumulator_candidates, cast_terms, epilogue_case, int_absorption,
                                     int_accumulator_case,
                                     order_terms, round_mode, scaled_accumulator_case, scaled_subnormal_cases,
                                     standard_cases, sum_in)
from oracle import conventions
from oracle.ggml.fields import f16_bytes

__all__ = ["PROBES"]

F = np.float32
_W4 = "kernels.triton.w4a16"
_W8 = "kernels.triton.w8a8"
_DA = "kernels.triton.da8w4"
_AO = "kernels.triton.torchao_intmm"
_N = 16


# -- w4a16 ---------------------------------------------------------------------------------------------------


def _w4a16_dot(layout: str, nib: int = 9, d: float = 1.0) -> Dot:
    """x (M, 128) @ int4 weights all (nib - 8) * d, in the layout's bytes (q4_0 blocks or ESIMD rows)."""
    def encode(x: np.ndarray, path: str) -> tuple[tuple, dict]:
        k = x.shape[1]
        byte = np.uint8(nib | nib << 4)
        if layout == "q4_0":
            block = np.concatenate([f16_bytes(np.array([d], F))[0], np.full(16, byte, np.uint8)])
            weight, scales = np.tile(block, (_N, k // 32)), None
        else:
            weight, scales = np.full((_N, k // 2), byte, np.uint8), np.full((_N, -(-k // 128)), d, np.float16)
        return (x.astype(DTYPES[path]), weight, scales), dict(layout=layout, k=k)

    return Dot(_W4, "gemv", encode, k=128, n=_N, paths=("fp32", "fp16", "bf16"), weight=(nib - 8) * d)


def _w4a16_cases(layout: str):
    return lambda: standard_cases(_w4a16_dot(layout), _w4a16_dot(layout, nib=10), _w4a16_dot(layout, d=2.0 ** -14))


# -- w8a8 -----------------------------------------------------------------------------------------------------


def _w8a8_int_cases() -> list[Case]:
    a, w = int_absorption((-128, -128), 1024, 64, _N)
    dot = IntDot(_W8, "int_mm", lambda a, w: ((a.astype(np.int8), w.astype(np.int8)), {}),
                 lambda acc: np.asarray(acc, np.int64).astype(np.int32))
    return [int_accumulator_case(dot, a, w)]


def _w8a8_gemm_dot(order: str) -> ScaledIntDot:
    """gemm(a, sa (M,), w, sb (N,)) with the named epilogue, fp32 out."""
    def encode(a, w, sa, sb):
        return (a.astype(np.int8), sa, w.astype(np.int8), sb), dict(out="fp32", order=order)

    return ScaledIntDot(_W8, "gemm", encode, per_row=True, orders=(order,))


def _w8a8_cast_case(out: str) -> Case:
    """Accumulators 2^11 + j (fp16) or 2^8 + j (bf16), j odd: ties of the cast of float(acc) * 1 * 1."""
    base = 2 ** 11 if out == "fp16" else 2 ** 8
    values = (base + np.array([1, 3, 5, 7] * 2)) * np.repeat([1, -1], 4)
    k = 32
    a = np.zeros((8, k), np.int64)
    for i, v in enumerate(values):
        q, r = divmod(abs(int(v)), 127)
        a[i, :q], a[i, q] = 127 * np.sign(v), r * np.sign(v)
    w = np.ones((_N, k), np.int64)
    exact = np.repeat((a.sum(axis=1).astype(np.float64))[:, None], _N, axis=1)
    cands = tuple(Candidate(m, round_mode(exact, out, m).astype(DTYPES[out]), f"float(acc) cast to {out} {m}", False)
                  for m in CAST_MODES)
    args = (a.astype(np.int8), np.ones(8, F), w.astype(np.int8), np.ones(_N, F))
    return Case(f"{out} out, ties", _W8, "gemm", args, cands, kwargs=dict(out=out, order="(acc*sa)*sb"),
                selects=("RNE",), trait=f"output cast to {out}")


def _w8a8_act_cases() -> list[Case]:
    """Per-token quantization with amax 127 (scale 1): the other codes are exact ties j + 1/2."""
    rng = np.random.default_rng(3)
    x = (rng.integers(-127, 127, (4, 64)) + 0.5).astype(F)
    x[:, 0] = 127 * rng.choice([-1, 1], 4)
    names = ("act.sglang.per_token_int8.triton", "act.vllm.per_token_int8.cuda")
    cands = tuple(Candidate(n, conventions.get(n).quantize(x).codes.astype(np.int8), conventions.get(n).summary)
                  for n in names)
    return [Case(f"ties at scale 1, {n}", _W8, "quantize_act", (x, n), cands, output=0, selects=(n,)) for n in names]


def _w8a8_cases() -> list[Case]:
    cases = _w8a8_int_cases() + _w8a8_act_cases()
    for order in ("(acc*sa)*sb", "acc*(sa*sb)"):
        cases.append(dataclasses.replace(epilogue_case(_w8a8_gemm_dot(order)), name=f"epilogue {order} asked",
                                         trait=f"epilogue, {order} asked"))
    cases += [_w8a8_cast_case(o) for o in ("fp16", "bf16")]
    return cases + scaled_subnormal_cases(_w8a8_gemm_dot("(acc*sa)*sb"))


# -- DA8W4 ------------------------------------------------------------------------------------------------------


def _da8w4_args(sb_rows: np.ndarray, cpu: bool, group: int = 32, out: str = "fp32") -> tuple[tuple, dict]:
    """One sym int8 activation row with code 1 at each group's first k (scale 1), weights w - zp = 1
    (codes 9, zero points 8) and group scales sb[n % rows]: y[0, n] = sum over groups of sb. The
    Triton kernel takes packed nibbles, torchao's CPU op one code per byte."""
    groups = sb_rows.shape[1]
    k = groups * group
    a = np.zeros((1, k), np.int8)
    a[0, ::group] = 1
    sw, zw = np.resize(sb_rows, (_N, groups)).astype(F), np.full((_N, groups), 8, np.int32)
    if cpu:
        return (a, np.ones(1, F), np.zeros(1, np.int32), np.full((_N, k), 9, np.uint8), sw, zw.astype(np.int8), None,
                out), {}
    return (a, np.ones(1, F), None, np.full((_N, k // 2), 0x99, np.uint8), sw, zw), dict(group_size=group, out=out)


def _da8w4_shape(v: np.ndarray, path: str) -> np.ndarray:
    """(rows,) block-sum predictions -> the (1, N) output, column n holding row n % rows."""
    return np.resize(np.asarray(v, np.float64), (1, _N)).astype(DTYPES[path])


def da8w4_numerics(module: str, func: str, cpu: bool) -> list[Case]:
    """The fp32 sum over K blocks: absorption through the group scales, its order (oracle.gemm.da8w4
    adds (float(acc) * sa) * sb block by block from the bias: 'sequential'), and the fp16/bf16 casts."""
    t = absorption_terms(64)
    cands, ties = accumulator_candidates(t, "fp32", _da8w4_shape, grids=True)
    args, kw = _da8w4_args(t, cpu)
    out = "y" if cpu else None
    cases = [Case("absorption over K blocks", module, func, args, cands, kw, out, ("acc fp32",), "accumulator", ties)]
    o = order_terms(64, rows=_N)
    ocands = tuple(Candidate(n, _da8w4_shape(sum_in(o, "fp32", n), "fp32"), f"fp32 block sums, {n}", False)
                   for n in ORDERS)
    args, kw = _da8w4_args(o, cpu)
    cases.append(Case("order over K blocks", module, func, args, ocands, kw, out, ("sequential",), "order"))
    for dt in ("fp16", "bf16"):
        t = cast_terms(2, dt)
        exact = t.sum(axis=-1)
        ccands = tuple(Candidate(m, _da8w4_shape(round_mode(exact, dt, m), dt), f"fp32 sum cast to {dt} {m}", False)
                       for m in CAST_MODES)
        args, kw = _da8w4_args(t, cpu, out=dt)
        cases.append(Case(f"{dt} out, ties", module, func, args, ccands, kw, out, ("RNE",), f"output cast to {dt}"))
    return cases


def _da8w4_act_case() -> Case:
    """Asymmetric activations on [-2.5, 252.5] (scale 1, -min/s = 2.5) with half-integer values: the
    zero point and codes are ties; RNE (the convention) vs every rounding half away."""
    conv = conventions.get("act.torchao.da8w4.asym.fp32")
    away = dataclasses.replace(conv, name=f"{conv.name}~half_away", rounding="half_away")
    x = np.array([[-2.5, 252.5, 0.5, 1.5, 2.5, 7.5, -1.5, 100.5]], F)
    cands = (Candidate(conv.name, conv.quantize(x).codes.astype(np.uint8), conv.summary),
             Candidate(away.name, away.quantize(x).codes.astype(np.uint8), "zero point and codes rounded half away",
                       False))
    return Case("zero-point and code ties", _DA, "quantize_act", (x, conv.name), cands, output="codes",
                selects=(conv.name,))


# -- torchao's Triton int matmuls ---------------------------------------------------------------------------------


def _ao_int_cases() -> list[Case]:
    a, w = int_absorption((-128, -128), 1024, 64, _N)
    dot = IntDot(_AO, "int_matmul", lambda a, w: ((a.astype(np.int8), w.astype(np.int8)), {}),
                 lambda acc: np.asarray(acc, np.int64).astype(np.int32))
    return [int_accumulator_case(dot, a, w)]


def _ao_scaled_cases() -> list[Case]:
    dot = ScaledIntDot(_AO, "int_scaled_matmul",
                       lambda a, w, sa, sb: ((a.astype(np.int8), w.astype(np.int8), sa), {}),
                       per_row=True, sb_free=False)
    return [scaled_accumulator_case(dot), *scaled_subnormal_cases(dot)]


_ACC = "accumulator fp32 vs fp16/bf16 partials (each x dtype), fp32 order, fp16/bf16 output cast ties, FTZ/DAZ"
_INT = "integer accumulator: exact int32 vs fp32 partial sums vs int16 saturating pairs"
PROBES = (
    ProbeSet("triton.w4a16.q4_0", _ACC, _W4, _w4a16_cases("q4_0"), triton=True),
    ProbeSet("triton.w4a16.esimd", _ACC, _W4, _w4a16_cases("esimd"), triton=True),
    ProbeSet("triton.w8a8", f"{_INT}; activation ties half away (sglang) vs RNE (vLLM); epilogue order as asked; "
             "fp16/bf16 output cast ties; FTZ/DAZ on the scales", _W8, _w8a8_cases, triton=True),
    ProbeSet("triton.da8w4", "fp32 vs fp16/bf16 sums over K blocks and their order; asymmetric activation zero-point "
             "and code ties", _DA, lambda: da8w4_numerics(_DA, "linear", cpu=False) + [_da8w4_act_case()],
             triton=True),
    ProbeSet("torchao.da8w4_linear_cpu", "fp32 vs fp16/bf16 sums over K blocks and their order (the Triton DA8W4's "
             "oracle model)", "kernels.torchao.ao", lambda: da8w4_numerics("kernels.torchao.ao", "da8w4_linear_cpu",
                                                                          cpu=True), check="available_da8w4"),
    ProbeSet("triton.torchao.int_matmul", _INT, _AO, _ao_int_cases, triton=True),
    ProbeSet("triton.torchao.int_scaled_matmul", f"{_INT}; DAZ on the row scale", _AO, _ao_scaled_cases, triton=True),
)
