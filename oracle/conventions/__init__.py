"""Named quantization conventions: one module per library family, each registering its own.

`get(name)` returns a frozen `Convention`; `names()` lists them. Weight and activation
quantizers share one registry (a convention's `kind` says which it is). Importing this package
imports every family module in it, which registers its conventions.
"""
import importlib
import pkgutil

from oracle.conventions.convention import REGISTRY, Convention, QuantizedWeight

__all__ = ["Convention", "QuantizedWeight", "get", "names"]

_HELPERS = {"convention"}

for _m in pkgutil.iter_modules(__path__):
    if _m.name not in _HELPERS and not _m.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_m.name}")


def names(kind: str | None = None) -> list[str]:
    """Every registered convention name, sorted; only those of `kind` ("weight"/"activation") if given."""
    return sorted(n for n, c in REGISTRY.items() if kind is None or c.kind == kind)


def get(name: str) -> Convention:
    """The convention called `name`, or a one-line ValueError listing the known names."""
    if not isinstance(name, str) or name not in REGISTRY:
        raise ValueError(f"unknown convention {name!r}; known: {', '.join(names())}")
    return REGISTRY[name]

importlib.import_module("oracle.activations")  # activation quantizers share the registry
