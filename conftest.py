"""Root pytest configuration shared by tests/ (self-tests) and conformance/ (the product suite).

Being the rootdir conftest, this file also puts the checkout first on sys.path, so `kernels`
is this project's package even where PyPI's unrelated `kernels` distribution is installed.
"""
from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.abspath(__file__))
if sys.path[0] != ROOT:
    sys.path.insert(0, ROOT)

from hypothesis import HealthCheck, Phase, settings  # noqa: E402

# CI (and anyone who sets QORACLE_HYPOTHESIS=ci) gets a derandomized, reproducible run. It does
# not shrink: a conformance failure is reported with the example that found it, because
# shrinking would call a kernel that just failed (in a fresh worker each time) hundreds of times.
settings.register_profile(
    "ci", derandomize=True, deadline=None, max_examples=60, print_blob=True,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev", deadline=None, max_examples=100, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("QORACLE_HYPOTHESIS", "ci" if os.environ.get("CI") else "dev"))
