"""Runs of the conformance suite are reproducible and lose no case, whatever drives them.

The default hypothesis profile draws the same examples on every run; pytest-xdist spreads the
tests over processes and the results file still holds every case (they travel with the test
reports); `--explore` draws other examples from a seed that the reproduce line carries.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.kernel_calls import needs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SELECTION = ["conformance/test_specs.py", "conformance/test_pytorch_weight_only.py", "-k", "int_mm or int8pack_hyp",
             "--kernel", "torch.int_mm", "--kernel", "torch.weight_int8pack_mm"]


def _run(tmp_path, name: str, *extra: str) -> dict:
    out = tmp_path / f"{name}.json"
    env = {k: v for k, v in os.environ.items() if k != "QORACLE_HYPOTHESIS"}
    p = subprocess.run([sys.executable, "-m", "pytest", *SELECTION, "-q", "-p", "no:cacheprovider",
                        "--results", str(out), *extra], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=900)
    assert p.returncode in (0, 1), p.stdout[-2000:] + p.stderr[-2000:]
    return json.loads(out.read_text())


def _cases(data: dict) -> list[tuple]:
    return sorted((c["nodeid"], tuple(c["shape"]), c["status"], json.dumps(c.get("mismatch"))) for c in data["cases"])


def test_two_plain_runs_judge_the_same_cases(tmp_path) -> None:
    needs("torch", "torch._int_mm is the kernel this selection drives")
    a, b = _run(tmp_path, "a"), _run(tmp_path, "b")
    assert a["cases"] and _cases(a) == _cases(b)
    assert a["explore_seed"] is None


def test_xdist_loses_no_case(tmp_path) -> None:
    needs("torch", "torch._int_mm is the kernel this selection drives")
    pytest.importorskip("xdist", reason="pytest-xdist is in the dev extra")
    serial, spread = _run(tmp_path, "serial"), _run(tmp_path, "spread", "-n", "2")
    assert serial["cases"] and _cases(spread) == _cases(serial)
    assert spread["tests"] == serial["tests"]


def test_exploration_announces_its_seed_and_repeats_with_it(tmp_path) -> None:
    needs("torch", "torch._int_mm is the kernel this selection drives")
    first = _run(tmp_path, "first", "--explore")
    seed = first["explore_seed"]
    assert seed and all(f"--hypothesis-seed={seed}" in c["reproduce"] for c in first["cases"])
    again = _run(tmp_path, "again", "--explore", f"--hypothesis-seed={seed}")
    assert _cases(again) == _cases(first)
