"""`qoracle run` / `certify` as a user calls them: usage errors before anything runs, `--out`
relative to where the user stands, one session for every level (its log, results and progress), the verdict."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conformance.levels import level_of
from reports.run import progress, split_levels
from tests.kernel_calls import needs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _qoracle(*args: str, cwd: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "QORACLE_HYPOTHESIS"}
    return subprocess.run([sys.executable, "-m", "reports", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900)


def test_progress_sums_the_session_processes(tmp_path) -> None:
    assert progress(str(tmp_path)) == (0, 0, [])
    (tmp_path / "progress.json.gw0").write_text(json.dumps({"running": "a::t[isa-avx2]", "done": 3, "total": 10}))
    (tmp_path / "progress.json.gw1").write_text(json.dumps({"running": "b::u", "done": 4, "total": 10}))
    (tmp_path / "progress.json.gw2").write_text("{")  # being replaced: ignored
    done, total, running = progress(str(tmp_path))
    assert (done, total, sorted(running)) == (7, 10, ["a::t[isa-avx2]", "b::u"])


def test_a_multi_level_session_splits_into_one_run_per_level() -> None:
    levels = ["scalar", "avx2"]
    assert level_of("m.py::t[isa-avx2-x]", levels) == "avx2" and level_of("m.py::t", levels) == "scalar"
    data = {"profile": "quick", "cases": [{"isa_requested": "scalar", "status": "FAIL"},
                                           {"isa_requested": "avx2", "status": "BIT_EXACT"}],
            "tests": {"m.py::t[isa-scalar]": "failed", "m.py::t[isa-avx2]": "passed"},
            "failures": [{"nodeid": "m.py::t[isa-scalar]", "message": "FAIL"}]}
    runs = split_levels(data, levels, rc=1, seconds=1.0)
    assert [len(runs[lv]["cases"]) for lv in levels] == [1, 1]
    assert runs["scalar"]["pytest_exit_code"] == 1 and runs["avx2"]["pytest_exit_code"] == 0
    assert runs["avx2"]["outcomes"] == {"passed": 1}
    assert split_levels(data, levels, rc=3, seconds=1.0)["avx2"]["pytest_exit_code"] == 3  # a broken session


@pytest.mark.parametrize("args, needle", [
    (["run", "--kernel", "nonexistent*"], "no registered kernel matches"),
    (["run", "--isa", "sse9"], "unknown ISA level"),
    (["certify", "--kernel", "torch.int_mm", "--benchmarks", "missing.json"], "missing.json"),
])
def test_usage_errors_come_before_the_suite(tmp_path, args, needle) -> None:
    p = _qoracle(*args, "--out", "o", cwd=str(tmp_path))
    assert p.returncode == 2 and needle in p.stderr, p.stdout + p.stderr
    assert not (tmp_path / "o").exists()


def test_version() -> None:
    p = _qoracle("--version", cwd=ROOT)
    assert p.returncode == 0 and p.stdout.startswith("qoracle ")


def test_certify_from_elsewhere_writes_where_the_user_is(tmp_path) -> None:
    needs("torch", "torch._int_mm is the kernel certified here")
    p = _qoracle("certify", "--kernel", "torch.int_mm", "--isa", "native", "--out", "cert", cwd=str(tmp_path))
    out = tmp_path / "cert"
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    for name in ("certificate.json", "report.html", "summary.md", "junit.xml", "results.json", "log.txt"):
        assert (out / name).exists(), name
    cert = json.loads((out / "certificate.json").read_text())
    assert cert["summary"]["verdict"] == "PASSED" and cert["summary"]["counts"]
    assert "== --isa native: " in p.stdout and "== verdict: PASSED" in p.stdout
