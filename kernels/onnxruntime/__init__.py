"""Adapters for ONNX Runtime's CPU contrib kernels (MLAS), one module per operator.

Importing this package registers them; onnxruntime and onnx are imported only in the worker.
"""
from kernels.onnxruntime import matmulnbits  # noqa: F401  (imported for its registration)
from kernels.onnxruntime import int8_gemm  # noqa: F401,E402  (MatMulInteger, QLinearMatMul, DynamicQuantizeMatMul, ...)
