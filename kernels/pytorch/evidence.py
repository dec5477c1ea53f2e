"""Test-process side: read what really ran from a worker call, and check it against the ISA cap.

Two witnesses: ATen's `torch.backends.cpu.get_cpu_capability()` (returned by the adapters'
`observe`), and the lines oneDNN prints with verbose on (`onednn_verbose,...,info,cpu,isa:Intel
AVX2` once, then one `primitive,exec,cpu,<kind>,<impl>,...` per execution, whose implementation
names carry the ISA, e.g. `brg_matmul:avx512_core_vnni`). Both come back with the worker's
Outcome (its `stdout` field), so this module needs no torch.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from kernels.isa import knobs_for
from kernels.worker import Outcome, Worker

__all__ = ["Run", "run", "OneDNNEvidence", "parse_onednn", "aten_level", "expected_aten", "cap_problems", "observed_isa"]

# ATen capability names (aten/src/ATen/native/DispatchStub.cpp: CPUCapability) -> levels.
_ATEN = {"DEFAULT": "scalar", "AVX2": "avx2", "AVX512": "avx512"}
_ATEN_KNOB = {"default": "DEFAULT", "avx2": "AVX2", "avx512": "AVX512"}

# oneDNN ISA names in implementation strings (src/cpu/x64/cpu_isa_traits.hpp), ranked on the
# levels of kernels/isa.py; half steps are ISAs between two levels (a cap at the lower level excludes them).
_IMPL_RANK = {"sse41": 0, "avx": 0.5, "avx2": 1, "avx2_vnni": 1.5, "avx2_vnni_2": 1.5, "avx512_core": 2,
              "avx512_core_vnni": 3, "avx512_core_bf16": 3.5, "avx512_core_fp16": 3.5, "avx10_1_512": 3.5,
              "avx512_core_amx": 4, "avx512_core_amx_fp16": 4, "avx10_1_512_amx": 4, "avx10_1_512_amx_fp16": 4}
_CAP_RANK = {"SSE41": 0, "AVX2": 1, "AVX512_CORE": 2, "AVX512_CORE_VNNI": 3, "AVX512_CORE_AMX": 4}


def _rank_of_isa_line(text: str) -> float:
    """Rank of oneDNN's human-readable ISA line ('Intel AVX2', 'Intel AVX-512 with Intel DL Boost', ...)."""
    t = text.lower()
    if "amx" in t:
        return 4
    if "avx-512" in t or "avx512" in t:
        return 3.5 if ("bfloat16" in t or "float16" in t) else (3 if "dl boost" in t else 2)
    if "avx2" in t:
        return 1.5 if "dl boost" in t else 1
    if "avx" in t:
        return 0.5
    return 0


@dataclass
class OneDNNEvidence:
    """The ISA line and the implementations oneDNN reported during one call."""

    isa_line: str = ""
    impls: list[str] = field(default_factory=list)

    @property
    def seen(self) -> bool:
        return bool(self.isa_line or self.impls)

    def impl_ranks(self) -> dict[str, float]:
        """Implementations whose name carries an ISA (`brg_matmul:avx2`), with its rank."""
        out = {}
        for impl in self.impls:
            for part in re.split(r"[:,]", impl):
                if part in _IMPL_RANK:
                    out[impl] = _IMPL_RANK[part]
        return out

    def summary(self) -> str:
        if not self.seen:
            return ""
        return f"onednn[{self.isa_line or '?'}; {', '.join(sorted(set(self.impls))) or 'no primitive'}]"


def parse_onednn(stdout: str) -> OneDNNEvidence:
    """Collect oneDNN's verbose ISA line and primitive implementation names from captured stdout."""
    ev = OneDNNEvidence()
    for line in stdout.splitlines():
        parts = line.strip().split(",")
        if len(parts) < 4 or not parts[0].startswith(("onednn_verbose", "dnnl_verbose")):
            continue
        body = parts[2:] if parts[1].startswith("v") and parts[1][1:].isdigit() else parts[1:]
        if body[:2] == ["info", "cpu"] and len(body) > 2 and body[2].startswith("isa:"):
            ev.isa_line = body[2][4:]
        elif body[:3] == ["primitive", "exec", "cpu"] and len(body) > 4:
            ev.impls.append(f"{body[3]}:{body[4]}")
    return ev


def aten_level(capability: str) -> str:
    """ATen capability string -> level name ('?' for one this project does not rank)."""
    return _ATEN.get(capability.upper(), "?")


def expected_aten(isa: str) -> str | None:
    """The ATen capability an --isa cap must produce, None when it sets no ATen knob (native)."""
    knob = knobs_for(isa).get("ATEN_CPU_CAPABILITY")
    return _ATEN_KNOB[knob] if knob else None


def cap_problems(isa: str, capability: str | None, onednn: OneDNNEvidence) -> list[str]:
    """Every way the observed run exceeds (or, for ATen, differs from) the requested cap."""
    problems: list[str] = []
    want = expected_aten(isa)
    if want and capability is not None and capability.upper() != want:
        problems.append(f"ATen capability is {capability}, the cap --isa {isa} requires {want}")
    cap = knobs_for(isa).get("ONEDNN_MAX_CPU_ISA")
    if cap and onednn.seen:
        limit = _CAP_RANK[cap]
        if onednn.isa_line and _rank_of_isa_line(onednn.isa_line) > limit:
            problems.append(f"oneDNN reports ISA '{onednn.isa_line}', above the cap {cap}")
        for impl, r in onednn.impl_ranks().items():
            if r > limit:
                problems.append(f"oneDNN ran {impl}, above the cap {cap}")
    return problems


def observed_isa(capability: str | None, onednn: OneDNNEvidence, extra: str = "") -> str:
    """One line for the results file: 'aten=AVX2 onednn[Intel AVX2; matmul:gemm:jit]'."""
    parts = [f"aten={capability}"] if capability else []
    if onednn.seen:
        parts.append(onednn.summary())
    if extra:
        parts.append(extra)
    return " ".join(parts)



@dataclass
class Run:
    """One kernel call in the worker and what was observed right after it."""

    outcome: Outcome
    observed: dict
    onednn: OneDNNEvidence

    @property
    def capability(self) -> str | None:
        return self.observed.get("aten_capability")

    def isa(self, extra: str = "") -> str:
        return observed_isa(self.capability, self.onednn, extra or self.observed.get("note", ""))

    @property
    def facts(self) -> dict:
        """What a GEMM semantics may depend on: the adapter's `observe()` and the oneDNN
        implementations this call ran (from its verbose lines)."""
        return {**self.observed, "onednn_impls": tuple(self.onednn.impls)}


def run(worker: Worker, module: str, func: str, *args, **kwargs) -> Run:
    """Call `module.func` in the worker, then `module.observe()` in the same process."""
    out = worker.call(module, func, *args, **kwargs)
    obs = worker.call(module, "observe") if out.ok else None
    observed = obs.value if obs is not None and obs.ok else {}
    return Run(out, observed, parse_onednn(out.stdout))
