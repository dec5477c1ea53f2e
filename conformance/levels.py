"""A session's ISA levels: what `--isa` names, and the level parameter a multi-level session adds
to each test id (`isa-LEVEL`), read back by the runner and stripped for reproduce lines."""
from __future__ import annotations

import re

from kernels.isa import LEVELS, levels_on_host

__all__ = ["parse", "param_id", "level_of", "base_nodeid"]

_PARAM = re.compile(r"(\[|-)isa-(%s)(?=\]|-)" % "|".join(sorted(LEVELS, key=len, reverse=True)))


def parse(spec: str) -> list[str]:
    """'native' | 'all' (every level this host has) | 'a,b,...' (duplicates dropped); a ValueError
    names an unknown level."""
    if spec == "all":
        return levels_on_host()
    levels = list(dict.fromkeys(s.strip() for s in spec.split(",") if s.strip()))
    unknown = [lv for lv in levels if lv not in LEVELS]
    if unknown or not levels:
        raise ValueError(f"unknown ISA level(s) {', '.join(unknown) or repr(spec)}; known: all, {', '.join(LEVELS)}")
    return levels


def param_id(level: str) -> str:
    return f"isa-{level}"


def level_of(nodeid: str, levels: list[str]) -> str:
    """The level a test id ran at (its level parameter; the one level of a one-level run)."""
    m = _PARAM.search(nodeid)
    return m.group(2) if m and m.group(2) in levels else levels[0]


def base_nodeid(nodeid: str) -> str:
    """`nodeid` without the level parameter (what a one-level run calls the test)."""
    out = _PARAM.sub(lambda m: "[" if m.group(1) == "[" else "", nodeid, count=1)
    return out.replace("[-", "[").replace("[]", "")
