"""Numerics fingerprints (kernels/probes_numerics.py): every registered kernel has a probe set or a
stated reason, numpy stand-ins whose arithmetic is known read as that arithmetic (an fp16- or
bf16-accumulating GEMM is not taken for fp32, lanes read as lanes, FTZ as FTZ), and the helpers that
predict the hypotheses round exactly.

Pure numpy: the stand-ins answer the probe calls in this process through a worker-shaped object.
"""
from __future__ import annotations

from collections.abc import Callable

import ml_dtypes
import numpy as np
import pytest

from kernels.fingerprints import NOT_PROBED, probe_sets
from kernels.probes_numerics import order_terms, round_mode, round_to, sum_in
from kernels.registry import kernels
from kernels.worker import Outcome, is_load_check
from reports.fingerprint import fingerprint, render

F = np.float32
_HALF = {"fp32": np.float32, "fp16": np.float16, "bf16": ml_dtypes.bfloat16}


class StandIn:
    """Answers a fingerprint's worker calls with numpy functions (by adapter function name)."""

    def __init__(self, funcs: dict[str, Callable]):
        self.funcs = funcs

    def call(self, module: str, func: str, *args, **kwargs) -> Outcome:
        if is_load_check(func):
            return Outcome("ok", {"ok": True, "reason": "", "version": "numpy stand-in"})
        return Outcome("ok", self.funcs[func](*args, **kwargs))


def _flush(v: np.ndarray) -> np.ndarray:
    return np.where(np.abs(v) < np.finfo(F).tiny, F(0), v).astype(F)


def int8pack_stand_in(acc: str = "fp32", lanes: int = 1, ftz: bool = False, daz: bool = False) -> Callable:
    """torch._weight_int8pack_mm in numpy: w = fp32(q) * s, products in fp32, partial sums held in
    `acc` (k into lane k % lanes, lanes added by halving), the result cast to x's dtype; ftz flushes
    subnormal products, daz subnormal x."""
    def run(x, w, scales, x_offset_bytes=0):
        xf = np.asarray(x).astype(F)
        xf = _flush(xf) if daz else xf
        wf = (w.astype(F) * np.asarray(scales).astype(F)[:, None]).astype(F)
        part = np.zeros((lanes, x.shape[0], w.shape[0]), _HALF[acc])
        for k in range(x.shape[1]):
            p = (xf[:, k:k + 1] * wf[None, :, k]).astype(F)
            p = _flush(p) if ftz else p
            part[k % lanes] = (part[k % lanes].astype(F) + p).astype(_HALF[acc])
        while part.shape[0] > 1:
            h = part.shape[0] // 2
            part = (part[:h].astype(F) + part[h:].astype(F)).astype(_HALF[acc])
        return part[0].astype(F).astype(np.asarray(x).dtype)
    return run


def int_mm_pairs(a: np.ndarray, b_kn: np.ndarray) -> np.ndarray:
    """torch._int_mm as vpmaddubsw would: adjacent k pairs saturated to int16, then summed in int32."""
    p = a.astype(np.int64)[:, None, :] * b_kn.T.astype(np.int64)[None, :, :]
    pairs = np.clip(p[..., 0::2] + p[..., 1::2], -32768, 32767)
    return pairs.sum(axis=-1).astype(np.int32)


def _int8pack(**kw):
    return fingerprint("torch.weight_int8pack_mm", StandIn({"int8pack_mm": int8pack_stand_in(**kw)}))


def test_every_registered_kernel_has_a_fingerprint_or_a_reason():
    """A kernel added to the registry without a probe set (and without a stated reason) fails here."""
    names = {k.name for k in kernels()}
    probed = set(probe_sets())
    assert names - probed - set(NOT_PROBED) == set(), "kernels without a fingerprint"
    assert set(NOT_PROBED) <= names, "NOT_PROBED names a kernel the registry does not have"
    assert not set(NOT_PROBED) & probed, "a kernel both probed and excused"
    assert all(len(why) > 20 for why in NOT_PROBED.values())


def test_fp32_stand_in_reads_as_its_arithmetic():
    """The control: fp32 partial sums k in turn, RNE casts, IEEE subnormals read as exactly that."""
    fp = _int8pack()
    r = fp.readings
    assert fp.ok, render(fp)
    assert all(r[t] == ["acc fp32"] for t in r if t.startswith("accumulator")), r
    assert r["order"] == ["sequential", "fp32 any order"]
    assert r["output cast to fp16"] == r["output cast to bf16"] == ["RNE"]
    assert r["subnormals"] == ["IEEE"]


def test_fp16_accumulating_gemm_reads_fp16_not_fp32():
    """A deliberately wrong GEMM that keeps its partial sums in fp16 is fingerprinted as fp16 accumulation
    on every path (the declared fp32 one does not match, so the verdict disagrees)."""
    fp = _int8pack(acc="fp16")
    r = fp.readings
    for trait in ("accumulator", "accumulator, M = 1"):
        assert r[trait] == ["acc fp16 seq", "acc fp16 any"], render(fp)
    for trait in ("accumulator, fp16 path", "accumulator, bf16 path"):
        assert r[trait] == ["acc fp16 seq"], render(fp)
    assert not fp.ok
    assert "expected acc fp32 did not match" in {p for c in fp.cases for p in c.problems}


def test_bf16_accumulating_gemm_reads_bf16():
    r = _int8pack(acc="bf16").readings
    assert "acc bf16 seq" in r["accumulator"] and "acc fp32" not in r["accumulator"]
    assert r["accumulator, fp16 path"] == ["acc bf16 seq"]


def test_lanes_and_flush_stand_ins_read_as_lanes_ftz_daz():
    assert _int8pack(lanes=8).readings["order"] == ["lanes 8", "fp32 any order"]
    assert _int8pack(ftz=True).readings["subnormals"] == ["FTZ"]
    assert _int8pack(daz=True).readings["subnormals"] == ["DAZ"]


def test_int16_pair_saturation_reads_as_pairs():
    fp = fingerprint("torch.int_mm", StandIn({"int_mm": int_mm_pairs}))
    assert fp.readings["accumulator"] == ["acc int16 pairs"]
    assert not fp.ok


def test_round_to_bf16_rounds_once():
    """float64 -> bf16 through float32 by RNE twice would round 1 + 2^-8 + 2^-30 down to 1 (a tie
    after the first rounding); one correct rounding goes up."""
    v = np.array([1 + 2.0 ** -8 + 2.0 ** -30, 1 + 2.0 ** -8, 1 + 3 * 2.0 ** -8])
    assert list(round_to(v, "bf16")) == [1 + 2.0 ** -7, 1.0, 1 + 2 * 2.0 ** -7]
    assert float(v[0].astype(F).astype(ml_dtypes.bfloat16)) == 1.0  # the double rounding avoided


@pytest.mark.parametrize("out, ulp", [("fp16", 2.0 ** -10), ("bf16", 2.0 ** -7)])
def test_round_mode_on_ties(out, ulp):
    v = np.array([1 + ulp / 2, 1 + 3 * ulp / 2, -(1 + ulp / 2), 1 + ulp / 4])
    assert list(round_mode(v, out, "RNE")) == [1, 1 + 2 * ulp, -1, 1]
    assert list(round_mode(v, out, "half away")) == [1 + ulp, 1 + 2 * ulp, -(1 + ulp), 1]
    assert list(round_mode(v, out, "toward zero")) == [1, 1 + ulp, -1, 1]


@pytest.mark.parametrize("n", [5, 64, 100, 128, 300, 1000])
def test_numpy_pairwise_order_is_np_sum(n):
    t = order_terms(n, rows=4, orders=("numpy pairwise",))
    assert np.array_equal(sum_in(t, "fp32", "numpy pairwise"), t.astype(F).sum(axis=1).astype(np.float64))
