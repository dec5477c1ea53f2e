"""Worker side of the ESIMD INT4 GEMV adapter."""
from __future__ import annotations

import importlib
import importlib.metadata

import numpy as np

_NS = "custom_esimd_kernels_vllm"


def available() -> dict:
    """Runs only with torch.xpu and the registered op; says which of the two is missing (never raises)."""
    import torch

    missing = []
    xpu = getattr(torch, "xpu", None)
    if xpu is None or not xpu.is_available():
        missing.append(f"torch.xpu is not available (torch {torch.__version__}, no Intel GPU/driver)")
    try:
        importlib.import_module(_NS)  # loading the package registers its ops
    except Exception as e:  # an absent or broken package is the reason
        missing.append(f"python package {_NS} does not import ({type(e).__name__}: {e})")
    if not hasattr(getattr(torch.ops, _NS), "esimd_gemv_int4"):
        missing.append(f"op torch.ops.{_NS}.esimd_gemv_int4 is not registered")
    try:
        version = importlib.metadata.version("custom-esimd-kernels-vllm")
    except importlib.metadata.PackageNotFoundError:
        version = ""
    return {"ok": not missing, "reason": "; ".join(missing), "version": version}


def observe() -> dict:
    import torch

    if getattr(torch, "xpu", None) is None or not torch.xpu.is_available():
        return {"device": "", "how": "no XPU"}
    return {"device": torch.xpu.get_device_name(0), "how": "torch.xpu.get_device_name(0)"}


def gemv_int4(x: np.ndarray, weight: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """fp16 x (1, K), uint8 weight (N, K/2), fp16 scales (N, K/128) -> fp16 (1, N) on XPU 0."""
    import torch

    dev = torch.device("xpu")
    xt = torch.from_numpy(np.ascontiguousarray(x, np.float16)).to(dev)
    wt = torch.from_numpy(np.ascontiguousarray(weight, np.uint8)).to(dev)
    st = torch.from_numpy(np.ascontiguousarray(scales, np.float16)).to(dev)
    out = torch.empty((1, weight.shape[0]), dtype=torch.float16, device=dev)
    getattr(torch.ops, _NS).esimd_gemv_int4(xt, wt, st, out)
    return out.cpu().numpy()
