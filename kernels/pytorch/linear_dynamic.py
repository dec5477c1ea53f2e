"""torch.ops.quantized.linear_dynamic under each quantized engine (fbgemm, x86, onednn, qnnpack).

Upstream: aten/src/ATen/native/quantized/cpu/qlinear_dynamic.cpp (`PackedLinearWeight::apply_dynamic_impl`
for fbgemm/x86, `PackedLinearWeightsOnednn::apply_dynamic_impl`, the qnnpack variant): the fp32
input is quantized per tensor to quint8 (`ChooseQuantizationParams`, range widened to 0, the
act.torch.per_tensor.quint8 convention), multiplied by the qint8 weights with exact int32
accumulation, and scaled back to fp32 with the bias (oracle.gemm.aten_qlinear_dynamic models each
engine bit for bit). Each engine is its own kernel name. fbgemm (also behind the x86 engine for
linear: qlinear_prepack.cpp `QLinearPackWeightInt8::run` packs for fbgemm under FBGEMM and X86)
picks its ISA from cpuid (no knob), as do QNNPACK (SSE2 ukernels on x86) and the fbgemm quantizer
it calls; oneDNN follows ONEDNN_MAX_CPU_ISA.
Every engine is on the spec engine (`<engine>_view`: the op's default reduce_range=False,
per-channel weights, no bias); reduce_range, per-tensor weights and bias stay with
conformance/test_pytorch_linear_dynamic.py.
"""
from __future__ import annotations

import numpy as np

from kernels.layouts import View, as_torch
from kernels.pytorch._torch import num_threads, observe_torch, onednn_verbose, op_available, to_numpy, to_torch
from kernels.registry import KernelInfo, register
from kernels.spec import ACTIVATION_LAYOUTS, WEIGHT_LAYOUTS, KernelSpec, register_spec

ENGINES = ("fbgemm", "x86", "onednn", "qnnpack")
# the x86 engine packs linear weights for fbgemm (its output matches fbgemm's bit for bit), so no knob caps it
_KNOBS = {"fbgemm": (), "x86": (), "onednn": ("ONEDNN_MAX_CPU_ISA",), "qnnpack": ()}

INFOS = {e: register(KernelInfo(
    name=f"torch.quantized.linear_dynamic.{e}", package="torch", op="torch.ops.quantized.linear_dynamic",
    module=__name__, conventions=("act.torch.per_tensor.quint8", "act.torch.per_tensor.quint8.reduce_range", "w8a8.int32_exact"),
    isa_knobs=_KNOBS[e],
    dtypes=("fp32",), extra={"engine": e},
    notes=f"torch.backends.quantized.engine = {e!r}; qint8 weights per tensor or per channel"))
    for e in ENGINES}

_SOURCE = ("aten/src/ATen/native/quantized/cpu/qlinear_dynamic.cpp PackedLinearWeight::apply_dynamic_impl: "
           "'auto input_contig = input.contiguous();' (any strides of x; the onednn and qnnpack engines' take them "
           "too, as linear_prepack takes strided weights: checked with transposed, padded and expanded views) and "
           "'int num_tasks = at::get_num_threads();' (the thread count is ATen's; QNNPACK's caffe2::pthreadpool_() "
           "is resized by at::set_num_threads, aten/src/ATen/ParallelOpenMP.cpp)")
# the x86 engine runs fbgemm's packed weights for linear, so it is held to fbgemm's semantics
_SEMANTICS = {"fbgemm": "fbgemm.linear_dynamic", "x86": "fbgemm.linear_dynamic", "onednn": "onednn.linear_dynamic",
              "qnnpack": "qnnpack.linear_dynamic"}
# QNNPACK refuses a NaN or Inf activation where the other engines quantize it
_OUTSIDE = {"qnnpack": {"nonfinite": (
    "aten/src/ATen/native/quantized/cpu/QuantUtils.h ChooseQuantizationParams: 'TORCH_CHECK(min <= max, \"In "
    "ChooseQuantizationParams, min should be less than or equal to max\")' (a NaN min and max, from "
    "input_contig.min() / max() in PackedLinearWeightsQnnp::apply_dynamic_impl); QnnpackUtils.h "
    "generate_requantization_scales: 'requantization scale must be finite and positive' (an Inf's scale)")}}
SPECS = {e: register_spec(KernelSpec(
    kernel=INFOS[e].name, call=f"{e}_view", semantics=_SEMANTICS[e], args=("x", "w", "scales"),
    layouts={"x": ACTIVATION_LAYOUTS, "w": WEIGHT_LAYOUTS}, threads=True, dtypes=("fp32",),
    outside=_OUTSIDE.get(e, {}), modelled=True, source=_SOURCE, check_args=(e,))) for e in ENGINES}

def available(engine: str | None = None) -> dict:
    """Whether the ops exist and `engine` is supported (None: every engine with a view call)."""
    r = op_available("ops.quantized.linear_dynamic", "ops.quantized.linear_prepack")
    if r["ok"]:
        import torch

        for e in [engine] if engine else list(SPECS):
            if e not in torch.backends.quantized.supported_engines:
                return {"ok": False, "version": r["version"],
                        "reason": f"engine {e} not in {torch.backends.quantized.supported_engines}"}
    return r


def observe() -> dict:
    return observe_torch()


def linear_dynamic(engine: str, x: np.ndarray, w: np.ndarray, w_scale: np.ndarray, bias: np.ndarray | None,
                   reduce_range: bool = False) -> np.ndarray:
    """x fp32 (M, K); w int8 (N, K) with a scalar (per tensor) or (N,) (per channel) scale, zero point 0."""
    import torch

    torch.backends.quantized.engine = engine
    wt = to_torch(w)
    if np.ndim(w_scale) == 0:
        qw = torch._make_per_tensor_quantized_tensor(wt, float(w_scale), 0)
    else:
        qw = torch._make_per_channel_quantized_tensor(wt, to_torch(w_scale.astype(np.float64)),
                                                      torch.zeros(w.shape[0], dtype=torch.int64), 0)
    with onednn_verbose():
        packed = torch.ops.quantized.linear_prepack(qw, None if bias is None else to_torch(bias))
        return to_numpy(torch.ops.quantized.linear_dynamic(to_torch(x), packed, reduce_range))


def _view(engine: str, x: View, w: View, scales: np.ndarray, threads: int | None) -> np.ndarray:
    """linear_dynamic(x, prepack(w quantized per channel with exactly these int8 codes and scales, zero
    points 0), reduce_range=False) over the caller's views of x and w, under `threads` ATen threads."""
    import torch

    torch.backends.quantized.engine = engine
    qw = torch._make_per_channel_quantized_tensor(as_torch(w), to_torch(scales.astype(np.float64)),
                                                  torch.zeros(w.shape[0], dtype=torch.int64), 0)
    with num_threads(threads), onednn_verbose():
        return to_numpy(torch.ops.quantized.linear_dynamic(as_torch(x), torch.ops.quantized.linear_prepack(qw, None)))


def fbgemm_view(x: View, w: View, scales: np.ndarray, *, threads: int | None = None) -> np.ndarray:
    return _view("fbgemm", x, w, scales, threads)


def onednn_view(x: View, w: View, scales: np.ndarray, *, threads: int | None = None) -> np.ndarray:
    return _view("onednn", x, w, scales, threads)


def x86_view(x: View, w: View, scales: np.ndarray, *, threads: int | None = None) -> np.ndarray:
    return _view("x86", x, w, scales, threads)


def qnnpack_view(x: View, w: View, scales: np.ndarray, *, threads: int | None = None) -> np.ndarray:
    return _view("qnnpack", x, w, scales, threads)
