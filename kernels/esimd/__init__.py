"""Intel ESIMD INT4 GEMV (intel/llm-scaler vllm/custom-esimd-kernels-vllm, PR #352) on XPU.

Op: `torch.ops.custom_esimd_kernels_vllm.esimd_gemv_int4(input [1, K] fp16, weight [N, K/2]
uint8, weight_scale [N, K/128] fp16, output [1, N] fp16)` (python/custom_esimd_kernels_vllm/ops.py),
weights in the oracle's `esimd.int4_gemv` convention. It needs an Intel GPU: the adapter runs only
where torch.xpu is available and the op is registered; offline certification is elsewhere.
"""
from kernels.registry import KernelInfo, register

register(KernelInfo(
    name="esimd.int4_gemv", package="custom-esimd-kernels-vllm",
    op="torch.ops.custom_esimd_kernels_vllm.esimd_gemv_int4", module="kernels.esimd.gemv",
    conventions=("esimd.int4_gemv",), dtypes=("fp16",),
    notes="XPU only; no CPU ISA knob applies. fp32 accumulation (even/odd 64-lane accumulators), fp16 output",
))
