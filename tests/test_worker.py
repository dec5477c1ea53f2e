"""The isolating worker turns crashes, hangs, errors and every other misbehaviour of a kernel into
outcomes, and keeps going."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

import kernels.worker as worker_module
from kernels.worker import KEEP, MEMORY_ENV, ROOT, Worker, default_memory_limit

P = "tests.worker_probes"
GIB = 2**30


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


def test_a_plain_worker_runs_everything_itself(worker):
    """No level (no knobs in its environment): nothing is routed to an emulated CPU, and outcomes
    carry no emulation report."""
    from kernels.isa import knobs_for

    o = worker.call(P, "getenv", "QORACLE_EMULATED_CPU")
    assert o.ok and o.value is None and o.emulation == {} and worker.level is None
    assert Worker(knobs_for("scalar"), emulate="off").level == "scalar"
    with pytest.raises(ValueError, match="QORACLE_EMULATE"):
        Worker({"QORACLE_EMULATE": "sometimes"})


def test_kernel_exception_is_an_error_outcome(worker):
    o = worker.call(P, "raise_error")
    assert o.status == "error" and "unsupported group size" in o.detail


# --- descriptors and the pipe --------------------------------------------------------------------

@pytest.mark.parametrize("probe, status, reason", [
    ("close_fds_and_hang", "crashed", "closed its pipe to the parent and kept running"),
    ("close_fds_and_return", "crashed", "exited with code"),
    ("garble_pipe", "crashed", "no usable reply"),
    ("unpicklable", "error", "could not be sent back"),
])
def test_a_broken_pipe_or_reply_is_an_outcome_and_the_next_call_works(worker, probe, status, reason):
    o = worker.call(P, probe)
    assert o.status == status and reason in o.detail, o.detail
    assert worker.call(P, "getenv", "QORACLE_PROBE").value == "capped"


# --- memory ----------------------------------------------------------------------------------------

def test_default_memory_limit_is_half_the_machine_and_reaches_the_worker(monkeypatch):
    monkeypatch.delenv(MEMORY_ENV, raising=False)
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert default_memory_limit() == physical // 2
    monkeypatch.setenv(MEMORY_ENV, "3")
    with Worker(timeout=60) as w:
        assert w.memory_limit == 3 * GIB
        assert w.call(P, "data_limit").value == 3 * GIB


@pytest.fixture
def small_worker():
    with Worker({"OPENBLAS_NUM_THREADS": "1"}, timeout=120, memory_limit=1 * GIB) as w:
        yield w


def test_allocation_past_the_limit_is_crashed(small_worker):
    o = small_worker.call(P, "allocate", 2)
    assert o.status == "crashed" and "memory limit 1.0 GiB exceeded" in o.detail, o.detail
    assert small_worker.call(P, "allocate", 0.1).status == "ok"


def test_memory_the_rlimit_misses_is_caught_by_the_watchdog(small_worker):
    o = small_worker.call(P, "allocate_shared", 1.5)
    assert o.status == "crashed" and "memory limit 1.0 GiB exceeded (resident" in o.detail, o.detail
    assert small_worker.call(P, "allocate", 0.1).status == "ok"


# --- output ------------------------------------------------------------------------------------------

def test_printed_output_is_bounded(worker):
    o = worker.call(P, "chatter", 8)
    assert o.ok and len(o.stdout) < 2 * KEEP + 200
    assert "bytes dropped" in o.stdout and o.stdout.endswith("last line\n")
    assert worker.call(P, "double", np.ones(2)).stdout.startswith("chatter on stdout")


def test_stderr_tail_of_a_chatty_crash_is_bounded(worker):
    o = worker.call(P, "chatter", 8, crash=True)
    assert o.status == "crashed" and "SIGSEGV" in o.detail and len(o.detail) < 2500, o.detail[-300:]
    assert "Segmentation fault" in o.detail


# --- replacements ------------------------------------------------------------------------------------

def test_a_replacement_is_forked_with_the_preloaded_modules_and_serves_as_a_new_process(worker):
    """The first worker is a new process; after a crash the next is forked by the zygote, which has
    imported numpy already, and it answers, crashes and reports like any other worker."""
    assert not worker.call(P, "loaded", "ml_dtypes").value
    assert worker.call(P, "segfault").status == "crashed"
    assert worker.call(P, "loaded", "ml_dtypes").value
    again = worker.call(P, "abort")
    assert again.status == "crashed" and "SIGABRT" in again.detail, again.detail
    assert worker.call(P, "getenv", "QORACLE_PROBE").value == "capped"
    assert worker.call(P, "hang", timeout=1).status == "timeout"
    assert worker.call(P, "double", np.arange(3)).value.tolist() == [0, 2, 4]


def test_an_environment_fact_is_computed_once_per_worker(worker):
    first, pid = worker.call(P, "first_pid").value
    worker.restart()
    again, new_pid = worker.call(P, "first_pid").value
    assert (again, str(pid)) == (first, first) and new_pid != pid


def test_a_zygote_that_cannot_fork_leaves_new_processes(worker, monkeypatch):
    def broken(*_: object) -> None:
        raise OSError("no fork")

    monkeypatch.setattr(worker_module._Zygote, "fork", broken)
    assert worker.call(P, "segfault").status == "crashed"
    assert worker.call(P, "getenv", "QORACLE_PROBE").value == "capped"
    assert not worker.call(P, "loaded", "ml_dtypes").value


# --- files ---------------------------------------------------------------------------------------------

def test_no_files_are_left_after_crashes_timeouts_and_close(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    w = Worker(timeout=20)
    assert w.call(P, "getenv", "X").ok
    assert [p.name.startswith("qoracle-worker-") for p in tmp_path.iterdir()] == [True]
    w.call(P, "segfault")
    w.call(P, "hang", timeout=1)
    assert w.call(P, "getenv", "X").ok
    assert len(list(tmp_path.iterdir())) == 1
    w.close()
    assert list(tmp_path.iterdir()) == []


def test_a_worker_never_closed_is_cleaned_up_at_exit(tmp_path):
    code = ("from kernels.worker import Worker\n"
            "w = Worker(timeout=60)\n"
            "print(w.call('tests.worker_probes', 'getenv', 'TMPDIR').value)\n")
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == str(tmp_path), r.stderr
    assert list(tmp_path.iterdir()) == []


# --- loading a library ------------------------------------------------------------------------------------

@pytest.mark.parametrize("how, status, load_timeout", [("segfault", "crashed", 60), ("hang", "timeout", 10)])
def test_a_library_that_fails_to_load_is_a_load_failure(how, status, load_timeout):
    with Worker({"QORACLE_PROBE_LOAD": how}, timeout=120, load_timeout=load_timeout) as w:
        o = w.call(P, "available")
        assert o.status == status and o.load_failed, o
        if how == "hang":
            assert "no answer in 10 s" in o.detail
        after = w.call(P, "getenv", "QORACLE_PROBE_LOAD")
        assert after.value == how and not after.load_failed


def test_a_library_that_is_not_installed_is_no_load_failure():
    with Worker(timeout=60) as w:
        o = w.call(P, "available")
        assert o.ok and not o.load_failed and o.value["ok"] is False


def test_a_crash_while_importing_is_a_load_failure():
    with Worker({"QORACLE_PROBE_IMPORT": "segfault"}, timeout=60) as w:
        o = w.call(P, "getenv", "X")
        assert o.status == "crashed" and o.stage == "import" and o.load_failed, o
        after = w.call("os", "getpid")
        assert after.ok and after.stage == "call"


def test_a_library_crash_in_a_test_fails_that_test_and_the_next_call_works():
    from tests.kernel_calls import run

    with pytest.raises(pytest.fail.Exception, match="crashed: killed by signal SIGSEGV"):
        run(P, "segfault")
    assert run(P, "getenv", "QORACLE_PROBE") is None


def test_a_kernel_that_writes_its_inputs_is_caught():
    """The worker compares every array argument's bytes before and after the call, in the process
    where the library really shares their memory."""
    x = np.ones(4, np.float32)
    rows = [np.zeros(2, np.int8), np.zeros(2, np.int8)]
    with Worker() as w:
        out = w.call(P, "writes_its_input", x, rows)
        assert out.ok and out.inputs_written == ("arg 0", "arg 1[1]")
        clean = w.call(P, "echo", x)
        assert clean.ok and clean.inputs_written == ()
    assert x[0] == 1.0  # the caller's own array is a different copy: only the worker can see the write
