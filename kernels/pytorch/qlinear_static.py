"""torch.ops.quantized.linear (static: quint8 activations, qint8 per-channel weights, quint8 output) under the
fbgemm and x86 engines.

Upstream: aten/src/ATen/native/quantized/cpu/qlinear.cpp `PackedLinearWeight::apply_impl` (both engines: the
x86 engine packs linear weights for fbgemm, qlinear_prepack.cpp `QLinearPackWeightInt8::run`), FBGEMM's
`ReQuantizeOutput` (oracle.gemm.fbgemm_requant models it byte for byte). The caller's activation is a quint8
tensor over the caller's u8 view (`torch._make_per_tensor_quantized_tensor` keeps its strides, as a quantized
tensor sliced or transposed by a caller does); the weight is quantized per channel over the caller's s8 view
and prepacked without a bias. fbgemm picks its ISA from cpuid (no knob); without VNNI its u8 x s8 products
run through vpmaddubsw, whose int16 pair sums saturate (conformance/known_defects.py).
"""
from __future__ import annotations

import numpy as np

from kernels.layouts import View, as_torch
from kernels.pytorch import linear_dynamic
from kernels.pytorch._torch import (
    num_threads,
    observe_torch,
    op_available,
    to_numpy,
    to_torch,
)
from kernels.registry import KernelInfo, register
from kernels.spec import ACTIVATION_LAYOUTS, WEIGHT_LAYOUTS, KernelSpec, register_spec

ENGINES = ("fbgemm", "x86")

INFOS = {e: register(KernelInfo(
    name=f"torch.quantized.linear.{e}", package="torch", op="torch.ops.quantized.linear", module=__name__,
    conventions=("w8a8.int32_exact",), isa_knobs=(), dtypes=("uint8",), extra={"engine": e},
    notes=f"torch.backends.quantized.engine = {e!r}; quint8 x, qint8 weights per channel with zero points, "
          "quint8 y")) for e in ENGINES}

_SOURCE = ("aten/src/ATen/native/quantized/cpu/qlinear.cpp PackedLinearWeight::apply_impl: 'auto input_contig = "
           "input.expect_contiguous();' (any strides of x; linear_prepack takes strided weights too: checked with "
           "transposed, padded, offset and expanded views) and 'int num_tasks = at::get_num_threads();' (the "
           "thread count is ATen's)")
SPECS = {e: register_spec(KernelSpec(
    kernel=INFOS[e].name, call=f"{e}_view", semantics="fbgemm.qlinear",
    args=("a", "a_scale", "a_zp", "b", "b_scales", "b_zp", "y_scale", "y_zp"),
    layouts={"a": ACTIVATION_LAYOUTS, "b": WEIGHT_LAYOUTS}, threads=True, source=_SOURCE, check_args=(e,)))
    for e in ENGINES}


def available(engine: str | None = None) -> dict:
    """Whether the ops exist and `engine` is supported (None: both engines); the engine check is linear_dynamic's,
    whose ops every fbgemm build ships beside these."""
    r = op_available("ops.quantized.linear", "ops.quantized.linear_prepack")
    for e in [engine] if engine else ENGINES:
        r = linear_dynamic.available(e) if r["ok"] else r
    return r


def observe() -> dict:
    return observe_torch()


def _view(engine: str, a: View, a_scale: float, a_zp: int, w: View, w_scales: np.ndarray, w_zp: np.ndarray,
          y_scale: float, y_zp: int, threads: int | None) -> np.ndarray:
    """quantized.linear(quint8 over the caller's view of a, prepack(qint8 per channel over the caller's view of w,
    no bias), y_scale, y_zp) under `threads` ATen threads: the output's u8 codes."""
    import torch

    torch.backends.quantized.engine = engine
    qx = torch._make_per_tensor_quantized_tensor(as_torch(a), a_scale, a_zp)
    qw = torch._make_per_channel_quantized_tensor(as_torch(w), to_torch(w_scales.astype(np.float64)),
                                                  to_torch(w_zp.astype(np.int64)), 0)
    with num_threads(threads):
        packed = torch.ops.quantized.linear_prepack(qw, None)
        return to_numpy(torch.ops.quantized.linear(qx, packed, y_scale, y_zp).int_repr())


def fbgemm_view(a: View, a_scale: float, a_zp: int, w: View, w_scales: np.ndarray, w_zp: np.ndarray,
                y_scale: float, y_zp: int, *, threads: int | None = None) -> np.ndarray:
    return _view("fbgemm", a, a_scale, a_zp, w, w_scales, w_zp, y_scale, y_zp, threads)


def x86_view(a: View, a_scale: float, a_zp: int, w: View, w_scales: np.ndarray, w_zp: np.ndarray,
             y_scale: float, y_zp: int, *, threads: int | None = None) -> np.ndarray:
    return _view("x86", a, a_scale, a_zp, w, w_scales, w_zp, y_scale, y_zp, threads)
