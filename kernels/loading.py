"""How an adapter's `available()` reports a library that does not import.

Not installed is UNAVAILABLE, with the reason; installed but failing to import (a broken or
incompatible build, a missing shared library) is a load failure (`load_failed`), which the
conformance layer judges LOAD_FAILED and which fails the certificate. A library that crashes or
hangs while loading is told apart by the worker itself (kernels/worker.py, Outcome.load_failed).
"""
from __future__ import annotations

from importlib import metadata

__all__ = ["import_failure"]


def import_failure(dists: tuple[str, ...], what: str, error: BaseException) -> dict:
    """`available()`'s answer for `what` failing to import with `error`: a load failure when every
    distribution in `dists` is installed, else UNAVAILABLE naming what is missing."""
    missing = []
    for d in dists:
        try:
            metadata.version(d)
        except metadata.PackageNotFoundError:
            missing.append(d)
    reason = f"{what} does not import ({type(error).__name__}: {error})"
    if missing:
        return {"ok": False, "reason": f"{', '.join(missing)} not installed: {reason}", "version": "", "load_failed": False}
    return {"ok": False, "reason": f"installed, but {reason}", "version": "", "load_failed": True}
