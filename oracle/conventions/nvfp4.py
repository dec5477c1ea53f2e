"""NVFP4: e2m1 elements, one e4m3 scale per 16 elements, optionally an fp32 per-tensor scale.

NVIDIA's NVFP4 is two-level: the block scale amax_block/6 is stored in e4m3 relative to a
float32 tensor scale amax_tensor/(448*6), so block scales use the whole e4m3 range; the
one-level variant stores amax_block/6 itself. The reference quantizer modelled here is
torchao's `nvfp4_quantize` (torchao/prototype/mx_formats/nvfp4_tensor.py, with
`per_tensor_amax_to_scale` for the tensor scale), which states it matches the MSLK Triton kernel:
block scales are clamped to [2^-6, 448] before the e4m3 cast, elements are multiplied by a
reciprocal (1/s8, or (1/tensor_scale)/s8), clamped to +-6 and rounded to e2m1 to nearest even.
Dequantization is e2m1 * (tensor_scale * s8). Codes pack two per byte, low nibble = even k
(torchao `pack_uint4`); scales are e4m3fn codes, unswizzled (row-major [N, K/16]).

GGML's NVFP4 block (ggml-quants.c quantize_row_nvfp4_ref) is a different, one-level format:
64-element super-blocks of four UE4M3 sub-block scales, j/j+8 nibble pairing and a
nearest-value search; it belongs with the GGML block formats, not here.
"""
from oracle.conventions.convention import Convention, register

_SRC = ("pytorch/ao torchao/prototype/mx_formats/nvfp4_tensor.py: nvfp4_quantize, per_tensor_amax_to_scale, "
        "NVFP4Tensor.dequantize")
_OK = "torchao nvfp4_quantize and NVFP4Tensor dequantize byte for byte (tests/test_conventions_torch.py)"

for _two in (True, False):
    register(Convention(
        name="nvfp4.two_level" if _two else "nvfp4.one_level", kind="weight", bits=4, symmetric=True,
        group_size=16, scale_rule="nvfp4", divisor=6, qmin=0, qmax=15, rounding="rne", zero_domain="fixed",
        scale_dtype="e4m3fn", two_level=_two, packing="k_adjacent", source=_SRC, confirmed=_OK,
        summary=("NVFP4 two-level: e4m3 block scale (amax/6)/t per 16, fp32 tensor scale t = amax/2688, "
                 "e2m1 RNE of x*((1/t)/s8)") if _two else
                "NVFP4 one-level: e4m3 block scale amax/6 per 16 (clamped to [2^-6, 448]), e2m1 RNE of x*(1/s8)"))
