"""PyTorch core CPU weight-only kernels and the quantizers used with them.

`_weight_int4pack_mm_for_cpu(x, packed, group_size, scales_and_zeros[G, N, 2])`
(aten/src/ATen/native/cpu/int4mm_kernel.cpp) dequantizes `(q - 8) * scale + zero`: the
"tinygemm" float zero point. Its AVX2/AVX-512 `tinygemm_kernel`s form each fp32 weight with one
fused multiply-add (`_mm512_fmadd_ps(vb, scale, zero)`, vb = q - 8 from a lookup table), so
`dequantize` here is fmaf(q - 8, s, z), one rounding; torchao's Python `_dequantize_affine_tinygemm`
and a build run at ATEN_CPU_CAPABILITY=default round twice. Two quantizers feed the kernel, and
they round differently:
torchao's `_choose_qparams_affine_tinygemm` / `_quantize_affine_tinygemm` (codes from
`(x - (zero - 8*scale)) / scale`) and torch's own test helper `_group_quantize_tensor`
(torch/testing/_internal/common_quantization.py; codes from `(x - min) / scale`, eps on the
range). torchao (0.18, `Int4OpaqueTensor.from_hp`, int4_opaque_tensor.py lines 125-193) does
every step in the weight's dtype (scale_dtype None and zero_point_dtype = w.dtype), each torch op
rounding to bf16/fp16: `tinygemm.torchao` covers float32 weights only, `tinygemm.torchao.bf16`
and `tinygemm.torchao.fp16` weights held in those dtypes (a float32 input is first rounded to
the dtype, as `w.to(dtype)` does). `pack` gives the int32 [N, K] codes
`_convert_weight_to_int4pack_for_cpu` takes and the [G, N, 2] scales_and_zeros tensor (as float32
values; the kernel wants them in the activation dtype); the packed layout it makes depends on the
ATen CPU capability (n/n+1, n/n+16, n/n+32 pairing) and is not modelled here.

`_weight_int8pack_mm(x, w int8 [N, K], scales [N])` takes per-channel symmetric int8 weights;
torch's tests quantize them with `_dynamically_quantize_per_channel` (x / scale, RNE).
`_dyn_quant_pack_4bit_weight` takes uint4 codes from `_group_quantize_tensor_symmetric`:
`(x / s + 8.5).to(int8)` (truncation) with s = max(amax, eps) / 7, adjacent nibbles.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from oracle import floats, rounding
from oracle.conventions.convention import Convention, QuantizedWeight, register

__all__ = ["TinygemmConvention"]


@dataclass(frozen=True)
class TinygemmConvention(Convention):
    """A tinygemm int4 convention: the kernel's fused dequantization, and torchao's codes in a 16-bit dtype."""

    def dequantize(self, qw: QuantizedWeight) -> np.ndarray:
        """fmaf(q - 8, scale, zero) per element, as the kernel's FMA forms each weight."""
        codes = np.asarray(qw.codes)
        col = np.concatenate([np.full(e - b, i) for i, (b, e) in enumerate(self.groups(codes.shape[1]))])
        s = np.asarray(qw.scales, dtype=np.float32)[:, col]
        z = np.asarray(qw.zeros, dtype=np.float32)[:, col]
        return rounding.fmaf((codes - self.zero_offset).astype(np.float32), s, z).astype(np.float32)

    def _quantize_group(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        if self.compute_dtype == "fp32" or self.zero_domain != "float":
            return super()._quantize_group(x)
        # torchao on a bf16/fp16 weight: every op of _quantize_affine_tinygemm rounds to the dtype
        xr = _in_dtype(x, self.compute_dtype)
        _, scale, zero = super()._quantize_group(xr)
        s, z = scale[:, None], zero[:, None]
        base = _in_dtype(z - _in_dtype(s * np.float32(self.zero_offset), self.compute_dtype), self.compute_dtype)
        t = _in_dtype(_in_dtype(xr - base, self.compute_dtype) / s, self.compute_dtype)
        codes = np.clip(getattr(rounding, self.rounding)(t), self.qmin, self.qmax)
        return codes.astype(np.int32), scale, zero


def _in_dtype(a: np.ndarray, dtype: str) -> np.ndarray:
    """A float32 result rounded to bf16/fp16 and held as float32 again (one torch op on that dtype)."""
    return np.asarray(a, dtype=np.float32).astype(floats.FORMATS[dtype].dtype).astype(np.float32)


_TEST = "torch/testing/_internal/common_quantization.py"
_PRIM = "torchao/quantization/quant_primitives.py"

_KERNEL = "kernel aten/src/ATen/native/cpu/int4mm_kernel.cpp tinygemm_kernel (_mm512_fmadd_ps / _mm256_fmadd_ps)"
_OPAQUE = ("torchao/prototype/quantization/int4/int4_opaque_tensor.py (0.18): Int4OpaqueTensor.from_hp, "
           "lines 125-193; ")
_CONFIRMED_TG = ("torchao 0.18 quant_primitives and Int4OpaqueTensor.from_hp, torch 2.13 "
                 "_weight_int4pack_mm_for_cpu (tests/test_conventions_torch.py, tests/test_tinygemm_bf16.py)")

register(TinygemmConvention(
    name="tinygemm.torchao", kind="weight", bits=4, symmetric=False, group_size=32,
    scale_rule="range", divisor=15, qmin=0, qmax=15, rounding="rne", zero_domain="float",
    zero_offset=8, inverse="divide", eps=1e-6, packing="tinygemm_cpu_input",
    source=_OPAQUE + f"{_PRIM}: _choose_qparams_affine_tinygemm, _quantize_affine_tinygemm; " + _KERNEL,
    summary="tinygemm int4, float32 weights only: s = (max-min)/15, zero = min + 8s (float), "
            "q = RNE((x - (zero - 8s))/s), w = fmaf(q-8, s, zero)",
    confirmed=_CONFIRMED_TG))
for _dt in ("bf16", "fp16"):
    register(TinygemmConvention(
        name=f"tinygemm.torchao.{_dt}", kind="weight", bits=4, symmetric=False, group_size=32,
        scale_rule="range", divisor=15, qmin=0, qmax=15, rounding="rne", zero_domain="float",
        zero_offset=8, inverse="divide", eps=1e-6, compute_dtype=_dt, scale_dtype=_dt,
        packing="tinygemm_cpu_input",
        source=_OPAQUE + f"{_PRIM}: _choose_qparams_affine_tinygemm, _quantize_affine_tinygemm; " + _KERNEL,
        summary=f"tinygemm int4 for {_dt} weights (torchao): s, zero = min + 8s and every code step rounded to "
                f"{_dt} op by op, q = RNE(({_dt} x - (zero - 8s))/s), w = fmaf(q-8, s, zero)",
        confirmed=_CONFIRMED_TG))
register(TinygemmConvention(
    name="tinygemm.torch_test", kind="weight", bits=4, symmetric=False, group_size=32,
    scale_rule="range", divisor=15, qmin=0, qmax=15, rounding="rne", zero_domain="float_from_min",
    zero_offset=8, inverse="divide", eps=1e-6, eps_on="statistic", packing="tinygemm_cpu_input",
    source=f"{_TEST}: _group_quantize_tensor (the quantizer of torch's _weight_int4pack_mm tests)",
    summary="tinygemm int4 as torch's tests quantize: s = max(max-min, 1e-6)/15, q = RNE((x - min)/s), "
            "zero = min + 8s, w = fmaf(q-8, s, zero)",
    confirmed="torch.testing._internal.common_quantization (tests/test_conventions_torch.py)"))
register(Convention(
    name="torch.int8pack", kind="weight", bits=8, symmetric=True, group_size=-1,
    scale_rule="absmax", divisor=127.5, qmin=-128, qmax=127, rounding="rne", zero_domain="fixed",
    inverse="divide", eps=1.1920928955078125e-07, packing="bytes",
    source=f"{_TEST}: _dynamically_quantize_per_channel (gpt-fast's quantizer, used for _weight_int8pack_mm); "
           "kernel aten/src/ATen/native/cpu/int8mm_kernel.cpp",
    summary="int8 per channel for _weight_int8pack_mm: s = absmax/127.5 (fp32 eps), q = RNE(x / s), [-128,127]",
    confirmed="torch.testing._internal.common_quantization and torch._weight_int8pack_mm (tests/test_conventions_torch.py)"))
register(Convention(
    name="torch.dyn_quant_4bit", kind="weight", bits=4, symmetric=True, group_size=32,
    scale_rule="absmax", divisor=7, qmin=0, qmax=15, rounding="trunc", zero_domain="fixed", zero_offset=8,
    zp_added="before_round", round_bias=0.5, inverse="divide", eps=1.1920928955078125e-07,
    eps_on="statistic", packing="k_adjacent",
    source=f"{_TEST}: _group_quantize_tensor_symmetric (weights for torch._dyn_quant_pack_4bit_weight); "
           "kernel aten/src/ATen/native/cpu/int4mm_kernel.cpp dyn_quant_matmul_4bit",
    summary="uint4 around 8 for _dyn_quant_*_4bit: s = max(amax, eps)/7, q = trunc(x/s + 8.5) <= 15, adjacent nibbles",
    confirmed="torch.testing._internal.common_quantization (tests/test_conventions_torch.py)"))
