"""The ESIMD INT4 GEMV format of intel/llm-scaler PR #352.

Kernel: vllm/custom-esimd-kernels-vllm/csrc/xpu/esimd_kernels/int4_GEMV.h: weight uint8
[N, K/2] with adjacent nibbles (low = even k), dequant (u4 - 8) * scale, fp16 scale [N, K/128]
that may be negative (the GGML q4_0 unsigned convention, not its j/j+16 nibble order).
Its test quantizer, vllm/custom-esimd-kernels-vllm/tests/test_gemv_int4.py `int4_quantize`
(read at commit 0030906), on fp16 weights taken to float32, per 128-wide group:
- m = the signed value at the largest |x| (torch `abs().max(dim=-1)` then `gather`; which of
  +a and -a wins a tie is torch's index choice, modelled here as the first);
- scale = fp16(m / -8.0): the division in float32, then one rounding to fp16;
- inv = 1.0 / float32(fp16 scale) (0 where |scale| <= 1e-10, which for a nonzero fp16 value never
  happens): the inverse comes from the STORED fp16 scale, unlike ggml q4_0 which uses the fp32 d;
- q = clamp(int32(x * inv + 8.5), 0, 15): truncation toward zero after adding 8.5 in float32;
- byte = q[2j] | q[2j+1] << 4; dequant `int4_dequantize_ref` = (q - 8) * float32(scale).
The test asserts K % 128 == 0; this convention also accepts a partial last group.
"""
from oracle.conventions.convention import Convention, register

register(Convention(
    name="esimd.int4_gemv", kind="weight", bits=4, symmetric=True, group_size=128,
    scale_rule="signed_absmax_first", divisor=-8, qmin=0, qmax=15, rounding="trunc",
    zero_domain="fixed", zero_offset=8, zp_added="before_round", round_bias=0.5,
    inverse="reciprocal", inverse_from="stored", scale_dtype="fp16", packing="k_adjacent",
    source="intel/llm-scaler PR #352: vllm/custom-esimd-kernels-vllm/csrc/xpu/esimd_kernels/int4_GEMV.h "
           "(int4_dequant); vllm/custom-esimd-kernels-vllm/tests/test_gemv_int4.py: int4_quantize, int4_dequantize_ref",
    summary="ESIMD INT4 GEMV: fp16 s = m/-8 per 128 (m = signed max|x|), q = trunc(x*(1/fp16 s) + 8.5) in [0,15], "
            "adjacent nibbles",
    confirmed="source reading only: tests/test_gemv_int4.py:int4_quantize (XPU-only test; the kernel needs an Intel XPU)"))
