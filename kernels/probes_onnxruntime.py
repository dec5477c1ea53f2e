"""Numerics probes of the ONNX Runtime CPU kernels (kernels/probes_numerics.py): the MLAS integer
accumulators (exact int32 or int16 saturating pairs), the fp32 epilogue, the rounding of
requantized outputs and of QuantizeLinear / DynamicQuantizeLinear codes and zero points, their
subnormals, and MatMulNBits' float sums.
"""
from __future__ import annotations

import numpy as np

from kernels.fingerprints import Candidate, Case, ProbeSet
from kernels.probes_numerics import (X_SUBNORMAL, Dot, IntDot, ScaledIntDot, epilogue_case, int_absorption,
                                     int_accumulator_case, requant_pairs_case, requant_ties_case,
                                     scaled_accumulator_case, scaled_subnormal_cases, standard_cases,
                                     subnormal_predictions)
from oracle import conventions
from oracle.conventions import QuantizedWeight
from oracle.gemm.mlas_int8 import dynamic_quantize_u8, quantize_linear
from oracle.rounding import half_away, rne, trunc

__all__ = ["PROBES"]

F = np.float32
_MOD = "kernels.onnxruntime.int8_gemm"
_EITHER = ("acc int32", "acc int16 pairs")  # mlas.int8.exact (VNNI/AMX) or mlas.int8.u8s8_int16_pairs (AVX2)
ROUNDINGS = {"RNE": rne, "half away": half_away, "toward zero": trunc}


def _kn(w: np.ndarray) -> np.ndarray:
    """Weights (N, K) as the (K, N) int8 B the operators take."""
    return np.ascontiguousarray(w.T.astype(np.int8))


# -- integer accumulators --------------------------------------------------------------------------------


def _matmulinteger_cases() -> list[Case]:
    a, w = int_absorption((255, 127), 520, 64, 16)
    dot = IntDot(_MOD, "matmulinteger", lambda a, w: ((a.astype(np.uint8), _kn(w)), {}),
                 lambda acc: np.asarray(acc, np.int64).astype(np.int32), output="y", expect_acc=_EITHER)
    return [int_accumulator_case(dot, a, w)]


def _dq_matmul_dot() -> ScaledIntDot:
    """fp32 A holding integers in [0, 255] (DynamicQuantizeLinear: scale 1, zero point 0, codes = A)."""
    return ScaledIntDot(_MOD, "dynamicquantizematmul", lambda a, w, sa, sb: ((a.astype(F), _kn(w), F(1)), {}),
                        output="y", unsigned=True, expect_acc=_EITHER)


def _mitf_dot() -> ScaledIntDot:
    """MatMulIntegerToFloat: u8 A (scalar a_scale), s8 B (per-column b_scale), no zero points or bias."""
    def encode(a, w, sa, sb):
        return (a.astype(np.uint8), _kn(w), F(sa[0]), sb), {}

    return ScaledIntDot(_MOD, "matmulintegertofloat", encode, output="y", unsigned=True, expect_acc=_EITHER,
                        orders=("acc*(sa*sb)",))


def _mitf_cases() -> list[Case]:
    dot = _mitf_dot()
    return [scaled_accumulator_case(dot), epilogue_case(dot), *scaled_subnormal_cases(dot)]


# -- QLinearMatMul ---------------------------------------------------------------------------------------------


def _qlinear(a: np.ndarray, w: np.ndarray, y_scale: float, y_zp: int) -> tuple[tuple, dict]:
    return (a.astype(np.uint8), F(1), np.uint8(0), _kn(w), F(1), np.int8(0), F(y_scale), np.uint8(y_zp)), {}


# -- DynamicQuantizeLinear -------------------------------------------------------------------------------------


def _dql(x: np.ndarray, zp_round, code_round) -> tuple[np.ndarray, F, np.uint8]:
    """DynamicQuantizeLinear's steps (oracle.gemm.mlas_int8.dynamic_quantize_u8) with the two roundings
    as parameters: s = fp32(max - min)/255, zp = round(0 - min/s), q = round(x / s) + zp."""
    lo, hi = F(min(F(x.min()), F(0))), F(max(F(x.max()), F(0)))
    s = F(1) if hi == lo else F(F(hi - lo) / F(255))
    zp = int(zp_round(np.clip(F(F(0) - F(lo / s)), F(0), F(255))))
    q = np.clip((x / s).astype(F), F(-zp), F(255 - zp))
    return (code_round(q).astype(np.int64) + zp).astype(np.uint8), s, np.uint8(zp)


def _dql_round_case(name: str, x: np.ndarray, key: str, trait: str) -> Case:
    ref = dynamic_quantize_u8(x)
    if any(np.asarray(a).tobytes() != np.asarray(b).tobytes() for a, b in zip(_dql(x, rne, rne), ref)):
        raise AssertionError("the parametrized DynamicQuantizeLinear must equal the oracle's at RNE")
    pick = {"y": 0, "zero_point": 2}[key]
    cands = tuple(Candidate(m, np.asarray(_dql(x, f, f)[pick]), f"zero point and codes rounded {m}", False)
                  for m, f in ROUNDINGS.items())
    ties = (("RNE", "toward zero", "2.5 truncates to RNE's 2"),) if key == "zero_point" else ()
    return Case(name, _MOD, "dynamicquantizelinear", (x,), cands, output=key, selects=("RNE",), trait=trait,
                ties=ties)


def _dql_ftz_case() -> Case:
    """max 255 * 2^-130 (normal), min 0: the scale 2^-130 is subnormal (FTZ writes 0)."""
    x = np.array([[0, 255 * 2.0 ** -130, 17 * 2.0 ** -130]], F)
    s = np.asarray(F(F(x.max()) / F(255)))
    preds = subnormal_predictions(s.astype(np.float64), "products")
    cands = tuple(Candidate(m, np.asarray(v, F), m, False) for m, v in preds.items())
    ties = (("IEEE", "DAZ", "only FTZ shows on normal inputs with a subnormal scale"), ("FTZ", "FTZ+DAZ", "as above"))
    return Case("subnormal scale", _MOD, "dynamicquantizelinear", (x,), cands, output="scale", trait="subnormals",
                ties=ties)


def _dql_cases() -> list[Case]:
    halves = np.array([[-127, 128, 0.5, 1.5, 2.5, -0.5, -1.5, 3.5, -126.5, 127.5]], F)  # scale 1, zp 127
    zp_tie = np.array([[-2.5, 252.5, 0, 7]], F)  # scale 1, -min/s = 2.5
    return [_dql_round_case("code ties (scale 1)", halves, "y", "code rounding"),
            _dql_round_case("zero-point tie 2.5", zp_tie, "zero_point", "zero-point rounding"), _dql_ftz_case()]


# -- QuantizeLinear -------------------------------------------------------------------------------------------


def _ql_variant(x: np.ndarray, s: float, zp: int, round_fn, inverse: bool = False) -> np.ndarray:
    """QuantizeLinear u8 with the rounding (and x / s or x * (1/s)) as parameters."""
    q = (x * F(F(1) / F(s))).astype(F) if inverse else (x / F(s)).astype(F)
    q = np.clip(q, F(-zp), F(255 - zp))
    return (round_fn(q).astype(np.int64) + zp).astype(np.uint8)


def _ql_case(name: str, x: np.ndarray, s: float, zp: int, trait: str, hyps: dict, expect: str, ties=()) -> Case:
    ref = quantize_linear(x, F(s), np.uint8(zp))
    if ref.tobytes() != hyps[expect].tobytes():
        raise AssertionError(f"QuantizeLinear [{name}]: the expected hypothesis must equal the oracle's prediction")
    cands = tuple(Candidate(m, v, m, False) for m, v in hyps.items())
    return Case(name, _MOD, "quantizelinear", (x, F(s), np.uint8(zp)), cands, output="y", selects=(expect,),
                trait=trait, ties=tuple(ties))


def _ql_cases() -> list[Case]:
    halves = (np.arange(-40, 40) + 0.5).astype(F).reshape(1, -1)
    ties = {m: _ql_variant(halves, 1.0, 128, f) for m, f in ROUNDINGS.items()}
    s = 0.1
    grid = np.array([np.nextafter(F((j + 0.5) * np.float64(F(s))), F(d), dtype=F) for j in range(-100, 100)
                     for d in (-np.inf, np.inf)], F)
    split = grid[_ql_variant(grid, s, 128, rne) != _ql_variant(grid, s, 128, rne, inverse=True)][:64].reshape(1, -1)
    inv = {"x / s": _ql_variant(split, s, 128, rne), "x * (1/s)": _ql_variant(split, s, 128, rne, inverse=True)}
    sub = (X_SUBNORMAL * np.arange(1, 5) / 3).astype(F).reshape(1, -1)  # 0.25 .. 1 x 2^-126: codes 0, 0, 1, 1
    daz = subnormal_predictions(_ql_variant(sub, 2.0 ** -126, 0, rne).astype(np.float64), "inputs")
    daz = {m: v.astype(np.uint8) for m, v in daz.items()}
    sub_ties = (("IEEE", "FTZ", "only DAZ shows on subnormal inputs"), ("DAZ", "FTZ+DAZ", "as above"))
    return [_ql_case("ties at scale 1", halves, 1.0, 128, "code rounding", ties, "RNE"),
            _ql_case("x / 0.1 vs x * fp32(1/0.1)", split, s, 128, "scale application", inv, "x / s"),
            _ql_case("subnormal x, scale 2^-126", sub, 2.0 ** -126, 0, "subnormals", daz, "IEEE", sub_ties)]


# -- MatMulNBits fp32 sums ----------------------------------------------------------------------------------------


def _matmulnbits_dot(q: int = 9, s: float = 1.0, block: int = 32) -> Dot:
    """fp32/fp16 A (accuracy_level 0) @ int4 weights all (q - 8) * s (the sym convention's packing)."""
    conv = conventions.get("ort.matmulnbits.int4.sym")

    def encode(x: np.ndarray, path: str) -> tuple[tuple, dict]:
        k, n = x.shape[1], 16
        scales = np.full((n, k // block), s, F)
        weight = conv.pack(QuantizedWeight(np.full((n, k), q, np.int32), scales, None, conv.name))["weight"]
        kw = dict(k=k, n=n, bits=4, block=block, accuracy_level=0, dtype=path)
        return (x.astype(np.float16 if path == "fp16" else F), weight, scales, None), kw

    return Dot("kernels.onnxruntime.matmulnbits", "matmulnbits", encode, k=64, n=16, paths=("fp32", "fp16"),
               weight=(q - 8) * s)


def _matmulnbits_cases() -> list[Case]:
    return standard_cases(_matmulnbits_dot(), _matmulnbits_dot(q=10), _matmulnbits_dot(s=2.0 ** -30))


_INT = "integer accumulator: exact int32 vs fp32 partial sums vs int16 saturating pairs"
PROBES = (
    ProbeSet("onnxruntime.matmulinteger", _INT, _MOD, _matmulinteger_cases),
    ProbeSet("onnxruntime.dynamicquantizematmul", _INT, _MOD, lambda: [scaled_accumulator_case(_dq_matmul_dot())]),
    ProbeSet("onnxruntime.matmulintegertofloat", f"{_INT}; epilogue fp32(acc) * fp32(sa * sb) vs (acc * sa) * sb; "
             "FTZ/DAZ on the scales", _MOD, _mitf_cases),
    ProbeSet("onnxruntime.qlinearmatmul", "int32 vs int16 saturating pairs; requantization ties RNE vs half away vs "
             "toward zero", _MOD, lambda: [requant_pairs_case(_MOD, "qlinearmatmul", _qlinear, "y"),
                                       requant_ties_case(_MOD, "qlinearmatmul", _qlinear, "y")]),
    ProbeSet("onnxruntime.dynamicquantizelinear", "code and zero-point ties RNE vs half away vs toward zero; FTZ on a "
             "subnormal scale", _MOD, _dql_cases),
    ProbeSet("onnxruntime.quantizelinear", "code ties RNE vs half away vs toward zero; x / s vs x * (1/s); DAZ on "
             "subnormal x", _MOD, _ql_cases),
    ProbeSet("onnxruntime.matmulnbits", "accumulator fp32 vs fp16/bf16 partials (fp32 and fp16 A, accuracy_level 0), "
             "fp32 order, fp16 output cast ties, FTZ/DAZ", "kernels.onnxruntime.matmulnbits", _matmulnbits_cases),
)
