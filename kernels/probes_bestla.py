"""Numerics probes of BesTLA through auto-round-lib (kernels/probes_numerics.py): woqgemm's fp32 sums
(every weight (q - 0) * s equal, x carrying the terms) and igemm_s8s8s32's integer accumulator.
woqgemm's bf16/fp16 activations abort the process (a known defect), so only fp32 is probed.
"""
from __future__ import annotations

import numpy as np

from kernels.fingerprints import Case, ProbeSet
from kernels.probes_numerics import Dot, IntDot, int_absorption, int_accumulator_case, standard_cases

__all__ = ["PROBES"]

_MOD = "kernels.bestla.ark"


def _woqgemm_dot(q: int = 1, s: float = 1.0, group: int = 32) -> Dot:
    """fp32 x (M, 64) @ int4 sym codes q, fp32 group scales s (compute fp32): every weight q * s."""
    def encode(x: np.ndarray, path: str) -> tuple[tuple, dict]:
        n, k = 16, x.shape[1]
        codes, scales = np.full((n, k), q, np.int8), np.full((n, k // group), s, np.float32)
        return (x.astype(np.float32), codes, scales, None, None), dict(bits=4, group_size=group)

    return Dot(_MOD, "woqgemm", encode, k=64, n=16, weight=q * s)


def _igemm_cases() -> list[Case]:
    a, w = int_absorption((-128, -128), 1024, 64, 16)
    dot = IntDot(_MOD, "igemm_s8s8s32", lambda a, w: ((a.astype(np.int8), w.astype(np.int8)), {}),
                 lambda acc: np.asarray(acc, np.int64).astype(np.int32))
    return [int_accumulator_case(dot, a, w)]


PROBES = (
    ProbeSet("bestla.woqgemm", "accumulator fp32 vs fp16/bf16 partials, fp32 summation order, FTZ/DAZ (fp32 "
             "activations, compute fp32)", _MOD, lambda: standard_cases(_woqgemm_dot(), _woqgemm_dot(q=2),
                                                                        _woqgemm_dot(s=2.0 ** -30))),
    ProbeSet("bestla.igemm_s8s8s32", "integer accumulator: exact int32 vs fp32 partial sums vs int16 saturating pairs",
             _MOD, _igemm_cases),
)
