"""Worker-side helpers shared by the PyTorch adapters: availability, observation, array conversion.

Only the worker imports this module's torch; numpy arrays cross the process boundary, with
bfloat16 carried as ml_dtypes.bfloat16 (same bits, viewed through int16 on the torch side).
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import ml_dtypes
import numpy as np

from kernels.loading import import_failure

TORCH_DTYPES = ("fp32", "fp16", "bf16")


def torch_version() -> str:
    try:
        import torch
    except Exception as e:  # noqa: BLE001  (any import failure means unavailable)
        return f"unavailable: {type(e).__name__}: {e}"
    return torch.__version__


def op_available(*paths: str) -> dict:
    """ok when torch imports and every dotted attribute path under it exists (e.g. 'ops.quantized.linear_dynamic')."""
    try:
        import torch
    except Exception as e:  # noqa: BLE001
        return import_failure(("torch",), "torch", e)
    for path in paths:
        obj = torch
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
        except (AttributeError, RuntimeError) as e:
            return {"ok": False, "reason": f"torch {torch.__version__} has no torch.{path} ({e})",
                    "version": torch.__version__}
    return {"ok": True, "reason": "", "version": torch.__version__}


def observe_torch() -> dict:
    """What the running torch says about itself: ATen's capability, oneDNN, the quantized engine."""
    import torch

    return {"aten_capability": torch.backends.cpu.get_cpu_capability(),
            "mkldnn": bool(torch.backends.mkldnn.is_available()),
            "quantized_engine": torch.backends.quantized.engine,
            "torch": torch.__version__}


@contextlib.contextmanager
def num_threads(n: int | None) -> Iterator[None]:
    """Run with torch's intra-op pool at `n` threads (None: as it is), restored afterwards."""
    import torch

    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def onednn_verbose() -> Iterator[None]:
    """Make oneDNN print its ISA line and each primitive's implementation to the worker's stdout."""
    import torch

    with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
        yield


def to_torch(a: np.ndarray):
    """numpy (fp32/fp16/ml_dtypes bf16/int) -> torch tensor with the same bits, 64-byte aligned.

    Copied into a torch allocation rather than wrapping numpy's buffer: numpy aligns to 16 bytes
    at most, and int8mm's AVX512 bf16 kernel reads rows with 32-byte aligned loads, so where the
    buffer happened to lie decided whether it faulted (see to_torch_at).
    """
    return to_torch_at(a, 0)


def to_torch_at(a: np.ndarray, offset_bytes: int):
    """As to_torch, placed `offset_bytes` past a 64-byte boundary (a contiguous view with a storage offset)."""
    import torch

    a = np.ascontiguousarray(a)
    if offset_bytes < 0 or offset_bytes % a.itemsize:
        raise ValueError(f"offset {offset_bytes} is not a non-negative multiple of the item size {a.itemsize}")
    bf16 = a.dtype == ml_dtypes.bfloat16
    src = torch.from_numpy((a.view(np.int16) if bf16 else a).copy())
    skip = offset_bytes // a.itemsize
    base = torch.empty(skip + a.size, dtype=src.dtype)
    if base.data_ptr() % 64:
        raise RuntimeError(f"torch's CPU allocation at {base.data_ptr():#x} is not 64-byte aligned")
    t = base[skip:].view(a.shape)
    t.copy_(src)
    return t.view(torch.bfloat16) if bf16 else t


def to_numpy(t) -> np.ndarray:
    """torch tensor -> numpy with the same bits (bf16 as ml_dtypes.bfloat16)."""
    import torch

    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(ml_dtypes.bfloat16).copy()
    return t.numpy().copy()
