"""GEMM semantics: what a quantized matmul must compute, one module per family.

Integer stages are exact. Float stages give a bit-exact model where the kernel's order of
operations is fixed and known, and otherwise the exact result with a rigorous per-element
bound (oracle/bounds.py) for the declared accumulation and output dtypes.
"""
