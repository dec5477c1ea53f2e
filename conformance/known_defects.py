"""Known upstream defects: the one registry of cases expected to fail, keyed by what triggers them.

A defect is registered with its trigger, never with the host it was first seen on:
- `lacks_all` / `has_all`: CPU features the kernel's library sees (absent / present). A library
  capped by its ISA knob (KernelInfo.isa_knobs) or run on an emulated CPU (kernels.isa.mode)
  under `--isa LEVEL` sees the host's flags cut down to that level's; one without a knob (MLAS,
  BesTLA's own dispatch) run natively sees the host's flags at every level.
- `packages`: distribution -> version prefix, for defects of one release.
- `nodeid_glob`: which test (shape, layout, dtype conditions live in the test's id).
- `signature`: a regular expression the failure's message must match. A registered test runs as
  a strict expected failure that only the registered failure satisfies: the judge raises
  `KnownDefectFailure` for a message that matches, and any other failure of the same test (another
  status, another message) stays a FAIL. When upstream fixes the defect the case passes, the
  strict xfail turns into a failure, and the entry must be removed.
- `by_chance`: the defect reads freed memory or depends on the process's history, so a case may
  pass by luck; its expected failure is not strict (a pass is recorded as XPASS, never hidden),
  and another failure of the test is still a FAIL.
Every entry carries `evidence`: what was seen on each host class where it was reproduced.
"""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from importlib import metadata

from kernels.isa import LEVELS, host_flags

__all__ = ["KnownDefect", "KnownDefectFailure", "DEFECTS", "lookup", "features_seen", "matches_signature"]

# host classes named in evidence
AMX_XEON = "Intel Xeon with AMX (AVX512, VNNI, AMX_INT8/BF16)"
ZEN3 = "AMD EPYC Zen 3 (AVX2, no AVX512, no VNNI)"
NO_VNNI = ("avx512_vnni", "avx_vnni")  # int8 dot products without either run as vpmaddubsw pair sums


class KnownDefectFailure(AssertionError):
    """A case failed exactly as its registered defect says (the only exception a known defect's xfail accepts)."""


@dataclass(frozen=True)
class KnownDefect:
    kernel: str
    nodeid_glob: str
    convention: str
    reference: str
    why: str
    evidence: tuple[tuple[str, str], ...]  # (host class, what was seen there)
    lacks_all: tuple[str, ...] = ()
    has_all: tuple[str, ...] = ()
    packages: dict[str, str] = field(default_factory=dict)
    signature: str = r"^(FAIL|CRASHED)\b"
    by_chance: bool = False

    def triggered(self, seen: frozenset[str]) -> bool:
        return (not (set(self.lacks_all) & seen) and set(self.has_all) <= seen
                and all(_installed(d).startswith(p) for d, p in self.packages.items()))


_INT16_PAIRS = ("oneDNN developer guide, 'Nuances of int8 computations': without VNNI, s8 x s8 runs as "
                "u8(a + 128) x s8 with vpmaddubsw, whose int16 pair sums saturate")

DEFECTS: list[KnownDefect] = [
    *(KnownDefect(
        kernel=_kernel, nodeid_glob=_glob, convention="w8a8 int32 accumulator",
        reference=f"torch 2.11 aten _int_mm -> oneDNN gemm_api (ONEDNN_VERBOSE); {_INT16_PAIRS}",
        why="full-range operands give saturated pair sums: 127 x 127 over K = 4096 gives 522240, not 66064384 "
            "(exactly the int16 saturation). torch 2.13.0+cpu runs _int_mm without oneDNN and is exact",
        evidence=((AMX_XEON, "torch 2.11 with ONEDNN_MAX_CPU_ISA=SSE41/AVX2/AVX512_CORE: saturated sums"),),
        lacks_all=NO_VNNI, packages={"torch": "2.11"}, signature=r"^FAIL\b")
      for _kernel, _glob in (
          # the engine's cases that saturate: kernels/mutants/pytorch.py's int16-pair model fails exactly these
          ("torch.int_mm", "conformance/test_specs.py::test_spec_case[[]torch.int_mm-extremes-a127_b127_*"),
          ("torch.int_mm", "conformance/test_specs.py::test_spec_case[[]torch.int_mm-tail_[mn]-*"),
          ("torch.int_mm", "conformance/test_specs.py::test_spec_case[[]torch.int_mm-random-m[1-9][0-9]*"),
          ("torch.int_mm", "conformance/test_specs.py::test_spec_case[[]torch.int_mm-random-m3k*"),
          ("torch.int_mm", "conformance/test_specs.py::test_spec_layout[[]torch.int_mm-*"),
          ("torch.int_mm", "conformance/test_specs.py::test_spec_threads[[]torch.int_mm[]]"),
          # int_scaled_matmul's own torch._int_mm: its families carry int8_gemm's operands (the same ones saturate)
          ("torchao.int_scaled_matmul", "conformance/test_specs.py::test_spec_case[[]torchao.int_scaled_matmul-extremes-a127_b127_*"),
          ("torchao.int_scaled_matmul", "conformance/test_specs.py::test_spec_case[[]torchao.int_scaled_matmul-tail_[mn]-*"),
          ("torchao.int_scaled_matmul", "conformance/test_specs.py::test_spec_case[[]torchao.int_scaled_matmul-random-m[1-9][0-9]*"),
          ("torchao.int_scaled_matmul", "conformance/test_specs.py::test_spec_case[[]torchao.int_scaled_matmul-random-m3k*"),
          ("torchao.int_scaled_matmul", "conformance/test_specs.py::test_spec_layout[[]torchao.int_scaled_matmul-*"),
          ("torchao.int_scaled_matmul", "conformance/test_specs.py::test_spec_threads[[]torchao.int_scaled_matmul[]]"))),
    KnownDefect(
        kernel="bestla.woqgemm", nodeid_glob="conformance/test_bestla_woqgemm.py::test_half_activations*",
        convention="bestla.neural_speed_98ffee4.int4_fullrange.sym",
        reference="auto-round-lib 0.16.0 auto_round_kernel/__init__.py woqgemm with a bf16/fp16 A",
        why="bf16/fp16 activations corrupt the heap (glibc 'munmap_chunk(): invalid pointer' / SIGSEGV, or garbage "
            "outputs when the process survives); woqgemm_linear avoids it by casting A to fp32 first",
        evidence=((ZEN3, "auto-round-lib 0.16.0: SIGSEGV / munmap_chunk(): invalid pointer, or garbage outputs "
                         "(fp16: 32 of 32 elements off by up to 4e4) when the corruption does not kill the worker"),
                  ("an AVX512 host", "auto-round-lib 0.16.0: the same heap corruption"))),
    *(KnownDefect(
        kernel="bestla.woqgemm", nodeid_glob=f"conformance/test_specs.py::test_spec_layout[[]bestla.woqgemm-*-x-{_lay}]",
        convention="bestla.woqgemm",
        reference="auto-round-lib 0.16.0 auto_round_kernel/__init__.py woqgemm: "
                  "lib.woqgemm(A.contiguous().data_ptr(), ...)",
        why="a non-contiguous A is copied by A.contiguous() inside the argument list, and the copy is freed as "
            "soon as data_ptr() returns, before the native call reads it: the outputs are whatever reuses that "
            "memory (right by chance, or off by up to 1e21, differing from call to call)",
        evidence=((ZEN3, "auto-round-lib 0.16.0, M = 5, K = 64, N = 16: x[:, :K] of a wider x gives errors 0.36, "
                         "0.36, 2.3e21 on three calls; expand gives 2.3e21; the same values held contiguous by "
                         "the caller, 1.2e-7"),),
        by_chance=True)
      for _lay in ("transposed", "row_pitch", "broadcast")),
    KnownDefect(
        kernel="bestla.woqgemm", nodeid_glob="conformance/test_specs.py::test_spec_threads[[]bestla.woqgemm[]]",
        convention="bestla.woqgemm",
        reference="auto-round-lib 0.16.0 woqgemm on BesTLA's parallel::OMPThreading (bestla_parallel.h: the "
                  "constructor's omp_set_num_threads(n), parallel_for's '#pragma omp parallel' over the stored n)",
        why="after a first call with the process's OpenMP thread count, lowering it (torch.set_num_threads(1)) "
            "leaves BesTLA scheduling tiles for threads that no longer run: whole 24-wide N tiles come back zero "
            "(and weights packed then are wrong); the first call also resets the caller's thread count",
        evidence=((ZEN3, "auto-round-lib 0.16.0, 2 cores: 143 of 144 calls wrong after torch.set_num_threads(1), "
                         "columns 24..31 of N = 32 all zero; right again at 2 threads, and with OMP_NUM_THREADS=1 "
                         "from the start"),),
        signature=r"^FAIL\b", by_chance=True),
    KnownDefect(
        kernel="bestla.woqgemm_s8", nodeid_glob="conformance/test_bestla_int8.py::test_woqgemm_s8*w127*",
        convention="act.onednn.s8.per_tensor",
        reference=f"{_INT16_PAIRS}; BesTLA docs/README: int8 'may cause numeric overflow if the device only has "
                  "AVX2 without AVX_VNNI'",
        why="without VNNI the u8(q+128) x s8 pair sums saturate at int16: full-range int8 weights give wrong sums "
            "(reproduced bit for bit by a saturating model); weights within [-63, 63] cannot saturate",
        evidence=((ZEN3, "auto-round-lib 0.16.0 natively: saturated sums"),
                  (AMX_XEON, "auto-round-lib 0.16.0 with ONEDNN_MAX_CPU_ISA=AVX2/AVX512_CORE: saturated sums")),
        lacks_all=NO_VNNI, signature=r"^FAIL\b"),
    KnownDefect(
        kernel="bestla.igemm_s8s8s32", nodeid_glob="conformance/test_specs.py::test_spec_*[[]bestla.igemm_s8s8s32-*",
        convention="w8a8.int32_wrap",
        reference="auto-round-lib 0.16.0 igemm_s8s8s32 -> cpu_lib.matmul(int8, int8 -> int32)",
        why="returns garbage int32 (ones x ones gives varying values, not 64), and for some shapes faults inside "
            "lib.matmul (SIGSEGV at (M, K, N) = (1, 4096, 16); (1, 4096, 2) and (17, 4096, 7) return); no oneDNN "
            "primitive runs for it",
        evidence=((ZEN3, "auto-round-lib 0.16.0: varying values; SIGSEGV at (1, 4096, 16)"),
                  ("an AVX512 host", "auto-round-lib 0.16.0: varying values"),
                  (AMX_XEON, "auto-round-lib 0.16.0: FAIL at every --isa level; the a = 0 cases pass there")),
        signature=r"^(FAIL|CRASHED)\b", by_chance=True),
    KnownDefect(
        kernel="torch.weight_int8pack_mm", nodeid_glob="conformance/test_pytorch_weight_only.py::test_int8pack_bf16_k_tail*",
        convention="torch.int8pack",
        reference="pytorch aten/src/ATen/native/cpu/int8mm_kernel.cpp: tinygemm_kernel<BLOCK_M, BLOCK_N> for "
                  "BFloat16 under CPU_CAPABILITY_AVX2 (_mm_load_si128 of A) and CPU_CAPABILITY_AVX512 "
                  "(_mm256_load_si256 of A, _mm_load_si128 of B); no upstream issue found",
        why="bf16 rows of A are read with aligned loads at A + row*K (16 bytes on AVX2, 32 on AVX512) and the "
            "k loop (step 8 / 16) has no tail: with K % 8 != 0 (K % 16 on AVX512) and M > 1 row 1 is off that "
            "boundary and faults (SIGSEGV for (3,77,5) and (4,66,4)). ATEN_CPU_CAPABILITY=default passes",
        evidence=((ZEN3, "torch 2.13.0+cpu at avx2 and native: SIGSEGV"),
                  (AMX_XEON, "torch 2.11 at avx2..amx and native: SIGSEGV")),
        has_all=("avx2",), signature=r"^CRASHED\b"),
    KnownDefect(
        kernel="torch.weight_int8pack_mm", nodeid_glob="conformance/test_pytorch_weight_only.py::test_int8pack_bf16_row_alignment",
        convention="torch.int8pack",
        reference="pytorch aten/src/ATen/native/cpu/int8mm_kernel.cpp: tinygemm_kernel<BLOCK_M, BLOCK_N> for "
                  "BFloat16 under CPU_CAPABILITY_AVX512 reads A with _mm256_load_si256 (32-byte aligned); no "
                  "upstream issue found",
        why="with K % 16 == 0 the AVX512 bf16 kernel still needs A itself 32-byte aligned: an A 16 bytes past a "
            "64-byte boundary (a contiguous view with a storage offset) faults on every call. AVX2 needs 16 and "
            "passes",
        evidence=((AMX_XEON, "torch 2.11 at avx512..amx: SIGSEGV on every call"),),
        has_all=("avx512f",), signature=r"^CRASHED\b"),
    KnownDefect(
        kernel="onnxruntime.*", nodeid_glob="conformance/test_onnxruntime_int8.py::test_*[[]exact*",
        convention="mlas.int8.exact",
        reference="onnxruntime issue 16105; PR 12088 (session option session.x64quantprecision, "
                  "onnxruntime_session_options_config_keys.h kOrtSessionOptionsAvx2PrecisionMode); "
                  "mlas/lib/x86_64/QgemmU8X8KernelAvx2.S MultiplyAccumulateRowU8S8Avx2",
        why="by design: MLAS's u8 x s8 kernel without VNNI adds adjacent u8 x s8 products into a saturating int16 "
            "(vpmaddubsw): 255 x 127 over K = 256 gives 4194176, not 8290560; x64quantprecision rewrites only "
            "constant weights, and for QLinearMatMul only at since-version 10. The saturating model predicts "
            "every byte (the host-model tests)",
        evidence=((ZEN3, "onnxruntime 1.32.0: every exact-model case built to saturate matches the pair model byte "
                         "for byte"),),
        lacks_all=NO_VNNI + ("amx_int8",), has_all=("avx2",), signature=r"^FAIL\b"),
    KnownDefect(
        kernel="onnxruntime.matmulnbits",
        nodeid_glob="conformance/test_onnxruntime_matmulnbits.py::test_matmulnbits_zero_point_layouts[[]*-4-runtime_zp[]]",
        convention="ort.matmulnbits.*.asym x act.ort.matmulnbits.int8_blk",
        reference="found by this suite (no upstream report found); contrib_ops/cpu/quantization/matmul_nbits.cc: "
                  "the accuracy_level 4 (int8 activations) path with B constant and zero_points a graph input",
        why="with B prepacked and the zero points fed at run time, accuracy_level 4 computes as if every zero "
            "point were the default 2^(bits-1): outputs far outside the bound; the same model with constant zero "
            "points, or at accuracy_level 0, is right",
        evidence=((ZEN3, "onnxruntime 1.32.0 (and 1.24..1.31 in the zoo's environments; 2-bit from 1.29): "
                         "2/4/8-bit cases FAIL; 1.17.x passes"),),
        packages={"onnxruntime": "1.3"}, signature=r"^FAIL\b"),
    KnownDefect(
        kernel="onnxruntime.matmulnbits",
        nodeid_glob="conformance/test_onnxruntime_matmulnbits.py::test_matmulnbits_subnormal[[]*-activations-4[]]",
        convention="act.ort.matmulnbits.int8_blk",
        reference="found by this suite (no upstream report found); mlas/lib/sqnbitgemm_kernel_avx2.cpp "
                  "QuantizeARow_CompInt8_avx2: the inverse scale 127 / amax",
        why="an activation block whose amax is below 127 / FLT_MAX (about 3.7e-37) overflows the inverse scale "
            "127 / amax to inf, and the int8 codes come out of converting inf and NaN (0 * inf) rather than "
            "from x / s: the outputs (subnormal) are up to 10x off, outside the bound; a model with every code "
            "-128 comes within 8%, so the exact conversion is not yet modelled",
        evidence=((ZEN3, "onnxruntime 1.32.0, accuracy_level 4, activations about 1e-40: 30 of 32 elements "
                         "outside the bound"),),
        packages={"onnxruntime": "1.3"}, signature=r"^FAIL\b"),
    *(KnownDefect(
        kernel=_kernel, nodeid_glob=f"conformance/test_specs.py::test_spec_layout[[]{_kernel}-a-broadcast[]]",
        convention="w8a8.int32_wrap",
        reference="found by this suite (no upstream report found); torch 2.11 aten _int_mm -> oneDNN matmul "
                  "(ONEDNN_VERBOSE) with a stride-0 A",
        why="an activation expanded along M (stride 0, x.expand(M, K)) gives an all-zero int32 result on the "
            "oneDNN VNNI/AMX path; the same values passed contiguous are right",
        evidence=((AMX_XEON, "torch 2.11.0 at --isa avx512_vnni and amx: 45 of 45 elements 0 (int_scaled_matmul: "
                             "'invariant repeatable')"),),
        has_all=("avx512_vnni",), packages={"torch": "2.11"}, signature=r"^FAIL\b")
      for _kernel in ("torch.int_mm", "torchao.int_scaled_matmul")),
    *(KnownDefect(
        kernel="torch.weight_int8pack_mm", nodeid_glob=_glob, convention="aten.int8pack",
        reference="pytorch aten/src/ATen/native/cpu/int8mm_kernel.cpp: the AVX512 BFloat16 tinygemm_kernel "
                  "(_mm256_load_si256 of A, k loop in steps of 16 with no tail)",
        why="bf16 activations with K % 16 != 0 on the AVX512 capability: rows after the first start off the "
            "32-byte boundary its aligned loads need (SIGSEGV), and the loop reads past the row instead of "
            "handling the tail (results that differ from call to call)",
        evidence=((AMX_XEON, "torch 2.11.0 at --isa avx512, avx512_vnni and amx: SIGSEGV or 'invariant repeatable'"),),
        has_all=("avx512f",), signature=r"^(FAIL|CRASHED)\b")
      for _glob in ("conformance/test_specs.py::test_spec_case[[]torch.weight_int8pack_mm-random-bf16_m3k40n7[]]",
                    "conformance/test_specs.py::test_spec_case[[]torch.weight_int8pack_mm-tail_*-bf16_*")),
    KnownDefect(
        kernel="bestla.woqgemm_s8", nodeid_glob="conformance/test_bestla_int8.py::test_woqgemm_s8_hypothesis",
        convention="act.onednn.s8.per_tensor",
        reference="auto-round-lib 0.16.0 woqgemm_s8 (DnnlWrapper::woq_s8, its bundled oneDNN 3.10 brgemm "
                  "matmul on AMX); benchmarks/probe_woqgemm_s8.py",
        why="on the AMX path it raises 'RuntimeError: not supported' for exactly the shapes with M * N > 256 "
            "(48 of 240 probed: (8, K, 33) and (17, K, 16..33) for every K), which its API does not exclude; "
            "capped at AVX512_CORE_VNNI every shape runs",
        evidence=((AMX_XEON, "auto-round-lib 0.16.0, ONEDNN_MAX_CPU_ISA=AVX512_CORE_AMX: the probe's 48 refusals "
                             "are M * N > 256, K 32..512"),),
        has_all=("amx_int8",), signature=r"^FAIL\b[\s\S]*not supported"),
    *(KnownDefect(
        kernel="bestla.woqgemm_s8", nodeid_glob=f"conformance/test_specs.py::test_spec_{_glob}",
        convention="onednn.s8_per_tensor",
        reference="auto-round-lib 0.16.0 woqgemm_s8 (DnnlWrapper::woq_s8, its bundled oneDNN 3.10 brgemm "
                  "matmul on AMX); benchmarks/probe_woqgemm_s8.py",
        why="on the AMX path it refuses the shapes with M * N > 256 ('RuntimeError: not supported'), and for "
            "(64, 4096, 48) the Xbyak error escapes as an uncaught C++ exception (SIGABRT)",
        evidence=((AMX_XEON, "auto-round-lib 0.16.0 at --isa amx: 'not supported' for the engine's M * N > 256 "
                             "cases, SIGABRT ('terminate called after throwing an instance of Xbyak::Error') at "
                             "(64, 4096, 48)"),),
        has_all=("amx_int8",), signature=r"^(FAIL\b[\s\S]*not supported|CRASHED\b)")
      for _glob in ("case[[]bestla.woqgemm_s8-random-fp32_m17k*", "case[[]bestla.woqgemm_s8-random-fp32_m64k*",
                    "case[[]bestla.woqgemm_s8-tail_*", "threads[[]bestla.woqgemm_s8[]]")),
    *(KnownDefect(
        kernel="onnxruntime.matmulnbits",
        nodeid_glob=f"conformance/test_onnxruntime_matmulnbits.py::test_matmulnbits_every_block_size[[]*-{_block}[]]",
        convention="ort.matmulnbits.*", reference="onnxruntime issue 28551 (fixed in 1.32)",
        why="MatMulNBits with block_size 512 or more: all zeros (1.26), wrong sums (1.27..1.31 on an AVX2 host), "
            "or a refusal at initialization ('Only block sizes 16, 32, 64, 128, and 256 are supported', 1.30 on "
            "an AMX host), though the operator's documentation admits any power of two from 16",
        evidence=((ZEN3, "1.26.0: zeros; 1.27.0, 1.29.0, 1.30.0, 1.31.0: wrong sums (docs/zoo.md)"),
                  (AMX_XEON, "1.30.0: refused at initialization")),
        packages={"onnxruntime": _version}, signature=r"^FAIL\b")
      for _version in ("1.26.", "1.27.", "1.28.", "1.29.", "1.30.", "1.31.") for _block in (512, 1024, 2048)),
    KnownDefect(
        kernel="triton.torchao.int_scaled_matmul",
        nodeid_glob="conformance/test_specs.py::test_spec_layout[[]triton.torchao.int_scaled_matmul-b.T-row_pitch[]]",
        convention="w8a8.int32_row_scaled",
        reference="torchao 0.18.0 torchao/kernel/intmm_triton.py: scaled_matmul_kernel_with_block_pointers "
                  "(tl.max_contiguous / tl.multiple_of hints on the B pointers, no check of b.stride(0))",
        why="a B whose row stride is not a multiple of 16 bytes (a slice of wider rows) faults on the GPU: "
            "'CUDA error: misaligned address'; the kernel's vector loads assume aligned rows, and neither "
            "int_scaled_matmul nor the kernel checks the stride. The CPU interpreter reads it right",
        evidence=(("NVIDIA H100 (AMX Xeon host)", "torchao 0.18.0, triton of torch 2.11.0+cu130: 'CUDA error: "
                                                  "misaligned address' at every --isa level"),),
        has_all=("cuda",), packages={"torchao": "0.18"}),
    KnownDefect(
        kernel="triton.torchao.int_scaled_matmul",
        nodeid_glob="conformance/test_specs.py::test_spec_case[[]triton.torchao.int_scaled_matmul-random-m3k48n8[]]",
        convention="w8a8 (acc*sa)*sb", reference="torchao 0.18.0 torchao/kernel/intmm_triton.py: int_scaled_matmul_kernel (EVEN_K)",
        why="EVEN_K is set from K % 2 == 0, not K % BLOCK_K == 0, so an even K that is not a multiple of "
            "BLOCK_K loads past the end of each row without a mask (K = 48 with BLOCK_K 32 or 128)",
        evidence=((ZEN3, "triton 3.6.0 interpreter: 24 of 24 elements outside the bound (M 3, K 48, N 8); the engine's "
                         "random m3k48n8 case returns other bytes on a second call (the over-read passes the storage)"),
                  ("NVIDIA H200", "the same test fails natively")),
        packages={"torchao": "0.18"}),
    *(KnownDefect(
        kernel="bestla.woqgemm_s8",
        nodeid_glob=f"conformance/test_specs.py::test_spec_layout[[]bestla.woqgemm_s8-*-{_arg}]",
        convention="onednn.s8_per_tensor",
        reference="auto-round-lib 0.16.0 auto_round_kernel/__init__.py woqgemm_s8: lib.woqgemm_s8(..., "
                  "A.contiguous().data_ptr(), ..., B.contiguous().data_ptr(), ...)",
        why="a non-contiguous A or B is copied by .contiguous() inside the argument list and the copy is freed as "
            "soon as data_ptr() returns, before the native call reads it (woqgemm's defect, in woqgemm_s8)",
        evidence=((ZEN3, "auto-round-lib 0.16.0, M = 5, K = 64, N = 9: A transposed or row-padded gives errors up to "
                         "1.4e34 that change from call to call, A expanded is off by 9.2, B transposed or "
                         "row-padded by 2.3..3.0, against the same values passed contiguous"),),
        by_chance=True)
      for _arg in ("x-transposed", "x-row_pitch", "x-broadcast", "w-transposed", "w-row_pitch")),
    *(KnownDefect(
        kernel=_kernel, nodeid_glob=f"conformance/test_specs.py::{_test}", convention=_conv,
        reference=f"{_INT16_PAIRS}; pytorch issue 44939 (fbgemm: reduce_range is the remedy)",
        why="without VNNI the u8 x s8 pair sums saturate at int16 (woqgemm_s8 runs s8 as u8(q + 128)); the "
            "engine's full-range weights (-127..127) saturate them in the random, tail_m/tail_n, layout and "
            "threads cases; the unit-weight families cannot. By design for linear_dynamic without reduce_range",
        evidence=((ZEN3, "torch 2.13.0+cpu, auto-round-lib 0.16.0 at --isa avx2: every failing case is the "
                         "oracle's int16-pair model (oracle.gemm.aten_qlinear_dynamic.accumulate) byte for byte "
                         "(woqgemm_s8, fbgemm; the x86 engine gives fbgemm's bytes) or within its bound "
                         "(onednn gemm:jit)"),),
        lacks_all=NO_VNNI, signature=r"^FAIL\b")
      for _kernel, _conv in (("bestla.woqgemm_s8", "onednn.s8_per_tensor"),
                             ("torch.quantized.linear_dynamic.fbgemm", "fbgemm.linear_dynamic"),
                             ("torch.quantized.linear_dynamic.x86", "fbgemm.linear_dynamic"),
                             ("torch.quantized.linear_dynamic.onednn", "onednn.linear_dynamic"))
      for _test in (f"test_spec_case[[]{_kernel}-random-*", f"test_spec_case[[]{_kernel}-tail_[mn]-*",
                    f"test_spec_layout[[]{_kernel}-*", f"test_spec_threads[[]{_kernel}[]]")),
    KnownDefect(
        kernel="bestla.woqgemm_s8",
        nodeid_glob="conformance/test_specs.py::test_spec_case[[]bestla.woqgemm_s8-subnormal-*",
        convention="act.onednn.s8.per_tensor",
        reference="found by this suite (no upstream report found); auto-round-lib 0.16.0 woqgemm_s8: oneDNN eltwise "
                  "linear by 1/127 and the f32 -> s8 reorder with a destination scale 1/sa",
        why="a tensor whose amax is below 127 * 2^-128 (about 3.7e-37) gives a subnormal sa whose reciprocal "
            "overflows to inf: nonzero activations become 127, zeros become 0 * inf = NaN, converted to -128, so "
            "positive sums come out negative (the oracle's model of the declared quantizer gives the small "
            "positive sums)",
        evidence=((ZEN3, "auto-round-lib 0.16.0 at --isa avx2, activations 1..3 x 2^-140: -1.206e-40 where 8.5e-42 "
                         "is right, exactly (4 * 127 - 60 * 128) * sa"),),
        packages={"auto-round-lib": "0.16"}, signature=r"^FAIL\b"),
    *(KnownDefect(
        kernel=_kernel, nodeid_glob=f"conformance/test_specs.py::test_spec_case[[]{_kernel}-nonfinite-*",
        convention=_conv, reference="found by this suite; the dynamic per-tensor activation quantizer "
                                    "(fbgemm::FindMinMax / oneDNN's abs-max reduction) over a NaN or Inf",
        why="a NaN or Inf activation makes the per-tensor scale non-finite, so every row's codes are meaningless: "
            "rows holding no NaN or Inf come out +-inf or NaN, and a NaN row can come out inf (NaN lost)",
        evidence=((ZEN3, "torch 2.13.0+cpu and auto-round-lib 0.16.0 at --isa avx2: 24 of 24 elements differ; the "
                         "finite row 2 gives [-inf, -inf, nan] (fbgemm), the NaN row 0 [inf, -inf, inf]"),),
        signature=r"^FAIL\b")
      for _kernel, _conv in (("bestla.woqgemm_s8", "onednn.s8_per_tensor"),
                             ("torch.quantized.linear_dynamic.fbgemm", "fbgemm.linear_dynamic"),
                             ("torch.quantized.linear_dynamic.x86", "fbgemm.linear_dynamic"),
                             ("torch.quantized.linear_dynamic.onednn", "onednn.linear_dynamic"))),
    *(KnownDefect(
        kernel="torch.dyn_quant_matmul_4bit",
        nodeid_glob=f"conformance/test_specs.py::test_spec_layout[[]torch.dyn_quant_matmul_4bit-*-x-{_layout}]",
        convention="aten.dyn_quant_4bit",
        reference="found by this suite (no upstream report found); pytorch aten/src/ATen/native/LinearAlgebra.cpp "
                  "_dyn_quant_matmul_4bit_cpu passes inp to dyn_quant_matmul_4bit_stub with no contiguity check or "
                  ".contiguous(), and int4mm_kernel.cpp dyn_quant_matmul_4bit_kernel reads inp.data_ptr<float>() as "
                  "M dense rows of K",
        why="a transposed, row-pitched or expanded (stride 0) x is read as if it were contiguous: the results are "
            "those of the storage's first M * K floats, and an expanded x reads (M - 1) * K floats past the end of "
            "its storage",
        evidence=((ZEN3, "torch 2.13.0+cpu at --isa avx2, M = 5, K = 64, N = 16: transposed and row-pitched x give "
                         "the oracle's model of the storage read as dense rows byte for byte (80 of 80 elements "
                         "wrong); expanded x: row 0 right, rows 1..4 wrong (64 of 80)"),))
      for _layout in ("transposed", "row_pitch", "broadcast")),
    KnownDefect(
        kernel="torch.dyn_quant_matmul_4bit",
        nodeid_glob="conformance/test_specs.py::test_spec_case[[]torch.dyn_quant_matmul_4bit-nonfinite-*",
        convention="aten.dyn_quant_4bit",
        reference="found by this suite (no upstream report found); pytorch int4mm_kernel.cpp "
                  "ref_dyn_quant_matmul_4bit_groupwise_kernel: the row's 'max0 = std::max(src0_0, max0)' / "
                  "'min0 = std::min(src0_0, min0)' and '(int32_t)(std::round(src0_0 * scale0))'",
        why="a NaN or Inf activation is lost from its row: std::max / std::min take a NaN and drop it (with every "
            "element before it) at the next element, the NaN's code converts NaN to int32 (undefined; INT_MIN on "
            "x86, then clamped), and an Inf makes the inverse scale 255 / range 0: the NaN row comes out finite, the "
            "Inf row +-0",
        evidence=((ZEN3, "torch 2.13.0+cpu at --isa avx2, K = 64 and 512: the NaN row 0 gives -2.95 and -2.84 (every "
                         "column), the +Inf row 1 gives -0.0; the finite row 2 is the oracle's prediction byte for "
                         "byte"),),
        signature=r"^FAIL\b"),
    *(KnownDefect(
        kernel="torch.onednn.qlinear_pointwise",
        nodeid_glob=f"conformance/test_specs.py::test_spec_layout[[]torch.onednn.qlinear_pointwise-b-{_lay}[]]",
        convention="onednn.qlinear_pointwise",
        reference="found by this suite (no upstream report found); pytorch aten/src/ATen/native/quantized/cpu/"
                  "qlinear_prepack.cpp pack_weight_to_onednn_tensor: "
                  "'ideep::tensor({w_dims, dnnl::memory::data_type::s8}, weight.data_ptr())'",
        why="onednn::qlinear_prepack reads the weight as a dense (N, K) array at its data pointer whatever its "
            "strides: a transposed or row-padded weight view is packed from the wrong bytes, with no error, and "
            "every output is wrong (a view with only a storage offset is right)",
        evidence=((ZEN3, "torch 2.13.0+cpu natively and at --isa scalar and avx2: w.t() of a (K, N) tensor gives 45 "
                         "of 45 elements wrong, w[:, :K] of wider rows 40 of 45; the same values contiguous are "
                         "bit-exact"),
                  (AMX_XEON, "torch 2.11.0+cu130 natively and at --isa avx2 .. amx: the same 45 and 40 of 45")),
        signature=r"^FAIL\b")
      for _lay in ("transposed", "row_pitch")),
    # quantized.linear (static) on fbgemm and x86: the same vpmaddubsw pairs as linear_dynamic's, over the raw u8
    # codes (zero points enter after the products, as row and column offsets), so the u8_requant families built to
    # saturate them (extremes, zero_points, tails of M and N, random, layout, threads) fail; tail_k and ties cannot
    *(KnownDefect(
        kernel=_kernel, nodeid_glob=f"conformance/test_specs.py::{_test}", convention="fbgemm.qlinear",
        reference=f"{_INT16_PAIRS}; pytorch issue 44939 (fbgemm: reduce_range is the remedy); FBGEMM "
                  "PackAWithRowOffset packs the raw u8 codes (qlinear.cpp PackedLinearWeight::apply_impl)",
        why="without VNNI fbgemm multiplies the raw u8 activation codes by the s8 weights with vpmaddubsw, whose "
            "int16 pair sums saturate: full-range codes and weights give wrong int32 sums before the zero-point "
            "offsets and the requantization. By design for quantized.linear without reduce_range calibration",
        evidence=((ZEN3, "torch 2.13.0+cpu at --isa avx2 (fbgemm has no ISA knob: the scalar level is "
                         "UNAVAILABLE): every failing case is the int16-pair model (oracle.gemm.mlas_int8."
                         "accumulator 'u8s8_int16_pairs', requantized by oracle.gemm.fbgemm_requant's steps) byte "
                         "for byte, on both engines; every case whose pair sums cannot saturate (tail_k, ties) is "
                         "fbgemm.qlinear byte for byte"),),
        lacks_all=NO_VNNI, signature=r"^FAIL\b")
      for _kernel in ("torch.quantized.linear.fbgemm", "torch.quantized.linear.x86")
      for _test in (f"test_spec_case[[]{_kernel}-extremes-*", f"test_spec_case[[]{_kernel}-zero_points-*",
                    f"test_spec_case[[]{_kernel}-tail_[mn]-*", f"test_spec_case[[]{_kernel}-random-*",
                    f"test_spec_layout[[]{_kernel}-*", f"test_spec_threads[[]{_kernel}[]]")),
]


def _installed(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return ""


def _has_knob(kernel: str) -> bool:
    from kernels.registry import find

    info = find(kernel)
    return bool(info and info.isa_knobs)


def _emulated(kernel: str, isa: str, flags: frozenset[str] | None) -> bool:
    from kernels.isa import mode
    from kernels.registry import find

    info = find(kernel)
    return bool(info) and mode(info, isa, flags=flags).how == "emulated"


def features_seen(kernel: str, isa: str, flags: frozenset[str] | None = None, gpu: bool = False) -> frozenset[str]:
    """The CPU features `kernel`'s library sees under `--isa isa`: the host's, cut to the level's
    own for a library that has a knob and a capped run, or runs on the level's emulated CPU; for a
    kernel that runs on a GPU (`gpu`: the session's Triton worker runs natively, not interpreted),
    "cuda" too (defects of the native code path name it in `has_all`)."""
    have = host_flags() if flags is None else flags
    if gpu:
        have = have | {"cuda"}
    if isa in ("native", "") or isa not in LEVELS or not (_has_knob(kernel) or _emulated(kernel, isa, flags)):
        return have
    return have & LEVELS[isa].flags


def lookup(kernel: str, isa: str, nodeid: str, flags: frozenset[str] | None = None,
           gpu: bool = False) -> KnownDefect | None:
    """The registered defect that this case triggers, if any (`gpu`: the kernel runs on a GPU)."""
    seen = None
    for d in DEFECTS:
        if not (fnmatch.fnmatchcase(kernel, d.kernel) and fnmatch.fnmatchcase(nodeid, d.nodeid_glob)):
            continue
        seen = features_seen(kernel, isa, flags, gpu) if seen is None else seen
        if d.triggered(seen):
            return d
    return None


def matches_signature(defect: KnownDefect, message: str) -> bool:
    return re.search(defect.signature, message) is not None

