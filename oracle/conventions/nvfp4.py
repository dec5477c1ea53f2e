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

Corners where torchao's arithmetic makes NaN (torchao 0.18, nvfp4_tensor.py `nvfp4_quantize` lines
772-854; prototype/custom_fp_utils.py `_f32_to_floatx_unpacked` lines 27-140): with two levels and
an all-zero tensor the tensor scale is 0, each block scale 0/0 is x86's default NaN (sign set),
stored as e4m3fn 0xFF, and torch reads 0xFF back as the float32 NaN 0xFFF00000; every element is
then 0 * that NaN. Where the tensor scale is 0 or so small that its reciprocal overflows, a 0.0
element meets an infinite reciprocal: 0 * inf, the default NaN 0xFFC00000. torchao's e2m1 encoder
works on the bits and has no NaN branch: a NaN takes its normal-range rounding path, which gives
0xC for 0xFFF00000 (so an all-zero tensor packs to 0xCC bytes) and 0xB for 0xFFC00000. The
conventions model that; NaN or inf inputs remain undefined, as for every convention.

GGML's NVFP4 block (ggml-quants.c quantize_row_nvfp4_ref) is a different, one-level format:
64-element super-blocks of four UE4M3 sub-block scales, j/j+8 nibble pairing and a
nearest-value search; it belongs with the GGML block formats, not here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from oracle.conventions.convention import Convention, QuantizedWeight, register

__all__ = ["NVFP4Convention"]

_SRC = ("pytorch/ao torchao/prototype/mx_formats/nvfp4_tensor.py: nvfp4_quantize, per_tensor_amax_to_scale, "
        "NVFP4Tensor.dequantize")
_OK = ("torchao 0.18 nvfp4_quantize and NVFP4Tensor dequantize byte for byte, all-zero and tiny tensors included "
       "(tests/test_conventions_torch.py::test_nvfp4_against_torchao)")
_TORCH_E4M3_NAN = np.uint32(0x7FF00000)  # torch's float32 for e4m3fn NaN: exponent all ones, mantissa 111 on top


@dataclass(frozen=True)
class NVFP4Convention(Convention):
    """NVFP4 as torchao's `nvfp4_quantize`, including the codes its bit-level encoder gives NaN products."""

    def _quantize_nvfp4(self, x: np.ndarray) -> QuantizedWeight:
        with np.errstate(over="ignore"):  # 1/tensor_scale may overflow: the inf is the point
            qw = super()._quantize_nvfp4(x)
        n, k = x.shape
        s8 = qw.scales.astype(np.float32)
        sign = s8.view(np.uint32) & np.uint32(0x80000000)
        s8 = np.where(np.isnan(s8), (sign | _TORCH_E4M3_NAN).view(np.float32), s8)  # as torch decodes 0x7F/0xFF
        f32 = np.float32
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            recip = f32(1) / s8 if qw.tensor_scale is None else (f32(1) / qw.tensor_scale) / s8
            scaled = (x.reshape(n, -1, self.group_size) * recip.astype(f32)[:, :, None]).astype(f32).reshape(n, k)
        nan = np.isnan(scaled)
        if not nan.any():
            return qw
        codes = qw.codes.copy()
        codes[nan] = _bit_trick_e2m1(scaled[nan].view(np.uint32))
        return QuantizedWeight(codes, qw.scales, qw.zeros, qw.convention, qw.tensor_scale)


def _bit_trick_e2m1(bits: np.ndarray) -> np.ndarray:
    """torchao's e2m1 code for float32 NaN bit patterns: its normal-range branch (rebias the
    exponent, add 2^21 - 1 plus the odd bit, keep bits 22 and up, wrap to uint8), then the sign."""
    mag = bits.astype(np.int64) & 0x7FFFFFFF
    v = (mag - (126 << 23) + (1 << 21) - 1 + ((mag >> 22) & 1)) >> 22
    return ((v & 0xFF) | ((bits.astype(np.int64) >> 28) & 0x8)).astype(np.int32)

for _two in (True, False):
    register(NVFP4Convention(
        name="nvfp4.two_level" if _two else "nvfp4.one_level", kind="weight", bits=4, symmetric=True,
        group_size=16, scale_rule="nvfp4", divisor=6, qmin=0, qmax=15, rounding="rne", zero_domain="fixed",
        scale_dtype="e4m3fn", two_level=_two, packing="k_adjacent", source=_SRC, confirmed=_OK,
        summary=("NVFP4 two-level: e4m3 block scale (amax/6)/t per 16, fp32 tensor scale t = amax/2688, "
                 "e2m1 RNE of x*((1/t)/s8)") if _two else
                "NVFP4 one-level: e4m3 block scale amax/6 per 16 (clamped to [2^-6, 448]), e2m1 RNE of x*(1/s8)"))
