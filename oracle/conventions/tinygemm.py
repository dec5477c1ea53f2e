"""PyTorch core CPU weight-only kernels and the quantizers used with them.

`_weight_int4pack_mm_for_cpu(x, packed, group_size, scales_and_zeros[G, N, 2])`
(aten/src/ATen/native/cpu/int4mm_kernel.cpp) dequantizes `(q - 8) * scale + zero`: the
"tinygemm" float zero point. Two quantizers feed it, and they round differently:
torchao's `_choose_qparams_affine_tinygemm` / `_quantize_affine_tinygemm` (codes from
`(x - (zero - 8*scale)) / scale`) and torch's own test helper `_group_quantize_tensor`
(torch/testing/_internal/common_quantization.py; codes from `(x - min) / scale`, eps on the
range). `pack` gives the int32 [N, K] codes `_convert_weight_to_int4pack_for_cpu` takes and
the [G, N, 2] scales_and_zeros tensor; the packed layout it makes depends on the ATen CPU
capability (n/n+1, n/n+16, n/n+32 pairing) and is not modelled here.

`_weight_int8pack_mm(x, w int8 [N, K], scales [N])` takes per-channel symmetric int8 weights;
torch's tests quantize them with `_dynamically_quantize_per_channel` (x / scale, RNE).
`_dyn_quant_pack_4bit_weight` takes uint4 codes from `_group_quantize_tensor_symmetric`:
`(x / s + 8.5).to(int8)` (truncation) with s = max(amax, eps) / 7, adjacent nibbles.
"""
from oracle.conventions.convention import Convention, register

_TEST = "torch/testing/_internal/common_quantization.py"
_PRIM = "torchao/quantization/quant_primitives.py"

register(Convention(
    name="tinygemm.torchao", kind="weight", bits=4, symmetric=False, group_size=32,
    scale_rule="range", divisor=15, qmin=0, qmax=15, rounding="rne", zero_domain="float",
    zero_offset=8, inverse="divide", eps=1e-6, packing="tinygemm_cpu_input",
    source=f"{_PRIM}: _choose_qparams_affine_tinygemm, _quantize_affine_tinygemm, _dequantize_affine_tinygemm "
           "(as Int4OpaqueTensor.from_hp calls them); kernel aten/src/ATen/native/cpu/int4mm_kernel.cpp",
    summary="tinygemm int4: s = (max-min)/15, zero = min + 8s (float), q = RNE((x - (zero - 8s))/s), w = (q-8)*s + zero",
    confirmed="torchao quant_primitives and torch._weight_int4pack_mm_for_cpu (tests/test_conventions_torch.py)"))
register(Convention(
    name="tinygemm.torch_test", kind="weight", bits=4, symmetric=False, group_size=32,
    scale_rule="range", divisor=15, qmin=0, qmax=15, rounding="rne", zero_domain="float_from_min",
    zero_offset=8, inverse="divide", eps=1e-6, eps_on="statistic", packing="tinygemm_cpu_input",
    source=f"{_TEST}: _group_quantize_tensor (the quantizer of torch's _weight_int4pack_mm tests)",
    summary="tinygemm int4 as torch's tests quantize: s = max(max-min, 1e-6)/15, q = RNE((x - min)/s), zero = min + 8s",
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
