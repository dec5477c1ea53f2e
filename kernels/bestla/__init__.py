"""BesTLA as shipped inside PyPI auto-round-lib (module `auto_round_kernel`), CPU entry points.

The worker-side functions live in kernels/bestla/ark.py; this module only declares the kernels.
What the package exposes (auto_round_kernel/__init__.py, 0.16.0): `repack_quantized_weight`
(signed int codes [K, N], scales and signed zero points [K/g, N] -> BesTLA blob), `woqgemm`
(float activations x blob), `woqgemm_s8` (fp32 x int8 [N, K] with per-channel scale),
`igemm_s8s8s32`. None of them quantizes floats: the weight codes are the caller's.

ISA: BesTLA picks its kernels from cpuid through Xbyak (bestla/bestla_device.h `CpuDevice`)
and reads no environment variable, so `woqgemm` has no ISA knob. `woqgemm_s8` is not BesTLA:
it runs on the oneDNN v3.10 that the package links statically (ONEDNN_VERBOSE shows abs,
max-reduction, linear, reorder to s8 and a `gemm:jit` matmul), which honours
ONEDNN_MAX_CPU_ISA. `igemm_s8s8s32` goes through the native `matmul` entry and prints no
oneDNN primitive; no knob is known for it.
"""
from kernels.registry import KernelInfo, register
from kernels.spec import ACTIVATION_LAYOUTS, WEIGHT_LAYOUTS, KernelSpec, register_spec

_PKG = "auto-round-lib"
_MOD = "kernels.bestla.ark"

register(KernelInfo(
    name="bestla.woqgemm", package=_PKG, op="auto_round_kernel.woqgemm", module=_MOD,
    conventions=("bestla.neural_speed_98ffee4.int4_fullrange.sym", "bestla.neural_speed.int8.sym"),
    dtypes=("fp32", "bf16", "fp16"),
    notes="x (M,K) @ dequant(blob).T + bias; dequant (q - zp) * scale with signed codes; fp32 result "
          "modelled bit-exactly as one fmaf chain over k = 0..K-1 from 0, then + bias (AVX2 host). "
          "No ISA knob: BesTLA dispatches on cpuid (bestla_device.h CpuDevice), no getenv.",
))
SPEC = register_spec(KernelSpec(
    kernel="bestla.woqgemm", call="woqgemm_view", semantics="bestla.woqgemm",
    args=("x", "codes", "scales", "zp", "group"), layouts={"x": ACTIVATION_LAYOUTS}, threads=True, dtypes=("fp32",),
    groups=(32, 64, 128), k_tail=True, modelled=True,
    source="auto_round_kernel/__init__.py woqgemm: 'A.contiguous().data_ptr()' (any strides taken; no thread count: "
           "BesTLA's OMPThreading runs on the OpenMP pool torch.set_num_threads sizes); woqgemm_linear hands the CPU "
           "kernel fp32 only ('target_dtype = torch.float16 if A.device.type == \"xpu\" else torch.float32'); "
           "a partial last group is taken (of K % g != 0 only K < g is refused: 'Corrupt packed weight: block "
           "size > k'), though qlinear.py's QuantLinear refuses 'in_features must be divisible by group_size'"))
register(KernelInfo(
    name="bestla.woqgemm_s8", package=_PKG, op="auto_round_kernel.woqgemm_s8", module=_MOD,
    conventions=("act.onednn.s8.per_tensor",), isa_knobs=("ONEDNN_MAX_CPU_ISA",), dtypes=("fp32",),
    notes="oneDNN (bundled v3.10) dynamic per-TENSOR int8: sa = amax * fp32(1/127), q = RNE(x/sa) "
          "saturated, s8 x s8 matmul with src/wei scales: y = float(acc) * (sa * sb[n]) + bias. "
          "On AVX2 without VNNI the s8 activations run as u8 (+128) through vpmaddubsw, whose int16 "
          "pair sums saturate (known defect).",
))
register_spec(KernelSpec(
    kernel="bestla.woqgemm_s8", call="woqgemm_s8_view", semantics="onednn.s8_per_tensor", args=("x", "w", "scales"),
    layouts={"x": ACTIVATION_LAYOUTS, "w": WEIGHT_LAYOUTS}, threads=True, dtypes=("fp32",), modelled=True,
    source="auto_round_kernel/__init__.py woqgemm_s8: 'A.contiguous().data_ptr()', 'B.contiguous().data_ptr()' "
           "(any strides taken; no thread count: its oneDNN runs on the OpenMP pool torch.set_num_threads sizes)"))
register(KernelInfo(
    name="bestla.igemm_s8s8s32", package=_PKG, op="auto_round_kernel.igemm_s8s8s32", module=_MOD,
    dtypes=("int8",),
    notes="int8 (M,K) x int8 (N,K) -> exact int32 (M,N) is what it promises; no ISA knob known.",
))
register_spec(KernelSpec(
    kernel="bestla.igemm_s8s8s32", call="igemm_s8s8s32_view", semantics="w8a8.int32_wrap", args=("a", "b"),
    layouts={"a": ACTIVATION_LAYOUTS, "b": WEIGHT_LAYOUTS},
    source="auto_round_kernel/__init__.py igemm_s8s8s32: 'A: mxk, B: nxk', each passed as "
           "'A.contiguous().data_ptr()' (any strides taken; no thread count or out= in the API)"))
