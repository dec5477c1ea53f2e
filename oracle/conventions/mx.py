"""OCP Microscaling (MX) formats: a block of 32 elements with one e8m0 power-of-two scale.

OCP Microscaling Formats (MX) v1.0 specification, section 6.3 (the quantization algorithm):
shared exponent = floor(log2(amax)) - emax of the element format (2 for e2m1, 8 for e4m3),
scale = 2^exponent stored as e8m0, each element x / scale rounded to nearest even and saturated
to the element's largest finite value. An all-zero block gets the smallest scale, 2^-127.
Two shipped quantizers depart from the spec, each its own convention: torchao's `to_mx` (FLOOR
mode) stores byte 0 (2^-127) for blocks with a tiny amax but divides the elements by 2^-126, the
smallest normal float32, so those codes are half the spec's (`.torchao`); auto-round's
`mxfp4_quant_reference` writes every zero magnitude as +0 (code 0, never 0x8), also for negative
values that round to zero (`.auto_round`; it takes fp16/bf16 inputs, so the float32 input here
should hold such values). NVFP4 (16-element blocks, e4m3 block scales and an fp32 tensor scale) is in `nvfp4.py`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from oracle import floats
from oracle.conventions.convention import Convention, register

__all__ = ["MXConvention"]

_SPEC = "OCP Microscaling Formats (MX) Specification v1.0, section 6.3"
_TORCHAO = ("torchao/prototype/mx_formats/mx_tensor.py (torchao 0.18): to_mx, FLOOR scaling, lines 214-420; "
            "scale_fp32 = clamp(2^(byte-127), min=F32_MIN_NORMAL) before data_hp / scale_fp32 (line 359)")
_AUTO_ROUND = ("auto_round_kernel/mxfp4_hadamard.py (auto-round-lib 0.16.0): mxfp4_quant_reference (line 380), "
               "_e8m0_and_quantized, _encode_fp4 (zero canonicalised to +0)")
_UPSTREAM_OK = "byte for byte against the upstream reference (tests/test_mx_upstream.py)"

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


@dataclass(frozen=True)
class MXConvention(Convention):
    """An MX convention with the two upstream departures from the spec seen in shipped code.

    divide_floor: elements are divided by max(scale, divide_floor) while the stored e8m0 byte keeps
    the true scale (torchao: 2^-126 where the byte is 0, i.e. 2^-127). positive_zero: a code
    whose magnitude is 0 is always written +0 (auto-round), never the sign-only code.
    """

    divide_floor: float = 0.0
    positive_zero: bool = False

    def _quantize_mx(self, x: np.ndarray, amax: np.ndarray) -> tuple[np.ndarray, np.ndarray, None]:
        codes, stored, _ = super()._quantize_mx(x, amax)
        if self.divide_floor:
            div = np.maximum(stored, np.float32(self.divide_floor))
            top = floats.all_values(self.values_format)
            top = np.float32(top[np.isfinite(top)].max())
            scaled = np.clip((x.astype(np.float32) / div[:, None]).astype(np.float32), -top, top)
            codes = floats.encode(scaled, self.values_format).astype(np.int32)
        if self.positive_zero:
            sign = 1 << (self.bits - 1)
            codes = np.where(codes == sign, 0, codes)
        return codes, stored, None


for _name, _bits, _qmax, _pack, _emax in (("mxfp4", 4, 15, "k_adjacent", 2), ("mxfp8_e4m3", 8, 255, "bytes", 8)):
    register(MXConvention(
        name=f"mx.{_name}.torchao", kind="weight", bits=_bits, symmetric=True, group_size=32,
        scale_rule="mx_floor_log2", divisor=1, qmin=0, qmax=_qmax, rounding="rne", zero_domain="fixed",
        scale_dtype="e8m0", packing=_pack, divide_floor=2.0 ** -126, source=_TORCHAO, confirmed=_UPSTREAM_OK,
        summary=f"{_name.upper()} as torchao to_mx: e8m0 2^(floor(log2 amax) - {_emax}), elements divided by "
                "max(scale, 2^-126): byte 0 blocks get half the spec's codes"))
register(MXConvention(
    name="mx.mxfp4.auto_round", kind="weight", bits=4, symmetric=True, group_size=32,
    scale_rule="mx_floor_log2", divisor=1, qmin=0, qmax=15, rounding="rne", zero_domain="fixed",
    scale_dtype="e8m0", packing="k_adjacent", positive_zero=True, source=_AUTO_ROUND, confirmed=_UPSTREAM_OK,
    summary="MXFP4 as auto-round's reference: the spec's scale and RNE codes, zero magnitudes always +0 (code 0)"))
