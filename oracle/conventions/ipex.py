"""intel-extension-for-pytorch INT4 weight-only quantization on CPU.

From NUMERICS.md's reading of IPEX (intel_extension_for_pytorch/quantization/_quantize_utils.py
and the WOQ linear kernels): symmetric scale = max(amax, eps) / 7, q = clamp(round(x * (1/s)) + 8,
0, 15), byte = q[2j+1] << 4 | q[2j]. IPEX CPU wheels are tied to torch 2.8 and cannot be
installed beside torch 2.13, so this convention is not checked against the library here.
"""
from oracle.conventions.convention import Convention, register

register(Convention(
    name="ipex.int4.sym", kind="weight", bits=4, symmetric=True, group_size=32,
    scale_rule="absmax", divisor=7, qmin=0, qmax=15, rounding="rne", zero_domain="fixed", zero_offset=8,
    inverse="reciprocal", eps=1.1920928955078125e-07, eps_on="statistic", packing="k_adjacent",
    source="intel/intel-extension-for-pytorch: intel_extension_for_pytorch/quantization/_quantize_utils.py (WOQ int4)",
    summary="IPEX int4 weight-only: s = max(amax, eps)/7, q = RNE(x*(1/s)) + 8 in [0,15], adjacent nibbles",
    confirmed="source reading only (NUMERICS.md lead; IPEX needs torch 2.8; the eps value is assumed)"))
