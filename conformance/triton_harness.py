"""Test-process side of the Triton adapters: a worker whose environment picks the device.

TRITON_INTERPRET must be in the environment before triton is first imported in a process, and
the suite's shared worker may already have imported it (torchao's intmm does), so the Triton
tests run in a worker of their own: the session asks a shared worker once whether torch sees CUDA
(Session.triton_gpu, which the known defects' "cuda" trigger follows too), and the dedicated worker
starts with TRITON_INTERPRET=1 only when it does not. Availability, failures
and the call invariants are judged as every other kernel's (conformance/calls.py). No torch or
triton is imported here.
"""
from __future__ import annotations

from typing import Any

from conformance import calls
from kernels.worker import Worker

__all__ = ["worker", "ready", "call"]


def worker(qsession) -> Worker:
    """The level's Triton worker (created once, closed with the session's workers)."""
    env = {} if qsession.triton_gpu() else {"TRITON_INTERPRET": "1"}
    return qsession.named_worker("triton", env)  # --mutant routing included


def ready(qsession, judge, module: str, kernel: str, convention: str, shape=()) -> str:
    """Skip (recorded UNAVAILABLE) unless the adapter can run; return what runs it (device, mode)."""
    w = worker(qsession)
    calls.require_available(qsession, judge, kernel, module, convention, shape=shape, worker=w)
    ob = w.call(module, "observe")
    return ob.value["isa"] if ob.ok else "?"


def call(qsession, judge, module: str, func: str, *args: Any, kernel: str, judged_as: str, shape=(),
         **kwargs: Any) -> Any:
    """Run `module.func(*args, **kwargs)`; a crash, hang or raise is judged (under the convention
    `judged_as`) and ends the test, and so does a broken invariant."""
    w = worker(qsession)
    o = w.call(module, func, *args, **kwargs)
    if o.status == "error" and "CUDA" in o.detail:
        w.close(kill=True)  # a CUDA fault poisons the process's context: the next call starts a fresh worker
    what = f"{module}.{func}"
    if not o.ok:
        judge(calls.failure(o, judged_as, what, kernel, shape, qsession.isa), kernel=kernel, shape=shape)
    calls.invariants(qsession, judge, kernel, module, func, o, args, kwargs, judged_as, what, shape, worker=w)
    return o.value
