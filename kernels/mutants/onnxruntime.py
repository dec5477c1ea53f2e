"""Wrong ONNX Runtime kernels: MatMulNBits (target kernels.onnxruntime.matmulnbits) and the int8 GEMMs
(target kernels.onnxruntime.int8_gemm).

MatMulNBits' B is uint8 [N][blocks][block * bits / 8] with adjacent elements in the low then high bits of a
byte; zero points are uint8 [N][ceil(blocks * bits / 8)] packed the same way along the blocks
(contrib_ops/cpu/quantization/matmul_nbits.cc). Each MatMulNBits mutant feeds the real kernel the inputs
the buggy kernel would effectively read; the int8 ones correct or recompute its output.
"""
from __future__ import annotations

import numpy as np

from kernels.mutants import mutant, real

T = "kernels.onnxruntime.matmulnbits"


@mutant("ort.int4_j_j16_pairing_not_adjacent", T, "matmulnbits", "onnxruntime.matmulnbits",
        mirrors="GGUF's j / j + 16 nibble pairing applied to MatMulNBits' adjacent packing (byte i = elements "
                "2i and 2i + 1): a GGUF-to-ONNX weight converter's classic slip",
        caught_by="conformance/test_onnxruntime_matmulnbits.py::*[4-*")
def j16_pairing(a, weight, scales, zeros, *, k, n, bits, block, accuracy_level, **kw):
    """4-bit blocks unpacked with byte i holding elements i and i + block/2."""
    w = np.asarray(weight, np.uint8)
    if bits == 4:
        half = w.shape[-1]
        v = np.concatenate([w & 0x0F, w >> 4], axis=-1)  # what the buggy kernel reads, in k order
        w = (v[..., 0::2] | (v[..., 1::2] << 4)).astype(np.uint8)[..., :half]
    return real(T, "matmulnbits")(a, w, scales, zeros, k=k, n=n, bits=bits, block=block,
                                  accuracy_level=accuracy_level, **kw)


@mutant("ort.zero_point_off_by_one", T, "matmulnbits", "onnxruntime.matmulnbits",
        mirrors="the GPTQ v1 zero-point offset: checkpoints stored zp - 1 and loaders that forget the + 1 "
                "(or add it twice) dequantize with a zero point off by one (wrapping at 0)",
        caught_by="conformance/test_onnxruntime_matmulnbits.py::test_matmulnbits_crafted[*-zp-*]")
def zp_off_by_one(a, weight, scales, zeros, *, k, n, bits, block, accuracy_level, **kw):
    """Every zero point read as zp - 1 (mod 2^bits)."""
    if zeros is not None:
        z = np.asarray(zeros, np.uint8)
        per = 8 // bits
        fields = [((z >> (bits * i)) & ((1 << bits) - 1)) for i in range(per)]
        z = np.zeros_like(z)
        for i, f in enumerate(fields):
            z |= (((f.astype(np.int16) - 1) % (1 << bits)).astype(np.uint8) << (bits * i)).astype(np.uint8)
        zeros = z
    return real(T, "matmulnbits")(a, weight, scales, zeros, k=k, n=n, bits=bits, block=block,
                                  accuracy_level=accuracy_level, **kw)


@mutant("ort.last_partial_block_dropped", T, "matmulnbits", "onnxruntime.matmulnbits",
        mirrors="a blocked k loop that runs K / block whole blocks and forgets the tail: right whenever K is a "
                "multiple of the block size, which is all most upstream tests use",
        caught_by="conformance/test_onnxruntime_matmulnbits.py::test_matmulnbits_crafted*")
def tail_dropped(a, weight, scales, zeros, *, k, n, bits, block, accuracy_level, **kw):
    """The last K % block columns of A contribute nothing."""
    a = np.array(a)  # a copy in the caller's dtype (fp32 or fp16)
    a[:, (k // block) * block:] = 0
    return real(T, "matmulnbits")(a, weight, scales, zeros, k=k, n=n, bits=bits, block=block,
                                  accuracy_level=accuracy_level, **kw)


_CALLS = [0]


@mutant("ort.result_varies_call_to_call", T, "matmulnbits", "onnxruntime.matmulnbits",
        mirrors="a reduction whose order follows thread scheduling (work stealing, atomics): every answer lies "
                "within the error bound, but the same call gives different bytes from one call to the next",
        caught_by="conformance/test_onnxruntime_matmulnbits.py::*")
def varies(a, weight, scales, zeros, *, k, n, bits, block, accuracy_level, **kw):
    """The real output, with its first element one float32 ulp higher on every other call."""
    y = np.array(real(T, "matmulnbits")(a, weight, scales, zeros, k=k, n=n, bits=bits, block=block,
                                        accuracy_level=accuracy_level, **kw))
    _CALLS[0] += 1
    if _CALLS[0] % 2 == 0:
        y.reshape(-1)[0] = np.nextafter(y.reshape(-1)[0], y.dtype.type(np.inf))
    return y


Q = "kernels.onnxruntime.int8_gemm"


@mutant("ort.qlinearmatmul_requant_half_away", Q, "qlinearmatmul", "onnxruntime.qlinearmatmul",
        mirrors="a scalar port of MLAS's requantize step that rounds with std::round / roundf (half away from zero) "
                "where _mm_cvtps_epi32 rounds half to even: the same bytes except where acc * scale is an exact half",
        caught_by="conformance/test_onnxruntime_int8.py::test_qlinearmatmul_requant_ties*")
def qlinear_half_away(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point, **kw):
    """QLinearMatMul outputs requantized with round half away from zero instead of half to even."""
    f = np.float32
    # the int32 sums the real QLinearMatMul forms: MatMulInteger through the same MLAS GEMM, with the weight
    # rewrite of session.x64quantprecision only where it reaches QLinearMatMul (since-version 10, not 21)
    mm_kw = {**kw, "precision": kw.get("precision", False) and kw.get("opset", 13) < 21}
    acc = real(Q, "matmulinteger")(a, b, a_zero_point, b_zero_point, **mm_kw)["y"]
    out = real(Q, "qlinearmatmul")(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point, **kw)
    scale = ((f(a_scale) * np.asarray(b_scale, f)).astype(f) / f(y_scale)).astype(f).reshape(1, -1)
    v = (acc.astype(f) * scale).astype(f)
    away = np.sign(v) * np.floor(np.abs(v) + f(0.5))
    info = np.iinfo(out["y"].dtype)
    y = np.clip(away.astype(np.int64) + int(y_zero_point), info.min, info.max).astype(out["y"].dtype)
    return {**out, "y": y}


def _flush(v: np.ndarray) -> np.ndarray:
    """float32 subnormals replaced by a zero of the same sign, as MXCSR's FTZ and DAZ do."""
    v = np.asarray(v, np.float32)
    return np.where(np.abs(v) < np.finfo(np.float32).tiny, np.copysign(np.float32(0), v), v).astype(np.float32)


@mutant("ort.matmulnbits_ftz_daz", T, "matmulnbits", "onnxruntime.matmulnbits",
        mirrors="MatMulNBits run in a process with MXCSR's flush-to-zero and denormals-are-zero set (-ffast-math's "
                "crtfastmath.o in a host application, or a kernel that sets them for speed)",
        caught_by="conformance/test_onnxruntime_matmulnbits.py::test_matmulnbits_subnormal*")
def matmulnbits_ftz_daz(a, weight, scales, zeros, **kw):
    """fp32 subnormal activations and scales read as 0 (DAZ) and subnormal outputs written as 0 (FTZ)."""
    if np.asarray(a).dtype == np.float32:
        a, scales = _flush(a), _flush(scales)
    y = np.asarray(real(T, "matmulnbits")(a, weight, scales, zeros, **kw))
    return _flush(y) if y.dtype == np.float32 else y


@mutant("ort.matmulnbits_fp16_subnormal_scales_flushed", T, "matmulnbits_view", "onnxruntime.matmulnbits",
        mirrors="a fp16-to-fp32 conversion of the block scales without its subnormal branch (the shift-and-rebias "
                "bit trick that maps a zero exponent to 0): right for every scale a quantizer of ordinary weights "
                "writes, 0 for a block of small weights",
        caught_by="conformance/test_specs.py::test_spec_case[onnxruntime.matmulnbits-scales-fp16_*_tiny_*")
def matmulnbits_fp16_scales_flushed(x, codes, scales, zp, group, *, threads=None):
    """In a fp16 model, block scales below fp16's smallest normal (2^-14) read as 0."""
    from kernels.layouts import as_numpy

    if as_numpy(x).dtype == np.float16:
        scales = np.where(np.abs(scales) < 2.0 ** -14, 0, scales).astype(np.float32)
    return real(T, "matmulnbits_view")(x, codes, scales, zp, group, threads=threads)


@mutant("ort.matmulinteger_s8s8_through_u8s8_pairs", Q, "matmulinteger_view", "onnxruntime.matmulinteger",
        mirrors="s8 x s8 routed through MLAS's AVX2 u8 x s8 kernel as u8(a + 128) with zero point 128 (how oneDNN "
                "runs s8 x s8 without VNNI): vpmaddubsw's int16 pair sums saturate on full-range codes",
        caught_by="conformance/test_specs.py::test_spec_case[onnxruntime.matmulinteger-extremes-*")
def matmulinteger_s8s8_pairs(a, b_kn, *, threads=None):
    """The u8 x s8 int16-pair model on u8(a + 128) and b, less the zero point's 128 * colsum(b)."""
    from kernels.layouts import as_numpy
    from oracle.gemm.mlas_int8 import accumulator

    au = (as_numpy(a).astype(np.int16) + 128).astype(np.uint8)
    return accumulator(au, 128, as_numpy(b_kn), 0, "u8s8_int16_pairs")


@mutant("ort.dynamicquantizematmul_range_not_widened", Q, "dynamicquantizematmul_view",
        "onnxruntime.dynamicquantizematmul",
        mirrors="a dynamic activation quantizer that takes [min(x), max(x)] as its range without DynamicQuantizeLinear's "
                "'data range is adjusted to include 0': the same bytes for every activation tensor holding both "
                "signs or a zero, another scale for an all-positive one (a ReLU's output)",
        caught_by="conformance/test_specs.py::test_spec_case[onnxruntime.dynamicquantizematmul-absorption-*")
def dynamicquantizematmul_range_not_widened(x, w_kn, scales, *, threads=None):
    """Scale and zero point from the unwidened [min(x), max(x)]; MLAS's integer GEMM and fp32 epilogue as the real op."""
    from kernels.layouts import as_numpy
    from oracle.gemm.mlas_int8 import scale_bias

    f = np.float32
    a = as_numpy(x).astype(f)
    lo, hi = f(np.nanmin(a)), f(np.nanmax(a))
    if lo <= 0 <= hi or not np.isfinite(a).all():  # the widening changes nothing, or the scale is not finite anyway
        return real(Q, "dynamicquantizematmul_view")(x, w_kn, scales, threads=threads)
    sa = f((hi - lo) / f(255)) if hi != lo else f(1)
    za = int(np.rint(np.clip(f(0) - f(lo / sa), 0, 255)))
    codes = (np.rint(np.clip((a / sa).astype(f), -za, 255 - za)) + za).astype(np.uint8)
    acc = real(Q, "matmulinteger")(codes, as_numpy(w_kn), np.uint8(za), threads=threads or 0)["y"]
    return scale_bias(acc, (sa * np.asarray(scales, f)).astype(f))


def _tf_acc(a, b_kn, a_zp, threads):
    """The int32 sums MatMulIntegerToFloat's MLAS GEMM forms: MatMulInteger's, through the same u8 x s8 kernel."""
    from kernels.layouts import as_numpy

    return real(Q, "matmulinteger")(as_numpy(a), as_numpy(b_kn), np.uint8(a_zp), threads=threads or 0)["y"]


def _tf_real(a, b_kn, a_scale, b_scales, a_zp, bias, threads) -> np.ndarray:
    return real(Q, "matmulintegertofloat_view")(a, b_kn, a_scale, b_scales, a_zp, bias, threads=threads)


def _tf_multiplier(a_scale, b_scales) -> np.ndarray:
    return (np.float32(a_scale) * np.asarray(b_scales, np.float32)).astype(np.float32)


@mutant("ort.matmulintegertofloat_acc_to_float_toward_zero", Q, "matmulintegertofloat_view",
        "onnxruntime.matmulintegertofloat",
        mirrors="an int32-to-float conversion that truncates (CUDA's __int2float_rz where __int2float_rn was meant, "
                "or a conversion under a round-toward-zero mode): right for every sum below 2^24, which is every sum "
                "of typical activations",
        caught_by="conformance/test_specs.py::test_spec_case[onnxruntime.matmulintegertofloat-extremes-*")
def matmulintegertofloat_acc_toward_zero(a, b_kn, a_scale, b_scales, a_zp, bias, *, threads=None):
    """Sums past 2^24 converted to fp32 toward zero, not to nearest even; the epilogue as the real op's."""
    f = np.float32
    y = _tf_real(a, b_kn, a_scale, b_scales, a_zp, bias, threads)
    acc = _tf_acc(a, b_kn, a_zp, threads).astype(np.int64)
    near = acc.astype(f)
    rz = np.where(np.abs(near.astype(np.int64)) > np.abs(acc), np.nextafter(near, f(0)), near)
    y_rz = ((rz * _tf_multiplier(a_scale, b_scales)).astype(f) + np.asarray(bias, f)).astype(f)
    return np.where(rz.astype(np.int64) != acc, y_rz, y)


@mutant("ort.matmulintegertofloat_zero_rows_skipped", Q, "matmulintegertofloat_view",
        "onnxruntime.matmulintegertofloat",
        mirrors="a sparsity shortcut that skips activation rows whose codes all equal the zero point (padding "
                "tokens, a ReLU's zeros) but scans only whole 8-byte vectors: a row whose only other codes lie in "
                "the K % 8 tail is taken for empty",
        caught_by="conformance/test_specs.py::test_spec_case[onnxruntime.matmulintegertofloat-tail_k-*")
def matmulintegertofloat_zero_rows_skipped(a, b_kn, a_scale, b_scales, a_zp, bias, *, threads=None):
    """Rows whose first K - K % 8 codes equal the zero point come out as the bias alone."""
    from kernels.layouts import as_numpy

    y = _tf_real(a, b_kn, a_scale, b_scales, a_zp, bias, threads)
    codes = as_numpy(a)
    whole = codes.shape[1] - codes.shape[1] % 8
    empty = np.all(codes[:, :whole] == a_zp, axis=1)
    return np.where(empty[:, None], np.asarray(bias, np.float32)[None, :], y)


@mutant("ort.matmulintegertofloat_fused_multiply_add", Q, "matmulintegertofloat_view",
        "onnxruntime.matmulintegertofloat",
        mirrors="the epilogue's float(acc) * multiplier + bias contracted into one fused multiply-add (-ffp-contract="
                "fast, or FBGEMM's ReQuantizeForFloat fmaf): the same bytes whenever the bias is 0, another rounding "
                "wherever the product's rounding and the bias interact",
        caught_by="conformance/test_specs.py::test_spec_case[onnxruntime.matmulintegertofloat-ties-*")
def matmulintegertofloat_fma(a, b_kn, a_scale, b_scales, a_zp, bias, *, threads=None):
    """y = fmaf(float(acc), fp32(a_scale * b_scales[n]), bias[n]): one rounding where MLAS rounds the product first."""
    from oracle.rounding import fmaf

    accf = _tf_acc(a, b_kn, a_zp, threads).astype(np.float32)
    shape = accf.shape
    return fmaf(accf, np.broadcast_to(_tf_multiplier(a_scale, b_scales), shape),
                np.broadcast_to(np.asarray(bias, np.float32), shape))


def _ql_real(a, a_scale, a_zp, b_kn, b_scales, b_zp, y_scale, y_zp, threads) -> np.ndarray:
    return real(Q, "qlinearmatmul_view")(a, a_scale, a_zp, b_kn, b_scales, b_zp, y_scale, y_zp, threads=threads)


def _ql_scaled(a, a_scale, a_zp, b_kn, b_scales, b_zp, y_scale, threads, a_zp_read=None) -> np.ndarray:
    """fp32(float(acc) * scale[n]) before rounding, acc the int32 sums the real QLinearMatMul forms (MatMulInteger's,
    through the same MLAS GEMM), with the activations' zero point read as `a_zp_read` where given."""
    from kernels.layouts import as_numpy
    from oracle.gemm.mlas_int8 import qlinear_scale
    from oracle.gemm.w8a8 import wrap_int32

    b = as_numpy(b_kn)
    acc = real(Q, "matmulinteger")(as_numpy(a), b, np.uint8(a_zp), np.asarray(b_zp, np.int8), threads=threads or 0)["y"]
    if a_zp_read is not None:  # acc = ... - a_zp * colsum(b - b_zp): the same sums with another zero point
        colsum = (b.astype(np.int64) - np.asarray(b_zp, np.int64)[None, :]).sum(axis=0)
        acc = wrap_int32(acc.astype(np.int64) - (a_zp_read - int(a_zp)) * colsum[None, :])
    scale = qlinear_scale(a_scale, b_scales, y_scale).reshape(1, -1)
    with np.errstate(over="ignore", invalid="ignore"):
        return (np.asarray(acc, np.int32).astype(np.float32) * scale).astype(np.float32)


def _ql_out(v: np.ndarray, y_zp, rounding=np.rint) -> np.ndarray:
    """saturate(rounding(v) + y_zp) to uint8."""
    return np.clip(rounding(v.astype(np.float64)) + int(y_zp), 0, 255).astype(np.uint8)


@mutant("ort.qlinearmatmul_round_half_up", Q, "qlinearmatmul_view", "onnxruntime.qlinearmatmul",
        mirrors="a scalar requantize written with the C idiom (int32_t)floorf(v + 0.5f) (round half up) where MLAS's "
                "_mm_cvtps_epi32 rounds half to even: the same bytes except where acc * scale is an exact half",
        caught_by="conformance/test_specs.py::test_spec_case[onnxruntime.qlinearmatmul-ties-*")
def qlinearmatmul_round_half_up(a, a_scale, a_zp, b_kn, b_scales, b_zp, y_scale, y_zp, *, threads=None):
    """Requantized values on an exact half rounded up (floor(v + 0.5)) instead of to even."""
    v = _ql_scaled(a, a_scale, a_zp, b_kn, b_scales, b_zp, y_scale, threads)
    return _ql_out(v, y_zp, lambda x: np.floor(x + 0.5))


@mutant("ort.qlinearmatmul_narrow_range", Q, "qlinearmatmul_view", "onnxruntime.qlinearmatmul",
        mirrors="TensorFlow's narrow_range ([1, 255] for 8 bits, FakeQuantWithMinMaxVars narrow_range=True) carried "
                "into a requantize clamp where ONNX saturates to the type's whole range: right for every output "
                "above 0, which a calibrated output scale makes nearly all of them",
        caught_by="conformance/test_specs.py::test_spec_case[onnxruntime.qlinearmatmul-extremes-*")
def qlinearmatmul_narrow_range(a, a_scale, a_zp, b_kn, b_scales, b_zp, y_scale, y_zp, *, threads=None):
    """Outputs saturated to [1, 255] instead of [0, 255]."""
    return np.maximum(_ql_real(a, a_scale, a_zp, b_kn, b_scales, b_zp, y_scale, y_zp, threads), 1).astype(np.uint8)


@mutant("ort.qlinearmatmul_zero_point_as_s8", Q, "qlinearmatmul_view", "onnxruntime.qlinearmatmul",
        mirrors="a u8 activation zero point carried through a signed 8-bit field (an int8_t zero_point in a "
                "requantization struct): right for every zero point below 128, which ReLU outputs mostly have",
        caught_by="conformance/test_specs.py::test_spec_case[onnxruntime.qlinearmatmul-zero_points-zp128_*")
def qlinearmatmul_zero_point_as_s8(a, a_scale, a_zp, b_kn, b_scales, b_zp, y_scale, y_zp, *, threads=None):
    """Activation zero points 128..255 read as a_zp - 256."""
    if int(a_zp) < 128:
        return _ql_real(a, a_scale, a_zp, b_kn, b_scales, b_zp, y_scale, y_zp, threads)
    return _ql_out(_ql_scaled(a, a_scale, a_zp, b_kn, b_scales, b_zp, y_scale, threads, int(a_zp) - 256), y_zp)


@mutant("ort.qlinearmatmul_zero_rows_skipped", Q, "qlinearmatmul_view", "onnxruntime.qlinearmatmul",
        mirrors="a sparsity shortcut that writes y_zp for activation rows whose codes all equal the zero point "
                "(padding tokens) but scans only whole 8-byte vectors: a row whose only other codes lie in the "
                "K % 8 tail is taken for empty",
        caught_by="conformance/test_specs.py::test_spec_case[onnxruntime.qlinearmatmul-tail_k-*")
def qlinearmatmul_zero_rows_skipped(a, a_scale, a_zp, b_kn, b_scales, b_zp, y_scale, y_zp, *, threads=None):
    """Rows whose first K - K % 8 codes equal the zero point come out as y_zp."""
    from kernels.layouts import as_numpy

    y = _ql_real(a, a_scale, a_zp, b_kn, b_scales, b_zp, y_scale, y_zp, threads)
    codes = as_numpy(a)
    empty = np.all(codes[:, :codes.shape[1] - codes.shape[1] % 8] == a_zp, axis=1)
    return np.where(empty[:, None], np.uint8(y_zp), y).astype(np.uint8)


@mutant("ort.qlinearmatmul_scales_not_advanced", Q, "qlinearmatmul_view", "onnxruntime.qlinearmatmul",
        mirrors="a per-column requantization scale pointer not advanced with the N block: the first 16 columns' "
                "scales serve every 16-column block, right for N <= 16 and for weights with one scale per tensor",
        caught_by="conformance/test_specs.py::test_spec_case[onnxruntime.qlinearmatmul-random-*")
def qlinearmatmul_scales_not_advanced(a, a_scale, a_zp, b_kn, b_scales, b_zp, y_scale, y_zp, *, threads=None):
    """Column n requantized with b_scales[n % 16]."""
    s = np.asarray(b_scales, np.float32)
    return _ql_real(a, a_scale, a_zp, b_kn, s[np.arange(len(s)) % 16], b_zp, y_scale, y_zp, threads)
