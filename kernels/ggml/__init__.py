"""libggml, as bundled in llama-cpp-python, driven through ctypes (kernels/ggml/libggml.py).

Four kernels, each a code path of the library that the oracle models separately:
- ggml.quantize: `ggml_quantize_chunk` (the `_ref` quantizers of ggml-base; q8_1 and q8_k via
  their exported `quantize_row_*_ref`), baseline x86-64 C with no FMA contraction;
- ggml.dequantize: the type traits' `to_float`;
- ggml.from_float: the CPU backend's SIMD activation quantizers (q8_0, q8_1 on x86);
- ggml.vec_dot: the CPU backend's dot products of a weight type with its activation type.
The CPU backend's ISA is fixed when the library is built (see libggml.py): ggml has no runtime
knob. A build with per-ISA CPU libraries (GGML_CPU_ALL_VARIANTS,
benchmarks/build_llama_cpp_variants.py) gets one: QORACLE_GGML_CPU_VARIANT picks the library,
so the three CPU-backend kernels register it as their ISA knob exactly when the variant files
are there (kernels.isa.mode: capped); with the default one-ISA build they have none, and a
capped run says so (UNAVAILABLE, LibGGML.cap_refusal) instead of pretending.
ggml.mul_mat (kernels/ggml/mul_mat.py, the whole CPU-backend graph) declares its spec beside
its adapter, so that module is imported last, once its KernelInfo is registered here.
"""
from kernels.ggml.libggml import VARIANT_ENV, LibGGMLUnavailable, cpu_variants
from kernels.registry import KernelInfo, register

_REF = ("q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q8_1", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "q8_k",
        "iq4_nl", "iq4_xs", "tq1_0", "tq2_0", "mxfp4")
_NO_KNOB = "no runtime ISA knob: the CPU path is fixed at build time (QORACLE_GGML_CPU_VARIANT picks a variant library where the build has them)"


def _variant_knob() -> tuple[tuple[str, ...], str]:
    """(isa_knobs, note) of the CPU-backend kernels: the variant knob only where variant libraries
    exist (file names only; nothing is loaded in the registering process)."""
    try:
        found = cpu_variants()
    except (LibGGMLUnavailable, OSError):
        found = {}
    if not found:
        return (), _NO_KNOB
    return (VARIANT_ENV,), f"{VARIANT_ENV} loads one of this build's CPU variant libraries ({', '.join(found)})"


_KNOBS, _CPU_NOTE = _variant_knob()

register(KernelInfo("ggml.quantize", "llama_cpp_python", "ggml_quantize_chunk", "kernels.ggml.calls",
                    conventions=_REF, dtypes=("float32",),
                    notes="ggml-base reference quantizers: plain C, the same at every ISA level"))
register(KernelInfo("ggml.dequantize", "llama_cpp_python", "ggml_type_traits.to_float", "kernels.ggml.calls",
                    conventions=tuple(n for n in _REF if n != "q8_1"), dtypes=("float32",),
                    notes="ggml-base reference dequantizers"))
register(KernelInfo("ggml.from_float", "llama_cpp_python", "ggml_type_traits_cpu.from_float", "kernels.ggml.calls",
                    conventions=("q8_0.x86", "q8_1.x86"), dtypes=("float32",), isa_knobs=_KNOBS, notes=_CPU_NOTE))
register(KernelInfo("ggml.vec_dot", "llama_cpp_python", "ggml_type_traits_cpu.vec_dot", "kernels.ggml.calls",
                    conventions=("q4_0", "q8_0", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k"), dtypes=("float32",),
                    isa_knobs=_KNOBS, notes=_CPU_NOTE))
register(KernelInfo("ggml.mul_mat", "llama_cpp_python", "ggml_mul_mat (CPU backend graph)", "kernels.ggml.mul_mat",
                    conventions=("q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "iq4_nl", "mxfp4", "q2_k", "q3_k", "q4_k",
                                 "q5_k", "q6_k"),
                    dtypes=("float32",), isa_knobs=_KNOBS,
                    notes="W in the default CPU buffer type and in each extra one (CPU_REPACK, AMX where built); "
                          "any thread count (1 vs every core: the spec engine). " + _CPU_NOTE))

from kernels.ggml import mul_mat  # noqa: F401  (registers ggml.mul_mat's spec, which needs its INFO above)
