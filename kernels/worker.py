"""Run kernel calls in a separate process, so a kernel that crashes, hangs or corrupts its heap
costs one case, not the run.

The parent keeps one worker process per environment (an ISA cap is environment set before the
kernel's library loads). A call names a function by module and attribute and passes numpy
arrays; the reply is an `Outcome`: ok with the value, or crashed (the signal or exit code and
the tail of stderr, or the memory limit it ran into), timeout, or error (the exception text).
After a crash or a timeout the worker is replaced and the next call starts clean. Whatever the
kernel does (closing its file descriptors, printing without end, allocating without end,
answering with garbage), `call` returns an Outcome and never raises.

Loading a kernel's library is a call like any other: `call(module, "available")` (or
`available_*` / `*_available`) runs under the shorter `load_timeout`, and an outcome whose
`load_failed` is true means the library crashed or hung while loading, which is not the same as
"not installed" (an ok outcome whose value says so).

Each worker is limited to `memory_limit` bytes of private writable memory (RLIMIT_DATA, set by
the worker itself, plus a resident-size watchdog in the parent for memory the rlimit does not
count). RLIMIT_AS is not used: torch, onnxruntime and Triton reserve far more address space than
they touch.

The frames between parent and worker are pickles of the project's own data over a private pipe
between two processes of this run; nothing read from a vendor's file is ever unpickled. The
worker's own stdout (where oneDNN prints `ONEDNN_VERBOSE` lines) goes to a file whose text comes
back with every outcome, as evidence of what ran; at most `KEEP` bytes from each end of it are
kept. The files live in a folder of the worker process's own, inside the worker's folder (which
also keeps `environment_fact`'s answers across restarts), removed when the process is replaced
and the worker closed, or at the latest when the parent exits.

A replacement is forked, not started: the first time a worker must be replaced, a zygote
process with the same environment imports what every worker would import again (numpy, ml_dtypes
and torch where installed) and from then on forks each new worker, so retiring a worker after a
crash, or after a call that may have corrupted its heap, costs milliseconds instead of a torch
import (seconds; more for a CUDA build). The zygote runs no kernel and starts no thread pool, so
a fork of it is as clean as a new process; a forked worker is its own process group, killed and
reaped through the zygote, and a zygote that cannot fork falls back to starting processes.

A worker at an ISA level (`level=`, or the level whose knobs its environment sets) sends the
calls of a kernel that `kernels.isa.mode` says runs emulated there to a second worker of its own
whose process is `qemu-x86_64 -cpu <model> python -m kernels.worker` (kernels/emulation.py). That
process first reports its cpuid, and serves no kernel unless the cpuid lacks every feature
above the level (an availability check then answers "not available" with the reason); each
outcome it gives carries that report (`Outcome.emulation`). A library that stops with SIGILL
while loading there was built for a newer CPU than the level: its availability check answers
"not available", saying so (a SIGILL in a kernel call stays a crash). Its timeouts are
`emulation.SLOWDOWN` times longer, its environment is the same (the level's knobs name the same
level), and its memory is watched by resident size only (qemu-user ignores the guest's
RLIMIT_DATA).
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import os
import pickle
import resource
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Outcome", "Worker", "default_memory_limit", "environment_fact", "is_load_check", "KEEP", "LOAD_TIMEOUT", "MEMORY_ENV"]
_ADAPTERS = "kernels.mutants.active"  # the module a mutant run calls instead of its target adapter
_PROBE = "kernels.emulation"  # the module whose probe() reports an emulated process's cpuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_HEADER = struct.Struct("<Q")
KEEP = 64 * 1024  # bytes kept from each end of what a worker prints during one call
LOAD_TIMEOUT = 60.0  # seconds an availability check (loading the library) may take
MEMORY_ENV = "QORACLE_WORKER_MEMORY_GB"  # the per-worker memory limit in GiB; 0 turns it off
_LIMIT_ENV = "QORACLE_WORKER_MEMORY_BYTES"  # parent -> worker
_POLL = 0.25  # seconds between resident-size checks while a call runs
_GRACE = 10.0  # seconds a worker that closed its pipe gets to exit by itself
_IMPORTED = "imported"  # the frame a worker sends once the called module has loaded
_ZYGOTE_ENV = "QORACLE_ZYGOTE_FD"  # parent -> zygote: its end of their socket
PRELOAD = ("numpy", "ml_dtypes", "torch")  # what a zygote imports once for every worker it forks
FACTS_ENV = "QORACLE_WORKER_FACTS"  # parent -> worker: the folder of `environment_fact`'s answers
_ALLOC_FAILED = ("allocate memory", "bad_alloc", "out of memory")


def default_memory_limit() -> int:
    """Bytes one worker may use: `QORACLE_WORKER_MEMORY_GB` if set, else half the physical memory,
    so a runaway kernel fails its own case long before the OOM killer picks a process (perhaps the
    parent), while the largest case here (well under 1 GiB) and the libraries have ample room."""
    if os.environ.get(MEMORY_ENV):
        return int(float(os.environ[MEMORY_ENV]) * 2**30)
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2


def is_load_check(func: str) -> bool:
    """Whether `func` is an adapter's availability check, the call that loads its library."""
    return func == "available" or func.startswith("available_") or func.endswith("_available")


def environment_fact(name: str, compute: Callable[[], dict[str, str]]) -> dict[str, str]:
    """`compute()`, asked once per worker rather than once per process: a fact that depends only on
    the worker's environment (which ISA a library's child process reports under the level's cap)
    and costs seconds would otherwise be paid again after every restart. Kept as JSON in the
    worker's own folder; outside a worker, or where the file cannot be read, computed afresh."""
    folder = os.environ.get(FACTS_ENV)
    path = os.path.join(folder, f"{name}.json") if folder else ""
    if path:
        try:
            with open(path) as f:
                return json.load(f)
        except (OSError, ValueError):
            pass
    value = compute()
    if path:
        try:
            with open(f"{path}.{os.getpid()}", "w") as f:
                json.dump(value, f)
            os.replace(f"{path}.{os.getpid()}", path)
        except OSError:
            pass
    return value


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


@dataclass
class Outcome:
    """What one isolated call came to."""

    status: str  # "ok" | "crashed" | "timeout" | "error"
    value: Any = None
    detail: str = ""
    stdout: str = ""
    seconds: float = 0.0
    env: dict[str, str] = field(default_factory=dict)
    call: str = ""  # "module.func"
    stage: str = "call"  # "import": it ended before the module finished importing
    inputs_written: tuple[str, ...] = ()  # arguments whose bytes the call changed ("arg 0", "kw x", "arg 2[1]")
    emulation: dict[str, Any] = field(default_factory=dict)  # served on an emulated CPU: its model and cpuid

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def load_failed(self) -> bool:
        """The library crashed or hung while loading (importing the module, or its availability
        check): the kernel is installed but unusable, unlike an ok check answering not installed."""
        loading = self.stage == "import" or is_load_check(self.call.rpartition(".")[2])
        return self.status in ("crashed", "timeout") and loading


class _OverMemory(Exception):
    """The worker's resident size passed its limit (seen by the parent's watchdog)."""


def _read_exact(fd: int, n: int, deadline: float | None, tick: Callable[[], None] | None = None) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        if deadline is not None:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                if select.select([fd], [], [], min(left, _POLL))[0]:
                    break
                if tick:
                    tick()
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)


def _write_frame(fd: int, obj: object, deadline: float | None = None) -> None:
    """Send one frame; with a deadline the fd is non-blocking, so a worker that stopped reading
    cannot hold the parent past it."""
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            left = deadline - time.monotonic() if deadline is not None else 0.0
            if left <= 0 or not select.select([], [fd], [], left)[1]:
                raise TimeoutError from None


def _read_frame(fd: int, deadline: float | None = None, tick: Callable[[], None] | None = None) -> Any:
    (n,) = _HEADER.unpack(_read_exact(fd, _HEADER.size, deadline, tick))
    return pickle.loads(_read_exact(fd, n, deadline, tick))


def _bounded_text(path: str, keep: int = KEEP) -> str:
    """The first and last `keep` bytes of a file, with the size of what was dropped between them;
    the file is emptied, so a kernel printing without end costs disk for one call, not parent memory."""
    try:
        with open(path, "rb+") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(0)
            if size <= 2 * keep:
                data = f.read()
            else:
                head = f.read(keep)
                f.seek(size - keep)
                data = head + f"\n[... {size - 2 * keep} bytes dropped ...]\n".encode() + f.read(keep)
            f.truncate(0)
    except OSError:
        return ""
    return data.decode("utf-8", "replace")


def _resident(pid: int) -> int:
    """The process's resident size in bytes (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _wait(pid: int, seconds: float, reap: bool) -> tuple[bool, int | None]:
    """Whether child `pid` exits within `seconds`, and its return code as Popen gives it (None where it
    is already gone). Without `reap` it stays a zombie: its pid (and so its process group) stays
    reserved until we have killed what it left behind. The parent asks it of its own children, the
    zygote of the workers it forked."""
    end = time.monotonic() + seconds
    while True:
        try:
            r = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | (0 if reap else os.WNOWAIT))
        except ChildProcessError:
            return True, None
        if r is not None:
            return True, -r.si_status if r.si_code in (os.CLD_KILLED, os.CLD_DUMPED) else r.si_status
        if time.monotonic() >= end:
            return False, None
        time.sleep(0.02)


def _kill_group(proc: "subprocess.Popen[bytes] | _Forked") -> None:
    """SIGKILL the worker and anything it started (its own session), unless already reaped."""
    if proc.returncode is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass


def _reap(proc: "subprocess.Popen[bytes] | _Forked", workdir: str) -> None:
    """Kill and reap a worker and remove its directory: by `close`, or at exit for one never closed."""
    _kill_group(proc)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    for s in (proc.stdin, proc.stdout):
        if s:
            s.close()
    shutil.rmtree(workdir, ignore_errors=True)


def _has_exited(proc: "subprocess.Popen[bytes] | _Forked", wait_s: float) -> bool:
    return proc.exited(wait_s) if isinstance(proc, _Forked) else _wait(proc.pid, wait_s, reap=False)[0]


class _Zygote:
    """The parent's end of a zygote (see the module docstring): forks workers and waits for them."""

    def __init__(self, env: dict[str, str]) -> None:
        """Its stderr is dropped: a zygote that fails costs only the speed of replacements (the worker
        then starts processes), and each forked worker writes its own stderr file."""
        self._sock, theirs = socket.socketpair()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-X", "faulthandler", "-m", "kernels.worker", "--zygote"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env={**env, _ZYGOTE_ENV: str(theirs.fileno())}, cwd=ROOT, start_new_session=True,
                pass_fds=(theirs.fileno(),))
        except OSError:
            self._sock.close()
            raise
        finally:
            theirs.close()
        self._close = weakref.finalize(self, _stop_zygote, proc, self._sock)

    def _ask(self, request: tuple, fds: list[int] | None = None, timeout: float = LOAD_TIMEOUT) -> Any:
        """One request and its reply; the fds travel with the byte that opens every request."""
        socket.send_fds(self._sock, [b"Z"], fds or [])
        _write_frame(self._sock.fileno(), request)
        return _read_frame(self._sock.fileno(), time.monotonic() + timeout)

    def fork(self, log: str, err: str) -> "_Forked":
        """A new worker writing what it prints to `log` and its stderr to `err`."""
        files = [os.open(path, os.O_WRONLY | os.O_APPEND) for path in (log, err)]
        to_child, to_parent = os.pipe(), os.pipe()
        ends = [to_child[0], to_parent[1], *files]
        try:
            pid = self._ask(("fork",), ends)
        except BaseException:
            os.close(to_child[1])
            os.close(to_parent[0])
            raise
        finally:
            for fd in ends:
                os.close(fd)
        return _Forked(self, pid, open(to_child[1], "wb", buffering=0), open(to_parent[0], "rb", buffering=0))

    def wait(self, pid: int, seconds: float, reap: bool) -> tuple[bool, int | None]:
        """(exited, return code as Popen gives it) of a forked worker within `seconds`; reaping frees its
        pid. A zygote that is gone took its children's statuses with it: (True, None)."""
        try:
            return self._ask(("wait", pid, seconds, reap), timeout=seconds + LOAD_TIMEOUT)
        except (OSError, EOFError, TimeoutError):
            return True, None

    def close(self) -> None:
        self._close()


def _stop_zygote(proc: subprocess.Popen[bytes], sock: socket.socket) -> None:
    sock.close()
    _kill_group(proc)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass


class _Forked:
    """A worker forked by a zygote, with the part of Popen's interface the Worker uses."""

    def __init__(self, zygote: _Zygote, pid: int, stdin: Any, stdout: Any) -> None:
        self.zygote, self.pid, self.stdin, self.stdout = zygote, pid, stdin, stdout
        self.returncode: int | None = None

    def wait(self, timeout: float | None = None) -> int | None:
        exited, rc = self.zygote.wait(self.pid, 3600.0 if timeout is None else timeout, True)
        if not exited:
            raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or 0.0)
        self.returncode = -signal.SIGKILL if rc is None else rc
        return rc

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                self.wait(0.0)
            except subprocess.TimeoutExpired:
                pass
        return self.returncode

    def exited(self, wait_s: float) -> bool:
        """Whether it exits within `wait_s`, not reaped (its process group stays reserved)."""
        return self.zygote.wait(self.pid, wait_s, False)[0]


class Worker:
    """A kernel-calling subprocess with a fixed environment, restarted after any crash."""

    def __init__(self, env: dict[str, str] | None = None, timeout: float = 120.0,
                 memory_limit: int | None = None, load_timeout: float = LOAD_TIMEOUT, *,
                 level: str | None = None, emulate: str | None = None, emulated: bool = False) -> None:
        """`memory_limit` in bytes (None: `default_memory_limit()`, 0: none); `load_timeout` bounds
        availability checks (see `is_load_check`) unless a call passes its own timeout.

        `level`: the ISA level (None: the level whose knobs `env` sets, if any); `emulate`: off |
        on | all (None: QORACLE_EMULATE); `emulated`: this worker's own process runs on the
        level's emulated CPU (otherwise it hands kernels that run emulated to one that does)."""
        from kernels import emulation, isa

        self.env = dict(env or {})
        self.timeout = timeout
        self.load_timeout = load_timeout
        self.memory_limit = default_memory_limit() if memory_limit is None else memory_limit
        self.level = level if level is not None else isa.level_of(self.env)
        self.emulate = emulation.setting({**os.environ, **self.env}) if emulate is None else emulate
        self.emulated = emulated
        if emulated and self.level not in emulation.MODELS:
            raise ValueError(f"level {self.level!r} has no emulated CPU; emulated: {', '.join(emulation.MODELS)}")
        self.cpu_seen: dict[str, Any] = {}  # emulated: what the process's probe reported
        self._refused = ""  # emulated: why the process does not stand for the level
        self._routes: dict[str, bool] = {}  # module -> whether its calls go to the emulated worker
        self._unloadable: dict[str, Outcome] = {}  # emulated: module -> its SIGILL-while-loading answer
        self._emulator: Worker | None = None
        self._proc: subprocess.Popen[bytes] | _Forked | None = None
        self._zygote: _Zygote | None | bool = None  # False: it could not fork
        self._dir = ""  # this process's files, inside _root
        self._root = ""  # the worker's folder, kept across restarts: the process folders and `FACTS_ENV`'s
        self._root_cleanup: weakref.finalize | None = None
        self._cleanup: weakref.finalize | None = None

    def _start(self) -> "subprocess.Popen[bytes] | _Forked":
        first = not self._root  # replacements (the worker's folder exists) are forked by the zygote
        if first:
            self._root = tempfile.mkdtemp(prefix="qoracle-worker-")
            self._root_cleanup = weakref.finalize(self, shutil.rmtree, self._root, True)
            os.mkdir(os.path.join(self._root, "facts"))
        self._dir = tempfile.mkdtemp(prefix="process-", dir=self._root)
        log, err = os.path.join(self._dir, "stdout.log"), os.path.join(self._dir, "stderr.log")
        for path in (log, err):
            open(path, "wb").close()
        env = {**os.environ, **self.env, _LIMIT_ENV: str(self.memory_limit), FACTS_ENV: os.path.join(self._root, "facts")}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH", "")) if p)
        self._proc = None if first or self.emulated else self._fork(env, log, err)
        if self._proc is None:
            self._proc = self._spawn({**env, "QORACLE_WORKER_LOG": log}, err)
            os.set_blocking(self._proc.stdin.fileno(), False)
        self._cleanup = weakref.finalize(self, _reap, self._proc, self._dir)
        return self._proc

    def _spawn(self, env: dict[str, str], err: str) -> subprocess.Popen[bytes]:
        """A new worker process (the first one, an emulated one, or where no zygote forks)."""
        prefix: list[str] = []
        if self.emulated:
            from kernels import emulation

            prefix = emulation.command(self.level)
            env[emulation.EMULATED_ENV] = emulation.MODELS[self.level].model
        try:
            with open(err, "ab") as err_file:  # a file, not a pipe: a chatty kernel cannot block on it
                return subprocess.Popen(
                    [*prefix, sys.executable, "-X", "faulthandler", "-m", "kernels.worker"],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err_file,
                    env=env, cwd=ROOT, start_new_session=True, preexec_fn=_no_core_files if prefix else None,
                )
        except OSError:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise

    def _fork(self, env: dict[str, str], log: str, err: str) -> "_Forked | None":
        """A replacement forked by this worker's zygote (started on the first replacement); None where
        the zygote cannot serve (it is then not asked again)."""
        if self._zygote is False:
            return None
        try:
            if self._zygote is None:
                self._zygote = _Zygote(env)
            proc = self._zygote.fork(log, err)
        except (OSError, EOFError, TimeoutError, pickle.UnpicklingError):
            if self._zygote:
                self._zygote.close()
            self._zygote = False
            return None
        os.set_blocking(proc.stdin.fileno(), False)
        return proc

    def call(self, module: str, func: str, *args: Any, timeout: float | None = None, **kwargs: Any) -> Outcome:
        """Call `module.func(*args, **kwargs)` in the worker and wait at most `timeout` seconds
        (default: `timeout`, or the shorter `load_timeout` for an availability check). The calls of
        a kernel that runs emulated at this worker's level go to its emulated worker (`emulates`)."""
        if self.emulates(module):
            from kernels.emulation import SLOWDOWN

            return self._emulator_worker().call(module, func, *args, timeout=timeout and timeout * SLOWDOWN, **kwargs)
        if not self.emulated:
            return self._call(module, func, args, kwargs, timeout)
        if is_load_check(func) and module in self._unloadable:
            return self._unloadable[module]
        starting = self._proc is None or self._proc.poll() is not None
        if starting and (module, func) != (_PROBE, "probe") and (why := self._refused or self._check_cpu()):
            return self._refusal(module, func, why)
        out = self._call(module, func, args, kwargs, timeout)
        if is_load_check(func) and (unloadable := _built_for_newer_cpu(out, self.level)) is not out:
            self._unloadable[module] = out = unloadable  # the same build fails the same way: answered from here on
        return out

    def _call(self, module: str, func: str, args: tuple, kwargs: dict, timeout: float | None) -> Outcome:
        if timeout is None:
            timeout = min(self.timeout, self.load_timeout) if is_load_check(func) else self.timeout
        t0 = time.monotonic()
        deadline = t0 + timeout
        stage, proc = "import", None

        written: tuple[str, ...] = ()

        def done(status: str, value: Any, detail: str, replace: bool) -> Outcome:
            out = Outcome(status, value, detail, self._take_stdout(), time.monotonic() - t0, dict(self.env),
                          f"{module}.{func}", stage, written, dict(self.cpu_seen))
            if replace:
                self._stop()
            return out

        try:
            if self._proc is not None and self._proc.poll() is not None:
                self._stop()  # it died between calls (a thread the kernel left running)
            proc = self._proc or self._start()
            _write_frame(proc.stdin.fileno(), (module, func, args, kwargs), deadline)
            reply = self._read(proc, deadline)
            if reply == _IMPORTED:
                stage = "call"
                reply = self._read(proc, deadline)
            status, value, detail, written = reply
        except TimeoutError:
            return done("timeout", None, f"no answer in {timeout:.0f} s; worker killed", True)
        except _OverMemory as e:
            return done("crashed", None, f"memory limit {_gib(self.memory_limit)} exceeded ({e}); worker killed", True)
        except (EOFError, OSError) as e:
            return done("crashed", None, self._death(proc, deadline, e), True)
        except Exception as e:  # a garbled frame (the kernel wrote into the pipe) or arguments that do not pickle
            return done("crashed", None, f"no usable reply ({type(e).__name__}: {e}); worker killed", True)
        return done(status, value, detail, status == "crashed")

    def emulates(self, module: str) -> bool:
        """Whether the kernels of adapter `module` run on the emulated CPU at this worker's level
        (kernels.isa.mode; a mutant run is routed as the adapter it replaces)."""
        if self.emulated or self.level is None or self.emulate == "off":
            return False
        if module not in self._routes:
            from kernels import isa, mutants
            from kernels.registry import kernels

            target = module
            if module == _ADAPTERS and self.env.get(mutants.ENV):
                target = mutants.get(self.env[mutants.ENV]).target
            self._routes[module] = any(isa.mode(k, self.level, emulate=self.emulate, probe=False).how == "emulated"
                                       for k in kernels() if k.module == target)
        return self._routes[module]

    def _emulator_worker(self) -> "Worker":
        """The worker on the level's emulated CPU (started on its first call)."""
        if self._emulator is None:
            from kernels import emulation

            self._emulator = Worker(self.env, self.timeout * emulation.SLOWDOWN, self.memory_limit,
                                    self.load_timeout * emulation.SLOWDOWN, level=self.level, emulate="off",
                                    emulated=True)
        return self._emulator

    def _refusal(self, module: str, func: str, why: str) -> Outcome:
        """The answer of an emulated worker whose CPU does not stand for its level: an availability
        check says "not available" and why; any other call is an error saying why."""
        load = is_load_check(func)
        return Outcome("ok" if load else "error", {"ok": False, "reason": why} if load else None, "" if load else why,
                       env=dict(self.env), call=f"{module}.{func}", stage="import", emulation=dict(self.cpu_seen))

    def _check_cpu(self) -> str:
        """Start the emulated process and read its cpuid: why it does not stand for the level ("" if it does)."""
        from kernels import emulation

        out = self.call(_PROBE, "probe", timeout=self.load_timeout)
        if not out.ok:
            self._refused = f"python did not start on the emulated CPU: {out.status}: {out.detail[:400]}"
        else:
            self.cpu_seen = {"cpu": emulation.MODELS[self.level].model, "level": self.level,
                             "qemu": (q.version_text if (q := emulation.qemu()) else ""), **out.value}
            self._refused = emulation.unserved(self.level, out.value)
        if self._refused:
            self._stop()
        return self._refused

    def _read(self, proc: subprocess.Popen[bytes], deadline: float) -> Any:
        def watch() -> None:
            rss = _resident(proc.pid)
            if self.memory_limit and rss > self.memory_limit:
                raise _OverMemory(f"resident {_gib(rss)}")
        return _read_frame(proc.stdout.fileno(), deadline, watch)

    def _death(self, proc: subprocess.Popen[bytes] | None, deadline: float, exc: BaseException) -> str:
        """Why the pipe broke: the exit code or signal and the stderr tail, or that the worker closed
        its end and went on running (then it is killed)."""
        if proc is None:
            return f"the worker did not start: {type(exc).__name__}: {exc}"
        if not _has_exited(proc, max(0.0, min(_GRACE, deadline - time.monotonic()))):
            return "the worker closed its pipe to the parent and kept running; worker killed"
        _kill_group(proc)  # anything it started; the exited worker itself keeps its exit status
        rc = proc.wait()
        why = ("exited (status unknown)" if rc is None else
               f"killed by signal {signal.Signals(-rc).name}" if rc < 0 else f"exited with code {rc}")
        err = _bounded_text(os.path.join(self._dir, "stderr.log"), keep=4096)[-2000:]
        return f"{why}; stderr tail: {err.strip()}"

    def _take_stdout(self) -> str:
        """What the worker printed since the last call (bounded), and stderr emptied beside it."""
        if not self._dir:
            return ""
        err = os.path.join(self._dir, "stderr.log")
        if os.path.exists(err) and os.path.getsize(err) > 2 * KEEP:
            _bounded_text(err)
        return _bounded_text(os.path.join(self._dir, "stdout.log"))

    def restart(self) -> None:
        """Replace this worker's processes (its emulated one's too) at the next call: a kernel that lied
        may have corrupted them. The replacements come from the zygote, not a new import of everything."""
        self._stop()
        if self._emulator is not None:
            self._emulator._stop()

    def close(self, kill: bool = False) -> None:
        """Stop the worker (always by SIGKILL to its process group) and remove its files; `kill`
        is kept for callers that say so. The emulated worker, if any, is stopped with it."""
        self._stop()
        if self._zygote:
            self._zygote.close()
        self._zygote = None
        if self._root_cleanup is not None:
            self._root_cleanup()
        self._root, self._root_cleanup = "", None
        if self._emulator is not None:
            self._emulator.close(kill)

    def _stop(self) -> None:
        """Stop this worker's own process (replaced on the next call)."""
        if self._cleanup is not None:
            self._cleanup()
        self._cleanup, self._proc, self._dir = None, None, ""

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _no_core_files() -> None:
    """qemu-user writes a guest's core dump into its working directory (the checkout) itself."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _built_for_newer_cpu(out: Outcome, level: str | None) -> Outcome:
    """An availability check that died of SIGILL on the emulated CPU: the library was built for
    more than `level`, so it is not available there (the crash stays in `detail`)."""
    if out.status != "crashed" or "SIGILL" not in out.detail:
        return out
    cpu = out.emulation.get("cpu", "the emulated CPU").split(",")[0]
    reason = (f"the library stopped with SIGILL while loading on {cpu}: this build uses instructions above "
              f"{level}, so it cannot be judged at {level}")
    return Outcome("ok", {"ok": False, "reason": reason}, out.detail, out.stdout, out.seconds, out.env, out.call,
                   out.stage, out.inputs_written, out.emulation)


def _limit_memory() -> int:
    """Cap this worker's private writable memory at what the parent asked (0: no cap)."""
    limit = int(os.environ.get(_LIMIT_ENV) or 0)
    if limit:
        _, hard = resource.getrlimit(resource.RLIMIT_DATA)
        resource.setrlimit(resource.RLIMIT_DATA, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    return limit


def _out_of_memory(e: BaseException) -> bool:
    return isinstance(e, MemoryError) or any(s in str(e).lower() for s in _ALLOC_FAILED)


def _fingerprints(args: tuple, kwargs: dict) -> dict[str, bytes]:
    """A digest of every numpy array among the arguments (also inside lists and tuples), by name: a
    kernel must not write into what its caller passed, and the worker holds the very arrays the
    adapter hands to the library (torch.from_numpy and friends share their memory)."""
    import hashlib

    import numpy as np

    out: dict[str, bytes] = {}

    def visit(name: str, v: Any) -> None:
        if isinstance(v, np.ndarray):
            out[name] = hashlib.blake2b(v.tobytes(), digest_size=16).digest()
        elif isinstance(v, (list, tuple)):
            for i, x in enumerate(v):
                visit(f"{name}[{i}]", x)

    for i, a in enumerate(args):
        visit(f"arg {i}", a)
    for k, a in kwargs.items():
        visit(f"kw {k}", a)
    return out


def _serve(proto_in: int, proto_out: int, log: int) -> None:
    """Worker side: answer calls on `proto_in` / `proto_out` until the parent closes the pipe."""
    limit = _limit_memory()
    os.dup2(log, 1)  # what the kernels print goes to the log, not into the frames
    sys.stdout = open(1, "w", closefd=False)
    while True:
        try:
            module, func, args, kwargs = _read_frame(proto_in)
        except EOFError:
            return
        before = _fingerprints(args, kwargs)
        try:
            fn = importlib.import_module(module)
            _write_frame(proto_out, _IMPORTED)
            reply = ("ok", getattr(fn, func)(*args, **kwargs), "", ())
        except Exception as e:  # the kernel's own error is a result, not a worker failure
            reply = ("error", None, f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=5)}", ())
            if limit and _out_of_memory(e):
                reply = ("crashed", None, f"memory limit {_gib(limit)} exceeded: {type(e).__name__}: {e}", ())
        after = _fingerprints(args, kwargs)
        reply = (*reply[:3], tuple(name for name, h in before.items() if after.get(name) != h))
        try:
            sys.stdout.flush()
        except (OSError, ValueError):
            pass
        try:
            _write_frame(proto_out, reply)
        except (pickle.PicklingError, TypeError, AttributeError, MemoryError) as e:
            _write_frame(proto_out, ("error", None, f"the value could not be sent back: {type(e).__name__}: {e}", ()))
        if reply[0] == "crashed":
            return  # the parent replaces a worker that ran out of memory


def _forked(fds: list[int]) -> None:
    """A zygote's child: its own process group, stderr to its file, then a worker until the parent
    closes the pipe; it never returns into the zygote's loop."""
    code = 0
    try:
        os.setpgid(0, 0)
        proto_in, proto_out, log, err = fds
        os.dup2(err, 2)
        _serve(proto_in, proto_out, log)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        os._exit(code)


def _zygote() -> None:
    """Import what every worker needs once, then fork a worker per request until the parent goes."""
    sock = socket.socket(fileno=int(os.environ.pop(_ZYGOTE_ENV)))
    for name in PRELOAD:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)
    while True:
        opening, fds, _, _ = socket.recv_fds(sock, 1, 4)
        if not opening:
            return
        request = _read_frame(sock.fileno())
        if request[0] == "fork":
            pid = os.fork()
            if pid == 0:
                sock.close()
                _forked(fds)
            try:
                os.setpgid(pid, pid)  # also here, so the group exists before the parent may kill it
            except OSError:
                pass
            for fd in fds:
                os.close(fd)
            reply: Any = pid
        else:
            reply = _wait(*request[1:])
        _write_frame(sock.fileno(), reply)


if __name__ == "__main__":
    if sys.argv[1:] == ["--zygote"]:
        _zygote()
    else:
        _serve(sys.stdin.buffer.fileno(), os.dup(1),
               os.open(os.environ["QORACLE_WORKER_LOG"], os.O_WRONLY | os.O_APPEND))
