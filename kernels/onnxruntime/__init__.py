"""Adapters for ONNX Runtime's CPU contrib kernels (MLAS), one module per operator.

Importing this package registers them; onnxruntime and onnx are imported only in the worker.
"""

# why every ONNX Runtime spec claims dense operands only (defined before the adapters import it)
DENSE_ONLY = ("ONNX tensors have no strides (an OrtValue 'only represents a contiguous array'): a strided feed is "
              "copied by the Python binding and an initializer serialized by onnx.numpy_helper.from_array, so no "
              "caller's view reaches MLAS")

from kernels.onnxruntime import matmulnbits  # noqa: F401  (imported for its registration)
from kernels.onnxruntime import int8_gemm  # noqa: F401,E402  (MatMulInteger, QLinearMatMul, DynamicQuantizeMatMul, ...)
