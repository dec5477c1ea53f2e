"""Wrong PyTorch CPU kernels: _int_mm, _weight_int4pack_mm_for_cpu, _weight_int8pack_mm, _dyn_quant_matmul_4bit.

Targets and their arguments are those of kernels/pytorch/*.py. tinygemm weights are
(q - 8) * s + z with scales and zeros passed as (K/g, N, 2); _dyn_quant_matmul_4bit's reference
path quantizes each activation row asymmetrically (zero point zp) and sums (a_q - zp) * (nibble - 8)
per block (aten/src/ATen/native/cpu/int4mm_kernel.cpp).
"""
from __future__ import annotations

import ml_dtypes
import numpy as np

from kernels.layouts import as_numpy, dense
from kernels.mutants import mutant, real

F = np.float32
MM = "kernels.pytorch.int_mm"
I4 = "kernels.pytorch.weight_int4pack_mm"
I8 = "kernels.pytorch.weight_int8pack_mm"
DQ = "kernels.pytorch.dyn_quant_matmul_4bit"


_SPECS = "conformance/test_specs.py::"


def _mm(a, b_kn, out, threads, acc: np.ndarray | None = None):
    """The real _int_mm over the views, or `acc` (an int32 result the mutant computed) written where the
    real kernel would put it."""
    if acc is None:
        return real(MM, "int_mm_view")(a, b_kn, out=out, threads=threads)
    if out is None:
        return acc
    storage = out.storage
    as_numpy(out, writeable=True)[...] = acc
    return storage


@mutant("torch.int_mm_int16_pair_saturation", MM, "int_mm_view", "torch.int_mm",
        mirrors="s8 x s8 run as u8(a + 128) x s8 through vpmaddubsw, whose int16 pair sums saturate "
                "(the oneDNN 'int8 nuances' overflow; BesTLA's woqgemm_s8 really does this on AVX2)",
        caught_by=_SPECS + "test_spec_case[torch.int_mm-extremes-*")
def int_mm_int16(a, b_kn, *, out=None, threads=None):
    """int32 sums built from int16-saturated pairs (a+128)*b + (a'+128)*b', then the 128 * colsum(b) compensation."""
    a, b_kn = as_numpy(a), as_numpy(b_kn)
    k = a.shape[1]
    au = np.pad(a.astype(np.int64) + 128, ((0, 0), (0, k % 2)))
    b = np.pad(b_kn.astype(np.int64), ((0, k % 2), (0, 0)))
    pairs = np.einsum("mpt,ptn->mpn", au.reshape(a.shape[0], -1, 2), b.reshape(-1, 2, b.shape[1]))
    acc = np.clip(pairs, -32768, 32767).sum(axis=1) - 128 * b.sum(axis=0)
    return _mm(None, None, out, threads, acc.astype(np.int64).astype(np.uint32).view(np.int32))  # int32 wraps


@mutant("torch.int_mm_saturates_int32", MM, "int_mm_view", "torch.int_mm",
        mirrors="an int32 accumulator built with saturating adds (vpaddsd-style, or a clamp before the store) "
                "instead of the wrapping int32 arithmetic the op's int32 result type means",
        caught_by=_SPECS + "test_spec_case[torch.int_mm-extremes-a-128_b-128_m1k131584n2]")
def int_mm_saturates(a, b_kn, *, out=None, threads=None):
    """The exact sum clamped to the int32 range instead of wrapped."""
    exact = as_numpy(a).astype(np.int64) @ as_numpy(b_kn).astype(np.int64)
    return _mm(None, None, out, threads, np.clip(exact, -2 ** 31, 2 ** 31 - 1).astype(np.int32))


@mutant("torch.int_mm_refuses_odd_k", MM, "int_mm_view", "torch.int_mm",
        mirrors="a kernel whose fast path takes only K % 4 == 0 (int8 dot products in groups of four) and "
                "throws 'not supported' for the rest instead of falling back, though its API promises any K",
        caught_by=_SPECS + "test_spec_*[torch.int_mm-*")
def int_mm_refuses_odd_k(a, b_kn, *, out=None, threads=None):
    """RuntimeError('not supported') for K not a multiple of 4; the real kernel otherwise."""
    if a.shape[1] % 4:
        raise RuntimeError("not supported")
    return _mm(a, b_kn, out, threads)


@mutant("torch.int_mm_clobbers_its_input", MM, "int_mm_view", "torch.int_mm",
        mirrors="a kernel that packs or negates A in place to save a buffer (an in-place reorder of the "
                "activation) and never restores it: the result is right, the caller's tensor is not",
        caught_by=_SPECS + "test_spec_*[torch.int_mm-*")
def int_mm_clobbers(a, b_kn, *, out=None, threads=None):
    """The right int32 product, with A's first element negated in place afterwards."""
    c = _mm(a, b_kn, out, threads)
    first = a.storage[a.offset]
    a.storage[a.offset] = -first if first not in (0, -128) else 1
    return c


@mutant("torch.int_mm_writes_past_its_output", MM, "int_mm_view", "torch.int_mm",
        mirrors="a kernel whose last tile stores a full vector past the end of C (a store without the tail "
                "mask): right values, and the four bytes after the output clobbered",
        caught_by=_SPECS + "test_spec_case[torch.int_mm-*")
def int_mm_writes_past(a, b_kn, *, out=None, threads=None):
    """The real result, then a zero stored just past the output view's last element."""
    c = _mm(a, b_kn, out, threads)
    if out is not None:
        end = out.offset + (out.shape[0] - 1) * out.strides[0] + out.shape[1]
        c[end] = 0
    return c


@mutant("torch.int_mm_assumes_dense_rows", MM, "int_mm_view", "torch.int_mm",
        mirrors="a kernel that takes A's data pointer and assumes a row stride of K (lda = K), as hand-written "
                "kernels do when the framework's contiguity check is skipped: wrong rows for a slice, an "
                "expand or a transpose",
        caught_by=_SPECS + "test_spec_layout[torch.int_mm-a-*")
def int_mm_dense_rows(a, b_kn, *, out=None, threads=None):
    """A read from its first element with row stride K, whatever its real strides."""
    m, k = a.shape
    flat = np.resize(a.storage[a.offset:], m * k)  # past the storage's end: its start again, not a crash
    return _mm(dense(flat.reshape(m, k)), b_kn, out, threads)


_F8 = "test_spec_case[torch.weight_int8pack_mm-"


def _i8(x, w, scales, threads, *, x_values: np.ndarray | None = None):
    """The real _weight_int8pack_mm on the views (or on dense `x_values` instead of x)."""
    return real(I8, "int8pack_mm_view")(x if x_values is None else dense(x_values), w, scales, threads=threads)


@mutant("torch.int8pack_blocks_in_half", I8, "int8pack_mm_view", "torch.weight_int8pack_mm",
        mirrors="a kernel that sums each 32-element block of K in the activation's half type (fp16/bf16 "
                "partial sums) and only the blocks in fp32: inside the fp32 bound on Gaussian data",
        caught_by=_SPECS + _F8 + "absorption-*")
def int8pack_blocks_half(x, w, scales, *, threads=None):
    """Per-32 block partial sums rounded to x's dtype after every product (fp32 x: the real kernel)."""
    xv = as_numpy(x)
    if xv.dtype == np.float32:
        return _i8(x, w, scales, threads)
    wf = (as_numpy(w).astype(F) * np.asarray(scales).astype(F)[:, None]).astype(F)
    total = np.zeros((xv.shape[0], wf.shape[0]), F)
    for k0 in range(0, xv.shape[1], 32):
        part = np.zeros_like(total).astype(xv.dtype)
        for k in range(k0, min(k0 + 32, xv.shape[1])):
            part = (part.astype(F) + xv[:, k:k + 1].astype(F) * wf[None, :, k]).astype(xv.dtype)
        total = (total + part.astype(F)).astype(F)
    return total.astype(xv.dtype)


@mutant("torch.int8pack_ties_away", I8, "int8pack_mm_view", "torch.weight_int8pack_mm",
        mirrors="an fp32 -> bf16/fp16 output cast that rounds exact ties away from zero (adding half an ulp "
                "and truncating) instead of to nearest even",
        caught_by=_SPECS + _F8 + "ties-*")
def int8pack_ties_away(x, w, scales, *, threads=None):
    """The real output, except where the fp32 sum lies exactly halfway: there the value away from zero."""
    y = _i8(x, w, scales, threads)
    if y.dtype == np.float32:
        return y
    y32 = _i8(x, w, np.asarray(scales).astype(F), threads, x_values=as_numpy(x).astype(F)).astype(np.float64)
    lo, hi = y32.astype(y.dtype).astype(np.float64), np.nextafter(y32.astype(y.dtype), np.inf).astype(np.float64)
    down = np.nextafter(y32.astype(y.dtype), -np.inf).astype(np.float64)
    tie_up = (lo < y32) & (y32 - lo == hi - y32)
    tie_dn = (lo > y32) & (lo - y32 == y32 - down)
    away = np.where(tie_up & (y32 > 0), hi, np.where(tie_dn & (y32 < 0), down, y.astype(np.float64)))
    return away.astype(y.dtype)


@mutant("torch.int8pack_flushes_subnormals", I8, "int8pack_mm_view", "torch.weight_int8pack_mm",
        mirrors="a kernel run with FTZ/DAZ set in MXCSR (as some libraries set it globally for speed): "
                "subnormal results become zero",
        caught_by=_SPECS + _F8 + "subnormal-*")
def int8pack_ftz(x, w, scales, *, threads=None):
    """The real output with every subnormal value flushed to zero of its sign."""
    y = _i8(x, w, scales, threads)
    tiny = np.float64(ml_dtypes.finfo(y.dtype).smallest_normal)
    yf = y.astype(np.float64)
    return np.where(np.abs(yf) < tiny, np.copysign(0.0, yf), yf).astype(y.dtype)


@mutant("torch.int8pack_nan_to_zero", I8, "int8pack_mm_view", "torch.weight_int8pack_mm",
        mirrors="a max-based or clamp-based epilogue (max(x, -inf) style, or a saturating convert) that "
                "turns NaN into 0: a NaN activation disappears from the output",
        caught_by=_SPECS + _F8 + "nonfinite-*")
def int8pack_nan_zero(x, w, scales, *, threads=None):
    """The real output with NaN replaced by 0."""
    y = _i8(x, w, scales, threads)
    return np.where(np.isnan(y.astype(np.float64)), 0, y).astype(y.dtype)


@mutant("torch.int8pack_drops_k_tail", I8, "int8pack_mm_view", "torch.weight_int8pack_mm",
        mirrors="a vector loop over K in steps of 16 with no remainder loop (the 'no K tail' of ATen's own "
                "bf16 kernels, applied to every K)",
        caught_by=_SPECS + _F8 + "*tail_k*")
def int8pack_drops_tail(x, w, scales, *, threads=None):
    """The last K % 16 activations read as zero."""
    xv = as_numpy(x).copy()
    cut = xv.shape[1] - xv.shape[1] % 16
    xv[:, cut:] = 0
    return _i8(x, w, scales, threads, x_values=xv)


@mutant("torch.int8pack_threads_split_k", I8, "int8pack_mm_view", "torch.weight_int8pack_mm",
        mirrors="a kernel that splits K between threads when it has more than one and adds the partial sums "
                "at the end: each result is within the fp32 bound, but the bytes depend on the thread count",
        caught_by=_SPECS + "test_spec_threads[torch.weight_int8pack_mm]")
def int8pack_split_k(x, w, scales, *, threads=None):
    """With more than one thread, the two halves of K summed apart in fp32 and then added."""
    if not threads or threads < 2:
        return _i8(x, w, scales, threads)
    xv, wv = as_numpy(x), as_numpy(w)
    h = xv.shape[1] // 2
    s32 = np.asarray(scales).astype(F)
    halves = [_i8(None, dense(wv[:, sl].copy()), s32, 1, x_values=xv[:, sl].astype(F)).astype(F)
              for sl in (slice(0, h), slice(h, None))]
    return (halves[0] + halves[1]).astype(F).astype(xv.dtype)


@mutant("torch.int4pack_zero_point_sign", I4, "int4pack_mm", "torch.weight_int4pack_mm",
        mirrors="an affine zero point (w = (q - zp) s) passed to tinygemm, which adds it (w = (q - 8) s + z): "
                "the sign confusion between the two zero-point domains torchao documents",
        caught_by="conformance/test_pytorch_weight_only.py::test_int4pack_*")
def int4pack_zero_sign(x, codes, scales_and_zeros, group_size, inner_k_tiles=2):
    """tinygemm weights formed as (q - 8) * s - z instead of (q - 8) * s + z."""
    sz = np.array(scales_and_zeros)
    sz[..., 1] = -sz[..., 1]
    return real(I4, "int4pack_mm")(x, codes, sz, group_size, inner_k_tiles)


@mutant("torch.int4pack_scales_transposed", I4, "int4pack_mm", "torch.weight_int4pack_mm",
        mirrors="a scale buffer laid out [K/g][N] indexed as [N][K/g] (groups and channels swapped), the "
                "classic layout slip between GPTQ/AWQ checkpoints and kernels",
        caught_by="conformance/test_pytorch_weight_only.py::test_int4pack_*")
def int4pack_transposed(x, codes, scales_and_zeros, group_size, inner_k_tiles=2):
    """Scales and zeros read with the group and channel strides swapped."""
    sz = np.asarray(scales_and_zeros)
    g, n = sz.shape[:2]
    wrong = np.ascontiguousarray(sz).reshape(n, g, 2).transpose(1, 0, 2)
    return real(I4, "int4pack_mm")(x, codes, np.ascontiguousarray(wrong), group_size, inner_k_tiles)


@mutant("torch.int4pack_group_boundary_off_by_one", I4, "int4pack_mm", "torch.weight_int4pack_mm",
        mirrors="group index computed as (k + 1) / group_size: the last weight of each group takes the next "
                "group's scale and zero (an off-by-one in a hand-tiled k loop)",
        caught_by="conformance/test_pytorch_weight_only.py::test_int4pack_*")
def int4pack_off_by_one(x, codes, scales_and_zeros, group_size, inner_k_tiles=2):
    """Weight k uses group min((k + 1) // g, G - 1): fp32 weights, an exact product, rounded once."""
    out = real(I4, "int4pack_mm")(x, codes, scales_and_zeros, group_size, inner_k_tiles)
    sz = np.asarray(scales_and_zeros).astype(F)
    k = codes.shape[1]
    gi = np.minimum((np.arange(k) + 1) // group_size, sz.shape[0] - 1)
    s, z = sz[gi, :, 0].T, sz[gi, :, 1].T  # (N, K)
    w = ((codes.astype(F) - F(8)) * s + z).astype(F)
    y = (np.asarray(x).astype(np.float64) @ w.T.astype(np.float64)).astype(F)
    out["y"] = y.astype(np.asarray(x).dtype)
    return out


_F4 = "test_spec_case[torch.weight_int4pack_mm-"


def _i4(x, codes, scales, zp, group, threads):
    return real(I4, "int4pack_mm_view")(x, codes, scales, zp, group, threads=threads)


def _tinygemm_weights(x, codes, scales, zp, group) -> np.ndarray:
    """fp32 tinygemm weights (q - 8) * s + z from the values the adapter stores (one rounding)."""
    from oracle.gemm.aten_int4pack import tinygemm_stored

    s, z = (np.repeat(v.astype(F), group, axis=1) for v in tinygemm_stored(scales, zp, x.storage.dtype))
    return ((codes.astype(F) - F(8)) * s + z).astype(F)


@mutant("torch.int4pack_blocks_summed_in_half", I4, "int4pack_mm_view", "torch.weight_int4pack_mm",
        mirrors="a w4a16 kernel that sums each 32-element block in fp32 but carries the running total across "
                "blocks in the activation's half type: inside the fp32 bound on Gaussian data at LLM K",
        caught_by=_SPECS + _F4 + "absorption-*")
def int4pack_blocks_half(x, codes, scales, zp, group, *, threads=None):
    """fp16/bf16 activations: 32-block fp32 partial sums added into an accumulator of x's dtype."""
    xv = as_numpy(x)
    if xv.dtype == np.float32:
        return _i4(x, codes, scales, zp, group, threads)
    w = _tinygemm_weights(x, codes, scales, zp, group).astype(np.float64)
    total = np.zeros((xv.shape[0], w.shape[0]), xv.dtype)
    for k0 in range(0, xv.shape[1], 32):
        part = (xv[:, k0:k0 + 32].astype(np.float64) @ w[:, k0:k0 + 32].T).astype(F)
        total = (total.astype(F) + part).astype(xv.dtype)
    return total


@mutant("torch.int4pack_drops_last_group", I4, "int4pack_mm_view", "torch.weight_int4pack_mm",
        mirrors="a GEMV whose group loop stops one group early when K spans more than two groups (an "
                "off-by-one in the K-block count): with signal spread over K it misses a fraction of the sum",
        caught_by=_SPECS + _F4 + "tail_k-*")
def int4pack_drops_last_group(x, codes, scales, zp, group, *, threads=None):
    """With three or more groups, the last group's weights read as zero (codes at the zero point)."""
    if codes.shape[1] <= 2 * group:
        return _i4(x, codes, scales, zp, group, threads)
    c = codes.copy()
    c[:, -group:] = np.repeat(zp[:, -1:], group, axis=1)
    return _i4(x, c, scales, zp, group, threads)


@mutant("torch.int4pack_flushes_half_scales", I4, "int4pack_mm_view", "torch.weight_int4pack_mm",
        mirrors="scales converted from fp16 with flush-to-zero (a vcvtph2ps emulation or DAZ set while "
                "unpacking): groups whose scale is an fp16 subnormal dequantize to zero",
        caught_by=_SPECS + _F4 + "scales-*")
def int4pack_flushes_half_scales(x, codes, scales, zp, group, *, threads=None):
    """fp16 activations: scales below fp16's smallest normal read as 0."""
    if x.storage.dtype != np.float16:
        return _i4(x, codes, scales, zp, group, threads)
    flushed = np.where(np.abs(scales) < 2.0 ** -14, 0, scales).astype(scales.dtype)
    return _i4(x, codes, flushed, zp, group, threads)


@mutant("torch.int4pack_zero_point_0_as_absent", I4, "int4pack_mm_view", "torch.weight_int4pack_mm",
        mirrors="a truthiness test where a presence test was meant ('if zero_point: ... else use the default 8'): "
                "a group whose zero point is 0 (an all-positive group of an asymmetric quantizer) gets 8",
        caught_by=_SPECS + _F4 + "zero_points-*")
def int4pack_zero_point_0_as_absent(x, codes, scales, zp, group, *, threads=None):
    """Zero points equal to 0 read as the default 8."""
    return _i4(x, codes, scales, np.where(zp == 0, 8, zp).astype(zp.dtype), group, threads)


@mutant("torch.int8pack_gemv_half_accumulator", I8, "int8pack_mm", "torch.weight_int8pack_mm",
        mirrors="a GEMV (M = 1) fast path that accumulates in the activation dtype (fp16/bf16) while the "
                "GEMM path uses fp32: right everywhere except M = 1",
        caught_by="conformance/test_pytorch_weight_only.py::test_int8pack_full_range_codes*")
def int8pack_gemv_half(x, w, scales, x_offset_bytes: int = 0):
    """For M = 1 and fp16/bf16 activations, the dot products are summed in that half type."""
    x = np.asarray(x)
    if x.shape[0] != 1 or x.dtype == np.float32:
        return real(I8, "int8pack_mm")(x, w, scales, x_offset_bytes)
    wf = (w.astype(F) * np.asarray(scales).astype(F)[:, None]).astype(F)
    acc = np.zeros(w.shape[0], x.dtype)
    xf = x[0].astype(F)
    for k in range(x.shape[1]):
        acc = (acc.astype(F) + (xf[k] * wf[:, k]).astype(F)).astype(x.dtype)
    return acc[None, :]


@mutant("torch.int8pack_bf16_truncation", I8, "int8pack_mm", "torch.weight_int8pack_mm",
        mirrors="fp32 -> bf16 by dropping the low 16 bits (truncation) instead of rounding to nearest even, "
                "as early bf16 conversions in several CPU kernels did",
        caught_by="conformance/test_pytorch_weight_only.py::test_int8pack_*bf16*")
def int8pack_bf16_trunc(x, w, scales, x_offset_bytes: int = 0):
    """bf16 outputs are the fp32 results with their low 16 bits cut off."""
    x = np.asarray(x)
    if x.dtype != ml_dtypes.bfloat16:
        return real(I8, "int8pack_mm")(x, w, scales, x_offset_bytes)
    y32 = real(I8, "int8pack_mm")(x.astype(F), w, np.asarray(scales).astype(F))
    return (np.ascontiguousarray(y32, F).view(np.uint32) & np.uint32(0xFFFF0000)).view(F).astype(ml_dtypes.bfloat16)


@mutant("torch.dyn_quant_nibbles_swapped", DQ, "dyn_quant_matmul", "torch.dyn_quant_matmul_4bit",
        mirrors="a matmul that unpacks the high nibble as the even element where the packer put it in the low "
                "one: packing and compute disagree on nibble order",
        caught_by="conformance/test_pytorch_dyn_quant.py::*")
def dyn_quant_swapped(x, weight_bytes, scales, group_size):
    """The packed buffer is right, but the matmul reads each byte's nibbles swapped."""
    out = real(DQ, "dyn_quant_matmul")(x, weight_bytes, scales, group_size)
    wb = np.asarray(weight_bytes, np.uint8)
    swapped = ((wb >> 4) | ((wb & 0x0F) << 4)).astype(np.uint8)
    out["y"] = real(DQ, "dyn_quant_matmul")(x, swapped, scales, group_size)["y"]
    return out


@mutant("torch.dyn_quant_activation_zero_point_dropped", DQ, "dyn_quant_matmul", "torch.dyn_quant_matmul_4bit",
        mirrors="asymmetric activations whose zero-point compensation (zp * sum of the weight codes) is "
                "missing from the integer sums",
        caught_by="conformance/test_pytorch_dyn_quant.py::*")
def dyn_quant_zp_dropped(x, weight_bytes, scales, group_size):
    """Block sums of a_q * (w - 8) instead of (a_q - zp) * (w - 8)."""
    from oracle.gemm.aten_dyn_quant_4bit import quantize_rows  # the activation quantizer of the reference path

    out = real(DQ, "dyn_quant_matmul")(x, weight_bytes, scales, group_size)
    k = x.shape[1]
    _, zp, recip = quantize_rows(np.asarray(x, F), channelwise=(group_size == k))
    wb = np.asarray(weight_bytes, np.uint8)
    codes = np.stack([wb & 0x0F, wb >> 4], axis=2).reshape(wb.shape[0], k).astype(np.int64) - 8
    wsum = codes.reshape(codes.shape[0], -1, group_size).sum(axis=2)  # (N, blocks)
    per_channel = (wsum * np.asarray(scales, np.float64)).sum(axis=1)  # sum over blocks of wsum_b * s_b, (N,)
    extra = zp[:, None].astype(np.float64) * per_channel[None, :]
    out["y"] = (out["y"].astype(np.float64) + extra * recip[:, None]).astype(F)
    return out


@mutant("torch.dyn_quant_no_eps_guard", DQ, "dyn_quant_matmul", "torch.dyn_quant_matmul_4bit",
        mirrors="per-token scale = (max - min) / 255 with no guard for a constant row (the missing "
                "clamp(min=eps)): an all-zero row (padding tokens) divides 0 by 0 and comes out NaN",
        caught_by="conformance/test_pytorch_dyn_quant.py::test_dyn_quant_crafted*")
def dyn_quant_no_eps(x, weight_bytes, scales, group_size):
    """Rows of x that are all zero give NaN outputs instead of zeros."""
    out = real(DQ, "dyn_quant_matmul")(x, weight_bytes, scales, group_size)
    zero_rows = ~np.any(np.asarray(x) != 0, axis=1)
    out["y"] = np.where(zero_rows[:, None], F(np.nan), out["y"]).astype(F)
    return out


LD = "kernels.pytorch.linear_dynamic"


@mutant("torch.linear_dynamic_drops_m_tail", LD, "fbgemm_view", "torch.quantized.linear_dynamic.fbgemm",
        mirrors="a GEMM whose M loop runs in tiles of 4 rows with no remainder loop: every batch of a multiple "
                "of four rows (and a GEMV's one) is right, the last M % 4 rows of any other come back zero",
        caught_by=(_SPECS + "test_spec_case[torch.quantized.linear_dynamic.fbgemm-tail_k-*",
                   _SPECS + "test_spec_case[torch.quantized.linear_dynamic.fbgemm-tail_m-*"))
def linear_dynamic_drops_m_tail(x, w, scales, *, threads=None):
    """Past M = 4, the last M % 4 output rows are zero."""
    y = real(LD, "fbgemm_view")(x, w, scales, threads=threads)
    m = y.shape[0]
    if m > 4:
        y[m - m % 4:] = 0
    return y


QP = "kernels.pytorch.qlinear_pointwise"


@mutant("torch.qlinear_pointwise_zero_point_as_s8", QP, "qlinear_pointwise_view", "torch.onednn.qlinear_pointwise",
        mirrors="a u8 activation zero point carried through a signed 8-bit field (a quint8-to-qint8 bridge, an int8_t "
                "zero_point attribute): right for every zero point below 128, which symmetric-ish activations "
                "and ReLU outputs mostly have",
        caught_by=_SPECS + "test_spec_case[torch.onednn.qlinear_pointwise-zero_points-*")
def qlinear_pointwise_zero_point_as_s8(a, a_scale, a_zp, b, b_scales, bias, *, threads=None):
    """Zero points 128..255 read as a_zp - 256."""
    zp = a_zp - 256 if a_zp >= 128 else a_zp
    return real(QP, "qlinear_pointwise_view")(a, a_scale, zp, b, b_scales, bias, threads=threads)


@mutant("torch.qlinear_pointwise_scales_not_advanced", QP, "qlinear_pointwise_view", "torch.onednn.qlinear_pointwise",
        mirrors="a per-channel scale pointer not advanced with the N block: the first 16 columns' scales serve every "
                "16-column block, right for N <= 16 and for weights quantized with one scale per tensor",
        caught_by=_SPECS + "test_spec_case[torch.onednn.qlinear_pointwise-random-*")
def qlinear_pointwise_scales_not_advanced(a, a_scale, a_zp, b, b_scales, bias, *, threads=None):
    """Column n scaled by b_scales[n % 16]."""
    n = len(b_scales)
    return real(QP, "qlinear_pointwise_view")(a, a_scale, a_zp, b, b_scales[np.arange(n) % 16], bias, threads=threads)


@mutant("torch.qlinear_pointwise_ftz_daz", QP, "qlinear_pointwise_view", "torch.onednn.qlinear_pointwise",
        mirrors="a oneDNN build or host process with MXCSR's flush-to-zero and denormals-are-zero set (-ffast-math's "
                "crtfastmath.o, or a kernel that sets them for speed)",
        caught_by=_SPECS + "test_spec_case[torch.onednn.qlinear_pointwise-subnormal-*")
def qlinear_pointwise_ftz_daz(a, a_scale, a_zp, b, b_scales, bias, *, threads=None):
    """Subnormal scales read as 0 (DAZ) and subnormal outputs written as 0 (FTZ)."""
    from kernels.mutants.onnxruntime import _flush  # the mutants' one model of FTZ and DAZ

    y = real(QP, "qlinear_pointwise_view")(a, float(_flush(a_scale)), a_zp, b, _flush(b_scales), bias, threads=threads)
    return _flush(y)


QS = "kernels.pytorch.qlinear_static"


@mutant("torch.qlinear_static_round_half_away", QS, "fbgemm_view", "torch.quantized.linear.fbgemm",
        mirrors="a requantization that rounds with std::lround / roundf (halves away from zero) instead of "
                "ReQuantizeOutput's lrintf / cvtps2dq (halves to even): right everywhere but on exact halves",
        caught_by=_SPECS + "test_spec_case[torch.quantized.linear.fbgemm-ties-*")
def qlinear_static_round_half_away(a, a_scale, a_zp, w, w_scales, w_zp, y_scale, y_zp, *, threads=None):
    """Requantized values on exact halves rounded away from zero."""
    y = real(QS, "fbgemm_view")(a, a_scale, a_zp, w, w_scales, w_zp, y_scale, y_zp, threads=threads)
    acc = (as_numpy(a).astype(np.int64) - a_zp) @ (as_numpy(w).astype(np.int64) - w_zp.astype(np.int64)[:, None]).T
    mult = ((F(a_scale) * w_scales.astype(F)).astype(F) / F(y_scale)).astype(F)
    v = (acc.astype(F) * mult[None, :]).astype(F)
    away = np.sign(v) * np.floor(np.abs(v) + F(0.5))
    return np.clip(y.astype(np.int64) + (away - np.rint(v)).astype(np.int64), 0, 255).astype(np.uint8)
