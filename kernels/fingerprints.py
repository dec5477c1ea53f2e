"""Probe sets that tell a kernel's conventions apart (`qoracle fingerprint`, reports/fingerprint.py).

A probe set belongs to one registered kernel. Each of its `Case`s is one call of the kernel's
adapter function in the isolating worker, with inputs crafted so that the candidate conventions
of that kind of kernel predict different outputs: exact rounding ties (half away vs half to
even), values a few ulps around code boundaries (fused vs unfused multiply-add, x * (1/s) vs
x / s), random nibbles (which element shares a byte), integer zero points (a float zero added
vs an integer one subtracted, 8 vs 0 by default), and activation ranges (reduce_range).

A candidate is either a registered oracle name (a ggml format or a convention) or a variant of
one with exactly one choice changed (`registered=False`), named `base~choice`: a variant exists
where no registered convention embodies the alternative, so the probe can say which way a
kernel went. Its prediction is the oracle's output for the same inputs: bytes for quantizers,
and for GEMMs a bit-exact model of the output (weights read through identity activations, or
activations read through identity weights, with power-of-two scales so no rounding of the
GEMM itself enters), with the model's exact value and error bound where one exists.

The numerics probes (a case with a `trait`) read how a kernel computes rather than which
convention it follows: accumulator precision, summation order, output-cast and quantizer rounding,
epilogue order, FTZ/DAZ. Their hypotheses and encoders are in kernels/probes_numerics.py, their
probe sets in kernels/probes_{pytorch,ggml,onnxruntime,bestla,triton}.py (each a PROBES tuple,
joined here with a kernel's convention probes). Every registered kernel has a probe set, or a
reason in NOT_PROBED.

Everything here is numpy and oracle: the kernel itself runs only in the worker.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import numpy as np

import oracle
from oracle import conventions
from oracle.conventions import QuantizedWeight
from oracle.gemm.aten_dyn_quant_4bit import dyn_quant_model, quantize_rows
from oracle.gemm.aten_qlinear_dynamic import linear_dynamic_model
from oracle.gemm.w8a8 import epilogue, int8_matmul, w8a8_exact, wrap_int32
from oracle.rounding import rne

__all__ = ["Candidate", "Case", "ProbeSet", "NOT_PROBED", "probe_set", "probe_sets"]

F = np.float32


@dataclass(frozen=True)
class Candidate:
    """One convention's prediction of the case's output.

    registered: the name is an oracle format/convention; False for a one-choice variant or a
    numerics hypothesis (kernels/probes_numerics.py).
    exact, bound: the exact value of the modelled sums and the model's error bound (GEMM
    outputs only), for the bound criterion when the output is not the bit-exact prediction.
    family: the candidate stands for a set of outputs (any summation order), so it is consistent
    with every output inside its bound, on its `grid` dtype where one is named; `predicted` is one
    member of the set.
    """

    name: str
    predicted: np.ndarray
    what: str
    registered: bool = True
    exact: np.ndarray | None = None
    bound: np.ndarray | None = None
    family: bool = False
    grid: str = ""


@dataclass(frozen=True)
class Case:
    """One worker call `module.func(*args, **kwargs)` and the candidates' predictions of its output.

    output: the key of the returned dict to compare, or a tuple of keys and indices (None: the
    value itself).
    selects: the declared conventions this call's arguments select (a flag such as reduce_range
    picks one); None means every declared convention among the candidates. For a numerics case,
    the hypotheses the adapter's notes and oracle model allow, one of which must match (empty:
    the case only reports).
    trait: empty for a convention case; else the numerics trait it reads ("accumulator",
    "order", "output cast to fp16", "subnormals", ...).
    ties: (a, b, why) for each pair of candidates the case cannot tell apart (same prediction, or
    one consistent with the other's family); every other pair differs.
    """

    name: str
    module: str
    func: str
    args: tuple
    candidates: tuple[Candidate, ...]
    kwargs: dict = field(default_factory=dict)
    output: str | tuple | None = None
    selects: tuple[str, ...] | None = None
    trait: str = ""
    ties: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True)
class ProbeSet:
    """The cases of one kernel and the choices they separate."""

    kernel: str
    separates: str
    module: str
    build: Callable[[], list[Case]]
    available_args: tuple = ()
    triton: bool = False  # runs in a worker of its own, TRITON_INTERPRET=1 where torch sees no CUDA
    check: str = "available"  # the module's availability function


# -- ggml quantizers -----------------------------------------------------------------------------


def _boundary_blocks(lo: float, hi: float, levels: int, spread: int = 16) -> np.ndarray:
    """32-blocks holding lo and hi, the rest every float within `spread` ulps of a code boundary
    lo + (j - 1/2)(hi - lo)/levels: where a fused and an unfused `x*id + c` truncate differently."""
    steps = lo + (np.arange(levels + 1) - 0.5) * ((np.float64(hi) - lo) / levels)
    steps = steps[(steps > lo) & (steps < hi)].astype(F)
    offs = np.arange(-spread, spread + 1, dtype=np.int32)
    near = (steps.view(np.int32)[:, None] + offs[None, :]).astype(np.int32).view(F).ravel()
    near = near[(near > lo) & (near < hi)]
    near = np.concatenate([near, np.zeros(-len(near) % 30, F)]).reshape(-1, 30)
    ends = np.broadcast_to(np.array([lo, hi], F), (near.shape[0], 2))
    return np.concatenate([ends, near], axis=1).astype(F)


def _separating(x: np.ndarray, names: list[str], keep: int = 4) -> np.ndarray:
    """The rows of x (one block each) on which the named formats' bytes are not all equal, at most
    `keep`, plus one row on which they agree; all rows when no row separates (the table says so)."""
    outs = [oracle.quantize(x, n) for n in names]
    differ = np.any([np.any(o != outs[0], axis=1) for o in outs[1:]], axis=0)
    rows = list(np.flatnonzero(differ)[:keep]) + list(np.flatnonzero(~differ)[:1])
    return x[sorted(rows)] if differ.any() else x


def _tie_rows() -> np.ndarray:
    """Two 32-blocks per row: element 0 of each is +-127 t, the rest (j + 1/2) t, t a power of two,
    so d = t and both 1/d and 127/amax are exact: every other element is a rounding tie."""
    rng = np.random.default_rng(127)
    rows = []
    for t in (2.0 ** -3, 1.0, 2.0 ** 5):
        x = (rng.integers(-127, 127, 64) + 0.5) * t
        x[0::32] = 127 * t * rng.choice([-1, 1], 2)
        rows.append(x)
    return np.array(rows, F)


def _adjacent_q4_0(blocks: np.ndarray) -> np.ndarray:
    """q4_0 bytes re-laid with adjacent nibbles (byte i = elements 2i, 2i + 1) instead of j / j + 16."""
    b = blocks.reshape(blocks.shape[0], -1, 18).copy()
    qs = b[..., 2:]
    codes = np.concatenate([qs & 0x0F, qs >> 4], axis=-1)  # elements 0..31 in order
    b[..., 2:] = codes[..., 0::2] | (codes[..., 1::2] << 4)
    return b.reshape(blocks.shape)


_FMA_PAIRS = {"q4_0": (-10.0, 10.0, 16), "q5_0": (-10.0, 10.0, 32), "q4_1": (-3.3, 7.1, 15), "q5_1": (-3.3, 7.1, 31)}
_GGML = "kernels.ggml.calls"


def _ggml_quantize_cases() -> list[Case]:
    cases = []
    for t, (lo, hi, levels) in _FMA_PAIRS.items():
        names = [t, f"{t}.nofma", f"{t}.fma"]
        x = _separating(_boundary_blocks(lo, hi, levels), names)
        cands = [Candidate(n, oracle.quantize(x, n), oracle.get_format(n).summary) for n in names]
        if t == "q4_0":
            cands.append(Candidate("q4_0~adjacent_nibbles", _adjacent_q4_0(cands[0].predicted),
                                   "q4_0 codes packed byte i = elements 2i, 2i+1 (ONNX/PyTorch order)", False))
        cases.append(Case(t, _GGML, "quantize", (x, t), tuple(cands)))
    x = _tie_rows()
    for t in ("q8_0", "q8_1"):
        names = [t, f"{t}.x86"]
        cases.append(Case(f"{t} ties", _GGML, "quantize", (x, t),
                          tuple(Candidate(n, oracle.quantize(x, n), oracle.get_format(n).summary) for n in names)))
    return cases


def _ggml_from_float_cases() -> list[Case]:
    x = _tie_rows()
    return [Case(f"{t} ties", _GGML, "from_float", (x, t),
                 tuple(Candidate(n, oracle.quantize(x, n), oracle.get_format(n).summary) for n in (f"{t}.x86", t)))
            for t in ("q8_0", "q8_1")]


# -- PyTorch weight-only int4 (tinygemm) -----------------------------------------------------------


def _int4pack_cases() -> list[Case]:
    """Weights read back through identity activations: y = I @ W.T = W.T exactly (one nonzero term)."""
    rng = np.random.default_rng(4)
    n, k, g = 16, 64, 32
    codes = rng.integers(0, 16, (n, k)).astype(np.int32)
    scales = (2.0 ** rng.integers(-3, 2, (n, k // g))).astype(F)
    zeros = rng.integers(-8, 8, (n, k // g)).astype(F)  # integer-valued: both zero-point readings are exact
    tg = conventions.get("tinygemm.torchao")
    sz = tg.pack(QuantizedWeight(codes, scales, zeros, tg.name))["scales_and_zeros"]

    def read(name: str, qw_codes: np.ndarray, z: np.ndarray) -> np.ndarray:
        conv = conventions.get(name)
        return conv.dequantize(QuantizedWeight(qw_codes, scales, z, name)).T.copy()

    cands = [Candidate(name, read(name, codes, zeros), conventions.get(name).summary)
             for name in ("tinygemm.torchao", "tinygemm.torch_test")]
    cands.append(Candidate("torchao.int4.asym", read("torchao.int4.asym", codes - 8, zeros.astype(np.int32)),
                           "the zero slot as an integer zero point subtracted from signed codes: ((q-8) - z) * s"))
    cands.append(Candidate("tinygemm.torchao~zero_subtracted", read("tinygemm.torchao", codes, -zeros),
                           "(q - 8) * s - z: the float zero subtracted instead of added", False))
    return [Case("fp32 identity activations", "kernels.pytorch.weight_int4pack_mm", "int4pack_mm",
                 (np.eye(k, dtype=F), codes, sz, g), tuple(cands), output="y")]


# -- PyTorch _dyn_quant_matmul_4bit ---------------------------------------------------------------


def _dyn_quant_cases() -> list[Case]:
    """Rows spanning exactly [-128, 127] (inverse scale 255/255 = 1, zero point 0) with ties j + 1/2,
    so std::round and RNE give different codes; power-of-two weight scales keep the sums exact."""
    rng = np.random.default_rng(8)
    n, k, g = 8, 64, 32
    x = (rng.integers(-128, 127, (2, k)) + 0.5).astype(F)
    x[:, 0], x[:, 1] = -128, 127
    q, zp, recip = quantize_rows(x, channelwise=False)
    if not (np.all(recip == 1) and np.all(zp == 0)):
        raise AssertionError("the dyn_quant probe rows must have inverse scale 1 and zero point 0")
    codes = rng.integers(0, 16, (n, k)).astype(np.int32)
    scales = (2.0 ** rng.integers(-8, -4, (n, k // g))).astype(F)
    conv = dataclasses.replace(conventions.get("torch.dyn_quant_4bit"), group_size=g)
    wbytes = conv.pack(QuantizedWeight(codes, scales, None, conv.name))["weight"]

    def cand(name: str, xx: np.ndarray, cc: np.ndarray, what: str, registered: bool = True) -> Candidate:
        pred, exact, bound = dyn_quant_model(xx, cc, scales, g)
        return Candidate(name, pred, what, registered, exact, bound)

    swapped = codes.reshape(n, -1, 2)[..., ::-1].reshape(n, k)
    cands = (cand(conv.name, x, codes, "reference path: activation codes std::round (half away), adjacent nibbles "
                  "low = even k"),
             cand(f"{conv.name}~act_rne", rne(x), codes, "activation codes rounded half to even", False),
             cand(f"{conv.name}~nibbles_swapped", x, swapped, "the high nibble read as the even k", False))
    return [Case("ties, inverse scale 1", "kernels.pytorch.dyn_quant_matmul_4bit", "dyn_quant_matmul",
                 (x, wbytes, scales, g), cands, output="y")]


# -- ONNX Runtime MatMulNBits ----------------------------------------------------------------------


def _matmulnbits_cases() -> list[Case]:
    """4-bit weights read back through identity activations (accuracy_level 0): y = W.T exactly,
    with fp16-exact power-of-two scales so ggml's q4_0 reading of the same bytes is comparable."""
    rng = np.random.default_rng(16)
    n, k, block = 8, 64, 32
    codes = rng.integers(0, 16, (n, k)).astype(np.int32)
    scales = (2.0 ** rng.integers(-3, 2, (n, k // block))).astype(F)
    zeros = rng.integers(0, 16, (n, k // block)).astype(np.int32)
    sym, asym = conventions.get("ort.matmulnbits.int4.sym"), conventions.get("ort.matmulnbits.int4.asym")
    weight = sym.pack(QuantizedWeight(codes, scales, None, sym.name))["weight"]  # (N, blocks, 16)
    zp_bytes = asym.pack(QuantizedWeight(codes, scales, zeros, asym.name))["zeros"]
    eye = np.eye(k, dtype=F)
    call = dict(k=k, n=n, bits=4, block=block, accuracy_level=0)

    def read(conv, z) -> np.ndarray:
        packed = {"weight": weight, "scales": scales} | ({} if z is None else {"zeros": z})
        return conv.dequantize(conv.unpack(packed, k)).T.copy()

    f16 = scales.astype(np.float16).reshape(-1, 1).view(np.uint8)
    q4_0 = oracle.dequantize(np.concatenate([f16, weight.reshape(-1, 16)], axis=1).reshape(n, -1), "q4_0").T.copy()
    zp0 = dataclasses.replace(sym, name=f"{sym.name}~zp0", zero_offset=0)
    no_zp = (Candidate(sym.name, read(sym, None), sym.summary),
             Candidate("q4_0", q4_0, "ggml's reading of the same bytes: byte j = elements j, j + 16, (q - 8) d"),
             Candidate(zp0.name, read(zp0, None), "no zero-point input read as zero point 0 instead of 8", False))
    with_zp = (Candidate(asym.name, read(asym, zp_bytes), asym.summary),
               Candidate(sym.name, read(sym, None), "the zero-point input ignored (8 for every block)"))
    return [Case("int4 without zero points", "kernels.onnxruntime.matmulnbits", "matmulnbits",
                 (eye, weight, scales, None), no_zp, kwargs=call),
            Case("int4 with zero points", "kernels.onnxruntime.matmulnbits", "matmulnbits",
                 (eye, weight, scales, zp_bytes), with_zp, kwargs=call, selects=(asym.name,))]


# -- dynamic int8 activations read through identity weights ---------------------------------------


def _s8_candidate(conv, x: np.ndarray, w: np.ndarray, sb: np.ndarray, registered: bool, what: str) -> Candidate:
    """oneDNN's woqgemm_s8 epilogue (float(acc) * (sa * sb)) on the codes `conv` gives x."""
    qa = conv.quantize(x)
    q, sa = qa.codes.astype(np.int8), F(qa.scales[0, 0])
    exact, bound = w8a8_exact(q, sa, w, sb, None, out="fp32")
    return Candidate(conv.name, epilogue(wrap_int32(int8_matmul(q, w)), sa, sb, "acc*(sa*sb)"), what, registered,
                     exact, bound)


def _woqgemm_s8_cases() -> list[Case]:
    """Per-tensor s8 activations: ties at sa = 1 (amax 127), and values where RNE(x * fp32(1/sa))
    and RNE(x / sa) differ (amax 100); the weights are the identity with unit scales."""
    base = conventions.get("act.onednn.s8.per_tensor")
    variants = ((base, True, base.summary),
                (dataclasses.replace(base, name=f"{base.name}~divide", inverse="divide"), False, "q = RNE(x / s)"),
                (dataclasses.replace(base, name=f"{base.name}~half_away", rounding="half_away"), False,
                 "q = roundf(x * (1/s)), half away from zero"))
    k = 64
    ties = np.zeros((2, k), F)
    ties[:, 0] = 127
    ties[0, 1:] = np.arange(k - 1) % 9 - 4.5
    ties[1, 1:] = -(np.arange(k - 1) % 7) - 0.5
    sa = F(F(100) * F(F(1) / F(127)))
    r = F(F(1) / sa)
    near = [np.nextafter(F((j + 0.5) * np.float64(sa)), F(d), dtype=F) for j in range(-120, 120) for d in (-np.inf, np.inf)]
    split = [v for v in near if abs(v) < 100 and np.rint(F(v / sa)) != np.rint(F(v * r))][:k - 1]
    recip = np.zeros((1, k), F)
    recip[0, 0] = 100
    recip[0, 1:1 + len(split)] = split
    w, sb = np.eye(k, dtype=np.int8), np.ones(k, F)
    return [Case(name, "kernels.bestla.ark", "woqgemm_s8", (x, w, sb, None),
                 tuple(_s8_candidate(c, x, w, sb, reg, what) for c, reg, what in variants))
            for name, x in (("ties at sa = 1", ties), ("x * (1/sa) vs x / sa", recip))]


def _linear_dynamic_cases(engine: str) -> Callable[[], list[Case]]:
    def build() -> list[Case]:
        rng = np.random.default_rng(9)
        k = 64
        x = rng.standard_normal((2, k)).astype(F)
        w = np.eye(k, dtype=np.int8)  # pairs of k never saturate int16, with or without VNNI
        cases = []
        for rr in (False, True):
            cands = []
            for name, flag in (("act.torch.per_tensor.quint8", False), ("act.torch.per_tensor.quint8.reduce_range", True)):
                pred, exact, bound = linear_dynamic_model(x, w, F(1), None, engine=engine, reduce_range=flag)
                cands.append(Candidate(name, pred, conventions.get(name).summary, True, exact, bound))
            sel = "act.torch.per_tensor.quint8" + (".reduce_range" if rr else "")
            cases.append(Case(f"reduce_range={rr}", "kernels.pytorch.linear_dynamic", "linear_dynamic",
                              (engine, x, w, np.float32(1), None), tuple(cands), kwargs={"reduce_range": rr},
                              selects=(sel,)))
        return cases
    return build


_CONVENTION_PROBES = (
    ProbeSet("ggml.quantize", "fused vs unfused x*id + c (q4_0, q5_0; for q4_1 and q5_1 no input near a code "
             "boundary separates them), nibble order (q4_0), ties half away vs half to even (q8_0, q8_1)",
             _GGML, _ggml_quantize_cases),
    ProbeSet("ggml.from_float", "ties half to even (x86 SIMD) vs half away (reference) for q8_0, q8_1",
             _GGML, _ggml_from_float_cases),
    ProbeSet("torch.weight_int4pack_mm", "zero point: float added (tinygemm) vs subtracted vs integer "
             "(torchao affine)", "kernels.pytorch.weight_int4pack_mm", _int4pack_cases),
    ProbeSet("torch.dyn_quant_matmul_4bit", "activation ties half away vs half to even, nibble order",
             "kernels.pytorch.dyn_quant_matmul_4bit", _dyn_quant_cases),
    ProbeSet("onnxruntime.matmulnbits", "default zero point 8 vs 0, nibble order adjacent vs j/j+16, "
             "zero-point input used vs ignored", "kernels.onnxruntime.matmulnbits", _matmulnbits_cases),
    ProbeSet("bestla.woqgemm_s8", "activation codes x * (1/s) vs x / s, ties half to even vs half away",
             "kernels.bestla.ark", _woqgemm_s8_cases),
    *(ProbeSet(f"torch.quantized.linear_dynamic.{e}", "activation qparams on [0, 255] vs [0, 127] (reduce_range)",
               "kernels.pytorch.linear_dynamic", _linear_dynamic_cases(e), (e,)) for e in ("fbgemm", "x86", "onednn")),
)
# Registered kernels without a probe set, and why.
NOT_PROBED = {
    "triton.gemlite.a16w4": "needs a CUDA GPU: gemlite queries the device at import and has no interpreter path",
    "esimd.int4_gemv": "needs an Intel GPU (torch.xpu) and the custom_esimd_kernels_vllm package",
}
_NUMERICS_MODULES = ("kernels.probes_pytorch", "kernels.probes_ggml", "kernels.probes_onnxruntime",
                     "kernels.probes_bestla", "kernels.probes_triton")


def _joined(a: ProbeSet, b: ProbeSet) -> ProbeSet:
    """One kernel's convention probes and numerics probes as one set (same module and check)."""
    return dataclasses.replace(a, separates=f"{a.separates}; {b.separates}", build=lambda: a.build() + b.build())


@lru_cache(maxsize=1)
def _registry() -> dict[str, ProbeSet]:
    """Every probe set by kernel: the convention probes here and the numerics probes of each
    kernels/probes_*.py module (its PROBES), joined where a kernel has both."""
    import importlib

    reg = {p.kernel: p for p in _CONVENTION_PROBES}
    for name in _NUMERICS_MODULES:
        for p in importlib.import_module(name).PROBES:
            reg[p.kernel] = _joined(reg[p.kernel], p) if p.kernel in reg else p
    return reg


def probe_sets() -> list[str]:
    """The kernels that have a probe set, sorted."""
    return sorted(_registry())


def probe_set(kernel: str) -> ProbeSet:
    if kernel not in _registry():
        why = f" ({NOT_PROBED[kernel]})" if kernel in NOT_PROBED else ""
        raise ValueError(f"no fingerprint probes for kernel {kernel!r}{why}; probes exist for: {', '.join(probe_sets())}")
    return _registry()[kernel]
