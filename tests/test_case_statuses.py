"""How the conformance layer turns what a kernel did into a status, with fake workers and judges.

A library that crashes, hangs or raises while loading is LOAD_FAILED (it fails the run), one that
is not installed UNAVAILABLE; a clean refusal is UNSUPPORTED outside the kernel's declared space
and FAIL inside it; a failure matching its registered known defect raises the one exception the
strict xfail accepts, any other failure of the same test is an ordinary FAIL.
"""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from _pytest.outcomes import Failed, Skipped

from conformance import calls
from conformance import conftest as cc
from conformance.known_defects import KnownDefect, KnownDefectFailure
from kernels.registry import KernelInfo, Space
from kernels.worker import Outcome
from oracle.verdict import Result


class FakeWorker:
    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome

    def call(self, module: str, func: str, *args, **kwargs) -> Outcome:
        return self.outcome


def _recording_judge():
    seen: list[Result] = []
    return seen, lambda result, **kw: seen.append(result)


@pytest.mark.parametrize("outcome, status", [
    (Outcome("crashed", detail="killed by signal SIGSEGV"), "LOAD_FAILED"),
    (Outcome("timeout", detail="no answer in 60 s"), "LOAD_FAILED"),
    (Outcome("ok", {"ok": False, "reason": "installed, but x does not import", "load_failed": True}), "LOAD_FAILED"),
    (Outcome("ok", {"ok": False, "reason": "x is not installed"}), "UNAVAILABLE"),
])
def test_loading_outcomes(outcome: Outcome, status: str) -> None:
    seen, judge = _recording_judge()
    calls.require_available(SimpleNamespace(worker=FakeWorker(outcome)), judge, "k.x", "m", "conv")
    assert [r.status for r in seen] == [status]


def test_an_available_kernel_is_not_judged() -> None:
    seen, judge = _recording_judge()
    calls.require_available(SimpleNamespace(worker=FakeWorker(Outcome("ok", {"ok": True}))), judge, "k.x", "m", "c")
    assert seen == []


def test_refusal_inside_and_outside_the_declared_space(monkeypatch) -> None:
    info = KernelInfo("k.x", "pkg", "op", "m", space=Space(k_multiple=4, source="the op's docs"))
    monkeypatch.setattr(calls, "kernel_info", lambda name: info)
    refusal = Outcome("error", detail="RuntimeError: not supported\nTraceback ...")
    outside = calls.failure(refusal, "conv", "op", "k.x", (1, 6, 8))
    assert outside.status == "UNSUPPORTED" and "K = 6 is not a multiple of 4" in outside.detail
    assert "RuntimeError: not supported" in outside.detail and "the op's docs" in outside.detail
    inside = calls.failure(refusal, "conv", "op", "k.x", (1, 8, 8))
    assert inside.status == "FAIL" and "inside its declared space: RuntimeError: not supported" in inside.detail
    crash = calls.failure(Outcome("crashed", detail="killed by signal SIGSEGV"), "conv", "op", "k.x", (1, 6, 8))
    assert crash.status == "CRASHED"


def test_space_limits_of_one_isa_path() -> None:
    s = Space(k_multiple=4, when=("amx_int8",))
    assert s.outside((1, 6, 8), frozenset({"avx2"})) == ""
    assert "K = 6" in s.outside((1, 6, 8), frozenset({"avx2", "amx_int8"}))


def test_details_are_scrubbed_of_machine_paths() -> None:
    text = f"File \"{calls._ROOT}/kernels/x.py\", line 3"
    assert calls._ROOT not in calls.scrub(text) and "<checkout>/kernels/x.py" in calls.scrub(text)


def _judge(monkeypatch, defect: KnownDefect | None):
    session = SimpleNamespace(isa="native", levels=["native"], reproduce=lambda nodeid, level: f"pytest {nodeid}",
                              retire=lambda level, kernel: None, on_gpu=lambda kernel: False)
    item = SimpleNamespace(nodeid="conformance/test_x.py::t", user_properties=[])
    monkeypatch.setattr(cc, "lookup", lambda kernel, isa, nodeid, gpu: defect)
    return cc.Judge(session, item), item


DEFECT = KnownDefect("k.x", "conformance/test_x.py::t", "conv", "upstream ref", "why",
                     evidence=(("a host", "seen"),), signature=r"^CRASHED\b")


def test_the_registered_failure_is_the_known_defect(monkeypatch) -> None:
    judge, item = _judge(monkeypatch, DEFECT)
    with pytest.raises(KnownDefectFailure, match="upstream ref"):
        judge(Result("CRASHED", "conv", "op", detail="killed by signal SIGSEGV"), kernel="k.x")
    case = json.loads(item.user_properties[0][1])
    assert case["status"] == "CRASHED" and "upstream ref" in case["known_defect"]


def test_another_failure_of_a_registered_test_is_a_fail(monkeypatch) -> None:
    judge, item = _judge(monkeypatch, DEFECT)
    with pytest.raises(Failed):
        judge(Result("FAIL", "conv", "op", detail="first bad element (0, 1)"), kernel="k.x")
    assert json.loads(item.user_properties[0][1])["known_defect"] is None


@pytest.mark.parametrize("status", ["UNAVAILABLE", "UNSUPPORTED"])
def test_not_judged_statuses_skip_and_are_recorded(monkeypatch, status: str) -> None:
    judge, item = _judge(monkeypatch, None)
    with pytest.raises(Skipped, match=status.lower()):
        judge(Result(status, "conv", "op", detail="why"), kernel="k.x")
    assert json.loads(item.user_properties[0][1])["status"] == status


@pytest.mark.parametrize("status", ["LOAD_FAILED", "FAIL", "CRASHED"])
def test_failing_statuses_fail(monkeypatch, status: str) -> None:
    judge, _ = _judge(monkeypatch, None)
    with pytest.raises(Failed, match=status):
        judge(Result(status, "conv", "op", detail="why"), kernel="k.x")


def test_suspect_is_a_recorded_warning(monkeypatch) -> None:
    judge, item = _judge(monkeypatch, None)
    with pytest.warns(cc.SuspectResult, match="SUSPECT"):
        judge(Result("SUSPECT", "conv", "op", detail="outside the probable tier"), kernel="k.x")
    assert json.loads(item.user_properties[0][1])["status"] == "SUSPECT"


def test_a_failure_retires_only_the_worker_that_ran_the_kernel() -> None:
    """A lying kernel may have corrupted its own process, not the level's other workers: a BesTLA crash keeps
    the Triton worker (and its loaded kernels), a Triton failure keeps the session's worker."""
    restarted: list[tuple[str, str]] = []
    workers = {key: SimpleNamespace(restart=lambda key=key: restarted.append(key))
               for key in (("avx2", ""), ("avx2", "triton"), ("scalar", ""), ("scalar", "triton"))}
    session = SimpleNamespace(workers=workers)
    cc.Session.retire(session, "avx2", "bestla.igemm_s8s8s32")
    cc.Session.retire(session, "scalar", "triton.w8a8")
    assert restarted == [("avx2", ""), ("scalar", "triton")]
