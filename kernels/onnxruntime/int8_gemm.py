"""ONNX Runtime's int8 GEMM operators on the CPU execution provider (MLAS QGEMM).

MatMulInteger (int32 out), QLinearMatMul (requantized u8/s8 out), com.microsoft
DynamicQuantizeMatMul (fp32 A quantized to u8 per tensor inside the op, fp32 out) and
com.microsoft MatMulIntegerToFloat (fp32 out), plus DynamicQuantizeLinear, whose quantizer
DynamicQuantizeMatMul shares (core/util/qmath.h GetQuantizationParameter, MlasQuantizeLinear),
and QuantizeLinear (fp32/fp16 in, u8/s8 out, per tensor or per axis).
Each call builds a one-node ONNX model with `onnx.helper` and runs it in a CPU InferenceSession.

B is an initializer by default (`b_const=True`), as in a real model: the kernel then prepacks it
(MatMulIntegerBase::PrePack) and the graph optimizer may rewrite it. With `b_const=False` B and
its zero point are graph inputs: MLAS packs per call and, for M = 1 with zero points 0, MatMulInteger
takes the GEMV kernel (qgemm.h MlasGemmQuantOperation, MlasGemmQuantTryGemvKernel).

`precision=True` sets the session option `session.x64quantprecision` = "1"
(include/onnxruntime/core/session/onnxruntime_session_options_config_keys.h,
kOrtSessionOptionsAvx2PrecisionMode): on hosts whose u8 x s8 kernel saturates, the graph
transformer Avx2WeightS8ToU8Transformer (core/optimizer/qdq_transformer/avx2_weight_s8_to_u8.cc)
rewrites a constant s8 weight holding any value outside [-64, 64] to u8 (w ^ 0x80, zero point
^ 0x80) so that the exact u8 x u8 kernel runs. Every call reports the element type B has in the
optimized graph (`weight_dtype`, read back from the model ORT writes after optimization), the
evidence of whether that rewrite happened.

MLAS picks its kernels from cpuid with no environment knob; `observe` reports the cpuid flags
the worker process saw and the u8 x s8 kernel class they select (platform.cpp).
"""
from __future__ import annotations

import os
import tempfile

import numpy as np

from kernels.layouts import View, as_numpy
from kernels.onnxruntime import DENSE_ONLY
from kernels.registry import KernelInfo, register
from kernels.spec import KernelSpec, register_spec

_NOTE = "MLAS picks its kernels from cpuid; no knob caps it"
_OPS = {
    "matmulinteger": ("MatMulInteger", "int32 = sum (a - za)(b - zb); u8/s8 A, u8/s8 B, per-column B zero points"),
    "qlinearmatmul": ("QLinearMatMul", "u8/s8 out = saturate(RNE(acc * fp32(sa * sb / sy)) + zy), per-column B"),
    "dynamicquantizematmul": ("com.microsoft::DynamicQuantizeMatMul",
                              "fp32 A -> u8 per tensor (DynamicQuantizeLinear rule), fp32 out, optional bias"),
    "matmulintegertofloat": ("com.microsoft::MatMulIntegerToFloat",
                             "fp32 out = fp32(acc) * fp32(sa * sb) + bias, per-column B scales and zero points"),
    "dynamicquantizelinear": ("DynamicQuantizeLinear", "fp32 -> u8 codes, scale, zero point (the DQMatMul quantizer)"),
    "quantizelinear": ("QuantizeLinear", "fp32/fp16 x -> u8/s8 = saturate(RNE(x / scale) + zp), per tensor or axis"),
}
_CONVENTIONS = {"dynamicquantizelinear": ("act.ort.dynamic_quantize_linear.u8",),
                "quantizelinear": ("act.onnx.quantize_linear",)}
INFOS = {key: register(KernelInfo(
    name=f"onnxruntime.{key}", package="onnxruntime", op=op, module=__name__,
    conventions=_CONVENTIONS.get(key, ("mlas.int8.exact", "mlas.int8.u8s8_int16_pairs")),
    isa_knobs=(), dtypes=("int8", "uint8") + (("float32", "float16") if key == "quantizelinear" else ()),
    notes=notes, extra={"isa_note": _NOTE}))
    for key, (op, notes) in _OPS.items()}

# s8 x s8 without zero points: MLAS's portable path, exact on every host (u8 operands and zero points stay in
# conformance/test_onnxruntime_int8.py, which models MLAS's int16 pairs)
SPEC = register_spec(KernelSpec(
    kernel="onnxruntime.matmulinteger", call="matmulinteger_view", semantics="w8a8.int32_wrap", args=("a", "b.T"),
    threads=True, source=DENSE_ONLY))

# s8 weights without a zero point or bias, B an initializer and the session option off (what a model
# gets by default): the int16 pairs of the host's u8 x s8 kernel are part of the modelled arithmetic; the
# session option, u8 weights, zero points and bias stay in conformance/test_onnxruntime_int8.py. The
# operator's schema takes float A only (T1: tensor(float)), so fp32 is the whole dtype space.
DQ_SPEC = register_spec(KernelSpec(
    kernel="onnxruntime.dynamicquantizematmul", call="dynamicquantizematmul_view",
    semantics="mlas.dynamicquantizematmul", args=("x", "w.T", "scales"), threads=True, dtypes=("fp32",),
    modelled=True, source=DENSE_ONLY))

# u8 A with a zero point, s8 B an initializer with per-column scales and no zero point, a bias, the session option
# off: the host's int16 pairs are part of the modelled arithmetic. B zero points, per-tensor B scales, u8 B, B as a
# graph input and the session option stay in conformance/test_onnxruntime_int8.py.
TF_SPEC = register_spec(KernelSpec(
    kernel="onnxruntime.matmulintegertofloat", call="matmulintegertofloat_view", semantics="mlas.matmulintegertofloat",
    args=("a", "b.T", "a_scale", "b_scales", "a_zp", "bias"), threads=True, modelled=True, source=DENSE_ONLY))

# u8 A and Y, s8 B an initializer with per-column scales and zero points, the session option off (the host's int16
# pairs modelled): the arguments in the operator's input order. s8 A and Y, per-tensor B scales, B as a graph input,
# the session option and opset 21 stay in conformance/test_onnxruntime_int8.py.
QL_SPEC = register_spec(KernelSpec(
    kernel="onnxruntime.qlinearmatmul", call="qlinearmatmul_view", semantics="mlas.qlinearmatmul",
    args=("a", "a_scale", "a_zp", "b.T", "b_scales", "b_zp", "y_scale", "y_zp"), threads=True, source=DENSE_ONLY))

_VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def available() -> dict:
    try:
        import onnx  # noqa: F401
        import onnxruntime as ort
    except Exception as e:  # noqa: BLE001
        return {"ok": False, "reason": f"onnxruntime/onnx do not import: {type(e).__name__}: {e}", "version": ""}
    if "CPUExecutionProvider" not in ort.get_available_providers():
        return {"ok": False, "reason": "no CPUExecutionProvider", "version": ort.__version__}
    return {"ok": True, "reason": "", "version": ort.__version__}


def u8s8_class(flags) -> str:
    """The u8 x s8 QGEMM kernel class MLAS's platform.cpp selects for these cpuid flags (x64).

    amx_int8: the AMX kernel; avx512_vnni / avx_vnni: vpdpbusd(s), u8 x s8 summed straight
    into int32; avx512bw / avx2 without VNNI: vpmaddubsw, whose adjacent-pair sums saturate
    at int16 (QgemmU8X8KernelAvx2.S MultiplyAccumulateRowU8S8Avx2).
    """
    f = set(flags)
    if "amx_int8" in f and "amx_tile" in f:
        return "amx"
    if "avx512_vnni" in f or "avx_vnni" in f:
        return "vnni"
    if "avx512bw" in f and "avx512f" in f:
        return "avx512bw_vpmaddubsw"
    if "avx2" in f:
        return "avx2_vpmaddubsw"
    return "sse"


def observe() -> dict:
    """The onnxruntime version and the cpuid class this process saw (read here, in the worker)."""
    import onnxruntime as ort

    from kernels.isa import host_flags

    flags = host_flags()
    cls = u8s8_class(flags)
    shown = sorted(f for f in flags if f.startswith(("avx", "amx", "fma", "f16c", "ssse3", "sse4")))
    return {"onnxruntime": ort.__version__, "cpu_flags": shown, "mlas_u8s8": cls,
            "vnni": any(f in flags for f in _VNNI_FLAGS), "note": f"mlas_u8s8=cpuid({cls}, no knob)"}


_TYPES = {np.dtype(np.uint8): 2, np.dtype(np.int8): 3, np.dtype(np.int32): 6, np.dtype(np.float32): 1,
          np.dtype(np.float16): 10}


def _run(op: str, domain: str, inputs: list, out_types: list[int], *, threads: int, precision: bool,
         opset: int, b_index: int = 1, attrs: dict | None = None) -> tuple[list[np.ndarray], str]:
    """Run a one-node model; inputs are (name, array, const) or None for an omitted optional input
    (trailing ones are dropped, as ONNX wants).

    Returns the outputs and what input `b_index` (B) became: its element type in the optimized graph
    ORT writes out, "input" where it is a graph input, '' where the node has no such input.
    """
    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    inputs = list(inputs)
    while inputs and inputs[-1] is None:
        inputs.pop()
    names, inits, graph_inputs, feeds = [], [], [], {}
    for item in inputs:
        if item is None:
            names.append("")
            continue
        name, arr, const = item
        arr = np.ascontiguousarray(arr)
        names.append(name)
        if const:
            inits.append(numpy_helper.from_array(arr, name))
        else:
            graph_inputs.append(helper.make_tensor_value_info(name, _TYPES[arr.dtype], list(arr.shape)))
            feeds[name] = arr
    outs = [f"Y{i}" for i in range(len(out_types))]
    node = helper.make_node(op, names, outs, domain=domain, **(attrs or {}))
    graph = helper.make_graph([node], "int8_gemm", graph_inputs,
                              [helper.make_tensor_value_info(o, t, None) for o, t in zip(outs, out_types)], inits)
    opsets = [helper.make_opsetid("", opset)] + ([helper.make_opsetid("com.microsoft", 1)] if domain else [])
    model = helper.make_model(graph, ir_version=8, opset_imports=opsets)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # the notice that an optimized model was written is expected
    opts.add_session_config_entry("session.x64quantprecision", "1" if precision else "0")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "optimized.onnx")
        opts.optimized_model_filepath = path
        sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        weight = ""
        if len(names) > b_index and os.path.exists(path):
            opt = onnx.load(path)
            types = {t.name: t.data_type for t in opt.graph.initializer}
            node_b = [n.input[b_index] for n in opt.graph.node if n.op_type == op and len(n.input) > b_index]
            if node_b and node_b[0] in types:
                weight = onnx.helper.tensor_dtype_to_np_dtype(types[node_b[0]]).name
    if not weight and len(inputs) > b_index and inputs[b_index] is not None and not inputs[b_index][2]:
        weight = "input"
    return sess.run(None, feeds), weight


def _zero_point(z, like: np.dtype):
    return None if z is None else np.asarray(z, dtype=like)


def matmulinteger(a: np.ndarray, b: np.ndarray, a_zero_point=None, b_zero_point=None, *, b_const: bool = True,
                  threads: int = 1, precision: bool = False, opset: int = 13) -> dict:
    """a u8/s8 (M, K) @ b u8/s8 (K, N) -> {'y': int32 (M, N), 'weight_dtype': B's type after optimization}.

    a_zero_point: scalar of a's type; b_zero_point: scalar or (N,) of b's type (per column).
    """
    b = np.asarray(b)
    ins = [("A", a, False), ("B", b, b_const),
           None if a_zero_point is None else ("a_zero_point", _zero_point(a_zero_point, a.dtype), True),
           None if b_zero_point is None else ("b_zero_point", _zero_point(b_zero_point, b.dtype), b_const)]
    (y,), w = _run("MatMulInteger", "", ins, [6], threads=threads, precision=precision, opset=opset)
    return {"y": y, "weight_dtype": w}


def matmulinteger_view(a: View, b_kn: View, *, threads: int | None = None) -> np.ndarray:
    """MatMulInteger s8 x s8 without zero points, B an initializer (as in a model): int32 (M, N).
    threads None: ORT's default pool (intra_op_num_threads 0), what a caller gets."""
    return matmulinteger(as_numpy(a), as_numpy(b_kn), threads=threads or 0)["y"]


def qlinearmatmul(a: np.ndarray, a_scale, a_zero_point, b: np.ndarray, b_scale, b_zero_point, y_scale,
                  y_zero_point, *, b_const: bool = True, threads: int = 1, precision: bool = False,
                  opset: int = 13) -> dict:
    """QLinearMatMul: {'y': u8/s8 (M, N) in y_zero_point's type, 'weight_dtype': ...}.

    Scales fp32 (b_scale scalar or (N,)), zero points of each operand's type (b's scalar or (N,)).
    """
    f = np.float32
    yz = np.asarray(y_zero_point)
    ins = [("A", a, False), ("a_scale", np.asarray(a_scale, f), True),
           ("a_zero_point", np.asarray(a_zero_point, a.dtype), True), ("B", b, b_const),
           ("b_scale", np.asarray(b_scale, f), b_const), ("b_zero_point", np.asarray(b_zero_point, b.dtype), b_const),
           ("y_scale", np.asarray(y_scale, f), True), ("y_zero_point", yz, True)]
    (y,), w = _run("QLinearMatMul", "", ins, [_TYPES[yz.dtype]], threads=threads, precision=precision, opset=opset,
                   b_index=3)
    return {"y": y, "weight_dtype": w}


def qlinearmatmul_view(a: View, a_scale: float, a_zp: int, b_kn: View, b_scales: np.ndarray, b_zp: np.ndarray,
                       y_scale: float, y_zp: int, *, threads: int | None = None) -> np.ndarray:
    """QLinearMatMul of u8 a by s8 b_kn with per-column scales and zero points, B and its quantization parameters
    initializers: u8 (M, N). threads None: ORT's default pool (intra_op_num_threads 0), what a caller gets."""
    a = as_numpy(a)
    return qlinearmatmul(a, np.float32(a_scale), a.dtype.type(a_zp), as_numpy(b_kn), b_scales, b_zp,
                         np.float32(y_scale), np.uint8(y_zp), threads=threads or 0)["y"]


def dynamicquantizematmul(a: np.ndarray, b: np.ndarray, b_scale, b_zero_point=None, bias=None, *,
                          b_const: bool = True, threads: int = 1, precision: bool = False) -> dict:
    """com.microsoft DynamicQuantizeMatMul: fp32 a (M, K), u8/s8 b (K, N) -> {'y': fp32 (M, N), ...}."""
    f = np.float32
    ins = [("A", np.asarray(a, f), False), ("B", b, b_const), ("b_scale", np.asarray(b_scale, f), b_const),
           None if b_zero_point is None else ("b_zero_point", np.asarray(b_zero_point, b.dtype), b_const),
           None if bias is None else ("bias", np.asarray(bias, f), True)]
    (y,), w = _run("DynamicQuantizeMatMul", "com.microsoft", ins, [1], threads=threads, precision=precision, opset=13)
    return {"y": y, "weight_dtype": w}


def dynamicquantizematmul_view(x: View, w_kn: View, scales: np.ndarray, *, threads: int | None = None) -> np.ndarray:
    """DynamicQuantizeMatMul of x by s8 w_kn with per-column scales, no zero point or bias, B and its scales
    initializers: fp32 (M, N). threads None: ORT's default pool (intra_op_num_threads 0), what a caller gets."""
    return dynamicquantizematmul(as_numpy(x), as_numpy(w_kn), scales, threads=threads or 0)["y"]


def matmulintegertofloat(a: np.ndarray, b: np.ndarray, a_scale, b_scale, a_zero_point=None, b_zero_point=None,
                         bias=None, *, b_const: bool = True, threads: int = 1, precision: bool = False) -> dict:
    """com.microsoft MatMulIntegerToFloat: u8 a (M, K), u8/s8 b (K, N) -> {'y': fp32 (M, N), ...}."""
    f = np.float32
    ins = [("A", a, False), ("B", b, b_const), ("a_scale", np.asarray(a_scale, f), True),
           ("b_scale", np.asarray(b_scale, f), b_const),
           None if a_zero_point is None else ("a_zero_point", np.asarray(a_zero_point, a.dtype), True),
           None if b_zero_point is None else ("b_zero_point", np.asarray(b_zero_point, b.dtype), b_const),
           None if bias is None else ("bias", np.asarray(bias, f), True)]
    (y,), w = _run("MatMulIntegerToFloat", "com.microsoft", ins, [1], threads=threads, precision=precision, opset=13)
    return {"y": y, "weight_dtype": w}


def matmulintegertofloat_view(a: View, b_kn: View, a_scale: float, b_scales: np.ndarray, a_zp: int, bias: np.ndarray,
                              *, threads: int | None = None) -> np.ndarray:
    """MatMulIntegerToFloat of u8 a (zero point a_zp) by s8 b_kn with per-column scales and a bias, B and its scales
    initializers: fp32 (M, N). threads None: ORT's default pool (intra_op_num_threads 0), what a caller gets."""
    a = as_numpy(a)
    return matmulintegertofloat(a, as_numpy(b_kn), np.float32(a_scale), b_scales, a.dtype.type(a_zp), None, bias,
                                threads=threads or 0)["y"]


def dynamicquantizelinear(x: np.ndarray, *, threads: int = 1) -> dict:
    """DynamicQuantizeLinear: fp32 x -> {'y': u8 codes, 'scale': fp32, 'zero_point': u8}."""
    (y, s, z), _ = _run("DynamicQuantizeLinear", "", [("X", np.asarray(x, np.float32), False)], [2, 1, 2],
                        threads=threads, precision=False, opset=13)
    return {"y": y, "scale": np.asarray(s, np.float32), "zero_point": np.asarray(z, np.uint8)}


def quantizelinear(x: np.ndarray, y_scale, y_zero_point, *, axis: int | None = None, opset: int = 19,
                   threads: int = 1) -> dict:
    """QuantizeLinear: fp32/fp16 x -> {'y': codes in y_zero_point's type (u8/s8)}.

    y_scale (x's type, as the operator requires) and y_zero_point are initializers: scalars per
    tensor, or 1-D along `axis` per axis (the attribute is written only when given). fp16 x needs
    opset >= 19.
    """
    x = np.asarray(x)
    zp = np.asarray(y_zero_point)
    ins = [("x", x, False), ("y_scale", np.asarray(y_scale, x.dtype), True), ("y_zero_point", zp, True)]
    (y,), _ = _run("QuantizeLinear", "", ins, [_TYPES[zp.dtype]], threads=threads, precision=False, opset=opset,
                   attrs=None if axis is None else {"axis": int(axis)})
    return {"y": y}
