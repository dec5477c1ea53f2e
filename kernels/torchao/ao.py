"""Worker side of the torchao adapter (numpy in, numpy out)."""
from __future__ import annotations

import importlib.metadata

import numpy as np

from kernels.loading import import_failure

_DA8W4 = ("da8w4_linear_cpu", "da8w4_linear_prepack_cpu")


def _version() -> str:
    try:
        return importlib.metadata.version("torchao")
    except importlib.metadata.PackageNotFoundError:
        return ""


def available() -> dict:
    """torchao imports here (the int8 matmul paths need nothing more); never raises."""
    version = _version()
    if not version:
        return {"ok": False, "reason": "torchao is not installed", "version": ""}
    try:
        import torchao.kernel.intmm  # noqa: F401
    except Exception as e:  # whatever the import raises is the reason
        return {**import_failure(("torchao",), "torchao.kernel.intmm", e), "version": version}
    return {"ok": True, "reason": "", "version": version}


def available_da8w4() -> dict:
    """Whether both DA8W4 ops have a CPU kernel in this build, and exactly why not."""
    version = _version()
    if not version:
        return {"ok": False, "reason": "torchao is not installed", "version": ""}
    import torch
    import torchao  # noqa: F401  (registers the op schemas)

    missing = []
    for op in _DA8W4:
        if not hasattr(torch.ops.torchao, op):
            missing.append(f"torchao::{op} is not registered")
        elif not torch._C._dispatch_has_kernel_for_dispatch_key(f"torchao::{op}", "CPU"):
            missing.append(f"torchao::{op} has no CPU kernel (schema only, from torchao/ops.py)")
    if not missing:
        return {"ok": True, "reason": "", "version": version}
    return {"ok": False, "version": version, "reason": "; ".join(missing) + (
        f". torchao {version} from PyPI is a CUDA build without torchao/csrc/cpu; a source build with its C++ CPU "
        "kernels needs the pytorch/ao sources, and the package registry has no sdist of a recent torchao "
        "(only 0.0.1, 0.0.3, 0.1)")}


def observe() -> dict:
    """ATen's CPU capability (the knob ATEN_CPU_CAPABILITY moves it) for the torch ops torchao calls."""
    import torch

    return {"aten_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "how": "torch.backends.cpu.get_cpu_capability(); torch._int_mm runs on oneDNN (ONEDNN_VERBOSE shows its ISA)"}


def int_matmul(a: np.ndarray, b_kn: np.ndarray) -> np.ndarray:
    """int8 a (M, K) @ int8 b (K, N) -> int32 (M, N)."""
    import torch
    from torchao.kernel.intmm import int_matmul as f

    return f(torch.from_numpy(np.ascontiguousarray(a, np.int8)), torch.from_numpy(np.ascontiguousarray(b_kn, np.int8))).numpy()


def int_scaled_matmul(a: np.ndarray, b_kn: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """int8 a (M, K) @ int8 b (K, N) scaled per row by fp32 scales (M, 1) -> fp32 (M, N)."""
    import torch
    from torchao.kernel.intmm import int_scaled_matmul as f

    return f(torch.from_numpy(np.ascontiguousarray(a, np.int8)), torch.from_numpy(np.ascontiguousarray(b_kn, np.int8)),
             torch.from_numpy(np.ascontiguousarray(scales, np.float32).reshape(-1, 1))).numpy()
