"""MatMulNBits conventions against ONNX Runtime's own quantizer and kernel, byte for byte.
onnxruntime runs in a worker process (tests/kernel_calls.py)."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import oracle.conventions as conventions
from tests.kernel_calls import needs, run

HERE = "tests.test_conventions_onnxruntime"
needs("onnxruntime", "onnxruntime not installed")


def _ort_quantize(w: np.ndarray, bits: int, block: int, symmetric: bool):
    """The C++ helper on K padded with zeros and told the padded K (the `.padded_k` conventions)."""
    padded_k = -(-w.shape[1] // block) * block
    return run("tests.kernel_calls", "ort_quantize_matmul", w, bits, block, symmetric, padded_k)


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


def matmulnbits_identity(n: int, k: int, bits: int, block: int, packed: np.ndarray, scales: np.ndarray,
                         zeros: np.ndarray | None) -> np.ndarray:
    """Worker side: a one-node MatMulNBits graph on ORT's CPU provider, run on the K x K identity:
    row j of the output is weight column j."""
    import onnxruntime as ort

    sess = ort.InferenceSession(_matmulnbits_model(n, k, bits, block, packed, scales, zeros),
                                providers=["CPUExecutionProvider"])
    return sess.run(None, {"A": np.eye(k, dtype=np.float32)})[0]


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("sym", [True, False])
@pytest.mark.parametrize("k", [64, 81])  # 81: the tooling's 0 codes and stale slots past K are not read
def test_kernel_dequantizes_as_the_convention(bits: int, sym: bool, k: int) -> None:
    if importlib.util.find_spec("onnx") is None:
        pytest.skip("onnx not installed")
    conv = conventions.get(f"ort.matmulnbits.int{bits}.{'sym' if sym else 'asym'}")
    n = 16
    w = _w(7 * bits, n, k)
    qw = conv.quantize(w)
    p = conv.pack(qw)
    y = run(HERE, "matmulnbits_identity", n, k, bits, conv.group_size, p["weight"], p["scales"], p.get("zeros"))
    assert np.array_equal(y.T, conv.dequantize(qw))
