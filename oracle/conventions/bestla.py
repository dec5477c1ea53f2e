"""BesTLA (intel/neural-speed bestla/, shipped today inside PyPI auto-round-lib) weight quantizers.

Read from intel/neural-speed bestla/bestla/kernel_ref.h (commit 0157342), `quantize_f32_sign_int_rowblock`
and `quantize_f32_f4_rowblock`:
- S4_FULLRANGE symmetric: the signed value of the first largest |x| (strict `<`), scale = max / -8,
  rscale = scale ? 1/scale : 0, q = min(15, (int8)(x*rscale + 8.5f)); stored nibble q, dequant
  (nibble - 8) * scale (`get_s8<S4_FULLRANGE>`, `decompress_kblock_s4_fp`): GGML q4_0's rounding.
- S8 symmetric: scale = max(FLT_MIN, max|x|) / 127, q = cast<int8>(x * (1/scale)).
- F4 (E2M1, NF4) symmetric: scale = absmax, code = nearest table entry of x * (1/absmax).
NUMERICS.md describes a newer rule (NVal = 2^(b-1) - 0.5, switched to -8/+8 by an asymmetry test,
roundf) in the current ARK sources; that version was not found in the stored sources and is not
modelled. auto-round-lib exposes only repacking of already-quantized weights, so none of these
quantizers is checked against the library: source reading only. The packed storage also
interleaves N by the GEMM core's NTile, which is not modelled (`pack` gives row-major nibbles).
"""
from oracle.conventions.convention import Convention, register

_SRC = "intel/neural-speed bestla/bestla/kernel_ref.h"
_ONLY = "source reading only (auto-round-lib has no float quantizer entry point)"

# code -> value; codes 8..15 are the negatives of 0..7 (sign bit 3) for E2M1
_E2M1_BESTLA = tuple(v / 6 for v in (0, 0.0625, 1, 1.5, 2, 3, 4, 6)) + tuple(-v / 6 for v in (0, 0.0625, 1, 1.5, 2, 3, 4, 6))
_NF4 = (0.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
        -0.18477343022823334, -0.09105003625154495, -1.0, 0.07958029955625534, 0.16093020141124725,
        0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
        0.7229568362236023, 1.0)

register(Convention(
    name="bestla.s4_fullrange.sym", kind="weight", bits=4, symmetric=True, group_size=32,
    scale_rule="signed_absmax_first", divisor=-8, qmin=0, qmax=15, rounding="trunc", zero_domain="fixed",
    zero_offset=8, zp_added="before_round", round_bias=0.5, inverse_from="computed",
    source=f"{_SRC}: quantize_f32_sign_int_rowblock<S4_FULLRANGE> (s4_fullrange_calc_store_scale_and_quantv_sym)",
    summary="BesTLA int4 sym (S4_FULLRANGE): s = max/-8 (signed max|x|), trunc(x/s + 8.5) <= 15, fp32 scale",
    confirmed=_ONLY))
register(Convention(
    name="bestla.s8.sym", kind="weight", bits=8, symmetric=True, group_size=32,
    scale_rule="absmax", divisor=127, qmin=-128, qmax=127, rounding="half_away", zero_domain="fixed",
    eps=1.1754943508222875e-38, eps_on="statistic", packing="bytes", inverse_from="computed",
    source=f"{_SRC}: quantize_f32_sign_int_rowblock<S8> (s8_calc_store_scale_and_quantv_sym)",
    summary="BesTLA int8 sym: s = max(FLT_MIN, absmax)/127, q = roundf(x * (1/s)) saturated",
    confirmed=_ONLY))
register(Convention(
    name="bestla.fp4_e2m1", kind="weight", bits=4, symmetric=True, group_size=32,
    scale_rule="absmax", divisor=1, qmin=0, qmax=15, rounding="rne", zero_domain="fixed",
    eps=1.1754943508222875e-38, eps_on="statistic", values=_E2M1_BESTLA, inverse_from="computed",
    source=f"{_SRC}: quantize_f32_f4_rowblock<F4_E2M1>, f4_quantize; dequant table F4_E2M1 in bestla_utils.h",
    summary="BesTLA fp4 E2M1: scale = absmax, code = nearest of {0, .0625, 1, 1.5, 2, 3, 4, 6}/6 (not OCP's 0.5)",
    confirmed=_ONLY))
register(Convention(
    name="bestla.nf4", kind="weight", bits=4, symmetric=True, group_size=32,
    scale_rule="absmax", divisor=1, qmin=0, qmax=15, rounding="rne", zero_domain="fixed",
    eps=1.1754943508222875e-38, eps_on="statistic", values=_NF4, inverse_from="computed",
    source=f"{_SRC}: quantize_f32_f4_rowblock<F4_NF4>, f4_quantize; table F4_NF4 in bestla_utils.h",
    summary="BesTLA NF4: scale = absmax, code = nearest NF4 table entry of x/absmax (code 7 is -1.0)",
    confirmed=_ONLY))
