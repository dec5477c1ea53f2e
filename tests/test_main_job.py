"""`qoracle run` / `certify` as a user calls them: usage errors before anything runs, `--out`
relative to where the user stands, one log and results file per level, progress and the verdict."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from reports.run import _progress
from tests.kernel_calls import needs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _qoracle(*args: str, cwd: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "QORACLE_HYPOTHESIS"}
    return subprocess.run([sys.executable, "-m", "reports", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900)


def test_progress_reads_the_last_percentage(tmp_path) -> None:
    log = tmp_path / "log.txt"
    assert _progress(str(log)) is None
    log.write_bytes(b"...... [  7%]\n..x... [ 41%]\n...")
    assert _progress(str(log)) == 41


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
    for name in ("certificate.json", "report.html", "summary.md", "junit.xml", "results-native.json", "log-native.txt"):
        assert (out / name).exists(), name
    cert = json.loads((out / "certificate.json").read_text())
    assert cert["summary"]["verdict"] == "PASSED" and cert["summary"]["counts"]
    assert "level 1 of 1: --isa native done" in p.stdout and "== verdict: PASSED" in p.stdout
