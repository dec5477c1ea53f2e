"""ISA levels: what the host has, and the knobs that cap each kernel library at a level.

A level is requested with `--isa`; every knob below must be in the environment before the
kernel's library loads, so a capped run happens in a fresh process (kernels/worker.py).
What really ran is observed afterwards (torch's capability, oneDNN's verbose ISA line) and
compared with the request: a cap that did not take effect fails the run.

Knobs (confirmed in upstream sources):
- ATEN_CPU_CAPABILITY (aten/src/ATen/native/DispatchStub.cpp): default | avx2 | avx512; ATen
  has no AMX level, AMX use inside ATen goes through oneDNN.
- ONEDNN_MAX_CPU_ISA (oneDNN docs, "CPU Dispatcher Control"): AVX2, AVX512_CORE,
  AVX512_CORE_VNNI, AVX512_CORE_AMX, ...; oneDNN has no scalar level (SSE41 is its floor).
- QORACLE_GGML_CPU_VARIANT (this project, kernels/ggml/libggml.py): which of ggml's per-ISA CPU
  libraries to load (x64, haswell, skylakex, icelake, sapphirerapids) where ggml was built with
  GGML_CPU_ALL_VARIANTS; a one-ISA build (the llama-cpp-python wheel) cannot be capped.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["Level", "LEVELS", "ORDER", "host_flags", "host_has", "levels_on_host", "knobs_for"]


@dataclass(frozen=True)
class Level:
    """An ISA level: the cpuinfo flags it needs and each library's knob value for it."""

    name: str
    flags: frozenset[str]
    knobs: dict[str, str] = field(default_factory=dict)


GGML_VARIANT = "QORACLE_GGML_CPU_VARIANT"  # read by kernels/ggml/libggml.py
_AVX2 = frozenset({"avx2", "fma", "f16c"})
_AVX512 = _AVX2 | {"avx512f", "avx512bw", "avx512vl", "avx512dq"}
_VNNI = _AVX512 | {"avx512_vnni"}
_AMX = _VNNI | {"amx_tile", "amx_int8", "amx_bf16"}

ORDER = ("scalar", "avx2", "avx512", "avx512_vnni", "amx")

LEVELS: dict[str, Level] = {
    lv.name: lv
    for lv in (
        Level("scalar", frozenset(), {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41",
                                      GGML_VARIANT: "x64"}),
        Level("avx2", _AVX2, {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", GGML_VARIANT: "haswell"}),
        Level("avx512", _AVX512, {"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE",
                                  GGML_VARIANT: "skylakex"}),
        Level("avx512_vnni", _VNNI, {"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE_VNNI",
                                     GGML_VARIANT: "icelake"}),
        Level("amx", _AMX, {"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX",
                            GGML_VARIANT: "sapphirerapids"}),
        Level("native", frozenset(), {}),
    )
}


def host_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The CPU feature flags of this host, from /proc/cpuinfo (empty where it is unreadable)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as f:
                cpuinfo = f.read()
        except OSError:
            return frozenset()
    m = re.search(r"^flags\s*:\s*(.*)$", cpuinfo, re.MULTILINE)
    return frozenset(m.group(1).split()) if m else frozenset()


def host_has(level: str, flags: frozenset[str] | None = None) -> tuple[bool, str]:
    """Whether the host can run `level`, and if not, which flags it lacks."""
    if level not in LEVELS:
        raise ValueError(f"unknown ISA level {level!r}; known: {', '.join(LEVELS)}")
    have = host_flags() if flags is None else flags
    missing = sorted(LEVELS[level].flags - have)
    return (not missing, f"host lacks {', '.join(missing)}" if missing else "")


def levels_on_host(flags: frozenset[str] | None = None) -> list[str]:
    """Every ordered level (scalar .. amx) this host can run."""
    return [lv for lv in ORDER if host_has(lv, flags)[0]]


def knobs_for(level: str) -> dict[str, str]:
    """Environment variables that cap the kernel libraries at `level` (empty for native)."""
    if level not in LEVELS:
        raise ValueError(f"unknown ISA level {level!r}; known: {', '.join(LEVELS)}")
    return dict(LEVELS[level].knobs)
