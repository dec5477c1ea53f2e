"""torchao (PyPI wheel) CPU paths: the DA8W4 op where a build provides it, and the int8 matmuls.

Worker-side functions are in kernels/torchao/ao.py.
- `torchao::da8w4_linear_cpu` / `da8w4_linear_prepack_cpu`: the 0.18.0 wheel is a CUDA build; its
  torchao/ops.py declares the schemas with Meta kernels only, so the ops exist by name with no
  CPU kernel. benchmarks/build_torchao_cpu.py builds the kernel (torchao/csrc/cpu/aten_kernels/
  da8w4_linear.cpp) from a pytorch/ao checkout against the installed torch; QORACLE_TORCHAO_CPU_LIB
  names the library, which the worker loads after checking the CPU has what the build needs.
  ONEDNN_MAX_CPU_ISA moves an AVX512 build between its brgemm/VNNI paths (cpublas::could_pack)
  and its scalar path.
- `torchao.kernel.intmm.int_matmul` on CPU: `safe_int_mm`, an int32 torch.matmul (exact).
- `torchao.kernel.intmm.int_scaled_matmul` on CPU: `_int_scaled_matmul_cpu`, torch._int_mm
  (oneDNN) then `c.to(fp32) * scales1`; on AVX512_VNNI hosts without AMX (torch >= 2.12) it
  shifts A to u8 and subtracts 128 * colsum(B) instead, the same exact int32 when nothing wraps.
"""
from kernels.registry import KernelInfo, register
from kernels.spec import ACTIVATION_LAYOUTS, WEIGHT_LAYOUTS, KernelSpec, register_spec

_MOD = "kernels.torchao.ao"
_ATEN = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")

register(KernelInfo(
    name="torchao.da8w4_linear_cpu", package="torchao", op="torch.ops.torchao.da8w4_linear_cpu", module=_MOD,
    conventions=("torchao.da8w4.opaque", "torchao.da8w4.pr2128", "act.torchao.da8w4.asym.fp32"),
    isa_knobs=("ONEDNN_MAX_CPU_ISA",), dtypes=("fp32", "bf16", "fp16"),
    notes="oracle.gemm.da8w4 is its bit-exact model (epilogue 'mul_add' for the portable build, 'fma' for GCC's "
          "AVX512 build); the PyPI wheel has no CPU kernel: build it with benchmarks/build_torchao_cpu.py",
))
register_spec(KernelSpec(
    kernel="torchao.da8w4_linear_cpu", call="da8w4_view", semantics="da8w4.asym.torchao_build",
    args=("x", "codes", "scales", "zp", "group"), layouts={"x": ACTIVATION_LAYOUTS}, threads=True,
    dtypes=("fp32", "bf16", "fp16"), groups=(32, 64, 128), modelled=True, check_args=("da8w4",),
    outside={"nonfinite": "torchao/quantization/quant_primitives.py _choose_qparams_affine: a row's torch.amin / "
                          "torch.amax with a NaN or Inf makes its scale NaN or infinite, and quantize_affine's "
                          "'.to(target_dtype)' of a NaN or out-of-range float is undefined (C++ float-to-integer "
                          "conversion); the per-token quantizer is defined for finite x"},
    source="torchao/prototype/quantization/int4/int4_opaque_tensor.py _da8w4_linear: 'input_tensor.reshape(-1, "
           "input_tensor.shape[-1])' (a strided 2-D x as it comes to choose_qparams_affine and quantize_affine), "
           "'act_int.contiguous()' to the op, output in x's dtype; from_hp_da8w4 asserts group_size in (32, 64, 128) "
           "(the groups claimed; the op's group 256, two K blocks a group, stays in conformance/test_torchao_cpu.py) "
           "and N % 32 == 0 (the adapter pads N to 32 with columns it slices off); da8w4_linear.cpp "
           "_da8w4_linear_impl: no partial group; parallel over N blocks (and M blocks past M = 128), never over K"))
register(KernelInfo(
    name="torchao.int_matmul", package="torchao", op="torchao.kernel.intmm.int_matmul", module=_MOD,
    isa_knobs=_ATEN, dtypes=("int8",), notes="CPU: safe_int_mm -> int32 torch.matmul, exact int32",
))
register_spec(KernelSpec(
    kernel="torchao.int_matmul", call="int_matmul_view", semantics="w8a8.int32_wrap", args=("a", "b.T"),
    layouts={"a": ACTIVATION_LAYOUTS, "b.T": WEIGHT_LAYOUTS}, threads=True,
    source="torchao/kernel/intmm.py safe_int_mm: on CPU 'torch.matmul(input.cpu().to(torch.int32), "
           "mat2.cpu().to(torch.int32))', strided tensors as they come"))
register(KernelInfo(
    name="torchao.int_scaled_matmul", package="torchao", op="torchao.kernel.intmm.int_scaled_matmul", module=_MOD,
    isa_knobs=_ATEN, dtypes=("int8", "fp32"),
    notes="CPU: torch._int_mm then float(acc) * scales1 (per row): oracle.gemm.w8a8 '(acc*sa)*sb' with sb = 1",
))
register_spec(KernelSpec(
    kernel="torchao.int_scaled_matmul", call="int_scaled_matmul_view", semantics="w8a8.int32_row_scaled",
    args=("a", "b.T", "row_scales"), layouts={"a": ACTIVATION_LAYOUTS, "b.T": WEIGHT_LAYOUTS}, threads=True,
    modelled=True,
    source="torchao/kernel/intmm.py int_scaled_matmul: 'assert scales1.dim() == 2', 'assert M == scales1.size(0) "
           "or scales1.numel() == 1', 'assert 1 == scales1.size(1)', 'assert scales1.is_contiguous()' (a and b: "
           "no check); _int_scaled_matmul_cpu: 'c = torch._int_mm(a, b)', 'return c.to(scales1.dtype) * scales1' "
           "(torch 2.13 _int_mm on CPU takes every layout here as it comes)"))
