"""Root pytest configuration shared by tests/ (self-tests) and conformance/ (the product suite).

Being the rootdir conftest, this file also puts the checkout first on sys.path, so `kernels`
is this project's package even where PyPI's unrelated `kernels` distribution is installed.

Hypothesis runs are reproducible by default: the `default` profile is derandomized (the same
examples on every run and machine), reads and writes no example database (a saved failure would
change the next run's cases) and never shrinks (a failing kernel would be called again hundreds
of times, each in a fresh worker, for minutes before the failure is reported). `--explore` (or
QORACLE_HYPOTHESIS=explore) draws fresh random examples from a seed that is printed and goes into
every reproduce line (`--hypothesis-seed=N`), still without shrinking.
"""
from __future__ import annotations

import os
import random
import sys

ROOT = os.path.dirname(os.path.abspath(__file__))
if sys.path[0] != ROOT:
    sys.path.insert(0, ROOT)

import pytest  # noqa: E402
from hypothesis import HealthCheck, Phase, settings  # noqa: E402

PROFILES = ("default", "explore")
_COMMON = dict(deadline=None, print_blob=True, database=None, phases=(Phase.explicit, Phase.generate),
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
settings.register_profile("default", derandomize=True, max_examples=60, **_COMMON)
settings.register_profile("explore", derandomize=False, max_examples=200, **_COMMON)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("qoracle").addoption(
        "--explore", action="store_true", default=os.environ.get("QORACLE_HYPOTHESIS") == "explore",
        help="random hypothesis examples from a printed seed, instead of the fixed, derandomized set")


def pytest_configure(config: pytest.Config) -> None:
    """Load the profile; in an exploration run, fix and announce the seed so the run can be repeated."""
    explore = config.getoption("explore")
    settings.load_profile("explore" if explore else "default")
    if explore:
        from hypothesis import core

        seed = config.getoption("hypothesis_seed", None)
        if seed is None:
            seed = str(random.SystemRandom().randrange(2**32))
            config.option.hypothesis_seed = seed
        core.global_force_seed = int(seed) if str(seed).isdigit() else seed


def pytest_report_header(config: pytest.Config) -> str:
    if config.getoption("explore"):
        return f"qoracle: exploration run, hypothesis seed {config.getoption('hypothesis_seed')}"
    return "qoracle: fixed case set (derandomized hypothesis profile)"

