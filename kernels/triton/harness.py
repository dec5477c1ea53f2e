"""Test-process side of the Triton adapters: a worker whose environment picks the device.

TRITON_INTERPRET must be in the environment before triton is first imported in a process, and
the suite's shared worker may already have imported it (torchao's intmm does), so the Triton
tests run in a worker of their own: the shared worker is asked once whether torch sees CUDA, and
the dedicated worker starts with TRITON_INTERPRET=1 only when it does not. No torch or triton
is imported here.
"""
from __future__ import annotations

from typing import Any

from kernels.worker import Worker
from oracle.verdict import Result

__all__ = ["worker", "ready", "call"]


def worker(qsession) -> Worker:
    """The session's Triton worker (created once, closed when pytest ends)."""
    w = getattr(qsession, "_triton_worker", None)
    if w is None:
        o = qsession.worker.call("kernels.triton.harness", "cuda_available")
        cuda = bool(o.ok and o.value)
        w = qsession.new_worker({} if cuda else {"TRITON_INTERPRET": "1"})  # --mutant routing included
        qsession._triton_worker = w
        qsession.config.add_cleanup(w.close)
    return w


def cuda_available() -> bool:
    """Worker side: whether torch sees a CUDA device."""
    import torch

    return bool(torch.cuda.is_available())


def ready(qsession, judge, module: str, kernel: str, convention: str, shape=()) -> str:
    """Skip (recorded UNAVAILABLE) unless the adapter can run; return what runs it (device, mode)."""
    w = worker(qsession)
    av = w.call(module, "available")
    if not (av.ok and av.value["ok"]):
        why = av.value["reason"] if av.ok else f"{av.status}: {av.detail[:600]}"
        judge(Result("UNAVAILABLE", convention, kernel, detail=why), kernel=kernel, shape=shape)
    ob = w.call(module, "observe")
    return ob.value["isa"] if ob.ok else "?"


def call(qsession, judge, module: str, func: str, *args: Any, kernel: str, judged_as: str, shape=(),
         **kwargs: Any) -> Any:
    """Run `module.func(*args, **kwargs)`; a crash, hang or raise is judged (CRASHED / FAIL, under the
    convention `judged_as`) and ends the test."""
    w = worker(qsession)
    o = w.call(module, func, *args, **kwargs)
    if o.status == "error" and "CUDA" in o.detail:
        w.close(kill=True)  # a CUDA fault poisons the process's context: the next call starts a fresh worker
    if not o.ok:
        status = "CRASHED" if o.status in ("crashed", "timeout") else "FAIL"
        judge(Result(status, judged_as, f"{module}.{func}", detail=f"{o.status}: {o.detail[:1200]}"),
              kernel=kernel, shape=shape)
    return o.value
