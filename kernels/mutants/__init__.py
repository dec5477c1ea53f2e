"""Deliberately wrong kernels: each one real-world mistake applied to a shipped kernel's adapter.

A referee that never blows the whistle is worthless. Each `Mutant` stands in for one function
of a real adapter module (kernels/*/): it calls the real kernel with its inputs corrupted the
way the buggy kernel would read them, or corrects the real kernel's output by exactly what the
bug changes, or (where neither can express it) computes the result itself with the bug. It
names the real bug it mirrors and the conformance tests expected to catch it.

`pytest conformance --mutant NAME` (conformance/conftest.py) routes every worker call for the
mutant's target module to kernels.mutants.active, which serves the mutant's function and the
real adapter's others; `qoracle selftest` (reports/selftest.py) runs the quick profile against
every mutant and reports the kill rate. Importing this package loads no kernel library.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["Mutant", "mutant", "mutants", "get", "real", "ENV"]

ENV = "QORACLE_MUTANT"  # the worker reads the active mutant's name from its environment
_FAMILIES = ("ggml", "pytorch", "onnxruntime", "bestla", "torchao", "triton")
_MUTANTS: dict[str, "Mutant"] = {}


@dataclass(frozen=True)
class Mutant:
    """One wrong kernel.

    name: "family.what_is_wrong". target: the adapter module it replaces (e.g. kernels.ggml.calls).
    func: the adapter function it overrides. kernels: registry kernel names it corrupts (the
    selftest runs the suite restricted to them). bug: the mistake, in one line. mirrors: the
    real-world bug it stands for. caught_by: test node-id globs expected to catch it.
    """

    name: str
    target: str
    func: str
    kernels: tuple[str, ...]
    bug: str
    mirrors: str
    caught_by: tuple[str, ...]
    impl: Callable[..., Any]


def mutant(name: str, target: str, func: str, kernels: tuple[str, ...] | str, mirrors: str,
           caught_by: tuple[str, ...] | str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated function as mutant `name`, standing in for `target.func`.

    The function's docstring (first line) is the bug.
    """
    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in _MUTANTS:
            raise ValueError(f"mutant {name!r} registered twice")
        bug = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        _MUTANTS[name] = Mutant(name, target, func, (kernels,) if isinstance(kernels, str) else tuple(kernels),
                                bug, mirrors, (caught_by,) if isinstance(caught_by, str) else tuple(caught_by), fn)
        return fn
    return wrap


def _load() -> None:
    for fam in _FAMILIES:
        importlib.import_module(f"kernels.mutants.{fam}")


def mutants() -> list[Mutant]:
    """Every mutant, in a stable order (by name)."""
    _load()
    return [_MUTANTS[n] for n in sorted(_MUTANTS)]


def get(name: str) -> Mutant:
    _load()
    if name not in _MUTANTS:
        raise ValueError(f"unknown mutant {name!r}; known: {', '.join(sorted(_MUTANTS))}")
    return _MUTANTS[name]


def real(target: str, func: str) -> Callable[..., Any]:
    """The real adapter function a mutant wraps (imported only when the worker calls it)."""
    return getattr(importlib.import_module(target), func)
