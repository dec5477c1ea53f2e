"""Worker side of the BesTLA adapter: calls into auto_round_kernel with numpy in and out.

Runs only inside kernels/worker.py (torch and the 37 MB native library load here, never in
the test process). Layout conversions: the package's `repack_quantized_weight` wants codes as
[K, N] and scales/zero points as [K/g, N]; the adapter takes the oracle's (N, K) / (N, G).
"""
from __future__ import annotations

import functools
import importlib.metadata
import os
import subprocess
import sys

import ml_dtypes
import numpy as np

from kernels.isa import host_flags
from kernels.layouts import View, as_torch
from kernels.loading import import_failure
from kernels.pytorch._torch import num_threads, to_numpy, to_torch
from kernels.worker import environment_fact

_TORCH_DT = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
# cpuinfo flags standing for the ISA bits BesTLA's CpuDevice reads through Xbyak, best first
_BESTLA_ISAS = (("AMX_INT8", "amx_int8"), ("AVX512_FP16", "avx512_fp16"), ("AVX512_VNNI", "avx512_vnni"),
                ("AVX512BW", "avx512bw"), ("AVX512F", "avx512f"), ("AVX_VNNI", "avx_vnni"), ("AVX2", "avx2"))


def available() -> dict:
    """Whether auto_round_kernel and its CPU library load here (never raises)."""
    try:
        version = importlib.metadata.version("auto-round-lib")
    except importlib.metadata.PackageNotFoundError:
        return {"ok": False, "reason": "auto-round-lib is not installed (pip install auto-round-lib)", "version": ""}
    try:
        import auto_round_kernel as ark
    except Exception as e:  # an import failure is the reason, whatever it is
        return {**import_failure(("auto-round-lib",), "auto_round_kernel", e), "version": version}
    if ark.cpu_lib is None:
        return {"ok": False, "reason": "auto_round_kernel loaded without its CPU library", "version": version}
    return {"ok": True, "reason": "", "version": version}


def observe() -> dict:
    """What ISA ran, as far as can be told.

    BesTLA (woqgemm) has no query: the package's `check_isa_supported` always returns False, so
    the ISA it dispatches to is inferred from the same cpuid bits its CpuDevice reads. The
    oneDNN inside the package (woqgemm_s8) is asked in a child process with ONEDNN_VERBOSE=1,
    under this worker's environment (so an ONEDNN_MAX_CPU_ISA cap shows in its ISA line), only
    once woqgemm_s8 has run here: no other entry point runs oneDNN.
    """
    flags = host_flags()
    inferred = next((name for name, flag in _BESTLA_ISAS if flag in flags), "SSE/no AVX2")
    return {"bestla_isa": inferred, "bestla_isa_how": "inferred from cpuid flags; the package exposes no ISA query",
            **(_onednn_probe() if _ONEDNN_RAN else {"onednn_isa": "", "onednn_impl": ""})}


_ONEDNN_RAN: set[str] = set()  # {"woqgemm_s8"} once woqgemm_s8 (the one oneDNN entry point) ran in this process


@functools.cache
def _onednn_probe() -> dict:
    """oneDNN's ISA line and matmul implementation, once per worker (kernels.worker.environment_fact):
    they depend only on the environment (the ISA cap), and the child process costs seconds, which
    every observed call, then every restart of the worker, paid."""
    return environment_fact("bestla-onednn", _ask_onednn)


def _ask_onednn() -> dict:
    out = {"onednn_isa": "", "onednn_impl": ""}
    probe = ("import torch, auto_round_kernel as a; x = torch.ones(2, 64); w = torch.ones(8, 64, dtype=torch.int8); "
             "a.woqgemm_s8(x, w, torch.ones(8))")
    try:
        r = subprocess.run([sys.executable, "-c", probe], env={**os.environ, "ONEDNN_VERBOSE": "1"},
                           capture_output=True, text=True, timeout=120)
        for line in r.stdout.splitlines():
            if line.startswith("onednn_verbose") and ",isa:" in line:
                out["onednn_isa"] = line.split(",isa:", 1)[1].strip()
            elif ",matmul," in line and ",exec," in line:
                out["onednn_impl"] = line.split(",matmul,", 1)[1].split(",", 1)[0]
    except (OSError, subprocess.SubprocessError) as e:
        out["onednn_isa"] = f"probe failed: {e}"
    return out


def _torch_act(x: np.ndarray, act: str):
    import torch

    if act not in _TORCH_DT:
        raise ValueError(f"activation dtype must be one of {sorted(_TORCH_DT)}, got {act!r}")
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(getattr(torch, _TORCH_DT[act]))


def _to_numpy(t, act: str) -> np.ndarray:
    import torch

    if act == "bf16":
        return t.contiguous().view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return t.numpy()


def _blob(codes: np.ndarray, scales: np.ndarray, zeros: np.ndarray | None, *, bits: int, group_size: int,
          compute: str, scale_type: str):
    """The BesTLA blob of signed codes (N, K), fp32 scales and signed zero points (N, G) or None (symmetric),
    through repack_quantized_weight, which wants them as [K, N] and [G, N]."""
    import torch
    import auto_round_kernel as ark

    qb = torch.from_numpy(np.ascontiguousarray(codes.T, dtype=np.int8))
    sc = torch.from_numpy(np.ascontiguousarray(scales.T, dtype=np.float32))
    asym = zeros is not None
    zp = torch.from_numpy(np.ascontiguousarray(zeros.T, dtype=np.int8)) if asym else torch.empty(0, dtype=torch.int8)
    return ark.repack_quantized_weight(qb, sc, zp, group_size, compute, f"int{bits}", scale_type, asym)


def woqgemm(x: np.ndarray, codes: np.ndarray, scales: np.ndarray, zeros: np.ndarray | None, bias: np.ndarray | None,
            *, bits: int, group_size: int, act: str = "fp32", compute: str = "fp32", scale_type: str = "fp32") -> np.ndarray:
    """y = x @ ((codes - zeros) * scales).T + bias through repack_quantized_weight + woqgemm.

    codes int8 (N, K) signed in [-2^(b-1), 2^(b-1)-1]; scales float32 (N, K/g); zeros int8 (N, K/g)
    (asymmetric) or None. x holds the activation values as float32; `act` is the dtype handed
    to the kernel (the output has it too).
    """
    import torch
    import auto_round_kernel as ark

    n, k = codes.shape
    blob = _blob(codes, scales, zeros, bits=bits, group_size=group_size, compute=compute, scale_type=scale_type)
    a = _torch_act(x, act)
    b = torch.zeros(n, dtype=a.dtype) if bias is None else _torch_act(bias, act)
    y = ark.woqgemm(a, blob, b, n, k, group_size, compute, f"int{bits}", scale_type, zeros is not None)
    return _to_numpy(y, act)


def woqgemm_view(x: View, codes: np.ndarray, scales: np.ndarray, zp: np.ndarray, group: int, *,
                 threads: int | None = None) -> np.ndarray:
    """The w4_grouped GEMM over the caller's view of x as it is (woqgemm takes `A.contiguous()` itself).

    Unsigned codes and zero points (0..15) become the signed int4 pair woqgemm's asymmetric path takes
    (q - 8, zp - 8: the same differences), fp32 scales and compute, no bias (`torch.empty(0)`, as the
    package's woqgemm_linear passes for none). BesTLA runs on the OpenMP pool it shares with torch, so
    `threads` is torch.set_num_threads' for the whole call (packing and GEMM), as a caller sets it.
    """
    import torch
    import auto_round_kernel as ark

    n, k = codes.shape
    a = as_torch(x)
    with num_threads(threads):
        blob = _blob(codes.astype(np.int16) - 8, scales, zp.astype(np.int16) - 8, bits=4, group_size=group,
                     compute="fp32", scale_type="fp32")
        y = ark.woqgemm(a, blob, torch.empty(0, dtype=a.dtype), n, k, group, "fp32", "int4", "fp32", True)
    return to_numpy(y)


def unpack(codes: np.ndarray, scales: np.ndarray, zeros: np.ndarray | None, *, bits: int, group_size: int,
           compute: str = "fp32", scale_type: str = "fp32") -> np.ndarray:
    """The blob's dequantized weight (N, K) float32, from the package's own unpack_weight."""
    import torch
    import auto_round_kernel as ark

    n, k = codes.shape
    blob = _blob(codes, scales, zeros, bits=bits, group_size=group_size, compute=compute, scale_type=scale_type)
    return ark.unpack_weight(blob, torch.float32, n, k, group_size, compute, f"int{bits}", scale_type,
                             zeros is not None).contiguous().numpy()


def woqgemm_s8(x: np.ndarray, w: np.ndarray, w_scale: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """fp32 x (M, K) with int8 weights (N, K) and fp32 per-channel scales (N,): fp32 (M, N)."""
    import torch
    import auto_round_kernel as ark

    a = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    b = torch.from_numpy(np.ascontiguousarray(w, dtype=np.int8))
    s = torch.from_numpy(np.ascontiguousarray(w_scale, dtype=np.float32))
    bb = None if bias is None else torch.from_numpy(np.ascontiguousarray(bias, dtype=np.float32))
    _ONEDNN_RAN.add("woqgemm_s8")
    return ark.woqgemm_s8(a, b, s, bb).numpy()


def woqgemm_s8_view(x: View, w: View, scales: np.ndarray, *, threads: int | None = None) -> np.ndarray:
    """woqgemm_s8 without bias over the caller's views of x and w as they are (the package takes
    `A.contiguous().data_ptr()` and `B.contiguous().data_ptr()` itself), on the OpenMP pool torch sizes."""
    import auto_round_kernel as ark

    _ONEDNN_RAN.add("woqgemm_s8")
    with num_threads(threads):
        return to_numpy(ark.woqgemm_s8(as_torch(x), as_torch(w), to_torch(scales), None))


def igemm_s8s8s32(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """int8 a (M, K) times int8 b (N, K) transposed: int32 (M, N)."""
    import torch
    import auto_round_kernel as ark

    ta = torch.from_numpy(np.ascontiguousarray(a, dtype=np.int8))
    tb = torch.from_numpy(np.ascontiguousarray(b, dtype=np.int8))
    return ark.igemm_s8s8s32(ta, tb).numpy()


def igemm_s8s8s32_view(a: View, b: View) -> np.ndarray:
    """igemm_s8s8s32 over the caller's views as they are: the package makes each one contiguous itself
    (`A.contiguous().data_ptr()`), so no layout is refused and each must give the same product."""
    import auto_round_kernel as ark

    return ark.igemm_s8s8s32(as_torch(a), as_torch(b)).numpy().copy()
