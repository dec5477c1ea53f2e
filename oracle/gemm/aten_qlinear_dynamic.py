"""`torch.ops.quantized.linear_dynamic` (fp32 x, qint8 weights, fp32 y) under each quantized engine.

Upstream: pytorch aten/src/ATen/native/quantized/cpu/qlinear_dynamic.cpp.
- Activations: fbgemm::FindMinMax over the whole input, quant_utils::ChooseQuantizationParams
  for quint8 with `reduce_range` (qparams on [0, 127] instead of [0, 255]): the
  act.torch.per_tensor.quint8[.reduce_range] conventions. QNNPACK ignores reduce_range (it warns).
- fbgemm and x86 engines (`PackedLinearWeight::apply_dynamic_impl`): `PackAWithQuantRowOffset`
  quantizes with fbgemm's Quantize, the u8 x s8 GEMM accumulates int32, and FBGEMM's
  `ReQuantizeForFloat` subtracts a_zp * column sums (weights have zero point 0) and writes
  fmaf(float(acc), fp32(a_scale * w_scale[n]), bias[n]) (the FMA is observed, bit for bit).
- onednn engine (`PackedLinearWeightsOnednn::apply_dynamic_impl`): ideep keeps inverse scales,
  src 1/a_scale and weights fp32(1/w_scale), and oneDNN scales the int32 result by
  fp32(fp32(1/inv_a) * fp32(1/inv_w)), then adds the bias (observed bit for bit on gemm:jit and
  brg_matmul's AMX kernels). oneDNN's brgemm post-ops kernel (src/cpu/x64/jit_brgemm_post_ops.cpp,
  `jit_brgemm_kernel_post_ops_t::apply_post_ops`) instead multiplies by the src scale, then by the
  weight scale, then adds the bias: the "onednn.brgemm" epilogue, observed bit for bit on
  brg_matmul:avx512_core, avx512_core_vnni and avx10_1_512 (an AMX host, torch 2.11).
  `onednn_epilogue` picks one from the implementation names oneDNN's verbose log reports.
- qnnpack engine (`PackedLinearWeightsQnnp::apply_dynamic_impl`): min and max by ATen's reductions,
  the same ChooseQuantizationParams (reduce_range ignored) and `at::quantize_per_tensor` (fbgemm's
  Quantize on x86 builds, the same codes); weights stored as u8 (w + 128) against zero point 128;
  `generate_requantization_scales` (QnnpackUtils.h) forms fp32(w_scale[n] * a_scale) and refuses one
  that is not normal and positive; the x86 ukernel (qnnpack/src/q8gemm/4x4c2-dq-sse2.c
  `pytorch_q8gemm_dq_ukernel_4x4c2__sse2`) sums int16 differences with _mm_madd_epi16 into int32
  (exact) and writes fp32(fp32(float(acc) * multiplier[n]) + bias[n]) (a multiply, then an add;
  observed bit for bit with and without bias, per tensor and per channel, torch 2.13.0+cpu on AVX2).
- Without VNNI (AVX2 and AVX512 without VNNI) both fbgemm and oneDNN multiply u8 by s8 with
  vpmaddubsw, which sums adjacent k pairs into a SATURATING int16 before widening: 255 * 127 * 2
  overflows it, which is why `reduce_range=True` (codes <= 127) exists. `int16_pairs=True` models
  those pairs (k = 2i, 2i + 1, zero padded) exactly; VNNI/AMX accumulate straight into int32.
"""
from __future__ import annotations

import numpy as np

from oracle.bounds import gamma
from oracle.conventions import get
from oracle.rounding import fmaf

__all__ = ["ENGINES", "EPILOGUES", "activation_convention", "accumulate", "linear_dynamic_model", "onednn_epilogue",
           "qlinear_pointwise_model", "linear_dynamic_w8", "gemm_jit_k_block", "onednn_int16_pairs",
           "qlinear_pointwise_u8"]

F = np.float32
ENGINES = ("fbgemm", "x86", "onednn", "qnnpack")
_EPILOGUE = {"fbgemm": "fbgemm", "x86": "fbgemm", "onednn": "onednn", "qnnpack": "qnnpack"}
EPILOGUES = ("onednn", "onednn.brgemm")


def onednn_epilogue(impls) -> str | None:
    """The oneDNN scale/bias order of the matmul implementations run (names as 'matmul:brg_matmul:avx512_core').

    gemm:jit and brg_matmul's AMX kernels: acc * fp32(sa * sb) + bias ("onednn"); brg_matmul's
    other kernels: (acc * sa) * sb + bias ("onednn.brgemm"). None where no matmul ran, where the
    implementations disagree, or where one is not among those seen: judge against the bound then.
    """
    kinds = set()
    for impl in impls:
        parts = impl.split(":")
        if parts[0] != "matmul":
            continue
        if parts[1:] == ["gemm", "jit"] or (parts[1] == "brg_matmul" and "amx" in parts[-1]):
            kinds.add("onednn")
        elif parts[1] == "brg_matmul" and parts[-1].startswith(("avx512_core", "avx10_1_512")):
            kinds.add("onednn.brgemm")
        else:
            return None
    return kinds.pop() if len(kinds) == 1 else None


def _gemm_jit_only(impls) -> bool:
    """Whether every matmul implementation the call ran is gemm:jit (none ran: vacuously)."""
    return all(i.split(":")[1:] == ["gemm", "jit"] for i in impls if i.startswith("matmul:"))

def _onednn_scale(accf: np.ndarray, src: np.float32, wei: np.ndarray, b: np.ndarray, epilogue: str) -> np.ndarray:
    """float(acc) scaled by fp32 src and per-column wei scales in the named order, plus bias, in fp32."""
    if epilogue == "onednn":
        return ((accf * (src * wei).astype(F)[None, :]).astype(F) + b[None, :]).astype(F)
    if epilogue == "onednn.brgemm":
        return (((accf * src).astype(F) * wei[None, :]).astype(F) + b[None, :]).astype(F)
    raise ValueError(f"unknown oneDNN epilogue {epilogue!r}; known: {', '.join(EPILOGUES)}")


def activation_convention(engine: str, reduce_range: bool) -> str:
    """The named per-tensor quint8 quantizer the engine applies to x."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; known: {', '.join(ENGINES)}")
    rr = reduce_range and engine != "qnnpack"
    return "act.torch.per_tensor.quint8" + (".reduce_range" if rr else "")


def accumulate(codes: np.ndarray, zp: int, w: np.ndarray, int16_pairs: bool, k_block: int = 0) -> np.ndarray:
    """int64 (M, N): sum_k (codes - zp) * w as the kernel's integer path forms it (see module docstring); the
    pairs start afresh at every k_block-th k where the kernel sums K in blocks (`gemm_jit_k_block`; 0: one block)."""
    a, wi = codes.astype(np.int64), w.astype(np.int64)
    colsum = wi.sum(axis=1)
    if not int16_pairs:
        return a @ wi.T - zp * colsum[None, :]
    kb = k_block or max(1, a.shape[1])
    return sum(_pair_sums(a[:, s:s + kb], wi[:, s:s + kb]) for s in range(0, a.shape[1], kb)) - zp * colsum[None, :]


def _pair_sums(a: np.ndarray, wi: np.ndarray) -> np.ndarray:
    """The saturated int16 sums of adjacent products (k = 2i, 2i + 1 of K zero padded to even), summed over i."""
    k = a.shape[1] + a.shape[1] % 2
    a = np.pad(a, ((0, 0), (0, k - a.shape[1])))
    wi = np.pad(wi, ((0, 0), (0, k - wi.shape[1])))
    pairs = a[:, None, 0::2] * wi[None, :, 0::2] + a[:, None, 1::2] * wi[None, :, 1::2]
    return np.clip(pairs, -32768, 32767).sum(axis=-1)


def gemm_jit_k_block(k: int, avx2: bool) -> int:
    """The K block oneDNN's gemm driver (gemm:jit) packs and sums at a time, whose pairs start afresh: K itself up
    to bk_traditional = 256, (K + 1) / 2 below 2 * bk, else bk, with bk 384 where the driver runs its AVX2 int8
    kernels and 256 on AVX / SSE4.1 (oneDNN src/cpu/x64/gemm/gemm_driver.cpp get_k_padd, gemm_info.cpp
    gemm_info_t for s8). Where (K + 1) / 2 is odd (K = 4j + 1) its last k pairs with nothing and every later pair
    starts one k later than pairs counted from 0: observed bit for bit on AVX2 and SSE4.1 caps (torch 2.13)."""
    bk = 384 if avx2 else 256
    return k if k <= 256 else ((k + 1) // 2 if k < 2 * bk else bk)


def linear_dynamic_model(x: np.ndarray, w: np.ndarray, w_scale, bias: np.ndarray | None, *, engine: str,
                         reduce_range: bool, int16_pairs: bool = False, epilogue: str | None = None):
    """(predicted fp32 y, exact value, bound).

    The exact value is that of the integer sum the kernel forms (the exact int32 sum of the
    quantized activations times the weights, or its int16-pair form where asked), scaled by
    a_scale * w_scale and plus bias in exact arithmetic; the bound covers the fp32 epilogue's
    roundings in any order. The prediction follows that sum and the engine's fp32 epilogue
    (`epilogue` chooses among EPILOGUES for onednn; "onednn" by default).
    """
    qa = get(activation_convention(engine, reduce_range)).quantize(np.ascontiguousarray(x, dtype=F))
    sa, zp = F(qa.scales[0, 0]), int(qa.zeros[0, 0])
    sb = np.broadcast_to(np.asarray(w_scale, dtype=F), (w.shape[0],)).astype(F)
    b = np.zeros(w.shape[0], F) if bias is None else bias.astype(F)
    acc = accumulate(qa.codes, zp, w, int16_pairs)
    scale64 = np.float64(sa) * sb.astype(np.float64)
    exact = acc.astype(np.float64) * scale64[None, :] + b.astype(np.float64)[None, :]
    # float(acc), the scale products and inverses (up to five), the multiplies, the bias add
    bound = gamma(8, "fp32") * (np.abs(acc).astype(np.float64) * scale64[None, :] + np.abs(b)[None, :] + np.abs(exact))
    kind = _EPILOGUE[engine]
    accf = acc.astype(F)
    if kind == "fbgemm":
        mult = np.broadcast_to((sa * sb).astype(F), accf.shape)
        return fmaf(accf, mult, np.broadcast_to(b, accf.shape)), exact, bound
    if kind == "qnnpack":
        return ((accf * (sb * sa).astype(F)[None, :]).astype(F) + b[None, :]).astype(F), exact, bound
    inv_a, inv_w = F(1) / sa, (F(1) / sb).astype(F)
    return _onednn_scale(accf, F(1) / inv_a, (F(1) / inv_w).astype(F), b, epilogue or "onednn"), exact, bound


def qlinear_pointwise_model(qx: np.ndarray, x_zp: int, x_scale, w: np.ndarray, w_scale: np.ndarray,
                            bias: np.ndarray | None, int16_pairs: bool = False, epilogue: str | None = None,
                            k_block: int = 0):
    """`torch.ops.onednn.qlinear_pointwise` with fp32 output and no post-op: (predicted, exact, bound).

    Upstream: pytorch aten/src/ATen/native/quantized/cpu/qlinear.cpp `linear_int8_with_onednn_weight`
    (the static u8 x s8 oneDNN matmul inductor emits): observed bit for bit as
    float(acc) * fp32(x_scale * w_scale[n]) + bias[n] on gemm:jit and AMX ("onednn") and as
    (float(acc) * x_scale) * w_scale[n] + bias[n] on the other brg_matmul kernels ("onednn.brgemm"),
    acc the int32 sum of (qx - x_zp) * w, with the same non-VNNI int16 pairs as linear_dynamic (restarting every
    k_block k's, `gemm_jit_k_block`).
    The exact value and bound are those of the modelled integer sum, as for linear_dynamic.
    """
    sa = F(x_scale)
    sb = np.asarray(w_scale, dtype=F)
    b = np.zeros(w.shape[0], F) if bias is None else bias.astype(F)
    acc = accumulate(qx, x_zp, w, int16_pairs, k_block)
    scale64 = np.float64(sa) * sb.astype(np.float64)
    exact = acc.astype(np.float64) * scale64[None, :] + b.astype(np.float64)[None, :]
    # float(acc), two multiplies (the scale product and acc * it, or acc * sa then * sb), the bias add
    bound = gamma(4, "fp32") * (np.abs(acc).astype(np.float64) * scale64[None, :] + np.abs(b)[None, :] + np.abs(exact))
    return _onednn_scale(acc.astype(F), sa, sb, b, epilogue or "onednn"), exact, bound


# the engines whose activation quantizer's arithmetic differs between the hosts it was seen on: qnnpack's input goes
# through ATen's quantize_per_tensor, fmaf(x, 1/s, zp) rounded on torch 2.13 (AMD AVX2 host) and
# rne(fp32(x * (1/s))) + zp on torch 2.11 (Intel AMX host); onednn's through oneDNN's reorder, which on the AMX
# host's brg_matmul path quantized one element of 262,144 as a multiplier 2 ulps above fp32(1/s) would
_UNPINNED_QUANTIZER = ("qnnpack", "onednn")
_CODE_MARGIN = 2.0 ** -20  # relative: covers an fp32 rounding of x / s and of the sum, and a multiplier 4 ulps off


def unpinned_codes(x: np.ndarray, scale: float, zp: float) -> np.ndarray:
    """(M, K) bool: the activations whose quantized value x / scale + zp lies so near a half step that the variants
    of the quantizer's fp32 arithmetic (`_UNPINNED_QUANTIZER`) may round it either way; elsewhere every variant
    gives the convention's code."""
    zp = float(zp)
    t = x.astype(np.float64) / np.float64(scale) + zp
    return np.abs(t - np.floor(t) - 0.5) <= _CODE_MARGIN * (np.abs(t - zp) + np.abs(t))


def linear_dynamic_w8(ops: dict[str, np.ndarray], observed: dict, engine: str):
    """w8_float (per-channel qint8 weights, no bias) as `engine` computes it with reduce_range=False: the
    exact int32 sum and the engine's epilogue; for onednn the order of the implementations the call ran
    (observed["onednn_impls"]), no prediction where it is not one modelled. For qnnpack and onednn an activation
    within a rounding's reach of a half step (`unpinned_codes`) may take either code: the bound grows by one code
    step of it and nothing is predicted. A NaN or Inf anywhere in x leaves the per-tensor quantization parameters
    undefined (the quantizer cannot compute them): NaN throughout."""
    from oracle.gemm.semantics import Expected

    if not np.isfinite(ops["x"]).all():
        nan = np.full((ops["x"].shape[0], ops["w"].shape[0]), np.nan)
        return Expected(nan, np.zeros_like(nan), nan.astype(F), "fp32")
    impls = observed.get("onednn_impls", ())
    # only gemm:jit's order is confirmed for per-channel weights without a bias: brg_matmul's (VNNI, AMX)
    # missed it on 25 of 561 outputs on the AMX host, so there the bound judges
    epilogue = onednn_epilogue(impls) if engine == "onednn" and _gemm_jit_only(impls) else None
    pred, exact, bound = linear_dynamic_model(ops["x"], ops["w"], ops["scales"], None, engine=engine,
                                              reduce_range=False, epilogue=epilogue)
    if engine == "onednn" and epilogue is None:
        pred = None
    if engine in _UNPINNED_QUANTIZER:
        qa = get(activation_convention(engine, False)).quantize(np.ascontiguousarray(ops["x"], dtype=F))
        near = unpinned_codes(ops["x"], qa.scales[0, 0], qa.zeros[0, 0])
        if near.any():
            # such a code may be one off: its column of weights, scaled, joins the bound, and no output is predicted
            step = np.float64(qa.scales[0, 0]) * ops["scales"].astype(np.float64)[None, :]
            bound = bound + step * (near.astype(np.float64) @ np.abs(ops["w"].astype(np.float64)).T)
            pred = None
    return Expected(exact, bound, pred, "fp32")



# the ISA names (last in 'matmul:brg_matmul:avx512_core_vnni') whose u8 x s8 products go straight into int32: VNNI and
# AMX, and the AVX512 levels that include VNNI (avx512_core_bf16 / fp16, avx10_1_512)
_VNNI_ISAS = ("vnni", "amx", "avx512_core_bf16", "avx512_core_fp16", "avx10")


def onednn_int16_pairs(impls) -> bool:
    """Whether the u8 x s8 matmul oneDNN ran sums vpmaddubsw's saturating int16 pairs: unless a matmul implementation
    names an ISA with VNNI or AMX. gemm:jit names none; oneDNN runs it below the brgemm ISAs (the AVX2 and SSE4.1
    caps), where it forms the pairs (the module docstring)."""
    return not any(any(v in i.split(":")[-1] for v in _VNNI_ISAS) for i in impls if i.startswith("matmul:"))


def qlinear_pointwise_u8(ops: dict[str, np.ndarray], observed: dict):
    """u8_affine as `qlinear_pointwise_model` computes it, by the implementations the call ran
    (observed["onednn_impls"]): their integer sums and epilogue order, predicted wherever `onednn_epilogue` names
    one. A bias is always passed (zeros in most families), the path on which brg_matmul's order was observed bit
    for bit (torch 2.11, AMX host, avx512_core .. amx caps; without a bias it missed, linear_dynamic_w8)."""
    from oracle.gemm.semantics import Expected

    impls = observed.get("onednn_impls", ())
    epilogue = onednn_epilogue(impls)
    k_block = gemm_jit_k_block(ops["a"].shape[1], observed["onednn_avx2"]) if _gemm_jit_only(impls) else 0
    pred, exact, bound = qlinear_pointwise_model(ops["a"], int(ops["a_zp"]), ops["a_scale"], ops["b"], ops["b_scales"],
                                                 ops["bias"], onednn_int16_pairs(impls), epilogue, k_block)
    return Expected(exact, bound, None if epilogue is None else pred, "fp32")
