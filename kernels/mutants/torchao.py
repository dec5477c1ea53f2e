"""Wrong torchao int8 matmuls: int_matmul and int_scaled_matmul on CPU (target kernels.torchao.ao) and the
Triton int_matmul_kernel and int_scaled_matmul_kernel (target kernels.triton.torchao_intmm)."""
from __future__ import annotations

import ml_dtypes
import numpy as np

from kernels.layouts import as_numpy, dense
from kernels.mutants import mutant, real

T = "kernels.torchao.ao"
TT = "kernels.triton.torchao_intmm"
F = np.float32


@mutant("torchao.u8_compensation_missing", T, "int_matmul_view", "torchao.int_matmul",
        mirrors="s8 activations shifted to u8 (+128) for a u8 x s8 instruction (VNNI vpdpbusd) without "
                "subtracting 128 * column sums of B: the compensation term oneDNN and fbgemm precompute",
        caught_by="conformance/test_specs.py::test_spec_*[torchao.int_matmul-*")
def u8_compensation_missing(a, b_kn, *, threads=None):
    """int32 results that keep the + 128 * sum_k b[k, n] of the u8 shift."""
    c = real(T, "int_matmul_view")(a, b_kn, threads=threads).astype(np.int64)
    c = c + 128 * as_numpy(b_kn).astype(np.int64).sum(axis=0)[None, :]
    return c.astype(np.uint32).view(np.int32)


@mutant("torchao.per_tensor_not_per_token_scale", T, "int_scaled_matmul_view", "torchao.int_scaled_matmul",
        mirrors="one activation scale broadcast to every row where each token has its own (a [M, 1] scale "
                "read as a scalar)",
        caught_by="conformance/test_specs.py::test_spec_case[torchao.int_scaled_matmul-*")
def per_tensor_scale(a, b_kn, row_scales, *, threads=None):
    """Every row scaled by the first row's scale."""
    s = np.asarray(row_scales, F).reshape(-1)
    return real(T, "int_scaled_matmul_view")(a, b_kn, np.full_like(s, s[0]), threads=threads)


@mutant("torchao.scale_bf16_before_multiply", T, "int_scaled_matmul_view", "torchao.int_scaled_matmul",
        mirrors="the per-token scale cast to the model dtype (bf16) before the int32 accumulator is scaled, "
                "instead of scaling in fp32 and casting after",
        caught_by="conformance/test_specs.py::test_spec_case[torchao.int_scaled_matmul-*")
def scale_bf16_first(a, b_kn, row_scales, *, threads=None):
    """Row scales rounded to bf16 before they multiply the int32 sums."""
    s = np.asarray(row_scales, F).astype(ml_dtypes.bfloat16).astype(F)
    return real(T, "int_scaled_matmul_view")(a, b_kn, s, threads=threads)


@mutant("torchao.triton_intmm_drops_k_tail", TT, "int_matmul_view", "triton.torchao.int_matmul",
        mirrors="a K loop of whole BLOCK_K steps with no masked remainder (range(K // BLOCK_K)): right whenever K "
                "is a multiple of the block, as the shapes of most upstream tests are",
        caught_by="conformance/test_specs.py::test_spec_case[triton.torchao.int_matmul-*")
def triton_intmm_drops_k_tail(a, b_kn, *, out=None, block=None):
    """The last K % 32 products (the interpreter's BLOCK_K) left out of every sum."""
    av = as_numpy(a).copy()
    av[:, av.shape[1] - av.shape[1] % 32:] = 0
    return real(TT, "int_matmul_view")(dense(av), b_kn, out=out, block=block)


@mutant("torchao.triton_scaled_ftz", TT, "int_scaled_matmul_view", "triton.torchao.int_scaled_matmul",
        mirrors="an epilogue compiled with denormals flushed (fast-math, ftz on the fp32 multiply): a subnormal "
                "row scale, and any product below the smallest normal, become zero",
        caught_by="conformance/test_specs.py::test_spec_case[triton.torchao.int_scaled_matmul-extremes-*")
def triton_scaled_ftz(a, b_kn, row_scales, *, block=None):
    """Subnormal row scales read as 0 and subnormal outputs flushed to 0 (sign kept)."""
    s = np.asarray(row_scales, F).reshape(-1)
    s = np.where(np.abs(s) < np.finfo(F).tiny, F(0), s)
    y = real(TT, "int_scaled_matmul_view")(a, b_kn, s, block=block)
    return np.where(np.abs(y) < np.finfo(F).tiny, np.copysign(F(0), y), y).astype(F)


@mutant("torchao.da8w4_group_scale_per_channel", T, "da8w4_view", "torchao.da8w4_linear_cpu",
        mirrors="group-wise weight scales read per output channel (the [Nc, G, block_n] scales indexed without the "
                "group, or a per-channel checkpoint's [N, 1] scale loader reused for [N, K / group] scales): right "
                "whenever K holds one group, as a single-group smoke test does",
        caught_by="conformance/test_specs.py::test_spec_*[torchao.da8w4_linear_cpu-*")
def da8w4_group_scale_per_channel(x, codes, scales, zp, group, *, threads=None):
    """Every group of a column scaled by the column's first group scale, through the real kernel."""
    s = np.asarray(scales, F)
    return real(T, "da8w4_view")(x, codes, np.repeat(s[:, :1], s.shape[1], axis=1), zp, group, threads=threads)
