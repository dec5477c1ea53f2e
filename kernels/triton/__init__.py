"""Triton kernels: the project's own (w8a8, w4a16 in two layouts, DA8W4) and torchao's and gemlite's shipped ones.

Worker-side modules: kernels/triton/{w8a8,w4a16,da8w4,torchao_intmm,gemlite}.py (each importing
kernels/triton/runtime.py first, which picks native CUDA or the CPU interpreter); the test-process
side is conformance/triton_harness.py. Nothing here imports triton or torch: registering is free.
"""
from kernels.registry import KernelInfo, Space, register
from kernels.spec import ACTIVATION_LAYOUTS, WEIGHT_LAYOUTS, KernelSpec, register_spec

_PKG = "triton"

register(KernelInfo(
    name="triton.w8a8", package=_PKG, op="kernels.triton.w8a8 (_act_quant_kernel, _gemm_kernel)",
    module="kernels.triton.w8a8",
    conventions=("act.sglang.per_token_int8.triton", "act.vllm.per_token_int8.cuda",
                 "w8a8 (acc*sa)*sb", "w8a8 acc*(sa*sb)"),
    dtypes=("int8", "fp32", "fp16", "bf16"),
    notes="per-token int8 quantization (two named roundings), tl.dot int8 -> int32 (wraps), fp32 epilogue in a "
          "named order, bias before or after the cast, RNE output; native on CUDA, else TRITON_INTERPRET=1 on CPU",
))
# what a NaN or Inf activation gives is no part of either quantizer's contract
_NONFINITE = ("{}: a NaN or Inf in a row makes its scale NaN or infinite, so its codes come from a NaN converted to "
              "an integer, which Triton leaves undefined (LLVM fptosi: poison), and tl.maximum's NaN handling is "
              "unspecified (propagate_nan=NONE); the per-token quantizers are defined for finite x")
register_spec(KernelSpec(
    kernel="triton.w8a8", call="linear_view", semantics="w8a8.sglang_per_token.acc_sa_sb", args=("x", "w", "scales"),
    layouts={"x": ACTIVATION_LAYOUTS, "w": WEIGHT_LAYOUTS}, dtypes=("bf16", "fp16", "fp32"), modelled=True,
    worker="triton", outside={"nonfinite": _NONFINITE.format("kernels/triton/w8a8.py _act_quant_kernel")},
    source="kernels/triton/w8a8.py linear (its default quantizer and epilogue order, no bias): x.stride(0), "
           "x.stride(1), w.stride(0), w.stride(1) handed to _act_quant_kernel and _gemm_kernel, out in x's dtype"))
register(KernelInfo(
    name="triton.w4a16.q4_0", package=_PKG, op="kernels.triton.w4a16 (_q4_0_kernel)", module="kernels.triton.w4a16",
    conventions=("q4_0",), dtypes=("fp16", "bf16", "fp32"),
    notes="reads GGML q4_0 18-byte blocks as stored (fp16 d, j/j+16 nibbles); fp32 products and sums, split-K "
          "partials summed in a fixed order; exact value + wxa16 bound",
))
register(KernelInfo(
    name="triton.w4a16.esimd", package=_PKG, op="kernels.triton.w4a16 (_esimd_kernel)", module="kernels.triton.w4a16",
    conventions=("esimd.int4_gemv",), dtypes=("fp16", "bf16", "fp32"),
    space=Space(k_multiple=2, source="kernels/triton/w4a16.py gemv_t: 'esimd needs even K'"),
    notes="ESIMD layout of intel/llm-scaler PR #352: uint8 [N, K/2] adjacent nibbles (low = even k), fp16 scale [N, K/128], "
          "(u4 - 8) * scale; fp32 accumulation; exact value + wxa16 bound",
))
register_spec(KernelSpec(
    kernel="triton.w4a16.q4_0", call="q4_0_view", semantics="w4a16.fp32", args=("x", "codes", "scales", "group"),
    layouts={"x": ACTIVATION_LAYOUTS}, dtypes=("fp16", "bf16", "fp32"), groups=(32,), worker="triton",
    source="kernels/triton/w4a16.py gemv_t: x's row stride goes to the kernel (a view with a K stride other "
           "than 1 is made contiguous first); K whole q4_0 blocks"))
register_spec(KernelSpec(
    kernel="triton.w4a16.esimd", call="esimd_view", semantics="w4a16.fp32", args=("x", "codes", "scales", "group"),
    layouts={"x": ACTIVATION_LAYOUTS}, dtypes=("fp16", "bf16", "fp32"), groups=(128,), k_tail=True, worker="triton",
    source="kernels/triton/w4a16.py gemv_t: x's row stride goes to the kernel (a view with a K stride other "
           "than 1 is made contiguous first); even K, the last 128-group may be partial"))
register(KernelInfo(
    name="triton.da8w4", package=_PKG, op="kernels.triton.da8w4 (_act_kernel, _da8w4_kernel)",
    module="kernels.triton.da8w4",
    conventions=("act.torchao.da8w4.asym.fp32", "act.torchao.da8w4.sym", "da8w4 block int32 + fp32 epilogue"),
    dtypes=("uint8", "int8", "fp32", "fp16", "bf16"),
    notes="oracle.gemm.da8w4 semantics: per K block (min(group, 128)) int32 sum of a_q * (w_q - zp_w) minus "
          "zp_a * comp, y = y + (float(acc) * sa) * sb in block order from the bias; bit-exact model",
))
register_spec(KernelSpec(
    kernel="triton.da8w4", call="linear_view", semantics="da8w4.asym_fp32.mul_add",
    args=("x", "codes", "scales", "zp", "group"), layouts={"x": ACTIVATION_LAYOUTS}, dtypes=("bf16", "fp16", "fp32"),
    groups=(32, 64, 128, 256), modelled=True, worker="triton",
    outside={"nonfinite": _NONFINITE.format("kernels/triton/da8w4.py _act_kernel")},
    source="kernels/triton/da8w4.py linear_t: 'need K % group_size == 0 and a power-of-two block >= 32' (no partial "
           "group; K blocks of min(group, 128)); quantize_act_t hands _act_kernel x.stride(0) and x.stride(1)"))
register(KernelInfo(
    name="triton.torchao.int_matmul", package="torchao", op="torchao.kernel.intmm_triton.int_matmul_kernel",
    module="kernels.triton.torchao_intmm", conventions=("w8a8 int32 accumulator (wraps mod 2^32)",),
    dtypes=("int8",),
    notes="matmul_kernel_with_block_pointers driven with fixed configs (the op's autotuner times ~960 configs)",
))
register_spec(KernelSpec(
    kernel="triton.torchao.int_matmul", call="int_matmul_view", semantics="w8a8.int32_wrap", args=("a", "b.T"),
    layouts={"a": ACTIVATION_LAYOUTS, "b.T": WEIGHT_LAYOUTS}, out_buffer=True, worker="triton",
    source="torchao/kernel/intmm_triton.py int_matmul_kernel(a, b, c, config): a.stride(0), a.stride(1), "
           "b.stride(0), b.stride(1), c.stride(0), c.stride(1) handed to block pointers with boundary checks"))
register(KernelInfo(
    name="triton.torchao.int_scaled_matmul", package="torchao",
    op="torchao.kernel.intmm_triton.int_scaled_matmul_kernel", module="kernels.triton.torchao_intmm",
    conventions=("w8a8 (acc*sa)*sb",), dtypes=("int8", "fp32"),
    notes="scaled_matmul_kernel_with_block_pointers: float(acc) * scales1 per row; EVEN_K is K % 2 == 0, not "
          "K % BLOCK_K == 0 (see the adapter)",
))
register_spec(KernelSpec(
    kernel="triton.torchao.int_scaled_matmul", call="int_scaled_matmul_view", semantics="w8a8.int32_row_scaled",
    args=("a", "b.T", "row_scales"), layouts={"a": ACTIVATION_LAYOUTS, "b.T": WEIGHT_LAYOUTS}, modelled=True,
    worker="triton",
    source="torchao/kernel/intmm_triton.py int_scaled_matmul_kernel(a, b, scales1, c, config): a.stride(0), "
           "a.stride(1), b.stride(0), b.stride(1) to the kernel's pointers; the kernel stores 'acc * tmp0' at "
           "'c_ptr + idx_n + N * idx_m' (a contiguous c, as the op allocates it: no out= claim)"))
register(KernelInfo(
    name="triton.gemlite.a16w4", package="gemlite", op="gemlite.GemLiteLinearTriton (GEMV_REVSPLITK for M <= 4)",
    module="kernels.triton.gemlite", conventions=("gemlite.a16w4: fp16((q - 8) * s), fp32 atomic split-K",),
    dtypes=("fp16", "fp32"), deterministic=False,  # atomic split-K adds partials in arrival order
    notes="HQQ-style pack (uint8 codes, fp16 group scales, zero 8): each weight rounded to fp16 as (q - 8) * s, "
          "fp32 products and sums, partials added atomically into an fp32 output; needs a CUDA GPU (imports "
          "torch.cuda at import time)",
))
