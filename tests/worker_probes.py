"""Misbehaving 'kernels' for tests/test_worker.py: each fails the way real kernels have."""
import ctypes
import mmap
import os
import resource
import sys
import time

import numpy as np


def double(x: np.ndarray) -> np.ndarray:
    print("chatter on stdout, as ONEDNN_VERBOSE does")
    return x * 2


def segfault() -> None:
    ctypes.string_at(0)


def abort() -> None:
    os.abort()


def hang() -> None:
    time.sleep(3600)


def raise_error() -> None:
    raise RuntimeError("unsupported group size")


def getenv(name: str) -> str | None:
    return os.environ.get(name)


def close_fds_and_hang() -> None:
    """Closes every descriptor (the pipe to the parent among them), then keeps running."""
    os.closerange(0, 1024)
    time.sleep(3600)


def close_fds_and_return() -> int:
    os.closerange(0, 1024)
    return 1


def unpicklable():
    return lambda: None


def garble_pipe() -> None:
    """Writes a frame header promising bytes that are not a pickle into the pipe to the parent."""
    for fd in range(3, 64):
        try:
            if os.fstat(fd).st_mode & 0o170000 == 0o010000:  # a FIFO: stdin or the reply pipe
                os.write(fd, (8).to_bytes(8, "little") + b"garbage!")
        except OSError:
            pass
    time.sleep(3600)


def allocate(gib: float) -> int:
    """Touches `gib` GiB of ordinary (malloc'd) memory."""
    return int(np.ones(int(gib * 2**30), np.uint8).sum())


def allocate_shared(gib: float) -> None:
    """Touches `gib` GiB of shared anonymous memory, which RLIMIT_DATA does not count, then holds it."""
    m = mmap.mmap(-1, int(gib * 2**30))
    for i in range(0, len(m), mmap.PAGESIZE):
        m[i] = 1
    time.sleep(3600)


def chatter(mib: int, crash: bool = False) -> int:
    """Prints `mib` MiB to stdout and to stderr (then crashes, if asked)."""
    line = "x" * 1023 + "\n"
    block = line * 1024
    for _ in range(mib):
        sys.stdout.write(block)
        sys.stderr.write(block)
    sys.stdout.write("last line\n")
    if crash:
        segfault()
    return mib


def data_limit() -> int:
    """The worker's RLIMIT_DATA soft limit."""
    return resource.getrlimit(resource.RLIMIT_DATA)[0]


def available() -> dict:
    """An adapter's availability check whose library load hangs or crashes as QORACLE_PROBE_LOAD says."""
    how = os.environ.get("QORACLE_PROBE_LOAD", "")
    if how == "hang":
        time.sleep(3600)
    if how == "segfault":
        segfault()
    return {"ok": False, "reason": "probe library not installed"}


if os.environ.get("QORACLE_PROBE_IMPORT") == "segfault":  # a library that crashes as it is imported
    segfault()


def writes_its_input(x, rows: list) -> float:
    """A kernel that scribbles on what its caller passed (in place, as a torch.from_numpy alias would)."""
    x[0] = -1.0
    rows[1][0] = 7
    return float(x.sum())


def echo(x):
    return x


def loaded(name: str) -> bool:
    """Whether module `name` was imported before this call (a forked worker inherits its zygote's)."""
    return name in sys.modules


def first_pid() -> tuple[str, int]:
    """(the pid of the first process that asked this worker's fact, this process's pid)."""
    from kernels.worker import environment_fact

    return environment_fact("first-pid", lambda: {"pid": str(os.getpid())})["pid"], os.getpid()
