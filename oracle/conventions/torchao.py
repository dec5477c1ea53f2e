"""torchao's affine primitives and the weight conventions of its CPU int4 paths.

Upstream: pytorch/ao torchao/quantization/quant_primitives.py. `choose_qparams_affine`
takes min_neg = min(min, 0) and max_pos = max(max, 0) per block; symmetric scale is
max(-min_neg, max_pos) / ((qmax - qmin) / 2) (so 7.5 for [-8, 7] and 127.5 for [-128, 127]),
zero point int((qmax + qmin + 1) / 2); asymmetric scale is (max_pos - min_neg) / (qmax - qmin),
zero point clamp(qmin - round(min_neg / scale)); scale clamped to eps, then cast to its dtype.
`quantize_affine` is clamp(round(x * (1.0 / scale)) + zp) with torch.round (half to even);
`dequantize_affine` is (q - zp) * scale in float32.
"""
from oracle.conventions.convention import Convention, register

_PRIM = "torchao/quantization/quant_primitives.py: choose_qparams_affine, quantize_affine, dequantize_affine"
_F32_EPS = 1.1920928955078125e-07  # torch.finfo(torch.float32).eps
_F32_TINY = 1.1754943508222875e-38  # torch.finfo(torch.float32).smallest_normal, the eps=None default
_CONFIRMED = "torchao quant_primitives (tests/test_conventions_torch.py)"

_COMMON = dict(kind="weight", rounding="rne", inverse="reciprocal", scale_dtype="fp32",
               packing="bytes", confirmed=_CONFIRMED, group_size=-1)

register(Convention(
    name="torchao.int8.sym", bits=8, symmetric=True, scale_rule="absmax", divisor=127.5,
    qmin=-128, qmax=127, zero_domain="fixed", eps=_F32_EPS, **_COMMON,
    source="torchao/quantization/quantize_/workflows/int8/int8_tensor.py: Int8Tensor.from_hp; " + _PRIM,
    summary="int8 symmetric per channel, scale = absmax/127.5 (qmax-qmin over 2), RNE of x*(1/s), fp32 eps"))
register(Convention(
    name="torchao.int8.asym", bits=8, symmetric=False, scale_rule="range_with_zero", divisor=255,
    qmin=-128, qmax=127, zero_domain="int", eps=_F32_EPS, **_COMMON,
    source="torchao/quantization/quantize_/workflows/int8/int8_tensor.py: Int8Tensor.from_hp (ASYMMETRIC); " + _PRIM,
    summary="int8 asymmetric per channel, s = (max(max,0)-min(min,0))/255, zp = -128 - round(min/s)"))
register(Convention(
    name="torchao.int4.sym", bits=4, symmetric=True, scale_rule="absmax", divisor=7.5,
    qmin=-8, qmax=7, zero_domain="fixed", eps=_F32_TINY, **{**_COMMON, "group_size": 32},
    source="torchao/quantization/quantize_/workflows/intx/intx_unpacked_to_int8_tensor.py: from_hp; " + _PRIM,
    summary="int4 [-8,7] symmetric, group 32, scale = absmax/7.5, RNE, codes one per int8 byte"))
register(Convention(
    name="torchao.int4.asym", bits=4, symmetric=False, scale_rule="range_with_zero", divisor=15,
    qmin=-8, qmax=7, zero_domain="int", eps=_F32_TINY, **{**_COMMON, "group_size": 32},
    source="torchao/quantization/quantize_/workflows/intx/intx_unpacked_to_int8_tensor.py: from_hp (ASYMMETRIC); " + _PRIM,
    summary="int4 [-8,7] asymmetric, group 32, s = range/15 with 0 in range, zp = -8 - round(min/s)"))
register(Convention(
    name="torchao.da8w4.pr2128", bits=4, symmetric=True, scale_rule="absmax", divisor=7.5,
    qmin=0, qmax=15, zero_domain="fixed", zero_offset=8, eps=_F32_EPS,
    **{**_COMMON, "group_size": 32, "packing": "k_adjacent"},
    source="pytorch/ao PR #2128 (Int8DynamicActivationInt4WeightConfig on CPU): " + _PRIM,
    summary="DA8W4 weights: symmetric uint4 codes round(x/ (absmax/7.5)) + 8 in [0,15], zero point 8"))
register(Convention(
    name="torchao.da8w4.opaque", bits=4, symmetric=False, scale_rule="range_with_zero", divisor=15,
    qmin=0, qmax=15, zero_domain="int", eps=1e-6, **{**_COMMON, "group_size": 32, "packing": "k_adjacent"},
    source="torchao/prototype/quantization/int4/int4_opaque_tensor.py: Int4OpaqueTensor.from_hp_da8w4; " + _PRIM,
    summary="DA8W4 weights (current prototype): asymmetric uint4, s = range/15 (fp32, eps 1e-6), zp = -round(min/s)"))
