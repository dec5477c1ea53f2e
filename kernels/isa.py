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

A library with no knob (MLAS, BesTLA, ggml: KernelInfo.isa_knobs empty) dispatches on cpuid.
Below the host's top level it can be run on an emulated CPU instead (kernels/emulation.py:
`qemu-x86_64 -cpu Nehalem-v1` for scalar, a Haswell model for avx2; QEMU has no AVX512), opt-in
with QORACLE_EMULATE=on (=all: also knobbed kernels, as a second opinion). `mode(info, level)`
says how a kernel runs at a level: native, capped (its knobs), emulated (the CPU model) or
unavailable, and why; the worker (kernels/worker.py) follows it call by call. Inside an emulated
worker `host_flags()` is the emulated cpuid, since /proc/cpuinfo still shows the real host.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from kernels import emulation

__all__ = ["Level", "LEVELS", "ORDER", "cpu_code", "host_flags", "host_has", "levels_on_host", "knobs_for", "Mode", "mode",
           "level_of"]


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
    """The CPU feature flags of this host, from /proc/cpuinfo (empty where it is unreadable); in a
    process on an emulated CPU, what its cpuid reports (QEMU does not emulate /proc/cpuinfo)."""
    if cpuinfo is None and os.environ.get(emulation.EMULATED_ENV):
        return emulation.cpuid_flags()
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


def level_of(env: dict[str, str]) -> str | None:
    """The ordered level whose knobs `env` sets (a worker started with a level's knobs runs at it)."""
    for level in ORDER:
        if knobs_for(level).items() <= env.items():
            return level
    return None


@dataclass(frozen=True)
class Mode:
    """How one kernel runs at one level, and why. `how`: native (nothing imposed), capped (`knobs`
    set before its library loads), emulated (its worker runs on the QEMU CPU model `cpu`), or
    unavailable (it is not judged at this level)."""

    how: str
    why: str
    knobs: dict[str, str] = field(default_factory=dict)
    cpu: str = ""

    def __str__(self) -> str:
        return self.how


# families whose kernels are not CPU code (Triton runs on a GPU, or in its numpy interpreter)
_NOT_CPU = ("triton", "esimd")


def cpu_code(info) -> bool:
    """Whether the kernel is CPU code, which an ISA level can change (Triton and ESIMD kernels are not)."""
    return info.family not in _NOT_CPU


def _beside_knobless(info) -> bool:
    """Whether `info`'s adapter module also drives a CPU kernel without a knob: the worker routes a
    whole module, so such a kernel runs wherever its knob-less neighbours do."""
    from kernels.registry import kernels

    return any(not k.isa_knobs and k.family not in _NOT_CPU for k in kernels()
               if k.module == info.module and k.name != info.name)


def mode(info, level: str, *, flags: frozenset[str] | None = None, emulate: str | None = None,
         probe: bool = True) -> Mode:
    """How the kernel `info` (a KernelInfo) runs under `--isa level` on this host.

    `emulate`: off | on | all (default: QORACLE_EMULATE); `probe`: start the emulated CPU once
    (cached) and judge the level only where its cpuid lacks every feature above the level. A
    kernel with a knob runs emulated under `all`, or under `on` where its adapter module also
    drives a kernel without one (it then keeps its knobs set); where that cannot be, it is capped.
    """
    if level not in LEVELS:
        raise ValueError(f"unknown ISA level {level!r}; known: {', '.join(LEVELS)}")
    if level == "native":
        return Mode("native", "the host's own ISA; nothing imposed")
    if info.family in _NOT_CPU:
        return Mode("native", f"{info.family} kernels are not CPU code: no CPU ISA to cap or emulate")
    ok, why = host_has(level, flags)
    if not ok:
        return Mode("unavailable", why)
    have = host_flags() if flags is None else flags
    setting = emulation.setting() if emulate is None else emulate
    top = (levels_on_host(have) or ["scalar"])[-1]
    knobs = {k: v for k, v in knobs_for(level).items() if k in info.isa_knobs}
    capped = " ".join(f"{k}={v}" for k, v in knobs.items())
    above = sorted(have & emulation.MODELS[level].lacks) if level in emulation.MODELS else []
    below = level != top or bool(above)  # the host has more than the level: only a cap or an emulator hides it
    wanted = setting == "all" or (setting == "on" and (not knobs or _beside_knobless(info)))
    cannot = ""
    if below and wanted:
        cannot = emulation.why_not(level)
        if not cannot and probe and not (c := emulation.check(level)).ok:
            cannot = f"the emulated CPU failed its check: {c.why}"
        if not cannot:
            cpu = emulation.MODELS[level]
            role = ("no ISA knob" if not knobs else f"a second opinion, {capped} still set" if setting == "all"
                    else f"its adapter module also drives kernels without a knob, {capped} still set")
            return Mode("emulated", f"{role}: {emulation.QEMU} -cpu {cpu.model} ({cpu.why})", knobs, cpu.model)
    if knobs:
        return Mode("capped", capped + (f" (not emulated: {cannot})" if cannot else ""), knobs)
    if level == top:
        extra = f" (the host also has {', '.join(above)}, which its library may use)" if above else ""
        return Mode("native", f"no ISA knob: its library dispatches on cpuid to {top}, this host's top level{extra}")
    if setting == "off":
        return Mode("unavailable", f"no ISA knob: its library dispatches on cpuid to {top} here, not {level}; "
                                   f"{emulation.ENV}=on runs it on an emulated {level} CPU")
    return Mode("unavailable", f"no ISA knob, and {level} cannot be emulated: {cannot}")
