"""Wrong BesTLA kernels as shipped in auto-round-lib (target kernels.bestla.ark).

`woqgemm` takes signed codes (N, K), scales (N, K/g) and optional signed zero points and computes
x @ ((q - zp) * s).T + bias; int4 symmetric codes are stored q + 8 (S4_FULLRANGE).
`woqgemm_view` is the asymmetric int4 GEMM over a caller's view of x, judged by the spec engine.
`woqgemm_s8` is oneDNN's dynamic per-tensor int8: sa = amax * fp32(1/127), codes RNE(x / sa)
(reorder with a destination scale), y = float(acc) * (sa * sb) + bias.
A mutant whose bug changes only codes or weights adds the bug's exact effect to the real
kernel's output, so it agrees with the kernel bit for bit wherever the bug does not bite.
"""
from __future__ import annotations

import ml_dtypes
import numpy as np

from kernels.layouts import View, as_numpy, dense
from kernels.mutants import mutant, real
from oracle.rounding import half_away

T = "kernels.bestla.ark"
F = np.float32


@mutant("bestla.int4_missing_plus_8", T, "woqgemm", "bestla.woqgemm",
        mirrors="signed int4 stored without the + 8 shift S4_FULLRANGE expects (or unpacked without the - 8): "
                "every code has its sign bit flipped",
        caught_by="conformance/test_bestla_woqgemm.py::test_bits_sym_asym[*-sym-4]")
def int4_missing_shift(x, codes, scales, zeros, bias, *, bits, group_size, act="fp32", compute="fp32",
                       scale_type="fp32"):
    """int4 symmetric codes q read back as q + 8 wrapped into [-8, 7] (q XOR 8 on the nibble)."""
    if bits == 4 and zeros is None:
        c = np.asarray(codes, np.int8)
        codes = np.where(c < 0, c + 8, c - 8).astype(np.int8)
    return real(T, "woqgemm")(x, codes, scales, zeros, bias, bits=bits, group_size=group_size, act=act,
                              compute=compute, scale_type=scale_type)


@mutant("bestla.zero_point_twice", T, "woqgemm", "bestla.woqgemm",
        mirrors="the zero point subtracted both when repacking and again in the dequantizing GEMM "
                "(w = (q - 2 zp) s), the double-compensation bug of layered quantization APIs",
        caught_by="conformance/test_bestla_woqgemm.py::test_bits_sym_asym[*-asym-*]")
def zero_point_twice(x, codes, scales, zeros, bias, *, bits, group_size, act="fp32", compute="fp32",
                     scale_type="fp32"):
    """Asymmetric weights dequantized as (q - 2 zp) * s."""
    y = real(T, "woqgemm")(x, codes, scales, zeros, bias, bits=bits, group_size=group_size, act=act,
                           compute=compute, scale_type=scale_type)
    if zeros is None or act != "fp32":
        return y
    zs = np.repeat(np.asarray(zeros, np.float64) * np.asarray(scales, np.float64), group_size, axis=1)
    return (y.astype(np.float64) - np.asarray(x, np.float64) @ zs.T).astype(F)


@mutant("bestla.scale_bf16_before_dequant", T, "woqgemm", "bestla.woqgemm",
        mirrors="fp32 scales stored as bf16 inside the packed blob while the caller declared fp32 "
                "(scale rounded before instead of kept): a 2^-9 relative error on every weight",
        caught_by="conformance/test_bestla_woqgemm.py::test_bits_sym_asym*")
def scale_bf16(x, codes, scales, zeros, bias, *, bits, group_size, act="fp32", compute="fp32", scale_type="fp32"):
    """fp32 scales rounded to bf16 (RNE) before the GEMM uses them."""
    if scale_type == "fp32":
        scales = np.asarray(scales, F).astype(ml_dtypes.bfloat16).astype(F)
    return real(T, "woqgemm")(x, codes, scales, zeros, bias, bits=bits, group_size=group_size, act=act,
                              compute=compute, scale_type=scale_type)


@mutant("bestla.bias_added_twice", T, "woqgemm", "bestla.woqgemm",
        mirrors="a fused epilogue adds the bias and the framework's linear adds it again (double bias after "
                "fusing a Linear into a quantized GEMM)",
        caught_by="conformance/test_bestla_woqgemm.py::test_bits_sym_asym*")
def bias_twice(x, codes, scales, zeros, bias, *, bits, group_size, act="fp32", compute="fp32", scale_type="fp32"):
    """y = x @ w.T + bias + bias."""
    y = real(T, "woqgemm")(x, codes, scales, zeros, bias, bits=bits, group_size=group_size, act=act,
                           compute=compute, scale_type=scale_type)
    return y if bias is None else (y + np.asarray(bias).astype(y.dtype)).astype(y.dtype)


def _s8_with_codes(x, w, w_scale, bias, codes_of):
    """woqgemm_s8 whose activation codes are codes_of(v) for v = x * fp32(1/sa): the real output plus the
    exact effect of the changed codes. (The shipped kernel multiplies by the reciprocal: on inputs where
    RNE(x * (1/sa)) and RNE(x / sa) differ it matched the former 64 times out of 64.)"""
    y = real(T, "woqgemm_s8")(x, w, w_scale, bias)
    x = np.asarray(x, F)
    sa = F(F(np.max(np.abs(x))) * F(1 / 127)) if x.size else F(0)
    if sa == 0:
        return y
    v = (x * F(F(1) / sa)).astype(F)
    right = np.clip(np.rint(v), -128, 127)
    wrong = np.clip(codes_of(v), -128, 127)
    delta = (wrong - right).astype(np.int64) @ np.asarray(w, np.int64).T
    return (y.astype(np.float64) + delta * (np.float64(sa) * np.asarray(w_scale, np.float64))[None, :]).astype(F)


@mutant("bestla.s8_per_token_not_per_tensor", T, "woqgemm_s8", "bestla.woqgemm_s8",
        mirrors="a dynamic int8 kernel that scales each row (token) by its own amax where the declared "
                "scheme is one scale for the whole tensor: better numerics, different numbers",
        caught_by="conformance/test_bestla_int8.py::test_woqgemm_s8*")
def s8_per_token(x, w, w_scale, bias=None):
    """Activations quantized per row (sa = row amax * fp32(1/127)) instead of per tensor."""
    x = np.asarray(x, F)
    sa = (np.max(np.abs(x), axis=1) * F(1 / 127)).astype(F)
    with np.errstate(all="ignore"):
        q = np.clip(np.nan_to_num(np.rint((x * np.where(sa != 0, F(1) / sa, F(0))[:, None]).astype(F))), -128, 127)
    acc = q.astype(np.int64) @ np.asarray(w, np.int64).T
    y = (acc.astype(F) * (sa[:, None] * np.asarray(w_scale, F)[None, :]).astype(F)).astype(F)
    return y if bias is None else (y + np.asarray(bias, F)).astype(F)


@mutant("bestla.s8_half_away_not_rne", T, "woqgemm_s8", "bestla.woqgemm_s8",
        mirrors="round half away from zero (std::round, roundf) where oneDNN's reorder rounds half to even: "
                "the quantizer written in C++ disagrees with the library on every exact half step",
        caught_by="conformance/test_bestla_int8.py::test_woqgemm_s8_ties")
def s8_half_away(x, w, w_scale, bias=None):
    """Dynamic int8 activation codes rounded half away from zero instead of half to even."""
    return _s8_with_codes(x, w, w_scale, bias, half_away)


@mutant("bestla.bias_dropped_at_m1", T, "woqgemm", "bestla.woqgemm",
        mirrors="a GEMV (M = 1) fast path whose epilogue never adds the bias while the GEMM path does: right for "
                "every batch of two or more rows and for every layer without a bias",
        caught_by="conformance/test_bestla_woqgemm.py::test_gemv_bias*")
def bias_dropped_at_m1(x, codes, scales, zeros, bias, **kw):
    """For M = 1 the bias is left out: y = x @ w.T."""
    return real(T, "woqgemm")(x, codes, scales, zeros, None if np.asarray(x).shape[0] == 1 else bias, **kw)


@mutant("bestla.woqgemm_drops_partial_group", T, "woqgemm_view", "bestla.woqgemm",
        mirrors="a kernel that loops over K // group whole groups while its packer keeps ceil(K / group): "
                "right for every K that is a whole number of groups, the partial last group never summed",
        caught_by="conformance/test_specs.py::test_spec_case[bestla.woqgemm-k_boundary-*")
def woqgemm_drops_partial_group(x: View, codes, scales, zp, group: int, *, threads=None):
    """The activations of a partial last group (the last K % group) read as zero."""
    xv = as_numpy(x)
    tail = xv.shape[1] % group
    if tail:
        xv = xv.copy()
        xv[:, -tail:] = 0
        x = dense(xv)
    return real(T, "woqgemm_view")(x, codes, scales, zp, group, threads=threads)
