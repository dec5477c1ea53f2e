"""ONNX Runtime com.microsoft::MatMulNBits on the CPU execution provider (MLAS).

Upstream: onnxruntime/contrib_ops/cpu/quantization/matmul_nbits.cc and MLAS
(onnxruntime/core/mlas/lib/sqnbitgemm*.cpp, qnbitgemm*.cpp). B is uint8 [N][K/block][block*bits/8]
(ort.matmulnbits.int{2,4,8}.{sym,asym} conventions), scales [N * K/block] in A's dtype, optional
packed uint8 zero points. accuracy_level 0 dequantizes B and accumulates in fp32; 4 quantizes A
per block to int8 (act.ort.matmulnbits.int8_blk) and accumulates int32 block sums scaled by
a_scale * b_scale, where MLAS has such a kernel for the bit width (otherwise it falls back to fp32).

MLAS dispatches on cpuid with no environment knob, so `observe` reports the host's level and
an ISA cap below it cannot be honoured (the tests say so instead of pretending).
"""
from __future__ import annotations

import numpy as np

from kernels.loading import import_failure
from kernels.registry import KernelInfo, register

INFO = register(KernelInfo(
    name="onnxruntime.matmulnbits", package="onnxruntime", op="com.microsoft::MatMulNBits", module=__name__,
    conventions=tuple(f"ort.matmulnbits.int{b}.{s}" for b in (2, 4, 8) for s in ("sym", "asym"))
    + ("act.ort.matmulnbits.int8_blk",),
    isa_knobs=(), dtypes=("fp32",),
    notes="bits 2/4/8, zero points optional, accuracy_level 0 (fp32) and 4 (int8 activations), block 16..256",
    extra={"isa_note": "MLAS picks its kernels from cpuid; no knob caps it"}))

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

def _model(k: int, n: int, bits: int, block: int, accuracy_level: int, weight, scales, zeros) -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(weight, "B"), numpy_helper.from_array(scales.reshape(-1), "S")]
    inputs = ["A", "B", "S"]
    if zeros is not None:
        inits.append(numpy_helper.from_array(zeros.reshape(-1), "Z"))
        inputs.append("Z")
    node = helper.make_node("MatMulNBits", inputs, ["Y"], domain="com.microsoft", K=k, N=n, bits=bits,
                            block_size=block, accuracy_level=accuracy_level)
    graph = helper.make_graph([node], "matmulnbits", [helper.make_tensor_value_info("A", TensorProto.FLOAT, [None, k])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, n])], inits)
    # the graph holds no standard-domain node, so the oldest IR and opset any MatMulNBits release reads
    # (onnxruntime 1.17 loads IR <= 9) serve every release alike
    model = helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", 17),
                                                                 helper.make_opsetid("com.microsoft", 1)])
    return model.SerializeToString()

def matmulnbits(a: np.ndarray, weight: np.ndarray, scales: np.ndarray, zeros: np.ndarray | None, *, k: int,
                n: int, bits: int, block: int, accuracy_level: int) -> np.ndarray:
    """a fp32 (M, K) -> y fp32 (M, N) through a one-node model on the CPU execution provider."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(_model(k, n, bits, block, accuracy_level, weight, scales, zeros), opts,
                                providers=["CPUExecutionProvider"])
    return sess.run(None, {"A": np.ascontiguousarray(a, dtype=np.float32)})[0]
