"""The ESIMD INT4 GEMV format of intel/llm-scaler PR #352 (seed 001).

Kernel: vllm/custom-esimd-kernels-vllm/csrc/xpu/esimd_kernels/int4_GEMV.h: weight uint8
[N, K/2] with adjacent nibbles (low = even k), dequant (u4 - 8) * scale, fp16 scale [N, K/128]
that may be negative (the GGML q4_0 unsigned convention, not its j/j+16 nibble order).
Its test quantizer (tests/test_gemv_int4.py, described in the PR and in NUMERICS.md):
scale = fp16(signed max / -8), the inverse taken from the fp16 scale, q = trunc(x*inv + 8.5)
clamped to [0, 15].
"""
from oracle.conventions.convention import Convention, register

register(Convention(
    name="esimd.int4_gemv", kind="weight", bits=4, symmetric=True, group_size=128,
    scale_rule="signed_absmax_first", divisor=-8, qmin=0, qmax=15, rounding="trunc",
    zero_domain="fixed", zero_offset=8, zp_added="before_round", round_bias=0.5,
    inverse="reciprocal", inverse_from="stored", scale_dtype="fp16", packing="k_adjacent",
    source="intel/llm-scaler PR #352: csrc/xpu/esimd_kernels/int4_GEMV.h (int4_dequant), tests/test_gemv_int4.py",
    summary="ESIMD INT4 GEMV: q4_0 unsigned convention, fp16 scale max/-8 per 128, trunc(x/s + 8.5), adjacent nibbles",
    confirmed="source reading only (the PR text and NUMERICS.md; the kernel needs an Intel XPU)"))
