"""Emulated ISA levels: a kernel's worker run under QEMU's user-mode emulator, whose cpuid
reports a chosen CPU model.

MLAS (onnxruntime), BesTLA and ggml pick their kernels from cpuid and read no environment knob,
so no variable caps them at a level below the host's. `qemu-x86_64 -cpu <model> python ...`
changes what cpuid answers (and, from QEMU 7.2, executes AVX/AVX2 in software), so the library
dispatches as it would on a real CPU of that level. /proc/cpuinfo is not emulated (it still
shows the host), so the evidence is cpuid read inside the emulated process (`cpuid_flags`, a
few bytes of machine code called through ctypes) beside numpy's own cpuid report; a level is
judged only when that cpuid has the level's features and lacks every feature above it
(`unserved`).

QEMU's TCG implements no AVX512 (7.2 and 8.x), so only avx2 and scalar can be emulated.
`QORACLE_EMULATE` turns emulation on: `off` (the default: python, numpy and the library all run
emulated, several times slower), `on` (kernels without an ISA knob, below the host's top
level, and the kernels that share an adapter module with them), `all` (also kernels with a knob,
as a second opinion: the knob stays set, and whatever it does not reach, code that reads cpuid
itself, now sees the level too). kernels.isa.mode says which applies to each kernel.
"""
from __future__ import annotations

import ctypes
import functools
import json
import mmap
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass

__all__ = ["CpuModel", "MODELS", "NOT_EMULATED", "ENV", "EMULATED_ENV", "QEMU", "SLOWDOWN", "setting",
           "qemu", "why_not", "command", "cpuid_flags", "probe", "unserved", "check", "Check"]

QEMU = "qemu-x86_64"
ENV = "QORACLE_EMULATE"  # off | on | all (see the module docstring)
EMULATED_ENV = "QORACLE_EMULATED_CPU"  # set inside an emulated worker: the CPU model it runs on
SETTINGS = ("off", "on", "all")
SLOWDOWN = 5.0  # an emulated worker's timeouts are this many times the native ones

_AVX2 = frozenset({"avx", "avx2", "fma", "f16c"})
_AVX512 = frozenset({"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd", "avx512ifma", "avx512vbmi",
                     "avx512_vbmi2", "avx512_vnni", "avx512_bitalg", "avx512_vpopcntdq", "avx512_bf16",
                     "avx512_fp16"})
_ABOVE_AVX2 = _AVX512 | {"avx_vnni", "amx_tile", "amx_int8", "amx_bf16"}


@dataclass(frozen=True)
class CpuModel:
    """The QEMU CPU model that stands for a level: cpuid must show `has` and none of `lacks`."""

    level: str
    model: str  # the -cpu argument (features TCG does not implement switched off: no warnings)
    has: frozenset[str]
    lacks: frozenset[str]
    min_qemu: tuple[int, int]  # TCG executes what `has` names from this release on
    why: str


MODELS: dict[str, CpuModel] = {m.level: m for m in (
    CpuModel("scalar", "Nehalem-v1", frozenset({"sse4_1", "sse4_2"}), _AVX2 | _ABOVE_AVX2, (2, 0),
             "SSE4.2 without AVX: the floor the scalar level's knobs name (ONEDNN_MAX_CPU_ISA=SSE41, "
             "ggml's x64 variant, ATen's default capability)"),
    CpuModel("avx2", "Haswell-noTSX,-pcid,-x2apic,-tsc-deadline,-invpcid", _AVX2, _ABOVE_AVX2, (7, 2),
             "AVX2, FMA and F16C without AVX512 or VNNI; TCG executes AVX/AVX2 from QEMU 7.2"),
)}

_NO_AVX512 = "QEMU's TCG implements no AVX512 instruction, so no emulated CPU can serve this level"
NOT_EMULATED: dict[str, str] = {"avx512": _NO_AVX512, "avx512_vnni": _NO_AVX512, "amx": _NO_AVX512 + " (nor AMX)",
                                "native": "native is the host's own ISA"}


def setting(env: dict[str, str] | None = None) -> str:
    """`QORACLE_EMULATE` from `env` (default: this process's environment); an unknown value is an error."""
    value = (os.environ if env is None else env).get(ENV, "") or "off"
    if value not in SETTINGS:
        raise ValueError(f"{ENV}={value!r}; known: {', '.join(SETTINGS)}")
    return value


@dataclass(frozen=True)
class Qemu:
    path: str
    version: tuple[int, ...]

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))


@functools.lru_cache(maxsize=None)
def qemu() -> Qemu | None:
    """qemu-x86_64 on PATH and its version, or None where it is absent (or does not start)."""
    path = shutil.which(QEMU)
    if not path:
        return None
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"version (\d+)\.(\d+)(?:\.(\d+))?", out)
    return Qemu(path, tuple(int(g) for g in m.groups() if g is not None)) if m else None


def why_not(level: str) -> str:
    """Why `level` cannot be emulated on this machine ("" when it can, before the cpuid check)."""
    if level in NOT_EMULATED:
        return NOT_EMULATED[level]
    if level not in MODELS:
        raise ValueError(f"unknown ISA level {level!r}")
    if platform.machine() not in ("x86_64", "AMD64"):
        return f"emulation runs this x86_64 interpreter under {QEMU}; this machine is {platform.machine()}"
    q = qemu()
    if q is None:
        return f"{QEMU} is not on PATH (Debian/Ubuntu: apt-get install qemu-user)"
    need = MODELS[level].min_qemu
    if q.version[:2] < need:
        return f"{QEMU} {q.version_text} is older than {need[0]}.{need[1]}, whose TCG first executes {level}"
    return ""


def command(level: str) -> list[str]:
    """The prefix that runs a program on the level's emulated CPU."""
    q = qemu()
    if q is None or why_not(level):
        raise ValueError(f"cannot emulate {level}: {why_not(level)}")
    return [q.path, "-cpu", MODELS[level].model]


# --------------------------------------------------------------------------------------- cpuid

# (leaf, subleaf, register index eax=0 ebx=1 ecx=2 edx=3, bit) -> the Linux /proc/cpuinfo name
_BITS: dict[str, tuple[int, int, int, int]] = {
    "sse": (1, 0, 3, 25), "sse2": (1, 0, 3, 26), "pni": (1, 0, 2, 0), "ssse3": (1, 0, 2, 9),
    "fma": (1, 0, 2, 12), "sse4_1": (1, 0, 2, 19), "sse4_2": (1, 0, 2, 20), "movbe": (1, 0, 2, 22),
    "popcnt": (1, 0, 2, 23), "avx": (1, 0, 2, 28), "f16c": (1, 0, 2, 29),
    "bmi1": (7, 0, 1, 3), "avx2": (7, 0, 1, 5), "bmi2": (7, 0, 1, 8), "avx512f": (7, 0, 1, 16),
    "avx512dq": (7, 0, 1, 17), "avx512ifma": (7, 0, 1, 21), "avx512cd": (7, 0, 1, 28), "avx512bw": (7, 0, 1, 30),
    "avx512vl": (7, 0, 1, 31), "avx512vbmi": (7, 0, 2, 1), "avx512_vbmi2": (7, 0, 2, 6),
    "avx512_vnni": (7, 0, 2, 11), "avx512_bitalg": (7, 0, 2, 12), "avx512_vpopcntdq": (7, 0, 2, 14),
    "amx_bf16": (7, 0, 3, 22), "avx512_fp16": (7, 0, 3, 23), "amx_tile": (7, 0, 3, 24), "amx_int8": (7, 0, 3, 25),
    "avx_vnni": (7, 1, 0, 4), "avx512_bf16": (7, 1, 0, 5), "sse4a": (0x80000001, 0, 2, 6),
}
_OSXSAVE = (1, 0, 2, 27)  # XGETBV is usable
# XCR0 state the OS must enable before a feature is usable (Linux hides the flag otherwise)
_XCR0 = {"avx": 0x6, "avx512": 0xE6, "amx": 0x60006}

# x86-64 SysV: cpuid(leaf=edi, subleaf=esi, out=rdx) -> out[0..3] = eax, ebx, ecx, edx
_CPUID_CODE = bytes.fromhex("53" "4989d0" "89f8" "89f1" "0fa2" "418900" "41895804" "41894808" "4189500c" "5b" "c3")
# xgetbv(0) -> edx:eax
_XGETBV_CODE = bytes.fromhex("31c9" "0f01d0" "48c1e220" "4809d0" "c3")


@functools.lru_cache(maxsize=None)
def _machine_code() -> tuple:
    """The two helpers in one executable page (kept alive for the process's life)."""
    page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    page.write(_CPUID_CODE + b"\x90" * (64 - len(_CPUID_CODE)) + _XGETBV_CODE)
    base = ctypes.addressof(ctypes.c_char.from_buffer(page))
    cpuid = ctypes.CFUNCTYPE(None, ctypes.c_uint32, ctypes.c_uint32, ctypes.POINTER(ctypes.c_uint32 * 4))(base)
    xgetbv = ctypes.CFUNCTYPE(ctypes.c_uint64)(base + 64)
    return page, cpuid, xgetbv


def _cpuid(leaf: int, subleaf: int = 0) -> tuple[int, int, int, int]:
    out = (ctypes.c_uint32 * 4)()
    _machine_code()[1](leaf, subleaf, ctypes.byref(out))
    return tuple(out)  # type: ignore[return-value]


def cpuid_flags() -> frozenset[str]:
    """The CPU features cpuid reports to this process, named as in /proc/cpuinfo, with the AVX,
    AVX512 and AMX families dropped where XCR0 shows the state not enabled (as Linux and the
    libraries' own checks do). Under QEMU this is the emulated CPU, unlike /proc/cpuinfo."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return frozenset()
    max_leaf, max_ext = _cpuid(0)[0], _cpuid(0x80000000)[0]
    regs: dict[tuple[int, int], tuple[int, int, int, int]] = {}
    flags = set()
    for name, (leaf, sub, reg, bit) in _BITS.items():
        if leaf > (max_ext if leaf >= 0x80000000 else max_leaf):
            continue
        if (leaf, sub) not in regs:
            regs[leaf, sub] = _cpuid(leaf, sub)
        if regs[leaf, sub][reg] >> bit & 1:
            flags.add(name)
    leaf, sub, reg, bit = _OSXSAVE
    xcr0 = _machine_code()[2]() if regs.get((leaf, sub), _cpuid(leaf, sub))[reg] >> bit & 1 else 0
    for name in list(flags):
        family = "amx" if name.startswith("amx") else "avx512" if name.startswith("avx512") else \
            "avx" if name in _AVX2 or name == "avx_vnni" else ""
        if family and xcr0 & _XCR0[family] != _XCR0[family]:
            flags.discard(name)
    return frozenset(flags)


def probe() -> dict:
    """What this process's CPU reports (run inside a worker): cpuid's flags, numpy's own cpuid
    reading (a second witness), and the model it was started on."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as feats
        numpy = sorted(k for k, v in feats.items() if v)
    except ImportError:
        numpy = []
    return {"cpuid": sorted(cpuid_flags()), "numpy": numpy, "model": os.environ.get(EMULATED_ENV, "")}


# cpuid names -> numpy's names for the same features (numpy reads cpuid itself)
_NUMPY = {"avx": "AVX", "avx2": "AVX2", "fma": "FMA3", "f16c": "F16C", "avx512f": "AVX512F",
          "avx512bw": "AVX512BW", "avx512_vnni": "AVX512VNNI", "sse4_2": "SSE42"}


def unserved(level: str, seen: dict) -> str:
    """Why a process whose probe answered `seen` does not stand for `level` ("" when it does):
    its cpuid must have the level's features and lack every feature above the level, and numpy's
    reading (where it gave one) must agree on the features that separate the levels."""
    cpu = MODELS[level]
    flags = set(seen.get("cpuid", ()))
    extra, missing = sorted(flags & cpu.lacks), sorted(cpu.has - flags)
    why = []
    if extra:
        why.append(f"cpuid still shows {', '.join(extra)}")
    if missing:
        why.append(f"cpuid lacks {', '.join(missing)}")
    if seen.get("numpy"):
        numpy = set(seen["numpy"])
        differ = sorted(f for f, n in _NUMPY.items() if (f in flags) != (n in numpy))
        if differ:
            why.append(f"numpy's cpuid reading differs on {', '.join(differ)}")
    return f"the emulated {cpu.model.split(',')[0]} does not stand for {level}: " + "; ".join(why) if why else ""


@dataclass(frozen=True)
class Check:
    """A level's emulation checked on this machine: ok, or why not; the probe seen inside."""

    level: str
    ok: bool
    why: str
    seen: dict

    @property
    def summary(self) -> str:
        """One line: the level-separating flags cpuid showed inside, and what it lacked."""
        if not self.seen:
            return self.why
        shown = [f for f in self.seen["cpuid"] if f.startswith(("sse4", "avx", "fma", "f16c", "amx"))]
        lacks = sorted({f"{f.split('_')[0] if f.startswith('amx') else f[:6]}*" if f.startswith(("avx512", "amx"))
                        else f for f in MODELS[self.level].lacks})
        verdict = "numpy's own cpuid reading agrees" if self.ok else self.why
        return f"cpuid inside shows {' '.join(shown) or 'no SSE4/AVX flag'}, none of {', '.join(lacks)} ({verdict})"


@functools.lru_cache(maxsize=None)
def check(level: str, timeout: float = 120.0) -> Check:
    """Start python on the level's emulated CPU once and read its cpuid (cached per process)."""
    if why := why_not(level):
        return Check(level, False, why, {})
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, EMULATED_ENV: MODELS[level].model,
           "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)}
    code = "import json, kernels.emulation as e; print(json.dumps(e.probe()))"
    try:
        r = subprocess.run([*command(level), sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=timeout, env=env, cwd=root)
        seen = json.loads(r.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as e:
        return Check(level, False, f"python did not start under {QEMU} -cpu {MODELS[level].model}: "
                                   f"{type(e).__name__}: {e}", {})
    why = unserved(level, seen)
    return Check(level, not why, why, seen)
