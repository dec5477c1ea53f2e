"""Known upstream defects: the one registry of cases expected to fail, with their evidence.

Each entry names the kernel, the ISA levels it fails at ("*" for all), the convention, a glob
over test node ids, and the upstream reference (issue, PR or source line) that explains it.
A matching case runs as a strict expected failure: when upstream fixes the defect the case
passes, the strict xfail turns into a failure, and the entry must be removed.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass

__all__ = ["KnownDefect", "DEFECTS", "lookup"]


@dataclass(frozen=True)
class KnownDefect:
    kernel: str
    isa: str
    convention: str
    nodeid_glob: str
    reference: str
    why: str


DEFECTS: list[KnownDefect] = [
]


def lookup(kernel: str, isa: str, nodeid: str) -> KnownDefect | None:
    """The registered defect that covers this case, if any."""
    for d in DEFECTS:
        if fnmatch.fnmatchcase(kernel, d.kernel) and d.isa in ("*", isa) and fnmatch.fnmatchcase(nodeid, d.nodeid_glob):
            return d
    return None
