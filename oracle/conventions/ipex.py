"""intel-extension-for-pytorch weight-only quantization (WOQ) on CPU.

Read from intel/intel-extension-for-pytorch intel_extension_for_pytorch/quantization/_quantize_utils.py,
`quantize_per_channel` and `quantize_per_block` (the same arithmetic per channel or per
[1, group_size] block; a partial last block uses its own elements):
- the range always holds 0: mins = min(min, 0), maxs = max(max, 0);
- INT4 symmetric: scale = max(|maxs|, |mins|) / 7, then max(scale, fp32 eps) (eps on the scale,
  not on the statistic); q = clamp(round(x * (1/scale)) + 8, 0, 15) with torch.round (half to
  even); INT4 asymmetric: scale = max((maxs - mins)/15, eps), zp = -round(mins/scale) kept as a
  float, q = clamp(round(x * (1/scale)) + zp, 0, 15);
- INT8 symmetric: scale = max(absmax/127, eps), q = clamp(round(x * (1/scale)), -128, 127);
  INT8 asymmetric: scale = max(range/255, eps), zp = -round(mins/scale) - 128;
- NF4 (symmetric only): scale = max(absmax, eps), code = the largest i with x * (1/scale) >
  NF4_QUANT_TABLE[i], whose entries are the midpoints of NF4_DEQUANT_TABLE (code 0 = -1.0,
  code 7 = 0.0, code 15 = 1.0; not BesTLA's code order), so a tie goes to the lower code;
- 4-bit bytes: code[2j+1] << 4 | code[2j], an odd K padded with code 0; dequantization is
  (q - zp) * scale in float32 (zp 8 for symmetric INT4, 0 for INT8, table * scale for NF4).
IPEX's default group_size is -1 (per output channel), which these conventions use; scales are
in the weight's dtype (float32 here). IPEX CPU wheels are tied to torch 2.8 and cannot be
installed beside torch 2.13, so none of this is run against the library.
"""
from oracle.conventions.convention import Convention, register

_SRC = "intel/intel-extension-for-pytorch intel_extension_for_pytorch/quantization/_quantize_utils.py"
_FN = "quantize_per_channel / quantize_per_block, dequantize_per_channel / dequantize_per_block"
_ONLY = f"source reading only: {_SRC}: {_FN} (IPEX needs torch 2.8)"
_EPS = 1.1920928955078125e-07  # torch.finfo(torch.float32).eps
_NF4 = (-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
        -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
        0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
        0.7229568362236023, 1.0)
_COMMON = dict(kind="weight", group_size=-1, rounding="rne", inverse="reciprocal", eps=_EPS, eps_on="scale",
               source=f"{_SRC}: {_FN}", confirmed=_ONLY)

register(Convention(
    name="ipex.int4.sym", bits=4, symmetric=True, scale_rule="absmax", divisor=7, qmin=0, qmax=15,
    zero_domain="fixed", zero_offset=8, packing="k_adjacent", **_COMMON,
    summary="IPEX WOQ int4 sym: s = max(absmax/7, eps), q = clamp(RNE(x*(1/s)) + 8, 0, 15), byte = q1<<4|q0"))
register(Convention(
    name="ipex.int4.asym", bits=4, symmetric=False, scale_rule="range_with_zero", divisor=15, qmin=0, qmax=15,
    zero_domain="int", packing="k_adjacent", **_COMMON,
    summary="IPEX WOQ int4 asym: s = max(range/15, eps) (0 in range), zp = -RNE(min/s), q = clamp(RNE(x*(1/s)) + zp)"))
register(Convention(
    name="ipex.int8.sym", bits=8, symmetric=True, scale_rule="absmax", divisor=127, qmin=-128, qmax=127,
    zero_domain="fixed", packing="bytes", **_COMMON,
    summary="IPEX WOQ int8 sym: s = max(absmax/127, eps), q = clamp(RNE(x*(1/s)), -128, 127)"))
register(Convention(
    name="ipex.int8.asym", bits=8, symmetric=False, scale_rule="range_with_zero", divisor=255, qmin=-128,
    qmax=127, zero_domain="int", packing="bytes", **_COMMON,
    summary="IPEX WOQ int8 asym: s = max(range/255, eps), zp = -RNE(min/s) - 128, q = clamp(RNE(x*(1/s)) + zp)"))
register(Convention(
    name="ipex.nf4", bits=4, symmetric=True, scale_rule="absmax", divisor=1, qmin=0, qmax=15,
    zero_domain="fixed", values=_NF4, packing="k_adjacent", **_COMMON,
    summary="IPEX WOQ NF4: s = max(absmax, eps), code = NF4 interval of x*(1/s) (ties down), code 7 = 0.0"))
