"""Known upstream defects: the one registry of cases expected to fail, with their evidence.

Each entry names the kernel, the ISA levels it fails at ("*" for all), the convention, a glob
over test node ids, and the upstream reference (issue, PR or source line) that explains it.
`below` narrows an entry to runs whose effective ISA level (the requested cap, or the host's
best level for `native`) is below the named level, for defects of a missing instruction;
`packages` narrows it to installed versions (distribution -> version prefix), for defects seen
in one release and not in another.
A matching case runs as a strict expected failure: when upstream fixes the defect the case
passes, the strict xfail turns into a failure, and the entry must be removed.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from importlib import metadata

from kernels.isa import ORDER, levels_on_host

__all__ = ["KnownDefect", "DEFECTS", "lookup", "effective_level"]


@dataclass(frozen=True)
class KnownDefect:
    kernel: str
    isa: str
    convention: str
    nodeid_glob: str
    reference: str
    why: str
    below: str = ""
    packages: dict[str, str] = field(default_factory=dict)


DEFECTS: list[KnownDefect] = [
    *(KnownDefect(
        kernel=_kernel, isa="*", convention="w8a8 int32 accumulator",
        nodeid_glob=_glob,
        reference="torch 2.11 aten _int_mm -> oneDNN gemm_api (ONEDNN_VERBOSE); oneDNN dev guide 'Nuances of int8 "
                  "computations': s8 x s8 runs as u8(a + 128) x s8 with vpmaddubsw before VNNI, whose int16 pair sums "
                  "saturate",
        why="with oneDNN capped below VNNI (ONEDNN_MAX_CPU_ISA=SSE41/AVX2/AVX512_CORE) on the AMX host, full-range "
            "operands give saturated pair sums: 127 x 127 over K = 4096 gives 522240, not 66064384 (exactly the "
            "int16 saturation). torch 2.13.0+cpu runs _int_mm without oneDNN and is exact at every level",
        below="avx512_vnni", packages={"torch": "2.11"})
      for _kernel, _glob in (
          ("torch.int_mm", "conformance/test_pytorch_int_mm.py::test_int_mm_extremes[[]mkn[123]-max_x_max[]]"),
          ("torch.int_mm", "conformance/test_pytorch_int_mm.py::test_int_mm_hypothesis"),
          ("torchao.int_scaled_matmul", "conformance/test_torchao_cpu.py::test_int_scaled_matmul_*"))),
    KnownDefect(
        kernel="bestla.woqgemm", isa="*", convention="bestla.neural_speed.int4_fullrange.sym",
        nodeid_glob="conformance/test_bestla_woqgemm.py::test_half_activations*",
        reference="auto-round-lib 0.16.0 auto_round_kernel/__init__.py woqgemm (bf16/fp16 A); /work/shared/NUMERICS.md",
        why="bf16/fp16 activations corrupt the heap (glibc 'munmap_chunk(): invalid pointer' / SIGSEGV) on AVX2 "
            "and AVX512 hosts; woqgemm_linear avoids it by casting A to fp32 first"),
    KnownDefect(
        kernel="bestla.woqgemm_s8", isa="*", convention="act.onednn.s8.per_tensor",
        nodeid_glob="conformance/test_bestla_int8.py::test_woqgemm_s8*w127*",
        reference="oneDNN dev guide 'Nuances of int8 Computations' (vpmaddubsw int16 saturation without VNNI); "
                  "BesTLA docs/README footnote: int8 'may cause numeric overflow if the device only has AVX2 "
                  "without AVX_VNNI'",
        why="on AVX2 without VNNI the u8(q+128) x s8 pair sums saturate at int16: full-range int8 weights give "
            "wrong sums (reproduced bit for bit by a saturating model); hosts with VNNI/AMX should pass",
        below="avx512_vnni"),
    KnownDefect(
        kernel="bestla.igemm_s8s8s32", isa="*", convention="w8a8 int32",
        nodeid_glob="conformance/test_bestla_int8.py::test_igemm*",
        reference="auto-round-lib 0.16.0 igemm_s8s8s32 -> cpu_lib.matmul(int8, int8 -> int32); /work/shared/NUMERICS.md",
        why="returns garbage int32 (ones x ones gives random values, not 64) on an AMD AVX2 host and on the "
            "AVX512 host of NUMERICS.md; no oneDNN primitive runs for it"),
    *(KnownDefect(
        kernel="torch.weight_int8pack_mm", isa=_isa, convention="torch.int8pack",
        nodeid_glob="conformance/test_pytorch_weight_only.py::test_int8pack_bf16_k_tail*",
        reference="pytorch aten/src/ATen/native/cpu/int8mm_kernel.cpp: tinygemm_kernel<BLOCK_M, BLOCK_N> for "
                  "BFloat16 under CPU_CAPABILITY_AVX2 (_mm_load_si128 of A) and CPU_CAPABILITY_AVX512 "
                  "(_mm256_load_si256 of A, _mm_load_si128 of B); no upstream issue found",
        why="bf16 rows of A are read with aligned loads at A + row*K (16 bytes on AVX2, 32 on AVX512) and the "
            "k loop (step 8 / 16) has no tail: with K % 8 != 0 (K % 16 on AVX512) and M > 1 row 1 is off that "
            "boundary and faults (SIGSEGV for (3,77,5) and (4,66,4)). ATEN_CPU_CAPABILITY=default (generic loop) "
            "passes")
      for _isa in ("avx2", "avx512", "avx512_vnni", "amx", "native")),
    *(KnownDefect(
        kernel="torch.weight_int8pack_mm", isa=_isa, convention="torch.int8pack",
        nodeid_glob="conformance/test_pytorch_weight_only.py::test_int8pack_bf16_row_alignment",
        reference="pytorch aten/src/ATen/native/cpu/int8mm_kernel.cpp: tinygemm_kernel<BLOCK_M, BLOCK_N> for "
                  "BFloat16 under CPU_CAPABILITY_AVX512 reads A with _mm256_load_si256 (32-byte aligned); no "
                  "upstream issue found",
        why="with K % 16 == 0 the AVX512 bf16 kernel still needs A itself 32-byte aligned: an A 16 bytes past a "
            "64-byte boundary (a contiguous view with a storage offset, as torch.from_numpy's buffers often are) "
            "faults on every call, seen as flaky SIGSEGVs of the bf16 numerics tests on an AMX host (torch 2.11) "
            "before the adapter copied inputs into torch's 64-byte-aligned allocations. AVX2 needs 16 and passes")
      for _isa in ("avx512", "avx512_vnni", "amx", *(
          ("native",) if ORDER.index((levels_on_host() or ["scalar"])[-1]) >= ORDER.index("avx512") else ()))),
    KnownDefect(
        kernel="triton.torchao.int_scaled_matmul", isa="*", convention="w8a8 (acc*sa)*sb",
        nodeid_glob="conformance/test_triton_torchao.py::test_int_scaled_matmul_even_k_tail*",
        reference="torchao 0.18.0 torchao/kernel/intmm_triton.py: int_scaled_matmul_kernel (EVEN_K)",
        why="EVEN_K is set from K % 2 == 0, not K % BLOCK_K == 0, so an even K that is not a multiple of "
            "BLOCK_K loads past the end of each row without a mask (K = 48 with BLOCK_K 32 or 128)"),
]


def _installed(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return ""


def effective_level(isa: str) -> str:
    """The ISA level a run is capped at: the requested one, or the host's best for 'native'."""
    return isa if isa != "native" else levels_on_host()[-1]


def lookup(kernel: str, isa: str, nodeid: str) -> KnownDefect | None:
    """The registered defect that covers this case, if any."""
    for d in DEFECTS:
        if not (fnmatch.fnmatchcase(kernel, d.kernel) and d.isa in ("*", isa)
                and fnmatch.fnmatchcase(nodeid, d.nodeid_glob)):
            continue
        if d.below and ORDER.index(effective_level(isa)) >= ORDER.index(d.below):
            continue
        if not all(_installed(dist).startswith(prefix) for dist, prefix in d.packages.items()):
            continue
        return d
    return None
