"""Options and fixtures of the conformance suite: ISA caps, kernel selection, results file.

    pytest conformance --isa amx --kernel 'ggml*' --profile quick --results out/results.json

Every kernel call goes through a worker process started with the ISA cap's environment
(kernels/isa.py, kernels/worker.py), so a crash is one case's CRASHED and a cap is in force
before the kernel's library loads. Each judged case is recorded (kernel, ISA requested and
observed, convention, shape, verdict, metrics, reproduce command) and written to --results.
"""
from __future__ import annotations

import fnmatch
import json
import os
import shlex

import pytest

from conformance.known_defects import lookup
from kernels.isa import LEVELS, ORDER, host_has, knobs_for
from kernels.registry import kernels as all_kernels
from kernels.worker import Worker


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("qoracle")
    g.addoption("--isa", default="native", choices=sorted(LEVELS), help="cap kernels at this ISA level")
    g.addoption("--kernel", action="append", default=[], help="run only kernels matching these names or globs")
    g.addoption("--convention", "--format", dest="convention", action="append", default=[],
                help="run only these conventions/formats (names or globs)")
    g.addoption("--profile", default="quick", choices=("quick", "full"), help="quick: ~1 min on 2 cores")
    g.addoption("--results", default=None, help="write every judged case to this JSON file")
    g.addoption("--kernel-timeout", type=float, default=120.0, help="seconds before a kernel call is a hang")


def _matches(name: str, patterns: list[str]) -> bool:
    return not patterns or any(fnmatch.fnmatchcase(name, p) for p in patterns)


class Session:
    """What the whole run shares: the options, the worker, and the recorded cases."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.isa: str = config.getoption("isa")
        self.profile: str = config.getoption("profile")
        self.kernels: list[str] = config.getoption("kernel")
        self.conventions: list[str] = config.getoption("convention")
        self.cases: list[dict] = []
        self._worker: Worker | None = None

    def selected(self, kernel: str, convention: str | None = None) -> bool:
        return _matches(kernel, self.kernels) and (convention is None or _matches(convention, self.conventions))

    @property
    def worker(self) -> Worker:
        if self._worker is None:
            self._worker = Worker(knobs_for(self.isa), timeout=self.config.getoption("kernel_timeout"))
        return self._worker

    def reproduce(self, nodeid: str) -> str:
        return f"pytest {shlex.quote(nodeid)} --isa {self.isa} --profile {self.profile}"

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "kernel(name): the kernel adapter a test drives")
    for family in sorted({k.family for k in all_kernels()}):
        config.addinivalue_line("markers", f"{family}: kernels of the {family} family")
    for level in (*ORDER, "native"):
        config.addinivalue_line("markers", f"isa_{level}: run under --isa {level}")
    config._qoracle = Session(config)  # type: ignore[attr-defined]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Apply --kernel/--convention selection, family and ISA markers, the ISA skip, known defects."""
    s: Session = config._qoracle  # type: ignore[attr-defined]
    ok, why = host_has(s.isa) if s.isa != "native" else (True, "")
    keep, drop = [], []
    for item in items:
        m = item.get_closest_marker("kernel")
        name = m.args[0] if m else ""
        conv = item.callspec.params.get("convention") if hasattr(item, "callspec") else None
        if m and not s.selected(name, conv if isinstance(conv, str) else None):
            drop.append(item)
            continue
        keep.append(item)
        item.add_marker(getattr(pytest.mark, f"isa_{s.isa}"))
        if m:
            item.add_marker(getattr(pytest.mark, name.split(".", 1)[0]))
        if not ok:
            item.add_marker(pytest.mark.skip(reason=f"--isa {s.isa} cannot run here: {why}"))
        elif m and (d := lookup(name, s.isa, item.nodeid)):
            item.add_marker(pytest.mark.xfail(strict=True, reason=f"known defect: {d.why} ({d.reference})"))
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_sessionfinish(session: pytest.Session) -> None:
    s: Session = session.config._qoracle  # type: ignore[attr-defined]
    s.close()
    path = session.config.getoption("results")
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"isa_requested": s.isa, "profile": s.profile, "cases": s.cases}, f, indent=1)


@pytest.fixture(scope="session")
def qsession(request: pytest.FixtureRequest) -> Session:
    return request.config._qoracle  # type: ignore[attr-defined]


class Judge:
    """Records a case's verdict and turns it into the test's outcome.

    FAIL and CRASHED fail the test with the oracle's full message and the reproduce line;
    UNAVAILABLE skips it with the reason; every case, whatever its status, is recorded.
    """

    def __init__(self, session: Session, nodeid: str) -> None:
        self.session = session
        self.nodeid = nodeid

    def __call__(self, result, *, kernel: str, shape: tuple[int, ...] = (), observed_isa: str = "",
                 **extra: object) -> None:
        result.reproduce = self.session.reproduce(self.nodeid)
        self.session.cases.append({
            "nodeid": self.nodeid, "kernel": kernel, "isa_requested": self.session.isa,
            "isa_observed": observed_isa, "shape": list(shape), **extra, **result.to_dict(),
        })
        if result.status == "UNAVAILABLE":
            pytest.skip(f"{kernel} unavailable: {result.detail}")
        if not result.ok:
            pytest.fail(result.message(), pytrace=False)


@pytest.fixture
def judge(qsession: Session, request: pytest.FixtureRequest) -> Judge:
    return Judge(qsession, request.node.nodeid)
