"""What each kernel adapter declares, and where adapters are found (built in and third party).

An adapter is a module under kernels/ (or a third party's package) holding plain functions that
run inside the isolating worker (kernels/worker.py): `available()` says whether the kernel can
run here and why not, `observe()` reports what ISA/implementation really ran, and the calls
the conformance tests make. Beside those functions the module registers one `KernelInfo` per
kernel it drives, so the suite, `qoracle isa` and the reports know the kernel's identity, the
oracle conventions it implements and the knobs that govern it, without loading the kernel's
library in the test process.

Third parties register adapters without forking through the entry point group
`qoracle.kernels`: each entry point names a module that calls `register(...)` on import.
"""
from __future__ import annotations

import fnmatch
import importlib
import pkgutil
from dataclasses import dataclass, field
from importlib.metadata import entry_points

__all__ = ["KernelInfo", "Space", "register", "kernels", "get", "find", "select", "ENTRY_POINT_GROUP"]

ENTRY_POINT_GROUP = "qoracle.kernels"
_REGISTRY: dict[str, "KernelInfo"] = {}
_loaded = False


@dataclass(frozen=True)
class Space:
    """The shapes a kernel declares it accepts, as its documentation or source states them.

    A clean refusal (an exception, not a crash) of a case outside the space is UNSUPPORTED, shown as
    such and never counted as a pass; a refusal inside it is a FAIL that quotes the refusal. Shapes
    are (M, K, N). `when`: CPU features under which the limits hold (empty: on every host), for
    limits of one ISA path; `source`: where the limit is stated upstream.
    """

    k_multiple: int = 1
    n_multiple: int = 1
    m_max: int | None = None
    when: tuple[str, ...] = ()
    source: str = ""

    def outside(self, shape: tuple[int, ...], features: frozenset[str]) -> str:
        """Why `shape` is outside the space on a library that sees `features` ("" if inside)."""
        if len(shape) != 3 or not set(self.when) <= features:
            return ""
        m, k, n = shape
        why = []
        if k % self.k_multiple:
            why.append(f"K = {k} is not a multiple of {self.k_multiple}")
        if n % self.n_multiple:
            why.append(f"N = {n} is not a multiple of {self.n_multiple}")
        if self.m_max is not None and m > self.m_max:
            why.append(f"M = {m} exceeds {self.m_max}")
        return "; ".join(why) + (f" ({self.source})" if why and self.source else "")


@dataclass(frozen=True)
class KernelInfo:
    """A shipped kernel's identity and declared numerics.

    name: unique, dotted, family first ("torch.weight_int8pack_mm", "ggml.quantize").
    package: the distribution that ships it (its version is read in the worker).
    op: the operator or C symbol called.
    module: the adapter module whose functions run in the worker.
    conventions: oracle format/convention names the kernel implements.
    isa_knobs: environment variables that cap the kernel's ISA (kernels/isa.py), empty if none.
    space: the shapes it declares it accepts (None: every shape its tests pass).
    deterministic: whether the same call returns the same bytes every time (False for kernels
    that sum in hardware arrival order, such as atomic split-K); the suite checks the claim.
    """

    name: str
    package: str
    op: str
    module: str
    conventions: tuple[str, ...] = ()
    isa_knobs: tuple[str, ...] = ()
    dtypes: tuple[str, ...] = ()
    notes: str = ""
    space: Space | None = None
    deterministic: bool = True
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def family(self) -> str:
        return self.name.split(".", 1)[0]


def register(info: KernelInfo) -> KernelInfo:
    """Add an adapter's kernel to the registry (a second registration of a name is an error)."""
    if info.name in _REGISTRY and _REGISTRY[info.name] != info:
        raise ValueError(f"kernel {info.name!r} registered twice")
    _REGISTRY[info.name] = info
    return info


def _load() -> None:
    """Import the built-in adapter packages and the third-party entry points, once."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    import kernels

    for m in pkgutil.iter_modules(kernels.__path__):
        if m.ispkg:
            importlib.import_module(f"kernels.{m.name}")
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        importlib.import_module(ep.value.split(":", 1)[0])


def kernels() -> list[KernelInfo]:
    """Every registered kernel, sorted by name."""
    _load()
    return [_REGISTRY[n] for n in sorted(_REGISTRY)]


def get(name: str) -> KernelInfo:
    _load()
    if name not in _REGISTRY:
        raise ValueError(f"unknown kernel {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def find(name: str) -> KernelInfo | None:
    """The kernel called `name`, or None (a test may judge a name no adapter registers)."""
    _load()
    return _REGISTRY.get(name)


def select(patterns: list[str]) -> list[KernelInfo]:
    """The kernels whose names match any of the globs (all of them for no pattern)."""
    return [k for k in kernels() if not patterns or any(fnmatch.fnmatchcase(k.name, p) for p in patterns)]
