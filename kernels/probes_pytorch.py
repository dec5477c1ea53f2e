"""Numerics probes of the PyTorch and torchao CPU kernels (kernels/probes_numerics.py).

Weight-only kernels are driven with every weight equal (w = q * s with one code and one scale),
so each output is the plain sum of the activations: x carries the terms. Integer kernels are
driven with codes whose products cross 2^24 (fp32 absorbs) and int16 (vpmaddubsw saturates),
and those with an fp32 epilogue with scales whose two products round differently by order.
"""
from __future__ import annotations

import numpy as np

from kernels.fingerprints import Case, ProbeSet
from kernels.layouts import dense
from kernels.probes_numerics import (DTYPES, Dot, IntDot, ScaledIntDot, epilogue_case, int_absorption,
                                     int_accumulator_case, requant_pairs_case, requant_ties_case,
                                     scaled_accumulator_case, scaled_subnormal_cases, standard_cases)

__all__ = ["PROBES"]

F = np.float32
_N = 16
_EITHER = ("acc int32", "acc int16 pairs")  # VNNI/AMX hosts sum int32; AVX2 hosts pair through int16


def _int8pack_dot(q: int = 1, s: float = 1.0) -> Dot:
    """x (M, 64) in the path's dtype @ int8 w = q everywhere, per-channel scales s in x's dtype."""
    def encode(x: np.ndarray, path: str) -> tuple[tuple, dict]:
        dt = DTYPES[path]
        return (x.astype(dt), np.full((_N, x.shape[1]), q, np.int8), np.full(_N, s, F).astype(dt)), {}

    return Dot("kernels.pytorch.weight_int8pack_mm", "int8pack_mm", encode, k=64, n=_N,
               paths=("fp32", "fp16", "bf16"), weight=q * s)


def _int8pack_cases() -> list[Case]:
    return standard_cases(_int8pack_dot(), _int8pack_dot(q=2), _int8pack_dot(s=2.0 ** -30))


def _int4pack_dot(q: int = 9, s: float = 1.0, group: int = 32) -> Dot:
    """x (M, 64) @ (q - 8) * s + 0 everywhere (tinygemm layout: scales_and_zeros [K/g, N, 2] in x's dtype)."""
    def encode(x: np.ndarray, path: str) -> tuple[tuple, dict]:
        dt, k = DTYPES[path], x.shape[1]
        sz = np.zeros((k // group, _N, 2), F)
        sz[..., 0] = s
        return (x.astype(dt), np.full((_N, k), q, np.int32), sz.astype(dt), group), {}

    return Dot("kernels.pytorch.weight_int4pack_mm", "int4pack_mm", encode, k=64, n=_N, output="y",
               paths=("fp32", "fp16", "bf16"), weight=(q - 8) * s)


def _int4pack_cases() -> list[Case]:
    return standard_cases(_int4pack_dot(), _int4pack_dot(q=10), _int4pack_dot(s=2.0 ** -30))


def _int_mm_dot(module: str, func: str) -> IntDot:
    """int8 a (M, K) @ int8 b (K, N) -> int32 (torch._int_mm's argument order)."""
    return IntDot(module, func, lambda a, w: ((a.astype(np.int8), np.ascontiguousarray(w.T.astype(np.int8))), {}),
                  lambda acc: np.asarray(acc, np.int64).astype(np.int32))


def _int_mm_cases(module: str, func: str, m: int = 32) -> list[Case]:
    """Absorption past 2^24: 1024 products (-128)(-128) = 2^14 and 64 ones (rows padded to m, as
    torch._int_mm wants M > 16 on some paths)."""
    a, w = int_absorption((-128, -128), 1024, 64, _N)
    a = np.concatenate([a, np.zeros((m - len(a), a.shape[1]), np.int64)])
    return [int_accumulator_case(_int_mm_dot(module, func), a, w)]


def _qlinear_dot() -> ScaledIntDot:
    """u8 x (zero point 0, per-tensor scale sa[0]) @ int8 w (per-channel sb), fp32 out, no bias."""
    def encode(a, w, sa, sb):
        return (a.astype(np.uint8), float(sa[0]), 0, w.astype(np.int8), sb, None), {}

    return ScaledIntDot("kernels.pytorch.qlinear_pointwise", "qlinear_pointwise", encode, unsigned=True,
                        expect_acc=_EITHER)


def _qlinear_cases() -> list[Case]:
    dot = _qlinear_dot()
    return [scaled_accumulator_case(dot), epilogue_case(dot), *scaled_subnormal_cases(dot)]


def _linear_dynamic_numerics(engine: str):
    """fp32 x with integer values in [0, 255] (qparams: scale 1, zero point 0, so the codes are x) @
    int8 w with per-tensor scale 1: the integer sum shows through the epilogue unchanged."""
    def encode(a, w, sa, sb):
        return (engine, a.astype(F), w.astype(np.int8), F(1), None), {"reduce_range": False}

    def build() -> list[Case]:
        dot = ScaledIntDot("kernels.pytorch.linear_dynamic", "linear_dynamic", encode, unsigned=True,
                           expect_acc=_EITHER)
        return [scaled_accumulator_case(dot)]
    return build


def _qlinear_static(a: np.ndarray, w: np.ndarray, y_scale: float, y_zp: int) -> tuple[tuple, dict]:
    """quantized.linear's view call: u8 a and s8 w (N, K) dense, scales 1, zero points 0."""
    n = w.shape[0]
    return (dense(a.astype(np.uint8)), 1.0, 0, dense(w.astype(np.int8)), np.ones(n, F), np.zeros(n, np.int8),
            float(y_scale), int(y_zp)), {}


def _qlinear_static_cases(engine: str):
    def build() -> list[Case]:
        mod, func = "kernels.pytorch.qlinear_static", f"{engine}_view"
        return [requant_pairs_case(mod, func, _qlinear_static, None), requant_ties_case(mod, func, _qlinear_static, None)]
    return build


def _int_scaled_dot() -> ScaledIntDot:
    """torchao int_scaled_matmul: int8 a @ b (K, N), times fp32 row scales (M, 1); no weight scale."""
    def encode(a, w, sa, sb):
        return (a.astype(np.int8), np.ascontiguousarray(w.T.astype(np.int8)), sa.reshape(-1, 1)), {}

    return ScaledIntDot("kernels.torchao.ao", "int_scaled_matmul", encode, per_row=True, sb_free=False)


def _int_scaled_cases() -> list[Case]:
    dot = _int_scaled_dot()
    return [scaled_accumulator_case(dot), *scaled_subnormal_cases(dot)]


_ACC = "accumulator fp32 vs fp16/bf16 partials (each x dtype), fp32 summation order, fp16/bf16 output cast ties, FTZ/DAZ"
_INT = "integer accumulator: exact int32 vs fp32 partial sums vs int16 saturating pairs"
PROBES = (
    ProbeSet("torch.weight_int8pack_mm", _ACC, "kernels.pytorch.weight_int8pack_mm", _int8pack_cases),
    ProbeSet("torch.weight_int4pack_mm", _ACC, "kernels.pytorch.weight_int4pack_mm", _int4pack_cases),
    ProbeSet("torch.int_mm", _INT, "kernels.pytorch.int_mm", lambda: _int_mm_cases("kernels.pytorch.int_mm", "int_mm")),
    ProbeSet("torchao.int_matmul", _INT, "kernels.torchao.ao", lambda: _int_mm_cases("kernels.torchao.ao", "int_matmul")),
    ProbeSet("torchao.int_scaled_matmul", f"{_INT}; DAZ on the row scale", "kernels.torchao.ao", _int_scaled_cases),
    ProbeSet("torch.onednn.qlinear_pointwise", f"{_INT}; epilogue acc*(sa*sb) vs (acc*sa)*sb; FTZ/DAZ on the scales",
             "kernels.pytorch.qlinear_pointwise", _qlinear_cases),
    *(ProbeSet(f"torch.quantized.linear_dynamic.{e}", _INT, "kernels.pytorch.linear_dynamic",
               _linear_dynamic_numerics(e), (e,)) for e in ("fbgemm", "x86", "onednn", "qnnpack")),
    *(ProbeSet(f"torch.quantized.linear.{e}", "int32 vs int16 saturating pairs; requantization ties RNE vs half "
               "away vs toward zero", "kernels.pytorch.qlinear_static", _qlinear_static_cases(e), (e,))
      for e in ("fbgemm", "x86")),
)
