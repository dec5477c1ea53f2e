"""The isolating worker turns crashes, hangs and errors into outcomes and keeps going."""
import numpy as np
import pytest

from kernels.worker import Worker

P = "tests.worker_probes"


@pytest.fixture
def worker():
    with Worker({"QORACLE_PROBE": "capped"}, timeout=20) as w:
        yield w


def test_value_and_stdout_come_back(worker):
    o = worker.call(P, "double", np.arange(4, dtype=np.int32))
    assert o.status == "ok"
    assert np.array_equal(o.value, np.arange(4, dtype=np.int32) * 2)
    assert "ONEDNN_VERBOSE" in o.stdout


def test_environment_reaches_the_worker(worker):
    assert worker.call(P, "getenv", "QORACLE_PROBE").value == "capped"


@pytest.mark.parametrize("probe, signal_name", [("segfault", "SIGSEGV"), ("abort", "SIGABRT")])
def test_crash_is_an_outcome_and_the_next_call_works(worker, probe, signal_name):
    o = worker.call(P, probe)
    assert o.status == "crashed" and signal_name in o.detail
    assert worker.call(P, "double", np.ones(2)).status == "ok"


def test_hang_times_out_and_the_next_call_works(worker):
    o = worker.call(P, "hang", timeout=1)
    assert o.status == "timeout"
    assert worker.call(P, "getenv", "QORACLE_PROBE").value == "capped"


def test_kernel_exception_is_an_error_outcome(worker):
    o = worker.call(P, "raise_error")
    assert o.status == "error" and "unsupported group size" in o.detail
