"""The generic conformance module: every kernel spec x case family x layout x ISA level.

Each kernel that declares a spec beside its adapter (kernels/spec.py) is judged here without a
test of its own: the case families of its semantics' signature (conformance/families.py), each
caller layout of each 2-D argument (kernels/layouts.py; one the API does not accept is recorded
UNSUPPORTED with the spec's source), and the invariants of every call, each its own named FAIL:
- inputs unchanged, and a repeated call returns the same bytes (conformance/calls.py);
- threads: the same bytes with 1 and N threads, for a kernel that takes a thread count;
- guard bytes: nothing written outside the output view, for a kernel that takes an output buffer;
- dtype and shape: the oracle's comparison fails any other (oracle/verdict.py).
A spec that declares its order modelled must match the oracle's prediction bit for bit.
A kernel with no ISA knob is UNAVAILABLE at a level its library cannot be held to (kernels.isa.mode),
and a spec that names a worker (Triton's) is called, observed and checked in that worker.

The oracle's expectation for a case is computed once per process and reused by every level of
the run (the session keeps a test's levels in one process, conformance/conftest.py).
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from conformance import calls, families, triton_harness
from kernels.layouts import LAYOUTS, View, as_numpy, guard_intact, make
from kernels.pytorch import evidence
from kernels.spec import VIEW_ROLES, KernelSpec, layouts_for, specs
from oracle.gemm import semantics
from oracle.verdict import Result, compare_bounded, compare_exact

_EXPECTED: dict[tuple, semantics.Expected] = {}  # (semantics, operands' digest, what the model depends on) -> Expected


def _signature(spec: KernelSpec) -> str:
    return semantics.get(spec.semantics).signature


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    profile = metafunc.config.getoption("profile")
    for s in specs():
        unknown = set(s.outside) - set(families.FAMILIES[_signature(s)])
        if unknown:
            raise ValueError(f"{s.kernel}: 'outside' names {sorted(unknown)}, not families of {_signature(s)}")
    if "case" in metafunc.fixturenames:
        params = [pytest.param(s, c, id=f"{s.kernel}-{c.family}-{c.id}", marks=pytest.mark.kernel(s.kernel))
                  for s in specs() for c in families.cases(_signature(s), families.spaces(s, profile), profile)]
        metafunc.parametrize("spec, case", params)
    if "layout" in metafunc.fixturenames:
        params = [pytest.param(s, sp, i, lay, id=f"{s.kernel}-{sp.dtype + '-' if sp.dtype else ''}{s.args[i]}-{lay}",
                               marks=pytest.mark.kernel(s.kernel))
                  for s in specs() for sp in families.spaces(s, "quick")[:1] for i in range(len(s.args))
                  if s.operand(s.args[i])[0] in VIEW_ROLES for lay in layouts_for(i) if lay != "dense"]
        metafunc.parametrize("spec, space, position, layout", params)
    if "threads_spec" in metafunc.fixturenames:
        metafunc.parametrize("threads_spec", [pytest.param(s, id=s.kernel, marks=pytest.mark.kernel(s.kernel))
                                              for s in specs() if s.threads])


def _expected(spec: KernelSpec, case: families.Case, observed: dict) -> semantics.Expected:
    """The oracle's expectation, once per case (the model may depend on the ISA path observed)."""
    sem = semantics.get(spec.semantics)
    key = (spec.semantics, case.digest, sem.key(observed))
    if key not in _EXPECTED:
        _EXPECTED[key] = sem.expected(case.operands, observed)
    return _EXPECTED[key]


def _verdict(spec: KernelSpec, exp: semantics.Expected, actual, what: str) -> Result:
    if exp.bound is None:
        return compare_exact(exp.exact, actual, convention=spec.semantics, what=what)
    return compare_bounded(exp.exact, exp.bound, actual, out_dtype=exp.out_dtype, convention=spec.semantics,
                           what=what, predicted=exp.predicted,
                           require_prediction=spec.modelled and exp.predicted is not None)


def _worker(qsession, spec: KernelSpec):
    """The worker the spec names: Triton kernels run in the harness's, whose environment picks the interpreter."""
    return triton_harness.worker(qsession) if spec.worker == "triton" else qsession.worker


def _call(qsession, judge, spec: KernelSpec, case: families.Case, args: list, what: str, **kwargs):
    """Call the adapter; the value (judged CRASHED / FAIL / UNSUPPORTED on a non-answer) and what ran."""
    w = _worker(qsession, spec)
    calls.require_available(qsession, judge, spec.kernel, spec.module, spec.semantics, *spec.check_args,
                            shape=case.shape, worker=w)
    run = evidence.run(w, spec.module, spec.call, *args, **kwargs)
    if not run.outcome.ok:
        judge(calls.failure(run.outcome, spec.semantics, what, spec.kernel, case.shape, qsession.isa),
              kernel=spec.kernel, shape=case.shape)
    calls.invariants(qsession, judge, spec.kernel, spec.module, spec.call, run.outcome, args, kwargs, spec.semantics,
                     what, case.shape, worker=w)
    return run.outcome.value, run


def _judge_case(qsession, judge, spec: KernelSpec, case: families.Case, args: list, what: str) -> None:
    out = None
    if spec.out_buffer:
        m, _, n = case.shape
        out = make(np.zeros((m, n), np.int32), "batch_row")  # a guarded row before and after the view
    value, run = _call(qsession, judge, spec, case, args, what, **({"out": out} if out is not None else {}))
    if out is not None:
        written = View(np.asarray(value), out.offset, out.shape, out.strides, out.layout)
        if not guard_intact(written, out.storage):
            judge(Result("FAIL", spec.semantics, what, detail="invariant guard-bytes: the call wrote outside its "
                         "output view (row pitch padding or the storage around it)"),
                  kernel=spec.kernel, shape=case.shape, observed_isa=run.isa())
        value = as_numpy(written).copy()
    judge(_verdict(spec, _expected(spec, case, run.facts), value, what), kernel=spec.kernel, shape=case.shape,
          observed_isa=run.isa(), family=case.family)


def test_spec_case(qsession, judge, spec: KernelSpec, case: families.Case) -> None:
    """One case of one family, every argument dense (and into a guarded output buffer where the API takes one)."""
    if case.family in spec.outside:
        judge(Result("UNSUPPORTED", spec.semantics, f"{spec.kernel} {case.family} {case.id}",
                     detail=f"the {case.family} family is outside the API's contract: {spec.outside[case.family]}"),
              kernel=spec.kernel, shape=case.shape)
    _judge_case(qsession, judge, spec, case, spec.arguments(case.operands), f"{spec.kernel} {case.family} {case.id}")


def test_spec_layout(qsession, judge, spec: KernelSpec, space: families.Space, position: int, layout: str) -> None:
    """One argument in one caller layout, the others dense: the kernel must take the view as it is."""
    case = families.layout_case(_signature(spec), space, layout)
    arg = spec.args[position]
    what = f"{spec.kernel} {arg} as {layout} ({LAYOUTS[layout]})"
    if not spec.accepts(arg, layout):
        judge(Result("UNSUPPORTED", spec.semantics, what,
                     detail=f"the API does not accept {arg} as {layout} ({spec.source or 'its spec'})"),
              kernel=spec.kernel, shape=case.shape)
    _judge_case(qsession, judge, spec, case, spec.arguments(case.operands, {position: layout}), what)


def test_spec_threads(qsession, judge, threads_spec: KernelSpec) -> None:
    """The same bytes with 1 thread and with every core: a thread split must not change the arithmetic
    (a kernel that splits K across threads sums in another order)."""
    spec = threads_spec
    case = families.largest_random(spec)
    n = max(2, os.cpu_count() or 2)
    what = f"{spec.kernel} {case.id} with 1 and {n} threads"
    one, run = _call(qsession, judge, spec, case, spec.arguments(case.operands), what, threads=1)
    many, _ = _call(qsession, judge, spec, case, spec.arguments(case.operands), what, threads=n)
    if not calls.same_bytes(one, many):
        diff = int(np.sum(np.asarray(one).view(np.uint8) != np.asarray(many).view(np.uint8)))
        judge(Result("FAIL", spec.semantics, what, detail=f"invariant threads: {n} threads gave other bytes than 1 "
                     f"({diff} bytes differ)"), kernel=spec.kernel, shape=case.shape, observed_isa=run.isa())
    judge(_verdict(spec, _expected(spec, case, run.facts), many, what), kernel=spec.kernel, shape=case.shape,
          observed_isa=run.isa(), family=case.family)
