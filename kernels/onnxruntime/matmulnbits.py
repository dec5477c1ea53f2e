"""ONNX Runtime com.microsoft::MatMulNBits on the CPU execution provider (MLAS).

Upstream: onnxruntime/contrib_ops/cpu/quantization/matmul_nbits.cc and MLAS
(onnxruntime/core/mlas/lib/sqnbitgemm*.cpp, qnbitgemm*.cpp). B is uint8 [N][K/block][block*bits/8]
(ort.matmulnbits.int{2,4,8}.{sym,asym} conventions), scales [N * K/block] in A's dtype, optional
packed uint8 zero points. accuracy_level 0 dequantizes B and accumulates in fp32; 4 quantizes A
per block to int8 (act.ort.matmulnbits.int8_blk) and accumulates int32 block sums scaled by
a_scale * b_scale, where MLAS has such a kernel for the bit width (otherwise it falls back to fp32).

MLAS dispatches on cpuid with no environment knob, so `observe` reports the host's level and
an ISA cap below it cannot be honoured (the tests say so instead of pretending).

How the weights arrive decides the code path (matmul_nbits.cc `MatMulNBits::PrePack`): `feed`
"constant" makes B, scales and zero points initializers, which PrePack packs at session creation
(onnxruntime 1.17 and 1.18 hand them to Neural Speed / BesTLA when K is a whole number of blocks);
"runtime_zp" keeps B and scales constant and feeds the zero points at run time (B packed, zero
points read in Compute); "runtime" feeds all three (nothing packed: `ComputeBUnpacked`). A fp16
model (`dtype` "fp16": A, scales and Y in float16) runs `MatMulNBits<MLFloat16>`, which on x86
converts A and the scales to float32 (`MlasConvertHalfToFloatBuffer`), computes as for float32 and
rounds Y to float16 (`MlasConvertFloatToHalfBuffer`).

On the spec engine (`matmulnbits_view`): 4-bit with zero points at accuracy_level 0, weights as
initializers, K ending inside a block (the operator takes ceil(K / block_size) blocks).
"""
from __future__ import annotations

import numpy as np

from kernels.layouts import View, as_numpy
from kernels.loading import import_failure
from kernels.onnxruntime import DENSE_ONLY
from kernels.registry import KernelInfo, register
from kernels.spec import KernelSpec, register_spec
from oracle.gemm.mlas_matmulnbits import grouped_weight

INFO = register(KernelInfo(
    name="onnxruntime.matmulnbits", package="onnxruntime", op="com.microsoft::MatMulNBits", module=__name__,
    conventions=tuple(f"ort.matmulnbits.int{b}.{s}" for b in (2, 4, 8) for s in ("sym", "asym"))
    + ("act.ort.matmulnbits.int8_blk",),
    isa_knobs=(), dtypes=("fp32", "fp16"),
    notes="bits 2/4/8, zero points optional, accuracy_level 0 (fp32) and 4 (int8 activations), block 16..2048, "
          "fp32 or fp16 A, weights as initializers or fed at run time, 1 or more threads",
    extra={"isa_note": "MLAS picks its kernels from cpuid; no knob caps it"}))

SPEC = register_spec(KernelSpec(
    kernel=INFO.name, call="matmulnbits_view", semantics="mlas.matmulnbits.level0",
    args=("x", "codes", "scales", "zp", "group"), threads=True, dtypes=("fp32", "fp16"),
    groups=(16, 32, 64, 128, 256), k_tail=True,
    source=f"{DENSE_ONLY}; matmul_nbits_helper.h CheckInputs: 'block_size must be a power of 2, and >= 16', "
           "k_blocks = (K + block_size - 1) / block_size"))

def available() -> dict:
    try:
        import onnx  # noqa: F401
        import onnxruntime as ort
    except Exception as e:  # noqa: BLE001
        return import_failure(("onnxruntime", "onnx"), "onnxruntime/onnx", e)
    if "CPUExecutionProvider" not in ort.get_available_providers():
        return {"ok": False, "reason": "no CPUExecutionProvider", "version": ort.__version__}
    return {"ok": True, "reason": "", "version": ort.__version__}

def observe() -> dict:
    import onnxruntime as ort

    from kernels.isa import levels_on_host

    levels = levels_on_host()
    return {"onnxruntime": ort.__version__, "mlas_level": levels[-1] if levels else "scalar",
            "note": f"mlas=cpuid({levels[-1] if levels else 'scalar'}, no knob)"}

FEEDS = {"constant": (), "runtime_zp": ("Z",), "runtime": ("B", "S", "Z")}  # inputs fed at run time
_ONNX = {"fp32": ("FLOAT", np.float32), "fp16": ("FLOAT16", np.float16)}

def _weights(weight, scales, zeros, dtype: str) -> dict[str, np.ndarray]:
    """B, scales (in A's dtype) and zero points by input name, in the operator's 1-D layouts."""
    named = {"B": weight, "S": scales.reshape(-1).astype(_ONNX[dtype][1])}
    if zeros is not None:
        named["Z"] = zeros.reshape(-1)
    return named

def _model(k: int, n: int, bits: int, block: int, accuracy_level: int, named: dict[str, np.ndarray],
           feed: str, dtype: str) -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    elem = getattr(TensorProto, _ONNX[dtype][0])
    runtime = FEEDS[feed]
    inputs = [helper.make_tensor_value_info("A", elem, [None, k])]
    inputs += [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(v.dtype), list(v.shape))
               for name, v in named.items() if name in runtime]
    inits = [numpy_helper.from_array(v, name) for name, v in named.items() if name not in runtime]
    node = helper.make_node("MatMulNBits", ["A", *named], ["Y"], domain="com.microsoft", K=k, N=n, bits=bits,
                            block_size=block, accuracy_level=accuracy_level)
    graph = helper.make_graph([node], "matmulnbits", inputs, [helper.make_tensor_value_info("Y", elem, [None, n])],
                              inits)
    # the graph holds no standard-domain node, so the oldest IR and opset any MatMulNBits release reads
    # (onnxruntime 1.17 loads IR <= 9) serve every release alike
    model = helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", 17),
                                                                 helper.make_opsetid("com.microsoft", 1)])
    return model.SerializeToString()

def matmulnbits(a: np.ndarray, weight: np.ndarray, scales: np.ndarray, zeros: np.ndarray | None, *, k: int,
                n: int, bits: int, block: int, accuracy_level: int, feed: str = "constant", threads: int = 1,
                dtype: str = "fp32") -> np.ndarray:
    """a (M, K) -> y (M, N) in `dtype` through a one-node model on the CPU execution provider."""
    import onnxruntime as ort

    if feed not in FEEDS or dtype not in _ONNX:
        raise ValueError(f"feed {feed!r} (one of {sorted(FEEDS)}), dtype {dtype!r} (one of {sorted(_ONNX)})")
    named = _weights(weight, scales, zeros, dtype)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(_model(k, n, bits, block, accuracy_level, named, feed, dtype), opts,
                                providers=["CPUExecutionProvider"])
    feeds = {name: v for name, v in named.items() if name in FEEDS[feed]}
    return sess.run(None, {"A": np.ascontiguousarray(a, dtype=_ONNX[dtype][1]), **feeds})[0]


def matmulnbits_view(x: View, codes: np.ndarray, scales: np.ndarray, zp: np.ndarray, group: int, *,
                     threads: int | None = None) -> np.ndarray:
    """4-bit MatMulNBits with packed zero points at accuracy_level 0, B, scales and zero points as
    initializers (a model's form) packed by ort.matmulnbits.int4.asym, A and Y in x's dtype.
    threads None: ORT's default pool (intra_op_num_threads 0), what a caller gets."""
    a = as_numpy(x)
    dtype = next((name for name, (_, t) in _ONNX.items() if t == a.dtype), str(a.dtype))
    qw, conv = grouped_weight(codes, scales, zp, group)
    p = conv.pack(qw)
    n, k = codes.shape
    return matmulnbits(a, p["weight"], p["scales"], p["zeros"], k=k, n=n, bits=4, block=group, accuracy_level=0,
                       threads=threads or 0, dtype=dtype)
