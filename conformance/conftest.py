"""Options and fixtures of the conformance suite: ISA caps, kernel selection, results file.

    pytest conformance --isa amx --kernel 'ggml*' --profile quick --results out/results.json
    pytest conformance --isa scalar,avx2 --results out/results.json     # one session, every level

`--isa` takes one level, a comma-separated list or `all` (every level this host has). With more
than one level each conformance test is parametrized by level (ids end in `isa-LEVEL`): the cases
a test draws do not depend on the level, so each case has one row with a verdict per level, and
the ISA knobs reach only the worker that loads the library, one worker per level.
    pytest conformance --mutant ggml.q4_nibbles_swapped --results out/mutant.json   # must fail

Every kernel call goes through a worker process started with the ISA cap's environment
(kernels/isa.py, kernels/worker.py), so a crash is one case's CRASHED and a cap is in force
before the kernel's library loads. Each judged case is recorded (kernel, ISA requested and
observed, convention, shape, verdict, metrics, reproduce command) and written to --results, with every failed test's first message.

`--mutant NAME` runs the suite against a deliberately wrong kernel (kernels/mutants): worker
calls for the mutant's target adapter go to kernels.mutants.active instead, and the selection
defaults to the mutant's kernels. `qoracle selftest` uses it to prove the suite can fail.

Each judged case travels with its test's report (`user_properties`), so a run spread over
pytest-xdist workers loses none: the process that writes --results is the one that receives
every report. A case whose failure matches its registered known defect (conformance/known_defects.py)
raises KnownDefectFailure, the only exception its strict xfail accepts; any other failure of that
test is a FAIL.
"""
from __future__ import annotations

import fnmatch
import json
import os
import shlex
import warnings

import pytest

from conformance import levels
from conformance.known_defects import KnownDefectFailure, lookup, matches_signature
from conformance.levels import base_nodeid
import kernels.mutants as mutants
from kernels.isa import LEVELS, ORDER, host_has, knobs_for
from kernels.registry import kernels as all_kernels
from kernels.spec import worker_purpose
from kernels.worker import Worker

CASE_KEY = "qoracle_case"  # user_properties key of a recorded case


class SuspectResult(UserWarning):
    """A case outside the probable error tier but inside the rigorous bound (oracle/status.py)."""


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("qoracle")
    g.addoption("--isa", default="native",
                help="cap kernels at this ISA level; a comma-separated list or 'all' runs each level in one session "
                     f"(levels: {', '.join(sorted(LEVELS))})")
    g.addoption("--kernel", action="append", default=[], help="run only kernels matching these names or globs")
    g.addoption("--convention", "--format", dest="convention", action="append", default=[],
                help="run only these conventions/formats (names or globs)")
    g.addoption("--profile", default="quick", choices=("quick", "full"), help="quick: about 1 min a level on 2 cores (-n 2)")
    g.addoption("--results", default=None, help="write every judged case to this JSON file")
    g.addoption("--kernel-timeout", type=float, default=120.0, help="seconds before a kernel call is a hang")
    g.addoption("--mutant", default=None, help="run against this deliberately wrong kernel (kernels/mutants)")
    g.addoption("--progress-file", default=None, help="keep the running test and counts in this JSON file")


def parse_levels(spec: str) -> list[str]:
    """conformance.levels.parse, with an unknown level a usage error."""
    try:
        return levels.parse(spec)
    except ValueError as e:
        raise pytest.UsageError(f"--isa {spec!r}: {e}") from None


def _matches(name: str, patterns: list[str]) -> bool:
    return not patterns or any(fnmatch.fnmatchcase(name, p) for p in patterns)


_SESSION: list["Session"] = []  # the run's Session, for hooks that are not handed the config


class MutantWorker:
    """A worker whose calls to the mutant's target adapter are served by kernels.mutants.active."""

    def __init__(self, worker: Worker, mutant: mutants.Mutant) -> None:
        self.worker = worker
        self.mutant = mutant

    def call(self, module: str, func: str, *args, **kwargs):
        if module == self.mutant.target:
            module = "kernels.mutants.active"
        return self.worker.call(module, func, *args, **kwargs)

    def restart(self) -> None:
        self.worker.restart()

    def close(self, kill: bool = False) -> None:
        self.worker.close(kill)


class Session:
    """What the whole run shares: the options, the worker, and the recorded cases."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.levels: list[str] = parse_levels(config.getoption("isa"))
        self.isa: str = ",".join(self.levels)
        self.profile: str = config.getoption("profile")
        self.kernels: list[str] = config.getoption("kernel")
        self.conventions: list[str] = config.getoption("convention")
        self.cases: list[dict] = []
        self._triton_gpu: bool | None = None
        self.failures: list[dict] = []
        self.outcomes: dict[str, int] = {}
        self.tests: dict[str, str] = {}  # nodeid -> outcome (the selftest counts kills per test)
        self.total = 0  # tests collected
        self.repeated: set[str] = set()  # tests whose first kernel call was made twice (calls.py)
        self.workers: dict[tuple[str, str], Worker | MutantWorker] = {}  # (level, purpose) -> worker
        self.explore: bool = config.getoption("explore")
        name = config.getoption("mutant")
        self.mutant: mutants.Mutant | None = mutants.get(name) if name else None
        if self.mutant and not self.kernels:
            self.kernels = list(self.mutant.kernels)

    def selected(self, kernel: str, convention: str | None = None) -> bool:
        return _matches(kernel, self.kernels) and (convention is None or _matches(convention, self.conventions))

    def worker(self, level: str, purpose: str = "", extra_env: dict[str, str] | None = None) -> Worker | MutantWorker:
        """The worker capped at `level` (one per level and purpose, started on first use): the Triton
        harness asks for its own, with TRITON_INTERPRET where there is no GPU."""
        key = (level, purpose)
        if key not in self.workers:
            env = {**knobs_for(level), **(extra_env or {})}
            if self.mutant:
                env[mutants.ENV] = self.mutant.name
            w = Worker(env, timeout=self.config.getoption("kernel_timeout"))
            self.workers[key] = MutantWorker(w, self.mutant) if self.mutant else w
        return self.workers[key]

    def triton_gpu(self) -> bool:
        """Whether the Triton kernels run on a GPU in this session: where torch sees CUDA (asked once, of a
        worker). The Triton worker's environment and the known defects of the native path both follow
        this one answer."""
        if self._triton_gpu is None:
            o = self.worker(self.levels[0]).call("kernels.triton.runtime", "cuda_available")
            self._triton_gpu = bool(o.ok and o.value)
        return self._triton_gpu

    def on_gpu(self, kernel: str) -> bool:
        """Whether `kernel` runs on a GPU in this session (a Triton kernel where `triton_gpu`)."""
        return worker_purpose(kernel) == "triton" and self.triton_gpu()

    def retire(self, level: str, kernel: str) -> None:
        """Restart the worker that ran `kernel` at `level`: a kernel that lied may have corrupted its process,
        so the next case starts in a fresh one. The level's other workers never ran it and keep their
        imports (a Triton worker's triton, torchao and interpreted kernels cost seconds to load again)."""
        key = (level, worker_purpose(kernel))
        if key in self.workers:
            self.workers[key].restart()

    def reproduce(self, nodeid: str, level: str) -> str:
        extra = f" --mutant {self.mutant.name}" if self.mutant else ""
        if self.config.getoption("explore"):
            extra += f" --explore --hypothesis-seed={self.config.getoption('hypothesis_seed')}"
        return f"pytest {shlex.quote(base_nodeid(nodeid))} --isa {level} --profile {self.profile}{extra}"

    def close(self) -> None:
        for w in self.workers.values():
            w.close()
        self.workers.clear()


class LevelSession:
    """What a test sees of the session: its own ISA level and that level's worker, the rest shared."""

    def __init__(self, session: Session, level: str) -> None:
        self.session = session
        self.isa = level

    def __getattr__(self, name: str):
        return getattr(self.session, name)

    @property
    def worker(self) -> Worker | MutantWorker:
        return self.session.worker(self.isa)

    def named_worker(self, purpose: str, extra_env: dict[str, str]) -> Worker | MutantWorker:
        return self.session.worker(self.isa, purpose, extra_env)


def _check_options(s: "Session") -> None:
    """Refuse, before anything runs, a level this host lacks and a --kernel pattern that matches nothing:
    a run that judged nothing must not look like a pass."""
    for level in s.levels:
        ok, why = host_has(level)
        if not ok:
            raise pytest.UsageError(f"--isa {level} cannot run on this host: {why}; nothing would be judged")
    names = [k.name for k in all_kernels()]
    for p in s.kernels:
        if not any(fnmatch.fnmatchcase(n, p) for n in names):
            raise pytest.UsageError(f"--kernel {p!r} matches no registered kernel; known: {', '.join(names)}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "kernel(name): the kernel adapter a test drives")
    for family in sorted({k.family for k in all_kernels()}):
        config.addinivalue_line("markers", f"{family}: kernels of the {family} family")
    for level in (*ORDER, "native"):
        config.addinivalue_line("markers", f"isa_{level}: run under --isa {level}")
    config._qoracle = Session(config)  # type: ignore[attr-defined]
    _SESSION[:] = [config._qoracle]  # type: ignore[attr-defined]
    _check_options(config._qoracle)  # type: ignore[attr-defined]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """With several levels, run each conformance test once per level, the level as its last parameter."""
    s: Session = metafunc.config._qoracle  # type: ignore[attr-defined]
    if len(s.levels) > 1 and "qoracle_level" in metafunc.fixturenames:
        metafunc.parametrize("qoracle_level", s.levels, ids=[levels.param_id(lv) for lv in s.levels])


def item_level(item: pytest.Item, levels: list[str]) -> str:
    """The ISA level an item runs at: its level parameter, or the session's one level."""
    params = getattr(item, "callspec", None)
    if params is not None and "qoracle_level" in params.params:
        return params.params["qoracle_level"]
    return levels[0]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Apply --kernel/--convention selection, family and ISA markers, known defects."""
    s: Session = config._qoracle  # type: ignore[attr-defined]
    keep, drop = [], []
    for item in items:
        m = item.get_closest_marker("kernel")
        name = m.args[0] if m else ""
        conv = item.callspec.params.get("convention") if hasattr(item, "callspec") else None
        if m and not s.selected(name, conv if isinstance(conv, str) else None):
            drop.append(item)
            continue
        keep.append(item)
        level = item_level(item, s.levels)
        item.add_marker(getattr(pytest.mark, f"isa_{level}"))
        if len(s.levels) > 1:  # under `--dist loadgroup` a test's levels run in one process, one after another
            item.add_marker(pytest.mark.xdist_group(base_nodeid(item.nodeid)))
        if m:
            item.add_marker(getattr(pytest.mark, name.split(".", 1)[0]))
        if m and (d := lookup(name, level, base_nodeid(item.nodeid), gpu=s.on_gpu(name))):
            item.add_marker(pytest.mark.xfail(strict=not d.by_chance, raises=KnownDefectFailure,
                                              reason=f"known defect: {d.why} ({d.reference})"))
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
    s.total = len(items)


def _first_message(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = getattr(crash, "message", None) or str(report.longrepr)
    return text[:4000]


def _outcome(report: pytest.TestReport) -> str:
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    return report.outcome


def pytest_runtest_logstart(nodeid: str, location) -> None:
    """Keep --progress-file current: the test running now and how many are done (qoracle run reads it)."""
    s = _SESSION[0] if _SESSION else None
    path = s.config.getoption("progress_file") if s else None
    if path and not s.config.pluginmanager.hasplugin("dsession"):  # an xdist controller runs no test
        worker = getattr(s.config, "workerinput", {}).get("workerid")
        path = f"{path}.{worker}" if worker else path
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"running": nodeid, "done": sum(1 for o in s.tests.values() if " in " not in o),
                       "total": s.total, "pid": os.getpid()}, f)
        os.replace(tmp, path)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Count outcomes, keep each failure's message (the selftest reads which check caught a mutant)
    and each test's outcome, and collect the cases recorded during the call (once each: a
    hypothesis test that fails replays its failing example, which records the same case again)."""
    s = _SESSION[0]
    if report.when == "call" or report.outcome != "passed":
        outcome = _outcome(report)
        s.outcomes[outcome] = s.outcomes.get(outcome, 0) + 1
        s.tests[report.nodeid] = outcome if report.when == "call" else f"{outcome} in {report.when}"
    if report.failed:
        s.failures.append({"nodeid": report.nodeid, "when": report.when, "message": _first_message(report)})
    if report.when == "call":
        seen: set[str] = set()
        for key, value in report.user_properties:
            if key == CASE_KEY and value not in seen:
                seen.add(value)
                s.cases.append({**json.loads(value), "test_outcome": _outcome(report),
                                "test_seconds": round(report.duration, 4)})


def pytest_sessionfinish(session: pytest.Session) -> None:
    s: Session = session.config._qoracle  # type: ignore[attr-defined]
    s.close()
    path = session.config.getoption("results")
    if path and not hasattr(session.config, "workerinput"):  # an xdist worker's reports go to the controller
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"isa_requested": s.isa, "levels": s.levels, "profile": s.profile, "mutant": s.mutant.name if s.mutant else None,
                       "explore_seed": session.config.getoption("hypothesis_seed") if s.explore else None,
                       "outcomes": s.outcomes, "tests": s.tests, "failures": s.failures, "cases": s.cases},
                      f, indent=1)


@pytest.fixture
def qoracle_level(request: pytest.FixtureRequest) -> str:
    """The test's ISA level (parametrized by pytest_generate_tests when the session has several)."""
    return request.config._qoracle.levels[0]  # type: ignore[attr-defined]


@pytest.fixture
def qsession(request: pytest.FixtureRequest, qoracle_level: str) -> LevelSession:
    return LevelSession(request.config._qoracle, qoracle_level)  # type: ignore[attr-defined]


class Judge:
    """Records a case's verdict and turns it into the test's outcome.

    FAIL, CRASHED and LOAD_FAILED fail the test with the oracle's full message and the reproduce
    line, and retire the worker; a failure that matches the test's registered known defect raises
    KnownDefectFailure instead (its strict xfail). SUSPECT (outside the probable tier only) is a
    warning: recorded, shown, and the case goes on. UNAVAILABLE (not installed, no such hardware)
    and UNSUPPORTED (a clean refusal of an input outside the kernel's declared space) skip it
    with the reason. Every case, whatever its status, is recorded.
    """

    def __init__(self, session: Session, item: pytest.Item) -> None:
        self.session = session
        self.item = item
        self.nodeid = item.nodeid
        self.level = item_level(item, session.levels)

    def __call__(self, result, *, kernel: str, shape: tuple[int, ...] = (), observed_isa: str = "",
                 **extra: object) -> None:
        result.reproduce = self.session.reproduce(self.nodeid, self.level)
        defect = lookup(kernel, self.level, base_nodeid(self.nodeid), gpu=self.session.on_gpu(kernel))
        message = result.message()
        known = defect if defect and not result.ok and matches_signature(defect, message) else None
        case = {"nodeid": base_nodeid(self.nodeid), "kernel": kernel, "isa_requested": self.level,
                "isa_observed": observed_isa, "shape": list(shape), **extra, **result.to_dict(),
                "known_defect": f"{known.why} ({known.reference})" if known else None}
        self.item.user_properties.append((CASE_KEY, json.dumps(case, default=str)))
        if result.status in ("UNAVAILABLE", "UNSUPPORTED"):
            pytest.skip(f"{kernel} {result.status.lower()}: {result.detail}")
        if result.status == "SUSPECT":
            warnings.warn(SuspectResult(message), stacklevel=2)
            return
        if not result.ok:
            # a kernel that lied may also have corrupted its process's heap: the next case starts
            # in a fresh worker, so the damage is charged to this case and not the next one. A
            # registered defect that answers wrongly (FAIL) keeps the worker: its every case would
            # otherwise pay a library load; one whose entry also registers crashes may be corrupting
            # memory, and is retired like any other
            if not (known and result.status == "FAIL" and "CRASHED" not in known.signature):
                self.session.retire(self.level, kernel)
            if known:
                raise KnownDefectFailure(f"{message}\n  known defect: {known.why} ({known.reference})")
            pytest.fail(message, pytrace=False)


@pytest.fixture
def judge(qsession: Session, request: pytest.FixtureRequest) -> Judge:
    return Judge(qsession, request.node)
