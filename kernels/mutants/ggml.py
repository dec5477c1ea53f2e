"""Wrong libggml kernels (target kernels.ggml.calls): packing, offsets, rounding, scale order, accumulation.

Block layouts (ggml-common.h): q4_0 = fp16 d + 16 bytes whose byte j holds element j (low
nibble) and j + 16 (high); q4_1 adds an fp16 m after d; q5_0/q5_1 add 4 bytes of fifth bits;
iq4_nl is laid out as q4_0; q8_0 = fp16 d + 32 int8. The reference quantizers
(ggml-quants.c quantize_row_q4_0_ref, quantize_row_q8_0_ref) multiply by id = 1/d and round
with roundf (half away from zero) or (int8_t)(x*id + 8.5f); the x86 activation quantizer
(ggml-cpu quants.c quantize_row_q8_0, AVX2) uses id = 127/amax and _mm256_round_ps (half to even).
"""
from __future__ import annotations

import numpy as np

from kernels.mutants import mutant, real
from oracle.rounding import half_away

T = "kernels.ggml.calls"
F = np.float32
_QS_AT = {"q4_0": 2, "q4_1": 4, "q5_0": 6, "q5_1": 8, "iq4_nl": 2}  # where the 16 nibble bytes start
_BYTES = {"q4_0": 18, "q4_1": 20, "q5_0": 22, "q5_1": 24, "iq4_nl": 18, "q8_0": 34}


def _blocks(q: np.ndarray, type_name: str) -> np.ndarray:
    """(rows, bytes) -> a writable copy shaped (rows, blocks, block bytes)."""
    q = np.array(q, dtype=np.uint8)
    return q.reshape(q.shape[0], -1, _BYTES[type_name])


def _d(blocks: np.ndarray) -> np.ndarray:
    """The fp16 scale in each block's first two bytes, as float32."""
    return np.ascontiguousarray(blocks[..., :2]).view(np.float16)[..., 0].astype(F)


def _nonzero_recip(d: np.ndarray) -> np.ndarray:
    """C's `d ? 1.0f/d : 0.0f` in float32."""
    with np.errstate(all="ignore"):
        return np.where(d != 0, F(1) / np.where(d != 0, d, F(1)), F(0)).astype(F)


def _q8_0_recode(x: np.ndarray, q: np.ndarray, codes_of) -> np.ndarray:
    """The real q8_0 blocks (scales as ggml stored them) with codes recomputed by `codes_of(x, amax)`."""
    xb = np.asarray(x, F).reshape(x.shape[0], -1, 32)
    with np.errstate(all="ignore"):
        codes = codes_of(xb, np.max(np.abs(xb), axis=2))
    b = _blocks(q, "q8_0")
    ok = np.isfinite(codes)  # where the recomputation is undefined (inf/NaN), keep the kernel's own bytes
    real_codes = b[..., 2:].view(np.int8)
    b[..., 2:] = np.where(ok, np.clip(np.nan_to_num(codes), -128, 127), real_codes).astype(np.int8).view(np.uint8)
    return b.reshape(q.shape)


@mutant("ggml.q4_nibbles_swapped", T, "quantize", "ggml.quantize",
        mirrors="element j packed into the high nibble and j + 16 into the low one: the nibble-order "
                "confusion between GGUF blocks and kernels that pack the other way (XPU/ESIMD int4 "
                "repacks, hand-written GGUF writers)",
        caught_by="conformance/test_ggml.py::test_quantize[q4_0]")
def q4_nibbles_swapped(x: np.ndarray, type_name: str) -> np.ndarray:
    """q4_0/q4_1/iq4_nl blocks written with the two nibbles of every byte swapped."""
    q = real(T, "quantize")(x, type_name)
    if type_name not in ("q4_0", "q4_1", "iq4_nl"):
        return q
    b = _blocks(q, type_name)
    at = _QS_AT[type_name]
    qs = b[..., at:at + 16].copy()
    b[..., at:at + 16] = (qs >> 4) | ((qs & 0x0F) << 4)
    return b.reshape(q.shape)


@mutant("ggml.q4_0_divide_not_reciprocal", T, "quantize", "ggml.quantize",
        mirrors="x / d where the C reference multiplies by id = 1.0f/d: a 'more accurate' port "
                "(or a compiler's -ffast-math rewrite the other way) changes codes on exact half steps",
        caught_by="conformance/test_ggml.py::test_quantize[q4_0]")
def q4_0_divide(x: np.ndarray, type_name: str) -> np.ndarray:
    """q4_0 codes from (int8_t)(x / d + 8.5f) instead of (int8_t)(x * (1/d) + 8.5f)."""
    q = real(T, "quantize")(x, type_name)
    if type_name != "q4_0":
        return q
    xb = np.asarray(x, F).reshape(x.shape[0], -1, 32)
    first_max = np.take_along_axis(xb, np.argmax(np.abs(xb), axis=2)[..., None], 2)[..., 0]  # first |max|, signed
    d = (first_max / F(-8)).astype(F)
    with np.errstate(all="ignore"):
        v = np.where(d[..., None] != 0, (xb / d[..., None]).astype(F), F(0))
        codes = np.minimum(15, np.trunc((v + F(8.5)).astype(F)))
    b = _blocks(q, "q4_0")
    ok = np.all(np.isfinite(codes), axis=2)
    c = np.nan_to_num(codes).astype(np.uint8)
    packed = (c[..., :16] | (c[..., 16:] << 4)).astype(np.uint8)
    b[..., 2:] = np.where(ok[..., None], packed, b[..., 2:])
    return b.reshape(q.shape)


@mutant("ggml.q8_0_rne_not_half_away", T, "quantize", "ggml.quantize",
        mirrors="np.round / torch.round / nearbyint (half to even) in a port of a C reference that calls "
                "roundf (half away from zero): x = 2.5 d gives 2 instead of 3",
        caught_by="conformance/test_ggml.py::test_quantize[q8_0]")
def q8_0_rne(x: np.ndarray, type_name: str) -> np.ndarray:
    """q8_0 codes rounded half to even where ggml's reference rounds half away from zero."""
    q = real(T, "quantize")(x, type_name)
    if type_name != "q8_0":
        return q
    return _q8_0_recode(x, q, lambda xb, amax: np.rint(
        (xb * _nonzero_recip((amax / F(127)).astype(F))[..., None]).astype(F)))


@mutant("ggml.q8_0_scale_fp16_before_codes", T, "quantize", "ggml.quantize",
        mirrors="codes computed with the stored fp16 scale instead of the fp32 one (the scale rounded "
                "before instead of after), as GPU quantizers that keep only the half scale do",
        caught_by="conformance/test_ggml.py::test_quantize[q8_0]")
def q8_0_fp16_first(x: np.ndarray, type_name: str) -> np.ndarray:
    """q8_0 codes from id = 1/fp16(d) instead of 1/d (d = amax/127 in fp32, stored as fp16 afterwards)."""
    q = real(T, "quantize")(x, type_name)
    if type_name != "q8_0":
        return q
    return _q8_0_recode(x, q, lambda xb, amax: half_away(
        (xb * _nonzero_recip((amax / F(127)).astype(F).astype(np.float16).astype(F))[..., None]).astype(F)))


@mutant("ggml.q8_0_x86_half_away_not_rne", T, "from_float", "ggml.from_float",
        mirrors="the SIMD activation quantizer 'fixed' to match the scalar reference's roundf, while the "
                "x86 path rounds half to even (_mm256_round_ps): the two ggml paths really differ",
        caught_by="conformance/test_ggml.py::test_from_float_simd*")
def q8_0_x86_half_away(x: np.ndarray, type_name: str) -> np.ndarray:
    """x86 q8_0 activation codes rounded half away from zero instead of half to even."""
    q = real(T, "from_float")(x, type_name)
    if type_name != "q8_0":
        return q
    def codes(xb, amax):
        ident = np.where(amax != 0, F(127) / np.where(amax != 0, amax, F(1)), F(0)).astype(F)
        return half_away((xb * ident[..., None]).astype(F))
    return _q8_0_recode(x, q, codes)


@mutant("ggml.q4_adjacent_pairs_not_j16", T, "dequantize", "ggml.dequantize",
        mirrors="reading GGUF 4-bit blocks with the adjacent-pair nibble order of ONNX Runtime / PyTorch "
                "packing (byte i = elements 2i, 2i+1) where ggml pairs element j with j + 16",
        caught_by="conformance/test_ggml.py::test_dequantize_random_bytes[q4_0]")
def q4_adjacent_pairs(q: np.ndarray, type_name: str, k: int) -> np.ndarray:
    """Byte j's nibbles come out as elements 2j, 2j + 1 instead of j, j + 16 (q4_0/q4_1/q5_0/q5_1/iq4_nl)."""
    y = real(T, "dequantize")(q, type_name, k)
    if type_name not in _QS_AT:
        return y
    yb = y.reshape(y.shape[0], -1, 2, 16)  # (rows, blocks, low/high nibble, byte j)
    return np.ascontiguousarray(yb.transpose(0, 1, 3, 2)).reshape(y.shape)


@mutant("ggml.q4_0_missing_minus_8", T, "dequantize", "ggml.dequantize",
        mirrors="the -8 offset of symmetric 4-bit codes forgotten in a dequantizer (w = q d for q in 0..15): "
                "the same slip as a missing +8 when packing signed int4",
        caught_by="conformance/test_ggml.py::test_dequantize_random_bytes[q4_0]")
def q4_0_missing_offset(q: np.ndarray, type_name: str, k: int) -> np.ndarray:
    """q4_0 dequantized as q * d instead of (q - 8) * d."""
    if type_name != "q4_0":
        return real(T, "dequantize")(q, type_name, k)
    b = _blocks(q, "q4_0")
    qs = b[..., 2:]
    codes = np.concatenate([qs & 0x0F, qs >> 4], axis=2).astype(F)
    return (codes * _d(b)[..., None]).astype(F).reshape(q.shape[0], k)


def _q4_0_q8_0_isums(x_type: str, x_rows: np.ndarray, y_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-block exact int sums and fp32 dx * dy of a q4_0 or q8_0 row against a q8_0 row."""
    yb = _blocks(y_rows, "q8_0")
    yq = yb[..., 2:].view(np.int8).astype(np.int64)
    xb = _blocks(x_rows, x_type)
    if x_type == "q4_0":
        qs = xb[..., 2:]
        xq = np.concatenate([qs & 0x0F, qs >> 4], axis=2).astype(np.int64) - 8
    else:
        xq = xb[..., 2:].view(np.int8).astype(np.int64)
    return (xq * yq).sum(axis=2), (_d(xb) * _d(yb)).astype(F)


@mutant("ggml.vec_dot_fp16_accumulator", T, "vec_dot", "ggml.vec_dot",
        mirrors="block partials accumulated in a half-precision register (fp16 accumulators in GPU/NEON "
                "GEMV kernels): each add rounds to 11 bits",
        caught_by="conformance/test_ggml.py::test_vec_dot[q4_0-q8_0]")
def vec_dot_fp16_acc(type_name: str, n: int, x_rows: np.ndarray, y_rows: np.ndarray) -> np.ndarray:
    """q4_0/q8_0 x q8_0 dot products whose per-block terms are summed in fp16."""
    if type_name not in ("q4_0", "q8_0"):
        return real(T, "vec_dot")(type_name, n, x_rows, y_rows)
    isum, dd = _q4_0_q8_0_isums(type_name, x_rows, y_rows)
    acc = np.zeros(isum.shape[0], np.float16)
    for b in range(isum.shape[1]):
        acc = (acc.astype(F) + (isum[:, b].astype(F) * dd[:, b]).astype(F)).astype(np.float16)
    return acc.astype(F)


MM = "kernels.ggml.mul_mat"


@mutant("ggml.mul_mat_repack_tile_last_row_dropped", MM, "mul_mat", "ggml.mul_mat",
        mirrors="an off-by-one in a repacked GEMV/GEMM's store loop over the interleaved rows of a tile "
                "(for (j = 0; j < ncols_interleaved - 1; j++)): outputs of weight rows 8t + 7 are never "
                "written; right for the default buffer and for every test that only reads the first rows",
        caught_by="conformance/test_ggml_mul_mat.py::test_mul_mat[*-extra-*]")
def mul_mat_tile_row_dropped(type_name: str, w_bytes: np.ndarray, xs: list, buffer_type: str = "CPU",
                             n_threads: int = 1) -> dict:
    """With the weight repacked, the output of the last weight row of every 8-row tile is 0."""
    out = real(MM, "mul_mat")(type_name, w_bytes, xs, buffer_type, n_threads)
    if out["repacked"]:
        ys = [np.array(y, dtype=F) for y in out["ys"]]
        for y in ys:
            y[:, 7::8] = 0.0
        out["ys"] = ys
    return out


@mutant("ggml.mul_mat_q4_0_odd_last_block_dropped", MM, "mul_mat_q4_0_view", "ggml.mul_mat",
        mirrors="a q4_0 dot product unrolled over pairs of 32-blocks with no remainder loop (ggml's own NEON "
                "q4_0 x q8_0 long carried 'assert(nb % 2 == 0); // TODO: handle odd nb', which release builds "
                "compile out): right whenever K is a multiple of 64",
        caught_by="conformance/test_specs.py::test_spec_*[ggml.mul_mat-*")
def mul_mat_q4_0_odd_block(x, codes: np.ndarray, scales: np.ndarray, group: int, *, threads: int | None = None):
    """With an odd number of 32-blocks in K, the last block is never summed (its codes read as 8: w = 0)."""
    if codes.shape[1] // 32 % 2:
        codes = np.array(codes)
        codes[:, -32:] = 8
    return real(MM, "mul_mat_q4_0_view")(x, codes, scales, group, threads=threads)


@mutant("ggml.library_crashes_on_load", T, "available", "ggml.quantize",
        mirrors="a shared library built for another CPU or glibc that dies in its constructors (SIGILL, SIGSEGV) "
                "while the adapter loads it: without its own status the kernel would read as not installed",
        caught_by="conformance/test_ggml.py::*")
def available_crashes() -> dict:
    """The library kills its process while loading (abort in a constructor)."""
    import os

    os.abort()



def _flush(v: np.ndarray) -> np.ndarray:
    """float32 subnormals replaced by a zero of the same sign, as FTZ/DAZ do."""
    v = np.asarray(v, F)
    return np.where(np.abs(v) < np.finfo(F).tiny, np.copysign(F(0), v), v).astype(F)


@mutant("ggml.dequantize_ftz_daz", T, "dequantize", "ggml.dequantize",
        mirrors="a process that sets MXCSR's flush-to-zero and denormals-are-zero bits (-ffast-math's crtfastmath.o, "
                "a framework enabling them for speed): fp32 scales and results below 2^-126 become 0",
        caught_by="conformance/test_ggml.py::test_dequantize_subnormal*")
def dequantize_ftz_daz(q: np.ndarray, type_name: str, k: int) -> np.ndarray:
    """Dequantized values with fp32 subnormal scales read as 0 (DAZ) and subnormal results written as 0 (FTZ)."""
    if type_name == "q8_k":
        b = np.array(q, dtype=np.uint8).reshape(q.shape[0], -1, 292)
        d = np.ascontiguousarray(b[..., :4]).view(np.float32)
        b[..., :4] = _flush(d).view(np.uint8)
        q = b.reshape(q.shape)
    return _flush(real(T, "dequantize")(q, type_name, k))
