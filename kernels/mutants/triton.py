"""Wrong Triton kernels: the project's int4 GEMVs (kernels.triton.w4a16: a split-K reduction that loses a
slice, ESIMD nibbles read in the wrong order), W8A8 and DA8W4, and gemlite's (a zero point off by one; GPU
only)."""
from __future__ import annotations

import numpy as np

from kernels.layouts import as_numpy, dense
from kernels.mutants import mutant, real

T = "kernels.triton.w4a16"


def _first_slice(k: int, config: dict | None) -> int:
    """How many leading K elements the first split-K slice covers (0 without a split)."""
    if not config:
        return 0
    split = real(T, "k_split")(k, config)
    steps = -(-k // config["BLOCK_K"])
    return 0 if split <= 1 else min(k, -(-steps // split) * config["BLOCK_K"])


@mutant("triton.w4a16_split_slice_dropped", T, "gemv", ("triton.w4a16.q4_0", "triton.w4a16.esimd"),
        mirrors="a split-K reduction whose ordered sum starts from zero and adds slices 1..S-1, forgetting "
                "slice 0 (an off-by-one in the last program's loop over the workspace)",
        caught_by="conformance/test_triton_w4a16.py::test_w4a16_split_k*")
def split_slice_dropped(x, weight, scales, *, layout, k, out=None, config=None):
    """With a K split, the first slice's partial sum is left out of the output."""
    x = np.array(x, copy=True)
    x[:, : _first_slice(k, config)] = 0
    return real(T, "gemv")(x, weight, scales, layout=layout, k=k, out=out, config=config)


@mutant("triton.w4a16_esimd_nibbles_swapped", T, "gemv", "triton.w4a16.esimd",
        mirrors="the high nibble of each byte taken as the even k (int4_GEMV.h packs the even k low)",
        caught_by="conformance/test_triton_w4a16.py::test_w4a16*")
def esimd_nibbles_swapped(x, weight, scales, *, layout, k, out=None, config=None):
    """ESIMD bytes read with their two nibbles exchanged."""
    w = np.asarray(weight, np.uint8)
    if layout == "esimd":
        w = ((w << 4) | (w >> 4)).astype(np.uint8)
    return real(T, "gemv")(x, w, scales, layout=layout, k=k, out=out, config=config)


@mutant("triton.gemlite_zero_point_off_by_one", "kernels.triton.gemlite", "a16w4", "triton.gemlite.a16w4",
        mirrors="the GPTQ v1 zero-point offset: checkpoints that store zp - 1 loaded without the + 1, so every "
                "weight is dequantized with zero 7 where the format says 8 (codes wrap at 15)",
        caught_by="conformance/test_triton_gemlite.py::test_a16w4_gemv*")
def gemlite_zero_point_off_by_one(x, codes, scales, *, group_size):
    """gemlite A16W4 weights read as (q - 7) * s: each code one higher, 15 wrapping to 0."""
    q = (np.asarray(codes, np.uint8) + 1) & 15
    return real("kernels.triton.gemlite", "a16w4")(x, q.astype(np.uint8), scales, group_size=group_size)


W8 = "kernels.triton.w8a8"


@mutant("triton.w8a8_sglang_ties_to_even", W8, "quantize_act", "triton.w8a8",
        mirrors="a per-token int8 quantizer ported from the CUDA path (cvt.rni, half to even) into the sglang "
                "Triton rule, whose libdevice round goes half away from zero: codes differ only on exact halves",
        caught_by="conformance/test_triton_w8a8.py::test_per_token_quant*")
def w8a8_sglang_ties_to_even(x, convention):
    """sglang-rule activation codes rounded half to even on exact ties instead of half away from zero."""
    codes, scales = real(W8, "quantize_act")(x, convention)
    if convention != "act.sglang.per_token_int8.triton":
        return codes, scales
    xf = np.asarray(x, np.float32)
    amax = np.maximum(np.max(np.abs(xf), axis=1, keepdims=True), np.float32(1e-10)).astype(np.float32)
    v = (xf * (np.float32(127) / amax).astype(np.float32)).astype(np.float32)
    tie = (v - np.floor(v)) == np.float32(0.5)
    return np.where(tie, np.rint(v), codes).astype(np.int8), scales


DA = "kernels.triton.da8w4"


@mutant("triton.da8w4_zero_point_tile_row", DA, "linear", "triton.da8w4",
        mirrors="a DA8W4 tile that loads the per-token zero point at its tile-local row (offs_m instead of "
                "pid_m * BLOCK_M + offs_m): right whenever M fits in one tile, which every small test does",
        caught_by="conformance/test_triton_da8w4.py::test_da8w4_rows_past_one_tile*")
def da8w4_zero_point_tile_row(a_q, a_scale, a_zp, w_packed, w_scale, w_zp, bias=None, **kw):
    """Row r's activation zero point read from row r % BLOCK_M (16 in the interpreter)."""
    if a_zp is not None:
        block_m = (kw.get("config") or {}).get("BLOCK_M", 16)
        a_zp = np.asarray(a_zp)[np.arange(len(a_zp)) % block_m]
    return real(DA, "linear")(a_q, a_scale, a_zp, w_packed, w_scale, w_zp, bias, **kw)


_ENGINE = "conformance/test_specs.py::test_spec_case[triton.w4a16."


@mutant("triton.w4a16_fp16_accumulator", T, "q4_0_view", "triton.w4a16.q4_0",
        mirrors="a GEMV that accumulates its fp16 products in an fp16 register (the half2 accumulators of "
                "hand-written CUDA/ESIMD GEMVs): each add rounds to 11 bits, so a large partial absorbs small terms",
        caught_by=_ENGINE + "q4_0-absorption-*")
def w4a16_fp16_accumulator(x, codes, scales, group):
    """Products rounded to fp16 and summed sequentially in fp16 (k = 0..K-1), then cast to x's dtype."""
    xs = as_numpy(x).astype(np.float32).astype(np.float16)
    w = ((codes.astype(np.float32) - 8) * np.repeat(scales, group, axis=1)).astype(np.float16)
    acc = np.zeros((xs.shape[0], w.shape[0]), np.float16)
    for i in range(xs.shape[1]):
        acc = (acc + (xs[:, i:i + 1] * w[None, :, i]).astype(np.float16)).astype(np.float16)
    return acc.astype(np.float32).astype(as_numpy(x).dtype)


@mutant("triton.w4a16_last_k_block_dropped", T, "esimd_view", "triton.w4a16.esimd",
        mirrors="a GEMV whose k loop runs one step short (for k0 in range(0, K - BLOCK_K, BLOCK_K)): the last "
                "block of K never contributes, a few percent of a long dot product on Gaussian data",
        caught_by=_ENGINE + "esimd-tail_k-*")
def w4a16_last_k_block_dropped(x, codes, scales, group):
    """The last 32 elements of K contribute nothing."""
    xv = as_numpy(x).copy()
    xv[:, max(0, xv.shape[1] - 32):] = 0
    return real(T, "esimd_view")(dense(xv), codes, scales, group)


@mutant("triton.w8a8_k_stride_ignored", W8, "linear_view", "triton.w8a8",
        mirrors="a kernel handed only the row strides, stepping K one element at a time (this one before its "
                "quantizer and GEMM took x.stride(1) and w.stride(1)): right for every row-major view, wrong for "
                "w.t() of a (K, N) parameter and for a transposed activation",
        caught_by="conformance/test_specs.py::test_spec_layout[triton.w8a8-*-transposed]")
def w8a8_k_stride_ignored(x, w, scales):
    """x and w read with a K stride of 1 whatever their views' K strides are."""
    unit = lambda v: v._replace(strides=(v.strides[0], 1))  # noqa: E731
    return real(W8, "linear_view")(unit(x), unit(w), scales)


@mutant("triton.da8w4_compensation_zp8", DA, "linear_view", "triton.da8w4",
        mirrors="a DA8W4 block compensation summed over (w_q - 8), the symmetric-weight shortcut, where the "
                "asymmetric weights need (w_q - zp_w) (oracle.gemm.da8w4 compensation='8'): right only where "
                "every weight zero point is 8 or every activation zero point is 0",
        caught_by="conformance/test_specs.py::test_spec_case[triton.da8w4-*")
def da8w4_compensation_zp8(x, codes, scales, zp, group):
    """The kernel's own activation codes through the DA8W4 model with each block's compensation sum(w_q - 8)."""
    from kernels.triton.da8w4 import DEFAULT_CONVENTION
    from oracle.gemm.da8w4 import da8w4_linear
    from oracle.gemm.semantics import out_dtype

    a = real(DA, "quantize_act")(as_numpy(x).copy(), DEFAULT_CONVENTION)
    return da8w4_linear(a["codes"], a["scales"], a["zeros"], codes, scales, zp, group_size=group,
                        out=out_dtype(x.storage), compensation="8")
