"""The one way a conformance test calls a kernel in the worker and turns a non-answer into a verdict.

A kernel that is missing here is judged UNAVAILABLE (the test skips, recorded with the adapter's
reason); a call that crashes or hangs is CRASHED and one that raises on a valid input is FAIL,
both recorded with the worker's detail, and the test stops there. Otherwise the value comes back
(or, through `run_observed`, the value with what the worker saw of the ISA that ran).
"""
from __future__ import annotations

from kernels.pytorch import evidence
from kernels.worker import Outcome
from oracle.verdict import Result

__all__ = ["require_available", "observe", "run", "run_observed", "failure"]


def failure(outcome: Outcome, convention: str, what: str) -> Result:
    """The Result of a call that did not return: CRASHED for a signal/exit/hang, FAIL for an error it raised."""
    if outcome.status in ("crashed", "timeout"):
        return Result("CRASHED", convention, what, detail=f"{outcome.status}: {outcome.detail[:600]}")
    first = outcome.detail.strip().splitlines()[0] if outcome.detail else ""
    return Result("FAIL", convention, what, detail=f"the kernel raised on a valid input: {first}")


def require_available(qsession, judge, kernel: str, module: str, convention: str, *args,
                      check: str = "available", shape: tuple[int, ...] = ()) -> None:
    """Judge the case UNAVAILABLE (a recorded skip) unless `module.check(*args)` says the kernel runs here."""
    out = qsession.worker.call(module, check, *args)
    if not out.ok:
        detail = f"{check}() did not answer: {out.status} {out.detail}"
    elif not out.value["ok"]:
        detail = out.value["reason"]
    else:
        return
    judge(Result("UNAVAILABLE", convention, module, detail=detail), kernel=kernel, shape=shape)


def observe(qsession, module: str) -> dict:
    """What the adapter's `observe()` reports in the worker (ISA, build), {} when it does not answer."""
    out = qsession.worker.call(module, "observe")
    return out.value if out.ok else {}


def run(qsession, judge, kernel: str, module: str, func: str, *args, convention: str, what: str = "",
        shape: tuple[int, ...] = (), **kwargs):
    """`module.func(*args, **kwargs)` in the worker: its value, or the case judged CRASHED / FAIL."""
    out = qsession.worker.call(module, func, *args, **kwargs)
    if not out.ok:
        judge(failure(out, convention, what or func), kernel=kernel, shape=shape)
    return out.value


def run_observed(qsession, judge, kernel: str, module: str, func: str, *args, convention: str, what: str = "",
                 shape: tuple[int, ...] = (), **kwargs) -> evidence.Run:
    """As `run`, then `module.observe()` in the same process: the value is `.outcome.value`, the ISA `.isa()`."""
    r = evidence.run(qsession.worker, module, func, *args, **kwargs)
    if not r.outcome.ok:
        judge(failure(r.outcome, convention, what or func), kernel=kernel, shape=shape)
    return r
