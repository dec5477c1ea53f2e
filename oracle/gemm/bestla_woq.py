"""BesTLA through auto-round-lib: `woqgemm` (weight-only) and `woqgemm_s8` (dynamic int8 activations).

`woqgemm` (intel/neural-speed bestla/bestla/bestla_prologue_b.h weight decompression and the
fp32 GEMM cores; order observed on an AVX2 host, fp32 activations): the weight is dequantized by
the oracle's BesTLA conventions (oracle/conventions/bestla.py), then one fmaf chain per output
over k = 0..K-1 from 0, then the fp32 bias add. `woqgemm_w4` is that model as the engine's
`bestla.woqgemm` semantics (signature w4_grouped: the asymmetric int4 path, integer zero points).

`woqgemm_s8` runs on the oneDNN that auto-round-lib bundles (ONEDNN_VERBOSE: abs-max reduction,
linear by 1/127, f32 -> s8 reorder, s8 x s8 matmul with src (per tensor) and wei (per column)
scales). From the oneDNN dev guide's semantics (matmul dst = scale_src * scale_wei * acc + bias):
activations by act.onednn.s8.per_tensor, y = float(acc) * (sa * sb[n]) + bias, acc the exact int32 sum.
`woqgemm_s8_w8` is that model as the engine's `onednn.s8_per_tensor` semantics (signature w8_float).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from oracle import floats
from oracle.conventions import QuantizedWeight, get
from oracle.gemm.semantics import Expected, out_dtype, w4_parts
from oracle.gemm.w8a8 import epilogue, int8_matmul, w8a8_exact, wrap_int32
from oracle.gemm.wxa16 import wxa16_exact
from oracle.rounding import fmaf

__all__ = ["dequant", "fma_chain", "woqgemm_w4", "S8_ACTIVATIONS", "woqgemm_s8_model", "s8_epilogue", "woqgemm_s8_w8"]

# the ISA whose fp32 core the fma chain was observed on (other cores are judged by the bound alone)
MODELLED_ISA = "AVX2"

S8_ACTIVATIONS = "act.onednn.s8.per_tensor"


def dequant(codes, scales, zeros, bits: int, group: int, scale_type: str) -> tuple[np.ndarray, str]:
    """Dequantized weights from the signed codes woqgemm is given, and the convention used.

    int4 without zero points is `bestla.neural_speed_98ffee4.int4_fullrange.sym` (codes stored +8); the
    other widths use the `bestla.neural_speed.int8.sym` rule (q - zp) * s at that width, with an
    integer zero point when asymmetric. Scales stored in bf16/fp16 are rounded (RNE) first.
    """
    stored = scales if scale_type == "fp32" else floats.round_to(scales, scale_type)
    if bits == 4 and zeros is None:
        conv = dataclasses.replace(get("bestla.neural_speed_98ffee4.int4_fullrange.sym"), group_size=group)
        return conv.dequantize(QuantizedWeight(codes.astype(np.int32) + 8, stored, None, conv.name)), conv.name
    base = get("bestla.neural_speed.int8.sym")
    conv = dataclasses.replace(base, bits=bits, group_size=group, zero_domain="fixed" if zeros is None else "int")
    z = None if zeros is None else zeros.astype(np.int32)
    return conv.dequantize(QuantizedWeight(codes.astype(np.int32), stored, z, conv.name)), f"{base.name}[int{bits}]"


def fma_chain(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """fp32 y[m, n] = fmaf(x[m, k], w[n, k], y) for k in order from 0, then y + bias."""
    y = np.zeros((x.shape[0], w.shape[0]), np.float32)
    for k in range(x.shape[1]):
        y = fmaf(x[:, k:k + 1], w[None, :, k], y)
    return y if bias is None else (y + bias.astype(np.float32)).astype(np.float32)


def woqgemm_w4(ops: dict[str, np.ndarray], observed: dict) -> Expected:
    """w4_grouped as woqgemm's asymmetric int4 path computes it: unsigned codes and zero points are
    the signed pair (q - 8, zp - 8) it is given, dequantized by `dequant` with fp32 scales (exact in
    fp32 for the signature's scales, so the bound is the fp32 dot product's); the fma chain is the
    prediction where BesTLA ran the core it was observed on (`bestla_isa`, fp32 activations)."""
    x, codes, scales, zp, group = w4_parts(ops)
    w, _ = dequant(codes.astype(np.int32) - 8, scales, zp.astype(np.int32) - 8, 4, group, "fp32")
    out = out_dtype(x)
    exact, bound = wxa16_exact(x, w, None, acc="fp32", out=out, order="any")
    modelled = observed.get("bestla_isa") == MODELLED_ISA and out == "fp32"
    return Expected(exact, bound, fma_chain(x, w, None) if modelled else None, out)


def woqgemm_s8_model(x: np.ndarray, w: np.ndarray, sb: np.ndarray, bias: np.ndarray | None,
                     order: str | None = "acc*(sa*sb)"):
    """(predicted fp32 y, exact value, bound) for int8 weights w (N, K) with per-column scales sb;
    the prediction scales in `order` (oracle.gemm.w8a8 EPILOGUES), None where the order is unknown."""
    qa = get(S8_ACTIVATIONS).quantize(np.ascontiguousarray(x, dtype=np.float32))
    q, sa = qa.codes.astype(np.int8), np.float32(qa.scales[0, 0])
    exact, bound = w8a8_exact(q, sa, w, sb, bias, out="fp32")
    if order is None:
        return None, exact, bound
    pred = epilogue(wrap_int32(int8_matmul(q, w)), sa, sb, order)
    if bias is not None:
        pred = (pred + bias.astype(np.float32)).astype(np.float32)
    return pred, exact, bound


def s8_epilogue(impl: str) -> str | None:
    """The w8a8 epilogue order of the oneDNN matmul implementation woqgemm_s8 ran ('gemm:jit',
    'brg_matmul:avx2', as its observe() reports it): the same oneDNN post-ops as linear_dynamic's onednn
    engine (oracle.gemm.aten_qlinear_dynamic.onednn_epilogue), its scales taken as given; None if unknown."""
    from oracle.gemm.aten_qlinear_dynamic import onednn_epilogue

    kind = onednn_epilogue([f"matmul:{impl}"]) if impl else None
    return {"onednn": "acc*(sa*sb)", "onednn.brgemm": "(acc*sa)*sb"}.get(kind or "")


def woqgemm_s8_w8(ops: dict[str, np.ndarray], observed: dict) -> Expected:
    """w8_float as woqgemm_s8 computes it, without bias: `woqgemm_s8_model`, predicted in the epilogue order
    of the matmul implementation observed (the exact value and bound are those of the quantized sum)."""
    x, order = ops["x"], s8_epilogue(observed.get("onednn_impl", ""))
    pred, exact, bound = woqgemm_s8_model(x, ops["w"], ops["scales"], None, order)
    return Expected(exact, bound, pred, out_dtype(x))
