"""OCP Microscaling (MX) formats: a block of 32 elements with one e8m0 power-of-two scale.

OCP Microscaling Formats (MX) v1.0 specification, section 6.3 (the quantization algorithm):
shared exponent = floor(log2(amax)) - emax of the element format (2 for e2m1, 8 for e4m3),
scale = 2^exponent stored as e8m0, each element x / scale rounded to nearest even and saturated
to the element's largest finite value. An all-zero block gets the smallest scale, 2^-127.
NVFP4 (16-element blocks, e4m3 block scales and an fp32 tensor scale) is in `nvfp4.py`.
"""
from oracle.conventions.convention import Convention, register

_SPEC = "OCP Microscaling Formats (MX) Specification v1.0, section 6.3"

register(Convention(
    name="mx.mxfp4", kind="weight", bits=4, symmetric=True, group_size=32, scale_rule="mx_floor_log2",
    divisor=1, qmin=0, qmax=15, rounding="rne", zero_domain="fixed", scale_dtype="e8m0",
    packing="k_adjacent", source=_SPEC,
    summary="MXFP4: 32 x e2m1 (RNE, saturating) with an e8m0 scale 2^(floor(log2 amax) - 2), adjacent nibbles",
    confirmed="spec reading only"))
register(Convention(
    name="mx.mxfp8_e4m3", kind="weight", bits=8, symmetric=True, group_size=32, scale_rule="mx_floor_log2",
    divisor=1, qmin=0, qmax=255, rounding="rne", zero_domain="fixed", scale_dtype="e8m0",
    packing="bytes", source=_SPEC,
    summary="MXFP8 e4m3: 32 x e4m3fn (RNE, saturating) with an e8m0 scale 2^(floor(log2 amax) - 8)",
    confirmed="spec reading only"))
