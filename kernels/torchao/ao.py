"""Worker side of the torchao adapter (numpy in, numpy out)."""
from __future__ import annotations

import importlib.metadata
import json
import os

import numpy as np

from kernels.layouts import View, as_torch
from kernels.loading import import_failure
from kernels.worker import environment_fact

_DA8W4 = ("da8w4_linear_cpu", "da8w4_linear_prepack_cpu")
_LIB_ENV = "QORACLE_TORCHAO_CPU_LIB"


def _version() -> str:
    try:
        return importlib.metadata.version("torchao")
    except importlib.metadata.PackageNotFoundError:
        return ""


def available(path: str = "") -> dict:
    """torchao imports here (the int8 matmul paths need nothing more); for path 'da8w4' whether its CPU
    DA8W4 kernel runs here (available_da8w4); never raises."""
    if path == "da8w4":
        return available_da8w4()
    version = _version()
    if not version:
        return {"ok": False, "reason": "torchao is not installed", "version": ""}
    try:
        import torchao.kernel.intmm  # noqa: F401
    except Exception as e:  # whatever the import raises is the reason
        return {**import_failure(("torchao",), "torchao.kernel.intmm", e), "version": version}
    return {"ok": True, "reason": "", "version": version}


def _cpu_flags() -> set[str]:
    """The CPU's extension flags as Linux names them (/proc/cpuinfo); empty where unreadable."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _build_record(lib: str) -> dict:
    """The JSON that benchmarks/build_torchao_cpu.py writes beside the library ({} if none)."""
    try:
        with open(os.path.splitext(lib)[0] + ".json") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _epilogue(record: dict) -> str:
    """How the build rounds `y + (float(acc) * sa) * sb` (oracle.gemm.da8w4 `epilogue`), '' if unknown.

    Without -mfma / -march=native GCC and Clang have no FMA instruction on x86-64: two roundings.
    With them GCC (C++ default -ffp-contract=fast) fuses the multiply into the add in every path."""
    flags = record.get("cflags")
    if flags is None:
        return ""
    if not any(f in ("-mfma", "-march=native") or f.startswith("-mavx512") for f in flags):
        return "mul_add"
    return "fma" if record.get("compiler_family") == "gcc" else ""


_DA8W4_STATE: dict = {}


def _missing_da8w4() -> list[str]:
    """What torchao's DA8W4 ops lack in this process: a schema, or a CPU kernel (importing torchao registers the
    schemas, a loaded library the kernels)."""
    import torch
    import torchao  # noqa: F401  (registers the op schemas)

    out = []
    for op in _DA8W4:
        if not hasattr(torch.ops.torchao, op):
            out.append(f"torchao::{op} is not registered")
        elif not torch._C._dispatch_has_kernel_for_dispatch_key(f"torchao::{op}", "CPU"):
            out.append(f"torchao::{op} has no CPU kernel (schema only, from torchao/ops.py)")
    return out


def available_da8w4() -> dict:
    """Whether both DA8W4 ops have a CPU kernel here (torchao's own build, or the library that
    benchmarks/build_torchao_cpu.py built, named by QORACLE_TORCHAO_CPU_LIB), and exactly why not.

    The library is loaded into this (worker) process only after its recorded CPU needs are
    checked: an AVX512 build executes AVX512 code as soon as it is loaded, and its kernel has no
    runtime ISA check (copy_bias, store_out and _dequant_and_store use _mm512 intrinsics under
    `#if defined(CPU_CAPABILITY_AVX512)`, whatever `cpublas::could_pack` says)."""
    if _DA8W4_STATE.get("ok"):
        return _DA8W4_STATE
    version = _version()
    if not version:
        return {"ok": False, "reason": "torchao is not installed", "version": ""}
    lib = os.environ.get(_LIB_ENV, "")
    if not lib:  # where torchao's own build lacks the kernel, say so without importing it after every restart
        own = environment_fact(f"torchao-{version}-da8w4-cpu", lambda: {"missing": "; ".join(_missing_da8w4())})
        if own["missing"]:
            return {"ok": False, "version": version, "reason": own["missing"] + (
                f". torchao {version} from PyPI is a CUDA build without torchao/csrc/cpu; build the CPU kernel from "
                f"a pytorch/ao checkout with benchmarks/build_torchao_cpu.py --source DIR and set {_LIB_ENV} to "
                "the library it prints")}
    import torch

    amx = bool(getattr(torch._C._cpu, "_is_amx_tile_supported", lambda: False)())
    if not _missing_da8w4():
        _DA8W4_STATE.update(ok=True, reason="", version=version, library="torchao's own build", build={},
                            epilogue="", amx=amx)
        return _DA8W4_STATE
    if not os.path.isfile(lib):
        return {"ok": False, "version": version, "reason": f"{_LIB_ENV} names {lib}, which does not exist"}
    record = _build_record(lib)
    needs = [x for x in record.get("cpu_needs", []) if x != "build-host"]
    have = _cpu_flags()
    lacking = [x for x in needs if x not in have]
    if lacking:
        return {"ok": False, "version": version, "reason": (
            f"{os.path.basename(lib)} is torchao's {record.get('isa', '?')} build ({' '.join(record.get('cflags', []))}) "
            f"and this CPU lacks {', '.join(lacking)}: da8w4_linear.cpp uses _mm512 intrinsics under "
            "CPU_CAPABILITY_AVX512 with no runtime check (copy_bias, store_out, _dequant_and_store; the "
            "small-M path under CPU_CAPABILITY_AVX512_VNNI), only the brgemm/VNNI packing waits for "
            "cpublas::could_pack (AMX); build with --isa generic for this host (its scalar path runs anywhere)")}
    try:
        torch.ops.load_library(lib)
    except Exception as e:  # a broken or incompatible build: installed but does not load
        return {"ok": False, "version": version, "load_failed": True,
                "reason": f"{_LIB_ENV}: torch.ops.load_library failed ({type(e).__name__}: {e})"}
    still = _missing_da8w4()
    if still:
        return {"ok": False, "version": version, "load_failed": True,
                "reason": f"{os.path.basename(lib)} loaded but " + "; ".join(still)}
    _DA8W4_STATE.update(ok=True, reason="", version=version, library=os.path.basename(lib), amx=amx,
                        build={k: record.get(k) for k in ("isa", "cflags", "source_sha256", "source_commit",
                                                          "torch", "compiler_version", "compiler_family")},
                        epilogue=_epilogue(record))
    return _DA8W4_STATE


def _prepack(codes: np.ndarray, scales: np.ndarray, zp: np.ndarray) -> tuple:
    """torchao::da8w4_linear_prepack_cpu of uint8 codes 0..15 (N, K), fp32 scales and int8 zero points (N, K / group):
    (packed weight, scales and zeros, qzeros, compensation)."""
    import torch

    t = lambda a, dt: torch.from_numpy(np.ascontiguousarray(a, dt))  # noqa: E731
    return torch.ops.torchao.da8w4_linear_prepack_cpu(t(codes, np.uint8), t(scales, np.float32), t(zp, np.int8))


def da8w4_linear_cpu(a_q: np.ndarray, a_scale: np.ndarray, a_zp: np.ndarray, w_q: np.ndarray,
                     w_scale: np.ndarray, w_zp: np.ndarray, bias, out: str) -> dict:
    """torchao::da8w4_linear_prepack_cpu then torchao::da8w4_linear_cpu.

    a_q: uint8 (M, K) with int32 zero points (asymmetric) or int8 (M, K) (symmetric: the kernel
    reads no zero point; zeros are passed for its shape check); w_q: uint8 codes 0..15 (N, K),
    one per byte, as torchao's from_hp_da8w4 hands them to the prepack; w_scale fp32 and w_zp
    int8 (N, K / group_size). Returns the output (fp32, fp16 or ml_dtypes.bfloat16) and the
    prepacked compensation, scales and zero points (packed weight bytes depend on the path)."""
    import torch

    from kernels.pytorch._torch import to_numpy

    av = available_da8w4()
    if not av["ok"]:
        raise RuntimeError(av["reason"])
    t = lambda x, dt: torch.from_numpy(np.ascontiguousarray(x, dt))  # noqa: E731
    a = t(a_q, a_q.dtype)
    packed = _prepack(w_q, w_scale, w_zp)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[out]
    b = None if bias is None else t(bias, np.float32)
    y = torch.ops.torchao.da8w4_linear_cpu(a, t(a_scale, np.float32).reshape(-1), t(a_zp, np.int32).reshape(-1),
                                           packed[0], packed[1], packed[2], packed[3], b, dtype)
    return {"y": to_numpy(y), "compensation": packed[3].numpy().copy(), "scales": packed[1].numpy().copy(),
            "qzeros": packed[2].numpy().copy()}


def observe() -> dict:
    """ATen's CPU capability (the knob ATEN_CPU_CAPABILITY moves it) for the torch ops torchao calls, and, once the
    DA8W4 library is loaded, the epilogue its build record implies ('' unknown; semantics da8w4.asym.torchao_build
    reads it) and its ISA."""
    import torch

    loaded = bool(_DA8W4_STATE.get("ok"))
    return {"aten_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "da8w4_epilogue": _DA8W4_STATE.get("epilogue", "") if loaded else None,
            "da8w4_build": (_DA8W4_STATE.get("build") or {}).get("isa", "") if loaded else None,
            "how": "torch.backends.cpu.get_cpu_capability(); torch._int_mm runs on oneDNN (ONEDNN_VERBOSE shows its ISA); "
                   "da8w4_epilogue from the DA8W4 build record (available_da8w4)"}


_BLOCK_N = 32  # da8w4_linear.cpp BLOCK_N: the prepack views the weight as [N / 32, 32, K / block_k, block_k]


def _prepacked_weight(codes: np.ndarray, scales: np.ndarray, zp: np.ndarray):
    """torchao::da8w4_linear_prepack_cpu of codes 0..15 (N, K), fp32 scales and zero points (N, K / group), as
    Int4OpaqueTensor.from_hp_da8w4 calls it (zero points as int8), N padded with zero columns to the kernel's
    32-column block (the prepack has no N tail; the padded outputs are sliced off), as a stand-in for the tensor
    whose fields torchao's _da8w4_linear reads."""
    from types import SimpleNamespace

    n = codes.shape[0]
    pad = -n % _BLOCK_N
    grow = lambda a, fill: np.concatenate([a, np.full((pad, a.shape[1]), fill, a.dtype)]) if pad else a  # noqa: E731
    packed = _prepack(grow(np.asarray(codes, np.uint8), 0), grow(np.asarray(scales, np.float32), 1),
                      grow(np.asarray(zp, np.int8), 0))
    return SimpleNamespace(qdata=packed[0], scale_and_zero=packed[1], qzeros=packed[2], compensation=packed[3],
                           act_mapping_type="asymmetric", shape=(n + pad, codes.shape[1])), n


def da8w4_view(x: View, codes: np.ndarray, scales: np.ndarray, zp: np.ndarray, group: int, *,
               threads: int | None = None) -> np.ndarray:
    """What F.linear on an Int4OpaqueTensor DA8W4 weight runs for the caller's view of x as it is (torchao 0.18
    torchao/prototype/quantization/int4/int4_opaque_tensor.py `_da8w4_linear`, called here, not copied: x
    reshaped to 2-D, choose_qparams_affine and quantize_affine per token to uint8 in x's dtype, `act_int.contiguous()`,
    torchao::da8w4_linear_cpu with x's dtype as the output dtype), no bias; the output in x's dtype."""
    from torchao.prototype.quantization.int4.int4_opaque_tensor import _da8w4_linear

    from kernels.pytorch._torch import num_threads, to_numpy

    av = available_da8w4()
    if not av["ok"]:
        raise RuntimeError(av["reason"])
    if codes.shape[1] % group or group % min(group, 128):
        raise ValueError(f"K = {codes.shape[1]} is not a whole number of groups of {group} "
                         "(da8w4_linear_prepack_cpu: group_size = K / G)")
    weight, n = _prepacked_weight(codes, scales, zp)
    with num_threads(threads):
        y = _da8w4_linear(as_torch(x), weight, None)
    return to_numpy(y[:, :n])


def int_matmul(a: np.ndarray, b_kn: np.ndarray) -> np.ndarray:
    """int8 a (M, K) @ int8 b (K, N) -> int32 (M, N)."""
    import torch
    from torchao.kernel.intmm import int_matmul as f

    return f(torch.from_numpy(np.ascontiguousarray(a, np.int8)), torch.from_numpy(np.ascontiguousarray(b_kn, np.int8))).numpy()


def int_matmul_view(a: View, b_kn: View, *, threads: int | None = None) -> np.ndarray:
    """int_matmul over the caller's views as they are (no copy): on CPU its int32 torch.matmul takes
    any strides, so a layout the kernel mishandles shows here and not in a dense copy."""
    from torchao.kernel.intmm import int_matmul as f

    from kernels.pytorch._torch import num_threads

    with num_threads(threads):
        return f(as_torch(a), as_torch(b_kn)).numpy().copy()


def int_scaled_matmul(a: np.ndarray, b_kn: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """int8 a (M, K) @ int8 b (K, N) scaled per row by fp32 scales (M, 1) -> fp32 (M, N)."""
    import torch
    from torchao.kernel.intmm import int_scaled_matmul as f

    return f(torch.from_numpy(np.ascontiguousarray(a, np.int8)), torch.from_numpy(np.ascontiguousarray(b_kn, np.int8)),
             torch.from_numpy(np.ascontiguousarray(scales, np.float32).reshape(-1, 1))).numpy()


def int_scaled_matmul_view(a: View, b_kn: View, row_scales: np.ndarray, *, threads: int | None = None) -> np.ndarray:
    """int_scaled_matmul over the caller's views of a and b (K, N) as they are (no copy), the row scales as the
    op asserts them (fp32 (M, 1), contiguous): on CPU its torch._int_mm takes any strides."""
    import torch
    from torchao.kernel.intmm import int_scaled_matmul as f

    from kernels.pytorch._torch import num_threads

    s = torch.from_numpy(np.ascontiguousarray(row_scales, np.float32).reshape(-1, 1))
    with num_threads(threads):
        return f(as_torch(a), as_torch(b_kn), s).numpy().copy()
