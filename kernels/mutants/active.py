"""Worker side of `--mutant`: this module stands in for the active mutant's target adapter.

The conformance session renames every worker call for the target module to this one and starts
its worker with QORACLE_MUTANT set; attribute lookup (PEP 562) then serves the mutant's function
for the one it overrides and the real adapter's function for everything else (available,
observe, the other kernel entry points).
"""
from __future__ import annotations

import os
from typing import Any

from kernels.mutants import ENV, get, real


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    m = get(os.environ.get(ENV, ""))
    return m.impl if name == m.func else real(m.target, name)
