"""Kept only for kernels/mutants/pytorch.py, which imports `quantize_rows` from here.

The kernels' arithmetic models live in the oracle (oracle/gemm/aten_*.py); delete this module
once that import reads `from oracle.gemm.aten_dyn_quant_4bit import quantize_rows`.
"""
from oracle.gemm.aten_dyn_quant_4bit import quantize_rows

__all__ = ["quantize_rows"]
