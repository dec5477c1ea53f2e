"""MatMulNBits conventions against ONNX Runtime's own quantizer and kernel, byte for byte."""
from __future__ import annotations

import numpy as np
import pytest

import oracle.conventions as conventions

pybind = pytest.importorskip("onnxruntime.capi._pybind_state", reason="onnxruntime not installed")


def _ort_quantize(w: np.ndarray, bits: int, block: int, symmetric: bool):
    """The C++ helper on K padded with zeros and told the padded K (the `.padded_k` conventions)."""
    n, k = w.shape
    per = 8 // bits
    k_blocks = -(-k // block)
    b = np.pad(w.T, ((0, k_blocks * block - k), (0, 0)))  # [K, N] as the graph holds it
    packed = np.zeros((n, k_blocks, (block + per - 1) // per), dtype=np.uint8)
    zp = np.zeros((n, (k_blocks + per - 1) // per), dtype=np.uint8)
    scales = np.zeros((n, k_blocks), dtype=np.float32)
    getattr(pybind, f"quantize_matmul_{bits}bits")(packed, np.ascontiguousarray(b), scales, zp, block, n,
                                                   b.shape[0], symmetric)
    return packed, scales, zp


def _w(seed: int, n: int, k: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((n, k)).astype(np.float32)
    w[0] = 0.0
    w[1, :] = np.abs(w[1])  # one-signed rows: the sign of the scale and the zero point
    w[2, :] = -np.abs(w[2])
    w[3, 0], w[3, 1] = 2.0, -2.0  # |max| == |min|: MLAS takes min
    return w


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("sym", [True, False])
@pytest.mark.parametrize("k", [64, 80])  # 80: a partial last block of 16
def test_quantizer_bytes(bits: int, sym: bool, k: int) -> None:
    conv = conventions.get(f"ort.matmulnbits.int{bits}.{'sym' if sym else 'asym'}.padded_k")
    w = _w(bits + k, 8, k)
    packed, scales, zp = _ort_quantize(w, bits, conv.group_size, sym)
    ours = conv.pack(conv.quantize(w))
    assert np.array_equal(ours["weight"], packed)
    assert np.array_equal(ours["scales"].view(np.uint32), scales.view(np.uint32))
    if not sym:
        assert np.array_equal(ours["zeros"], zp)


def _matmulnbits_model(n: int, k: int, bits: int, block: int, packed, scales, zeros):
    pytest.importorskip("onnx", reason="onnx not installed")
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(packed, "B"), numpy_helper.from_array(scales.reshape(-1), "S")]
    inputs = ["A", "B", "S"]
    if zeros is not None:
        inits.append(numpy_helper.from_array(zeros.reshape(-1), "Z"))
        inputs.append("Z")
    node = helper.make_node("MatMulNBits", inputs, ["Y"], domain="com.microsoft", K=k, N=n, bits=bits,
                            block_size=block, accuracy_level=0)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("A", TensorProto.FLOAT, [None, k])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, n])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("com.microsoft", 1)],
                              ir_version=10)
    return model.SerializeToString()


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("sym", [True, False])
@pytest.mark.parametrize("k", [64, 81])  # 81: the tooling's 0 codes and stale slots past K are not read
def test_kernel_dequantizes_as_the_convention(bits: int, sym: bool, k: int) -> None:
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed")
    conv = conventions.get(f"ort.matmulnbits.int{bits}.{'sym' if sym else 'asym'}")
    n = 16
    w = _w(7 * bits, n, k)
    qw = conv.quantize(w)
    p = conv.pack(qw)
    sess = ort.InferenceSession(_matmulnbits_model(n, k, bits, conv.group_size, p["weight"], p["scales"],
                                                   p.get("zeros")), providers=["CPUExecutionProvider"])
    y = sess.run(None, {"A": np.eye(k, dtype=np.float32)})[0]  # row j of the identity picks weight column j
    assert np.array_equal(y.T, conv.dequantize(qw))
