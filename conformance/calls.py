"""The one way a conformance test calls a kernel in the worker and turns a non-answer into a verdict.

A kernel that is not installed here, or needs hardware this host lacks, is judged UNAVAILABLE
(the test skips, recorded with the adapter's reason). A library that is installed but fails to
load (its import raises, or `available()` crashes or hangs the worker) is LOAD_FAILED, which
fails the run. A call that crashes or hangs is CRASHED. A call that raises cleanly is judged
against the kernel's declared parameter space (KernelInfo.space): outside it, UNSUPPORTED (a
recorded skip, never a pass); inside it, a FAIL that quotes the refusal. Otherwise the value
comes back (or, through `run_observed`, the value with what the worker saw of the ISA that ran).
Details are scrubbed of this machine's paths before they are recorded.

Two invariants hold for every call that answers, each its own named FAIL: the call leaves its
inputs byte-identical (checked in the worker, where the library shares their memory), and the
first call of each test, made twice, returns identical bytes (unless the kernel's KernelInfo
declares it nondeterministic, for example atomic split-K sums).
"""
from __future__ import annotations

import os
import sys
import tempfile

import numpy as np

from conformance.known_defects import features_seen
from kernels.isa import LEVELS, cpu_code, mode
from kernels.pytorch import evidence
from kernels.registry import find as kernel_info
from kernels.worker import Outcome
from oracle.verdict import Result

__all__ = ["require_available", "observe", "run", "run_observed", "failure", "scrub", "same_bytes", "invariants"]

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_PREFIXES = sorted({(_ROOT, "<checkout>"), (sys.prefix, "<python>"), (sys.base_prefix, "<python>"),
                    (tempfile.gettempdir(), "<tmp>"), (os.path.expanduser("~"), "~")},
                   key=lambda p: -len(p[0]))


def scrub(text: str) -> str:
    """`text` with this machine's checkout, interpreter, temp and home paths replaced by placeholders."""
    for prefix, name in _PREFIXES:
        if prefix and prefix != "/":
            text = text.replace(prefix, name)
    return text


def failure(outcome: Outcome, convention: str, what: str, kernel: str = "", shape: tuple[int, ...] = (),
            isa: str = "native") -> Result:
    """The Result of a call that did not return: CRASHED for a signal/exit/hang; for an error it raised,
    UNSUPPORTED outside the kernel's declared space and FAIL inside it."""
    if outcome.status in ("crashed", "timeout"):
        return Result("CRASHED", convention, what, detail=scrub(f"{outcome.status}: {outcome.detail[:600]}"))
    first = scrub(outcome.detail.strip().splitlines()[0] if outcome.detail else "")
    outside = _outside_space(kernel, shape, isa)
    if outside:
        return Result("UNSUPPORTED", convention, what,
                      detail=f"the kernel refused an input outside its declared space ({outside}): {first}")
    return Result("FAIL", convention, what, detail=f"the kernel refused an input inside its declared space: {first}")


def _outside_space(kernel: str, shape: tuple[int, ...], isa: str) -> str:
    info = kernel_info(kernel)
    return info.space.outside(shape, features_seen(kernel, isa)) if info and info.space else ""


def require_available(qsession, judge, kernel: str, module: str, convention: str, *args,
                      check: str = "available", shape: tuple[int, ...] = (), worker=None) -> None:
    """Judge the case UNAVAILABLE (a recorded skip) or LOAD_FAILED unless `module.check(*args)` says
    the kernel runs here (in `worker`, by default the session's), and UNAVAILABLE where
    kernels.isa.mode says the kernel cannot run at the test's level."""
    info = kernel_info(kernel)
    level = getattr(qsession, "isa", "native")
    if info is not None and level in LEVELS and (m := mode(info, level)).how == "unavailable":
        # a library without a knob cannot be held to a level below the host's (unless emulated)
        judge(Result("UNAVAILABLE", convention, module, detail=scrub(f"--isa {level}: {m.why}")),
              kernel=kernel, shape=shape)
    levels = getattr(qsession, "levels", [level])
    if info is not None and not cpu_code(info) and level != levels[-1]:
        # no CPU level changes what runs: judged once a session, at its last level
        judge(Result("UNAVAILABLE", convention, module, detail=f"--isa {level}: {info.family} kernels are not "
                     f"CPU code; this session judges them once, at --isa {levels[-1]}"), kernel=kernel, shape=shape)
    out = (worker or qsession.worker).call(module, check, *args)
    status = "UNAVAILABLE"
    if not out.ok:
        status, detail = "LOAD_FAILED", f"{check}() did not answer: {out.status}: {out.detail[:600]}"
    elif not out.value["ok"]:
        detail = out.value["reason"]
        if out.value.get("load_failed"):
            status = "LOAD_FAILED"
    else:
        return
    judge(Result(status, convention, module, detail=scrub(detail)), kernel=kernel, shape=shape)


def observe(qsession, module: str) -> dict:
    """What the adapter's `observe()` reports in the worker (ISA, build), {} when it does not answer."""
    out = qsession.worker.call(module, "observe")
    return out.value if out.ok else {}


def same_bytes(a, b) -> bool:
    """Whether two call results are the same bytes (arrays by dtype, shape and bytes; dicts, lists
    and tuples element by element; anything else by equality)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and a.shape == b.shape and a.tobytes() == b.tobytes())
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_bytes(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_bytes(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and (a == b or (a != a and b != b))


def invariants(qsession, judge, kernel: str, module: str, func: str, out: Outcome, args, kwargs,
               convention: str, what: str, shape: tuple[int, ...], worker=None) -> None:
    """Judge FAIL when the call wrote into its inputs, or (first call of a test) a second call differs."""
    written = [w for w in out.inputs_written if not w.startswith("kw out")]  # an output buffer is written on purpose
    if written:
        judge(Result("FAIL", convention, what or func,
                     detail=f"invariant inputs-unchanged: the call changed the bytes of its {', '.join(written)}"),
              kernel=kernel, shape=shape)
    first = judge.nodeid not in qsession.repeated
    qsession.repeated.add(judge.nodeid)
    info = kernel_info(kernel)
    if not first or (info and not info.deterministic):
        return
    again = (worker or qsession.worker).call(module, func, *args, **kwargs)
    if again.ok and not same_bytes(out.value, again.value):
        judge(Result("FAIL", convention, what or func,
                     detail="invariant repeatable: the same call made twice in one process returned different bytes"),
              kernel=kernel, shape=shape)


def run(qsession, judge, kernel: str, module: str, func: str, *args, convention: str, what: str = "",
        shape: tuple[int, ...] = (), **kwargs):
    """`module.func(*args, **kwargs)` in the worker: its value, or the case judged CRASHED / FAIL."""
    out = qsession.worker.call(module, func, *args, **kwargs)
    if not out.ok:
        judge(failure(out, convention, what or func, kernel, shape, qsession.isa), kernel=kernel, shape=shape)
    invariants(qsession, judge, kernel, module, func, out, args, kwargs, convention, what, shape)
    return out.value


def run_observed(qsession, judge, kernel: str, module: str, func: str, *args, convention: str, what: str = "",
                 shape: tuple[int, ...] = (), **kwargs) -> evidence.Run:
    """As `run`, then `module.observe()` in the same process: the value is `.outcome.value`, the ISA `.isa()`."""
    r = evidence.run(qsession.worker, module, func, *args, **kwargs)
    if not r.outcome.ok:
        judge(failure(r.outcome, convention, what or func, kernel, shape, qsession.isa), kernel=kernel, shape=shape)
    invariants(qsession, judge, kernel, module, func, r.outcome, args, kwargs, convention, what, shape)
    return r
