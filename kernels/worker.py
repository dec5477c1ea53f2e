"""Run kernel calls in a separate process, so a kernel that crashes, hangs or corrupts its heap
costs one case, not the run.

The parent keeps one worker process per environment (an ISA cap is environment set before the
kernel's library loads). A call names a function by module and attribute and passes numpy
arrays; the reply is an `Outcome`: ok with the value, or crashed (the signal or exit code and
the tail of stderr), timeout, or error (the exception text). After a crash or a timeout the
worker is replaced and the next call starts clean.

The frames between parent and worker are pickles of the project's own data over a private pipe
between two processes of this run; nothing read from a vendor's file is ever unpickled. The
worker's own stdout (where oneDNN prints `ONEDNN_VERBOSE` lines) goes to a file whose text comes
back with every outcome, as evidence of what ran.
"""
from __future__ import annotations

import importlib
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Outcome", "Worker"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_HEADER = struct.Struct("<Q")


@dataclass
class Outcome:
    """What one isolated call came to."""

    status: str  # "ok" | "crashed" | "timeout" | "error"
    value: Any = None
    detail: str = ""
    stdout: str = ""
    seconds: float = 0.0
    env: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)


def _write_frame(fd: int, obj: object) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


def _read_frame(fd: int, deadline: float | None = None) -> Any:
    (n,) = _HEADER.unpack(_read_exact(fd, _HEADER.size, deadline))
    return pickle.loads(_read_exact(fd, n, deadline))


class Worker:
    """A kernel-calling subprocess with a fixed environment, restarted after any crash."""

    def __init__(self, env: dict[str, str] | None = None, timeout: float = 120.0) -> None:
        self.env = dict(env or {})
        self.timeout = timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_path = ""
        self._err = None

    def _start(self) -> subprocess.Popen[bytes]:
        fd, self._log_path = tempfile.mkstemp(prefix="qoracle-worker-", suffix=".log")
        os.close(fd)
        env = {**os.environ, **self.env, "QORACLE_WORKER_LOG": self._log_path}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH", "")) if p)
        self._err = tempfile.TemporaryFile()  # a file, not a pipe: a chatty kernel cannot block on it
        self._proc = subprocess.Popen(
            [sys.executable, "-X", "faulthandler", "-m", "kernels.worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._err,
            env=env, cwd=ROOT,
        )
        return self._proc

    def call(self, module: str, func: str, *args: Any, timeout: float | None = None, **kwargs: Any) -> Outcome:
        """Call `module.func(*args, **kwargs)` in the worker and wait at most `timeout` seconds."""
        proc = self._proc if self._proc and self._proc.poll() is None else self._start()
        t0 = time.monotonic()
        deadline = t0 + (self.timeout if timeout is None else timeout)
        try:
            _write_frame(proc.stdin.fileno(), (module, func, args, kwargs))
            status, value, detail = _read_frame(proc.stdout.fileno(), deadline)
        except TimeoutError:
            self.close(kill=True)
            return self._outcome("timeout", None, f"no answer in {deadline - t0:.0f} s; worker killed", t0)
        except (EOFError, BrokenPipeError, OSError):
            proc.wait(timeout=30)
            rc = proc.returncode
            why = f"killed by signal {signal.Signals(-rc).name}" if rc and rc < 0 else f"exited with code {rc}"
            self._err.seek(0)
            err = self._err.read().decode("utf-8", "replace")[-2000:]
            self.close()
            return self._outcome("crashed", None, f"{why}; stderr tail: {err.strip()}", t0)
        return self._outcome(status, value, detail, t0)

    def _outcome(self, status: str, value: Any, detail: str, t0: float) -> Outcome:
        text = ""
        if self._log_path and os.path.exists(self._log_path):
            with open(self._log_path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            open(self._log_path, "w").close()
        return Outcome(status, value, detail, text, time.monotonic() - t0, dict(self.env))

    def close(self, kill: bool = False) -> None:
        """Stop the worker (kill it when it may be hung)."""
        if self._proc is None:
            return
        if kill or self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        for s in (self._proc.stdin, self._proc.stdout, self._err):
            if s:
                s.close()
        self._proc = None

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
        if self._log_path and os.path.exists(self._log_path):
            os.unlink(self._log_path)


def _serve() -> None:
    """Worker side: answer calls until the parent closes the pipe."""
    proto_in = sys.stdin.buffer.fileno()
    proto_out = os.dup(1)
    log = os.open(os.environ["QORACLE_WORKER_LOG"], os.O_WRONLY | os.O_APPEND)
    os.dup2(log, 1)  # what the kernels print goes to the log, not into the frames
    sys.stdout = open(1, "w", closefd=False)
    while True:
        try:
            module, func, args, kwargs = _read_frame(proto_in)
        except EOFError:
            return
        try:
            fn = getattr(importlib.import_module(module), func)
            reply = ("ok", fn(*args, **kwargs), "")
        except Exception as e:  # the kernel's own error is a result, not a worker failure
            reply = ("error", None, f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=5)}")
        sys.stdout.flush()
        _write_frame(proto_out, reply)


if __name__ == "__main__":
    _serve()
