"""The conformance suite kills every deliberately wrong kernel (kernels/mutants), and the selftest says so.

The battery test runs `qoracle selftest`'s machinery over every mutant (quick profile, one pytest
process per mutant restricted to its kernels, stopping after five failures, two at a time):
CI fails if one survives or if a run fails for a reason that is no check's verdict. It skips the
unmutated baseline run, since the same CI job runs the conformance suite itself. The mutants'
modules (some import torch) are loaded only in a worker process (tests/kernel_calls.py).
"""
from __future__ import annotations

import importlib
import importlib.util

import pytest

import kernels.mutants as mutants
from kernels.registry import kernels as registered
from reports import selftest
from tests.kernel_calls import run

HERE = "tests.test_selftest"


def has_callable(module: str, func: str) -> bool:
    """Worker side: whether `module` has a callable `func`."""
    return callable(getattr(importlib.import_module(module), func))


def test_battery_is_broad_and_documented() -> None:
    ms = mutants.mutants()
    assert len(ms) >= 20
    assert len({m.kernels[0].split(".")[0] for m in ms}) >= 5  # ggml, torch, onnxruntime, bestla, torchao
    known = {k.name: k.module for k in registered()}
    for m in ms:
        assert m.bug and m.mirrors and m.caught_by, m.name
        assert all(known.get(k) == m.target for k in m.kernels), f"{m.name}: {m.kernels} are not {m.target}'s"
        assert run(HERE, "has_callable", m.target, m.func), f"{m.target} has no {m.func}"


def test_unknown_mutant_is_a_one_line_error() -> None:
    with pytest.raises(ValueError, match="unknown mutant"):
        mutants.get("no.such_mutant")


def test_one_mutant_is_killed_by_the_check_it_names() -> None:
    if importlib.util.find_spec("llama_cpp") is None:  # found, not loaded: libggml runs in the suite's workers
        pytest.skip("libggml comes with llama-cpp-python")
    r = selftest.run_one("ggml.q4_nibbles_swapped")
    assert r.status == "KILLED", r
    assert r.caught_by == "conformance/test_ggml.py::test_quantize[q4_0]" and r.message.startswith("FAIL"), r


@pytest.mark.slow
def test_quick_profile_kills_every_mutant() -> None:
    runs = selftest.run_all([m.name for m in mutants.mutants()], "quick", jobs=2)
    bad = [f"{r.name}: {r.status} {r.caught_by} {r.message}" for r in runs if r.status in ("SURVIVED", "ERROR")]
    assert not bad, "\n".join(bad)
    assert any(r.status == "KILLED" for r in runs)
