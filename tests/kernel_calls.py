"""Real kernel libraries (torch, torchao, onnxruntime, libggml) called by the tests, always in a worker process.

A library with a known fault (torch's bf16 linear has crashed the caller on some AVX512 hosts)
then fails one test with the signal instead of killing the pytest run. Test modules keep their
library code in plain functions and call them through `run("tests.test_x", "func", ...)`; the
worker imports the module by that name, so those functions import the library themselves and
the module's top level imports no kernel library. libggml, used by several modules, is reached
through `libggml()`, a stand-in for `kernels.ggml.libggml.LibGGML` whose methods run in the worker.
"""
from __future__ import annotations

import functools
import importlib.util
from typing import Any

import numpy as np
import pytest

from kernels.ggml.libggml import LibGGMLUnavailable, LibGGMLUnsupported
from kernels.worker import Worker

MODULE = "tests.kernel_calls"
_worker: Worker | None = None


def worker() -> Worker:
    """One worker for the whole pytest run: started on first use, closed at exit by its finalizer."""
    global _worker
    if _worker is None:
        _worker = Worker(timeout=600)
    return _worker


def needs(package: str, reason: str) -> None:
    """Skip the calling module (or test) unless `package` is installed (found, not imported:
    importing a kernel library is the worker's business)."""
    if importlib.util.find_spec(package) is None:
        pytest.skip(reason, allow_module_level=True)


def found(module: str) -> bool:
    """Worker side: whether `module` is installed; finding a submodule imports its parents."""
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


@functools.cache
def _found_in_worker(module: str) -> bool:
    return run(MODULE, "found", module)


def needs_module(module: str, reason: str) -> None:
    """Skip the calling test unless `module`, a submodule of a kernel library, is installed: looked
    for in the worker, since finding it imports the library."""
    if not _found_in_worker(module):
        pytest.skip(reason)


def run(module: str, func: str, *args: Any, **kwargs: Any) -> Any:
    """`module.func(*args, **kwargs)` in the worker: its value; a crash, a hang or an exception
    fails the calling test with what the worker saw."""
    out = worker().call(module, func, *args, **kwargs)
    if not out.ok:
        pytest.fail(f"{module}.{func} in the worker: {out.status}: {out.detail[:3000]}", pytrace=False)
    return out.value


# --- torch <-> numpy, worker side -------------------------------------------------------------------

def to_torch(a: np.ndarray) -> Any:
    """A tensor sharing `a`'s bits; ml_dtypes bfloat16 arrays become torch.bfloat16."""
    import torch

    if a.dtype.name == "bfloat16":
        return torch.from_numpy(np.ascontiguousarray(a).view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(a)


def to_numpy(t: Any) -> np.ndarray:
    """The tensor's bits as numpy; torch.bfloat16 becomes ml_dtypes.bfloat16."""
    import torch

    if t.dtype == torch.bfloat16:
        import ml_dtypes

        return t.contiguous().view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return t.numpy()


def torch_op(name: str, *args: Any) -> np.ndarray:
    """`torch.<name>(*args)`, each array passed as a tensor sharing its bits, other values as they are."""
    import torch

    return to_numpy(getattr(torch, name)(*(to_torch(a) if isinstance(a, np.ndarray) else a for a in args)))


def int4pack_identity(weight: np.ndarray, scales_and_zeros: np.ndarray, group: int) -> np.ndarray:
    """torch's CPU int4pack kernel (packing, then _weight_int4pack_mm_for_cpu) on identity
    activations: the weights it forms, [N, K] float32, from codes [N, K] and scales_and_zeros."""
    packed = run(MODULE, "torch_op", "_convert_weight_to_int4pack_for_cpu", weight, 1)
    eye = np.eye(weight.shape[1], dtype=np.float32)
    return run(MODULE, "torch_op", "_weight_int4pack_mm_for_cpu", eye, packed, group, scales_and_zeros).T


def torch_cast(x: np.ndarray, dtype: str) -> np.ndarray:
    """`x` converted by torch to `torch.<dtype>` (bfloat16 comes back as ml_dtypes.bfloat16)."""
    import torch

    return to_numpy(to_torch(x).to(getattr(torch, dtype)))


# --- onnxruntime, worker side ---------------------------------------------------------------------

def ort_quantize_matmul(w: np.ndarray, bits: int, block: int, symmetric: bool,
                        k_passed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ONNX Runtime's pybind `quantize_matmul_{bits}bits` on the [N, K] weight transposed to [K, N]
    (as the graph holds it) and padded with zeros to whole blocks, told K = `k_passed`: packed
    codes, scales, packed zero points."""
    from onnxruntime.capi import _pybind_state as pybind

    n, k = w.shape
    per, kb = 8 // bits, -(-k // block)
    b = np.ascontiguousarray(np.pad(w.T, ((0, kb * block - k), (0, 0))))
    packed = np.zeros((n, kb, (block + per - 1) // per), np.uint8)
    zp = np.zeros((n, (kb + per - 1) // per), np.uint8)
    scales = np.zeros((n, kb), np.float32)
    getattr(pybind, f"quantize_matmul_{bits}bits")(packed, b, scales, zp, block, n, k_passed, symmetric)
    return packed, scales, zp


# --- libggml ------------------------------------------------------------------------------------------

_lib = None


def libggml_call(method: str, *args: Any) -> dict:
    """Worker side: `LibGGML.method(*args)` (or the attribute), with the library's own refusals
    returned as data so the parent can raise them as the same exception types."""
    global _lib
    from kernels.ggml.libggml import load

    try:
        if _lib is None:
            _lib = load()
        attr = getattr(_lib, method)
        return {"value": attr(*args) if callable(attr) else attr}
    except (ImportError, LibGGMLUnavailable, LibGGMLUnsupported, ValueError) as e:
        return {"raised": type(e).__name__, "message": str(e)}


class LibGGMLInWorker:
    """`kernels.ggml.libggml.LibGGML` as the tests use it, each method run in the worker."""

    def __init__(self) -> None:
        self.version = self._call("version")
        self._names = self._call("type_names")

    def type_names(self) -> list[str]:
        return self._names

    def __getattr__(self, method: str) -> Any:
        if method.startswith("_"):
            raise AttributeError(method)
        return lambda *args: self._call(method, *args)

    @staticmethod
    def _call(method: str, *args: Any) -> Any:
        r = run(MODULE, "libggml_call", method, *args)
        if "raised" not in r:
            return r["value"]
        known = {c.__name__: c for c in (LibGGMLUnavailable, LibGGMLUnsupported, ValueError)}
        raise known.get(r["raised"], LibGGMLUnavailable)(r["message"])


def libggml() -> LibGGMLInWorker:
    """libggml in the worker, or the calling module skipped with the reason it does not load."""
    try:
        return LibGGMLInWorker()
    except LibGGMLUnavailable as e:
        pytest.skip(f"libggml unavailable: {e}", allow_module_level=True)
