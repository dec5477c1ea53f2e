"""Worker-side entry points for the ggml kernels: each loads libggml once per worker process."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from kernels.ggml.libggml import LibGGML, LibGGMLUnavailable, load


@lru_cache(maxsize=1)
def _lib() -> LibGGML:
    return load()


def available() -> dict:
    """Whether libggml loads here, with its version or the reason it does not."""
    try:
        lib = _lib()
    except (ImportError, LibGGMLUnavailable) as e:
        return {"ok": False, "reason": str(e), "version": ""}
    return {"ok": True, "reason": "", "version": lib.version}


def observe() -> dict:
    """What the CPU backend was compiled for (ggml_cpu_has_* are compile-time facts), and
    whether it is one of several per-ISA variants, so that a cap could choose it."""
    lib = _lib()
    feats = lib.cpu_features()
    isa = next((lv for lv, f in (("amx", "amx_int8"), ("avx512_vnni", "avx512_vnni"), ("avx512", "avx512"),
                                 ("avx2", "avx2")) if feats.get(f)), "scalar")
    return {"isa": isa, "variant": lib.variant, "compiled": sorted(k for k, v in feats.items() if v)}


def refusal(type_name: str) -> str | None:
    """Why ggml.quantize cannot run this type here (it would abort), or None."""
    return _lib().quantize_refusal(type_name)


def quantize(x: np.ndarray, type_name: str) -> np.ndarray:
    return _lib().quantize(x, type_name)


def dequantize(q: np.ndarray, type_name: str, k: int) -> np.ndarray:
    return _lib().dequantize(q, type_name, k)


def from_float(x: np.ndarray, type_name: str) -> np.ndarray:
    return _lib().from_float_cpu(x, type_name)


def vec_dot(type_name: str, n: int, x_rows: np.ndarray, y_rows: np.ndarray) -> np.ndarray:
    """Row i of x against row i of y, one `vec_dot` call per row (float32 results)."""
    lib = _lib()
    return np.array([lib.vec_dot(type_name, n, x_rows[i:i + 1], y_rows[i:i + 1]) for i in range(len(x_rows))],
                    dtype=np.float32)
