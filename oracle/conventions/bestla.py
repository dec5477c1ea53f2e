"""BesTLA weight quantizers as intel/neural-speed's reference kernels write them ("bestla.neural_speed.*").

Read from intel/neural-speed bestla/bestla/kernel_ref.h at commits 0157342 and 98ffee4 (identical in
these functions), `quantize_f32_sign_int_rowblock<S4_T>` and `quantize_f32_f4_rowblock<F4_T>`:
- S4_FULLRANGE symmetric: the signed value of the first largest |x| (strict `<`), scale = max / -8,
  rscale = scale ? 1/scale : 0, q = min(15, (int8)(x*rscale + 8.5f)); stored nibble q, dequant
  (nibble - 8) * scale (`get_s8<S4_FULLRANGE>`, `decompress_kblock_s4_fp`): GGML q4_0's rounding.
- S8 symmetric: scale = max(FLT_MIN, max|x|) / 127, q = cast<int8>(x * (1/scale)).
- F4 (E2M1, NF4) symmetric: scale = absmax, code = nearest table entry of x * (1/absmax).
Newer BesTLA (neural-speed's last kernel_wrapper.h, and the copy inside auto-round-lib, "ARK")
replaces the templated function by `quantize_f32_sign_int_rowblock(..., BTLA_DTYPE qtype)` for
int1..int8; NUMERICS.md describes it (NVal = 2^(b-1) - 0.5 switched to +-8 by an asymmetry rule,
roundf), but that kernel_ref.h is not in the stored sources, so it is NOT modelled: a convention
cannot be named without its arithmetic. auto-round-lib 0.16 exposes no float quantizer (only
`repack_quantized_weight` of integer codes and `unpack_weight`), so the quantizers here are
source reading only; tests/test_conventions_bestla.py confirms against ARK the dequantization
rule they share ((nibble - 8 - zp) * fp32 scale). The asymmetric S4/S8 paths of these commits
(mid-range `fmedium` offsets, scale (max-min)/-16) and the F8 `quantize_f32_f8_rowblock_mxscale`
are not modelled. The packed storage interleaves N by the GEMM core's NTile, which is not
modelled either (`pack` gives row-major nibbles).
"""
from oracle.conventions.convention import Convention, register

_SRC = "intel/neural-speed bestla/bestla/kernel_ref.h (commits 0157342, 98ffee4)"
_ONLY = "source reading only: intel/neural-speed bestla/bestla/kernel_ref.h:quantize_f32_sign_int_rowblock / quantize_f32_f4_rowblock (auto-round-lib has no float quantizer)"

# code -> value; codes 8..15 are the negatives of 0..7 (sign bit 3) for E2M1
_E2M1_BESTLA = tuple(v / 6 for v in (0, 0.0625, 1, 1.5, 2, 3, 4, 6)) + tuple(-v / 6 for v in (0, 0.0625, 1, 1.5, 2, 3, 4, 6))
_NF4 = (0.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
        -0.18477343022823334, -0.09105003625154495, -1.0, 0.07958029955625534, 0.16093020141124725,
        0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
        0.7229568362236023, 1.0)

register(Convention(
    name="bestla.neural_speed.int4_fullrange.sym", kind="weight", bits=4, symmetric=True, group_size=32,
    scale_rule="signed_absmax_first", divisor=-8, qmin=0, qmax=15, rounding="trunc", zero_domain="fixed",
    zero_offset=8, zp_added="before_round", round_bias=0.5, inverse_from="computed",
    source=f"{_SRC}: quantize_f32_sign_int_rowblock<S4_FULLRANGE> (s4_fullrange_calc_store_scale_and_quantv_sym)",
    summary="BesTLA int4 sym (S4_FULLRANGE): s = max/-8 (signed max|x|), trunc(x/s + 8.5) <= 15, fp32 scale",
    confirmed=_ONLY + "; its dequantization (nibble - 8) * scale against auto-round-lib unpack_weight "
                      "(tests/test_conventions_bestla.py)"))
register(Convention(
    name="bestla.neural_speed.int8.sym", kind="weight", bits=8, symmetric=True, group_size=32,
    scale_rule="absmax", divisor=127, qmin=-128, qmax=127, rounding="half_away", zero_domain="fixed",
    eps=1.1754943508222875e-38, eps_on="statistic", packing="bytes", inverse_from="computed",
    source=f"{_SRC}: quantize_f32_sign_int_rowblock<S8> (s8_calc_store_scale_and_quantv_sym)",
    summary="BesTLA int8 sym: s = max(FLT_MIN, absmax)/127, q = roundf(x * (1/s)) saturated",
    confirmed=_ONLY))
register(Convention(
    name="bestla.neural_speed.fp4_e2m1", kind="weight", bits=4, symmetric=True, group_size=32,
    scale_rule="absmax", divisor=1, qmin=0, qmax=15, rounding="rne", zero_domain="fixed",
    eps=1.1754943508222875e-38, eps_on="statistic", values=_E2M1_BESTLA, inverse_from="computed",
    source=f"{_SRC}: quantize_f32_f4_rowblock<F4_E2M1>, f4_quantize; dequant table F4_E2M1 in bestla_utils.h",
    summary="BesTLA fp4 E2M1: scale = absmax, code = nearest of {0, .0625, 1, 1.5, 2, 3, 4, 6}/6 (not OCP's 0.5)",
    confirmed=_ONLY))
register(Convention(
    name="bestla.neural_speed.nf4", kind="weight", bits=4, symmetric=True, group_size=32,
    scale_rule="absmax", divisor=1, qmin=0, qmax=15, rounding="rne", zero_domain="fixed",
    eps=1.1754943508222875e-38, eps_on="statistic", values=_NF4, inverse_from="computed",
    source=f"{_SRC}: quantize_f32_f4_rowblock<F4_NF4>, f4_quantize; table F4_NF4 in bestla_utils.h",
    summary="BesTLA NF4: scale = absmax, code = nearest NF4 table entry of x/absmax (code 7 is -1.0)",
    confirmed=_ONLY))
